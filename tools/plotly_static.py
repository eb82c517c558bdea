"""Sphinx extension: ship plotly.js once with the site, from the installed plotly package.

The book's interactive figures (:mod:`resnet_lab.book.explorer`) draw with the page's
``window.Plotly``. This copies ``plotly.min.js`` out of the plotly Python package into
the build's ``_static/`` (so it is never committed, never fetched from a CDN and never
inlined per figure) and adds it to the pages that hold a Plotly figure only.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

FILENAME = "plotly.min.js"
# What resnet_lab.book.explorer (and plotly's own HTML output) put in a page with a figure.
MARKERS = ('class="rl-explorer"', "plotly-graph-div")


def _source() -> Path:
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / FILENAME
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: reinstall plotly (pip install plotly)")
    return path


def _copy(app: Any, exception: Exception | None) -> None:
    if exception is None and app.builder.format == "html":
        static = Path(app.outdir) / "_static"
        static.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_source(), static / FILENAME)


def _add_script(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    body = context.get("body", "")
    if any(marker in body for marker in MARKERS):
        # Loaded in <head> without defer: the figures' inline scripts find window.Plotly.
        app.add_js_file(FILENAME, priority=100)


def setup(app: Any) -> dict:
    _source()  # fail at start-up, with the fix, if plotly is not installed
    app.connect("html-page-context", _add_script)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
