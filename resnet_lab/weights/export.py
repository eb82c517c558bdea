"""A finished zoo run into shipped weights: :func:`export_run` (``resnet-lab weights export``).

The run's folder (``--output`` of ``resnet-lab train/sweep``) holds ``checkpoint.pt`` (the
end) and ``snapshots/step-NNNNNN.pt`` (``--snapshot-steps``); its record in the results store
says how it was made. Each point becomes one manifest entry:

- the end and every snapshot after step 0: a safetensors file, parameters in fp16 and
  BatchNorm statistics in fp32, named ``<model>-<release>[-<point>]-<sha256[:8]>.safetensors``;
- step 0: no file. The initialisation is rebuilt from the run's seed; the export checks that
  it equals the snapshot and stores its digest, which every later rebuild is checked against.

Every entry's numbers are measured on what ships (the fp16 file loaded back into fp32, or
the rebuilt initialisation), in fp32 with BatchNorm in eval mode, on the data the run
trained on (checked against the record). An existing entry is never replaced unless
``replace=True``, and nothing is written if the files would exceed the size budget.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from resnet_lab.checkpoint import load_checkpoint
from resnet_lab.data import ImageData
from resnet_lab.io import atomic_write_bytes
from resnet_lab.models import build
from resnet_lab.results import load_run
from resnet_lab.weights.entry import SHIPPED, Weights, WeightsError, file_sha256, state_digest
from resnet_lab.weights.measure import SUBSET_PER_CLASS, measure
from resnet_lab.weights.registry import MANIFEST, SCHEMA, read_manifest, refresh

#: all shipped files together, in bytes (the issue's 20 MB)
BUDGET = 20_000_000
LICENCE = "MIT (the resnet-lab project)"


def export_run(
    run_dir: str | os.PathLike,
    record: str | os.PathLike,
    data: ImageData,
    out: str | os.PathLike = SHIPPED,
    release: str = "zoo",
    replace: bool = False,
    subset_per_class: int | None = SUBSET_PER_CLASS,
    budget: int = BUDGET,
    say: Callable[[str], None] = print,
) -> list[Weights]:
    """Export the run in ``run_dir`` (its record: ``record``, a path or id) into ``out``:
    files plus entries in ``out/manifest.json``; returns the new entries."""
    run_dir, out = Path(run_dir), Path(out)
    rec = load_run(record)
    points = _points(run_dir, rec)
    _check_data(rec, data)
    if subset_per_class is not None:  # a small test split gives what it has
        subset_per_class = min(subset_per_class, int(torch.bincount(data.test_y).min()))
    existing = {w.name: w for w in read_manifest(out)}
    names = [_name(rec["model"], release, point) for point, _, _ in points]
    taken = [n for n in names if n in existing]
    if taken and not replace:
        raise WeightsError(
            f"{out / MANIFEST} already has {', '.join(taken)}; pass replace=True "
            "(--replace) to replace them, or another release name"
        )
    blobs = {point: _file_bytes(state, rec, point, step) for point, step, state in points}
    _check_budget(out, existing, names, blobs, budget)
    written: list[Path] = []
    entries = []
    try:
        for (point, step, state), name in zip(points, names, strict=True):
            blob = blobs[point]
            if blob is None:
                entry = _seed_entry(name, rec, state, step, out)
            else:
                path = _write_file(out, name, blob)
                written.append(path)
                entry = _entry(name, rec, point, step, "shipped", file_sha256(path), path.name, out)
            entry = _measured(entry, data, subset_per_class)
            say(_line(entry))
            entries.append(entry)
        _write_manifest(out, existing, entries)
    except BaseException:
        for path in written:  # never leave files that no manifest names
            if not any(w.file == path.name for w in existing.values()):
                path.unlink(missing_ok=True)
        raise
    _drop_replaced(out, existing, entries)
    if out.resolve() == SHIPPED.resolve():
        refresh()
    return entries


def _points(run_dir: Path, rec) -> list[tuple[str, int, dict[str, torch.Tensor]]]:
    """(point, step, fp32 state dict) of every snapshot and of the end, in step order."""
    if rec["status"] != "completed":
        raise WeightsError(f"run {rec.id} is {rec['status']}, not completed: export finished runs")
    checkpoint = run_dir / "checkpoint.pt"
    if not checkpoint.is_file():
        raise WeightsError(f"{checkpoint} is missing: give the run's --output folder")
    state = load_checkpoint(checkpoint)
    if state.get("run", {}).get("id") != rec["run_uid"]:
        raise WeightsError(
            f"{checkpoint} belongs to run {state.get('run', {}).get('id')}, the record "
            f"{rec.id} to run {rec['run_uid']}: give the record of this run"
        )
    last = rec["history"][-1]["step"]
    if int(state["progress"]["step"]) != last:
        raise WeightsError(f"{checkpoint} holds step {state['progress']['step']}, not the end")
    per_epoch = rec["history"][0]["step"]
    points = []
    for path in sorted((run_dir / "snapshots").glob("step-*.pt")):
        snap = torch.load(path, map_location="cpu", weights_only=True)
        step = int(snap["step"])
        if step < last:
            points.append((_point(step, per_epoch), step, snap["model"]))
    points.append(("final", last, state["model"]))
    return points


def _point(step: int, per_epoch: int) -> str:
    if step == 0:
        return "init"
    return f"epoch{step // per_epoch}" if step % per_epoch == 0 else f"step{step}"


def _name(model: str, release: str, point: str) -> str:
    return f"{model}.{release}" + ("" if point == "final" else f":{point}")


def _check_data(rec, data: ImageData) -> None:
    mine, theirs = data.info(), rec["data"]
    keys = ("variant", "train_size", "test_size", "num_classes", "image_size", "subset_per_class")
    differ = [k for k in keys if mine.get(k) != theirs.get(k)]
    if differ:
        raise WeightsError(
            f"the data given differs from what run {rec.id} trained on in "
            f"{', '.join(differ)} ({', '.join(f'{k}={theirs.get(k)}' for k in differ)}): "
            "load the same data (--data, --subset, --test-subset)"
        )


def _file_bytes(state, rec, point: str, step: int) -> bytes | None:
    """The safetensors file of one point: parameters in fp16, buffers (BatchNorm
    statistics, counters) as they are; None for the initialisation, which is rebuilt."""
    if point == "init":
        return None
    from safetensors.torch import save

    params = {name for name, _ in build(rec["model"], num_classes=_classes(rec)).named_parameters()}
    tensors = {k: (v.half() if k in params else v).contiguous() for k, v in sorted(state.items())}
    # one metadata key: safetensors writes several in no fixed order, and the bytes are hashed
    about = {"model": rec["model"], "run": rec.id, "step": step}
    return save(tensors, metadata={"resnet_lab": json.dumps(about, sort_keys=True)})


def _classes(rec) -> int:
    return int(rec["data"]["num_classes"])


def _seed_entry(name: str, rec, state, step: int, out: Path) -> Weights:
    """The initialisation: rebuilt under the run's seed, checked against the snapshot."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(rec["seed"])
        model = build(rec["model"], num_classes=_classes(rec))
    digest = state_digest(model.state_dict())
    if digest != state_digest(state):
        raise WeightsError(
            f"{rec['model']} built under seed {rec['seed']} is not the step-0 snapshot of run "
            f"{rec.id}: was it built otherwise (another seed, or another torch)?"
        )
    return _entry(name, rec, "init", step, "seed", digest, None, out)


def _entry(name, rec, point, step, source, sha256, file, out: Path) -> Weights:
    model = build(rec["model"], num_classes=_classes(rec))
    return Weights(
        name=name,
        model=rec["model"],
        source=source,
        sha256=sha256,
        data=rec.variant,
        mean=(),
        std=(),
        num_params=sum(p.numel() for p in model.parameters()),
        metrics={},
        licence=LICENCE,
        point=point,
        step=step,
        file=file,
        run=rec.id,
        seed=rec["seed"],
        schedule=schedule_line(rec),
        recipe=dict(rec["recipe"]),
        url=None if file is None else _url(file),
        folder=out,
    )


def _measured(entry: Weights, data: ImageData, subset_per_class: int | None) -> Weights:
    """The entry with its preprocessing (the training split's statistics, as the engine
    normalised) and its numbers, measured on the weights loaded as a user loads them."""
    from dataclasses import replace

    entry = replace(entry, mean=tuple(data.mean), std=tuple(data.std))
    model = entry.build(lambda: build(entry.model, num_classes=data.num_classes))
    return replace(entry, metrics=measure(model, data, entry.mean, entry.std, subset_per_class))


def schedule_line(rec) -> str:
    """One line on how a run trained, from its record."""
    r = rec["recipe"]
    last = rec["history"][-1]["step"]
    length = f"{r['epochs']} epochs" if r.get("epochs") else f"{r['iterations']} iterations"
    sgd = "SGD, Nesterov momentum" if r["nesterov"] else "SGD, momentum"
    return (
        f"{r['recipe']} recipe, {length} ({last:,} steps) on {rec.variant}: {sgd} {r['momentum']}, "
        f"batch {r['batch_size']}, {r['schedule']} schedule to lr {r['lr']}, weight decay "
        f"{r['weight_decay']}, label smoothing {r['label_smoothing']}, "
        f"{'crop + flip' if r['augment'] else 'no augmentation'}, {rec.precision}"
    )


def _url(file: str) -> str | None:
    """The file's address in the repository, from pyproject's [project.urls]."""
    try:
        from importlib.metadata import metadata

        urls = metadata("resnet-lab").get_all("Project-URL") or []
        repo = next(u.split(",", 1)[1].strip() for u in urls if u.startswith("Repository"))
    except Exception:  # noqa: BLE001 - not installed: no address
        return None
    return f"{repo.rstrip('/')}/raw/main/resnet_lab/weights/shipped/{file}"


def _check_budget(out: Path, existing: dict, names: list[str], blobs: dict, budget: int) -> None:
    kept = {w.file for n, w in existing.items() if n not in names and w.file}
    used = sum((out / f).stat().st_size for f in kept if (out / f).is_file())
    new = sum(len(b) for b in blobs.values() if b is not None)
    if used + new > budget:
        raise WeightsError(
            f"the shipped files would take {(used + new) / 1e6:.2f} MB ({new / 1e6:.2f} MB new), "
            f"over the {budget / 1e6:.0f} MB budget: ship fewer points"
        )


def _write_file(out: Path, name: str, blob: bytes) -> Path:
    digest = hashlib.sha256(blob).hexdigest()
    stem = name.replace(".", "-").replace(":", "-")
    path = out / f"{stem}-{digest[:8]}.safetensors"
    atomic_write_bytes(path, blob)
    return path


def _write_manifest(out: Path, existing: dict[str, Weights], new: list[Weights]) -> None:
    entries = {**existing, **{w.name: w for w in new}}
    blob: dict[str, Any] = {
        "schema": SCHEMA,
        "written_by": "resnet-lab weights export",
        "entries": [entries[n].to_dict() for n in sorted(entries)],
    }
    atomic_write_bytes(out / MANIFEST, (json.dumps(blob, indent=1) + "\n").encode())


def _drop_replaced(out: Path, existing: dict[str, Weights], new: list[Weights]) -> None:
    """Delete the files of replaced entries that no entry names any more."""
    named = {w.file for w in read_manifest(out)}
    for w in new:
        old = existing.get(w.name)
        if old is not None and old.file and old.file not in named:
            (out / old.file).unlink(missing_ok=True)


def _line(w: Weights) -> str:
    m = w.metrics
    return (
        f"{w.name}: test error {100 * m['test_error']:.2f} % ({m['test_wrong']} of "
        f"{m['test_images']}), training error {100 * m['train_error']:.2f} % "
        f"({m['train_wrong']} of {m['train_images']}), {w.file or 'rebuilt from the seed'}"
    )
