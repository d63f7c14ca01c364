"""An explorer: one figure, a few controls, live in Jupyter and static in the book.

The book's interactive sections (:mod:`makemore.show.interactive`) are each a function
``draw(**values) -> Figure`` and the controls that choose ``values``. This module
turns such a function into the two things a reader meets:

- :func:`live` -- ipywidgets controls that call ``draw`` again on every move, for
  Binder, Colab or a local Jupyter (a kernel is needed);
- :func:`static_explorer` -- the HTML of the same figure drawn ahead of time for a
  few values of each control (:class:`Control`): PNG frames inline (``data:`` URIs)
  behind a range slider, checkbox or menu, swapped by a few lines of inline
  JavaScript. It needs no kernel, no network and no CDN, so it works in the
  published book, offline.

Nothing here knows about neural networks. Introduced for the interactive sections
of the chapters "Batch normalization", "Kaiming initialization" and "Diagnostics".
"""
from __future__ import annotations

import base64
import html
import io
import itertools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import matplotlib as mpl
from matplotlib.figure import Figure

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
  function pick(el) {
    return el.type === "checkbox" ? (el.checked ? 1 : 0) : parseInt(el.value, 10);
  }
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
.mm-controls { display: flex; flex-wrap: wrap; gap: .4em 1.5em; align-items: center;
                margin: .3em 0 .5em; }
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
        values = {c.name: c.values[i] for c, i in zip(controls, combo, strict=True)}
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


# the initial frame, as static_explorer() writes it (its alt text is attribute-escaped)
_INITIAL = re.compile(r'<img class="mm-frame" src="data:image/png;base64,([A-Za-z0-9+/=]+)" '
                      r'alt="([^"]*)"')


class StaticOutput:
    """A static explorer as a notebook output: its HTML, and beside it its initial frame
    as an ``image/png``. HTML builders (the site, the single page the PDF is printed
    from) show the explorer; whatever cannot show HTML -- a LaTeX or other non-HTML
    builder, a notebook viewer -- shows the frame the explorer opens on."""

    def __init__(self, markup: str) -> None:
        m = _INITIAL.search(markup)
        if m is None:
            raise ValueError("not the markup of static_explorer(): it has no initial frame")
        self.html, self.png, self.alt = markup, m.group(1), html.unescape(m.group(2))

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, str]:
        # image/png as base64 text, as Jupyter stores it; text/plain: the frame's alt text
        return {"text/html": self.html, "image/png": self.png, "text/plain": self.alt}


def as_output(markup: str) -> StaticOutput:
    """``markup`` from :func:`static_explorer` as what a notebook cell shows: the HTML,
    and its initial frame as a PNG for builders and viewers without HTML."""
    return StaticOutput(markup)


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
