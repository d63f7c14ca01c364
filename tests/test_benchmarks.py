"""The benchmarks stay runnable, and their floor counts the step's own products."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import runs_floor  # noqa: E402
from makemore.nn import Linear  # noqa: E402
from makemore.runs import RUNS, pretrain  # noqa: E402
from makemore.train import BATCH_SIZE  # noqa: E402


def test_the_floor_of_each_job_is_its_steps_multiply_adds():
    # per Linear layer and model, forward, weight gradient and input gradient each
    # take batch x fan_in x fan_out multiply-adds: the floor times exactly those (the
    # Linear layers inside residual blocks too, at the run's own batch size)
    for specs in pretrain.plan(list(RUNS.values())):
        M, B = len(specs), specs[0].batch_size
        layers = [y for x in specs[0].build().layers for y in getattr(x, "layers", [x])]
        linears = [x for x in layers if isinstance(x, Linear)]
        pairs = runs_floor.products(specs)
        assert len(pairs) == 3 * len(linears)
        for a, b in pairs:
            assert a.shape[0] == b.shape[0] == M and a.shape[2] == b.shape[1]
        macs = sum(M * a.shape[1] * a.shape[2] * b.shape[2] for a, b in pairs)
        assert macs == 3 * M * B * sum(x.weight.numel() for x in linears)
        # the layout the trainer carries: the fast trainer's stacks features-first
        features_first = specs[0].trainer == "fast" and M > 1
        first = pairs[0][1 if features_first else 0]  # the forward's activations: W^T @ x, x @ W
        assert first.shape[1:] == ((linears[0].weight.shape[0], B) if features_first
                                   else (B, linears[0].weight.shape[0]))
    assert {s.batch_size for s in RUNS.values()} == {8, BATCH_SIZE, 128}


def test_schedule_puts_each_job_on_the_first_free_core():
    # 5 -> core A, 4 -> B, 3 -> B (free at 4), 1 -> A (free at 5): A 6, B 7
    assert runs_floor.schedule([5, 4, 3, 1], cores=2) == 7
    assert runs_floor.schedule([5, 4, 3, 1], cores=1) == 13
    assert runs_floor.schedule([3, 3, 3], cores=4) == 3


@pytest.mark.slow
def test_runs_floor_runs_and_projects_make_runs():
    env = dict(os.environ, PYTHONPATH=str(BENCH.parent / "code"))
    out = subprocess.run([sys.executable, str(BENCH / "runs_floor.py"), "--seconds", "0.05",
                          "--block", "10"], capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [line for line in out.stdout.splitlines() if line[:2].strip().isdigit()]
    assert len(rows) == len(pretrain.plan(list(RUNS.values()))), out.stdout
    assert "at the floor (the products alone)" in out.stdout
    assert "runs of 'Beyond BatchNorm'" in out.stdout and "(budget: +25%)" in out.stdout


def test_runs_floor_refuses_an_empty_timing_window():
    out = subprocess.run([sys.executable, str(BENCH / "runs_floor.py"), "--seconds", "0"],
                         capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(BENCH.parent / "code")))
    assert out.returncode == 2 and "--seconds must be above 0" in out.stderr, out.stderr
