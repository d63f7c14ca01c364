"""Generate the runnable notebook of every chapter: ``book/<page>.md`` -> ``book/<page>.ipynb``.

The chapters are MyST Markdown notebooks. Colab opens only ``.ipynb`` files, and
the book's "launch" buttons (sphinx-book-theme) link to ``book/<page>.ipynb``
whenever that file exists next to the ``.md`` -- so the notebooks are generated
with jupytext and committed (Sphinx itself ignores them: ``exclude_patterns``).

Each notebook starts with one extra cell that makes it run on Colab or any
fresh Python: where ``makemore`` is not importable it installs the book's
package from GitHub (CPU torch first, if there is no torch) and ``myst-nb`` (for
``glue``); names.txt is then downloaded and checksummed by the package on first
use. Where ``makemore`` is installed (Binder, a clone) the cell does nothing.

    python tools/notebooks.py           # (re)write every notebook that changed
    python tools/notebooks.py --check   # exit 1 if any is missing or out of date

``make notebooks`` runs the first; ``tests/test_notebooks.py`` the check.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import jupytext
import nbformat

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "book"
GITHUB = "makemore-book/makemore-part3"
BRANCH = "main"

SETUP_TAG = "makemore-setup"
SETUP = f'''\
# Setup for Colab or any fresh Python: install the book's package if it is missing.
# On Binder or in a clone of the repository it is installed already, and this does nothing.
import importlib, importlib.util, os, subprocess, sys

if importlib.util.find_spec("makemore") is None:
    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    if importlib.util.find_spec("torch") is None:  # CPU wheels, not a multi-GB CUDA build
        subprocess.run(pip + ["torch", "--index-url", "https://download.pytorch.org/whl/cpu"],
                       check=True)
    subprocess.run(pip + ["makemore-book @ git+https://github.com/{GITHUB}@{BRANCH}",
                          "myst-nb"], check=True)
    # names.txt is downloaded (and checksummed) on first use, into this folder:
    os.environ.setdefault("MAKEMORE_DATA_DIR", os.path.expanduser("~/makemore-data"))
    importlib.invalidate_caches()
'''


def toc_files(root: Path = REPO) -> list[str]:
    """The pages of ``root/_toc.yml`` (``book/data``, ...), root page first, in order."""
    import yaml

    toc = yaml.safe_load((Path(root) / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(node) -> None:
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(toc.get("parts", toc.get("chapters", [])))
    return files


def is_notebook_page(md: Path) -> bool:
    """A MyST notebook page: its front matter names a kernel (as sphinx-book-theme
    checks before it shows launch buttons)."""
    text = md.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return False
    end = text.find("\n---", 3)
    return end > 0 and "kernelspec:" in text[:end]


def pages() -> list[Path]:
    """Every notebook page of the book, sorted."""
    return sorted(p for p in BOOK.glob("*.md") if is_notebook_page(p))


def notebook_path(md: Path) -> Path:
    return md.with_suffix(".ipynb")


def _cell_id(i: int, source: str) -> str:
    # deterministic ids: regenerating an unchanged page gives the same bytes
    return f"c{i:03d}-" + hashlib.sha1(source.encode()).hexdigest()[:8]


def build(md: Path) -> nbformat.NotebookNode:
    """The notebook of page ``md``: jupytext's cells, the setup cell first."""
    nb = jupytext.read(md, fmt="md:myst")
    setup = nbformat.v4.new_code_cell(SETUP, metadata={"tags": [SETUP_TAG]})
    nb.cells.insert(0, setup)
    for i, cell in enumerate(nb.cells):
        cell["id"] = _cell_id(i, cell.source)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    # no jupytext pairing metadata: the .ipynb is an output, never edited by hand
    nb.metadata.pop("jupytext", None)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python",
                                 "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.nbformat, nb.nbformat_minor = 4, 5
    return nb


def render(md: Path) -> str:
    """The notebook file's text, exactly as :func:`write` writes it."""
    return nbformat.writes(build(md)) + "\n"


def stale(mds: list[Path] | None = None) -> list[Path]:
    """Pages whose notebook is missing or differs from a fresh :func:`render`."""
    out = []
    for md in pages() if mds is None else mds:
        nb = notebook_path(md)
        if not nb.exists() or nb.read_text(encoding="utf-8") != render(md):
            out.append(md)
    return out


def orphans() -> list[Path]:
    """Notebooks in book/ with no notebook page behind them."""
    return sorted(nb for nb in BOOK.glob("*.ipynb")
                  if not (nb.with_suffix(".md").exists()
                          and is_notebook_page(nb.with_suffix(".md"))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a notebook is missing or out of date")
    args = parser.parse_args(argv)
    todo, extra = stale(), orphans()
    if args.check:
        for md in todo:
            print(f"out of date: {notebook_path(md).relative_to(REPO)}", file=sys.stderr)
        for nb in extra:
            print(f"no page behind it: {nb.relative_to(REPO)}", file=sys.stderr)
        if todo or extra:
            print("run `make notebooks` and commit book/*.ipynb", file=sys.stderr)
            return 1
        print(f"{len(pages())} notebooks up to date")
        return 0
    for md in todo:
        notebook_path(md).write_text(render(md), encoding="utf-8")
        print(f"wrote {notebook_path(md).relative_to(REPO)}")
    for nb in extra:
        nb.unlink()
        print(f"removed {nb.relative_to(REPO)} (no page)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
