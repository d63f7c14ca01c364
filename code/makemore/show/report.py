"""The reproduction report: this build's numbers next to the lecture's loss log,
the per-run training times and the environment they ran in.

:func:`reproduction_table` compares every number of the lecture's loss log with this
build's (``python -m makemore reproduce`` prints it); the rest of the module shows it:
the loss log of the introduction (:func:`loss_log_table`, :func:`plot_loss_log`), the
pass/fail table and the deltas of the appendix "Reproduction report"
(:func:`reproduction_markdown`, :func:`plot_deltas`), the training times of the recorded
jobs (:func:`timing_markdown`) and the machines (:func:`environment_table`). The numbers
the two chapters' prose quotes come out as dicts for :func:`makemore.book.glue_all`.
"""
from __future__ import annotations

import platform
from typing import Any

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown
from matplotlib.axes import Axes

from . import plots, tables

TOLERANCE = 0.005


def reproduction_table(tolerance: float = TOLERANCE) -> list[dict]:
    """One row per line of the lecture's loss log: this build's loss next to the
    lecture's, the difference and whether it is within ``tolerance``."""
    from .. import runs

    rows = []
    for key, (lec_train, lec_val) in runs.LECTURE.items():
        name = "batchnorm" if key == "batchnorm_calibrated" else key
        run = runs.get(name)
        losses = run.calibrated if key == "batchnorm_calibrated" else run.losses
        title = runs.RUNS[name].title + (" (calibrated)" if key.endswith("calibrated") else "")
        for split, lec in (("train", lec_train), ("val", lec_val)):
            got = losses[split]
            rows.append({"config": key, "title": title, "split": split, "lecture": lec,
                         "this_run": got, "delta": got - lec,
                         "ok": abs(got - lec) <= tolerance,
                         "trainer": run.history.trainer, "seconds": run.history.seconds})
    return rows


def format_table(rows: list[dict]) -> str:
    """The comparison as plain text, for the terminal (``python -m makemore reproduce``)."""
    lines = [f"{'configuration':<44} {'split':<5} {'lecture':>8} {'this run':>9} "
             f"{'delta':>8}  ok", "-" * 82]
    for r in rows:
        lines.append(f"{r['title']:<44} {r['split']:<5} {r['lecture']:>8.4f} "
                     f"{r['this_run']:>9.4f} {tables.number(r['delta'], signed=True):>8}  "
                     f"{'yes' if r['ok'] else 'NO'}")
    return "\n".join(lines)


def timing_table() -> list[dict]:
    """Every cached run of the book: how it was trained, in which job (as recorded
    when it trained) and how long that job took."""
    from .. import runs

    rows = []
    for name, spec in runs.RUNS.items():
        if not runs.is_cached(name):
            continue
        run = runs.get(name)
        job = run.job
        rows.append({"run": name, "title": spec.title or name, "steps": spec.steps,
                     "trainer": run.history.trainer, "seconds": run.history.seconds,
                     "job": job.id, "job_runs": len(job.members), "job_seconds": job.seconds,
                     "train": run.losses["train"], "val": run.losses["val"]})
    return rows


def environment() -> dict[str, str]:
    """What this build ran on."""
    from ..train import default_device

    return {"python": platform.python_version(), "torch": torch.__version__,
            "device": str(default_device()),
            "cpu": platform.processor() or platform.machine(),
            "threads per training process": "1"}


# ---------------------------------------------------------------------------
# the loss log, as the introduction shows it

def loss_log(rows: list[dict]) -> dict[str, dict[str, Any]]:
    """The rows of :func:`reproduction_table` by configuration, in the lecture's order:
    ``{config: {"title": ..., "train": row, "val": row}}``."""
    by_config: dict[str, dict[str, Any]] = {}
    for r in rows:
        by_config.setdefault(r["config"], {"title": r["title"]})[r["split"]] = r
    return by_config


def loss_log_table(rows: list[dict]) -> Markdown:
    """One line per configuration: the lecture's train and val loss (as it printed
    them) next to this build's, and the signed differences (chapter "Introduction")."""
    lines = []
    for entry in loss_log(rows).values():
        line = [entry["title"]]
        for split in ("train", "val"):
            r = entry[split]
            line += [f"{r['lecture']:g}", r["this_run"], tables.number(r["delta"], signed=True)]
        lines.append(line)
    return tables.markdown(lines, ["configuration", "lecture train", "this build", "Δ",
                                   "lecture val", "this build", "Δ"], align="l" + "r" * 6)


def loss_log_numbers(rows: list[dict], tolerance: float = TOLERANCE) -> dict[str, Any]:
    """What the introduction says of the loss log: the val loss of the first and the
    last configuration and the improvement, the best val loss and whose it is, the
    largest difference from the lecture and how many numbers agree within ``tolerance``.
    Raises if a BatchNorm row has the best val loss: the text says BatchNorm does not win."""
    log = loss_log(rows)
    first, last = log["original"], log["batchnorm_calibrated"]
    best = min(log.values(), key=lambda e: e["val"]["this_run"])
    if "BatchNorm" in best["title"]:
        raise AssertionError(f"{best['title']!r} has the best val loss: the introduction "
                             f"says that BatchNorm does not win the loss log")
    return {"first-val": first["val"]["this_run"], "last-val": last["val"]["this_run"],
            "gain-val": first["val"]["this_run"] - last["val"]["this_run"],
            "best-val": best["val"]["this_run"], "best-title": Markdown(f"*{best['title']}*"),
            "max-delta": max(abs(r["delta"]) for r in rows),
            "n-ok": sum(abs(r["delta"]) <= tolerance for r in rows), "n-rows": len(rows),
            "tolerance": tolerance}


def plot_loss_log(rows: list[dict], ax: Axes | None = None) -> Axes:
    """The loss log as a dot plot: one row per configuration, the lecture's losses
    (open circles) and this build's (dots), train and val in two colors."""
    plots.use_style()
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.6), layout="constrained")
    log = loss_log(rows)
    ypos = range(len(log))
    for color, split in zip(plots.PALETTE, ("train", "val")):
        ax.plot([e[split]["lecture"] for e in log.values()], ypos, "o", mfc="none",
                color=color, markersize=9, label=f"{split}: lecture")
        ax.plot([e[split]["this_run"] for e in log.values()], ypos, ".", color=color,
                markersize=8, label=f"{split}: this build")
    ax.set_yticks(list(ypos), [e["title"] for e in log.values()])
    ax.invert_yaxis()
    ax.set_xlabel("loss")
    ax.set_title("the lecture's loss log, reproduced")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


# ---------------------------------------------------------------------------
# the appendix "Reproduction report"

def verdict(ok: bool) -> str:
    """A row's verdict as a MyST badge: a green "pass" or a red "FAIL"."""
    return "{bdg-success}`pass`" if ok else "{bdg-danger}`FAIL`"


def reproduction_markdown(rows: list[dict], tolerance: float = TOLERANCE) -> Markdown:
    """:func:`reproduction_table` as the appendix shows it: one row per number, with
    the signed delta and a pass/FAIL badge."""
    return tables.markdown(
        [[r["title"], r["split"], r["lecture"], r["this_run"],
          tables.number(r["delta"], signed=True), verdict(r["ok"])] for r in rows],
        ["configuration", "split", "lecture", "this build", "delta", f"within {tolerance}"],
        align="llrrrc")


def reproduction_numbers(rows: list[dict], tolerance: float = TOLERANCE) -> dict[str, Any]:
    """The appendix's numbers: the tolerance, how many rows pass, the largest delta,
    the two-decimal row the lecture printed ("fix_softmax") and how many runs the book has."""
    from .. import runs

    return {"tol": tolerance, "n-pass": sum(r["ok"] for r in rows), "n-rows": len(rows),
            "max-delta": max(abs(r["delta"]) for r in rows),
            "fs-train": runs.LECTURE["fix_softmax"][0], "fs-val": runs.LECTURE["fix_softmax"][1],
            "n-specs": len(runs.RUNS)}


def plot_deltas(rows: list[dict], tolerance: float = TOLERANCE, ax: Axes | None = None) -> Axes:
    """This build's loss minus the lecture's per row (dots: train, squares: val)
    against the tolerance band; a point outside it is labelled FAIL."""
    plots.use_style()
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.2), layout="constrained")
    configs = list(dict.fromkeys(r["title"] for r in rows))
    ax.axvspan(-tolerance, tolerance, color="0.85", label=f"±{tolerance}")
    ax.axvline(0, color=plots.REFERENCE_COLOR, linewidth=0.8)
    for split, marker, color in (("train", "o", plots.PALETTE[0]), ("val", "s", plots.PALETTE[1])):
        sel = [r for r in rows if r["split"] == split]
        ax.plot([r["delta"] for r in sel], [configs.index(r["title"]) for r in sel], marker,
                color=color, label=split, linestyle="none")
        for r in sel:
            if not r["ok"]:
                ax.annotate("FAIL", (r["delta"], configs.index(r["title"])), color="red",
                            xytext=(6, -4), textcoords="offset points")
    ax.set_yticks(range(len(configs)), configs)
    ax.invert_yaxis()
    lim = max(2 * tolerance, 1.2 * max(abs(r["delta"]) for r in rows))
    ax.set_xlim(-lim, lim)
    ax.xaxis.set_major_locator(plt.MaxNLocator(5))
    ax.set_xlabel("this build − lecture (loss)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


def video_table(ours: dict[str, str]) -> Markdown:
    """The numbers the video showed (:data:`makemore.show.lecture.VIDEO`) next to ``ours``,
    this build's, as printed; raises if one differs."""
    from .lecture import VIDEO

    differ = {what: (shown, ours.get(what)) for what, shown in VIDEO.items()
              if ours.get(what) != shown}
    if differ:
        raise AssertionError(f"not the video's numbers (shown, this build): {differ}")
    return tables.markdown([[what, shown, ours[what], "✓"] for what, shown in VIDEO.items()],
                           ["number", "the video showed", "this build", "same"], align="lrrc")


def printout_numbers(run, rows: list) -> dict[str, Any]:
    """The BatchNorm MLP's printouts (``rows``: :func:`makemore.show.lecture.compare` of
    :func:`makemore.show.lecture.mlp_printout`): its trainer and how many of the losses
    printed every 10,000 steps (cell 7) are the notebook's to the printed digit
    (``n-exact``) and how many differ by one unit of it (``n-close``). Raises if the
    parameter count differs or a loss is further off (:data:`~makemore.show.lecture.LOSS_RTOL`)."""
    from . import lecture

    wrong = lecture.mismatches(rows) + [f"cell {r.cell}: {r.notebook!r} != {r.build!r}"
                                        for r in rows if r.cell != 7 and not r.exact]
    if wrong:
        raise AssertionError(f"not the notebook's printout: {wrong}")
    steps = [r for r in rows if r.cell == 7]
    n_exact = sum(r.exact for r in steps)
    return {"trainer": Markdown(f"`{run.history.trainer}`"), "n-exact": n_exact,
            "n-close": len(steps) - n_exact, "n-steps": len(steps)}


def environment_table(meta: dict) -> Markdown:
    """This build's :func:`environment` next to the one a run trained in (its ``meta``)."""
    env = environment()
    rows = [[what, env[key], str(meta.get(mkey, "?"))] for what, key, mkey in (
        ("Python", "python", "python"), ("PyTorch", "torch", "torch"),
        ("device", "device", "device"), ("CPU", "cpu", "machine"),
        ("threads per training process", "threads per training process", "threads"))]
    return tables.markdown(rows, ["", "this build (pages executed)", "training of the runs"],
                           align="lll")


def timing_markdown(timing: list[dict]) -> Markdown:
    """:func:`timing_table` as a table: one row per run, with its job's wall time and
    size, and a last row with the total over the jobs (each job counted once)."""
    rows = [[f"`{r['run']}`", r["trainer"], f"{r['steps']:,}", f"{r['job_seconds']:,.0f}",
             r["job_runs"], r["train"], r["val"]] for r in timing]
    numbers = timing_numbers(timing)
    rows.append([f"**total** ({numbers['n-jobs']} jobs)", "", "",
                 f"**{60 * numbers['total-min']:,.0f}**", "", "", ""])
    return tables.markdown(rows, ["run", "trainer", "steps", "job seconds", "runs in job",
                                  "train", "val"], align="llrrrrr")


def timing_numbers(timing: list[dict]) -> dict[str, Any]:
    """How many runs, in how many recorded jobs, and the jobs' total time in minutes."""
    jobs = {r["job"]: r["job_seconds"] for r in timing}
    return {"n-runs": len(timing), "n-jobs": len(jobs), "total-min": sum(jobs.values()) / 60}
