"""Checks before and during a run: memory, unusual settings, non-finite state, resume."""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from resnet_lab import checkpoint as ckpt
from resnet_lab import runtime
from resnet_lab.data import ImageData
from resnet_lab.engine.config import RECIPES, TrainConfig, bookkeeping_fields
from resnet_lab.engine.errors import Fix, OutOfMemory
from resnet_lab.engine.run import Run


def nan_check_interval(device: torch.device, config: TrainConfig) -> int:
    """Steps between NaN checks: every step on CPU; on a GPU a check waits for the device."""
    return 1 if device.type == "cpu" else max(1, min(config.log_every_steps or 50, 50))


def nonfinite_state(
    model: nn.Module, train_loss: float | None = None, test_loss: float | None = None
) -> str:
    """What is NaN or infinite among the losses, weights and buffers ('' when all are finite)."""
    problems = []
    if train_loss is not None and not math.isfinite(train_loss):
        problems.append(f"the training loss is {train_loss}")
    if test_loss is not None and not math.isfinite(test_loss):
        problems.append(f"the test loss is {test_loss}")
    named = [(k, v) for k, v in model.state_dict().items() if v.is_floating_point()]
    if named:
        finite = torch.stack([torch.isfinite(v).all() for _, v in named]).cpu().tolist()
        bad = [k for (k, _), ok in zip(named, finite, strict=True) if not ok]
        if bad:
            problems.append(f"{len(bad)} weight/BatchNorm tensors are not finite (first: {bad[0]})")
    return " and ".join(problems)


# Values outside these ranges are rarely meant: a divergence hint names them first.
_USUAL = {
    "lr": (1.0, "above 1"),
    "warmup_lr": (1.0, "above 1"),
    "momentum": (0.99, "above 0.99"),
    "weight_decay": (0.01, "above 0.01"),
    "gamma": (1.0, "above 1: the learning rate grows at each milestone"),
}


def unusual_settings(config: TrainConfig) -> list[tuple[str, dict[str, Any]]]:
    """(note, the recipe's usual value) for each setting out of its usual range."""
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    usual = {**defaults, **RECIPES.get(config.recipe, {})}
    out = []
    for name, (limit, note) in _USUAL.items():
        value = getattr(config, name)
        if value > limit and usual[name] <= limit:
            out.append((f"{name} {value:.4g} is {note}", {name: usual[name]}))
    return out


def _available_memory(device: torch.device) -> int | None:
    """Bytes this run may still take: available RAM on a CPU, free memory on a CUDA GPU."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return None  # MPS shares the RAM in ways torch does not report
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not on this system
        return None


def check_memory(
    model: nn.Module,
    data: ImageData,
    config: TrainConfig,
    device: torch.device,
    amp_dtype: torch.dtype | None,
    world_size: int,
) -> None:
    """Refuse, before anything is allocated, a batch that clearly cannot fit (the estimate
    is a lower bound, so a refusal is certain; an accepted batch may still run out)."""
    from resnet_lab.summary import estimate_memory, format_bytes

    free = _available_memory(device)
    est = estimate_memory(model, (1, *data.image_size)) if free is not None else None
    if est is None:
        return
    half = 0.5 if amp_dtype is not None else 1.0  # layer outputs in 16 bits under autocast
    fixed = 2 * est.weights  # gradients and momentum
    if device.type != "cpu":  # the whole dataset moves to the device
        fixed += data.train_x.numel() + data.test_x.numel()
    checks = [
        (
            "a training batch",
            "batch_size",
            config.batch_size,
            len(data.train_y),
            half * est.train_per_image + 2 * est.input_per_image,
        ),
        (
            "an evaluation batch",
            "eval_batch_size",
            config.eval_batch_size,
            len(data.test_y),
            half * est.eval_per_image + est.input_per_image,
        ),
    ]
    for what, name, batch, n_images, per_image in checks:
        local = math.ceil(min(batch, n_images) / world_size)
        need = fixed + local * per_image
        if need <= free:
            continue
        where = f"{runtime.device_name(device)} has {format_bytes(free)} available"
        fits = int((free - fixed) // per_image) * world_size
        reason = (
            f"{what} of {local} images needs at least {format_bytes(need)} of memory, but {where}"
        )
        if fits < 1:
            raise OutOfMemory(reason, None, [Fix("use a smaller model or another device")])
        raise OutOfMemory(reason, None, [Fix("use at most the batch that fits", {name: fits})])


def check_resume(path: Path, state: dict[str, Any], config: TrainConfig, run: Run) -> None:
    """Refuse a checkpoint made with other settings (bookkeeping fields and ``amp`` aside),
    for another model or on other data: resuming it would train a different run."""
    saved = state["config"]
    now = config.to_dict()
    # amp may change too: it is a request ('auto' is bf16 on one CPU, fp32 on another), and
    # so a run may continue on another machine.
    resume_free = bookkeeping_fields() | {"amp"}
    diffs = [
        f"{k}={saved.get(k)!r} (checkpoint) vs {now[k]!r} (now)"
        for k in now
        if k not in resume_free and k in saved and saved.get(k) != now[k]
    ]
    if diffs:
        raise ckpt.CheckpointError(
            path,
            "was made with different settings: "
            + "; ".join(diffs)
            + ". Resume with the same settings, or start a new run without resume",
        )
    saved_model = state.get("run", {}).get("model")
    if saved_model and saved_model != run.model_name:
        raise ckpt.CheckpointError(
            path,
            f"belongs to model {saved_model!r}, not {run.model_name!r}; use another checkpoint path",
        )
    saved_variant = state.get("run", {}).get("data", {}).get("variant")
    if saved_variant and saved_variant != run.data.get("variant"):
        raise ckpt.CheckpointError(
            path, f"was trained on data {saved_variant!r}, not {run.data.get('variant')!r}"
        )


def divergence_advice(config: TrainConfig, lr: float, fp16: bool) -> tuple[str, list[Fix]]:
    """(what the reason adds, what to try) for a run that diverged at learning rate ``lr``.

    A setting out of its usual range is the likeliest cause, so it is named alone; else a
    lower lr, a warm-up (He et al., 2016, §4.2 warm up their 110-layer net) and bf16, whose
    exponent range is fp32's, instead of fp16.
    """
    unusual = unusual_settings(config)
    if unusual:
        usual = {k: v for _, settings in unusual for k, v in settings.items()}
        notes = "; unusual: " + ", ".join(note for note, _ in unusual)
        return notes, [Fix("go back to the usual values", usual)]
    fixes = [Fix("lower the learning rate", {"lr": lr / 2})]
    if not config.warmup_steps:
        fixes.append(Fix("add a warm-up", {"warmup_steps": 400, "warmup_lr": 0.01}))
    if fp16:
        fixes.append(Fix("with fp16, try bf16 or fp32", {"amp": "bf16"}))
    return "", fixes


def oom_advice(
    config: TrainConfig, device_name: str, evaluating: bool, mixed_precision: bool
) -> tuple[str, list[Fix]]:
    """(reason, what to try) for a device that ran out of memory training or evaluating."""
    if evaluating:
        reason = (
            f"the GPU ran out of memory evaluating batches of {config.eval_batch_size} "
            f"test images ({device_name})"
        )
        return reason, [Fix("try", {"eval_batch_size": max(1, config.eval_batch_size // 2)})]
    reason = f"the GPU ran out of memory at batch size {config.batch_size} ({device_name})"
    fixes = [Fix("try", {"batch_size": max(1, config.batch_size // 2)})]
    if not mixed_precision:
        fixes.append(Fix("mixed precision", {"amp": "bf16"}))
    return reason, [*fixes, Fix("a smaller model")]


def dataset_oom(data: ImageData, device: torch.device) -> OutOfMemory:
    """The error for a dataset that does not fit in the device's memory (before training)."""
    size = (data.train_x.numel() + data.test_x.numel()) / 2**20
    msg = (
        f"the dataset ({size:.0f} MiB as uint8) does not fit in the memory of "
        f"{runtime.device_name(device)}"
    )
    fixes = [
        Fix("free the GPU (other runs, notebooks)"),
        Fix("use a subset", {"train_per_class": "N"}),
        Fix("train on the CPU", {"device": "cpu"}),
    ]
    return OutOfMemory(msg, None, fixes)
