"""The GPU suite at tiny sizes on the CPU (--dry-run): summaries, records, budget, chapters."""

from __future__ import annotations

import importlib.util
import json
import time
import zipfile
from pathlib import Path

import pytest

from resnet_lab import cli, results, suite
from resnet_lab.suite import chapters, gpu, throughput
from resnet_lab.suite.common import _Context

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    # Never touch the user's cache or the shared data.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("RESNET_LAB_DATA", raising=False)


def _summary(out: Path, part: str) -> dict:
    data = json.loads((out / f"{part}-summary.json").read_text())
    assert data["schema"] == suite.SCHEMA and data["part"] == part
    assert (out / f"{part}-summary.md").read_text().startswith("# ")
    return data


@pytest.mark.slow
def test_gpu_dry_run_writes_summary_and_valid_records(tmp_path):
    out, store = tmp_path / "out", tmp_path / "store"
    argv = [
        "suite",
        "gpu",
        "--dry-run",
        "--out",
        str(out),
        "--store",
        str(store),
        "--budget-s",
        "600",
    ]
    assert cli.main(argv) == 0
    data = _summary(out, "gpu")
    stages = data["stages"]
    assert [s for s in stages if s != "setup"] == list(suite.GPU_STAGES)
    assert {stages[s]["status"] for s in suite.GPU_STAGES} == {"done"}, stages
    eager = stages["throughput"]["results"]
    compiled = stages["compiled"]["results"]
    assert all(r["images_per_sec"] > 0 and not r["compiled"] for r in eager)
    assert all(r["images_per_sec"] > 0 and r["compiled"] for r in compiled)
    assert stages["target"]["time_to_target_s"] is not None  # the dry run's target is 0 %
    depth = stages["depth"]["runs"]
    assert [r["model"] for r in depth] == list(suite.DRY_RUN.depth_models)
    # Every run is a valid record in the store, and the zip in --out holds exactly them.
    stored = results.validate_store(store)
    assert len(stored) == 1 + len(depth)
    assert all("gpu-suite" in r["tags"] for r in stored)
    with zipfile.ZipFile(out / "gpu-records.zip") as zf:
        assert sorted(zf.namelist()) == sorted(p.name for p in store.glob("*.json"))
        for name in zf.namelist():
            results.validate(json.loads(zf.read(name)), name)
    md = (out / "gpu-summary.md").read_text()
    assert "## Training throughput" in md and "## Depth study" in md
    assert (out / "gpu-log.txt").read_text().count("\n") >= 5
    assert len(list(out.iterdir())) <= 8  # the device tool returns at most 8 files


def test_gpu_budget_is_never_overrun(tmp_path):
    t0 = time.monotonic()
    code = suite.run_gpu(tmp_path / "out", store=tmp_path / "store", budget_s=2, dry_run=True)
    assert code == 0 and time.monotonic() - t0 < 10
    stages = _summary(tmp_path / "out", "gpu")["stages"]
    for name in suite.GPU_STAGES:
        assert stages[name]["status"] == "skipped" and "left" in stages[name]["reason"]
    assert not (tmp_path / "store").exists() or not list((tmp_path / "store").iterdir())


def test_compiled_stage_killed_at_its_deadline_is_recorded(tmp_path):
    from resnet_lab.data import load_data

    report = suite.Report(tmp_path, "gpu", suite.Budget(60), lambda d: "# x\n")
    data = load_data("synthetic", train_per_class=4, test_per_class=1)
    ctx = _Context(suite.DRY_RUN, report, "cpu", data, "synthetic", tmp_path, [])
    t0 = time.monotonic()
    entry = throughput._compiled_stage(ctx, seconds=0.3)  # far too short to import torch
    assert time.monotonic() - t0 < 5
    assert entry["status"] == "partial" and "deadline" in entry["reason"]
    assert {r["skipped"] for r in entry["results"]} == {"the stage's time ran out"}


def test_gpu_without_a_gpu_asks_for_dry_run(tmp_path, capsys):
    assert cli.main(["suite", "gpu", "--out", str(tmp_path / "o"), "--device", "cpu"]) == 2
    assert "--dry-run" in capsys.readouterr().err


def test_seconds_per_image_interpolates_depth_and_picks_the_nearest_batch():
    pts = [
        {"depth": 20, "batch_size": 128, "images_per_sec": 1000.0},
        {"depth": 110, "batch_size": 128, "images_per_sec": 200.0},
        {"depth": 20, "batch_size": 2048, "images_per_sec": 4000.0},
    ]
    assert gpu._seconds_per_image(pts, 20, 128) == pytest.approx(1e-3)
    assert gpu._seconds_per_image(pts, 65, 100) == pytest.approx(3e-3)  # halfway in depth
    assert gpu._seconds_per_image(pts, 20, 4096) == pytest.approx(2.5e-4)
    assert gpu._seconds_per_image(pts, 40, 4096) == pytest.approx(5e-4)  # one point: ~depth
    assert gpu._seconds_per_image([], 20, 128) is None


def test_carried_tar_xz_becomes_the_same_zip(tmp_path):
    from PIL import Image

    from resnet_lab.data import load_data

    src = tmp_path / "tiny-jpeg.zip"
    with zipfile.ZipFile(src, "w") as zf:
        for split in ("train", "test"):
            for c, colour in (("cat", (200, 30, 30)), ("dog", (30, 30, 200))):
                for i in range(2):
                    buf = tmp_path / "x.jpg"
                    Image.new("RGB", (32, 32), colour).save(buf)
                    zf.write(buf, f"{split}/{c}/{i}.jpg")
    spec = importlib.util.spec_from_file_location("gpu_carry", ROOT / "tools" / "gpu_carry.py")
    gpu_carry = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_carry)
    packed = gpu_carry.pack_data(src, tmp_path)
    assert packed.name == "tiny-jpeg.tar.xz"
    rebuilt = Path(suite.prepare_data(packed, dry_run=False))
    assert rebuilt.name == "tiny-jpeg.zip" and rebuilt != src
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(rebuilt) as b:
        assert [(n, a.read(n)) for n in a.namelist()] == [(n, b.read(n)) for n in b.namelist()]
    x, y = load_data(src), load_data(rebuilt)
    assert x.variant == y.variant == "tiny-jpeg" and (x.train_x == y.train_x).all()
    assert suite.prepare_data(packed, dry_run=False) == str(rebuilt)  # reused, not rebuilt


@pytest.mark.skipif(importlib.util.find_spec("nbclient") is None, reason="needs nbclient")
def test_chapters_dry_run_executes_a_notebook_in_a_kernel(tmp_path):
    out = tmp_path / "out"
    assert cli.main(["suite", "chapters", "--dry-run", "--out", str(out), "--budget-s", "120"]) == 0
    data = _summary(out, "chapters")
    assert data["executor"] == "nbclient" and len(data["plan"]) >= 9
    assert all(n > 0 for n in data["plan"].values())  # every chapter readable, with code
    (result,) = data["stages"].values()
    assert result["status"] == "ok" and result["cells_run"] == result["code_cells"] == 2
    with zipfile.ZipFile(out / "chapters-executed.zip") as zf:
        nb = json.loads(zf.read("00_dry_run.ipynb"))
    outputs = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    assert "tier standard" in outputs


def test_plain_executor_skips_magics_and_records_the_failing_cell(tmp_path):
    cells = [
        "x = 1\n%matplotlib inline\nif False:\n    %pip install nothing",
        "!echo shell",
        "assert x == 1\nraise ValueError('boom')",
        "never = 1",
    ]
    nb = {
        "cells": [{"cell_type": "code", "source": s} for s in cells],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb))
    result = chapters._execute_plain(path, time.monotonic() + 60, tmp_path / "log.txt")
    assert result == {
        "status": "error",
        "code_cells": 4,
        "cells_run": 2,
        "cell": 2,
        "ename": "ValueError",
        "evalue": "boom",
    }


def test_missing_jupyter_says_how_to_bring_the_wheels(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(chapters, "_missing", lambda modules: ["nbclient"])
    report = suite.Report(tmp_path, "chapters", suite.Budget(10), lambda d: "# x\n")
    assert chapters._pick_executor("auto", None, report) == ("exec", None)
    assert "tools/gpu_carry.py" in capsys.readouterr().out
    with pytest.raises(ValueError, match="--wheels"):
        chapters._pick_executor("nbclient", None, report)
