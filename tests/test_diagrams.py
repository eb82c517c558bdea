"""Diagrams drawn in code: each is a titled Figure whose text stays readable on a phone."""

from __future__ import annotations

import pytest
import torch
from matplotlib.figure import Figure

from resnet_lab.book import diagrams
from resnet_lab.data import ImageData

# A figure as wide as these is shown about 350 px wide on a 390 px phone screen.
PHONE_WIDTH_PX = 350
MIN_TEXT_PX = 9


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")) if t.get_text()]


def _smallest_text_on_phone(fig: Figure) -> float:
    fig.canvas.draw()
    sizes = [
        t.get_fontsize()
        for t in fig.findobj(lambda a: hasattr(a, "get_fontsize"))
        if getattr(t, "get_text", lambda: "")()
    ]
    width_px = fig.get_figwidth() * 72  # font sizes are in points: 1/72 inch
    return min(sizes) * PHONE_WIDTH_PX / width_px


def _data(classes: int = 10, per_class: int = 3) -> ImageData:
    n = classes * per_class
    x = torch.arange(n * 3 * 32 * 32, dtype=torch.int64).remainder(256).to(torch.uint8)
    x = x.view(n, 3, 32, 32)
    y = torch.arange(n) % classes
    return ImageData(
        x, y, x[:classes], y[:classes], [f"class {i}" for i in range(classes)], "synthetic"
    )


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda: diagrams.block_diagram(), ["basic block", "bottleneck block", "identity x"]),
        (lambda: diagrams.block_diagram("A"), ["option A", "3×3, 128, /2"]),
        (lambda: diagrams.block_diagram("B"), ["option B", "1×1, 512"]),
        (lambda: diagrams.cifar_network(3), ["CIFAR ResNet-20", "20 weight layers"]),
        (lambda: diagrams.cifar_network(18), ["CIFAR ResNet-110", "18 blocks"]),
        (lambda: diagrams.preact_diagram(), ["original", "pre-activation"]),
    ],
)
def test_diagrams_are_titled_labelled_and_readable_on_a_phone(make, expected):
    fig = make()
    assert isinstance(fig, Figure)
    assert fig.get_suptitle()
    text = "\n".join(_texts(fig))
    for words in expected:
        assert words in text, f"{words!r} missing from the diagram"
    assert _smallest_text_on_phone(fig) >= MIN_TEXT_PX


def test_preact_unit_has_no_relu_after_the_addition():
    fig = diagrams.preact_diagram()
    original, preact = fig.axes
    relus = [sum(t.get_text() == "ReLU" for t in ax.texts) for ax in (original, preact)]
    assert relus == [2, 2]  # original: one in F(x), one after +; pre-activation: both in F(x)


def test_image_grid_one_labelled_row_per_class():
    data = _data(classes=10, per_class=3)
    fig = diagrams.image_grid(data, per_class=2)
    assert "synthetic" in fig.get_suptitle()
    assert len(fig.axes) == 10 * 2
    labels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert labels == data.classes
    first = fig.axes[0].images[0].get_array()
    assert first.shape == (32, 32, 3)
    # Row 0 shows images of class 0 only: the first image of the split with label 0.
    assert (first == data.train_x[0].permute(1, 2, 0).numpy()).all()
    assert fig.axes[2].images[0].get_array()[0, 0, 0] == data.train_x[1].permute(1, 2, 0)[0, 0, 0]


def test_image_grid_leaves_cells_empty_when_a_class_has_few_images():
    fig = diagrams.image_grid(_data(classes=2, per_class=1), per_class=3, split="train")
    assert [len(ax.images) for ax in fig.axes] == [1, 0, 0, 1, 0, 0]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: diagrams.block_diagram("C"), "shortcut must be one of"),
        (lambda: diagrams.cifar_network(0), "n must be at least 1"),
        (lambda: diagrams.image_grid(_data(), split="val"), "split must be"),
        (lambda: diagrams.image_grid(_data(), per_class=0), "per_class"),
    ],
)
def test_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
