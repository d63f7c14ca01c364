"""The interactive sections: the figures compute what they show, the live widgets
redraw when a control moves, the static versions hold every frame inline with no
network, and the chapters show the live code without running it at build time."""
from __future__ import annotations

import re
import types
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from makemore import models  # noqa: E402
from makemore.analysis import stats  # noqa: E402
from makemore.show import interactive  # noqa: E402
from test_explorer import parse  # noqa: E402  (the generic explorer's test helpers)

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------
# 1. normalization


def test_normalize_is_the_books_batchnorm():
    y, mean, std = interactive.normalize([1.0, 2.0, 3.0, 6.0])
    x = torch.tensor([1.0, 2.0, 3.0, 6.0])
    assert mean == pytest.approx(3.0)
    assert std == pytest.approx(x.std().item())
    expected = (x - x.mean()) / torch.sqrt(x.var() + 1e-5)
    assert torch.allclose(y, expected, atol=1e-6)
    y2, _, _ = interactive.normalize([1.0, 2.0, 3.0, 6.0], gamma=2.0, beta=0.5)
    assert torch.allclose(y2, 2 * expected + 0.5, atol=1e-6)


def test_moving_one_example_moves_every_output():
    batch = interactive.BATCH
    y0, _, _ = interactive.normalize(batch)
    y1, _, _ = interactive.normalize([10.0, *batch[1:]])
    assert ((y1 - y0)[1:].abs() > 0.01).all()


def test_normalization_figure_shows_the_batch_statistics():
    fig = interactive.normalization_figure(5.0)
    top, bottom = fig.axes
    _, mean, std = interactive.normalize([5.0, *interactive.BATCH[1:]])
    assert f"mean {mean:+.2f}" in top.get_title() and f"std {std:.2f}" in top.get_title()
    assert "after BatchNorm" in bottom.get_title()


@pytest.mark.parametrize("case", ["book", "notebook"])
def test_normalization_static_frames(case, monkeypatch):
    full = interactive.NORM_CASES[case]
    assert full.batch[0] in full.stops, "the static version opens where the slider starts"
    # three of its stops are enough here (a frame costs ~0.3-0.5 s): the ends and the start
    c = replace(full, stops=(full.stops[0], full.batch[0], full.stops[-1]))
    monkeypatch.setitem(interactive.NORM_CASES, case, c)
    markup = interactive.normalization_static(case).html
    _, fig, payload = parse(markup)
    assert fig["id"] == ("mm-explorer-normalization" if case == "book"
                         else "mm-explorer-normalization-notebook"), "one id per explorer"
    assert len(payload["frames"]) == len(c.stops)
    assert payload["labels"][0][int(fig["data-mm-frame"])] == f"{c.batch[0]:+.1f}"
    assert f"batch of {len(c.batch)} inputs" in fig.find("img")["alt"]
    assert ("notebook" in fig.find("figcaption").text) == (case == "notebook")
    # the case's static version, all its frames: no larger than these three in proportion
    # (the page's script and markup counted once per frame: an upper bound)
    assert len(markup) * len(full.stops) / len(c.stops) < 300_000, "keep it small"


def test_notebook_case_is_the_lecture_notebooks_widget():
    """cell 22 of the notebook: torch.randn(5) * 5 with seed 2147483647 + 1, x[0] on a
    slider over -30..30 in steps of 0.5 that starts at 0, y = (x - mu) / sig."""
    x = interactive.notebook_batch()
    assert len(x) == 5
    # the draw, printed to 2 decimals: a changed seed, count or scale shows here
    assert [round(v, 2) for v in x] == [-1.81, 5.35, 0.46, 2.44, -0.45]
    c = interactive.NORM_CASES["notebook"]
    assert c.batch == (0.0, *x[1:]) and c.slider == (-30.0, 30.0, 0.5)
    assert c.xlim[0] < min(c.stops) and max(c.stops) < c.xlim[1]
    y, mean, std = interactive.normalize(c.batch)
    t = torch.tensor(c.batch)
    assert torch.allclose(y, (t - t.mean()) / t.std(), atol=1e-5), "the notebook's formula"
    assert (f"{mean:.2f}", f"{std:.2f}") == ("1.56", "2.39")


def test_unknown_case_lists_the_cases():
    with pytest.raises(ValueError, match="book, notebook"):
        interactive.normalization_static("lecture")


def test_gaussian_is_drawn_with_scipy(monkeypatch):
    """The figure's Gaussians are ``scipy.stats.norm.pdf``, as in the lecture's notebook."""
    from scipy.stats import norm

    calls = []
    pdf = norm.pdf
    monkeypatch.setattr(norm, "pdf", lambda x, loc, scale: calls.append((loc, scale))
                        or pdf(x, loc, scale))
    fig = interactive.normalization_figure(2.0, gamma=1.5, beta=0.5)
    _, mean, std = interactive.normalize([2.0, *interactive.BATCH[1:]])
    assert calls == [(pytest.approx(mean), pytest.approx(std)), (0.5, 1.5)]
    top = fig.axes[0]
    curve = top.lines[0]
    assert max(curve.get_ydata()) == pytest.approx(pdf(mean, mean, std), rel=1e-3)


def test_normalization_widget_redraws():
    w = interactive.normalization_widget()
    nb = interactive.normalization_widget("notebook")
    x0 = next(c for c in nb.children if getattr(c, "description", "") == "example 0")
    assert (x0.min, x0.max, x0.step, x0.value) == (-30, 30, 0.5, 0)
    x0.value = 30.0
    _, mean, _ = interactive.normalize([30.0, *interactive.NORM_CASES["notebook"].batch[1:]])
    assert f"mean {mean:+.2f}" in nb.result.axes[0].get_title()
    assert nb.result.axes[0].get_xlim() == interactive.NORM_CASES["notebook"].xlim
    sliders = {c.description: c for c in w.children if hasattr(c, "description")}
    assert {"example 0", "gamma", "beta"} <= set(sliders)
    sliders["example 0"].value = 7.0
    _, mean, _ = interactive.normalize([7.0, *interactive.BATCH[1:]])
    assert f"mean {mean:+.2f}" in w.result.axes[0].get_title()
    sliders["gamma"].value = 2.0
    assert "2 * " in w.result.axes[1].get_title()


# ---------------------------------------------------------------------------
# 2. initialization


@pytest.fixture
def small_data(monkeypatch):
    g = torch.Generator().manual_seed(0)
    data = (torch.randint(0, 27, (500, 3), generator=g), torch.randint(0, 27, (500,), generator=g))
    monkeypatch.setattr(interactive, "load_splits",
                        lambda: types.SimpleNamespace(Xtr=data[0], Ytr=data[1]))
    return data


def test_batchnorm_makes_the_init_picture_independent_of_the_gain(small_data):
    a = interactive.init_diagnosis(0.5, batchnorm=True)
    b = interactive.init_diagnosis(3.0, batchnorm=True)
    assert [s.std for s in a.forward] == pytest.approx([s.std for s in b.forward], rel=1e-3)
    c = interactive.init_diagnosis(0.5, batchnorm=False)
    assert c.forward[-1].std < 0.5 * c.forward[0].std, "small gain: activations shrink"


def test_init_figure_has_activation_and_gradient_panels(small_data):
    fig = interactive.init_figure(3.0, batchnorm=False, grad_lim=0.01)
    top, bottom = fig.axes
    assert "gain 3" in top.get_title() and "no BatchNorm" in top.get_title()
    assert len(top.lines) == 5  # the five tanh layers
    assert bottom.get_xlim() == pytest.approx((-0.01, 0.01))
    labels = [t.get_text() for t in top.get_legend().get_texts()]
    assert labels[0].startswith("layer 1: ") and labels[0].endswith("%")
    assert "saturated" in top.get_legend().get_title().get_text()


def test_init_static_frames(small_data):
    # four frames in all (each costs ~0.5 s): a gain by both settings, two gains by one
    _, fig, payload = parse(interactive.init_static(gains=(2.0,)).html)
    assert sorted(payload["frames"]) == ["0-0", "0-1"]
    assert fig.find("input", type="checkbox") is not None
    _, fig, payload = parse(interactive.init_static(gains=(1.0, 2.0), batchnorm=(False,)).html)
    assert sorted(payload["frames"]) == ["0", "1"]
    assert fig.find("input", type="checkbox") is None


def test_init_widget_redraws(small_data):
    w = interactive.init_widget()
    gain = next(c for c in w.children if getattr(c, "description", "") == "gain")
    bn = next(c for c in w.children if getattr(c, "description", "") == "BatchNorm")
    gain.value = 0.5
    assert "gain 0.5" in w.result.axes[0].get_title()
    bn.value = True
    assert "with BatchNorm" in w.result.axes[0].get_title()


# ---------------------------------------------------------------------------
# 3. training


def fake_run(name: str):
    bn = "nobn" not in name
    model = models.deep_mlp(batchnorm=bn)
    n = len(model.parameters())
    g = torch.Generator().manual_seed(len(name))
    ud = -3 + 0.1 * torch.randn(2000, n, generator=g)
    return types.SimpleNamespace(model=model, ud=ud, ud_steps=torch.arange(0, 200_000, 100))


@pytest.fixture
def fake_runs(monkeypatch):
    monkeypatch.setattr(interactive, "get_run", fake_run)


def test_weight_columns_name_the_weight_matrices():
    model = models.deep_mlp(batchnorm=True)
    cols = stats.weight_columns(model)
    assert [name for _, name, _ in cols] == ["C", "W1", "W2", "W3", "W4", "W5", "W6"]
    params = model.parameters()
    assert all(params[j].ndim == 2 for j, _, _ in cols)
    assert [b for _, _, b in cols] == list(range(7))


def test_run_label():
    assert interactive.run_label("deep_bn_g1.67_lr0.03") == "BatchNorm, gain 1.67, lr 0.03"
    assert interactive.run_label("deep_nobn_g0.5_lr0.1") == "no BatchNorm, gain 0.5, lr 0.1"


def test_training_figure_marks_the_step(fake_runs):
    fig = interactive.training_figure("deep_bn_g1_lr0.1", step=50_000)
    left, right = fig.axes
    assert right.get_title() == "at step 50,000"
    assert left.get_title() == "BatchNorm, gain 1, lr 0.1"
    # 7 weight matrices: a faint full curve and a bright one up to the step
    bright = [ln for ln in left.lines if ln.get_alpha() is None and ln.get_label() in
              {"C", "W1", "W2", "W3", "W4", "W5", "W6"}]
    assert len(bright) == 7
    assert max(bright[0].get_xdata()) == 50_000


def test_the_training_explorer_offers_the_full_runs_with_records(monkeypatch):
    """The live explorer lists the 200,000-step runs with update:data records, never a
    short run of "Beyond BatchNorm" (the depth and batch runs record none: drawing one
    raised an IndexError)."""
    from makemore.runs import cache, registry

    monkeypatch.setattr(cache, "is_cached", lambda name: True)
    names = interactive.explorable_runs()
    assert set(names) == {s.name for s in registry.grid()} | {registry.DEEP_LN}
    assert not set(names) & {s.name for s in registry.DEPTH_RUNS}
    assert not set(names) & set(registry.BEYOND_RUNS) - {registry.DEEP_LN}
    assert all(registry.RUNS[n].ud_every == interactive.SMOOTH_EVERY for n in names)
    monkeypatch.setattr(cache, "is_cached", lambda name: name == registry.DEEP_BN)
    assert interactive.explorable_runs() == [registry.DEEP_BN]


def test_training_static_and_widget(fake_runs):
    names, steps = interactive.TRAINING_RUNS[:2], (199_900,)  # a frame costs ~0.5 s
    _, fig, payload = parse(interactive.training_static(names, steps).html)
    assert sorted(payload["frames"]) == ["0-0", "1-0"]
    assert [o.string for o in fig.find("select").find_all("option")] == [
        interactive.run_label(n) for n in names]
    w = interactive.training_widget(names=list(names))
    step = next(c for c in w.children if getattr(c, "description", "") == "step")
    step.value = 1_000
    assert w.result.axes[1].get_title() == "at step 1,000"


# ---------------------------------------------------------------------------
# the chapters


MARKERS = {"normalization": "normalization", "init-explorer": "init", "training-explorer":
           "training"}


def code_cells(md: Path):
    """``(tags, source)`` of every code cell of a MyST notebook page."""
    text = md.read_text(encoding="utf-8")
    for m in re.finditer(r"```\{code-cell\}[^\n]*\n(.*?)```", text, re.S):
        body = m.group(1)
        tags = re.search(r"^:tags: \[(.*?)\]", body, re.M)
        yield ([t.strip() for t in tags.group(1).split(",")] if tags else []), body


def test_chapters_show_live_widgets_without_running_them():
    """A widget executed at build time would put ipywidgets state into the page, and
    with it scripts from a CDN; the live cells are shown, not run (skip-execution)."""
    seen = set()
    for md in sorted((REPO / "book").glob("*.md")):
        for tags, body in code_cells(md):
            for fn in re.findall(r"interactive\.(\w+_widget)\(", body):
                seen.add(fn)
                assert "skip-execution" in tags, f"{md.name}: {fn}() cell must skip execution"
                assert "live-widget" in tags, f"{md.name}: tag the {fn}() cell live-widget"
            for fn in re.findall(r"interactive\.(\w+_static)\(", body):
                assert "skip-execution" not in tags, f"{md.name}: {fn}() must run at build"
    leftover = [md.name for md in (REPO / "book").glob("*.md")
                if "<!-- interactive:" in md.read_text(encoding="utf-8")]
    assert not leftover, f"interactive markers not replaced in {leftover}"
    if seen:
        assert seen <= {"normalization_widget", "init_widget", "training_widget"}
