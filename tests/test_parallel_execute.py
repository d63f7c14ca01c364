"""book/_ext/parallel_execute.py: a clean build runs its pages on two cores (jupyter-cache's
local-parallel executor), and a broken page still fails the build: myst-nb executes it
again and reports it."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from test_book_cache import PAGE, REPO, build, repo_config, set_fake_value

# each page records when its kernel ran: two pages at once overlap in time
TIMED = ('import time, pathlib\nt0 = time.time()\ntime.sleep(4)\n'
         'pathlib.Path("times-{name}.txt").write_text(f"{{t0}} {{time.time()}}")\n'
         'print("PAGE {name}")')


def write_pages(root: Path, codes: dict[str, str]) -> None:
    """A book of one page per entry of ``codes``, with the repository's execution
    settings and local extensions."""
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
    assert "[parallel_execute] executing 3 pages" in log
    assert "Executing notebook" not in log  # myst-nb found every page in the cache
    spans = sorted(tuple(map(float, (tmp_path / f"times-{n}.txt").read_text().split()))
                   for n in "abc")
    assert spans[1][0] < spans[0][1], f"no two pages overlapped: {spans}"
    for n in "abc":
        assert f"PAGE {n}" in (tmp_path / "_build" / "html" / f"{n}.html").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("strict", [[], ["-W", "-n", "--keep-going"]], ids=["plain", "-W"])
def test_a_broken_page_fails_the_build_and_myst_nb_reports_it(tmp_path, strict):
    """The pre-execution caches only the page that ran; myst-nb runs the broken one
    again itself, prints its traceback and fails the build, with or without -W
    (nb_execution_raise_on_error)."""
    write_pages(tmp_path, {"a": 'print("fine")', "b": 'raise RuntimeError("a broken page")'})
    result = build(tmp_path, *strict)
    log = result.stdout + result.stderr
    assert result.returncode != 0, "a cell error did not fail the build"
    assert "[parallel_execute] a: " in log and " s\n" in log.split("[parallel_execute] a: ")[1]
    assert "[parallel_execute] b: failed; myst-nb will execute it again and report" in log
    assert "b.md: Executing notebook" in log  # myst-nb ran it again ...
    assert "a.md: Executing notebook" not in log  # ... and only it
    # and reported it with its traceback
    assert "b.md: WARNING: Executing notebook failed: CellExecutionError" in log
    assert "a broken page" in log.split("Executing notebook failed")[1]
