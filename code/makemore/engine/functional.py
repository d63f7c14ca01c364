"""The forward pass as a pure function of tensors: what the fast trainer compiles.

:mod:`makemore.nn`'s layers hold their tensors and update BatchNorm's running
statistics in place, which suits a reader and the plain loop. A compiler, ``vmap``
and a hand-written backward pass want the opposite: a function of the tensors
passed in that returns new ones. This module reduces a model to its *plan* (each
layer's kind and flags) and runs the same ops as :mod:`makemore.nn`, in the same
order, on tensors given as arguments.

Introduced for the fast trainer of the pre-trained runs (chapter "Reproduction",
section "How the book trains fast"); :mod:`makemore.engine.fast` and
:mod:`makemore.engine.backprop` build on it.
"""
from __future__ import annotations

import torch

from ..nn import (
    BatchNorm1d,
    Embedding,
    Flatten,
    LayerNorm,
    Linear,
    Module,
    Residual,
    Sequential,
    Tanh,
)

# the layers with a functional form, by exact type: a subclass may change the math
LAYER_KINDS = {Embedding: "embedding", Flatten: "flatten", Linear: "linear",
               BatchNorm1d: "batchnorm", Tanh: "tanh", LayerNorm: "layernorm",
               Residual: "residual"}


def layer_plan(model: Sequential | Residual) -> tuple:
    """The model reduced to what its forward pass needs besides tensors: each
    layer's kind and flags (a residual block: the plan of its layers). Equal plans run
    the same code."""
    return _plan(model.layers)


def _plan(layers: list[Module]) -> tuple:
    plan = []
    for layer in layers:
        kind = LAYER_KINDS.get(type(layer))
        if kind is None:
            raise TypeError(f"the fast trainer does not know the layer {type(layer).__name__}; "
                            f"train this model with makemore.train.train")
        if kind == "linear":
            plan.append((kind, layer.bias is not None))
        elif kind == "batchnorm":
            plan.append((kind, layer.eps, layer.momentum, layer.unbiased, layer.track_std))
        elif kind == "layernorm":
            plan.append((kind, layer.eps))
        elif kind == "residual":
            plan.append((kind, _plan(layer.layers)))
        else:
            plan.append((kind,))
    return tuple(plan)


def bn_buffers(model: Sequential) -> list[torch.Tensor]:
    """The BatchNorm running statistics, in layer order (a residual block holds none)."""
    return [t for layer in model.layers for t in layer.buffers().values()]


def batchnorm_forward(x, gamma, beta, running_mean, running_stat, eps, momentum, unbiased,
                      track_std, dim: int = 0):
    """:class:`makemore.nn.BatchNorm1d` in training mode, op for op (and in its order),
    over the batch dim ``dim``; ``gamma`` and ``beta`` shaped to broadcast against
    ``x``. Returns the output, the new running statistics (mean, then var or std)
    and, for a backward pass written by hand (:mod:`makemore.engine.backprop`), the
    divisor ``s`` and ``xhat = (x - mean) / s``."""
    xmean = x.mean(dim, keepdim=True)
    if track_std:
        xstd = x.std(dim, keepdim=True, unbiased=unbiased)
        a = x - xmean
        s = xstd if eps == 0 else torch.sqrt(xstd**2 + eps)
        xhat = a / s
        stat = xstd
    else:
        xvar = x.var(dim, keepdim=True, unbiased=unbiased)
        a = x - xmean
        s = torch.sqrt(xvar + eps)
        xhat = a / s
        n = x.shape[dim]
        stat = xvar if unbiased else xvar * n / (n - 1)  # running_var is always unbiased
    out = gamma * xhat + beta
    # the running statistics are not trained by the gradient: detach them
    m = momentum
    new_mean = (1 - m) * running_mean + m * xmean.detach().squeeze(dim)
    new_stat = (1 - m) * running_stat + m * stat.detach().squeeze(dim)
    return out, [new_mean, new_stat], (s, xhat)


def layernorm_forward(x, gamma, beta, eps, dim: int = -1):
    """:class:`makemore.nn.LayerNorm`, op for op, over the features dim ``dim``;
    ``gamma`` and ``beta`` shaped to broadcast against ``x``. Returns the output and,
    for :mod:`makemore.engine.backprop`, the divisor ``s`` and ``xhat = (x - mean) / s``."""
    xmean = x.mean(dim, keepdim=True)
    xvar = x.var(dim, keepdim=True, unbiased=False)
    s = torch.sqrt(xvar + eps)
    xhat = (x - xmean) / s
    return gamma * xhat + beta, (s, xhat)


def functional_forward(plan: tuple, params: list[torch.Tensor], buffers: list[torch.Tensor],
                       x: torch.Tensor, features_first: bool = False
                       ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run the layers of ``plan`` in training mode on ``x`` with the given tensors
    (in ``model.parameters()`` and BatchNorm-buffer order). Returns the logits
    and the updated BatchNorm buffers; nothing is modified in place.

    ``features_first``: from the Flatten layer on, carry the activations transposed,
    (features, batch) instead of (batch, features): ``W.T @ x`` for ``x @ W``, BatchNorm
    over dim 1. The same numbers up to rounding (the compiled trainer's choice: see
    :func:`makemore.engine.fast._compiled_step`); the logits come back (batch, vocab) either way."""
    params, buffers = iter(params), iter(buffers)
    new_buffers: list[torch.Tensor] = []
    x, transposed = _forward(plan, params, buffers, new_buffers, x, features_first, False)
    return (x.mT if transposed else x), new_buffers


def _forward(plan: tuple, params, buffers, new_buffers: list[torch.Tensor], x: torch.Tensor,
             features_first: bool, transposed: bool) -> tuple[torch.Tensor, bool]:
    """The layers of ``plan`` on ``x``, drawing tensors from the iterators ``params`` and
    ``buffers`` and appending BatchNorm's new running statistics to ``new_buffers``;
    ``transposed``: is x (features, batch)? Returns the output and whether it is."""
    for kind, *flags in plan:
        if kind == "embedding":
            x = next(params)[x]
        elif kind == "flatten":
            x = x.view(x.shape[0], -1)
            if features_first:
                x, transposed = x.mT, True
        elif kind == "linear":
            W = next(params)
            x = W.mT @ x if transposed else x @ W
            if flags[0]:  # has a bias
                b = next(params)
                x = x + (b[:, None] if transposed else b)
        elif kind == "batchnorm":
            gamma, beta = next(params), next(params)
            if transposed:  # one (gamma, beta) per row of x
                gamma, beta = gamma[:, None], beta[:, None]
            x, stats, _ = batchnorm_forward(x, gamma, beta, next(buffers), next(buffers),
                                            *flags, dim=1 if transposed else 0)
            new_buffers += stats
        elif kind == "layernorm":  # over the features: dim 0 of (features, batch)
            gamma, beta = next(params), next(params)
            if transposed:
                gamma, beta = gamma[:, None], beta[:, None]
            x, _ = layernorm_forward(x, gamma, beta, flags[0], dim=0 if transposed else -1)
        elif kind == "residual":  # x + the block's layers on x
            h, _ = _forward(flags[0], params, buffers, new_buffers, x, features_first,
                            transposed)
            x = x + h
        elif kind == "tanh":
            x = torch.tanh(x)
    return x, transposed


def same_architecture(a: Sequential, b: Sequential) -> bool:
    """Can ``a`` and ``b`` train in one vmapped batch? (Same layers and flags, same shapes.)"""
    def shapes(model):
        return [t.shape for t in model.parameters() + bn_buffers(model)]
    return layer_plan(a) == layer_plan(b) and shapes(a) == shapes(b)
