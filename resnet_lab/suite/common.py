"""What both parts of the suite share: their sizes (the real suite and ``--dry-run``), the
data they load, the environment of their child processes, and the GPU part's context."""

from __future__ import annotations

import contextlib
import os
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resnet_lab.io import atomic_path, atomic_write_text
from resnet_lab.suite.report import Report

DEFAULT_BUDGET_S = 540.0
GPU_STAGES = ("throughput", "compiled", "target", "depth")
# Each stage's share of the budget (the depth study also gets whatever the others left).
_STAGE_SHARE = {"throughput": 0.12, "compiled": 0.2, "target": 0.4}
_RESERVE_S = 5.0  # kept for the last summary


@dataclass(frozen=True)
class Sizes:
    """What the real suite and ``--dry-run`` differ in: sizes only, never code paths."""

    train_per_class: int | None = None  # None: the whole split
    test_per_class: int | None = None
    throughput_models: tuple[str, ...] = ("resnet20", "resnet56", "resnet110")
    batches: tuple[int, ...] = (128, 2048)
    rounds: int = 3
    warmup: int = 10  # untimed steps first (cuDNN autotuning, compilation)
    images_per_round: int = 16384  # a timed round is this many images, at least 4 steps
    compile_backend: str = "inductor"
    target: float = 0.91
    target_model: str = "resnet20"
    target_batch: int = 512
    # The fast recipe's lr 0.2 at batch 128, scaled by sqrt(512/128): linear scaling (0.8)
    # with Nesterov momentum risks the first epochs; the one-cycle warm-up covers the rest.
    target_lr: float = 0.4
    first_epochs: int = 30
    max_epochs: int = 200
    depth_models: tuple[str, ...] = (
        "plain20",
        "resnet20",
        "plain32",
        "resnet32",
        "plain44",
        "resnet44",
        "plain56",
        "resnet56",
        "resnet110",
    )
    depth_batch: int = 128
    max_depth_epochs: int = 164  # the paper's 64k iterations at batch 128
    run_overhead_s: float = 3.0  # per training run: model, loader, cuDNN autotuning
    min_stage_s: float = 15.0  # a stage with less time than this is skipped


GPU = Sizes()
DRY_RUN = Sizes(
    # The smallest CIFAR nets of both kinds (depth 8), a few images, one or two steps each.
    train_per_class=16,
    test_per_class=4,
    throughput_models=("resnet8",),
    batches=(4,),
    rounds=1,
    warmup=1,
    images_per_round=16,
    compile_backend="eager",
    target=0.0,
    target_model="resnet8",
    target_batch=32,
    target_lr=0.1,
    first_epochs=1,
    max_epochs=2,
    depth_models=("plain8", "resnet8"),
    depth_batch=32,
    max_depth_epochs=1,
    run_overhead_s=0.5,
    min_stage_s=0.0,
)


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    """Set environment variables for a block (the chapters' kernels inherit them)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _package_root() -> Path:
    """The folder holding the ``resnet_lab`` package (the checkout on a GPU machine)."""
    return Path(__file__).resolve().parents[2]  # resnet_lab/suite/common.py


def _pythonpath(*first: Path) -> str:
    parts = [str(p) for p in first] + [str(_package_root())]
    if os.environ.get("PYTHONPATH"):
        parts.append(os.environ["PYTHONPATH"])
    return os.pathsep.join(parts)


# ----------------------------------------------------------------------------- data


def prepare_data(spec: str | os.PathLike | None, dry_run: bool) -> str:
    """What ``load_data`` is given: the spec as is, or a ``.tar.xz`` turned back into a zip.

    ``tools/gpu_carry.py`` packs the CIFAR-10 JPEG zip into one solid xz stream for the
    trip (18 MB instead of 62); here it becomes a stored zip of the same files in the same
    order (so the same pixels, the same variant name) in the cache folder.
    """
    if spec is None:
        return "synthetic" if dry_run else "auto"
    path = Path(spec).expanduser()
    if path.name.endswith((".tar.xz", ".txz")) and path.is_file():
        return str(_zip_from_tar(path))
    return os.fspath(spec)


def _zip_from_tar(archive: Path) -> Path:
    from resnet_lab.runtime import cache_dir

    stem = archive.name.removesuffix(".tar.xz").removesuffix(".txz")
    target = cache_dir() / "suite" / f"{stem}.zip"
    stamp = target.with_suffix(".source")
    key = f"{archive.resolve()}|{archive.stat().st_size}|{archive.stat().st_mtime_ns}"
    if target.is_file() and stamp.is_file() and stamp.read_text() == key:
        return target
    with atomic_path(target) as tmp, tarfile.open(archive, "r:*") as tf:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
            for member in tf:
                f = tf.extractfile(member) if member.isfile() else None
                if f is not None:
                    zf.writestr(member.name, f.read())
    atomic_write_text(stamp, key)
    return target


def _load(spec: str, sizes: Sizes):
    from resnet_lab.data import load_data

    return load_data(
        spec,
        train_per_class=sizes.train_per_class,
        test_per_class=sizes.test_per_class,
        progress=False,
    )


@dataclass
class _Context:
    """What the GPU part's stages share: sizes, summary, device, data, store, measurements."""

    sizes: Sizes
    report: Report
    device: Any
    data: Any
    data_spec: str
    store: Path
    throughput: list[dict[str, Any]]
