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

Who does what in a fetch: :mod:`makemore.runs.download` moves the bytes (urllib, each
file capped at its manifest size, a stall timeout and one deadline for the command, a
one-line error for each way a server fails), and pooch checks them (:func:`file_sha256`,
the hash behind pooch's ``known_hash``) against the manifest, which is the registry.
``pooch.retrieve(known_hash=...)`` / ``pooch.create(registry=...)`` do not do the transfer:
their downloader (requests) has no size cap and no deadline; a downloader of ours would
fit, but on a mismatch pooch deletes the file and raises a three-sentence ``ValueError``
(no size, and the hash it got only inside its prose) and logs every download to stderr,
where ``fetch-runs`` owes the user one line that says expected and got.
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path

from .. import TRAINING_MODULES, __version__, env, fingerprint
from ..data import DataError
from . import download, release

ARCHIVE, MANIFEST = "runs.tar.gz", "manifest.json"
FORMAT = 1
SITE = release.SITE
URL_ENV = release.SITE_RUNS_ENV
TRAIN_INSTEAD = "train the runs instead: `python -m makemore pretrain` (`make runs` in a clone)"


class BundleError(DataError):
    """A bundle could not be packed, fetched or verified; the message says what to do.
    The run cache is left as it was. ``status``: the exit status, 2 for a bundle that is
    not one (bad input), 1 for a fault (network, server, disk)."""

    def __init__(self, message: str, status: int = 2):
        super().__init__(message)
        self.status = status


def sha256(data: bytes) -> str:
    """The sha256 of bytes in memory (what :func:`pack` writes into a manifest)."""
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str | Path) -> str:
    """A file's sha256 by pooch (:func:`pooch.file_hash`: the check behind its
    ``known_hash``); how a fetch verifies every file against the manifest."""
    import pooch  # imported here: only a fetch needs it

    return pooch.file_hash(str(path), alg="sha256")


def training_fingerprint() -> str:
    """What a bundle must have been trained by: :data:`makemore.TRAINING_MODULES`' hash."""
    return fingerprint(TRAINING_MODULES)


def default_url(fp: str | None = None) -> str:
    """The site's bundle folder for training code ``fp`` (default: this code)."""
    return release.site_runs_url(fp)


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
        try:  # CRC-32s and the run it holds: a bundle never publishes a wrong run
            meta = runs.contents(spec, path).get("meta", {})
        except runs.RunCacheError as e:
            raise runs.RunCacheError(f"pack-runs: {e}; train it again with "
                                     f"`python -m makemore pretrain {name}`.") from e
        data = path.read_bytes()
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

MANIFEST_MAX = 1 << 20  # bytes: the book's manifest is ~15 kB; a larger one is no manifest
DEADLINE_ENV = download.DEADLINE_ENV


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _where(source: str, name: str) -> str:
    return source.rstrip("/") + "/" + name


def _get(source: str, name: str, out, cap: int, deadline: download.Deadline) -> None:
    """The bundle's file ``name`` into the open file ``out``, at most ``cap`` bytes."""
    where = _where(source, name)
    try:
        if _is_url(source):
            download.download(where, out, cap, deadline)
            return
        path = Path(source) / name
        if not path.is_file():
            raise BundleError(f"{path} does not exist: a bundle folder holds {MANIFEST} and "
                              f"{ARCHIVE}, as `python -m makemore pack-runs DIR` writes them.")
        with open(path, "rb") as f:
            download.copy_capped(f.read, out, cap, str(path))
    except download.DownloadError as e:
        if e.code in (404, 410):
            raise BundleError(f"could not download {where} (HTTP {e.code}: no bundle there; "
                              f"it is published only for the training code of the book's "
                              f"latest build). Without the bundle, {TRAIN_INSTEAD}.") from e
        raise BundleError(f"{e} Without the bundle, {TRAIN_INSTEAD}.", status=e.status) from e


def _plain(name) -> bool:
    """A file name with no directory part (nothing that could land outside a folder)."""
    return isinstance(name, str) and name not in ("", ".", "..") and Path(name).name == name


def _manifest(data: bytes, where: str) -> dict:
    """The manifest, checked field by field before anything else is read."""
    def bad(why: str) -> BundleError:
        return BundleError(f"{where}: {why}, so it is not a runs bundle manifest of format "
                           f"{FORMAT}; pack the bundle again with "
                           f"`python -m makemore pack-runs DIR`.")
    try:
        m = json.loads(data)
    except ValueError as e:
        raise bad(f"not JSON ({e})") from e
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise bad("no object with \"format\": 1")
    for key, kind in (("fingerprint", str), ("sha256", str), ("archive", str), ("size", int),
                      ("runs", list)):
        if not isinstance(m.get(key), kind):
            raise bad(f"its {key!r} is missing or not a {kind.__name__}")
    if not _plain(m["archive"]):
        raise bad(f"its archive {m['archive']!r} is not a plain file name")
    files = set()
    for k, e in enumerate(m["runs"]):
        if not isinstance(e, dict):
            raise bad(f"run entry {k} is not an object")
        for key, kind in (("name", str), ("file", str), ("key", str), ("sha256", str),
                          ("size", int)):
            if not isinstance(e.get(key), kind):
                raise bad(f"run entry {k} has no {key!r} {kind.__name__}")
        if not _plain(e["file"]) or e["file"] in files:
            raise bad(f"run entry {k}'s file {e['file']!r} is not a plain, unique file name")
        files.add(e["file"])
    return m


def _check_sha(what: str, path: Path, expected: str, size: int) -> None:
    """``path`` (the file ``what``) has the manifest's sha256 ``expected``, by pooch."""
    got = file_sha256(path)
    if got != expected:
        raise BundleError(f"checksum mismatch for {what}: expected sha256 {expected}, got "
                          f"{got} ({size:,} bytes). The file is damaged or was changed; "
                          f"download it again, or {TRAIN_INSTEAD}.")


def _unpack(archive: Path, entries: dict[str, dict], into: Path, where: str) -> None:
    """Every run file of ``archive`` into the folder ``into``, streamed: each member must
    be a plain file the manifest lists, of the size and sha256 it lists."""
    limit = sum(e["size"] for e in entries.values()) + 4096 * (len(entries) + 4)
    seen = set()
    try:
        with gzip.open(archive, "rb") as gz, tarfile.open(
                fileobj=download.Capped(gz, limit, f"{where} {ARCHIVE}"), mode="r|") as tar:
            for info in tar:
                entry = entries.get(info.name) if info.isfile() else None
                if entry is None or info.name in seen:
                    raise BundleError(f"{where}: the archive holds {info.name!r}, which is "
                                      f"not a run file its manifest lists; refusing it.")
                if info.size != entry["size"]:
                    raise BundleError(
                        f"{where}: {info.name} in {ARCHIVE} is {info.size:,} bytes, its "
                        f"manifest says {entry['size']:,}; refusing it (a damaged or hostile "
                        f"bundle): pack it again.")
                with open(into / info.name, "wb") as out:
                    download.copy_capped(tar.extractfile(info).read, out, entry["size"],
                                         info.name)
                _check_sha(f"{info.name} in {where}", into / info.name, entry["sha256"],
                           entry["size"])
                seen.add(info.name)
    except download.DownloadError as e:  # it unpacks to more than its runs
        raise BundleError(f"{e} Pack it again with `python -m makemore pack-runs DIR`.") from e
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise BundleError(f"{where}: {ARCHIVE} is not a complete .tar.gz archive "
                          f"({type(e).__name__}: {e}); it is truncated or no archive at all. "
                          f"Pack it again with `python -m makemore pack-runs DIR`.") from e
    if seen != set(entries):
        raise BundleError(f"{where}: the archive's files differ from the manifest's "
                          f"({sorted(set(entries) - seen)} are missing); pack it again.")


def _install_as(spec, path: Path, entry: dict, m: dict, where: str, other_code: bool) -> None:
    """Check that the staged file ``path`` holds the run ``spec`` (a run file carries its
    name, configuration and key); for ``other_code``, re-key it to this code's key."""
    import torch

    from . import cache

    try:
        blob = torch.load(path, weights_only=True)
    except Exception as e:  # noqa: BLE001 -- torch raises many kinds for a bad file
        raise BundleError(f"{where}: {entry['file']} is not a run file ({type(e).__name__}); "
                          f"pack the bundle again.") from e
    why = cache.identity_problem(spec, blob, key=None if other_code else spec.key())
    if why:
        raise BundleError(f"{where}: {entry['file']} {why}; refusing the bundle: pack it "
                          f"again from a cache that `python -m makemore list` calls complete.")
    if blob["key"] != spec.key():  # other_code: the user chose to use it under this key
        blob["meta"]["other_code"] = {"key": blob["key"], "fingerprint": m["fingerprint"]}
        blob["key"] = spec.key()
        cache.save(blob, path)


def fetch(source: str | None = None, other_code: bool = False, log=print) -> list[str]:
    """Fill the run cache from a bundle: a URL, a local folder, or (``None``) the
    published bundle of this version: its release's, else the site's of this training
    code (:func:`makemore.runs.release.bundle_urls`). Returns the run names installed.

    Everything is downloaded into a staging folder inside the cache (so each file's
    final rename is atomic even when the cache is a mount point of its own) and every
    sha256, size and run identity is checked before the first rename. Every download
    is capped at the manifest's size and the whole fetch at ``$MAKEMORE_FETCH_TIMEOUT``.
    ``other_code=True`` installs the runs of a bundle made by other training code under
    this code's keys (each file records where it came from)."""
    from . import cache

    if source is None:  # this version's release, then the site (makemore.runs.release)
        return _fetch_first(release.bundle_urls(), other_code, log)
    deadline = download.Deadline()
    created = not cache.cache_dir().exists()
    cache_dir = cache.make_cache_dir()
    done = False
    try:
        staging = Path(tempfile.mkdtemp(dir=cache_dir, prefix=f"{cache.STAGING}{os.getpid()}-"))
        try:
            installed = _fetch_into(staging, cache_dir, source, other_code, deadline, log)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        done = True
        return installed
    except OSError as e:  # a full disk, a read-only cache: nothing was installed
        raise BundleError(env.describe(e, "fetch-runs:", fallback=cache_dir)
                          + " The run cache is as it was.", status=1) from e
    finally:
        if created and not done:  # as before: no cache folder at all
            with contextlib.suppress(OSError):
                (cache_dir / ".lock").unlink(missing_ok=True)
                cache_dir.rmdir()


def _fetch_into(staging: Path, cache_dir: Path, source: str, other_code: bool,
                deadline: download.Deadline, log) -> list[str]:
    from . import cache

    where = _where(source, MANIFEST)
    raw = io.BytesIO()
    _get(source, MANIFEST, raw, MANIFEST_MAX, deadline)
    m = _manifest(raw.getvalue(), where)
    fp = training_fingerprint()
    if m["fingerprint"] != fp and not other_code:
        raise BundleError(
            f"{source} was made by other training code (fingerprint {m['fingerprint']}; "
            f"this package's training modules have {fp}): its runs are not what this code "
            f"trains. Either {TRAIN_INSTEAD}, or use the bundle anyway with "
            f"`python -m makemore fetch-runs --other-code {source}`.")
    archive = staging / ARCHIVE  # a local bundle's too: capped like a download
    with open(archive, "wb") as out:
        _get(source, m["archive"], out, m["size"], deadline)
    _check_sha(_where(source, m["archive"]), archive, m["sha256"], m["size"])
    entries = {e["file"]: e for e in m["runs"]}
    runs_dir = staging / "runs"
    runs_dir.mkdir()
    _unpack(archive, entries, runs_dir, source)
    staged = {}
    for name, entry in entries.items():
        spec = cache.RUNS.get(entry["name"])
        if spec is None:
            continue  # a run this version of the book no longer has
        target = cache.path_of(spec).name  # this code's key (the same name unless other_code)
        if m["fingerprint"] == fp and target != name:
            raise BundleError(f"{source}: run {entry['name']!r} is stored as {name}, but "
                              f"this code keys it {target}; pack the bundle again.")
        _install_as(spec, runs_dir / name, entry, m, source, other_code)
        staged[entry["name"]] = (runs_dir / name, target)
    # verified and staged: into the cache, each file by one atomic rename, under the lock
    with cache.cache_lock(log):
        for path, target in staged.values():
            os.replace(path, cache_dir / target)
    torches = sorted({str(e.get("torch", "unknown")) for e in m["runs"]})
    log(f"fetch-runs: {len(staged)} runs from {source} -> {cache_dir} "
        f"(trained with torch {', '.join(torches)})")
    return list(staged)


def _fetch_first(urls: list[str], other_code: bool, log) -> list[str]:
    """:func:`fetch` from the first of ``urls`` that has a good bundle."""
    errors = []
    for url in urls:
        try:
            return fetch(url, other_code=other_code, log=log)
        except BundleError as e:
            errors.append(e)
    if len(errors) == 1:
        raise errors[0]
    raise BundleError(" Then: ".join(str(e) for e in errors),
                      status=errors[-1].status) from errors[-1]


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
                   help="URL or folder of a bundle (default: this version's release, "
                        "else the site's bundle of this training code)")
    p.add_argument("--other-code", action="store_true",
                   help="use a bundle made by other training code anyway")


def run_command(args) -> int:
    if args.cmd == "pack-runs":
        pack(Path(args.dir) / "runs" / training_fingerprint() if args.site else args.dir)
    else:
        fetch(args.source, other_code=args.other_code)
    return 0
