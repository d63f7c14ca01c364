"""The book's interactive sections: live with ipywidgets, precomputed in the HTML.

Three explorers, one per idea of the lecture:

- **normalization** -- move one example of a batch of eight numbers and watch
  BatchNorm's mean and standard deviation, and with them *every* normalized
  output, move (:func:`normalization_figure`);
- **init** -- the lecture's deep network at initialization: per-layer activation
  and gradient histograms over the weight gain, with or without BatchNorm
  (:func:`init_figure`);
- **training** -- the update:data ratios of a trained run of the book over its
  200,000 steps, up to a chosen step (:func:`training_figure`).

Each explorer comes three ways:

1. ``*_figure(...)`` draws one state of it, computed from the package, as a
   matplotlib :class:`~matplotlib.figure.Figure` (no pyplot state);
2. ``*_widget()`` returns ipywidgets controls that redraw on every move: the live
   version, for Binder, Colab or a local Jupyter;
3. ``*_static()`` draws the same figure ahead of time for a few values of each
   control and returns HTML: PNG frames inline (``data:`` URIs) behind a range
   slider, checkbox or menu, swapped by a few lines of JavaScript. It needs no
   kernel, no network and no CDN, so it works in the published book, offline.
"""
from __future__ import annotations

import base64
import html
import io
import itertools
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import matplotlib as mpl
import torch
from matplotlib.figure import Figure

from .models import deep_mlp, new_generator
from .nn import BatchNorm1d, Linear, Sequential
from .plots import REFERENCE_COLOR, layer_color, plot_hist, use_style

STATIC_DPI = 72  # frames of the static versions: small files, still legible
LIVE_DPI = 96
PNG_COLORS = 96  # frames are quantized to a palette: a third of the bytes, same look

# ---------------------------------------------------------------------------
# static explorers: frames behind HTML controls


@dataclass(frozen=True)
class Control:
    """One control of an explorer and the values its frames are drawn at.

    ``kind`` is ``"range"`` (a slider over ``values``), ``"checkbox"`` (exactly
    two values: unchecked, checked) or ``"select"`` (a menu). ``labels`` is how each
    value is shown next to the control; ``initial`` the index shown first.
    """

    name: str
    label: str
    values: tuple
    labels: tuple[str, ...]
    kind: str = "range"
    initial: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("range", "checkbox", "select"):
            raise ValueError(f"unknown control kind {self.kind!r}")
        if len(self.values) != len(self.labels) or not self.values:
            raise ValueError(f"control {self.name!r}: {len(self.values)} values but "
                             f"{len(self.labels)} labels")
        if self.kind == "checkbox" and len(self.values) != 2:
            raise ValueError(f"checkbox {self.name!r} needs exactly two values")
        if not 0 <= self.initial < len(self.values):
            raise ValueError(f"control {self.name!r}: initial index {self.initial} out of range")


def figure_png(fig: Figure, dpi: int = STATIC_DPI, colors: int | None = PNG_COLORS) -> bytes:
    """``fig`` as PNG bytes, at its own size (never cropped), palette-quantized."""
    buf = io.BytesIO()
    with mpl.rc_context({"savefig.bbox": "standard"}):  # same pixel size for every frame
        fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    if colors is None:
        return buf.getvalue()
    from PIL import Image

    img = Image.open(buf).convert("RGB").quantize(colors=colors, dither=Image.Dither.NONE)
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _png_size(png: bytes) -> tuple[int, int]:
    """Width and height from the PNG header (IHDR)."""
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


_SCRIPT = """(function () {
  var root = document.getElementById(%(id)s);
  if (!root) { return; }
  var data = JSON.parse(root.querySelector("script[type='application/json']").textContent);
  var img = root.querySelector("img.mm-frame");
  var first = img.getAttribute("src");  // the initial frame is stored once, in the img
  var inputs = root.querySelectorAll("[data-mm-control]");
  function pick(el) { return el.type === "checkbox" ? (el.checked ? 1 : 0) : parseInt(el.value, 10); }
  function show() {
    var key = [];
    for (var i = 0; i < inputs.length; i++) {
      var k = pick(inputs[i]);
      key.push(k);
      var out = root.querySelector("output[data-mm-for='" + inputs[i].id + "']");
      if (out) { out.textContent = data.labels[i][k]; }
    }
    var frame = data.frames[key.join("-")];
    if (frame) {
      img.src = frame[0] || first;
      img.alt = frame[1];
      root.setAttribute("data-mm-frame", key.join("-"));
    }
  }
  for (var i = 0; i < inputs.length; i++) {
    inputs[i].addEventListener("input", show);
    inputs[i].addEventListener("change", show);
  }
  root.querySelector(".mm-controls").hidden = false;
  show();
})();"""

_STYLE = """<style>
.mm-explorer { margin: 1em 0; max-width: 100%; }
.mm-explorer img.mm-frame { display: block; max-width: 100%; height: auto; background: white; }
.mm-controls { display: flex; flex-wrap: wrap; gap: .4em 1.5em; align-items: center; margin: .3em 0 .5em; }
.mm-controls label { display: inline-flex; gap: .5em; align-items: center; }
.mm-controls input[type=range] { width: min(18em, 55vw); }
.mm-controls output { font-variant-numeric: tabular-nums; min-width: 4em; }
.mm-explorer figcaption { font-size: .9em; }
</style>"""


def static_explorer(draw: Callable[..., Figure], controls: Sequence[Control], name: str,
                    caption: str = "", alt: Callable[..., str] | None = None,
                    dpi: int = STATIC_DPI) -> str:
    """Draw ``draw(**values)`` for every combination of the controls' values and
    return the HTML of a figure whose controls swap between those frames.

    The page needs nothing else: the frames are inline PNGs, the script is inline.
    Without JavaScript the initial frame shows and the controls stay hidden.
    ``name`` makes the element's id (``mm-explorer-<name>``); one per page.
    """
    if not controls:
        raise ValueError("an explorer needs at least one control")
    if not re.fullmatch(r"[a-z0-9-]+", name):
        raise ValueError(f"explorer name {name!r}: use lower-case letters, digits and '-'")
    alt = alt or (lambda **kw: ", ".join(f"{k} = {v}" for k, v in kw.items()))
    frames: dict[str, tuple[str, str]] = {}
    size = None
    for combo in itertools.product(*(range(len(c.values)) for c in controls)):
        values = {c.name: c.values[i] for c, i in zip(controls, combo)}
        fig = draw(**values)
        png = figure_png(fig, dpi=dpi)
        size = size or _png_size(png)
        frames["-".join(map(str, combo))] = (_data_uri(png), alt(**values))
    uid = f"mm-explorer-{name}"
    first = "-".join(str(c.initial) for c in controls)
    parts = [_STYLE, f'<figure class="mm-explorer" id="{uid}" data-mm-frame="{first}">',
             '<div class="mm-controls" hidden>']
    for j, c in enumerate(controls):
        cid = f"{uid}-{c.name}"
        if c.kind == "range":
            parts.append(
                f'<label for="{cid}">{html.escape(c.label)} <input type="range" id="{cid}" '
                f'data-mm-control="{j}" min="0" max="{len(c.values) - 1}" step="1" '
                f'value="{c.initial}"> <output data-mm-for="{cid}">'
                f'{html.escape(c.labels[c.initial])}</output></label>')
        elif c.kind == "checkbox":
            checked = " checked" if c.initial else ""
            parts.append(f'<label for="{cid}"><input type="checkbox" id="{cid}" '
                         f'data-mm-control="{j}"{checked}> {html.escape(c.label)}</label>')
        else:
            options = "".join(
                f'<option value="{i}"{" selected" if i == c.initial else ""}>'
                f'{html.escape(lab)}</option>' for i, lab in enumerate(c.labels))
            parts.append(f'<label for="{cid}">{html.escape(c.label)} <select id="{cid}" '
                         f'data-mm-control="{j}">{options}</select></label>')
    parts.append("</div>")
    src, text = frames[first]
    w, h = size
    parts.append(f'<img class="mm-frame" src="{src}" alt="{html.escape(text)}" '
                 f'width="{w}" height="{h}">')
    if caption:
        parts.append(f"<figcaption>{html.escape(caption)}</figcaption>")
    frames[first] = (None, text)  # the img holds it: no second copy in the JSON
    payload = {"labels": [list(c.labels) for c in controls], "frames": frames}
    blob = json.dumps(payload, separators=(",", ":")).replace("</", "<\\/")
    parts.append(f'<script type="application/json">{blob}</script>')
    parts.append("</figure>")
    parts.append("<script>" + _SCRIPT % {"id": json.dumps(uid)} + "</script>")
    return "\n".join(parts)


def _html(markup: str):
    from IPython.display import HTML

    return HTML(markup)


# ---------------------------------------------------------------------------
# live explorers: ipywidgets


def live(draw: Callable[..., Figure], **controls):
    """``ipywidgets.interactive`` around ``draw``: every change of a control draws
    the figure again and shows it as a PNG (the same in Jupyter, JupyterLab,
    Colab and VS Code, whatever matplotlib backend is active).

    The figure of the last draw is kept as ``.result`` of the returned widget.
    """
    import ipywidgets as widgets
    from IPython.display import Image, display

    def show(**values):
        fig = draw(**values)
        display(Image(data=figure_png(fig, dpi=LIVE_DPI, colors=None)))
        return fig

    return widgets.interactive(show, **controls)


# ---------------------------------------------------------------------------
# 1. normalization: one batch, one moving example

BATCH = (-0.9, 0.2, 0.6, 1.1, 1.4, 1.9, 2.5, 3.2)  # eight pre-activations of one neuron
MOVED = 0  # the example the slider moves
NORM_VALUES = (-6.0, -4.0, -2.0, -0.9, 0.5, 2.0, 3.5, 5.0, 7.0, 10.0)  # static frames


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
    xs = torch.linspace(lo, hi, 400)
    ys = torch.exp(-0.5 * ((xs - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))
    ax.plot(xs, ys, color=color, label=label)
    ax.fill_between(xs, ys, where=(xs - mean).abs() <= std, color=color, alpha=0.12, linewidth=0)


def normalization_figure(x0: float = BATCH[MOVED], gamma: float = 1.0, beta: float = 0.0,
                         batch: Sequence[float] = BATCH) -> Figure:
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
    _gauss(top, mean, std, -7, 11, others, f"N(mean {mean:.2f}, std {std:.2f})")
    top.axvline(mean, color=REFERENCE_COLOR, linewidth=1)
    top.plot([v for i, v in enumerate(x) if i != MOVED], [0] * (len(x) - 1), "o",
             color=others, markersize=8, label="the other examples", clip_on=False)
    top.plot([x0], [0], "D", color=moved, markersize=9, label="example 0 (moved)",
             clip_on=False)
    top.set_xlim(-7, 11)
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


def normalization_widget():
    """Live: a slider for example 0, and BatchNorm's own ``gamma`` and ``beta``."""
    import ipywidgets as widgets

    return live(normalization_figure,
                x0=widgets.FloatSlider(value=BATCH[MOVED], min=-6, max=10, step=0.1,
                                       description="example 0"),
                gamma=widgets.FloatSlider(value=1.0, min=0.2, max=3.0, step=0.1,
                                          description="gamma"),
                beta=widgets.FloatSlider(value=0.0, min=-2.0, max=2.0, step=0.1,
                                         description="beta"),
                batch=widgets.fixed(BATCH))


def normalization_static():
    """Static: :func:`normalization_figure` for the values in :data:`NORM_VALUES`."""
    ctrl = Control("x0", "example 0 at", NORM_VALUES, tuple(f"{v:+.1f}" for v in NORM_VALUES),
                   initial=NORM_VALUES.index(BATCH[MOVED]))

    def alt(x0):
        y, mean, std = normalize([x0, *BATCH[1:]])
        return (f"A batch of eight inputs with example 0 at {x0:+.1f}: batch mean {mean:+.2f}, "
                f"std {std:.2f}. After BatchNorm the outputs range from {y.min():+.2f} to "
                f"{y.max():+.2f}, and every example's output has moved.")

    return _html(static_explorer(
        normalization_figure, [ctrl], "normalization", alt=alt,
        caption="Drag the slider: example 0 moves, the batch mean and std follow it, and "
                "so does the normalized output of every other example in the batch."))


# ---------------------------------------------------------------------------
# 2. initialization: the deep network at step 0

INIT_GAINS = (0.5, 1.0, 5 / 3, 2.0, 3.0)


@lru_cache(maxsize=1)
def _train_split() -> tuple[torch.Tensor, torch.Tensor]:
    from .data import load_splits

    s = load_splits()
    return s.Xtr, s.Ytr


def init_diagnosis(gain: float, batchnorm: bool):
    """:func:`makemore.stats.diagnose` of a fresh :func:`~makemore.models.deep_mlp`
    on the lecture's first minibatch (the generator the net was built with)."""
    from .stats import diagnose

    X, Y = _train_split()
    g = new_generator()
    model = deep_mlp(batchnorm=batchnorm, gain=gain, generator=g)
    return diagnose(model, X, Y, generator=g)


def _with_std(stats, saturation: bool):
    """Legend labels ``layer 1: 0.75, 20%`` (std, saturated) or ``layer 1: 4.2e-04``."""
    out = []
    for s in stats:
        value = (f"{s.std:.2f}, {s.saturated * 100:.0f}%" if saturation else f"{s.std:.1e}")
        out.append(replace(s, name=f"layer {s.index}: {value}"))
    return out


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
    return _html(static_explorer(
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


def run_label(name: str) -> str:
    """``deep_bn_g1.67_lr0.03`` -> ``BatchNorm, gain 1.67, lr 0.03``."""
    from .runs import RUNS

    return RUNS[name].label


@lru_cache(maxsize=8)
def _run(name: str):
    from .runs import get

    return get(name)


def weight_columns(model: Sequential) -> list[tuple[int, str, int]]:
    """``(column, name, block)`` of every 2-D parameter in ``model.parameters()``
    order: ``C`` is block 0, the k-th Linear's weight ``Wk`` block k."""
    cols, j, block = [], 0, 0
    for layer in model.layers:
        block += isinstance(layer, Linear)
        for p in layer.parameters():
            if p.ndim == 2:
                cols.append((j, f"W{block}" if block else "C", block))
            j += 1
    return cols


def smooth(t: torch.Tensor, window: int = SMOOTH) -> torch.Tensor:
    """Trailing mean over ``window`` rows (fewer at the start), per column."""
    c = torch.cumsum(t.double(), 0)
    out = c.clone()
    out[window:] = c[window:] - c[:-window]
    n = torch.clamp(torch.arange(1, len(t) + 1, dtype=torch.float64), max=window)
    return (out / n.view(-1, *([1] * (t.ndim - 1)))).to(t.dtype)


def _record(ud_steps: torch.Tensor, step: int) -> int:
    """Index of the first record at or after ``step`` (the last one past the end)."""
    return int(torch.searchsorted(ud_steps, torch.tensor(step)).clamp(max=len(ud_steps) - 1))


def training_figure(name: str = "deep_bn_g1_lr0.1", step: int = 199_900,
                    window: int = SMOOTH) -> Figure:
    """Left: log10 update:data ratio of every weight matrix of run ``name`` over the
    steps up to ``step`` (mean of ``window`` records), the rest of the run faint.
    Right: each layer's ratio at ``step``. The black line is the lecture's -3."""
    run = _run(name)
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


def training_widget(names: Sequence[str] | None = None):
    """Live: any deep run of the book that is in the run cache, any recorded step."""
    import ipywidgets as widgets

    from .runs import DEEP_BN, RUNS, is_cached

    names = list(names or [n for n in RUNS if n.startswith("deep_") and is_cached(n)]
                 or [DEEP_BN])
    last = int(_run(names[0]).ud_steps[-1])
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
        run = _run(name)
        ud = smooth(run.ud.float())
        k = _record(run.ud_steps, step)
        vals = ", ".join(f"{label} {ud[k, j]:.2f}" for j, label, _ in weight_columns(run.model))
        return (f"Update:data ratios (log10) of run {run_label(name)} up to step {step:,}; "
                f"at that step: {vals}. The reference line is at -3.")

    return _html(static_explorer(
        training_figure, [run_ctrl, step_ctrl], "training", alt=alt,
        caption="Pick a run and slide through training: the update:data ratio of every "
                "weight matrix (log10, mean over 1,000 steps) against the lecture's "
                "rule of thumb of -3."))
