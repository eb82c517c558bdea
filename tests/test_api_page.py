"""book/api.md documents every module of resnet_lab that a chapter imports."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
API = ROOT / "book" / "api.md"
CHAPTERS = sorted((ROOT / "book").glob("*.ipynb"))
PACKAGE = "resnet_lab"
# An automodule line and, when the next indented lines hold it, its :members: option.
AUTOMODULE = re.compile(r"^\.\. automodule:: (\S+)\n((?:[ \t]+:[\w-]+:.*\n)*)", re.MULTILINE)


def documented(page: str) -> dict[str, bool]:
    """Each module of an ``automodule`` directive on ``page``: whether its members are listed."""
    return {m[1]: ":members:" in m[2] for m in AUTOMODULE.finditer(page + "\n")}


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def code_cells(notebook: Path) -> list[str]:
    """The code cells' sources, IPython magics and shell lines removed so that ``ast`` reads them."""
    cells = json.loads(notebook.read_text())["cells"]
    sources = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    return [
        "\n".join(_python(line) for line in src.splitlines())
        for src in sources
        if not src.lstrip().startswith("%%")  # a cell magic: not Python
    ]


def _python(line: str) -> str:
    # `%pip install ...` or `!resnet-lab ...` may sit inside an `if`: keep the indentation.
    code = line.lstrip()
    return line[: len(line) - len(code)] + "pass" if code.startswith(("%", "!")) else line


def imported(source: str) -> tuple[set[str], set[str]]:
    """``(modules, names)`` of resnet_lab that ``source`` uses.

    ``modules``: every module it imports, or reaches as an attribute (``rl.results.studies``);
    ``names``: the package-level objects it takes (``rl.build``, ``from resnet_lab import glue``).
    """
    modules: set[str] = set()
    names: set[str] = set()
    aliases: dict[str, str] = {}  # a local name -> the resnet_lab module it is bound to

    def take(module: str, attr: str) -> None:
        if _is_module(f"{module}.{attr}"):
            modules.add(f"{module}.{attr}")
        elif module == PACKAGE:
            names.add(attr)
        else:
            modules.add(module)

    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    modules.add(alias.name)
                    # `import resnet_lab.book.plots` binds `resnet_lab`; `... as p` binds the module.
                    aliases[alias.asname or PACKAGE] = alias.name if alias.asname else PACKAGE
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == PACKAGE:
            assert node.module is not None
            modules.add(node.module)
            for alias in node.names:
                take(node.module, alias.name)
                if _is_module(f"{node.module}.{alias.name}"):
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    for node in ast.walk(tree):
        # rl.build(...), rl.results.studies.x, resnet_lab.book.plots.plot_x(...): from the
        # outermost name in, through every module the chain names, to what it takes there.
        chain, inner = [], node
        while isinstance(inner, ast.Attribute):
            chain.insert(0, inner.attr)
            inner = inner.value
        if chain and isinstance(inner, ast.Name) and inner.id in aliases:
            module = aliases[inner.id]
            for attr in chain:
                if not _is_module(f"{module}.{attr}"):
                    take(module, attr)
                    break
                module = f"{module}.{attr}"
                modules.add(module)
    modules.discard(PACKAGE)  # the package itself is this page; its names are checked below
    return modules, names


def chapter_imports() -> dict[str, tuple[set[str], set[str]]]:
    """Per chapter file name: the modules and package-level names it uses."""
    found = {}
    for notebook in CHAPTERS:
        # One source for the whole notebook: `import resnet_lab as rl` in its first cell
        # binds the `rl` of every later one.
        try:
            found[notebook.name] = imported("\n".join(code_cells(notebook)))
        except SyntaxError as err:
            pytest.fail(f"{notebook.name}: cannot read its imports: {err}")
    return found


def missing_modules(page: str, uses: dict[str, tuple[set[str], set[str]]]) -> list[str]:
    """``"module (chapter, ...)"`` for every module the chapters import that ``page`` lacks."""
    listed = documented(page)
    wanted: dict[str, list[str]] = {}
    for chapter, (modules, _) in uses.items():
        for module in modules:
            wanted.setdefault(module, []).append(chapter)
    return [
        f"{module} ({', '.join(sorted(chapters))})"
        for module, chapters in sorted(wanted.items())
        if module not in listed
    ]


def missing_names(page: str, uses: dict[str, tuple[set[str], set[str]]]) -> list[str]:
    """Package-level names (``rl.build``) that no module with ``:members:`` on ``page`` exports."""
    exported: set[int] = set()
    for module, members in documented(page).items():
        if members:
            mod = importlib.import_module(module)
            public = getattr(mod, "__all__", [n for n in vars(mod) if not n.startswith("_")])
            exported |= {id(getattr(mod, n)) for n in public if hasattr(mod, n)}
    package = importlib.import_module(PACKAGE)
    missing = set()
    for chapter, (_, names) in uses.items():
        for name in names:
            obj = getattr(package, name, None)
            if id(obj) not in exported:
                missing.add(f"rl.{name} (defined in {getattr(obj, '__module__', '?')}; {chapter})")
    return sorted(missing)


@pytest.fixture(scope="module")
def uses() -> dict[str, tuple[set[str], set[str]]]:
    return chapter_imports()


def test_chapters_import_resnet_lab(uses) -> None:
    # Guards the parser: were it to find nothing, every other test here would pass vacuously.
    assert len(uses) == len(CHAPTERS) > 0
    modules = set().union(*(m for m, _ in uses.values()))
    assert {
        "resnet_lab.results.studies",
        "resnet_lab.book.reproduction",
        "resnet_lab.analysis.lesion",
        "resnet_lab.engine",
    } <= modules
    assert "build" in set().union(*(n for _, n in uses.values()))


def test_api_page_documents_every_module_a_chapter_imports(uses) -> None:
    missing = missing_modules(API.read_text(), uses)
    assert not missing, "book/api.md has no `.. automodule::` for " + "; ".join(missing)


def test_api_page_documents_every_package_level_name_a_chapter_uses(uses) -> None:
    missing = missing_names(API.read_text(), uses)
    assert not missing, "book/api.md documents none of " + "; ".join(missing)


@pytest.mark.parametrize("module", ["resnet_lab.results.studies", "resnet_lab.models.blocks"])
def test_a_removed_entry_is_named(uses, module: str) -> None:
    page = re.sub(rf"^\.\. automodule:: {re.escape(module)}\n", "", API.read_text(), flags=re.M)
    assert any(m.startswith(f"{module} (") for m in missing_modules(page, uses))


def test_parser_reads_every_form_of_import() -> None:
    source = (
        "import resnet_lab as rl\nimport resnet_lab.book.plots\n"
        "from resnet_lab import analysis as an, glue\nfrom resnet_lab.models.blocks import BasicBlock\n"
        "rl.results.studies.matched_runs(); rl.build('resnet20')\n"
        "resnet_lab.book.plots.plot_block_values(); an.lesion.delete_blocks"
    )
    modules, names = imported(source)
    assert modules == {
        "resnet_lab.book",
        "resnet_lab.book.plots",
        "resnet_lab.analysis",
        "resnet_lab.analysis.lesion",
        "resnet_lab.models.blocks",
        "resnet_lab.results",
        "resnet_lab.results.studies",
    }
    assert names == {"glue", "build"}
