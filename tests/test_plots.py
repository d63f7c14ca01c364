"""The plot helpers draw what they promise: the right number of curves, with the
right data, labels and colors, into a given axes or a new book-sized figure."""
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from makemore import models
from makemore.analysis import stats
from makemore.show import plots


@pytest.fixture(scope="module")
def diagnosis():
    g = torch.Generator().manual_seed(0)
    X = torch.randint(0, 27, (100, 3), generator=g)
    Y = torch.randint(0, 27, (100,), generator=g)
    model = models.deep_mlp(batchnorm=False)
    return model, stats.diagnose(model, X, Y, generator=g)


def test_use_style_sets_the_book_style():
    matplotlib.rcdefaults()
    plots.use_style()
    assert tuple(plt.rcParams["figure.figsize"]) == plots.FIGSIZE
    assert plt.rcParams["axes.spines.top"] is False


def test_a_new_figure_is_book_sized():
    ax = plots.plot_loss([1.0] * 10, window=5)
    assert tuple(ax.figure.get_size_inches()) == pytest.approx(plots.FIGSIZE)


def test_plot_loss_draws_steps_and_window_means():
    lossi = torch.arange(2500, dtype=torch.float32)
    ax = plots.plot_loss(lossi, window=1000, label="run")
    faint, mean = ax.get_lines()
    assert len(faint.get_ydata()) == 2500
    assert faint.get_alpha() < 0.5
    # two full windows; the last 500 steps make no window
    assert np.allclose(mean.get_ydata(), [499.5, 1499.5])
    assert np.allclose(mean.get_xdata(), [499.5, 1499.5])  # at the middle of each window
    assert mean.get_color() == faint.get_color()
    assert ax.get_xlabel() == "step" and "log10" in ax.get_ylabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["run"]


def test_plot_loss_into_a_given_axes_compares_runs():
    fig, ax = plt.subplots()
    assert plots.plot_loss([0.5] * 300, window=100, ax=ax, label="a") is ax
    plots.plot_loss([0.4] * 300, window=100, ax=ax, label="b")
    lines = ax.get_lines()
    assert len(lines) == 4
    assert lines[1].get_color() != lines[3].get_color()
    assert len(plots.plot_loss([0.5] * 50, window=100).get_lines()) == 1  # no full window


def test_plot_hist_one_curve_per_layer(diagnosis):
    _, d = diagnosis
    ax = plots.plot_hist(d.forward, "activation distribution")
    lines = ax.get_lines()
    assert len(lines) == len(d.forward) == 5
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [s.name for s in d.forward]
    assert ax.get_title() == "activation distribution"
    assert np.allclose(lines[0].get_xdata(), d.forward[0].hist.centers.numpy())
    assert np.allclose(lines[0].get_ydata(), d.forward[0].hist.density.numpy())


def test_colors_follow_the_layer_across_plots(diagnosis):
    _, d = diagnosis
    acts = plots.plot_hist(d.forward, "activations").get_lines()
    weights = plots.plot_hist(d.weights, "weight gradients").get_lines()
    assert weights[0].get_color() == plots.EMBEDDING_COLOR  # C
    # Tanh of block k and the weight W_k of block k share a color
    for k, line in enumerate(acts, start=1):
        assert line.get_color() == weights[k].get_color() == plots.layer_color(k)
    assert len({line.get_color() for line in weights}) == len(weights)


def test_plot_diagnosis_stacks_three_plots(diagnosis):
    _, d = diagnosis
    fig = plots.plot_diagnosis(d)
    assert [len(ax.get_lines()) for ax in fig.axes] == [5, 5, 7]
    assert [ax.get_title() for ax in fig.axes] == [
        "activation distribution", "gradient distribution", "weights gradient distribution"]


def test_plot_ud_one_line_per_parameter_and_the_reference(diagnosis):
    model, _ = diagnosis
    params = model.parameters()
    ud = [[-3.0 - 0.01 * j - 0.001 * i for j in range(len(params))] for i in range(20)]
    ratios, names = stats.update_ratios(ud, params)
    ax = plots.plot_ud(ratios, names)
    lines = ax.get_lines()
    assert len(lines) == len(names) + 1 == 8
    assert np.allclose(lines[-1].get_ydata(), -3)  # the 1e-3 reference
    assert np.allclose(lines[1].get_ydata(), ratios[:, 1].numpy())
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:-1] == names
    with pytest.raises(ValueError, match="shape"):
        plots.plot_ud(ratios, names[:-1])


def test_plot_saturation_shows_the_boolean_map():
    h = torch.tensor([[0.995, 0.1, -1.0], [0.0, -0.999, 0.2]])
    ax = plots.plot_saturation(h)
    (image,) = ax.get_images()
    assert np.array_equal(np.asarray(image.get_array()), [[1, 0, 1], [0, 1, 0]])
    assert ax.get_xlabel() == "neuron" and ax.get_ylabel() == "example in batch"


def test_plot_std_vs_scale_marks_kaiming():
    ax = plots.plot_std_vs_scale([0.1, 0.3, 1.0], fan_in=10,
                                 generator=torch.Generator().manual_seed(0))
    theory, measured, star = ax.get_lines()[0], ax.get_lines()[1], ax.get_lines()[-1]
    assert np.allclose(theory.get_ydata(), np.array([0.1, 0.3, 1.0]) * 10**0.5)
    assert np.allclose(measured.get_ydata(), theory.get_ydata(), rtol=0.1)
    assert star.get_xdata()[0] == pytest.approx(10**-0.5)
    assert star.get_ydata()[0] == 1.0
    assert ax.get_xscale() == "log"


def test_smooth_is_a_trailing_mean():
    t = torch.arange(10, dtype=torch.float32).view(-1, 1) ** 2
    s = plots.smooth(t, 3)
    expected = [t[max(0, i - 2): i + 1].mean().item() for i in range(10)]
    assert s.shape == t.shape and s.dtype == t.dtype
    assert s.view(-1).tolist() == pytest.approx(expected)
    assert torch.equal(plots.smooth(t, 1), t), "a window of one leaves the rows as they are"
    with pytest.raises(ValueError, match="at least 1"):
        plots.smooth(t, 0)


def test_plot_ud_run_records_their_running_mean_and_the_drop():
    steps = torch.arange(0, 5000, 100)
    ud = torch.full((50, 2), -2.0)
    ud[7, 1] = -float("inf")  # log10(0): left out of the mean
    ax = plots.plot_ud_run(steps, ud, ["C", "W1"], window=10, decay_step=3000, lr=0.1)
    thin, thick = ax.lines[2], ax.lines[3]  # W1's
    assert len(thick.get_xdata()) == 41 and thick.get_xdata()[0] == 900
    assert np.allclose(thick.get_ydata(), -2.0)  # the -inf record did not drag it down
    assert np.isnan(thin.get_ydata()[7])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["C", "W1", "-3", "lr 0.1 → 0.01"]
    assert thick.get_color() == plots.layer_color(1)
    with pytest.raises(ValueError, match="a record per step"):
        plots.plot_ud_run(steps[:-1], ud, ["C", "W1"])


def test_plot_matmul_hists_input_and_one_histogram_per_scale():
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(1000, 10, generator=g), torch.randn(10, 200, generator=g)
    ax = plots.plot_matmul_hists(x, w, {"1": 1.0, r"1/\sqrt{10}": 10**-0.5})
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "x (input)" and len(labels) == 3
    assert labels[1].endswith(f"std(y) = {(x @ w).std():.2f}")
    assert labels[2].endswith("std(y) = 1.00") or labels[2].endswith("std(y) = 0.99")


def test_plot_depth_stds_one_curve_per_gain():
    ax = plots.plot_depth_stds({1.0: [0.6, 0.5, 0.4], 5 / 3: [0.7, 0.65, 0.65]})
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["gain 1", "gain 1.67"]
    assert list(ax.lines[0].get_xdata()) == [1, 2, 3]
    assert list(ax.lines[1].get_ydata()) == [0.7, 0.65, 0.65]
