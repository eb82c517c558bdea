"""Mistakes on the command line: exit statuses, :class:`UsageError` and the checks that
refuse a bad argument before anything is loaded, trained or written."""

from __future__ import annotations

import os
from pathlib import Path

EXIT_USAGE = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


class UsageError(ValueError):
    """A mistake on the command line."""


def _writable_folder(path: Path, flag: str) -> None:
    """Check that ``path`` can take files, before anything is trained. Nothing is created
    here: folders appear with their first file, so a run refused later leaves none behind."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(
            f"cannot use {path} as a folder ({existing} is a file); choose another {flag}"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write in {existing} (no permission); choose another {flag}")


def _check_model_name(name: str) -> str:
    """The registry's spelling of a valid model name (``RESNET20`` -> ``resnet20``)."""
    import torch

    from resnet_lab.models import build

    with torch.device("meta"):  # no memory, no time: only the name is checked
        build(name)
    return name.strip().lower()  # build() accepts any case; runs are stored under one


def _check_device(device: str | None) -> None:
    from resnet_lab import runtime

    if device is None:
        return
    try:
        runtime.pick_device(device)
    except ValueError as exc:  # the library's words are arguments; say the flag instead
        raise UsageError(str(exc).replace("device='cpu'", "--device cpu")) from None
