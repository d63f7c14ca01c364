"""Folding BatchNorm into the Linear layer before it, for inference.

In evaluation mode a BatchNorm is no longer a function of the batch: it subtracts
a fixed ``running_mean``, divides by a fixed ``sqrt(running_var + eps)``, then
scales by ``gamma`` and shifts by ``beta``. That is an affine map per feature, and
an affine map after a Linear layer is just another Linear layer::

    y = gamma * (x @ W + b - mean) / sqrt(var + eps) + beta
      = x @ (W * s) + ((b - mean) * s + beta),     s = gamma / sqrt(var + eps)

so the trained network can be rewritten without any BatchNorm: each
``Linear -> BatchNorm`` pair becomes one ``Linear`` with weight ``W * s`` (column
``j`` scaled by ``s[j]``) and bias ``(b - mean) * s + beta``. The folded network
computes the same eval-mode function with one matmul and one add per layer, and a
batch of one example is as good as any other batch.
"""
from __future__ import annotations

import copy

import torch

from ..nn import BatchNorm1d, Linear, Module, Sequential


def batchnorm_scale_shift(bn: BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
    """The eval-mode BatchNorm as ``y = x * scale + shift`` (float64).

    Handles both kinds of running statistics of :class:`makemore.nn.BatchNorm1d`:
    a running variance (``y = gamma * (x - mean) / sqrt(var + eps) + beta``) and
    the lecture's first BatchNorm, which tracks a running std (and with
    ``eps = 0`` divides by it directly).
    """
    gamma = bn.gamma.detach().double()
    beta = bn.beta.detach().double()
    mean = bn.running_mean.detach().double()
    if bn.track_std:
        std = bn.running_std.detach().double()
        denom = std if bn.eps == 0 else torch.sqrt(std**2 + bn.eps)
    else:
        denom = torch.sqrt(bn.running_var.detach().double() + bn.eps)
    scale = gamma / denom
    return scale, beta - mean * scale


def fold_linear_batchnorm(linear: Linear, bn: BatchNorm1d) -> Linear:
    """One :class:`Linear` (with bias) equal to ``bn(linear(x))`` in evaluation mode.

    The arithmetic runs in float64 and is rounded once to the layer's dtype, so the
    folded layer differs from the pair only by float rounding.
    """
    W = linear.weight.detach()
    if bn.gamma.shape[0] != W.shape[1]:
        raise ValueError(f"BatchNorm of {bn.gamma.shape[0]} features cannot follow a "
                         f"Linear with {W.shape[1]} outputs")
    scale, shift = batchnorm_scale_shift(bn)
    b = torch.zeros(W.shape[1], dtype=torch.float64) if linear.bias is None \
        else linear.bias.detach().double()
    folded = Linear(W.shape[0], W.shape[1], bias=True, generator=torch.Generator())
    folded.weight = (W.double() * scale).to(W.dtype).requires_grad_(True)
    folded.bias = (b * scale + shift).to(W.dtype).requires_grad_(True)
    return folded


def fold_batchnorm(model: Sequential) -> Sequential:
    """A copy of ``model`` with every ``Linear -> BatchNorm1d`` pair folded into one
    ``Linear`` with bias; the eval-mode output is unchanged (up to float rounding).

    The result has no BatchNorm left, so it behaves the same in training and
    evaluation mode and needs no running statistics. Layers other than the folded
    pairs (embedding, flatten, tanh, a Linear without a BatchNorm after it) are deep
    copies; ``model`` itself is not modified. A BatchNorm that does not directly
    follow a Linear cannot be folded and raises ``ValueError``.
    """
    layers: list[Module] = []
    src = model.layers
    i = 0
    while i < len(src):
        layer = src[i]
        nxt = src[i + 1] if i + 1 < len(src) else None
        if isinstance(layer, Linear) and isinstance(nxt, BatchNorm1d):
            layers.append(fold_linear_batchnorm(layer, nxt))
            i += 2
            continue
        if isinstance(layer, BatchNorm1d):
            prev = type(src[i - 1]).__name__ if i > 0 else "nothing"
            raise ValueError(f"layer {i} is a BatchNorm1d after {prev}, not after a "
                             f"Linear: there is no weight to fold it into")
        layer = copy.copy(layer)
        layer.out = None
        for name in ("weight", "bias"):
            t = getattr(layer, name, None)
            if isinstance(t, torch.Tensor):
                setattr(layer, name, t.detach().clone().requires_grad_(True))
        layers.append(layer)
        i += 1
    folded = Sequential(layers)
    folded.train(model.training)
    return folded


def batchnorm_scales(model: Sequential) -> list[torch.Tensor]:
    """``|s|`` of every BatchNorm of ``model``, in order: the per-feature factor that
    folding multiplies into the columns of the Linear weight before it."""
    return [batchnorm_scale_shift(layer)[0].abs() for layer in model.layers
            if isinstance(layer, BatchNorm1d)]


def scale_numbers(scales: list[torch.Tensor]) -> dict[str, float]:
    """The range of the factors of the hidden BatchNorms (``s-hid-*``) and of the last
    one, the BatchNorm of the logits (``s-out-*``), for the prose of E02."""
    if len(scales) < 2:
        raise ValueError(f"{len(scales)} BatchNorm layers: need hidden ones and an output one")
    hidden = torch.cat(scales[:-1])
    return {"s-hid-min": hidden.min().item(), "s-hid-max": hidden.max().item(),
            "s-out-min": scales[-1].min().item(), "s-out-max": scales[-1].max().item()}


@torch.no_grad()
def forward_seconds(model: Module, X: torch.Tensor, repeats: int = 5) -> float:
    """The best of ``repeats`` wall-clock times of one forward pass ``model(X)``, in
    seconds (E02: the folded network against the original)."""
    import time

    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        model(X)
        best = min(best, time.perf_counter() - t0)
    return best
