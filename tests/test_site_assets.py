"""The book's own Sphinx extensions that keep pages light: plotly.js and Font Awesome."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import icon_subset  # noqa: E402
import plotly_static  # noqa: E402

from resnet_lab.book.explorer import Explorer  # noqa: E402


def _explorer_html() -> str:
    data = {("20",): {"error": ([1, 2], [0.5, 0.4])}, ("56",): {"error": ([1, 2], [0.6, 0.5])}}
    return Explorer(data, {"depth": ["20", "56"]}, "t", "epoch", "error", static=False).to_html()


def test_explorer_pages_get_the_basic_bundle_loaded_on_view():
    page = "<p>text</p>" + _explorer_html()
    assert plotly_static.bundle_for(page) == plotly_static.BASIC
    assert plotly_static.bundle_for("<p>no figure</p>") is None
    # A trace type outside the basic bundle, or plotly's own HTML output: the full plotly.js.
    heatmap = page.replace('"type":"scatter"', '"type":"heatmap"', 1)
    assert heatmap != page and plotly_static.bundle_for(heatmap) == plotly_static.FULL
    assert plotly_static.bundle_for('<div class="plotly-graph-div"></div>') == plotly_static.FULL
    # The explorer waits for plotly.js instead of giving up when the page has none yet.
    assert "window.rlPlotly" in page


def test_the_vendored_bundle_has_the_traces_it_is_chosen_for():
    text = (ROOT / "tools" / "vendor" / plotly_static.BASIC).read_text()
    for trace in plotly_static.BASIC_TRACES:
        assert f'moduleType:"trace",name:"{trace}"' in text
    assert "window.Plotly = Plotly" in text


@pytest.fixture(scope="module")
def fontawesome() -> Path:
    static = icon_subset.theme_static()
    script = static / icon_subset.FONTAWESOME.relative_to("_static")
    if not script.exists():
        pytest.skip("this pydata-sphinx-theme ships no Font Awesome script")
    return static


def test_icon_names_and_aliases_resolve_to_code_points(fontawesome):
    script = fontawesome / icon_subset.FONTAWESOME.relative_to("_static")
    table = icon_subset.icon_table(script.read_text())
    assert table["bars"] == table["navicon"] == 0xF0C9
    assert table["github"] == 0xF09B and len(table) > 1500


def test_used_code_points_come_from_pages_and_the_themes_own_css(tmp_path):
    (tmp_path / "page.html").write_text('<i class="fa-solid fa-bars"></i><span class="fa-x">')
    css = '.onthispage:after{content:"\\f107"}.fa-circle:before{content:"\\f111"}'
    (tmp_path / "theme.css").write_text(css + '.note{--icon:"\uf05a"}')
    table = {"bars": 0xF0C9, "circle": 0xF111}
    # Font Awesome's own rule for every icon is not a use; the theme's arrow and note are.
    assert icon_subset.used_codepoints(tmp_path, table) == {0xF0C9, 0xF107, 0xF05A}


def test_fonts_keep_only_the_glyphs_asked_for(fontawesome, tmp_path):
    from fontTools.ttLib import TTFont

    source = fontawesome / icon_subset.WEBFONTS.relative_to("_static") / "fa-solid-900.ttf"
    target = tmp_path / source.name
    icon_subset.subset_font(source, target, {0xF0C9, 0xF107})
    assert set(TTFont(target).getBestCmap()) == {0xF0C9, 0xF107}
    assert target.stat().st_size < source.stat().st_size / 20
