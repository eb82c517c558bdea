"""The book's prose states only what its cells computed, and speaks of the book only.

- No hand-typed number in a chapter's markdown (``tools/claims_report.py`` finds them):
  a number in the prose is glued from the cell that measured it, or it is a quotation
  of a paper (a block quote or text in quotation marks).
- No figure shown twice by one cell (the same PNG as a display and as the cell's result).
- No words of the project's own bookkeeping on a reader's page.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from claims_report import hand_typed_numbers  # noqa: E402

CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
PAGES = sorted((ROOT / "book").glob("*.md"))
INTERNAL = re.compile(
    r"\b(issues?|tickets?|acceptance|CI|TODO|FIXME|closing note|bookkeeping|"
    r"session|our targets?|development machines?)\b",
    re.I,
)


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def output_texts(cell: dict) -> list[str]:
    texts = []
    for out in cell.get("outputs", []):
        if "text" in out:
            texts.append("".join(out["text"]))
        for mime in ("text/plain", "text/markdown", "text/html"):
            if mime in out.get("data", {}):
                texts.append("".join(out["data"][mime]))
    return texts


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_hand_typed_numbers(path):
    found = [
        f"cell {i}: {number!r} in ...{context}..."
        for i, cell in enumerate(cells(path))
        if cell["cell_type"] == "markdown"
        for number, context in hand_typed_numbers(source(cell))
    ]
    assert not found, "glue these numbers from the cell that computes them:\n" + "\n".join(found)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_figure_shown_twice(path):
    twice = []
    for i, cell in enumerate(cells(path)):
        pngs = [
            "".join(out["data"]["image/png"])
            for out in cell.get("outputs", [])
            if "image/png" in out.get("data", {})
        ]
        if len(pngs) != len(set(pngs)):
            twice.append(i)
    assert not twice, f"cells {twice} show the same figure twice (end the cell with `;`)"


def _internal_words(text: str) -> list[str]:
    # The myst substitution/role names and code spans are not prose.
    text = re.sub(r"`[^`\n]*`", " ", text)
    return [m.group(0) for m in INTERNAL.finditer(text)]


@pytest.mark.parametrize("path", CHAPTERS + PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_project_bookkeeping_words_on_reader_pages(path):
    if path.suffix == ".md":
        texts = [path.read_text(encoding="utf-8")]
    else:
        texts = []
        for cell in cells(path):
            if cell["cell_type"] == "markdown":
                texts.append(source(cell))
            else:
                texts += output_texts(cell)
    found = sorted({w for t in texts for w in _internal_words(t)})
    assert not found, f"{path.name} speaks of the project's bookkeeping: {found}"


def test_the_checks_find_what_they_look_for():
    assert hand_typed_numbers("plain-56 ends at 79.4 % training error")
    assert not hand_typed_numbers("plain-56 ends at {glue:text}`p56:.1f` % training error")
    assert not hand_typed_numbers("> the paper reports 8.75 % for ResNet-20")
    assert _internal_words("the issue's accuracy targets") == ["issue"]
    assert _internal_words("CI runs the quick tier") == ["CI"]
    assert not _internal_words("the degradation problem")
