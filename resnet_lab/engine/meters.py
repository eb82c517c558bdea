"""What a training loop sums as it goes: weighted means on the device (:class:`Mean`) and the
run's clock across sessions (:class:`Clock`)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from resnet_lab import distributed
from resnet_lab.engine.precision import sum_dtype


class Mean:
    """Weighted means of a few named quantities, summed in place where they are computed.

    The sums stay on the device (float64; float32 on MPS, which has none) and grow by
    in-place adds, Python-number weights included: no step copies a number to or from
    the host, so the GPU never waits for the loop. :meth:`compute` sums over processes and
    reads the means once, at a log step or an epoch's end::

        meter = Mean(["train_loss", "train_error"], device)
        meter.add(len(y), loss * len(y), (logits.argmax(1) != y).sum())  # sums over a batch
        means, images = meter.compute()  # ({'train_loss': .., 'train_error': ..}, images)
    """

    def __init__(self, names: Sequence[str], device: torch.device):
        self.names = tuple(names)
        self.dtype = sum_dtype(device)
        # (len(names) + 1,): the weighted sums, then the total weight
        self.total = torch.zeros(len(self.names) + 1, dtype=self.dtype, device=device)

    @torch.no_grad()
    def add(self, weight: float | torch.Tensor, *sums: torch.Tensor) -> None:
        """Add sums over ``weight`` items: one 0-d tensor per name, or one (len(names),) vector."""
        if len(sums) == 1 and sums[0].dim() == 1:
            self.total[:-1] += sums[0]
        else:
            for i, s in enumerate(sums):
                self.total[i] += s
        self.total[-1] += weight

    def mark(self) -> torch.Tensor:
        """The sums now, for a later ``compute(since=...)``."""
        return self.total.clone()

    def compute(self, since: torch.Tensor | None = None) -> tuple[dict[str, float], float]:
        """(mean of each name, total weight) over all processes; only what was added after
        the :meth:`mark` ``since``, when given. Every process must call it (an all-reduce)."""
        total = self.total - since if since is not None else self.total.clone()
        total = distributed.all_reduce_sum(total).tolist()
        n = max(1.0, total[-1])
        return {k: s / n for k, s in zip(self.names, total, strict=False)}, total[-1]

    def reset(self) -> None:
        self.total.zero_()


class Clock:
    """A run's seconds across sessions: wall time since the run began, and the current
    epoch's training time, evaluations left out (for its images/s).

    ``wall`` and ``epoch``: what earlier sessions took (a resumed run goes on from them).
    """

    def __init__(self, wall: float = 0.0, epoch: float = 0.0):
        self.before, self.epoch_before = wall, epoch
        self.started = time.perf_counter()
        self.epoch_started: float | None = None
        self.eval_seconds = 0.0  # evaluations within the current epoch, this session

    def start(self) -> None:
        """Start this session's clock (the loop begins)."""
        self.started = time.perf_counter()

    def wall(self) -> float:
        return self.before + time.perf_counter() - self.started

    def start_epoch(self) -> None:
        self.epoch_started = time.perf_counter()

    def epoch(self) -> float:
        """Training seconds of the current epoch so far (a Ctrl-C mid-epoch keeps them)."""
        running = (
            time.perf_counter() - self.epoch_started if self.epoch_started is not None else 0.0
        )
        return self.epoch_before + running - self.eval_seconds

    def end_epoch(self) -> None:
        self.epoch_before = self.eval_seconds = 0.0
        self.epoch_started = None
