"""Atomic file writes: a file is either its old self or completely new, never half-written.

Every file the package writes (results, checkpoints, caches, downloads) goes
through these helpers. The data goes to a temporary file in the same folder,
is flushed to disk, and then replaces the target with :func:`os.replace`, which
is atomic on POSIX and Windows. If anything fails (a full disk, Ctrl-C, an
object that cannot be pickled), the temporary file is removed and the target is
left untouched; a full disk is an :class:`OSError` that names the file and the room it
needs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_path", "atomic_torch_save", "atomic_write_bytes", "atomic_write_text"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    For writers that want a file name rather than a file object (``tarfile``,
    ``np.save``, downloads). The temporary file is deleted if the block raises.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        _fsync_file(tmp_path)
        # mkstemp creates 0600 files; give the result the usual permissions of a new file.
        os.chmod(tmp_path, target.stat().st_mode & 0o777 if target.exists() else 0o644)
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise
    _fsync_dir(target.parent)


# A write that failed for want of room: no space, over a quota, over a size limit.
_NO_ROOM = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _write_with(path: str | os.PathLike, writer: Callable[[IO[bytes]], Any], size: int) -> Path:
    """``writer(f)`` into ``path`` atomically; a full disk is an OSError naming the file and
    the room it needs (``size`` bytes, about), the old file left as it was."""
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            writer(f)
    except (OSError, RuntimeError) as exc:
        code = getattr(exc, "errno", None)
        # torch's zip writer may wrap the OSError of a full disk in a RuntimeError
        if code not in _NO_ROOM and not (code is None and "write" in str(exc).lower()):
            raise
        folder = Path(path).parent
        free = shutil.disk_usage(folder).free if folder.is_dir() else 0
        strerror = os.strerror(code) if code is not None else str(exc).splitlines()[0][:120]
        raise OSError(
            code or errno.EIO,
            f"{strerror} (the file needs about {_mib(size)}, {_mib(free)} are free there; "
            f"the previous {Path(path).name}, if any, is unchanged)",
            os.fspath(path),
        ) from exc
    return Path(path)


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (parent folders are created). Returns the path."""
    return _write_with(path, lambda f: f.write(data), len(data))


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (parent folders are created). Returns the path."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj, path)``, atomically: an interrupted save never leaves a truncated file."""
    import torch

    return _write_with(path, lambda f: torch.save(obj, f), _tensor_bytes(obj))


def _tensor_bytes(obj: Any) -> int:
    """The bytes of the tensors in ``obj`` (nested dicts, lists, tuples): about a save's size."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


def _fsync_file(path: Path) -> None:
    # Flush to disk before the rename, so a crash cannot leave an empty file under the new name.
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":  # pragma: no cover - directories cannot be opened on Windows
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. a folder we may write to but not read
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)
