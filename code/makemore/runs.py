"""The book's named training runs and their on-disk cache.

Every full-length run the book shows is declared once here, in :data:`RUNS`.
A chapter asks for a run by name (``runs.get("kaiming")``); the first caller
trains it, everyone after that loads it. The cache key is the run's
configuration plus a fingerprint of the modules that decide its numbers
(:data:`makemore.TRAINING_MODULES`), so editing a layer or the trainer retrains,
while editing a plot does not. ``python -m makemore pretrain`` trains every
missing run up front, batching runs of the same architecture into one
vectorized job and spreading the jobs over the CPU cores.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import TRAINING_MODULES, fingerprint
from .data import REPO_ROOT, Splits, load_splits
from .models import SEED, deep_mlp, mlp, new_generator
from .nn import Sequential
from .train import STEPS, calibrate, evaluate, train

CACHE_ENV = "MAKEMORE_CACHE"
NO_TRAIN_ENV = "MAKEMORE_NO_TRAIN"  # set: a missing run is an error instead of a training job


@dataclass(frozen=True)
class RunSpec:
    """What to train: a model builder with its arguments, and the SGD schedule."""

    name: str
    builder: str  # "mlp" or "deep_mlp" (functions of makemore.models)
    kwargs: tuple[tuple[str, object], ...] = ()
    lr: float = 0.1
    decay_step: int = 100_000
    steps: int = STEPS
    seed: int = SEED
    ud_every: int = 100
    title: str = ""
    # "fast": makemore.fast (compiled, vectorized); "plain": makemore.train.train, the
    # lecture's own loop, bit for bit
    trainer: str = "fast"

    def build(self, generator: torch.Generator | None = None) -> Sequential:
        """The freshly initialized model; draws from ``generator`` as the lecture."""
        fn = {"mlp": mlp, "deep_mlp": deep_mlp}[self.builder]
        return fn(**dict(self.kwargs), generator=generator)

    def key(self) -> str:
        """Cache key: every field except the name and title, plus the code fingerprint."""
        fields = dataclasses.asdict(self)
        fields.pop("name")
        fields.pop("title")
        blob = json.dumps(fields, sort_keys=True, default=str)
        blob += fingerprint(TRAINING_MODULES)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _mlp(name: str, init: str, title: str, trainer: str = "plain") -> RunSpec:
    # The loss-log rows without BatchNorm train with the lecture's own loop: with the
    # original init (saturated tanh, logits in the tens) the fused kernels' different
    # rounding grows over 200k steps into a ~0.005 change of the final loss, as large
    # as the tolerance. The loop is cheap for this small net; it records no ud history.
    return RunSpec(name, "mlp", (("init", init),), decay_step=100_000, title=title,
                   trainer=trainer, ud_every=0 if trainer == "plain" else 100)


def _deep(name: str, batchnorm: bool, gain: float, lr: float = 0.1, title: str = "") -> RunSpec:
    # the lecture's deep network decays the learning rate at step 150,000
    return RunSpec(name, "deep_mlp", (("batchnorm", batchnorm), ("gain", gain)), lr=lr,
                   decay_step=150_000, title=title)


# The lecture's loss log, in order (train, val): what `reproduce` compares against.
LECTURE = {
    "original": (2.1245, 2.1682),
    "fix_softmax": (2.07, 2.13),
    "fix_tanh": (2.0356, 2.1027),
    "kaiming": (2.0377, 2.1070),
    "batchnorm": (2.0674, 2.1057),  # evaluated with the running statistics
    "batchnorm_calibrated": (2.0668, 2.1048),  # after the calibration pass
}

GAINS = (0.5, 1.0, 5 / 3, 3.0)
LRS = (0.03, 0.3, 1.0)  # besides 0.1, tried at tanh's gain 5/3


def _grid() -> list[RunSpec]:
    specs = []
    for bn in (False, True):
        tag = "bn" if bn else "nobn"
        for gain in GAINS:
            specs.append(_deep(f"deep_{tag}_g{gain:.3g}_lr0.1", bn, gain))
        for lr in LRS:
            specs.append(_deep(f"deep_{tag}_g1.67_lr{lr:g}", bn, 5 / 3, lr=lr))
    return specs


RUNS: dict[str, RunSpec] = {s.name: s for s in [
    _mlp("original", "original", "original"),
    _mlp("fix_softmax", "fix_softmax", "fix softmax confidently wrong"),
    _mlp("fix_tanh", "fix_tanh", "fix tanh layer too saturated at init"),
    _mlp("kaiming", "kaiming", "use semi-principled Kaiming init"),
    _mlp("batchnorm", "batchnorm", "add a BatchNorm layer", trainer="fast"),
    *_grid(),
]}
# The lecture's last network: 6 layers with BatchNorm, gain 1, cut at 1,000 steps there.
DEEP_BN = "deep_bn_g1_lr0.1"


def cache_dir() -> Path:
    """``$MAKEMORE_CACHE``, else ``.cache/runs`` in a source checkout, else ``~/.cache``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    if (REPO_ROOT / "pyproject.toml").exists():
        return REPO_ROOT / ".cache" / "runs"
    return Path.home() / ".cache" / "makemore" / "runs"


def _path(spec: RunSpec) -> Path:
    return cache_dir() / f"{spec.name}-{spec.key()}.pt"


@dataclass
class Run:
    """A trained run: the model, what it recorded and how it evaluates."""

    spec: RunSpec
    model: Sequential
    lossi: torch.Tensor  # (steps,) log10 minibatch loss
    ud: torch.Tensor  # (records, n_params) log10 update:data ratios
    ud_steps: torch.Tensor
    losses: dict[str, float]  # eval mode, running statistics
    calibrated: dict[str, float] | None  # BatchNorm nets: after the calibration pass
    meta: dict = field(default_factory=dict)  # trainer, seconds, device, versions

    @property
    def train_loss(self) -> float:
        return self.losses["train"]

    @property
    def val_loss(self) -> float:
        return self.losses["val"]


def _has_batchnorm(model: Sequential) -> bool:
    return any(hasattr(layer, "running_mean") for layer in model.layers)


def _finish(spec: RunSpec, model: Sequential, hist, splits: Splits) -> dict:
    """Evaluate a freshly trained model and pack everything the cache stores."""
    losses = evaluate(model, splits)
    state = model.state_dict()  # before calibration: the running statistics
    calibrated = None
    if _has_batchnorm(model):
        calibrated = evaluate(calibrate(model, splits.Xtr), splits)
        model.load_state_dict(state)
    return {
        "spec": dataclasses.asdict(spec), "state": state, "lossi": hist.lossi,
        "ud": hist.ud, "ud_steps": hist.ud_steps, "losses": losses,
        "calibrated": calibrated,
        "meta": {"trainer": hist.trainer, "seconds": hist.seconds,
                 "device": str(model.layers[0].weight.device), "torch": str(torch.__version__),
                 "python": platform.python_version(), "machine": platform.machine(),
                 "threads": torch.get_num_threads()},
    }


def _save(blob: dict, path: Path) -> None:
    """Write atomically: a crash leaves no half-written run behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        torch.save(blob, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load(spec: RunSpec, path: Path) -> Run:
    blob = torch.load(path, weights_only=True)
    model = spec.build(new_generator(spec.seed)).load_state_dict(blob["state"])
    return Run(spec, model, blob["lossi"], blob["ud"], blob["ud_steps"], blob["losses"],
               blob["calibrated"], blob["meta"])


def train_group(specs: list[RunSpec], splits: Splits | None = None) -> list[float]:
    """Train runs of one architecture together (one vectorized job) and cache them.

    Returns the wall time per run's share of the job.
    """
    from .fast import train_many

    splits = load_splits() if splits is None else splits
    # keys now, before training: the code that trains is the code the key describes
    paths = [_path(s) for s in specs]
    gens = [new_generator(s.seed) for s in specs]
    models = [s.build(g) for s, g in zip(specs, gens)]
    s0 = specs[0]
    if s0.trainer == "plain":
        hists = [_train_plain(s, m, g, splits) for s, m, g in zip(specs, models, gens)]
    else:
        hists = train_many(models, splits.Xtr, splits.Ytr, steps=s0.steps,
                           lrs=[s.lr for s in specs], decay_step=s0.decay_step,
                           generators=gens, ud_every=s0.ud_every)
    for spec, model, hist, path in zip(specs, models, hists, paths):
        _save(_finish(spec, model, hist, splits), path)
    return [h.seconds for h in hists]


def _train_plain(spec: RunSpec, model: Sequential, g: torch.Generator, splits: Splits):
    """The reference loop, packed like a fast run's history."""
    from .fast import FastHistory

    t0 = time.perf_counter()
    hist = train(model, splits.Xtr, splits.Ytr, steps=spec.steps, lr=spec.lr,
                 decay_step=spec.decay_step, generator=g, progress=False)
    n = len(model.parameters())
    return FastHistory(torch.tensor(hist.lossi), torch.empty(0, n), torch.empty(0, dtype=torch.long),
                       "plain", time.perf_counter() - t0)


def is_cached(name: str) -> bool:
    return _path(RUNS[name]).exists()


def get(name: str) -> Run:
    """The trained run ``name`` of :data:`RUNS`: from the cache, else trained now."""
    if name not in RUNS:
        raise KeyError(f"unknown run {name!r}; the book's runs are: {', '.join(RUNS)}")
    spec = RUNS[name]
    path = _path(spec)
    if not path.exists():
        if os.environ.get(NO_TRAIN_ENV):
            raise RuntimeError(
                f"run {name!r} is not in the cache {cache_dir()} and {NO_TRAIN_ENV} is set; "
                f"train it first with `python -m makemore pretrain {name}`")
        train_group([spec])
    return _load(spec, path)


def groups(names: list[str]) -> list[list[RunSpec]]:
    """Split runs into jobs that can train as one vectorized batch: same builder
    arguments apart from the gain, same schedule length and decay step."""
    from .fast import same_architecture

    jobs: list[list[RunSpec]] = []
    for name in names:
        spec = RUNS[name]
        for job in jobs:
            s0 = job[0]
            if (spec.trainer == s0.trainer == "fast"  # the plain loop trains one at a time
                    and (s0.steps, s0.decay_step, s0.ud_every) == (spec.steps, spec.decay_step,
                                                                   spec.ud_every)
                    and same_architecture(s0.build(), spec.build())):
                job.append(spec)
                break
        else:
            jobs.append([spec])
    return jobs


def _worker(names: list[str]) -> list[tuple[str, float]]:
    torch.set_num_threads(1)  # at batch 32, one thread per process beats two
    specs = [RUNS[n] for n in names]
    t0 = time.perf_counter()
    train_group(specs)
    return [(n, time.perf_counter() - t0) for n in names]


def pretrain(names: list[str] | None = None, jobs: int = 2, log=print) -> dict[str, float]:
    """Train every missing run (all of :data:`RUNS` by default) into the cache.

    Jobs of one architecture run vectorized; up to ``jobs`` processes work in
    parallel, each with one thread. Returns the wall seconds of each trained run's job.
    """
    names = [n for n in (names or list(RUNS)) if not is_cached(n)]
    if not names:
        log("pretrain: every run is cached in " + str(cache_dir()))
        return {}
    work = [[s.name for s in job] for job in groups(names)]
    work.sort(key=len, reverse=True)  # longest first keeps both cores busy
    log(f"pretrain: {len(names)} runs in {len(work)} jobs on {jobs} process(es) -> {cache_dir()}")
    t0 = time.perf_counter()
    done: dict[str, float] = {}
    if jobs <= 1 or len(work) == 1:
        for job in work:
            done.update(_worker(job))
            log(f"  trained {', '.join(job)} ({time.perf_counter() - t0:.0f} s)")
    else:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(jobs, maxtasksperchild=1) as pool:
            for result in pool.imap_unordered(_worker, work):
                done.update(result)
                log(f"  trained {', '.join(n for n, _ in result)} "
                    f"({time.perf_counter() - t0:.0f} s)")
    log(f"pretrain: done in {time.perf_counter() - t0:.0f} s")
    sys.stdout.flush()
    return done
