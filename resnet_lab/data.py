"""Datasets as tensors: CIFAR-10/100, image folders, synthetic images, and a device-resident loader.

Every dataset becomes an :class:`ImageData`: the whole train and test splits as
``uint8`` tensors of shape ``(N, 3, H, W)`` plus ``int64`` labels. CIFAR is small
(50,000 images are 150 MB as bytes), so the training engine keeps it on the
training device and augments whole batches there (:class:`GpuLoader`) instead of
transforming one PIL image at a time in worker processes.

Where data comes from (:func:`load_data`):

``"cifar10"`` / ``"cifar100"``
    The official archives of Krizhevsky (2009), downloaded once into the cache
    folder (``RESNET_LAB_DATA`` if it is a folder, else ``~/.cache/resnet_lab``),
    checked against their published MD5 and extracted. A corrupt or partial
    archive is reported, deleted and downloaded again, never used.
a path
    An image folder, as a directory or a ``.zip`` holding ``train/<class>/*`` and
    ``test/<class>/*`` (classes in sorted order, as torchvision's ``ImageFolder``).
    Its results carry the folder's name as data variant, e.g. ``cifar10-jpeg``.
``"synthetic"``
    Small coloured-pattern images generated on the fly: everything runs with no
    data and no network, and every result made from them says ``synthetic``.
``"auto"``
    ``RESNET_LAB_DATA`` (an image folder) -> official CIFAR-10 in the cache ->
    download -> synthetic (with a warning).
"""

from __future__ import annotations

import hashlib
import io as _io
import numbers
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from resnet_lab import runtime
from resnet_lab.io import atomic_path, atomic_torch_save

__all__ = [
    "CIFAR_ARCHIVES",
    "DataError",
    "GpuLoader",
    "ImageData",
    "balanced_indices",
    "default_channels_last",
    "load_cifar",
    "load_data",
    "load_image_folder",
    "resize",
    "subset",
    "synthetic",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".ppm", ".tif", ".tiff")


class DataError(ValueError):
    """A dataset could not be found, downloaded, verified or read; the message says what to do."""


# ----------------------------------------------------------------------------- the dataset


@dataclass(eq=False)  # tensors have no single truth value; compare fields yourself
class ImageData:
    """A labelled image dataset held in memory as tensors.

    ``train_x``/``test_x`` are ``uint8`` ``(N, 3, H, W)``, ``train_y``/``test_y``
    are ``int64`` class indices into ``classes``. ``variant`` names the data in
    provenance records (``cifar10``, ``cifar100``, ``cifar10-jpeg``, ``synthetic``);
    ``source`` is a file or folder name (never a full path); ``subset_sizes`` is
    ``(train_per_class, test_per_class)`` for a balanced subset, else ``None``.
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list[str]
    variant: str
    source: str = ""
    subset_sizes: tuple[int | None, int | None] | None = None
    _stats: tuple[tuple[float, ...], tuple[float, ...]] | None = field(
        default=None, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for name in ("train_x", "test_x"):
            x = getattr(self, name)
            if x.dtype != torch.uint8 or x.ndim != 4:
                raise DataError(
                    f"ImageData.{name} must be uint8 (N, C, H, W), got {x.dtype} {tuple(x.shape)}"
                )
        if len(self.train_x) != len(self.train_y) or len(self.test_x) != len(self.test_y):
            raise DataError("ImageData: images and labels differ in length")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_size(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]

    @property
    def mean(self) -> tuple[float, ...]:
        """Per-channel mean of the training split, on the 0..1 scale."""
        return self._statistics()[0]

    @property
    def std(self) -> tuple[float, ...]:
        """Per-channel standard deviation of the training split, on the 0..1 scale."""
        return self._statistics()[1]

    def _statistics(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        if self._stats is None:
            # Exact statistics from a 256-bin histogram per channel: one pass, no float copy.
            values = torch.arange(256, dtype=torch.float64)
            means, stds = [], []
            for c in range(self.train_x.shape[1]):
                counts = torch.bincount(self.train_x[:, c].reshape(-1), minlength=256).double()
                p = counts / counts.sum()
                mean = float((p * values).sum())
                var = float((p * (values - mean) ** 2).sum())
                means.append(round(mean / 255.0, 6))
                stds.append(round(var**0.5 / 255.0, 6))
            self._stats = (tuple(means), tuple(stds))
        return self._stats

    def subset(
        self, train_per_class: int | None, test_per_class: int | None = None, seed: int = 0
    ) -> ImageData:
        """A deterministic, class-balanced subset (``None`` keeps a split whole); see :func:`subset`."""
        return subset(self, train_per_class, test_per_class, seed=seed)

    def info(self) -> dict:
        """Provenance of the data for results records."""
        out = {
            "variant": self.variant,
            "source": self.source,
            "train_size": len(self.train_y),
            "test_size": len(self.test_y),
            "num_classes": self.num_classes,
            "image_size": list(self.image_size),
        }
        if self.subset_sizes is not None:
            out["subset_per_class"] = list(self.subset_sizes)
        return out

    def __repr__(self) -> str:
        sub = f", subset={self.subset_sizes}" if self.subset_sizes else ""
        return (
            f"ImageData(variant={self.variant!r}, train={len(self.train_y)}, "
            f"test={len(self.test_y)}, classes={self.num_classes}, "
            f"size={'x'.join(map(str, self.image_size))}{sub})"
        )


def balanced_indices(
    labels: torch.Tensor, per_class: int, num_classes: int, seed: int = 0
) -> torch.Tensor:
    """Indices of ``per_class`` examples of every class, chosen at random with ``seed``, sorted.

    One permutation is drawn for the whole split and each class takes its first
    ``per_class`` members in that order, so a smaller subset is contained in a
    larger one with the same seed.
    """
    labels = torch.as_tensor(labels)
    counts = torch.bincount(labels, minlength=num_classes)
    if per_class < 1:
        raise DataError(f"per_class must be at least 1, got {per_class}")
    if int(counts.min()) < per_class:
        c = int(counts.argmin())
        raise DataError(
            f"class {c} has only {int(counts[c])} examples, fewer than the {per_class} per class "
            f"asked for; use at most {int(counts.min())}"
        )
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(labels), generator=gen)
    permuted = labels[perm]
    chosen = [perm[permuted == c][:per_class] for c in range(num_classes)]
    return torch.cat(chosen).sort().values


def subset(
    data: ImageData,
    train_per_class: int | None,
    test_per_class: int | None = None,
    seed: int = 0,
) -> ImageData:
    """A deterministic, class-balanced subset of ``data`` (the quick tier's datasets).

    ``None`` keeps that split whole. The variant is unchanged; ``subset_sizes``
    records the sizes, and the normalisation statistics are recomputed from the
    subset's training split.
    """
    tr = te = None
    if train_per_class is not None:
        tr = balanced_indices(data.train_y, train_per_class, data.num_classes, seed)
    if test_per_class is not None:
        te = balanced_indices(data.test_y, test_per_class, data.num_classes, seed)
    return replace(
        data,
        train_x=data.train_x if tr is None else data.train_x[tr],
        train_y=data.train_y if tr is None else data.train_y[tr],
        test_x=data.test_x if te is None else data.test_x[te],
        test_y=data.test_y if te is None else data.test_y[te],
        subset_sizes=(train_per_class, test_per_class),
        _stats=None if tr is not None else data._stats,
    )


# ----------------------------------------------------------------------------- synthetic


def synthetic(
    n_train: int = 5000,
    n_test: int = 1000,
    num_classes: int = 10,
    seed: int = 0,
    image_size: int = 32,
) -> ImageData:
    """Coloured stripe patterns, one per class, randomly shifted and noisy; generated in memory.

    Learnable (a small CNN reaches well above chance in a few epochs) but not
    trivial, so training curves look like training curves. Labels are balanced;
    the variant is ``synthetic`` so no result can pass for CIFAR.
    """
    gen = torch.Generator().manual_seed(10_000 + seed)
    s = image_size
    yy, xx = torch.meshgrid(torch.arange(float(s)), torch.arange(float(s)), indexing="ij")
    angle = torch.rand(num_classes, generator=gen) * torch.pi
    freq = 0.2 + 0.4 * torch.rand(num_classes, generator=gen)
    colour = 0.25 + 0.5 * torch.rand(num_classes, 3, generator=gen)

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = (torch.arange(n) % num_classes)[torch.randperm(n, generator=gen)]
        # A random phase per image is a random shift of the class's stripes.
        offset = 2 * torch.pi * torch.rand(n, 1, 1, generator=gen)
        a, f = angle[y][:, None, None], freq[y][:, None, None]
        phase = (torch.cos(a) * xx + torch.sin(a) * yy) * f + offset  # (n, s, s)
        x = colour[y][:, :, None, None] * (1 + torch.sin(phase)[:, None]) / 2
        x += 0.15 * torch.randn(x.shape, generator=gen)
        x += 0.1 * torch.randn(n, 3, 1, 1, generator=gen)
        return (x.clamp_(0, 1) * 255).round_().to(torch.uint8), y

    train_x, train_y = make(n_train)
    test_x, test_y = make(n_test)
    return ImageData(
        train_x,
        train_y,
        test_x,
        test_y,
        classes=[f"pattern{c}" for c in range(num_classes)],
        variant="synthetic",
        source="generated",
    )


# ----------------------------------------------------------------------------- official CIFAR


@dataclass(frozen=True)
class _Archive:
    url: str
    md5: str
    folder: str  # the archive's top-level folder
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    label_key: bytes
    names_key: bytes


#: The official archives (Krizhevsky, 2009), https://www.cs.toronto.edu/~kriz/cifar.html
CIFAR_ARCHIVES: dict[str, _Archive] = {
    "cifar10": _Archive(
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        md5="c58f30108f718f92721af3b95e74349a",
        folder="cifar-10-batches-py",
        train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test_files=("test_batch",),
        meta_file="batches.meta",
        label_key=b"labels",
        names_key=b"label_names",
    ),
    "cifar100": _Archive(
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        md5="eb9058c3a382ffc7106e4002c42a8d85",
        folder="cifar-100-python",
        train_files=("train",),
        test_files=("test",),
        meta_file="meta",
        label_key=b"fine_labels",
        names_key=b"fine_label_names",
    ),
}


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _download(url: str, dest: Path, progress: bool) -> None:
    """Fetch ``url`` to ``dest`` through a temporary file; a broken transfer leaves nothing behind."""
    with atomic_path(dest) as tmp:
        with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=total, unit="B", unit_scale=True, desc=f"download {dest.name}")
            try:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    if bar is not None:
                        bar.update(len(block))
            finally:
                if bar is not None:
                    bar.close()
        if total is not None and tmp.stat().st_size != total:
            raise DataError(
                f"download of {dest.name} stopped early ({tmp.stat().st_size} of {total} bytes); "
                "run again to retry"
            )


def _cifar_root(data: str | os.PathLike | None) -> Path:
    loc = runtime.data_location(data)
    if loc is not None and loc.is_dir() and not _is_image_folder(loc):
        return loc
    return runtime.cache_dir()


def _fetch_archive(spec: _Archive, root: Path, download: bool, progress: bool) -> Path:
    """The verified archive in ``root``: checked if present, (re-)downloaded if missing or corrupt."""
    archive = root / spec.url.rsplit("/", 1)[-1]
    if archive.exists():
        if _md5(archive) == spec.md5:
            return archive
        if not download:
            raise DataError(
                f"{archive.name} in the data cache is corrupt or incomplete (MD5 mismatch); "
                "delete it, or allow downloads (download=True; on the command line drop "
                "--no-download) to fetch it again"
            )
        warnings.warn(
            f"{archive.name} in the data cache is corrupt or incomplete (MD5 mismatch); "
            "deleting it and downloading it again",
            stacklevel=3,
        )
        archive.unlink()
    if not download:
        raise DataError(
            f"{archive.name} is not in the data cache and downloads are off; allow them "
            "(download=True; on the command line drop --no-download), or point "
            "RESNET_LAB_DATA at an image folder"
        )
    try:
        _download(spec.url, archive, progress)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise DataError(
            f"could not download {archive.name} from {spec.url} ({exc}); check the network, "
            "or point RESNET_LAB_DATA at an image-folder copy of the data"
        ) from exc
    if _md5(archive) != spec.md5:
        archive.unlink()
        raise DataError(
            f"the downloaded {archive.name} fails its MD5 check (expected {spec.md5}); it was "
            "deleted. A proxy or a broken mirror may have altered it; run again to retry"
        )
    return archive


def _extract(archive: Path, root: Path, spec: _Archive) -> Path:
    """Extract into a temporary folder, then rename it into place: no half-extracted folder."""
    target = root / spec.folder
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=root))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = [m for m in tar.getmembers() if m.isfile() or m.isdir()]
            try:
                tar.extractall(tmp, members=members, filter="data")
            except TypeError:  # pragma: no cover - Python < 3.10.12 has no extraction filters
                tar.extractall(tmp, members=members)  # noqa: S202 - checksum-verified archive
        if not (tmp / spec.folder).is_dir():
            raise DataError(f"{archive.name} does not contain the folder {spec.folder}/")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp / spec.folder, target)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(
            f"{archive.name} could not be extracted ({exc}); delete it and retry"
        ) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    (target / ".complete").write_text(spec.md5 + "\n")
    return target


def _read_batches(
    folder: Path, files: Sequence[str], label_key: bytes
) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for name in files:
        path = folder / name
        try:
            with open(path, "rb") as f:
                batch = pickle.load(f, encoding="bytes")  # noqa: S301 - MD5-verified official file
        except (OSError, pickle.UnpicklingError, EOFError) as exc:
            raise DataError(
                f"{name} in {folder.name}/ is unreadable ({exc}); delete the folder to re-extract"
            ) from exc
        xs.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(batch[label_key], dtype=np.int64))
    return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))


def load_cifar(
    name: str = "cifar10",
    data: str | os.PathLike | None = None,
    download: bool = True,
    progress: bool = True,
) -> ImageData:
    """Official CIFAR-10 or CIFAR-100: downloaded once, MD5-verified, extracted, read into tensors."""
    if name not in CIFAR_ARCHIVES:
        raise DataError(
            f"unknown CIFAR dataset {name!r}; choose one of {', '.join(CIFAR_ARCHIVES)}"
        )
    spec = CIFAR_ARCHIVES[name]
    root = _cifar_root(data)
    root.mkdir(parents=True, exist_ok=True)
    folder = root / spec.folder
    marker = folder / ".complete"
    if not (marker.exists() and marker.read_text().strip() == spec.md5):
        archive = _fetch_archive(spec, root, download, progress)
        folder = _extract(archive, root, spec)
    train_x, train_y = _read_batches(folder, spec.train_files, spec.label_key)
    test_x, test_y = _read_batches(folder, spec.test_files, spec.label_key)
    try:
        with open(folder / spec.meta_file, "rb") as f:
            meta = pickle.load(f, encoding="bytes")  # noqa: S301 - MD5-verified official file
        classes = [n.decode() for n in meta[spec.names_key]]
    except (OSError, pickle.UnpicklingError, EOFError, KeyError) as exc:
        raise DataError(
            f"{spec.meta_file} in {folder} is missing or damaged ({exc}); delete {folder} "
            "so that it is extracted again"
        ) from exc
    return ImageData(
        train_x, train_y, test_x, test_y, classes, variant=name, source=archive_name(spec)
    )


def archive_name(spec: _Archive) -> str:
    return spec.url.rsplit("/", 1)[-1]


def _official_available(name: str, data: str | os.PathLike | None) -> bool:
    spec = CIFAR_ARCHIVES[name]
    root = _cifar_root(data)
    return (root / spec.folder / ".complete").exists() or (root / archive_name(spec)).exists()


# ----------------------------------------------------------------------------- image folders


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


# ----------------------------------------------------------------------------- entry point


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


# ----------------------------------------------------------------------------- the loader


def default_channels_last(device: torch.device) -> bool:
    """Channels-last (NHWC) pays on CUDA (tensor cores) and on CPUs (oneDNN's native layout:
    ResNet-20 trains about 1.3x faster per core); MPS support is patchy, so not there."""
    return device.type in ("cuda", "cpu")


class GpuLoader:
    """Batches from a dataset held as one ``uint8`` tensor on the training device.

    Augmentation of He et al. (2016, §4.2) on whole batches: pad 4 pixels of zeros
    on each side, take a random 32x32 crop and flip horizontally with probability
    1/2, independently per image. Crop and flip are one ``gather`` with per-image
    offsets, so a GPU never waits for data. Normalisation uses ``mean``/``std``
    (0..1 scale) on the device.

    Epoch ``e`` draws its order, crops and flips from a generator seeded with
    ``(seed, e)`` (:meth:`set_epoch`), so a resumed run sees the same batches.
    ``batch_size`` is global: under DistributedDataParallel each of ``world_size``
    processes takes its slice of every batch (:meth:`local_slice`), so the same
    seed gives the same global batches for any number of processes.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        train: bool,
        mean: Sequence[float],
        std: Sequence[float],
        device: str | torch.device | None = None,
        augment: bool = True,
        channels_last: bool | None = None,
        seed: int = 0,
        pad: int = 4,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if batch_size < world_size:
            raise ValueError(f"batch_size {batch_size} is smaller than the {world_size} processes")
        self.device = runtime.pick_device(device)
        self.images = images.to(self.device, non_blocking=True)
        self.labels = labels.to(self.device, non_blocking=True)
        self.batch_size = batch_size
        self.train = train
        self.augment = augment and train
        self.channels_last = (
            default_channels_last(self.device) if channels_last is None else channels_last
        )
        self.seed = seed
        self.pad = pad
        self.drop_last = drop_last
        self.rank, self.world_size = rank, world_size
        c = images.shape[1]
        std_t = torch.tensor(list(std), dtype=torch.float32, device=self.device).view(1, c, 1, 1)
        mean_t = torch.tensor(list(mean), dtype=torch.float32, device=self.device).view(1, c, 1, 1)
        # x/255 normalised in one multiply-add: (x/255 - m)/s = x * 1/(255 s) - m/s
        self._scale = 1.0 / (255.0 * std_t)
        self._shift = mean_t / std_t
        self.epoch = 0
        self._plan: tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None] | None = None

    def __len__(self) -> int:
        n = len(self.labels)
        tail = n % self.batch_size
        # Under DDP every process needs at least one image of every batch it trains on.
        drop = self.drop_last or (self.train and self.world_size > 1 and 0 < tail < self.world_size)
        return n // self.batch_size if drop else -(-n // self.batch_size)

    @property
    def num_images(self) -> int:
        return len(self.labels)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order and augmentation the next iteration uses."""
        self.epoch = epoch
        self._plan = None

    def _make_plan(self) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        n = len(self.labels)
        if not self.train:
            return torch.arange(n, device=self.device), None, None
        # Drawn on the CPU so the same seed gives the same batches on every device.
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(n, generator=gen)
        if not self.augment:
            return order.to(self.device), None, None
        shifts = torch.randint(0, 2 * self.pad + 1, (n, 2), generator=gen)
        flips = torch.rand(n, generator=gen) < 0.5
        return order.to(self.device), shifts.to(self.device), flips.to(self.device)

    def local_slice(self, n: int) -> slice:
        """This process's part of a global batch of ``n`` images."""
        bounds = [n * r // self.world_size for r in range(self.world_size + 1)]
        return slice(bounds[self.rank], bounds[self.rank + 1])

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.iter_from(0)

    def iter_from(self, start: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Iterate the current epoch from batch ``start`` (to resume in the middle of an epoch)."""
        if self._plan is None:
            self._plan = self._make_plan()
        order, shifts, flips = self._plan
        for b in range(start, len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            idx = idx[self.local_slice(len(idx))]
            x = self.images[idx]
            if shifts is not None:
                x = augment_batch(x, shifts[idx], flips[idx], self.pad)
            yield self._normalise(x), self.labels[idx]

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.addcmul(-self._shift, x.float(), self._scale)
        if self.channels_last:
            out = out.contiguous(memory_format=torch.channels_last)
        return out

    def __repr__(self) -> str:
        return (
            f"GpuLoader({len(self.labels)} images, batch_size={self.batch_size}, "
            f"train={self.train}, augment={self.augment}, device={self.device})"
        )


def augment_batch(
    x: torch.Tensor, shifts: torch.Tensor, flips: torch.Tensor, pad: int = 4
) -> torch.Tensor:
    """Random crop of the zero-padded images and horizontal flip, per image, as one gather.

    ``x``: (B, C, H, W); ``shifts``: (B, 2) offsets (dy, dx) in ``0..2*pad`` into the
    padded image; ``flips``: (B,) bool. Output pixel (i, j) of image b is padded pixel
    (dy + i, dx + j), or (dy + i, dx + W-1-j) when flipped.
    """
    b, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    pw = w + 2 * pad
    ar_h = torch.arange(h, device=x.device)
    ar_w = torch.arange(w, device=x.device)
    cols = torch.where(flips[:, None], ar_w.flip(0), ar_w) + shifts[:, 1:2]  # (B, W)
    rows = ar_h + shifts[:, 0:1]  # (B, H)
    flat = (rows[:, :, None] * pw + cols[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)
    return padded.reshape(b, c, -1).gather(2, flat).view(b, c, h, w)
