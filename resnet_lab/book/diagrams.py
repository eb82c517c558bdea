"""Diagrams drawn in code: residual blocks, the CIFAR network, pre-activation, CIFAR images.

Every function returns a matplotlib :class:`~matplotlib.figure.Figure` with a title,
drawn with :mod:`matplotlib.figure` only (no pyplot state), sized so that its text stays
readable when the book scales the figure down to a phone's width (about 390 px).

Example::

    from resnet_lab.book import diagrams

    diagrams.block_diagram(shortcut="B")   # basic and bottleneck block, projection shortcut
    diagrams.cifar_network(n=3)            # ResNet-20: 6n + 2 layers
    diagrams.preact_diagram()              # original against pre-activation unit
    diagrams.image_grid(data)              # a few CIFAR-10 images of every class
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyBboxPatch

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from resnet_lab.data import ImageData

__all__ = ["Diagram", "block_diagram", "cifar_network", "image_grid", "preact_diagram"]

# One colour per kind of layer (pale, so that black text reads on them on any page).
COLORS = {
    "conv": "#cfe3f5",
    "bn": "#fbe7b5",
    "relu": "#d3eed8",
    "pool": "#e6dcf1",
    "fc": "#f7d4d4",
    "io": "#eeeeee",
}
SHORTCUT_COLOR = "#D55E00"
# Text sizes in points for figures about 6.5 inches wide: scaled to a 390 px phone
# screen they are still about 10 px tall.
FONT = 15
SMALL = 14
TITLE = 16

_SHORTCUTS = {
    "identity": "identity x",
    "A": "option A:\nidentity, /2,\nzero-padded\nchannels",
    "B": "option B:\n1×1 conv, /2,\nBN\n(projection)",
}


class Diagram(Figure):
    """A :class:`~matplotlib.figure.Figure` that a notebook shows as PNG on its own.

    A figure made without pyplot is only drawn by Jupyter's inline backend once pyplot
    has been used in the kernel; a chapter whose first figure is a diagram would show the
    text ``<Figure ...>`` instead. Where the inline backend is active it still draws the
    figure (its formatter is found first), so the figure is shown once either way.
    """

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue()


def _figure(width: float, height: float, title: str, panels: int = 1) -> tuple[Figure, list]:
    fig = Diagram(figsize=(width, height), dpi=100, layout="constrained")
    axes = fig.subplots(1, panels, squeeze=False)[0]
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle(title, fontsize=TITLE, fontweight="bold")
    return fig, list(axes)


def _box(ax: Axes, x: float, y: float, text: str, kind: str, w: float = 4.2, h: float = 0.62):
    """A rounded box centred at (x, y)."""
    ax.add_patch(
        FancyBboxPatch(
            (x - w / 2, y - h / 2),
            w,
            h,
            boxstyle="round,pad=0.02,rounding_size=0.12",
            facecolor=COLORS[kind],
            edgecolor="#444444",
            linewidth=1.2,
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=FONT, color="#111111")


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float], color: str = "#333333"):
    ax.annotate(
        "",
        xy=end,
        xytext=start,
        arrowprops={"arrowstyle": "-|>", "color": color, "lw": 1.6, "shrinkA": 0, "shrinkB": 0},
    )


def _column(
    ax: Axes, x: float, top: float, layers: Sequence[tuple[str, str]], step: float = 1.0
) -> list[float]:
    """Boxes from top to bottom joined by arrows; returns the centre height of each box."""
    ys = [top - i * step for i in range(len(layers))]
    for (text, kind), y in zip(layers, ys, strict=True):
        _box(ax, x, y, text, kind)
    for y0, y1 in zip(ys, ys[1:], strict=False):
        _arrow(ax, (x, y0 - 0.31), (x, y1 + 0.31))
    return ys


def _unit(
    ax: Axes,
    layers: Sequence[tuple[str, str]],
    after_add: Sequence[tuple[str, str]] = (),
    shortcut: str = "identity x",
    title: str = "",
    input_text: str = "x",
    rows: int = 0,
    note: str = "",
) -> None:
    """A residual unit: input, the residual branch F(x), the addition, layers after it.

    ``rows`` (at least the unit's own layers) sets the panel's height, so that units
    drawn side by side share one scale.
    """
    rows = max(rows, len(layers) + len(after_add))
    x, top = 0.0, rows + 1.4
    ax.text(x, top + 0.55, input_text, ha="center", va="bottom", fontsize=FONT)
    ys = _column(ax, x, top - 0.6, layers)
    _arrow(ax, (x, top + 0.5), (x, ys[0] + 0.31))
    add_y = ys[-1] - 1.0
    ax.add_patch(Circle((x, add_y), 0.27, facecolor="white", edgecolor="#333333", lw=1.4))
    ax.text(x, add_y, "+", ha="center", va="center", fontsize=FONT + 2, fontweight="bold")
    _arrow(ax, (x, ys[-1] - 0.31), (x, add_y + 0.27))
    # The shortcut leaves the input above the first layer and joins at the addition.
    right, branch_y = 2.45, top + 0.2
    ax.plot([x, right, right], [branch_y, branch_y, add_y], color=SHORTCUT_COLOR, lw=2)
    _arrow(ax, (right, add_y), (x + 0.27, add_y), color=SHORTCUT_COLOR)
    ax.text(
        right + 0.15,
        (branch_y + add_y) / 2,
        shortcut,
        ha="left",
        va="center",
        fontsize=SMALL,
        color=SHORTCUT_COLOR,
    )
    ax.text(-2.2, (ys[0] + ys[-1]) / 2, "F(x)", ha="right", va="center", fontsize=FONT)
    bottom = add_y
    if after_add:
        after = _column(ax, x, add_y - 0.9, after_add)
        _arrow(ax, (x, add_y - 0.27), (x, after[0] + 0.31))
        bottom = after[-1]
    _arrow(ax, (x, bottom - 0.31), (x, bottom - 0.9))
    ax.text(x, top + 1.25, title, ha="center", va="bottom", fontsize=FONT, fontweight="bold")
    if note:
        ax.text(x, bottom - 1.05, note, ha="center", va="top", fontsize=SMALL)
    ax.set_xlim(-3.2, 5.3)
    ax.set_ylim(top + 1.8 - (rows + 4.0), top + 1.8)
    ax.set_aspect("equal")


def block_diagram(shortcut: str = "identity") -> Figure:
    """The basic block (two 3×3 convs) beside the bottleneck block (1×1, 3×3, 1×1).

    ``shortcut``: ``"identity"`` (input and output of the same shape), or how a block
    that halves the feature map and doubles the channels adds its input: ``"A"``
    (identity with zero-padded channels, no parameters) or ``"B"`` (1×1 projection).
    """
    if shortcut not in _SHORTCUTS:
        raise ValueError(f"shortcut must be one of {', '.join(_SHORTCUTS)}, not {shortcut!r}")
    down = shortcut != "identity"
    # With a downsampling shortcut the block widens (64 -> 128, 256 -> 512) and strides.
    basic_c, bottle_c, bottle_out = (128, 128, 512) if down else (64, 64, 256)
    stride = ", /2" if down else ""
    basic = [
        (f"3×3, {basic_c}{stride}", "conv"),
        ("BN, ReLU", "bn"),
        (f"3×3, {basic_c}", "conv"),
        ("BN", "bn"),
    ]
    bottleneck = [
        (f"1×1, {bottle_c}", "conv"),
        ("BN, ReLU", "bn"),
        (f"3×3, {bottle_c}{stride}", "conv"),
        ("BN, ReLU", "bn"),
        (f"1×1, {bottle_out}", "conv"),
        ("BN", "bn"),
    ]
    # Layers as in the paper's Figure 5: kernel, output channels, "/2" for stride 2.
    label = _SHORTCUTS[shortcut]
    what = "identity shortcuts" if not down else f"downsampling, shortcut option {shortcut}"
    fig, (left, right) = _figure(7.4, 5.8, f"Residual blocks ({what})", panels=2)
    after = [("ReLU", "relu")]
    _unit(left, basic, after, label, "basic block", "x: 64 channels", rows=7)
    _unit(right, bottleneck, after, label, "bottleneck block", "x: 256 channels", rows=7)
    return fig


def preact_diagram() -> Figure:
    """The original residual unit beside the full pre-activation unit (He et al., 2016b)."""
    original = [
        ("3×3 conv", "conv"),
        ("BN", "bn"),
        ("ReLU", "relu"),
        ("3×3 conv", "conv"),
        ("BN", "bn"),
    ]
    preact = [
        ("BN", "bn"),
        ("ReLU", "relu"),
        ("3×3 conv", "conv"),
        ("BN", "bn"),
        ("ReLU", "relu"),
        ("3×3 conv", "conv"),
    ]
    fig, (left, right) = _figure(7.4, 5.8, "Original against pre-activation unit", panels=2)
    _unit(
        left, original, [("ReLU", "relu")], "identity x", "original", note="ReLU after the addition"
    )
    _unit(right, preact, (), "identity x", "pre-activation", note="nothing after the addition")
    return fig


def cifar_network(n: int = 3) -> Figure:
    """The CIFAR ResNet of He et al. (2016, Sec. 4.2): 6n + 2 weight layers in three stages."""
    if n < 1:
        raise ValueError(f"n must be at least 1 (ResNet-20 has n = 3), not {n}")
    depth = 6 * n + 2
    layers = [
        ("image 32×32×3", "io"),
        ("3×3 conv, 16", "conv"),
        (f"{n} blocks × 2 convs, 16\n32×32", "conv"),
        (f"{n} blocks × 2 convs, 32\n16×16, first /2", "conv"),
        (f"{n} blocks × 2 convs, 64\n8×8, first /2", "conv"),
        ("global average pool", "pool"),
        ("10-way fully connected", "fc"),
    ]
    fig, (ax,) = _figure(6.6, 8.4, f"CIFAR ResNet-{depth}: 6n + 2 layers, n = {n}")
    step, w, h = 1.25, 4.6, 0.95
    ys = [len(layers) * step - i * step for i in range(len(layers))]
    for (text, kind), y in zip(layers, ys, strict=True):
        _box(ax, 0, y, text, kind, w=w, h=h if "\n" in text else 0.62)
    for (t0, _), (t1, _), y0, y1 in zip(layers, layers[1:], ys, ys[1:], strict=False):
        _arrow(
            ax, (0, y0 - (h if "\n" in t0 else 0.62) / 2), (0, y1 + (h if "\n" in t1 else 0.62) / 2)
        )
    counts = ["", "1 layer", f"{2 * n} layers", f"{2 * n} layers", f"{2 * n} layers", "", "1 layer"]
    for count, y in zip(counts, ys, strict=True):
        if count:
            ax.text(w / 2 + 0.2, y, count, ha="left", va="center", fontsize=SMALL, color="#555555")
    ax.text(
        0,
        ys[-1] - 0.95,
        f"1 + 3 × {2 * n} + 1 = {depth} weight layers",
        ha="center",
        va="top",
        fontsize=SMALL,
    )
    ax.set_xlim(-w / 2 - 0.2, w / 2 + 2.0)
    ax.set_ylim(ys[-1] - 1.5, ys[0] + 0.7)
    ax.set_aspect("equal")
    return fig


def image_grid(
    data: ImageData, per_class: int = 8, split: str = "train", title: str | None = None
) -> Figure:
    """``per_class`` images of every class, one labelled row per class (the first ones found)."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    if per_class < 1:
        raise ValueError(f"per_class must be at least 1, not {per_class}")
    images = getattr(data, f"{split}_x")
    labels = getattr(data, f"{split}_y").tolist()
    rows = len(data.classes)
    # Inches per image: large enough to see a 32x32 image, the labels column on the left.
    cell = 0.62
    fig = Diagram(figsize=(1.9 + cell * per_class, 0.7 + cell * rows), dpi=100)
    grid = fig.add_gridspec(
        rows,
        per_class,
        left=1.8 / (1.9 + cell * per_class),
        right=0.99,
        top=1 - 0.6 / (0.7 + cell * rows),
        bottom=0.01,
        wspace=0.06,
        hspace=0.06,
    )
    for row, name in enumerate(data.classes):
        found = [i for i, y in enumerate(labels) if y == row][:per_class]
        for col in range(per_class):
            ax = fig.add_subplot(grid[row, col])
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if col < len(found):
                ax.imshow(images[found[col]].permute(1, 2, 0).numpy(), interpolation="nearest")
            if col == 0:
                ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=FONT, labelpad=8)
    fig.suptitle(
        title or f"{data.variant}: {per_class} {split} images per class",
        fontsize=TITLE,
        fontweight="bold",
    )
    return fig
