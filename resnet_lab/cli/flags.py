"""TrainConfig fields as flags, both ways: the flags of ``train`` and ``sweep`` and
``--set FIELD=VALUE`` read into a TrainConfig, and a library setting or failure said back
in flags (``--lr 0.05``, ``--set gamma=0.1``).

A field declares its flag in its metadata (``_flag`` in :mod:`resnet_lab.engine.config`);
its type gives the flag's: a ``bool`` is a switch, ``int``/``float``/``str`` take a value.
A field added to TrainConfig with flag metadata gets its flag here with no edit.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Sequence
from typing import Any

from resnet_lab.cli.errors import UsageError
from resnet_lab.engine import TrainConfig

# Arguments of the library that are not flagged TrainConfig fields, and their flags.
_OTHER_FLAGS = {
    "train_per_class": "--subset",
    "test_per_class": "--test-subset",
    "device": "--device",
    "seed": "--seed",
}
# TrainConfig fields every training command sets with a flag of its own, never --set.
_OWN_FLAGS = ("recipe", "seed")
_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def _fields() -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(TrainConfig)}


def _flagged() -> dict[str, dataclasses.Field]:
    """The TrainConfig fields with a flag, in declaration order (the order of the help)."""
    return {name: f for name, f in _fields().items() if "flag" in f.metadata}


def _kind(name: str) -> tuple[Any, bool]:
    """A field's type without ``None``, and whether it may be ``None``."""
    hint = typing.get_type_hints(TrainConfig)[name]
    args = typing.get_args(hint)
    if type(None) in args:  # int | None
        return next(a for a in args if a is not type(None)), True
    return hint, False


def _read(name: str, raw: str) -> Any:
    """``raw`` as a value of the field ``name``; ValueError if it cannot be one."""
    kind, optional = _kind(name)
    if optional and raw.lower() == "none":
        return None
    if kind is bool:
        if raw.lower() not in _TRUE | _FALSE:
            raise ValueError(raw)
        return raw.lower() in _TRUE
    if typing.get_origin(kind) is tuple:  # milestones=0.5,0.75
        item = typing.get_args(kind)[0]
        return tuple(item(v) for v in raw.split(",") if v.strip())
    return kind(raw)


def _type_name(name: str) -> str:
    """A field's type as TrainConfig spells it (``int | None``)."""
    declared = _fields()[name].type
    return declared if isinstance(declared, str) else getattr(declared, "__name__", str(declared))


def _add_config_flags(group: argparse._ArgumentGroup) -> None:
    """One flag per flagged TrainConfig field; unset flags stay None (the recipe decides)."""
    for name, f in _flagged().items():
        kind, _ = _kind(name)
        options = {k: f.metadata[k] for k in ("help", "metavar", "choices") if f.metadata.get(k)}
        if kind is bool:
            group.add_argument(
                f.metadata["flag"], dest=name, action="store_true", default=None, **options
            )
            continue
        read = kind if kind in (int, float, str) else _reader(name)  # a tuple: as --set reads it
        group.add_argument(f.metadata["flag"], dest=name, type=read, **options)


def _reader(name: str):
    """An argparse ``type`` reading the field ``name`` as ``--set`` does."""

    def read(raw: str) -> Any:
        try:
            return _read(name, raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"cannot read {raw!r} as {_type_name(name)}") from None

    return read


# The run's length: a None for one of them says "the other one decides".
_LENGTHS = ("epochs", "iterations")


def _config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig fields the command line sets: its flags and ``--set``. A field set
    twice (by its flag and by ``--set``) or a length of None that would leave the recipe's
    in place is refused: nothing the command line says is dropped without a word."""
    out = {k: getattr(args, k) for k in _flagged() if getattr(args, k, None) is not None}
    for key, value in _parse_set(getattr(args, "set_fields", None) or []).items():
        if key in out:
            raise UsageError(
                f"{_spell_flag(key, out[key])} and --set {key}={_raw(value)} both set {key}; "
                "give it once"
            )
        out[key] = value
    for key in _LENGTHS:
        if key in out and out[key] is None:
            other = next(k for k in _LENGTHS if k != key)
            if out.get(other) is None:
                raise UsageError(
                    f"--set {key}=None: the run's length is epochs or iterations; give the "
                    f"one you mean instead ({_flagged()[other].metadata['flag']} N)"
                )
            del out[key]  # the other length decides, as recipe() has it
    return out


def _raw(value: Any) -> str:
    """A value as ``--set`` reads it back (``0.5,0.75`` for a tuple, ``None``)."""
    return ",".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)


def _parse_set(items: Sequence[str]) -> dict[str, Any]:
    """``--set FIELD=VALUE`` pairs as TrainConfig values, read by the field's declared type."""
    settable = sorted(set(_fields()) - set(_OWN_FLAGS))
    out: dict[str, Any] = {}
    raw_of: dict[str, str] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key, raw = key.strip().replace("-", "_"), raw.strip()
        if key in _OWN_FLAGS:
            raise UsageError(f"--set {item!r}: {key} has a flag of its own, --{key}")
        if not sep or key not in settable:
            unknown = f"TrainConfig has no field {key!r}; " if sep else ""
            raise UsageError(
                f"--set {item!r}: {unknown}expected FIELD=VALUE with FIELD one of "
                f"{', '.join(settable)}"
            )
        try:
            value = _read(key, raw)
        except ValueError:
            raise UsageError(
                f"--set {key}={raw}: cannot read {raw!r} as {_type_name(key)}"
            ) from None
        if key in out and out[key] != value:
            raise UsageError(f"--set {key}={raw_of[key]} and --set {key}={raw} differ; give one")
        out[key], raw_of[key] = value, raw
    return out


def _config(args: argparse.Namespace, seed: int):
    """The run's TrainConfig; a bad value is refused here, before any folder is made."""
    from resnet_lab import engine

    try:
        return engine.recipe(args.recipe, seed=seed, **_config_overrides(args))
    except engine.ConfigError as exc:
        raise UsageError(
            f"{_spell_flag(exc.field, exc.value)}: {exc.field} {exc.problem}"
        ) from None


def _spell_flag(name: str, value: Any) -> str:
    """A library setting as the command line writes it: ``--lr 0.05``, ``--set gamma=0.1``."""
    if isinstance(value, float):
        value = f"{value:.3g}"
    elif isinstance(value, (tuple, list)):
        value = ",".join(str(v) for v in value)  # as --set reads it back
    if name in _OTHER_FLAGS:
        return f"{_OTHER_FLAGS[name]} {value}"
    f = _flagged().get(name)
    if f is None:
        return f"--set {name}={value}"
    if _kind(name)[0] is bool:  # a switch such as --compile
        return f.metadata["flag"] if value else f"--set {name}=false"
    return f"{f.metadata['flag']} {value}"


def _failure(exc: Exception) -> str:
    """A library failure in the command line's words (flags, not arguments)."""
    return getattr(exc, "cli_message", None) or (
        exc.explain(_spell_flag) if hasattr(exc, "explain") else str(exc)
    )
