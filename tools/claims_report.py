"""List the hand-typed numbers in the chapters' prose: the claims no cell computes.

A number counts when it has a decimal point or a percent sign (``0.96``, ``12 %``,
``3.7 G``) and sits in a markdown cell outside

- math (``$...$``, ``$$...$$``, ``\\begin{...}...\\end{...}``) and code (`` `...` ``),
- ``{glue:...}`` roles and ``{{ ... }}`` substitutions (those are computed),
- quotations of the papers: block quotes (lines starting with ``>``) and text in
  quotation marks,
- references to a paper's parts (``Sec. 4.2``, ``Table 6``, ``Eq. 1``, ``v1.5``) and the
  section numbers of headings (``## 4.1``),
- link targets, HTML tags and ``{role}`` / ``{directive}`` names.

Usage: ``python tools/claims_report.py [--list] [notebook ...]`` (default: every chapter,
``book/[0-9][0-9]_*.ipynb``). Prints the count per chapter; ``--list`` adds every number
with its cell and context. Exits 0 either way: a report, not a check.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))

# Spans that can hold numbers which are not hand-typed claims; blanked before the search.
SKIP = [
    re.compile(r"\$\$.*?\$\$", re.S),  # display math
    re.compile(r"\\begin\{(\w+\*?)\}.*?\\end\{\1\}", re.S),  # amsmath environments
    re.compile(r"(?<![\\$])\$[^$\n]+?\$"),  # inline math
    re.compile(r"^(```|~~~|:::).*?^\1", re.S | re.M),  # fenced code and directives
    re.compile(r"`[^`\n]*`"),  # inline code, including {glue:text}`name` roles
    re.compile(r"\{\{.*?\}\}", re.S),  # MyST substitutions
    re.compile(r"\{[\w:-]+\}"),  # role names: {glue:text}, {cite:p}, {numref}
    re.compile(r"^>.*$", re.M),  # block quotes: quotations of the papers
    re.compile(r"[\"“][^\"”]{0,400}?[\"”]"),  # text in quotation marks, across lines too
    re.compile(r"^#+\s*\d+(\.\d+)*", re.M),  # section numbers of headings: "## 4.1 ..."
    re.compile(r"\]\([^)]*\)"),  # link targets
    re.compile(r"<[^>\n]+>"),  # HTML tags and their attributes
    re.compile(r"https?://\S+"),  # bare URLs
    # A paper's parts, figure and table numbers, versions: references, not measurements.
    re.compile(
        r"\b(Sec(tion|s)?\.?|§|Eqs?\.?|Equation|Fig(ure|s)?\.?|Tables?|Chapter|Appendix)"
        r"\s*[A-Z]?\d+(\.\d+)*[a-z]?",
        re.I,
    ),
    re.compile(r"\bv\d+(\.\d+)+\b"),
]
NUMBER = re.compile(r"(?<![\w.])[-+−]?\d[\d,]*(\.\d+)?\s?%|(?<![\w.])[-+−]?\d[\d,]*\.\d+(?![\w.])")


def hand_typed_numbers(markdown: str) -> list[tuple[str, str]]:
    """``(number, context)`` for every hand-typed number in one markdown cell."""
    text = markdown
    for pattern in SKIP:
        # Same length, so positions in `text` are positions in `markdown` for the context.
        text = pattern.sub(lambda m: " " * len(m.group(0)), text)
    found = []
    for m in NUMBER.finditer(text):
        start, end = max(0, m.start() - 40), min(len(markdown), m.end() + 40)
        context = " ".join(markdown[start:end].split())
        found.append((m.group(0).strip(), context))
    return found


def report(notebook: Path) -> list[tuple[int, str, str]]:
    """``(cell index, number, context)`` for one notebook."""
    cells = json.loads(notebook.read_text())["cells"]
    return [
        (i, number, context)
        for i, cell in enumerate(cells)
        if cell["cell_type"] == "markdown"
        for number, context in hand_typed_numbers("".join(cell["source"]))
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("notebooks", nargs="*", type=Path, default=CHAPTERS)
    parser.add_argument("--list", action="store_true", help="every number with its context")
    args = parser.parse_args(argv)
    total = 0
    for notebook in args.notebooks:
        found = report(notebook)
        total += len(found)
        print(f"{notebook.name:<32} {len(found):>4}")
        if args.list:
            for i, number, context in found:
                print(f"    cell {i:>3}  {number:<10} ... {context} ...")
    print(f"{'total':<32} {total:>4}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
