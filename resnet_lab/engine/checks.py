"""Checks before and during a run: memory, unusual settings, non-finite state, resume."""

from __future__ import annotations

import dataclasses
import math
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
    return runtime.available_memory(device)


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
    # on a GPU the whole dataset moves to the device
    on_device = data.train_x.numel() + data.test_x.numel() if device.type != "cpu" else 0
    batches = [
        ("a training batch", "batch_size", config.batch_size, len(data.train_y), True),
        ("an evaluation batch", "eval_batch_size", config.eval_batch_size, len(data.test_y), False),
    ]
    _check_batches(model, data.image_size, device, amp_dtype, world_size, on_device, batches)


def check_batch(
    model: nn.Module,
    image_size: tuple[int, int, int],
    batch_size: int,
    device: torch.device,
    amp_dtype: torch.dtype | None,
) -> None:
    """:func:`check_memory` for one training batch of ``batch_size`` images of ``image_size``
    (C, H, W) alone (``resnet-lab bench``); ``model`` may be on the meta device."""
    batch = [("a training batch", "batch_size", batch_size, batch_size, True)]
    _check_batches(model, image_size, device, amp_dtype, 1, 0, batch)


def _check_batches(model, image_size, device, amp_dtype, world_size, on_device, batches) -> None:
    """Raise OutOfMemory for the first of ``batches`` (what, field, batch size, images in the
    split, training?) that needs more than the device has available."""
    from resnet_lab.summary import estimate_memory, format_bytes

    free = _available_memory(device)
    est = estimate_memory(model, (1, *image_size)) if free is not None else None
    if est is None:
        return
    half = 0.5 if amp_dtype is not None else 1.0  # layer outputs in 16 bits under autocast
    fixed = 2 * est.weights + on_device  # gradients and momentum
    for what, name, batch, n_images, training in batches:
        if training:
            per_image = half * est.train_per_image + 2 * est.input_per_image
        else:
            per_image = half * est.eval_per_image + est.input_per_image
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


# What a checkpoint's data must share with the data resuming it (the keys of
# ImageData.info(); a key a checkpoint lacks, from an older version, is not compared).
_DATA_IDENTITY = (
    "variant",
    "source",
    "train_size",
    "test_size",
    "num_classes",
    "image_size",
    "subset_per_class",
)
_NEW_RUN = "start a new run with another checkpoint path (--output) instead"


def check_resume(
    path: Path, state: dict[str, Any], config: TrainConfig, run: Run, total: int, spe: int
) -> None:
    """Refuse a checkpoint that this call cannot continue honestly: made with other settings
    (bookkeeping fields aside), for another model, on other data, in another precision, or
    further than this run's ``total`` steps (``spe`` steps an epoch). Each message says what
    differs. A checkpoint of an older version that lacks a field is checked on the rest."""
    saved = state["config"]
    now = config.to_dict()
    # amp is a request ('auto' is bf16 on one CPU, fp32 on another): the precision it
    # resolved to is compared below instead.
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
            + f". Resume with the same settings, or {_NEW_RUN}",
        )
    info = state.get("run", {})
    saved_model = info.get("model")
    if saved_model and saved_model != run.model_name:
        raise ckpt.CheckpointError(
            path,
            f"belongs to model {saved_model!r}, not {run.model_name!r}; use another checkpoint path",
        )
    saved_data = info.get("data") or {}
    diffs = [
        f"{k}={saved_data[k]!r} (checkpoint) vs {run.data.get(k)!r} (now)"
        for k in _DATA_IDENTITY
        if k in saved_data and saved_data[k] != run.data.get(k)
    ]
    fingerprint = info.get("data_fingerprint")
    if not diffs and fingerprint and fingerprint != run.data_fingerprint:
        diffs = ["the images or labels differ (another folder or file of the same name)"]
    if diffs:
        raise ckpt.CheckpointError(
            path,
            "was trained on other data: "
            + "; ".join(diffs)
            + f". Resume with the same data (--data, --subset, --test-subset, --image-size), "
            f"or {_NEW_RUN}",
        )
    was = _saved_precision(state)
    if was is not None and was != run.precision:
        raise ckpt.CheckpointError(
            path,
            f"was trained in {was}, but would continue in {run.precision} (amp="
            f"{config.amp!r} on {run.device_name}); resume with the precision it began in "
            f"(--amp {'off' if was == 'fp32' else was}), or {_NEW_RUN}",
        )
    progress = state["progress"]
    step, batch = int(progress.get("step", 0)), int(progress.get("batch_in_epoch", 0))
    if step > total or batch >= spe > 0 and step < total:
        raise ckpt.CheckpointError(
            path,
            f"is at step {step} (batch {batch} of an epoch), past this run's {total} steps of "
            f"{spe} an epoch; resume with the same data and settings, or {_NEW_RUN}",
        )


def _saved_precision(state: dict[str, Any]) -> str | None:
    """What a checkpoint's run trained in: saved since the field existed, else read from an
    explicit ``amp`` (None: 'auto' of an older version, which is not known)."""
    saved = state.get("run", {}).get("precision")
    if saved:
        return saved
    return {"off": "fp32", "bf16": "bf16", "fp16": "fp16"}.get(state["config"].get("amp"))


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
