"""Execute the pages that need it on every core before Sphinx reads them.

With ``execute_notebooks: cache`` myst-nb runs a page's notebook while Sphinx
*reads* that page, one page after the other: a clean build keeps one core busy
and leaves the other idle. This extension runs first (``env-before-read-docs``):
it adds the notebook pages whose code cells are not in the jupyter-cache yet to
the cache's project and has jupyter-cache's own parallel executor
(``local-parallel``, what ``jcache project execute --executor local-parallel``
runs: one process per CPU) execute them with myst-nb's timeout and
``allow_errors``, and cache them. myst-nb then reads every page from the cache,
as on a warm build.

Nothing else changes: a page whose pre-execution fails is not cached, so myst-nb
executes it again itself and reports the error as usual (``-W`` fails the build).
The pages are independent (each runs in its own fresh kernel; the run cache they
read is written atomically), which is what makes running two at once safe.
"""
from __future__ import annotations

import logging as stdlib_logging
import os
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)


def pre_execute(app: Sphinx, env, docnames: list[str]) -> None:
    nb_config = getattr(env, "mystnb_config", None)
    if nb_config is None or nb_config.execution_mode != "cache" or (os.cpu_count() or 1) < 2:
        return
    from jupyter_cache import get_cache
    from jupyter_cache.executors import load_executor
    from myst_nb.core.read import create_nb_reader

    cache = get_cache(nb_config.execution_cache_path or ".jupyter_cache")
    todo = []  # (path, read format) of the notebook pages not in the cache
    for docname in docnames:
        path = Path(env.doc2path(docname))
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf8")
        reader = create_nb_reader(str(path), env.myst_config, nb_config, text)
        if reader is None:  # not a notebook page
            continue
        notebook = reader.read(text)
        if not any(c.cell_type == "code" for c in notebook.cells):
            continue
        try:
            cache.match_cache_notebook(notebook)
            continue  # cached: myst-nb merges its outputs
        except KeyError:
            todo.append((path, reader.read_fmt))
    if len(todo) < 2:
        return  # nothing to share between processes: myst-nb does it as usual
    # The executor runs the project's records in the order they were added (a clean
    # build's cache is new): the largest pages first, so that no long page starts last.
    todo.sort(key=lambda t: t[0].stat().st_size, reverse=True)
    uris = [cache.add_nb_to_project(str(path), **({"read_data": fmt} if fmt else {})).uri
            for path, fmt in todo]
    logger.info(f"[parallel_execute] executing {len(uris)} pages in {os.cpu_count()} "
                f"processes (jupyter-cache's local-parallel executor)")
    # INFO: the workers print each page's start and end on stderr ([REPORT/ForkPoolWorker-n])
    report = stdlib_logging.getLogger("parallel_execute.jupyter_cache")
    report.setLevel(stdlib_logging.INFO)
    executor = load_executor("temp-parallel" if nb_config.execution_in_temp
                             else "local-parallel", cache, logger=report)
    result = executor.run_and_cache(filter_uris=uris, timeout=nb_config.execution_timeout,
                                    allow_errors=nb_config.execution_allow_errors)
    for uri in uris:
        name = env.path2doc(uri) or uri
        if uri in result.succeeded:
            seconds = cache.get_cached_project_nb(uri).data.get("execution_seconds", 0.0)
            logger.info(f"[parallel_execute] {name}: {seconds:.1f} s")
        else:
            logger.info(f"[parallel_execute] {name}: failed; myst-nb will execute it "
                        f"again and report")


def setup(app: Sphinx) -> dict:
    app.setup_extension("myst_nb")
    app.connect("env-before-read-docs", pre_execute)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
