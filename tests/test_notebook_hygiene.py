"""Stored notebook outputs are clean: what readers and nbval see is what the code produces.

Every ``book/*.ipynb``: valid nbformat, no error outputs, no machine paths, execution
counts 1..n (or none), no huge outputs, the standard setup cell first, listed in
``_toc.yml``; chapters have at least three ``# NBVAL_CHECK_OUTPUT`` cells.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
NOTEBOOKS = sorted(BOOK.glob("*.ipynb"))
# The teaching chapters 0-7. 08_reproduction reads a results store that grows, so it
# checks only its fixed reference tables and has no minimum.
CHAPTER = re.compile(r"0[0-7]_\w+\.ipynb")
SETUP_SOURCE = BOOK / "00_introduction.ipynb"  # the reference for the setup cell

MAX_OUTPUT_BYTES = 500_000  # per output, as stored in the .ipynb JSON
MIN_CHECKED_CELLS = 3
CHECK_TAG = "nbval-check-output"  # nbval reads the tag; the reader never sees it
# Cell tags that keep a cell's code out of the HTML book (Jupyter Book / myst-nb).
HIDING_TAGS = {"remove-cell", "remove-input", "hide-input", "hide-cell"}
GLUE_CALL = re.compile(r"\bglue\(")
# Paths that only exist on the machine that ran the notebook (Linux, macOS, Windows).
MACHINE_PATH = re.compile(r"(?<![\w.~-])(/(work|tmp|root|home|Users)/|[A-Za-z]:\\\\?Users\\)")


def _ids(paths):
    return [p.name for p in paths]


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _code_cells(nb):
    return [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]


def _output_texts(output) -> list[str]:
    """The text a reader sees in an output (images and other binary data excluded)."""
    texts = []
    if "text" in output:
        texts.append(output["text"])
    if output.get("output_type") == "error":
        texts += [output.get("evalue", ""), *output.get("traceback", [])]
    for mime, value in output.get("data", {}).items():
        if mime.startswith("text/") or mime.endswith("json") or mime == "image/svg+xml":
            texts.append(value if isinstance(value, str) else json.dumps(value))
    return texts


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no notebooks found in {BOOK}"
    assert SETUP_SOURCE in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_valid_nbformat(path):
    nbformat.validate(_read(path))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_no_error_outputs(path):
    bad = [
        f"{path.name} cell {i}: {o.get('ename')}: {o.get('evalue')}"
        for i, cell in _code_cells(_read(path))
        for o in cell.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not bad, "stored error outputs (fix, then re-run `make notebooks`):\n" + "\n".join(bad)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_no_machine_paths_in_outputs(path):
    bad = []
    for i, cell in _code_cells(_read(path)):
        for output in cell.get("outputs", []):
            for text in _output_texts(output):
                match = MACHINE_PATH.search(text)
                if match:
                    start = max(0, match.start() - 40)
                    bad.append(f"{path.name} cell {i}: ...{text[start : match.end() + 40]!r}...")
    assert not bad, "outputs show paths of the machine that ran them:\n" + "\n".join(bad)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_execution_counts_are_fresh(path):
    cells = _code_cells(_read(path))
    counts = [c.execution_count for _, c in cells]
    if all(n is None for n in counts):
        return
    expected = list(range(1, len(cells) + 1))
    stale = [
        f"cell {i}: {c.execution_count}"
        for (i, c), n in zip(cells, expected, strict=True)
        if c.execution_count != n
    ]
    assert not stale, (
        f"{path.name}: execution counts are not 1..{len(cells)} in order (stale or partly run; "
        f"re-run `make notebooks`): " + ", ".join(stale)
    )
    for i, cell in cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "execute_result":
                assert output.get("execution_count") == cell.execution_count, (
                    f"{path.name} cell {i}: result count {output.get('execution_count')} "
                    f"!= cell count {cell.execution_count}"
                )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_outputs_are_small(path):
    bad = [
        f"{path.name} cell {i} output {j}: {size / 1000:.0f} kB"
        for i, cell in _code_cells(_read(path))
        for j, output in enumerate(cell.get("outputs", []))
        if (size := len(json.dumps(output))) > MAX_OUTPUT_BYTES
    ]
    assert not bad, (
        f"outputs larger than {MAX_OUTPUT_BYTES // 1000} kB (lower the figure dpi, round "
        "numbers, or plot fewer points):\n" + "\n".join(bad)
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_first_code_cell_is_the_setup_cell(path):
    reference = _code_cells(_read(SETUP_SOURCE))[0][1].source.strip()
    cells = _code_cells(_read(path))
    assert cells, f"{path.name} has no code cells"
    index, first = cells[0]
    assert first.source.strip() == reference, (
        f"{path.name} cell {index}: the first code cell must be the standard setup cell, "
        f"exactly as in {SETUP_SOURCE.name}:\n{reference}"
    )


CHAPTERS = [p for p in NOTEBOOKS if CHAPTER.fullmatch(p.name)]


@pytest.mark.parametrize("path", CHAPTERS, ids=_ids(CHAPTERS))
def test_chapters_check_some_outputs(path):
    marked = [i for i, cell in _code_cells(_read(path)) if CHECK_TAG in _tags(cell)]
    assert len(marked) >= MIN_CHECKED_CELLS, (
        f"{path.name}: {len(marked)} cell(s) tagged {CHECK_TAG!r} (cells {marked}); "
        f"a chapter needs at least {MIN_CHECKED_CELLS} with deterministic printed output"
    )


def _tags(cell) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def glue_in_visible_cells(nb) -> list[int]:
    """Code cells that call glue() but show their code in the HTML book."""
    return [
        i
        for i, cell in _code_cells(nb)
        if GLUE_CALL.search(cell.source) and not _tags(cell) & HIDING_TAGS
    ]


def formatter_escapes(nb) -> list[int]:
    """Cells whose code escapes the formatter (``# fmt: skip/off``) or shows nbval markers."""
    escape = re.compile(r"#\s*(fmt:\s*(skip|off)|NBVAL_[A-Z_]+)")
    return [i for i, cell in _code_cells(nb) if escape.search(cell.source)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_glue_calls_are_hidden(path):
    bad = glue_in_visible_cells(_read(path))
    assert not bad, (
        f"{path.name} cells {bad}: glue() calls are bookkeeping; move them into their own "
        "cell tagged remove-cell (or remove-input if its printed output should show)"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_no_formatter_escapes_or_markers_in_code(path):
    bad = formatter_escapes(_read(path))
    assert not bad, (
        f"{path.name} cells {bad}: remove `# fmt: skip` (run `ruff format` on the notebook) "
        f"and replace `# NBVAL_CHECK_OUTPUT` comments by the cell tag {CHECK_TAG!r}"
    )


def test_hygiene_checks_find_what_they_look_for():
    """The two checks above flag a visible glue cell and a formatter escape."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("x = 1\nrl.glue('x', x)"),
        nbformat.v4.new_code_cell("rl.glue('x', x)", metadata={"tags": ["remove-cell"]}),
        nbformat.v4.new_code_cell("y = [1,  2]  # fmt: skip"),
        nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(1)"),
    ]
    assert glue_in_visible_cells(nb) == [0]
    assert formatter_escapes(nb) == [2, 3]


def _setup_source() -> str:
    """The setup cell as plain Python (IPython's own transformation of `%pip`)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(_code_cells(_read(SETUP_SOURCE))[0][1].source)


def test_setup_cell_says_how_to_install_when_the_package_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "resnet_lab", None)  # import resnet_lab now fails
    with pytest.raises(ModuleNotFoundError) as caught:
        exec(_setup_source(), {"get_ipython": lambda: pytest.fail("ran %pip outside Colab")})
    message = str(caught.value)
    assert "pip install -e ." in message and "resnet_lab" in message, message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__, (
        "the setup cell should raise its own short error, not chain the import traceback"
    )


def _toc_files(node) -> set[str]:
    files = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("file", "root") and isinstance(value, str):
                files.add(str(Path(value).with_suffix("")))
            else:
                files |= _toc_files(value)
    elif isinstance(node, list):
        for item in node:
            files |= _toc_files(item)
    return files


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_in_the_toc(path):
    toc = _toc_files(yaml.safe_load((ROOT / "_toc.yml").read_text()))
    entry = str(path.relative_to(ROOT).with_suffix(""))
    assert entry in toc, f"{path.name} is not in _toc.yml (add `- file: {entry}`)"
