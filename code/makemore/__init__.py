"""makemore part 3: activations, gradients and BatchNorm.

The shared package behind the book. The lecture's own code is at the top; each layer
that supports it has a subpackage, and imports run only downwards (top <- engine <- runs
<- analysis <- show; a test holds it):

- :mod:`makemore.data`     names.txt: download, checks, vocabulary, datasets
- :mod:`makemore.nn`       the teaching layers (Linear, BatchNorm1d, Tanh, ...)
- :mod:`makemore.models`   one function per network configuration of the lecture
- :mod:`makemore.train`    the lecture's training loop, evaluation, BN calibration
- :mod:`makemore.sample`   sampling names from a trained model
- :mod:`makemore.engine`   the same math compiled, batched, backpropagated by hand, folded
- :mod:`makemore.runs`     the book's trained runs: registry, cache, pretraining, bundles
- :mod:`makemore.analysis` measurements: diagnostics statistics, health, outcomes, corpus
- :mod:`makemore.show`     figures, tables, explorers, the lecture's printouts, the report
- :mod:`makemore.book`     every chapter's setup cell, and ``glue`` also without myst-nb
- :mod:`makemore.__main__` ``python -m makemore``: fetch, pretrain, reproduce, list, bundles
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
TRAINING_MODULES = ("data.py", "nn.py", "models.py", "train.py", "engine/functional.py",
                    "engine/fast.py", "engine/backprop.py", "runs/jobs.py")


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
