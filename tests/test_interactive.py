"""The interactive sections: the figures compute what they show, the live widgets
redraw when a control moves, the static versions hold every frame inline with no
network, and the chapters show the live code without running it at build time."""
from __future__ import annotations

import base64
import json
import re
import types
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from bs4 import BeautifulSoup  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from makemore import interactive, models  # noqa: E402
from makemore.interactive import Control  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


def parse(markup: str):
    """The explorer's figure element, its JSON payload and its script."""
    soup = BeautifulSoup(markup, "html.parser")
    fig = soup.find("figure", class_="mm-explorer")
    payload = json.loads(fig.find("script", type="application/json").string)
    return soup, fig, payload


def frame_png(uri: str) -> bytes:
    head, data = uri.split(",", 1)
    assert head == "data:image/png;base64"
    png = base64.b64decode(data)
    assert png.startswith(PNG)
    return png


def dot(x: float = 0.0, flag: bool = False) -> Figure:
    fig = Figure(figsize=(2, 1))
    fig.subplots().plot([x], [1 if flag else 0], "o")
    return fig


# ---------------------------------------------------------------------------
# static explorers


def test_control_checks_its_values():
    with pytest.raises(ValueError, match="labels"):
        Control("x", "x", (1, 2), ("1",))
    with pytest.raises(ValueError, match="two values"):
        Control("b", "b", (1, 2, 3), ("1", "2", "3"), kind="checkbox")
    with pytest.raises(ValueError, match="kind"):
        Control("x", "x", (1,), ("1",), kind="knob")
    with pytest.raises(ValueError, match="initial"):
        Control("x", "x", (1,), ("1",), initial=1)


def test_static_explorer_holds_one_frame_per_combination():
    controls = [Control("x", "x", (0.0, 1.0, 2.0), ("0", "1", "2"), initial=1),
                Control("flag", "flag", (False, True), ("off", "on"), kind="checkbox")]
    markup = interactive.static_explorer(dot, controls, "demo",
                                         alt=lambda x, flag: f"x={x} flag={flag}")
    soup, fig, payload = parse(markup)
    assert fig["id"] == "mm-explorer-demo"
    assert fig["data-mm-frame"] == "1-0"
    assert sorted(payload["frames"]) == sorted(f"{i}-{j}" for i in range(3) for j in range(2))
    assert payload["labels"] == [["0", "1", "2"], ["off", "on"]]
    img = fig.find("img", class_="mm-frame")
    assert payload["frames"]["1-0"] == [None, "x=1.0 flag=False"], "the img holds frame 1-0"
    assert img["alt"] == "x=1.0 flag=False"
    srcs = [img["src"]] + [src for src, _ in payload["frames"].values() if src]
    sizes = {interactive._png_size(frame_png(src)) for src in srcs}
    assert len(sizes) == 1, "every frame has the same pixel size (no tight bbox)"
    assert len(set(srcs)) == 6, "each frame stored once"
    assert (int(img["width"]), int(img["height"])) == sizes.pop()
    rng = fig.find("input", type="range")
    assert (rng["min"], rng["max"], rng["value"]) == ("0", "2", "1")
    assert fig.find("input", type="checkbox") is not None
    # the controls show up only once the script runs
    assert fig.find("div", class_="mm-controls").has_attr("hidden")
    script = soup.find_all("script")[-1].string
    assert '"mm-explorer-demo"' in script
    assert "%%" not in soup.find("style").string, "CSS is written as is, not %-formatted"


def test_static_explorer_needs_no_network():
    markup = interactive.static_explorer(
        dot, [Control("x", "x", (0.0, 1.0), ("a", "b"), kind="select")], "net")
    assert "http:" not in markup and "https:" not in markup
    soup, fig, _ = parse(markup)
    assert all(not s.get("src") for s in soup.find_all("script"))
    assert [o.string for o in fig.find("select").find_all("option")] == ["a", "b"]


def test_static_explorer_rejects_bad_names():
    with pytest.raises(ValueError):
        interactive.static_explorer(dot, [Control("x", "x", (0.0,), ("0",))], "Bad Name")
    with pytest.raises(ValueError):
        interactive.static_explorer(dot, [], "empty")


def test_payload_cannot_close_its_script_tag():
    markup = interactive.static_explorer(
        dot, [Control("x", "x", (0.0,), ("</script>",))], "esc")
    soup, fig, payload = parse(markup)
    assert payload["labels"] == [["</script>"]]


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


def test_normalization_static_frames():
    markup = interactive.normalization_static().data
    _, fig, payload = parse(markup)
    assert len(payload["frames"]) == len(interactive.NORM_VALUES)
    assert payload["labels"][0][int(fig["data-mm-frame"])] == f"{interactive.BATCH[0]:+.1f}"
    assert len(markup) < 300_000, "keep the static version small"


def test_normalization_widget_redraws():
    w = interactive.normalization_widget()
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
    monkeypatch.setattr(interactive, "_train_split", lambda: data)
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
    _, fig, payload = parse(interactive.init_static(gains=(1.0, 2.0)).data)
    assert sorted(payload["frames"]) == ["0-0", "0-1", "1-0", "1-1"]
    assert fig.find("input", type="checkbox") is not None
    _, fig, payload = parse(interactive.init_static(gains=(1.0, 2.0), batchnorm=(False,)).data)
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
    monkeypatch.setattr(interactive, "_run", fake_run)


def test_weight_columns_name_the_weight_matrices():
    model = models.deep_mlp(batchnorm=True)
    cols = interactive.weight_columns(model)
    assert [name for _, name, _ in cols] == ["C", "W1", "W2", "W3", "W4", "W5", "W6"]
    params = model.parameters()
    assert all(params[j].ndim == 2 for j, _, _ in cols)
    assert [b for _, _, b in cols] == list(range(7))


def test_smooth_is_a_trailing_mean():
    t = torch.arange(10, dtype=torch.float32).view(-1, 1) ** 2
    s = interactive.smooth(t, 3)
    expected = [t[max(0, i - 2): i + 1].mean().item() for i in range(10)]
    assert s.view(-1).tolist() == pytest.approx(expected)


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


def test_training_static_and_widget(fake_runs):
    names, steps = interactive.TRAINING_RUNS[:2], (0, 199_900)
    _, fig, payload = parse(interactive.training_static(names, steps).data)
    assert len(payload["frames"]) == 4
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
