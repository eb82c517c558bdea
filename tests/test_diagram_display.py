"""A diagram shows itself as one PNG in a notebook, with or without pyplot in the kernel."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from resnet_lab.book import diagrams  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def test_diagram_has_its_own_png_repr():
    fig = diagrams.block_diagram(shortcut="identity")
    assert isinstance(fig, diagrams.Diagram)
    assert fig._repr_png_().startswith(PNG)


def test_ipython_shows_a_diagram_once_as_png():
    from IPython.core.formatters import DisplayFormatter

    data, _ = DisplayFormatter().format(diagrams.preact_diagram())
    assert data["image/png"].startswith(PNG)
    assert list(data).count("image/png") == 1
