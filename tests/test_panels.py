"""Networks side by side: a panel per network with outer labels and one legend, the
panel of a title, and tables with a column per network."""
import pytest
import torch
from makemore import models
from makemore.analysis import stats
from makemore.show import panels, plots

GAINS = (0.5, 1.0, 3.0, 5.0)  # four networks: a 2 x 3 grid with two empty places


@pytest.fixture(scope="module")
def diagnoses():
    """One diagnosis pass per gain, on one random batch of 64 contexts."""
    g = torch.Generator().manual_seed(0)
    X, Y = torch.randint(0, 27, (64, 3), generator=g), torch.randint(0, 27, (64,), generator=g)
    return {f"gain {gain}": stats.diagnose(models.deep_mlp(gain=gain, generator=g), X, Y,
                                           generator=g) for gain in GAINS}


def test_grid_titles_outer_labels_and_one_legend(diagnoses):
    fwd = {name: d.forward for name, d in diagnoses.items()}
    fig = panels.hist_grid(fwd, "tanh output", ncols=3, xlim=(-1, 1))
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in shown] == list(fwd)
    assert len(fig.axes) == 6 and len(shown) == 4  # 2 x 3, the last two hidden
    assert [ax.get_ylabel() for ax in shown] == ["density", "", "", "density"]
    assert [ax.get_xlabel() for ax in shown] == ["", "", "", "tanh output"]
    assert all(ax.get_legend() is None for ax in shown)
    assert all(ax.get_xlim() == (-1, 1) for ax in shown)
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        f"layer after Linear {b}" for b in range(1, 6)]
    assert [h.get_color() for h in legend.legend_handles] == [
        plots.layer_color(b) for b in range(1, 6)]


def test_weight_grid_has_the_embedding_in_its_legend(diagnoses):
    fig = panels.hist_grid({n: d.weights for n, d in diagnoses.items()}, "gradient")
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts[0] == "C (embedding)" and texts[-1] == "Linear 6 weight" and len(texts) == 7


def test_ud_grid_one_line_per_column_and_the_reference():
    ud = {"a": torch.randn(30, 7), "b": torch.randn(30, 7)}
    fig = panels.ud_grid(ud, ylim=(-4, 0), ncols=2, figsize=(6, 3))
    ax = panels.panel(fig, "b")
    assert len(ax.lines) == 8 and ax.get_ylim() == (-4, 0)
    assert ax.get_ylabel() == "" and fig.axes[0].get_ylabel() == "log10 update:data"
    assert len(fig.legends[0].get_texts()) == 7
    with pytest.raises(KeyError, match="no panel titled 'c'"):
        panels.panel(fig, "c")


def test_table_one_column_per_network():
    md = panels.table({"x": {"loss": 2.0, "sat": "5%"}, "y": {"loss": 2.5, "sat": "-"}},
                      corner="measure").data
    head, rule, loss, sat = ([c.strip() for c in line.strip("|").split("|")]
                             for line in md.splitlines())
    assert head == ["measure", "x", "y"] and loss == ["loss", "2.0000", "2.5000"]
    assert sat == ["sat", "5%", "-"]
    assert rule[0].startswith(":") and all(c.endswith(":") for c in rule[1:])  # l, r, r
    with pytest.raises(ValueError, match="has rows"):
        panels.table({"x": {"a": 1}, "y": {"b": 1}})


def test_layer_table_names_rows_after_the_layers(diagnoses):
    md = panels.layer_table({n: d.weights for n, d in diagnoses.items()},
                            lambda w: f"{w.grad_data:.1e}", corner="grad:data").data
    rows = [line.strip("|").split("|")[0].strip() for line in md.splitlines()[2:]]
    assert rows == ["C (27, 10)", "Linear 1 (30, 100)"] + [
        f"Linear {k} (100, 100)" for k in range(2, 6)] + ["Linear 6 (100, 27)"]
    md = panels.layer_table({n: d.forward for n, d in diagnoses.items()}, lambda s: s.std).data
    assert "after Linear 5" in md and "after Linear 6" not in md
    with pytest.raises(ValueError, match="entries for 2 rows"):
        panels.layer_table({"x": [1, 2, 3]}, str, rows=["a", "b"])
