"""The trained runs as one verified bundle: pack the run cache, fetch it elsewhere.

Training every run of the book takes many CPU-minutes; a notebook launched on Binder
or Colab should not. The publishing workflow packs the run cache after the
reproduction check passes and publishes it with the site; a fresh environment
fetches it instead of training (introduced for the launch buttons, see the intro).

A bundle is a folder of two files::

    runs.tar.gz     every run file of the cache (<name>-<key>.pt), in a deterministic tar
    manifest.json   per run: name, configuration key, training-code fingerprint, the
                    torch version and machine that trained it, sha256; the archive's sha256

The published bundle of training code with fingerprint ``F`` (see
:data:`makemore.TRAINING_MODULES`) lives at ``<site>/runs/F/``, e.g.
https://makemore-book.github.io/makemore-part3/runs/F/manifest.json; only code that
trains exactly what that code trained finds it. ``$MAKEMORE_RUNS_URL`` replaces the
``<site>/runs/`` part (a mirror, or a local server in the tests).

    python -m makemore pack-runs DIR          # the whole run cache -> DIR
    python -m makemore pack-runs --site _build/html   # -> _build/html/runs/F/ (make bundle)
    python -m makemore fetch-runs [SOURCE]    # URL or folder; default: the published one

A fetch checks every sha256 before anything reaches the cache, and each run file
lands by an atomic rename: the cache holds whole runs or none.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from .. import TRAINING_MODULES, __version__, fingerprint
from ..data import DataError

ARCHIVE, MANIFEST = "runs.tar.gz", "manifest.json"
FORMAT = 1
SITE = "https://makemore-book.github.io/makemore-part3/"
URL_ENV = "MAKEMORE_RUNS_URL"
TRAIN_INSTEAD = "train the runs instead: `make runs` (or `python -m makemore pretrain`)"


class BundleError(DataError):
    """A bundle could not be packed, fetched or verified; the message says what to do.
    The run cache is left as it was."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def training_fingerprint() -> str:
    """What a bundle must have been trained by: :data:`makemore.TRAINING_MODULES`' hash."""
    return fingerprint(TRAINING_MODULES)


def default_url(fp: str | None = None) -> str:
    """The published bundle's folder for training code ``fp`` (default: this code)."""
    base = os.environ.get(URL_ENV) or SITE + "runs/"
    return base.rstrip("/") + "/" + (fp or training_fingerprint()) + "/"


# ---------------------------------------------------------------------------
# pack


def _tar_gz(files: dict[str, bytes]) -> bytes:
    """A .tar.gz of ``files`` that depends on nothing else: sorted names, mtime 0,
    owner root, mode 0644, and gzip's own header timestamp 0 with no file name."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(files[name]), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(files[name]))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=6) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        os.fchmod(fd, 0o644)  # published files: readable by the web server, like any
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def pack(out_dir: str | Path, log=print) -> dict:
    """Write every run of :data:`makemore.runs.RUNS` from the run cache into a bundle
    in ``out_dir``; return the manifest. The same cache always packs to the same bytes."""
    import torch

    from . import cache as runs

    missing = [n for n in runs.RUNS if not runs.is_cached(n)]
    if missing:
        raise BundleError(f"{len(missing)} of the book's runs are not in the cache "
                          f"{runs.cache_dir()}: {', '.join(missing)}. A bundle holds them all: "
                          f"train them first with `make runs`.")
    fp = training_fingerprint()
    files, entries = {}, []
    for name, spec in runs.RUNS.items():
        path = runs.path_of(spec)
        data = path.read_bytes()
        meta = torch.load(io.BytesIO(data), weights_only=True).get("meta", {})
        files[path.name] = data
        entries.append({"name": name, "key": spec.key(), "file": path.name, "fingerprint": fp,
                        "torch": meta.get("torch", "unknown"),
                        "machine": meta.get("machine", "unknown"),
                        "sha256": sha256(data), "size": len(data)})
    archive = _tar_gz(files)
    manifest = {"format": FORMAT, "package": "makemore-book", "version": __version__,
                "fingerprint": fp, "archive": ARCHIVE, "sha256": sha256(archive),
                "size": len(archive), "runs": entries}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_atomic(out / ARCHIVE, archive)  # the archive first: a manifest names only
    _write_atomic(out / MANIFEST, (json.dumps(manifest, indent=2, sort_keys=True) + "\n")
                  .encode())  # an archive that is there
    log(f"pack-runs: {len(entries)} runs, {len(archive) / 2**20:.1f} MiB -> {out / ARCHIVE} "
        f"(sha256 {manifest['sha256'][:12]}...), {out / MANIFEST}")
    return manifest


# ---------------------------------------------------------------------------
# fetch


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _download(url: str, into: Path) -> bytes:
    """The bytes at ``url``, downloaded with pooch into the scratch folder ``into``."""
    import pooch

    pooch.get_logger().setLevel("WARNING")  # no "use this hash" hint: we check it
    fname = url.rstrip("/").rsplit("/", 1)[-1]
    try:
        path = pooch.retrieve(url, known_hash=None, fname=fname, path=into, progressbar=False)
    except Exception as e:  # no network, DNS, proxy, HTTP 404
        status = getattr(getattr(e, "response", None), "status_code", None)
        why = (f"HTTP {status}: no bundle there; it is published only for the training code "
               f"of the book's latest build" if status else f"{type(e).__name__}: {e}")
        raise BundleError(f"could not download {url} ({why}). Without the bundle, "
                          f"{TRAIN_INSTEAD}.") from e
    return Path(path).read_bytes()


def _read(source: str, name: str, scratch: Path) -> bytes:
    if _is_url(source):
        return _download(source.rstrip("/") + "/" + name, scratch)
    path = Path(source) / name
    if not path.is_file():
        raise BundleError(f"{path} does not exist: a bundle folder holds {MANIFEST} and "
                          f"{ARCHIVE}, as `python -m makemore pack-runs DIR` writes them.")
    return path.read_bytes()


def _manifest(data: bytes, source: str) -> dict:
    try:
        m = json.loads(data)
        assert isinstance(m, dict) and m["format"] == FORMAT and isinstance(m["runs"], list)
        for key in ("fingerprint", "sha256", "archive"):
            assert isinstance(m[key], str)
    except (ValueError, KeyError, TypeError, AssertionError) as e:
        raise BundleError(f"{source}: {MANIFEST} is not a runs bundle manifest of format "
                          f"{FORMAT}; pack the bundle again with "
                          f"`python -m makemore pack-runs DIR`.") from e
    return m


def _check_sha(what: str, data: bytes, expected: str) -> None:
    got = sha256(data)
    if got != expected:
        raise BundleError(f"checksum mismatch for {what}: expected sha256 {expected}, got "
                          f"{got} ({len(data):,} bytes). The file is damaged or was changed; "
                          f"download it again, or {TRAIN_INSTEAD}.")


def _unpack(archive: bytes, source: str) -> dict[str, bytes]:
    """The archive's files by name; only plain files with plain names."""
    files = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            for info in tar:
                if not info.isfile() or Path(info.name).name != info.name:
                    raise BundleError(f"{source}: the archive holds {info.name!r}, which is "
                                      f"not a run file; refusing it.")
                files[info.name] = tar.extractfile(info).read()
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as e:
        raise BundleError(f"{source}: {ARCHIVE} is not a complete .tar.gz archive "
                          f"({type(e).__name__}: {e}); it is truncated or no archive at all. "
                          f"Pack it again with `python -m makemore pack-runs DIR`.") from e
    return files


def fetch(source: str | None = None, other_code: bool = False, log=print) -> list[str]:
    """Fill the run cache from a bundle: a URL, a local folder, or (``None``) the
    published bundle of this training code. Returns the run names installed.

    Every sha256 is checked before the cache is touched. ``other_code=True`` installs
    the runs of a bundle made by other training code under this code's keys."""
    from . import cache as runs

    source = source or default_url()
    cache = runs.cache_dir()
    cache.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache.parent, prefix=".runs-fetch-") as tmp:
        scratch = Path(tmp)
        m = _manifest(_read(source, MANIFEST, scratch / "download"), source)
        fp = training_fingerprint()
        if m["fingerprint"] != fp and not other_code:
            raise BundleError(
                f"{source} was made by other training code (fingerprint {m['fingerprint']}; "
                f"this package's training modules have {fp}): its runs are not what this code "
                f"trains. Either {TRAIN_INSTEAD}, or use the bundle anyway with "
                f"`python -m makemore fetch-runs --other-code {source}`.")
        archive = _read(source, m["archive"], scratch / "download")
        _check_sha(f"{source} {m['archive']}", archive, m["sha256"])
        files = _unpack(archive, source)
        listed = {e["file"]: e for e in m["runs"]}
        if set(files) != set(listed):
            raise BundleError(f"{source}: the archive's files differ from the manifest's "
                              f"({sorted(set(files) ^ set(listed))}); pack it again.")
        staged = scratch / "runs"
        staged.mkdir()
        installed = []
        for name, entry in listed.items():
            _check_sha(f"{name} in {source}", files[name], entry["sha256"])
            spec = runs.RUNS.get(entry["name"])
            if spec is None:
                continue  # a run this version of the book no longer has
            # the run's file under this code's key (the same name unless other_code)
            target = runs.path_of(spec).name
            if m["fingerprint"] == fp and target != name:
                raise BundleError(f"{source}: run {entry['name']!r} is stored as {name}, but "
                                  f"this code keys it {target}; pack the bundle again.")
            (staged / target).write_bytes(files[name])
            installed.append(entry["name"])
        # verified and staged: now into the cache, each file by one atomic rename
        if not cache.exists():
            os.rename(staged, cache)
        else:
            for path in sorted(staged.iterdir()):
                os.replace(path, cache / path.name)
        shutil.rmtree(scratch / "download", ignore_errors=True)
    torches = sorted({e["torch"] for e in m["runs"]})
    log(f"fetch-runs: {len(installed)} runs from {source} -> {cache} "
        f"(trained with torch {', '.join(torches)})")
    return installed


# ---------------------------------------------------------------------------
# command line (python -m makemore pack-runs / fetch-runs)

COMMANDS = ("pack-runs", "fetch-runs")


def add_commands(sub) -> None:
    """Add ``pack-runs`` and ``fetch-runs`` to the ``python -m makemore`` parser."""
    p = sub.add_parser("pack-runs", help="the whole run cache -> DIR as one verified bundle")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--site", action="store_true",
                   help="DIR is the site's root: write to DIR/runs/<fingerprint>/, where "
                        "fetch-runs looks for it")
    p = sub.add_parser("fetch-runs", help="fill the run cache from a bundle (URL or folder)")
    p.add_argument("source", nargs="?", metavar="SOURCE",
                   help=f"URL or folder of a bundle (default: {default_url()})")
    p.add_argument("--other-code", action="store_true",
                   help="use a bundle made by other training code anyway")


def run_command(args) -> int:
    if args.cmd == "pack-runs":
        pack(Path(args.dir) / "runs" / training_fingerprint() if args.site else args.dir)
    else:
        fetch(args.source, other_code=args.other_code)
    return 0
