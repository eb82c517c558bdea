"""What a run shows as it goes: the progress bar and its lines; callbacks are called here."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from resnet_lab.engine.run import Run


class Progress:
    """A tqdm bar of the run's steps (nothing when disabled: quiet runs, ranks other than 0)."""

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


def start_line(run: Run, channels_last: bool, total: int) -> str:
    layout = "channels-last" if channels_last else "NCHW"
    return (
        f"{run.model_name} on {run.variant or 'data'}: {total} step{'' if total == 1 else 's'} "
        f"of {run.config.batch_size} on {run.device_name}, {run.precision} ({layout})"
    )


def epoch_line(r: dict[str, Any], n_epochs: int) -> str:
    test = (
        f" | test loss {r['test_loss']:.3f} err {r['test_error']:.4f}"
        if r["test_error"] is not None
        else ""
    )
    return (
        f"epoch {r['epoch']}/{n_epochs} | train loss {r['train_loss']:.3f} err "
        f"{r['train_error']:.4f}{test} | lr {r['lr']:.3g} | {r['images_per_sec']:.0f} img/s"
    )


def call_callbacks(
    callbacks: Iterable[Callable], event: str, run: Run, record: dict[str, Any]
) -> None:
    for cb in callbacks:
        cb(event, run, record)
