"""The book's execution cache must not serve outputs of an older ``makemore``.

jupyter-cache keys a page on its code cells only; ``book/_ext/makemore_cache.py`` keys
the cache folder on the package fingerprint instead. These tests build a throwaway
one-page book with the repository's own ``_config.yml`` settings (execution mode,
error handling, local extension), a fake package ``fakemore`` standing in for
``makemore``, edit the package, rebuild *incrementally* and look at the HTML.

Fast tests call the extensions' handlers directly: the cache path, the pruning of old
fingerprints' caches, and ``book/_ext/dedupe_scripts.py`` (with a reminder to delete it
once the book builds with a Sphinx that has the upstream fix).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import types
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


def load_extension(name: str):
    """A module of book/_ext, imported the way Sphinx finds local extensions."""
    sys.path.insert(0, str(REPO / "book" / "_ext"))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(REPO / "book" / "_ext"))


def make_cache(root: Path, name: str, age_hours: float) -> Path:
    """A fake execution-cache folder last used ``age_hours`` ago."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "global.db").write_bytes(b"")
    t = time.time() - 3600 * age_hours
    for p in (folder / "global.db", folder):
        os.utime(p, (t, t))
    return folder


def fake_sphinx(tmp_path: Path, keep: int = 3):
    """The two objects ``set_cache_path(app, config)`` reads, for a book in ``tmp_path``."""
    app = types.SimpleNamespace(outdir=str(tmp_path / "_build" / "html"), confdir=str(tmp_path))
    config = types.SimpleNamespace(makemore_cache_module="makemore", makemore_cache_root="",
                                   makemore_cache_keep=keep, nb_execution_cache_path="")
    return app, config


def test_cache_path_is_keyed_on_makemore_fingerprint(tmp_path):
    """Fast check of the extension's handler with the real package."""
    makemore_cache = load_extension("makemore_cache")
    import makemore

    app, config = fake_sphinx(tmp_path)
    makemore_cache.set_cache_path(app, config)
    expected = tmp_path / "_build" / ".jupyter_cache" / makemore.fingerprint()
    assert Path(config.nb_execution_cache_path) == expected.resolve()


def test_old_fingerprint_caches_are_pruned(tmp_path):
    """The current fingerprint's cache and the 3 most recently used others stay; older
    ones go; anything not named like a fingerprint is left alone."""
    makemore_cache = load_extension("makemore_cache")
    import makemore

    root = tmp_path / "_build" / ".jupyter_cache"
    current = makemore.fingerprint()
    make_cache(root, current, age_hours=100)  # oldest of all, but in use: kept
    names = [f"{i:016x}" for i in range(6)]
    for age, name in enumerate(names):  # names[0] newest
        make_cache(root, name, age_hours=age + 1)
    (root / "notes").mkdir()
    (root / "deadbeefdeadbeef").write_text("a file, not a cache")

    makemore_cache.set_cache_path(*fake_sphinx(tmp_path, keep=3))
    left = sorted(p.name for p in root.iterdir())
    assert left == sorted([current, *names[:3], "notes", "deadbeefdeadbeef"])

    # a cache used again (jupyter-cache wrote its global.db) moves to the front
    os.utime(root / names[2] / "global.db")
    removed = makemore_cache.prune(root, current, keep=1)
    assert sorted(p.name for p in removed) == names[:2]
    assert sorted(p.name for p in root.iterdir()) == sorted(
        [current, names[2], "notes", "deadbeefdeadbeef"])
    assert makemore_cache.prune(tmp_path / "nowhere", current) == []
    with pytest.raises(ValueError, match="0 or more"):
        makemore_cache.prune(root, current, keep=-1)


def test_dedupe_scripts_writes_each_inline_script_once():
    from sphinx.builders.html._assets import _JavaScript

    dedupe_scripts = load_extension("dedupe_scripts")
    thebe = "const THEBE_JS_URL = 'x';"
    scripts = ["_static/a.js", _JavaScript(None, body=thebe), _JavaScript("_static/b.js"),
               _JavaScript("", body=thebe), "_static/a.js", _JavaScript(None, body="other")]
    context = {"script_files": list(scripts)}
    dedupe_scripts.dedupe(None, "page", "page.html", context, None)
    assert context["script_files"] == [scripts[0], scripts[1], scripts[2], scripts[5]]


def test_dedupe_scripts_is_still_needed():
    """Sphinx before 8.2.2 writes sphinx-thebe's THEBE_JS_URL script twice; 8.2.2 fixed
    it (sphinx-doc/sphinx#13402). On a newer Sphinx this fails: delete the extension."""
    import sphinx

    assert sphinx.version_info[:3] < (8, 2, 2), (
        f"Sphinx {sphinx.__version__} writes inline scripts once (sphinx-doc/sphinx#13402): "
        "delete book/_ext/dedupe_scripts.py and its line in _config.yml")
