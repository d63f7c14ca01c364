"""One version = one package = one training fingerprint = one bundle of runs, published for
good (makemore.runs.release, tools/release.py).

- this version is recorded in releases.json with this training code: the test fails when
  the training code changes under a recorded version, and says to bump the version;
- fetch-runs looks in the installed version's release first, then the site;
- tools/release.py on a local git remote and a release folder: tags HEAD plus the launch
  notebooks, publishes every asset once, refuses files of another version, and a
  failed publication leaves no half release.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import makemore
import pytest
from makemore.runs import release
from makemore.runs.release import ReleaseError

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import release as publisher  # noqa: E402  (tools/release.py)


def test_this_version_is_recorded_with_this_training_code():
    """Fails when a training module changes under a recorded (released) version."""
    try:
        release.check()
    except ReleaseError as e:
        pytest.fail(str(e))


def test_changed_training_code_under_a_version_says_bump_it(tmp_path):
    record = tmp_path / "releases.json"
    record.write_text(json.dumps({makemore.__version__: "0123456789abcdef"}))
    with pytest.raises(ReleaseError, match=r"bump __version__ in code/makemore/__init__\.py"):
        release.check(path=record)
    with pytest.raises(ReleaseError, match="record --replace"):
        release.record(path=record)
    assert json.loads(record.read_text()) == {makemore.__version__: "0123456789abcdef"}
    release.record(replace=True, path=record)
    release.check(path=record)
    with pytest.raises(ReleaseError, match="not in releases.json"):
        release.check(version="9.9.9", path=record)


def test_the_record_is_valid_json_of_versions_and_fingerprints():
    data = json.loads(release.RECORD.read_text())
    assert data and all(isinstance(k, str) and len(v) == 16 for k, v in data.items())
    assert list(data) == sorted(data)


def test_fetch_runs_looks_in_the_installed_versions_release_first(monkeypatch):
    monkeypatch.delenv(release.RELEASES_ENV, raising=False)
    monkeypatch.delenv(release.SITE_RUNS_ENV, raising=False)
    fp, v = release.training_fingerprint(), makemore.__version__
    assert release.bundle_urls() == [
        f"https://github.com/{release.REPO}/releases/download/v{v}/",
        f"{release.SITE}runs/{fp}/"]
    # code that is not what its version released: only the site's bundle of this code
    assert release.bundle_urls(fp="0123456789abcdef") == [f"{release.SITE}runs/0123456789abcdef/"]
    monkeypatch.setenv(release.RELEASES_ENV, "http://127.0.0.1:1/rel")
    monkeypatch.setenv(release.SITE_RUNS_ENV, "http://127.0.0.1:1/site/runs/")
    assert release.bundle_urls() == [f"http://127.0.0.1:1/rel/v{v}/",
                                     f"http://127.0.0.1:1/site/runs/{fp}/"]


def test_release_info_on_the_command_line(capsys):
    assert release.main(["info"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["tag"] == f"v{makemore.__version__}" and info["recorded"] == info["fingerprint"]
    assert info["wheel"] == f"makemore_book-{makemore.__version__}-py3-none-any.whl"


# ---------------------------------------------------------------------------
# tools/release.py on a local remote


def git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A clone of a bare 'GitHub' remote, with one commit on main."""
    for who in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{who}_NAME", "t")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "t@127.0.0.1")
    origin, work = tmp_path / "origin.git", tmp_path / "work"
    git("init", "--quiet", "--bare", "-b", "main", str(origin), cwd=tmp_path)
    git("clone", "--quiet", str(origin), str(work), cwd=tmp_path)
    (work / "README.md").write_text("book\n")
    git("add", "README.md", cwd=work)
    git("commit", "--quiet", "-m", "main", cwd=work)
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)
    return work


@pytest.fixture
def files(tmp_path) -> Path:
    """What a build of this version hands to the release."""
    v, fp = makemore.__version__, release.training_fingerprint()
    f = tmp_path / "files"
    (f / "dist").mkdir(parents=True)
    (f / "dist" / release.wheel_name()).write_bytes(b"wheel")
    (f / "dist" / f"makemore_book-{v}.tar.gz").write_bytes(b"sdist")
    (f / "bundle").mkdir()
    (f / "bundle" / "manifest.json").write_text(json.dumps({"version": v, "fingerprint": fp}))
    (f / "bundle" / "runs.tar.gz").write_bytes(b"runs")
    (f / "launch" / "book").mkdir(parents=True)
    for page in ("data", "mlp"):
        (f / "launch" / "book" / f"{page}.ipynb").write_text(f'{{"page": "{page}"}}\n')
    (f / "launch" / "notebooks.zip").write_bytes(b"zip")
    (f / "makemore-part3.pdf").write_bytes(b"%PDF")
    return f


def test_publish_tags_head_with_the_notebooks_and_releases_once(repo, files, tmp_path):
    host, tag = publisher.Folder(tmp_path / "releases"), release.tag()
    head = git("rev-parse", "HEAD", cwd=repo)
    assert publisher.publish(files, host, cwd=repo, log=lambda *a: None) == "released"
    origin = tmp_path / "origin.git"
    assert git("rev-parse", f"{tag}^{{commit}}^", cwd=origin) == head, "HEAD + notebooks"
    assert git("show", f"{tag}:book/mlp.ipynb", cwd=origin) == '{"page": "mlp"}'
    assert git("status", "--porcelain", cwd=repo) == "", "work tree and index untouched"
    published = sorted(p.name for p in (tmp_path / "releases" / tag).iterdir())
    assert published == sorted(["NOTES.md", release.wheel_name(), f"makemore_book-"
                                f"{makemore.__version__}.tar.gz", "manifest.json",
                                "runs.tar.gz", "data.ipynb", "mlp.ipynb", "notebooks.zip",
                                "makemore-part3.pdf"])
    assert publisher.publish(files, host, cwd=repo, log=lambda *a: None) == "exists"


def test_a_tag_pushed_by_a_failed_run_is_released(repo, files, tmp_path):
    notebooks = sorted((files / "launch" / "book").glob("*.ipynb"))
    publisher.make_tag(release.tag(), notebooks, "origin", cwd=repo)
    msgs = []
    assert publisher.publish(files, publisher.Folder(tmp_path / "rel"), cwd=repo,
                             log=msgs.append) == "released"
    assert "already" in msgs[0]


def test_files_of_another_version_are_refused(repo, files, tmp_path):
    (files / "bundle" / "manifest.json").write_text(json.dumps({"version": "0.0.1",
                                                                "fingerprint": "x"}))
    with pytest.raises(publisher.PublishError, match="make bundle"):
        publisher.publish(files, publisher.Folder(tmp_path / "rel"), cwd=repo)
    assert not git("ls-remote", "--tags", "origin", cwd=repo), "no tag for a refused release"
    (files / "dist" / release.wheel_name()).unlink()
    with pytest.raises(publisher.PublishError, match="python -m build"):
        publisher.assets(files, makemore.__version__, release.training_fingerprint())


def test_a_release_without_the_pdf_is_refused(repo, files, tmp_path):
    (files / "makemore-part3.pdf").unlink()
    with pytest.raises(publisher.PublishError, match="make pdf"):
        publisher.publish(files, publisher.Folder(tmp_path / "rel"), cwd=repo)
    assert not git("ls-remote", "--tags", "origin", cwd=repo), "no tag for a refused release"


def test_a_failed_publication_leaves_no_half_release(tmp_path):
    host = publisher.Folder(tmp_path / "rel")
    present = tmp_path / "a.whl"
    present.write_bytes(b"x")
    with pytest.raises(FileNotFoundError):
        host.publish("v0.0.1", [present, tmp_path / "missing.tar.gz"], "notes")
    assert not host.exists("v0.0.1") and list((tmp_path / "rel").iterdir()) == []


def test_unrecorded_version_is_not_published(repo, files, tmp_path, monkeypatch):
    monkeypatch.setattr(release, "RECORD", tmp_path / "none.json")
    assert publisher.main([str(files), "--publish-dir", str(tmp_path / "rel")]) == 1
