"""The repository URL is configured once (``_config.yml`` repository.url) and used everywhere.

Colab installs the package from it, the launch buttons and the README point at it,
and pip's metadata names it: a fork changes one line and this test finds the rest.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest depends on tomli on Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
GIT_URL = re.compile(r"git\+(https?://[^\s\"'@#]+?)(?:\.git)?(?:@[\w./-]+)?(?=[\s\"'#]|$)")
GITHUB_REPO = re.compile(r"https?://github\.com/[\w.-]+/[\w.-]+?(?=\.git\b|[/\s\"')#>\]]|$)")


def _url() -> str:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    url = config["repository"]["url"].rstrip("/")
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url), (
        f"_config.yml repository.url must be a GitHub repository URL, not {url!r}"
    )
    return url


def test_config_names_the_repository():
    _url()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_installs_from_the_repository(path):
    url = _url()
    nb = nbformat.read(path, as_version=4)
    code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    assert code, f"{path.name} has no code cells"
    index, setup = code[0]
    found = GIT_URL.findall(setup.source)
    assert found, f"{path.name} cell {index}: the setup cell has no `pip install ... git+URL`"
    for i, cell in enumerate(nb.cells):
        for other in GIT_URL.findall(cell.source):
            assert other.rstrip("/") == url, (
                f"{path.name} cell {i}: installs from {other}, but _config.yml repository.url "
                f"is {url}"
            )


def test_pyproject_names_the_repository():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["urls"]["Repository"].rstrip("/") == _url(), (
        "pyproject.toml [project.urls] Repository differs from _config.yml repository.url"
    )


def test_readme_points_at_the_repository():
    url = _url()
    readme = (ROOT / "README.md").read_text()
    mentions = GIT_URL.findall(readme) + GITHUB_REPO.findall(readme)
    assert mentions, "README.md never mentions the repository URL"
    wrong = sorted({m.rstrip("/") for m in mentions} - {url})
    assert not wrong, f"README.md mentions {wrong}, but _config.yml repository.url is {url}"
