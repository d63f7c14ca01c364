"""Generate the runnable notebook of every chapter: ``book/<page>.md`` -> ``book/<page>.ipynb``.

The chapters are MyST Markdown notebooks. Colab opens only ``.ipynb`` files, and
the book's "launch" buttons (sphinx-book-theme) link to ``book/<page>.ipynb``
whenever that file exists next to the ``.md`` -- so the notebooks are generated
with jupytext and committed (Sphinx itself ignores them: ``exclude_patterns``).

Every page's first code cell (:func:`install_cell`, tagged ``makemore-install``, removed
from the HTML) makes the notebook run on Colab or any fresh Python: where ``makemore``
is not importable it installs the book's package at this version's tag (CPU torch
first, if there is no torch). Where ``makemore`` is installed (Binder, a clone) it does
nothing. This tool writes that cell into the pages too, above their own first cell.
The second, :data:`makemore.book.SETUP_CELL`, is the same visible cell in every chapter
(a test checks it): its :func:`makemore.book.setup` fetches the trained runs where the
package was just installed, so that no chapter trains, and ``makemore.book.glue`` works
without myst-nb.

All notebooks also go into one zip, ``book/notebooks.zip``, linked from the
introduction (deterministic: the same notebooks give the same bytes).

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

INSTALL_TAG = "makemore-install"
ZIP = BOOK / "notebooks.zip"
ZIP_FOLDER = "makemore-part3"


def install_cell(version: str | None = None) -> str:
    """The source of every page's first code cell, for the package ``version`` (default:
    this one): a pinned tag (``v0.1.0``), never the moving main branch."""
    if version is None:
        version = _package_version()
    return f'''\
# Colab, or any Python without the book's package: install it (the book's version
# {version}); the setup cell below then fetches its trained runs. Elsewhere: nothing.
import importlib.util, subprocess, sys

if importlib.util.find_spec("makemore") is None:
    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    if importlib.util.find_spec("torch") is None:  # CPU wheels, not a multi-GB CUDA build
        subprocess.run(pip + ["torch", "--index-url", "https://download.pytorch.org/whl/cpu"],
                       check=True)
    subprocess.run(pip + ["makemore-book @ git+https://github.com/{GITHUB}@v{version}"],
                   check=True)'''


def _package_version() -> str:
    import re

    text = (REPO / "code" / "makemore" / "__init__.py").read_text(encoding="utf-8")
    return re.search(r'^__version__ = "([^"]+)"', text, re.M).group(1)


def install_block() -> str:
    """The install cell as it stands in a page's MyST source."""
    head = f"```{{code-cell}} ipython3\n:tags: [remove-cell, {INSTALL_TAG}]\n\n"
    return f"{head}{install_cell()}\n```\n"


def with_install_cell(text: str) -> str:
    """Page source ``text`` with :func:`install_block` as its first code cell (replacing
    an older install cell, or inserted above the page's first code cell)."""
    start = text.find("```{code-cell}")
    if start < 0:
        return text
    end = text.find("\n```\n", start) + len("\n```\n")
    if INSTALL_TAG in text[start:text.find("\n\n", start)]:
        return text[:start] + install_block() + text[end:]
    return text[:start] + install_block() + "\n" + text[start:]


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
    """The notebook of page ``md``: jupytext's cells, the page's install cell first."""
    nb = jupytext.read(md, fmt="md:myst")
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


def zip_bytes() -> bytes:
    """Every page's notebook (as :func:`render` makes it) in one zip, in a folder
    ``makemore-part3/``; fixed timestamps, so that it only changes with a notebook."""
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for md in pages():
            info = zipfile.ZipInfo(f"{ZIP_FOLDER}/{notebook_path(md).name}", (1980, 1, 1, 0, 0, 0))
            info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
            z.writestr(info, render(md))
    return out.getvalue()


def without_install_cell(mds: list[Path] | None = None) -> list[Path]:
    """Pages whose first code cell is not the current :func:`install_block`."""
    return [md for md in (pages() if mds is None else mds)
            if with_install_cell(md.read_text(encoding="utf-8")) != md.read_text(encoding="utf-8")]


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
    if args.check:
        todo, extra, bare = stale(), orphans(), without_install_cell()
        if not ZIP.exists() or ZIP.read_bytes() != zip_bytes():
            todo.append(ZIP)
        for md in bare:
            print(f"no current install cell first: {md.relative_to(REPO)}", file=sys.stderr)
        for md in todo:
            path = md if md == ZIP else notebook_path(md)
            print(f"out of date: {path.relative_to(REPO)}", file=sys.stderr)
        for nb in extra:
            print(f"no page behind it: {nb.relative_to(REPO)}", file=sys.stderr)
        if todo or extra or bare:
            print("run `make notebooks` and commit book/*.ipynb, book/*.md and "
                  "book/notebooks.zip", file=sys.stderr)
            return 1
        print(f"{len(pages())} notebooks up to date")
        return 0
    for md in without_install_cell():
        md.write_text(with_install_cell(md.read_text(encoding="utf-8")), encoding="utf-8")
        print(f"wrote the install cell into {md.relative_to(REPO)}")
    todo, extra = stale(), orphans()
    for md in todo:
        notebook_path(md).write_text(render(md), encoding="utf-8")
        print(f"wrote {notebook_path(md).relative_to(REPO)}")
    for nb in extra:
        nb.unlink()
        print(f"removed {nb.relative_to(REPO)} (no page)")
    data = zip_bytes()
    if not ZIP.exists() or ZIP.read_bytes() != data:
        ZIP.write_bytes(data)
        print(f"wrote {ZIP.relative_to(REPO)} ({len(pages())} notebooks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
