"""Where data comes from: :func:`load_data` picks an image folder, CIFAR or synthetic images."""

from __future__ import annotations

import numbers
import os
import warnings
from dataclasses import replace
from pathlib import Path

import torch

from resnet_lab import runtime
from resnet_lab.data.cifar import CIFAR_ARCHIVES, _official_available, load_cifar
from resnet_lab.data.dataset import DataError, ImageData, subset, synthetic
from resnet_lab.data.folders import _is_image_folder, load_image_folder


def resize(data: ImageData, size: int) -> ImageData:
    """Both splits shrunk to ``size`` x ``size`` pixels by area averaging (each output pixel
    is the mean of the input pixels it covers), for studies a CPU can afford.

    The variant gains the size (``cifar10-jpeg`` at 16 pixels is ``cifar10-jpeg-16px``), so
    no result measured on smaller images passes for one on the full ones; the normalisation
    statistics are recomputed. The size of the data already is returned unchanged.
    """
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 4:
        raise DataError(f"image size must be a whole number of pixels >= 4, got {size!r}")
    h, w = data.image_size[1:]
    if (h, w) == (size, size):
        return data
    if size > min(h, w):
        raise DataError(f"image size {size} is larger than the images ({h}x{w}); only shrinking")

    def shrink(x: torch.Tensor) -> torch.Tensor:
        out = [
            torch.nn.functional.interpolate(chunk.float(), size=(size, size), mode="area")
            for chunk in x.split(4096)
        ]
        return torch.cat(out).round_().clamp_(0, 255).to(torch.uint8)

    return replace(
        data,
        train_x=shrink(data.train_x),
        test_x=shrink(data.test_x),
        variant=f"{data.variant}-{size}px",
        _stats=None,
    )


def load_data(
    name: str | os.PathLike = "auto",
    data: str | os.PathLike | None = None,
    download: bool = True,
    *,
    train_per_class: int | None = None,
    test_per_class: int | None = None,
    seed: int = 0,
    progress: bool = True,
    image_size: int | None = None,
) -> ImageData:
    """Load a dataset by name: ``auto``, ``cifar10``, ``cifar100``, ``synthetic`` or a path.

    ``data`` overrides ``RESNET_LAB_DATA`` (an image folder, or a folder for the
    download cache). ``train_per_class``/``test_per_class`` take a balanced subset
    (see :func:`subset`); for image folders only those files are decoded.
    ``image_size`` shrinks the images (see :func:`resize`; the variant names the size).
    """
    out = _load_data(
        name,
        data,
        download,
        train_per_class=train_per_class,
        test_per_class=test_per_class,
        seed=seed,
        progress=progress,
    )
    return out if image_size is None else resize(out, image_size)


def _load_data(
    name: str | os.PathLike,
    data: str | os.PathLike | None,
    download: bool,
    *,
    train_per_class: int | None,
    test_per_class: int | None,
    seed: int,
    progress: bool,
) -> ImageData:
    name_str = os.fspath(name)
    key = name_str.lower()
    for arg, n in (("train_per_class", train_per_class), ("test_per_class", test_per_class)):
        if n is not None and (isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1):
            raise DataError(f"{arg} must be a whole number of images per class >= 1, got {n!r}")

    def sub(d: ImageData) -> ImageData:
        if train_per_class is None and test_per_class is None:
            return d
        return subset(d, train_per_class, test_per_class, seed)

    if key == "synthetic":
        n_tr = 10 * train_per_class if train_per_class is not None else 5000
        n_te = 10 * test_per_class if test_per_class is not None else 1000
        out = synthetic(n_tr, n_te, seed=seed)
        if train_per_class is not None or test_per_class is not None:
            out.subset_sizes = (train_per_class, test_per_class)
        return out
    if key in CIFAR_ARCHIVES:
        return sub(load_cifar(key, data, download, progress))
    if key == "auto":
        loc = runtime.data_location(data)
        if loc is not None and loc.exists() and _is_image_folder(loc):
            return load_image_folder(loc, train_per_class, test_per_class, seed)
        if loc is not None and not loc.exists():
            raise DataError(
                f"data location {loc.name!r} (from data= or RESNET_LAB_DATA) does not exist; "
                "fix the path or unset RESNET_LAB_DATA"
            )
        if _official_available("cifar10", data) or download:
            try:
                return sub(load_cifar("cifar10", data, download, progress))
            except DataError as exc:
                warnings.warn(
                    f"CIFAR-10 is unavailable ({exc}). Falling back to SYNTHETIC images: results "
                    "below are on synthetic data, not CIFAR-10.",
                    stacklevel=2,
                )
        else:
            warnings.warn(
                "no dataset found and download=False. Falling back to SYNTHETIC images: results "
                "below are on synthetic data, not CIFAR-10.",
                stacklevel=2,
            )
        return load_data(
            "synthetic", train_per_class=train_per_class, test_per_class=test_per_class, seed=seed
        )
    path = Path(name_str).expanduser()
    if path.exists():
        return load_image_folder(path, train_per_class, test_per_class, seed)
    if path.suffix or len(path.parts) > 1 or name_str.startswith((".", "~")):
        raise DataError(
            f"data path {name_str!r} does not exist; check the path (datasets by name: auto, "
            "cifar10, cifar100, synthetic)"
        )
    raise DataError(
        f"unknown dataset {name_str!r}: use auto, cifar10, cifar100, synthetic, or the path of "
        "an image folder (a directory or .zip with train/<class>/ and test/<class>/)"
    )
