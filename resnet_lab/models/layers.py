"""The weight layers of a network: what the papers count as its depth, in one place."""

from __future__ import annotations

from torch import nn

__all__ = ["weight_layers"]

_SHORTCUTS = {"shortcut", "downsample"}  # our blocks' and torchvision's projection names


def weight_layers(model: nn.Module, shortcuts: bool = False) -> list[tuple[str, nn.Module]]:
    """``(name, layer)`` of every ``nn.Conv2d`` / ``nn.Linear`` of ``model``, input to output.

    Projection shortcuts (modules under a ``shortcut`` / ``downsample`` attribute) are left
    out unless ``shortcuts=True``, so plain and residual networks of one depth give lists
    of the same length: the main path, whose length is the paper's 'depth'.
    """
    return [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
        and (shortcuts or not _SHORTCUTS & set(name.split(".")))
    ]
