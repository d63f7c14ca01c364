"""Execute the pages that need it on several cores before Sphinx reads them.

With ``execute_notebooks: cache`` myst-nb runs a page's notebook while Sphinx
*reads* that page, one page after the other: a clean build keeps one core busy
and leaves the other idle. This extension runs first (``env-before-read-docs``):
it finds the pages whose code cells are not in the jupyter-cache yet, executes
them in ``MAKEMORE_BOOK_JOBS`` processes (default: 2, or the number of CPUs if
fewer) with the settings myst-nb would use, and stores the executed notebooks in
the cache. myst-nb then reads every page from the cache, as on a warm build.

Nothing else changes: a page whose pre-execution fails is not cached, so myst-nb
executes it again itself and reports the error as usual (``-W`` fails the build).
The pages are independent (each runs in its own kernel; the run cache they read
is written atomically), which is what makes running two at once safe.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

JOBS_ENV = "MAKEMORE_BOOK_JOBS"


def jobs() -> int:
    """``$MAKEMORE_BOOK_JOBS``, else min(2, CPUs)."""
    value = os.environ.get(JOBS_ENV, "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise ValueError(f"{JOBS_ENV}={value!r}: give a whole number of processes, e.g. 2"
                             ) from None
    return max(1, min(2, os.cpu_count() or 1))


def _execute(notebook, cwd: str | None, allow_errors: bool, timeout: int | None):
    """In a worker process: run one notebook as myst-nb does (cache mode); ``cwd=None``:
    in a temporary folder (``run_in_temp: true``)."""
    import tempfile
    from contextlib import nullcontext

    with tempfile.TemporaryDirectory() if cwd is None else nullcontext(cwd) as where:
        from jupyter_cache.executors.utils import single_nb_execution

        result = single_nb_execution(notebook, cwd=os.path.abspath(where),
                                     allow_errors=allow_errors, timeout=timeout,
                                     meta_override=True)
    return notebook, result.time, None if result.err is None else repr(result.err)


def pre_execute(app: Sphinx, env, docnames: list[str]) -> None:
    nb_config = getattr(env, "mystnb_config", None)
    n_jobs = jobs()
    if nb_config is None or nb_config.execution_mode != "cache" or n_jobs < 2:
        return
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn
    from myst_nb.core.read import create_nb_reader

    cache = get_cache(nb_config.execution_cache_path or ".jupyter_cache")
    todo = []  # (docname, path, notebook, read format) of the pages not in the cache
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
            pass
        todo.append((docname, path, notebook, reader.read_fmt))
    if len(todo) < 2:
        return  # nothing to share between processes: myst-nb does it as usual
    # the largest pages first, so that no long page starts last
    todo.sort(key=lambda t: t[1].stat().st_size, reverse=True)
    logger.info(f"[parallel_execute] executing {len(todo)} pages in {n_jobs} processes")
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(n_jobs, mp_context=spawn) as pool:
        futures = {
            pool.submit(_execute, nb, str(path.parent) if not nb_config.execution_in_temp
                        else None, nb_config.execution_allow_errors, nb_config.execution_timeout):
            (docname, path, read_fmt)
            for docname, path, nb, read_fmt in todo
        }
        for future in as_completed(futures):
            docname, path, read_fmt = futures[future]
            try:
                executed, seconds, error = future.result()
            except Exception as e:  # noqa: BLE001 -- myst-nb runs the page again
                executed, seconds, error = None, 0.0, repr(e)
            if error is not None:
                logger.info(f"[parallel_execute] {docname}: failed ({error[:200]}); "
                            f"myst-nb will execute it again and report")
                continue
            if read_fmt is not None:
                record = cache.add_nb_to_project(str(path), read_data=read_fmt)
            else:
                record = cache.add_nb_to_project(str(path))
            cache.cache_notebook_bundle(
                CacheBundleIn(executed, record.uri, data={"execution_seconds": seconds}),
                check_validity=False, overwrite=True)
            logger.info(f"[parallel_execute] {docname}: {seconds:.1f} s")


def setup(app: Sphinx) -> dict:
    app.setup_extension("myst_nb")
    app.connect("env-before-read-docs", pre_execute)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
