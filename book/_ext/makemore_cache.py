"""Key the book's execution cache on the source of the ``makemore`` package.

jupyter-cache matches a page on its code cells only. A chapter whose cells did not
change would keep the outputs of an older ``makemore`` -- numbers and plots made by
code that no longer exists. This extension points myst-nb at a cache folder named
after :func:`makemore.fingerprint` (a hash of every ``*.py`` of the package)::

    _build/.jupyter_cache/<fingerprint>/

so editing the package gives an empty cache and every page executes again, while an
unchanged package reuses the outputs as before. The folders of older fingerprints are
pruned at the start of a build: the current one and the ``makemore_cache_keep`` most
recently used others stay (switching back to a recent branch still finds its pages),
the rest are deleted, so they do not pile up in ``_build`` forever.

Upstream: myst-nb has no way to say that a page depends on files outside its code
cells, executablebooks/MyST-NB#299 ("Functionality to invalidate notebooks if
file/folder changes", open since 2021). This extension can go when myst-nb (or
jupyter-cache) can invalidate cached pages on the change of a folder such as
``code/makemore``; ``tests/test_book_cache.py::test_without_extension_outputs_go_stale``
fails on the day a plain build notices a package edit by itself.

Why ``config-inited``: myst-nb copies ``nb_execution_cache_path`` into its own
configuration at ``builder-inited`` (``myst_nb.sphinx_ext.create_mystnb_config``),
which comes after ``config-inited``. Sphinx also compares the configuration with the
one pickled in the environment after ``config-inited``; ``nb_execution_cache_path`` is
an ``"env"`` value, so a new fingerprint makes Sphinx re-read every page even when no
page source changed (an incremental ``jupyter-book build`` would otherwise skip them).

Config values (``sphinx: config:`` in ``_config.yml``):

``makemore_cache_module``
    The module whose ``fingerprint()`` keys the cache (default ``"makemore"``; the
    tests point it at a throwaway module).
``makemore_cache_root``
    The parent folder of the per-fingerprint caches. Empty (default): the folder
    myst-nb would use, ``<build dir>/.jupyter_cache``, e.g. ``_build/.jupyter_cache``.
``makemore_cache_keep``
    How many caches of other fingerprints to keep, most recently used first
    (default 3; 0 keeps only the current one).
"""
from __future__ import annotations

import importlib
import re
import shutil
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.util import logging

logger = logging.getLogger(__name__)


def cache_path(root: str | Path, fingerprint: str) -> Path:
    """The execution cache folder for one package fingerprint."""
    return Path(root) / fingerprint


# a folder this extension made: a fingerprint, lower-case hex (16 digits from makemore)
FINGERPRINT = re.compile(r"[0-9a-f]{8,64}")


def last_used(folder: Path) -> float:
    """When a cache folder was last written: the newest mtime of the folder and the
    files directly in it (jupyter-cache updates its ``global.db`` on every build)."""
    return max([folder.stat().st_mtime] + [p.stat().st_mtime for p in folder.iterdir()])


def prune(root: str | Path, current: str, keep: int = 3) -> list[Path]:
    """Delete the caches of old fingerprints under ``root``; return what was deleted.

    Kept: the folder ``current`` and the ``keep`` most recently used other fingerprint
    folders. Only folders named like a fingerprint are considered: anything else
    under ``root`` is left alone.
    """
    if keep < 0:
        raise ValueError(f"makemore_cache_keep must be 0 or more, got {keep}")
    root = Path(root)
    if not root.is_dir():
        return []
    old = [p for p in root.iterdir()
           if p.is_dir() and p.name != current and FINGERPRINT.fullmatch(p.name)]
    old.sort(key=last_used, reverse=True)
    for p in old[keep:]:
        shutil.rmtree(p)
    return old[keep:]


def set_cache_path(app: Sphinx, config: Config) -> None:
    module = importlib.import_module(config.makemore_cache_module)
    fingerprint = module.fingerprint()
    root = config.makemore_cache_root or Path(app.outdir).parent / ".jupyter_cache"
    root = Path(app.confdir, root).resolve()  # a relative root is relative to the book
    path = cache_path(root, fingerprint)
    config.nb_execution_cache_path = str(path)
    logger.info(
        "[makemore_cache] %s.fingerprint() = %s; execution cache: %s",
        config.makemore_cache_module,
        fingerprint,
        path,
    )
    removed = prune(root, fingerprint, config.makemore_cache_keep)
    if removed:
        logger.info("[makemore_cache] pruned %d old execution cache(s): %s",
                    len(removed), ", ".join(p.name for p in removed))


def setup(app: Sphinx) -> dict:
    app.setup_extension("myst_nb")  # registers nb_execution_cache_path
    app.add_config_value("makemore_cache_module", "makemore", "env", [str])
    app.add_config_value("makemore_cache_root", "", "env", [str])
    # "": changing how many old caches are kept needs no re-read of any page
    app.add_config_value("makemore_cache_keep", 3, "", [int])
    # priority < 500: before any other config-inited handler that might read the path
    app.connect("config-inited", set_cache_path, priority=400)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
