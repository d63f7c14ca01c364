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
