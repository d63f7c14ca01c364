"""The diagnostics reduced to numbers: each key is the number its name promises,
on hand-made statistics with known answers."""
import math

import pytest
import torch
from makemore import models
from makemore.analysis import health, stats

HIST = stats.histogram(torch.linspace(-1, 1, 11))


def layer(block, std, saturated=0.0, kind="Tanh"):
    return stats.LayerStats(block, f"layer {block} ({kind})", block, 0.0, std, saturated, HIST)


def weight(block, grad_data):
    return stats.ParamStats(block, f"{block}", block, (4, 4), 0.0, 1.0, grad_data, HIST)


FORWARD = [layer(1, 0.8, 0.20), layer(2, 0.6, 0.05), layer(3, 0.5, 0.10)]
BACKWARD = [layer(1, 4e-3, None), layer(2, 2e-3, None), layer(3, 1e-3, None)]
WEIGHTS = [weight(0, 0.01), weight(1, 0.02), weight(2, 0.04), weight(3, 0.3)]


def test_tail_loss_averages_the_losses_not_their_logs():
    lossi = torch.log10(torch.tensor([100.0, 1.0, 2.0, 4.0]))
    assert health.tail_loss(lossi, n=2) == pytest.approx(3.0)
    assert health.tail_loss(lossi) == pytest.approx(107 / 4)  # fewer than 100 steps: all


def test_forward_numbers_percent_and_the_layers_after_the_first():
    n = health.forward_numbers(FORWARD)
    assert n["std-first"] == 0.8 and n["std-last"] == 0.5
    assert n["sat-first"] == pytest.approx(20) and n["sat-last"] == pytest.approx(10)
    assert n["sat-min"] == pytest.approx(5) and n["sat-max"] == pytest.approx(20)
    assert (n["sat-rest-min"], n["sat-rest-max"]) == pytest.approx((5, 10))
    with pytest.raises(ValueError, match="two layers"):
        health.forward_numbers(FORWARD[:1])


def test_numbers_gradients_and_grad_data():
    n = health.numbers(FORWARD, BACKWARD, WEIGHTS)
    assert n["gstd-ratio"] == pytest.approx(4.0)
    assert n["gd-C"] == 0.01 and n["gd-last"] == 0.3
    assert (n["gd-hidden-min"], n["gd-hidden-max"]) == (0.02, 0.04)
    assert n["gd-last-ratio"] == pytest.approx(0.3 / 0.03)
    assert health.hidden_grad_data(WEIGHTS) == pytest.approx(0.03)
    with pytest.raises(ValueError, match="hidden weight"):
        health.hidden_grad_data(WEIGHTS[:2])


def test_diagnosis_numbers_add_the_loss():
    g = models.new_generator()
    X = torch.randint(0, 27, (64, 3), generator=g)
    Y = torch.randint(0, 27, (64,), generator=g)
    d = stats.diagnose(models.deep_mlp(generator=g), X, Y, generator=g)
    n = health.diagnosis_numbers(d)
    assert n["loss"] == d.loss and n["std-last"] == d.forward[-1].std
    assert n["gd-last"] == d.weights[-1].grad_data


def test_training_numbers_last_steps_by_weight_matrix():
    ud = torch.zeros(200, 4)
    ud[:, 0], ud[:, 1], ud[:, 2] = -3.0, -2.5, -2.0
    ud[:10, 3], ud[10:, 3] = -1.0, -2.2
    n = health.training_numbers(torch.zeros(200), ud)
    assert n["loss"] == pytest.approx(1.0)  # log10 loss 0
    assert n["ud-C"] == -3.0 and (n["ud-hidden-min"], n["ud-hidden-max"]) == (-2.5, -2.0)
    assert n["ud-last"] == pytest.approx(-2.2) and n["ud-last-first10"] == -1.0


def test_checklist_and_spread_leave_out_saturation_without_tanh():
    ud = torch.full((100, 4), -3.0)
    c = health.checklist(FORWARD, BACKWARD, ud, torch.zeros(100))
    assert c == {"loss, last 100 steps": "1.000", "most saturated layer": "20.0%",
                 "activation std, last / first layer": "0.62",
                 "gradient std, first / last layer": "4.00",
                 "log10 update:data, hidden weights": "-3.00"}
    linear = [layer(1, 0.8, 0.2, "Linear"), layer(2, 0.4, 0.1, "Linear")]
    assert health.checklist(linear, BACKWARD, ud, torch.zeros(100))["most saturated layer"] == "-"
    assert health.spread(FORWARD[0]) == "0.80 (20.0%)" and health.spread(linear[0]) == "0.80"


def test_step_window_leaves_out_log_of_zero():
    steps = torch.arange(0, 1000, 100)
    ud = torch.arange(10.0).unsqueeze(1).repeat(1, 2)
    ud[3, 1] = -math.inf
    w = health.step_window(ud, steps, 200, 500)  # records 2, 3, 4
    assert w.tolist() == [3.0, 3.0]  # column 1: (2 + 4) / 2
    with pytest.raises(ValueError, match="no record"):
        health.step_window(ud, steps, 5000, 6000)


def test_full_run_numbers_windows_drop_and_join():
    steps = torch.arange(0, 20_000, 100)  # 200 records, the drop at step 15,000
    ud = torch.full((200, 4), -2.0)
    ud[:, 0] = -3.0
    ud[steps >= 15_000, 1:] -= 1.0
    ud[:50, 3] = -1.0  # the last weight starts one above the hidden ones
    n = health.full_run_numbers(ud, steps, 15_000, window=1000, smooth=20)
    assert n["hidden-early"] == -2.0 and n["hidden-before"] == -2.0
    assert n["hidden-after"] == -3.0 and n["drop"] == pytest.approx(1.0)
    assert n["C-before"] == -3.0 and n["last-before"] == -2.0 and n["records"] == 200
    assert n["last-gap0"] == pytest.approx(1.0)
    assert n["last-join"] == 5000 + 1900  # the first 20-record window after record 49
    ud[:, 3] = 0.0
    with pytest.raises(ValueError, match="never comes within"):
        health.full_run_numbers(ud, steps, 15_000, window=1000)
