"""The book's interactive sections: live with ipywidgets, precomputed in the HTML.

Three explorers, one per idea of the lecture:

- **normalization** -- move one example of a batch and watch BatchNorm's mean and
  standard deviation, and with them *every* normalized output, move
  (:func:`normalization_figure`). It extends the bonus widget of the lecture's
  notebook, whose original batch it can show too (``case="notebook"``);
- **init** -- the lecture's deep network at initialization: per-layer activation
  and gradient histograms over the weight gain, with or without BatchNorm
  (:func:`init_figure`);
- **training** -- the update:data ratios of a trained run of the book over its
  200,000 steps, up to a chosen step (:func:`training_figure`).

Each comes three ways: ``*_figure(...)`` draws one state (a matplotlib ``Figure``);
``*_widget()``, the live version, and ``*_static()``, the HTML the published book shows,
are :func:`makemore.show.explorer.live` and :func:`~makemore.show.explorer.static_explorer` of it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial

import matplotlib as mpl
import torch
from matplotlib.figure import Figure

from ..analysis.stats import weight_columns
from ..data import load_splits
from ..models import deep_mlp, new_generator
from ..nn import BatchNorm1d
from ..runs import get as get_run
from .explorer import Control, as_output, live, static_explorer
from .plots import REFERENCE_COLOR, layer_color, plot_hist, smooth, use_style

# ---------------------------------------------------------------------------
# 1. normalization: one batch, one moving example

MOVED = 0  # the example the slider moves
BATCH = (-0.9, 0.2, 0.6, 1.1, 1.4, 1.9, 2.5, 3.2)  # eight pre-activations of one neuron
# The lecture notebook's bonus widget (cell 22, "not covered in video"): torch.randn(5) * 5
# from this seed, example 0 on a slider over -30..30 (steps of 0.5) that starts at 0.
NOTEBOOK_SEED = 2147483647 + 1


def notebook_batch() -> tuple[float, ...]:
    """The five numbers of the lecture notebook's bonus widget, drawn as it draws them."""
    g = torch.Generator().manual_seed(NOTEBOOK_SEED)
    return tuple((torch.randn(5, generator=g) * 5).tolist())


@dataclass(frozen=True)
class NormCase:
    """A batch (example 0 where the slider starts), the static version's stops, the live
    slider's ``(min, max, step)`` and one x-axis for all (so that frames compare)."""

    batch: tuple[float, ...]
    stops: tuple[float, ...]
    slider: tuple[float, float, float]
    xlim: tuple[float, float]


NORM_CASES = {
    "book": NormCase(BATCH, (-6.0, -4.0, -2.0, -0.9, 0.5, 2.0, 3.5, 5.0, 7.0, 10.0),
                     (-6.0, 10.0, 0.1), (-7.0, 11.0)),
    "notebook": NormCase((0.0, *notebook_batch()[1:]),
                         (-30.0, -20.0, -10.0, -5.0, 0.0, 5.0, 10.0, 20.0, 30.0),
                         (-30.0, 30.0, 0.5), (-32.0, 32.0)),
}


def norm_case(case: str) -> NormCase:
    """:data:`NORM_CASES` ``[case]``, or an error that lists the cases."""
    if case not in NORM_CASES:
        raise ValueError(f"unknown normalization case {case!r}; use one of {', '.join(NORM_CASES)}")
    return NORM_CASES[case]


def normalize(x: Sequence[float], gamma: float = 1.0, beta: float = 0.0
              ) -> tuple[torch.Tensor, float, float]:
    """The batch through the book's :class:`~makemore.nn.BatchNorm1d` (one neuron,
    training mode, the lecture's unbiased variance). Returns the outputs, and the
    batch mean and standard deviation the layer normalized with."""
    t = torch.tensor(x, dtype=torch.float32).view(-1, 1)
    bn = BatchNorm1d(1, unbiased=True)
    with torch.no_grad():
        bn.gamma.fill_(gamma)
        bn.beta.fill_(beta)
        y = bn(t).view(-1)
    return y, t.mean().item(), t.std(unbiased=True).item()


def _gauss(ax, mean: float, std: float, lo: float, hi: float, color: str, label: str) -> None:
    """The density of N(mean, std) over [lo, hi], shaded within one std of the mean."""
    from scipy.stats import norm  # as the lecture's notebook draws it

    xs = torch.linspace(lo, hi, 400).numpy()
    ys = norm.pdf(xs, mean, std)
    ax.plot(xs, ys, color=color, label=label)
    ax.fill_between(xs, ys, where=abs(xs - mean) <= std, color=color, alpha=0.12, linewidth=0)


def normalization_figure(x0: float = BATCH[MOVED], gamma: float = 1.0, beta: float = 0.0,
                         batch: Sequence[float] = BATCH,
                         xlim: tuple[float, float] = NORM_CASES["book"].xlim) -> Figure:
    """Top: the batch with example 0 at ``x0``, and the Gaussian with the batch's
    mean and std. Bottom: BatchNorm's outputs ``gamma * (x - mean) / std + beta``,
    with the outputs of the unmoved batch as faint rings: every example's output
    moves, not only the one that was moved."""
    use_style()
    x = list(batch)
    x[MOVED] = x0
    y, mean, std = normalize(x, gamma, beta)
    y0, _, _ = normalize(batch, gamma, beta)
    fig = Figure(figsize=(8, 4.6), layout="constrained")
    top, bottom = fig.subplots(2, 1)
    others, moved = layer_color(1), layer_color(2)
    _gauss(top, mean, std, *xlim, others, f"N(mean {mean:.2f}, std {std:.2f})")
    top.axvline(mean, color=REFERENCE_COLOR, linewidth=1)
    top.plot([v for i, v in enumerate(x) if i != MOVED], [0] * (len(x) - 1), "o",
             color=others, markersize=8, label="the other examples", clip_on=False)
    top.plot([x0], [0], "D", color=moved, markersize=9, label="example 0 (moved)",
             clip_on=False)
    top.set_xlim(*xlim)
    top.set_ylim(0, 0.45)
    top.set_title(f"a batch of {len(x)} inputs: mean {mean:+.2f}, std {std:.2f}")
    top.set_xlabel("input x")
    bottom_lim = 3.2 * max(abs(gamma), 0.25) + abs(beta)
    _gauss(bottom, beta, max(abs(gamma), 1e-3), -bottom_lim, bottom_lim, others,
           f"N({beta:.2f}, {abs(gamma):.2f})")
    bottom.plot([v for i, v in enumerate(y0.tolist()) if i != MOVED], [0.06] * (len(x) - 1),
                "o", mfc="none", color="0.6", markersize=8, label="before the move")
    bottom.plot([v for i, v in enumerate(y.tolist()) if i != MOVED], [0] * (len(x) - 1), "o",
                color=others, markersize=8, clip_on=False)
    bottom.plot([y[MOVED].item()], [0], "D", color=moved, markersize=9, clip_on=False)
    bottom.set_xlim(-bottom_lim, bottom_lim)
    bottom.set_ylim(0, max(0.45, 0.45 / max(abs(gamma), 1e-3)))
    g = f"{gamma:g} * " if gamma != 1 else ""
    b = f" + {beta:g}" if beta else ""
    bottom.set_title(f"after BatchNorm: y = {g}(x - mean) / std{b}")
    bottom.set_xlabel("output y")
    for ax in (top, bottom):
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
        ax.legend(loc="upper right")
    return fig


def normalization_widget(case: str = "book"):
    """Live: a slider for example 0, and BatchNorm's own ``gamma`` and ``beta``.
    ``case="notebook"``: the lecture notebook's five numbers and its slider."""
    import ipywidgets as widgets

    c = norm_case(case)
    lo, hi, step = c.slider
    return live(normalization_figure,
                x0=widgets.FloatSlider(value=c.batch[MOVED], min=lo, max=hi, step=step,
                                       description="example 0"),
                gamma=widgets.FloatSlider(value=1.0, min=0.2, max=3.0, step=0.1,
                                          description="gamma"),
                beta=widgets.FloatSlider(value=0.0, min=-2.0, max=2.0, step=0.1,
                                         description="beta"),
                batch=widgets.fixed(c.batch), xlim=widgets.fixed(c.xlim))


def normalization_static(case: str = "book"):
    """Static: :func:`normalization_figure` for example 0 at each of the case's stops."""
    c = norm_case(case)
    ctrl = Control("x0", "example 0 at", c.stops, tuple(f"{v:+.1f}" for v in c.stops),
                   initial=c.stops.index(c.batch[MOVED]))

    def alt(x0):
        y, mean, std = normalize([x0, *c.batch[1:]])
        return (f"A batch of {len(c.batch)} inputs with example 0 at {x0:+.1f}: batch mean "
                f"{mean:+.2f}, std {std:.2f}. After BatchNorm the outputs range from "
                f"{y.min():+.2f} to {y.max():+.2f}, and every example's output has moved.")

    name, intro = (("normalization", "") if case == "book" else
                   (f"normalization-{case}", "The lecture notebook's five numbers. "))
    draw = partial(normalization_figure, batch=c.batch, xlim=c.xlim)
    return as_output(static_explorer(
        draw, [ctrl], name, alt=alt,
        caption=intro + "Drag the slider: example 0 moves, the batch mean and std follow "
                "it, and so does the normalized output of every other example in the batch."))


# ---------------------------------------------------------------------------
# 2. initialization: the deep network at step 0

INIT_GAINS = (0.5, 1.0, 5 / 3, 2.0, 3.0)


def init_diagnosis(gain: float, batchnorm: bool):
    """:func:`makemore.analysis.stats.diagnose` of a fresh :func:`~makemore.models.deep_mlp`
    on the lecture's first minibatch (the generator the net was built with)."""
    from ..analysis.stats import diagnose

    splits = load_splits()  # cached in memory by the data module
    g = new_generator()
    model = deep_mlp(batchnorm=batchnorm, gain=gain, generator=g)
    return diagnose(model, splits.Xtr, splits.Ytr, generator=g)


def _with_std(stats, saturation: bool):
    """Legend labels ``layer 1: 0.75, 20%`` (std, saturated) or ``layer 1: 4.2e-04``."""
    def value(s):
        return f"{s.std:.2f}, {s.saturated * 100:.0f}%" if saturation else f"{s.std:.1e}"

    return [replace(s, name=f"layer {s.index}: {value(s)}") for s in stats]


def init_figure(gain: float = 5 / 3, batchnorm: bool = False,
                grad_lim: float | None = None) -> Figure:
    """Activation (top) and gradient (bottom) histograms of every Tanh layer of the
    deep network at initialization, for weight gain ``gain``. ``grad_lim`` fixes
    the gradient axis to ``+-grad_lim`` so that frames compare (default: fit)."""
    d = init_diagnosis(gain, batchnorm)
    use_style()
    fig = Figure(figsize=(8, 5.6), layout="constrained")
    top, bottom = fig.subplots(2, 1)
    bn = "with BatchNorm" if batchnorm else "no BatchNorm"
    plot_hist(_with_std(d.forward, True), f"activations at init (gain {gain:.3g}, {bn})",
              top, xlabel="tanh output")
    top.set_xlim(-1.05, 1.05)
    plot_hist(_with_std(d.backward, False), f"gradients at init (loss {d.loss:.2f})",
              bottom, xlabel="gradient of the tanh output")
    for ax, title in ((top, "tanh layer: std, saturated"), (bottom, "tanh layer: std")):
        ax.get_legend().set_title(title, prop={"size": 9})
    if grad_lim:
        bottom.set_xlim(-grad_lim, grad_lim)
    for ax in (top, bottom):
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))
    return fig


def init_widget():
    """Live: any gain from 0.1 to 4, BatchNorm on or off."""
    import ipywidgets as widgets

    return live(init_figure,
                gain=widgets.FloatSlider(value=5 / 3, min=0.1, max=4.0, step=0.05,
                                         description="gain", continuous_update=False),
                batchnorm=widgets.Checkbox(value=False, description="BatchNorm"),
                grad_lim=widgets.fixed(None))


def init_static(gains: Sequence[float] = INIT_GAINS,
                batchnorm: Sequence[bool] = (False, True)):
    """Static: :func:`init_figure` for every gain in ``gains`` and every setting in
    ``batchnorm`` (a checkbox when both), with one gradient axis for all frames."""
    diags = {(g, bn): init_diagnosis(g, bn) for g in gains for bn in batchnorm}
    grad_lim = 3 * max(s.std for d in diags.values() for s in d.backward)
    controls = [Control("gain", "gain", tuple(gains), tuple(f"{g:.3g}" for g in gains),
                        initial=min(range(len(gains)), key=lambda i: abs(gains[i] - 5 / 3)))]
    if len(batchnorm) == 2:
        controls.append(Control("batchnorm", "BatchNorm", tuple(batchnorm),
                                tuple("on" if bn else "off" for bn in batchnorm),
                                kind="checkbox"))

    def draw(gain, batchnorm=batchnorm[0]):
        return init_figure(gain, batchnorm, grad_lim)

    def alt(gain, batchnorm=batchnorm[0]):
        d = diags[(gain, batchnorm)]
        acts = ", ".join(f"{s.std:.2f}" for s in d.forward)
        sat = ", ".join(f"{s.saturated * 100:.0f}%" for s in d.forward)
        grads = ", ".join(f"{s.std:.1e}" for s in d.backward)
        return (f"Histograms of the deep network at init, gain {gain:.3g}, "
                f"{'with' if batchnorm else 'without'} BatchNorm. Activation std by layer: "
                f"{acts}; saturated: {sat}. Gradient std by layer: {grads}.")

    toggle = " and switch BatchNorm on and off" if len(batchnorm) == 2 else ""
    return as_output(static_explorer(
        draw, controls, "init", alt=alt,
        caption=f"Slide the gain{toggle}: the activation and gradient distribution of "
                f"every tanh layer of the deep network at initialization (one minibatch "
                f"of 32)."))


# ---------------------------------------------------------------------------
# 3. training: update:data ratios of a trained run

TRAINING_RUNS = ("deep_bn_g1_lr0.1", "deep_nobn_g0.5_lr0.1", "deep_bn_g1.67_lr0.03",
                 "deep_bn_g1.67_lr1")
TRAINING_STEPS = (1_000, 10_000, 100_000, 199_900)
SMOOTH = 10  # records (of 100 steps each) averaged for the curves
SMOOTH_EVERY = 100  # steps between two records of the runs the explorer shows


# TODO(runs): belongs with the run registry, as the spec's own label (``spec.label``);
# here until the registry has it, then the explorer reads ``RUNS[name].label``.
def run_label(name: str) -> str:
    """``deep_bn_g1.67_lr0.03`` -> ``BatchNorm, gain 1.67, lr 0.03``."""
    from ..runs import RUNS

    return RUNS[name].label


def _record(ud_steps: torch.Tensor, step: int) -> int:
    """Index of the first record at or after ``step`` (the last one past the end)."""
    return int(torch.searchsorted(ud_steps, torch.tensor(step)).clamp(max=len(ud_steps) - 1))


def training_figure(name: str = "deep_bn_g1_lr0.1", step: int = 199_900,
                    window: int = SMOOTH) -> Figure:
    """Left: log10 update:data ratio of every weight matrix of run ``name`` over the
    steps up to ``step`` (mean of ``window`` records), the rest of the run faint.
    Right: each layer's ratio at ``step``. The black line is the lecture's -3."""
    run = get_run(name)
    k = _record(run.ud_steps, step)
    ud, steps = smooth(run.ud.float(), window).numpy(), run.ud_steps.numpy()
    cols = weight_columns(run.model)
    use_style()
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=(2.2, 1), sharey=True)
    for j, label, block in cols:
        color = layer_color(block)
        left.plot(steps, ud[:, j], color=color, alpha=0.2, linewidth=0.8)
        left.plot(steps[: k + 1], ud[: k + 1, j], color=color, label=label)
        right.plot([block], [float(ud[k, j])], "o", color=color, markersize=8)
    for ax in (left, right):
        ax.axhline(-3, color=REFERENCE_COLOR, linewidth=1)
    left.axvline(int(steps[k]), color="0.4", linewidth=1, linestyle="--")
    # linear over the first 1,000 steps, logarithmic after: the early transient and the
    # learning-rate drop late in training both get room
    left.set_xscale("symlog", linthresh=1000, linscale=0.5)
    left.set_xlim(0, int(steps[-1]))
    ticks = [t for t in (0, 1_000, 10_000, 100_000, 200_000) if t <= int(steps[-1]) + 100]
    left.set_xticks(ticks, [f"{t // 1000}k" if t else "0" for t in ticks])
    left.xaxis.set_minor_locator(mpl.ticker.NullLocator())
    left.set_ylim(-6, -1)
    left.set_xlabel("step (linear to 1,000, then log scale)")
    left.set_ylabel("log10 update:data")
    left.set_title(run_label(name))
    left.legend(loc="lower left", ncol=4)
    right.set_xticks([b for _, _, b in cols], [lab for _, lab, _ in cols])
    right.set_xlabel("weight matrix")
    right.set_title(f"at step {int(steps[k]):,}")
    return fig


def explorable_runs() -> list[str]:
    """The runs the training explorer offers: the cached deep nets trained the lecture's
    200,000 steps with update:data records every 100 (the grid, and LayerNorm's run of
    "Beyond BatchNorm"). Not the short runs of "Beyond BatchNorm": its depth and batch-size
    runs record no ratios, and its gain sweep's record 1,001 steps, one per step."""
    from ..runs import cache
    from ..train import STEPS

    return [n for n, s in cache.RUNS.items() if s.builder == "deep_mlp" and s.steps == STEPS
            and s.ud_every == SMOOTH_EVERY and cache.is_cached(n)]


def training_widget(names: Sequence[str] | None = None):
    """Live: any run of :func:`explorable_runs`, any recorded step."""
    import ipywidgets as widgets

    from ..runs import DEEP_BN

    names = list(names or explorable_runs() or [DEEP_BN])
    last = int(get_run(names[0]).ud_steps[-1])
    return live(training_figure,
                name=widgets.Dropdown(options=[(run_label(n), n) for n in names],
                                      value=DEEP_BN if DEEP_BN in names else names[0],
                                      description="run"),
                step=widgets.IntSlider(value=last, min=0, max=last, step=100,
                                       description="step", continuous_update=False),
                window=widgets.IntSlider(value=SMOOTH, min=1, max=100,
                                         description="smooth", continuous_update=False))


def training_static(names: Sequence[str] = TRAINING_RUNS,
                    steps: Sequence[int] = TRAINING_STEPS):
    """Static: :func:`training_figure` for ``names`` x ``steps``."""
    run_ctrl = Control("name", "run", tuple(names), tuple(run_label(n) for n in names),
                       kind="select")
    step_ctrl = Control("step", "step", tuple(steps), tuple(f"{s:,}" for s in steps),
                        initial=len(steps) - 1)

    def alt(name, step):
        run = get_run(name)
        ud = smooth(run.ud.float(), SMOOTH)
        k = _record(run.ud_steps, step)
        vals = ", ".join(f"{label} {ud[k, j]:.2f}" for j, label, _ in weight_columns(run.model))
        return (f"Update:data ratios (log10) of run {run_label(name)} up to step {step:,}; "
                f"at that step: {vals}. The reference line is at -3.")

    return as_output(static_explorer(
        training_figure, [run_ctrl, step_ctrl], "training", alt=alt,
        caption="Pick a run and slide through training: the update:data ratio of every "
                "weight matrix (log10, mean over 1,000 steps) against the lecture's "
                "rule of thumb of -3."))
