"""Publish this version of the book, once: the tag ``v<version>`` and its release.

The publishing workflow runs this on main after the reproduction check passed (job
``release`` of ``.github/workflows/book.yml``), so that no release depends on a tag made
by hand. It does nothing when the version's release exists; otherwise:

1. checks that ``code/makemore/runs/releases.json`` records this version with this
   training fingerprint, and that the files to publish are this version's (the wheel's
   name, the bundle manifest's version and fingerprint, one notebook per chapter);
2. makes the tag: main's commit plus the launch notebooks in ``book/`` (a build product,
   not on main; Colab and Binder open them from the tag), pushed to the remote -- or
   uses the tag if a failed run already pushed it;
3. creates the release with its assets: wheel, sdist, ``manifest.json``,
   ``runs.tar.gz``, every launch notebook, ``notebooks.zip``, and the book's PDF.

    python tools/release.py FILES --github           # gh release create (the workflow)
    python tools/release.py FILES --publish-dir DIR  # DIR/v<version>/ (tests, a mirror)

FILES is a folder: ``dist/`` (wheel + sdist), ``bundle/`` (manifest.json, runs.tar.gz),
``launch/`` (``book/*.ipynb``, ``notebooks.zip``), ``makemore-part3.pdf`` (``make pdf``).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PDF = "makemore-part3.pdf"
BOT = ("github-actions[bot]", "41898282+github-actions[bot]@users.noreply.github.com")


class PublishError(RuntimeError):
    pass


def git(*args: str, env: dict | None = None, cwd: Path = REPO) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, text=True,
                          capture_output=True).stdout.strip()


def assets(files: Path, version: str, fp: str) -> list[Path]:
    """The files of the release, checked to be this version's."""
    from makemore.runs import release

    dist = files / "dist"
    wheel = dist / release.wheel_name(version)
    sdists = sorted(dist.glob(f"makemore_book-{version}.tar.gz"))
    if not wheel.exists() or not sdists:
        raise PublishError(f"{dist} has no {wheel.name} and sdist of {version}: build them "
                           f"with `python -m build --outdir {dist}`")
    manifest = json.loads((files / "bundle" / "manifest.json").read_text())
    if (manifest.get("version"), manifest.get("fingerprint")) != (version, fp):
        raise PublishError(f"the bundle is of version {manifest.get('version')}, training "
                           f"fingerprint {manifest.get('fingerprint')}; this is {version}, "
                           f"{fp}: pack this build's runs (make bundle)")
    notebooks = sorted((files / "launch" / "book").glob("*.ipynb"))
    if not notebooks:
        raise PublishError(f"no launch notebooks in {files / 'launch' / 'book'}: the book "
                           f"build writes them (book/_ext/launch_notebooks.py)")
    out = [wheel, *sdists, files / "bundle" / "manifest.json", files / "bundle" / "runs.tar.gz",
           *notebooks, files / "launch" / "notebooks.zip"]
    pdf = files / PDF
    if not pdf.is_file():
        raise PublishError(f"no {pdf}: the release carries the book as one PDF; make it "
                           f"with `make pdf` (_build/pdf/{PDF})")
    return out + [pdf]


def make_tag(tag: str, notebooks: list[Path], remote: str, cwd: Path = REPO) -> str:
    """Push ``tag``: HEAD plus ``book/<name>.ipynb`` for each notebook, without touching
    the work tree or the index (a temporary index). Returns the tagged commit."""
    env = dict(os.environ)
    for who in ("AUTHOR", "COMMITTER"):
        env.setdefault(f"GIT_{who}_NAME", BOT[0])
        env.setdefault(f"GIT_{who}_EMAIL", BOT[1])
    with tempfile.TemporaryDirectory() as tmp:
        env["GIT_INDEX_FILE"] = str(Path(tmp) / "index")
        git("read-tree", "HEAD", env=env, cwd=cwd)
        for nb in notebooks:
            blob = git("hash-object", "-w", str(nb), env=env, cwd=cwd)
            git("update-index", "--add", "--cacheinfo", f"100644,{blob},book/{nb.name}",
                env=env, cwd=cwd)
        tree = git("write-tree", env=env, cwd=cwd)
    head = git("rev-parse", "HEAD", cwd=cwd)
    commit = git("commit-tree", tree, "-p", head, "-m",
                 f"Release {tag}: the launch notebooks of this commit's book\n\n"
                 f"Made by tools/release.py: the commit {head} of main, plus book/*.ipynb "
                 f"as its build wrote them.", env=env, cwd=cwd)
    git("tag", "-a", tag, commit, "-m", f"makemore, part 3 {tag}", env=env, cwd=cwd)
    git("push", remote, f"refs/tags/{tag}", cwd=cwd)
    return commit


def remote_has_tag(remote: str, tag: str, cwd: Path = REPO) -> bool:
    return bool(git("ls-remote", "--tags", remote, f"refs/tags/{tag}", cwd=cwd))


class GitHub:
    """Releases through the gh CLI (preinstalled on GitHub's runners; GH_TOKEN)."""

    def exists(self, tag: str) -> bool:
        return subprocess.run(["gh", "release", "view", tag], capture_output=True).returncode == 0

    def publish(self, tag: str, files: list[Path], notes: str) -> None:
        subprocess.run(["gh", "release", "create", tag, "--verify-tag", "--title",
                        f"makemore, part 3 {tag}", "--notes", notes, *map(str, files)],
                       check=True)


class Folder:
    """Releases as folders ``DIR/<tag>/`` (served as ``releases/download/<tag>/``):
    the tests' stand-in for GitHub, or a mirror. A release appears whole or not at all."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def exists(self, tag: str) -> bool:
        return (self.root / tag).is_dir()

    def publish(self, tag: str, files: list[Path], notes: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=f".{tag}."))
        try:
            for f in files:
                shutil.copyfile(f, tmp / f.name)
            (tmp / "NOTES.md").write_text(notes)
            os.rename(tmp, self.root / tag)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def publish(files: Path, host, remote: str = "origin", cwd: Path = REPO, log=print) -> str:
    """Release this version if it is not released yet; returns what happened."""
    from makemore import __version__
    from makemore.runs import release

    release.check()  # ReleaseError: recorded with other training code, or not recorded
    tag, fp = release.tag(), release.training_fingerprint()
    if host.exists(tag):
        log(f"{tag} is released already: nothing to do")
        return "exists"
    files = Path(files)
    upload = assets(files, __version__, fp)
    notebooks = [p for p in upload if p.suffix == ".ipynb"]
    if remote_has_tag(remote, tag, cwd):
        log(f"{tag}: the tag is on {remote} already (an earlier run stopped before the "
            f"release); releasing it")
    else:
        commit = make_tag(tag, notebooks, remote, cwd)
        log(f"{tag}: tagged {commit[:12]} (HEAD + {len(notebooks)} launch notebooks), pushed")
    notes = (f"makemore, part 3, version {__version__}: the package (wheel, sdist), the trained "
             f"runs of training fingerprint {fp} (`python -m makemore fetch-runs` finds them), "
             f"and every chapter as a notebook.")
    host.publish(tag, upload, notes)
    log(f"{tag}: released with {len(upload)} files")
    return "released"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", type=Path, metavar="FILES")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--github", action="store_true", help="gh release create")
    where.add_argument("--publish-dir", type=Path, metavar="DIR", help="DIR/v<version>/")
    parser.add_argument("--remote", default="origin")
    args = parser.parse_args(argv)
    from makemore.runs.release import ReleaseError

    try:
        publish(args.files, GitHub() if args.github else Folder(args.publish_dir), args.remote)
    except (ReleaseError, PublishError) as e:
        print(f"release: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
