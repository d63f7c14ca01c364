"""``book/_ext/offline_mathjax.py``: the site gets the MathJax files its pages load, and
no others. (That they are enough -- every formula typeset with the network blocked --
is ``tests/test_browser.py::test_math_renders_offline``.)"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "book" / "_ext"))
import offline_mathjax as om  # noqa: E402


def test_autoload_table_is_the_one_in_tex_chtml():
    """The table is copied from MathJax's own tex-chtml.js: a MathJax update that
    changes which macro loads which extension fails here."""
    js = (om.source_dir() / om.ENTRY).read_text(encoding="utf-8")
    m = re.search(r'\{(action:\[.*?verb:\["verb"\])\}', js)
    assert m, "tex-chtml.js has no autoload table starting at `action:`"
    table = json.loads("{" + re.sub(r'(\w+):\[', r'"\1":[', m.group(1)) + "}")
    # an entry is [macros...] or [[macros...], [environments...]]
    want = {ext: tuple(map(tuple, v)) if v and isinstance(v[0], list) else (tuple(v), ())
            for ext, v in table.items()}
    assert om.AUTOLOAD == want


def test_extensions_for_formulas():
    assert om.extensions_for([r"\frac{a}{b} + \sqrt{x}", r"\begin{aligned}x\end{aligned}"]) == set()
    assert om.extensions_for([r"\cancel{x}", r"\boldsymbol{W}"]) == {"cancel", "boldsymbol"}
    assert om.extensions_for([r"\begin{CD} A @>>> B \end{CD}"]) == {"amscd"}
    assert om.extensions_for([r"\colorbox{red}{x}"]) == {"color"}
    # a longer macro that merely starts like an autoloaded one loads nothing
    assert om.extensions_for([r"\setminus \cancelled"]) == set()
    # newcommand is inside tex-chtml.js: never fetched
    assert om.extensions_for([r"\newcommand{\x}{1}"]) == set()


def test_copy_subset_replaces_an_older_copy(tmp_path):
    dest = tmp_path / "_static" / "mathjax"
    (dest / "sre").mkdir(parents=True)
    (dest / "sre" / "old.js").write_text("from the 24 MB copy")
    size = om.copy_subset(om.source_dir(), dest, om.files_for([r"\cancel{x}"]))
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert "tex-chtml.js" in files and "input/tex/extensions/cancel.js" in files
    assert not (dest / "sre").exists(), "files of an older copy must not stay"
    fonts = [f for f in files if f.startswith(om.FONTS + "/")]
    assert len(fonts) == len(list((om.source_dir() / om.FONTS).glob("*.woff"))) > 0
    assert len(files) == 2 + len(fonts)
    assert size == sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    assert size < 2_000_000


def test_copy_subset_names_a_missing_file(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    with pytest.raises(FileNotFoundError, match="reinstall sphinx-mathjax-offline"):
        om.copy_subset(src, tmp_path / "out", ["tex-chtml.js"])


CONF = f"""
import sys
sys.path.insert(0, {str(REPO / "book" / "_ext")!r})
extensions = ["offline_mathjax"]
"""


def sphinx_build(src: Path, out: Path, capsys) -> None:
    """``sphinx-build -q -b html src out``, in this process (Sphinx runs one application
    after another in a process; a subprocess cost a second more per build)."""
    from sphinx.cmd.build import build_main

    status = build_main(["-q", "-b", "html", str(src), str(out)])
    captured = capsys.readouterr()
    assert status == 0, captured.out + captured.err


def test_a_build_copies_what_its_formulas_need(tmp_path, capsys):
    """A real Sphinx build: the page points at the copied tex-chtml.js, and a formula
    with ``\\cancel`` brings cancel.js; without it, the next build drops it again."""
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    (src / "conf.py").write_text(CONF)
    (src / "index.rst").write_text("Math\n====\n\n:math:`\\cancel{x} + y`\n\n"
                                   ".. math:: \\frac{a}{b}\n")
    sphinx_build(src, out, capsys)
    mj = out / "_static" / "mathjax"
    assert (mj / "tex-chtml.js").exists() and (mj / "input/tex/extensions/cancel.js").exists()
    assert 'src="_static/mathjax/tex-chtml.js"' in (out / "index.html").read_text()
    assert not (mj / "tex-svg-full.js").exists() and not (mj / "sre").exists()

    (src / "index.rst").write_text("Math\n====\n\n:math:`x + y`\n")
    sphinx_build(src, out, capsys)
    assert (mj / "tex-chtml.js").exists()
    assert not (mj / "input").exists(), "an extension no formula needs any more stays"
