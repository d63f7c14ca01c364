"""The book's trained runs: what a run is, which runs the book has, their cache, their bundle.

- :mod:`~makemore.runs.jobs`      what a run is (``RunSpec``) and the one way in to training runs
- :mod:`~makemore.runs.registry`  the book's named runs: the lecture's loss log and the grid
- :mod:`~makemore.runs.cache`     the trained runs' on-disk cache (``runs.get``)
- :mod:`~makemore.runs.pretrain`  ``python -m makemore pretrain``: every missing run, on all cores
- :mod:`~makemore.runs.bundle`    the cache as one verified bundle: pack, fetch (Binder, Colab)

The chapters write ``runs.get("kaiming")``: the cache's API is re-exported here, and
defined in :mod:`makemore.runs.cache` (patch it there in tests).
"""
from .cache import (  # noqa: F401 -- the chapters' names
    CACHE_ENV,
    DEEP_BN,
    GAINS,
    LECTURE,
    LRS,
    NO_TRAIN_ENV,
    RUNS,
    Job,
    Run,
    RunCacheError,
    UnknownRunError,
    cache_dir,
    cache_lock,
    get,
    is_cached,
    load,
    path_of,
    recorded_jobs,
    save,
    spec_of,
    train_and_save,
)
