"""``python -m makemore pretrain``: train every missing run of the book, on all cores.

Runs of one architecture train together as one vectorized job
(:func:`makemore.runs.jobs.groups`); the jobs start longest first, so the short
plain-loop MLP rows fill the gaps at the end and both cores stay busy to the
end. Each job runs in its own process with one thread (``pretrain`` sets it, whoever
starts it: a single job by hand trains as fast as under ``make runs``), and the workers
die with the parent, even a SIGKILLed one (:func:`die_with_parent`). While they run, a
terminal shows one live line per job (runs, steps done, model-steps/s, ETA) and
the total ETA; a log (no terminal) gets the same lines at least every
:data:`LOG_EVERY` seconds. Ctrl-C or SIGTERM stops the workers, which delete
their half-written files; the runs already saved stay, and a rerun trains only
the rest.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import queue as queue_mod
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

import torch

from .. import env
from . import cache
from .cache import RunCacheError, UnknownRunError, cache_dir, cache_lock, load, path_of
from .jobs import RunSpec, cost, groups

LOG_EVERY = 30.0  # seconds between two status blocks in a log
REDRAW_EVERY = 0.5  # seconds between two redraws on a terminal
# workers start fresh: a forked torch may hang on its parent's thread pools (the fault
# tests fork, to kill a worker without its ~3 s of imports)
START_METHOD = "spawn"


PR_SET_PDEATHSIG = 1  # prctl(2): the signal this process gets when its parent dies


class PretrainError(RuntimeError):
    """Some jobs failed; the message says which, why, and what was kept (exit status 1)."""

    status = 1


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def die_with_parent(parent: int) -> None:
    """Make this worker get SIGTERM (its cleanup: no half-written file) when ``parent``
    dies, even by SIGKILL, which gives the parent no chance to stop it. A worker that
    outlived its parent would train without the cache's lock and save beside a rerun.
    Linux tells the child itself (``PR_SET_PDEATHSIG``); elsewhere a thread watches the
    parent's pid once a second. A parent that died while the worker was still starting
    (importing torch takes seconds) is caught here, before the worker does anything."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)
        return

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)
    threading.Thread(target=watch, daemon=True, name="watch-parent").start()


@contextlib.contextmanager
def one_thread():
    """One torch thread for the block, the caller's setting after: at batch size 32 one
    thread per process is fastest (930 model-steps/s with torch's default beside a busy
    process; a whole 200k-step run in 53 s with one)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _why(e: BaseException) -> str:
    """An exception as a clause: an OSError in words, anything else its first line."""
    if isinstance(e, OSError):
        return env.describe(e).rstrip(".")
    first = (str(e).strip().splitlines() or [""])[0]
    return f"{type(e).__name__}: {first[:160]}"


def _exit_why(code: int | None) -> str:
    """A worker that died without a word, by its exit code."""
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            name = signal.Signals(-code).name
            return f"its worker was killed by {name}" + (
                " (out of memory, or kill -9)" if -code == signal.SIGKILL else "")
    return f"its worker exited with code {code} without a word"


def missing(names: list[str] | None = None, log=print) -> list[RunSpec]:
    """The runs among ``names`` (default: all) that are not cached, or whose file
    cannot be read (it is deleted, with a notice, and trained again)."""
    runs = cache.RUNS
    names = list(runs) if names is None else names
    unknown = [n for n in names if n not in runs]
    if unknown:
        raise UnknownRunError(unknown)
    out = []
    for name in names:
        spec, path = runs[name], path_of(runs[name])
        if path.exists():
            try:
                load(spec, path)
                continue
            except RunCacheError as e:
                log(f"pretrain: {e}; deleting it and training {name} again")
                path.unlink(missing_ok=True)
        out.append(spec)
    return out


def plan(specs: list[RunSpec]) -> list[list[RunSpec]]:
    """The jobs, longest first (:func:`makemore.runs.jobs.cost`)."""
    return sorted(groups(specs), key=cost, reverse=True)


def _fmt(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


@dataclass
class _Job:
    """One job's progress as the parent sees it."""

    number: int
    specs: list[RunSpec]
    cost: float
    done: int = 0  # model-steps
    start: float | None = None
    first: tuple[float, int] | None = None  # (time, done) of the first progress report
    end: float | None = None
    state: str = "waiting"  # running, done, failed, stopped
    error: str = ""
    names: list[str] = field(init=False)

    def __post_init__(self):
        self.names = [s.name for s in self.specs]

    @property
    def total(self) -> int:
        return sum(s.steps for s in self.specs)

    def report(self, done: int, now: float) -> None:
        """A progress report: ``done`` model-steps at ``now``."""
        if self.first is None:
            self.first = (now, done)
        self.done = done

    def rate(self, now: float) -> float:
        """Model-steps per second since the first progress report (0: not known yet).
        What comes before it, starting the process, loading the data and compiling
        (~15 s), is not the training speed: counted in, it made a 30-second job's
        first ETA read 48 minutes."""
        if self.first is None or now <= self.first[0] or self.done <= self.first[1]:
            return 0.0
        return (self.done - self.first[1]) / (now - self.first[0])

    def eta(self, now: float) -> float | None:
        r = self.rate(now)
        return (self.total - self.done) / r if r > 0 else None


class Board:
    """The progress display: one line per job and a total line."""

    def __init__(self, jobs: list[_Job], workers: int, stream, tty: bool | None = None):
        self.jobs, self.workers, self.stream = jobs, workers, stream
        self.tty = stream.isatty() if tty is None else tty
        self.t0 = time.perf_counter()
        self.last, self.drawn = 0.0, 0
        self.reported: set[int] = set()  # finished jobs whose line a log has shown

    def lines(self, now: float) -> list[str]:
        n = len(self.jobs)
        out = []
        for j in self.jobs:
            head = f"job {j.number}/{n} {j.names[0]}" + (
                f" +{len(j.names) - 1}" if len(j.names) > 1 else "")
            head = f"{head:<34} {len(j.names)} run{'s' if len(j.names) > 1 else ' '}"
            if j.state == "running" and j.done >= j.total:
                out.append(f"{head}  {j.done:>9,}/{j.total:,} steps  trained; evaluating, saving")
            elif j.state == "running":
                eta, rate = j.eta(now), j.rate(now)
                speed = f"{rate:,.0f}" if rate else "?"
                out.append(f"{head}  {j.done:>9,}/{j.total:,} steps  {speed:>6} model-steps/s  "
                           f"ETA {'?' if eta is None else _fmt(eta)}")
            elif j.state == "waiting":
                out.append(f"{head}  waiting")
            else:
                out.append(f"{head}  {j.state} in {_fmt(j.end - j.start)}")
        eta = self.total_eta(now)
        finished = sum(j.state in ("done", "failed", "stopped") for j in self.jobs)
        out.append(f"total: {finished}/{n} jobs done, {_fmt(now - self.t0)} elapsed, "
                   f"ETA {'?' if eta is None else _fmt(eta)}")
        return out

    def total_eta(self, now: float) -> float | None:
        """Remaining cost over the cores' measured speed (cost units per second)."""
        running = [j for j in self.jobs if j.state == "running" and j.rate(now)]
        if not running:
            return None if any(j.state != "done" for j in self.jobs) else 0.0
        speed = sum(j.cost / j.total * j.rate(now) for j in running) / len(running)
        left = sum(j.cost * (1 - j.done / j.total) for j in self.jobs
                   if j.state in ("running", "waiting"))
        longest = max(j.eta(now) or 0.0 for j in running)
        return max(longest, left / (speed * self.workers))

    def update(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self.last < (REDRAW_EVERY if self.tty else LOG_EVERY):
            return
        self.last = now
        lines = self.lines(now)
        if self.tty:  # move up over the previous block, rewrite each line
            up = f"\x1b[{self.drawn}F" if self.drawn else ""
            self.stream.write(up + "".join(f"{line}\x1b[K\n" for line in lines))
            self.drawn = len(lines)
        else:  # a log: the running jobs, the newly finished ones, the total
            shown = [line for j, line in zip(self.jobs, lines[:-1], strict=True)
                     if j.state == "running"
                     or (j.state != "waiting" and j.number not in self.reported)]
            self.reported |= {j.number for j in self.jobs if j.state not in ("waiting", "running")}
            self.stream.write("".join(f"  {line}\n" for line in shown + lines[-1:]))
        self.stream.flush()


def _worker(number: int, specs: list[RunSpec], q, parent: int) -> None:
    """A job in its own process: train, save, report progress on ``q``; die with the
    ``parent`` process."""
    signal.signal(signal.SIGTERM, _interrupt)  # cleanup (no partial file) on SIGTERM too
    try:
        die_with_parent(parent)
        torch.set_num_threads(1)  # at batch 32, one thread per process beats two
        cache.train_and_save(specs, progress=lambda done: q.put(("progress", number, done)))
        q.put(("done", number, ""))
    except KeyboardInterrupt:
        if os.getppid() != parent:  # nobody left to tell (nor to drain the queue)
            os._exit(143)
        q.put(("stopped", number, ""))
    except BaseException as e:  # noqa: BLE001 -- reported by the parent
        q.put(("failed", number, _why(e)))


def _run_here(jobs: list[_Job], board: Board) -> None:
    """One process: the jobs one after the other in this one."""
    for j in jobs:
        j.state, j.start = "running", time.perf_counter()

        def progress(done, j=j):
            j.report(done, time.perf_counter())
            board.update()
        try:
            cache.train_and_save(j.specs, progress=progress)
            j.state = "done"
        except BaseException:
            j.state = "stopped"
            raise
        finally:
            j.end = time.perf_counter()
        board.update(force=True)


def _run_pool(jobs: list[_Job], board: Board, workers: int) -> None:
    """``workers`` processes; the next job starts as soon as one is free."""
    import multiprocessing as mp

    ctx = mp.get_context(START_METHOD)
    q = ctx.Queue()
    waiting, procs = list(jobs), {}
    by_number = {j.number: j for j in jobs}
    try:
        while waiting or procs:
            while waiting and len(procs) < workers:
                j = waiting.pop(0)
                j.state, j.start = "running", time.perf_counter()
                procs[j.number] = ctx.Process(target=_worker,
                                              args=(j.number, j.specs, q, os.getpid()))
                procs[j.number].start()
            try:
                kind, number, info = q.get(timeout=REDRAW_EVERY)
                j = by_number[number]
                if kind == "progress":
                    j.report(info, time.perf_counter())
                else:
                    j.state, j.error, j.end = kind, info, time.perf_counter()
                    procs.pop(number).join()
                    board.update(force=True)
            except queue_mod.Empty:
                for number, p in list(procs.items()):
                    if not p.is_alive() and q.empty():  # died without a word (killed)
                        j = by_number[number]
                        j.state, j.end = "failed", time.perf_counter()
                        j.error = _exit_why(p.exitcode)
                        procs.pop(number)
            board.update()
    finally:
        for p in procs.values():  # interrupted: the workers delete their partial files
            p.terminate()
        for p in procs.values():
            p.join(timeout=10)
            if p.is_alive():
                p.kill()


def pretrain(names: list[str] | None = None, jobs: int = 2, log=print,
             stream=None) -> dict[str, float]:
    """Train every missing run (all of :data:`RUNS` by default) into the cache.

    Up to ``jobs`` processes work in parallel, each with one thread (this one too),
    longest job first. Progress goes to ``stream`` (default stderr), messages to
    ``log``. Returns the wall seconds of each trained run's job. Raises
    :class:`~makemore.runs.cache.UnknownRunError` for a name not in the registry, and a
    :class:`PretrainError` naming each failed job, with why, once the others are done.
    """
    stream = sys.stderr if stream is None else stream
    todo = missing(names, log)  # unknown names fail here, before anything else
    main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGTERM, _interrupt) if main and todo else None
    try:
        with contextlib.nullcontext() if not todo else cache_lock(log):
            if todo:  # another process may have trained some while we waited for the lock
                todo = missing([s.name for s in todo], log)
            if not todo:
                log("pretrain: every run is cached in " + str(cache_dir()))
                return {}
            work = [_Job(k + 1, job, cost(job)) for k, job in enumerate(plan(todo))]
            workers = max(1, min(jobs, len(work)))
            log(f"pretrain: {len(todo)} runs in {len(work)} jobs on {workers} process(es) "
                f"-> {cache_dir()}")
            board = Board(work, workers, stream)
            try:
                with one_thread():
                    (_run_here(work, board) if workers == 1 else _run_pool(work, board, workers))
            except KeyboardInterrupt:
                saved = sum(path_of(s).exists() for s in todo)
                log(f"pretrain: interrupted; {saved} of {len(todo)} runs were saved, nothing "
                    f"half-written is left. Run it again to train the other {len(todo) - saved}.")
                raise
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)
    log("pretrain: wall time per job")
    for j in work:
        log(f"  job {j.number}: {_fmt(j.end - j.start):>7}  {j.state:<7} {', '.join(j.names)}"
            + (f"  ({j.error})" if j.error else ""))
    failed = [j for j in work if j.state != "done"]
    if failed:
        saved = sum(path_of(s).exists() for s in todo)
        raise PretrainError(
            f"pretrain: {len(failed)} of {len(work)} jobs failed ("
            + "; ".join(f"job {j.number}, {', '.join(j.names)}: {j.error}" for j in failed)
            + f"); {saved} of {len(todo)} runs were saved in {cache_dir()}. Once that is "
            f"fixed, `python -m makemore pretrain` trains the other {len(todo) - saved}.")
    log(f"pretrain: done in {_fmt(time.perf_counter() - board.t0)}")
    return {n: j.end - j.start for j in work for n in j.names}
