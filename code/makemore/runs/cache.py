"""The book's trained runs and their on-disk cache.

A chapter asks for a run by name (``runs.get("kaiming")``); the first caller
trains it, everyone after that loads it. A run's file is named after its key
(:meth:`makemore.runs.jobs.RunSpec.key`: configuration + training code), so editing a
layer or the trainer retrains, while editing a plot or a title does not.
``python -m makemore pretrain`` (:mod:`makemore.runs.pretrain`) trains every missing
run up front. Introduced in the MLP chapter (``runs.get("original")``).
"""
from __future__ import annotations

import contextlib
import copy
import fcntl
import functools
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..data import REPO_ROOT, Splits, load_splits
from ..models import new_generator
from ..nn import Sequential
from ..train import History
from .jobs import RunSpec, train_job
from .registry import DEEP_BN, GAINS, LECTURE, LRS, RUNS  # noqa: F401 -- the chapters' names

CACHE_ENV = "MAKEMORE_CACHE"
NO_TRAIN_ENV = "MAKEMORE_NO_TRAIN"  # set: a missing run is an error instead of a training job


class UnknownRunError(KeyError):
    """A run name that is not in :data:`RUNS`; the message lists the runs."""

    def __init__(self, names: list[str]):
        super().__init__(names)
        self.names = names

    def __str__(self) -> str:
        return (f"unknown run{'s' if len(self.names) > 1 else ''} {', '.join(self.names)}; "
                f"the book's runs are: {', '.join(RUNS)}")


class RunCacheError(RuntimeError):
    """A run that cannot be loaded and may not be trained here; says what to do."""


def spec_of(name: str) -> RunSpec:
    """``RUNS[name]``, or an :class:`UnknownRunError` that lists the runs."""
    if name not in RUNS:
        raise UnknownRunError([name])
    return RUNS[name]


def cache_dir() -> Path:
    """``$MAKEMORE_CACHE``, else ``.cache/runs`` in a source checkout, else ``~/.cache``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    if (REPO_ROOT / "pyproject.toml").exists():
        return REPO_ROOT / ".cache" / "runs"
    return Path.home() / ".cache" / "makemore" / "runs"


def path_of(spec: RunSpec) -> Path:
    """The run's file in the cache: ``<name>-<key>.pt``."""
    return cache_dir() / f"{spec.name}-{spec.key()}.pt"


@contextlib.contextmanager
def cache_lock(log=None):
    """Hold the cache's lock file while training into it: a second ``make runs``
    (or a page training a missing run) waits, then finds the runs cached."""
    d = cache_dir()
    d.mkdir(parents=True, exist_ok=True)
    with open(d / ".lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if log:
                log(f"waiting for another process training into {d} (lock {d / '.lock'})")
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            # with the lock held, a .part file is left over from a killed writer
            for stale in d.glob(".*.part"):
                stale.unlink(missing_ok=True)
            yield d
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@dataclass
class Job:
    """The job a run trained in: its id, the runs trained together, the trainer
    and the job's wall time (training, evaluation and calibration)."""

    id: str
    members: list[str]
    trainer: str
    seconds: float


@dataclass
class Run:
    """A trained run: the model, what it recorded and how it evaluates."""

    spec: RunSpec
    model: Sequential
    history: History
    losses: dict[str, float]  # eval mode, running statistics
    calibrated: dict[str, float] | None  # BatchNorm nets: after the calibration pass
    meta: dict = field(default_factory=dict)  # device, versions, threads, job

    @property
    def lossi(self) -> torch.Tensor:
        """(steps,) log10 minibatch loss."""
        return self.history.lossi

    @property
    def ud(self) -> torch.Tensor:
        """(records, n_params) log10 update:data ratios."""
        return self.history.ud

    @property
    def ud_steps(self) -> torch.Tensor:
        return self.history.ud_steps

    @property
    def job(self) -> Job:
        """The job this run trained in (:class:`Job`), as recorded when it trained."""
        return Job(**self.meta["job"])

    @property
    def train_loss(self) -> float:
        return self.losses["train"]

    @property
    def val_loss(self) -> float:
        return self.losses["val"]


def save(blob: dict, path: Path) -> None:
    """Write atomically: a crash or a kill leaves no half-written run behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        torch.save(blob, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@functools.lru_cache(maxsize=32)
def _read(path: Path, stamp: tuple[int, int]) -> dict:
    """The run file's contents, read once per file version (``stamp``: its mtime and
    size): a page, or a static explorer drawing one frame per step, asks for the same
    run many times. 32 runs' files are ~30 MB in memory."""
    return torch.load(path, weights_only=True)


def load(spec: RunSpec, path: Path) -> Run:
    """The run stored in ``path``; a :class:`RunCacheError` naming the file when it
    is truncated, corrupt or not a run file. Every call builds its own model and
    history (a caller may switch the model to eval mode or change a tensor) from
    contents read once (:func:`_read`)."""
    try:
        st = path.stat()
        blob = _read(path, (st.st_mtime_ns, st.st_size))
        model = spec.build(new_generator(spec.seed)).load_state_dict(blob["state"])
        history = History(**{k: v.clone() if isinstance(v, torch.Tensor) else v
                             for k, v in blob["history"].items()})
        return Run(spec, model, history, dict(blob["losses"]),
                   dict(blob["calibrated"]) if blob["calibrated"] else None,
                   copy.deepcopy(blob["meta"]))
    except Exception as e:  # noqa: BLE001 -- torch raises many kinds for a bad file
        first = (str(e).strip().splitlines() or [""])[0]
        first = first if len(first) <= 80 else first[:79] + "…"
        raise RunCacheError(f"the run file {path} cannot be read ({type(e).__name__}: "
                            f"{first}): it is truncated or corrupt") from e


def is_cached(name: str) -> bool:
    """Is the run's file (for the current training code) in the cache?"""
    return path_of(spec_of(name)).exists()


def train_and_save(specs: list[RunSpec], splits: Splits | None = None, progress=None) -> None:
    """Train ``specs`` as one job (:func:`makemore.runs.jobs.train_job`) and cache them."""
    splits = load_splits() if splits is None else splits
    # paths now, before training: the code that trains is the code the key describes
    paths = [path_of(s) for s in specs]
    for record, path in zip(train_job(specs, splits, progress), paths):
        save(record, path)


def get(name: str) -> Run:
    """The trained run ``name`` of :data:`RUNS`: from the cache, else trained now.

    A file that cannot be read is retrained with a notice, or is an error naming
    the file when ``$MAKEMORE_NO_TRAIN`` is set (as is a missing run then).
    """
    spec = spec_of(name)
    path = path_of(spec)
    if path.exists():
        try:
            return load(spec, path)
        except RunCacheError as e:
            if os.environ.get(NO_TRAIN_ENV):
                raise RunCacheError(
                    f"{e}. {NO_TRAIN_ENV} is set, so it is not retrained here: delete it and "
                    f"train the run again with `python -m makemore pretrain {name}`") from e
            print(f"makemore: {e}; retraining {name} now", file=sys.stderr)
            path.unlink(missing_ok=True)
    elif os.environ.get(NO_TRAIN_ENV):
        raise RunCacheError(
            f"run {name!r} is not in the cache {cache_dir()} and {NO_TRAIN_ENV} is set; "
            f"train it first with `python -m makemore pretrain {name}`")
    with cache_lock():
        if not path.exists():  # another process may have trained it while we waited
            train_and_save([spec])
    return load(spec, path)


def recorded_jobs(names: list[str] | None = None) -> dict[str, Job]:
    """The recorded jobs of the cached runs ``names`` (default: every run), by job id."""
    out: dict[str, Job] = {}
    for name in names or list(RUNS):
        if is_cached(name):
            job = get(name).job
            out.setdefault(job.id, job)
    return out
