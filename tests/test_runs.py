"""The run registry and its cache: keys, atomic writes, no silent retraining."""
import dataclasses

import pytest
import torch

from makemore import runs


def test_every_lecture_row_has_a_run():
    for key in runs.LECTURE:
        assert key.replace("_calibrated", "") in runs.RUNS
    assert runs.DEEP_BN in runs.RUNS
    spec = runs.RUNS[runs.DEEP_BN]
    assert dict(spec.kwargs) == {"batchnorm": True, "gain": 1.0}
    assert spec.decay_step == 150_000 and spec.steps == 200_000


def test_mlp_runs_decay_at_100k_and_build_the_lecture_models():
    for name in ("original", "fix_softmax", "fix_tanh", "kaiming", "batchnorm"):
        assert runs.RUNS[name].decay_step == 100_000
        assert runs.RUNS[name].build() is not None


def test_key_depends_on_config_and_training_code(monkeypatch):
    a = runs.RUNS["kaiming"]
    assert a.key() == dataclasses.replace(a, name="other", title="x").key()
    assert a.key() != dataclasses.replace(a, lr=0.2).key()
    assert a.key() != dataclasses.replace(a, steps=1000).key()
    before = a.key()
    monkeypatch.setattr(runs, "fingerprint", lambda files=None: "an edited trainer")
    assert a.key() != before


def test_unknown_run_is_a_clear_error():
    with pytest.raises(KeyError, match="the book's runs are"):
        runs.get("no-such-run")


def test_no_train_env_refuses_to_train(tmp_path, monkeypatch):
    monkeypatch.setenv(runs.CACHE_ENV, str(tmp_path))
    monkeypatch.setenv(runs.NO_TRAIN_ENV, "1")
    with pytest.raises(RuntimeError, match="pretrain original"):
        runs.get("original")
    assert list(tmp_path.iterdir()) == []


def test_save_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "x.pt"

    def boom(obj, f):
        with open(f, "wb") as fh:
            fh.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        runs._save({"a": 1}, target)
    assert list(tmp_path.iterdir()) == []  # neither the target nor a .part file


def test_short_run_round_trips_through_the_cache(tmp_path, monkeypatch, splits):
    """Train a 300-step copy of a lecture run with the package's trainer, then load it."""
    monkeypatch.setenv(runs.CACHE_ENV, str(tmp_path))
    spec = dataclasses.replace(runs.RUNS["batchnorm"], name="tiny_bn", steps=300, ud_every=50)
    monkeypatch.setitem(runs.RUNS, "tiny_bn", spec)
    assert not runs.is_cached("tiny_bn")
    runs.train_group([spec], splits)
    assert runs.is_cached("tiny_bn")
    run = runs.get("tiny_bn")
    assert run.lossi.shape == (300,) and torch.isfinite(run.lossi).all()
    assert run.ud.shape == (6, len(run.model.parameters()))
    assert run.calibrated is not None and set(run.losses) == {"train", "val", "test"}
    # the stored model is the trained one: evaluating it again gives the stored losses
    from makemore.train import evaluate

    assert evaluate(run.model, splits)["val"] == pytest.approx(run.losses["val"], abs=1e-6)
    assert run.meta["trainer"] in ("compiled", "eager")


def test_groups_batch_same_architecture_only():
    jobs = runs.groups(["original", "fix_softmax", "fix_tanh", "kaiming", "batchnorm",
                        "deep_bn_g1_lr0.1", "deep_bn_g3_lr0.1", "deep_nobn_g1_lr0.1"])
    names = sorted(sorted(s.name for s in job) for job in jobs)
    # the loss-log rows without BatchNorm use the plain loop: one job each
    assert names == sorted([["fix_softmax"], ["fix_tanh"], ["kaiming"], ["original"],
                            ["batchnorm"], ["deep_bn_g1_lr0.1", "deep_bn_g3_lr0.1"],
                            ["deep_nobn_g1_lr0.1"]])


def test_plain_runs_are_the_lectures_loop(tmp_path, monkeypatch, splits):
    """A "plain" run stores exactly what makemore.train.train computes."""
    from makemore import models, train

    monkeypatch.setenv(runs.CACHE_ENV, str(tmp_path))
    spec = dataclasses.replace(runs.RUNS["original"], name="tiny_plain", steps=200)
    assert spec.trainer == "plain"
    monkeypatch.setitem(runs.RUNS, "tiny_plain", spec)
    runs.train_group([spec], splits)
    run = runs.get("tiny_plain")
    g = models.new_generator()
    ref = train.train(models.mlp("original", generator=g), splits.Xtr, splits.Ytr, steps=200,
                      generator=g, progress=False)
    assert run.lossi.tolist() == torch.tensor(ref.lossi).tolist()
    assert run.meta["trainer"] == "plain"
