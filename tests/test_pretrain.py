"""``pretrain``: the schedule, the progress lines, the lock, and Ctrl-C / SIGTERM."""
import dataclasses
import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from makemore import runs
from makemore.runs import cache as run_cache
from makemore.runs import pretrain as pt
from makemore.runs.jobs import cost


def tiny(name, steps=50, base="kaiming", **kw):
    return dataclasses.replace(runs.RUNS[base], name=name, steps=steps, **kw)


@pytest.fixture
def cache(tmp_path, monkeypatch, words):
    from makemore.data import make_splits

    small = make_splits(words[:2000])
    monkeypatch.setenv(runs.CACHE_ENV, str(tmp_path))
    monkeypatch.delenv(runs.NO_TRAIN_ENV, raising=False)
    monkeypatch.setattr(run_cache, "load_splits", lambda: small)
    return tmp_path


def test_plan_starts_the_longest_jobs_first():
    specs = [runs.RUNS[n] for n in ("original", "batchnorm", "deep_bn_g1_lr0.1",
                                    "deep_nobn_g1_lr0.1", "deep_bn_g3_lr0.1")]
    plan = pt.plan(specs)
    assert [len(j) for j in plan] == [2, 1, 1, 1]  # the BatchNorm pair, then the rest
    assert plan[-1][0].name == "batchnorm"  # the small fast MLP fills the last gap
    costs = [cost(j) for j in plan]
    assert costs == sorted(costs, reverse=True)


def test_unknown_names_fail_before_anything_trains(cache):
    with pytest.raises(runs.UnknownRunError, match="unknown runs nope, nada; the book's runs"):
        pt.pretrain(["original", "nope", "nada"])
    assert list(cache.iterdir()) == []


def test_pretrain_trains_the_missing_runs_and_prints_each_jobs_wall_time(cache, monkeypatch):
    a, b = tiny("tiny_a"), tiny("tiny_b", steps=30)
    for s in (a, b):
        monkeypatch.setitem(runs.RUNS, s.name, s)
    log, stream = [], io.StringIO()
    done = pt.pretrain(["tiny_a", "tiny_b"], jobs=1, log=log.append, stream=stream)
    assert set(done) == {"tiny_a", "tiny_b"} and all(v > 0 for v in done.values())
    assert log[0].startswith("pretrain: 2 runs in 2 jobs on 1 process(es)")
    assert log[1] == "pretrain: wall time per job"
    assert log[2].startswith("  job 1: ") and log[2].endswith("done    tiny_a")
    assert log[3].endswith("done    tiny_b") and log[-1].startswith("pretrain: done in ")
    assert "total: 2/2 jobs done" in stream.getvalue()
    assert runs.get("tiny_a").lossi.shape == (50,)
    log.clear()
    assert pt.pretrain(["tiny_a", "tiny_b"], log=log.append) == {}  # a rerun trains nothing
    assert log == [f"pretrain: every run is cached in {cache}"]


def test_an_unreadable_run_file_is_deleted_and_trained_again(cache, monkeypatch):
    spec = tiny("tiny_bad")
    monkeypatch.setitem(runs.RUNS, spec.name, spec)
    runs.path_of(spec).write_bytes(b"not a run")
    log = []
    pt.pretrain(["tiny_bad"], jobs=1, log=log.append, stream=io.StringIO())
    assert log[0].startswith(f"pretrain: the run file {runs.path_of(spec)} cannot be read (")
    assert log[0].endswith("…): it is truncated or corrupt; deleting it and training tiny_bad "
                           "again")
    assert runs.get("tiny_bad").lossi.shape == (50,)


def test_board_lines_show_steps_speed_and_eta(monkeypatch):
    jobs = [pt._Job(1, [tiny("a"), tiny("b")], cost=200.0), pt._Job(2, [tiny("c")], cost=50.0)]
    jobs[0].state, jobs[0].start = "running", 0.0
    out = io.StringIO()
    board = pt.Board(jobs, workers=1, stream=out, tty=False)
    jobs[0].report(10, now=6.0)  # the first report, after 6 s of compiling
    assert "  ? model-steps/s  ETA ?" in board.lines(now=6.0)[0]  # no speed from one report
    jobs[0].report(40, now=10.0)  # 40 of 100 steps; 30 in the 10 s since the first report
    lines = board.lines(now=16.0)
    assert lines[0].startswith("job 1/2 a +1") and "40/100 steps" in lines[0]
    assert "3 model-steps/s" in lines[0] and lines[0].endswith("ETA 20s")
    assert lines[1].endswith("waiting")
    # 200 * 0.6 + 50 cost units left at 200 / 100 * 3 = 6 units/s on one worker
    assert lines[2] == f"total: 0/2 jobs done, {pt._fmt(16 - board.t0)} elapsed, ETA 28s"
    board.update(force=True)
    board.update()  # within LOG_EVERY of the last: a log gets nothing new
    assert out.getvalue().count("\n") == 2  # the running job and the total
    jobs[0].state, jobs[0].end = "done", 12.0
    board.update(force=True)
    board.update(force=True)  # a finished job's line is logged once
    assert out.getvalue().count("done in 12s") == 1
    tty = io.StringIO()
    board = pt.Board(jobs, workers=1, stream=tty, tty=True)
    board.update(force=True)
    board.update(force=True)
    assert tty.getvalue().count("\x1b[3F") == 1  # the second draw rewrites the first


def test_a_second_pretrain_waits_for_the_lock_then_finds_the_run(cache, monkeypatch):
    spec = tiny("tiny_lock")
    monkeypatch.setitem(runs.RUNS, spec.name, spec)
    log = []
    with runs.cache_lock():  # another `make runs` holds the cache
        t = threading.Thread(target=pt.pretrain, args=(["tiny_lock"],),
                             kwargs={"jobs": 1, "log": log.append, "stream": io.StringIO()})
        t.start()
        deadline = time.monotonic() + 30  # until it says it waits (was: a fixed 1 s)
        while not log and time.monotonic() < deadline:
            time.sleep(0.01)
        assert t.is_alive() and not runs.is_cached("tiny_lock")
        assert log == [f"waiting for another process training into {cache} "
                       f"(lock {cache / '.lock'})"]
        run_cache.train_and_save([spec])  # what the other process does
    t.join(timeout=60)
    assert not t.is_alive()
    assert log[-1] == f"pretrain: every run is cached in {cache}"  # not trained twice


@pytest.fixture
def default_sigint():
    """Python's own SIGINT handler, as a terminal's Ctrl-C finds it: a shell's background
    job (`make test &`, some CI runners) starts with SIGINT ignored."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_pretrain_keeps_what_was_saved_and_a_rerun_picks_up(cache, monkeypatch,
                                                                           sig, default_sigint):
    short, long = tiny("short"), tiny("long", steps=5_000_000)
    for s in (short, long):
        monkeypatch.setitem(runs.RUNS, s.name, s)
    monkeypatch.setattr(pt, "cost", lambda job: -job[0].steps)  # here: the short job first

    def kill_when_short_is_saved():
        while not runs.path_of(short).exists():
            time.sleep(0.05)
        time.sleep(0.3)  # "long" is training now
        os.kill(os.getpid(), sig)

    threading.Thread(target=kill_when_short_is_saved, daemon=True).start()
    log = []
    with pytest.raises(KeyboardInterrupt):
        pt.pretrain(["long", "short"], jobs=1, log=log.append, stream=io.StringIO())
    assert log[-1] == ("pretrain: interrupted; 1 of 2 runs were saved, nothing half-written "
                       "is left. Run it again to train the other 1.")
    assert sorted(f.name for f in cache.iterdir()) == [".lock", runs.path_of(short).name]
    assert [s.name for s in pt.missing(["short", "long"])] == ["long"]  # the rerun's work
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # pretrain's handler is gone


SCRIPT = """
import dataclasses, sys
from makemore import data, runs
from makemore.runs import cache, pretrain
small = data.make_splits(data.load_words()[:2000])
cache.load_splits = lambda: small
for name, steps in (("short", 50), ("long", 2_000_000)):
    runs.RUNS[name] = dataclasses.replace(runs.RUNS["kaiming"], name=name, steps=steps)
cli = __import__("makemore.__main__").__main__
sys.exit(cli.main(["pretrain", "--jobs", "2", "short", "long"]))
"""


@pytest.mark.slow  # two spawned workers that import torch: ~30 s on a loaded machine
def test_sigterm_stops_the_workers_of_make_runs_and_exits_130(cache):
    """End to end: `python -m makemore pretrain --jobs 2`, SIGTERM to the parent."""
    sig = signal.SIGTERM
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    p = subprocess.Popen([sys.executable, "-c", SCRIPT], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in p.stdout:  # wait until the short job is saved and the long one trains
        lines.append(line)
        if "total: 1/2 jobs done" in line:
            break
    time.sleep(1.0)
    p.send_signal(sig)
    rest = p.communicate(timeout=60)[0]
    assert p.returncode == 130, "".join(lines) + rest
    assert "interrupted; 1 of 2 runs were saved" in rest and "Traceback" not in rest
    names = sorted(f.name.split("-")[0] for f in Path(cache).iterdir() if f.name != ".lock")
    assert names == ["short"]  # no .part file, no half-written "long"
    long = dataclasses.replace(runs.RUNS["kaiming"], name="long", steps=2_000_000)
    short = dataclasses.replace(runs.RUNS["kaiming"], name="short", steps=50)
    assert torch.load(runs.path_of(short), weights_only=True)["history"]["lossi"].shape == (50,)
    runs.RUNS["long"], runs.RUNS["short"] = long, short
    try:
        assert [s.name for s in pt.missing(["short", "long"])] == ["long"]  # the rerun's work
    finally:
        del runs.RUNS["long"], runs.RUNS["short"]
