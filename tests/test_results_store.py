"""Every run in the repository's results store is valid and says exactly how it was made.

The book reads its measured numbers from ``results/`` (chapters 2, 4, 6 and the
reproduction page, chapter 8). A number without provenance cannot be checked, so
each stored run must name its model, data variant, full recipe, seed, length,
device, software versions, code version and date, and its curves must be
consistent with its final numbers. The files hold curves, not checkpoints: they
stay small.
"""

from __future__ import annotations

import copy
import json
import os
from datetime import datetime
from pathlib import Path

import pytest

from resnet_lab import results

# RESNET_LAB_CHECK_STORE checks another store (tests/test_reliability.py: a damaged one).
STORE = Path(
    os.environ.get("RESNET_LAB_CHECK_STORE") or Path(__file__).resolve().parent.parent / "results"
)
FILES = sorted(p for p in STORE.rglob("*.json") if not p.name.startswith("."))
DEPTH_STUDY = STORE / "depth-study"

# Hyper-parameters every record must carry to be re-runnable (He et al. 2016, §4.2 names them).
RECIPE_KEYS = (
    "recipe",
    "batch_size",
    "lr",
    "momentum",
    "weight_decay",
    "schedule",
    "milestones",
    "gamma",
    "warmup_steps",
    "warmup_lr",
    "augment",
    "seed",
)
VERSION_KEYS = ("python", "torch", "torchvision", "resnet_lab")
MAX_BYTES = 200_000  # curves, not checkpoints


def _raw(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(STORE)) for p in paths]


@pytest.fixture(scope="module")
def sample_record() -> dict:
    """A minimal valid record, to check that the validator rejects broken ones."""
    return {
        "schema": results.SCHEMA,
        "id": "resnet20-cifar10-jpeg-paper-e1-s0-test",
        "model": "resnet20",
        "data": {"variant": "cifar10-jpeg", "train_size": 50000, "test_size": 10000},
        "recipe": {"recipe": "paper", "epochs": 1, "iterations": None, "batch_size": 128},
        "seed": 0,
        "epochs": 1,
        "status": "completed",
        "device": "cpu",
        "versions": {"python": "3.11", "torch": "2", "torchvision": "0", "resnet_lab": "0.1.0"},
        "code_version": "unknown",
        "date": "2026-01-01T00:00:00+00:00",
        "tags": ["depth-study"],
        "history": [
            {
                "epoch": 1,
                "step": 391,
                "train_loss": 1.5,
                "train_error": 0.5,
                "test_loss": 1.2,
                "test_error": 0.4,
                "lr": 0.001,
                "images_per_sec": 500.0,
                "wall_time": 100.0,
            }
        ],
        "final": {"train_error": 0.5, "test_error": 0.4, "test_loss": 1.2},
    }


def test_validator_accepts_sample_and_rejects_broken_records(sample_record: dict) -> None:
    results.validate(copy.deepcopy(sample_record))
    for key in ("model", "seed", "recipe", "device", "versions", "code_version", "date"):
        broken = copy.deepcopy(sample_record)
        del broken[key]
        with pytest.raises(results.ResultsError, match=key):
            results.validate(broken)
    broken = copy.deepcopy(sample_record)
    broken["history"][0]["test_error"] = 12.5  # a percentage where a fraction belongs
    with pytest.raises(results.ResultsError, match="fraction"):
        results.validate(broken)


def test_store_validates_with_unique_ids() -> None:
    runs = results.validate_store(STORE)
    assert len(runs) == len(FILES)


@pytest.mark.parametrize("path", FILES, ids=_ids(FILES))
def test_run_is_valid_and_small(path: Path) -> None:
    results.validate(_raw(path), path)
    assert path.stat().st_size < MAX_BYTES, f"{path.name}: results hold curves, not checkpoints"
    assert path.stem == results.load_run(path)["id"], "file name and run id disagree"


@pytest.mark.parametrize("path", FILES, ids=_ids(FILES))
def test_run_provenance_is_complete(path: Path) -> None:
    rec = _raw(path)
    assert rec["model"].strip(), "no model name"
    data = rec["data"]
    assert isinstance(data["variant"], str) and data["variant"].strip(), "no data variant"
    assert isinstance(data.get("train_size"), int) and data["train_size"] > 0
    assert isinstance(data.get("test_size"), int) and data["test_size"] > 0
    missing = [k for k in RECIPE_KEYS if k not in rec["recipe"]]
    assert not missing, f"recipe lacks hyper-parameters {missing}"
    assert rec["recipe"]["seed"] == rec["seed"]
    # The run's length: epochs or iterations, whichever the recipe was given.
    length = rec["recipe"].get("epochs") or rec["recipe"].get("iterations")
    assert isinstance(length, int) and length > 0, "recipe names neither epochs nor iterations"
    assert rec["epochs"] >= 1 and rec["history"][-1]["step"] > 0
    assert rec["device"].strip(), "no device"
    assert all(str(rec["versions"].get(k, "")).strip() for k in VERSION_KEYS), rec["versions"]
    assert rec["code_version"].strip()
    assert datetime.fromisoformat(rec["date"]).tzinfo is not None, "date must carry its timezone"
    assert rec["status"] in ("completed", "stopped")


@pytest.mark.parametrize("path", FILES, ids=_ids(FILES))
def test_final_numbers_come_from_the_curves(path: Path) -> None:
    rec = _raw(path)
    history, final = rec["history"], rec["final"]
    assert final["train_error"] == history[-1]["train_error"]
    tested = [h["test_error"] for h in history if h["test_error"] is not None]
    assert tested, "no test evaluation in the history"
    assert final["test_error"] == tested[-1]
    for curve in (history, rec.get("steps", [])):
        steps = [entry["step"] for entry in curve]
        assert steps == sorted(set(steps)), "curve steps are not strictly increasing"
        assert all(0.0 <= entry["train_error"] <= 1.0 for entry in curve)
        tested_steps = [e for e in curve if e.get("test_error") is not None]
        assert all(0.0 <= e["test_error"] <= 1.0 and e["test_loss"] > 0 for e in tested_steps)
    assert rec.get("wall_time", 0) >= history[-1]["wall_time"] > 0


DEPTH_FILES = sorted(DEPTH_STUDY.glob("*.json"))


@pytest.mark.parametrize("path", DEPTH_FILES, ids=_ids(DEPTH_FILES))
def test_depth_study_runs_are_labelled(path: Path) -> None:
    """The CIFAR-10 depth study (He et al. 2016, Fig. 6, Table 6) that chapter 8 reads."""
    rec = _raw(path)
    assert "depth-study" in rec["tags"]
    assert rec["model"].startswith(("plain", "resnet"))
    assert rec["data"]["variant"] in ("cifar10", "cifar10-jpeg")
    assert rec["data"]["test_size"] == 10_000, "test error must be on the full test set"
    assert rec["recipe"]["recipe"] == "paper"


def test_depth_study_has_one_run_per_model_seed_and_recipe() -> None:
    """`resnet-lab sweep` skips stored runs; a second copy of one would double-count it."""
    keys = [
        (r["model"], r["seed"], r.variant, json.dumps(r["recipe"], sort_keys=True))
        for r in results.list_runs(STORE, tag="depth-study")
    ]
    assert len(keys) == len(set(keys)), "a (model, seed, data, recipe) run is stored twice"


def test_outside_a_checkout_train_writes_where_list_runs_reads(tmp_path, monkeypatch):
    """pip-installed (Colab): the shipped runs are listed, new runs go to ./results and are listed too."""
    from test_studies import record

    from resnet_lab.results import store as R

    shipped = tmp_path / "site-packages" / "resnet_lab" / "stored_results"
    shipped.mkdir(parents=True)
    R.save_run(record("resnet20", uid="shipped"), shipped)
    monkeypatch.setattr(R, "_REPO_ROOT", tmp_path / "site-packages")  # no pyproject.toml there
    monkeypatch.setattr(R, "_PACKAGED_STORE", shipped)
    monkeypatch.delenv("RESNET_LAB_RESULTS", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert R.default_store() == work / "results" and R.shipped_store() == shipped
    path = R.save_run(record("plain20", uid="mine"))
    assert path.parent == work / "results"  # never into the installed package
    assert sorted(r["id"] for r in R.list_runs()) == ["plain20-mine", "resnet20-shipped"]
    assert [r["id"] for r in R.list_runs(work / "results")] == ["plain20-mine"]
