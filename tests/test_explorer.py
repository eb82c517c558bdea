"""The kernel-free explorer: valid, self-contained, deterministic HTML with its data inside."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest

from resnet_lab.explorer import Explorer

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


def test_html_is_self_contained():
    html = _explorer().to_html()
    # No external resource of any kind: the page must work offline, without a CDN.
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:""", html)
    assert "require(" not in html and "@import" not in html and "url(http" not in html
    tags = _parse(html).tags
    assert not [t for t, a in tags if t in ("link", "img", "iframe") or "src" in a]


def test_embedded_data_matches_input():
    parser = _parse(_explorer().to_html())
    specs = [text for attrs, text in parser.scripts if "data-spec" in attrs]
    assert len(specs) == 1
    spec = json.loads(specs[0].replace("<\\/", "</"))
    assert set(spec["data"]) == {"20|plain", "20|residual", "56|residual"}
    label, color, xs, ys = spec["data"]["56|residual"][0]
    assert label == "test error" and color.startswith("#")
    assert xs == EPOCHS and ys == [0.6, 0.3, 0.2, 0.12, 0.1]


def test_controls_and_default_state_are_rendered():
    explorer = _explorer(default={"depth": "20", "network": "residual"})
    tags = _parse(explorer.to_html()).tags
    selects = [a["data-control"] for t, a in tags if t == "select"]
    assert selects == ["depth", "network"]
    selected = [a["value"] for t, a in tags if t == "option" and "selected" in a]
    assert selected == ["20", "residual"]
    svg = [a for t, a in tags if t == "svg"][0]
    assert svg["data-state"] == "20|residual"
    # The default curves are drawn server-side, so the figure shows even without scripts.
    paths = [a for t, a in tags if t == "path" and "data-label" in a]
    assert [p["data-label"] for p in paths] == ["test error"]
    assert re.fullmatch(r"M[\d.]+ [\d.]+(L[\d.]+ [\d.]+){4}", paths[0]["d"])


def test_output_is_deterministic_and_ids_differ_between_explorers():
    a, b = _explorer().to_html(), _explorer().to_html()
    assert a == b
    other = _explorer(title="another").to_html()
    ids = {re.search(r'data-explorer="([^"]+)"', h).group(1) for h in (a, other)}
    assert len(ids) == 2
    assert _explorer()._repr_html_() == a


def test_numbers_are_rounded_and_gaps_allowed():
    data = {("20",): {"loss": ([1, 2, 3], [0.123456789, float("nan"), 1 / 3])}}
    html = Explorer(data, {"depth": ["20"]}, title="t", xlabel="x", ylabel="y").to_html()
    assert "0.1235" in html and "0.3333" in html and "0.123456" not in html
    assert "null" in html and "NaN" not in html
    path = [a for t, a in _parse(html).tags if t == "path" and "data-label" in a][0]
    assert path["d"].count("M") == 2  # the NaN breaks the line in two


def test_log_axis_ticks_span_the_data():
    data = {("relu",): {"layer 1": ([1, 2, 3], [1e-6, 1e-3, 1.0])}}
    explorer = Explorer(data, {"act": ["relu"]}, title="t", xlabel="layer", ylabel="|g|", logy=True)
    assert explorer._y == (1e-6, 1.0)
    assert explorer._yticks[0] == pytest.approx(1e-6) and explorer._yticks[-1] == pytest.approx(1)
    assert "10\u207b\u2076" in explorer.to_html()  # 10^-6 label


def test_reference_curves_and_caption():
    html = _explorer(reference={"He et al. (2016)": ([1, 5], [0.3, 0.1])}, caption="A caption.")
    tags = _parse(html.to_html()).tags
    refs = [a for t, a in tags if t == "path" and "data-reference" in a]
    assert [r["data-reference"] for r in refs] == ["He et al. (2016)"]
    assert "A caption." in html.to_html()


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
    ],
)
def test_bad_input_raises_value_error(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        _explorer(**kwargs)


def test_save_html_writes_a_standalone_page(tmp_path):
    path = _explorer().save_html(tmp_path / "explorer.html")
    text = path.read_text()
    assert text.startswith("<!DOCTYPE html>") and 'data-explorer="rl-explorer-' in text


def test_repr_is_stable_text():
    assert repr(_explorer()) == (
        "Explorer('CIFAR-10', controls=['depth', 'network'], 3 combinations computed)"
    )
