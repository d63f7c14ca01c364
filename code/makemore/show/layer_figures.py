"""Figures of what single layers do: a Linear layer's initial weights (ours next to
``torch.nn``'s), parameter counts per block, and BatchNorm's statistics -- the jitter of
one example across batches, running against full-set statistics, and a normalized
Linear layer across weight scales.

Each function draws one figure of the chapters "BatchNorm" and "PyTorch-ifying the
code" from numbers the chapter computed in its visible cells, and returns it (a cell
``fig = layer_figures.jitter(...)`` shows it).
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from .. import nn
from ..analysis.stats import LinearStats, layer_blocks
from .plots import PALETTE, layer_color, use_style

PARAM_KINDS = ("weights", "biases", "BatchNorm")


def init_histograms(ours: torch.Tensor, theirs: torch.Tensor) -> Figure:
    """Density histograms of two ``(fan_in, fan_out)`` weight matrices: ours,
    ``N(0, 1/fan_in)``, and ``torch.nn.Linear``'s default, ``U(+-1/sqrt(fan_in))``
    (dashed lines at the bounds). Chapter "PyTorch-ifying the code"."""
    use_style()
    fan_in = ours.shape[0]
    fig, ax = plt.subplots(figsize=(9, 3.2), layout="constrained")
    bins = torch.linspace(-0.45, 0.45, 91).tolist()
    ax.hist(ours.detach().flatten().tolist(), bins=bins, density=True, alpha=0.6,
            color=layer_color(1), label=r"ours: $\mathcal{N}(0, 1/\mathrm{fan\_in})$")
    ax.hist(theirs.detach().flatten().tolist(), bins=bins, density=True, alpha=0.6,
            color=layer_color(2), label=r"torch.nn.Linear: $U(\pm 1/\sqrt{\mathrm{fan\_in}})$")
    for x in (-fan_in**-0.5, fan_in**-0.5):
        ax.axvline(x, color="black", linestyle="--", linewidth=0.8)
    ax.set_xlabel("weight")
    ax.set_ylabel("density")
    ax.legend()
    return fig


def params_by_block(model: nn.Sequential) -> dict[int, dict[str, int]]:
    """Parameter counts per block -- block 0 the embedding, block k the k-th Linear with
    what follows it -- split into weights, biases and BatchNorm's gamma/beta.
    Chapter "PyTorch-ifying the code"."""
    counts: dict[int, dict[str, int]] = {}
    for layer, block in zip(model.layers, layer_blocks(model)):
        c = counts.setdefault(block, dict.fromkeys(PARAM_KINDS, 0))
        if isinstance(layer, nn.BatchNorm1d):
            c["BatchNorm"] += layer.gamma.nelement() + layer.beta.nelement()
        elif isinstance(layer, (nn.Linear, nn.Embedding)):
            c["weights"] += layer.weight.nelement()
            if getattr(layer, "bias", None) is not None:
                c["biases"] += layer.bias.nelement()
    return counts


def params_by_block_bars(with_bn: nn.Sequential, without_bn: nn.Sequential) -> Figure:
    """Stacked bars of :func:`params_by_block` for two versions of one network, side by
    side per block (the second hatched), each bar labelled with its total."""
    use_style()
    fig, ax = plt.subplots(figsize=(9, 3.5), layout="constrained")
    width = 0.38
    colors = dict(zip(PARAM_KINDS, PALETTE))
    top = 0
    for offset, model, hatch in ((-width / 2, with_bn, None), (width / 2, without_bn, "//")):
        counts = params_by_block(model)
        blocks = sorted(counts)
        bottom = [0] * len(blocks)
        for kind, color in colors.items():
            vals = [counts[b][kind] for b in blocks]
            ax.bar([b + offset for b in blocks], vals, width * 0.95, bottom=bottom,
                   color=color, label=kind if hatch is None else None, hatch=hatch,
                   edgecolor="white")
            bottom = [b + v for b, v in zip(bottom, vals)]
        for b, total in zip(blocks, bottom):
            ax.text(b + offset, total + 150, f"{total:,}", ha="center", va="bottom", fontsize=8)
        top = max(top, *bottom)
    n_blocks = len(blocks)  # the same blocks with and without BatchNorm
    ax.set_xticks(range(n_blocks), ["C"] + [f"Linear {k}" for k in range(1, n_blocks)])
    ax.set_ylabel("parameters")
    ax.set_ylim(0, top * 1.15)  # room for the totals
    ax.set_title("with BatchNorm (plain) and without (hatched)")
    ax.legend(loc="upper right")
    return fig


def jitter(xhat: torch.Tensor, xhat_eval: torch.Tensor, neurons: Sequence[int] = (0, 1, 2, 3)
           ) -> Figure:
    """Histograms of one example's standardized pre-activation over many batches,
    ``xhat`` of shape ``(batches, neurons)``, for a few neurons, with the value that
    evaluation mode gives it (``xhat_eval``, black line). Chapter "BatchNorm"."""
    use_style()
    fig, axs = plt.subplots(1, len(neurons), figsize=(9, 2.6), layout="constrained",
                            sharey=True)
    for ax, j in zip(axs, neurons):
        ax.hist(xhat[:, j].tolist(), bins=40, color=layer_color(1))
        ax.axvline(xhat_eval[j].item(), color="black", linewidth=1.5)
        ax.set_title(f"neuron {j}")
        ax.set_xlabel(r"$\hat x$ of example 0")
    axs[0].set_ylabel("batches")
    return fig


def running_vs_full(full_mean: torch.Tensor, full_std: torch.Tensor,
                    running_mean: torch.Tensor, running_std: torch.Tensor) -> Figure:
    """One dot per neuron: BatchNorm's running mean (left) and std (right) against the
    whole training set's, with the diagonal. Chapter "BatchNorm"."""
    use_style()
    fig, axs = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
    for ax, full, running, name in ((axs[0], full_mean, running_mean, "mean"),
                                    (axs[1], full_std, running_std, "std")):
        ax.plot(full, running, ".", color=layer_color(1))
        lo, hi = min(full.min(), running.min()).item(), max(full.max(), running.max()).item()
        ax.plot([lo, hi], [lo, hi], color="black", linewidth=0.8)
        ax.set_xlabel(f"{name} over the whole training set")
        ax.set_ylabel(f"running {name}")
    return fig


def scale_sweep(scales: Sequence[float], plain: Sequence[LinearStats],
                normed: Sequence[LinearStats], fan_in: int = 1000) -> Figure:
    """Log-log: std of a Linear layer's output (left) and of its input's gradient
    (right) against the weights' scale, without and with a normalization after it
    (:func:`makemore.analysis.stats.linear_stats`); dashed: ``1/sqrt(fan_in)``.
    Chapter "BatchNorm"."""
    use_style()
    fig, axs = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
    for ax, field, title in ((axs[0], "out", "std of the output"),
                             (axs[1], "inp_grad", "std of the input's gradient")):
        ax.loglog(scales, [getattr(r, field) for r in plain], "o-", color=layer_color(1),
                  label="Linear")
        ax.loglog(scales, [getattr(r, field) for r in normed], "o-", color=layer_color(2),
                  label="Linear + normalization")
        ax.axvline(fan_in**-0.5, color="black", linewidth=0.8, linestyle="--")
        ax.set_xlabel("weight scale s")
        ax.set_title(title)
    axs[0].legend()
    return fig


def plot_scales(scales: list[torch.Tensor], ax=None):
    """A strip plot of the factors ``|s_j|``, one column per BatchNorm, one dot per
    feature, on a log scale (chapter "Exercises", E02), from
    :func:`makemore.engine.fold.batchnorm_scales`. Returns the ``Axes``."""
    use_style()
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.5), layout="constrained")
    gen = torch.Generator().manual_seed(0)  # horizontal jitter only
    for k, s in enumerate(scales, start=1):
        x = k + 0.15 * (torch.rand(len(s), generator=gen) - 0.5)
        ax.plot(x, s.numpy(), ".", color=layer_color(k), alpha=0.7)
    ax.set_yscale("log")
    ax.set_xticks(range(1, len(scales) + 1),
                  [f"BatchNorm {k}" for k in range(1, len(scales) + 1)])
    ax.set_ylabel(r"$|s_j|$ (log scale)")
    ax.set_title("per-feature scale folded into each Linear layer")
    return ax
