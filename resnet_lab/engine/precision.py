"""Mixed precision and the optimizer: autocast by hardware, fused SGD."""

from __future__ import annotations

import contextlib
import inspect

import torch
from torch import nn

from resnet_lab import runtime
from resnet_lab.engine.config import TrainConfig

# The precision rules live with the other hardware choices in :mod:`resnet_lab.runtime`.
cpu_has_native_bf16 = runtime.cpu_has_native_bf16
precision_name = runtime.precision_name
amp_dtype = runtime.amp_dtype


def precision_of(mode: str, device: str | torch.device) -> str:
    """The precision ``amp`` mode ``mode`` trains in on ``device`` (e.g. 'bf16' for 'auto')."""
    return precision_name(amp_dtype(mode, torch.device(device)))


def sum_dtype(device: torch.device) -> torch.dtype:
    """Running sums (loss, errors, counts) in float64, except on MPS, which has none."""
    return torch.float32 if device.type == "mps" else torch.float64


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to ``dtype`` on ``device``'s type; nothing when ``dtype`` is None (fp32)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def make_scaler(device: torch.device, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """A GradScaler, enabled only for fp16 autocast.

    fp16's 5-bit exponent flushes small gradients to zero, so the loss is scaled up before
    ``backward`` and the gradients down before the step (Micikevicius et al., 2018); bf16
    has fp32's exponent range and needs none. Disabled, the scaler is a pass-through
    (``step`` calls ``optimizer.step()``), so one step function serves every precision.
    """
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)


def make_optimizer(model: nn.Module, config: TrainConfig, lr: float) -> torch.optim.SGD:
    """SGD with momentum and weight decay from ``config``; fused where torch supports it.

    The fused kernel updates every parameter in one pass instead of a loop of small
    element-wise ops: the same arithmetic, about 8 % of a ResNet-20 step on a 2-core CPU.
    """
    kwargs = dict(
        lr=lr, momentum=config.momentum, weight_decay=config.weight_decay, nesterov=config.nesterov
    )
    if fused_sgd_supported(model):
        kwargs["fused"] = True
    return torch.optim.SGD(model.parameters(), **kwargs)


def fused_sgd_supported(model: nn.Module) -> bool:
    """Whether this torch has a fused SGD kernel for every parameter's device (checked here,
    because torch itself only checks at the first ``step()``)."""
    try:
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices
    except ImportError:  # torch too old for fused SGD
        return False
    if "fused" not in inspect.signature(torch.optim.SGD).parameters:
        return False
    # CPU and CUDA only: MPS got its fused SGD kernel later than the generic device list says.
    devices = set(_get_fused_kernels_supported_devices()) & {"cpu", "cuda"}
    params = list(model.parameters())
    return bool(params) and all(p.device.type in devices and p.is_floating_point() for p in params)
