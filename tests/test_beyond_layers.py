"""The chapter "Beyond BatchNorm"'s layers and optimizer against torch's own.

LayerNorm against ``torch.nn.LayerNorm`` and Adam against ``torch.optim.Adam`` in
float64 (as BatchNorm1d against ``torch.nn.BatchNorm1d`` in test_nn.py), the residual
block's forward, gradient and state dict, and the deep net's new variants: the same
random draws as the lecture's network, the combinations it refuses.
"""
import pytest
import torch
from makemore import models, train
from makemore.nn import BatchNorm1d, LayerNorm, Linear, Residual, Tanh


def g(seed=0):
    return torch.Generator().manual_seed(seed)


def ln_pair(dim=7, eps=1e-5):
    ours = LayerNorm(dim, eps=eps)
    ours.gamma = torch.randn(dim, generator=g(5), dtype=torch.float64).requires_grad_()
    ours.beta = torch.randn(dim, generator=g(6), dtype=torch.float64).requires_grad_()
    ref = torch.nn.LayerNorm(dim, eps=eps).double()
    with torch.no_grad():
        ref.weight.copy_(ours.gamma)
        ref.bias.copy_(ours.beta)
    return ours, ref


@pytest.mark.parametrize("eps", [1e-5, 1e-3])
def test_layernorm_forward_backward_match_torch(eps):
    ours, ref = ln_pair(eps=eps)
    x = torch.randn(32, 7, generator=g(10), dtype=torch.float64) * 3 + 1
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y1, y2 = ours(x1), ref(x2)
    assert torch.allclose(y1, y2, atol=1e-12)
    w = torch.randn(32, 7, generator=g(20), dtype=torch.float64)
    (y1 * w).sum().backward()
    (y2 * w).sum().backward()
    assert torch.allclose(x1.grad, x2.grad, atol=1e-12)
    assert torch.allclose(ours.gamma.grad, ref.weight.grad, atol=1e-10)
    assert torch.allclose(ours.beta.grad, ref.bias.grad, atol=1e-10)


def test_layernorm_gradcheck():
    ours, _ = ln_pair(dim=5)
    x = torch.randn(4, 5, generator=g(1), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, gm, bt: _ln(ours, x, gm, bt),
                                    (x, ours.gamma, ours.beta))


def _ln(layer, x, gamma, beta):
    layer.gamma, layer.beta = gamma, beta
    return layer(x)


def test_layernorm_acts_on_each_example_alone():
    """No statistic over the batch: a row's output is the same in any batch, a batch of
    one included, in training and in evaluation mode; and there are no buffers."""
    ln, _ = ln_pair()
    x = torch.randn(32, 7, generator=g(2), dtype=torch.float64)
    full = ln(x)
    one = ln(x[3:4])
    assert torch.equal(one, full[3:4])
    assert torch.equal(ln.eval()(x), full) and ln.buffers() == {}
    # each row normalized to mean 0 and (biased) variance 1 before gamma and beta
    plain = LayerNorm(7)
    y = plain(x.float())
    assert torch.allclose(y.mean(1), torch.zeros(32), atol=1e-6)
    assert torch.allclose(y.var(1, unbiased=False), torch.ones(32), atol=1e-4)


def test_residual_block_adds_its_input_and_its_gradient():
    lin = Linear(6, 6, generator=g(3))
    for p in lin.parameters():
        p.requires_grad_(True)
    block = Residual([lin, Tanh()])
    x = torch.randn(5, 6, generator=g(4), requires_grad=True)
    y = block(x)
    assert torch.equal(y, x + torch.tanh(x @ lin.weight + lin.bias))
    assert block.parameters() == lin.parameters()
    y.sum().backward()
    # d/dx (x + tanh(x W + b)) = 1 + (1 - t^2) W^T: the identity path's 1 is always there
    t = torch.tanh(x @ lin.weight + lin.bias).detach()
    assert torch.allclose(x.grad, 1 + (1 - t**2) @ lin.weight.detach().T, atol=1e-6)
    assert block.train(False).training is False and lin.training is False


def test_residual_refuses_running_statistics():
    with pytest.raises(TypeError, match="BatchNorm1d"):
        Residual([Linear(4, 4), BatchNorm1d(4)])
    with pytest.raises(TypeError, match="Residual"):
        Residual([Residual([Tanh()])])


@pytest.mark.parametrize("kw", [dict(layernorm=True), dict(residual=True),
                                dict(layernorm=True, residual=True, n_layers=8)])
def test_deep_variants_draw_the_lectures_weights(kw):
    """Same seed, same weights as the network without LayerNorm or residual blocks."""
    n = kw.get("n_layers", 6)
    plain = models.deep_mlp(batchnorm=False, gain=1.0, n_layers=n, generator=g(7))
    other = models.deep_mlp(batchnorm=False, gain=1.0, generator=g(7), **kw)
    weights = [p for p in other.parameters() if p.ndim == 2]
    assert len(weights) == len([p for p in plain.parameters() if p.ndim == 2]) == n + 1
    for a, b in zip(weights, (p for p in plain.parameters() if p.ndim == 2), strict=False):
        if a.shape[1] == 27 and not kw.get("layernorm"):
            assert torch.equal(a, b)  # the last weight, quieted by 0.1 in both
        elif a.shape[1] != 27:
            assert torch.equal(a, b)
    if kw.get("residual"):
        blocks = [layer for layer in other.layers if isinstance(layer, Residual)]
        assert len(blocks) == n - 2
    if kw.get("layernorm"):
        assert isinstance(other.layers[-1], LayerNorm)
        assert torch.allclose(other.layers[-1].gamma, torch.full((27,), 0.1))


def test_deep_variants_refuse_batchnorm_with_them():
    with pytest.raises(ValueError, match="not both"):
        models.deep_mlp(batchnorm=True, layernorm=True)
    with pytest.raises(ValueError, match="residual"):
        models.deep_mlp(batchnorm=True, residual=True)


def test_residual_state_dict_round_trip():
    a = models.deep_mlp(batchnorm=False, layernorm=True, residual=True, generator=g(1))
    b = models.deep_mlp(batchnorm=False, layernorm=True, residual=True, generator=g(2))
    sa = a.state_dict()
    assert "5.0.weight" in sa and "5.1.gamma" in sa  # block 5: its Linear, its LayerNorm
    b.load_state_dict(sa)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=False))
    with pytest.raises(ValueError, match="another configuration"):
        models.deep_mlp(batchnorm=False, generator=g(1)).load_state_dict(sa)


def test_adam_matches_torch_optim_adam():
    """train.adam_updates, five steps on float64 tensors, against torch.optim.Adam."""
    ours = [torch.randn(4, 3, generator=g(1), dtype=torch.float64), torch.randn(3, generator=g(2),
                                                                             dtype=torch.float64)]
    ref = [p.clone().requires_grad_() for p in ours]
    ours = [p.requires_grad_() for p in ours]
    opt = torch.optim.Adam(ref, lr=0.01)
    moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in ours]
    for t in range(1, 6):
        grads = [torch.randn(p.shape, generator=g(10 + t), dtype=torch.float64) for p in ours]
        for p, q, gr in zip(ours, ref, grads, strict=False):
            p.grad, q.grad = gr.clone(), gr.clone()
        before = [p.detach().clone() for p in ours]
        updates = train.adam_updates(ours, moments, t, 0.01)
        opt.step()
        for p, q, b, u in zip(ours, ref, before, updates, strict=False):
            assert torch.allclose(p, q, rtol=0, atol=1e-14)
            assert torch.allclose(p - b, u, rtol=0, atol=1e-15)  # the update as applied
    # the first step is lr * sign(grad) (up to eps): its size does not follow the gradient's
    p = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    p.grad = torch.tensor([1e-3, -2.0, 5.0, -1e-4, 3.0], dtype=torch.float64)
    moments = [(torch.zeros(5, dtype=torch.float64), torch.zeros(5, dtype=torch.float64))]
    (u,) = train.adam_updates([p], moments, 1, 0.1)
    assert torch.allclose(u, -0.1 * p.grad.sign(), atol=1e-5)


def test_train_with_adam_records_the_applied_update(splits):
    gen = models.new_generator()
    model = models.deep_mlp(batchnorm=True, gain=1.0, generator=gen)
    before = [p.detach().clone() for p in model.parameters()]
    h = train.train(model, splits.Xtr, splits.Ytr, 1, lr=0.003, generator=gen,
                    record_ud=True, optimizer="adam", progress=False)
    for j, (p, b) in enumerate(zip(model.parameters(), before, strict=False)):
        want = ((p.detach() - b).std() / p.detach().std()).log10().item()
        assert h.ud[0, j].item() == pytest.approx(want, abs=1e-4)
    # first step: each entry moves by lr * |g| / (|g| + eps), lr unless its gradient is tiny
    moved = (model.parameters()[1].detach() - before[1]).abs() / 0.003  # W1
    assert moved.max() <= 1 + 1e-4 and moved.median() == pytest.approx(1, abs=1e-3)
    with pytest.raises(ValueError, match="adam"):
        train.train(model, splits.Xtr, splits.Ytr, 1, generator=gen, optimizer="rmsprop")


def test_sgd_is_unchanged_by_the_optimizer_switch(splits):
    """optimizer='sgd' is the lecture's loop: the same bits as before the switch."""
    runs = []
    for kw in ({}, {"optimizer": "sgd"}):
        gen = models.new_generator()
        model = models.deep_mlp(batchnorm=True, generator=gen)
        runs.append(train.train(model, splits.Xtr, splits.Ytr, 20, generator=gen,
                                record_ud=True, progress=False, **kw))
    assert torch.equal(runs[0].lossi, runs[1].lossi) and torch.equal(runs[0].ud, runs[1].ud)
