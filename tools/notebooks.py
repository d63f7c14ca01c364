"""Check the launch notebooks the book build wrote: ``_build/launch/book/<page>.ipynb``.

The launch notebooks (what the Binder and Colab buttons open, in each release's tag) are
written by the book build itself, after the pages executed
(``book/_ext/launch_notebooks.py``), so that their Markdown shows the values, numbers and
links of the built pages. This tool checks such a folder:

- every notebook page of the book (a ``book/*.md`` with a kernel) has its notebook;
- no Markdown cell keeps MyST-only syntax (roles, directives, labels, substitutions);
- the first code cell is the install cell of this version
  (:func:`makemore.runs.release.install_cell`), the next the chapters' setup cell.

    python tools/notebooks.py [DIR]    # default _build/launch; exit 1 on any problem

``make notebooks`` builds the book and runs it; tests/test_notebooks.py checks the same.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "book"
LAUNCH = REPO / "_build" / "launch"
sys.path.insert(0, str(BOOK / "_ext"))
import myst_to_jupyter  # noqa: E402
from launch_notebooks import STATIC_EXPLORER  # noqa: E402


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


def code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def problems(nb, version: str | None = None) -> list[str]:
    """What is wrong with one launch notebook (empty: nothing)."""
    from makemore.book import SETUP_CELL
    from makemore.runs import release

    out = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            out += [f"cell {i}: MyST left: {x[:60]!r}"
                    for x in myst_to_jupyter.leftovers(cell.source)]
    code = code_cells(nb)
    out += [f"cell {i}: a page's static explorer (the notebook runs its live widget)"
            for i, c in enumerate(nb.cells) if STATIC_EXPLORER in c.metadata.get("tags", [])]
    if not code or code[0].source != release.install_cell(version):
        out.append("the first code cell is not this version's install cell")
    if len(code) < 2 or code[1].source != SETUP_CELL:
        out.append("the second code cell is not makemore.book.SETUP_CELL")
    return out


def retarget(nb, version: str):
    """``nb`` with the install cell of another ``version`` (the tests' version B)."""
    from makemore.runs import release

    nb = nbformat.from_dict(nb)
    code_cells(nb)[0].source = release.install_cell(version)
    return nb


def check(folder: Path = LAUNCH) -> list[str]:
    """Every problem of the launch notebooks in ``folder``, as ``path: problem``."""
    out = []
    for md in pages():
        path = Path(folder) / "book" / f"{md.stem}.ipynb"
        if not path.exists():
            out.append(f"{path}: missing (build the book: make book)")
            continue
        out += [f"{path}: {p}" for p in problems(nbformat.read(path, as_version=4))]
    if not (Path(folder) / "notebooks.zip").exists():
        out.append(f"{folder}/notebooks.zip: missing")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", type=Path, default=LAUNCH)
    args = parser.parse_args(argv)
    found = check(args.folder)
    for line in found:
        print(line, file=sys.stderr)
    if found:
        return 1
    print(f"{len(pages())} launch notebooks in {args.folder}: no MyST, this version's cells")
    return 0


if __name__ == "__main__":
    sys.exit(main())
