"""The book's figures, in one style.

Every function draws into ``ax`` when given one (so a chapter can lay several
plots side by side) or else into a new figure of book-page size, and returns
the ``Axes`` it drew on. :func:`use_style` sets the shared look; every plot
function calls it, so a chapter needs no set-up.

Colors follow the network's depth: the k-th Linear layer, the BatchNorm and
Tanh after it, and their gradients all share ``layer_color(k)`` in every plot;
the embedding table ``C`` (block 0) is grey.
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..analysis.stats import DEAD, Diagnosis, LayerStats, ParamStats, matmul_std, window_means
from ..train import learning_rate

FIGSIZE = (9, 3.5)  # one plot across a book page

# tab10 without grey, which is kept for the embedding (block 0)
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
           "#8c564b", "#e377c2", "#bcbd22", "#17becf")
EMBEDDING_COLOR = "#7f7f7f"
REFERENCE_COLOR = "black"  # reference lines: the -3 update ratio, the Kaiming point

STYLE = {
    "figure.figsize": FIGSIZE,
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "legend.fontsize": 9,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
    "lines.linewidth": 1.5,
    "image.cmap": "gray",
    "axes.prop_cycle": mpl.cycler(color=list(PALETTE)),
}


def use_style() -> None:
    """Set the book's matplotlib style (idempotent; no seaborn needed)."""
    mpl.rcParams.update(STYLE)


def layer_color(block: int) -> str:
    """The color of block ``block``: grey for the embedding, then the palette."""
    return EMBEDDING_COLOR if block == 0 else PALETTE[(block - 1) % len(PALETTE)]


def axes(ax: Axes | None = None, figsize: tuple[float, float] = FIGSIZE) -> Axes:
    """``ax`` itself, or the axes of a new figure in the book's style (``figsize``)."""
    use_style()
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _legend_outside(ax: Axes) -> None:
    """A legend to the right of the plot, where it never hides a curve."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def _as_tensor(x) -> torch.Tensor:
    return x.detach().cpu() if isinstance(x, torch.Tensor) else torch.tensor(x)


# ---------------------------------------------------------------------------
# training curves

def smooth(t: torch.Tensor, window: int) -> torch.Tensor:
    """Trailing mean over ``window`` rows (fewer at the start), per column.

    Row ``i`` is the mean of rows ``max(0, i - window + 1) .. i``: a curve of noisy
    records (update:data ratios, losses) with the same length and steps as ``t``,
    unlike the lecture's non-overlapping window means of :func:`plot_loss`.
    Introduced for the training explorer of "Diagnostics".
    """
    if window < 1:
        raise ValueError(f"smooth: window must be at least 1, got {window}")
    c = torch.cumsum(t.double(), 0)  # (rows, ...) running sums, in float64 against drift
    out = c.clone()
    out[window:] = c[window:] - c[:-window]  # sum of the last `window` rows
    n = torch.clamp(torch.arange(1, len(t) + 1, dtype=torch.float64), max=window)
    return (out / n.view(-1, *([1] * (t.ndim - 1)))).to(t.dtype)


def plot_loss(lossi: Sequence[float] | torch.Tensor, window: int = 1000,
              ax: Axes | None = None, label: str | None = None) -> Axes:
    """The log10 minibatch loss per step (faint) and its mean over ``window`` steps.

    A single minibatch's loss is noisy; makemore part 5 averages non-overlapping
    windows, ``torch.tensor(lossi).view(-1, 1000).mean(1)``, to see the trend.
    A last, incomplete window is left out of the mean. Call again on the same
    ``ax`` with another ``label`` to compare runs.
    """
    ax = axes(ax)
    lossi = _as_tensor(lossi).float()
    (faint,) = ax.plot(lossi, alpha=0.2, linewidth=0.5)
    centers, means = window_means(lossi, window)  # centers: the mid-window steps
    if len(means):
        ax.plot(centers, means, color=faint.get_color(), label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("log10 loss")
    ax.set_title(f"training loss (line: mean of every {window} steps)")
    if label is not None:
        ax.legend()
    return ax


def plot_ud(ud: torch.Tensor | Sequence[Sequence[float]], names: Sequence[str],
            ax: Axes | None = None) -> Axes:
    """Plot 4: log10 update:data ratio of each parameter over the steps.

    ``ud`` has one column per name, e.g. ``plot_ud(*update_ratios(h.ud, params))``.
    The black line at -3 marks an update of a thousandth of the data: far below,
    the parameter learns too slowly; far above, too fast.
    """
    ax = axes(ax)
    ud = _as_tensor(ud)
    if ud.ndim != 2 or ud.shape[1] != len(names):
        raise ValueError(f"ud has shape {tuple(ud.shape)}, expected (steps, {len(names)})")
    for j, name in enumerate(names):
        ax.plot(ud[:, j], color=layer_color(j), label=name)
    ax.axhline(-3, color=REFERENCE_COLOR, linewidth=1, label="-3 (1e-3)")
    ax.set_xlabel("step")
    ax.set_ylabel("log10 update:data")
    ax.set_title("update:data ratio")
    _legend_outside(ax)
    return ax


def plot_ud_run(steps: torch.Tensor, ud: torch.Tensor, names: Sequence[str],
                window: int = 20, decay_step: int | None = None, lr: float = 0.1,
                ax: Axes | None = None) -> Axes:
    """Plot 4 over a long run: each weight matrix's log10 update:data ratio per record
    (thin) and its trailing mean over ``window`` records (thick), against the step.

    ``ud`` is ``(records, len(names))`` recorded at ``steps``; non-finite records
    (``log10(0)``) are left out of the means. A dashed line marks ``decay_step``, where
    the learning rate ``lr`` drops (:func:`makemore.train.learning_rate`); the black
    line marks -3. Introduced in "Diagnostics" (the full run).
    """
    ax = axes(ax, figsize=(10, 4))
    ud, steps = _as_tensor(ud).float(), _as_tensor(steps)
    ud = torch.where(torch.isfinite(ud), ud, torch.nan)
    if ud.ndim != 2 or ud.shape != (len(steps), len(names)):
        raise ValueError(f"ud has shape {tuple(ud.shape)}, expected "
                         f"({len(steps)}, {len(names)}): a record per step, a column per name")
    for j, name in enumerate(names):
        color = layer_color(j)
        ax.plot(steps, ud[:, j], color=color, alpha=0.25, linewidth=0.5)
        ax.plot(steps[window - 1:], ud[:, j].unfold(0, window, 1).nanmean(1), color=color,
                linewidth=1.5, label=name)
    ax.axhline(-3, color=REFERENCE_COLOR, linewidth=1, label="-3")
    if decay_step is not None:
        ax.axvline(decay_step, color="black", linestyle="--", linewidth=1,
                   label=f"lr {lr:g} → {learning_rate(decay_step, lr, decay_step):g}")
    ax.set_xlabel("step")
    ax.set_ylabel("log10 update:data")
    _legend_outside(ax)
    return ax


# ---------------------------------------------------------------------------
# distributions (plots 1, 2 and 3)

def plot_hist(stats_list: Sequence[LayerStats | ParamStats], title: str,
              ax: Axes | None = None, xlabel: str = "value") -> Axes:
    """Plots 1-3: one density curve per layer (or parameter), as in the lecture.

    ``title``: e.g. "activation distribution", "gradient distribution",
    "weights gradient distribution".
    """
    ax = axes(ax)
    for s in stats_list:
        ax.plot(s.hist.centers, s.hist.density, color=layer_color(s.block), label=s.name)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    if stats_list:
        _legend_outside(ax)
    return ax


def plot_diagnosis(d: Diagnosis, figsize: tuple[float, float] = (9, 10)) -> Figure:
    """Plots 1, 2 and 3 of a :func:`makemore.analysis.stats.diagnose` pass, stacked."""
    use_style()
    fig, axs = plt.subplots(3, 1, figsize=figsize, layout="constrained")
    plot_hist(d.forward, "activation distribution", axs[0], xlabel="activation")
    plot_hist(d.backward, "gradient distribution", axs[1], xlabel="gradient")
    plot_hist(d.weights, "weights gradient distribution", axs[2], xlabel="gradient")
    return fig


def plot_saturation(h: torch.Tensor, threshold: float = DEAD,
                    ax: Axes | None = None) -> Axes:
    """The lecture's ``plt.imshow(h.abs() > 0.99, cmap='gray')``.

    White: a saturated tanh output, through which (almost) no gradient flows.
    An all-white column is a neuron that is saturated for every example: dead.
    """
    ax = axes(ax)
    ax.imshow((h.detach().abs().cpu() > threshold).numpy(), cmap="gray", vmin=0, vmax=1,
              aspect="auto", interpolation="nearest")
    ax.grid(False)
    ax.set_xlabel("neuron")
    ax.set_ylabel("example in batch")
    ax.set_title(f"|h| > {threshold} (white: saturated)")
    return ax


# ---------------------------------------------------------------------------
# initialization

def plot_std_vs_scale(scales: Sequence[float] | None = None, fan_in: int = 10,
                      generator: torch.Generator | None = None,
                      ax: Axes | None = None) -> Axes:
    """Std of ``x @ w`` against the weight scale, with the Kaiming point marked.

    Measured (dots) next to the theory ``scale * sqrt(fan_in)`` (line): only
    ``scale = 1/sqrt(fan_in)`` keeps a unit-Gaussian input unit-Gaussian.
    """
    ax = axes(ax)
    if scales is None:
        scales = torch.logspace(-2, 1, 16).tolist()
    stds = [matmul_std(s, fan_in=fan_in, generator=generator) for s in scales]
    ax.loglog(scales, [s * fan_in**0.5 for s in scales], color=PALETTE[0],
              label=r"theory: scale $\cdot\sqrt{\mathrm{fan\_in}}$")
    ax.loglog(scales, stds, "o", color=PALETTE[0], label="measured std of x @ w")
    kaiming = fan_in**-0.5
    ax.axhline(1.0, color=REFERENCE_COLOR, linewidth=0.8, linestyle="--")
    ax.plot([kaiming], [1.0], "*", color=PALETTE[3], markersize=14,
            label=rf"$1/\sqrt{{{fan_in}}} = {kaiming:.3f}$: std 1")
    ax.set_xlabel("weight scale (std of w)")
    ax.set_ylabel("std of x @ w")
    ax.set_title(f"a Linear layer with fan_in = {fan_in}, unit-Gaussian input")
    ax.legend()
    return ax


def plot_matmul_hists(x: torch.Tensor, w: torch.Tensor, scales: dict[str, float],
                      bins: int = 121, limit: float = 15.0, ax: Axes | None = None) -> Axes:
    """Histograms of the entries of ``y = x @ (w * scale)`` for each weight scale, over
    that of ``x`` itself (grey), with the std of each ``y`` in the legend.

    ``scales`` maps a legend name (TeX, e.g. ``r"1/\\sqrt{10}"``) to the scale. With
    unit-Gaussian ``x`` and ``w``, only ``scale = 1/sqrt(fan_in)`` keeps ``y`` on top of
    ``x``. Introduced in "Kaiming initialization".
    """
    ax = axes(ax, figsize=(9, 3.2))
    edges = torch.linspace(-limit, limit, bins).tolist()
    ax.hist(x.flatten().tolist(), bins=edges, density=True, color=EMBEDDING_COLOR,
            alpha=0.5, label="x (input)")
    for k, (name, scale) in enumerate(scales.items()):
        y = x @ (w * scale)
        ax.hist(y.flatten().tolist(), bins=edges, density=True, histtype="step",
                linewidth=1.5, color=layer_color(k + 1),
                label=rf"y, std(w) = ${name}$: std(y) = {y.std():.2f}")
    ax.set_xlabel("value")
    ax.set_ylabel("density")
    ax.legend()
    return ax


def plot_depth_stds(stds: dict[float, Sequence[float]], ax: Axes | None = None) -> Axes:
    """Std of the tanh output after each layer, one curve per gain: ``stds[gain]`` as
    :func:`makemore.analysis.stats.depth_stds` returns it. Introduced in "Kaiming
    initialization"."""
    ax = axes(ax, figsize=(9, 3.2))
    for k, (gain, s) in enumerate(stds.items()):
        ax.plot(range(1, len(s) + 1), s, "o-", color=layer_color(k + 1),
                label=f"gain {gain:.3g}")
    ax.set_xlabel("layer")
    ax.set_ylabel("std of tanh output")
    ax.set_ylim(0, 1)
    ax.legend()
    return ax
