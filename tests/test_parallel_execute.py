"""book/_ext/parallel_execute.py: a clean build runs its pages on two cores, and a
broken page still fails the build (myst-nb executes it again and reports). With
``parallel_execute_preload``, each page's kernel is forked from a worker that loaded
those modules once (book/_ext/forked_kernels.py): same outputs as a fresh kernel."""
from __future__ import annotations

import copy
import importlib
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
import yaml
from test_book_cache import PAGE, REPO, build, repo_config, set_fake_value

# each page records when its kernel ran: two pages at once overlap in time
TIMED = ('import time, pathlib\nt0 = time.time()\ntime.sleep(4)\n'
         'pathlib.Path("times-{name}.txt").write_text(f"{{t0}} {{time.time()}}")\n'
         'print("PAGE {name}")')


# imported by a worker before it forks the kernels: a page sees it loaded already
PROBE = """\
import os

PID = os.getpid()  # the process that imported it
CALLS = []


def called():
    CALLS.append(os.getpid())
"""
# a page that says whether its kernel was forked from a process that loaded PROBE
FORKED = ('import os, preload_probe\n'
          'print("FORKED", preload_probe.PID != os.getpid(),\n'
          '      preload_probe.CALLS == [preload_probe.PID])')


def write_pages(root: Path, codes: dict[str, str], preload: list[str] | None = None) -> None:
    cfg = repo_config()
    local = cfg["sphinx"]["local_extensions"]
    assert "parallel_execute" in local, "_config.yml no longer loads parallel_execute"
    assert cfg["sphinx"]["config"].get("parallel_execute_preload"), \
        "_config.yml no longer preloads the pages' imports"
    book = {
        "title": "parallel test",
        "only_build_toc_files": True,
        "execute": cfg["execute"],
        "sphinx": {"config": {"makemore_cache_module": "fakemore",
                              "parallel_execute_preload": preload or [],
                              **{k: v for k, v in cfg["sphinx"]["config"].items()
                                 if k.startswith("nb_")}},
                   "local_extensions": {n: str((REPO / p).resolve()) for n, p in local.items()}},
    }
    (root / "_config.yml").write_text(yaml.safe_dump(book))
    names = list(codes)
    toc = {"format": "jb-book", "root": names[0],
           "chapters": [{"file": n} for n in names[1:]]}
    (root / "_toc.yml").write_text(yaml.safe_dump(toc))
    for name, code in codes.items():
        (root / f"{name}.md").write_text(PAGE.format(code=code).replace("# A page", f"# {name}"))
    set_fake_value(root, "v")
    (root / "pkg" / "preload_probe.py").write_text(PROBE)


@pytest.mark.slow
def test_pages_run_at_once_and_come_from_the_cache(tmp_path):
    write_pages(tmp_path, {n: TIMED.format(name=n) for n in ("a", "b", "c")})
    result = build(tmp_path, "-W", "-n", "--keep-going")
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert "[parallel_execute] executing 3 pages in 2 processes" in log
    assert "Executing notebook" not in log  # myst-nb found every page in the cache
    spans = sorted(tuple(map(float, (tmp_path / f"times-{n}.txt").read_text().split()))
                   for n in "abc")
    assert spans[1][0] < spans[0][1], f"no two pages overlapped: {spans}"
    for n in "abc":
        assert f"PAGE {n}" in (tmp_path / "_build" / "html" / f"{n}.html").read_text()


@pytest.mark.slow
def test_forked_kernels_in_a_build(tmp_path):
    write_pages(tmp_path, {n: FORKED for n in ("a", "b", "c")},
                preload=["preload_probe", "preload_probe:called"])
    result = build(tmp_path, "-W", "-n", "--keep-going")
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert "kernels forked from workers that loaded preload_probe" in log
    assert "Executing notebook" not in log
    for n in "abc":
        assert "FORKED True True" in (tmp_path / "_build" / "html" / f"{n}.html").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("preload", [[], ["preload_probe"]], ids=["fresh", "forked"])
def test_a_broken_page_still_fails_the_build(tmp_path, preload):
    write_pages(tmp_path, {"a": 'print("fine")', "b": 'raise RuntimeError("a broken page")'},
                preload=preload)
    result = build(tmp_path)
    assert result.returncode != 0, "a cell error did not fail the build"
    assert "a broken page" in result.stdout + result.stderr


# what a page does: prints, a random draw, a figure, Markdown, stderr; and the probe
CELLS = [
    "import torch\nprint(torch.rand(3))  # unseeded: a fresh process's random state",
    "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()",
    "from IPython.display import Markdown\nMarkdown('**bold**')",
    "import sys\nprint('to stderr', file=sys.stderr)\n1 + 1",
    FORKED,
]


def _run_pages(preload: list[str], notebook, cwd: str) -> list:
    """The notebook, run twice by a parallel_execute worker that preloaded ``preload``."""
    spawn = multiprocessing.get_context("spawn")
    parallel_execute = importlib.import_module("parallel_execute")
    out = []
    with ProcessPoolExecutor(1, mp_context=spawn, initializer=parallel_execute._preload,
                             initargs=(preload,)) as pool:
        for _ in range(2):
            executed, _, error = pool.submit(parallel_execute._execute, copy.deepcopy(notebook),
                                             cwd, False, 60).result()
            assert error is None, error
            out.append(executed)
    return out


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="kernels are forked on Linux only")
def test_a_forked_kernel_gives_a_fresh_kernels_outputs(tmp_path, monkeypatch):
    import nbformat

    (tmp_path / "preload_probe.py").write_text(PROBE)
    monkeypatch.syspath_prepend(str(tmp_path))  # the spawned workers get this sys.path
    monkeypatch.syspath_prepend(str(REPO / "book" / "_ext"))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # and a fresh kernel this one
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # else torch starts a thread: no fork
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    notebook.metadata.kernelspec = {"name": "python3", "display_name": "Python 3",
                                    "language": "python"}
    fresh, fresh2 = _run_pages([], notebook, str(tmp_path))
    forked, forked2 = _run_pages(["torch", "matplotlib.pyplot", "preload_probe",
                                  "preload_probe:called"], notebook, str(tmp_path))
    for a, b in zip(fresh.cells[1:-1], forked.cells[1:-1], strict=True):
        assert a.outputs == b.outputs and a.execution_count == b.execution_count, a.source
    assert any(o.get("data", {}).get("image/png") for o in forked.cells[1].outputs)
    # unseeded draws differ from page to page, forked or not: no shared random state
    assert fresh.cells[0].outputs != fresh2.cells[0].outputs
    assert forked.cells[0].outputs != forked2.cells[0].outputs
    assert fresh.cells[-1].outputs[0].text == "FORKED False False\n"
    assert forked.cells[-1].outputs[0].text == "FORKED True True\n"


def test_jobs_from_the_environment(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "book" / "_ext"))
    parallel_execute = importlib.import_module("parallel_execute")
    monkeypatch.setenv("MAKEMORE_BOOK_JOBS", "3")
    assert parallel_execute.jobs() == 3
    monkeypatch.setenv("MAKEMORE_BOOK_JOBS", "two")
    with pytest.raises(ValueError, match="whole number"):
        parallel_execute.jobs()
    monkeypatch.delenv("MAKEMORE_BOOK_JOBS")
    assert 1 <= parallel_execute.jobs() <= 2


def test_a_failed_preload_falls_back_to_fresh_kernels(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(REPO / "book" / "_ext"))
    parallel_execute = importlib.import_module("parallel_execute")
    monkeypatch.setattr(parallel_execute, "_warm", False)
    parallel_execute._preload(["no_such_module_for_the_book"])
    assert parallel_execute._warm is False
    assert "preload failed (ModuleNotFoundError" in capsys.readouterr().err
    parallel_execute._preload([])  # nothing to load: fresh kernels, no message
    assert parallel_execute._warm is False and not capsys.readouterr().err


def test_workers_run_one_thread_unless_told_otherwise(monkeypatch):
    """A worker that found no OMP_NUM_THREADS (a plain `jupyter-book build .`) sets 1,
    so that torch loads single-threaded and the pages' kernels can be forked."""
    monkeypatch.syspath_prepend(str(REPO / "book" / "_ext"))
    parallel_execute = importlib.import_module("parallel_execute")
    monkeypatch.setattr(parallel_execute, "_warm", False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    parallel_execute._preload([])
    assert os.environ["OMP_NUM_THREADS"] == "1"
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    parallel_execute._preload([])
    assert os.environ["OMP_NUM_THREADS"] == "3"
