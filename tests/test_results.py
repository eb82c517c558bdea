"""The results store: schema, atomic saves, no silent overwrites, clear errors for bad files."""

from __future__ import annotations

import json
import math
import re

import pytest

from resnet_lab import provenance
from resnet_lab import results as R
from resnet_lab.engine import Run, recipe


def make_run(model="resnet20", seed=0, tags=("t",), variant="synthetic") -> Run:
    run = Run(
        model_name=model,
        config=recipe("fast", epochs=2, seed=seed),
        data={"variant": variant, "source": "generated", "train_size": 10, "test_size": 5},
        device="cpu",
        device_name="cpu (test)",
        tags=list(tags),
        status="completed",
    )
    for e in (1, 2):
        run.history.append(
            {
                "epoch": e,
                "step": 5 * e,
                "train_loss": 2.0 / e,
                "train_error": 0.5 / e,
                "test_loss": 2.1 / e,
                "test_error": 0.6 / e,
                "lr": 0.1,
                "images_per_sec": 100.0,
                "wall_time": float(e),
            }
        )
    return run


def test_save_list_load_round_trip_with_provenance(tmp_path):
    path = R.save_run(make_run(), tmp_path)
    rec = R.load_run(path)
    assert rec.schema == R.SCHEMA and rec.model == "resnet20" and rec.variant == "synthetic"
    assert rec.id == path.stem and rec.id.startswith("resnet20-synthetic-fast-e2-s0-")
    assert rec.recipe["lr"] == 0.2 and rec.recipe["label_smoothing"] == 0.1
    assert set(rec.versions) == {"python", "torch", "torchvision", "resnet_lab"}
    assert rec.code_version and rec.date and rec.device == "cpu (test)"
    assert rec.final["test_error"] == pytest.approx(0.3)
    assert rec.config.epochs == 2 and rec.curve("test_error") == ([1, 2], [0.6, 0.3])
    assert R.load_run(rec.id, store=tmp_path).record == rec.record
    assert "/" not in json.dumps(rec.data)  # no absolute paths stored


def test_list_runs_filters(tmp_path):
    R.save_run(make_run("resnet20", 0, ("a",)), tmp_path)
    R.save_run(make_run("resnet20", 1, ("b",)), tmp_path)
    R.save_run(make_run("plain20", 0, ("a",), variant="cifar10-jpeg"), tmp_path)
    assert len(R.list_runs(tmp_path)) == 3
    assert [r.seed for r in R.list_runs(tmp_path, model="resnet20")] == [0, 1]
    assert [r.model for r in R.list_runs(tmp_path, tag="a")] == ["plain20", "resnet20"]
    assert len(R.list_runs(tmp_path, variant="cifar10-jpeg")) == 1
    assert len(R.list_runs(tmp_path, model=["plain20", "resnet20"], seed=0)) == 2
    assert len(R.list_runs(tmp_path, recipe="fast", batch_size=128)) == 3
    assert R.list_runs(tmp_path, recipe="paper") == []
    # a store that is not there is a mistake in the path, not an empty store
    with pytest.raises(R.ResultsError, match="nowhere does not exist; give the folder"):
        R.list_runs(tmp_path / "nowhere")
    with pytest.raises(R.ResultsError, match="is a file, not a folder"):
        R.list_runs(next(tmp_path.glob("*.json")))


def test_same_run_is_replaced_but_a_different_run_is_never_overwritten(tmp_path):
    run = make_run()
    path = R.save_run(run, tmp_path)
    run.tags.append("more")
    assert R.save_run(run, tmp_path) == path and "more" in R.load_run(path).tags
    other = make_run()
    other.id, other.date = "x" + run.id[1:], run.date  # forge the same file name
    rec = R.record_from_run(other)
    rec["id"] = path.stem
    with pytest.raises(R.ResultsError, match="holds a different run"):
        R.save_run(rec, tmp_path)
    assert "more" in R.load_run(path).tags


def test_corrupt_and_foreign_files_give_errors_naming_them(tmp_path):
    good = R.save_run(make_run(), tmp_path)
    (tmp_path / "broken.json").write_text('{"schema": "resnet_lab.run/1", "id": ')
    with pytest.raises(R.ResultsError, match=r"broken\.json.*not valid JSON"):
        R.load_run(tmp_path / "broken.json")
    with pytest.raises(R.ResultsError, match=r"broken\.json"):
        R.validate_store(tmp_path)
    (tmp_path / "broken.json").unlink()
    (tmp_path / "package.json").write_text('{"name": "left-pad"}')
    with pytest.raises(R.ResultsError, match=r"package\.json.*not a resnet_lab run record"):
        R.validate_store(tmp_path)
    (tmp_path / "package.json").unlink()
    rec = json.loads(good.read_text())
    for mutate, reason in [
        (lambda r: r.pop("seed"), "missing field 'seed'"),
        (lambda r: r.update(epochs=5), "history has 2 entries"),
        (lambda r: r["history"][0].update(test_error=42.0), "not a fraction"),
        (lambda r: r["history"][1].pop("lr"), r"history\[1\] lacks lr"),
        (lambda r: r.update(tags="a"), "'tags' should be a list"),
    ]:
        bad = json.loads(json.dumps(rec))
        mutate(bad)
        with pytest.raises(R.ResultsError, match=reason):
            R.validate(bad, "x.json")


def test_non_finite_numbers_are_stored_as_null_and_never_as_a_success(tmp_path):
    run = make_run()
    run.history[0]["train_loss"] = math.nan
    with pytest.raises(R.ResultsError, match=r"'completed' holds NaN.*history\[0\]\.train_loss"):
        R.save_run(run, tmp_path)
    assert list(tmp_path.iterdir()) == []
    run.status = "diverged"
    path = R.save_run(run, tmp_path)
    assert "NaN" not in path.read_text() and R.load_run(path).history[0]["train_loss"] is None


def test_one_damaged_file_never_hides_the_other_runs(tmp_path):
    good = R.save_run(make_run(), tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "broken.json").write_text('{"schema": "resnet_lab.run/1", "id": "x')
    (tmp_path / "package.json").write_text('{"name": "left-pad"}')
    with pytest.warns(UserWarning) as caught:
        runs = R.list_runs(tmp_path)
    assert [r.path for r in runs] == [good]
    said = sorted(str(w.message) for w in caught)
    assert len(said) == 2 and said[0].startswith("results file package.json in ")
    assert re.match(r"results file sub/broken\.json in .*not valid JSON.*skipped", said[1])
    assert R.load_run(good.stem, store=tmp_path).path == good
    # Checking the store still fails, naming the file inside the store, with json's words
    # said once ("Unterminated string starting at" + " at line" read "at at line").
    with pytest.raises(R.ResultsError, match=r"results file package\.json in ") as info:
        R.validate_store(tmp_path)
    (tmp_path / "package.json").unlink()
    with pytest.raises(R.ResultsError, match=r"results file sub/broken\.json in ") as info:
        R.validate_store(tmp_path)
    assert "at at" not in str(info.value) and "Unterminated string" in str(info.value)


def test_the_repository_store_is_valid():
    # Every file the book reads from results/ must load (CI guard for hand edits).
    R.validate_store(R.default_store())


def test_code_version_is_taken_when_the_run_starts(monkeypatch):
    monkeypatch.setattr(provenance, "code_version", lambda: "abc123+dirty")
    run = make_run()
    monkeypatch.setattr(provenance, "code_version", lambda: "committed-later")
    assert R.record_from_run(run)["code_version"] == "abc123+dirty"
