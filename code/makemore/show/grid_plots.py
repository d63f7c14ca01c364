"""The figures of the experiments' grid: final losses, loss curves, update:data by gain.

Each function draws one figure of the chapter "Experiments" from the trained runs of
the grid (:func:`makemore.analysis.outcomes.grid_runs`) in the book's style
(:mod:`makemore.show.plots`) and returns it; the chapter calls it and ``plt.show()``.
Without BatchNorm is blue circles, with BatchNorm orange squares, in every figure.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..analysis import outcomes, stats
from ..runs import Run, registry
from . import plots

# the two networks of the grid, as every figure of the chapter draws them
NETWORK_STYLE = {False: dict(marker="o", color=plots.PALETTE[0], label="no BatchNorm"),
                 True: dict(marker="s", color=plots.PALETTE[1], label="BatchNorm")}
ARM_XLABEL = {"gain": "gain (lr 0.1)", "lr": "learning rate (gain 5/3)"}
# the ends of each arm, drawn solid and dashed in :func:`loss_at_extremes`
EXTREMES = {"gain": (0.5, 3.0), "lr": (0.03, 1.0)}


def steps_in_thousands(ax: Axes) -> Axes:
    """Label a step axis ``0, 50k, 100k, ...`` instead of ``0, 50000, ...``."""
    ax.xaxis.set_major_formatter(plt.FuncFormatter(
        lambda x, pos: f"{x / 1000:.0f}k" if x else "0"))
    return ax


def _two_panels() -> tuple[Figure, list[Axes]]:
    plots.use_style()
    fig, axs = plt.subplots(1, 2, figsize=(9, 3.6), layout="constrained", sharey=True)
    return fig, list(axs)


def final_losses(grid: dict[str, Run]) -> Figure:
    """Final val loss along both arms of the grid (left: gain, right: learning rate),
    without and with BatchNorm; a diverged run is a cross marked "diverged" at the top."""
    finite = [r.losses["val"] for r in grid.values() if not outcomes.diverged(r)]
    lo, hi = min(finite), max(finite)
    pad = 0.1 * (hi - lo) + 0.01
    fig, axs = _two_panels()
    for ax, vary in zip(axs, outcomes.ARMS):
        for bn, style in NETWORK_STYLE.items():
            pts = outcomes.arm(grid, bn, vary)
            ok = [(x, r.losses["val"]) for x, r in pts if not outcomes.diverged(r)]
            if ok:
                ax.plot(*zip(*ok), linestyle="-", **style)
            for x in [x for x, r in pts if outcomes.diverged(r)]:
                ax.plot([x], [hi + pad * 0.6], marker="x", color=style["color"],
                        markersize=10, linestyle="none")
                ax.annotate("diverged", (x, hi + pad * 0.6), xytext=(0, -14), ha="center",
                            textcoords="offset points", fontsize=8, color=style["color"])
        ax.set_xscale("log")
        xs = registry.GAINS if vary == "gain" else sorted({*registry.LRS, outcomes.ARM_LR})
        ax.set_xticks(xs, [outcomes.axis_label(vary, x) for x in xs])
        ax.minorticks_off()
        ax.set_xlabel(ARM_XLABEL[vary])
        ax.set_ylim(lo - pad, hi + pad)
    axs[0].set_ylabel("final val loss")
    axs[0].legend()
    return fig


def loss_at_extremes(grid: dict[str, Run], window: int = 1000) -> Figure:
    """Training loss (means over ``window`` steps, :func:`makemore.analysis.stats.window_means`)
    at the two ends of each arm (:data:`EXTREMES`: solid, dashed), without and with
    BatchNorm. A window with a non-finite loss has no mean: a diverged curve stops."""
    fig, axs = _two_panels()
    for ax, (vary, xs) in zip(axs, EXTREMES.items()):
        for linestyle, x in zip(("-", "--"), xs):
            for bn, style in NETWORK_STYLE.items():
                run = outcomes.at(grid, bn, vary, x)
                steps, means = stats.window_means(outcomes.finite_lossi(run), window)
                label = f"{vary} {outcomes.axis_label(vary, x)}" + (", BN" if bn else "")
                ax.plot(steps, means, color=style["color"], linestyle=linestyle, label=label)
        ax.set_xlabel("step")
        steps_in_thousands(ax)
        ax.legend(fontsize=8)
    axs[0].set_ylabel(f"log10 loss ({window:,}-step mean)")
    return fig


def weight_ud_curves(labelled: Mapping[str, Run], colors: Sequence[str] = plots.PALETTE
                     ) -> Axes:
    """Mean log10 update:data of the Linear weights during training, one curve per run of
    ``{label: run}`` in ``colors`` (:func:`makemore.analysis.outcomes.mean_weight_ud`), with
    the lecture's -3; the caller places the legend."""
    ax = plots.axes(None, figsize=(9, 3.4))
    for color, (label, run) in zip(colors, labelled.items()):
        ax.plot(*outcomes.mean_weight_ud(run), color=color, label=label)
    ax.axhline(-3, color=plots.REFERENCE_COLOR, linewidth=1)
    ax.set_xlabel("step")
    steps_in_thousands(ax)
    ax.set_ylabel("mean log10 update:data")
    return ax


def weight_ud_by_gain(grid: dict[str, Run], batchnorm: bool = True) -> Axes:
    """:func:`weight_ud_curves` of the gain arm (one curve per gain, at lr 0.1)."""
    ax = weight_ud_curves({f"gain {outcomes.gain_label(gain)}": run
                           for gain, run in outcomes.arm(grid, batchnorm, "gain")})
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax
