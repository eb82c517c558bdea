"""Small matplotlib helpers for the book's figures: labelled axes, units, one job each.

Every function returns a ``matplotlib.figure.Figure``. Without ``ax=`` it makes a new
figure and closes it in pyplot, so a notebook shows it exactly once (as the cell's value,
or with ``display(fig)``); with ``ax=`` it draws into that axes and returns its figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from resnet_lab.analysis.diagnostics import decay_fit

__all__ = ["plot_block_values", "plot_curves", "plot_layer_norms"]

_PERCENT_SUFFIXES = ("_error", "_acc", "_accuracy")


def _axes(ax: Axes | None, figsize: tuple[float, float] | None) -> tuple[Figure, Axes, bool]:
    if ax is not None:
        return ax.figure, ax, False
    fig, ax = plt.subplots(figsize=figsize or (6.4, 3.6), layout="constrained")
    return fig, ax, True


def _finish(fig: Figure, ax: Axes, title: str | None, owned: bool, legend: bool) -> Figure:
    if title:
        ax.set_title(title)
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small", frameon=False)
    if owned:
        plt.close(fig)  # shown once, as the returned value
    return fig


def plot_layer_norms(
    series: Mapping[str, Sequence[float]],
    logy: bool = True,
    fit: bool = False,
    ax: Axes | None = None,
    title: str | None = None,
    xlabel: str = "layer (1 = next to the input)",
    ylabel: str = "gradient norm ‖∂L/∂W‖ (Frobenius)",
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """One line per label of per-layer values (e.g. :func:`~resnet_lab.analysis.diagnostics.layer_grad_norms`).

    ``fit=True`` adds the log-linear fit of :func:`~resnet_lab.analysis.diagnostics.decay_fit` as a
    dashed line and writes the per-layer rate into the legend.
    """
    if not series:
        raise ValueError("series is empty: pass {label: [value per layer, ...]}")
    fig, ax, owned = _axes(ax, figsize)
    for label, values in series.items():
        xs = range(1, len(values) + 1)
        shown = label
        if fit and len(values) >= 2:
            rate, at_output = decay_fit(values)
            shown = f"{label} (×{rate:.2f}/layer)"
        (line,) = ax.plot(xs, values, marker="o", markersize=3, label=shown)
        if fit and len(values) >= 2:
            n = len(values)
            ax.plot(
                xs,
                [at_output * rate ** (n - i) for i in xs],
                linestyle="--",
                linewidth=1,
                color=line.get_color(),
            )
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return _finish(fig, ax, title, owned, legend=True)


def _is_percent(metric: str) -> bool:
    return metric.endswith(_PERCENT_SUFFIXES)


def plot_curves(
    histories: Mapping[str, Sequence[Mapping[str, float]]],
    metric: str | Sequence[str] = "train_error",
    x: str = "epoch",
    logy: bool = False,
    ax: Axes | None = None,
    title: str | None = None,
    ylabel: str | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Training curves from ``Run.history`` lists, one colour per label.

    ``metric`` may name several keys (e.g. ``("train_error", "test_error")``, the style of
    He et al. 2016, Fig. 6: dashed = first metric, solid = second). Errors and accuracies
    (keys ending in ``_error``/``_acc``) are plotted in percent. ``x`` is ``"epoch"``,
    ``"step"`` or any other history key (e.g. ``"wall_time"``).
    """
    if not histories:
        raise ValueError("histories is empty: pass {label: run.history}")
    metrics = [metric] if isinstance(metric, str) else list(metric)
    styles = ["--", "-", ":", "-."] if len(metrics) > 1 else ["-"]
    fig, ax, owned = _axes(ax, figsize)
    for i, (label, history) in enumerate(histories.items()):
        color = f"C{i % 10}"
        for j, key in enumerate(metrics):
            points = [(r[x], r[key]) for r in history if r.get(key) is not None and x in r]
            if not points:
                continue
            scale = 100.0 if _is_percent(key) else 1.0
            name = label if len(metrics) == 1 else f"{label} {key.replace('_', ' ')}"
            ax.plot(
                [p[0] for p in points],
                [p[1] * scale for p in points],
                linestyle=styles[j % len(styles)],
                color=color,
                linewidth=1.0 if j == 0 and len(metrics) > 1 else 1.6,
                label=name,
            )
    if logy:
        ax.set_yscale("log")
    xlabels = {"epoch": "epoch", "step": "iteration (mini-batch)", "wall_time": "wall time (s)"}
    ax.set_xlabel(xlabels.get(x, x.replace("_", " ")))
    if ylabel is None:
        words = " / ".join(m.replace("_", " ") for m in metrics)
        ylabel = f"{words} (%)" if all(_is_percent(m) for m in metrics) else words
    ax.set_ylabel(ylabel)
    return _finish(fig, ax, title, owned, legend=True)


def plot_block_values(
    series: Mapping[str, Sequence[float]],
    ylabel: str,
    kind: str = "line",
    xlabel: str = "block (1 = next to the input)",
    logy: bool = False,
    ax: Axes | None = None,
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Per-block or per-layer values (residual ratios, response stds, ...), one series per label.

    ``kind="line"`` draws lines with markers; ``kind="bar"`` grouped bars.
    """
    if kind not in ("line", "bar"):
        raise ValueError(f"kind must be 'line' or 'bar', got {kind!r}")
    if not series:
        raise ValueError("series is empty: pass {label: [value per block, ...]}")
    fig, ax, owned = _axes(ax, figsize)
    width = 0.8 / len(series)
    for i, (label, values) in enumerate(series.items()):
        xs = list(range(1, len(values) + 1))
        if kind == "line":
            ax.plot(xs, values, marker="o", markersize=3, label=label)
        else:
            offset = (i - (len(series) - 1) / 2) * width
            ax.bar([v + offset for v in xs], values, width=width, label=label)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return _finish(fig, ax, title, owned, legend=len(series) > 1 or kind == "line")
