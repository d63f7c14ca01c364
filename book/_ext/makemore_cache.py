"""Key the book's execution cache on the source of the ``makemore`` package.

jupyter-cache matches a page on its code cells only. A chapter whose cells did not
change would keep the outputs of an older ``makemore`` -- numbers and plots made by
code that no longer exists. This extension points myst-nb at a cache folder named
after :func:`makemore.fingerprint` (a hash of every ``*.py`` of the package)::

    _build/.jupyter_cache/<fingerprint>/

so editing the package gives an empty cache and every page executes again, while an
unchanged package reuses the outputs as before.

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
"""
from __future__ import annotations

import importlib
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.util import logging

logger = logging.getLogger(__name__)


def cache_path(root: str | Path, fingerprint: str) -> Path:
    """The execution cache folder for one package fingerprint."""
    return Path(root) / fingerprint


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


def setup(app: Sphinx) -> dict:
    app.setup_extension("myst_nb")  # registers nb_execution_cache_path
    app.add_config_value("makemore_cache_module", "makemore", "env", [str])
    app.add_config_value("makemore_cache_root", "", "env", [str])
    # priority < 500: before any other config-inited handler that might read the path
    app.connect("config-inited", set_cache_path, priority=400)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
