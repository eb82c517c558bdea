"""Every weights entry by name: :func:`list_weights`, :func:`get_weight`, :func:`resolve`.

Zoo entries come from the manifest that ``resnet-lab weights export`` writes
(``resnet_lab/weights/shipped/manifest.json``), reference entries from
:mod:`resnet_lab.weights.reference`.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

from resnet_lab.weights import reference
from resnet_lab.weights.entry import SHIPPED, Weights, WeightsError

MANIFEST = "manifest.json"
SCHEMA = "resnet_lab.weights/1"
#: ``zoo`` names the end of a zoo run, ``zoo:final`` too
FINAL = "final"


def read_manifest(folder: str | Path = SHIPPED) -> list[Weights]:
    """The entries of the manifest in ``folder`` (none if it has no manifest)."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return []
    try:
        blob = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise WeightsError(f"{path} is not valid JSON ({exc}); restore it from git") from None
    if not isinstance(blob, dict) or blob.get("schema") != SCHEMA:
        raise WeightsError(f"{path} is not a weights manifest (schema {SCHEMA!r})")
    return [Weights.from_dict(d, Path(folder)) for d in blob["entries"]]


@functools.cache
def _registry() -> dict[str, Weights]:
    entries = read_manifest() + reference.entries()
    return {w.name: w for w in sorted(entries, key=lambda w: _natural(w.name))}


def refresh() -> None:
    """Read the shipped manifest again (after ``resnet-lab weights export`` changed it)."""
    _registry.cache_clear()


def _natural(name: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def list_weights(model: str | None = None) -> list[Weights]:
    """Every weights entry (of ``model`` only, when given), sorted by name."""
    key = None if model is None else model.strip().lower()
    return [w for w in _registry().values() if key is None or w.model == key]


def get_weight(name: str) -> Weights:
    """The entry of a full name, e.g. ``"resnet20.zoo"``, ``"resnet56.zoo:step200"``,
    ``"resnet20.akamaster"``."""
    full = _canonical(name.strip().lower())
    found = _registry().get(full)
    if found is None:
        raise WeightsError(
            f"unknown weights {name!r}; valid names: {', '.join(_registry())} "
            "(or build(model, weights=TAG) with the part after the dot)"
        )
    return found


def resolve(model: str, weights: str | Weights) -> Weights:
    """The entry that ``build(model, weights=...)`` loads: a :class:`Weights`, a full name
    (``"resnet20.zoo"``) or the tag alone (``"zoo"``, ``"zoo:step200"``, ``"akamaster"``)."""
    key = model.strip().lower()
    if isinstance(weights, Weights):
        entry = weights
    elif isinstance(weights, str):
        spec = weights.strip().lower()
        full = spec if "." in spec else f"{key}.{spec}"
        entry = _registry().get(_canonical(full))
        if entry is None:
            mine = [w.tag for w in list_weights(key)]
            valid = (
                f"valid for {key}: {', '.join(mine)}"
                if mine
                else "models with weights: " + ", ".join(sorted({w.model for w in list_weights()}))
            )
            raise WeightsError(f"unknown weights {weights!r} for {key}; {valid}")
    else:
        raise WeightsError(
            f"weights= takes a name such as 'zoo' or a Weights entry, not {type(weights).__name__}"
        )
    if entry.model != key:
        raise WeightsError(
            f"{entry.name} are weights of {entry.model}, not {key}: "
            f"build({entry.model!r}, weights={entry.tag!r})"
        )
    return entry


def _canonical(full: str) -> str:
    return full.removesuffix(f":{FINAL}")
