"""The figures and tables of the chapter "Beyond BatchNorm": the final losses of trained
networks, the depth study's spread of the activations and gradients layer by layer
(:mod:`makemore.analysis.depth`) with its static explorer over the depth, and the gain
sweep of SGD and Adam (:mod:`makemore.analysis.optimizers`)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from IPython.display import Markdown
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..analysis.depth import WIRINGS, DepthLook
from ..analysis.depth import ratios as depth_ratios
from .explorer import Control, as_output, static_explorer
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
