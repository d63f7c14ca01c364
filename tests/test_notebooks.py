"""The launch notebooks (what the Binder and Colab buttons open) and the Binder environment.

Fast: the chapters' setup cell; the install cell of a launch notebook (installs exactly
this version's wheel next to the torch that is there, or nothing); the build's notebook
writer on a page made up here (book/_ext/launch_notebooks.py); no notebook committed;
binder/ locked, and consistent with pyproject.toml and the Makefile.

Slow (they read the built book, which `make test` builds before pytest): every launch
notebook of the build has no MyST left and this version's cells; every notebook of the
site too; every launch button names this version's tag and a notebook the tag carries.
The environments that run the notebooks are tested in tests/test_launch.py.
"""
from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest
import tomllib
from makemore import book
from makemore.runs import release

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO / "book" / "_ext"))
import notebooks  # noqa: E402

BINDER = REPO / "binder"
BUILD = REPO / "_build"


def toc_pages() -> list[Path]:
    """The .md pages listed in _toc.yml."""
    return [REPO / f"{f}.md" for f in notebooks.toc_files() if (REPO / f"{f}.md").exists()]


# ---------------------------------------------------------------------------
# the pages


def test_the_books_pages_are_covered():
    pages = [md for md in toc_pages() if notebooks.is_notebook_page(md)]
    assert pages, "the TOC lists no notebook page"
    assert set(pages) <= set(notebooks.pages())


def test_the_introductions_table_names_every_numbered_chapter():
    """The introduction's chapter table lists each chapter of the numbered parts (it
    missed "Beyond BatchNorm" for a day)."""
    import yaml

    toc = yaml.safe_load((REPO / "_toc.yml").read_text(encoding="utf-8"))
    chapters = [Path(c["file"]).name for part in toc["parts"] if part.get("numbered")
                for c in part["chapters"]]
    table = (REPO / "book" / "intro.md").read_text(encoding="utf-8").split("## The chapters")[1]
    missing = [c for c in chapters if f"{{doc}}`{c}`" not in table]
    assert chapters and not missing, f"chapters missing from intro.md's table: {missing}"


def test_every_page_starts_with_the_setup_cell():
    """The page's own first code cell is the visible setup cell; the install cell is
    not in the page (the launch notebook gets the one of its version)."""
    import jupytext

    for md in notebooks.pages():
        cells = [c for c in jupytext.read(md, fmt="md:myst").cells if c.cell_type == "code"]
        assert cells[0].source == book.SETUP_CELL, f"{md.name}: not the book's setup cell"
        assert not cells[0].metadata.get("tags"), f"{md.name}: the setup cell is shown"
        assert not [c for c in cells if "makemore-install" in c.metadata.get("tags", [])]


def test_no_notebook_is_committed():
    """Notebooks are build products (they show the build's values): the release tag
    carries them, main does not."""
    tracked = subprocess.run(["git", "ls-files", "*.ipynb", "**/*.ipynb"], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout.split()
    assert not tracked, f"committed notebooks: {tracked}"


# ---------------------------------------------------------------------------
# the install cell


def run_install(monkeypatch, installed: dict[str, str], env: dict | None = None):
    """Execute the install cell with ``installed`` (distribution -> version) as the
    only distributions; return the commands it ran."""
    calls = []

    def version(name):
        if name not in installed:
            raise importlib.metadata.PackageNotFoundError(name)
        return installed[name]

    monkeypatch.setattr(importlib.metadata, "version", version)
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    done = types.SimpleNamespace(returncode=0, stdout="", stderr="")
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append((cmd, kw)) or done)
    exec(release.install_cell(), {})
    return calls


def test_install_cell_does_nothing_where_this_version_is_installed(monkeypatch):
    import makemore

    assert run_install(monkeypatch, {"makemore-book": makemore.__version__,
                                     "torch": "2.13.0+cpu"}) == []


def test_install_cell_on_colab_installs_this_release_next_to_colabs_torch(monkeypatch):
    import makemore

    v = makemore.__version__
    (cmd, kw), = run_install(monkeypatch, {"torch": "2.9.0+cu126"})
    assert cmd[:4] == [sys.executable, "-m", "pip", "install"] and kw["check"]
    wheel = f"{release.RELEASES_URL}v{v}/makemore_book-{v}-py3-none-any.whl"
    assert wheel in cmd, cmd
    assert "torch==2.9.0+cu126" in cmd, "pinned to the torch that is there: never replaced"
    assert not [a for a in cmd if "git+" in a or "@main" in a or "myst" in a or "sphinx" in a]


def test_install_cell_replaces_another_version_and_follows_a_mirror(monkeypatch):
    (cmd, _), = run_install(monkeypatch, {"makemore-book": "0.0.1", "torch": "2.13.0"},
                            env={release.RELEASES_ENV: "http://127.0.0.1:9/rel/"})
    v = release.__version__
    assert f"http://127.0.0.1:9/rel/v{v}/makemore_book-{v}-py3-none-any.whl" in cmd


def test_install_cell_installs_cpu_torch_where_there_is_none(monkeypatch):
    (cmd, _), = run_install(monkeypatch, {})
    assert f"torch=={release.TORCH}" in cmd and release.TORCH.endswith("+cpu")
    assert cmd[cmd.index("--extra-index-url") + 1] == "https://download.pytorch.org/whl/cpu"
    assert release.TORCH.split("+")[0] == makefile_torch_pin().split("==")[1]


def test_setup_fetches_the_runs_only_where_the_package_was_pip_installed(monkeypatch, tmp_path):
    """Colab (no checkout): the names go to ~/makemore-data and the published runs are
    fetched into an empty cache, once; a failed fetch says so and the chapter goes on.
    In a checkout (the build, Binder, a laptop) setup fetches nothing."""
    import torch
    from makemore import data
    from makemore.runs import bundle

    fetched = []
    monkeypatch.setattr(bundle, "fetch", lambda *a, **kw: fetched.append(1))
    monkeypatch.setattr(data, "load_splits", lambda block_size=3: ("splits", block_size))
    monkeypatch.setenv("MAKEMORE_CACHE", str(tmp_path / "runs"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("MAKEMORE_DATA_DIR", raising=False)
    threads = torch.get_num_threads()
    try:
        assert book.setup() == ("splits", 3) and fetched == []  # a checkout
        assert "MAKEMORE_DATA_DIR" not in os.environ
        assert torch.get_num_threads() == 1

        monkeypatch.setattr(book, "in_checkout", lambda: False)
        assert book.setup(block_size=5) == ("splits", 5) and fetched == [1]
        assert os.environ["MAKEMORE_DATA_DIR"] == str(tmp_path / "makemore-data")

        def offline(*a, **kw):
            raise bundle.BundleError("could not download the bundle")

        monkeypatch.setattr(bundle, "fetch", offline)
        book.setup()  # prints why, and goes on
    finally:
        torch.set_num_threads(threads)


def test_glue_without_myst_nb(monkeypatch):
    """Colab: makemore.book's glue stands in for myst-nb's, displays the value when
    asked to, as myst-nb's does, and nothing otherwise."""
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    book._glue("x", 1.5, display=False)
    book._glue("y", 2.5)
    assert shown == [2.5]


def test_glue_all_glues_every_value_under_its_prefix(monkeypatch):
    glued = []
    monkeypatch.setattr(book, "glue", lambda name, value, display=True:
                        glued.append((name, value, display)))
    book.glue_all("ch", {"a": 1, "b": 2.5})
    assert glued == [("ch-a", 1, False), ("ch-b", 2.5, False)]


# ---------------------------------------------------------------------------
# the build's notebook writer, on a page made up here


class FakeResolver:
    def glue(self, key):
        return {"loss": {"text/plain": "2.123456"}}[key]

    def numref(self, label):
        return {"fig-a": ("Fig. 3.1", "https://site/book/p.html#fig-a")}[label]

    def __getattr__(self, name):
        raise AssertionError(f"not expected here: {name}")


def executed_page():
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        md("(ch-p)=\n# A page\n\nThe loss is {glue:text}`loss:.2f`."),
        code(book.SETUP_CELL, outputs=[nbformat.v4.new_output("stream", text="x")]),
        code("glue('loss', 2.1)", metadata={"tags": ["remove-cell"]}),
        code("fig = plot()", metadata={"mystnb": {"figure": {
            "caption": "The loss, {glue:text}`loss:.1f`.", "name": "fig-a"}}}),
        code("interactive.init_widget()", metadata={"tags": ["skip-execution", "live-widget"]}),
        code("interactive.init_static()", metadata={"tags": ["remove-input", "static-explorer"]}),
    ]
    return nb


def test_launch_notebook_of_a_page():
    import launch_notebooks

    out = launch_notebooks.launch_notebook(executed_page(), FakeResolver(),
                                           release.install_cell(), "https://site/book/p.html")
    kinds = [(c.cell_type, c.source.split("\n")[0][:40]) for c in out.cells]
    assert kinds[0] == ("markdown", "# A page"), kinds
    assert "The loss is 2.12." in out.cells[0].source
    assert out.cells[1].source == release.install_cell(), "installs first"
    assert out.cells[2].source == book.SETUP_CELL and not out.cells[2].outputs
    assert out.cells[3].metadata["jupyter"] == {"source_hidden": True}, "hidden on the page"
    assert "mystnb" not in out.cells[4].metadata
    assert out.cells[5].source == "**Fig. 3.1.** The loss, 2.1.", "the caption follows"
    # the live widget stays; its static frames, the page's stand-in for it, do not
    assert out.cells[6].source == "interactive.init_widget()" and len(out.cells) == 7
    assert not notebooks.problems(out), notebooks.problems(out)
    nbformat.validate(out)
    kept = launch_notebooks.launch_notebook(executed_page(), FakeResolver(), "pass", "u",
                                            with_outputs=True, first="*header*")
    assert kept.cells[0].source == "*header*"
    assert kept.cells[3].outputs, "the site's download keeps the page's outputs"


def test_every_static_explorer_follows_its_live_widget():
    """A launch notebook drops a page's static explorer for the live widget just before
    it: no page may have one without the other."""
    import jupytext
    import launch_notebooks

    seen = 0
    for md in notebooks.pages():
        cells = [c for c in jupytext.read(md, fmt="md:myst").cells if c.cell_type == "code"]
        for before, cell in zip(cells, cells[1:]):
            if launch_notebooks.STATIC_EXPLORER in cell.metadata.get("tags", []):
                seen += 1
                assert "live-widget" in before.metadata.get("tags", []), md.name
                assert "_static(" in cell.source and "_widget(" in before.source, md.name
    assert seen == 4 + 1  # batchnorm 2, diagnostics 2, kaiming 1


def test_no_cell_needs_an_import_of_a_cell_a_notebook_may_skip():
    """A launch notebook drops the static explorers, and its runners may skip the live
    widgets: a name another cell uses must be imported by a cell that always runs (the
    batchnorm notebook lost `interactive` that way)."""
    import ast

    import jupytext
    import launch_notebooks
    from IPython.core.inputtransformer2 import TransformerManager

    skippable = {launch_notebooks.STATIC_EXPLORER, "live-widget"}
    python = TransformerManager().transform_cell  # the cells' IPython syntax (magics)
    for md in notebooks.pages():
        imported, only_skipped = set(), set()
        for cell in jupytext.read(md, fmt="md:myst").cells:
            if cell.cell_type != "code":
                continue
            tree = ast.parse(python(cell.source))
            names = {a.asname or a.name.split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.Import | ast.ImportFrom) for a in node.names}
            if skippable & set(cell.metadata.get("tags", [])):
                only_skipped |= names - imported
                continue
            used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
            missing = (used & only_skipped) - names
            assert not missing, f"{md.name}: {sorted(missing)} imported only by a skippable cell"
            imported |= names
            only_skipped -= names


def test_launch_notebooks_come_from_the_html_build_only(tmp_path):
    """The single-page build (make pdf) is an html format too: it writes no launch
    notebooks over the site's (its pages have no numbers, its links one page)."""
    import launch_notebooks

    for name in ("singlehtml", "latex"):
        app = types.SimpleNamespace(builder=types.SimpleNamespace(name=name, format="html"),
                                    outdir=str(tmp_path / name))
        launch_notebooks.write_notebooks(app, None)
    assert list(tmp_path.iterdir()) == []


def test_a_notebook_with_myst_left_is_a_problem():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("See {doc}`kaiming`."),
                nbformat.v4.new_code_cell(release.install_cell()),
                nbformat.v4.new_code_cell(book.SETUP_CELL)]
    assert notebooks.problems(nb) == ["cell 0: MyST left: '{doc}`kaiming`'"]
    nb.cells[1].source = release.install_cell("0.0.1")
    assert "the first code cell is not this version's install cell" in notebooks.problems(nb)


# ---------------------------------------------------------------------------
# the Binder environment


def makefile_torch_pin() -> str:
    m = re.search(r"pip install (torch==[\d.]+)", (REPO / "Makefile").read_text())
    assert m, "the Makefile pins torch"
    return m.group(1)


def lock() -> dict[str, str]:
    """binder/requirements.txt: name -> pinned version; every entry hashed."""
    text = (BINDER / "requirements.txt").read_text()
    entry = r"^([A-Za-z0-9_.-]+)==(\S+?)(?: \\\n((?:\s+--hash=sha256:\w+(?: \\\n)?)+))?$"
    entries = re.findall(entry, text, re.M)
    unhashed = [name for name, _, hashes in entries if "--hash=sha256:" not in hashes]
    assert not unhashed, f"no sha256 for {unhashed}: run `make binder-lock`"
    return {name.lower().replace("_", "-"): version for name, version, _ in entries}


def requirement_names(lines: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", ln.strip())[0].lower() for ln in lines
            if ln.strip() and not ln.strip().startswith(("#", "-"))}


def test_binder_environment_is_locked_with_cpu_torch():
    text = (BINDER / "requirements.txt").read_text()
    pinned = lock()
    body = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    loose = [ln for ln in body if not ln.startswith(("--", " ")) and "==" not in ln]
    assert not loose, f"unpinned: {loose}"
    assert pinned["torch"] == release.TORCH, "the +cpu build: fails loudly without the CPU index"
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in body
    assert "-e ." not in body, "the package comes from postBuild (--no-deps), not the lock"
    assert "make binder-lock" in text, "the lock says how it was made"


def test_binder_lock_holds_what_the_notebooks_import_and_no_sphinx():
    pinned = lock()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    need = requirement_names(project["dependencies"]) | {"jupyterlab", "ipykernel", "jupytext"}
    assert need <= set(pinned), f"missing from the lock: {need - set(pinned)}"
    wanted = requirement_names((BINDER / "requirements.in").read_text().splitlines())
    assert wanted <= set(pinned), "requirements.in and its lock disagree: make binder-lock"
    build_only = {n for n in pinned if re.match(r"(sphinx|myst|jupyter-book|docutils|pybtex)", n)}
    assert not build_only, f"the book build's stack is not needed on Binder: {build_only}"


def test_binder_runtime_and_postbuild():
    runtime = (BINDER / "runtime.txt").read_text().strip()
    assert re.fullmatch(r"python-3\.\d+", runtime)
    assert int(runtime.split(".")[1]) >= 10  # pyproject: requires-python >= 3.10
    post = BINDER / "postBuild"
    assert os.access(post, os.X_OK), "binder/postBuild must be executable"
    text = post.read_text()
    assert text.startswith("#!/bin/bash") and "set -euo pipefail" in text
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert "python -m pip install --quiet --no-deps -e ." in lines
    assert "python -m makemore fetch" in lines
    assert any(ln.startswith("python -m makemore fetch-runs ||") for ln in lines), \
        "no bundle: the image still builds"
    assert "jupytext-config set-default-viewer markdown" in lines, "only Markdown, not .py"


def test_readmes_launch_badges_open_this_versions_tag():
    readme = (REPO / "README.md").read_text()
    tag = release.tag()
    badges = re.findall(r"\]\((https://(?:mybinder\.org/v2|colab\.research\.google\.com/github)"
                        r"[^)]+)\)", readme)
    assert len(badges) == 2, badges
    for url in badges:
        assert f"/{tag}" in url and url.endswith(".ipynb"), f"{url}: not {tag}'s notebook"
    assert "make binder-lock" in readme and "tools/release.py" in readme


# ---------------------------------------------------------------------------
# slow: the built book's notebooks and launch buttons


def built(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"{path} is missing: build the book first (make book; make test does)")
    return path


@pytest.mark.slow
def test_the_builds_launch_notebooks_read_like_the_page():
    problems = notebooks.check(built(BUILD / "launch"))
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_no_notebook_of_the_site_keeps_myst():
    import myst_to_jupyter

    found = sorted(built(BUILD / "html").rglob("*.ipynb"))
    assert found, "the site offers each page as a notebook"
    for path in found:
        nb = nbformat.read(path, as_version=4)
        left = [x for c in nb.cells if c.cell_type == "markdown"
                for x in myst_to_jupyter.leftovers(c.source)]
        assert not left, f"{path.relative_to(BUILD)}: {left[:3]}"


@pytest.mark.slow
def test_every_launch_link_names_this_versions_tag_and_a_notebook_it_carries():
    from bs4 import BeautifulSoup

    tag = release.tag()
    links = []
    for page in sorted(built(BUILD / "html").rglob("*.html")):
        soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
        links += [a["href"] for a in soup.find_all("a", href=True)
                  if re.search(r"mybinder\.org/v2|colab\.research\.google\.com/github", a["href"])]
    assert links, "no launch buttons in the site"
    launch = BUILD / "launch"
    for url in links:
        m = (re.search(rf"/v2/gh/{release.REPO}/([^?]+)\?urlpath=lab/tree/(.+)$", url)
             or re.search(rf"/github/{release.REPO}/blob/([^/]+)/(.+)$", url))
        assert m, url
        ref, path = m.groups()
        assert ref == tag, f"{url}: not this version's tag {tag}"
        assert (launch / path).exists(), f"{url}: the tag would not carry {path}"


# ---------------------------------------------------------------------------
# a run that must be trained where it is used (a notebook without the bundle)


def test_training_in_a_notebook_says_how_long_and_shows_progress(monkeypatch, tmp_path, capsys):
    """One sentence with an estimate from the run's cost, the command that fits a
    notebook (never `make runs`), and a tqdm.auto bar that reaches the run's steps."""
    from makemore.runs import cache, jobs

    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "runs"))
    monkeypatch.delenv(cache.NO_TRAIN_ENV, raising=False)
    spec = cache.RUNS["kaiming"]
    reported = []

    def fake_train(specs, splits=None, progress=None):
        assert specs == [spec] and progress is not None
        for done in (spec.steps // 2, spec.steps):
            progress(done)
            reported.append(done)

    monkeypatch.setattr(cache, "train_and_save", fake_train)
    with pytest.raises(cache.RunCacheError):  # the fake trained nothing to load
        cache.get("kaiming")
    err = capsys.readouterr().err
    minutes = max(1, round(jobs.cost([spec]) / cache.COST_PER_SECOND / 60))
    assert "training kaiming now" in err and f"about {minutes} minute" in err, err
    assert "on one core" in err and "`python -m makemore pretrain kaiming`" in err
    assert "make runs" not in err
    assert f"{spec.steps}/{spec.steps}" in err, "the bar reached the run's steps"
    assert reported == [spec.steps // 2, spec.steps]
