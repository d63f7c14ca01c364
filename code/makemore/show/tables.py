"""Markdown tables from rows: how the chapters show a table of numbers.

A chapter computes its rows (lists of cells, one list per row) in the package and
shows them with :func:`markdown`; the formatting -- alignment, digits, a missing
value, a signed difference -- lives here once instead of in every chapter.
Introduced in the chapter "Data" (the vocabulary), used by every chapter with a table.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from IPython.display import Markdown
from tabulate import tabulate


def number(x: Any, digits: int = 4, signed: bool = False) -> str:
    """One cell: a float with ``digits`` decimals (``+`` in front when ``signed``),
    "diverged" for NaN or infinity, anything else as ``str``. A difference that rounds
    to zero prints as ``0.0000``, never as ``-0.0000``."""
    if isinstance(x, bool) or not isinstance(x, float):
        return str(x)
    if not math.isfinite(x):
        return "diverged"
    text = f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"
    if float(text) == 0:  # -0.00004 -> "0.0000", not "-0.0000"
        text = ("+" if signed else "") + f"{0:.{digits}f}"
    return text


def markdown(rows: Iterable[Sequence[Any]], header: Sequence[str], *,
             align: str | None = None, digits: int = 4) -> Markdown:
    """A Markdown table of ``rows`` under ``header``, shown as a table in the book
    and in Jupyter. Floats get ``digits`` decimals (:func:`number`); ``align`` is
    one letter per column, ``l``/``r``/``c`` (default: numbers right, text left)."""
    rows = [list(row) for row in rows]
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise ValueError(f"row {i} has {len(row)} cells, the header {len(header)}")
    if align is None:  # a column of numbers is right-aligned, any other left-aligned
        align = "".join("r" if rows and all(isinstance(row[j], (int, float))
                                             and not isinstance(row[j], bool) for row in rows)
                        else "l" for j in range(len(header)))
    if len(align) != len(header) or set(align) - set("lrc"):
        raise ValueError(f"align {align!r}: one of l, r, c per column ({len(header)})")
    colalign = [{"l": "left", "r": "right", "c": "center"}[a] for a in align]
    cells = [[number(x, digits) for x in row] for row in rows]
    return Markdown(tabulate(cells, headers=list(header), tablefmt="pipe",
                             colalign=colalign, disable_numparse=True))
