"""The chapters' notebooks (what the Binder and Colab buttons open) and the Binder
environment.

Fast: every notebook page has a committed ``book/<page>.ipynb`` that is exactly what
``tools/notebooks.py`` makes of the ``.md`` now; its first code cell (in the page too)
installs the pinned package and fetches the runs where it is missing and does nothing
where it is present; binder/ is pinned and consistent with the Makefile.

Slow, a Binder launch as it happens: a fresh virtual environment made from
``binder/requirements.txt`` (the local torch wheel standing in for the CPU index),
an EMPTY run cache, the run bundle (packed from this process's run cache,
``$MAKEMORE_CACHE``) served by a web server on 127.0.0.1 in place of the book's site;
binder/postBuild fetches it, and with training forbidden (``MAKEMORE_NO_TRAIN=1``)
every notebook executes and every control of every live widget in it moves. Each
chapter's time and its kernel's peak memory (<= 2 GB, Binder's limit) are printed.
"""
from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
import types
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nbformat
import pytest
from makemore import book

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import notebooks  # noqa: E402

BINDER = REPO / "binder"


def toc_pages() -> list[Path]:
    """The .md pages listed in _toc.yml."""
    return [REPO / f"{f}.md" for f in notebooks.toc_files() if (REPO / f"{f}.md").exists()]


# ---------------------------------------------------------------------------
# the notebooks are committed and in sync


def test_every_notebook_page_has_an_up_to_date_notebook():
    stale = [str(notebooks.notebook_path(md).relative_to(REPO)) for md in notebooks.stale()]
    assert not stale, f"out of date or missing: {stale}; run `make notebooks` and commit them"
    orphans = [str(p.relative_to(REPO)) for p in notebooks.orphans()]
    assert not orphans, f"notebooks without a page: {orphans}; run `make notebooks`"


def test_the_books_pages_are_covered():
    pages = [md for md in toc_pages() if notebooks.is_notebook_page(md)]
    assert pages, "the TOC lists no notebook page"
    assert set(pages) <= set(notebooks.pages())


def test_notebook_cells_match_the_page():
    """Independently of the byte comparison: same cells, same order, no outputs."""
    import jupytext

    for md in notebooks.pages():
        nb_path = notebooks.notebook_path(md)
        if not nb_path.exists():
            continue  # reported by the test above
        nb = nbformat.read(nb_path, as_version=4)
        page = jupytext.read(md, fmt="md:myst")
        got = [(c.cell_type, c.source) for c in nb.cells]
        want = [(c.cell_type, c.source) for c in page.cells]
        assert got == want, f"{nb_path.name} differs from {md.name}"
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
        nbformat.validate(nb)


def test_every_page_starts_with_the_install_cell_then_the_setup_cell():
    """Visible in the chapter's source and in its notebook: the install cell first
    (removed from the HTML), then the same visible setup cell in every chapter."""
    assert not notebooks.without_install_cell(), "run `make notebooks` (it writes the cell)"
    for md in notebooks.pages():
        nb = nbformat.read(notebooks.notebook_path(md), as_version=4)
        first, second = [c for c in nb.cells if c.cell_type == "code"][:2]
        assert first.source == notebooks.install_cell(), md.name
        assert notebooks.INSTALL_TAG in first.metadata["tags"]
        assert second.source == book.SETUP_CELL, f"{md.name}: not the book's setup cell"
        assert not second.metadata.get("tags"), f"{md.name}: the setup cell is shown"


def test_generation_is_deterministic():
    md = notebooks.pages()[0]
    assert notebooks.render(md) == notebooks.render(md)
    text = md.read_text(encoding="utf-8")
    assert notebooks.with_install_cell(notebooks.with_install_cell(text)) == text


def run_install(monkeypatch, installed: set[str]):
    """Execute the install cell with only ``installed`` importable; return the
    commands it ran."""
    import importlib.util

    calls = []
    real = importlib.util.find_spec
    hidden = {"makemore", "torch"} - installed
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in hidden else real(name, *a))
    done = types.SimpleNamespace(returncode=0, stdout="", stderr="")
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append((cmd, kw)) or done)
    exec(notebooks.install_cell(), {})
    return calls


def test_install_cell_does_nothing_where_makemore_is_installed(monkeypatch):
    assert run_install(monkeypatch, {"makemore", "torch"}) == []


def test_install_cell_on_colab_pins_this_version(monkeypatch):
    import makemore

    # Colab: torch is there, makemore is not
    calls = run_install(monkeypatch, {"torch"})
    assert len(calls) == 1
    (pip, kw), = calls
    assert pip[:4] == [sys.executable, "-m", "pip", "install"] and kw["check"]
    tag = f"v{makemore.__version__}"
    assert pip[-1] == f"makemore-book @ git+https://github.com/{notebooks.GITHUB}@{tag}"
    assert "@main" not in notebooks.install_cell()
    assert not [a for a in pip if "myst" in a or "sphinx" in a.lower()], "no Sphinx for glue"


def test_install_cell_installs_cpu_torch_where_there_is_none(monkeypatch):
    calls = run_install(monkeypatch, set())
    assert len(calls) == 2
    torch_cmd = calls[0][0]
    assert "torch" in torch_cmd
    assert torch_cmd[torch_cmd.index("--index-url") + 1] == "https://download.pytorch.org/whl/cpu"


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
    monkeypatch.setenv("MAKEMORE_DATA_DIR", "")
    monkeypatch.delenv("MAKEMORE_DATA_DIR")
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


def test_glue_is_myst_nbs_where_it_is_installed():
    import myst_nb

    assert book.HAVE_MYST_NB and book.glue is myst_nb.glue


def test_glue_all_glues_every_value_under_its_prefix(monkeypatch):
    glued = []
    monkeypatch.setattr(book, "glue", lambda name, value, display=True:
                        glued.append((name, value, display)))
    book.glue_all("ch", {"a": 1, "b": 2.5})
    assert glued == [("ch-a", 1, False), ("ch-b", 2.5, False)]


def test_notebooks_zip_holds_every_notebook():
    """The introduction links book/notebooks.zip: every chapter's notebook, current."""
    import zipfile

    path = notebooks.ZIP
    assert path.exists(), "run `make notebooks`"
    assert path.read_bytes() == notebooks.zip_bytes(), "out of date: run `make notebooks`"
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        assert names == [f"makemore-part3/{notebooks.notebook_path(md).name}"
                         for md in notebooks.pages()]
        for md in notebooks.pages():
            nb = z.read(f"makemore-part3/{md.stem}.ipynb").decode()
            assert nb == notebooks.render(md)
    assert "notebooks.zip" in (REPO / "book" / "intro.md").read_text()


# ---------------------------------------------------------------------------
# the Binder environment


def makefile_torch_pin() -> str:
    m = re.search(r"pip install (torch==[\d.]+)", (REPO / "Makefile").read_text())
    assert m, "the Makefile pins torch"
    return m.group(1)


def requirement_lines() -> list[str]:
    lines = (BINDER / "requirements.txt").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def test_binder_requirements():
    lines = requirement_lines()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lines, "CPU-only torch"
    assert makefile_torch_pin() in lines, "same torch as the Makefile"
    assert "-e ." in lines, "the book's package from this repository"
    names = {re.split(r"[<>=\[ ]", ln)[0].lower() for ln in lines}
    assert {"jupyterlab", "jupytext", "myst-nb", "ipykernel"} <= names
    loose = [ln for ln in lines if not ln.startswith(("--", "-e ")) and "==" not in ln]
    assert not loose, f"pin every version: {loose}"


def test_binder_runtime_and_postbuild():
    runtime = (BINDER / "runtime.txt").read_text().strip()
    assert re.fullmatch(r"python-3\.\d+", runtime)
    minor = int(runtime.split(".")[1])
    assert minor >= 10  # pyproject: requires-python >= 3.10
    post = BINDER / "postBuild"
    assert os.access(post, os.X_OK), "binder/postBuild must be executable"
    text = post.read_text()
    assert text.startswith("#!/bin/bash") and "set -euo pipefail" in text
    assert "python -m makemore fetch\n" in text
    assert re.search(r"^python -m makemore fetch-runs\b", text, re.M), "the runs: nothing trains"
    assert "jupytext-config set-default-viewer" in text


# ---------------------------------------------------------------------------
# slow: the Binder environment runs every notebook

RUNNER = textwrap.dedent('''
    import ast, json, sys, time
    import matplotlib
    matplotlib.use("Agg")
    import nbformat
    from nbclient import NotebookClient

    path, cwd = sys.argv[1], sys.argv[2]
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        "import resource, sys, makemore; print(sys.executable); print(makemore.__file__); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"))  # the kernel's peak, KiB
    t0 = time.perf_counter()
    NotebookClient(nb, kernel_name="python3", timeout=1800,
                   resources={"metadata": {"path": cwd}}).execute()
    seconds = time.perf_counter() - t0

    # The live widget cells (tagged skip-execution for the book build) run here, in this
    # Python, not through nbclient: nbclient 0.11 waits out its whole cell timeout after
    # some ipywidgets cells, although the kernel has finished them. Each widget must
    # redraw when any of its controls moves, as in JupyterLab.
    import ipywidgets as W
    checked = 0
    for cell in nb.cells:
        if "live-widget" not in cell.metadata.get("tags", []):
            continue
        tree = ast.parse(cell.source)
        last = tree.body.pop()
        ns = {}
        exec(compile(tree, "<live cell>", "exec"), ns)
        w = eval(compile(ast.Expression(last.value), "<live cell>", "eval"), ns)
        assert isinstance(w, W.interactive), type(w)
        for c in w.children:
            before = w.result
            if isinstance(c, (W.FloatSlider, W.IntSlider)):
                c.value = c.min if c.value != c.min else c.max
            elif isinstance(c, W.Checkbox):
                c.value = not c.value
            elif isinstance(c, W.Dropdown):
                if len(c.options) < 2:
                    continue
                c.index = (c.index + 1) % len(c.options)
            else:
                continue
            assert w.result is not before, f"{c.description}: no redraw"
        checked += 1
    import resource
    print(json.dumps({"seconds": seconds, "widgets": checked,
                      "runner_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                      "last": "".join(o.get("text", "") for o in nb.cells[-1].outputs)}))
''')


@pytest.fixture(scope="module")
def binder_env(tmp_path_factory):
    """A venv from binder/requirements.txt and binder/postBuild, as repo2docker would."""
    root = tmp_path_factory.mktemp("binder")
    venv = root / "venv"
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1",
               JUPYTER_CONFIG_DIR=str(root / "jupyter-config"),
               JUPYTER_PATH=str(root / "jupyter-path"), JUPYTER_DATA_DIR=str(root / "jupyter-data"))
    env.pop("VIRTUAL_ENV", None)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    # The CPU index stands for the local wheel here: install that torch first, then the
    # rest of the requirements without the extra index (it cannot be reached offline).
    subprocess.run(pip + [makefile_torch_pin()], check=True, env=env, cwd=REPO)
    offline = root / "requirements.txt"
    offline.write_text("\n".join(ln for ln in requirement_lines()
                                 if not ln.startswith("--extra-index-url")) + "\n")
    subprocess.run(pip + ["-r", str(offline)], check=True, env=env, cwd=REPO)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    # the book's site with the run bundle, on 127.0.0.1; the Binder pod's run cache empty
    from makemore import runs
    from makemore.runs import bundle

    site = root / "site"
    bundle.pack(site / "runs" / bundle.training_fingerprint())
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(
        type("Quiet", (SimpleHTTPRequestHandler,), {"log_message": lambda *a: None}),
        directory=str(site)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    cache = root / "cache" / "runs"
    env.update(MAKEMORE_NO_TRAIN="1", MAKEMORE_CACHE=str(cache),
               MAKEMORE_RUNS_URL=f"http://127.0.0.1:{httpd.server_address[1]}/runs/")
    t1 = time.perf_counter()
    subprocess.run(["bash", str(BINDER / "postBuild")], check=True, env=env, cwd=REPO)
    fetched = sorted(p.name for p in cache.iterdir())
    assert fetched == sorted(runs.path_of(s).name for s in runs.RUNS.values()), fetched
    print(f"postBuild (names.txt, {len(fetched)} runs fetched): {time.perf_counter() - t1:.0f} s")
    # the kernel "python3" is this venv's python, whatever else is installed
    spec = root / "jupyter-path" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(venv / "bin" / "python"), "-m", "ipykernel_launcher", "-f",
                 "{connection_file}"], "display_name": "Python 3 (binder)", "language": "python"}))
    print(f"binder venv ready in {time.perf_counter() - t0:.0f} s")
    yield types.SimpleNamespace(venv=venv, env=env, root=root)
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.slow
def test_postbuild_makes_md_open_as_notebooks(binder_env):
    settings = list((binder_env.root / "jupyter-config").rglob("*.json"))
    text = "".join(p.read_text() for p in settings)
    assert "jupytext" in text.lower() and "markdown" in text.lower(), settings


@pytest.mark.slow
@pytest.mark.parametrize("md", notebooks.pages(), ids=lambda p: p.stem)
def test_notebook_runs_in_the_binder_environment(binder_env, md, capsys):
    nb = notebooks.notebook_path(md)
    assert nb.exists(), "run `make notebooks`"
    proc = subprocess.run([str(binder_env.venv / "bin" / "python"), "-c", RUNNER, str(nb),
                           str(REPO / "book")], env=binder_env.env, cwd=REPO / "book",
                          capture_output=True,
                          text=True, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    python, package, kernel_kib = result["last"].split()
    assert python.startswith(str(binder_env.venv)), "ran in the Binder venv's kernel"
    assert Path(package).is_relative_to(REPO / "code"), "the package from this repository"
    live = sum(1 for c in nbformat.read(nb, as_version=4).cells
               if "live-widget" in c.metadata.get("tags", []))
    assert result["widgets"] == live, "every live widget cell made a widget that redraws"
    peak_mb = max(int(kernel_kib), result["runner_kib"]) / 1024
    with capsys.disabled():
        print(f"\n  launch {nb.stem:<14} {result['seconds']:6.1f} s  kernel peak RSS "
              f"{int(kernel_kib) / 1024:6.0f} MB  widgets {result['widgets']} "
              f"(their process: {result['runner_kib'] / 1024:.0f} MB)")
    assert peak_mb <= 2048, f"{nb.name}: peak RSS {peak_mb:.0f} MB, over Binder's 2 GB"
