"""Everything a run's progress is, in one object: :class:`TrainState`.

A checkpoint is ``state.state_dict()`` and ``--resume`` is ``state.load_state_dict(...)``:
one code path, so what is saved and what is restored cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from resnet_lab import checkpoint as ckpt
from resnet_lab.engine.meters import Clock, Mean
from resnet_lab.engine.run import Run


@dataclass(eq=False)
class TrainState:
    """A run's progress: weights, optimizer and scaler state, counters, meters, history.

    The learning-rate schedule is a function of ``step`` (:func:`lr_at`) and the data
    order one of ``(config.seed, epoch)`` (:class:`~resnet_lab.data.GpuLoader`), so the
    counters restore both; ``batch_in_epoch`` says where the current epoch goes on. The
    global random generators (dropout, stochastic depth) are saved with the rest. A
    state restored from its :meth:`state_dict` continues exactly as the run would have,
    in deterministic mode bit for bit (``tests/test_engine.py``).
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler  # enabled for fp16 only; its state is {} otherwise
    run: Run  # config, provenance, the per-epoch history and the step records
    train_meter: Mean  # this epoch's train_loss and train_error, weighted by images
    grad_meter: Mean  # this epoch's per-layer gradient norms, weighted by steps
    clock: Clock = field(default_factory=Clock)
    step: int = 0  # optimizer steps done
    epoch: int = 0  # epochs done
    batch_in_epoch: int = 0  # batches of the current epoch done
    #: ``train_meter``'s sums at the last step record of this epoch (None: none yet), so
    #: that the first record after a mid-epoch resume averages all the steps it covers
    record_mark: torch.Tensor | None = None

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint (format ``resnet_lab.checkpoint/1``, see :mod:`resnet_lab.checkpoint`):
        tensors, numbers, strings, lists and dicts only, so ``torch.load(weights_only=True)``
        reads it."""
        run = self.run
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "config": run.config.to_dict(),
            "progress": {
                "step": self.step,
                "epoch": self.epoch,
                "batch_in_epoch": self.batch_in_epoch,
                # The meters in the layout format 1 has always had, so that runs in progress
                # resume across versions: acc (4,) = loss sum, wrong, images, grad-norm steps;
                # gsum (layers,) = gradient-norm sums.
                "acc": torch.cat([self.train_meter.total, self.grad_meter.total[-1:]]),
                "gsum": self.grad_meter.total[:-1],
                "epoch_train_time": self.clock.epoch(),
                **({"record_mark": self.record_mark} if self.record_mark is not None else {}),
            },
            "history": run.history,
            "steps": run.steps,
            "run": {
                "model": run.model_name,
                "id": run.id,
                "date": run.date,
                "data": run.data,
                "tags": run.tags,
                "precision": run.precision,
                **({"data_fingerprint": run.data_fingerprint} if run.data_fingerprint else {}),
            },
            "rng": ckpt.rng_state(),
            "wall_time": self.clock.wall(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (e.g. a loaded checkpoint) into this state, in place.

        Raises RuntimeError, from ``model.load_state_dict``, when the weights do not fit.
        """
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):  # fp16 then; a disabled scaler (bf16, fp32 now) ignores it
            self.scaler.load_state_dict(state["scaler"])
        ckpt.set_rng_state(state.get("rng", {}))
        p = state["progress"]
        self.step, self.epoch = int(p["step"]), int(p["epoch"])
        self.batch_in_epoch = int(p["batch_in_epoch"])
        acc, gsum = p["acc"], p.get("gsum")
        self.train_meter.total.copy_(acc[:3])
        mark = p.get("record_mark")  # absent before it was saved: the steps since resuming
        self.record_mark = mark.to(self.train_meter.total) if mark is not None else None
        if gsum is not None and len(gsum) == len(self.grad_meter.names):
            self.grad_meter.total.copy_(torch.cat([gsum.to(acc.dtype), acc[3:]]))
        self.clock = Clock(float(state.get("wall_time", 0.0)), float(p.get("epoch_train_time", 0)))
        run = self.run
        run.history, run.steps = list(state["history"]), list(state.get("steps", []))
        info = state.get("run", {})
        run.id, run.date = info.get("id", run.id), info.get("date", run.date)
        run.tags = run.tags or list(info.get("tags", []))
