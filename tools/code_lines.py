"""How much of the chapters' code a reader sees: code lines per chapter, hidden and shown.

A line is a non-blank line of a code cell; it is *hidden* when its cell is tagged
``remove-*`` or ``hide-*`` (removed from the page, or folded away). The goal
(issue 10): at most a third of the chapters' code lines hidden -- what a chapter
needs but does not show lives in the package, behind a name a reader can follow.

    python tools/code_lines.py        # the table, chapter by chapter
"""
from __future__ import annotations

import sys
from pathlib import Path

import jupytext

sys.path.insert(0, str(Path(__file__).resolve().parent))
import notebooks  # noqa: E402

HIDDEN_PREFIXES = ("remove-", "hide-")


def count(md: Path) -> tuple[int, int]:
    """(hidden, total) non-blank code lines of page ``md``."""
    hidden = total = 0
    for cell in jupytext.read(md, fmt="md:myst").cells:
        if cell.cell_type != "code":
            continue
        n = sum(1 for line in cell.source.splitlines() if line.strip())
        total += n
        if any(tag.startswith(HIDDEN_PREFIXES) for tag in cell.metadata.get("tags", [])):
            hidden += n
    return hidden, total


def table() -> dict[str, tuple[int, int]]:
    """{page name: (hidden, total)} for every notebook page of the book."""
    return {md.stem: count(md) for md in notebooks.pages()}


def main() -> int:
    rows = table()
    print(f"{'chapter':<14} {'hidden':>6} {'total':>6} {'hidden %':>8}")
    for name, (h, t) in rows.items():
        print(f"{name:<14} {h:>6} {t:>6} {h / t:>8.0%}")
    h, t = (sum(x) for x in zip(*rows.values()))
    print(f"{'all':<14} {h:>6} {t:>6} {h / t:>8.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
