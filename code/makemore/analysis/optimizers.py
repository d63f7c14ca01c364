"""SGD and Adam under the update:data picture: short runs of the deep net with either
optimizer, and the gain sweep at the first step and after the lecture's 1,001 steps
(the registry's ``OPTIMIZER_RUNS``), in numbers. Introduced in the chapter "Beyond BatchNorm".

SGD's step is ``lr * grad``: a weight scaled by a factor ``a`` in front of a BatchNorm gets
a gradient ``1/a`` times as large (the loss does not see the scale), so its update:data
ratio falls as ``1/a**2``. Adam divides the gradient by the root of its own running
mean square, and the step is about ``lr`` whatever the gradient's scale: the ratio falls
as ``1/a`` only, the data's own growth. :func:`first_step_ud` and :func:`slope` measure it.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..data import Splits
from ..models import deep_mlp, new_generator
from ..nn import Sequential
from ..runs.cache import Run
from ..runs.registry import ADAM_LR, SHORT_STEPS  # noqa: F401 -- ADAM_LR: the chapter's name
from ..train import History, train

SWEEP_GAINS = (0.2, 0.5, 1.0, 5 / 3, 3.0)


def short_run(splits: Splits, optimizer: str = "sgd", lr: float = 0.1,
              steps: int = SHORT_STEPS, **config) -> tuple[Sequential, History]:
    """``models.deep_mlp(**config)`` trained for ``steps`` steps of the lecture's loop
    with ``optimizer`` at ``lr`` (no decay), recording the update:data ratios and keeping
    the gradients of the last step (the four pictures). Returns the model and its history."""
    g = new_generator()
    model = deep_mlp(generator=g, **config)
    hist = train(model, splits.Xtr, splits.Ytr, steps, lr=lr, decay_step=steps, generator=g,
                 record_ud=True, retain_grad=True, optimizer=optimizer, progress=False)
    return model, hist


def hidden_ud(ud: torch.Tensor) -> torch.Tensor:
    """The hidden weights' mean log10 update:data ratio at each record, from the
    ``(records, weight matrices)`` columns of :func:`makemore.analysis.stats.update_ratios`
    (``C`` first, the output weight last)."""
    return ud[:, 1:-1].mean(1)


def first_step_ud(splits: Splits, gains: Sequence[float], optimizer: str, lr: float,
                  **config) -> list[float]:
    """For each gain, the hidden weights' mean log10 update:data ratio of the first step
    (one step of :func:`short_run`)."""
    from .stats import update_ratios

    out = []
    for gain in gains:
        model, hist = short_run(splits, optimizer, lr, steps=1, gain=gain, **config)
        out.append(hidden_ud(update_ratios(hist.ud, model.parameters())[0])[0].item())
    return out


def slope(gains: Sequence[float], ratios: Sequence[float]) -> float:
    """The least-squares slope of ``ratios`` (log10) against ``log10(gains)``: -2 where
    the ratio falls as ``1/gain**2``, -1 where it falls as ``1/gain``."""
    x = torch.tensor([math.log10(g) for g in gains], dtype=torch.float64)
    y = torch.tensor(list(ratios), dtype=torch.float64)
    x, y = x - x.mean(), y - y.mean()
    return ((x * y).sum() / (x * x).sum()).item()


def late_sweep(trained: Sequence[Run], n: int = 100) -> tuple[list[float], list[float]]:
    """For each run of the lecture's 1,001 steps (the registry's ``OPTIMIZER_RUNS`` at each
    gain), the hidden weights' mean log10 update:data ratio over its last ``n`` steps, and
    its loss over them (:func:`makemore.analysis.health.tail_loss`)."""
    from .health import tail_loss
    from .stats import update_ratios

    ratios, losses = [], []
    for run in trained:
        if len(run.ud) != len(run.lossi):
            raise ValueError(f"{run.spec.name}: the late sweep needs update:data ratios at every "
                             f"step (ud_every=1), it has {len(run.ud)} of {len(run.lossi)}")
        ud = update_ratios(run.ud, run.model.parameters())[0]  # (steps, weight matrices)
        ratios.append(hidden_ud(ud)[-n:].mean().item())
        losses.append(tail_loss(run.lossi, n))
    return ratios, losses


def sweep_numbers(first: dict[str, tuple[Sequence[float], Sequence[float]]],
                  late: dict[str, tuple[Sequence[float], Sequence[float], Sequence[float]]]
                  ) -> dict[str, float]:
    """The gain sweep for the prose: ``<optimizer>-first`` and ``<optimizer>-late``, the
    :func:`slope` of the first step's ratios and of the last 100 steps' (``first[name]``:
    gains and ratios; ``late[name]``: gains, ratios and losses, :func:`late_sweep`), and
    ``<optimizer>-loss-min`` / ``-max`` over the gains; ``<optimizer>`` lower-cased."""
    out: dict[str, float] = {}
    for name, (gains, ratios) in first.items():
        out[f"{name.lower()}-first"] = slope(gains, ratios)
    for name, (gains, ratios, losses) in late.items():
        out |= {f"{name.lower()}-late": slope(gains, ratios),
                f"{name.lower()}-loss-min": min(losses), f"{name.lower()}-loss-max": max(losses)}
    return out
