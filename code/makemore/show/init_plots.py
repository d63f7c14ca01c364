"""The figures of what an initialization does: logits and softmax at step 0, the loss
of random logits, the hockey stick, the hidden layer's histograms and saturation maps.

Each is one call from a chapter ("The MLP", "The initial loss", "Tanh saturation"),
drawn in the book's style (:mod:`makemore.show.plots`) from what
:mod:`makemore.analysis.initialization` computes. Functions that draw one plot take an
``ax`` and return it; those that lay out several panels return the ``Figure``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..analysis.initialization import FirstStep, random_logits_loss
from ..analysis.stats import window_means
from . import plots


def _dashed(ax: Axes, y: float | None = None, x: float | None = None,
            color: str = plots.REFERENCE_COLOR) -> None:
    """A thin dashed reference line, horizontal at ``y`` or vertical at ``x``."""
    style = dict(color=color, linewidth=0.8, linestyle="--")
    if y is not None:
        ax.axhline(y, **style)
    if x is not None:
        ax.axvline(x, **style)


def _thousands(ax: Axes) -> None:
    ax.xaxis.set_major_formatter(lambda x, pos: f"{x / 1000:g}k")


def plot_logits(logits: torch.Tensor, targets: torch.Tensor, itos: Mapping[int, str],
                example: int = 0, title: str = "original") -> Figure:
    """Left: the histogram of a minibatch's logits. Right: the softmax of one example,
    with the uniform probability dashed. Introduced in "The initial loss"."""
    plots.use_style()
    logits = logits.detach()
    n = logits.shape[1]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=plots.FIGSIZE, layout="constrained")
    ax1.hist(logits.flatten().numpy(), bins=50)
    ax1.set(xlabel="logit", ylabel="count", title=f"logits at init ({title})")
    ax2.bar([itos[i] for i in range(n)], F.softmax(logits[example], 0).numpy())
    _dashed(ax2, y=1 / n)
    correct = itos[int(targets[example])]
    ax2.set(xlabel="next character", ylabel="probability",
            title=f"softmax of example {example} (correct: '{correct}')")
    ax2.tick_params(axis="x", labelsize=7)
    ax2.grid(axis="x", visible=False)
    return fig


def plot_random_logits(scales: Sequence[float], n_classes: Sequence[int],
                       mark: float | None = None,
                       mark_label: str = "original network's logit std",
                       ax: Axes | None = None) -> Axes:
    """The expected loss of random Gaussian logits (:func:`random_logits_loss`) against
    their std, one curve per number of classes, with :math:`\\ln n` dashed; ``mark``:
    a star at that std on the last curve, labelled ``mark_label``. Introduced in "The
    initial loss"."""
    ax = plots.axes(ax)
    for color, n in zip(plots.PALETTE, n_classes, strict=False):
        ax.plot(scales, [random_logits_loss(s, n) for s in scales], color=color,
                label=f"{n} classes")
        _dashed(ax, y=math.log(n), color=color)
    if mark is not None:
        ax.plot([mark], [random_logits_loss(mark, n_classes[-1])], "*", markersize=14,
                color=plots.PALETTE[3], label=mark_label)
    ax.set(xscale="log", yscale="log", xlabel="standard deviation of the logits",
           ylabel="expected loss", title="random logits: the larger, the more confidently wrong")
    ax.legend()
    return ax


def plot_hockey_stick(lossis: Mapping[str, torch.Tensor], zoom: int = 10_000,
                      uniform: float | None = None) -> Figure:
    """Left: whole runs (1,000-step means). Right: their first ``zoom`` steps (100-step
    means), with the log10 of the ``uniform`` loss dashed. Introduced in "The initial
    loss"."""
    plots.use_style()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=plots.FIGSIZE, layout="constrained")
    for label, lossi in lossis.items():
        plots.plot_loss(lossi, window=1000, ax=ax1, label=label)
        plots.plot_loss(lossi[:zoom], window=100, ax=ax2, label=label)
    steps = max(len(lossi) for lossi in lossis.values())
    ax1.set_title(f"{steps:,} steps")
    ax2.set_title(f"first {zoom:,} steps")
    for ax in (ax1, ax2):
        _thousands(ax)
    if uniform is not None:
        _dashed(ax2, y=math.log10(uniform))
    return fig


def plot_hidden_hist(steps: Mapping[str, FirstStep], bins: int = 50) -> Figure:
    """One column per first step (titled by its key): the histogram of the hidden
    pre-activations (top) and of the tanh outputs ``h`` (bottom). Introduced in "Tanh
    saturation"."""
    plots.use_style()
    fig, axs = plt.subplots(2, len(steps), figsize=(9, 5.5), layout="constrained",
                            squeeze=False)
    for col, (title, step) in enumerate(steps.items()):
        axs[0, col].hist(step.hpreact.flatten().tolist(), bins=bins, color=plots.layer_color(1))
        axs[0, col].set(title=title, xlabel="hpreact")
        axs[1, col].hist(step.h.flatten().tolist(), bins=bins, color=plots.layer_color(2))
        axs[1, col].set_xlabel("h = tanh(hpreact)")
    for ax in axs[:, 0]:
        ax.set_ylabel("count")
    return fig


def plot_tanh_gradient(threshold: float = 0.99, xmax: float = 5.0) -> Axes:
    """:math:`\\tanh(x)` and its local gradient :math:`1 - \\tanh^2(x)`, with the tails
    where :math:`|\\tanh x| >` ``threshold`` shaded. Introduced in "Tanh saturation"."""
    ax = plots.axes(None, figsize=(9, 3.2))
    x = torch.linspace(-xmax, xmax, 401)
    t = torch.tanh(x)
    edge = math.atanh(threshold)
    ax.plot(x, t, label=r"$t = \tanh(x)$")
    ax.plot(x, 1 - t**2, label=r"local gradient $1 - t^2$")
    for lo, hi in [(-xmax, -edge), (edge, xmax)]:
        ax.axvspan(lo, hi, color="grey", alpha=0.15)
    ax.set_xlabel("x (pre-activation)")
    ax.legend(loc="lower right")
    return ax


def plot_saturation_maps(hs: Mapping[str, torch.Tensor]) -> Figure:
    """:func:`makemore.show.plots.plot_saturation` side by side, one panel per titled ``h``.
    Introduced in "Tanh saturation"."""
    plots.use_style()
    fig, axs = plt.subplots(1, len(hs), figsize=(9, 2.8), layout="constrained", squeeze=False)
    for ax, (title, h) in zip(axs[0], hs.items(), strict=True):
        plots.plot_saturation(h, ax=ax)
        ax.set_title(title)
    return fig


def plot_lr_step(lossi: torch.Tensor, decay_step: int, start: int = 20_000,
                 window: int = 1000, label: str = "lr 0.1 → 0.01",
                 ax: Axes | None = None) -> Axes:
    """The ``window``-step means of a run's loss (converted back from log10) from step
    ``start`` on, with the learning-rate decay at ``decay_step`` dashed and labelled
    ``label``. Introduced in "The MLP"."""
    ax = plots.axes(ax)
    centers, means = window_means(lossi, window)
    keep = centers >= start
    ax.plot(centers[keep], 10 ** means[keep], color=plots.PALETTE[0])
    _dashed(ax, x=decay_step)
    ax.annotate(label, xy=(decay_step, ax.get_ylim()[1]), xytext=(4, -4),
                textcoords="offset points", va="top")
    ax.set(xlabel="step", ylabel="mean minibatch loss",
           title=f"mean of {window:,} steps, around the learning-rate decay")
    return ax
