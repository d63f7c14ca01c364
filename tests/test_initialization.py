"""makemore.analysis.initialization: the first minibatch as training draws it, the numbers the
chapters quote about it, and a run next to its row of the lecture's loss log."""
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from makemore import models, runs, train
from makemore.analysis import initialization as init
from makemore.show import lecture


@pytest.fixture(scope="module")
def small():
    g = torch.Generator().manual_seed(0)
    X = torch.randint(0, 27, (500, 3), generator=g)
    Y = torch.randint(0, 27, (500,), generator=g)
    return SimpleNamespace(Xtr=X, Ytr=Y)


def test_uniform_loss_is_ln_n():
    assert init.uniform_loss(27) == pytest.approx(math.log(27))
    assert init.uniform_loss(4) == pytest.approx(math.log(4))


def test_random_logits_loss_is_ln_n_for_tiny_logits_and_grows_with_their_scale():
    assert init.random_logits_loss(1e-3, 27) == pytest.approx(math.log(27), abs=1e-3)
    small, large = init.random_logits_loss(1.0, 27), init.random_logits_loss(10.0, 27)
    assert math.log(27) < small < large
    assert init.random_logits_loss(3.0, 27, seed=1) != init.random_logits_loss(3.0, 27, seed=2)


def test_toy_rows_give_the_softmax_and_the_loss_of_the_target():
    rows = init.toy_rows({"equal": [0.0] * 4, "right": [0.0, 0.0, 5.0, 0.0]}, target=2)
    assert rows[0] == ["equal: [0.0, 0.0, 0.0, 0.0]", pytest.approx(0.25),
                       pytest.approx(math.log(4))]
    assert rows[1][1] > 0.9 and rows[1][2] == pytest.approx(-math.log(rows[1][1]), rel=1e-5)
    assert len(rows[0]) == len(init.TOY_HEADER)


def test_logit_summary():
    logits = torch.tensor([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0]])
    targets = torch.tensor([0, 1])
    s = init.logit_summary(logits, targets)
    assert s["loss"] == pytest.approx(F.cross_entropy(logits, targets).item())
    assert s["ratio"] == pytest.approx(s["loss"] / math.log(3))
    assert s["logit-range"] == pytest.approx(5.0)  # (0 + 10) / 2
    assert s["pmax"] == pytest.approx((1 / 3 + F.softmax(logits[1], 0)[0].item()) / 2)
    assert s["pcorrect"] == pytest.approx(F.softmax(logits[1], 0)[1].item())  # the lower


def test_video_step0_checks_the_two_decimals():
    out = lecture.video_step0(27.881, 3.322)
    assert [m.data for m in out.values()] == ["27.88", "3.32"]
    with pytest.raises(ValueError, match="loss0-fixed: 3.40, the video 3.32"):
        lecture.video_step0(27.881, 3.4)


def test_mean_loss_undoes_the_log10():
    lossi = torch.log10(torch.tensor([1.0, 2.0, 3.0, 6.0]))
    assert init.mean_loss(lossi) == pytest.approx(3.0)
    assert init.mean_loss(lossi, 1, 3) == pytest.approx(2.5)
    assert init.mean_loss(lossi, -1) == pytest.approx(6.0)
    with pytest.raises(ValueError, match="no steps"):
        init.mean_loss(lossi, 4)


def test_param_counts_by_the_lecture_names():
    counts = init.param_counts(models.mlp("original"))
    assert counts == {"C": 270, "W1": 6000, "b1": 200, "W2": 5400, "b2": 27}
    with pytest.raises(ValueError, match="MLP"):
        init.param_counts(models.deep_mlp())


def test_zeroed_zeroes_only_the_named_parameters_and_keeps_the_stream():
    model, g = init.zeroed({"W2", "b2"})
    named = dict(zip(init.MLP_PARAMS, model.parameters(), strict=True))
    assert named["W2"].abs().max() == 0 and named["b2"].abs().max() == 0
    assert named["W1"].abs().max() > 0
    g2 = models.new_generator()
    models.mlp("fix_softmax", generator=g2)
    assert torch.equal(torch.rand(3, generator=g), torch.rand(3, generator=g2))
    with pytest.raises(ValueError, match="unknown parameters"):
        init.zeroed({"W3"})


def test_first_step_is_the_training_loops_first_step(small):
    step = init.first_step("fix_softmax", small)
    g = models.new_generator()
    model = models.mlp("fix_softmax", generator=g)
    hist = train.train(model, small.Xtr, small.Ytr, steps=1, generator=g)
    assert 10 ** hist.lossi[0].item() == pytest.approx(step.loss, rel=1e-5)
    assert step.hpreact.shape == step.h.shape == (32, 200)
    assert torch.allclose(step.h, torch.tanh(step.hpreact))
    assert step.w1_grad is not None and step.w1_grad.abs().sum() > 0
    assert step.logits.shape == (32, 27)


def test_first_step_runs_a_given_model_on_the_same_batch_without_gradients(small):
    a = init.first_step("fix_tanh", small)
    other = models.mlp("fix_tanh")  # the same weights, built with the default generator
    b = init.first_step("fix_tanh", small, model=other, backward=False)
    assert b.model is other and torch.equal(a.X, b.X)
    assert b.loss == pytest.approx(a.loss)
    assert other.layers[2].weight.grad is None


def test_hidden_summary_and_dead_neurons(small):
    bad, ok = init.first_step("fix_softmax", small), init.first_step("fix_tanh", small)
    s_bad, s_ok = init.hidden_summary(bad), init.hidden_summary(ok)
    assert s_bad["hpre-std"] > 3 * s_ok["hpre-std"]
    assert s_bad["frac"] > s_ok["frac"] and s_bad["survival"] < s_ok["survival"]
    assert s_bad["hpre-max"] >= s_bad["hpre-std"]
    dead = init.dead_neuron_summary(bad, small.Xtr)
    assert dead["min-rate"] <= dead["median-rate"] <= dead["max-rate"] <= 100
    assert dead["batch"] >= dead["examples"]  # more examples: fewer neurons saturated on all
    assert bad.model.training  # put back in training mode
    with torch.no_grad():  # a neuron pushed far out is saturated on every example: dead
        bad.model.layers[2].bias[0] = 1e4
    assert init.dead_neuron_summary(bad, small.Xtr)["examples"] >= 1


@pytest.fixture
def fake_runs(monkeypatch):
    got = {"a": SimpleNamespace(losses={"train": 2.00004, "val": 2.2}),
           "b": SimpleNamespace(losses={"train": 2.1, "val": 2.3})}
    monkeypatch.setattr(runs, "get", lambda name: got[name])
    monkeypatch.setitem(runs.LECTURE, "a", (2.0, 2.25))
    monkeypatch.setitem(runs.LECTURE, "b", (2.1, 2.3))
    monkeypatch.setitem(runs.RUNS, "a", SimpleNamespace(title="run a"))
    return got


def test_vs_lecture_gives_the_numbers_and_deltas_as_shown(fake_runs):
    d = init.vs_lecture("a", before="b")
    assert d["train"] == 2.00004 and d["train-lecture"] == 2.0
    assert d["train-delta"] == 0.0 and str(d["train-delta"]) == "0.0"  # rounded, no -0.0
    assert d["val-delta"] == pytest.approx(-0.05)
    assert d["val-gain"] == pytest.approx(0.1) and d["train-before"] == 2.1
    assert "train-before" not in init.vs_lecture("a")
    with pytest.raises(KeyError, match="not a row of the lecture's loss log"):
        init.vs_lecture("nosuchrun")


def test_lecture_table_shows_the_lecture_as_logged(fake_runs):
    (row,) = init.lecture_rows(["a"])
    assert row == ["run a", 2.00004, 2.2, "2.0", "2.25", "+0.0000", "-0.0500"]
    lines = init.lecture_table(["a"]).data.splitlines()
    assert len(lines) == 3 and "run a" in lines[2] and "2.0000" in lines[2]
