"""Test error and loss of a network, under the training autocast."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from resnet_lab import distributed
from resnet_lab.data import GpuLoader
from resnet_lab.engine.precision import amp_dtype, autocast, sum_dtype


@torch.no_grad()
def evaluate_loader(
    model: nn.Module, loader: GpuLoader, dtype: torch.dtype | None
) -> tuple[float, float]:
    """(mean loss, error) of ``model`` over ``loader`` in eval mode, under autocast to ``dtype``."""
    was_training = model.training
    model.eval()
    dev = loader.device
    sums = torch.zeros(3, dtype=sum_dtype(dev), device=dev)  # loss sum, wrong, count
    for x, y in loader:
        with autocast(dev, dtype):
            out = model(x)
        out = out.float()
        sums[0] += nn.functional.cross_entropy(out, y, reduction="sum").to(sums.dtype)
        sums[1] += (out.argmax(1) != y).sum()
        sums[2] += len(y)
    if loader.world_size > 1:  # each process saw its shard; an unsharded loader saw everything
        distributed.all_reduce_sum(sums)
    model.train(was_training)
    n = max(1.0, float(sums[2]))
    return float(sums[0]) / n, float(sums[1]) / n


def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    batch_size: int = 1000,
    device: str | torch.device | None = None,
    amp: str = "off",
) -> dict[str, float]:
    """Loss, error and accuracy of ``model`` on a labelled set (eval mode, no augmentation).

    ``images``: ``uint8`` (normalised here with ``mean``/``std``, e.g. ``data.mean``)
    or float tensors already normalised.
    """
    device = next(model.parameters()).device if device is None else torch.device(device)
    if images.dtype == torch.uint8:
        if mean is None or std is None:
            raise ValueError("evaluate: uint8 images need mean= and std= (use data.mean, data.std)")
    else:
        c = images.shape[1]
        mean, std = (0.0,) * c, (1 / 255.0,) * c  # the loader's x*scale - shift becomes identity
        images = images.float()
    loader = GpuLoader(images, labels, batch_size, False, mean, std, device, channels_last=False)
    if images.dtype != torch.uint8:
        loader._scale = torch.ones_like(loader._scale)
        loader._shift = torch.zeros_like(loader._shift)
    loss, err = evaluate_loader(model, loader, amp_dtype(amp, device))
    return {"loss": loss, "error": err, "accuracy": 1.0 - err}
