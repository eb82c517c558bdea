"""Training throughput: this engine against a standard torchvision pipeline, side by side.

``resnet-lab bench resnet20`` trains the same model with the same optimizer twice, in
one process, alternating timed rounds so that a busy machine slows both alike:

engine
    the dataset as one ``uint8`` tensor on the device, crop + flip + normalise on
    whole batches (:class:`resnet_lab.data.GpuLoader`), channels-last memory
    layout on CUDA and CPU, the engine's optimizer (SGD with the fused update
    kernel where torch has one) and the engine's precision (``amp="auto"``: bf16 on
    GPUs with bf16 tensor cores and on CPUs with native bf16, fp16 on older GPUs, else
    fp32): the engine's defaults, as ``resnet-lab train`` runs them.
reference
    what most CIFAR training scripts do: a ``torchvision.datasets.CIFAR10``-style
    dataset of PIL images with ``RandomCrop(32, padding=4)``,
    ``RandomHorizontalFlip()``, ``ToTensor()``, ``Normalize()`` applied per image
    by a ``DataLoader`` (``num_workers=2``, pinned memory on CUDA), and
    ``torch.optim.SGD`` with its defaults, in eager fp32.

Model and hyper-parameters are the same; the data pipeline, the memory layout, the
optimizer's kernel and the precision differ, so the ratio is what the engine's choices
buy on this machine (on a CPU, where the model's arithmetic dominates, mostly the
layout and, where the CPU has native bf16, the precision; on a GPU, mostly the loader and
the precision). Both precisions are printed. ``amp="off"`` times the engine in fp32 too,
which isolates the pipeline and layout. Warm-up steps (worker start-up, kernel selection)
are not timed.

``--breakdown`` also times both models on one batch held in memory (no data
pipeline at all), which splits the ratio into what the data pipelines cost and
what the model code (layout, optimizer kernel) buys: on a machine where the
reference's loader costs little, no loader can lift the ratio much above the
model-code ratio.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from resnet_lab import runtime

__all__ = ["BenchResult", "bench"]


@dataclass
class BenchResult:
    """Images per second of both pipelines (timed steps only) and their ratio."""

    model: str
    device: str
    batch_size: int
    steps: int
    rounds: int
    data: str
    workers: int
    engine_ips: float
    reference_ips: float
    compiled: bool = False
    #: what each pipeline trained in: 'fp32', 'bf16' or 'fp16' (the reference: always fp32)
    engine_precision: str = "fp32"
    reference_precision: str = "fp32"
    channels_last: bool = False
    # --breakdown: the same two models trained on one batch held in memory (no data pipeline)
    engine_compute_ips: float | None = None
    reference_compute_ips: float | None = None

    @property
    def ratio(self) -> float:
        return self.engine_ips / self.reference_ips

    def __str__(self) -> str:
        extra = ", torch.compile" if self.compiled else ""
        cl = ", channels-last" if self.channels_last else ""
        return (
            f"{self.model} training on {self.device}, batch {self.batch_size}, data {self.data}, "
            f"{self.rounds} x {self.steps} timed steps per pipeline{extra}\n"
            f"  engine (GpuLoader, whole-batch augmentation{cl}, {self.engine_precision}): "
            f"{self.engine_ips:8.1f} img/s\n"
            f"  reference (DataLoader, {self.workers} workers, per-image PIL, "
            f"{self.reference_precision}): {self.reference_ips:8.1f} img/s\n"
            f"  ratio engine / reference: {self.ratio:.2f}x" + self._breakdown()
        )

    def _breakdown(self) -> str:
        if self.engine_compute_ips is None or self.reference_compute_ips is None:
            return ""

        def share(full: float, compute: float) -> str:
            # the fraction of a step the data pipeline adds: 1 - (compute-only time / full time)
            return f"{max(0.0, 1 - full / compute):.0%}"

        return (
            "\n  breakdown, one batch held in memory (no data pipeline):\n"
            f"    engine model code: {self.engine_compute_ips:8.1f} img/s "
            f"(its data pipeline adds {share(self.engine_ips, self.engine_compute_ips)} of a step)\n"
            f"    reference model code: {self.reference_compute_ips:8.1f} img/s "
            f"(its data pipeline adds {share(self.reference_ips, self.reference_compute_ips)} of a step)\n"
            f"    model code alone: {self.engine_compute_ips / self.reference_compute_ips:.2f}x; "
            f"the most a free data pipeline could give the reference: "
            f"{self.reference_compute_ips / self.reference_ips:.2f}x"
        )


class _PilDataset(torch.utils.data.Dataset):
    """Like torchvision.datasets.CIFAR10: HWC uint8 array in memory, a PIL image per item."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Callable):
        self.data = images.permute(0, 2, 3, 1).contiguous().numpy()
        self.targets = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.data[i])), self.targets[i]


def _reference_batches(data, batch_size: int, workers: int, device: torch.device) -> Iterator:
    from torchvision import transforms as T

    transform = T.Compose(
        [
            T.RandomCrop(32, padding=4),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(data.mean, data.std),
        ]
    )
    loader = torch.utils.data.DataLoader(
        _PilDataset(data.train_x, data.train_y, transform),
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        drop_last=True,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
    )
    while True:
        for x, y in loader:
            yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def _engine_batches(data, batch_size: int, device: torch.device, channels_last: bool) -> Iterator:
    from resnet_lab.data import GpuLoader

    loader = GpuLoader(
        data.train_x,
        data.train_y,
        batch_size,
        True,
        data.mean,
        data.std,
        device,
        channels_last=channels_last,
        drop_last=True,
    )
    return loader.forever()


def _one_batch(batches: Iterator) -> Iterator:
    """The first batch of ``batches``, forever: training with no data pipeline cost."""
    batch = next(batches)
    while True:
        yield batch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _bench_data(data: str, batch_size: int):
    """A few batches' worth of images, balanced; synthetic ones when ``data='auto'`` finds none."""
    from resnet_lab.data import DataError, load_data

    per_class = max(2, -(-batch_size * 4 // 10))
    try:
        return load_data(data, train_per_class=per_class, test_per_class=1, progress=False)
    except DataError:
        if data != "auto":  # a dataset that was asked for by name or path must be there
            raise
        warnings.warn(
            "bench: no dataset found (data='auto'); timing on synthetic images", stacklevel=3
        )
        return load_data("synthetic", train_per_class=per_class, test_per_class=1)


def _trainer(
    model_name: str,
    num_classes: int,
    device: torch.device,
    dtype: torch.dtype | None,
    engine: bool,
    compiled: bool,
    channels_last: bool,
) -> tuple[nn.Module, Callable[[torch.Tensor, torch.Tensor], None]]:
    """A fresh model (seed 0) and its training step: the engine's :func:`train_step` for both
    pipelines, with the engine's optimizer or torch's default SGD."""
    from resnet_lab.engine import TrainConfig, make_optimizer, make_scaler, train_step
    from resnet_lab.models import build

    torch.manual_seed(0)
    model = build(model_name, num_classes=num_classes).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if engine:  # the engine's own optimizer (fused SGD where torch has it)
        opt = make_optimizer(model, TrainConfig(momentum=0.9, weight_decay=5e-4), lr=0.05)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    fwd = torch.compile(model) if compiled else model
    scaler = make_scaler(device, dtype)  # a pass-through unless fp16

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        train_step(fwd, opt, scaler, x, y, dtype=dtype)

    return model, step


def bench(
    model_name: str,
    batch_size: int = 128,
    steps: int = 20,
    warmup: int = 3,
    rounds: int = 2,
    device: str | torch.device | None = None,
    data: str = "auto",
    workers: int = 2,
    compile: bool = False,
    amp: str = "auto",
    breakdown: bool = False,
) -> BenchResult:
    """Training images/s of the engine and of the reference pipeline for ``model_name``."""
    from resnet_lab.data import default_channels_last
    from resnet_lab.engine import amp_dtype, precision_name
    from resnet_lab.engine.checks import check_batch
    from resnet_lab.models import build

    if steps < 1 or rounds < 1 or warmup < 0 or batch_size < 1:
        raise ValueError("steps, rounds and batch_size must be positive, warmup at least 0")
    device = runtime.pick_device(device)
    with torch.device("meta"):  # an unknown name fails here, before any data is read
        meta = build(model_name)
    engine_dtype = amp_dtype(amp, device)
    # as train refuses a batch; at 32x32, the smallest images bench times (a lower bound)
    check_batch(meta, (3, 32, 32), batch_size, device, engine_dtype)
    ds = _bench_data(data, batch_size)
    channels_last = default_channels_last(device)

    def setup(compiled: bool, channels_last: bool, engine: bool):
        dtype = engine_dtype if engine else None  # the reference: eager fp32
        return _trainer(model_name, ds.num_classes, device, dtype, engine, compiled, channels_last)

    pipelines = {
        "engine": (
            setup(compile, channels_last, engine=True),
            _engine_batches(ds, batch_size, device, channels_last),
        ),
        # The standard script: default (NCHW) layout, torch's default SGD, eager fp32.
        "reference": (
            setup(False, False, engine=False),
            _reference_batches(ds, batch_size, workers, device),
        ),
    }
    if breakdown:  # same models and optimizers, built afresh, one batch from each pipeline
        pipelines["engine-compute"] = (
            setup(compile, channels_last, engine=True),
            _one_batch(pipelines["engine"][1]),
        )
        pipelines["reference-compute"] = (
            setup(False, False, engine=False),
            _one_batch(pipelines["reference"][1]),
        )
    elapsed = dict.fromkeys(pipelines, 0.0)
    for _ in range(rounds):
        for name, ((model, step), batches) in pipelines.items():
            model.train()
            for _ in range(warmup):
                step(*next(batches))
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(steps):
                step(*next(batches))
            _sync(device)
            elapsed[name] += time.perf_counter() - t0
    n = rounds * steps * batch_size
    return BenchResult(
        model=model_name,
        device=runtime.device_name(device),
        batch_size=batch_size,
        steps=steps,
        rounds=rounds,
        data=ds.variant,
        workers=workers,
        engine_ips=n / elapsed["engine"],
        reference_ips=n / elapsed["reference"],
        compiled=compile,
        channels_last=channels_last,
        engine_precision=precision_name(engine_dtype),
        reference_precision="fp32",
        engine_compute_ips=n / elapsed["engine-compute"] if breakdown else None,
        reference_compute_ips=n / elapsed["reference-compute"] if breakdown else None,
    )
