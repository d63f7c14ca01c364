"""The chapters show their code: what a chapter needs but does not show lives in the
package, behind a name (issue 10), measured by ``tools/code_lines.py``."""
import sys
from pathlib import Path

import jupytext
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import code_lines  # noqa: E402
import notebooks  # noqa: E402

MAX_HIDDEN = 1 / 3


def test_at_most_a_third_of_the_chapters_code_is_hidden():
    table = code_lines.table()
    hidden, total = (sum(x) for x in zip(*table.values()))
    assert hidden / total <= MAX_HIDDEN, (
        f"{hidden} of {total} code lines hidden ({hidden / total:.0%}); "
        f"move the plumbing into the package: python tools/code_lines.py")
    over = {name: f"{h}/{t}" for name, (h, t) in table.items() if h / t > MAX_HIDDEN}
    assert not over, f"chapters hiding more than a third of their code: {over}"


@pytest.mark.parametrize("md", notebooks.pages(), ids=lambda p: p.stem)
def test_no_chapter_defines_functions_out_of_sight(md):
    """A helper a chapter needs but does not show belongs in the package."""
    hidden_defs = []
    for cell in jupytext.read(md, fmt="md:myst").cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "code" and any(t.startswith(code_lines.HIDDEN_PREFIXES)
                                            for t in tags):
            hidden_defs += [line.strip() for line in cell.source.splitlines()
                            if line.lstrip().startswith(("def ", "class "))]
    assert not hidden_defs, f"{md.name}: defined in a hidden cell: {hidden_defs}"


def test_the_count_sees_tags():
    md = REPO / "book" / "data.md"
    hidden, total = code_lines.count(md)
    assert 0 < hidden < total  # its glue cells are hidden, the setup cell is not
