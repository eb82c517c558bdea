"""The zoo's Figure 6: training and test error of every zoo network over its whole schedule.

He et al. (2016), Fig. 6 draws plain and residual nets in separate panels; here the two
panels are the two errors, so that a plain net and the ResNet of its depth sit on the same
axes (plain dashed, residual solid, one colour per depth). The runs come from
:func:`resnet_lab.results.zoo.zoo_runs`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from resnet_lab.results import RunRecord

__all__ = ["zoo_figure"]

_COLOURS = {20: "tab:blue", 32: "tab:green", 44: "tab:purple", 56: "tab:red", 110: "tab:brown"}


def _epochs_and(rec: RunRecord, key: str) -> tuple[list[float], list[float]]:
    """(epochs, error %) of one run from its per-epoch history, epochs without a value left out."""
    rows = [h for h in rec["history"] if h.get(key) is not None]
    return [float(h["epoch"]) for h in rows], [100.0 * h[key] for h in rows]


def zoo_figure(runs: Mapping[tuple[str, int], Sequence[RunRecord]], axes: Any = None) -> Any:
    """Two panels, training error (the mean over each epoch's augmented mini-batches) and
    test error (the whole test split after each epoch), in % against epochs; seed 0 of each
    network. Returns the figure."""
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10.0, 4.0), sharey=True)
    else:
        fig = axes[0].figure
    for ax, key, title in zip(
        axes, ("train_error", "test_error"), ("training error", "test error"), strict=True
    ):
        for (kind, depth), seeds in sorted(runs.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            epochs, errors = _epochs_and(seeds[0], key)
            name = f"ResNet-{depth}" if kind == "residual" else f"plain-{depth}"
            ax.plot(
                epochs,
                errors,
                "-" if kind == "residual" else "--",
                color=_COLOURS.get(depth, "black"),
                label=name,
            )
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("error (%)")
    axes[0].legend(loc="upper right")
    fig.tight_layout()
    return fig
