"""Folding BatchNorm into the preceding Linear leaves the eval-mode function unchanged."""
import pytest
import torch
import torch.nn.functional as F
from makemore.engine.fold import (
    batchnorm_scale_shift,
    batchnorm_scales,
    fold_batchnorm,
    fold_linear_batchnorm,
    forward_seconds,
    scale_numbers,
)
from makemore.models import deep_mlp, mlp
from makemore.nn import BatchNorm1d, Linear, Sequential, Tanh
from makemore.show.layer_figures import plot_scales


def g(seed=0):
    return torch.Generator().manual_seed(seed)


def _train_a_little(model, steps=30, seed=1):
    """A few SGD steps so that gamma, beta and the running statistics are not trivial."""
    gen = g(seed)
    X = torch.randint(0, 27, (256, 3), generator=gen)
    Y = torch.randint(0, 27, (256,), generator=gen)
    model.train()
    for _ in range(steps):
        ix = torch.randint(0, 256, (32,), generator=gen)
        loss = F.cross_entropy(model(X[ix]), Y[ix])
        for p in model.parameters():
            p.grad = None
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= 0.1 * p.grad
    return X


@pytest.mark.parametrize("build", [
    lambda: deep_mlp(batchnorm=True, gain=1.0, generator=g()),  # the lecture's deep net
    lambda: deep_mlp(batchnorm=True, gain=5 / 3, generator=g()),
    lambda: mlp("batchnorm", generator=g()),  # running std, eps = 0
])
def test_folded_network_matches_eval_mode(build):
    model = build()
    X = _train_a_little(model)
    model.eval()
    with torch.no_grad():
        ref = model(X)
        folded = fold_batchnorm(model)
        out = folded(X)
    assert not any(isinstance(layer, BatchNorm1d) for layer in folded.layers)
    assert sum(isinstance(layer, Linear) for layer in folded.layers) == \
        sum(isinstance(layer, Linear) for layer in model.layers)
    assert all(layer.bias is not None for layer in folded.layers if isinstance(layer, Linear))
    assert (out - ref).abs().max().item() < 1e-4
    # a batch of one gives the same row as the full batch
    with torch.no_grad():
        assert torch.allclose(folded(X[:1]), out[:1], atol=1e-5)


def test_fold_does_not_touch_the_model():
    model = deep_mlp(batchnorm=True, generator=g())
    _train_a_little(model, steps=5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded = fold_batchnorm(model)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # the folded network owns its tensors
    folded.layers[0].weight.data.zero_()
    assert not torch.equal(model.layers[0].weight, folded.layers[0].weight)


def test_fold_linear_with_bias_and_scale_shift():
    lin = Linear(5, 4, generator=g())
    lin.bias = torch.randn(4, generator=g(2))
    bn = BatchNorm1d(4)
    bn.gamma = torch.randn(4, generator=g(3))
    bn.beta = torch.randn(4, generator=g(4))
    bn.running_mean = torch.randn(4, generator=g(5))
    bn.running_var = torch.rand(4, generator=g(6)) + 0.5
    bn.eval()
    x = torch.randn(7, 5, generator=g(7))
    scale, shift = batchnorm_scale_shift(bn)
    assert torch.allclose((lin(x).double() * scale + shift).float(), bn(lin(x)), atol=1e-6)
    assert torch.allclose(fold_linear_batchnorm(lin, bn)(x), bn(lin(x)), atol=1e-6)


def test_batchnorm_without_linear_before_it_raises():
    model = Sequential([Tanh(), BatchNorm1d(4)])
    with pytest.raises(ValueError, match="not after a Linear"):
        fold_batchnorm(model)


def test_network_without_batchnorm_is_copied_unchanged():
    model = deep_mlp(batchnorm=False, generator=g())
    x = torch.randint(0, 27, (16, 3), generator=g(1))
    with torch.no_grad():
        assert torch.equal(fold_batchnorm(model)(x), model(x))


def test_scales_numbers_and_plot():
    import matplotlib

    matplotlib.use("Agg")
    model = deep_mlp(batchnorm=True, generator=g())
    _train_a_little(model, steps=5)
    scales = batchnorm_scales(model)
    assert len(scales) == sum(isinstance(layer, BatchNorm1d) for layer in model.layers)
    assert all((s > 0).all() for s in scales)
    first = next(layer for layer in model.layers if isinstance(layer, BatchNorm1d))
    assert torch.equal(scales[0], batchnorm_scale_shift(first)[0].abs())
    n = scale_numbers(scales)
    assert n["s-out-min"] == scales[-1].min().item()
    assert n["s-hid-max"] == max(s.max().item() for s in scales[:-1])
    with pytest.raises(ValueError, match="BatchNorm layers"):
        scale_numbers(scales[:1])
    ax = plot_scales(scales)
    assert len(ax.lines) == len(scales) and ax.get_yscale() == "log"
    matplotlib.pyplot.close("all")


def test_forward_seconds_is_the_best_of_the_repeats():
    calls = []

    class Slow:
        def __call__(self, x):
            import time

            calls.append(1)
            time.sleep(0.02 if len(calls) == 1 else 0.001)

    t = forward_seconds(Slow(), torch.zeros(1), repeats=3)
    assert len(calls) == 3 and 0.0005 < t < 0.015
