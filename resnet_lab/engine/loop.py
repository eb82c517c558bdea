"""The training loop: :func:`train`."""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from resnet_lab import checkpoint as ckpt
from resnet_lab import distributed, runtime
from resnet_lab.data import GpuLoader, ImageData, default_channels_last
from resnet_lab.engine.checks import (
    _check_memory,
    _check_resume,
    _nan_check_interval,
    _nonfinite_state,
    _unusual_settings,
)
from resnet_lab.engine.config import TrainConfig, crop_padding, lr_at, recipe
from resnet_lab.engine.errors import Fix, OutOfMemory, StopTraining, TrainingDiverged
from resnet_lab.engine.evaluate import _evaluate_loader
from resnet_lab.engine.precision import (
    _amp_dtype,
    _autocast,
    _sum_dtype,
    make_optimizer,
    precision_name,
)
from resnet_lab.engine.report import _call, _epoch_line, _Progress, _start_line, _step_record
from resnet_lab.engine.run import Run, _model_name, model_depth
from resnet_lab.models.layers import weight_layers

_OOM = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


class _Interrupted(Exception):  # noqa: N818
    pass


@contextlib.contextmanager
def _graceful_interrupt() -> Iterator[threading.Event]:
    """First Ctrl-C sets a flag checked between steps (the run then checkpoints and returns);
    a second one interrupts at once."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):  # noqa: ARG001
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:  # pragma: no cover - not allowed in this interpreter state
        yield flag
        return
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _deterministic(enabled: bool, device: torch.device) -> Iterator[None]:
    prev_alg = torch.are_deterministic_algorithms_enabled()
    prev_bench = torch.backends.cudnn.benchmark
    prev_det = torch.backends.cudnn.deterministic
    try:
        if enabled:
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


def _weight_layers(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """Every weight layer's weight, shortcuts included (for per-layer gradient norms)."""
    layers = weight_layers(model, shortcuts=True)
    return [(name, m.weight) for name, m in layers if m.weight.requires_grad]


def train(
    model: nn.Module,
    data: ImageData,
    config: TrainConfig | None = None,
    device: str | torch.device | None = None,
    callbacks: Sequence[Callable[[str, Run, dict], None]] = (),
    progress: bool = True,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    name: str | None = None,
    tags: Sequence[str] = (),
    resume_hint: str = "resume=True",
) -> Run:
    """Train ``model`` on ``data`` with ``config`` (default: ``recipe("fast")``); returns the Run.

    ``callbacks`` are called as ``cb(event, run, record)`` with event 'step' (every
    ``log_every_steps``), 'epoch' and 'end'; raising :class:`StopTraining` ends
    the run cleanly. ``checkpoint``: a file saved every ``checkpoint_every``
    epochs, when stopped and on Ctrl-C; ``resume=True`` continues from it (if it
    exists). ``name``: the model's name in records (default: ``model.name`` or the class
    name). Saving the finished run is the caller's: ``resnet_lab.results.save_run(run)``.

    Errors: :class:`ConfigError` (an impossible setting), :class:`TrainingDiverged` (a
    NaN/inf loss, test loss, weight or BatchNorm statistic), :class:`OutOfMemory` (also
    raised before training when a batch clearly cannot fit); the last two carry ``.run``
    with the history so far. A diverged run keeps only epochs where everything was finite,
    and the checkpoint file holds the last of them. The first Ctrl-C stops after the
    current step, saves the checkpoint and returns the run marked ``interrupted``; its
    message says how to continue (``resume_hint``: the command line passes ``--resume``).
    """
    config = (config or recipe("fast")).validate()
    ctx = distributed.context()
    if device is None:
        device = distributed.device_for(ctx)
    device = runtime.pick_device(device)
    main = ctx.is_main
    channels_last = (
        default_channels_last(device) if config.channels_last is None else config.channels_last
    )
    amp_dtype = _amp_dtype(config.amp, device)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)

    _check_memory(model, data, config, device, amp_dtype, ctx.world_size)
    try:  # the whole dataset moves to the device here
        train_loader = GpuLoader(
            data.train_x,
            data.train_y,
            config.batch_size,
            True,
            data.mean,
            data.std,
            device,
            augment=config.augment,
            channels_last=channels_last,
            seed=config.seed,
            pad=crop_padding(data.image_size[1]),
            rank=ctx.rank,
            world_size=ctx.world_size,
        )
        test_loader = GpuLoader(
            data.test_x,
            data.test_y,
            config.eval_batch_size,
            False,
            data.mean,
            data.std,
            device,
            channels_last=channels_last,
            rank=ctx.rank,
            world_size=ctx.world_size,
        )
    except _OOM:
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
        raise OutOfMemory(msg, None, fixes) from None
    spe = len(train_loader)
    total = config.total_steps(spe)
    n_epochs = math.ceil(total / spe)
    depth = model_depth(model)
    layers = _weight_layers(model) if config.grad_norms else []

    optimizer = make_optimizer(model, config, lr_at(config, 0, total, depth))
    scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)

    run = Run(
        model_name=_model_name(model, name),
        config=config,
        data=data.info(),
        device=device.type,
        device_name=runtime.device_name(device),
        precision=precision_name(amp_dtype),
        tags=list(tags),
        grad_norm_layers=[n for n, _ in layers],
        world_size=ctx.world_size,
        total_steps=total,
        steps_per_epoch=spe,
        model=model,
        checkpoint=Path(checkpoint).name if checkpoint else None,
    )

    # Progress counters; sums live on the device so the GPU is never made to wait.
    step = epoch = batch_in_epoch = 0
    sum_dtype = _sum_dtype(device)
    acc = torch.zeros(4, dtype=sum_dtype, device=device)  # loss*n, wrong, n, grad-norm steps
    gsum = torch.zeros(len(layers), dtype=sum_dtype, device=device)
    # Training seconds of the current epoch: earlier sessions (resume) + this one's clock
    # since t_epoch - evaluations in between; images/s counts training only.
    epoch_train_time = epoch_eval_time = 0.0
    t_epoch: float | None = None
    wall_offset = 0.0
    if resume and checkpoint is not None and Path(checkpoint).exists():
        state = ckpt.load_checkpoint(checkpoint, map_location="cpu")
        _check_resume(Path(checkpoint), state, config, run)
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as exc:
            raise ckpt.CheckpointError(checkpoint, f"does not fit this model ({exc})") from exc
        optimizer.load_state_dict(state["optimizer"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        ckpt.set_rng_state(state.get("rng", {}))
        p = state["progress"]
        step, epoch, batch_in_epoch = int(p["step"]), int(p["epoch"]), int(p["batch_in_epoch"])
        acc = p["acc"].to(device=device, dtype=sum_dtype)
        if layers and p.get("gsum") is not None and len(p["gsum"]) == len(layers):
            gsum = p["gsum"].to(device=device, dtype=sum_dtype)
        epoch_train_time = float(p.get("epoch_train_time", 0.0))
        wall_offset = float(state.get("wall_time", 0.0))
        run.history = list(state["history"])
        run.steps = list(state.get("steps", []))
        info = state.get("run", {})
        run.id, run.date = info.get("id", run.id), info.get("date", run.date)
        run.tags = run.tags or list(info.get("tags", []))

    # The checkpoint file holds the state after saved_step (None: no file of this run yet);
    # good_step is the last epoch end where losses, weights and BN statistics were finite.
    resumed = resume and checkpoint is not None and Path(checkpoint).exists()
    saved_step: int | None = step if resumed else None
    good_step = step
    last_good: dict[str, Any] | None = None  # checkpoint_every > 1: the good epoch not saved

    net: nn.Module = model
    if ctx.is_distributed:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    fwd = torch.compile(net) if config.compile else net

    def epoch_seconds() -> float:
        running = time.perf_counter() - t_epoch if t_epoch is not None else 0.0
        return epoch_train_time + running - epoch_eval_time

    def snapshot() -> dict[str, Any]:
        return {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else {},
            "config": config.to_dict(),
            "progress": {
                "step": step,
                "epoch": epoch,
                "batch_in_epoch": batch_in_epoch,
                "acc": acc.cpu(),
                "gsum": gsum.cpu(),
                "epoch_train_time": epoch_seconds(),  # a Ctrl-C mid-epoch keeps its time
            },
            "history": run.history,
            "steps": run.steps,
            "run": {
                "model": run.model_name,
                "id": run.id,
                "date": run.date,
                "data": run.data,
                "tags": run.tags,
            },
            "rng": ckpt.rng_state(),
            "wall_time": wall_offset + (time.perf_counter() - t_start),
        }

    evaluating = False  # an out-of-memory error then names eval_batch_size, not batch_size

    def evaluate_test() -> tuple[float, float]:
        nonlocal evaluating
        evaluating = True
        result = _evaluate_loader(model, test_loader, amp_dtype)
        evaluating = False
        return result

    def save_ckpt() -> None:
        nonlocal saved_step, last_good
        if checkpoint is not None:
            if main:
                ckpt.save_checkpoint(snapshot(), checkpoint)
            saved_step, last_good = step, None
        distributed.barrier()

    bar = _Progress(progress and main, total, step, run.model_name)
    bar.write(_start_line(run, channels_last, total))
    t_start = time.perf_counter()
    bad_step = torch.full((), -1, dtype=torch.int64, device=device)
    check_every = _nan_check_interval(device, config)
    window = (step, acc.clone(), time.perf_counter())  # for step records
    lr = lr_at(config, step, total, depth)

    def diverged(at: int, what: str) -> None:
        nonlocal saved_step
        if last_good is not None:  # the last good epoch was not saved yet: save it, not this
            if main:
                ckpt.save_checkpoint(last_good, checkpoint)
            saved_step = int(last_good["progress"]["step"])
        run.steps = [s for s in run.steps if s["step"] <= good_step]
        run.checkpoint = Path(checkpoint).name if saved_step is not None else None
        at_lr = lr_at(config, at, total, depth)
        reason = f"training diverged: {what} at step {at} (lr {at_lr:.4g})"
        unusual = _unusual_settings(config)
        if unusual:
            reason += "; unusual: " + ", ".join(note for note, _ in unusual)
            usual = {k: v for _, settings in unusual for k, v in settings.items()}
            fixes = [Fix("go back to the usual values", usual)]
        else:
            fixes = [Fix("lower the learning rate", {"lr": at_lr / 2})]
            if not config.warmup_steps:
                fixes.append(Fix("add a warm-up", {"warmup_steps": 400, "warmup_lr": 0.01}))
            if amp_dtype == torch.float16:
                fixes.append(Fix("with fp16, try bf16 or fp32", {"amp": "bf16"}))
        exc = TrainingDiverged(reason, run, fixes, checkpoint_step=saved_step)
        run.status, run.message = "diverged", str(exc)
        raise exc

    def check_state() -> None:
        """Before a checkpoint of a stopped run: the steps since the last check were finite."""
        b = -1 if ctx.is_distributed else int(bad_step)
        if b >= 0:
            diverged(b, "the training loss became NaN or infinite")
        what = _nonfinite_state(model)
        if what:
            diverged(max(0, step - 1), what)

    try:
        with _graceful_interrupt() as interrupted, _deterministic(config.deterministic, device):
            model.train()
            while step < total:
                train_loader.set_epoch(epoch)
                t_epoch = time.perf_counter()
                for x, y in train_loader.iter_from(batch_in_epoch):
                    lr = lr_at(config, step, total, depth)
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                    with _autocast(device, amp_dtype):
                        out = fwd(x)
                        loss = loss_fn(out.float(), y)
                    n_local = len(y)
                    # Under DDP gradients are averaged over processes; weighting by the
                    # local share makes that the mean over the global batch even when the
                    # last batch splits unevenly.
                    weight = n_local * ctx.world_size / _global_batch(train_loader, batch_in_epoch)
                    optimizer.zero_grad(set_to_none=True)
                    if scaler is not None:
                        scaler.scale(loss * weight).backward()
                        if layers:
                            scaler.unscale_(optimizer)
                    else:
                        (loss * weight).backward()
                    if layers:
                        norms = torch.stack([p.grad.detach().float().norm() for _, p in layers])
                        # fp16 steps that the scaler skips have inf gradients: leave them out
                        ok = torch.isfinite(norms).all()
                        gsum += torch.where(ok, norms, 0.0).to(sum_dtype)
                        acc[3] += ok
                    if scaler is not None:
                        scaler.step(optimizer)
                        scaler.update()
                    else:
                        optimizer.step()
                    with torch.no_grad():
                        # In-place sums with Python scalars: no host-to-device copy, which
                        # would make the GPU wait every step.
                        ld = loss.detach().to(sum_dtype)
                        acc[0] += ld * n_local
                        acc[1] += (out.detach().argmax(1) != y).sum()
                        acc[2] += n_local
                        finite = torch.isfinite(ld)
                        bad_step = torch.where(~finite & (bad_step < 0), step, bad_step)
                    step += 1
                    batch_in_epoch += 1
                    epoch_end_evaluates = batch_in_epoch >= spe and (
                        (epoch + 1) % config.eval_every == 0
                    )
                    eval_now = (
                        config.eval_every_steps
                        and step % config.eval_every_steps == 0
                        and not epoch_end_evaluates  # evaluated there a moment later
                        and step < total  # the run's end always evaluates
                    )
                    log_now = eval_now or (
                        config.log_every_steps and step % config.log_every_steps == 0
                    )
                    stop_now = False
                    # (also at each epoch end, so that no epoch record holds a NaN loss)
                    if step % check_every == 0 or log_now or step >= total or batch_in_epoch >= spe:
                        if ctx.is_distributed:  # every process learns of a NaN or a Ctrl-C
                            flags = torch.stack([bad_step, _flag(interrupted, device)])
                            b, stop_now = distributed.all_reduce_max(flags).tolist()
                        else:
                            b = int(bad_step)
                        if b >= 0:
                            diverged(b, "the training loss became NaN or infinite")
                    if log_now:
                        test, t_eval = None, 0.0
                        if eval_now:
                            t0 = time.perf_counter()
                            distributed.broadcast_buffers(model)
                            test = evaluate_test()
                            if not math.isfinite(test[0]):
                                diverged(step - 1, "the test loss became NaN or infinite")
                            t_eval = time.perf_counter() - t0
                            epoch_eval_time += t_eval
                        window = _step_record(
                            run,
                            window,
                            acc,
                            step,
                            spe,
                            lr,
                            wall_offset,
                            t_start,
                            callbacks,
                            bar,
                            test,
                            t_eval,
                        )
                    else:
                        bar.update(1)
                    # Under DDP a process stops only when all agreed to (else the others
                    # would wait for it in the next all-reduce for ever).
                    if stop_now or (interrupted.is_set() and not ctx.is_distributed):
                        raise _Interrupted
                    if step >= total:
                        break
                epoch_time = epoch_seconds()
                # End of epoch: sum over processes, evaluate, record.
                tot = distributed.all_reduce_sum(acc.clone()).cpu()
                n = max(1.0, float(tot[2]))
                epoch += 1
                test_loss = test_error = None
                if epoch % config.eval_every == 0 or step >= total:
                    distributed.broadcast_buffers(model)  # one set of BN statistics: rank 0's
                    test_loss, test_error = evaluate_test()
                # A run is good only while everything it saves is finite: losses, weights
                # and BatchNorm statistics (a huge lr can leave the loss finite for a step).
                what = _nonfinite_state(model, float(tot[0]) / n, test_loss)
                if what:
                    diverged(step - 1, what)  # (step counts the steps done; at is 0-based)
                record: dict[str, Any] = {
                    "epoch": epoch,
                    "step": step,
                    "train_loss": float(tot[0]) / n,
                    "train_error": float(tot[1]) / n,
                    "test_loss": test_loss,
                    "test_error": test_error,
                    "lr": lr,
                    "images_per_sec": float(tot[2]) / max(epoch_time, 1e-9),
                    "wall_time": wall_offset + time.perf_counter() - t_start,
                }
                if layers:
                    record["grad_norms"] = (gsum / max(1.0, float(tot[3]))).tolist()
                run.history.append(record)
                run.wall_time = record["wall_time"]
                batch_in_epoch = 0
                acc.zero_()
                gsum.zero_()
                epoch_train_time = epoch_eval_time = 0.0
                t_epoch = None
                window = (step, acc.clone(), time.perf_counter())
                bar.write(_epoch_line(record, n_epochs))
                good_step = step
                if epoch % config.checkpoint_every == 0 or step >= total:
                    save_ckpt()
                elif checkpoint is not None:
                    last_good = ckpt.cpu_copy(snapshot()) if main else {"progress": {"step": step}}
                _call(callbacks, "epoch", run, record)
                if ctx.is_distributed:
                    if distributed.all_reduce_max(_flag(interrupted, device)).item():
                        raise _Interrupted
                elif interrupted.is_set():
                    raise _Interrupted
        run.status = "completed"
    except StopTraining:
        check_state()
        run.status = "stopped"
        save_ckpt()
    except _Interrupted:
        check_state()
        run.status = "interrupted"
        save_ckpt()
        where = (
            f"; checkpoint saved to {checkpoint}, resume with {resume_hint}" if checkpoint else ""
        )
        run.message = f"interrupted at step {step}{where}"
        bar.write(run.message)
    except _OOM:
        run.status = "out_of_memory"
        if evaluating:
            oom_reason = (
                f"the GPU ran out of memory evaluating batches of "
                f"{config.eval_batch_size} test images ({run.device_name})"
            )
            oom_fixes = [Fix("try", {"eval_batch_size": max(1, config.eval_batch_size // 2)})]
        else:
            oom_reason = (
                f"the GPU ran out of memory at batch size {config.batch_size} ({run.device_name})"
            )
            oom_fixes = [Fix("try", {"batch_size": max(1, config.batch_size // 2)})]
            if amp_dtype is None:
                oom_fixes.append(Fix("mixed precision", {"amp": "bf16"}))
            oom_fixes.append(Fix("a smaller model"))
        run.message = OutOfMemory(oom_reason, None, oom_fixes).explain()
    finally:
        bar.close()
        run.wall_time = wall_offset + time.perf_counter() - t_start
    if run.status == "out_of_memory":
        # Raised outside the except block, with this frame's big locals dropped: the
        # exception (kept by a notebook or a widget) must not keep the batch, its graph
        # and the data on the GPU, or a retry with a smaller batch runs out again.
        x = y = out = loss = optimizer = scaler = train_loader = test_loader = None  # noqa: F841
        net = fwd = None  # noqa: F841
        if device.type == "cuda":
            torch.cuda.empty_cache()
        raise OutOfMemory(oom_reason, run, oom_fixes)
    _call(callbacks, "end", run, run.history[-1] if run.history else {})
    return run


def _flag(event: threading.Event, device: torch.device) -> torch.Tensor:
    return torch.full((), int(event.is_set()), dtype=torch.int64, device=device)


def _global_batch(loader: GpuLoader, batch_index: int) -> int:
    start = batch_index * loader.batch_size
    return max(1, min(loader.batch_size, loader.num_images - start))
