"""One SGD step of a stack of models, its backward pass derived by hand.

The next lecture of the series backpropagates through these layers by hand; this
module does the same for :mod:`makemore.fast`, so that a step is a fixed list of
batched tensor ops (``torch.bmm`` over the ``M`` models of a job) with no
autograd graph to record and no ``vmap`` to trace. Shapes: ``M`` models, a
minibatch of ``B`` examples of ``T`` context characters; a layer maps ``(M, B, n_in)``
to ``(M, B, n_out)``; parameters carry the models dim first (a Linear weight is
``(M, fan_in, fan_out)``).

The gradients, layer by layer (``dy`` is the gradient of the loss w.r.t. a layer's output):

- cross-entropy of the mean over the batch: ``dlogits = (softmax(logits) - onehot(y)) / B``
- Linear ``y = x @ W + b``: ``dW = x^T @ dy``, ``db = sum_B dy``, ``dx = dy @ W^T``
- Tanh ``t = tanh(x)``: ``dx = dy * (1 - t^2)``
- BatchNorm ``y = gamma * xhat + beta`` with ``xhat = (x - mean) / s`` (``s`` the batch's
  std, ``sqrt(var + eps)``; ``var`` divides by ``n = B - 1`` when unbiased, else ``B``):
  ``dgamma = sum_B dy * xhat``, ``dbeta = sum_B dy`` and, since ``mean`` and ``s``
  depend on every row,
  ``dx = gamma / s * (dy - dbeta / B - xhat * dgamma / n)``
- Embedding ``x = C[idx]``: ``dC[i] = sum of dx over the positions where idx == i``

``tests/test_fastgrad.py`` checks every one against autograd in float64.
"""
from __future__ import annotations

import torch


def _linear(x, W, b):
    """``x @ W (+ b)`` for each model: (M, B, fan_in) @ (M, fan_in, fan_out)."""
    return torch.bmm(x, W) if b is None else torch.baddbmm(b.unsqueeze(1), x, W)


def _batchnorm(h, gamma, beta, eps, unbiased, track_std):
    """Training-mode BatchNorm over dim 1. Returns the output, what the backward pass
    needs (xhat, gamma / s) and the batch statistics the running buffers track."""
    # two passes, mean then squared deviations (as eager x.var does; compiled, a one-pass
    # var_mean becomes a slow Welford loop)
    B = h.shape[1]
    mean = h.mean(1, keepdim=True)  # (M, 1, D)
    d = h - mean
    var = (d * d).sum(1, keepdim=True) / (B - 1 if unbiased else B)
    if track_std and eps == 0:
        s = var.sqrt()  # the lecture's first BN divides by x.std(0) itself
        rs = 1 / s
    else:
        rs = (var + eps).rsqrt()
    xhat = d * rs
    out = torch.addcmul(beta.unsqueeze(1), gamma.unsqueeze(1), xhat)
    if track_std:
        stat = var.sqrt()
    else:  # running_var always tracks the unbiased variance
        stat = var if unbiased else var * (B / (B - 1))
    return out, (xhat, gamma.unsqueeze(1) * rs), (mean.squeeze(1), stat.squeeze(1))


def _batchnorm_backward(dy, xhat, gamma_rs, unbiased):
    """``(dx, dgamma, dbeta)`` of :func:`_batchnorm`, from the formula above."""
    B = dy.shape[1]
    dgamma = (dy * xhat).sum(1)  # (M, D)
    dbeta = dy.sum(1)
    n = B - 1 if unbiased else B
    # dy - dbeta / B - xhat * dgamma / n, all (M, B, D), then scaled by gamma / s
    centered = torch.sub(dy, dbeta.unsqueeze(1), alpha=1 / B)
    dx = torch.addcmul(centered, xhat, dgamma.unsqueeze(1), value=-1 / n) * gamma_rs
    return dx, dgamma, dbeta


def loss_and_grads(plan: tuple, params: list[torch.Tensor], buffers: list[torch.Tensor],
                   Xb: torch.Tensor, Yb: torch.Tensor):
    """Forward and backward pass of ``M`` models in training mode: ``params``/``buffers``
    as :mod:`makemore.fast` stacks them (dim 0: models, ``model.parameters()`` order),
    minibatches ``Xb`` (M, B, T), ``Yb`` (M, B). Returns the losses (M,), the
    gradients (like ``params``) and the new BatchNorm running statistics."""
    M, B = Yb.shape
    p = iter(params)
    bufs = iter(buffers)
    new_buffers: list[torch.Tensor] = []
    saved = []  # per layer: what its backward pass needs
    x = Xb
    for kind, *flags in plan:
        if kind == "embedding":
            C = next(p)  # (M, V, E)
            V = C.shape[1]
            # row idx of model m is row m * V + idx of the models' tables stacked
            flat = (Xb + torch.arange(M, device=Xb.device).view(M, 1, 1) * V).view(M, -1)
            x = C.reshape(M * V, -1)[flat]  # (M, B*T, E)
            saved.append((kind, C, flat))
        elif kind == "flatten":
            saved.append((kind, x.shape))
            x = x.reshape(M, B, -1)  # (M, B*T, E) -> (M, B, T*E)
        elif kind == "linear":
            W = next(p)
            b = next(p) if flags[0] else None
            saved.append((kind, x, W, b))
            x = _linear(x, W, b)
        elif kind == "batchnorm":
            eps, momentum, unbiased, track_std = flags
            gamma, beta = next(p), next(p)
            x, ctx, stats = _batchnorm(x, gamma, beta, eps, unbiased, track_std)
            saved.append((kind, *ctx, unbiased))
            for run, batch in zip((next(bufs), next(bufs)), stats):
                new_buffers.append((1 - momentum) * run + momentum * batch)
        elif kind == "tanh":
            x = torch.tanh(x)
            saved.append((kind, x))

    # cross-entropy, mean over the batch: loss and its gradient w.r.t. the logits
    logp = torch.log_softmax(x, -1)  # (M, B, V)
    y = Yb.unsqueeze(-1)
    loss = -logp.gather(-1, y).mean(1).squeeze(-1)  # (M,)
    dx = logp.exp().scatter_add(-1, y, torch.full_like(logp[..., :1], -1.0)) / B

    grads: list[torch.Tensor] = []  # filled back to front, reversed at the end
    for kind, *ctx in reversed(saved):
        if kind == "tanh":
            (t,) = ctx
            dx = dx - dx * t * t
        elif kind == "batchnorm":
            dx, dgamma, dbeta = _batchnorm_backward(dx, *ctx)
            grads += [dbeta, dgamma]
        elif kind == "linear":
            xin, W, b = ctx
            if b is not None:
                grads.append(dx.sum(1))
            grads.append(torch.bmm(xin.transpose(1, 2), dx))
            dx = torch.bmm(dx, W.transpose(1, 2))
        elif kind == "flatten":
            dx = dx.reshape(ctx[0])
        elif kind == "embedding":
            C, flat = ctx
            dC = torch.zeros_like(C).view(-1, C.shape[2])
            dC.index_add_(0, flat.reshape(-1), dx.reshape(-1, C.shape[2]))
            grads.append(dC.view_as(C))
    grads.reverse()
    return loss, grads, new_buffers


def step(plan: tuple, params: list[torch.Tensor], buffers: list[torch.Tensor],
         Xb: torch.Tensor, Yb: torch.Tensor, neg_lr: torch.Tensor, record_ud: bool):
    """One SGD step of :func:`loss_and_grads`, learning rates ``-neg_lr`` (M,). Returns
    ``(new params, new buffers, log10 losses (M,), ud)``, ``ud`` (M, n_params) the
    update:data ratios when ``record_ud``, else None. Nothing is modified in place:
    the step is a function, which is what ``torch.compile`` wants."""
    M = Yb.shape[0]
    loss, grads, new_buffers = loss_and_grads(plan, params, buffers, Xb, Yb)

    # the plain loop's update p += -lr * grad, each model with its own lr
    updates = [g * neg_lr.view(-1, *[1] * (g.dim() - 1)) for g in grads]
    new_params = [q + u for q, u in zip(params, updates)]
    ud = None
    if record_ud:  # the lecture's std(lr * grad) / std(data after the update), per model
        ud = torch.stack([(u.reshape(M, -1).std(1) / q.reshape(M, -1).std(1)).log10()
                          for u, q in zip(updates, new_params)], 1)
    return new_params, new_buffers, loss.log10(), ud
