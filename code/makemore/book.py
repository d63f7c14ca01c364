"""What every chapter starts with: its setup, and ``glue`` also where myst-nb is missing.

Every chapter's first visible cell is the same, :data:`SETUP_CELL` (a test checks every
chapter has it): it imports the package's modules and calls :func:`setup`, which sets one
thread and the book's plot style and returns the names' splits ``S``.

The chapters hand numbers to their prose with myst-nb's ``glue``. On Colab, installing
myst-nb only for that would pull in Sphinx and a dozen packages; there this module's
:func:`glue` stands in: it shows the value where myst-nb would show it, and stores
nothing (there is no page for the text to pick it up from). Introduced with the launch
buttons' install cell (the first cell of every chapter).
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

HAVE_MYST_NB = importlib.util.find_spec("myst_nb") is not None
DATA_DIR_ENV = "MAKEMORE_DATA_DIR"

# Every chapter's first visible cell: its imports, then the setup.
SETUP_CELL = """\
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from makemore import data, models, nn, runs, train
from makemore.analysis import stats
from makemore.show import plots, tables
from makemore.book import glue, glue_all, setup

S = setup()  # one thread, the book's plot style; S: the names' 80/10/10 split as tensors"""


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


def glue_all(prefix: str, values: dict[str, Any]) -> None:
    """Glue every ``values[key]`` as ``"{prefix}-{key}"`` without displaying it: the
    numbers a chapter's prose quotes, computed by one package function."""
    for key, value in values.items():
        glue(f"{prefix}-{key}", value, display=False)


def in_checkout() -> bool:
    """Whether the package runs from a clone of the book (the build, Binder, a
    laptop) rather than from a pip install (Colab)."""
    from .data import REPO_ROOT

    return (REPO_ROOT / "pyproject.toml").exists()


def setup(block_size: int = 3):
    """The setup of every chapter: one thread (the book's numbers are made with one
    thread per process, and these small matrices run faster on one), the book's plot
    style, and the names split 80/10/10 into tensors (:func:`makemore.data.load_splits`).

    Where the package is pip-installed (Colab: the install cell above just did it),
    the names are kept in ``~/makemore-data`` and the book's trained runs are fetched
    once; offline, a chapter then trains what it needs.
    """
    import torch

    from . import data
    from .show import plots

    torch.set_num_threads(1)
    plots.use_style()
    if not in_checkout():
        os.environ.setdefault(DATA_DIR_ENV, str(Path.home() / "makemore-data"))
        _fetch_runs_once()
    return data.load_splits(block_size=block_size)


def _fetch_runs_once() -> None:
    """Fetch the published runs into an empty run cache; print why not if that fails."""
    from . import runs
    from .runs import bundle

    if any(runs.is_cached(name) for name in runs.RUNS):
        return
    try:
        bundle.fetch()
    except (bundle.BundleError, OSError) as err:
        print(f"{err}\n(the chapters train the runs they need instead)")
