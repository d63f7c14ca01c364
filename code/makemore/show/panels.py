"""Several networks side by side: a grid of panels, one legend for all, a table.

The diagnostics compare networks. :func:`grid` draws one panel per network, titled
with its name, with the axis labels only on the outer panels and, instead of one legend
per panel, a single legend below the figure, a line per block colored as in every panel
(:func:`makemore.show.plots.layer_color`). :func:`hist_grid` and :func:`ud_grid` are that
grid for the lecture's plots 1-3 and plot 4. :func:`table` and :func:`layer_table` show
the same comparison as a Markdown table, one column per network. Introduced in the
chapter "Diagnostics".
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..analysis.stats import LayerStats, ParamStats
from . import tables
from .plots import layer_color, plot_hist, plot_ud, use_style

T = TypeVar("T")
GRID_FIGSIZE = (9, 6.4)  # 2 x 3 panels across a book page


def layer_label(block: int) -> str:
    """Legend text of a layer's block in plots 1 and 2."""
    return f"layer after Linear {block}"


def weight_label(block: int) -> str:
    """Legend text of a weight matrix's block in plots 3 and 4: ``C`` is block 0."""
    return "C (embedding)" if block == 0 else f"Linear {block} weight"


def block_legend(fig: Figure, blocks: Iterable[int],
                 label: Callable[[int], str] = layer_label) -> None:
    """One legend for the whole figure, below it: a line per block, in its color."""
    blocks = list(blocks)
    handles = [Line2D([], [], color=layer_color(b)) for b in blocks]
    fig.legend(handles, [label(b) for b in blocks], loc="outside lower center",
               ncols=len(blocks) if len(blocks) <= 5 else 4)


def grid(panels: Mapping[str, T], draw: Callable[[Axes, T], Any], xlabel: str,
         ylabel: str = "density", *, blocks: Iterable[int] = range(1, 6),
         label: Callable[[int], str] = layer_label, sharex: bool = False,
         xlim: tuple[float, float] | None = None, ylim: tuple[float, float] | None = None,
         ncols: int = 3, figsize: tuple[float, float] = GRID_FIGSIZE) -> Figure:
    """One panel per entry of ``panels``, drawn by ``draw(ax, value)`` and titled with
    its key; x labels on the bottom row, y labels on the left column, and a
    :func:`block_legend` of ``blocks`` in place of the panels' own legends."""
    use_style()
    nrows = -(-len(panels) // ncols)
    fig, axs = plt.subplots(nrows, ncols, figsize=figsize, layout="constrained",
                            sharex=sharex, squeeze=False)
    for k, (ax, (name, value)) in enumerate(zip(axs.flat, panels.items(), strict=False)):
        draw(ax, value)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
        ax.set_title(name)
        ax.set_xlabel(xlabel if k // ncols == nrows - 1 else "")
        ax.set_ylabel(ylabel if k % ncols == 0 else "")
        if xlim is not None:
            ax.set_xlim(*xlim)
        if ylim is not None:
            ax.set_ylim(*ylim)
    for ax in axs.flat[len(panels):]:
        ax.set_visible(False)
    block_legend(fig, blocks, label)
    return fig


def hist_grid(stats: Mapping[str, Sequence[LayerStats | ParamStats]], xlabel: str,
              **kwargs: Any) -> Figure:
    """Plots 1-3 for several networks: :func:`makemore.show.plots.plot_hist` in a
    :func:`grid`, the legend's blocks and labels taken from the statistics (layers or
    weight matrices). ``kwargs`` go to :func:`grid` (``sharex``, ``xlim``, ...)."""
    blocks = sorted({s.block for column in stats.values() for s in column})
    is_weights = any(isinstance(s, ParamStats) for column in stats.values() for s in column)
    kwargs.setdefault("label", weight_label if is_weights else layer_label)
    return grid(stats, lambda ax, column: plot_hist(column, "", ax=ax), xlabel,
                blocks=blocks, **kwargs)


def ud_grid(ud: Mapping[str, torch.Tensor], **kwargs: Any) -> Figure:
    """Plot 4 for several networks: the ``(steps, weight matrices)`` log10 update:data
    ratios of each (:func:`makemore.analysis.stats.update_ratios`) over the steps, in a
    :func:`grid` with one legend for ``C`` and the Linear weights."""
    n = max(u.shape[1] for u in ud.values())
    kwargs.setdefault("ylabel", "log10 update:data")
    kwargs.setdefault("label", weight_label)
    return grid(ud, lambda ax, u: plot_ud(u, [weight_label(j) for j in range(u.shape[1])],
                                          ax=ax), "step", blocks=range(n), **kwargs)


def panel(fig: Figure, title: str) -> Axes:
    """The panel of a :func:`grid` titled ``title``, to adjust one of them."""
    for ax in fig.axes:
        if ax.get_title() == title:
            return ax
    raise KeyError(f"no panel titled {title!r}; the panels: "
                   f"{[ax.get_title() for ax in fig.axes if ax.get_title()]}")


def table(columns: Mapping[str, Mapping[str, Any]], corner: str = "") -> Markdown:
    """A Markdown table with one column per network: ``columns[network][row]`` is a
    cell (:func:`makemore.show.tables.number` formats floats). Rows in the order of the
    first network's; every network must have the same rows."""
    names = list(columns)
    rows = list(columns[names[0]])
    for name in names[1:]:
        if list(columns[name]) != rows:
            raise ValueError(f"{name!r} has rows {list(columns[name])}, "
                             f"{names[0]!r} has {rows}")
    return tables.markdown([[row] + [columns[name][row] for name in names] for row in rows],
                           [corner] + names, align="l" + "r" * len(names))


def row_label(s: LayerStats | ParamStats) -> str:
    """A table row's name: "after Linear k" for a layer, "C (27, 10)" or
    "Linear k (100, 100)" for a weight matrix."""
    if isinstance(s, ParamStats):
        return f"{'C' if s.block == 0 else f'Linear {s.block}'} {s.shape}"
    return f"after Linear {s.block}"


def layer_table(stats: Mapping[str, Sequence[T]], cell: Callable[[T], Any],
                rows: Sequence[str] | None = None, corner: str = "layer") -> Markdown:
    """:func:`table` of ``cell(item)`` for every layer (or weight matrix) of every
    network; the rows are named by :func:`row_label` unless ``rows`` names them."""
    first = next(iter(stats.values()))
    rows = list(rows) if rows is not None else [row_label(s) for s in first]
    columns = {}
    for name, column in stats.items():
        if len(column) != len(rows):
            raise ValueError(f"{name!r} has {len(column)} entries for {len(rows)} rows")
        columns[name] = dict(zip(rows, (cell(s) for s in column), strict=False))
    return table(columns, corner)


def norm_pictures(forward: Mapping[str, Sequence[LayerStats]],
                  backward: Mapping[str, Sequence[LayerStats]],
                  weights: Mapping[str, Sequence[ParamStats]], ud: Mapping[str, torch.Tensor],
                  figsize: tuple[float, float] = (9, 10)) -> Figure:
    """The four pictures of a few networks at once, a column per network (the keys of
    ``forward``) and a row per picture: tanh outputs, their gradients, the weights'
    gradients (histograms), the update:data ratios over the steps; one legend for the
    layers below (chapter "Beyond BatchNorm": BatchNorm next to LayerNorm)."""
    use_style()
    names = list(forward)
    fig, axs = plt.subplots(4, len(names), figsize=figsize, layout="constrained",
                            squeeze=False, sharex="row")
    rows = (("tanh output", forward), ("gradient of the tanh output", backward),
            ("weight gradient", weights))
    for r, (xlabel, stats) in enumerate(rows):
        for c, name in enumerate(names):
            ax = axs[r, c]
            plot_hist(stats[name], "", ax=ax)
            ax.get_legend().remove()
            ax.set(xlabel=xlabel, ylabel="density" if c == 0 else "")
            ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))
    for c, name in enumerate(names):
        u = ud[name]
        ax = axs[3, c]
        plot_ud(u, [weight_label(j) for j in range(u.shape[1])], ax=ax)
        ax.get_legend().remove()
        ax.set(xlabel="step", ylabel="log10 update:data" if c == 0 else "")
        axs[0, c].set_title(name)
    n = max(u.shape[1] for u in ud.values())
    block_legend(fig, range(n), weight_label)
    return fig
