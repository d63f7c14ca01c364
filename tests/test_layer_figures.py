"""makemore.show.layer_figures: the single-layer figures of "BatchNorm" and "PyTorch-ifying"."""
import pytest
import torch
from makemore import models, nn
from makemore.analysis import stats
from makemore.show import layer_figures


def test_params_by_block_splits_weights_biases_and_batchnorm():
    with_bn, without = models.deep_mlp(batchnorm=True), models.deep_mlp(batchnorm=False)
    bn, plain = layer_figures.params_by_block(with_bn), layer_figures.params_by_block(without)
    assert sorted(bn) == list(range(7))  # C, then Linear 1..6
    assert bn[0] == {"weights": 27 * 10, "biases": 0, "BatchNorm": 0}
    assert bn[2] == {"weights": 100 * 100, "biases": 0, "BatchNorm": 200}  # no bias before BN
    assert plain[2] == {"weights": 100 * 100, "biases": 100, "BatchNorm": 0}
    assert sum(sum(c.values()) for c in bn.values()) == models.num_params(with_bn)
    assert sum(sum(c.values()) for c in plain.values()) == models.num_params(without)


def test_params_by_block_bars_labels_every_bar_with_its_total():
    with_bn, without = models.deep_mlp(batchnorm=True), models.deep_mlp(batchnorm=False)
    fig = layer_figures.params_by_block_bars(with_bn, without)
    ax = fig.axes[0]
    totals = [t.get_text() for t in ax.texts]
    assert len(totals) == 14 and "10,200" in totals and "10,100" in totals
    assert [t.get_text() for t in ax.get_xticklabels()] == ["C"] + [f"Linear {k}"
                                                                    for k in range(1, 7)]
    assert ax.get_ylim()[1] > 10_200  # the tallest total stays inside the axes


def test_init_histograms_marks_the_uniform_bounds():
    g = models.new_generator()
    ours = nn.Linear(100, 100, generator=g).weight
    theirs = torch.empty(100, 100).uniform_(-0.1, 0.1, generator=g)
    ax = layer_figures.init_histograms(ours, theirs).axes[0]
    assert sorted(line.get_xdata()[0] for line in ax.lines) == pytest.approx([-0.1, 0.1])
    assert len(ax.get_legend().get_texts()) == 2


def test_batchnorm_figures_draw_what_they_are_given():
    g = torch.Generator().manual_seed(0)
    xhat = torch.randn(100, 8, generator=g)
    fig = layer_figures.jitter(xhat, torch.zeros(8), neurons=[0, 5])
    assert [ax.get_title() for ax in fig.axes] == ["neuron 0", "neuron 5"]
    mean, std = torch.randn(20, generator=g), torch.rand(20, generator=g) + 0.5
    fig = layer_figures.running_vs_full(mean, std, mean + 0.01, std * 1.01)
    dots = fig.axes[0].lines[0]
    assert list(dots.get_xdata()) == pytest.approx(mean.tolist())
    scales = [0.01, 0.1, 1.0]
    plain = [stats.linear_stats(50, scale=s, generator=torch.Generator().manual_seed(1))
             for s in scales]
    normed = [stats.linear_stats(50, scale=s, batchnorm=True,
                                 generator=torch.Generator().manual_seed(1)) for s in scales]
    fig = layer_figures.scale_sweep(scales, plain, normed, fan_in=50)
    left = fig.axes[0]
    assert list(left.lines[1].get_ydata()) == pytest.approx([r.out for r in normed])
    assert left.lines[2].get_xdata()[0] == pytest.approx(50**-0.5)
