"""The run bundle (makemore.runs.bundle): packs deterministically, fetches from a folder or a
local HTTP server into an empty cache, and refuses every bad bundle with a message that
says what to do, leaving the cache exactly as it was.

The runs here are two of the book's real specs with untrained weights (no training):
what is tested is the packing, not the numbers."""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from makemore import __main__ as cli
from makemore import runs
from makemore.runs import bundle, jobs
from makemore.runs import cache as run_cache
from makemore.runs.bundle import ARCHIVE, MANIFEST, BundleError

NAMES = ("original", "kaiming")


def fake_blob(spec: jobs.RunSpec, torch_version: str) -> dict:
    """What a trained run's file holds (:func:`makemore.runs.jobs.train_job`'s record), for an
    untrained model, recorded by ``torch_version``."""
    from makemore.models import new_generator
    from makemore.train import History

    model = spec.build(new_generator(spec.seed))
    n = len(model.parameters())
    hist = History(torch.linspace(0.5, 0.3, 5), torch.empty(0, n),
                   torch.empty(0, dtype=torch.long), "plain", 1.0)
    return {"name": spec.name, "key": spec.key(), "spec": spec.config(),
            "state": model.state_dict(),
            "history": dataclasses.asdict(hist), "losses": {"train": 2.0, "val": 2.1},
            "calibrated": None,
            "meta": {"device": "cpu", "torch": torch_version, "python": "3.11.0",
                     "machine": "aarch64", "threads": 1,
                     "job": {"id": "test", "members": [spec.name], "trainer": "plain",
                             "seconds": 1.0}}}


def two_run_cache(tmp_path: Path, monkeypatch) -> Path:
    """An empty run cache in tmp_path; the book's runs cut down to two."""
    monkeypatch.setattr(run_cache, "RUNS", {n: runs.RUNS[n] for n in NAMES})
    path = tmp_path / "cache" / "runs"
    monkeypatch.setenv(runs.CACHE_ENV, str(path))
    monkeypatch.delenv(bundle.URL_ENV, raising=False)
    return path


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    return two_run_cache(tmp_path, monkeypatch)


def fill(torch_version: str = "2.4.0+cu121") -> None:
    for n in NAMES:
        runs.save(fake_blob(runs.RUNS[n], torch_version), runs.path_of(runs.RUNS[n]))


def pack_then_empty(cache: Path, into: Path) -> Path:
    """A bundle of the two runs in ``into``; the cache emptied again."""
    fill()
    bundle.pack(into, log=lambda *a: None)
    for p in cache.iterdir():
        p.unlink()
    cache.rmdir()
    return into


@pytest.fixture
def packed(cache, tmp_path) -> Path:
    return pack_then_empty(cache, tmp_path / "bundle")


def snapshot(path: Path) -> dict[str, bytes] | None:
    """The cache's files and bytes (``None``: absent); its lock file holds no data."""
    if not path.exists():
        return None
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.name != ".lock"}


def rewrite(packed: Path, archive: bytes | None = None, **fields) -> None:
    """Change the bundle's archive and/or manifest fields; the manifest's archive sha256
    and size follow a new archive, as if a broken file had been packed."""
    m = json.loads((packed / MANIFEST).read_text())
    if archive is not None:
        (packed / ARCHIVE).write_bytes(archive)
        m.update(sha256=bundle.sha256(archive), size=len(archive))
    m.update(fields)
    (packed / MANIFEST).write_text(json.dumps(m))


def refused(source, cache: Path, *, other_code=False) -> str:
    """Fetch ``source``; it must raise BundleError and leave the cache as it was."""
    before = snapshot(cache)
    with pytest.raises(BundleError) as e:
        bundle.fetch(str(source), other_code=other_code, log=lambda *a: None)
    assert snapshot(cache) == before, "a refused bundle changed the cache"
    assert not [p for p in cache.parent.iterdir() if p.name.startswith(".runs-fetch-")]
    return str(e.value)


@pytest.fixture
def server(packed):
    """``packed`` served over HTTP on 127.0.0.1."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(
        type("Quiet", (SimpleHTTPRequestHandler,), {"log_message": lambda *a: None}),
        directory=str(packed.parent)))
    # a short poll: shutdown() waits for the loop's next poll (0.5 s by default)
    threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


# ---------------------------------------------------------------------------
# pack


def test_pack_is_deterministic(cache, tmp_path):
    fill()
    bundle.pack(tmp_path / "a", log=lambda *a: None)
    for p in cache.iterdir():  # other mtimes, same contents
        os.utime(p, (1e9, 1e9))
    bundle.pack(tmp_path / "b", log=lambda *a: None)
    for name in (ARCHIVE, MANIFEST):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_manifest_records_each_run(cache, tmp_path):
    fill("2.4.0+cu121")
    m = bundle.pack(tmp_path / "b", log=lambda *a: None)
    assert m == json.loads((tmp_path / "b" / MANIFEST).read_text())
    assert m["sha256"] == bundle.sha256((tmp_path / "b" / ARCHIVE).read_bytes())
    assert m["fingerprint"] == bundle.training_fingerprint()
    assert [e["name"] for e in m["runs"]] == list(NAMES)
    for e in m["runs"]:
        path = runs.path_of(runs.RUNS[e["name"]])
        assert e["file"] == path.name and e["key"] == runs.RUNS[e["name"]].key()
        assert e["sha256"] == bundle.sha256(path.read_bytes())
        assert (e["torch"], e["machine"]) == ("2.4.0+cu121", "aarch64")


def test_pack_needs_every_run(cache, tmp_path):
    fill()
    runs.path_of(runs.RUNS["kaiming"]).unlink()
    with pytest.raises(BundleError, match="kaiming.*make runs"):
        bundle.pack(tmp_path / "b")
    assert not (tmp_path / "b").exists()


# ---------------------------------------------------------------------------
# fetch


def test_fetch_from_a_folder_into_an_empty_cache(packed, cache, monkeypatch):
    assert not cache.exists()
    assert bundle.fetch(str(packed), log=lambda *a: None) == list(NAMES)
    monkeypatch.setenv(runs.NO_TRAIN_ENV, "1")
    for n in NAMES:
        assert runs.get(n).losses == {"train": 2.0, "val": 2.1}


def test_fetch_over_http_by_default_url(server, cache, monkeypatch):
    """The default source: $MAKEMORE_RUNS_URL/<fingerprint>/, here a local server."""
    monkeypatch.setenv(bundle.URL_ENV, server)
    packed = Path(runs.cache_dir()).parents[1] / "bundle"
    os.rename(packed, packed.parent / bundle.training_fingerprint())
    assert bundle.default_url() == server + bundle.training_fingerprint() + "/"
    assert bundle.fetch(None, log=lambda *a: None) == list(NAMES)
    assert all(runs.is_cached(n) for n in NAMES)


def test_a_run_recorded_by_another_torch_version_loads(packed, cache, monkeypatch):
    """The key is what decides the numbers: configuration and training code, not torch's
    version. A bundle trained by torch 2.4.0+cu121 loads under this torch, and says so."""
    key = runs.RUNS["kaiming"].key()
    monkeypatch.setattr(torch, "__version__", "9.9.9")
    assert runs.RUNS["kaiming"].key() == key
    bundle.fetch(str(packed), log=lambda *a: None)
    monkeypatch.setenv(runs.NO_TRAIN_ENV, "1")
    run = runs.get("kaiming")
    assert run.meta["torch"] == "2.4.0+cu121"
    assert isinstance(run.model(torch.zeros(2, 3, dtype=torch.long)), torch.Tensor)


def test_fetch_keeps_other_runs_in_the_cache(packed, cache):
    cache.mkdir(parents=True)
    (cache / "other-0123456789abcdef.pt").write_bytes(b"kept")
    bundle.fetch(str(packed), log=lambda *a: None)
    assert (cache / "other-0123456789abcdef.pt").read_bytes() == b"kept"
    assert all(runs.is_cached(n) for n in NAMES)


# ---------------------------------------------------------------------------
# refused, the cache left as it was


@pytest.fixture
def occupied(cache) -> Path:
    """The cache holds one file already: a refused fetch must leave it alone."""
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "other-0123456789abcdef.pt").write_bytes(b"kept")
    return cache


def test_no_network_says_train_instead(packed, occupied):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    msg = refused(f"http://127.0.0.1:{port}/runs/", occupied)
    assert "could not download" in msg and "make runs" in msg


def test_missing_on_the_server(server, occupied):
    msg = refused(server + "no-such-bundle/", occupied)
    assert "HTTP 404" in msg and "make runs" in msg


def test_checksum_mismatch_says_expected_and_got(packed, occupied):
    data = bytearray((packed / ARCHIVE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (packed / ARCHIVE).write_bytes(bytes(data))
    want = json.loads((packed / MANIFEST).read_text())["sha256"]
    msg = refused(packed, occupied)
    assert f"expected sha256 {want}, got {bundle.sha256(bytes(data))}" in msg


def test_pooch_verifies_every_file_of_a_fetch(packed, occupied, monkeypatch):
    """The archive and each run file are checked by pooch's hash (the manifest is the
    registry): a pooch that sees other bytes refuses them, and the cache stays as it was."""
    import pooch

    real_hash, seen = pooch.file_hash, []

    def other(path, alg="sha256"):
        seen.append((Path(path).name, alg))
        return "f" * 64

    # monkeypatch.context(), not monkeypatch.undo(): undo would also drop the fixture's
    # MAKEMORE_CACHE, and the fetch below would fill the real run cache with fake runs
    with monkeypatch.context() as patch:
        patch.setattr(pooch, "file_hash", other)
        msg = refused(packed, occupied)
    assert "checksum mismatch" in msg and f"got {'f' * 64}" in msg
    assert seen == [(ARCHIVE, "sha256")]
    m = json.loads((packed / MANIFEST).read_text())
    checked = []
    monkeypatch.setattr(pooch, "file_hash", lambda path, alg="sha256": checked.append(
        Path(path).name) or real_hash(path, alg))
    assert sorted(bundle.fetch(str(packed), log=lambda *a: None)) == sorted(NAMES)
    assert runs.cache_dir() == occupied  # the fetch went into the test's cache
    assert checked == [ARCHIVE] + sorted(e["file"] for e in m["runs"])


def test_a_run_file_that_differs_from_its_manifest_entry(packed, occupied):
    m = json.loads((packed / MANIFEST).read_text())
    m["runs"][1]["sha256"] = "0" * 64
    (packed / MANIFEST).write_text(json.dumps(m))
    msg = refused(packed, occupied)
    assert "checksum mismatch" in msg and m["runs"][1]["file"] in msg


def test_a_bundle_of_other_training_code(cache, tmp_path, monkeypatch):
    """Packed by code whose training modules differ: refused unless the user opts in."""
    fill()
    mine = {n: runs.path_of(runs.RUNS[n]).name for n in NAMES}
    for p in cache.iterdir():
        p.unlink()
    with monkeypatch.context() as m:
        m.setattr(jobs, "fingerprint", lambda files: "0ther0ther0ther0")
        m.setattr(bundle, "fingerprint", lambda files: "0ther0ther0ther0")
        fill()
        bundle.pack(tmp_path / "old", log=lambda *a: None)
    for p in cache.iterdir():
        p.unlink()
    msg = refused(tmp_path / "old", cache)
    assert "other training code" in msg and "0ther0ther0ther0" in msg
    assert "make runs" in msg and "--other-code" in msg
    assert bundle.fetch(str(tmp_path / "old"), other_code=True, log=lambda *a: None)
    assert sorted(p.name for p in cache.glob("[!.]*")) == sorted(mine.values())


def test_truncated_archive(packed, occupied):
    data = (packed / ARCHIVE).read_bytes()
    # cut off in a download: the checksum catches it
    (packed / ARCHIVE).write_bytes(data[: len(data) // 2])
    assert "checksum mismatch" in refused(packed, occupied)
    # packed from a truncated file: the checksum agrees, the archive does not
    rewrite(packed, archive=data[: len(data) // 2])
    assert "not a complete .tar.gz" in refused(packed, occupied)


def test_not_an_archive(packed, occupied):
    rewrite(packed, archive=b"<html>404 Not Found</html>\n")
    msg = refused(packed, occupied)
    assert "not a complete .tar.gz" in msg and "pack-runs" in msg


def test_not_a_manifest(packed, occupied):
    (packed / MANIFEST).write_text("<html>not json</html>")
    assert "not a runs bundle manifest" in refused(packed, occupied)


def test_no_bundle_in_the_folder(tmp_path, occupied):
    msg = refused(tmp_path / "nowhere", occupied)
    assert MANIFEST in msg and "pack-runs" in msg


def test_command_line_reports_errors(packed, occupied, capsys, tmp_path):
    assert cli.main(["pack-runs", str(tmp_path / "again")]) == 2  # the cache is incomplete
    assert cli.main(["fetch-runs", str(packed)]) == 0
    assert cli.main(["pack-runs", str(tmp_path / "again")]) == 0
    rewrite(packed, archive=b"junk")
    assert cli.main(["fetch-runs", str(packed)]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "not a complete .tar.gz" in err
