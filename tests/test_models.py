"""The lecture's configurations: parameter counts and the exact initial weights."""
import math

import pytest
import torch
import torch.nn.functional as F
from makemore import models
from makemore.nn import BatchNorm1d, Linear, Tanh


def lecture_mlp_tensors(init):
    """The lecture's cells, typed out: the weights its numbers come from."""
    g = torch.Generator().manual_seed(2147483647)
    C = torch.randn((27, 10), generator=g)
    W1 = torch.randn((30, 200), generator=g)
    b1 = None if init == "batchnorm" else torch.randn(200, generator=g)
    W2 = torch.randn((200, 27), generator=g)
    b2 = torch.randn(27, generator=g)
    if init != "original":
        W2, b2 = W2 * 0.01, b2 * 0
    if init == "fix_tanh":
        W1, b1 = W1 * 0.2, b1 * 0.01
    if init in ("kaiming", "batchnorm", "batchnorm_b1"):
        W1 = W1 * (5 / 3) / 30**0.5
        b1 = b1 * 0.01 if b1 is not None else None
    return [t for t in (C, W1, b1, W2, b2) if t is not None], g


@pytest.mark.parametrize("init", models.MLP_INITS)
def test_mlp_weights_are_the_lectures(init):
    want, g_lecture = lecture_mlp_tensors(init)
    g = models.new_generator()
    m = models.mlp(init, generator=g)
    got = m.parameters()
    if init in models.MLP_BATCHNORM_INITS:  # gamma/beta of BatchNorm sit between W1 and W2
        got = got[:-4] + got[-2:]
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert torch.equal(a.detach(), b)
    # the generator continues where the lecture's does (the minibatch stream)
    assert torch.equal(torch.randint(0, 10, (5,), generator=g),
                       torch.randint(0, 10, (5,), generator=g_lecture))


def test_parameter_counts():
    assert models.num_params(models.mlp("original")) == 11897
    assert models.num_params(models.mlp("batchnorm")) == 12097
    # the video's count while the BatchNorm MLP still had b1: the loss log's row
    assert models.num_params(models.mlp("batchnorm_b1")) == 12297
    assert models.num_params(models.deep_mlp(batchnorm=True)) == 47024
    assert models.num_params(models.deep_mlp(batchnorm=False)) == 46497


def test_unknown_init_is_a_clear_error():
    with pytest.raises(ValueError, match="choose one of"):
        models.mlp("xavier")


def test_initial_loss_near_uniform_after_the_softmax_fix(splits):
    x, y = splits.Xtr[:2000], splits.Ytr[:2000]
    expected = -math.log(1 / 27)
    bad = F.cross_entropy(models.mlp("original")(x), y).item()
    good = F.cross_entropy(models.mlp("fix_softmax")(x), y).item()
    assert bad > 10  # confidently wrong: the lecture's 27.9 at step 0
    assert abs(good - expected) < 0.05


def test_deep_mlp_structure_and_gain():
    m = models.deep_mlp(batchnorm=True, gain=1.0)
    kinds = [type(layer).__name__ for layer in m.layers]
    assert kinds[:5] == ["Embedding", "Flatten", "Linear", "BatchNorm1d", "Tanh"]
    assert kinds[-2:] == ["Linear", "BatchNorm1d"] and kinds.count("Tanh") == 5
    assert torch.allclose(m.layers[-1].gamma, torch.full((27,), 0.1))
    # gain applies to every Linear but the last layer, i.e. including the output
    # Linear when BatchNorm is last (as in the lecture)
    a = models.deep_mlp(batchnorm=True, gain=3.0)
    for la, lb in zip(a.layers, m.layers):
        if isinstance(la, Linear):
            assert torch.allclose(la.weight, 3 * lb.weight)
    c = models.deep_mlp(batchnorm=False, gain=3.0)
    d = models.deep_mlp(batchnorm=False, gain=1.0)
    lins = [(x, y) for x, y in zip(c.layers, d.layers) if isinstance(x, Linear)]
    for x, y in lins[:-1]:
        assert torch.allclose(x.weight, 3 * y.weight)
    assert torch.allclose(lins[-1][0].weight, lins[-1][1].weight)  # 0.1 only
    assert not any(isinstance(layer, BatchNorm1d) for layer in c.layers)
    assert not any(isinstance(layer, Tanh) for layer in models.deep_mlp(False, tanh=False).layers)
