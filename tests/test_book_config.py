"""The book's configuration keeps the site offline, launchable in Colab and fully indexed."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
API = ROOT / "book" / "api.md"
# Modules the API reference must cover once they exist.
DOCUMENTED = [
    "runtime",
    "models",
    "summary",
    "data",
    "engine",
    "results",
    "analysis.diagnostics",
    "book.plots",
    "book.explorer",
    "book.widgets",
]


def _toc_files(node) -> list[str]:
    if isinstance(node, dict):
        own = [node[k] for k in ("root", "file") if isinstance(node.get(k), str)]
        return own + [f for v in node.values() for f in _toc_files(v)]
    if isinstance(node, list):
        return [f for item in node for f in _toc_files(item)]
    return []


def test_every_toc_entry_exists():
    missing = [
        f
        for f in _toc_files(TOC)
        if not any((ROOT / f).with_suffix(s).exists() for s in (".md", ".ipynb"))
    ]
    assert not missing, f"_toc.yml lists files that do not exist: {missing}"
    assert "book/api" in _toc_files(TOC), "the API reference (book/api.md) is not in _toc.yml"


def test_site_needs_no_network():
    sphinx = CONFIG["sphinx"]
    extensions = sphinx["config"]["extensions"]
    assert "sphinx-mathjax-offline" in extensions, "MathJax must ship with the build"
    # Widget JavaScript would come from a CDN; the book uses kernel-free explorers instead.
    assert sphinx["config"]["nb_ipywidgets_js"] == {}
    assert "sphinx_thebe" not in extensions and CONFIG["launch_buttons"]["thebe"] is False
    assert not CONFIG.get("html", {}).get("google_analytics_id"), "no analytics scripts"


def test_a_raising_cell_fails_the_book_build():
    # `make book` executes the chapters in the machine's own precision (nbval checks them
    # in fp32); a cell error must end the build, not become a warning in a green build.
    execute = CONFIG["execute"]
    assert execute["allow_errors"] is False and execute["raise_on_error"] is True
    assert "-W" in (ROOT / "Makefile").read_text().split("JB_FLAGS :=")[1].splitlines()[0]


def test_colab_launch_buttons():
    assert CONFIG["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert CONFIG["repository"]["branch"]


def _api_modules() -> list[str]:
    return re.findall(r"^\.\. automodule:: (\S+)", API.read_text(), flags=re.MULTILINE)


@pytest.mark.parametrize("module", _api_modules())
def test_api_reference_modules_import(module):
    importlib.import_module(module)  # autodoc would fail the -W build on an import error


def test_api_reference_covers_the_package():
    listed = set(_api_modules())
    package = ROOT / "resnet_lab"
    missing = [
        f"resnet_lab.{name}"
        for name in DOCUMENTED
        if ((package / f"{name.replace('.', '/')}.py").exists() or (package / name).is_dir())
        and f"resnet_lab.{name}" not in listed
    ]
    assert not missing, f"book/api.md lacks `.. automodule::` entries for {missing}"
