"""The kernel-free explorer: valid, self-contained, deterministic HTML with its data inside."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest

from resnet_lab.book.explorer import Explorer, Series

EPOCHS = [1, 2, 3, 4, 5]


def _data():
    return {
        ("20", "plain"): {"test error": (EPOCHS, [0.5, 0.4, 0.3, 0.25, 0.2])},
        ("20", "residual"): {"test error": (EPOCHS, [0.5, 0.35, 0.25, 0.2, 0.15])},
        "56|residual": {"test error": (EPOCHS, [0.6, 0.3, 0.2, 0.12, 0.1])},
    }


def _explorer(**kwargs):
    args = dict(
        data=_data(),
        controls={"depth": ["20", "56"], "network": ["plain", "residual"]},
        title="CIFAR-10",
        xlabel="epoch",
        ylabel="test error (fraction)",
    )
    args.update(kwargs)
    return Explorer(**args)


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.stack: list[str] = []
        self.scripts: list[tuple[dict, str]] = []
        self._script: dict | None = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._script, self._text = dict(attrs), ""

    def handle_endtag(self, tag):
        if tag == "script":
            self.scripts.append((self._script, self._text))
            self._script = None

    def handle_data(self, data):
        if self._script is not None:
            self._text += data


def _parse(html: str) -> _Collector:
    parser = _Collector()
    parser.feed(html)
    parser.close()
    return parser


def _spec(explorer: Explorer) -> dict:
    scripts = [text for attrs, text in _parse(explorer.to_html()).scripts if "data-figure" in attrs]
    assert len(scripts) == 1
    return json.loads(scripts[0].replace("<\\/", "</"))


def _visible(traces: list[dict]) -> list[str]:
    return [t["name"] for t in traces if t["visible"] is True]


def test_html_is_self_contained_and_uses_the_pages_plotly():
    html = _explorer().to_html()
    # No external resource of any kind: the page must work offline, without a CDN,
    # and plotly.js (4 MB) is not inlined: the book ships it once (tools/plotly_static.py).
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:""", html)
    assert "require(" not in html and "@import" not in html and "url(http" not in html
    tags = _parse(html).tags
    assert not [t for t, a in tags if t in ("link", "iframe") or "src" in a and t != "img"]
    assert [a["src"][:22] for t, a in tags if t == "img"] == ["data:image/png;base64,"]
    assert len(html) < 200_000 and "window.Plotly" in html


def test_mimebundle_has_plotly_json_for_jupyter_and_html_for_the_book():
    bundle = _explorer()._repr_mimebundle_()
    assert set(bundle) == {"application/vnd.plotly.v1+json", "text/html", "text/plain"}
    figure = bundle["application/vnd.plotly.v1+json"]
    go = pytest.importorskip("plotly.graph_objects")
    go.Figure(data=figure["data"], layout=figure["layout"])  # plotly validates every key
    # JupyterLab shows the mimetype alone: its drop-down lists every computed setting.
    (menu,) = figure["layout"]["updatemenus"]
    assert [b["label"] for b in menu["buttons"]] == ["network plain", "network residual"]
    assert "https:" not in bundle["text/html"]


def test_overlay_draws_every_value_of_one_control_with_stable_colours():
    explorer = _explorer(default={"depth": "20", "network": "residual"})
    assert explorer.overlay == "depth" and explorer.dropdowns == ["network"]
    traces = explorer.to_dict()["data"]
    # Both depths of the chosen network are on the plot; the legend toggles each.
    assert _visible(traces) == ["depth 20", "depth 56"]
    colors = {(t["meta"], t["name"]): t["line"]["color"] for t in traces}
    assert colors["plain", "depth 20"] == colors["residual", "depth 20"]
    assert colors["residual", "depth 20"] != colors["residual", "depth 56"]
    assert all(
        "%{y" in t["hovertemplate"] and "test error (fraction)" in t["hovertemplate"]
        for t in traces
    )


def test_without_overlay_one_setting_at_a_time_and_colours_follow_the_curve():
    explorer = _explorer(overlay=None)
    assert explorer.dropdowns == ["depth", "network"]
    assert explorer.settings() == ["20|plain", "20|residual", "56|residual"]
    traces = explorer.to_dict()["data"]
    assert _visible(traces) == ["test error"]
    assert len({t["line"]["color"] for t in traces}) == 1


def test_axes_fit_what_is_shown_unless_fixed():
    layout = _explorer().to_dict()["layout"]
    assert layout["xaxis"]["autorange"] is True and layout["yaxis"]["autorange"] is True
    fixed = _explorer(ylim=(0, 1)).to_dict()["layout"]["yaxis"]
    assert fixed["autorange"] is False and fixed["range"] == [0, 1]
    log = Explorer(
        {("a",): {"g": ([1, 2], [1e-6, 1])}},
        {"c": ["a"]},
        title="t",
        xlabel="x",
        ylabel="y",
        logy=True,
        ylim=(1e-6, 10),
    ).to_dict()
    assert log["layout"]["yaxis"]["type"] == "log" and log["layout"]["yaxis"]["range"] == [-6, 1]
    # Text stays readable on a phone: plotly does not scale fonts down.
    assert layout["xaxis"]["tickfont"]["size"] >= 10 and layout["yaxis"]["tickfont"]["size"] >= 10


def test_html_controls_default_state_and_settings():
    explorer = _explorer(overlay=None, default={"depth": "20", "network": "residual"})
    tags = _parse(explorer.to_html()).tags
    selects = [a["data-control"] for t, a in tags if t == "select"]
    assert selects == ["depth", "network"]
    selected = [a["value"] for t, a in tags if t == "option" and "selected" in a]
    assert selected == ["20", "residual"]
    spec = _spec(explorer)
    assert spec["settings"] == ["20|plain", "20|residual", "56|residual"]
    assert _visible(spec["data"]) == ["test error"]
    assert [t["meta"] for t in spec["data"] if t["visible"]] == ["20|residual"]
    assert "updatemenus" not in spec["layout"]  # the book uses the HTML drop-downs


def test_output_is_deterministic_and_ids_differ_between_explorers():
    a, b = _explorer().to_html(), _explorer().to_html()
    assert a == b
    other = _explorer(title="another").to_html()
    ids = {re.search(r'data-explorer="([^"]+)"', h).group(1) for h in (a, other)}
    assert len(ids) == 2


def test_numbers_are_rounded_and_gaps_allowed():
    data = {("20",): {"loss": ([1, 2, 3], [0.123456789, float("nan"), 1 / 3])}}
    explorer = Explorer(data, {"depth": ["20"]}, title="t", xlabel="x", ylabel="y")
    (trace,) = explorer.to_dict()["data"]
    assert trace["y"] == [0.1235, None, 0.3333]
    assert "NaN" not in explorer.to_html()


def test_bands_and_reference_curves():
    band = Series([1, 2], [0.5, 0.4], low=[0.4, 0.3], high=[0.6, 0.5], color="#123456")
    explorer = _explorer(
        data={("20", "plain"): {"mean": band}},
        reference={"He et al. (2016)": ([1, 5], [0.3, 0.1])},
        caption="A caption.",
    )
    traces = explorer.to_dict()["data"]
    fill, line, ref = traces
    assert fill["fill"] == "toself" and fill["y"] == [0.6, 0.5, 0.3, 0.4]
    assert fill["legendgroup"] == line["legendgroup"]  # the band toggles with its curve
    assert line["line"]["color"] == "#123456"
    assert ref["name"] == "He et al. (2016)" and ref["meta"] is None and ref["visible"] is True
    assert "A caption." in explorer.to_html()
    with pytest.raises(ValueError, match="both low and high"):
        _explorer(data={("20", "plain"): {"m": Series([1], [1], low=[1])}})


def test_single_has_no_controls():
    explorer = Explorer.single({"a": ([1, 2], [3, 4])}, title="t", xlabel="x", ylabel="y")
    assert explorer.dropdowns == [] and explorer.settings() == [""]
    assert "<select" not in explorer.to_html()
    assert "updatemenus" not in explorer.to_dict()["layout"]


def test_static_picture_can_be_left_out():
    assert "data:image/png" not in _explorer(static=False).to_html()


def test_script_cannot_be_closed_by_data():
    data = {("a",): {"</script><b>x": ([1, 2], [1, 2])}}
    html = Explorer(data, {"c": ["a"]}, title="t", xlabel="x", ylabel="y").to_html()
    parser = _parse(html)
    assert [t for t, _ in parser.tags].count("b") == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"data": {("20",): {"e": ([1], [1])}}}, "2 controls"),
        ({"data": {("32", "plain"): {"e": ([1], [1])}}}, "not a value of control 'depth'"),
        ({"data": {("20", "plain"): {"e": ([1, 2], [1])}}}, "2 x values but 1 y values"),
        ({"default": ("56", "plain")}, "default"),
        ({"controls": {}}, "at least one control"),
        ({"data": {}}, "at least one combination"),
        ({"overlay": "width"}, "overlay 'width' is not a control"),
    ],
)
def test_bad_input_raises_value_error(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        _explorer(**kwargs)


def test_save_html_writes_a_standalone_page(tmp_path):
    path = _explorer().save_html(tmp_path / "explorer.html")
    text = path.read_text()
    assert text.startswith("<!DOCTYPE html>") and 'data-explorer="rl-explorer-' in text
    assert "Plotly" in text[: text.index("data-explorer")]  # plotly.js inlined once, offline


def test_repr_is_stable_text():
    assert repr(_explorer()) == (
        "Explorer('CIFAR-10', controls=['depth', 'network'], 3 combinations computed)"
    )
