"""makemore.fastgrad's hand-derived backward pass against autograd, in float64.

Every layer kind and flag the book uses (and the BatchNorm flavours it leaves out),
two different models stacked in one call: each model's loss, gradients and new
BatchNorm running statistics must equal what the teaching layers and autograd give.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from makemore import fast, fastgrad, models
from test_fast import BUILDERS


def float64(model):
    """The model in double precision, so that only real differences show."""
    for layer in model.layers:
        for name in ("weight", "bias", "gamma", "beta", *layer.buffers()):
            t = getattr(layer, name, None)
            if isinstance(t, torch.Tensor):
                setattr(layer, name, t.detach().double().requires_grad_(name in (
                    "weight", "bias", "gamma", "beta")))
    return model


@pytest.mark.parametrize("name", list(BUILDERS))
def test_loss_and_grads_equal_autograd(name):
    gens = [models.new_generator(seed) for seed in (1, 2)]
    nets = [float64(BUILDERS[name](g)) for g in gens]
    g = torch.Generator().manual_seed(0)
    Xb = torch.randint(0, 27, (2, 32, 3), generator=g)  # (M, B, T)
    Yb = torch.randint(0, 27, (2, 32), generator=g)
    params = [torch.stack(ts).detach() for ts in zip(*[m.parameters() for m in nets])]
    buffers = [torch.stack(ts) for ts in zip(*[fast._buffers(m) for m in nets])]

    loss, grads, new_buffers = fastgrad.loss_and_grads(fast._plan(nets[0]), params, buffers,
                                                       Xb, Yb)
    for m, net in enumerate(nets):
        want = F.cross_entropy(net(Xb[m]), Yb[m])  # also updates the running statistics
        want_grads = torch.autograd.grad(want, net.parameters())
        torch.testing.assert_close(loss[m], want.detach(), rtol=1e-12, atol=1e-12)
        assert len(grads) == len(want_grads)
        for got, ref in zip(grads, want_grads):
            assert got.shape[1:] == ref.shape
            torch.testing.assert_close(got[m], ref, rtol=1e-10, atol=1e-12)
        for got, ref in zip(new_buffers, fast._buffers(net)):
            torch.testing.assert_close(got[m], ref, rtol=1e-12, atol=1e-14)


def test_step_is_sgd_with_each_models_lr():
    """step = loss_and_grads, then p + (-lr_m) * grad for model m; ud and log10 loss."""
    nets = [float64(models.deep_mlp(generator=models.new_generator(s))) for s in (1, 2)]
    plan = fast._plan(nets[0])
    params = [torch.stack(ts).detach() for ts in zip(*[m.parameters() for m in nets])]
    buffers = [torch.stack(ts) for ts in zip(*[fast._buffers(m) for m in nets])]
    Xb = torch.randint(0, 27, (2, 32, 3), generator=torch.Generator().manual_seed(0))
    Yb = torch.randint(0, 27, (2, 32), generator=torch.Generator().manual_seed(1))
    neg_lr = torch.tensor([-0.1, -0.2], dtype=torch.float64)
    loss, grads, _ = fastgrad.loss_and_grads(plan, params, buffers, Xb, Yb)
    new, _, log_loss, ud = fastgrad.step(plan, params, buffers, Xb, Yb, neg_lr, True)
    torch.testing.assert_close(log_loss, loss.log10())
    for m in range(2):
        for p, g, q in zip(params, grads, new):
            torch.testing.assert_close(q[m], p[m] + neg_lr[m] * g[m])
        want_ud = torch.stack([((neg_lr[m] * g[m]).std() / q[m].std()).log10()
                               for g, q in zip(grads, new)])
        torch.testing.assert_close(ud[m], want_ud)
    assert fastgrad.step(plan, params, buffers, Xb, Yb, neg_lr, False)[3] is None
