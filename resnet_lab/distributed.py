"""Several processes, one training run: DistributedDataParallel helpers for ``torchrun``.

``torchrun --nproc_per_node 4 -m resnet_lab.cli train ...`` starts one process
per GPU with ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` set. :func:`init_from_env`
joins them into a process group (NCCL on GPUs, gloo on CPUs), the engine wraps
the model in DistributedDataParallel and every process trains on its own slice
of each global batch (:class:`resnet_lab.data.GpuLoader`). Metrics are summed
over processes, and only rank 0 prints, checkpoints and writes results.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = [
    "Context",
    "all_reduce_max",
    "all_reduce_sum",
    "barrier",
    "broadcast_buffers",
    "cleanup",
    "context",
    "init_from_env",
]


@dataclass(frozen=True)
class Context:
    """Where this process sits in a distributed run (``world_size == 1`` when alone)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def context() -> Context:
    """The current process group's rank and size, or a single-process context."""
    if dist.is_available() and dist.is_initialized():
        local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
        return Context(dist.get_rank(), dist.get_world_size(), local)
    return Context()


def init_from_env(backend: str | None = None) -> Context:
    """Join the process group described by torchrun's environment; a no-op for one process.

    ``backend`` defaults to NCCL when CUDA is available, else gloo. On GPUs each
    process takes the device ``cuda:LOCAL_RANK``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or not dist.is_available():
        return context()
    if not dist.is_initialized():
        if backend is None:
            backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
    return context()


def device_for(ctx: Context) -> torch.device | None:
    """The device a process of a multi-GPU run should use (None: let the engine choose)."""
    if ctx.is_distributed and torch.cuda.is_available():
        return torch.device("cuda", ctx.local_rank)
    if ctx.is_distributed:
        return torch.device("cpu")
    return None


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all processes in place (no-op for one process); returns it."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_max(tensor: torch.Tensor) -> torch.Tensor:
    """Maximum of ``tensor`` over all processes, in place (no-op for one process)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor


def broadcast_buffers(model: torch.nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every process.

    DDP broadcasts them at the start of each forward, so after the last training
    step each process holds its own update; evaluating and saving must use one set.
    """
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def barrier() -> None:
    """Wait for every process (no-op for one process)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


def cleanup() -> None:
    """Leave the process group, if one was joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
