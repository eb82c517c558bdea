"""How training fails: structured errors that say why and what to try (:class:`Fix`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


class StopTraining(Exception):  # noqa: N818 - a signal, not an error
    """Raise from a callback to end training cleanly (the run is marked ``stopped``)."""


def spell_argument(name: str, value: Any) -> str:
    """A setting as a Python caller writes it (``lr=0.05``); the command line spells its own."""
    if isinstance(value, float):
        return f"{name}={value:.3g}"
    return f"{name}={value!r}" if isinstance(value, str) and value != "N" else f"{name}={value}"


@dataclass(frozen=True)
class Fix:
    """One way out of a failure: what to do and the settings that do it (``{'lr': 0.05}``)."""

    what: str
    settings: dict[str, Any] = field(default_factory=dict)

    def say(self, spell: Callable[[str, Any], str] = spell_argument) -> str:
        if not self.settings:
            return self.what
        return f"{self.what} ({', '.join(spell(k, v) for k, v in self.settings.items())})"


class _Advised:
    """A failure that says why (``reason``) and what to try (``fixes``), in its caller's words:
    ``explain()`` spells settings as arguments, the command line passes its flag spelling."""

    reason: str = ""
    fixes: tuple[Fix, ...] = ()

    def explain(self, spell: Callable[[str, Any], str] = spell_argument) -> str:
        if not self.fixes:
            return self.reason
        return f"{self.reason}; " + ", or ".join(f.say(spell) for f in self.fixes)


class ConfigError(ValueError):
    """A :class:`TrainConfig` field holds an impossible value; ``.field`` and ``.value`` name it."""

    def __init__(self, name: str, value: Any, problem: str):
        self.field, self.value, self.problem = name, value, problem
        super().__init__(f"TrainConfig: {name} {problem}, got {value!r}")


class TrainingDiverged(_Advised, RuntimeError):
    """The loss, the test loss or the weights became NaN or infinite. ``.run`` holds the
    history up to the last epoch where all were finite; ``.checkpoint_step`` is the step
    whose state the checkpoint file holds (None: no file was saved)."""

    def __init__(
        self,
        message: str,
        run: Any,  # the engine.Run so far, or None
        fixes: Sequence[Fix] = (),
        checkpoint_step: int | None = None,
    ):
        self.reason, self.fixes = message, tuple(fixes)
        self.run, self.checkpoint_step = run, checkpoint_step
        super().__init__(self.explain())


class OutOfMemory(_Advised, ValueError):
    """The device ran out of memory, or clearly would; the message says what to try.

    ``.run`` holds the history so far (``None`` if training did not start).
    """

    def __init__(self, message: str, run: Any, fixes: Sequence[Fix] = ()):  # run: a Run or None
        self.reason, self.fixes, self.run = message, tuple(fixes), run
        super().__init__(self.explain())
