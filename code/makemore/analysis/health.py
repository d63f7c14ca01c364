"""A network's four diagnostic pictures reduced to a handful of numbers.

The lecture reads its pictures (activations, their gradients, the weights' gradients,
the update:data ratios; :mod:`makemore.analysis.stats`) by eye: is the spread steady from layer
to layer, how much is saturated, does one weight matrix stick out, do the updates sit
near a thousandth of the data? The functions here answer those questions with numbers,
as dictionaries whose keys the prose of a chapter quotes (``glue_all(prefix, numbers)``)
and whose values its checklist table shows. Introduced in the chapter "Diagnostics".

Conventions, as in the lecture's six-Linear network: ``weights[0]`` is the embedding
``C``, ``weights[-1]`` the output layer's weight, the ones in between the *hidden*
weights; an update:data history has one column per weight matrix in the same order.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from .stats import Diagnosis, LayerStats, ParamStats

TAIL = 100  # "the last hundred steps": a single minibatch's loss or ratio is noisy


def tail_loss(lossi: torch.Tensor, n: int = TAIL) -> float:
    """Mean loss of the last ``n`` steps of a ``History.lossi`` (log10 losses)."""
    return (10 ** torch.as_tensor(lossi[-n:]).double()).mean().item()


def hidden_grad_data(weights: Sequence[ParamStats]) -> float:
    """Mean grad:data ratio of the hidden weights (all but ``C`` and the last weight)."""
    hidden = [w.grad_data for w in weights[1:-1]]
    if not hidden:
        raise ValueError("hidden_grad_data: need C, at least one hidden weight and the last")
    return sum(hidden) / len(hidden)


def forward_numbers(forward: Sequence[LayerStats]) -> dict[str, float]:
    """Spread and saturation of a forward pass, layer by layer (plot 1).

    Keys: ``std-first``, ``std-last``; saturation in percent: ``sat-first``,
    ``sat-last``, ``sat-min``, ``sat-max``, and ``sat-rest-min``/``sat-rest-max`` over
    the layers after the first (the first is fed by the embedding, not by a tanh).
    """
    if len(forward) < 2:
        raise ValueError(f"forward_numbers: need at least two layers, got {len(forward)}")
    sats = [100 * s.saturated for s in forward]
    return {"std-first": forward[0].std, "std-last": forward[-1].std,
            "sat-first": sats[0], "sat-last": sats[-1], "sat-min": min(sats),
            "sat-max": max(sats), "sat-rest-min": min(sats[1:]), "sat-rest-max": max(sats[1:])}


def numbers(forward: Sequence[LayerStats], backward: Sequence[LayerStats],
            weights: Sequence[ParamStats]) -> dict[str, float]:
    """Plots 1-3 in numbers: :func:`forward_numbers`, and

    - ``gstd-first``, ``gstd-last``, ``gstd-ratio``: the spread of the activation
      gradients in the first and last layer, and first over last;
    - ``gd-C``, ``gd-hidden-min``, ``gd-hidden-max``, ``gd-last``: grad:data ratios;
      ``gd-last-ratio``: the last weight's over the hidden weights' mean.
    """
    hidden = [w.grad_data for w in weights[1:-1]]
    return forward_numbers(forward) | {
        "gstd-first": backward[0].std, "gstd-last": backward[-1].std,
        "gstd-ratio": backward[0].std / backward[-1].std,
        "gd-C": weights[0].grad_data, "gd-hidden-min": min(hidden),
        "gd-hidden-max": max(hidden), "gd-last": weights[-1].grad_data,
        "gd-last-ratio": weights[-1].grad_data / hidden_grad_data(weights)}


def diagnosis_numbers(d: Diagnosis) -> dict[str, float]:
    """:func:`numbers` of a :func:`makemore.analysis.stats.diagnose` pass, and its ``loss``."""
    return numbers(d.forward, d.backward, d.weights) | {"loss": d.loss}


def training_numbers(lossi: torch.Tensor, ud: torch.Tensor, n: int = TAIL
                     ) -> dict[str, float]:
    """A short run's loss and update:data ratios (plot 4), from its ``lossi`` and the
    ``(steps, weight matrices)`` ratios of :func:`makemore.analysis.stats.update_ratios`.

    Keys: ``loss`` (mean of the last ``n`` steps); the mean log10 update:data over the
    last ``n`` steps of ``C`` (``ud-C``), of the hidden weights (``ud-hidden-min``,
    ``ud-hidden-max``) and of the last weight (``ud-last``); ``ud-last-first10``: the
    last weight's over the first ten steps.
    """
    tail = ud[-n:].mean(0)
    return {"loss": tail_loss(lossi, n), "ud-C": tail[0].item(),
            "ud-hidden-min": tail[1:-1].min().item(), "ud-hidden-max": tail[1:-1].max().item(),
            "ud-last": tail[-1].item(), "ud-last-first10": ud[:10, -1].mean().item()}


def checklist(forward: Sequence[LayerStats], backward: Sequence[LayerStats],
              ud: torch.Tensor, lossi: torch.Tensor, n: int = TAIL) -> dict[str, str]:
    """One network's column of the chapter's closing table: the loss the pictures are
    meant to improve, and one number per picture, formatted.

    The most saturated layer is "-" for a network without tanh layers (saturation means
    nothing there); the update:data ratio is the hidden weights' mean over the last ``n``.
    """
    linear = all(s.name.endswith("(Linear)") for s in forward)
    return {"loss, last 100 steps": f"{tail_loss(lossi, n):.3f}",
            "most saturated layer": "-" if linear
            else f"{max(100 * s.saturated for s in forward):.1f}%",
            "activation std, last / first layer": f"{forward[-1].std / forward[0].std:.2f}",
            "gradient std, first / last layer": f"{backward[0].std / backward[-1].std:.2f}",
            "log10 update:data, hidden weights": f"{ud[-n:, 1:-1].mean():+.2f}"}


def spread(s: LayerStats) -> str:
    """A table cell for one layer's activations: std, and the saturated share in
    parentheses (left out for Linear outputs, which have no flat tails)."""
    if s.name.endswith("(Linear)"):
        return f"{s.std:.2f}"
    return f"{s.std:.2f} ({100 * s.saturated:.1f}%)"


def step_window(ud: torch.Tensor, steps: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
    """Mean log10 update:data per column over the records with ``lo <= step < hi``
    (non-finite records, ``log10(0)``, left out)."""
    m = (steps >= lo) & (steps < hi)
    if not m.any():
        raise ValueError(f"step_window: no record with {lo} <= step < {hi}")
    w = ud[m]
    return torch.where(torch.isfinite(w), w, torch.nan).nanmean(0)


def full_run_numbers(ud: torch.Tensor, steps: torch.Tensor, decay_step: int,
                     window: int = 10_000, smooth: int = 20, join: float = 0.05
                     ) -> dict[str, float | int]:
    """The update:data ratios of a long run with a learning-rate drop, in numbers.

    ``ud``: ``(records, weight matrices)`` from :func:`makemore.analysis.stats.update_ratios`,
    recorded at ``steps``. Keys: the hidden weights' mean over the first 1,000 steps
    (``hidden-early``), the ``window`` steps before ``decay_step`` (``hidden-before``) and
    the last ``window`` steps (``hidden-after``); ``drop``, before minus after; ``C-before``
    and ``last-before``; ``records``; ``last-gap0``, how far the last weight starts above
    the hidden weights' mean (both means of ``smooth`` records), and ``last-join``, the
    first step from which it is within ``join`` of it.
    """
    end = int(steps[-1]) + 1
    early = step_window(ud, steps, 0, 1000)
    before = step_window(ud, steps, decay_step - window, decay_step)
    after = step_window(ud, steps, end - window, end)
    gap = (ud[:, -1] - ud[:, 1:-1].mean(1)).unfold(0, smooth, 1).mean(1)
    close = (gap < join).nonzero()
    if len(close) == 0:
        raise ValueError(f"the last weight's ratio never comes within {join} of the others'")
    return {"hidden-early": early[1:-1].mean().item(),
            "hidden-before": before[1:-1].mean().item(),
            "hidden-after": after[1:-1].mean().item(),
            "drop": (before[1:-1] - after[1:-1]).mean().item(),
            "C-before": before[0].item(), "last-before": before[-1].item(),
            "records": len(steps), "last-gap0": gap[0].item(),
            "last-join": int(steps[smooth - 1 + close[0, 0]])}
