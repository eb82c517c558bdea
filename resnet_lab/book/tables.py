"""Small HTML tables for the book: real ``<table>`` markup in notebooks and in the HTML book.

A :class:`Table` shows as an HTML table wherever HTML is rendered (Jupyter, Colab, the
book) and prints as aligned text elsewhere. Wide tables scroll sideways inside their own
box instead of squeezing every row into several lines on a phone.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["Table"]

# The box scrolls, not the page; numbers stay on one line so columns line up.
_STYLE = (
    "<style>.rl-table{overflow-x:auto;margin:1em 0}"
    ".rl-table table{border-collapse:collapse;font-size:.9em}"
    ".rl-table th,.rl-table td{padding:.25em .6em;border-bottom:1px solid rgba(127,127,127,.35);"
    "text-align:left;vertical-align:top}"
    ".rl-table td.rl-num{text-align:right;white-space:nowrap}"
    ".rl-table caption{caption-side:top;text-align:left;font-weight:600;padding-bottom:.3em}"
    ".rl-table .rl-note{font-size:.85em;opacity:.85;margin-top:.3em}</style>"
)


def _is_number(text: str) -> bool:
    """A cell that is a number, with an optional spread and a note in brackets
    ('6.43 (mean 6.61 ± 0.16)', '32.0 ± 1.2 %'); not text that starts with one
    ('2,000 test images'), which must be free to wrap on a narrow screen."""
    head = re.sub(r"\s*\(.*\)$", "", text.strip())
    words = head.replace("±", " ").replace("%", " ").split()
    if not words:
        return False
    try:
        for word in words:
            float(word.replace(",", "").lstrip("+-−"))
    except ValueError:
        return False
    return True


@dataclass
class Table:
    """Rows of strings under named columns, with an optional caption and note.

    ``rows`` are mappings from column name to cell text; ``columns`` picks and orders
    the columns shown (default: the keys of the first row), so one set of rows can be
    shown as several narrower tables.
    """

    rows: Sequence[Mapping[str, str]]
    columns: Sequence[str] = field(default_factory=list)
    caption: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        if not self.columns:
            self.columns = list(self.rows[0]) if self.rows else []
        missing = {c for row in self.rows for c in self.columns if c not in row}
        if missing:
            raise KeyError(f"rows lack the column(s) {sorted(missing)}; pass columns= to choose")

    def _cells(self) -> list[list[str]]:
        return [[str(row[c]) for c in self.columns] for row in self.rows]

    def __str__(self) -> str:
        cells = self._cells()
        widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(self.columns)]
        lines = [self.caption] if self.caption else []
        lines.append("  ".join(c.ljust(w) for c, w in zip(self.columns, widths, strict=True)))
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        head = "".join(f'<th scope="col">{html.escape(c)}</th>' for c in self.columns)
        body = "".join(
            "<tr>"
            + "".join(
                f'<td class="rl-num">{html.escape(v)}</td>'
                if _is_number(v)
                else f"<td>{html.escape(v)}</td>"
                for v in row
            )
            + "</tr>"
            for row in self._cells()
        )
        caption = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        note = f'<div class="rl-note">{html.escape(self.note)}</div>' if self.note else ""
        return (
            f'{_STYLE}<div class="rl-table"><table>{caption}<thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>{note}</div>"
        )
