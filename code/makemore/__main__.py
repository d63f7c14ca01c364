"""Command line: ``python -m makemore {fetch,pretrain,reproduce,list}``.

- ``fetch``      download (or copy from ``$MAKEMORE_NAMES``) and verify names.txt
- ``pretrain``   train every run of the book into the run cache (2 processes)
- ``reproduce``  the lecture's loss log, this run vs the lecture, exit 1 if off by > 0.005
- ``list``       the book's runs and whether they are cached (each file checked)
- ``pack-runs``, ``fetch-runs``  the run cache as one verified bundle (makemore.runs.bundle)

A failure is one line on stderr, ``error: ...``, that names the file or URL, the cause
and what to do; the exit status is 2 for bad input (arguments, a variable's value, a
bundle that is not one), 1 for a fault (disk, network, server, a killed worker), 130
for Ctrl-C or SIGTERM. ``MAKEMORE_DEBUG=1`` shows the traceback instead.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path


class UsageError(ValueError):
    """An argument the command cannot use; bad input (exit 2)."""

    status = 2


def _json_target(path: str) -> Path:
    """``--json PATH`` checked before anything runs: its folder must be (or become) a
    folder, and the path itself must not be one."""
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"--json {p}: that is a directory; give a file name, e.g. "
                         f"{p / 'reproduce.json'}.")
    for folder in p.parents:
        if folder.exists():
            if not folder.is_dir():
                raise UsageError(f"--json {p}: {folder} is a file, not a directory; choose "
                                 f"a path in a directory.")
            break
    return p


def _write_json(obj, p: Path) -> None:
    """Write atomically: the file is complete or absent."""
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _explain(e: Exception) -> tuple[int, str]:
    """(exit status, one line) for a failure."""
    from . import env

    if isinstance(e, OSError):
        return 1, env.describe(e)
    status = getattr(e, "status", None)
    if status in (1, 2):
        return status, str(e)
    first = (str(e).strip().splitlines() or [""])[0][:200]
    return 1, (f"unexpected {type(e).__name__}: {first} (a bug, most likely). Run it again "
               f"with {env.DEBUG}=1 for the traceback, and report it.")


def _parser() -> argparse.ArgumentParser:
    from .runs import bundle

    parser = argparse.ArgumentParser(prog="python -m makemore", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("fetch", help="download/copy and verify names.txt")
    p = sub.add_parser("pretrain", help="train every run of the book into the cache")
    p.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("names", nargs="*", help="only these runs (default: all)")
    p = sub.add_parser("reproduce", help="the lecture's loss log vs this run")
    p.add_argument("--json", metavar="PATH", help="also write the table as JSON")
    p.add_argument("--jobs", type=int, default=2)
    sub.add_parser("list", help="the book's runs and whether they are cached")
    bundle.add_commands(sub)
    return parser


def _run(args) -> int:
    from .runs import bundle

    if getattr(args, "jobs", 1) < 1:
        raise UsageError(f"--jobs {args.jobs}: give 1 or more worker processes.")
    if args.cmd in bundle.COMMANDS:
        return bundle.run_command(args)
    if args.cmd == "fetch":
        from .data import fetch_names, load_words

        path = fetch_names()
        print(f"{path}: verified, {len(load_words()):,} names")
    elif args.cmd == "pretrain":
        from .runs.pretrain import pretrain

        pretrain(args.names or None, jobs=args.jobs)
    elif args.cmd == "list":
        from .runs import cache

        problems = []
        for name, spec in cache.RUNS.items():
            path = cache.path_of(spec)
            problem = cache.check(spec, path) if path.exists() else ("missing", "")
            print(f"{problem[0] if problem else 'cached':<7}  {name:<24} {spec.label}")
            if problem and problem[1]:
                problems.append(f"list: {problem[1]}; `python -m makemore pretrain {name}` "
                                f"trains it again")
        for line in problems:
            print(line, file=sys.stderr)
    elif args.cmd == "reproduce":
        target = _json_target(args.json) if args.json else None
        # report here, not at the top: it loads matplotlib and IPython (~1 s), which
        # fetch and pretrain, and pretrain's worker processes, do not need
        from .runs import cache, pretrain
        from .show.report import TOLERANCE, format_table, reproduction_table

        pretrain.pretrain([k for k in cache.LECTURE if k in cache.RUNS], jobs=args.jobs)
        rows = reproduction_table()
        print(format_table(rows))
        bad = [r for r in rows if not r["ok"]]
        print(f"\n{len(rows) - len(bad)} of {len(rows)} numbers within {TOLERANCE}")
        if target is not None:
            _write_json(rows, target)
        return 1 if bad else 0
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)  # a usage error exits 2 here, as argparse does
    from . import env

    main_thread = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGTERM, _interrupt) if main_thread else None
    try:
        env.check()  # a bad switch is an error before anything runs
        return _run(args)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: whatever ran has cleaned up
        if args.cmd == "fetch-runs":  # (pretrain says itself what it kept)
            print("fetch-runs: interrupted; nothing half-written is left in the run cache",
                  file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 -- every failure becomes one line, see above
        if env.debug():
            raise
        status, line = _explain(e)
        print(f"error: {line}", file=sys.stderr)
        return status
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


if __name__ == "__main__":
    sys.exit(main())
