"""makemore part 3: activations, gradients and BatchNorm.

The shared package behind the book. Each module holds one idea:

- :mod:`makemore.data`     names.txt: download, checks, vocabulary, datasets
- :mod:`makemore.nn`       the teaching layers (Linear, BatchNorm1d, Tanh, ...)
- :mod:`makemore.models`   one function per network configuration of the lecture
- :mod:`makemore.train`    the lecture's training loop, evaluation, BN calibration
- :mod:`makemore.functional`  the forward pass as a pure function of tensors (a model's plan)
- :mod:`makemore.fast`     the same math, compiled and batched, for full-length runs
- :mod:`makemore.backprop` the loss log MLPs' gradients by hand, autograd's kernels to the bit
- :mod:`makemore.jobs`     what a run is (``RunSpec``) and the one way in to training runs
- :mod:`makemore.registry` the book's named runs: the lecture's loss log and the grid
- :mod:`makemore.runs`     the trained runs' on-disk cache (``runs.get``)
- :mod:`makemore.pretrain` ``python -m makemore pretrain``: every missing run, on all cores
- :mod:`makemore.stats`    forward / backward statistics behind the diagnostic plots
- :mod:`makemore.health`   those statistics reduced to the numbers the prose quotes
- :mod:`makemore.plots`    the plot helpers, one consistent style
- :mod:`makemore.panels`   several networks side by side: panel grids, one legend, a table
- :mod:`makemore.initialization`  what an init does to the first steps (initial loss, tanh)
- :mod:`makemore.init_plots`      the figures of those first steps
- :mod:`makemore.layer_figures`   what single layers do: init, parameters, BatchNorm stats
- :mod:`makemore.outcomes`  how the grid's trained runs ended: losses, divergence, cost
- :mod:`makemore.grid_plots`      the figures of the experiments' grid
- :mod:`makemore.tables`   Markdown tables from rows, numbers formatted once
- :mod:`makemore.sample`   sampling names from a trained model
- :mod:`makemore.corpus`   statistics of a list of names: lengths, letters, real or new
- :mod:`makemore.corpus_plots`    the figures of those statistics
- :mod:`makemore.params`   a network's parameters by name: gradients, fills, spread
- :mod:`makemore.fold`     folding an eval-mode BatchNorm into the Linear before it
- :mod:`makemore.report`   the reproduction report: this build vs the lecture's loss log
- :mod:`makemore.lecture`  the lecture notebook's printouts, recomputed and compared
- :mod:`makemore.interactive`  the book's sliders, live (ipywidgets) and static (HTML)
- :mod:`makemore.explorer`     one figure + controls -> a live widget or static HTML
- :mod:`makemore.bundle`   the run cache as one verified bundle: pack, fetch (Binder, Colab)
- :mod:`makemore.book`     every chapter's setup cell, and ``glue`` also without myst-nb
"""
from __future__ import annotations

import hashlib
from pathlib import Path

__version__ = "0.1.0"

PACKAGE_DIR = Path(__file__).resolve().parent

# The modules whose source decides the numbers a training run produces. The run
# cache is keyed on these (plus the run's configuration), so editing a plot helper
# does not retrain anything, while editing a layer or the trainer does.
# The registry (titles, which runs exist), the cache's file handling and pretrain's
# scheduling are not among them: they decide no run's numbers.
TRAINING_MODULES = ("data.py", "nn.py", "models.py", "train.py", "functional.py", "fast.py",
                    "backprop.py", "jobs.py")


def fingerprint(files: tuple[str, ...] | None = None) -> str:
    """Return a short sha256 of the package's source files.

    ``files=None`` hashes every ``*.py`` file of the package (what the book's
    execution cache keys on); a tuple of file names hashes just those (the
    run cache uses :data:`TRAINING_MODULES`).
    """
    paths = sorted(PACKAGE_DIR.rglob("*.py")) if files is None else [PACKAGE_DIR / f for f in files]
    h = hashlib.sha256(__version__.encode())
    for p in paths:
        if p.exists():
            h.update(p.relative_to(PACKAGE_DIR).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]
