"""A fuzz of the kinds of bad input users make (issue 29), as tests: every bad command line is
one line on stderr with exit status 2, no traceback and nothing written; every misuse of the
API raises an error that says what to do; no record file breaks a reader of the store."""

from __future__ import annotations

import copy
import itertools
import json
import warnings
from pathlib import Path

import pytest

import resnet_lab as rl
from resnet_lab import cli, engine, results
from resnet_lab.data import DataError, load_data, resize, synthetic

TINY = ["--data", "synthetic", "--subset", "2", "--test-subset", "1", "--epochs", "1"]
HUGE = "99999999999"

BAD_COMMAND_LINES = {
    "absurd depth": ["info", "resnet60002"],
    "a depth of 5000 digits": ["info", "resnet" + "9" * 5000],
    "absurd depth, train": ["train", "resnet60002", *TINY],
    "absurd depth in a sweep": ["sweep", "--models", "resnet20", "plain60002", *TINY],
    "unknown model": ["train", "resnet21", *TINY],
    "huge synthetic subset": ["train", "resnet20", "--data", "synthetic", "--subset", HUGE],
    "huge synthetic test subset": [
        "train",
        "resnet20",
        "--data",
        "synthetic",
        "--test-subset",
        HUGE,
    ],
    "huge bench batch": ["bench", "resnet20", "--batch-size", HUGE, "--data", "synthetic"],
    "zero bench batch": ["bench", "resnet20", "--batch-size", "0", "--data", "synthetic"],
    "a length of None with another": ["train", "resnet20", *TINY, "--set", "epochs=None"],
    "a length of None alone": ["train", "resnet20", "--data", "synthetic", "--set", "epochs=None"],
    "a flag and --set": ["train", "resnet20", *TINY, "--set", "lr=0.1", "--lr", "0.2"],
    "--set twice": ["train", "resnet20", *TINY, "--set", "lr=0.1", "--set", "lr=0.2"],
    "milestones=5": ["train", "resnet20", *TINY, "--set", "milestones=5"],
    "milestones=abc": ["train", "resnet20", *TINY, "--set", "milestones=abc"],
    "unknown field": ["train", "resnet20", *TINY, "--set", "nosuch=1"],
    "zero epochs": ["train", "resnet20", *TINY[:-1], "0"],
    "zero batch": ["train", "resnet20", *TINY, "--batch-size", "0"],
    "negative subset": ["train", "resnet20", "--data", "synthetic", "--subset", "-5"],
    "tiny image size": ["train", "resnet20", *TINY, "--image-size", "2"],
    "huge image size": ["train", "resnet20", *TINY, "--image-size", "99999"],
    "resume nothing": ["train", "resnet20", *TINY, "--resume", "--output", "nothere"],
    "unknown device": ["train", "resnet20", *TINY, "--device", "tpu7"],
    "zero jobs": ["sweep", "--models", "resnet20", *TINY, "--jobs", "0"],
    "unknown data": ["train", "resnet20", "--data", "nosuchdataset"],
    "missing data path": ["train", "resnet20", "--data", "no/such/data.zip"],
    "zero input size": ["info", "resnet20", "--input-size", "3", "0", "0"],
    "negative budget": ["suite", "gpu", "--out", "o", "--budget-s", "-1", "--dry-run"],
    "info without a name": ["info"],
}


@pytest.mark.parametrize("argv", BAD_COMMAND_LINES.values(), ids=BAD_COMMAND_LINES.keys())
def test_a_bad_command_line_is_one_line_exit_2_and_writes_nothing(
    argv, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RESNET_LAB_RESULTS", str(tmp_path / "results"))
    code = cli.main(argv)
    said = capsys.readouterr()
    lines = [line for line in said.err.strip().splitlines() if "warning" not in line]
    assert code == cli.EXIT_USAGE, said
    assert "Traceback" not in said.err + said.out and len(lines) == 1, said.err
    assert list(tmp_path.iterdir()) == []


def test_the_refusals_say_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    expected = {
        "absurd depth": "choose a depth up to 2000",
        "huge synthetic subset": "a smaller subset",
        "huge bench batch": "use at most the batch that fits (--batch-size ",
        "a flag and --set": "--lr 0.2 and --set lr=0.1 both set lr; give it once",
        "--set twice": "--set lr=0.1 and --set lr=0.2 differ",
        "a length of None alone": "give the one you mean instead (--iterations N)",
    }
    for case, words in expected.items():
        cli.main(BAD_COMMAND_LINES[case])
        err = capsys.readouterr().err
        assert words in err, (case, err)


def _bad_api_calls(tmp_path: Path):
    d = synthetic(20, 10)
    (tmp_path / "file.json").write_text("{}")
    return {
        "build(20)": (lambda: rl.build(20), TypeError, "a model name such as 'resnet20'"),
        "build(None)": (lambda: rl.build(None), TypeError, "a model name such as 'resnet20'"),
        "build('resnet60002')": (lambda: rl.build("resnet60002"), ValueError, "up to 2000"),
        "build('resnet21')": (lambda: rl.build("resnet21"), ValueError, "nearest valid"),
        "list_runs(missing)": (
            lambda: results.list_runs(tmp_path / "nowhere"),
            results.ResultsError,
            "does not exist",
        ),
        "list_runs(file)": (
            lambda: results.list_runs(tmp_path / "file.json"),
            results.ResultsError,
            "is a file, not a folder",
        ),
        "huge synthetic": (
            lambda: load_data("synthetic", train_per_class=int(HUGE)),
            DataError,
            "need at least",
        ),
        "subset 0": (lambda: load_data("synthetic", train_per_class=0), DataError, ">= 1"),
        "resize 2": (lambda: resize(d, 2), DataError, ">= 4"),
        "recipe lr -1": (lambda: engine.recipe("fast", lr=-1), engine.ConfigError, "lr must"),
        "recipe nosuch": (lambda: engine.recipe("nosuch"), ValueError, "choose one of"),
        "recipe field": (lambda: engine.recipe("fast", nosuch=1), ValueError, "valid fields"),
        "load_run missing": (
            lambda: results.load_run("no-such-id", store=tmp_path),
            results.ResultsError,
            "no such results file",
        ),
    }


def test_api_misuse_raises_an_error_that_says_what_to_do(tmp_path):
    for name, (call, kind, words) in _bad_api_calls(tmp_path).items():
        with pytest.raises(kind) as info:
            call()
        message = str(info.value)
        assert words in message and "\n" not in message, (name, message)


# ----------------------------------------------------------------------------- the store

BAD_VALUES = [None, 5, -1, True, "x", "", [], {}, [{"a": 1}], 1e308]
FIELDS = [
    ("id",),
    ("model",),
    ("seed",),
    ("epochs",),
    ("status",),
    ("date",),
    ("tags",),
    ("history",),
    ("final",),
    ("steps",),
    ("precision",),
    ("device_type",),
    ("data",),
    ("data", "variant"),
    ("data", "train_size"),
    ("data", "test_size"),
    ("recipe",),
    ("recipe", "milestones"),
    ("recipe", "epochs"),
    ("recipe", "lr"),
    ("recipe", "amp"),
    ("recipe", "snapshot_steps"),
    ("final", "test_error"),
    ("history", 0, "test_error"),
    ("history", 0, "step"),
    ("steps", 0, "step"),
]


def _valid_record() -> dict:
    from test_studies import record

    rec = record("resnet20")
    rec["history"][0]["step"] = 391
    return rec


def _set(record: dict, path: tuple, value) -> None:
    *parents, last = path
    target = record
    for key in parents:
        target = target[key]
    target[last] = value


def _read_everything(rec: results.RunRecord) -> None:
    """What the book, the studies and sweep read from a record."""
    rec.variant, rec.precision, rec.model_name, repr(rec)
    rec.config.to_dict(), rec.training_settings
    rec.curve("test_error"), rec.test_curve()


def test_no_record_file_breaks_a_reader_of_the_store(tmp_path):
    from resnet_lab.cli.sweep import _already_stored

    store = tmp_path / "store"
    store.mkdir()
    names = []
    for i, (path, value) in enumerate(itertools.product(FIELDS, BAD_VALUES)):
        rec = copy.deepcopy(_valid_record())
        rec["id"] = rec["run_uid"] = f"r{i}"
        _set(rec, path, value)
        name = f"r{i}.json"
        (store / name).write_text(json.dumps(rec))
        names.append(name)
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        runs = results.list_runs(store)
    said = [str(w.message) for w in warned]
    loaded = {r.path.name for r in runs}
    for name in names:  # each file is read, or skipped with one warning naming it
        skipped = sum(f"results file {name} in" in w for w in said)
        assert (name in loaded) != (skipped == 1), (name, skipped)
    for rec in runs:
        _read_everything(rec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for filters in ({"tag": "depth-study"}, {"model": "resnet20", "seed": 0}, {"lr": 0.1}):
            results.list_runs(store, **filters)
        _already_stored(store, "resnet20", synthetic(20, 10), engine.recipe("paper", epochs=1))
