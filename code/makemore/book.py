"""What the chapters need from the book's machinery, also where that machinery is missing.

The chapters hand numbers to their prose with myst-nb's ``glue``. On Colab, installing
myst-nb only for that would pull in Sphinx and a dozen packages; there this module's
:func:`glue` stands in: it shows the value where myst-nb would show it, and stores
nothing (there is no page for the text to pick it up from). Introduced with the launch
buttons' install cell (the first cell of every chapter).
"""
from __future__ import annotations

import importlib.util
import sys
import types
from typing import Any

HAVE_MYST_NB = importlib.util.find_spec("myst_nb") is not None


def _glue(name: str, variable: Any, display: bool = True) -> None:
    """Stand-in for :func:`myst_nb.glue` (same signature): display ``variable`` when
    ``display`` is true, as the notebook would; ``name`` is only for the book build."""
    if display:
        from IPython.display import display as show

        show(variable)


if HAVE_MYST_NB:
    from myst_nb import glue
else:
    glue = _glue


def provide_glue() -> None:
    """Make ``from myst_nb import glue`` work in a notebook where myst-nb is not
    installed (Colab): register a module ``myst_nb`` that holds only the stand-in.
    Does nothing where myst-nb is installed (the book build, Binder, a clone)."""
    if HAVE_MYST_NB or "myst_nb" in sys.modules:
        return
    shim = types.ModuleType("myst_nb", "makemore.book's stand-in: only glue, for notebooks "
                                       "run without the book build")
    shim.glue = _glue
    sys.modules["myst_nb"] = shim
