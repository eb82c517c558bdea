"""Image folders, as a directory or a zip read in place (``train/<class>/*``, ``test/<class>/*``)."""

from __future__ import annotations

import hashlib
import io as _io
import os
import warnings
import zipfile
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from resnet_lab import runtime
from resnet_lab.data.dataset import IMAGE_SUFFIXES, DataError, ImageData, balanced_indices, subset
from resnet_lab.io import atomic_torch_save


def _is_image_folder(path: Path) -> bool:
    if path.is_file():
        if not zipfile.is_zipfile(path) and _looks_like_zip(path):
            raise DataError(
                f"{path.name} is a damaged zip file (truncated or corrupt: its table of "
                "contents cannot be read); copy or download it again"
            )
        return zipfile.is_zipfile(path)
    return (path / "train").is_dir() and (path / "test").is_dir()


def _looks_like_zip(path: Path) -> bool:
    """A ``.zip`` name or a zip's magic bytes: meant as a zip, even when it cannot be read."""
    with path.open("rb") as f:
        return path.suffix.lower() == ".zip" or f.read(4) == b"PK\x03\x04"


class _FolderSource:
    """Lists and reads the files of an image folder held in a directory or a zip."""

    def __init__(self, path: Path):
        self.path = path
        self.zip: zipfile.ZipFile | None = None
        if path.is_file():
            try:
                self.zip = zipfile.ZipFile(path)
            except zipfile.BadZipFile as exc:
                raise DataError(f"{path.name} is not a readable zip file ({exc})") from exc
            listed = self.zip.namelist()
            names = [n for n in listed if not n.endswith("/")]
            folders = {n.rstrip("/") for n in listed if n.endswith("/")}
        else:
            found = list(path.rglob("*"))
            names = [p.relative_to(path).as_posix() for p in found if p.is_file()]
            folders = {p.relative_to(path).as_posix() for p in found if p.is_dir()}
        self.names = sorted(
            n for n in names if n.lower().endswith(IMAGE_SUFFIXES) and not _hidden(n)
        )
        # Every folder, including empty ones (a zip lists those as "name/" entries).
        self.folders = {f for f in folders if not _hidden(f)}
        self.folders |= {n.rsplit("/", 1)[0] for n in self.names if "/" in n}

    def split(self, split: str) -> tuple[list[str], list[str]]:
        """Files and class names of one split; the split folder may sit under one top folder."""
        files = {}
        for n in self.names:
            parts = n.split("/")
            # train/<class>/<file> or <top>/train/<class>/<file>
            for i in range(min(2, len(parts) - 2)):
                if parts[i] == split and len(parts) - i == 3:
                    files[n] = parts[i + 1]
                    break
        classes = sorted(set(files.values()))
        for folder in sorted(self.folders):
            parts = folder.split("/")
            for i in range(min(2, len(parts) - 1)):
                if parts[i] == split and len(parts) - i == 2 and parts[i + 1] not in classes:
                    raise DataError(
                        f"{self.path.name}: the class folder {folder}/ holds no images; add "
                        "its images or remove the folder"
                    )
        return list(files), classes

    def read(self, name: str) -> bytes:
        if self.zip is not None:
            try:
                return self.zip.read(name)
            except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as exc:
                raise DataError(
                    f"{self.path.name} is a damaged zip file: {name} cannot be read ({exc}); "
                    "copy or download it again"
                ) from exc
        return (self.path / name).read_bytes()

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


def _hidden(name: str) -> bool:
    """Dot files and macOS zip debris (``__MACOSX/train/cat/._1.jpg``) are not images."""
    return any(part.startswith(".") or part == "__MACOSX" for part in name.split("/"))


def _decode(blobs: Sequence[bytes], names: Sequence[str], source: str) -> torch.Tensor:
    from PIL import Image

    def one(i: int) -> np.ndarray:
        try:
            with Image.open(_io.BytesIO(blobs[i])) as im:
                return np.asarray(im.convert("RGB"))
        except Exception as exc:  # noqa: BLE001 - PIL raises many types for bad files
            raise DataError(f"{names[i]} in {source} is not a readable image ({exc})") from exc

    # Pillow releases the GIL while decoding, so threads give a real speed-up.
    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        arrays = list(pool.map(one, range(len(blobs)), chunksize=256))
    if not arrays:
        return torch.zeros(0, 3, 32, 32, dtype=torch.uint8)
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise DataError(
            f"images in {source} have different sizes {sorted(shapes)[:3]}...; resize them to "
            "one size first (the loader keeps whole splits as one tensor)"
        )
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def _folder_cache_file(path: Path) -> Path:
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|v1"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return runtime.cache_dir() / "decoded" / f"{path.stem}-{digest}.pt"


def load_image_folder(
    path: str | os.PathLike,
    train_per_class: int | None = None,
    test_per_class: int | None = None,
    seed: int = 0,
    cache: bool = True,
    variant: str | None = None,
) -> ImageData:
    """An image-folder dataset from a directory or a zip (``train/<class>/*``, ``test/<class>/*``).

    The zip is read in place. With ``train_per_class``/``test_per_class`` only the
    chosen files are decoded (same choice as ``load_image_folder(path).subset(...)``).
    A full decode of a zip is cached as a ``uint8`` tensor file in the cache
    folder (keyed by the zip's path, size and time stamp), so the next notebook
    kernel loads it in a moment.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(
            f"data path {path.name!r} does not exist; check the path or RESNET_LAB_DATA"
        )
    if not _is_image_folder(path):
        raise DataError(
            f"{path.name} is not an image folder: expected a directory or a .zip holding "
            "train/<class>/... and test/<class>/..."
        )
    variant = variant or (path.stem if path.is_file() else path.name)
    cache_file = _folder_cache_file(path) if (cache and path.is_file()) else None
    full: ImageData | None = None
    if cache_file is not None and cache_file.exists():
        try:
            blob = torch.load(cache_file, map_location="cpu", weights_only=True)
            full = ImageData(
                blob["train_x"],
                blob["train_y"],
                blob["test_x"],
                blob["test_y"],
                classes=list(blob["classes"]),
                variant=variant,
                source=path.name,
            )
        except Exception:  # noqa: BLE001 - a broken cache is rebuilt, never trusted
            cache_file.unlink(missing_ok=True)
    if full is not None:
        if train_per_class is None and test_per_class is None:
            return full
        return subset(full, train_per_class, test_per_class, seed)

    src = _FolderSource(path)
    try:
        train_files, classes = src.split("train")
        test_files, test_classes = src.split("test")
        if not train_files or not test_files:
            raise DataError(
                f"{path.name} has no images under train/<class>/ and test/<class>/; "
                "check the layout"
            )
        if test_classes != classes:
            only = [
                f"only in {split}/: {', '.join(sorted(set(a) - set(b))[:5])}"
                for split, a, b in (
                    ("train", classes, test_classes),
                    ("test", test_classes, classes),
                )
                if set(a) - set(b)
            ]
            raise DataError(
                f"{path.name}: the train and test folders hold different classes "
                f"({'; '.join(only)}); give both splits the same class folders"
            )
        index = {c: i for i, c in enumerate(classes)}

        def labels_of(files: list[str]) -> torch.Tensor:
            return torch.tensor([index[f.split("/")[-2]] for f in files], dtype=torch.int64)

        train_y, test_y = labels_of(train_files), labels_of(test_files)
        tr = te = None
        if train_per_class is not None:
            tr = balanced_indices(train_y, train_per_class, len(classes), seed)
        if test_per_class is not None:
            te = balanced_indices(test_y, test_per_class, len(classes), seed)

        def read(files: list[str], y: torch.Tensor, idx: torch.Tensor | None):
            chosen = files if idx is None else [files[i] for i in idx.tolist()]
            blobs = [src.read(f) for f in chosen]
            return _decode(blobs, chosen, path.name), (y if idx is None else y[idx])

        train_x, train_y2 = read(train_files, train_y, tr)
        test_x, test_y2 = read(test_files, test_y, te)
    finally:
        src.close()
    data = ImageData(train_x, train_y2, test_x, test_y2, classes, variant=variant, source=path.name)
    if tr is None and te is None:
        if cache_file is not None:
            try:
                atomic_torch_save(
                    {
                        "train_x": train_x,
                        "train_y": train_y2,
                        "test_x": test_x,
                        "test_y": test_y2,
                        "classes": classes,
                    },
                    cache_file,
                )
            except OSError as exc:  # a read-only cache only costs time
                warnings.warn(f"could not cache decoded images ({exc})", stacklevel=2)
        return data
    data.subset_sizes = (train_per_class, test_per_class)
    return data
