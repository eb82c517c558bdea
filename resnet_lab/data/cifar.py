"""The official CIFAR-10/100 archives: download once, check the MD5, extract, read.

Every extracted file is checked against its MD5 (torchvision's list for the official
archives) each time before it is read, so a damaged or planted file is never unpickled:
it is extracted again from the verified archive instead.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from resnet_lab import runtime
from resnet_lab.data.dataset import DataError, ImageData
from resnet_lab.data.folders import _is_image_folder
from resnet_lab.io import atomic_path


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
    #: {file: MD5} of the extracted files; None: torchvision's lists for the official archive
    file_md5: dict[str, str] | None = None


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


def _file_md5s(spec: _Archive) -> dict[str, str]:
    """The MD5 of every file an archive extracts; for the official ones as torchvision lists
    them (``torchvision.datasets.CIFAR10.train_list`` ...)."""
    if spec.file_md5 is not None:
        return dict(spec.file_md5)
    from torchvision.datasets import CIFAR10, CIFAR100

    cls = next(c for c in (CIFAR10, CIFAR100) if c.base_folder == spec.folder)
    listed = [*cls.train_list, *cls.test_list, [cls.meta["filename"], cls.meta["md5"]]]
    return {file: md5 for file, md5 in listed}


def _failing_md5(folder: Path, spec: _Archive) -> list[str]:
    """The extracted files of ``spec`` in ``folder`` that are missing or fail their MD5."""
    from torchvision.datasets.utils import check_integrity

    return [f for f, md5 in _file_md5s(spec).items() if not check_integrity(folder / f, md5)]


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
    extracted = marker.exists() and marker.read_text().strip() == spec.md5
    bad = _failing_md5(folder, spec) if extracted else []
    if bad:
        warnings.warn(
            f"{', '.join(bad)} in {folder.name}/ of the data cache "
            f"{'fails its' if len(bad) == 1 else 'fail their'} MD5 check "
            "(damaged or altered); not read, extracting the archive again",
            stacklevel=2,
        )
    if not extracted or bad:
        archive = _fetch_archive(spec, root, download, progress)
        folder = _extract(archive, root, spec)
        bad = _failing_md5(folder, spec)
        if bad:
            raise DataError(
                f"{', '.join(bad)} extracted from {archive.name} fail their MD5 check; not read. "
                f"Delete {archive.name} and {folder.name}/ from the data cache and run again"
            )
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
