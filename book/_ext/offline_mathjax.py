"""MathJax from the site itself, and only the files the pages load.

The pages typeset their math with MathJax 3 from ``_static/mathjax`` (no CDN: the site
works offline, ``tests/test_browser.py`` blocks every request off 127.0.0.1). The
files come from the package ``sphinx-mathjax-offline``, whose own extension copies its
whole MathJax distribution, 24 MB: every combined build (SVG, MathML, speech...), the
speech-rule engine, all TeX extensions. A page of this book loads three kinds of file:

- ``tex-chtml.js`` -- the combined component Sphinx points the pages at: the loader,
  the TeX input with its default packages (base, ams, newcommand, noundefined, require,
  autoload, configmacros), the CommonHTML output, the menu and assistive MathML;
- the CommonHTML fonts, ``output/chtml/fonts/woff-v2/*.woff``, each fetched when a
  formula uses a character of it (all 23 are copied: 392 kB, and a new formula may need
  any of them);
- a TeX extension that ``autoload`` fetches the first time a formula uses one of its
  macros (``\\cancel`` -> ``input/tex/extensions/cancel.js``). :data:`AUTOLOAD` is the
  table built into ``tex-chtml.js``; this extension reads every formula of the book at
  the end of the build and copies the extensions their macros need.

What is not copied: the builds the pages do not load, and what only the MathJax menu's
optional settings load (the SVG renderer, the accessibility explorer and its speech-rule
engine); offline, those settings report that they cannot load.

Config: none. It sets ``mathjax_path`` as ``sphinx-mathjax-offline`` does; list this
extension instead of that one (whose package still provides the files).
"""
from __future__ import annotations

import importlib.util
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

ENTRY = "tex-chtml.js"
FONTS = "output/chtml/fonts/woff-v2"
EXTENSIONS = "input/tex/extensions"

# MathJax 3.2's autoload table (in tex-chtml.js): extension -> (macros, environments).
# tests/test_offline_mathjax.py checks it against the copy of tex-chtml.js installed.
AUTOLOAD: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "action": (("toggle", "mathtip", "texttip"), ()),
    "amscd": ((), ("CD",)),
    "bbox": (("bbox",), ()),
    "boldsymbol": (("boldsymbol",), ()),
    "braket": (("bra", "ket", "braket", "set", "Bra", "Ket", "Braket", "Set", "ketbra",
                "Ketbra"), ()),
    "bussproofs": ((), ("prooftree",)),
    "cancel": (("cancel", "bcancel", "xcancel", "cancelto"), ()),
    "color": (("color", "definecolor", "textcolor", "colorbox", "fcolorbox"), ()),
    "enclose": (("enclose",), ()),
    "extpfeil": (("xtwoheadrightarrow", "xtwoheadleftarrow", "xmapsto", "xlongequal",
                  "xtofrom", "Newextarrow"), ()),
    "html": (("href", "class", "style", "cssId"), ()),
    "mhchem": (("ce", "pu"), ()),
    "newcommand": (("newcommand", "renewcommand", "newenvironment", "renewenvironment",
                    "def", "let"), ()),
    "unicode": (("unicode",), ()),
    "verb": (("verb",), ()),
}
# in tex-chtml.js already: autoload never fetches these
BUILT_IN = {"newcommand"}

_MACRO = re.compile(r"\\([A-Za-z]+)")
_ENV = re.compile(r"\\begin\{([A-Za-z*]+)\}")


def source_dir() -> Path:
    """The MathJax distribution inside the ``sphinx-mathjax-offline`` package."""
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or spec.origin is None:
        raise RuntimeError("the package sphinx-mathjax-offline is not installed: "
                           "pip install -e '.[book]' (it provides MathJax's files)")
    return Path(spec.origin).parent / "static" / "mathjax"


def extensions_for(formulas: Iterable[str]) -> set[str]:
    """The TeX extensions that ``autoload`` fetches for these formulas."""
    macros, envs = set(), set()
    for tex in formulas:
        macros.update(_MACRO.findall(tex))
        envs.update(_ENV.findall(tex))
    return {ext for ext, (m, e) in AUTOLOAD.items()
            if ext not in BUILT_IN and (macros & set(m) or envs & set(e))}


def files_for(formulas: Iterable[str]) -> list[str]:
    """Every file (relative to the MathJax folder) that pages with ``formulas`` load."""
    return [ENTRY, FONTS] + [f"{EXTENSIONS}/{e}.js" for e in sorted(extensions_for(formulas))]


def copy_subset(src: Path, dest: Path, files: list[str]) -> int:
    """Copy ``files`` (files or folders) from ``src`` into a fresh ``dest``; the bytes copied."""
    if dest.exists():
        shutil.rmtree(dest)  # no file of an older build's (whole) copy stays behind
    total = 0
    for rel in files:
        s, d = src / rel, dest / rel
        if not s.exists():
            raise FileNotFoundError(f"MathJax file {s} is missing: reinstall "
                                    f"sphinx-mathjax-offline")
        d.parent.mkdir(parents=True, exist_ok=True)
        if s.is_dir():
            shutil.copytree(s, d)
            total += sum(p.stat().st_size for p in d.rglob("*") if p.is_file())
        else:
            shutil.copyfile(s, d)
            total += d.stat().st_size
    return total


def formulas(app: Sphinx) -> list[str]:
    """The TeX source of every formula of every page."""
    out = []
    for doc in sorted(app.env.found_docs):
        tree = app.env.get_doctree(doc)
        out += [n.astext() for n in tree.findall(lambda n: isinstance(n, (nodes.math,
                                                                         nodes.math_block)))]
    return out


def copy_mathjax(app: Sphinx, exc: Exception | None) -> None:
    if exc is not None or app.builder.format != "html":
        return
    files = files_for(formulas(app))
    size = copy_subset(source_dir(), Path(app.outdir) / "_static" / "mathjax", files)
    logger.info(f"offline_mathjax: copied {len(files)} MathJax files/folders, "
                f"{size / 1e6:.2f} MB")


def setup(app: Sphinx) -> dict:
    app.config.mathjax_path = f"mathjax/{ENTRY}"
    app.connect("build-finished", copy_mathjax)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
