"""One training step, the same for :func:`~resnet_lab.engine.train`, ``resnet-lab bench`` and
the suite's throughput timings, and the kernel settings it runs under.

A step under mixed precision (see :mod:`resnet_lab.engine`): the forward pass under
autocast (convolutions and the linear layer in bf16/fp16, weights fp32), the logits cast
to fp32 for the loss, ``backward``, then the SGD update through a
:class:`torch.amp.GradScaler` that is enabled for fp16 only (:func:`make_scaler`), so
that there is one code path for every precision.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

import torch
from torch import nn

from resnet_lab.engine.precision import autocast


class StepOutput(NamedTuple):
    """What a step leaves for the meters (detached: holding it keeps no graph alive)."""

    loss: torch.Tensor  # (): the batch's mean loss, fp32
    logits: torch.Tensor  # (N, classes), in the autocast dtype
    grad_norms: torch.Tensor | None  # (len(norms_of),) fp32 L2 norms of the true gradients


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = nn.functional.cross_entropy,
    dtype: torch.dtype | None = None,
    *,
    weight: float = 1.0,
    norms_of: Sequence[torch.Tensor] = (),
) -> StepOutput:
    """One optimizer step on the batch ``x`` (N, C, H, W), labels ``y`` (N,).

    ``dtype``: the autocast dtype (None: fp32). ``scaler``: from :func:`make_scaler` (a
    disabled one is a pass-through). ``weight`` multiplies the loss before ``backward``
    (under DDP, a process's share of an uneven global batch). ``norms_of``: parameters
    whose gradient norms to return, unscaled; on an fp16 step that the scaler skips they
    are inf or NaN.
    """
    with autocast(x.device, dtype):
        logits = model(x)
        loss = loss_fn(logits.float(), y)  # the loss and its softmax in fp32
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss * weight if weight != 1.0 else loss).backward()
    norms = None
    if norms_of:
        scaler.unscale_(optimizer)  # the true gradients' norms (a no-op when disabled)
        norms = torch.stack([p.grad.detach().float().norm() for p in norms_of])
    scaler.step(optimizer)  # skipped when fp16 gradients overflowed
    scaler.update()  # and then the scale is halved
    return StepOutput(loss.detach(), logits.detach(), norms)


@contextlib.contextmanager
def kernel_selection(device: torch.device, deterministic: bool = False) -> Iterator[None]:
    """Deterministic kernels (``deterministic=True``: bit-identical reruns and resumes), or on
    CUDA cuDNN's autotuned fastest ones; torch's previous settings come back afterwards."""
    prev_alg = torch.are_deterministic_algorithms_enabled()
    prev_bench = torch.backends.cudnn.benchmark
    prev_det = torch.backends.cudnn.deterministic
    try:
        if deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
        elif device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest kernels once
        yield
    finally:
        torch.use_deterministic_algorithms(prev_alg)
        torch.backends.cudnn.benchmark = prev_bench
        torch.backends.cudnn.deterministic = prev_det
