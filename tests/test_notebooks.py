"""The chapters' notebooks (what the Binder and Colab buttons open) and the Binder
environment.

Fast: every notebook page has a committed ``book/<page>.ipynb`` that is exactly what
``tools/notebooks.py`` makes of the ``.md`` now; its first cell installs the package
where it is missing and does nothing where it is present; binder/ is consistent with
the Makefile.

Slow: a fresh virtual environment made from ``binder/requirements.txt`` (the local
torch wheel standing in for the CPU index) runs binder/postBuild and then executes
every notebook against the shared run cache, and moves every control of every live
widget in it.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import nbformat
import pytest

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
    """Independently of the byte comparison: same code, same order, after the setup cell."""
    import jupytext

    for md in notebooks.pages():
        nb_path = notebooks.notebook_path(md)
        if not nb_path.exists():
            continue  # reported by the test above
        nb = nbformat.read(nb_path, as_version=4)
        page = jupytext.read(md, fmt="md:myst")
        assert nb.cells[0].source == notebooks.SETUP
        assert notebooks.SETUP_TAG in nb.cells[0].metadata["tags"]
        got = [(c.cell_type, c.source) for c in nb.cells[1:]]
        want = [(c.cell_type, c.source) for c in page.cells]
        assert got == want, f"{nb_path.name} differs from {md.name}"
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
        nbformat.validate(nb)


def test_generation_is_deterministic():
    md = notebooks.pages()[0]
    assert notebooks.render(md) == notebooks.render(md)


def run_setup(monkeypatch, installed: set[str]):
    """Execute the setup cell with only ``installed`` importable; return the pip calls."""
    import importlib.util

    calls = []
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: real(name, *a) if name in installed else None)
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append((cmd, kw)))
    monkeypatch.delenv("MAKEMORE_DATA_DIR", raising=False)
    exec(notebooks.SETUP, {})
    return calls


def test_setup_cell_does_nothing_where_makemore_is_installed(monkeypatch):
    assert run_setup(monkeypatch, {"makemore", "torch"}) == []
    assert "MAKEMORE_DATA_DIR" not in os.environ


def test_setup_cell_installs_the_package_on_colab(monkeypatch):
    # Colab: torch is there, makemore is not
    calls = run_setup(monkeypatch, {"torch"})
    assert len(calls) == 1
    cmd, kw = calls[0]
    assert cmd[:4] == [sys.executable, "-m", "pip", "install"] and kw["check"]
    assert "makemore-book @ git+https://github.com/makemore-book/makemore-part3@main" in cmd
    assert "myst-nb" in cmd
    assert os.environ["MAKEMORE_DATA_DIR"].endswith("makemore-data")


def test_setup_cell_installs_cpu_torch_where_there_is_none(monkeypatch):
    calls = run_setup(monkeypatch, set())
    assert len(calls) == 2
    torch_cmd = calls[0][0]
    assert "torch" in torch_cmd
    assert torch_cmd[torch_cmd.index("--index-url") + 1] == "https://download.pytorch.org/whl/cpu"


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


def test_binder_runtime_and_postbuild():
    runtime = (BINDER / "runtime.txt").read_text().strip()
    assert re.fullmatch(r"python-3\.\d+", runtime)
    minor = int(runtime.split(".")[1])
    assert minor >= 10  # pyproject: requires-python >= 3.10
    post = BINDER / "postBuild"
    assert os.access(post, os.X_OK), "binder/postBuild must be executable"
    text = post.read_text()
    assert text.startswith("#!/bin/bash") and "set -euo pipefail" in text
    assert "python -m makemore fetch" in text
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
        "import sys, makemore; print(sys.executable); print(makemore.__file__)"))
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
    print(json.dumps({"seconds": seconds, "widgets": checked,
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
    subprocess.run(["bash", str(BINDER / "postBuild")], check=True, env=env, cwd=REPO)
    # the kernel "python3" is this venv's python, whatever else is installed
    spec = root / "jupyter-path" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(venv / "bin" / "python"), "-m", "ipykernel_launcher", "-f",
                 "{connection_file}"], "display_name": "Python 3 (binder)", "language": "python"}))
    from makemore.runs import cache_dir

    env.update(MAKEMORE_NO_TRAIN="1", MAKEMORE_CACHE=str(cache_dir()))
    print(f"binder venv ready in {time.perf_counter() - t0:.0f} s")
    return types.SimpleNamespace(venv=venv, env=env, root=root)


@pytest.mark.slow
def test_postbuild_makes_md_open_as_notebooks(binder_env):
    settings = list((binder_env.root / "jupyter-config").rglob("*.json"))
    text = "".join(p.read_text() for p in settings)
    assert "jupytext" in text.lower() and "markdown" in text.lower(), settings


@pytest.mark.slow
@pytest.mark.parametrize("md", notebooks.pages(), ids=lambda p: p.stem)
def test_notebook_runs_in_the_binder_environment(binder_env, md):
    nb = notebooks.notebook_path(md)
    assert nb.exists(), "run `make notebooks`"
    proc = subprocess.run([str(binder_env.venv / "bin" / "python"), "-c", RUNNER, str(nb),
                           str(REPO / "book")], env=binder_env.env, cwd=REPO / "book",
                          capture_output=True,
                          text=True, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    python, package = result["last"].split()
    assert python.startswith(str(binder_env.venv)), "ran in the Binder venv's kernel"
    assert Path(package).is_relative_to(REPO / "code"), "the package from this repository"
    live = sum(1 for c in nbformat.read(nb, as_version=4).cells
               if "live-widget" in c.metadata.get("tags", []))
    assert result["widgets"] == live, "every live widget cell made a widget that redraws"
    print(f"{nb.name}: {result['seconds']:.0f} s, {result['widgets']} widgets")
