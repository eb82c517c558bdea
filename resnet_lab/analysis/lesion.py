"""Lesion studies: delete blocks from a trained network and measure what breaks.

Veit et al. (2016, Sec. 4) delete single residual blocks from a trained ResNet at test
time and find that the error barely moves, while deleting a layer of a plain (VGG-style)
network is catastrophic: a residual network behaves like an ensemble of many shorter
paths, none of which it depends on alone.

What "deleting block i" means here, stated once:

- **Residual block**: the residual branch ``F`` is removed and only the shortcut is left,
  so the block computes ``relu(shortcut(x))`` (original ordering) or ``shortcut(x)``
  (pre-activation). With an identity shortcut that is ``x`` itself: the input of an
  original block is the output of a ReLU, so the final ReLU changes nothing. A
  downsampling block keeps its option-A zero-padding or its projection.
- **Plain block** (``use_shortcut=False``): there is no shortcut to fall back on, so the
  block is replaced by the identity. Where the block changes the shape (the first block of
  a new stage), the parameter-free option-A map of He et al. (2016, Sec. 3.3) is used
  instead: subsample by the stride and add zero channels on both sides. Pass
  ``skip_downsampling=True`` to :func:`block_deletion_errors` to leave those blocks out
  (their error is ``nan``).

Every function restores the model exactly (its ``forward`` methods and its mode).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from resnet_lab.models.blocks import (
    PadShortcut,
    PreActBasicBlock,
    PreActBottleneck,
    ResidualBlock,
    residual_blocks,
)

__all__ = [
    "block_deletion_errors",
    "changes_shape",
    "delete_blocks",
    "deleted_forward",
    "error_rate",
    "random_deletion_errors",
]


def changes_shape(block: ResidualBlock) -> bool:
    """Whether the block's output shape differs from its input shape (stride or width)."""
    return block.stride != 1 or block.in_planes != block.out_planes


def deleted_forward(block: ResidualBlock, x: Tensor) -> Tensor:
    """What ``block`` computes once deleted (see the module docstring)."""
    if block.use_shortcut:
        out = block.shortcut(x)
        if isinstance(block, (PreActBasicBlock, PreActBottleneck)):
            return out  # nothing follows the addition in a pre-activation block
        return F.relu(out)
    if not changes_shape(block):
        return x
    return PadShortcut(block.in_planes, block.out_planes, block.stride)(x)


def _blocks(model: nn.Module) -> list[ResidualBlock]:
    found = [block for _, block in residual_blocks(model)]
    if not found:
        raise ValueError(
            "the model has no residual or plain blocks; pass a network from resnet_lab.models, "
            "e.g. rl.build('resnet20') or rl.build('plain20')"
        )
    return found


@contextmanager
def delete_blocks(model: nn.Module, indices: int | Iterable[int]) -> Iterator[nn.Module]:
    """Temporarily delete blocks ``indices`` (depth order, 0 = first block) of ``model``.

    Use as ``with delete_blocks(model, 3): error_rate(model, x, y)``. The model is
    modified in place for the duration of the ``with`` and restored afterwards, also on
    errors; it yields the model itself.
    """
    blocks = _blocks(model)
    chosen = sorted({indices} if isinstance(indices, int) else set(indices))
    for i in chosen:
        if not 0 <= i < len(blocks):
            raise ValueError(f"block index {i} is out of range: the model has {len(blocks)} blocks")
    patched = []
    try:
        for i in chosen:
            block = blocks[i]
            # An instance attribute shadows the class's forward; deleting it restores the block.
            block.forward = lambda x, _b=block: deleted_forward(_b, x)  # type: ignore[method-assign]
            patched.append(block)
        yield model
    finally:
        for block in patched:
            del block.forward


@torch.no_grad()
def error_rate(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    batch_size: int = 500,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> float:
    """Top-1 error (fraction 0..1) of ``model`` in eval mode on ``images``.

    ``images`` are float inputs ready for the model, or uint8 images (N, 3, H, W) together
    with the per-channel ``mean`` and ``std`` (fractions of 255, as ``ImageData.mean``).
    Batches go to the device of the model's parameters; the model's mode is restored.
    """
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if len(images) == 0:
        raise ValueError("no images to evaluate on")
    if images.dtype == torch.uint8 and (mean is None or std is None):
        raise ValueError("uint8 images need mean= and std= (e.g. data.mean, data.std)")
    from resnet_lab.engine import evaluate  # the engine's own evaluation, in fp32

    return evaluate(model, images, labels, mean=mean, std=std, batch_size=batch_size)["error"]


def block_deletion_errors(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    batch_size: int = 500,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    skip_downsampling: bool = False,
) -> list[float]:
    """Test error with each single block deleted, blocks in depth order (Veit et al. 2016, Fig. 3).

    Entry ``i`` is the error of the network without block ``i``; compare with
    :func:`error_rate` of the intact network. ``skip_downsampling=True`` leaves out the
    blocks that change the shape (entry ``nan``). Arguments as for :func:`error_rate`.
    """
    errors = []
    for i, block in enumerate(_blocks(model)):
        if skip_downsampling and changes_shape(block):
            errors.append(math.nan)
            continue
        with delete_blocks(model, i):
            errors.append(error_rate(model, images, labels, batch_size, mean, std))
    return errors


def random_deletion_errors(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    counts: Sequence[int],
    trials: int = 5,
    seed: int = 0,
    batch_size: int = 500,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> dict[int, list[float]]:
    """Errors after deleting ``k`` random blocks at once, ``trials`` draws per ``k``
    (Veit et al. 2016, Fig. 5a: the error grows smoothly with the number deleted).

    Only blocks that keep the shape are drawn, so plain and residual networks are
    compared on the same kind of deletion. Returns ``{k: [error per trial]}``.
    """
    blocks = _blocks(model)
    candidates = [i for i, b in enumerate(blocks) if not changes_shape(b)]
    if trials < 1:
        raise ValueError(f"trials must be at least 1, got {trials}")
    rng = random.Random(seed)
    result: dict[int, list[float]] = {}
    for k in counts:
        if not 0 <= k <= len(candidates):
            raise ValueError(
                f"cannot delete {k} blocks: only {len(candidates)} blocks keep their shape"
            )
        result[k] = []
        for _ in range(trials):
            with delete_blocks(model, rng.sample(candidates, k)):
                result[k].append(error_rate(model, images, labels, batch_size, mean, std))
    return result
