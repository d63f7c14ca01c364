"""The book's execution cache must not serve outputs of an older ``makemore``.

jupyter-cache keys a page on its code cells only; ``book/_ext/makemore_cache.py`` keys
the cache folder on the package fingerprint instead. These tests build a throwaway
one-page book with the repository's own ``_config.yml`` settings (execution mode,
error handling, local extension), a fake package ``fakemore`` standing in for
``makemore``, edit the package, rebuild *incrementally* and look at the HTML.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = Path(sys.executable).with_name("jupyter-book")

FAKE_PACKAGE = '''\
import hashlib
from pathlib import Path

VALUE = {value!r}


def fingerprint():
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
'''

PAGE = """\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A page

```{{code-cell}} ipython3
{code}
```
"""


def repo_config() -> dict:
    return yaml.safe_load((REPO / "_config.yml").read_text())


def write_book(root: Path, code: str, *, use_extension: bool = True) -> None:
    """A one-page book with the repository's execution settings and cache extension."""
    cfg = repo_config()
    sphinx = cfg.get("sphinx") or {}
    # the execution settings only: other keys need extensions this book does not load
    config = {k: v for k, v in (sphinx.get("config") or {}).items() if k.startswith("nb_")}
    book_sphinx = {"config": config}
    if use_extension:
        local = sphinx.get("local_extensions") or {}
        assert "makemore_cache" in local, "_config.yml no longer loads the makemore_cache extension"
        # paths in _config.yml are relative to the repository root
        book_sphinx["local_extensions"] = {n: str((REPO / p).resolve()) for n, p in local.items()}
        config["makemore_cache_module"] = "fakemore"
    book = {
        "title": "cache test",
        "only_build_toc_files": True,
        "execute": cfg["execute"],
        "sphinx": book_sphinx,
    }
    (root / "_config.yml").write_text(yaml.safe_dump(book))
    (root / "_toc.yml").write_text("format: jb-book\nroot: page\n")
    (root / "page.md").write_text(PAGE.format(code=code))


def set_fake_value(root: Path, value: str) -> None:
    pkg = root / "pkg" / "fakemore"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text(FAKE_PACKAGE.format(value=value))


def build(root: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root / "pkg"), env.get("PYTHONPATH")]))
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # an edit within the same second must be seen
    return subprocess.run(
        [str(JUPYTER_BOOK), "build", str(root), *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def page_html(root: Path) -> str:
    return (root / "_build" / "html" / "page.html").read_text()


def built(root: Path, *extra: str) -> str:
    result = build(root, *extra)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return page_html(root)


CODE = 'import fakemore\nprint("VALUE=" + fakemore.VALUE)'


@pytest.mark.slow
def test_package_edit_reexecutes_pages(tmp_path):
    write_book(tmp_path, CODE)
    set_fake_value(tmp_path, "first")
    assert "VALUE=first" in built(tmp_path, "-W", "-n", "--keep-going")

    set_fake_value(tmp_path, "second edit")
    html = built(tmp_path, "-W", "-n", "--keep-going")  # incremental: _build is kept
    assert "VALUE=second edit" in html, "a package edit did not re-execute the page"
    assert "VALUE=first" not in html

    caches = sorted(p.name for p in (tmp_path / "_build" / ".jupyter_cache").iterdir())
    assert len(caches) == 2, caches  # one cache per package fingerprint

    # an unchanged package reuses the cache: no execution on a rebuild
    (tmp_path / "page.md").touch()
    result = build(tmp_path, "-W", "-n", "--keep-going")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Executing notebook" not in result.stdout + result.stderr
    assert "VALUE=second edit" in page_html(tmp_path)


@pytest.mark.slow
def test_without_extension_outputs_go_stale(tmp_path):
    """Control: the failure the extension exists for is real in this environment."""
    write_book(tmp_path, CODE, use_extension=False)
    set_fake_value(tmp_path, "first")
    assert "VALUE=first" in built(tmp_path)
    set_fake_value(tmp_path, "second edit")
    assert "VALUE=first" in built(tmp_path), (
        "jupyter-cache noticed a package edit on its own; book/_ext/makemore_cache.py "
        "may no longer be needed"
    )


@pytest.mark.slow
def test_cell_error_fails_the_build_without_W(tmp_path):
    write_book(tmp_path, 'raise RuntimeError("a broken chapter")')
    set_fake_value(tmp_path, "first")
    result = build(tmp_path)
    assert result.returncode != 0, "a cell error did not fail the build"
    assert "a broken chapter" in result.stdout + result.stderr


def test_cache_path_is_keyed_on_makemore_fingerprint(tmp_path):
    """Fast check of the extension's handler with the real package."""
    sys.path.insert(0, str(REPO / "book" / "_ext"))
    try:
        import makemore_cache
    finally:
        sys.path.remove(str(REPO / "book" / "_ext"))
    import makemore

    class App:
        outdir = str(tmp_path / "_build" / "html")
        confdir = str(tmp_path)

    class Config:
        makemore_cache_module = "makemore"
        makemore_cache_root = ""
        nb_execution_cache_path = ""

    makemore_cache.set_cache_path(App, Config)
    expected = tmp_path / "_build" / ".jupyter_cache" / makemore.fingerprint()
    assert Path(Config.nb_execution_cache_path) == expected.resolve()
