"""The GPU suite: what one call of at most 10 minutes on one H100/H200 can measure.

Two parts, one device call each (README.md, "GPU suite", has the exact calls)::

    resnet-lab suite gpu --data .carry/cifar10-jpeg.tar.xz --out $OUT --store /tmp/store
    resnet-lab suite chapters --data .carry/cifar10-jpeg.tar.xz --wheels .carry/wheels --out $OUT
    resnet-lab suite gpu --dry-run --out /tmp/suite          # the same code, tiny, on a CPU

``gpu`` runs these stages inside a wall-clock budget (``--budget-s``, default 540 s),
checking the clock before each stage and each run and skipping (and recording) what no
longer fits:

``throughput``
    training images/s of ResNet-20, 56 and 110, bf16 autocast, channels-last, at batch
    128 and at a batch that fills the GPU (2048), with the engine's pieces: the dataset
    on the device (:class:`~resnet_lab.data.GpuLoader`), its optimizer (fused SGD) and
    autocast.
``compiled``
    the same under ``torch.compile``, in a child process that is killed at the stage's
    deadline (a compile cannot be interrupted otherwise); a compile error is recorded.
``target``
    ResNet-20 trained by the engine until the test accuracy reaches 91 %: a 30-epoch
    one-cycle run at batch 512 first, then, if it fell short, the longest one-cycle run
    the stage's time allows; reports the time to 91 % (the engine's wall time at the
    first evaluation at or above it).
``depth``
    plain and residual networks of depth 20, 32, 44, 56 and ResNet-110 (seed 0), the
    paper recipe at batch 128 shortened to the most epochs that fit in the time left.

Run records go to the results store (``--store``); ``--out`` receives
``gpu-summary.md``, ``gpu-summary.json``, ``gpu-records.zip`` (every record this call
wrote) and ``gpu-log.txt``, rewritten after every stage, so a call cut short still
returns what it measured. Few files on purpose: the device tool returns at most 8.

``chapters`` executes every chapter notebook at the standard tier with nbclient (a real
Jupyter kernel, as readers and the book build run them) and records each chapter's time
and first error in ``chapters-summary.md``/``.json``, the executed notebooks in
``chapters-executed.zip``. Where nbclient or ipykernel are missing it installs the
wheels given with ``--wheels`` (``tools/gpu_carry.py`` downloads them), else it runs
each chapter's code cells with plain Python (IPython magics skipped) and says how to
bring the wheels.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import math
import os
import platform
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from resnet_lab.io import atomic_path, atomic_write_text

__all__ = ["DRY_RUN", "GPU", "Sizes", "prepare_data", "run_chapters", "run_gpu"]

SCHEMA = "resnet_lab.suite/1"
DEFAULT_BUDGET_S = 540.0
GPU_STAGES = ("throughput", "compiled", "target", "depth")
# Each stage's share of the budget (the depth study also gets whatever the others left).
_STAGE_SHARE = {"throughput": 0.12, "compiled": 0.2, "target": 0.4}
_RESERVE_S = 5.0  # kept for the last summary


@dataclass(frozen=True)
class Sizes:
    """What the real suite and ``--dry-run`` differ in: sizes only, never code paths."""

    train_per_class: int | None = None  # None: the whole split
    test_per_class: int | None = None
    throughput_models: tuple[str, ...] = ("resnet20", "resnet56", "resnet110")
    batches: tuple[int, ...] = (128, 2048)
    rounds: int = 3
    warmup: int = 10  # untimed steps first (cuDNN autotuning, compilation)
    images_per_round: int = 16384  # a timed round is this many images, at least 4 steps
    compile_backend: str = "inductor"
    target: float = 0.91
    target_model: str = "resnet20"
    target_batch: int = 512
    # The fast recipe's lr 0.2 at batch 128, scaled by sqrt(512/128): linear scaling (0.8)
    # with Nesterov momentum risks the first epochs; the one-cycle warm-up covers the rest.
    target_lr: float = 0.4
    first_epochs: int = 30
    max_epochs: int = 200
    depth_models: tuple[str, ...] = (
        "plain20",
        "resnet20",
        "plain32",
        "resnet32",
        "plain44",
        "resnet44",
        "plain56",
        "resnet56",
        "resnet110",
    )
    depth_batch: int = 128
    max_depth_epochs: int = 164  # the paper's 64k iterations at batch 128
    run_overhead_s: float = 3.0  # per training run: model, loader, cuDNN autotuning
    min_stage_s: float = 15.0  # a stage with less time than this is skipped


GPU = Sizes()
DRY_RUN = Sizes(
    # The smallest CIFAR nets of both kinds (depth 8), a few images, one or two steps each.
    train_per_class=16,
    test_per_class=4,
    throughput_models=("resnet8",),
    batches=(4,),
    rounds=1,
    warmup=1,
    images_per_round=16,
    compile_backend="eager",
    target=0.0,
    target_model="resnet8",
    target_batch=32,
    target_lr=0.1,
    first_epochs=1,
    max_epochs=2,
    depth_models=("plain8", "resnet8"),
    depth_batch=32,
    max_depth_epochs=1,
    run_overhead_s=0.5,
    min_stage_s=0.0,
)


# ----------------------------------------------------------------------------- bookkeeping


class Budget:
    """Wall-clock seconds left of a fixed budget, counted from its creation."""

    def __init__(self, seconds: float):
        self.seconds = float(seconds)
        self.t0 = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def left(self) -> float:
        return self.seconds - self.elapsed()


class Report:
    """One call's summary (Markdown + JSON), its log and its records, rewritten atomically
    after every stage so that a call cut short still leaves what it measured."""

    def __init__(self, out: Path, part: str, budget: Budget, render: Callable[[dict], str]):
        out.mkdir(parents=True, exist_ok=True)
        self.out, self.part, self.budget, self.render = out, part, budget, render
        self.log_path = out / f"{part}-log.txt"
        self.records: list[Path] = []
        self.extra: dict[str, bytes] = {}  # files for the part's zip (executed notebooks)
        self.data: dict[str, Any] = {
            "schema": SCHEMA,
            "part": part,
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "budget_s": budget.seconds,
            "elapsed_s": 0.0,
            "environment": _environment(),
            "stages": {},
        }

    def log(self, message: str) -> None:
        line = f"[{self.budget.elapsed():6.1f} s] {message}"
        print(line, flush=True)
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def stage(self, name: str, entry: dict[str, Any]) -> None:
        self.data["stages"][name] = entry
        self.flush()

    def flush(self) -> None:
        self.data["elapsed_s"] = round(self.budget.elapsed(), 1)
        text = json.dumps(self.data, indent=1, default=str, allow_nan=False)
        atomic_write_text(self.out / f"{self.part}-summary.json", text + "\n")
        atomic_write_text(self.out / f"{self.part}-summary.md", self.render(self.data))
        if self.records or self.extra:
            name = "records" if self.part == "gpu" else "executed"
            with atomic_path(self.out / f"{self.part}-{name}.zip") as tmp:
                with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
                    for p in self.records:
                        zf.write(p, p.name)
                    for arcname, blob in self.extra.items():
                        zf.writestr(arcname, blob)


def _environment() -> dict[str, Any]:
    import torch

    from resnet_lab._version import __version__
    from resnet_lab.provenance import code_version

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "resnet_lab": __version__,
        "code_version": code_version(),
        "cpus": os.cpu_count(),
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        env.update(
            gpu=props.name,
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            capability=f"{props.major}.{props.minor}",
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
        )
    return env


def _skipped(reason: str) -> dict[str, Any]:
    return {"status": "skipped", "reason": reason, "seconds": 0.0}


def _tail(text: str, n: int = 400) -> str:
    text = text.strip()
    return text if len(text) <= n else "..." + text[-n:]


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    """Set environment variables for a block (the chapters' kernels inherit them)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _package_root() -> Path:
    """The folder holding the ``resnet_lab`` package (the checkout on a GPU machine)."""
    return Path(__file__).resolve().parent.parent


def _pythonpath(*first: Path) -> str:
    parts = [str(p) for p in first] + [str(_package_root())]
    if os.environ.get("PYTHONPATH"):
        parts.append(os.environ["PYTHONPATH"])
    return os.pathsep.join(parts)


# ----------------------------------------------------------------------------- data


def prepare_data(spec: str | os.PathLike | None, dry_run: bool) -> str:
    """What ``load_data`` is given: the spec as is, or a ``.tar.xz`` turned back into a zip.

    ``tools/gpu_carry.py`` packs the CIFAR-10 JPEG zip into one solid xz stream for the
    trip (18 MB instead of 62); here it becomes a stored zip of the same files in the same
    order (so the same pixels, the same variant name) in the cache folder.
    """
    if spec is None:
        return "synthetic" if dry_run else "auto"
    path = Path(spec).expanduser()
    if path.name.endswith((".tar.xz", ".txz")) and path.is_file():
        return str(_zip_from_tar(path))
    return os.fspath(spec)


def _zip_from_tar(archive: Path) -> Path:
    from resnet_lab.runtime import cache_dir

    stem = archive.name.removesuffix(".tar.xz").removesuffix(".txz")
    target = cache_dir() / "suite" / f"{stem}.zip"
    stamp = target.with_suffix(".source")
    key = f"{archive.resolve()}|{archive.stat().st_size}|{archive.stat().st_mtime_ns}"
    if target.is_file() and stamp.is_file() and stamp.read_text() == key:
        return target
    with atomic_path(target) as tmp, tarfile.open(archive, "r:*") as tf:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
            for member in tf:
                f = tf.extractfile(member) if member.isfile() else None
                if f is not None:
                    zf.writestr(member.name, f.read())
    atomic_write_text(stamp, key)
    return target


def _load(spec: str, sizes: Sizes):
    from resnet_lab.data import load_data

    return load_data(
        spec,
        train_per_class=sizes.train_per_class,
        test_per_class=sizes.test_per_class,
        progress=False,
    )


# ----------------------------------------------------------------------------- throughput


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

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        epoch = 0
        while True:
            loader.set_epoch(epoch)
            yield from loader
            epoch += 1

    scaler = engine.make_scaler(device, torch.bfloat16)  # bf16: a pass-through

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        engine.train_step(fwd, opt, scaler, x, y, loss_fn, torch.bfloat16)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    feed = batches()
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


# ----------------------------------------------------------------------------- training


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


# ----------------------------------------------------------------------------- part 1


@dataclass
class _Context:
    sizes: Sizes
    report: Report
    device: Any
    data: Any
    data_spec: str
    store: Path
    throughput: list[dict[str, Any]]


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
    store = Path(store) if store is not None else default_store()
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


def _fmt_ips(r: dict | None) -> str:
    if r is None:
        return "-"
    if r.get("images_per_sec"):
        return f"{r['images_per_sec']:,.0f}"
    return "error" if r.get("error") else "skipped"


def _pct(err: float | None) -> str:
    return "-" if err is None else f"{100 * (1 - err):.2f} %"


def _render_gpu(d: dict[str, Any]) -> str:
    env, st = d["environment"], d["stages"]
    data = d.get("data", {})
    lines = [
        f"# GPU suite{' (dry run, tiny sizes)' if d.get('dry_run') else ''}",
        "",
        f"{env.get('gpu', d.get('device', 'cpu'))}, torch {env['torch']}, CUDA "
        f"{env.get('cuda', '-')}, resnet_lab {env['code_version']}, {d['date']}; "
        f"data {data.get('variant', '?')} ({data.get('train_size', '?')} train / "
        f"{data.get('test_size', '?')} test); {d['elapsed_s']:.0f} s of a {d['budget_s']:.0f} s budget.",
        "",
        "| stage | status | seconds | note |",
        "| --- | --- | --- | --- |",
    ]
    for name, e in st.items():
        note = e.get("reason") or e.get("error") or ""
        lines.append(f"| {name} | {e['status']} | {e.get('seconds', 0):.0f} | {note} |")
    points = st.get("throughput", {}).get("results", []) + st.get("compiled", {}).get("results", [])
    if points:
        lines += [
            "",
            "## Training throughput (images/s, bf16 autocast, channels-last)",
            "",
            "| model | batch | eager | torch.compile | speed-up | compile + warm-up s |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        keys = sorted(
            {(p["model"], p["batch_size"]) for p in points},
            key=lambda k: (int("".join(c for c in k[0] if c.isdigit()) or 0), k[1]),
        )
        for m, b in keys:
            e = next(
                (
                    p
                    for p in points
                    if (p["model"], p["batch_size"]) == (m, b) and not p["compiled"]
                ),
                None,
            )
            c = next(
                (p for p in points if (p["model"], p["batch_size"]) == (m, b) and p["compiled"]),
                None,
            )
            both = e and c and e.get("images_per_sec") and c.get("images_per_sec")
            speed = f"{c['images_per_sec'] / e['images_per_sec']:.2f}x" if both else "-"  # type: ignore[index]
            warm = c.get("warmup_s", "-") if c else "-"
            lines.append(f"| {m} | {b} | {_fmt_ips(e)} | {_fmt_ips(c)} | {speed} | {warm} |")
        errors = [p for p in points if p.get("error")]
        lines += [
            f"- {p['model']} batch {p['batch_size']}{' compiled' if p['compiled'] else ''}: "
            f"{p['error']}"
            for p in errors
        ]
    tg = st.get("target", {})
    if tg.get("runs"):
        target = tg["target_accuracy"]
        t = tg.get("time_to_target_s")
        lines += [
            "",
            f"## ResNet-20 to {target:.0%} test accuracy",
            "",
            f"Time to {target:.0%}: **{f'{t:.0f} s' if t is not None else 'not reached'}** "
            "(the engine's wall time, evaluations included, at the first evaluation at "
            "or above the target).",
            "",
            "| epochs | batch | lr | status | best accuracy | final accuracy | time to target | wall s | record |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in tg["runs"]:
            if r.get("error"):
                lines.append(f"| {r['epochs']} | | | error: {r['error']} | | | | | |")
                continue
            tt = r.get("time_to_target_s")
            to_target = "-" if tt is None else f"{tt:.0f} s (epoch {r['epochs_to_target']})"
            lines.append(
                f"| {r['planned_epochs']} | {r['batch_size']} | {r['lr']} | {r['status']} | "
                f"{_pct(r['best_test_error'])} | {_pct(r['final_test_error'])} | "
                f"{to_target} | "
                f"{r['wall_s']:.0f} | {r['record'] or '-'} |"
            )
        lines += [f"- {n}" for n in tg.get("notes", [])]
    dp = st.get("depth", {})
    if dp.get("runs"):
        lines += [
            "",
            f"## Depth study (paper recipe, {dp['epochs']} epochs, seed 0)",
            "",
            "| model | status | test error | train error | wall s | record |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for r in dp["runs"]:
            if "status" not in r:
                lines.append(f"| {r['model']} | {r.get('error') or r.get('skipped')} | | | | |")
                continue
            te, tr = r["final_test_error"], r["final_train_error"]
            lines.append(
                f"| {r['model']} | {r['status']} | {'-' if te is None else f'{te:.4f}'} | "
                f"{'-' if tr is None else f'{tr:.4f}'} | {r['wall_s']:.0f} | {r['record'] or '-'} |"
            )
    lines += ["", "Run records: `gpu-records.zip` (unpack into a results store folder).", ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- part 2


_JUPYTER = ("nbclient", "nbformat", "ipykernel", "IPython")


def _missing(modules: Sequence[str]) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def _install_wheels(wheels: Path, report: Report) -> Path | None:
    """Install carried wheels into a folder of their own (never the machine's Python);
    returns that folder, or None if pip failed."""
    files = sorted(str(w) for w in wheels.glob("*.whl"))
    if not files:
        report.log(f"no wheels in {wheels}")
        return None
    site = Path(tempfile.gettempdir()) / "resnet-lab-suite-site"
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-index",
        "--no-deps",
        "--no-compile",
        "--no-cache-dir",
        "--upgrade",
        "--target",
        str(site),
        *files,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        report.log(f"installing the wheels failed: {_tail(done.stderr)}")
        return None
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    report.log(f"installed {len(files)} wheels from {wheels} into {site}")
    return site


def _pick_executor(executor: str, wheels: Path | None, report: Report) -> tuple[str, Path | None]:
    """nbclient where it and a kernel can be imported (installing carried wheels if need be),
    else plain Python; returns (executor, folder of installed wheels)."""
    site = None
    missing = _missing(_JUPYTER)
    if missing and executor != "exec" and wheels is not None:
        site = _install_wheels(Path(wheels), report)
        missing = _missing(_JUPYTER)
    if not missing and executor != "exec":
        return "nbclient", site
    if executor == "nbclient":
        raise ValueError(f"{', '.join(missing)} not installed; {_WHEELS_HINT}")
    if missing:
        report.log(
            f"{', '.join(missing)} not installed: running the chapters' code cells with "
            f"plain Python instead ({_WHEELS_HINT})"
        )
    return "exec", site


_WHEELS_HINT = (
    "bring them: run `python tools/gpu_carry.py` where pip can download (it puts the wheels "
    "in .carry/wheels), carry .carry and add --wheels .carry/wheels"
)


def _chapter_plan(chapters: Sequence[str] | None) -> list[Path]:
    book = _package_root() / "book"
    found = sorted(book.glob("*.ipynb"))
    if not found:
        raise ValueError(f"no chapter notebooks in {book}; run `suite chapters` from a checkout")
    if chapters:
        chosen = [p for p in found if any(p.name.startswith(c) for c in chapters)]
        if not chosen:
            raise ValueError(
                f"no chapter starts with {' or '.join(chapters)}; chapters: "
                f"{', '.join(p.stem for p in found)}"
            )
        return chosen
    return found


def _code_cells(path: Path) -> int:
    """Code cells of a notebook (a notebook that is not valid JSON fails the plan here)."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{path.name} is not a readable notebook ({exc})") from exc
    return sum(c.get("cell_type") == "code" for c in nb.get("cells", []))


def _dry_run_notebook(folder: Path) -> Path:
    """A two-cell notebook that goes through the chapters' own first steps."""
    cells = [
        {"cell_type": "markdown", "id": "title", "metadata": {}, "source": "# Dry run"},
        {
            "cell_type": "code",
            "id": "setup",
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": 'import sys\nif "google.colab" in sys.modules:\n    %pip install -q resnet-lab\n'
            "import resnet_lab as rl\nenv = rl.setup()\n"
            'assert env.tier == "standard", env.tier',
        },
        {
            "cell_type": "code",
            "id": "data",
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": "from resnet_lab.data import load_data\n"
            'print(len(load_data("synthetic", train_per_class=2, test_per_class=1).train_y))',
        },
    ]
    nb = {
        "cells": cells,
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    }
    path = folder / "00_dry_run.ipynb"
    path.write_text(json.dumps(nb))
    return path


def _execute_nbclient(path: Path, deadline: float) -> tuple[dict[str, Any], bytes | None]:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        # Each cell may use what is left of the budget, so the whole chapter stays inside it.
        timeout_func=lambda cell: max(1, int(deadline - time.monotonic())),  # noqa: ARG005
        store_widget_state=True,
        startup_timeout=120,
    )
    result: dict[str, Any] = {"status": "ok"}
    try:
        client.execute()
    except CellTimeoutError:
        result = {"status": "timeout", "error": "a cell ran past the budget"}
    except CellExecutionError as exc:
        result = {"status": "error", "ename": exc.ename, "evalue": _tail(exc.evalue, 300)}
    except DeadKernelError as exc:
        result = {"status": "error", "ename": "DeadKernelError", "evalue": _tail(str(exc), 300)}
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    ran = [i for i in code if nb.cells[i].get("execution_count")]
    result["code_cells"], result["cells_run"] = len(code), len(ran)
    if result["status"] != "ok" and ran:
        result["cell"] = ran[-1]
    return result, nbformat.writes(nb).encode()


def _execute_plain(path: Path, deadline: float, log: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="resnet-lab-suite-") as tmp:
        out = Path(tmp) / "result.json"
        with open(log, "a", encoding="utf-8") as f:
            proc = subprocess.Popen(
                [sys.executable, "-m", "resnet_lab.suite", "exec-notebook", str(path), str(out)],
                cwd=path.parent,
                stdout=f,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "PYTHONPATH": _pythonpath(), "MPLBACKEND": "Agg"},
            )
            try:
                proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return {"status": "timeout", "error": "ran past the budget"}
        if not out.exists():
            return {"status": "error", "ename": "crash", "evalue": f"exit status {proc.returncode}"}
        return json.loads(out.read_text())


def _plain_source(source: str) -> str:
    """A cell's code for plain Python: IPython magic and shell lines become ``pass``."""
    if source.lstrip().startswith("%%"):
        return "pass  # a cell magic, skipped"
    lines = []
    for line in source.splitlines():
        body = line.lstrip()
        if body.startswith(("%", "!")):
            line = line[: len(line) - len(body)] + "pass  # IPython magic skipped"
        lines.append(line)
    return "\n".join(lines)


def _exec_notebook_worker(path: str, result_path: str) -> int:
    """Child process of the plain-Python executor: every code cell in one namespace."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    namespace: dict[str, Any] = {"__name__": "__main__"}
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    result: dict[str, Any] = {"status": "ok", "code_cells": len(code), "cells_run": 0}
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        try:
            exec(compile(_plain_source(source), f"{Path(path).name}:cell{i}", "exec"), namespace)  # noqa: S102
        except BaseException as exc:  # noqa: BLE001 - recorded for the summary
            traceback.print_exc()
            result.update(
                status="error", cell=i, ename=type(exc).__name__, evalue=_tail(str(exc), 300)
            )
            break
        result["cells_run"] += 1
    atomic_write_text(result_path, json.dumps(result))
    return 0


def run_chapters(
    out: Path,
    data: str | os.PathLike | None = None,
    wheels: Path | None = None,
    budget_s: float = DEFAULT_BUDGET_S,
    dry_run: bool = False,
    chapters: Sequence[str] | None = None,
    executor: str = "auto",
) -> int:
    """Part 2: every chapter at the standard tier; returns 0, or 1 if a chapter failed."""
    if executor not in ("auto", "nbclient", "exec"):
        raise ValueError(f"executor {executor!r} unknown; choose auto, nbclient or exec")
    budget = Budget(budget_s)
    report = Report(Path(out), "chapters", budget, _render_chapters)
    plan = _chapter_plan(chapters)
    kind, site = _pick_executor(executor, wheels, report)
    if _missing(["ipywidgets"]):
        report.log(
            f"ipywidgets is not installed, so chapters with live widgets will fail; {_WHEELS_HINT}"
        )
    env = {
        "RESNET_LAB_TIER": "standard",
        "PYTHONHASHSEED": "0",
        "PYTHONPATH": _pythonpath(*([site] if site else [])),
    }
    spec = prepare_data(data, dry_run=False) if data is not None else None
    if spec is not None:
        env["RESNET_LAB_DATA"] = str(Path(spec).resolve())
    report.data.update(
        dry_run=dry_run,
        executor=kind,
        tier="standard",
        data=Path(spec).name if spec else "auto (RESNET_LAB_DATA or download)",
        plan={p.name: _code_cells(p) for p in plan},
    )
    failed = False
    with tempfile.TemporaryDirectory(prefix="resnet-lab-suite-") as tmp, _environ(**env):
        to_run = [_dry_run_notebook(Path(tmp))] if dry_run else plan
        report.log(
            f"{len(to_run)} notebook(s) with {kind}, tier standard, budget {budget.seconds:.0f} s"
        )
        for path in to_run:
            left = budget.left() - _RESERVE_S
            if left < 10:
                report.stage(path.stem, _skipped(f"{max(0.0, left):.0f} s of the budget were left"))
                continue
            t0 = time.monotonic()
            deadline = t0 + left
            try:
                if kind == "nbclient":
                    result, executed = _execute_nbclient(path, deadline)
                    report.extra[path.name] = executed
                else:
                    result = _execute_plain(path, deadline, report.log_path)
            except Exception as exc:  # noqa: BLE001 - one chapter's failure costs only that one
                result = {"status": "error", "ename": type(exc).__name__, "evalue": _tail(str(exc))}
            result["seconds"] = round(time.monotonic() - t0, 1)
            failed = failed or result["status"] != "ok"
            report.log(
                f"{path.name}: {result['status']} in {result['seconds']} s"
                + (
                    f" ({result.get('ename')}: {result.get('evalue')})"
                    if result["status"] == "error"
                    else ""
                )
            )
            report.stage(path.stem, result)
    report.flush()
    return 1 if failed else 0


def _render_chapters(d: dict[str, Any]) -> str:
    env = d["environment"]
    lines = [
        f"# Chapters at the standard tier{' (dry run)' if d.get('dry_run') else ''}",
        "",
        f"{env.get('gpu', 'cpu')}, torch {env['torch']}, resnet_lab {env['code_version']}, "
        f"{d['date']}; executor {d.get('executor', '?')}; data {d.get('data', '?')}; "
        f"{d['elapsed_s']:.0f} s of a {d['budget_s']:.0f} s budget.",
        "",
        "| chapter | status | seconds | cells run | error |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, r in d["stages"].items():
        err = (
            f"cell {r.get('cell', '?')}: {r.get('ename')}: {r.get('evalue')}"
            if r["status"] == "error"
            else r.get("reason") or r.get("error") or ""
        )
        err = err.replace("|", "\\|").replace("\n", " ")
        cells = f"{r.get('cells_run', '-')}/{r.get('code_cells', '-')}"
        lines.append(f"| {name} | {r['status']} | {r.get('seconds', 0):.0f} | {cells} | {err} |")
    lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- child processes


def _worker_main(argv: Sequence[str]) -> int:
    if len(argv) == 2 and argv[0] == "compiled":
        return _compiled_worker(argv[1])
    if len(argv) == 3 and argv[0] == "exec-notebook":
        return _exec_notebook_worker(argv[1], argv[2])
    print(
        "usage: python -m resnet_lab.suite compiled JOB.json | exec-notebook NB RESULT.json "
        "(internal; use `resnet-lab suite`)",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
