"""Command line: ``python -m makemore {fetch,pretrain,reproduce,list}``.

- ``fetch``      download (or copy from ``$MAKEMORE_NAMES``) and verify names.txt
- ``pretrain``   train every run of the book into the run cache (2 processes)
- ``reproduce``  the lecture's loss log, this run vs the lecture, exit 1 if off by > 0.005
- ``list``       the book's runs and whether they are cached
- ``pack-runs``, ``fetch-runs``  the run cache as one verified bundle (makemore.runs.bundle)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path


def _write_json(obj, path: str) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, suffix=".part")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=2)
    os.replace(tmp, p)


def main(argv: list[str] | None = None) -> int:
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
    from .runs import bundle

    bundle.add_commands(sub)
    args = parser.parse_args(argv)

    from .data import DataError
    from .runs import RunCacheError, UnknownRunError

    try:
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
            from . import runs

            for name, spec in runs.RUNS.items():
                state = "cached " if runs.is_cached(name) else "missing"
                print(f"{state}  {name:<24} {spec.label}")
        elif args.cmd == "reproduce":
            # report here, not at the top: it loads matplotlib and IPython (~1 s), which
            # fetch and pretrain, and pretrain's worker processes, do not need
            from . import runs
            from .runs.pretrain import pretrain
            from .show.report import TOLERANCE, format_table, reproduction_table

            pretrain([k for k in runs.LECTURE if k in runs.RUNS], jobs=args.jobs)
            rows = reproduction_table()
            print(format_table(rows))
            bad = [r for r in rows if not r["ok"]]
            print(f"\n{len(rows) - len(bad)} of {len(rows)} numbers within {TOLERANCE}")
            if args.json:
                _write_json(rows, args.json)
            return 1 if bad else 0
    except (DataError, RunCacheError, UnknownRunError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: pretrain has already said what was kept
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
