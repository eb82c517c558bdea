"""resnet_lab.book.tables: computed tables render as real, escaped HTML tables and as text."""

from __future__ import annotations

import pytest

from resnet_lab.book.tables import Table

ROWS = [
    {"network": "ResNet-20", "test error (%)": "8.75", "note": "<paper>"},
    {"network": "ResNet-110", "test error (%)": "6.43 (mean 6.61 ± 0.16)", "note": "best of 5"},
]


def test_html_is_a_table_with_every_cell_escaped():
    page = Table(ROWS, caption="Table 6", note="a & b")._repr_html_()
    assert "<table>" in page and page.count("<tr>") == 3  # header and two rows
    assert "<caption>Table 6</caption>" in page
    assert "&lt;paper&gt;" in page and "<paper>" not in page
    assert "a &amp; b" in page
    assert 'class="rl-table"' in page and "overflow-x:auto" in page  # wide tables scroll


def test_numbers_align_right_and_text_left():
    page = Table(ROWS)._repr_html_()
    assert '<td class="rl-num">8.75</td>' in page
    assert '<td class="rl-num">6.43 (mean 6.61 ± 0.16)</td>' in page
    assert "<td>ResNet-20</td>" in page


def test_columns_pick_and_order_a_narrower_table():
    table = Table(ROWS, ["note", "network"])
    assert str(table).splitlines()[0].split() == ["note", "network"]
    assert "8.75" not in str(table) and "8.75" not in table._repr_html_()


def test_unknown_column_is_a_clear_error():
    with pytest.raises(KeyError, match="columns="):
        Table(ROWS, ["network", "params"])


def test_text_form_lines_up_columns():
    lines = str(Table(ROWS)).splitlines()
    assert lines[1].startswith("-" * len("ResNet-110"))
    assert lines[2].index("8.75") == lines[3].index("6.43")


def test_only_numeric_cells_are_set_as_numbers():
    from resnet_lab.book.tables import _is_number

    assert _is_number("8.75") and _is_number("32.0 ± 1.2 %") and _is_number("1,600")
    assert _is_number("6.43 (mean 6.61 ± 0.16)") and _is_number("-0.5")
    assert not _is_number("2,000 test images (10,000); epochs 30 (40)")
    assert not _is_number("10,000 training images (5,000)") and not _is_number("")
