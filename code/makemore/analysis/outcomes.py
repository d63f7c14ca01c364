"""How the trained runs of the grid ended: final losses, divergence, health, cost.

The chapter "Experiments" trains the lecture's six-layer network for 200,000 steps over
a grid (:func:`makemore.runs.registry.grid`): two *arms*, the gain at learning rate 0.1 and
the learning rate at gain 5/3, each with and without BatchNorm. This module reads the
trained runs back and answers the chapter's questions about them: did a run diverge
(and at which step), how far apart are the final losses along an arm, how healthy are
the ``tanh`` layers of a trained network, and what did a run cost in its training job.
Its tables come out as :func:`makemore.show.tables.markdown`; the numbers the prose quotes
come out as dicts for :func:`makemore.book.glue_all` (text as ``Markdown``, for
``{glue:md}``). Its figures are in :mod:`makemore.show.grid_plots`.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from IPython.display import Markdown

from .. import models, runs
from ..data import Splits
from ..nn import Linear, Sequential, Tanh
from ..runs import Run, registry
from ..show import tables
from . import stats

ARMS = ("gain", "lr")  # the two arms of the grid: what varies along each
ARM_LR = 0.1  # the learning rate of the gain arm
ARM_GAIN = 5 / 3  # the gain of the learning-rate arm: tanh's Kaiming gain
GAIN_LABELS = {0.5: "0.5", 1.0: "1", 5 / 3: "5/3", 3.0: "3"}
MLP_ROWS = ("original", "fix_softmax", "fix_tanh", "kaiming", "batchnorm")  # the loss log


# ---------------------------------------------------------------------------
# one run

def diverged(run: Run) -> bool:
    """Did the run's loss become NaN or infinite at some step (its weights are lost)?"""
    return not (math.isfinite(run.losses["val"]) and bool(torch.isfinite(run.lossi).all()))


def first_bad_step(run: Run) -> int | None:
    """The first step whose minibatch loss is NaN or infinite; ``None`` if there is none."""
    bad = (~torch.isfinite(run.lossi)).nonzero()
    return int(bad[0]) if len(bad) else None


def finite_lossi(run: Run) -> torch.Tensor:
    """``run.lossi`` with NaN where a step's loss was not finite, so means skip nothing
    silently: a window with a bad step has a NaN mean (a curve that stops)."""
    return torch.where(torch.isfinite(run.lossi), run.lossi, torch.nan)


def linear_weight_columns(model: Sequential) -> list[int]:
    """The columns of ``run.ud`` that belong to the Linear layers' weights (not ``C``)."""
    return [j for j, _, block in stats.weight_columns(model) if block]


def weight_ud(run: Run, lo: int = 0, hi: int = 1) -> float:
    """Mean log10 update:data ratio of the Linear weights over the records with
    ``lo <= step < hi`` (default: the first step)."""
    keep = (run.ud_steps >= lo) & (run.ud_steps < hi)
    ud = run.ud[keep][:, linear_weight_columns(run.model)]
    if ud.numel() == 0:
        raise ValueError(f"{run.spec.name}: no update:data records in steps [{lo}, {hi})")
    return ud[torch.isfinite(ud)].mean().item()


def weight_std(model: Sequential) -> float:
    """Mean standard deviation of the Linear layers' weights of ``model``."""
    stds = [layer.weight.std().item() for layer in model.layers if isinstance(layer, Linear)]
    return sum(stds) / len(stds)


def mean_weight_ud(run: Run, records: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """(steps, mean log10 update:data of the Linear weights), averaged over the weights
    and over windows of ``records`` records (10 records: 1,000 steps, as the loss curves)."""
    ud = run.ud[:, linear_weight_columns(run.model)]
    ud = torch.where(torch.isfinite(ud), ud, torch.nan).nanmean(1)
    _, steps = stats.window_means(run.ud_steps.double(), records)
    _, means = stats.window_means(ud, records)
    return steps, means


@dataclass
class TanhHealth:
    """The ``tanh`` layers of a trained network on one batch: per layer, the fraction
    of saturated outputs and the number of dead neurons (saturated for every example)."""

    saturated: list[float]
    dead: list[int]


def tanh_health(run: Run, splits: Splits, examples: int = 1000) -> TanhHealth:
    """One diagnostic pass (:func:`makemore.analysis.stats.diagnose`) of ``examples`` training
    examples through the trained network: saturation and dead neurons per ``tanh``."""
    d = stats.diagnose(run.model, splits.Xtr, splits.Ytr, batch_size=examples,
                       generator=torch.Generator().manual_seed(0))
    tanhs = [layer.out for layer in run.model.layers if isinstance(layer, Tanh)]
    return TanhHealth([s.saturated for s in d.forward],
                      [len(stats.dead_neurons(h)) for h in tanhs])


# ---------------------------------------------------------------------------
# the grid

def gain_label(gain: float) -> str:
    """The gain as the book writes it: ``5/3`` for tanh's, else ``0.5``, ``1``, ``3``."""
    return next((text for g, text in GAIN_LABELS.items() if math.isclose(g, gain)),
                f"{gain:g}")


def axis_label(vary: str, x: float) -> str:
    """A tick label along an arm: a gain (:func:`gain_label`) or a learning rate."""
    return gain_label(x) if vary == "gain" else f"{x:g}"


def grid_runs() -> dict[str, Run]:
    """Every run of the experiments' grid (:func:`makemore.runs.registry.grid`), by name:
    not the registry's other deep networks (chapter "Beyond BatchNorm")."""
    return {spec.name: runs.get(spec.name) for spec in registry.grid()}


def arm(grid: dict[str, Run], batchnorm: bool, vary: str) -> list[tuple[float, Run]]:
    """``[(x, run)]`` along one arm of the grid, sorted by ``x``: ``vary="gain"`` at
    learning rate 0.1, ``vary="lr"`` at gain 5/3."""
    if vary not in ARMS:
        raise ValueError(f"an arm varies one of {ARMS}, not {vary!r}")
    out = []
    for run in grid.values():
        s = run.spec
        if s.batchnorm != batchnorm:
            continue
        if vary == "gain" and math.isclose(s.lr, ARM_LR):
            out.append((s.gain, run))
        elif vary == "lr" and math.isclose(s.gain, ARM_GAIN):
            out.append((s.lr, run))
    return sorted(out, key=lambda t: t[0])


def at(grid: dict[str, Run], batchnorm: bool, vary: str, x: float) -> Run:
    """The run at ``x`` along an arm (e.g. ``at(grid, False, "lr", 1.0)``)."""
    for value, run in arm(grid, batchnorm, vary):
        if math.isclose(value, x):
            return run
    raise KeyError(f"no run at {vary} {x:g} ({'with' if batchnorm else 'without'} BatchNorm)")


def val_range(grid: dict[str, Run], batchnorm: bool, vary: str) -> tuple[float, float]:
    """(best, worst) final validation loss along an arm; worst is ``inf`` if a run diverged."""
    vals = [math.inf if diverged(r) else r.losses["val"] for _, r in arm(grid, batchnorm, vary)]
    return min(vals), max(vals)


def grid_table(grid: dict[str, Run]) -> Markdown:
    """The grid's final losses, one row per run: the gain arm first, then the other
    learning rates, without BatchNorm and then with (BatchNorm runs also calibrated)."""
    def order(run: Run) -> tuple:
        s = run.spec
        return s.batchnorm, not math.isclose(s.lr, ARM_LR), s.gain, s.lr

    rows = []
    for run in sorted(grid.values(), key=order):
        s, cal = run.spec, run.calibrated or {}
        train = run.losses["train"]
        if diverged(run):
            step = first_bad_step(run)
            train = "diverged" if step is None else f"diverged at step {step:,}"
        rows.append(["yes" if s.batchnorm else "no", gain_label(s.gain), f"{s.lr:g}", train,
                     run.losses["val"], cal.get("train", "–"), cal.get("val", "–")])
    return tables.markdown(rows, ["BatchNorm", "gain", "lr", "train", "val",
                                  "train (calibrated)", "val (calibrated)"], align="cr" + "r" * 5)


def grid_numbers(grid: dict[str, Run]) -> dict[str, object]:
    """The numbers "The grid" quotes: per network (``nobn``/``bn``) and arm, the best
    and worst final val loss and their spread; the val loss at learning rate 1; the
    mean val - train gap along the gain arm; how many runs diverged (a sentence)."""
    out: dict[str, object] = {"n-grid": len(grid)}
    for bn, tag in ((False, "nobn"), (True, "bn")):
        for vary in ARMS:
            best, worst = val_range(grid, bn, vary)
            out[f"{tag}-{vary}-best"] = best
            out[f"{tag}-{vary}-worst"] = Markdown(tables.number(worst))
            spread = (tables.number(worst - best) if math.isfinite(worst)
                      else "unbounded (a run diverged)")
            out[f"{tag}-{vary}-spread"] = Markdown(spread)
        out[f"{tag}-lr1"] = Markdown(tables.number(at(grid, bn, "lr", 1.0).losses["val"]))
        gaps = [r.losses["val"] - r.losses["train"] for _, r in arm(grid, bn, "gain")
                if not diverged(r)]
        out[f"{tag}-gap"] = sum(gaps) / len(gaps)
    n_div = sum(diverged(r) for r in grid.values())
    out["diverged"] = Markdown(
        f"None of the {len(grid)} runs diverged: the table and the figure would show such a "
        f"run as “diverged”." if n_div == 0 else
        f"{n_div} of the {len(grid)} runs diverged: their loss became NaN or infinite, and "
        f"the table and the figure mark them “diverged”.")
    bn_lr = [r.losses["val"] for _, r in arm(grid, True, "lr")]
    out["bn-lr-gap"] = max(bn_lr) - min(bn_lr)  # the summary: every lr ends near the best
    return out


def gain_as_lr_numbers(grid: dict[str, Run], late: tuple[int, int] = (140_000, 150_000)
                       ) -> dict[str, float]:
    """The BatchNorm network's gain acting as a learning rate, at the ends of the gain
    arm: the weights' mean update:data at the first step (``ud-lo-0``, ``ud-hi-0``) and
    their gap next to the prediction ``2 log10(g_hi / g_lo)``, the gap over the
    ``late`` steps before the decay, and the weights' std at init and at the end."""
    (g_lo, lo), (g_hi, hi) = arm(grid, True, "gain")[0], arm(grid, True, "gain")[-1]
    out = {"ud-lo-0": weight_ud(lo), "ud-hi-0": weight_ud(hi),
           "ud-gap-0": weight_ud(lo) - weight_ud(hi),
           "ud-predicted": 2 * math.log10(g_hi / g_lo),
           "ud-gap-late": weight_ud(lo, *late) - weight_ud(hi, *late)}
    for run, tag in ((lo, "lo"), (hi, "hi")):
        init = run.spec.build(models.new_generator(run.spec.seed))
        out[f"wstd-{tag}-init"] = weight_std(init)
        out[f"wstd-{tag}-end"] = weight_std(run.model)
    return out


def health_table(health: dict[tuple[bool, float], TanhHealth]) -> Markdown:
    """One row per ``(batchnorm, lr)``: saturated share and dead neurons, layer by layer."""
    rows = [["BatchNorm" if bn else "no BatchNorm", f"{lr:g}",
             " · ".join(f"{x:.0%}" for x in h.saturated), " · ".join(map(str, h.dead))]
            for (bn, lr), h in health.items()]
    return tables.markdown(rows, ["network", "lr", "saturated, layer by layer",
                                  "dead neurons, layer by layer"], align="lrll")


def health_numbers(grid: dict[str, Run], health: dict[tuple[bool, float], TanhHealth],
                   window: tuple[int, int] = (25_000, 150_000)) -> dict[str, float]:
    """What the prose says of the networks at learning rate 1: the plain one's first
    ``tanh`` layer (saturated %, dead neurons of its width), its mean minibatch loss
    over ``window`` next to ``ln 27`` (guessing uniformly), and the BatchNorm one's
    largest saturated %. Raises if the BatchNorm network has a dead neuron: the
    chapter says it has none."""
    plain, bn = health[False, 1.0], health[True, 1.0]
    if sum(bn.dead):
        raise AssertionError(f"the BatchNorm network at lr 1 has dead neurons {bn.dead}: "
                             f"the chapter's text says it has none")
    run = at(grid, False, "lr", 1.0)
    first = next(layer for layer in run.model.layers if isinstance(layer, Linear))
    mid = finite_lossi(run)[window[0]:window[1]]
    return {"lr1-sat1": 100 * plain.saturated[0], "lr1-dead1": plain.dead[0],
            "lr1-width": first.weight.shape[1],
            "lr1-mid-loss": 10 ** mid.nanmean().item(), "ln27": math.log(27),
            "bnlr1-sat-max": 100 * max(bn.saturated)}


# ---------------------------------------------------------------------------
# the lecture's final network next to the loss log's MLPs

def versus_mlps(final: Run, mlp_rows: Iterable[str] = MLP_ROWS) -> Markdown:
    """The MLPs of the loss log and the deep BatchNorm network ``final``: parameters,
    final train and val loss, val after calibration where there is one."""
    rows = []
    for name in [*mlp_rows, final.spec.name]:
        run = final if name == final.spec.name else runs.get(name)
        label = ("deep, BatchNorm, gain 1 (lecture's final)" if run is final
                 else f"MLP: {run.spec.title or name}")
        cal = run.calibrated["val"] if run.calibrated else "–"
        rows.append([label, f"{models.num_params(run.model):,}", run.losses["train"],
                     run.losses["val"], cal])
    return tables.markdown(rows, ["network", "parameters", "train", "val", "val (calibrated)"],
                           align="lrrrr")


def versus_mlps_numbers(final: Run, mlp_rows: Iterable[str] = MLP_ROWS) -> dict[str, object]:
    """The best MLP of the loss log (name and val loss) and whether ``final`` beats it."""
    vals = {name: runs.get(name).losses["val"] for name in mlp_rows}
    best = min(vals, key=vals.get)
    best_val = vals[best]
    gain = best_val - final.losses["val"]
    return {"best-mlp": Markdown(f"`{best}`"), "best-mlp-val": best_val,
            "deep-gain": Markdown(f"{'better' if gain > 0 else 'worse'} by {abs(gain):.4f}"),
            "beats-mlps": Markdown("beats every MLP of the loss log" if gain > 0 else
                                   "does not beat the best MLP of the loss log")}


def depth_versus_batchnorm(grid: dict[str, Run], best_mlp_val: float, max_lr: float = ARM_LR,
                           gain: float = 1.0) -> dict[str, float | int]:
    """Is it BatchNorm or the deep network that beats the MLPs? The deep runs *without*
    BatchNorm at learning rates up to ``max_lr`` that did not diverge: how many
    (``plain-n``), how many end below ``best_mlp_val`` (``plain-beat``) and their val
    range (``plain-val-min``, ``plain-val-max``); and the two networks at one ``gain``
    (learning rate 0.1), with and without BatchNorm (``gain-bn``, ``gain-nobn``)."""
    plain = [r.losses["val"] for r in grid.values()
             if not r.spec.batchnorm and r.spec.lr <= max_lr and not diverged(r)]
    if not plain:
        raise ValueError(f"no deep run without BatchNorm at lr <= {max_lr:g} in the grid")
    return {"plain-n": len(plain), "plain-beat": sum(v < best_mlp_val for v in plain),
            "plain-val-min": min(plain), "plain-val-max": max(plain),
            "gain-bn": at(grid, True, "gain", gain).losses["val"],
            "gain-nobn": at(grid, False, "gain", gain).losses["val"]}


# ---------------------------------------------------------------------------
# what BatchNorm costs

def seconds_per_run(grid: dict[str, Run], batchnorm: bool) -> float:
    """Mean wall time per run of the grid with or without BatchNorm: each run's share
    of the job it trained in, as recorded in ``run.job``."""
    secs = [r.job.seconds / len(r.job.members) for r in grid.values()
            if r.spec.batchnorm == batchnorm]
    return sum(secs) / len(secs)


def calibration_numbers(grid: dict[str, Run], final: Run) -> dict[str, float]:
    """How much the calibration pass changes the val loss: for ``final``
    (``cal-gap-final``) and at most over every BatchNorm run that did not diverge."""
    bn_runs = [r for r in grid.values() if r.spec.batchnorm and not diverged(r)] + [final]
    gaps = {r.spec.name: r.losses["val"] - r.calibrated["val"] for r in bn_runs}
    return {"cal-gap-final": gaps[final.spec.name],
            "cal-gap-max": max(abs(v) for v in gaps.values())}
