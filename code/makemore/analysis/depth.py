"""Depth with and without residual blocks: how the spread of a deep tanh net's
activations and gradients changes from layer to layer, at initialization and after a
short training, in numbers.

The runs are the registry's ``DEPTH_RUNS`` (:mod:`makemore.runs.registry`): the deep
net without BatchNorm at three depths, in three wirings (plain, residual blocks,
residual blocks with a LayerNorm inside). :func:`look` diagnoses one of them twice, as
built and as trained, on one minibatch (:func:`makemore.analysis.stats.diagnose`), at
each hidden layer's output: the tanh of a plain layer, the residual stream after a
block. Introduced in the chapter "Beyond BatchNorm".
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import runs
from ..data import Splits
from ..models import new_generator
from ..nn import Residual, Tanh
from ..runs.jobs import RunSpec
from ..runs.registry import DEPTH_RUNS, WIRINGS
from .health import tail_loss
from .stats import Diagnosis, diagnose

# where the pictures look: each hidden layer's output (a residual block's is the stream)
STREAM = (Tanh, Residual)
AFTER_SEED = 1  # the minibatch the trained nets are diagnosed on (at init: the lecture's)


def wiring(spec: RunSpec) -> str:
    """A depth run's wiring, as the chapter names it (a key of :data:`WIRINGS`)."""
    return {v: k for k, v in WIRINGS.items()}[(spec.layernorm, spec.residual)]


@dataclass
class DepthLook:
    """One depth run: its spec, its pictures at init and trained, and how it ended."""

    spec: RunSpec
    init: Diagnosis
    trained: Diagnosis
    val: float  # validation loss after the short training (eval mode)
    tail: float  # minibatch loss over its last 100 steps

    @property
    def key(self) -> tuple[int, str]:
        return self.spec.n_layers, wiring(self.spec)


def ratios(d: Diagnosis) -> dict[str, float]:
    """The health checklist's two first/last numbers of a diagnosis: the activations'
    std in the last hidden layer over the first, the gradients' in the first over the last."""
    return {"act": d.forward[-1].std / d.forward[0].std,
            "grad": d.backward[0].std / d.backward[-1].std}


def look(name: str, splits: Splits) -> DepthLook:
    """Diagnose the depth run ``name`` as built (on the lecture's first minibatch, from
    the generator it was built with) and as trained (one minibatch drawn with seed
    :data:`AFTER_SEED`)."""
    run = runs.get(name)
    g = new_generator(run.spec.seed)
    init = diagnose(run.spec.build(g), splits.Xtr, splits.Ytr, generator=g, kind=STREAM)
    trained = diagnose(run.model, splits.Xtr, splits.Ytr, kind=STREAM,
                       generator=torch.Generator().manual_seed(AFTER_SEED))
    return DepthLook(run.spec, init, trained, run.val_loss, tail_loss(run.lossi))


def look_all(splits: Splits) -> dict[tuple[int, str], DepthLook]:
    """:func:`look` at every depth run, by ``(depth, wiring)``."""
    looks = [look(spec.name, splits) for spec in DEPTH_RUNS]
    return {lk.key: lk for lk in looks}


def table_rows(looks: dict[tuple[int, str], DepthLook]) -> list[list]:
    """One row per run: depth, wiring, the two ratios at init and trained, the losses."""
    rows = []
    for (depth, kind), lk in looks.items():
        a, b = ratios(lk.init), ratios(lk.trained)
        rows.append([depth, kind, f"{a['act']:.2f} → {b['act']:.2f}",
                     f"{a['grad']:.3g} → {b['grad']:.3g}", lk.tail, lk.val])
    return rows


TABLE_HEADER = ("layers", "wiring", "activation std, last / first (init → trained)",
                "gradient std, first / last (init → trained)", "loss, last 100 steps",
                "val loss")


def numbers(looks: dict[tuple[int, str], DepthLook]) -> dict[str, float]:
    """The numbers the chapter quotes, keyed ``"<depth>-<wiring slug>-<what>"``: ``act`` and
    ``grad`` ratios at init (``-init``) and trained, ``val`` and ``tail`` losses."""
    slug = {"plain": "plain", "residual": "res", "LayerNorm + residual": "lnres"}
    out: dict[str, float] = {}
    for (depth, kind), lk in looks.items():
        p = f"{depth}-{slug[kind]}"
        for when, d in (("init", lk.init), ("trained", lk.trained)):
            for k, v in ratios(d).items():
                out[f"{p}-{k}-{when}"] = v
        out[f"{p}-val"], out[f"{p}-tail"] = lk.val, lk.tail
        out[f"{p}-std-last-init"] = lk.init.forward[-1].std
    return out
