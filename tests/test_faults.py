"""Fault injection (issue 28): the run two, ``pretrain``, ``fetch-runs``, ``pack-runs``,
``list`` and ``reproduce --json`` under every fault an adversarial user or operator tried.

The rules each test holds a command to: a failure is one or two sentences on stderr that
name the file or URL, the cause and what to do; exit status 2 for bad input, 1 for a
fault; no traceback (unless ``MAKEMORE_DEBUG=1``); the cache is as it was, or complete;
no process outlives its parent. Nothing here trains a real run: the runs are untrained
models in run files (:func:`test_bundle.fake_blob`), and the trainer is replaced where a
command would train. Mount points, full disks and read-only file systems are real: a
forked child enters its own user and mount namespace and mounts a small tmpfs (skipped
where the kernel does not allow it). Servers listen on 127.0.0.1 in a thread.
"""
from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import gzip
import io
import json
import os
import pickle
import re
import signal
import tarfile
import tempfile
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from makemore import __main__ as cli
from makemore import env
from makemore.runs import bundle
from makemore.runs import cache as run_cache
from makemore.runs import pretrain as pt
from makemore.runs.bundle import ARCHIVE, MANIFEST
from test_bundle import fake_blob, fill, pack_then_empty, rewrite, snapshot, two_run_cache

NAMES = ("original", "kaiming")


# ---------------------------------------------------------------------------
# helpers: the command line, the rules, a two, a bundle, a hostile server


def run_cli(args: list[str], capfd=None) -> tuple[int, str]:
    """``python -m makemore ARGS`` in this process: (exit status, stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = cli.main(args)
    return status, err.getvalue()


def one_failure(err: str, *names: str) -> str:
    """``err`` is one failure said the way the rules say: the last line, ``error: ...``,
    one or two sentences that name each of ``names``; no traceback anywhere."""
    assert "Traceback" not in err, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: "), err
    sentences = re.findall(r"[.!?](?=\s+[A-Z`(]|\s*$)", line)
    assert 1 <= len(sentences) <= 2, f"{len(sentences)} sentences: {line}"
    for name in names:
        assert str(name) in line, f"{name} not named in: {line}"
    return line


@pytest.fixture(autouse=True)
def _no_switches(monkeypatch):
    """The commands as a user without MAKEMORE_NO_TRAIN or MAKEMORE_DEBUG runs them."""
    monkeypatch.delenv(run_cache.NO_TRAIN_ENV, raising=False)
    monkeypatch.delenv(env.DEBUG, raising=False)


@pytest.fixture
def two(tmp_path, monkeypatch) -> Path:
    """An empty run cache in tmp_path; the book's runs cut down to two."""
    return two_run_cache(tmp_path, monkeypatch)


@pytest.fixture
def packed(two, tmp_path) -> Path:
    """A bundle of the two runs in tmp_path/bundle; the cache emptied again."""
    return pack_then_empty(two, tmp_path / "bundle")


def manifest(packed: Path) -> dict:
    return json.loads((packed / MANIFEST).read_text())


class Server:
    """An HTTP server on 127.0.0.1 in a thread; ``routes[path](handler)`` answers."""

    def __init__(self):
        self.routes, self.stop = {}, threading.Event()
        routes, stop = self.routes, self.stop

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                route = routes.get(self.path)
                if route is None:
                    self.send_error(404)
                    return
                with contextlib.suppress(OSError):  # the client gave up: fine
                    route(self, stop)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def close(self):
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def serve_bytes(data: bytes, status: int = 200):
    def route(h, stop):
        h.send_response(status)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
    return route


def serve_bundle(server: Server, packed: Path, prefix: str = "/b/") -> str:
    for name in (MANIFEST, ARCHIVE):
        server.routes[prefix + name] = serve_bytes((packed / name).read_bytes())
    return server.url.rstrip("/") + prefix


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def in_thread(fn, timeout: float):
    """``fn()`` in a daemon thread: (finished, result or exception). A test of a hang
    fails instead of hanging."""
    out = {}

    def target():
        try:
            out["value"] = fn()
        except BaseException as e:  # noqa: BLE001 -- handed to the test
            out["value"] = e
    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    return not t.is_alive(), out.get("value")


# --- a forked child in its own mount namespace, with a tmpfs --------------------------

CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
MS_RDONLY = 1


def _enter_tmpfs(size: str, read_only: bool) -> Path:
    """In a (single-threaded, forked) child: a new user + mount namespace with a tmpfs
    of ``size`` mounted on a fresh directory; returns the mount point."""
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare")
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
    Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")
    point = Path(tempfile.mkdtemp(prefix="makemore-tmpfs-"))
    if libc.mount(b"none", str(point).encode(), b"tmpfs", MS_RDONLY if read_only else 0,
                  f"size={size}".encode()) != 0:
        raise OSError(ctypes.get_errno(), "mount tmpfs")
    return point


def on_tmpfs(fn, size: str = "4m", read_only: bool = False):
    """``fn(mount_point)`` in a forked child on its own tmpfs; its result (picklable).
    Skips the test where unprivileged user namespaces are off."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        os.close(r)
        try:
            try:
                point = _enter_tmpfs(size, read_only)
            except OSError as e:
                result = ("skip", f"no tmpfs in a user namespace here ({e})")
            else:
                result = ("ok", fn(point))
        except BaseException as e:  # noqa: BLE001 -- reported by the parent
            import traceback

            result = ("error", "".join(traceback.format_exception(e)))
        with os.fdopen(w, "wb") as f:
            f.write(pickle.dumps(result))
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    kind, value = pickle.loads(data) if data else ("error", "the child died")
    if kind == "skip":
        pytest.skip(value)
    assert kind == "ok", value
    return value


def fork_cli(args: list[str], stderr: Path) -> int:
    """``python -m makemore ARGS`` in a forked child (stderr to a file); its pid."""
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            fd = os.open(stderr, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd, 2)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            with open(2, "w", closefd=False) as err, contextlib.redirect_stderr(err):
                status = cli.main(args)
                err.flush()
        finally:
            os._exit(status)
    return pid


def gone(pid: int, within: float) -> bool:
    """Has process ``pid`` died (exited, or a zombie) within ``within`` seconds?"""
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


# ===========================================================================
# the table, row by row


# -- MAKEMORE_CACHE is a mount point: staging must happen inside it ---------------------

def test_fetch_into_a_cache_that_is_a_mount_point(packed, monkeypatch):
    def child(point):
        os.environ[run_cache.CACHE_ENV] = str(point)
        status, err = run_cli(["fetch-runs", str(packed)])
        return status, err, sorted(p.name for p in point.iterdir() if p.name != ".lock")

    status, err, files = on_tmpfs(child)
    assert status == 0, err
    assert files == sorted(run_cache.path_of(run_cache.RUNS[n]).name for n in NAMES)


# -- a server that drips one byte at a time: an overall deadline ------------------------

def drip(every: float, length: int = 100_000):
    def route(h, stop):
        h.send_response(200)
        h.send_header("Content-Length", str(length))
        h.end_headers()
        while not stop.is_set():
            h.wfile.write(b" ")
            h.wfile.flush()
            time.sleep(every)
    return route


def test_a_dripping_server_meets_the_deadline(two, server, monkeypatch):
    server.routes["/d/" + MANIFEST] = drip(0.05)
    monkeypatch.setenv(bundle.DEADLINE_ENV, "0.5")
    t0 = time.monotonic()
    finished, result = in_thread(lambda: run_cli(["fetch-runs", server.url + "d/"]), 15)
    assert finished, "fetch-runs never ended against a dripping server"
    took = time.monotonic() - t0
    status, err = result
    assert status == 1 and took < 3, (took, err)
    one_failure(err, server.url + "d/" + MANIFEST, bundle.DEADLINE_ENV)
    assert snapshot(two) is None


def test_sigterm_during_a_fetch_leaves_no_scratch(packed, two, server, tmp_path):
    """SIGTERM (a CI runner's cancel, `kill`) cleans up like Ctrl-C."""
    url = serve_bundle(server, packed)
    server.routes["/b/" + ARCHIVE] = drip(0.05, manifest(packed)["size"])
    two.mkdir(parents=True)
    (two / "kept-0123456789abcdef.pt").write_bytes(b"kept")
    before = snapshot(two)
    pid = fork_cli(["fetch-runs", url], tmp_path / "err")
    end = time.monotonic() + 30  # until it downloads the archive (was: a fixed 0.5 s)
    while not list(two.glob(f"{run_cache.STAGING}*/{ARCHIVE}")) and time.monotonic() < end:
        time.sleep(0.01)
    assert list(two.glob(f"{run_cache.STAGING}*/{ARCHIVE}")), "no download began"
    os.kill(pid, signal.SIGTERM)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 130, status
    assert "interrupted" in (tmp_path / "err").read_text()
    assert snapshot(two) == before
    left = [p for p in (*two.parent.iterdir(), *two.iterdir()) if "fetch" in p.name]
    assert left == []


# -- SIGKILL of pretrain's parent: the workers die with it ------------------------------

def test_a_worker_dies_with_its_parent():
    """The mechanism: a child that called die_with_parent() gets SIGTERM when its parent
    is SIGKILLed (Linux's parent-death signal; a watching thread elsewhere)."""
    r, w = os.pipe()
    parent = os.fork()
    if parent == 0:  # never returns into pytest
        try:
            worker = os.fork()
            if worker == 0:
                try:
                    pt.die_with_parent(os.getppid())
                    time.sleep(60)
                finally:
                    os._exit(0)
            os.write(w, str(worker).encode())
            time.sleep(60)
        finally:
            os._exit(0)
    os.close(w)
    worker = int(os.read(r, 32))
    assert not gone(worker, 0.5), "the worker did not start"
    os.kill(parent, signal.SIGKILL)
    os.waitpid(parent, 0)
    assert gone(worker, 5), "the worker outlived its parent"


KILL_PARENT = """
import dataclasses, sys
from makemore.runs import cache as run_cache
from makemore import data
small = data.make_splits(data.load_words()[:2000])
run_cache.load_splits = lambda: small
for name, base in (("long_a", "kaiming"), ("long_b", "deep_bn_g1_lr0.1")):
    run_cache.RUNS[name] = dataclasses.replace(run_cache.RUNS[base], name=name, steps=5_000_000)
from makemore.__main__ import main
sys.exit(main(["pretrain", "--jobs", "2", "long_a", "long_b"]))
"""


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


@pytest.mark.slow  # a process and two spawned workers that import torch: ~30 s
@pytest.mark.parametrize("when", ["starting", "training"])
def test_sigkill_of_pretrain_takes_its_workers_along(two, when):
    """SIGKILL of `pretrain --jobs 2` while its workers still import torch, or once they
    train: they die too (within seconds once they train), silently, and save nothing."""
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", KILL_PARENT], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONUNBUFFERED": "1", "MAKEMORE_COMPILE": "0"})
    try:
        end = time.monotonic() + 90
        while len(children(p.pid)) < 3 and time.monotonic() < end:  # 2 workers + tracker
            time.sleep(0.1)
        workers = children(p.pid)
        assert len(workers) >= 2, workers
        time.sleep(25 if when == "training" else 0.5)
        p.kill()
        t0 = time.monotonic()
        err = p.communicate()[1]
        assert all(gone(w, 60) for w in workers), "a worker outlived pretrain"
        took = time.monotonic() - t0
        assert took < (5 if when == "training" else 60), took
        assert "Traceback" not in err, err
        assert [f.name for f in two.iterdir() if not f.name.startswith(".")] == []
    finally:
        p.kill()


# -- a run file that holds another run ---------------------------------------------------

def test_a_run_file_that_holds_another_run_is_refused(two, monkeypatch, tmp_path):
    fill()
    kaiming = run_cache.path_of(run_cache.RUNS["kaiming"])
    kaiming.write_bytes(run_cache.path_of(run_cache.RUNS["original"]).read_bytes())
    monkeypatch.setenv(run_cache.NO_TRAIN_ENV, "1")
    with pytest.raises(run_cache.RunCacheError, match="holds the run 'original'"):
        run_cache.get("kaiming")
    status, out = 0, io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["list"]) == 0
    assert re.search(r"^wrong\s+kaiming", out.getvalue(), re.M), out.getvalue()
    status, err = run_cli(["pack-runs", str(tmp_path / "b")])
    assert status == 1
    one_failure(err, kaiming, "pretrain kaiming")
    assert not (tmp_path / "b").exists()


def test_a_bundle_whose_run_file_holds_another_run_is_refused(packed, two):
    """Packed from a cache with a swapped file (by an older pack-runs): the sha256s agree
    with the manifest, the run inside does not."""
    m = manifest(packed)
    with tarfile.open(packed / ARCHIVE) as tar:
        files = {i.name: tar.extractfile(i).read() for i in tar}
    a, b = (e["file"] for e in m["runs"])
    files[b] = files[a]
    m["runs"][1].update(sha256=bundle.sha256(files[b]), size=len(files[b]))
    rewrite(packed, bundle._tar_gz(files), runs=m["runs"])
    status, err = run_cli(["fetch-runs", str(packed)])
    assert status == 2
    one_failure(err, b)
    assert snapshot(two) is None


# -- size caps: a huge member, an endless manifest --------------------------------------

def test_a_huge_member_is_refused_without_reading_it(packed, two):
    """A member far larger than its manifest entry (a gzip bomb: 32 MiB of zeros in 32 kB)
    is refused on its header; memory stays small."""
    m = manifest(packed)
    with tarfile.open(packed / ARCHIVE) as tar:
        files = {i.name: tar.extractfile(i).read() for i in tar}
    name = m["runs"][1]["file"]
    files[name] = bytes(32 << 20)
    rewrite(packed, bundle._tar_gz(files))
    del files
    tracemalloc.start()
    try:
        status, err = run_cli(["fetch-runs", str(packed)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert status == 2
    one_failure(err, name, f"{32 << 20:,}")
    assert peak < 8 << 20, f"{peak / 2**20:.0f} MiB in memory"
    assert snapshot(two) is None


def endless(chunk: bytes = b" " * 65536, limit: int = 256 << 20):
    def route(h, stop):  # no Content-Length: until the client hangs up (or 256 MiB)
        h.send_response(200)
        h.end_headers()
        for _ in range(limit // len(chunk)):
            if stop.is_set():
                break
            h.wfile.write(chunk)
    return route


def test_an_endless_manifest_is_cut_off(two, server):
    server.routes["/e/" + MANIFEST] = endless()
    finished, result = in_thread(lambda: run_cli(["fetch-runs", server.url + "e/"]), 30)
    assert finished, "an endless manifest.json was downloaded for 30 s"
    status, err = result
    assert status == 2
    one_failure(err, server.url + "e/" + MANIFEST, f"{bundle.MANIFEST_MAX:,}")
    assert snapshot(two) is None


def test_an_archive_longer_than_the_manifest_says_is_cut_off(packed, two, server):
    url = serve_bundle(server, packed)
    size = manifest(packed)["size"]
    server.routes["/b/" + ARCHIVE] = endless(b"\0" * 4096, limit=64 << 20)
    finished, result = in_thread(lambda: run_cli(["fetch-runs", url]), 30)
    assert finished
    status, err = result
    assert status == 2
    one_failure(err, url + ARCHIVE, f"{size:,}")
    assert snapshot(two) is None


# -- malformed manifest entries ------------------------------------------------------------

@pytest.mark.parametrize("change", ["no name", "not an object", "no size", "no sha256"])
def test_a_malformed_manifest_entry_is_refused_before_anything(packed, two, change):
    m = manifest(packed)
    if change == "no name":
        del m["runs"][0]["name"]
    elif change == "not an object":
        m["runs"][0] = "original"
    else:
        del m["runs"][0][change.split()[1]]
    (packed / MANIFEST).write_text(json.dumps(m))
    status, err = run_cli(["fetch-runs", str(packed)])
    assert status == 2
    one_failure(err, packed / MANIFEST, "pack-runs")
    assert snapshot(two) is None


def test_a_manifest_without_torch_versions_installs_and_says_unknown(packed, two, capsys):
    m = manifest(packed)
    for e in m["runs"]:
        del e["torch"]
    (packed / MANIFEST).write_text(json.dumps(m))
    assert cli.main(["fetch-runs", str(packed)]) == 0
    out = capsys.readouterr()
    assert "Traceback" not in out.err and "torch unknown" in out.out
    assert all(run_cache.is_cached(n) for n in NAMES)


# -- tracebacks instead of a sentence --------------------------------------------------------

def test_a_read_only_cache(packed):
    def child(point):
        os.environ[run_cache.CACHE_ENV] = str(point / "runs")
        return run_cli(["fetch-runs", str(packed)]), run_cli(["pretrain", "original"])

    (s1, e1), (s2, e2) = on_tmpfs(child, read_only=True)
    assert s1 == s2 == 1
    for err in (e1, e2):
        assert "read-only" in one_failure(err, "MAKEMORE_CACHE")


def test_a_cache_that_names_a_file(two, packed, tmp_path, monkeypatch):
    path = tmp_path / "a-file"
    path.write_text("not a directory")
    monkeypatch.setenv(run_cache.CACHE_ENV, str(path))
    for args in (["fetch-runs", str(packed)], ["pretrain", "original"], ["list"],
                 ["pack-runs", str(tmp_path / "b")]):
        status, err = run_cli(args)
        assert status == 2, (args, err)
        one_failure(err, path, run_cache.CACHE_ENV)
    assert path.read_text() == "not a directory"


def fake_train_job(specs, splits, progress=None):
    """What train_job returns, without training: untrained models' records."""
    if progress:
        progress(sum(s.steps for s in specs))
    return [fake_blob(s, str(torch.__version__)) for s in specs]


def test_disk_full_while_pretrain_saves(two, monkeypatch):
    monkeypatch.setattr(run_cache, "train_job", fake_train_job)
    monkeypatch.setattr(run_cache, "load_splits", lambda: None)

    def child(point):
        os.environ[run_cache.CACHE_ENV] = str(point)
        status, err = run_cli(["pretrain", "--jobs", "1", "original"])
        return status, err, sorted(p.name for p in point.iterdir())

    status, err, files = on_tmpfs(child, size="16k")
    assert status == 1
    assert "disk is full" in one_failure(err, "original")
    assert files == [".lock"]  # no run file, no .part


def test_disk_full_while_fetch_runs_stages(packed):
    def child(point):
        os.environ[run_cache.CACHE_ENV] = str(point / "runs")
        (point / "runs").mkdir()
        (point / "runs" / "kept-0123456789abcdef.pt").write_bytes(b"kept")
        status, err = run_cli(["fetch-runs", str(packed)])
        return status, err, snapshot(point / "runs")

    status, err, after = on_tmpfs(child, size="64k")
    assert status == 1
    assert "disk is full" in one_failure(err)
    assert after == {"kept-0123456789abcdef.pt": b"kept"}


def test_disk_full_while_downloading(packed, server):
    url = serve_bundle(server, packed)

    def child(point):
        os.environ[run_cache.CACHE_ENV] = str(point / "runs")
        return run_cli(["fetch-runs", url])

    status, err = on_tmpfs(child, size="32k")
    assert status == 1
    line = one_failure(err)
    assert "disk is full" in line and "no bundle" not in line


@pytest.mark.parametrize("damage", ["truncated", "random bytes"])
def test_pack_runs_over_a_corrupt_run(two, tmp_path, damage):
    fill()
    path = run_cache.path_of(run_cache.RUNS["kaiming"])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else os.urandom(len(data)))
    status, err = run_cli(["pack-runs", str(tmp_path / "b")])
    assert status == 1
    one_failure(err, path, "pretrain kaiming")
    assert not (tmp_path / "b").exists()


def killed_worker(number, specs, q, *args):
    """A worker that the OOM killer (or a user's kill -9) takes before it says a word."""
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_killed_worker_is_one_sentence(two, monkeypatch):
    from makemore.runs.registry import RUNS

    monkeypatch.setattr(run_cache, "RUNS", {n: dataclasses.replace(RUNS[b], name=n, steps=50)
                                        for n, b in (("a", "kaiming"),
                                                     ("b", "deep_bn_g1_lr0.1"))})
    monkeypatch.setattr(pt, "RUNS", run_cache.RUNS, raising=False)
    monkeypatch.setattr(pt, "_worker", killed_worker)
    monkeypatch.setattr(pt, "START_METHOD", "fork")  # spawn: the same, 3 s of imports later
    status, err = run_cli(["pretrain", "--jobs", "2", "a", "b"])
    assert status == 1
    assert "SIGKILL" in one_failure(err, "pretrain")


def test_reproduce_json_into_a_non_directory_fails_before_training(two, tmp_path, monkeypatch):
    trained = []
    monkeypatch.setattr(pt, "pretrain", lambda *a, **kw: trained.append(a) or {})
    from makemore.show import report

    monkeypatch.setattr(report, "reproduction_table", lambda *a, **kw: [])
    (tmp_path / "file").write_text("x")
    target = tmp_path / "file" / "out.json"
    status, err = run_cli(["reproduce", "--json", str(target)])
    assert status == 2
    one_failure(err, tmp_path / "file", "--json")
    assert trained == []


# -- environment variables: one parser, accepted values, clear errors ----------------------

@pytest.mark.parametrize("value", ["0", "false", "No", "off", ""])
def test_no_train_off_trains(two, monkeypatch, value):
    monkeypatch.setenv(run_cache.NO_TRAIN_ENV, value)
    monkeypatch.setattr(run_cache, "train_job", fake_train_job)
    monkeypatch.setattr(run_cache, "load_splits", lambda: None)
    assert run_cache.get("kaiming").losses == {"train": 2.0, "val": 2.1}


@pytest.mark.parametrize("value", ["1", "true", "YES", "on"])
def test_no_train_on_refuses(two, monkeypatch, value):
    monkeypatch.setenv(run_cache.NO_TRAIN_ENV, value)
    with pytest.raises(run_cache.RunCacheError, match="pretrain kaiming"):
        run_cache.get("kaiming")


def test_a_bad_switch_value_is_an_error_not_a_guess(two, monkeypatch):
    from makemore.engine import fast

    monkeypatch.setenv("MAKEMORE_COMPILE", "maybe")
    with pytest.raises(env.EnvError, match="MAKEMORE_COMPILE='maybe' is not a yes/no value"):
        fast._want_compile(None)
    monkeypatch.setenv("MAKEMORE_COMPILE", "off")
    assert not fast._want_compile(None)
    monkeypatch.setenv(run_cache.NO_TRAIN_ENV, "maybe")
    monkeypatch.setattr(run_cache, "train_job", fake_train_job)  # (the old code trained here)
    monkeypatch.setattr(run_cache, "load_splits", lambda: None)
    status, err = run_cli(["pretrain", "original"])
    assert status == 2
    one_failure(err, run_cache.NO_TRAIN_ENV, "1/true/yes/on")


def test_relative_paths_resolve_against_the_repository_root(monkeypatch, tmp_path):
    from makemore import data

    monkeypatch.chdir(tmp_path)  # as a page does, running in book/
    monkeypatch.setenv(run_cache.CACHE_ENV, "some/cache")
    monkeypatch.setenv("MAKEMORE_DATA_DIR", "some/data")
    assert run_cache.cache_dir() == env.REPO_ROOT / "some" / "cache"
    assert data.data_dir() == env.REPO_ROOT / "some" / "data"
    monkeypatch.setenv(run_cache.CACHE_ENV, "~/c")
    assert run_cache.cache_dir() == Path.home() / "c"


# -- pretrain's threads -----------------------------------------------------------------------

def test_pretrain_trains_with_one_thread_whoever_starts_it(two, monkeypatch):
    seen = []

    def train(specs, splits, progress=None):
        seen.append(torch.get_num_threads())
        return fake_train_job(specs, splits, progress)

    monkeypatch.setattr(run_cache, "train_job", train)
    monkeypatch.setattr(run_cache, "load_splits", lambda: None)
    torch.set_num_threads(2)  # torch's default on a 2-core machine
    pt.pretrain(["kaiming"], jobs=1, log=lambda *a: None, stream=io.StringIO())
    assert seen == [1]
    assert torch.get_num_threads() == 2  # the caller's setting is back


# -- HTTP failures are not "no bundle there" -----------------------------------------------

def test_http_500_is_a_server_fault(two, server):
    server.routes["/x/" + MANIFEST] = serve_bytes(b"oops", status=500)
    status, err = run_cli(["fetch-runs", server.url + "x/"])
    assert status == 1
    line = one_failure(err, server.url + "x/" + MANIFEST, "HTTP 500")
    assert "no bundle" not in line and "later" in line


def test_a_redirect_loop_is_named(two, server):
    def loop(h, stop):
        h.send_response(302)
        h.send_header("Location", h.path)
        h.send_header("Content-Length", "0")
        h.end_headers()
    server.routes["/r/" + MANIFEST] = loop
    status, err = run_cli(["fetch-runs", server.url + "r/"])
    assert status == 1
    line = one_failure(err, server.url + "r/" + MANIFEST)
    assert "redirect" in line and "no bundle" not in line


def test_http_404_is_still_no_bundle_there(two, server):
    status, err = run_cli(["fetch-runs", server.url + "none/"])
    assert status == 2
    assert "no bundle there" in one_failure(err, "HTTP 404", "make runs")


# -- list checks what it calls cached ------------------------------------------------------------

def test_list_does_not_call_a_damaged_file_cached(two, capsys):
    fill()
    path = run_cache.path_of(run_cache.RUNS["kaiming"])
    data = path.read_bytes()
    for damage in (data[: len(data) - 100], os.urandom(len(data)), b""):
        path.write_bytes(damage)
        assert cli.main(["list"]) == 0
        out = capsys.readouterr().out
        assert re.search(r"^cached\s+original", out, re.M)
        assert re.search(r"^corrupt\s+kaiming", out, re.M), out


def test_a_flipped_byte_in_a_cached_tensor_is_caught(two, monkeypatch):
    """torch.load does not check the zip's CRCs: the cache does, so a bit flipped on disk
    is not served as a different loss curve."""
    fill()
    path = run_cache.path_of(run_cache.RUNS["kaiming"])
    data = bytearray(path.read_bytes())
    at = data.find(b"PK\x03\x04", len(data) // 2)  # in the middle of the tensors' records
    data[at - 100] ^= 0x01
    path.write_bytes(bytes(data))
    assert run_cache.check(run_cache.RUNS["kaiming"], path) is not None
    monkeypatch.setenv(run_cache.NO_TRAIN_ENV, "1")
    with pytest.raises(run_cache.RunCacheError, match="corrupt"):
        run_cache.get("kaiming")


# ===========================================================================
# faults that already passed, kept passing


def tar_with(member: tarfile.TarInfo, data: bytes = b"") -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return gzip.compress(raw.getvalue())


@pytest.mark.parametrize("kind", ["../", "absolute", "symlink", "hardlink"])
def test_a_member_that_escapes_is_refused(packed, two, kind):
    m = manifest(packed)
    name = m["runs"][0]["file"]
    info = tarfile.TarInfo({"../": "../" + name, "absolute": "/tmp/" + name}.get(kind, name))
    if kind == "symlink":
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    elif kind == "hardlink":
        info.type, info.linkname = tarfile.LNKTYPE, "/etc/passwd"
    else:
        info.size = 4
    rewrite(packed, tar_with(info, b"evil"))
    status, err = run_cli(["fetch-runs", str(packed)])
    assert status == 2
    one_failure(err, packed)
    assert snapshot(two) is None and not Path("/tmp/" + name).exists()


@pytest.mark.parametrize("damage", ["flipped byte", "wrong run sha256", "truncated"])
def test_a_damaged_bundle_is_refused(packed, two, damage):
    m = manifest(packed)
    data = bytearray((packed / ARCHIVE).read_bytes())
    if damage == "flipped byte":
        data[len(data) // 2] ^= 0xFF
    elif damage == "truncated":
        del data[len(data) // 2:]
    else:
        m["runs"][1]["sha256"] = "0" * 64
    (packed / ARCHIVE).write_bytes(bytes(data))
    (packed / MANIFEST).write_text(json.dumps(m))
    two.mkdir(parents=True)
    (two / "kept-0123456789abcdef.pt").write_bytes(b"kept")
    status, err = run_cli(["fetch-runs", str(packed)])
    assert status == 2
    assert "checksum mismatch" in one_failure(err)
    assert snapshot(two) == {"kept-0123456789abcdef.pt": b"kept"}


def test_sigkill_while_a_single_job_pretrain_saves_leaves_no_run(two, monkeypatch, tmp_path):
    """Killed in the middle of writing: no run file; the half-written .part goes with the
    next command that takes the lock, and the run is listed as missing."""
    monkeypatch.setattr(run_cache, "train_job", fake_train_job)
    monkeypatch.setattr(run_cache, "load_splits", lambda: None)
    real_write = os.write

    def slow_write(fd, data):  # half the bytes, then a long pause: kill -9 lands here
        if len(data) > 1000:
            real_write(fd, bytes(data)[: len(data) // 2])
            time.sleep(60)
        return real_write(fd, data)
    monkeypatch.setattr(os, "write", slow_write)
    pid = fork_cli(["pretrain", "--jobs", "1", "kaiming"], tmp_path / "err")
    monkeypatch.setattr(os, "write", real_write)
    end = time.monotonic() + 20
    while not any(p.name.endswith(".part") for p in two.glob(".*")) and time.monotonic() < end:
        time.sleep(0.05)
    assert any(p.name.endswith(".part") for p in two.glob(".*"))
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert not run_cache.is_cached("kaiming")
    with run_cache.cache_lock():
        pass
    assert sorted(p.name for p in two.iterdir()) == [".lock"]


def test_no_traceback_unless_debug(two, monkeypatch, tmp_path):
    path = tmp_path / "a-file"
    path.write_text("x")
    monkeypatch.setenv(run_cache.CACHE_ENV, str(path))
    status, err = run_cli(["list"])
    assert status == 2 and "Traceback" not in err
    monkeypatch.setenv(env.DEBUG, "1")
    with pytest.raises(run_cache.RunCacheError):
        run_cli(["list"])
