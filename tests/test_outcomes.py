"""makemore.analysis.outcomes and makemore.show.grid_plots: how the grid's runs ended, on
made-up runs."""
import math

import matplotlib.pyplot as plt
import pytest
import torch
from makemore import models, runs
from makemore.analysis import outcomes
from makemore.runs import Run, registry
from makemore.show import grid_plots
from makemore.train import History

STEPS = 3000


def fake_run(spec, val=2.0, train=1.9, lossi=None, ud=-3.0, job=("j", 7, 70.0)):
    """A run of ``spec`` that ends at ``val``/``train``, with a constant ``ud`` record
    every 100 steps and the recorded job (id, size, seconds)."""
    model = spec.build(models.new_generator(spec.seed))
    n_params = len(model.parameters())
    lossi = torch.full((STEPS,), 0.3) if lossi is None else lossi
    steps = torch.arange(0, STEPS, 100)
    history = History(lossi, torch.full((len(steps), n_params), ud), steps, "eager", 1.0)
    cal = {"train": train - 0.001, "val": val - 0.002} if spec.batchnorm else None
    meta = {"job": {"id": job[0], "members": [f"r{i}" for i in range(job[1])],
                    "trainer": "eager", "seconds": job[2]}}
    return Run(spec, model, history, {"train": train, "val": val}, cal, meta)


@pytest.fixture(scope="module")
def grid():
    """The registry's grid, every run ending at a val loss that grows with lr and gain."""
    return {s.name: fake_run(s, val=2.0 + s.lr + s.gain / 100 + 0.01 * s.batchnorm)
            for s in registry.grid()}


def test_diverged_and_first_bad_step():
    spec = registry.grid()[0]
    ok = fake_run(spec)
    assert not outcomes.diverged(ok) and outcomes.first_bad_step(ok) is None
    lossi = torch.full((STEPS,), 0.3)
    lossi[7:] = math.nan
    bad = fake_run(spec, lossi=lossi)
    assert outcomes.diverged(bad) and outcomes.first_bad_step(bad) == 7
    assert outcomes.diverged(fake_run(spec, val=math.inf))
    infinite = fake_run(spec, lossi=torch.full((STEPS,), math.inf))
    assert torch.isnan(outcomes.finite_lossi(infinite)).all()


def test_gain_labels_write_tanh_gain_as_a_fraction():
    assert outcomes.gain_label(5 / 3) == "5/3" and outcomes.gain_label(1.0) == "1"
    assert outcomes.gain_label(2.0) == "2"
    assert outcomes.axis_label("lr", 0.03) == "0.03" and outcomes.axis_label("gain", 0.5) == "0.5"


def test_arms_of_the_grid(grid):
    gains = outcomes.arm(grid, True, "gain")
    assert [x for x, _ in gains] == list(registry.GAINS)
    assert all(r.spec.batchnorm and r.spec.lr == 0.1 for _, r in gains)
    lrs = outcomes.arm(grid, False, "lr")
    assert [x for x, _ in lrs] == [0.03, 0.1, 0.3, 1.0]
    assert all(not r.spec.batchnorm and math.isclose(r.spec.gain, 5 / 3) for _, r in lrs)
    assert outcomes.at(grid, False, "lr", 1.0).spec.name == "deep_nobn_g1.67_lr1"
    with pytest.raises(ValueError, match="arm varies"):
        outcomes.arm(grid, True, "momentum")
    with pytest.raises(KeyError, match="lr 7"):
        outcomes.at(grid, True, "lr", 7.0)


def test_grid_numbers_spreads_and_a_diverged_run(grid):
    numbers = outcomes.grid_numbers(grid)
    assert numbers["n-grid"] == 14
    best, worst = 2.1 + 0.5 / 100, 2.1 + 3 / 100
    assert numbers["nobn-gain-best"] == pytest.approx(best)
    assert numbers["nobn-gain-spread"].data == f"{worst - best:.4f}"
    assert numbers["bn-lr1"].data == f"{3.01 + 5 / 300:.4f}"
    assert numbers["nobn-gap"] == pytest.approx(0.1 + 0.1 + sum(registry.GAINS) / 400)
    assert numbers["diverged"].data.startswith("None of the 14 runs diverged")
    name = "deep_nobn_g3_lr0.1"
    broken = {**grid, name: fake_run(grid[name].spec, val=math.nan)}
    numbers = outcomes.grid_numbers(broken)
    assert numbers["nobn-gain-worst"].data == "diverged"
    assert numbers["nobn-gain-spread"].data == "unbounded (a run diverged)"
    assert numbers["diverged"].data.startswith("1 of the 14 runs diverged")


def test_grid_table_orders_arms_and_marks_divergence(grid):
    name = "deep_nobn_g3_lr0.1"
    lossi = torch.full((STEPS,), 0.3)
    lossi[1234] = math.inf
    md = outcomes.grid_table({**grid, name: fake_run(grid[name].spec, lossi=lossi)}).data
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in md.splitlines()[2:]]
    assert len(rows) == 14
    assert rows[3][:4] == ["no", "3", "0.1", "diverged at step 1,234"]
    assert rows[4][:3] == ["no", "5/3", "0.03"]  # the lr arm after the gain arm
    assert rows[7][:3] == ["yes", "0.5", "0.1"]
    assert rows[0][5:] == ["–", "–"] and "–" not in rows[7]  # calibrated: BatchNorm only


def test_weight_ud_reads_the_linear_weights_in_a_step_range(grid):
    run = outcomes.at(grid, True, "gain", 0.5)
    cols = outcomes.linear_weight_columns(run.model)
    assert len(cols) == 6 and 0 not in cols  # six Linear weights, not the embedding C
    run.ud[:, cols] = torch.arange(len(run.ud_steps), dtype=torch.float32).view(-1, 1)
    run.ud[:, 0] = 99.0  # C: left out
    assert outcomes.weight_ud(run) == 0.0
    assert outcomes.weight_ud(run, 1000, 1300) == pytest.approx(11.0)  # records 10, 11, 12
    with pytest.raises(ValueError, match="no update:data records"):
        outcomes.weight_ud(run, 10**6, 10**6 + 1)
    steps, means = outcomes.mean_weight_ud(run, records=10)
    assert steps.tolist() == [450.0, 1450.0, 2450.0] and means.tolist() == [4.5, 14.5, 24.5]
    run.ud[:] = -3.0


def test_weight_std_and_the_gain_as_a_learning_rate(grid):
    lo, hi = outcomes.at(grid, True, "gain", 0.5), outcomes.at(grid, True, "gain", 3.0)
    assert outcomes.weight_std(hi.model) > 5 * outcomes.weight_std(lo.model)
    numbers = outcomes.gain_as_lr_numbers(grid, late=(1000, 2000))
    assert numbers["ud-predicted"] == pytest.approx(2 * math.log10(6))
    assert numbers["ud-gap-0"] == numbers["ud-gap-late"] == 0.0  # constant ud in fake runs
    assert numbers["wstd-lo-init"] == pytest.approx(numbers["wstd-lo-end"])  # untrained


def test_tanh_health_and_the_claims_about_it(grid, splits):
    health = outcomes.tanh_health(outcomes.at(grid, False, "lr", 1.0), splits, examples=200)
    assert len(health.saturated) == len(health.dead) == 5
    assert all(0 <= s <= 1 for s in health.saturated) and all(d >= 0 for d in health.dead)
    fine = outcomes.TanhHealth([0.2] * 5, [0] * 5)
    sick = outcomes.TanhHealth([1.0, 0.9, 0.5, 0.4, 0.3], [99, 3, 0, 0, 0])
    numbers = outcomes.health_numbers(grid, {(False, 1.0): sick, (True, 1.0): fine},
                                      window=(100, 2000))
    assert numbers["lr1-sat1"] == 100 and numbers["lr1-dead1"] == 99
    assert numbers["lr1-width"] == 100 and numbers["bnlr1-sat-max"] == pytest.approx(20)
    assert numbers["lr1-mid-loss"] == pytest.approx(10 ** 0.3, rel=1e-6)
    with pytest.raises(AssertionError, match="has dead neurons"):
        outcomes.health_numbers(grid, {(False, 1.0): sick, (True, 1.0): sick})
    md = outcomes.health_table({(False, 1.0): sick}).data
    assert "100% · 90% · 50% · 40% · 30%" in md and "99 · 3 · 0 · 0 · 0" in md


def test_versus_mlps_names_the_best_mlp(grid, monkeypatch):
    mlps = {name: fake_run(registry.RUNS[name], val=2.2 - i / 100)
            for i, name in enumerate(outcomes.MLP_ROWS)}
    monkeypatch.setattr(runs, "get", mlps.__getitem__)
    final = outcomes.at(grid, True, "gain", 1.0)  # val 2.12
    numbers = outcomes.versus_mlps_numbers(final)
    assert numbers["best-mlp"].data == "`batchnorm`"
    assert numbers["best-mlp-val"] == pytest.approx(2.16)
    assert numbers["deep-gain"].data == "better by 0.0400"
    assert numbers["beats-mlps"].data == "beats every MLP of the loss log"
    md = outcomes.versus_mlps(final).data
    assert "MLP: original" in md and "lecture's final" in md and "47,024" in md


def test_depth_versus_batchnorm_counts_the_plain_deep_nets(grid):
    # the fixture: val = 2 + lr + gain / 100 (+ 0.01 with BatchNorm); without BatchNorm at
    # lr <= 0.1: the four gains at 0.1 and lr 0.03 at gain 5/3
    numbers = outcomes.depth_versus_batchnorm(grid, best_mlp_val=2.11)
    assert numbers["plain-n"] == 5
    assert numbers["plain-beat"] == 2  # gain 0.5 (2.105) and lr 0.03 (2.047) end below 2.11
    assert numbers["plain-val-min"] == pytest.approx(2.03 + 5 / 300)
    assert numbers["plain-val-max"] == pytest.approx(2.13)
    assert numbers["gain-bn"] == pytest.approx(2.12) and numbers["gain-nobn"] == pytest.approx(2.11)
    with pytest.raises(ValueError, match="no deep run without BatchNorm"):
        outcomes.depth_versus_batchnorm(grid, 2.11, max_lr=0.01)


def test_costs_come_from_the_recorded_jobs(grid):
    runs_ = {name: fake_run(r.spec, job=("bn", 7, 700.0) if r.spec.batchnorm
                            else ("x", 7, 70.0)) for name, r in grid.items()}
    assert outcomes.seconds_per_run(runs_, True) == pytest.approx(100.0)
    assert outcomes.seconds_per_run(runs_, False) == pytest.approx(10.0)
    final = outcomes.at(grid, True, "gain", 1.0)
    numbers = outcomes.calibration_numbers(grid, final)
    assert numbers["cal-gap-final"] == pytest.approx(0.002)
    assert numbers["cal-gap-max"] == pytest.approx(0.002)


def test_grid_figures(grid):
    name = "deep_nobn_g1.67_lr1"
    broken = {**grid, name: fake_run(grid[name].spec, val=math.nan)}
    fig = grid_plots.final_losses(broken)
    left, right = fig.axes
    assert [t.get_text() for t in left.get_xticklabels()] == ["0.5", "1", "5/3", "3"]
    assert [t.get_text() for t in right.texts] == ["diverged"] and not left.texts
    fig = grid_plots.loss_at_extremes(grid)
    assert all(len(ax.get_lines()) == 4 for ax in fig.axes)
    ax = grid_plots.weight_ud_by_gain(grid)
    assert [line.get_label() for line in ax.get_lines()][:4] == [
        "gain 0.5", "gain 1", "gain 5/3", "gain 3"]
    assert grid_plots.steps_in_thousands(ax).xaxis.get_major_formatter()(50_000, 0) == "50k"
    plt.close("all")


def test_weight_ud_history_draws_one_curve_per_run_in_the_chapters_colors(grid):
    from makemore.show import beyond_plots, plots

    runs_ = {"BatchNorm": grid["deep_bn_g1_lr0.1"], "LayerNorm": grid["deep_bn_g3_lr0.1"]}
    ax = beyond_plots.weight_ud_history(runs_)
    lines = ax.get_lines()
    assert [line.get_label() for line in lines[:2]] == ["BatchNorm", "LayerNorm"]
    assert [line.get_color() for line in lines[:2]] == list(plots.PALETTE[1:3])
    assert lines[2].get_ydata()[0] == -3  # the lecture's rule of thumb
    plt.close("all")
