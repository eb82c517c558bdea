"""What a run shows and records as it goes: the progress bar, its lines, the step records."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from resnet_lab import distributed
from resnet_lab.engine.run import Run


class _Progress:
    def __init__(self, enabled: bool, total: int, initial: int, desc: str):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True
            )

    def update(self, n: int = 1, **postfix: Any) -> None:
        if self.bar is not None:
            self.bar.update(n)
            if postfix:
                self.bar.set_postfix(postfix, refresh=False)

    def write(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _step_record(
    run, window, acc, step, spe, lr, wall_offset, t_start, callbacks, bar, test=None, t_eval=0.0
):
    step0, acc0, t0 = window
    tot = distributed.all_reduce_sum(acc.clone())
    prev = distributed.all_reduce_sum(acc0.clone())
    d = (tot - prev).cpu()
    n = max(1.0, float(d[2]))
    now = time.perf_counter()
    record = {
        "step": step,
        "epoch": step / spe,
        "train_loss": float(d[0]) / n,
        "train_error": float(d[1]) / n,
        "lr": lr,
        "images_per_sec": float(d[2]) / max(now - t0 - t_eval, 1e-9),
        "wall_time": wall_offset + now - t_start,
    }
    if test is not None:
        record["test_loss"], record["test_error"] = test
    run.steps.append(record)
    bar.update(
        1, loss=f"{record['train_loss']:.3f}", err=f"{record['train_error']:.3f}", lr=f"{lr:.3g}"
    )
    _call(callbacks, "step", run, record)
    return (step, acc.clone(), time.perf_counter())


def _start_line(run: Run, channels_last: bool, total: int) -> str:
    layout = "channels-last" if channels_last else "NCHW"
    return (
        f"{run.model_name} on {run.variant or 'data'}: {total} step{'' if total == 1 else 's'} "
        f"of {run.config.batch_size} on {run.device_name}, {run.precision} ({layout})"
    )


def _epoch_line(r: dict[str, Any], n_epochs: int) -> str:
    test = (
        f" | test loss {r['test_loss']:.3f} err {r['test_error']:.4f}"
        if r["test_error"] is not None
        else ""
    )
    return (
        f"epoch {r['epoch']}/{n_epochs} | train loss {r['train_loss']:.3f} err "
        f"{r['train_error']:.4f}{test} | lr {r['lr']:.3g} | {r['images_per_sec']:.0f} img/s"
    )


def _call(callbacks: Iterable[Callable], event: str, run: Run, record: dict[str, Any]) -> None:
    for cb in callbacks:
        cb(event, run, record)
