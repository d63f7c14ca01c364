"""The diagnostics' numbers on hand-made tensors with known answers, on the deep
network (layer numbering, no side effects) and against the lecture's printouts."""
import math

import pytest
import torch
import torch.nn.functional as F
from makemore import models
from makemore.analysis import stats
from makemore.nn import BatchNorm1d, Linear, Sequential, Tanh


def toy_data(n=200, block_size=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randint(0, 27, (n, block_size), generator=g)
    Y = torch.randint(0, 27, (n,), generator=g)
    return X, Y


# --- elementwise statistics ------------------------------------------------------

def test_saturated_fraction_is_strictly_above_threshold():
    t = torch.tensor([0.0, 0.5, 0.98, -0.99, 0.97, -0.97, 1.0, -0.2])
    assert stats.saturated_fraction(t) == pytest.approx(3 / 8)  # 0.98, -0.99, 1.0
    assert stats.saturated_fraction(t, threshold=0.4) == pytest.approx(6 / 8)


def test_histogram_density_integrates_to_one():
    t = torch.randn(5000, generator=torch.Generator().manual_seed(1)) * 3 + 1
    h = stats.histogram(t, bins=50)
    assert h.density.shape == (50,) and h.edges.shape == (51,)
    assert (h.density * h.edges.diff()).sum().item() == pytest.approx(1.0, abs=1e-5)
    assert torch.all((h.centers > h.edges[:-1]) & (h.centers < h.edges[1:]))
    assert h.edges[0] == t.min() and h.edges[-1] == t.max()


def test_saturation_map_and_dead_neurons():
    h = torch.tensor([[0.995, 1.0, 0.2, -0.999],
                      [0.1, -0.995, 0.999, -1.0],
                      [0.995, 0.999, 0.0, -0.992]])
    expected = torch.tensor([[True, True, False, True],
                             [False, True, True, True],
                             [True, True, False, True]])
    assert torch.equal(stats.saturation_map(h), expected)
    assert stats.dead_neurons(h).tolist() == [1, 3]  # white for every example
    assert stats.dead_neurons(h, threshold=0.9995).tolist() == []


def test_tanh_grad_survival_is_the_local_gradient():
    h = torch.tensor([0.0, 1.0, -1.0, 0.5])
    assert stats.tanh_grad_survival(h) == pytest.approx((1 + 0 + 0 + 0.75) / 4)
    # and it is what autograd multiplies the gradient by
    x = torch.randn(100, generator=torch.Generator().manual_seed(2), requires_grad=True)
    y = torch.tanh(x)
    y.sum().backward()
    assert stats.tanh_grad_survival(y) == pytest.approx(x.grad.mean().item(), rel=1e-6)


# --- per-layer statistics -------------------------------------------------------

def tiny_net():
    """Linear(2, 3) -> Tanh -> Linear(3, 2) with weights picked by hand."""
    first, last = Linear(2, 3, bias=False), Linear(3, 2, bias=False)
    first.weight = torch.tensor([[1.0, 0.0, 10.0], [0.0, 1.0, 10.0]], requires_grad=True)
    last.weight = torch.ones(3, 2, requires_grad=True)
    return Sequential([first, Tanh(), last])


def test_forward_stats_on_a_hand_made_net():
    net = tiny_net()
    x = torch.tensor([[0.0, 0.0], [0.5, -0.5]])
    net(x)
    (s,) = stats.forward_stats(net)
    t = torch.tanh(x @ net.layers[0].weight)
    assert (s.index, s.name, s.block) == (1, "layer 1 (Tanh)", 1)
    assert s.mean == pytest.approx(t.mean().item())
    assert s.std == pytest.approx(t.std().item())
    assert s.saturated == pytest.approx((t.abs() > 0.97).float().mean().item())


def test_forward_stats_counts_saturation():
    net = tiny_net()
    net(torch.tensor([[1.0, 1.0], [0.0, 0.0]]))  # third neuron: tanh(20), tanh(0)
    (s,) = stats.forward_stats(net)
    assert s.saturated == pytest.approx(1 / 6)


def test_forward_stats_leaves_out_the_output_layer():
    net = Sequential([Linear(2, 3), Tanh(), Linear(3, 2), Tanh()])
    for p in net.parameters():
        p.requires_grad_(True)
    net(torch.randn(4, 2))
    assert [s.name for s in stats.forward_stats(net)] == ["layer 1 (Tanh)"]
    assert [s.name for s in stats.forward_stats(net, kind=Linear)] == [
        "layer 0 (Linear)", "layer 2 (Linear)"]


def test_stats_need_a_forward_and_retained_grads():
    net = tiny_net()
    with pytest.raises(ValueError, match="forward"):
        stats.forward_stats(net)
    net(torch.randn(4, 2)).sum().backward()
    with pytest.raises(ValueError, match="retain_grad"):
        stats.backward_stats(net)


@pytest.mark.parametrize("batchnorm, tanh_layers", [(False, [1, 3, 5, 7, 9]),
                                                    (True, [2, 5, 8, 11, 14])])
def test_layers_are_numbered_as_in_the_lecture(batchnorm, tanh_layers):
    model = models.deep_mlp(batchnorm=batchnorm)
    d = stats.diagnose(model, *toy_data())
    assert [s.index for s in d.forward] == tanh_layers
    assert [s.name for s in d.backward] == [f"layer {i} (Tanh)" for i in tanh_layers]
    assert [s.block for s in d.forward] == [1, 2, 3, 4, 5]
    for s in d.forward:
        assert stats.lecture_layer(model, s.index).out.std().item() == pytest.approx(s.std)
    # the 2-D parameters: C, then one weight per block
    assert [p.block for p in d.weights] == [0, 1, 2, 3, 4, 5, 6]
    assert d.weights[0].shape == (27, 10) and d.weights[-1].shape == (100, 27)


# --- weight gradients and update ratios -----------------------------------------

def test_weight_grad_stats_grad_data_ratio():
    layer = Linear(2, 3)
    layer.weight = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    layer.bias.requires_grad_(True)
    grad = torch.tensor([[0.0, 0.1, 0.0], [-0.1, 0.0, 0.3]])
    layer.weight.grad = grad
    layer.bias.grad = torch.ones(3)
    (s,) = stats.weight_grad_stats(Sequential([layer]))  # the 1-D bias is left out
    assert (s.index, s.shape, s.name) == (0, (2, 3), "0 (2, 3)")
    assert s.mean == pytest.approx(0.05)
    assert s.std == pytest.approx(grad.std().item())
    assert s.grad_data == pytest.approx(grad.std().item() / math.sqrt(3.5))  # var(1..6) = 3.5


def test_update_ratios_picks_the_2d_columns():
    params = [torch.zeros(3, 4), torch.zeros(4), torch.zeros(4, 5), torch.zeros(5)]
    ud = torch.tensor([[-3.0, -1.0, -2.5, -1.5], [-3.1, -1.1, -2.6, -1.6]])  # History.ud
    ratios, names = stats.update_ratios(ud, params)
    assert names == ["param 0", "param 2"]
    assert torch.equal(ratios, torch.tensor([[-3.0, -2.5], [-3.1, -2.6]]))
    assert torch.equal(stats.update_ratios(ud.tolist(), params)[0], ratios)  # lists work too
    with pytest.raises(ValueError, match="parameters"):
        stats.update_ratios(ud, params[:3])
    with pytest.raises(ValueError, match="record_ud"):
        stats.update_ratios(torch.zeros(0, 4), params)


# --- diagnose -------------------------------------------------------------------

@pytest.mark.parametrize("build", [lambda: models.deep_mlp(batchnorm=True),
                                   lambda: models.mlp("batchnorm")])
def test_diagnose_changes_no_parameter_or_buffer(build):
    model = build()
    model.eval()
    before = model.state_dict()
    d = stats.diagnose(model, *toy_data(), generator=torch.Generator().manual_seed(3))
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert any(k.endswith("running_mean") for k in after)
    for k in before:
        assert torch.equal(before[k], after[k]), k
    assert model.training is False  # the mode is restored too
    assert d.forward and d.backward and d.weights
    assert math.isfinite(d.loss)


def test_diagnose_runs_in_training_mode_and_matches_the_layers():
    model = models.deep_mlp(batchnorm=True)
    model.eval()  # would use the running statistics; diagnose must use the batch's
    stats.diagnose(model, *toy_data())
    pre = [layer.out for layer in model.layers if isinstance(layer, BatchNorm1d)][0]
    # BatchNorm in training mode: every pre-activation column has batch mean ~0
    assert pre.mean(0).abs().max().item() < 1e-5
    d = stats.diagnose(model, *toy_data())
    for s in d.backward:
        g = stats.lecture_layer(model, s.index).out.grad
        assert s.std == pytest.approx(g.std().item())


def test_diagnose_draws_the_minibatch_like_train():
    X, Y = toy_data()
    model = models.deep_mlp(batchnorm=False)
    d = stats.diagnose(model, X, Y, generator=torch.Generator().manual_seed(7))
    ix = torch.randint(0, X.shape[0], (32,), generator=torch.Generator().manual_seed(7))
    loss = F.cross_entropy(model(X[ix]), Y[ix])
    assert d.loss == pytest.approx(loss.item())


def test_diagnose_reproduces_the_lecture(splits):
    # the lecture's deep network, gain 5/3, no BatchNorm: its printout at the first step
    g = models.new_generator()
    model = models.deep_mlp(batchnorm=False, gain=5 / 3, generator=g)
    d = stats.diagnose(model, splits.Xtr, splits.Ytr, generator=g)
    assert [round(s.saturated * 100, 2) for s in d.forward] == [20.25, 8.38, 6.62, 5.47, 6.13]
    assert [round(s.std, 2) for s in d.forward] == [0.75, 0.69, 0.67, 0.66, 0.66]


# --- initialization experiments -------------------------------------------------

def test_matmul_std_is_scale_times_sqrt_fan_in():
    g = torch.Generator().manual_seed(0)
    assert stats.matmul_std(10**-0.5, fan_in=10, generator=g) == pytest.approx(1.0, abs=0.05)
    assert stats.matmul_std(1.0, fan_in=10, generator=g) == pytest.approx(10**0.5, rel=0.05)
    assert stats.matmul_std(0.1, fan_in=100, generator=g) == pytest.approx(1.0, abs=0.05)


def test_linear_stats_reproduce_the_bonus_cells():
    plain = stats.linear_stats(generator=models.new_generator())
    assert plain.x == pytest.approx(1000**0.5, rel=0.05)  # the std grows by sqrt(n)
    assert plain.inp_grad == pytest.approx(1000**0.5, rel=0.05)  # and so does the grad
    assert plain.out == plain.x and plain.out_grad == plain.x_grad
    bn = stats.linear_stats(batchnorm=True, generator=models.new_generator())
    assert bn.x == plain.x  # the same random numbers
    assert bn.out == pytest.approx(1.0, abs=1e-3)
    assert bn.inp_grad == pytest.approx(1.0, abs=0.05)  # BN undoes the growth backwards too
    kaiming = stats.linear_stats(scale=1000**-0.5, generator=models.new_generator())
    assert kaiming.x == pytest.approx(1.0, abs=0.05)
    assert kaiming.inp_grad == pytest.approx(1.0, abs=0.05)


def test_depth_stds():
    g = torch.Generator().manual_seed(0)
    shrinking = stats.depth_stds(1.0, n_layers=6, generator=g)
    assert all(a > b for a, b in zip(shrinking, shrinking[1:]))
    steady = stats.depth_stds(5 / 3, n_layers=6, generator=g)
    assert max(steady) - min(steady) < 0.15
    linear = stats.depth_stds(1.0, n_layers=6, tanh=False, generator=g)
    assert all(abs(s - 1) < 0.1 for s in linear)


def test_window_means_are_the_lectures_view_mean():
    x = torch.randn(2500)
    centers, means = stats.window_means(x, 1000)  # the last 500 steps: no full window
    assert torch.equal(means, x[:2000].view(-1, 1000).mean(1))
    assert centers.tolist() == [499.5, 1499.5]
    ud = torch.randn(30, 4)  # one column per parameter: a mean per column
    assert torch.allclose(stats.window_means(ud, 10)[1], ud.view(3, 10, 4).mean(1))
    assert len(stats.window_means(x[:10], 1000)[1]) == 0
