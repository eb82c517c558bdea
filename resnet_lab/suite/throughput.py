"""The GPU part's throughput stages: training images/s of the engine's step, eager, and
compiled in a child process killed at its deadline."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from resnet_lab.suite.common import Sizes, _Context, _load, _pythonpath
from resnet_lab.suite.report import _tail


def time_training_steps(
    model_name: str, batch_size: int, data, device, sizes: Sizes, compiled: bool = False
) -> dict[str, Any]:
    """Training images/s of one model: bf16 autocast, channels-last, data on the device.

    The step is the engine's (its optimizer, loader and autocast; loss in fp32); warm-up
    steps, which include any compilation, are timed apart as ``warmup_s``.
    """
    import torch
    from torch import nn

    from resnet_lab import engine
    from resnet_lab.data import GpuLoader
    from resnet_lab.models import build

    torch.manual_seed(0)
    model = build(model_name, num_classes=data.num_classes).to(device)
    model = model.to(memory_format=torch.channels_last)
    config = engine.recipe("fast", batch_size=batch_size, amp="bf16")
    opt = engine.make_optimizer(model, config, config.lr)
    loader = GpuLoader(
        data.train_x,
        data.train_y,
        batch_size,
        True,
        data.mean,
        data.std,
        device,
        channels_last=True,
        drop_last=True,
    )
    fwd = torch.compile(model, backend=sizes.compile_backend, dynamic=False) if compiled else model
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)

    scaler = engine.make_scaler(device, torch.bfloat16)  # bf16: a pass-through

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        engine.train_step(fwd, opt, scaler, x, y, loss_fn, torch.bfloat16)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    feed = loader.forever()
    steps = max(4, sizes.images_per_round // batch_size)
    with engine.kernel_selection(device):  # cuDNN autotuning on, as in engine.train
        model.train()
        t0 = time.perf_counter()
        for _ in range(sizes.warmup):
            step(*next(feed))
        sync()
        warmup_s = time.perf_counter() - t0
        rounds = []
        for _ in range(sizes.rounds):
            t0 = time.perf_counter()
            for _ in range(steps):
                step(*next(feed))
            sync()
            rounds.append(steps * batch_size / (time.perf_counter() - t0))
    return {
        "model": model_name,
        "depth": engine.model_depth(model),
        "batch_size": batch_size,
        "compiled": compiled,
        "images_per_sec": sorted(rounds)[len(rounds) // 2],
        "rounds_images_per_sec": [round(r, 1) for r in rounds],
        "steps_per_round": steps,
        "warmup_s": round(warmup_s, 2),
    }


def _measure(model_name: str, batch: int, data, device, sizes: Sizes, compiled: bool) -> dict:
    """One throughput point; an error (out of memory, a failed compile) is recorded."""
    import torch

    try:
        return time_training_steps(model_name, batch, data, device, sizes, compiled)
    except Exception as exc:  # noqa: BLE001 - recorded, the suite goes on
        return {
            "model": model_name,
            "batch_size": batch,
            "compiled": compiled,
            "error": f"{type(exc).__name__}: {_tail(str(exc), 300)}",
        }
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()


def _throughput_stage(ctx: _Context, seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    results: list[dict[str, Any]] = []
    for model_name in ctx.sizes.throughput_models:
        for batch in ctx.sizes.batches:
            if time.monotonic() > deadline:
                results.append(
                    {
                        "model": model_name,
                        "batch_size": batch,
                        "compiled": False,
                        "skipped": "the stage's time ran out",
                    }
                )
                continue
            r = _measure(model_name, batch, ctx.data, ctx.device, ctx.sizes, compiled=False)
            ctx.report.log(_throughput_line(r))
            results.append(r)
    ctx.throughput = [r for r in results if r.get("images_per_sec")]
    return {"status": "done", "results": results}


def _throughput_line(r: dict[str, Any]) -> str:
    what = f"{r['model']} batch {r['batch_size']}{' compiled' if r['compiled'] else ''}"
    if "images_per_sec" in r:
        return f"{what}: {r['images_per_sec']:.0f} img/s (warm-up {r['warmup_s']} s)"
    return f"{what}: {r.get('error') or r.get('skipped')}"


def _compiled_stage(ctx: _Context, seconds: float) -> dict[str, Any]:
    """The compiled points in a child process, killed at the deadline (with its compile
    workers: it leads its own process group)."""
    configs = [[m, b] for m in ctx.sizes.throughput_models for b in ctx.sizes.batches]
    with tempfile.TemporaryDirectory(prefix="resnet-lab-suite-") as tmp:
        lines = Path(tmp) / "compiled.jsonl"
        job = {
            "data": ctx.data_spec,
            "sizes": asdict(ctx.sizes),
            "device": str(ctx.device),
            "configs": configs,
            "out": str(lines),
            "log": str(ctx.report.log_path),
            "t0": ctx.report.budget.t0,
        }
        spec = Path(tmp) / "job.json"
        spec.write_text(json.dumps(job))
        proc = subprocess.Popen(
            [sys.executable, "-m", "resnet_lab.suite", "compiled", str(spec)],
            env={**os.environ, "PYTHONPATH": _pythonpath()},
            start_new_session=True,
        )
        status = "done"
        try:
            code = proc.wait(timeout=max(1.0, seconds))
            if code != 0:
                status = "failed"
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            status = "partial"
        done = [json.loads(s) for s in lines.read_text().splitlines()] if lines.exists() else []
    measured = {(r["model"], r["batch_size"]) for r in done}
    for m, b in configs:
        if (m, b) not in measured:
            why = "the stage's time ran out" if status == "partial" else "the worker failed"
            done.append({"model": m, "batch_size": b, "compiled": True, "skipped": why})
    out: dict[str, Any] = {"status": status, "results": done}
    if status == "partial":
        out["reason"] = f"stopped at the stage's deadline ({seconds:.0f} s)"
    return out


def _compiled_worker(job_path: str) -> int:
    """Child process of the compiled stage: one JSON line per measured point."""
    from resnet_lab.runtime import pick_device

    job = json.loads(Path(job_path).read_text())
    sizes = Sizes(**{k: tuple(v) if isinstance(v, list) else v for k, v in job["sizes"].items()})
    device = pick_device(job["device"])
    data = _load(job["data"], sizes)
    for model_name, batch in job["configs"]:
        r = _measure(model_name, batch, data, device, sizes, compiled=True)
        with open(job["log"], "a", encoding="utf-8") as f:
            line = f"[{time.monotonic() - job['t0']:6.1f} s] {_throughput_line(r)}"
            print(line, flush=True)
            f.write(line + "\n")
        with open(job["out"], "a", encoding="utf-8") as f:
            f.write(json.dumps(r) + "\n")
    return 0
