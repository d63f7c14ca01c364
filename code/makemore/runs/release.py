"""Which published version of the book this package is, and where that version's files are.

A published version of the book is one package version (``makemore.__version__``), one
training fingerprint (the hash of :data:`makemore.TRAINING_MODULES`) and one bundle of
trained runs. The publishing workflow (``.github/workflows/book.yml``, ``tools/release.py``)
releases a version the first time main builds it: the git tag ``v<version>`` (main's
commit plus the launch notebooks, which Colab and Binder open) and a GitHub release whose
assets are the wheel and sdist, the bundle (``manifest.json``, ``runs.tar.gz``), the
launch notebooks and the PDF.

Release assets, not the site, keep the bundles: a release asset stays at its URL for
good, while ``deploy-pages`` replaces the whole site on every deploy (carrying every old
``runs/<fingerprint>/`` folder into each deploy would need the previous site back, which
Pages does not give, and would grow the site without end). The site keeps only the
bundle of main's latest build, for checkouts between releases.

``releases.json`` (next to this module, committed) records each released version's
training fingerprint. A test fails when the training code changes under a recorded
version: a version's runs are what its release holds, so changed training code is a new
version. Introduced with the launch buttons (issue 27); the release steps for
maintainers are in the README ("Releasing a version").

    python -m makemore.runs.release check    # this version is recorded with this code
    python -m makemore.runs.release record   # record this version (after a version bump)
    python -m makemore.runs.release info     # version, tag, fingerprint, bundle URLs
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .. import TRAINING_MODULES, __version__, env, fingerprint

REPO = "makemore-book/makemore-part3"
SITE = "https://makemore-book.github.io/makemore-part3/"
RELEASES_URL = f"https://github.com/{REPO}/releases/download/"
RELEASES_ENV = "MAKEMORE_RELEASES_URL"  # a mirror of the releases (or a local server in tests)
SITE_RUNS_ENV = "MAKEMORE_RUNS_URL"  # replaces <site>/runs/ (the site's bundle)
RECORD = Path(__file__).with_name("releases.json")
PACKAGE = "makemore-book"
# The torch of a fresh Python without one (the install cell): the build's, CPU-only.
TORCH = "2.13.0+cpu"
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"


class ReleaseError(RuntimeError):
    """The record and the code disagree; the message says what to do."""


def training_fingerprint() -> str:
    """What a version's runs were trained by: :data:`makemore.TRAINING_MODULES`' hash."""
    return fingerprint(TRAINING_MODULES)


def tag(version: str | None = None) -> str:
    """The git tag (and GitHub release) of ``version``: ``v0.1.0``."""
    return f"v{version or __version__}"


def release_url(version: str | None = None) -> str:
    """The folder of ``version``'s release assets (``$MAKEMORE_RELEASES_URL`` replaces
    ``https://github.com/<repo>/releases/download/``)."""
    base = env.text(RELEASES_ENV) or RELEASES_URL
    return base.rstrip("/") + "/" + tag(version) + "/"


def site_runs_url(fp: str | None = None) -> str:
    """The site's bundle of training code ``fp``: main's latest build only."""
    base = env.text(SITE_RUNS_ENV) or SITE + "runs/"
    return base.rstrip("/") + "/" + (fp or training_fingerprint()) + "/"


def wheel_name(version: str | None = None) -> str:
    return f"{PACKAGE.replace('-', '_')}-{version or __version__}-py3-none-any.whl"


def recorded(path: Path | None = None) -> dict[str, str]:
    """Released (or about to be released) versions -> their training fingerprints."""
    path = path or RECORD
    return json.loads(path.read_text()) if path.exists() else {}


def bundle_urls(version: str | None = None, fp: str | None = None) -> list[str]:
    """Where ``fetch-runs`` looks, in order: the release of the installed version when
    this code is what that version released, then the site's bundle of this code."""
    version, fp = version or __version__, fp or training_fingerprint()
    urls = [release_url(version)] if recorded().get(version) == fp else []
    return urls + [site_runs_url(fp)]


def check(version: str | None = None, fp: str | None = None, path: Path | None = None) -> None:
    """Raise :class:`ReleaseError` unless ``version`` is recorded with fingerprint ``fp``."""
    version, fp, path = version or __version__, fp or training_fingerprint(), path or RECORD
    known = recorded(path).get(version)
    where = "code/makemore/__init__.py"
    if known is None:
        raise ReleaseError(
            f"version {version} is not in {path.name}: a version is published with the "
            f"training fingerprint recorded there. Record it: `python -m makemore.runs.release "
            f"record` (and commit {path.name})")
    if known != fp:
        raise ReleaseError(
            f"the training code changed under version {version}: {path.name} records "
            f"fingerprint {known}, this code has {fp}. Runs of {tag(version)} are published "
            f"for good, so changed training code is a new version: bump __version__ in "
            f"{where}, then `python -m makemore.runs.release record` and commit both. "
            f"(Only if {tag(version)} was never released: `record --replace`.)")


def record(version: str | None = None, fp: str | None = None, replace: bool = False,
           path: Path | None = None) -> dict[str, str]:
    """Add ``version``'s fingerprint to the record (atomically); refuse to change one."""
    version, fp, path = version or __version__, fp or training_fingerprint(), path or RECORD
    data = recorded(path)
    if data.get(version, fp) != fp and not replace:
        raise ReleaseError(f"{version} is recorded with fingerprint {data[version]}; a "
                           f"released version's runs do not change: bump the version "
                           f"(code/makemore/__init__.py), or `record --replace` if "
                           f"{tag(version)} was never released")
    data[version] = fp
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(json.dumps(dict(sorted(data.items())), indent=2) + "\n")
    os.replace(tmp, path)
    return data


def install_cell(version: str | None = None) -> str:
    """The first code cell of every launch notebook: installs exactly ``version``'s
    wheel from its release where another (or no) version is installed, keeping the torch
    that is there; does nothing on Binder and in a clone (the package is installed)."""
    version = version or __version__
    return f'''\
# The book's package, version {version}: on Colab or a fresh Python, this release's wheel,
# next to the torch that is there. Binder and a clone of the book have it: nothing to do.
# The setup cell below then fetches this version's trained runs.
import importlib.metadata as md, os, subprocess, sys

VERSION = "{version}"
RELEASES = "{RELEASES_URL}"
try:
    installed = md.version("{PACKAGE}")
except md.PackageNotFoundError:
    installed = None
if installed != VERSION:
    release = (os.environ.get("{RELEASES_ENV}") or RELEASES).rstrip("/") + "/v" + VERSION
    try:  # keep the reader's torch (Colab's CUDA build): pin it, so pip never replaces it
        torch = ["torch==" + md.version("torch")]
    except md.PackageNotFoundError:  # none: the CPU build, not PyPI's multi-GB CUDA one
        torch = ["torch=={TORCH}", "--extra-index-url", "{TORCH_INDEX}"]
    wheel = f"{{release}}/{PACKAGE.replace('-', '_')}-{{VERSION}}-py3-none-any.whl"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", wheel, *torch],
                   check=True)'''


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m makemore.runs.release",
                                     description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("check", help="exit 1 unless this version is recorded with this code")
    p = sub.add_parser("record", help="record this version's training fingerprint")
    p.add_argument("--replace", action="store_true",
                   help="change a recorded fingerprint (only for a version never released)")
    sub.add_parser("info", help="version, tag, fingerprint and bundle URLs as JSON")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "check":
            check()
            print(f"{tag()}: training fingerprint {training_fingerprint()}, as recorded")
        elif args.cmd == "record":
            record(replace=args.replace)
            print(f"recorded {__version__} -> {training_fingerprint()} in {RECORD}")
        else:
            print(json.dumps({"version": __version__, "tag": tag(),
                              "fingerprint": training_fingerprint(),
                              "recorded": recorded().get(__version__),
                              "wheel": wheel_name(), "release": release_url(),
                              "bundles": bundle_urls()}, indent=2))
    except ReleaseError as e:
        print(f"release: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
