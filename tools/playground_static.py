"""Sphinx extension: ship the depth playground (``book/playground/``) with the site.

Copies the playground's files (its scripts, stylesheet and the pinned TensorFlow.js bundle
in ``vendor/``) into the build's ``_static/playground/`` and adds its script and stylesheet
to the pages that hold a ``<div class="rl-playground">`` only. TensorFlow.js itself is
loaded by the playground's script when the reader reaches it. (Files in the book's
``_static/`` would be added to every page by Jupyter Book, hence this extension.)
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).resolve().parent.parent / "book" / "playground"
TARGET = "playground"
MARKER = 'class="rl-playground"'


def _check() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from vendor_tfjs import check

    problems = check(SOURCE / "vendor")
    if problems:
        raise RuntimeError("; ".join(problems))


def _copy(app: Any, exception: Exception | None) -> None:
    if exception is None and app.builder.format == "html":
        shutil.copytree(SOURCE, Path(app.outdir) / "_static" / TARGET, dirs_exist_ok=True)


def _add_files(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    if MARKER in context.get("body", ""):
        app.add_css_file(f"{TARGET}/playground.css")
        app.add_js_file(f"{TARGET}/net.js")
        app.add_js_file(f"{TARGET}/playground.js")


def setup(app: Any) -> dict:
    _check()  # fail at start-up, with the fix, if the vendored TensorFlow.js is not the pinned one
    app.connect("html-page-context", _add_files)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
