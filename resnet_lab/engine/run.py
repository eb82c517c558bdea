"""A training run in memory: configuration, provenance and history (:class:`Run`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from torch import nn

from resnet_lab import provenance
from resnet_lab.engine.config import TrainConfig
from resnet_lab.models.layers import weight_layers


def model_depth(model: nn.Module) -> int:
    """Weighted layers on the main path (the paper's 'depth'): convs and linears outside shortcuts."""
    depth = getattr(model, "depth", None)
    if isinstance(depth, int):
        return depth
    return len(weight_layers(model))


def model_name_of(model: nn.Module, name: str | None = None) -> str:
    """``name``, else the model's ``name`` (or ``arch``, ``model_name``) attribute, else its class."""
    if name:
        return name
    for attr in ("name", "arch", "model_name"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(model).__name__.lower()


def history_curve(history: Sequence[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """(epochs, values) of one key of a run's per-epoch history, skipping epochs where it is None.

    One rule for a run in memory (:meth:`Run.curve`) and a stored one
    (:meth:`resnet_lab.results.RunRecord.curve`)."""
    pts = [(h["epoch"], h[key]) for h in history if h.get(key) is not None]
    return [p[0] for p in pts], [p[1] for p in pts]


@dataclass
class Run:
    """A training run: configuration, provenance and history (a list of per-epoch dicts).

    ``history`` entries: epoch, step, train_loss, train_error, test_loss,
    test_error (errors are fractions; test values are None on epochs without
    evaluation), lr, images_per_sec, wall_time (seconds since the start), and
    ``grad_norms`` when enabled. ``steps`` holds the every-N-steps entries.
    ``status``: running, completed, stopped (by a callback), interrupted (Ctrl-C),
    diverged or out_of_memory.
    """

    model_name: str
    config: TrainConfig
    data: dict[str, Any]
    device: str = "cpu"
    device_name: str = ""
    #: what the weights' arithmetic ran in: 'fp32', 'bf16' or 'fp16' (``amp`` resolved)
    precision: str = "fp32"
    history: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    status: str = "running"
    message: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    date: str = field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds")
    )
    tags: list[str] = field(default_factory=list)
    # Taken when the run starts, so the record names the code that trained it.
    code_version: str = field(default_factory=lambda: provenance.code_version())
    grad_norm_layers: list[str] = field(default_factory=list)
    world_size: int = 1
    total_steps: int = 0
    steps_per_epoch: int = 0
    wall_time: float = 0.0
    checkpoint: str | None = None
    #: a hash of the images and labels, kept in the checkpoint so that a resume on other
    #: data of the same name and sizes is refused (:meth:`ImageData.fingerprint`)
    data_fingerprint: str | None = field(default=None, repr=False)
    path: Path | None = None  # where the results store saved it
    model: nn.Module | None = field(default=None, repr=False, compare=False)

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def epochs(self) -> int:
        """Completed epochs."""
        return len(self.history)

    @property
    def variant(self) -> str:
        return self.data.get("variant", "")

    @property
    def final(self) -> dict[str, float | None]:
        """Train and test error after the last epoch (test error of the last evaluation)."""
        if not self.history:
            return {"train_error": None, "test_error": None, "test_loss": None}
        last = self.history[-1]
        tested = [h for h in self.history if h.get("test_error") is not None]
        return {
            "train_error": last["train_error"],
            "test_error": tested[-1]["test_error"] if tested else None,
            "test_loss": tested[-1]["test_loss"] if tested else None,
        }

    def curve(self, key: str) -> tuple[list[float], list[float]]:
        """(epochs, values) of one history key, skipping epochs where it is None."""
        return history_curve(self.history, key)

    def __repr__(self) -> str:
        f = self.final
        te = f"{f['test_error']:.4f}" if f["test_error"] is not None else "n/a"
        return (
            f"Run({self.model_name}, data={self.variant}, recipe={self.config.recipe}, "
            f"epochs={self.epochs}, status={self.status}, test_error={te})"
        )
