"""The reproduction report: this build's numbers next to the lecture's loss log,
the per-run training times and the environment they ran in."""
from __future__ import annotations

import platform

import torch

TOLERANCE = 0.005


def reproduction_table(tolerance: float = TOLERANCE) -> list[dict]:
    """One row per line of the lecture's loss log: this build's loss next to the
    lecture's, the difference and whether it is within ``tolerance``."""
    from . import runs

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
    lines = [f"{'configuration':<44} {'split':<5} {'lecture':>8} {'this run':>9} "
             f"{'delta':>8}  ok", "-" * 82]
    for r in rows:
        lines.append(f"{r['title']:<44} {r['split']:<5} {r['lecture']:>8.4f} "
                     f"{r['this_run']:>9.4f} {r['delta']:>+8.4f}  {'yes' if r['ok'] else 'NO'}")
    return "\n".join(lines)


def timing_table() -> list[dict]:
    """Every cached run of the book: how it was trained, in which job (as recorded
    when it trained) and how long that job took."""
    from . import runs

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
    from .train import default_device

    return {"python": platform.python_version(), "torch": torch.__version__,
            "device": str(default_device()),
            "cpu": platform.processor() or platform.machine(),
            "threads per training process": "1"}
