"""makemore.show.tables: Markdown tables from rows."""
import math

import pytest
from makemore.show import tables


def test_number_formats_floats_and_leaves_the_rest():
    assert tables.number(2.12345) == "2.1235"
    assert tables.number(2.12345, digits=2) == "2.12"
    assert tables.number(0.0012, signed=True) == "+0.0012"
    assert tables.number(-0.00004, signed=True) == "+0.0000"  # no "-0.0000"
    assert tables.number(-0.00004) == "0.0000"
    assert tables.number(math.nan) == tables.number(math.inf) == "diverged"
    assert tables.number(3) == "3" and tables.number(True) == "True"
    assert tables.number("5/3") == "5/3"


def test_markdown_aligns_numbers_right_and_text_left():
    md = tables.markdown([["a", 1.5, 2], ["bb", math.nan, 30]], ["name", "x", "n"]).data
    assert md.splitlines() == ["| name   |        x |   n |",
                               "|:-------|---------:|----:|",
                               "| a      |   1.5000 |   2 |",
                               "| bb     | diverged |  30 |"]


def test_markdown_takes_an_alignment_and_the_digits():
    md = tables.markdown([["a", 1.23456]], ["k", "v"], align="cl", digits=2).data
    assert md.splitlines()[1] == "|:---:|:-----|"
    assert "1.23 " in md


def test_markdown_rejects_ragged_rows_and_bad_alignment():
    with pytest.raises(ValueError, match="row 1 has 1 cells, the header 2"):
        tables.markdown([["a", 1], ["b"]], ["k", "v"])
    with pytest.raises(ValueError, match="one of l, r, c per column"):
        tables.markdown([["a", 1]], ["k", "v"], align="lx")
    with pytest.raises(ValueError, match="one of l, r, c per column"):
        tables.markdown([["a", 1]], ["k", "v"], align="l")
