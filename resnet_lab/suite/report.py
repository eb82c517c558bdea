"""The suite's bookkeeping: the wall-clock :class:`Budget`, the :class:`Report` rewritten
after every stage, and the Markdown summaries of both parts."""

from __future__ import annotations

import json
import os
import platform
import time
import zipfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from resnet_lab.io import atomic_path, atomic_write_text

SCHEMA = "resnet_lab.suite/1"


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
