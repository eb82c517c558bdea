"""Training needs no notebook stack: ipywidgets and plotly are the book's optional extra."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent


def test_the_notebook_stack_is_an_optional_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"])
    book = " ".join(project["optional-dependencies"]["book"])
    for name in ("ipywidgets", "plotly"):
        assert name not in core and name in book


def test_training_and_the_command_line_import_no_notebook_package():
    code = (
        "import sys, resnet_lab as rl, resnet_lab.engine, resnet_lab.cli, resnet_lab.bench, "
        "resnet_lab.data, resnet_lab.results, resnet_lab.results.laptop, resnet_lab.results.studies, "
        "resnet_lab.analysis.diagnostics, resnet_lab.book.reproduction\n"
        "rl.build('resnet20')\n"
        "print(sorted(m for m in ('ipywidgets', 'plotly', 'IPython') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_package_version_is_the_projects():
    import resnet_lab

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert resnet_lab.__version__ == project["version"]


def test_every_subpackage_ships_in_the_wheel():
    # setuptools lists packages explicitly; a subpackage left out would be missing after pip install
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "resnet_lab").rglob("__init__.py")
    }
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
