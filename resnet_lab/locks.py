"""One writer at a time: :func:`exclusive`, a lock file that a second process is refused at.

A run's output folder and a sweep's claim on a run in its store are each held by one
process; a second one is refused at once, its message naming the first (pid, host, since
when). The lock is ``fcntl.flock`` on the file: the kernel drops it when its process dies,
however it dies, so a lock left by a killed process never blocks (the file's words about a
dead holder are simply overwritten). Where ``fcntl`` is missing (Windows) no lock is taken.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["Busy", "exclusive", "holder"]


class Busy(ValueError):
    """Another process holds the lock; the message names it and says what to do."""


def holder(path: str | os.PathLike) -> str:
    """Who holds (or last held) the lock at ``path``, in words: 'pid 12 on host h since ...'."""
    try:
        words = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        words = ""
    return words or "a process that has not said who it is yet"


@contextlib.contextmanager
def exclusive(path: str | os.PathLike, what: str, instead: str) -> Iterator[Path]:
    """Hold the lock file ``path`` for the block, or raise :class:`Busy` at once.

    ``what`` names what is locked (``the output folder runs/x``), ``instead`` what a second
    process may do (``choose another --output``). The file says who holds it and is removed
    on release; its folder is made if needed.
    """
    path = Path(path)
    if fcntl is None:  # pragma: no cover - Windows: no advisory locks of this kind
        yield path
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise Busy(
                f"{what} is in use by another process ({holder(path)}); wait for it "
                f"to finish, or {instead}"
            ) from None
        # The holder before us may have removed the file after we opened it: lock the one
        # that is there now, or two processes would each hold a file of their own.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        since = datetime.now(timezone.utc).isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on host {socket.gethostname()} since {since}".encode())
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # before the unlock, so that a waiter re-checks (see above)
        os.close(fd)
