"""makemore.show.init_plots: each figure draws the data it is given, with the reference lines
and panels its chapter's caption describes."""
import math
from types import SimpleNamespace

import pytest
import torch
from makemore.analysis import initialization
from makemore.show import init_plots


@pytest.fixture(scope="module")
def steps():
    """The first steps of the two hidden-layer inits, on made-up examples."""
    g = torch.Generator().manual_seed(0)
    small = SimpleNamespace(Xtr=torch.randint(0, 27, (200, 3), generator=g),
                            Ytr=torch.randint(0, 27, (200,), generator=g))
    return {"bad": initialization.first_step("fix_softmax", small),
            "ok": initialization.first_step("fix_tanh", small)}


def _dashed_ys(ax):
    return [line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == "--"]


def test_plot_logits_histograms_the_logits_and_bars_one_softmax():
    logits = torch.tensor([[0.0, 2.0, 0.0], [1.0, 1.0, 1.0]])
    fig = init_plots.plot_logits(logits, torch.tensor([1, 0]), {0: ".", 1: "a", 2: "b"})
    ax1, ax2 = fig.axes
    assert sum(p.get_height() for p in ax1.patches) == 6  # all six logits
    heights = [p.get_height() for p in ax2.patches]
    assert heights == pytest.approx(torch.softmax(logits[0], 0).tolist())
    assert _dashed_ys(ax2) == [pytest.approx(1 / 3)]
    assert "correct: 'a'" in ax2.get_title()


def test_plot_random_logits_one_curve_per_class_count_and_the_star():
    ax = init_plots.plot_random_logits([0.01, 1.0, 10.0], n_classes=[4, 27], mark=5.0)
    curves = [line for line in ax.get_lines() if line.get_linestyle() == "-"]
    assert [line.get_label() for line in curves] == ["4 classes", "27 classes"]
    assert curves[1].get_ydata()[0] == pytest.approx(math.log(27), abs=1e-3)
    assert sorted(_dashed_ys(ax)) == pytest.approx([math.log(4), math.log(27)])
    (star,) = [line for line in ax.get_lines() if line.get_marker() == "*"]
    assert star.get_ydata()[0] == pytest.approx(initialization.random_logits_loss(5.0, 27))
    assert star.get_label() == "original network's logit std"


def test_plot_hockey_stick_zooms_and_marks_the_uniform_loss():
    lossis = {"a": torch.linspace(1, 0, 20_000), "b": torch.zeros(20_000)}
    fig = init_plots.plot_hockey_stick(lossis, zoom=10_000, uniform=math.log(27))
    ax1, ax2 = fig.axes
    assert ax2.get_lines()[0].get_xdata()[-1] == 9_999  # the zoom: the first 10,000 steps
    assert _dashed_ys(ax2) == [pytest.approx(math.log10(math.log(27)))]
    assert ax1.get_title() == "20,000 steps"
    assert [t.get_text() for t in ax1.get_legend().get_texts()] == ["a", "b"]


def test_plot_hidden_hist_one_column_per_step(steps):
    fig = init_plots.plot_hidden_hist(steps)
    assert len(fig.axes) == 4
    assert [fig.axes[i].get_title() for i in (0, 1)] == ["bad", "ok"]
    top = fig.axes[0]
    assert sum(p.get_height() for p in top.patches) == steps["bad"].hpreact.numel()


def test_plot_tanh_gradient_shades_the_saturated_tails():
    ax = init_plots.plot_tanh_gradient(threshold=0.99)
    t, grad = ax.get_lines()
    t, grad = torch.as_tensor(t.get_ydata()), torch.as_tensor(grad.get_ydata())
    assert torch.allclose(grad, 1 - t**2)
    spans = [p.get_x() + p.get_width() for p in ax.patches]
    assert min(spans) == pytest.approx(-math.atanh(0.99))


def test_plot_saturation_maps_titles_each_panel(steps):
    fig = init_plots.plot_saturation_maps({"bad": steps["bad"].h, "ok": steps["ok"].h})
    assert [ax.get_title() for ax in fig.axes] == ["bad", "ok"]
    img = fig.axes[0].get_images()[0].get_array()
    assert torch.equal(torch.as_tensor(img.data), steps["bad"].h.abs() > 0.99)


def test_plot_lr_step_starts_late_and_marks_the_decay():
    lossi = torch.log10(torch.cat([torch.full((5000,), 3.0), torch.full((5000,), 2.0)]))
    ax = init_plots.plot_lr_step(lossi, decay_step=5000, start=2000, window=1000)
    line = ax.get_lines()[0]
    assert line.get_xdata()[0] >= 2000
    assert line.get_ydata() == pytest.approx([3.0] * 3 + [2.0] * 5)
    (decay,) = [v for v in ax.get_lines() if v.get_linestyle() == "--"]
    assert decay.get_xdata()[0] == 5000
    assert [t.get_text() for t in ax.texts] == ["lr 0.1 → 0.01"]
