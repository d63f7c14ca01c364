"""What a run is, and the one way in to training a list of them.

A :class:`RunSpec` says everything that decides a run's numbers: the network
(``builder`` with its typed arguments), the optimizer and its schedule, the seed
and the trainer. :func:`train_job` trains a list of specs as one job -- the lecture's
plain loop one by one, or :mod:`makemore.engine.fast` all at once -- and returns what
the run cache stores for each. The book's runs themselves are declared in
:mod:`makemore.runs.registry`, which is *not* part of the code the cache keys on:
a new title or a new grid entry retrains nothing else.

Introduced in the chapter "Experiments" (the grid), used by every chapter that
loads a trained run.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .. import TRAINING_MODULES, fingerprint
from ..data import Splits
from ..models import MLP_BATCHNORM_INITS, SEED, deep_mlp, mlp, new_generator
from ..nn import Sequential
from ..train import BATCH_SIZE, OPTIMIZERS, STEPS, History, calibrate, evaluate, train

BUILDERS = ("mlp", "deep_mlp")
TRAINERS = ("fast", "plain")


def run_name(builder: str, *, init: str | None = None, batchnorm: bool = True,
             gain: float | None = None, lr: float = 0.1, layernorm: bool = False,
             residual: bool = False, n_layers: int = 6, steps: int = STEPS,
             batch_size: int = BATCH_SIZE, optimizer: str = "sgd") -> str:
    """The one place a run's name is made: an MLP row is named after its init
    (``"kaiming"``), a deep net after its configuration (``"deep_bn_g1.67_lr0.03"``;
    ``"deep_ln_..."`` with LayerNorm, and ``_L20``, ``_res``, ``_s1001``, ``_b8``, ``_adam``
    for another depth, residual blocks, another length than the lecture's 200,000 steps,
    another batch size than its 32, or another optimizer than its SGD)."""
    if builder == "mlp":
        if not init:
            raise ValueError("an mlp run needs its init (one of makemore.models.MLP_INITS)")
        return init
    if gain is None:
        raise ValueError("a deep_mlp run needs its gain")
    norm = "bn" if batchnorm else "ln" if layernorm else "nobn"
    return (f"deep_{norm}_g{gain:.3g}_lr{lr:g}" + (f"_L{n_layers}" if n_layers != 6 else "")
            + ("_res" if residual else "") + (f"_s{steps}" if steps != STEPS else "")
            + (f"_b{batch_size}" if batch_size != BATCH_SIZE else "")
            + (f"_{optimizer}" if optimizer != "sgd" else ""))


@dataclass(frozen=True)
class RunSpec:
    """A run: the network, the optimizer and its schedule, and the trainer.

    ``builder`` is a function of :mod:`makemore.models`: ``"mlp"`` takes ``init``
    (the lecture's loss-log row), ``"deep_mlp"`` takes ``batchnorm`` and ``gain``.
    ``title`` is for readers only and is not part of the cache key.
    """

    name: str
    builder: str
    init: str | None = None  # mlp only: "original", "fix_softmax", ..., "batchnorm_b1"
    # deep_mlp: BatchNorm after every Linear; mlp: follows from init (MLP_BATCHNORM_INITS)
    batchnorm: bool = False
    gain: float | None = None  # deep_mlp only: the weights' gain over sqrt(fan_in)
    # deep_mlp only (chapter "Beyond BatchNorm"): LayerNorm where BatchNorm would be,
    # residual blocks around the hidden layers, the number of Linear layers
    layernorm: bool = False
    residual: bool = False
    n_layers: int = 6
    lr: float = 0.1
    decay_step: int = 100_000  # lr -> lr / 10 from this step on
    steps: int = STEPS
    batch_size: int = BATCH_SIZE  # examples per step (the chapter "Beyond BatchNorm" varies it)
    # "sgd", the lecture's; "adam" (chapter "Beyond BatchNorm"), with ``lr`` as its step size
    optimizer: str = "sgd"
    seed: int = SEED
    ud_every: int = 100  # record update:data ratios every this many steps (0: never)
    # "fast": makemore.engine.fast (compiled, vectorized; SGD only); "plain": makemore.train.train,
    # the lecture's own loop, bit for bit (update:data ratios at every step or never)
    trainer: str = "fast"
    title: str = ""

    def __post_init__(self) -> None:
        if self.builder not in BUILDERS:
            raise ValueError(f"unknown builder {self.builder!r}; choose one of {BUILDERS}")
        if self.trainer not in TRAINERS:
            raise ValueError(f"unknown trainer {self.trainer!r}; choose one of {TRAINERS}")
        if self.builder == "mlp" and (self.init is None or self.gain is not None
                                      or self.batchnorm != (self.init in MLP_BATCHNORM_INITS)):
            raise ValueError(f"{self.name}: an mlp run takes init only "
                             f"(batchnorm follows from the init, one of {MLP_BATCHNORM_INITS})")
        if self.builder == "mlp" and (self.layernorm or self.residual or self.n_layers != 6):
            raise ValueError(f"{self.name}: layernorm, residual and n_layers are deep_mlp's")
        if self.builder == "deep_mlp" and (self.gain is None or self.init is not None):
            raise ValueError(f"{self.name}: a deep_mlp run takes batchnorm and gain, no init")
        if self.batchnorm and (self.layernorm or self.residual):
            raise ValueError(f"{self.name}: BatchNorm goes with neither LayerNorm nor "
                             f"residual blocks (see makemore.models.deep_mlp)")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"{self.name}: unknown optimizer {self.optimizer!r}; "
                             f"choose one of {OPTIMIZERS}")
        if self.trainer == "fast" and self.optimizer != "sgd":
            raise ValueError(f"{self.name}: the fast trainer does SGD only; "
                             f"train {self.optimizer} with trainer='plain'")
        if self.trainer == "plain" and self.ud_every not in (0, 1):
            raise ValueError(f"{self.name}: the plain loop records update:data ratios at every "
                             f"step or never; set ud_every=1 or ud_every=0 (or trainer='fast')")

    @property
    def label(self) -> str:
        """A reader's name: ``"BatchNorm, gain 1.67, lr 0.03"``, or an MLP's title."""
        if self.builder == "mlp":
            return self.title or self.name
        bn = "BatchNorm" if self.batchnorm else "LayerNorm" if self.layernorm else "no BatchNorm"
        extra = (f", {self.n_layers} layers" if self.n_layers != 6 else "") + \
            (", residual" if self.residual else "") + \
            (f", batch {self.batch_size}" if self.batch_size != BATCH_SIZE else "")
        opt = ", Adam" if self.optimizer == "adam" else ""
        return f"{bn}, gain {self.gain:.3g}{opt}, lr {self.lr:g}{extra}"

    def build(self, generator: torch.Generator | None = None) -> Sequential:
        """The freshly initialized model; draws from ``generator`` as the lecture."""
        if self.builder == "mlp":
            return mlp(self.init, generator=generator)
        return deep_mlp(batchnorm=self.batchnorm, gain=self.gain, layernorm=self.layernorm,
                        residual=self.residual, n_layers=self.n_layers, generator=generator)

    @property
    def loop(self) -> bool:
        """Does :func:`makemore.train.train` itself train this run, one model at a time?
        The plain trainer's runs with Adam or with update:data ratios, which the stacked
        loop of :mod:`makemore.engine.backprop` (SGD, no records) does not do."""
        return self.trainer == "plain" and (self.optimizer != "sgd" or self.ud_every == 1)

    def config(self) -> dict:
        """Every field that decides the run's numbers: all but the name and the title."""
        fields = dataclasses.asdict(self)
        del fields["name"], fields["title"]
        return fields

    def key(self) -> str:
        """Cache key: the configuration plus the fingerprint of the training code.

        Not the torch version: a run trained by another torch is still this run
        (its ``meta`` records which torch trained it)."""
        blob = json.dumps(self.config(), sort_keys=True) + fingerprint(TRAINING_MODULES)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cost(specs: list[RunSpec]) -> float:
    """A job's rough cost, to start the longest first: model-steps x parameters,
    x3 for the plain loop (measured: a stack of 4 loss-log MLPs takes ~3x the time
    per parameter-step of the fast trainer's batch of 7 deep nets), x the square root
    of the batch size over 32 (measured, plain loop, the deep nets: a step of 8
    examples takes 0.75-0.93x the time of a step of 32, a step of 128 1.5-1.7x)."""
    s0 = specs[0]
    n_params = sum(p.numel() for p in s0.build().parameters())
    return (len(specs) * s0.steps * n_params * (3 if s0.trainer == "plain" else 1)
            * (s0.batch_size / BATCH_SIZE) ** 0.5)


def _stackable(a: RunSpec, b: RunSpec) -> bool:
    """Can ``a`` and ``b`` train in one job? The same trainer, architecture and
    schedule and optimizer; the fast trainer takes a learning rate per model, the plain loop one
    for all, and stacks only the MLPs whose backward :mod:`makemore.engine.backprop` writes.
    A run of :func:`makemore.train.train` itself (:attr:`RunSpec.loop`) trains alone: a job
    of its own keeps both cores busy."""
    from ..engine import backprop
    from ..engine.functional import same_architecture

    if a.loop or b.loop:
        return False
    if a.trainer != b.trainer or ((a.steps, a.decay_step, a.ud_every, a.batch_size, a.optimizer)
                                  != (b.steps, b.decay_step, b.ud_every, b.batch_size,
                                      b.optimizer)):
        return False
    ma, mb = a.build(), b.build()
    if a.trainer == "plain" and (a.lr != b.lr or not backprop.supports(ma)):
        return False
    return same_architecture(ma, mb)


def groups(specs: list[RunSpec]) -> list[list[RunSpec]]:
    """Split runs into jobs that each train as one batch: the fast trainer's
    vectorized step, or the plain loop's stack of MLPs (:func:`_stackable`)."""
    jobs: list[list[RunSpec]] = []
    for spec in specs:
        for job in jobs:
            if _stackable(job[0], spec):
                job.append(spec)
                break
        else:
            jobs.append([spec])
    return jobs


def _has_batchnorm(model: Sequential) -> bool:
    return any(hasattr(layer, "running_mean") for layer in model.layers)


def _record(spec: RunSpec, model: Sequential, hist: History, splits: Splits) -> dict:
    """Evaluate a freshly trained model and pack everything the cache stores."""
    losses = evaluate(model, splits)
    state = model.state_dict()  # before calibration: the running statistics
    calibrated = None
    if _has_batchnorm(model):
        calibrated = evaluate(calibrate(model, splits.Xtr), splits)
        model.load_state_dict(state)
    return {
        "spec": spec.config(), "state": state, "history": dataclasses.asdict(hist),
        "losses": losses, "calibrated": calibrated,
        "meta": {"device": str(model.layers[0].weight.device), "torch": str(torch.__version__),
                 "python": platform.python_version(), "machine": platform.machine(),
                 "threads": torch.get_num_threads()},
    }


def _after(progress: Callable[[int], None], before: int) -> Callable[[int], None]:
    """``progress`` for a run that starts after ``before`` steps of its job."""
    return lambda done: progress(before + done)


def train_job(specs: list[RunSpec], splits: Splits,
              progress: Callable[[int], None] | None = None) -> list[dict]:
    """Train ``specs`` as one job and return the record the cache stores for each.

    The specs must form one group (:func:`groups`): the fast trainer trains them
    vectorized, the plain loop as one stack of models
    (:func:`makemore.engine.backprop.train_plain_many`, bit-identical to
    :func:`makemore.train.train`), or :func:`makemore.train.train` itself a run with Adam
    or update:data records (:attr:`RunSpec.loop`).
    ``progress`` is called with the steps done by the job (summed over its runs).
    Each record's ``meta["job"]`` says which job trained it: an id, the member
    runs, the trainer and the job's wall time (training and evaluation).
    """
    t0 = time.perf_counter()
    gens = [new_generator(s.seed) for s in specs]
    models = [s.build(g) for s, g in zip(specs, gens, strict=False)]
    # the trainers report steps per model; the job reports them summed over its runs
    each = None if progress is None else (lambda done: progress(done * len(specs)))
    s0 = specs[0]
    if s0.trainer == "fast":
        from ..engine.fast import train_many

        hists = train_many(models, splits.Xtr, splits.Ytr, steps=s0.steps,
                           batch_size=s0.batch_size,
                           lrs=[s.lr for s in specs], decay_step=s0.decay_step,
                           generators=gens, ud_every=s0.ud_every, progress=each)
    elif s0.loop:  # makemore.train.train itself: Adam, or update:data ratios at each step
        hists = [train(m, splits.Xtr, splits.Ytr, steps=s.steps, batch_size=s.batch_size,
                       lr=s.lr, decay_step=s.decay_step, generator=g, record_ud=s.ud_every == 1,
                       optimizer=s.optimizer,
                       progress=False if progress is None else _after(progress, k * s.steps))
                 for k, (s, m, g) in enumerate(zip(specs, models, gens, strict=True))]
    else:
        from ..engine.backprop import train_plain_many

        # bit-identical to train.train (the lecture's loop) for each, less Python around it
        hists = train_plain_many(models, splits.Xtr, splits.Ytr, steps=specs[0].steps,
                                 batch_size=specs[0].batch_size,
                                 lr=specs[0].lr, decay_step=specs[0].decay_step,
                                 generators=gens, progress=each)
    records = [_record(s, m, h, splits) for s, m, h in zip(specs, models, hists, strict=False)]
    job = {"id": uuid.uuid4().hex[:12], "members": [s.name for s in specs],
           "trainer": hists[0].trainer, "seconds": time.perf_counter() - t0}
    for r in records:
        r["meta"]["job"] = job
    return records
