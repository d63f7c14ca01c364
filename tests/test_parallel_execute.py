"""book/_ext/parallel_execute.py: a clean build runs its pages on two cores, and a
broken page still fails the build (myst-nb executes it again and reports)."""
from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml
from test_book_cache import PAGE, REPO, build, repo_config, set_fake_value

# each page records when its kernel ran: two pages at once overlap in time
TIMED = ('import time, pathlib\nt0 = time.time()\ntime.sleep(4)\n'
         'pathlib.Path("times-{name}.txt").write_text(f"{{t0}} {{time.time()}}")\n'
         'print("PAGE {name}")')


def write_pages(root: Path, codes: dict[str, str]) -> None:
    cfg = repo_config()
    local = cfg["sphinx"]["local_extensions"]
    assert "parallel_execute" in local, "_config.yml no longer loads parallel_execute"
    book = {
        "title": "parallel test",
        "only_build_toc_files": True,
        "execute": cfg["execute"],
        "sphinx": {"config": {"makemore_cache_module": "fakemore",
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
def test_a_broken_page_still_fails_the_build(tmp_path):
    write_pages(tmp_path, {"a": 'print("fine")', "b": 'raise RuntimeError("a broken page")'})
    result = build(tmp_path)
    assert result.returncode != 0, "a cell error did not fail the build"
    assert "a broken page" in result.stdout + result.stderr


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
