"""The run registry and its cache: typed specs, keys, jobs, atomic writes, clear failures."""
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from makemore import TRAINING_MODULES, models, runs, train
from makemore.__main__ import main
from makemore.runs import cache as run_cache
from makemore.runs import jobs, registry
from makemore.runs.jobs import RunSpec, run_name
from makemore.train import History

PACKAGE = Path(runs.__file__).parents[1]  # code/makemore


def tiny(name: str, steps: int = 50, **kw) -> RunSpec:
    """A short copy of a registry run (the plain-loop MLP unless ``base`` says otherwise)."""
    base = kw.pop("base", "kaiming")
    return dataclasses.replace(runs.RUNS[base], name=name, steps=steps, **kw)


@pytest.fixture(scope="module")
def small(words):
    """The splits of 2,000 names: evaluating a run on them takes milliseconds."""
    from makemore.data import make_splits

    return make_splits(words[:2000])


@pytest.fixture
def cache(tmp_path, monkeypatch, small):
    """An empty run cache; runs trained in it see the small splits."""
    monkeypatch.setenv(runs.CACHE_ENV, str(tmp_path))
    monkeypatch.delenv(runs.NO_TRAIN_ENV, raising=False)
    monkeypatch.setattr(run_cache, "load_splits", lambda: small)
    return tmp_path


def register(monkeypatch, *specs):
    for s in specs:
        monkeypatch.setitem(runs.RUNS, s.name, s)


# --- the registry -------------------------------------------------------------------

def test_every_lecture_row_has_a_run():
    for key in runs.LECTURE:
        assert key.replace("_calibrated", "") in runs.RUNS
    spec = runs.RUNS[runs.DEEP_BN]
    assert (spec.builder, spec.batchnorm, spec.gain, spec.lr) == ("deep_mlp", True, 1.0, 0.1)
    assert spec.decay_step == 150_000 and spec.steps == 200_000


def test_mlp_runs_decay_at_100k_and_build_the_lecture_models():
    for init in ("original", "fix_softmax", "fix_tanh", "kaiming", "batchnorm"):
        spec = runs.RUNS[init]
        assert spec.decay_step == 100_000 and spec.init == init
        assert spec.batchnorm == (init == "batchnorm") and spec.gain is None
        got = spec.build(models.new_generator()).parameters()
        want = models.mlp(init, generator=models.new_generator()).parameters()
        assert len(got) == len(want)
        assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))


def test_run_names_and_labels_come_from_the_spec():
    for name, s in runs.RUNS.items():
        assert name == s.name == run_name(s.builder, init=s.init, batchnorm=s.batchnorm,
                                          gain=s.gain, lr=s.lr, layernorm=s.layernorm,
                                          residual=s.residual, n_layers=s.n_layers,
                                          steps=s.steps, batch_size=s.batch_size,
                                          optimizer=s.optimizer)
    assert run_name("deep_mlp", batchnorm=False, gain=5 / 3, lr=0.03) == "deep_nobn_g1.67_lr0.03"
    assert registry.BATCH_RUNS[True, 8].name == "deep_bn_g1_lr0.1_s5000_b8"
    assert registry.BATCH_RUNS[True, 8].label == "BatchNorm, gain 1, lr 0.1, batch 8"
    assert registry.BATCH_RUNS[False, 32].name == "deep_nobn_g1.67_lr0.1_s5000"
    assert runs.RUNS["deep_bn_g1.67_lr0.03"].label == "BatchNorm, gain 1.67, lr 0.03"
    adam = registry.OPTIMIZER_RUNS["adam", 3.0]
    assert adam.name == "deep_bn_g3_lr0.001_s1001_adam"
    assert adam.label == "BatchNorm, gain 3, Adam, lr 0.001"
    assert registry.OPTIMIZER_RUNS["sgd", 3.0].name == "deep_bn_g3_lr0.1_s1001"
    assert runs.RUNS["kaiming"].label == "use semi-principled Kaiming init"
    assert len(registry.grid()) == 14 and sum(s.batchnorm for s in registry.grid()) == 7


def test_inconsistent_specs_are_refused():
    with pytest.raises(ValueError, match="init only"):
        RunSpec("x", "mlp", init="kaiming", gain=2.0)
    with pytest.raises(ValueError, match="batchnorm and gain"):
        RunSpec("x", "deep_mlp", batchnorm=True)
    with pytest.raises(ValueError, match="ud_every=0"):
        RunSpec("x", "mlp", init="kaiming", trainer="plain", ud_every=100)
    with pytest.raises(ValueError, match="unknown builder"):
        RunSpec("x", "cnn")
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        RunSpec("x", "deep_mlp", batchnorm=True, gain=1.0, optimizer="rmsprop")
    with pytest.raises(ValueError, match="SGD only; train adam with trainer='plain'"):
        RunSpec("x", "deep_mlp", batchnorm=True, gain=1.0, optimizer="adam")


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_loop_run_is_train_train_with_its_optimizer(cache, monkeypatch, small, optimizer):
    """A plain run with Adam or per-step update:data ratios (the gain sweep's) stores what
    the chapter's optimizers.short_run computes, to the bit, and trains in a job of its own."""
    from makemore.analysis import optimizers

    spec = dataclasses.replace(registry.OPTIMIZER_RUNS[optimizer, 3.0], name=f"tiny_{optimizer}",
                               steps=40)
    assert spec.loop and spec.key() != dataclasses.replace(spec, optimizer="sgd"
                                                           if optimizer == "adam" else "adam").key()
    register(monkeypatch, spec)
    seen = []
    runs.train_and_save([spec], small, progress=seen.append)
    run = runs.get(spec.name)
    model, ref = optimizers.short_run(small, optimizer, spec.lr, steps=40, batchnorm=True,
                                      gain=3.0)
    assert torch.equal(run.lossi, ref.lossi) and torch.equal(run.ud, ref.ud)
    assert run.ud.shape == (40, len(model.parameters())) and run.history.trainer == "plain"
    assert all(torch.equal(a, b) for a, b in zip(run.model.parameters(), model.parameters(),
                                                 strict=True))
    assert seen[-1] == 40
    twin = dataclasses.replace(spec, name="twin", gain=1.0)
    assert len(jobs.groups([spec, twin])) == 2  # each alone: both cores stay busy
    # the late sweep reads the last steps' ratios; a run that records fewer is refused
    ratios, losses = optimizers.late_sweep([run], n=10)
    assert len(ratios) == len(losses) == 1 and ratios[0] < 0
    sparse = dataclasses.replace(run, history=dataclasses.replace(run.history, ud=run.ud[::10]))
    with pytest.raises(ValueError, match="update:data ratios at every step"):
        optimizers.late_sweep([sparse])


# --- keys ---------------------------------------------------------------------------

def test_key_depends_on_config_and_training_code(monkeypatch):
    a = runs.RUNS["kaiming"]
    assert a.key() == dataclasses.replace(a, name="other", title="x").key()
    assert a.key() != dataclasses.replace(a, lr=0.2).key()
    assert a.key() != dataclasses.replace(a, steps=1000).key()
    monkeypatch.setattr(torch, "__version__", "9.9.9")  # another torch: the same run
    before = a.key()
    assert dataclasses.replace(a).key() == before
    monkeypatch.setattr(jobs, "fingerprint", lambda files=None: "an edited trainer")
    assert a.key() != before


def _keys_of_copy(tmp_path, edit) -> dict:
    """The run keys computed by a copy of the package whose registry.py was edited."""
    copy = tmp_path / "makemore"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    src = (copy / "runs" / "registry.py").read_text()
    (copy / "runs" / "registry.py").write_text(edit(src))
    code = ("import json, makemore.runs.registry as r; "
            "print(json.dumps({n: s.key() for n, s in r.RUNS.items()}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin"},
                         check=True)
    return json.loads(out.stdout)


def test_a_title_or_a_new_run_in_the_registry_retrains_nothing(tmp_path):
    assert "runs/registry.py" not in TRAINING_MODULES
    ours = {n: s.key() for n, s in runs.RUNS.items()}

    def edit(src):
        src = src.replace('"use semi-principled Kaiming init"', '"Kaiming, retitled"')
        # a new grid entry and a changed schedule for one run
        src = src.replace("    *grid(),\n", "    *grid(),\n    deep_run(True, 2.0),\n")
        return src.replace('mlp_run("original", "original")',
                           'dataclasses.replace(mlp_run("original", "original"), lr=0.2)'
                           ).replace("from .jobs", "import dataclasses\nfrom .jobs")

    theirs = _keys_of_copy(tmp_path, edit)
    assert set(theirs) == set(ours) | {"deep_bn_g2_lr0.1"}
    changed = [n for n in ours if theirs[n] != ours[n]]
    assert changed == ["original"]  # the one whose numbers change, no other


# --- training and the cache ---------------------------------------------------------

def test_short_run_round_trips_through_the_cache(cache, monkeypatch, small):
    """Train a 100-step copy of a lecture run with the fast trainer, then load it."""
    spec = tiny("tiny_bn", steps=100, ud_every=20, base="batchnorm")
    register(monkeypatch, spec)
    assert not runs.is_cached("tiny_bn")
    runs.train_and_save([spec], small)
    run = runs.get("tiny_bn")
    assert isinstance(run.history, History) and run.history.trainer == "eager"
    assert run.lossi.shape == (100,) and run.lossi.dtype == torch.float32
    assert run.ud.shape == (5, len(run.model.parameters()))
    assert run.ud_steps.tolist() == [0, 20, 40, 60, 80]
    assert run.calibrated is not None and set(run.losses) == {"train", "val", "test"}
    # the stored model is the trained one: evaluating it again gives the stored losses
    assert train.evaluate(run.model, small)["val"] == pytest.approx(run.losses["val"], abs=1e-6)
    assert run.meta["torch"] == torch.__version__ and run.job.members == ["tiny_bn"]


def test_plain_runs_are_the_lectures_loop(cache, monkeypatch, small):
    """A "plain" run stores exactly what makemore.train.train computes."""
    spec = tiny("tiny_plain", steps=200, base="original")
    assert spec.trainer == "plain"
    register(monkeypatch, spec)
    runs.train_and_save([spec], small)
    run = runs.get("tiny_plain")
    g = models.new_generator()
    ref = train.train(models.mlp("original", generator=g), small.Xtr, small.Ytr, steps=200,
                      generator=g, progress=False)
    assert torch.equal(run.lossi, ref.lossi)
    assert run.history.trainer == run.job.trainer == "plain"


@pytest.mark.parametrize("trainer", ["plain", "fast"])
def test_a_runs_batch_size_reaches_its_trainer(cache, monkeypatch, small, trainer):
    """A run of the batch-size study draws ``batch_size`` examples per step, as
    the lecture's loop does with that batch size."""
    spec = tiny(f"tiny_b8_{trainer}", steps=60, batch_size=8, base="batchnorm",
                trainer=trainer, ud_every=0)
    register(monkeypatch, spec)
    runs.train_and_save([spec], small)
    g = models.new_generator()
    ref = train.train(models.mlp("batchnorm", generator=g), small.Xtr, small.Ytr, steps=60,
                      batch_size=8, generator=g, progress=False)
    got = runs.get(spec.name).lossi
    assert torch.allclose(got, ref.lossi, rtol=0, atol=1e-5)
    if trainer == "plain":
        assert torch.equal(got, ref.lossi)
    # another batch size is another run: its own key, never stacked with batch 32
    assert spec.key() != dataclasses.replace(spec, batch_size=32).key()
    assert len(jobs.groups([spec, dataclasses.replace(spec, name="b32", batch_size=32)])) == 2


def test_a_job_is_recorded_in_each_of_its_runs(cache, monkeypatch, small):
    a, b = tiny("tiny_a", base="batchnorm"), tiny("tiny_b", lr=0.05, base="batchnorm")
    register(monkeypatch, a, b)
    seen = []
    runs.train_and_save([a, b], small, progress=seen.append)
    ja, jb = runs.get("tiny_a").job, runs.get("tiny_b").job
    assert ja == jb and ja.members == ["tiny_a", "tiny_b"] and ja.trainer == "eager"
    assert ja.seconds >= runs.get("tiny_a").history.seconds > 0
    assert seen[-1] == 100  # model-steps of the job
    assert runs.recorded_jobs(["tiny_a", "tiny_b"]) == {ja.id: ja}


def test_groups_batch_same_architecture_only():
    names = ["original", "fix_softmax", "fix_tanh", "kaiming", "batchnorm",
             "deep_bn_g1_lr0.1", "deep_bn_g3_lr0.1", "deep_nobn_g1_lr0.1"]
    got = sorted(sorted(s.name for s in job) for job in jobs.groups([runs.RUNS[n] for n in names]))
    # the loss-log rows without BatchNorm use the plain loop, stacked in one job
    assert got == sorted([["fix_softmax", "fix_tanh", "kaiming", "original"],
                          ["batchnorm"], ["deep_bn_g1_lr0.1", "deep_bn_g3_lr0.1"],
                          ["deep_nobn_g1_lr0.1"]])


def test_groups_stack_plain_runs_only_with_one_learning_rate():
    import dataclasses

    a = runs.RUNS["kaiming"]
    b = dataclasses.replace(runs.RUNS["original"], lr=0.2)
    assert [len(j) for j in jobs.groups([a, b])] == [1, 1]
    assert [len(j) for j in jobs.groups([a, dataclasses.replace(b, lr=0.1)])] == [2]


def test_save_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "x.pt"

    real_write = os.write

    def boom(fd, data):
        real_write(fd, bytes(data[:4]))
        raise KeyboardInterrupt  # Ctrl-C (or SIGTERM, turned into it) in the middle

    monkeypatch.setattr(os, "write", boom)
    with pytest.raises(KeyboardInterrupt):
        runs.save({"a": 1}, target)
    assert list(tmp_path.iterdir()) == []  # neither the target nor a .part file


def test_cli_list_shows_each_run_with_its_label_and_whether_it_is_cached(cache, monkeypatch,
                                                                         capsys):
    spec = tiny("kaiming")  # a short kaiming: cached once trained
    register(monkeypatch, spec)
    runs.train_and_save([spec])
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(runs.RUNS)
    assert lines[3] == "cached   kaiming                  use semi-principled Kaiming init"
    # in the registry's order, whatever runs come after the grid
    assert lines[list(runs.RUNS).index("deep_bn_g1.67_lr1")] == \
        "missing  deep_bn_g1.67_lr1        BatchNorm, gain 1.67, lr 1"


def test_the_lock_clears_what_a_killed_writer_left(cache):
    left = cache / ".kaiming-0123.pt.x1y2.part"  # a SIGKILL in the middle of runs.save
    left.write_bytes(b"half")
    keep = cache / "kaiming-0123.pt"
    keep.write_bytes(b"a run")
    with runs.cache_lock():
        assert not left.exists() and keep.exists()


# --- failures -----------------------------------------------------------------------

def test_unknown_run_is_a_clear_error():
    with pytest.raises(runs.UnknownRunError, match="the book's runs are: original, "):
        runs.get("no-such-run")


def test_cli_unknown_run_lists_the_runs_and_exits_2(capsys):
    assert main(["pretrain", "nosuchrun", "original"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown run nosuchrun; the book's runs are: original,")
    assert "Traceback" not in err and runs.DEEP_BN in err


def test_no_train_env_refuses_to_train(cache, monkeypatch):
    monkeypatch.setenv(runs.NO_TRAIN_ENV, "1")
    with pytest.raises(runs.RunCacheError, match="pretrain original"):
        runs.get("original")
    assert list(cache.iterdir()) == []


def test_a_truncated_run_file_is_named_and_retrained(cache, monkeypatch, capsys):
    spec = tiny("tiny_cut")
    register(monkeypatch, spec)
    runs.train_and_save([spec])
    path = runs.path_of(spec)
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    monkeypatch.setenv(runs.NO_TRAIN_ENV, "1")
    with pytest.raises(runs.RunCacheError) as e:
        runs.get("tiny_cut")
    assert str(path) in str(e.value) and "pretrain tiny_cut" in str(e.value)
    assert "truncated or corrupt" in str(e.value)
    monkeypatch.delenv(runs.NO_TRAIN_ENV)
    run = runs.get("tiny_cut")  # training allowed: retrained, with a notice
    assert f"{path} cannot be read" in capsys.readouterr().err
    assert run.lossi.shape == (50,) and torch.load(path, weights_only=True)


def test_the_fast_suite_trains_eagerly():
    """conftest sets MAKEMORE_COMPILE=0 outside slow tests: no torch.compile (tens of s)."""
    from makemore.engine import fast

    assert not fast._want_compile(None)


def test_get_reads_a_file_once_and_every_caller_gets_its_own_run(tmp_path, monkeypatch):
    """A page or a static explorer asks for one run many times: the file is read once
    per version, yet one caller's eval() or in-place edit never reaches another."""
    import makemore.runs as runs_mod

    spec = runs_mod.RUNS["kaiming"]
    monkeypatch.setenv("MAKEMORE_CACHE", str(tmp_path))
    model = spec.build(models.new_generator(spec.seed))
    history = History(lossi=torch.zeros(4), ud=torch.zeros(0, 5), ud_steps=torch.zeros(0),
                      trainer="plain", seconds=1.0)
    blob = {"name": spec.name, "key": spec.key(), "spec": spec.config(),
            "state": model.state_dict(), "history": dataclasses.asdict(history),
            "losses": {"train": 2.0, "val": 2.1}, "calibrated": None,
            "meta": {"job": {"id": "j", "members": ["kaiming"], "seconds": 1.0,
                             "trainer": "plain"}}}
    path = runs_mod.path_of(spec)
    runs_mod.save(blob, path)
    reads = []
    real = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **kw: reads.append(a[0]) or real(*a, **kw))
    a, b = runs_mod.get("kaiming"), runs_mod.get("kaiming")
    assert len(reads) == 1
    a.model.eval()
    a.lossi.add_(1)
    a.losses["val"] = 9.0
    assert b.model.training and b.lossi.sum() == 0 and b.losses["val"] == 2.1
    assert runs_mod.get("kaiming").lossi.sum() == 0
    blob["losses"]["val"] = 2.5  # a new version of the file is read again
    runs_mod.save(blob, path)
    os.utime(path, ns=(1, 1))
    assert runs_mod.get("kaiming").losses["val"] == 2.5 and len(reads) == 2
