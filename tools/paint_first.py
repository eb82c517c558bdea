"""Sphinx extension: the text of a page paints first; MathJax and pictures come after.

- MathJax (1.2 MB; shipped with the site by sphinx-mathjax-offline) is loaded by Sphinx as
  a deferred script on every page with an equation. A deferred script runs before the
  first paint when the page is read from disk, so on a phone's slower CPU the reader would
  wait for MathJax to compile before seeing any text. ``mathjax_path`` points instead at a
  small loader that adds the real MathJax script once the browser has painted; equations
  are typeset a moment later.
- The pictures in a page (notebook figures) load when they come near the screen
  (``loading="lazy"``): a chapter does not fetch every figure before the reader scrolls.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

LOADER = "mathjax-after-paint.js"
# requestAnimationFrame runs just before the next paint; a task queued from it runs after.
SCRIPT = """/* Start MathJax once the text has painted (tools/paint_first.py). */
(function () {
  "use strict";
  var me = document.currentScript;
  var src = new URL(me.getAttribute("data-mathjax"), me.src).href;
  function start() {
    var script = document.createElement("script");
    script.src = src;
    script.async = true;
    document.head.appendChild(script);
  }
  requestAnimationFrame(function () { setTimeout(start, 0); });
})();
"""


def _use_loader(app: Any, config: Any) -> None:
    real = config.mathjax_path
    if not real or real == LOADER:
        return
    config.mathjax_path = LOADER
    config.mathjax_options = {**(config.mathjax_options or {}), "data-mathjax": real}
    config.mathjax_options.pop("async", None)
    config.mathjax_options["defer"] = "defer"


IMG = re.compile(r"<img\b(?![^>]*\bloading=)")


def _lazy_images(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    if "body" in context:
        context["body"] = IMG.sub('<img loading="lazy"', context["body"])


def _write(app: Any, exception: Exception | None) -> None:
    if exception is None and app.builder.format == "html":
        static = Path(app.outdir) / "_static"
        static.mkdir(parents=True, exist_ok=True)
        (static / LOADER).write_text(SCRIPT)


def setup(app: Any) -> dict:
    app.connect("config-inited", _use_loader, priority=900)
    app.connect("html-page-context", _lazy_images)
    app.connect("build-finished", _write)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
