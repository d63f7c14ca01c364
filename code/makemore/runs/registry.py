"""The book's named runs: the lecture's loss log and the experiments' grid.

Declared here, outside the modules the run cache keys on
(:data:`makemore.TRAINING_MODULES`): a run's key is its configuration plus the
training code (:meth:`makemore.runs.jobs.RunSpec.key`), so editing a title here or
adding a run retrains nothing else. Chapters read ``runs.RUNS`` (re-exported by
:mod:`makemore.runs`); the MLP chapter introduces the first of them.
"""
from __future__ import annotations

from ..models import MLP_BATCHNORM_INITS
from .jobs import RunSpec, run_name


def mlp_run(init: str, title: str, trainer: str = "plain") -> RunSpec:
    """A row of the lecture's loss log: the one-hidden-layer MLP with ``init``."""
    # The loss-log rows without BatchNorm train with the lecture's own loop: with the
    # original init (saturated tanh, logits in the tens) the fused kernels' different
    # rounding grows over 200k steps into a ~0.005 change of the final loss, as large
    # as the tolerance. The loop is cheap for this small net; it records no ud history.
    return RunSpec(run_name("mlp", init=init), "mlp", init=init,
                   batchnorm=init in MLP_BATCHNORM_INITS,
                   decay_step=100_000, trainer=trainer, ud_every=0 if trainer == "plain" else 100,
                   title=title)


def deep_run(batchnorm: bool, gain: float, lr: float = 0.1, title: str = "",
             **kw) -> RunSpec:
    """A run of the experiments' grid: the six-layer net of the lecture's last part.
    ``kw``: the chapter "Beyond BatchNorm"'s fields of :class:`~makemore.runs.jobs.RunSpec`
    (``layernorm``, ``residual``, ``n_layers``, ``batch_size``, ``optimizer``; ``steps``,
    ``decay_step``, ``trainer`` and ``ud_every``)."""
    # the lecture's deep network decays the learning rate at step 150,000
    kw.setdefault("decay_step", 150_000)
    name_kw = {k: kw[k] for k in ("layernorm", "residual", "n_layers", "steps", "batch_size",
                                  "optimizer") if k in kw}
    return RunSpec(run_name("deep_mlp", batchnorm=batchnorm, gain=gain, lr=lr, **name_kw),
                   "deep_mlp", batchnorm=batchnorm, gain=gain, lr=lr, title=title, **kw)


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


def grid() -> list[RunSpec]:
    """The experiments' grid: each gain at lr 0.1, each other lr at gain 5/3,
    without and with BatchNorm."""
    return [deep_run(bn, gain, lr) for bn in (False, True)
            for gain, lr in [(g, 0.1) for g in GAINS] + [(5 / 3, lr) for lr in LRS]]


# Chapter "Beyond BatchNorm". The lecture's final network with LayerNorm in place of
# BatchNorm, trained exactly like it (200,000 steps, fast trainer): one new graph to compile.
DEEP_LN = run_name("deep_mlp", batchnorm=False, layernorm=True, gain=1.0, lr=0.1)
# The deep tanh net without BatchNorm at three depths, in three wirings: plain, residual
# blocks, and residual blocks with a LayerNorm inside (gain 5/3 without LayerNorm, 1 with
# it, as the lecture's final net), for the lecture's 1,001 steps: the per-layer pictures
# show what depth does within a few hundred steps. They train with the plain loop
# (makemore.engine.backprop writes these layers' backward by hand, to the bit of the
# lecture's loop): no graph to compile, where the fast trainer would compile one per depth
# and wiring for runs this short. (A fourth wiring, LayerNorm without residual blocks, was
# left out for the budget of `make runs`: ~60 s of CPU more.)
DEPTHS = (6, 20, 50)
WIRINGS = {"plain": (False, False), "residual": (False, True),
           "LayerNorm + residual": (True, True)}  # name: (layernorm, residual)
SHORT_STEPS = 1_001  # the lecture's cut: its loop breaks after the update of step 1,000
DEPTH_RUNS = [deep_run(False, 1.0 if ln else 5 / 3, n_layers=n, layernorm=ln, residual=res,
                       steps=SHORT_STEPS, trainer="plain", ud_every=0)
              for n in DEPTHS for ln, res in WIRINGS.values()]

# Chapter "Diagnostics": the reference network (no BatchNorm, gain 5/3) at the learning rate
# the lecture tried first for it, 0.001, for the lecture's 1,001 steps with update:data ratios
# at every step (makemore.train.train, as the chapter's other short runs): what a learning
# rate too small looks like.
DIAGNOSTICS_SLOW = deep_run(False, 5 / 3, 0.001, steps=SHORT_STEPS, trainer="plain", ud_every=1)

# The batch size: the lecture's final network (BatchNorm, gain 1) and the deep net without
# BatchNorm at tanh's gain 5/3, with 8, 32 and 128 examples per step. Short runs, 5,000
# steps with the lecture's schedule scaled down (lr 0.1, a tenth from 3/4 of the way,
# step 3,750): what the batch size does to BatchNorm -- the noise of its batch statistics,
# the gap between its running and calibrated statistics -- shows from the first thousand
# steps, and 200,000-step runs at batch 128 would cost more than the rest of the chapter
# together. The plain loop trains them (no graph to compile for one short run per shape).
BATCH_SIZES = (8, 32, 128)
BATCH_STEPS = 5_000
BATCH_RUNS = {(bn, b): deep_run(bn, 1.0 if bn else 5 / 3, batch_size=b, steps=BATCH_STEPS,
                                decay_step=BATCH_STEPS * 3 // 4, trainer="plain", ud_every=0)
              for bn in (False, True) for b in BATCH_SIZES}  # (batchnorm, batch size): run

# The gain sweep under SGD and Adam: the lecture's final network (BatchNorm) at the sweep's
# two extreme gains and gain 1, for the lecture's 1,001 steps of SGD at lr 0.1 or of Adam at
# Kingma & Ba's default step size, recording the update:data ratios at every step (the
# chapter averages the last 100). makemore.train.train trains them, one run per job: Adam's
# update and the per-step records are not in makemore.engine.backprop's stacked loop.
# They are exactly the chapter's makemore.analysis.optimizers.short_run, trained once here
# so that the chapter's page and its launch notebook do not train them.
ADAM_LR = 1e-3  # Kingma & Ba's default step size
SWEEP_LRS = {"sgd": 0.1, "adam": ADAM_LR}  # optimizer: its learning rate (step size)
LATE_GAINS = (0.2, 1.0, 3.0)
OPTIMIZER_RUNS = {(opt, g): deep_run(True, g, lr, steps=SHORT_STEPS, optimizer=opt,
                                     trainer="plain", ud_every=1)
                  for opt, lr in SWEEP_LRS.items() for g in LATE_GAINS}  # (optimizer, gain): run

RUNS: dict[str, RunSpec] = {s.name: s for s in [
    mlp_run("original", "original"),
    mlp_run("fix_softmax", "fix softmax confidently wrong"),
    mlp_run("fix_tanh", "fix tanh layer too saturated at init"),
    mlp_run("kaiming", "use semi-principled Kaiming init"),
    mlp_run("batchnorm", "add a BatchNorm layer", trainer="fast"),
    *grid(),
    deep_run(False, 1.0, layernorm=True, title="LayerNorm in place of BatchNorm"),
    *DEPTH_RUNS,
    *BATCH_RUNS.values(),
    *OPTIMIZER_RUNS.values(),
    DIAGNOSTICS_SLOW,
]}
# The runs of the chapter "Beyond BatchNorm" (its budget: benchmarks/runs_floor.py).
BEYOND_RUNS = (DEEP_LN, *(s.name for s in DEPTH_RUNS), *(s.name for s in BATCH_RUNS.values()),
               *(s.name for s in OPTIMIZER_RUNS.values()))

# The lecture's last network: 6 layers with BatchNorm, gain 1, cut at 1,000 steps there.
DEEP_BN = run_name("deep_mlp", batchnorm=True, gain=1.0, lr=0.1)

# The loss log's BatchNorm row as the lecture measured it (issue 29): its network still had
# b1 (the video's 12,297 parameters), so it drew every random number after W1 from another
# point of the stream than the final code's `batchnorm`. The lecture's own loop, bit for bit.
BATCHNORM_B1 = "batchnorm_b1"
RUNS[BATCHNORM_B1] = mlp_run(BATCHNORM_B1,
                             "add a BatchNorm layer, b1 kept (as the log was written)")
