"""Run a notebook in a kernel forked from a warm process, not started from scratch.

Every page of the book starts with the same imports (torch, matplotlib, the
``makemore`` package) and loads the same names: ~5 s per page on the build
machine, before its first cell does anything, paid again by every page. A
worker of :mod:`parallel_execute` pays it once instead: :func:`preload` imports
those modules (and calls the functions named ``module:function``), and
:func:`execute` then gives each page a kernel that is a ``fork()`` of that warm
process. The page's own imports find their modules loaded; everything else is
as in a fresh kernel: a new process per page, with its own memory and random
seeds, started in the page's folder, driven by nbclient through jupyter-cache as
myst-nb does.

The fork comes first, before anything that ``fork()`` does not copy safely: the
worker itself never runs an event loop or opens a ZeroMQ socket. For each page
it forks a client process; the client forks the kernel and only then starts
nbclient's event loop. Linux only (:func:`available`): on macOS, a fork after
these imports is not safe, and the pages start fresh kernels there.
"""
from __future__ import annotations

import importlib
import os
import pickle
import signal
import sys
import traceback

from jupyter_client.manager import AsyncKernelManager

INLINE = "module://matplotlib_inline.backend_inline"  # what ipykernel sets for its kernels


def available() -> bool:
    return sys.platform == "linux" and hasattr(os, "fork")


def preload(entries: list[str]) -> None:
    """Import each ``module``; for ``module:function``, import it and call
    ``function()``. Raises what an import or call raises, and RuntimeError if the
    process is no longer single-threaded (it could not fork safely)."""
    # matplotlib reads its backend when it is imported: the one a kernel would set
    os.environ.setdefault("MPLBACKEND", INLINE)
    for entry in entries:
        module, _, function = entry.partition(":")
        loaded = importlib.import_module(module)
        if function:
            getattr(loaded, function)()
    # what the client and the kernel import after the fork, loaded once here too
    importlib.import_module("ipykernel.kernelapp")
    importlib.import_module("jupyter_cache.executors.utils")
    threads = len(os.listdir("/proc/self/task"))
    if threads > 1:  # a fork copies one thread: the others' locks would stay held
        raise RuntimeError(f"loading them started {threads - 1} thread(s), which a fork "
                           "does not copy (torch starts an OpenMP thread unless "
                           "OMP_NUM_THREADS=1, the book build's default)")


def _reseed() -> None:
    """Fresh random states, as a new process would have: a fork copies the worker's,
    and every page would draw the same "random" numbers."""
    import random

    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    if "torch" in sys.modules:
        sys.modules["torch"].seed()


class StartedKernelManager(AsyncKernelManager):
    """A kernel that runs already (forked): nbclient only connects its client to it."""

    @property
    def has_kernel(self) -> bool:
        return True


def _kernel(connection_file: str, cwd: str, parent: int) -> None:
    """In the forked kernel process: serve the page's cells until killed."""
    code = 1
    try:
        os.chdir(cwd)
        _reseed()
        from ipykernel.kernelapp import IPKernelApp

        app = IPKernelApp.instance()
        # as jupyter_client starts a kernel: it knows its parent, and exits when it dies
        app.initialize(["-f", connection_file, "--HistoryManager.hist_file=:memory:",
                        f"--IPKernelApp.parent_handle={parent}"])
        app.start()
        code = 0
    except BaseException:  # noqa: BLE001 -- the client sees the kernel never answer
        traceback.print_exc()
    finally:
        os._exit(code)


def _client(notebook, cwd: str, allow_errors: bool, timeout: int | None):
    """In the forked client process: fork the kernel, then run the notebook in it."""
    import secrets

    from jupyter_client.connect import write_connection_file

    # a signing key, as jupyter_client gives every kernel it starts (the default is none)
    connection_file, _ = write_connection_file(ip="127.0.0.1",
                                               key=secrets.token_hex(32).encode())
    kernel = os.fork()
    if kernel == 0:
        _kernel(connection_file, cwd, os.getppid())
    from jupyter_cache.executors.utils import single_nb_execution

    manager = StartedKernelManager(connection_file=connection_file)
    manager.load_connection_file()
    try:
        result = single_nb_execution(notebook, cwd=cwd, timeout=timeout,
                                     allow_errors=allow_errors, meta_override=True,
                                     km=manager)
    finally:
        os.kill(kernel, signal.SIGKILL)
        os.waitpid(kernel, 0)
        os.unlink(connection_file)
    return result.nb, result.time, None if result.err is None else repr(result.err)


def execute(notebook, cwd: str, allow_errors: bool, timeout: int | None):
    """Run ``notebook`` in a kernel forked from this process, in ``cwd``.

    Returns ``(executed notebook or None, seconds, error text or None)``, as
    :func:`parallel_execute._execute` does.
    """
    read, write = os.pipe()
    client = os.fork()
    if client == 0:
        os.close(read)
        code = 0
        try:
            result = _client(notebook, cwd, allow_errors, timeout)
        except BaseException as e:  # noqa: BLE001 -- reported to the worker
            result, code = (None, 0.0, f"{type(e).__name__}: {e}"), 1
        try:
            with os.fdopen(write, "wb") as out:
                pickle.dump(result, out)
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as inp:
        data = inp.read()
    os.waitpid(client, 0)
    if not data:
        return None, 0.0, "the forked client process died without a result"
    return pickle.loads(data)
