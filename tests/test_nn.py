"""The teaching layers against torch.nn and against finite differences."""
import math

import pytest
import torch
import torch.nn.functional as F
from makemore.nn import BatchNorm1d, Embedding, Flatten, Linear, Sequential, Tanh


def g(seed=0):
    return torch.Generator().manual_seed(seed)


# --- Linear --------------------------------------------------------------------------

def test_linear_forward_is_torch_linear():
    lin = Linear(30, 20, generator=g())
    lin.bias = torch.randn(20, generator=g(1))
    x = torch.randn(8, 30, generator=g(2))
    ref = F.linear(x, lin.weight.T, lin.bias)
    assert torch.allclose(lin(x), ref, atol=1e-6)
    assert lin.out is not None and lin.parameters()[1] is lin.bias
    assert len(Linear(3, 4, bias=False).parameters()) == 1


@pytest.mark.parametrize("fan_in", [30, 100, 1000])
def test_linear_init_statistics(fan_in):
    """Ours is N(0, 1/fan_in), i.e. torch's kaiming_normal_ with gain 1. torch.nn.Linear's
    own default is U(-1/sqrt(fan_in), 1/sqrt(fan_in)): the same scaling law, with a
    standard deviation sqrt(3) times smaller."""
    fan_out = 400
    ours = Linear(fan_in, fan_out, generator=g()).weight
    theirs = torch.nn.Linear(fan_in, fan_out).weight
    kaiming = torch.nn.init.kaiming_normal_(torch.empty(fan_out, fan_in), nonlinearity="linear")
    assert ours.mean().abs() < 0.01
    assert ours.std().item() == pytest.approx(1 / math.sqrt(fan_in), rel=0.03)
    assert ours.std().item() == pytest.approx(kaiming.std().item(), rel=0.05)
    assert ours.std().item() == pytest.approx(math.sqrt(3) * theirs.std().item(), rel=0.05)


def test_linear_preserves_unit_variance():
    x = torch.randn(2000, 300, generator=g(3))
    y = Linear(300, 300, generator=g(4))(x)
    assert y.std().item() == pytest.approx(1.0, rel=0.05)


# --- BatchNorm1d against torch.nn.BatchNorm1d ----------------------------------------

def pair(dim=7, momentum=0.1, eps=1e-5):
    ours = BatchNorm1d(dim, eps=eps, momentum=momentum)
    ours.gamma = torch.randn(dim, generator=g(5), dtype=torch.float64).requires_grad_()
    ours.beta = torch.randn(dim, generator=g(6), dtype=torch.float64).requires_grad_()
    ours.running_mean = ours.running_mean.double()
    ours.running_var = ours.running_var.double()
    ref = torch.nn.BatchNorm1d(dim, eps=eps, momentum=momentum).double()
    with torch.no_grad():
        ref.weight.copy_(ours.gamma)
        ref.bias.copy_(ours.beta)
    return ours, ref


def test_batchnorm_train_forward_backward_and_running_stats_match_torch():
    ours, ref = pair()
    for step in range(5):  # several steps: the running statistics accumulate
        x = (torch.randn(32, 7, generator=g(10 + step), dtype=torch.float64) * 3 + 1)
        x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
        y1, y2 = ours(x1), ref(x2)
        assert torch.allclose(y1, y2, atol=1e-12)
        w = torch.randn(32, 7, generator=g(20 + step), dtype=torch.float64)
        (y1 * w).sum().backward()
        (y2 * w).sum().backward()
        assert torch.allclose(x1.grad, x2.grad, atol=1e-12)
        assert torch.allclose(ours.running_mean, ref.running_mean, atol=1e-12)
        assert torch.allclose(ours.running_var, ref.running_var, atol=1e-12)
    assert torch.allclose(ours.gamma.grad, ref.weight.grad, atol=1e-10)
    assert torch.allclose(ours.beta.grad, ref.bias.grad, atol=1e-10)


def test_batchnorm_eval_uses_running_stats_like_torch():
    ours, ref = pair()
    for step in range(3):
        x = torch.randn(16, 7, generator=g(30 + step), dtype=torch.float64) * 2 - 1
        ours(x), ref(x)
    ours.eval(), ref.eval()
    x = torch.randn(5, 7, generator=g(40), dtype=torch.float64)
    assert torch.allclose(ours(x), ref(x), atol=1e-12)
    before = ours.running_mean.clone()
    ours(x)
    assert torch.equal(before, ours.running_mean)  # eval mode does not update


def test_lecture_variant_normalizes_with_unbiased_variance():
    x = torch.randn(32, 5, generator=g(7), dtype=torch.float64)
    bn = BatchNorm1d(5, eps=0.0, unbiased=True)
    y = bn(x)
    # unit *unbiased* variance per feature, so the biased one is (n-1)/n
    assert torch.allclose(y.var(0, unbiased=True), torch.ones(5, dtype=torch.float64))
    torch_like = BatchNorm1d(5, eps=0.0)(x)
    assert torch.allclose(torch_like.var(0, unbiased=False), torch.ones(5, dtype=torch.float64))
    assert not torch.allclose(y, torch_like)


def test_lecture_mlp_variant_tracks_running_std():
    bn = BatchNorm1d(4, eps=0.0, momentum=0.001, unbiased=True, track_std=True)
    x = torch.randn(32, 4, generator=g(8)) * 2
    y = bn(x)
    ref = (x - x.mean(0, keepdim=True)) / x.std(0, keepdim=True)  # the lecture's line
    assert torch.allclose(y, ref, atol=1e-6)
    assert torch.allclose(bn.running_std, 0.999 * torch.ones(4) + 0.001 * x.std(0), atol=1e-7)
    assert set(bn.buffers()) == {"running_mean", "running_std"}


@pytest.mark.parametrize("unbiased,track_std,eps", [(False, False, 1e-5), (True, False, 1e-5),
                                                     (True, True, 0.0)])
def test_batchnorm_gradcheck(unbiased, track_std, eps):
    bn = BatchNorm1d(3, eps=eps, unbiased=unbiased, track_std=track_std)
    gamma = torch.randn(3, dtype=torch.float64, generator=g(9), requires_grad=True)
    beta = torch.randn(3, dtype=torch.float64, generator=g(10), requires_grad=True)
    x = torch.randn(6, 3, dtype=torch.float64, generator=g(11), requires_grad=True)

    def f(x, gamma, beta):
        bn.gamma, bn.beta = gamma, beta
        return bn(x)

    assert torch.autograd.gradcheck(f, (x, gamma, beta))


def test_linear_tanh_gradcheck():
    lin = Linear(4, 3, generator=g())
    x = torch.randn(5, 4, dtype=torch.float64, generator=g(12), requires_grad=True)
    w = lin.weight.double().requires_grad_()

    def f(x, w):
        lin.weight = w
        return Tanh()(lin(x))

    lin.bias = lin.bias.double()
    assert torch.autograd.gradcheck(f, (x, w))


# --- containers ----------------------------------------------------------------------

def test_sequential_state_dict_round_trip_and_mismatch():
    def net(seed):
        return Sequential([Embedding(27, 4, generator=g(seed)), Flatten(),
                           Linear(12, 8, generator=g(seed)), BatchNorm1d(8), Tanh()])

    a, b = net(0), net(1)
    assert not torch.equal(a.layers[0].weight, b.layers[0].weight)
    b.load_state_dict(a.state_dict())
    x = torch.randint(0, 27, (10, 3), generator=g(2))
    assert torch.equal(a.eval()(x), b.eval()(x))
    with pytest.raises(ValueError, match="missing"):
        Sequential([Embedding(27, 4)]).load_state_dict(a.state_dict())


def test_train_eval_propagates():
    m = Sequential([Linear(2, 2), BatchNorm1d(2), Tanh()])
    m.eval()
    assert not any(layer.training for layer in m.layers)
    m.train()
    assert all(layer.training for layer in m.layers)
