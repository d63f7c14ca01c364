"""What an initialization does to the first steps of training, and where it ends up.

The lecture's first two fixes are read off the very first minibatch: the loss at step 0
against the loss of a uniform guess, :math:`\\ln 27` ("The initial loss"), and the tanh
outputs of the hidden layer, saturated or not ("Tanh saturation"). This module draws that
first minibatch exactly as the training loop does (:func:`first_step`), summarizes the
logits and the hidden layer in the numbers the chapters quote, and sets a trained run next
to its row of the lecture's loss log (:func:`vs_lecture`, :func:`lecture_table`), the
comparison every chapter of the loss log ends with ("The MLP", "The initial loss", "Tanh
saturation", "Kaiming").
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from IPython.display import Markdown

from .. import models
from ..data import Splits
from ..nn import Sequential
from ..show import tables
from . import stats

MLP_PARAMS = ("C", "W1", "b1", "W2", "b2")  # the lecture's names, in `parameters()` order
HIDDEN_PRE, HIDDEN = 2, 3  # layers of the MLP: [Embedding, Flatten, Linear, Tanh, Linear]


# ---------------------------------------------------------------------------
# the loss at initialization ("The initial loss")

def uniform_loss(n_classes: int = models.VOCAB_SIZE) -> float:
    """The cross-entropy of a uniform guess over ``n_classes``: :math:`-\\ln(1/n) = \\ln n`,
    the loss a network that knows nothing should start at."""
    return -math.log(1 / n_classes)


def random_logits_loss(scale: float, n_classes: int, n_draws: int = 4000,
                       seed: int = 0) -> float:
    """Mean cross-entropy of Gaussian logits of std ``scale``, over ``n_draws``
    examples whose correct class is 0 (any would do: the logits are iid)."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n_draws, n_classes, generator=g) * scale
    targets = torch.zeros(n_draws, dtype=torch.long)
    return F.cross_entropy(logits, targets).item()


TOY_HEADER = ("logits", "probability of the correct one", "loss")


def toy_rows(examples: Mapping[str, Sequence[float]], target: int = 2) -> list[list]:
    """Rows of the four-character toy: for each named list of logits, the softmax
    probability of class ``target`` and the cross-entropy (for :data:`TOY_HEADER`)."""
    rows = []
    for name, logits in examples.items():
        lg = torch.tensor([list(logits)], dtype=torch.float32)
        p = F.softmax(lg, dim=1)[0, target].item()
        loss = F.cross_entropy(lg, torch.tensor([target])).item()
        rows.append([f"{name}: [{', '.join(f'{x:.1f}' for x in logits)}]", p, loss])
    return rows


def logit_summary(logits: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """How confident the logits of a minibatch are: the cross-entropy (``loss``), its
    ``ratio`` to :func:`uniform_loss`, the std of the logits (``logit-std``), the mean
    gap between an example's largest and smallest logit (``logit-range``), the mean
    largest probability (``pmax``) and the median probability of the correct character
    (``pcorrect``)."""
    logits = logits.detach()
    probs = F.softmax(logits, dim=1)
    loss = F.cross_entropy(logits, targets).item()
    return {"loss": loss, "ratio": loss / uniform_loss(logits.shape[1]),
            "logit-std": logits.std().item(),
            "logit-range": (logits.max(1).values - logits.min(1).values).mean().item(),
            "pmax": probs.max(1).values.mean().item(),
            "pcorrect": probs[torch.arange(len(targets)), targets].median().item()}


def mean_loss(lossi: torch.Tensor, start: int = 0, stop: int | None = None) -> float:
    """The mean minibatch loss (not its log10) over steps ``start`` to ``stop - 1``
    of a run's ``lossi``: what the chapters quote for a stretch of training."""
    part = lossi[start:stop]
    if len(part) == 0:
        raise ValueError(f"no steps in [{start}, {stop}) of {len(lossi)}")
    return (10 ** part.double()).mean().item()


def param_counts(model: Sequential) -> dict[str, int]:
    """The MLP's parameter counts by the lecture's names ``C, W1, b1, W2, b2``."""
    params = list(model.parameters())
    if len(params) != len(MLP_PARAMS):
        raise ValueError(f"expected the MLP's {len(MLP_PARAMS)} parameters, got {len(params)}")
    return {name: p.nelement() for name, p in zip(MLP_PARAMS, params, strict=True)}


def zeroed(names: Iterable[str], init: models.MLPInit = "fix_softmax"
           ) -> tuple[Sequential, torch.Generator]:
    """An MLP built with the lecture's generator, the parameters ``names`` (of
    :data:`MLP_PARAMS`) set to exactly zero, and the generator, so that training
    continues the lecture's random stream (the exercise "Zero weights")."""
    names = set(names)
    if names - set(MLP_PARAMS):
        unknown = sorted(names - set(MLP_PARAMS))
        raise ValueError(f"unknown parameters {unknown}; "
                         f"the MLP's are {', '.join(MLP_PARAMS)}")
    g = models.new_generator()
    model = models.mlp(init, generator=g)
    with torch.no_grad():
        for name, p in zip(MLP_PARAMS, model.parameters(), strict=True):
            if name in names:
                p.zero_()
    return model, g


# ---------------------------------------------------------------------------
# the first minibatch ("Tanh saturation")

@dataclass
class FirstStep:
    """An MLP after one forward (and backward) pass on the training loop's first
    minibatch ``X``, ``Y``; no update. The layers keep their outputs in ``.out``."""

    model: Sequential
    X: torch.Tensor
    Y: torch.Tensor
    loss: float

    @property
    def logits(self) -> torch.Tensor:
        return self.model.layers[-1].out.detach()

    @property
    def hpreact(self) -> torch.Tensor:
        """(32, 200) the hidden layer's pre-activations ``x @ W1 + b1``."""
        return self.model.layers[HIDDEN_PRE].out.detach()

    @property
    def h(self) -> torch.Tensor:
        """(32, 200) the hidden layer's tanh outputs."""
        return self.model.layers[HIDDEN].out.detach()

    @property
    def w1_grad(self) -> torch.Tensor:
        """The gradient of ``W1`` on this minibatch (after a backward pass)."""
        return self.model.layers[HIDDEN_PRE].weight.grad


def first_step(init: models.MLPInit, splits: Splits, batch_size: int = 32,
               model: Sequential | None = None,
               backward: bool = True) -> FirstStep:
    """The lecture's ``break`` after one step: the MLP ``init`` built with the
    lecture's generator, then the first minibatch drawn from the same generator,
    exactly as the training loop draws it; one forward and (if ``backward``)
    one backward pass, no update.

    ``model``: run this network (a trained one) on the same first minibatch.
    """
    g = models.new_generator()
    built = models.mlp(init, generator=g)
    model = built if model is None else model
    ix = torch.randint(0, splits.Xtr.shape[0], (batch_size,), generator=g)
    X, Y = splits.Xtr[ix], splits.Ytr[ix]
    model.train()
    with torch.set_grad_enabled(backward):
        loss = F.cross_entropy(model(X), Y)
    if backward:
        for p in model.parameters():
            p.grad = None
        loss.backward()
    return FirstStep(model, X, Y, loss.item())


def hidden_summary(step: FirstStep, threshold: float = stats.DEAD) -> dict[str, float]:
    """The hidden layer of a first step: std and largest absolute value of the
    pre-activations (``hpre-std``, ``hpre-max``), the percentage of tanh outputs beyond
    ``threshold`` (``frac``) and the mean local gradient ``1 - h^2`` (``survival``)."""
    return {"hpre-std": step.hpreact.std().item(), "hpre-max": step.hpreact.abs().max().item(),
            "frac": 100 * stats.saturated_fraction(step.h, threshold),
            "survival": stats.tanh_grad_survival(step.h)}


def dead_neuron_summary(step: FirstStep, X: torch.Tensor,
                        threshold: float = stats.DEAD) -> dict[str, float]:
    """Dead neurons (saturated for every example) of ``step``'s network on its minibatch
    (``batch``) and on the examples ``X`` (``examples``), and, over ``X``, the smallest,
    median and largest percentage of examples for which a neuron is saturated
    (``min-rate``, ``median-rate``, ``max-rate``)."""
    model = step.model
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(X)
        h = model.layers[HIDDEN].out
    finally:
        model.train(was_training)
    rate = 100 * stats.saturation_map(h, threshold).float().mean(0)  # per neuron
    return {"batch": len(stats.dead_neurons(step.h, threshold)),
            "examples": len(stats.dead_neurons(h, threshold)),
            "min-rate": rate.min().item(), "median-rate": rate.median().item(),
            "max-rate": rate.max().item()}


# ---------------------------------------------------------------------------
# a trained run next to its row of the lecture's loss log

SPLITS = ("train", "val")


def vs_lecture(name: str, before: str | None = None) -> dict[str, float]:
    """Run ``name``'s final losses next to its row of the lecture's loss log
    (:data:`makemore.runs.LECTURE`): for each split, ``{split}``, ``{split}-lecture`` and
    ``{split}-delta`` (this build minus the lecture, rounded to the 4 decimals shown:
    never ``-0.0000``). With ``before``, the run it improves on: ``{split}-before`` and
    ``{split}-gain`` (before minus this run). Introduced in "The MLP"."""
    from .. import runs

    if name not in runs.LECTURE:
        raise KeyError(f"{name!r} is not a row of the lecture's loss log; "
                       f"its rows: {', '.join(runs.LECTURE)}")
    run = runs.get(name)
    prev = runs.get(before) if before is not None else None
    out: dict[str, float] = {}
    for split, lecture in zip(SPLITS, runs.LECTURE[name], strict=True):
        out[split] = run.losses[split]
        out[f"{split}-lecture"] = lecture
        out[f"{split}-delta"] = round(run.losses[split] - lecture, 4) + 0.0  # no -0.0
        if prev is not None:
            out[f"{split}-before"] = prev.losses[split]
            out[f"{split}-gain"] = prev.losses[split] - run.losses[split]
    return out


LECTURE_HEADER = ("loss-log entry", "train", "val", "lecture train",
                  "lecture val", "difference train", "difference val")


def lecture_rows(names: Sequence[str]) -> list[list]:
    """One row per run (for :data:`LECTURE_HEADER`): its loss-log title, this build's
    losses, the lecture's as it logged them (``2.07`` stays ``2.07``) and the
    differences."""
    from .. import runs

    rows = []
    for name in names:
        d = vs_lecture(name)
        rows.append([runs.RUNS[name].title, d["train"], d["val"],
                     repr(d["train-lecture"]), repr(d["val-lecture"]),
                     tables.number(d["train-delta"], signed=True),
                     tables.number(d["val-delta"], signed=True)])
    return rows


def lecture_table(names: Sequence[str]) -> Markdown:
    """:func:`lecture_rows` as a Markdown table (:func:`makemore.show.tables.markdown`)."""
    return tables.markdown(lecture_rows(names), LECTURE_HEADER, align="lrrrrrr")
