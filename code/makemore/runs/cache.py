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
import io
import os
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import env
from ..data import REPO_ROOT, Splits, load_splits
from ..models import new_generator
from ..nn import Sequential
from ..train import History
from .jobs import RunSpec, cost, train_job
from .registry import DEEP_BN, GAINS, LECTURE, LRS, RUNS  # noqa: F401 -- the chapters' names

CACHE_ENV = "MAKEMORE_CACHE"
NO_TRAIN_ENV = "MAKEMORE_NO_TRAIN"  # on: a missing run is an error instead of a training job
STAGING = ".fetch-"  # fetch-runs' staging folders in the cache: .fetch-<pid>-<random>


class UnknownRunError(KeyError):
    """A run name that is not in :data:`RUNS`; the message lists the runs."""

    status = 2  # bad input, for the command line

    def __init__(self, names: list[str]):
        super().__init__(names)
        self.names = names

    def __str__(self) -> str:
        return (f"unknown run{'s' if len(self.names) > 1 else ''} {', '.join(self.names)}; "
                f"the book's runs are: {', '.join(RUNS)}.")


class RunCacheError(RuntimeError):
    """A run that cannot be loaded and may not be trained here, or a cache that cannot
    be used; says what to do. ``status``: the command line's exit status (1: a fault,
    2: bad input such as a cache path that names a file)."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


def spec_of(name: str) -> RunSpec:
    """``RUNS[name]``, or an :class:`UnknownRunError` that lists the runs."""
    if name not in RUNS:
        raise UnknownRunError([name])
    return RUNS[name]


def cache_dir() -> Path:
    """``$MAKEMORE_CACHE`` (a relative path is relative to the repository root), else
    ``.cache/runs`` in a source checkout, else ``~/.cache/makemore/runs``. A path that
    names a file is a :class:`RunCacheError` (exit status 2)."""
    default = (REPO_ROOT / ".cache" / "runs" if (REPO_ROOT / "pyproject.toml").exists()
               else Path.home() / ".cache" / "makemore" / "runs")
    d = env.path(CACHE_ENV, default)
    if d.exists() and not d.is_dir():
        raise RunCacheError(f"the run cache {d} ({CACHE_ENV}) is a file, not a directory: "
                            f"set {CACHE_ENV} to a directory, or unset it for {default}.",
                            status=2)
    return d


def make_cache_dir() -> Path:
    """:func:`cache_dir`, created if missing; a :class:`RunCacheError` that says why
    it cannot be (read-only, no permission, a file in the way)."""
    d = cache_dir()
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunCacheError(env.describe(e, "could not create the run cache", fallback=d)) from e
    return d


def path_of(spec: RunSpec) -> Path:
    """The run's file in the cache: ``<name>-<key>.pt``."""
    return cache_dir() / f"{spec.name}-{spec.key()}.pt"


@contextlib.contextmanager
def cache_lock(log=None):
    """Hold the cache's lock file while training into it: a second ``make runs``
    (or a page training a missing run) waits, then finds the runs cached."""
    d = make_cache_dir()
    try:
        f = open(d / ".lock", "a+")
    except OSError as e:  # read-only, no permission
        raise RunCacheError(env.describe(e, "could not lock the run cache", fallback=d)) from e
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if log:
                log(f"waiting for another process training into {d} (lock {d / '.lock'})")
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            _clear_leftovers(d)
            yield d
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _clear_leftovers(d: Path) -> None:
    """With the lock held: a .part file is left over from a killed writer, a staging
    folder of fetch-runs from a fetch whose process is gone."""
    for stale in d.glob(".*.part"):
        stale.unlink(missing_ok=True)
    for staging in d.glob(STAGING + "*"):
        pid = staging.name[len(STAGING):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(staging, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: no signal, just "is it there?"
    except ProcessLookupError:
        return False
    except PermissionError:  # there, but another user's
        return True
    return True


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
    """Write atomically: a crash, a kill or a full disk leaves no half-written run
    behind. The bytes are made in memory and written with ``os.write``, so a full disk
    is an :class:`OSError` naming ``path`` (torch's own writer says "unexpected pos")."""
    buf = io.BytesIO()
    torch.save(blob, buf)
    data = memoryview(buf.getbuffer())
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        try:
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)  # on disk before the rename makes it the run
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as e:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        raise OSError(e.errno, e.strerror, str(path)) from e
    except BaseException:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        raise


@functools.lru_cache(maxsize=32)
def _read(path: Path, stamp: tuple[int, int]) -> dict:
    """The run file's contents, read once per file version (``stamp``: its mtime and
    size): a page, or a static explorer drawing one frame per step, asks for the same
    run many times. 32 runs' files are ~30 MB in memory. torch.load does not check the
    zip's CRC-32s, so a flipped bit in a tensor would load as other numbers: the CRCs
    are checked too (~3 ms for a 1 MB run)."""
    data = path.read_bytes()
    blob = torch.load(io.BytesIO(data), weights_only=True)
    bad = zipfile.ZipFile(io.BytesIO(data)).testzip()
    if bad is not None:
        raise ValueError(f"its member {bad} fails its CRC-32 check")
    return blob


def identity_problem(spec: RunSpec, blob, key: str | None) -> str | None:
    """Why ``blob`` (a run file's contents) is not the run ``spec`` trained by the code
    of ``key`` (``None``: any code), or ``None`` when it is. A run file carries its name,
    configuration and key: a file copied over another run's is never served as it."""
    if not isinstance(blob, dict) or not isinstance(blob.get("key"), str):
        return "holds no run key (written by another version of the package)"
    if blob.get("name") != spec.name or blob.get("spec") != spec.config():
        return f"holds the run {blob.get('name')!r}, not {spec.name!r}"
    if key is not None and blob["key"] != key:
        return (f"was trained by other training code (its key is {blob['key']}, "
                f"this code's {key})")
    return None


def contents(spec: RunSpec, path: Path) -> dict:
    """The checked contents of the run file ``path`` for ``spec``; else a
    :class:`RunCacheError` that names the file and the run to train again."""
    try:
        st = path.stat()
        blob = _read(path, (st.st_mtime_ns, st.st_size))
    except Exception as e:  # noqa: BLE001 -- torch raises many kinds for a bad file
        first = (str(e).strip().splitlines() or [""])[0]
        first = first if len(first) <= 80 else first[:79] + "…"
        raise RunCacheError(f"the run file {path} cannot be read ({type(e).__name__}: "
                            f"{first}): it is truncated or corrupt") from e
    why = identity_problem(spec, blob, spec.key())
    if why:
        raise RunCacheError(f"the run file {path} {why}")
    return blob


def check(spec: RunSpec, path: Path) -> tuple[str, str] | None:
    """What ``python -m makemore list`` says of a cached file: ``None`` when it is the
    run ``spec``, else ``("corrupt" or "wrong", why)``. Costs a read of the file, its
    CRC-32s and unpickling (~12 ms for a 1 MB run)."""
    try:
        contents(spec, path)
    except RunCacheError as e:
        return ("corrupt" if "cannot be read" in str(e) else "wrong", str(e))
    return None


def load(spec: RunSpec, path: Path) -> Run:
    """The run stored in ``path``; a :class:`RunCacheError` naming the file when it
    is truncated, corrupt or not a run file. Every call builds its own model and
    history (a caller may switch the model to eval mode or change a tensor) from
    contents read once (:func:`_read`)."""
    blob = contents(spec, path)
    try:
        model = spec.build(new_generator(spec.seed)).load_state_dict(blob["state"])
        history = History(**{k: v.clone() if isinstance(v, torch.Tensor) else v
                             for k, v in blob["history"].items()})
        return Run(spec, model, history, dict(blob["losses"]),
                   dict(blob["calibrated"]) if blob["calibrated"] else None,
                   copy.deepcopy(blob["meta"]))
    except Exception as e:  # noqa: BLE001 -- a run file of another layout
        raise RunCacheError(f"the run file {path} does not fit the run {spec.name!r} "
                            f"({type(e).__name__}: {e})") from e


def is_cached(name: str) -> bool:
    """Is the run's file (for the current training code) in the cache?"""
    return path_of(spec_of(name)).exists()


def train_and_save(specs: list[RunSpec], splits: Splits | None = None, progress=None) -> None:
    """Train ``specs`` as one job (:func:`makemore.runs.jobs.train_job`) and cache them."""
    splits = load_splits() if splits is None else splits
    # paths now, before training: the code that trains is the code the key describes
    paths = [path_of(s) for s in specs]
    keys = [s.key() for s in specs]
    for spec, key, record, path in zip(specs, keys, train_job(specs, splits, progress), paths,
                                       strict=True):
        save({**record, "name": spec.name, "key": key}, path)  # the file says what it holds


# Model-steps x parameters per second on one core (:func:`makemore.runs.jobs.cost`), for
# the estimate printed before a run trains where it is used: `make runs` on the 2-core
# build machine trained two compiled jobs of 7 deep nets x 200,000 steps (cost 6.5e10)
# in 780 and 986 s, 6.7e7-8.4e7 per second.
COST_PER_SECOND = 7e7


@contextlib.contextmanager
def announce(specs: list[RunSpec]):
    """Say in one sentence what trains now and about how long it takes, and show a
    progress bar (tqdm.auto: a widget in Jupyter and Colab, text elsewhere); yields the
    ``progress`` callback of :func:`train_and_save`."""
    from tqdm.auto import tqdm

    minutes = cost(specs) / COST_PER_SECOND / 60
    names = ", ".join(s.name for s in specs)
    print(f"makemore: training {names} now (not in the run cache {cache_dir()}), about "
          f"{max(1, round(minutes))} minute{'s' if round(minutes) > 1 else ''} on one core. "
          f"Ahead of time: `python -m makemore pretrain {names}`; or fetch the published "
          f"runs: `python -m makemore fetch-runs`.", file=sys.stderr)
    total = sum(s.steps for s in specs)
    with tqdm(total=total, unit="step", desc=f"training {names}", mininterval=1.0) as bar:
        yield lambda done: bar.update(min(done, total) - bar.n)


def get(name: str) -> Run:
    """The trained run ``name`` of :data:`RUNS`: from the cache, else trained now.

    A file that cannot be read, or holds another run, is retrained with a notice, or
    is an error naming the file when ``$MAKEMORE_NO_TRAIN`` is on (as is a missing run
    then).
    """
    spec = spec_of(name)
    path = path_of(spec)
    if path.exists():
        try:
            return load(spec, path)
        except RunCacheError as e:
            if env.flag(NO_TRAIN_ENV):
                raise RunCacheError(
                    f"{e}. {NO_TRAIN_ENV} is on, so it is not retrained here: delete it and "
                    f"train the run again with `python -m makemore pretrain {name}`.") from e
            print(f"makemore: {e}; retraining {name} now", file=sys.stderr)
            path.unlink(missing_ok=True)
    elif env.flag(NO_TRAIN_ENV):
        raise RunCacheError(
            f"run {name!r} is not in the cache {cache_dir()} and {NO_TRAIN_ENV} is on; "
            f"train it first with `python -m makemore pretrain {name}`.")
    with cache_lock():
        if not path.exists():  # another process may have trained it while we waited
            with announce([spec]) as progress:
                train_and_save([spec], progress=progress)
    return load(spec, path)


def recorded_jobs(names: list[str] | None = None) -> dict[str, Job]:
    """The recorded jobs of the cached runs ``names`` (default: every run), by job id."""
    out: dict[str, Job] = {}
    for name in names or list(RUNS):
        if is_cached(name):
            job = get(name).job
            out.setdefault(job.id, job)
    return out
