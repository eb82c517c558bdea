"""The results store: every finished training run as one JSON file with its provenance.

The book reads its measured numbers from here (``results/`` at the repository
root), the command line writes here (``resnet-lab train/sweep --store``)::

    from resnet_lab import results
    runs = results.list_runs(model="resnet20", variant="cifar10-jpeg", tag="cpu-fast")
    runs[0].final["test_error"], runs[0].history

A record (schema ``resnet_lab.run/1``) holds: ``id``, ``model``, ``data``
(variant, source file name, sizes), ``recipe`` (every hyper-parameter of the
:class:`~resnet_lab.engine.TrainConfig`), ``seed``, ``epochs`` (completed),
``status``, ``device`` (name), ``device_type``, ``precision`` (what training ran in:
fp32, bf16 or fp16), ``world_size``, ``versions``
(python, torch, torchvision, resnet_lab), ``code_version`` (git commit or
'unknown'), ``date`` (ISO 8601, UTC), ``tags``, ``history`` (per-epoch dicts),
``steps`` (every-N-steps dicts), ``final`` (train_error, test_error, test_loss),
``wall_time`` (seconds). Files are written atomically. A file that is not a
valid record raises :class:`ResultsError` naming it when loaded by name or checked
with :func:`validate_store`; :func:`list_runs` skips it with a warning, so one damaged
file never hides the other runs.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resnet_lab.io import atomic_write_text
from resnet_lab.provenance import code_version, versions

if TYPE_CHECKING:  # pragma: no cover
    from resnet_lab.engine import Run, TrainConfig

SCHEMA = "resnet_lab.run/1"
_PACKAGE = Path(__file__).resolve().parent.parent  # resnet_lab/ (this file: resnet_lab/results/)
_REPO_ROOT = _PACKAGE.parent
# pyproject.toml ships the repository's results/ inside the wheel under this name.
_PACKAGED_STORE = _PACKAGE / "stored_results"


def default_store() -> Path:
    """The one default store, where ``save_run`` and ``resnet-lab train`` write and
    :func:`list_runs` reads: ``RESNET_LAB_RESULTS`` if set, else the repository's
    ``results/`` (a checkout), else ``results/`` in the current folder.

    Outside a checkout (``pip install`` from git, as in Colab) the runs the book ships
    (inside the package, read-only) are listed too: see :func:`shipped_store`."""
    env = os.environ.get("RESNET_LAB_RESULTS")
    if env:
        return Path(env).expanduser()
    repo = _REPO_ROOT / "results"
    if repo.is_dir() and (_REPO_ROOT / "pyproject.toml").is_file():
        return repo
    return Path.cwd() / "results"


def shipped_store() -> Path | None:
    """The book's stored runs inside an installed package (read-only), or None in a checkout."""
    if _PACKAGED_STORE.is_dir() and default_store().resolve() != _PACKAGED_STORE.resolve():
        return _PACKAGED_STORE
    return None


DEFAULT_STORE = default_store()

_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "schema": str,
    "id": str,
    "model": str,
    "data": dict,
    "recipe": dict,
    "seed": int,
    "epochs": int,
    "status": str,
    "device": str,
    "versions": dict,
    "code_version": str,
    "date": str,
    "tags": list,
    "history": list,
    "final": dict,
}
_HISTORY_KEYS = (
    "epoch",
    "step",
    "train_loss",
    "train_error",
    "test_loss",
    "test_error",
    "lr",
    "images_per_sec",
    "wall_time",
)


class ResultsError(ValueError):
    """A results file is missing, corrupt, or not a resnet_lab run record.

    ``.path`` is the file; the message names it inside its store (``depth-study/x.json in
    results``) when the store is known, else as given.
    """

    def __init__(
        self, path: str | os.PathLike | None, reason: str, store: str | os.PathLike | None = None
    ):
        self.path = Path(path) if path is not None else None
        self.reason = reason
        super().__init__(f"{_where(self.path, store)}: {reason}")


def _where(path: Path | None, store: str | os.PathLike | None) -> str:
    if path is None:
        return "run record"
    if store is not None:
        with contextlib.suppress(ValueError):
            return f"results file {path.relative_to(store)} in {store}"
    return f"results file {path}"


def validate(record: Any, path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Check a record against the schema; raise :class:`ResultsError` naming ``path`` if invalid."""
    if not isinstance(record, dict):
        raise ResultsError(path, f"expected a JSON object, found {type(record).__name__}")
    schema = record.get("schema")
    if schema != SCHEMA:
        raise ResultsError(
            path, f"not a resnet_lab run record (schema {schema!r}, expected {SCHEMA!r})"
        )
    for key, kind in _REQUIRED.items():
        if key not in record:
            raise ResultsError(path, f"missing field {key!r}")
        if not isinstance(record[key], kind) or (kind is int and isinstance(record[key], bool)):
            raise ResultsError(
                path, f"field {key!r} should be {_kind_name(kind)}, found {record[key]!r:.60}"
            )
    if record["epochs"] != len(record["history"]):
        raise ResultsError(
            path, f"epochs={record['epochs']} but history has {len(record['history'])} entries"
        )
    for i, h in enumerate(record["history"]):
        if not isinstance(h, dict):
            raise ResultsError(path, f"history[{i}] is not an object")
        missing = [k for k in _HISTORY_KEYS if k not in h]
        if missing:
            raise ResultsError(path, f"history[{i}] lacks {', '.join(missing)}")
        for k in ("train_error", "test_error"):
            v = h[k]
            if v is not None and not (isinstance(v, (int, float)) and 0.0 <= v <= 1.0):
                raise ResultsError(path, f"history[{i}].{k}={v!r} is not a fraction in [0, 1]")
    _validate_nested(record, path)
    return record


def _validate_nested(record: dict[str, Any], path: str | os.PathLike | None) -> None:
    """The fields inside ``data``, ``recipe``, ``tags``, ``final`` and ``steps`` that readers
    use, checked before any reader does (a record that passes must not break a reader)."""
    from resnet_lab.engine import ConfigError, TrainConfig

    data = record["data"]
    if not isinstance(data.get("variant"), str) or not data["variant"]:
        raise ResultsError(
            path, f"field 'data.variant' should be a name, found {data.get('variant')!r:.60}"
        )
    for key in ("train_size", "test_size", "num_classes"):
        v = data.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise ResultsError(path, f"field 'data.{key}' should be a count, found {v!r:.60}")
    for key in ("milestones", "snapshot_steps"):
        v = record["recipe"].get(key)
        if v is not None and not isinstance(v, list):
            raise ResultsError(path, f"field 'recipe.{key}' should be a list, found {v!r:.60}")
    try:
        TrainConfig.from_dict(record["recipe"]).validate()
    except ConfigError as exc:
        raise ResultsError(path, f"field 'recipe.{exc.field}' {exc.problem}") from None
    except (TypeError, ValueError) as exc:  # e.g. milestones: 5
        raise ResultsError(path, f"field 'recipe' is not a training recipe ({exc})") from None
    if not all(isinstance(t, str) for t in record["tags"]):
        raise ResultsError(path, "field 'tags' should be a list of strings")
    for key, v in record["final"].items():
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise ResultsError(path, f"field 'final.{key}' should be a number, found {v!r:.60}")
    steps = record.get("steps", [])
    if not isinstance(steps, list) or not all(isinstance(r, dict) for r in steps):
        raise ResultsError(path, "field 'steps' should be a list of objects")
    for name, entries in (("history", record["history"]), ("steps", steps)):
        for i, entry in enumerate(entries):
            for key, v in entry.items():
                if key in _HISTORY_KEYS and not _number_or_none(v):
                    raise ResultsError(path, f"{name}[{i}].{key}={v!r:.60} is not a number")
            for key in ("epoch", "step") if name == "history" else ():
                if entry[key] is None:
                    raise ResultsError(path, f"{name}[{i}].{key} is missing")
    for key in ("precision", "device_type"):
        if record.get(key) is not None and not isinstance(record[key], str):
            raise ResultsError(path, f"field {key!r} should be a string, found {record[key]!r:.60}")


def _number_or_none(v: Any) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def _kind_name(kind: type | tuple[type, ...]) -> str:
    return {dict: "an object", list: "a list", str: "a string", int: "an integer"}.get(
        kind, str(kind)
    )  # type: ignore[arg-type]


# Recipe fields that say nothing about how a run trained (``amp`` is the request; the
# precision it trained in is compared instead).
_NOT_TRAINING = frozenset({"recipe", "seed", "amp", "eval_every"})


@dataclass(frozen=True)
class RunRecord(Mapping):
    """A stored run: read-only access as attributes (``rec.model``) or keys (``rec["model"]``)."""

    record: dict[str, Any]
    path: Path | None = None

    def __getitem__(self, key: str) -> Any:
        return self.record[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.record)

    def __len__(self) -> int:
        return len(self.record)

    def __getattr__(self, key: str) -> Any:
        if key in ("record", "path"):
            raise AttributeError(key)
        try:
            return self.record[key]
        except KeyError:
            raise AttributeError(key) from None

    @property
    def variant(self) -> str:
        return self.record["data"]["variant"]

    @property
    def precision(self) -> str:
        """'fp32', 'bf16' or 'fp16'. Records written before the field existed are read from
        their ``amp`` setting: every such run with ``amp='auto'`` trained on a CPU in fp32."""
        if self.record.get("precision"):
            return self.record["precision"]
        amp = self["recipe"].get("amp", "auto")
        if amp in ("bf16", "fp16"):
            return amp
        if amp == "auto" and self.record.get("device_type") == "cuda":
            return "unknown"
        return "fp32"

    @property
    def model_name(self) -> str:
        return self.record["model"]

    @property
    def training_settings(self) -> dict[str, Any]:
        """What decided how the run trained, to tell whether two runs are comparable: every
        recipe field but bookkeeping (logging, evaluation, checkpoints, compile), the recipe's
        name, the seed and ``amp`` (what was asked for), plus ``precision`` (what it got)."""
        from resnet_lab.engine import bookkeeping_fields

        skip = bookkeeping_fields() | _NOT_TRAINING
        settings = {k: v for k, v in self.config.to_dict().items() if k not in skip}
        settings["precision"] = self.precision
        return settings

    @property
    def config(self) -> TrainConfig:
        from resnet_lab.engine import TrainConfig

        return TrainConfig.from_dict(self.record["recipe"])

    def curve(self, key: str) -> tuple[list[float], list[float]]:
        """(epochs, values) of one history key, skipping epochs where it is None."""
        from resnet_lab.engine import history_curve

        return history_curve(self.record["history"], key)

    def test_curve(self) -> tuple[list[int], list[float]]:
        """(iterations, test error) at every evaluation of the run, in order.

        The test split is evaluated at the end of evaluated epochs and, where the run
        asked for it (``eval_every_steps``), every N steps in between.
        """
        found = {
            int(r["step"]): r["test_error"]
            for r in [*self.record.get("steps", []), *self.record["history"]]
            if r.get("test_error") is not None and r.get("step") is not None
        }
        steps = sorted(found)
        return steps, [found[s] for s in steps]

    def __repr__(self) -> str:
        te = self.record["final"].get("test_error")
        te_s = f"{te:.4f}" if isinstance(te, (int, float)) else "n/a"
        return (
            f"RunRecord({self.record['id']}, model={self.record['model']}, data={self.variant}, "
            f"recipe={self.record['recipe'].get('recipe')}, seed={self.record['seed']}, "
            f"epochs={self.record['epochs']}, test_error={te_s})"
        )


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf become None (JSON has no NaN), tuples lists, numbers plain floats."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # tensors, numpy scalars
        return _clean(value.item())
    return value


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]+", "-", text).strip("-") or "x"


def _nonfinite(value: Any, where: str = "") -> list[str]:
    """Paths of the NaN/inf numbers inside a record, e.g. ``history[0].test_loss``."""
    if isinstance(value, float):
        return [] if math.isfinite(value) else [where]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _nonfinite(v, f"{where}.{k}".lstrip("."))]
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in _nonfinite(v, f"{where}[{i}]")]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return _nonfinite(value.item(), where)
    return []


def record_from_run(run: Run) -> dict[str, Any]:
    """The JSON record of a finished :class:`~resnet_lab.engine.Run`.

    NaN and infinite numbers are stored as null (JSON has neither), so a run that holds
    any cannot be marked completed or stopped: that would pass a failure off as a success.
    """
    if run.status in ("completed", "stopped"):
        bad = _nonfinite({"history": run.history, "final": run.final})
        if bad:
            raise ResultsError(
                None,
                f"run marked {run.status!r} holds NaN or infinite values ({', '.join(bad[:3])}); "
                "mark it 'diverged'",
            )
    stamp = run.date.replace("-", "").replace(":", "")[:15]
    rid = _slug(
        f"{run.model_name}-{run.variant}-{run.config.recipe}-e{run.epochs}-s{run.config.seed}-"
        f"{stamp}-{run.id[:6]}"
    )
    record = {
        "schema": SCHEMA,
        "id": rid,
        "run_uid": run.id,
        "model": run.model_name,
        "data": run.data,
        "recipe": run.config.to_dict(),
        "seed": run.config.seed,
        "epochs": run.epochs,
        "status": run.status,
        "device": run.device_name,
        "device_type": run.device,
        "precision": run.precision,
        "world_size": run.world_size,
        "versions": versions(),
        "code_version": getattr(run, "code_version", None) or code_version(),
        "date": run.date,
        "tags": list(run.tags),
        "history": run.history,
        "steps": run.steps,
        "final": run.final,
        "wall_time": run.wall_time,
    }
    if run.grad_norm_layers:
        record["grad_norm_layers"] = list(run.grad_norm_layers)
    return _clean(record)


def save_run(run: Run | dict[str, Any], store: str | os.PathLike | None = None) -> Path:
    """Save a run (or a record) as ``<store>/<id>.json``, atomically; returns the path.

    Saving the same run again replaces its file; a different run never replaces
    an existing file (:class:`ResultsError`).
    """
    record = dict(run) if isinstance(run, dict) else record_from_run(run)
    validate(record)
    folder = Path(store) if store is not None else default_store()
    path = folder / f"{_slug(record['id'])}.json"
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = None
        if not isinstance(old, dict) or old.get("run_uid") != record.get("run_uid"):
            raise ResultsError(path, "already exists and holds a different run; not overwritten")
    atomic_write_text(path, json.dumps(record, indent=1, allow_nan=False) + "\n")
    if not isinstance(run, dict):
        run.path = path
    return path


def save_finished(run: Run, store: str | os.PathLike | None = None) -> Path | None:
    """Save ``run`` if it finished (completed, or stopped by a callback); returns the path.

    An interrupted, diverged or out-of-memory run is not a result: it is not saved (None),
    and its checkpoint continues it."""
    return save_run(run, store) if run.status in ("completed", "stopped") else None


def load_run(path_or_id: str | os.PathLike, store: str | os.PathLike | None = None) -> RunRecord:
    """A stored run by file path or by id (looked up in ``store``)."""
    path = Path(path_or_id)
    if not path.is_file():
        folder = Path(store) if store is not None else default_store()
        candidate = folder / f"{path_or_id}.json"
        if candidate.is_file():
            path = candidate
        else:
            raise ResultsError(path, f"no such results file or run id in {folder}")
        store = folder
    return _load(path, store)


def _load(path: Path, store: str | os.PathLike | None) -> RunRecord:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(path, f"cannot be read ({exc})", store) from exc
    except json.JSONDecodeError as exc:
        # json's messages may end in "at" ("Unterminated string starting at"): say where once.
        what = re.sub(r"\s+at$", "", exc.msg)
        raise ResultsError(
            path,
            f"is not valid JSON ({what}, line {exc.lineno} column "
            f"{exc.colno}); the file is damaged: restore it or delete it",
            store,
        ) from exc
    try:
        return RunRecord(validate(record, path), path)
    except ResultsError as exc:
        reason = f"{exc.reason}; fix it, or move it out of the store"
        raise ResultsError(path, reason, store) from None


def _json_files(folder: Path) -> list[Path]:
    """The record files under ``folder``: ``*.json`` files, hidden ones aside. Anything else
    of that name (a folder, a FIFO, a device, a broken link) is skipped with a warning naming
    it: reading a FIFO would wait for ever."""
    if not folder.is_dir():
        return []
    found = sorted(p for p in folder.rglob("*.json") if not p.name.startswith("."))
    for p in found:
        if not p.is_file() and not p.is_dir():
            warnings.warn(
                f"{_where(p, folder)}: not a regular file (skipped; the other runs are listed)",
                stacklevel=3,
            )
    return [p for p in found if p.is_file()]


def _files(store: str | os.PathLike | None) -> tuple[Path, list[Path]]:
    """The store's folder and its record files; the default store adds the shipped runs.
    A store given that is not a folder is a :class:`ResultsError`."""
    folder = Path(store) if store is not None else default_store()
    if store is not None and not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        exc = ResultsError(folder, what)
        exc.args = (
            f"results store {folder} {what}; give the folder that holds the run records "
            "(or None for the default store)",
        )
        raise exc
    files = _json_files(folder)
    shipped = shipped_store() if store is None else None
    if shipped is not None:
        files += [p for p in _json_files(shipped) if p.name not in {f.name for f in files}]
    return folder, files


def _matches(rec: RunRecord, filters: Mapping[str, Any]) -> bool:
    for key, want in filters.items():
        if want is None:
            continue
        wants = set(want) if isinstance(want, (list, tuple, set, frozenset)) else {want}
        if key in ("tag", "tags"):
            have: Iterable[Any] = rec["tags"]
        elif key == "variant":
            have = [rec.variant]
        elif key == "recipe":
            have = [rec["recipe"].get("recipe")]
        elif key in rec.record:
            have = [rec.record[key]]
        elif key in rec["recipe"]:
            have = [rec["recipe"][key]]
        else:
            return False
        if not wants & set(have):
            return False
    return True


def list_runs(store: str | os.PathLike | None = None, **filters: Any) -> list[RunRecord]:
    """Stored runs matching every filter, ordered by model, variant, seed and date.

    Filters: ``model``, ``variant``, ``recipe`` (name), ``tag`` (one of the run's
    tags), ``seed``, ``epochs``, ``status`` or any recipe field (``batch_size=128``);
    a list value matches any of its items. A corrupt or foreign file is skipped with a
    warning naming it (:func:`validate_store` raises on it).
    """
    folder, files = _files(store)
    runs = []
    for path in files:
        try:
            runs.append(_load(path, folder))
        except ResultsError as exc:
            warnings.warn(f"{exc} (skipped; the other runs are listed)", stacklevel=2)
    runs = [r for r in runs if _matches(r, filters)]
    return sorted(runs, key=lambda r: (r["model"], r.variant, r["seed"], r["date"], r["id"]))


def validate_store(store: str | os.PathLike | None = None) -> list[RunRecord]:
    """Load and validate every JSON file of the store (raises on the first bad one)."""
    folder, files = _files(store)
    runs = [_load(p, folder) for p in files]
    ids = [r["id"] for r in runs]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise ResultsError(None, f"duplicate run ids in the store: {sorted(dup)}")
    return runs
