"""What made a result: the git commit of the package and the versions of the software.

Every run record carries both (``code_version``, ``versions``), so a stored number can be
traced to the code that computed it. Nothing here imports the rest of the package.
"""

from __future__ import annotations

import functools
import platform
import subprocess
from pathlib import Path

__all__ = ["code_version", "versions"]

# The checkout the package runs from (in an installed wheel: site-packages, not a repository).
_CHECKOUT = Path(__file__).resolve().parent.parent


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """The git commit of the package's checkout (``+dirty`` with local changes), else 'unknown'."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=_CHECKOUT, capture_output=True, text=True, timeout=5
        )
        if sha.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "resnet_lab"],
            cwd=_CHECKOUT,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    """``python``, ``torch``, ``torchvision`` (``none`` if absent) and ``resnet_lab``."""
    import torch

    from resnet_lab._version import __version__

    try:
        import torchvision

        tv = torchvision.__version__
    except ImportError:  # pragma: no cover
        tv = "none"
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": tv,
        "resnet_lab": __version__,
    }
