"""The chapter "Beyond BatchNorm"'s analysis and figures: BatchNorm's inference pitfalls
and LayerNorm's lack of them (makemore.analysis.normalization), the depth study
(makemore.analysis.depth), SGD against Adam (makemore.analysis.optimizers), and the
figures of makemore.show.beyond_plots; their runs in the registry."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from makemore import models, nn, train
from makemore.analysis import depth, normalization, optimizers, stats
from makemore.runs import registry
from makemore.runs.jobs import RunSpec, run_name
from makemore.show import beyond_plots, panels


@pytest.fixture(scope="module")
def small(words):
    """The splits of 2,000 names: a pass over them takes milliseconds."""
    from makemore.data import make_splits

    return make_splits(words[:2000])


def trained(small, steps=30, **kw):
    """A deep net after a few steps of the lecture's loop (running statistics moved)."""
    g = models.new_generator()
    model = models.deep_mlp(generator=g, **kw)
    train.train(model, small.Xtr, small.Ytr, steps, generator=g, progress=False)
    return model


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --- normalization -------------------------------------------------------------------

def test_layernorm_parity_is_float64_rounding():
    assert max(normalization.layernorm_parity().values()) < 1e-12


def test_train_mode_pass_moves_the_running_mean_and_is_undone(small):
    model = trained(small, batchnorm=True, gain=1.0)
    state = model.state_dict()
    drift = normalization.train_mode_drift(model, small)
    assert drift["shift"] > drift["shift-mean"] > 0
    assert drift["val-before"] != drift["val-after"]
    assert drift["val-before"] == pytest.approx(train.split_loss(model, small.Xdev, small.Ydev))
    assert same_state(model.state_dict(), state) and model.training


def test_train_mode_loss_normalizes_each_batch_by_itself(small):
    model = trained(small, batchnorm=True, gain=1.0)
    state = model.state_dict()
    X, Y = small.Xdev[:70], small.Ydev[:70]  # batches of 32, 32 and 6
    got = normalization.train_mode_loss(model, X, Y, 32)
    model.train()
    with torch.no_grad():
        want = sum(torch.nn.functional.cross_entropy(model(x), y, reduction="sum").item()
                   for x, y in zip(X.split(32), Y.split(32), strict=False)) / 70
    assert got == pytest.approx(want, rel=1e-6)
    model.load_state_dict(state)
    # a LayerNorm network computes the same in both modes
    ln = trained(small, batchnorm=False, layernorm=True, gain=1.0)
    assert normalization.train_mode_loss(ln, X, Y, 32) == pytest.approx(
        train.split_loss(ln, X, Y), rel=1e-6)


def test_momentum_estimates_converge_faster_with_a_larger_momentum(small):
    model = trained(small, batchnorm=True, gain=1.0)
    state, momenta = model.state_dict(), [bn.momentum for bn in normalization.batchnorms(model)]
    rows, val_cal = normalization.momentum_estimates(model, small, (0.1, 0.001), steps=50)
    assert rows[0.1]["error"] < rows[0.001]["error"]
    assert rows[0.1]["gap"] == pytest.approx(rows[0.1]["val"] - val_cal)
    assert same_state(model.state_dict(), state)
    assert [bn.momentum for bn in normalization.batchnorms(model)] == momenta
    cal = normalization.restored  # the calibrated loss is train.calibrate's
    with cal(model):
        train.calibrate(model, small.Xtr)
        assert val_cal == pytest.approx(train.split_loss(model, small.Xdev, small.Ydev))


def test_batchnorm_folds_and_layernorm_does_not(small):
    bn = trained(small, batchnorm=True, gain=1.0)
    ln = trained(small, batchnorm=False, layernorm=True, gain=1.0)
    fit_bn = normalization.affine_fit(bn, 3, small.Xdev)
    fit_ln = normalization.affine_fit(ln, 3, small.Xdev)
    assert fit_bn["rel-error"] < 1e-5 and fit_ln["rel-error"] > 1e-2
    assert 0 < fit_ln["div-min"] < fit_ln["div-max"]
    with pytest.raises(ValueError, match="not a Linear"):
        normalization.affine_fit(ln, 4, small.Xdev)


def test_mode_and_alone_gaps(small):
    bn = trained(small, batchnorm=True, gain=1.0)
    ln = trained(small, batchnorm=False, layernorm=True, gain=1.0)
    x = small.Xdev[:16]
    state = bn.state_dict()
    # the same ops in both modes; alone, only the matrix products' rounding differs
    assert normalization.mode_gap(ln, x) == 0 and normalization.alone_gap(ln, x) < 1e-5
    assert normalization.mode_gap(bn, x) > 0
    assert math.isnan(normalization.alone_gap(bn, x))  # unbiased variance of one: 0/0
    assert same_state(bn.state_dict(), state)


# --- optimizers ----------------------------------------------------------------------

def test_slope_of_a_power_law():
    gains = (0.5, 1.0, 4.0)
    assert optimizers.slope(gains, [-2 * math.log10(g) + 1 for g in gains]) == pytest.approx(-2)


def test_sgd_ratio_falls_with_the_gain_squared_adam_with_the_gain(small):
    """One step of the BatchNorm net: SGD's hidden ratio falls as 1/gain**2, Adam's as
    1/gain (its first step is lr * sign(grad), the data grow with the gain)."""
    gains = (0.5, 2.0)
    sgd = optimizers.first_step_ud(small, gains, "sgd", 0.1, batchnorm=True)
    adam = optimizers.first_step_ud(small, gains, "adam", 1e-3, batchnorm=True)
    assert optimizers.slope(gains, sgd) == pytest.approx(-2, abs=0.05)
    assert optimizers.slope(gains, adam) == pytest.approx(-1, abs=0.05)


def test_short_run_records_every_step(small):
    model, hist = optimizers.short_run(small, "adam", 1e-3, steps=3, batchnorm=False,
                                       layernorm=True, gain=1.0)
    assert hist.ud.shape == (3, len(model.parameters()))
    u = stats.update_ratios(hist.ud, model.parameters())[0]
    assert optimizers.hidden_ud(u).shape == (3,)
    assert stats.backward_stats(model)  # the last step's gradients were kept


# --- depth ---------------------------------------------------------------------------

def test_depth_runs_cover_every_depth_and_wiring():
    keys = {(s.n_layers, depth.wiring(s)) for s in registry.DEPTH_RUNS}
    assert keys == {(n, w) for n in registry.DEPTHS for w in depth.WIRINGS}
    for s in registry.DEPTH_RUNS:
        assert s.steps == registry.SHORT_STEPS and s.trainer == "plain" and not s.batchnorm
        assert s.name in registry.RUNS
        blocks = [la for la in s.build().layers if isinstance(la, nn.Residual)]
        assert len(blocks) == (s.n_layers - 2 if s.residual else 0)


def fake_look(small, n_layers, **kw):
    spec = dataclasses.replace(registry.DEPTH_RUNS[0], n_layers=n_layers, **kw)
    g = models.new_generator()
    init = stats.diagnose(spec.build(g), small.Xtr, small.Ytr, generator=g, kind=depth.STREAM)
    model = trained(small, steps=5, batchnorm=False, n_layers=n_layers, **kw)
    after = stats.diagnose(model, small.Xtr, small.Ytr, kind=depth.STREAM,
                           generator=torch.Generator().manual_seed(1))
    return depth.DepthLook(spec, init, after, 3.1, 3.2)


def test_depth_numbers_and_table(small):
    looks = {}
    for kw in (dict(), dict(residual=True), dict(layernorm=True, residual=True)):
        lk = fake_look(small, 5, **kw)
        looks[lk.key] = lk
    nums = depth.numbers(looks)
    assert len(nums) == 3 * 7
    res = looks[(5, "residual")]
    assert len(res.init.forward) == 4  # the first tanh and the three blocks' streams
    assert nums["5-res-act-init"] == pytest.approx(
        res.init.forward[-1].std / res.init.forward[0].std)
    rows = depth.table_rows(looks)
    assert len(rows) == 3 and all(len(r) == len(depth.TABLE_HEADER) for r in rows)
    fig = beyond_plots.spread_figure(looks, 5)
    assert sum(len(ax.lines) for ax in fig.axes) == 3 * 2 * 2
    html = beyond_plots.spread_static(looks, (5,)).html
    assert html.count("data:image/png") == 1 and "residual: activation std" in html


def test_look_diagnoses_the_run_at_init_and_trained(small, monkeypatch):
    spec = dataclasses.replace(registry.DEPTH_RUNS[1], n_layers=4, steps=5)
    model = spec.build(models.new_generator())

    class FakeRun:
        def __init__(self):
            self.spec, self.model, self.val_loss = spec, model, 3.0
            self.lossi = torch.full((5,), 0.5)
    monkeypatch.setattr(depth.runs, "get", lambda name: FakeRun())
    lk = depth.look(spec.name, small)
    assert lk.tail == pytest.approx(10 ** 0.5) and lk.val == 3.0
    assert len(lk.init.forward) == len(lk.trained.forward) == 3
    # at init: the lecture's first minibatch of a fresh build, as stats.diagnose draws it
    g = models.new_generator()
    want = stats.diagnose(spec.build(g), small.Xtr, small.Ytr, generator=g, kind=depth.STREAM)
    assert lk.init.loss == want.loss


# --- figures, names --------------------------------------------------------------------

def test_norm_pictures_and_gain_sweep_figure(small):
    nets = {"a": optimizers.short_run(small, steps=2, batchnorm=True, gain=1.0),
            "b": optimizers.short_run(small, steps=2, batchnorm=False, layernorm=True,
                                      gain=1.0)}
    fig = panels.norm_pictures(
        {k: stats.forward_stats(m) for k, (m, _) in nets.items()},
        {k: stats.backward_stats(m) for k, (m, _) in nets.items()},
        {k: stats.weight_grad_stats(m) for k, (m, _) in nets.items()},
        {k: stats.update_ratios(h.ud, m.parameters())[0] for k, (m, h) in nets.items()})
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 8
    ax = beyond_plots.gain_sweep_figure({"SGD, first step": ((0.5, 1.0), [-2, -2.6]),
                                         "Adam, last 100": ((0.5, 2.0), [-1.5, -1.8])})
    assert len(ax.lines) == 3


def test_final_losses_table():
    class R:
        train_loss, val_loss = 2.0, 2.1
        calibrated = None
    table = beyond_plots.final_losses_table({"LayerNorm": R()}).data
    assert "LayerNorm" in table and "2.1000" in table and "-" in table


def test_new_run_names_and_specs():
    assert registry.DEEP_LN == "deep_ln_g1_lr0.1" and registry.DEEP_LN in registry.RUNS
    spec = registry.RUNS[registry.DEEP_LN]
    assert (spec.layernorm, spec.steps, spec.decay_step, spec.trainer) == (
        True, 200_000, 150_000, "fast")
    assert spec.label == "LayerNorm, gain 1, lr 0.1"
    assert run_name("deep_mlp", batchnorm=False, gain=5 / 3, n_layers=20, residual=True,
                    steps=1001) == "deep_nobn_g1.67_lr0.1_L20_res_s1001"
    for bad in (dict(batchnorm=True, layernorm=True), dict(batchnorm=True, residual=True)):
        with pytest.raises(ValueError, match="BatchNorm"):
            RunSpec("x", "deep_mlp", gain=1.0, **bad)
    with pytest.raises(ValueError, match="deep_mlp's"):
        RunSpec("x", "mlp", init="kaiming", residual=True)


# --- batch size ----------------------------------------------------------------------
def test_batch_runs_cover_both_networks_at_each_size():
    assert set(registry.BATCH_RUNS) == {(bn, b) for bn in (False, True)
                                        for b in registry.BATCH_SIZES}
    for (bn, b), spec in registry.BATCH_RUNS.items():
        assert spec.name in registry.RUNS and spec.batch_size == b and spec.batchnorm == bn
        assert (spec.steps, spec.decay_step, spec.trainer) == (5_000, 3_750, "plain")
        assert spec.gain == (1.0 if bn else 5 / 3) and spec.lr == 0.1


def test_batch_mean_noise_shrinks_as_one_over_the_root_of_the_batch(small):
    model = trained(small, batchnorm=True, gain=1.0)
    noise = {b: normalization.batch_mean_noise(model, small.Xtr, b, batches=2000)
             for b in (4, 16, 64)}
    for b, n in noise.items():  # independent rows: 1/sqrt(b), within the sampling error
        assert n == pytest.approx(1 / math.sqrt(b), rel=0.15)
    assert noise[4] > noise[16] > noise[64]
    with pytest.raises(StopIteration):  # no BatchNorm, no batch statistics
        normalization.batch_mean_noise(trained(small, batchnorm=False, gain=5 / 3),
                                       small.Xtr, 8)


def test_batch_size_numbers_and_figure(small):
    class R:
        def __init__(self, bn, b):
            self.spec = dataclasses.replace(registry.BATCH_RUNS[bn, b], steps=30)
            self.model = trained(small, batchnorm=bn, gain=1.0)
            self.losses = train.evaluate(self.model, small)
            self.train_loss, self.val_loss = self.losses["train"], self.losses["val"]
            self.calibrated = None
            if bn:
                state = self.model.state_dict()
                self.calibrated = train.evaluate(train.calibrate(self.model, small.Xtr), small)
                self.model.load_state_dict(state)

    runs_ = {(bn, b): R(bn, b) for bn in (False, True) for b in (8, 32)}
    before = runs_[True, 8].model.state_dict()
    got = normalization.batch_size_numbers(runs_, small)
    assert same_state(before, runs_[True, 8].model.state_dict())  # left as it was
    assert got[False, 8].keys() == {"examples", "train", "val", "gap"}
    row = got[True, 8]
    assert row["examples"] == 30 * 8 and row["gap"] == pytest.approx(row["val"] - row["train"])
    assert row["cal-gap"] == pytest.approx(row["val"] - runs_[True, 8].calibrated["val"])
    want = normalization.train_mode_loss(runs_[True, 8].model, small.Xdev, small.Ydev, 8)
    assert row["mode-gap"] == pytest.approx(want - row["val"])
    assert row["noise"] > got[True, 32]["noise"] > 0
    fig = beyond_plots.batch_size_figure(got)
    left, right = fig.axes
    assert len(left.lines) == 5 and len(right.lines) == 3
    assert [t.get_text() for t in left.get_xticklabels()] == ["8", "32"]


def test_batch_size_table():
    row = {"examples": 40_000, "train": 2.3, "val": 2.31, "gap": 0.01}
    numbers = {(True, 8): row | {"cal-val": 2.305, "cal-gap": 0.005, "mode-gap": 0.2,
                                 "noise": 0.35},
               (False, 8): row}
    table = beyond_plots.batch_size_table(numbers).data
    lines = table.splitlines()
    assert len(lines) == 4 and "no BatchNorm" in lines[2] and "BatchNorm" in lines[3]
    assert "40,000" in lines[2] and "+0.0050" in lines[3] and "+0.2000" in lines[3]
    assert lines[2].count("-") > lines[3].count("-")  # no seams without BatchNorm


def _study(bn_val=(2.38, 2.23, 2.16), nobn_val=(2.29, 2.20, 2.164)):
    """Batch-size numbers shaped like the build's (batch 8, 32, 128)."""
    out = {}
    for k, b in enumerate((8, 32, 128)):
        out[False, b] = {"examples": 5000 * b, "train": nobn_val[k] - 0.01 * (k + 1),
                         "val": nobn_val[k], "gap": 0.01 * (k + 1)}
        out[True, b] = {"examples": 5000 * b, "train": bn_val[k] + 0.01 - 0.012 * k,
                        "val": bn_val[k], "gap": -0.01 + 0.012 * k, "cal-val": 0,
                        "cal-gap": 0.004 / (k + 1), "mode-gap": (-0.009, 0.004, 0.005)[k],
                        "noise": b ** -0.5 * 1.01}
    return out


def test_batch_size_findings_check_what_the_chapter_says():
    values, claims = normalization.batch_size_findings(_study(), n_train=160_000)
    assert all(claims.values()), claims
    assert values["bn-minus-nobn-8"] == pytest.approx(0.09)
    assert values["train-share"] == pytest.approx(0.25) and values["bn-32-noise"] > 0
    assert values["noise-ideal-128"] == pytest.approx(1 / math.sqrt(128))
    # each claim fails on numbers that contradict it
    _, claims = normalization.batch_size_findings(_study(bn_val=(2.30, 2.23, 2.16)), 160_000)
    assert not claims["BatchNorm's handicap shrinks"]
    _, claims = normalization.batch_size_findings(_study(nobn_val=(2.29, 2.30, 2.164)), 160_000)
    assert not claims["val falls with the batch"]
    bad = _study()
    bad[True, 8]["noise"] = 0.5
    bad[True, 32]["mode-gap"] = -0.001
    bad[True, 8]["cal-gap"] = 0.0
    _, claims = normalization.batch_size_findings(bad, 160_000)
    assert not claims["noise is 1/sqrt(B)"]
    assert not claims["training mode lower at the smallest batch only"]
    assert not claims["running statistics furthest off at the smallest batch"]
