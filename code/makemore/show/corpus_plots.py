"""Figures of the statistics of :mod:`makemore.analysis.corpus`: how long names are, which letters
they use, and how the names a network samples compare with the real ones.

Every function draws into ``ax`` (or ``axs``) when given and otherwise into a new figure,
and returns what it drew on, like :mod:`makemore.show.plots`, whose style and colors it uses.
"""
from __future__ import annotations

from collections.abc import Collection, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes

from ..analysis import corpus
from . import plots


def plot_lengths(words: Sequence[str], ax: Axes | None = None) -> Axes:
    """A histogram of the names' lengths, one bar per length (chapter "Data")."""
    ax = plots.axes(ax, (9, 3.2))
    lens = corpus.lengths(words)
    lo, hi = int(lens.min()), int(lens.max())
    ax.hist(lens.numpy(), bins=np.arange(lo, hi + 2) - 0.5, rwidth=0.85)
    ax.set_xticks(range(lo, hi + 1))
    ax.set_xlabel("name length (characters)")
    ax.set_ylabel("number of names")
    ax.set_title("length of the names in names.txt")
    return ax


def plot_letter_counts(words: Sequence[str], ax: Axes | None = None) -> Axes:
    """How often each letter occurs, and a grey bar for the end token ``'.'``, counted
    once per name (chapter "Data")."""
    ax = plots.axes(ax, (9, 3.2))
    counts = corpus.letter_counts(words)
    ax.bar(list(counts), list(counts.values()), color=plots.PALETTE[0])
    ax.bar(["."], [len(words)], color=plots.EMBEDDING_COLOR)
    ax.set_xlabel("character")
    ax.set_ylabel("occurrences")
    ax.set_title("character frequencies (grey: the end-of-name token '.')")
    ax.grid(axis="x", visible=False)
    return ax


def plot_length_distributions(samples: dict[str, torch.Tensor], data_lengths: torch.Tensor,
                              max_len: int = 20, ax: Axes | None = None) -> Axes:
    """The length distribution of real names (grey bars) and of each network's samples
    (``{label: lengths}``, step lines), each normalized to sum to one; the last bin holds
    every name of ``max_len`` characters or more (chapter "Sampling")."""
    ax = plots.axes(ax, (9, 3.4))
    x = range(1, max_len + 1)
    ax.bar(x, corpus.length_distribution(data_lengths, max_len).numpy(), color="0.8",
           label="names.txt")
    colors = (plots.PALETTE[1], plots.PALETTE[0], *plots.PALETTE[2:])
    for (label, lens), color in zip(samples.items(), colors, strict=False):
        ax.step(x, corpus.length_distribution(lens, max_len).numpy(), where="mid", color=color,
                label=label)
    ax.set_xticks(x, [str(k) for k in range(1, max_len)] + [f"{max_len}+"])
    ax.set_xlabel("length (characters)")
    ax.set_ylabel("fraction of names")
    ax.legend()
    return ax


def plot_sample_quality(measured: dict[str, corpus.Samples], final: str,
                        mlps: Collection[str], annotate: str | None = "original",
                        axs: Sequence[Axes] | None = None) -> Sequence[Axes]:
    """One point per network, against its validation loss: left the percent of its
    samples that are real names, right the NLL per character of its own samples, with
    the dashed line where that equals the validation loss. The network ``final`` is a
    star, the ``mlps`` are blue, any other network grey (chapter "Sampling")."""
    if axs is None:
        plots.use_style()
        _, axs = plt.subplots(1, 2, figsize=(9, 3.8), layout="constrained")
    kinds = {"mlp": dict(marker="o", markersize=7, color=plots.PALETTE[0],
                         label="MLPs of the loss log"),
             "final": dict(marker="*", markersize=15, color=plots.PALETTE[1],
                           label="deep, BatchNorm (final)"),
             "grid": dict(marker="o", markersize=5, color="0.6", label="other deep networks")}
    for name, m in measured.items():
        kind = "final" if name == final else "mlp" if name in mlps else "grid"
        style = dict(kinds[kind], linestyle="none")
        kinds[kind]["label"] = None  # each kind in the legend once
        axs[0].plot(m.val, 100 * m.share.real, **style)
        axs[1].plot(m.val, m.nll, **{**style, "label": None})
        if name == annotate:
            axs[0].annotate(name, (m.val, 100 * m.share.real), fontsize=8, xytext=(5, 3),
                            textcoords="offset points")
    axs[0].legend(fontsize=8)
    vals = [m.val for m in measured.values()]
    axs[1].plot([min(vals), max(vals)], [min(vals), max(vals)], "--", color="black",
                linewidth=1)
    for ax in axs:
        ax.set_xlabel("val loss")
    axs[0].set_ylabel("% of samples that are real names")
    axs[1].set_ylabel("NLL per char of own samples")
    return axs


def plot_next_char(learned: torch.Tensor, freq: torch.Tensor, vocab, ax: Axes | None = None
                   ) -> Axes:
    """A distribution over the next character that a network ``learned`` (bars) against
    the frequency of each character as a training target (dots), ``'.'`` first
    (chapter "Exercises": what the all-zero network's output bias learns)."""
    ax = plots.axes(ax, (9, 3.2))
    n = len(vocab)
    ax.bar(range(n), learned.numpy(), color=plots.PALETTE[0], label="softmax(output bias)")
    ax.plot(range(n), freq.numpy(), "o", color=plots.PALETTE[3], label="frequency in the data")
    ax.set_xticks(range(n), [vocab.itos[i] for i in range(n)])
    ax.set_xlabel("next character")
    ax.set_ylabel("probability")
    ax.legend()
    return ax
