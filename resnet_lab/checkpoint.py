"""Training checkpoints: atomic, resumable, and loadable with ``torch.load(weights_only=True)``.

A checkpoint is a plain dictionary of tensors and Python scalars, strings, lists
and dicts (no pickled classes), so loading it never runs foreign code::

    state = torch.load("runs/resnet20/checkpoint.pt", weights_only=True)
    model.load_state_dict(state["model"])

The engine saves :meth:`resnet_lab.engine.TrainState.state_dict` and ``--resume`` loads it
back with :meth:`~resnet_lab.engine.TrainState.load_state_dict`. Keys: ``format``
(``resnet_lab.checkpoint/1``), ``model`` (state dict),
``optimizer``, ``scaler`` (fp16 gradient scaler, may be empty), ``config`` (the
:class:`~resnet_lab.engine.TrainConfig` as a dict), ``progress`` (step, epoch,
batch within the epoch, partial-epoch sums and, since it was added, those at the last step
record), ``history``, ``steps`` (per-step records), ``run`` (model name, id, date, data
provenance and, since they were added, precision and a hash of the data), ``rng`` (CPU and
CUDA generator states as tensors) and ``wall_time``. ``--resume`` compares what a checkpoint
holds with the run resuming it; a key an older checkpoint lacks is not compared.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from resnet_lab import locks
from resnet_lab.io import atomic_torch_save

__all__ = [
    "FORMAT",
    "CheckpointError",
    "cpu_copy",
    "hold",
    "load_checkpoint",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
]

FORMAT = "resnet_lab.checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, foreign, or does not fit the run resuming it."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"checkpoint {self.path}: {reason}")


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state`` (plus the format tag) atomically; an interrupted save keeps the old file.

    Tensors are saved as CPU copies, so a checkpoint made on a GPU loads anywhere with a
    plain ``torch.load(path, weights_only=True)``.
    """
    return atomic_torch_save(_on_cpu({"format": FORMAT, **state}), path)


def cpu_copy(state: Any) -> Any:
    """A copy of ``state`` on the CPU that later training steps cannot change (the engine
    keeps the last good epoch this way, to save it if a later epoch turns out non-finite)."""
    return _on_cpu(state, copy=True)


def _on_cpu(obj: Any, copy: bool = False) -> Any:
    if isinstance(obj, torch.Tensor):
        out = obj.detach().cpu()
        # .cpu() of a CPU tensor is the tensor itself: a copy must not share its storage
        return out.clone() if copy and out.data_ptr() == obj.data_ptr() else out
    if isinstance(obj, dict):
        return {k: _on_cpu(v, copy) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_on_cpu(v, copy) for v in obj)
    return obj


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Load and check a checkpoint with ``weights_only=True``; errors name the file and the cause."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "no such file; train without --resume to start a new run")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for damaged files
        cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(
            path,
            f"damaged or not a resnet_lab checkpoint ({cause[:160]}); delete it, or choose "
            "another output folder, to start a new run",
        ) from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(
            path, f"not a resnet_lab checkpoint (format {found!r}, expected {FORMAT!r})"
        )
    missing = {"model", "optimizer", "config", "progress", "history"} - set(state)
    if missing:
        raise CheckpointError(path, f"incomplete, missing {sorted(missing)}")
    return state


@contextlib.contextmanager
def hold(path: str | os.PathLike) -> Iterator[Path]:
    """This process's hold on the checkpoint ``path`` for the block: another process is
    refused at once with :class:`~resnet_lab.locks.Busy`, naming this one. Temporary files of
    a save or a snapshot that a killed process left behind are removed first; folders made
    only for the lock are removed with it when they stay empty."""
    path = Path(path)
    made = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    lock = path.parent / f".{path.name}.lock"
    try:
        with locks.exclusive(
            lock, f"the checkpoint {path}", "choose another checkpoint path (--output)"
        ):
            for old in (
                *path.parent.glob(f".{path.name}.*.tmp"),
                *(path.parent / "snapshots").glob(".step-*.pt.*.tmp"),
            ):
                old.unlink(missing_ok=True)
            yield path
    finally:
        for folder in made:  # innermost first; one that holds files stays
            with contextlib.suppress(OSError):
                folder.rmdir()


def rng_state() -> dict[str, Any]:
    """The global CPU (and CUDA) random generator states, as tensors."""
    out: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore states saved by :func:`rng_state` (CUDA states only where GPUs are present)."""
    if "cpu" in state:
        torch.set_rng_state(state["cpu"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        cuda = list(state["cuda"])[: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])
