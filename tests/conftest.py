"""Shared fixtures. Tests that need the real names.txt use ``splits``/``words``;
they find it in the cache under data/ or through $MAKEMORE_NAMES (see README).
Figures draw off-screen (Agg) and are closed after every test."""
import matplotlib

matplotlib.use("Agg")  # before anything imports pyplot: no display in tests

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(scope="session")
def words():
    from makemore.data import load_words

    return load_words()


@pytest.fixture(scope="session")
def splits():
    from makemore.data import load_splits

    return load_splits()


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(autouse=True)
def _one_thread():
    # the book trains with one thread per process; tests do too (and stay deterministic)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _no_compile_outside_slow_tests(request, monkeypatch):
    # torch.compile costs tens of seconds per architecture: the fast suite trains
    # eagerly (same math); tests marked slow keep the default (compiled)
    if request.node.get_closest_marker("slow") is None:
        monkeypatch.setenv("MAKEMORE_COMPILE", "0")


def _real_cache():
    from makemore.runs import cache

    try:
        return cache.cache_dir()
    except Exception:  # noqa: BLE001 -- a broken MAKEMORE_CACHE is the tests' business
        return None


# The run cache the book reads, as it is before any test points MAKEMORE_CACHE elsewhere.
REAL_CACHE = _real_cache()


def _files(d) -> dict[str, tuple[int, int]]:
    """The run files of ``d`` (not its lock or staging entries): size and mtime."""
    if d is None or not d.is_dir():
        return {}
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns)
            for p in d.iterdir() if not p.name.startswith(".") and p.is_file()}


@pytest.fixture(autouse=True)
def _real_run_cache_untouched(request):
    """No test rewrites or deletes a file of the real run cache, and only a slow test may
    add one (training a missing run for real). A test that let MAKEMORE_CACHE go (a
    monkeypatch.undo()) once filled it with fake runs that the next book build printed."""
    before = _files(REAL_CACHE)
    yield
    after = _files(REAL_CACHE)
    changed = sorted(n for n in before if after.get(n) != before[n])
    added = sorted(set(after) - set(before))
    if request.node.get_closest_marker("slow") is not None:
        added = []
    assert not changed and not added, (
        f"this test changed the real run cache {REAL_CACHE}: rewrote or deleted {changed}, "
        f"added {added}; point MAKEMORE_CACHE at a temporary folder for the whole test")
