"""The explorer machinery: a static explorer holds one inline frame per combination of
its controls, its controls and script need no network, and bad input is refused."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import base64  # noqa: E402
import json  # noqa: E402

import pytest  # noqa: E402
from bs4 import BeautifulSoup  # noqa: E402
from makemore.show import explorer  # noqa: E402
from makemore.show.explorer import Control  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

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
    markup = explorer.static_explorer(dot, controls, "demo",
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
    sizes = {explorer._png_size(frame_png(src)) for src in srcs}
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
    markup = explorer.static_explorer(
        dot, [Control("x", "x", (0.0, 1.0), ("a", "b"), kind="select")], "net")
    assert "http:" not in markup and "https:" not in markup
    soup, fig, _ = parse(markup)
    assert all(not s.get("src") for s in soup.find_all("script"))
    assert [o.string for o in fig.find("select").find_all("option")] == ["a", "b"]


def test_static_explorer_rejects_bad_names():
    with pytest.raises(ValueError):
        explorer.static_explorer(dot, [Control("x", "x", (0.0,), ("0",))], "Bad Name")
    with pytest.raises(ValueError):
        explorer.static_explorer(dot, [], "empty")


def test_payload_cannot_close_its_script_tag():
    markup = explorer.static_explorer(
        dot, [Control("x", "x", (0.0,), ("</script>",))], "esc")
    soup, fig, payload = parse(markup)
    assert payload["labels"] == [["</script>"]]


def test_output_carries_the_initial_frame_as_png():
    """Beside the HTML, the frame the explorer opens on, for whatever cannot show HTML
    (a LaTeX or other non-HTML builder, a notebook viewer)."""
    controls = [Control("x", "x", (0.0, 1.0, 2.0), ("0", "1", "2"), initial=1)]
    markup = explorer.static_explorer(dot, controls, "png", alt=lambda x: f'x is {x} & "more"')
    bundle = explorer.as_output(markup)._repr_mimebundle_()
    assert bundle["text/html"] == markup
    _, fig, _ = parse(markup)
    assert base64.b64decode(bundle["image/png"]) == frame_png(fig.find("img")["src"])
    assert bundle["text/plain"] == 'x is 1.0 & "more"'
    with pytest.raises(ValueError, match="initial frame"):
        explorer.as_output("<p>not an explorer</p>")
