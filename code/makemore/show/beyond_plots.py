"""The figures and tables of the chapter "Beyond BatchNorm": the final losses of trained
networks, the depth study's spread of the activations and gradients layer by layer
(:mod:`makemore.analysis.depth`) with its static explorer over the depth, the gain
sweep of SGD and Adam (:mod:`makemore.analysis.optimizers`), and the batch-size study
(:func:`makemore.analysis.normalization.batch_size_numbers`)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
from IPython.display import Markdown
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..analysis.depth import WIRINGS, DepthLook
from ..analysis.depth import ratios as depth_ratios
from .explorer import Control, as_output, static_explorer
from .grid_plots import weight_ud_curves
from .plots import PALETTE, REFERENCE_COLOR, axes, use_style
from .tables import markdown


def final_losses_table(trained: Mapping) -> Markdown:
    """Train and validation loss of trained runs (``{label: run}``), with the running
    statistics and, for a BatchNorm network, after the calibration pass ("-" without)."""
    rows = [[label, run.train_loss, run.val_loss,
             run.calibrated["train"] if run.calibrated else "-",
             run.calibrated["val"] if run.calibrated else "-"]
            for label, run in trained.items()]
    return markdown(rows, ["network", "train", "val", "train, calibrated", "val, calibrated"],
                    align="lrrrr")


def spread_figure(looks: Mapping[tuple[int, str], DepthLook], depth: int,
                  trained: bool | None = None) -> Figure:
    """Two panels for the nets of ``depth`` layers: the std of each hidden layer's output
    (left) and of its gradient (right, log scale), against the layer, one color per
    wiring; dashed at initialization, solid after training (``trained``: only one)."""
    use_style()
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    for color, kind in zip(PALETTE, WIRINGS, strict=False):
        lk = looks[(depth, kind)]
        for when, d, style in (("init", lk.init, "--"), ("trained", lk.trained, "-")):
            if trained is not None and trained != (when == "trained"):
                continue
            layers = range(1, len(d.forward) + 1)  # hidden layer k: its tanh, or block k's stream
            label = f"{kind}, {when}"
            left.plot(layers, [s.std for s in d.forward], style, color=color, label=label)
            right.plot(layers, [s.std for s in d.backward], style, color=color, label=label)
    left.set(xlabel="hidden layer", ylabel="std of the activations",
             title=f"{depth} layers: forward")
    right.set(xlabel="hidden layer", ylabel="std of the gradient", yscale="log",
              title=f"{depth} layers: backward")
    handles, labels = left.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", fontsize=8)
    return fig


def spread_static(looks: Mapping[tuple[int, str], DepthLook], depths: tuple[int, ...]):
    """Static explorer: :func:`spread_figure` with a slider over ``depths`` (at init and
    trained together); the alt text gives each wiring's first/last ratios."""
    controls = [Control("depth", "layers", tuple(depths), tuple(str(d) for d in depths),
                        initial=len(depths) - 1)]

    def draw(depth):
        return spread_figure(looks, depth)

    def alt(depth):
        parts = []
        for kind in WIRINGS:
            a, b = (depth_ratios(d) for d in (looks[(depth, kind)].init,
                                              looks[(depth, kind)].trained))
            parts.append(f"{kind}: activation std last/first {a['act']:.2f} at init, "
                         f"{b['act']:.2f} trained; gradient std first/last {a['grad']:.3g} "
                         f"at init, {b['grad']:.3g} trained")
        return (f"Spread of the activations and gradients layer by layer in the {depth}-layer "
                f"tanh net. " + "; ".join(parts) + ".")

    return as_output(static_explorer(
        draw, controls, "depth", alt=alt,
        caption="Slide the depth: the std of every hidden layer's output (left) and of its "
                "gradient (right) in the three wirings, at initialization (dashed) and after "
                "1,001 steps (solid)."))


def weight_ud_history(trained: Mapping) -> Axes:
    """:func:`~makemore.show.grid_plots.weight_ud_curves` of whole runs (``{label: run}``):
    the BatchNorm network orange as in the experiments' figures, the next ones green, red, ..."""
    ax = weight_ud_curves(trained, colors=PALETTE[1:])
    ax.legend()
    return ax


def gain_sweep_figure(lines: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                      ax: Axes | None = None) -> Axes:
    """The hidden weights' log10 update:data ratio against the gain (log scale): a line per
    entry ``label: (gains, ratios)``, SGD's blue and Adam's orange (by the label's first
    word), dashed with circles where the label says "first" (the first step), with the
    lecture's -3 line."""
    ax = axes(ax, figsize=(7, 3.8))
    ticks: set[float] = set()
    for label, (gains, values) in lines.items():
        color = PALETTE[0] if label.split(",")[0] == "SGD" else PALETTE[1]
        ax.plot(gains, values, "o--" if "first" in label else "s-", color=color, label=label)
        ticks |= set(gains)
    ax.axhline(-3, color=REFERENCE_COLOR, linewidth=1, label="-3")
    ax.set_xscale("log")
    ax.set_xticks(sorted(ticks), [f"{g:.3g}" for g in sorted(ticks)])
    ax.minorticks_off()
    ax.set(xlabel="gain", ylabel="log10 update:data, hidden weights")
    ax.legend(fontsize=8)
    return ax


def batch_size_figure(numbers: Mapping[tuple[bool, int], Mapping[str, float]]) -> Figure:
    """The batch-size study (:func:`makemore.analysis.normalization.batch_size_numbers`):
    left, train and validation loss against the batch size, without and with BatchNorm
    (and BatchNorm's calibrated validation loss); right, BatchNorm's two seams: the
    running statistics' validation loss minus the calibrated one, and the validation loss
    in training mode (batches of the run's size) minus evaluation mode."""
    use_style()
    sizes = sorted({b for _, b in numbers})
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for bn, color, name in ((False, PALETTE[0], "no BatchNorm"), (True, PALETTE[1], "BatchNorm")):
        left.plot(sizes, [numbers[bn, b]["val"] for b in sizes], "o-", color=color,
                  label=f"{name}, val")
        left.plot(sizes, [numbers[bn, b]["train"] for b in sizes], "s:", color=color,
                  label=f"{name}, train")
    left.plot(sizes, [numbers[True, b]["cal-val"] for b in sizes], "^--", color=PALETTE[1],
              alpha=0.6, label="BatchNorm, val, calibrated")
    left.set(xlabel="batch size", ylabel="loss", title="final losses")
    right.plot(sizes, [numbers[True, b]["mode-gap"] for b in sizes], "o-", color=PALETTE[2],
               label="training mode minus evaluation mode")
    right.plot(sizes, [numbers[True, b]["cal-gap"] for b in sizes], "s-", color=PALETTE[3],
               label="running minus calibrated statistics")
    right.axhline(0, color=REFERENCE_COLOR, linewidth=1)
    right.set(xlabel="batch size", ylabel="validation loss difference",
              title="BatchNorm: the seams")
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(b) for b in sizes])
        ax.minorticks_off()
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def batch_size_table(numbers: Mapping[tuple[bool, int], Mapping[str, float]]) -> Markdown:
    """The batch-size study as a table, one row per run, without BatchNorm first: the
    examples seen, train and validation loss and their gap, and BatchNorm's two seams in
    the validation loss: running minus calibrated statistics, training minus evaluation
    mode ("-" for the network without BatchNorm)."""
    rows = []
    for (bn, b), n in sorted(numbers.items()):
        seams = [f"{n['cal-gap']:+.4f}", f"{n['mode-gap']:+.4f}"] if bn else ["-", "-"]
        rows.append(["BatchNorm" if bn else "no BatchNorm", b, f"{n['examples']:,}",
                     n["train"], n["val"], f"{n['gap']:+.4f}", *seams])
    return markdown(rows, ["network", "batch", "examples seen", "train", "val", "val - train",
                           "running - calibrated", "training - eval mode"], align="lrrrrrrr")
