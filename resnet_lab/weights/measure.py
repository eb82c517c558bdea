"""Test error and training error of weights, as the entries store them.

Always in fp32 with BatchNorm in eval mode, without augmentation, on whole splits (or the
subset asked for), with the entry's own preprocessing: numbers that ``resnet-lab eval``
reproduces to the image on the same machine.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from resnet_lab.data import ImageData, balanced_indices

#: the fixed test subset every entry stores its wrong answers on (``--test-subset 50``)
SUBSET_PER_CLASS, SUBSET_SEED = 50, 0


@torch.no_grad()
def wrong_answers(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    batch_size: int = 500,
) -> torch.Tensor:
    """Per image, whether ``model`` (in eval mode, fp32) gets it wrong; ``images`` are
    ``uint8`` and normalised here with ``mean`` and ``std`` (0..1 scale). Runs a
    channels-last copy of ``model`` (about 1.7x faster on CPUs; the model is left as it is)."""
    device = next(model.parameters()).device
    model = copy.deepcopy(model).eval().to(memory_format=torch.channels_last)
    scale = (torch.tensor(std, device=device) * 255).view(1, -1, 1, 1)
    shift = (torch.tensor(mean, device=device) * 255).view(1, -1, 1, 1)
    out = []
    for start in range(0, len(labels), batch_size):
        x = images[start : start + batch_size].to(device).float()
        x = ((x - shift) / scale).contiguous(memory_format=torch.channels_last)
        out.append(model(x).float().argmax(1).cpu() != labels[start : start + batch_size])
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.bool)


def measure(
    model: nn.Module,
    data: ImageData,
    mean: Sequence[float],
    std: Sequence[float],
    subset_per_class: int | None = SUBSET_PER_CLASS,
    batch_size: int = 500,
) -> dict[str, Any]:
    """The metrics of an entry: wrong answers on the test and training splits of ``data`` and
    on its fixed test subset (``subset_per_class`` images of each class, seed
    :data:`SUBSET_SEED`, drawn from ``data``'s test split; None: no subset)."""
    test = wrong_answers(model, data.test_x, data.test_y, mean, std, batch_size)
    train = wrong_answers(model, data.train_x, data.train_y, mean, std, batch_size)
    out: dict[str, Any] = {
        "test_error": round(float(test.float().mean()), 6),
        "test_wrong": int(test.sum()),
        "test_images": len(test),
        "train_error": round(float(train.float().mean()), 6),
        "train_wrong": int(train.sum()),
        "train_images": len(train),
    }
    if subset_per_class is not None:
        idx = balanced_indices(data.test_y, subset_per_class, data.num_classes, SUBSET_SEED)
        out["subset"] = {
            "test_per_class": subset_per_class,
            "seed": SUBSET_SEED,
            "images": len(idx),
            "wrong": int(test[idx].sum()),
        }
    return out
