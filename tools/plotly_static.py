"""Sphinx extension: ship plotly.js once with the site, and load it without delaying the text.

The book's interactive figures (:mod:`resnet_lab.book.explorer`) draw with the page's
``window.Plotly``. On a page whose figures are all explorers drawing trace types of
plotly.js's *basic* partial bundle (``scatter``, ``bar``, ``pie``: 1.2 MB instead of 4.8 MB,
vendored in ``tools/vendor/``), this adds ``plotly-loader.js`` (``tools/plotly_loader.js``,
deferred), which fetches that bundle only when a figure is about to scroll into view: the
text paints first, and the explorers show their static picture until then. A page with
any other Plotly figure (plotly's own HTML output, which needs ``window.Plotly`` at once)
gets the full ``plotly.min.js`` of the installed plotly package, loaded before the page as
before. Either file is copied into the build's ``_static/``: never committed there, never
fetched from a CDN, never inlined per figure.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FULL, BASIC, LOADER = "plotly.min.js", "plotly-basic.min.js", "plotly-loader.js"
SOURCES = {BASIC: HERE / "vendor" / BASIC, LOADER: HERE / "plotly_loader.js"}
# Trace types in plotly.js's basic bundle (plotly.js-basic-dist-min).
BASIC_TRACES = {"scatter", "bar", "pie"}
# What resnet_lab.book.explorer (and plotly's own HTML output) put in a page with a figure.
EXPLORER, PLOTLY_DIV = 'class="rl-explorer"', "plotly-graph-div"
FIGURE_JSON = re.compile(r'<script type="application/json" data-figure="">(.*?)</script>', re.S)


def _full_source() -> Path:
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / FULL
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: reinstall plotly (pip install plotly)")
    return path


def bundle_for(body: str) -> str | None:
    """Which plotly.js a page's HTML ``body`` needs: ``BASIC``, ``FULL`` or ``None``."""
    if PLOTLY_DIV in body:
        return FULL
    if EXPLORER not in body:
        return None
    types = set()
    for payload in FIGURE_JSON.findall(body):
        types |= {trace.get("type", "scatter") for trace in json.loads(payload)["data"]}
    return BASIC if types <= BASIC_TRACES else FULL


def _add_script(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    bundle = bundle_for(context.get("body", ""))
    if bundle == BASIC:
        app.add_js_file(LOADER, loading_method="defer", **{"data-plotly": BASIC})
    elif bundle == FULL:
        # Loaded in <head> without defer: plotly's own figures call window.Plotly at once.
        app.add_js_file(FULL, priority=100)


def _copy(app: Any, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    static = Path(app.outdir) / "_static"
    static.mkdir(parents=True, exist_ok=True)
    for name, source in [*SOURCES.items(), (FULL, _full_source())]:
        shutil.copyfile(source, static / name)


def setup(app: Any) -> dict:
    _full_source()  # fail at start-up, with the fix, if plotly is not installed
    for path in SOURCES.values():
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: restore it from git")
    app.connect("html-page-context", _add_script)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
