"""Part 1, ``suite gpu``: the stages in a wall-clock budget; training to the target
accuracy and the depth study plan their length from the measured throughput."""

from __future__ import annotations

import math
import os
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from resnet_lab.suite.common import (
    _RESERVE_S,
    _STAGE_SHARE,
    DEFAULT_BUDGET_S,
    DRY_RUN,
    GPU,
    GPU_STAGES,
    _Context,
    _load,
    prepare_data,
)
from resnet_lab.suite.report import Budget, Report, _pct, _render_gpu, _skipped, _tail
from resnet_lab.suite.throughput import _compiled_stage, _throughput_stage


def _seconds_per_image(points: Sequence[dict], depth: int, batch: int) -> float | None:
    """Training seconds per image of a network of ``depth`` at ``batch``, from measured
    eager points: the measured batch nearest in ratio (the smaller on a tie, the slower),
    then a straight line in depth through the measured networks."""
    pts = [p for p in points if not p.get("compiled") and p.get("images_per_sec")]
    if not pts:
        return None
    near = min({p["batch_size"] for p in pts}, key=lambda b: (abs(math.log(b / batch)), b))
    line = sorted((p["depth"], 1.0 / p["images_per_sec"]) for p in pts if p["batch_size"] == near)
    if len(line) == 1:
        return line[0][1] * depth / line[0][0]
    n = len(line)
    mx, my = sum(d for d, _ in line) / n, sum(s for _, s in line) / n
    k = sum((d - mx) * (s - my) for d, s in line) / sum((d - mx) ** 2 for d, _ in line)
    return max(my + k * (depth - mx), min(s for _, s in line) * 0.5)


def _epoch_seconds(ctx: _Context, model_name: str, batch: int) -> float | None:
    """Estimated seconds of one training epoch plus its test evaluation."""
    import torch

    from resnet_lab.engine import model_depth
    from resnet_lab.models import build

    with torch.device("meta"):  # the depth only: no memory, no time
        depth = model_depth(build(model_name))
    spi = _seconds_per_image(ctx.throughput, depth, batch)
    if spi is None:
        return None
    # The engine's step does a little more than the bare step (lr, sums, NaN checks);
    # a test pass costs about a third of a training pass per image.
    return spi * (1.25 * len(ctx.data.train_y) + len(ctx.data.test_y) / 3)


def _deadline_callback(deadline: float) -> Callable:
    from resnet_lab.engine import StopTraining

    def stop_at_deadline(event: str, run, record) -> None:  # noqa: ARG001
        if event != "end" and time.monotonic() > deadline:
            raise StopTraining

    return stop_at_deadline


def _train(ctx: _Context, model_name: str, config, deadline: float, tags: list[str]):
    """One engine run into the store; returns (run, None) or (None, error message)."""
    import torch

    from resnet_lab import engine, results
    from resnet_lab.models import build

    torch.manual_seed(config.seed)
    model = build(model_name, num_classes=ctx.data.num_classes)
    try:
        run = engine.train(
            model,
            ctx.data,
            config,
            device=ctx.device,
            progress=False,
            name=model_name,
            tags=["gpu-suite", *tags],
            callbacks=[_deadline_callback(deadline)],
        )
        if ctx.store is not None:
            results.save_finished(run, ctx.store)
    except (engine.TrainingDiverged, engine.OutOfMemory) as exc:
        return None, str(exc)
    finally:
        if ctx.device.type == "cuda":
            torch.cuda.empty_cache()
    if run.path is not None:
        ctx.report.records.append(run.path)
    return run, None


def _run_summary(run, target: float | None = None) -> dict[str, Any]:
    tested = [h for h in run.history if h.get("test_error") is not None]
    out: dict[str, Any] = {
        "model": run.model_name,
        "status": run.status,
        "epochs": run.epochs,
        "planned_epochs": run.config.epochs,
        "batch_size": run.config.batch_size,
        "lr": run.config.lr,
        "schedule": run.config.schedule,
        "final_test_error": run.final["test_error"],
        "final_train_error": run.final["train_error"],
        "best_test_error": min((h["test_error"] for h in tested), default=None),
        "wall_s": round(run.wall_time, 1),
        "median_epoch_images_per_sec": (
            sorted(h["images_per_sec"] for h in run.history)[len(run.history) // 2]
            if run.history
            else None
        ),
        "record": run.path.name if run.path is not None else None,
    }
    if target is not None:
        hit = next((h for h in tested if h["test_error"] <= 1 - target + 1e-12), None)
        out["target_accuracy"] = target
        out["time_to_target_s"] = round(hit["wall_time"], 1) if hit else None
        out["epochs_to_target"] = hit["epoch"] if hit else None
    return out


def _target_stage(ctx: _Context, seconds: float) -> dict[str, Any]:
    """ResNet-20 to the target accuracy: the first schedule, then the longest that fits."""
    from resnet_lab import engine

    s = ctx.sizes
    deadline = time.monotonic() + seconds
    epoch_s = _epoch_seconds(ctx, s.target_model, s.target_batch)
    epochs, runs, notes = s.first_epochs, [], []
    while True:
        left = deadline - time.monotonic() - s.run_overhead_s
        if epoch_s is not None and epochs * epoch_s > left:
            fit = int(left / epoch_s)
            if fit < max(1, s.first_epochs // 2) or (runs and fit <= runs[-1]["epochs"]):
                notes.append(
                    f"a {epochs}-epoch run needs about {epochs * epoch_s:.0f} s, "
                    f"{max(0.0, left):.0f} s were left"
                )
                break
            epochs = fit
        config = engine.recipe(
            "fast",
            epochs=epochs,
            batch_size=s.target_batch,
            lr=s.target_lr,
            log_every_steps=0,
        )
        run, error = _train(ctx, s.target_model, config, deadline, ["time-to-target"])
        if run is None:
            runs.append({"model": s.target_model, "epochs": epochs, "error": error})
            break
        summary = _run_summary(run, s.target)
        runs.append(summary)
        ctx.report.stage("target", {"status": "running", "runs": runs, "target_accuracy": s.target})
        tt = summary["time_to_target_s"]
        ctx.report.log(
            f"{s.target_model} {epochs} epochs, batch {s.target_batch}: {run.status}, "
            f"best test accuracy {_pct(summary['best_test_error'])}, time to "
            f"{s.target:.0%}: {'not reached' if tt is None else f'{tt} s'}"
        )
        if summary["time_to_target_s"] is not None or epochs >= s.max_epochs:
            break
        if run.status != "completed":
            break
        # Measured, not estimated, from here on; a longer one-cycle run is the next try.
        epoch_s = run.wall_time / max(1, run.epochs)
        epochs = min(s.max_epochs, int((deadline - time.monotonic() - s.run_overhead_s) / epoch_s))
        if epochs <= runs[-1]["epochs"]:
            notes.append(f"no longer schedule fits in the {deadline - time.monotonic():.0f} s left")
            break
    reached = [r for r in runs if r.get("time_to_target_s") is not None]
    out = {
        "status": "done" if runs else "skipped",
        "target_accuracy": s.target,
        "runs": runs,
        "time_to_target_s": reached[0]["time_to_target_s"] if reached else None,
        "notes": notes,
    }
    if not runs:
        out["reason"] = "; ".join(notes)
    return out


def _depth_stage(ctx: _Context, seconds: float) -> dict[str, Any]:
    """The depth study at the longest shortened paper schedule that fits in ``seconds``."""
    from resnet_lab import engine

    s = ctx.sizes
    deadline = time.monotonic() + seconds
    per_epoch = [_epoch_seconds(ctx, m, s.depth_batch) for m in s.depth_models]
    if any(t is None for t in per_epoch):
        epochs = 1  # nothing measured to plan with: the shortest study
    else:
        usable = seconds * 0.85 - s.run_overhead_s * len(s.depth_models)
        epochs = min(s.max_depth_epochs, int(usable / sum(per_epoch)))  # type: ignore[arg-type]
    if epochs < 1:
        return _skipped(
            f"one epoch of all {len(s.depth_models)} networks needs about "
            f"{sum(per_epoch):.0f} s, {seconds:.0f} s were left"
        )  # type: ignore[arg-type]
    ctx.report.log(f"depth study: {len(s.depth_models)} networks x {epochs} epochs")
    runs = []
    for model_name in s.depth_models:
        if time.monotonic() > deadline - s.run_overhead_s:
            runs.append({"model": model_name, "skipped": "the stage's time ran out"})
            continue
        # Short studies also evaluate four times an epoch, for test curves against iterations.
        quarter = max(1, len(ctx.data.train_y) // s.depth_batch // 4)
        config = engine.recipe(
            "paper",
            epochs=epochs,
            batch_size=s.depth_batch,
            log_every_steps=0,
            eval_every_steps=0 if epochs >= 8 else quarter,
        )
        run, error = _train(ctx, model_name, config, deadline, ["depth-study"])
        if run is None:
            runs.append({"model": model_name, "epochs": epochs, "error": error})
            continue
        summary = _run_summary(run)
        runs.append(summary)
        te = summary["final_test_error"]
        ctx.report.log(
            f"{model_name}: test error {te:.4f}, {summary['wall_s']} s"
            if te is not None
            else f"{model_name}: {run.status}"
        )
        ctx.report.stage("depth", {"status": "running", "epochs": epochs, "runs": runs})
    return {"status": "done", "epochs": epochs, "recipe": "paper", "runs": runs}


def run_gpu(
    out: Path,
    data: str | os.PathLike | None = None,
    store: Path | None = None,
    budget_s: float = DEFAULT_BUDGET_S,
    dry_run: bool = False,
    device: str | None = None,
    stages: Sequence[str] = GPU_STAGES,
) -> int:
    """Part 1 of the suite; returns 0, or 1 if a stage failed. See the module docstring."""
    import torch

    from resnet_lab.results import default_store
    from resnet_lab.runtime import pick_device

    unknown = sorted(set(stages) - set(GPU_STAGES))
    if unknown:
        raise ValueError(
            f"unknown stage(s) {', '.join(unknown)}; choose from {', '.join(GPU_STAGES)}"
        )
    budget = Budget(budget_s)
    dev = pick_device(device)
    if dev.type != "cuda" and not dry_run:
        raise ValueError(
            "`suite gpu` measures a CUDA GPU and sees none here; add --dry-run "
            "to check the suite on this machine at tiny sizes"
        )
    sizes = DRY_RUN if dry_run else GPU
    report = Report(Path(out), "gpu", budget, _render_gpu)
    report.data.update(dry_run=dry_run, device=str(dev), sizes=asdict(sizes))
    if store is None:  # a dry run's tiny synthetic records never go into the real store
        store = Path(out) / "store" if dry_run else default_store()
    store = Path(store)
    t0 = time.monotonic()
    spec = prepare_data(data, dry_run)
    ds = _load(spec, sizes)
    if ds.variant == "synthetic" and not dry_run:
        raise ValueError(
            "`suite gpu` needs CIFAR-10 and found none; give --data (the JPEG zip, "
            "or the .tar.xz that tools/gpu_carry.py makes)"
        )
    report.data["data"] = ds.info()
    report.stage("setup", {"status": "done", "seconds": round(time.monotonic() - t0, 1)})
    report.log(
        f"device {dev} ({report.data['environment'].get('gpu', 'cpu')}), torch "
        f"{torch.__version__}, data {ds!r}, budget {budget.seconds:.0f} s"
    )
    ctx = _Context(sizes, report, dev, ds, spec, store, [])
    runners = {
        "throughput": _throughput_stage,
        "compiled": _compiled_stage,
        "target": _target_stage,
        "depth": _depth_stage,
    }
    failed = False
    for name in GPU_STAGES:
        if name not in stages:
            report.stage(name, _skipped("not asked for (--stages)"))
            continue
        left = budget.left() - _RESERVE_S
        share = _STAGE_SHARE.get(name)
        seconds = left if share is None else min(left, share * budget.seconds)
        if seconds < max(1.0, sizes.min_stage_s):
            report.log(f"{name}: skipped, {max(0.0, left):.0f} s left")
            report.stage(name, _skipped(f"{max(0.0, left):.0f} s of the budget were left"))
            continue
        report.log(f"{name}: up to {seconds:.0f} s")
        t_stage = time.monotonic()
        try:
            entry = runners[name](ctx, seconds)
        except Exception as exc:  # noqa: BLE001 - one stage's failure costs only that stage
            failed = True
            report.log(f"{name} failed:\n{traceback.format_exc()}")
            entry = {"status": "failed", "error": f"{type(exc).__name__}: {_tail(str(exc))}"}
        entry["seconds"] = round(time.monotonic() - t_stage, 1)
        failed = failed or entry["status"] == "failed"
        report.stage(name, entry)
    report.log(
        f"done in {budget.elapsed():.0f} s of {budget.seconds:.0f}; summary in "
        f"{report.out / 'gpu-summary.md'}"
    )
    return 1 if failed else 0
