"""Plot helpers return labelled figures with the data the chapters pass in."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
from matplotlib.figure import Figure

from resnet_lab.book import plots


def test_plot_layer_norms_log_scale_labels_and_fit():
    before = plt.get_fignums()
    fig = plots.plot_layer_norms(
        {"vanishing": [0.5 ** (9 - i) for i in range(10)], "flat": [1.0] * 10}, fit=True
    )
    assert isinstance(fig, Figure)
    assert plt.get_fignums() == before  # closed in pyplot: shown once, as the value
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert ax.get_xlabel() and ax.get_ylabel()
    assert len(ax.lines) == 4  # data + fit per series
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["vanishing (×0.50/layer)", "flat (×1.00/layer)"]
    assert list(ax.lines[0].get_xdata()) == list(range(1, 11))


def test_plot_curves_errors_in_percent_and_two_metrics():
    history = [
        {"epoch": 1, "step": 10, "train_error": 0.5, "test_error": 0.6},
        {"epoch": 2, "step": 20, "train_error": 0.25, "test_error": 0.4},
    ]
    fig = plots.plot_curves({"a": history, "b": history}, metric=("train_error", "test_error"))
    ax = fig.axes[0]
    assert len(ax.lines) == 4
    assert list(ax.lines[0].get_ydata()) == [50.0, 25.0]
    assert ax.lines[0].get_linestyle() == "--" and ax.lines[1].get_linestyle() == "-"
    assert "(%)" in ax.get_ylabel() and ax.get_xlabel() == "epoch"
    fig = plots.plot_curves({"a": history}, metric="train_loss", x="step")
    assert fig.axes[0].get_xlabel().startswith("iteration") and not fig.axes[0].lines


def test_plot_block_values_bars_and_axes_reuse():
    fig, ax = plt.subplots()
    out = plots.plot_block_values(
        {"plain": [1.0, 2.0], "resnet": [0.5, 0.25]}, ylabel="std", kind="bar", ax=ax
    )
    assert out is fig
    assert len(ax.patches) == 4 and ax.get_ylabel() == "std"
    plt.close(fig)
    with pytest.raises(ValueError, match="kind"):
        plots.plot_block_values({"a": [1.0]}, ylabel="y", kind="pie")


def test_empty_series_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        plots.plot_layer_norms({})
    with pytest.raises(ValueError, match="empty"):
        plots.plot_curves({})
