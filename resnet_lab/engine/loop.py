"""The training loop: :func:`train`.

:func:`train` reads like airbench's ``main`` or a torchtune recipe: set the run up (a
:class:`_Session`: the data on the device, the model wrapped for DDP and ``torch.compile``, a
:class:`~resnet_lab.engine.state.TrainState`), resume it if asked, then loop over epochs and
batches. What happens around a step (step records, test points, NaN checks, checkpoints,
Ctrl-C) is a method of the session named for it.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

import torch
from torch import nn

from resnet_lab import checkpoint as ckpt
from resnet_lab import distributed, runtime
from resnet_lab.data import GpuLoader, ImageData, default_channels_last
from resnet_lab.engine.checks import (
    check_memory,
    check_resume,
    dataset_oom,
    divergence_advice,
    nan_check_interval,
    nonfinite_state,
    oom_advice,
)
from resnet_lab.engine.config import TrainConfig, crop_padding, lr_at, recipe
from resnet_lab.engine.errors import OutOfMemory, StopTraining, TrainingDiverged
from resnet_lab.engine.evaluate import evaluate_loader
from resnet_lab.engine.meters import Mean
from resnet_lab.engine.precision import amp_dtype, make_optimizer, make_scaler, precision_name
from resnet_lab.engine.report import Progress, call_callbacks, epoch_line, start_line
from resnet_lab.engine.run import Run, model_depth, model_name_of
from resnet_lab.engine.state import TrainState
from resnet_lab.engine.step import kernel_selection, train_step
from resnet_lab.io import atomic_torch_save
from resnet_lab.models.layers import weight_layers

_OOM = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


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
    epochs, when stopped and on Ctrl-C or SIGTERM; ``resume=True`` continues from it (if it
    exists) when it was made by these settings, on this data, in this precision. One process
    at a time trains into a checkpoint (another is refused with :class:`~resnet_lab.locks.Busy`);
    temporary files that a killed process left beside it are removed. ``name``: the model's name in records (default: ``model.name`` or the class
    name). Saving the finished run is the caller's: ``resnet_lab.results.save_run(run)``.

    Errors: :class:`ConfigError` (an impossible setting), :class:`TrainingDiverged` (a
    NaN/inf loss, test loss, weight or BatchNorm statistic), :class:`OutOfMemory` (also
    raised before training when a batch clearly cannot fit); the last two carry ``.run``
    with the history so far. A diverged run keeps only epochs where everything was finite,
    and the checkpoint file holds the last of them. The first Ctrl-C (or SIGTERM) stops
    after the current step, saves the checkpoint and returns the run marked
    ``interrupted``; its message says how to continue (``resume_hint``: the command line
    passes ``--resume``). :class:`~resnet_lab.checkpoint.CheckpointError`: a checkpoint that
    cannot be resumed, saying why.
    """
    config = (config or recipe("fast")).validate()
    ctx = distributed.context()
    device = runtime.pick_device(distributed.device_for(ctx) if device is None else device)
    held = ckpt.hold(checkpoint) if checkpoint is not None and ctx.is_main else _nothing()
    with held:
        # (in a list that _train empties: no frame but its own may keep the session, which an
        # out-of-memory error drops, see there)
        session = [_Session(model, data, config, device, ctx, name, tags, checkpoint, callbacks)]
        return _train(session, data, progress, checkpoint, resume, resume_hint)


def _train(
    session: list[_Session],
    data: ImageData,
    progress: bool,
    checkpoint: str | Path | None,
    resume: bool,
    resume_hint: str,
) -> Run:
    """The loop of :func:`train`: resume the session if asked, then train."""
    s = session.pop()
    config, device, callbacks = s.config, s.device, s.callbacks
    if checkpoint is not None:
        s.state.run.data_fingerprint = data.fingerprint()
    if resume and checkpoint is not None and Path(checkpoint).exists():
        s.resume(Path(checkpoint))
    state, run = s.state, s.state.run
    s.start(progress)  # DDP and compile wrappers, the progress bar, the clock
    s.snapshot()  # the weights at initialisation, when config.snapshot_steps asks for step 0
    try:
        with _graceful_interrupt() as interrupted, kernel_selection(device, config.deterministic):
            state.model.train()
            while state.step < s.total:
                for x, y in s.epoch_batches():  # the rest of this epoch (all of it, unless resumed)
                    s.step(x, y)
                    s.after_step(interrupted)  # step record, test point, NaN check, Ctrl-C
                s.end_epoch(interrupted)  # evaluate, record, checkpoint, Ctrl-C
        run.status = "completed"
    except StopTraining:
        s.stop("stopped")
    except _Interrupted:
        s.stop("interrupted")
        where = (
            f"; checkpoint saved to {checkpoint}, resume with {resume_hint}" if checkpoint else ""
        )
        run.message = f"interrupted at step {state.step}{where}"
        s.bar.write(run.message)
    except _OOM:
        run.status = "out_of_memory"
        reason, fixes = oom_advice(config, run.device_name, s.evaluating, s.dtype is not None)
    finally:
        s.bar.close()
        run.wall_time = state.clock.wall()
    if run.status == "out_of_memory":
        # Raised here, outside the except block, with the session dropped: the exception (kept
        # by a notebook or a widget) must not keep the batch, its graph, the optimizer and the
        # data on the GPU, or a retry with a smaller batch runs out again.
        x = y = s = state = None  # noqa: F841
        if device.type == "cuda":
            torch.cuda.empty_cache()
        raise OutOfMemory(reason, run, fixes)
    call_callbacks(callbacks, "end", run, run.history[-1] if run.history else {})
    return run


class _Session:
    """One call of :func:`train`: the run's :class:`TrainState` and what this session keeps
    around it (loaders, the wrapped model, the progress bar, the checkpoint file, the NaN
    watch). Its methods are the loop's steps, in the order :func:`train` calls them."""

    def __init__(
        self,
        model: nn.Module,
        data: ImageData,
        config: TrainConfig,
        device: torch.device,
        ctx: distributed.Context,
        name: str | None,
        tags: Sequence[str],
        checkpoint: str | Path | None,
        callbacks: Sequence[Callable],
    ):
        self.config, self.device, self.ctx, self.callbacks = config, device, ctx, callbacks
        self.dtype = amp_dtype(config.amp, device)  # autocast's; None: fp32
        cl = config.channels_last
        self.channels_last = default_channels_last(device) if cl is None else cl
        model.to(device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        check_memory(model, data, config, device, self.dtype, ctx.world_size)
        self.train_loader, self.test_loader = _loaders(
            data, config, device, ctx, self.channels_last
        )
        self.spe = len(self.train_loader)  # steps per epoch
        self.total = config.total_steps(self.spe)
        self.depth = model_depth(model)  # for the deep nets' warm-up (lr_at)
        layers = _weight_layers(model) if config.grad_norms else []
        self.norms_of = [p for _, p in layers]
        run = Run(
            model_name=model_name_of(model, name),
            config=config,
            data=data.info(),
            device=device.type,
            device_name=runtime.device_name(device),
            precision=precision_name(self.dtype),
            tags=list(tags),
            grad_norm_layers=[n for n, _ in layers],
            world_size=ctx.world_size,
            total_steps=self.total,
            steps_per_epoch=self.spe,
            model=model,
            checkpoint=Path(checkpoint).name if checkpoint else None,
        )
        self.state = TrainState(
            model,
            make_optimizer(model, config, lr_at(config, 0, self.total, self.depth)),
            make_scaler(device, self.dtype),
            run,
            train_meter=Mean(["train_loss", "train_error"], device),
            grad_meter=Mean(run.grad_norm_layers, device),
        )
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        self.file = _CheckpointFile(checkpoint, ctx.is_main)
        # good_step: the last epoch end where losses, weights and BN statistics were finite;
        # bad_step: the first step whose loss was not, kept on the device until a check reads it.
        self.good_step = 0
        self.bad_step = torch.full((), -1, dtype=torch.int64, device=device)
        self.check_every = nan_check_interval(device, config)
        self.evaluating = False  # an out-of-memory error then names eval_batch_size

    def resume(self, path: Path) -> None:
        """Continue from the checkpoint at ``path``, if it was made by this run's settings."""
        saved = ckpt.load_checkpoint(path, map_location="cpu")
        check_resume(path, saved, self.config, self.state.run, self.total, self.spe)
        try:
            self.state.load_state_dict(saved)
        except RuntimeError as exc:
            raise ckpt.CheckpointError(path, f"does not fit this model ({exc})") from exc
        self.file.saved_step = self.good_step = self.state.step

    def start(self, progress: bool) -> None:
        """Wrap the model (DDP broadcasts rank 0's weights, resumed or not; compile), show the
        progress bar and the run's first line, start the clock."""
        st = self.state
        net = st.model
        if self.ctx.is_distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            net = nn.parallel.DistributedDataParallel(net, device_ids=ids)
        self.fwd = torch.compile(net) if self.config.compile else net
        self.bar = Progress(progress and self.ctx.is_main, self.total, st.step, st.run.model_name)
        self.bar.write(start_line(st.run, self.channels_last, self.total))
        st.clock.start()
        self.lr = lr_at(self.config, st.step, self.total, self.depth)
        # (sums at the last step record, its time, images of it trained before resuming)
        now = st.train_meter.mark()
        since = st.record_mark if st.record_mark is not None else now
        self.window = (since, time.perf_counter(), float((now - since)[-1]))

    def epoch_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The current epoch's batches from ``batch_in_epoch`` on, up to the run's last step.

        Yields x: (N, C, H, W) normalised, augmented images; y: (N,) int64 labels."""
        st = self.state
        self.train_loader.set_epoch(st.epoch)  # the order, crops and flips of (seed, epoch)
        st.clock.start_epoch()
        for batch in self.train_loader.iter_from(st.batch_in_epoch):
            yield batch
            if st.step >= self.total:
                return

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """One SGD step at the scheduled learning rate, and its sums."""
        st, n = self.state, len(y)
        self.lr = lr_at(self.config, st.step, self.total, self.depth)
        for group in st.optimizer.param_groups:
            group["lr"] = self.lr
        # Under DDP gradients are averaged over processes; weighting by the local share makes
        # that the mean over the global batch even when the last batch splits unevenly.
        weight = n * self.ctx.world_size / _global_batch(self.train_loader, st.batch_in_epoch)
        out = train_step(
            self.fwd,
            st.optimizer,
            st.scaler,
            x,
            y,
            self.loss_fn,
            self.dtype,
            weight=weight,
            norms_of=self.norms_of,
        )
        loss = out.loss.to(st.train_meter.dtype)
        st.train_meter.add(n, loss * n, (out.logits.argmax(1) != y).sum())
        if out.grad_norms is not None:
            ok = torch.isfinite(out.grad_norms).all()  # fp16 steps the scaler skipped: left out
            st.grad_meter.add(ok, torch.where(ok, out.grad_norms, 0.0))
        finite = torch.isfinite(loss)
        self.bad_step = torch.where(~finite & (self.bad_step < 0), st.step, self.bad_step)
        st.step += 1
        st.batch_in_epoch += 1

    def after_step(self, interrupted: threading.Event) -> None:
        """A step record every ``log_every_steps``, with a test point every
        ``eval_every_steps``; a NaN check every ``check_every`` steps; a stop on Ctrl-C."""
        st, c = self.state, self.config
        epoch_ends = st.batch_in_epoch >= self.spe
        eval_now = bool(
            c.eval_every_steps
            and st.step % c.eval_every_steps == 0
            and not (epoch_ends and (st.epoch + 1) % c.eval_every == 0)  # evaluated there
            and st.step < self.total  # the run's end always evaluates
        )
        log_now = eval_now or bool(c.log_every_steps and st.step % c.log_every_steps == 0)
        self.snapshot()
        stop_now = False
        # (also at each epoch end, so that no epoch record holds a NaN loss)
        if st.step % self.check_every == 0 or log_now or st.step >= self.total or epoch_ends:
            stop_now = self.check_loss(interrupted)
        if log_now:
            self.log_step(eval_now)
        else:
            self.bar.update(1)
        # Under DDP a process stops only when all agreed to (else the others would wait for it
        # in the next all-reduce for ever).
        if stop_now or (interrupted.is_set() and not self.ctx.is_distributed):
            raise _Interrupted

    def snapshot(self) -> None:
        """Keep the weights now if ``config.snapshot_steps`` names this step."""
        if self.state.step in self.config.snapshot_steps:
            self.file.snapshot(self.state.model, self.state.step)

    def check_loss(self, interrupted: threading.Event) -> bool:
        """Diverge if a loss since the last check was not finite (reading it waits for the GPU).
        Under DDP every process learns of a NaN or a Ctrl-C on any; returns: all stop now."""
        if self.ctx.is_distributed:
            flags = torch.stack([self.bad_step, _flag(interrupted, self.device)])
            bad, stop = distributed.all_reduce_max(flags).tolist()
        else:
            bad, stop = int(self.bad_step), 0
        if bad >= 0:
            self.diverged(bad, "the training loss became NaN or infinite")
        return bool(stop)

    def log_step(self, evaluate: bool) -> None:
        """A step record of the steps since the last one (and a test point when ``evaluate``)."""
        st = self.state
        test, t_eval = None, 0.0
        if evaluate:
            t0 = time.perf_counter()
            test = self.evaluate()
            if not math.isfinite(test[0]):
                self.diverged(st.step - 1, "the test loss became NaN or infinite")
            t_eval = time.perf_counter() - t0
            st.clock.eval_seconds += t_eval
        since, t_window, carried = self.window
        means, images = st.train_meter.compute(since)
        images -= carried * self.ctx.world_size  # trained before a resume: not in this time
        record = {
            "step": st.step,
            "epoch": st.step / self.spe,
            **means,  # train_loss, train_error
            "lr": self.lr,
            "images_per_sec": images / max(time.perf_counter() - t_window - t_eval, 1e-9),
            "wall_time": st.clock.wall(),
        }
        if test is not None:
            record["test_loss"], record["test_error"] = test
        st.run.steps.append(record)
        loss, err = f"{record['train_loss']:.3f}", f"{record['train_error']:.3f}"
        self.bar.update(1, loss=loss, err=err, lr=f"{self.lr:.3g}")
        call_callbacks(self.callbacks, "step", st.run, record)
        st.record_mark = st.train_meter.mark()
        self.window = (st.record_mark, time.perf_counter(), 0.0)

    def end_epoch(self, interrupted: threading.Event) -> None:
        """An epoch's end: sum over processes, evaluate, record, checkpoint, stop on Ctrl-C."""
        st, c = self.state, self.config
        epoch_time = st.clock.epoch()
        means, images = st.train_meter.compute()
        st.epoch += 1
        test_loss = test_error = None
        if st.epoch % c.eval_every == 0 or st.step >= self.total:
            test_loss, test_error = self.evaluate()
        # A run is good only while everything it saves is finite: losses, weights and
        # BatchNorm statistics (a huge lr can leave the loss finite for a step).
        what = nonfinite_state(st.model, means["train_loss"], test_loss)
        if what:
            self.diverged(st.step - 1, what)  # (step counts the steps done; at is 0-based)
        record: dict[str, Any] = {
            "epoch": st.epoch,
            "step": st.step,
            **means,  # train_loss, train_error
            "test_loss": test_loss,
            "test_error": test_error,
            "lr": self.lr,
            "images_per_sec": images / max(epoch_time, 1e-9),
            "wall_time": st.clock.wall(),
        }
        if self.norms_of:
            record["grad_norms"] = list(st.grad_meter.compute()[0].values())
        st.run.history.append(record)
        st.run.wall_time = record["wall_time"]
        st.batch_in_epoch = 0
        st.train_meter.reset()
        st.grad_meter.reset()
        st.clock.end_epoch()
        st.record_mark = None
        self.window = (st.train_meter.mark(), time.perf_counter(), 0.0)
        self.bar.write(epoch_line(record, math.ceil(self.total / self.spe)))
        self.good_step = st.step
        if st.epoch % c.checkpoint_every == 0 or st.step >= self.total:
            self.file.save(st)
        else:
            self.file.keep(st)
        call_callbacks(self.callbacks, "epoch", st.run, record)
        if self.ctx.is_distributed:
            if distributed.all_reduce_max(_flag(interrupted, self.device)).item():
                raise _Interrupted
        elif interrupted.is_set():
            raise _Interrupted

    def evaluate(self) -> tuple[float, float]:
        """(test loss, test error), over all processes."""
        distributed.broadcast_buffers(self.state.model)  # one set of BN statistics: rank 0's
        self.evaluating = True
        result = evaluate_loader(self.state.model, self.test_loader, self.dtype)
        self.evaluating = False
        return result

    def stop(self, status: str) -> None:
        """A run stopped between steps (``status``: stopped, interrupted): checkpointed if the
        steps since the last check were finite, else it diverged."""
        bad = -1 if self.ctx.is_distributed else int(self.bad_step)
        if bad >= 0:
            self.diverged(bad, "the training loss became NaN or infinite")
        what = nonfinite_state(self.state.model)
        if what:
            self.diverged(max(0, self.state.step - 1), what)
        self.state.run.status = status
        self.file.save(self.state)

    def diverged(self, at: int, what: str) -> NoReturn:
        """Raise TrainingDiverged for step ``at``, the run holding its last good epoch."""
        run = self.state.run
        self.file.save_pending()  # the last good epoch, if it was only kept in memory
        run.steps = [s for s in run.steps if s["step"] <= self.good_step]
        run.checkpoint = self.file.path.name if self.file.saved_step is not None else None
        lr = lr_at(self.config, at, self.total, self.depth)
        notes, fixes = divergence_advice(self.config, lr, self.dtype == torch.float16)
        reason = f"training diverged: {what} at step {at} (lr {lr:.4g}){notes}"
        exc = TrainingDiverged(reason, run, fixes, checkpoint_step=self.file.saved_step)
        run.status, run.message = "diverged", str(exc)
        raise exc


class _CheckpointFile:
    """The run's checkpoint: saved every ``checkpoint_every`` epochs, at the end, when stopped
    and on Ctrl-C (by rank 0). An epoch end between saves is kept in memory (``pending``), so
    that when a later epoch diverges, the file gets the last good state, never a NaN."""

    def __init__(self, path: str | Path | None, main: bool):
        self.path = Path(path) if path is not None else None
        self.main = main
        self.saved_step: int | None = None  # the step the file holds (None: no file of this run)
        self.pending: tuple[int, dict[str, Any] | None] | None = None  # (step, CPU state)

    def save(self, state: TrainState) -> None:
        if self.path is not None:
            if self.main:
                ckpt.save_checkpoint(state.state_dict(), self.path)
            self.saved_step, self.pending = state.step, None
        distributed.barrier()

    def keep(self, state: TrainState) -> None:
        if self.path is not None:
            # a copy: the next steps change the weights in place
            self.pending = (state.step, ckpt.cpu_copy(state.state_dict()) if self.main else None)

    def snapshot(self, model: nn.Module, step: int) -> Path | None:
        """The model's weights after ``step`` steps, as ``snapshots/step-NNNNNN.pt`` beside the
        checkpoint (a dict ``{"step": step, "model": state_dict}`` of CPU tensors)."""
        if self.path is None or not self.main:
            return None
        target = self.path.parent / "snapshots" / f"step-{step:06d}.pt"
        weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        return atomic_torch_save({"step": step, "model": weights}, target)

    def save_pending(self) -> None:
        if self.pending is not None:
            step, saved = self.pending
            if self.main:
                ckpt.save_checkpoint(saved, self.path)
            self.saved_step, self.pending = step, None


def _loaders(
    data: ImageData,
    config: TrainConfig,
    device: torch.device,
    ctx: distributed.Context,
    channels_last: bool,
) -> tuple[GpuLoader, GpuLoader]:
    """The training and test loaders; the whole dataset moves to the device here."""
    common = dict(
        mean=data.mean,
        std=data.std,
        device=device,
        channels_last=channels_last,
        rank=ctx.rank,
        world_size=ctx.world_size,
    )
    try:
        train = GpuLoader(
            data.train_x,
            data.train_y,
            config.batch_size,
            True,
            augment=config.augment,
            seed=config.seed,
            pad=crop_padding(data.image_size[1]),
            **common,
        )
        test = GpuLoader(data.test_x, data.test_y, config.eval_batch_size, False, **common)
    except _OOM:
        raise dataset_oom(data, device) from None
    return train, test


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield


class _Interrupted(Exception):  # noqa: N818
    pass


@contextlib.contextmanager
def _graceful_interrupt() -> Iterator[threading.Event]:
    """First Ctrl-C or SIGTERM (what ``timeout``, docker, Slurm and systemd send) sets a flag
    checked between steps (the run then checkpoints and returns); a second one interrupts at
    once."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    signals = [signal.SIGINT, *([signal.SIGTERM] if hasattr(signal, "SIGTERM") else [])]
    previous = {sig: signal.getsignal(sig) for sig in signals}

    def handler(signum, frame):  # noqa: ARG001
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()

    try:
        for sig in signals:
            signal.signal(sig, handler)
    except ValueError:  # pragma: no cover - not allowed in this interpreter state
        yield flag
        return
    try:
        yield flag
    finally:
        for sig, before in previous.items():
            signal.signal(sig, before)


def _weight_layers(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """Every weight layer's weight, shortcuts included (for per-layer gradient norms)."""
    layers = weight_layers(model, shortcuts=True)
    return [(name, m.weight) for name, m in layers if m.weight.requires_grad]


def _flag(event: threading.Event, device: torch.device) -> torch.Tensor:
    return torch.full((), int(event.is_set()), dtype=torch.int64, device=device)


def _global_batch(loader: GpuLoader, batch_index: int) -> int:
    start = batch_index * loader.batch_size
    return max(1, min(loader.batch_size, loader.num_images - start))
