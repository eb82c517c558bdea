"""The zoo's run records read as Figure 6 / Table 6 (resnet_lab.results.zoo), and the stored
report in results/zoo/README.md kept equal to what the records give."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
from test_studies import record

from resnet_lab.book.zoo import zoo_figure
from resnet_lab.results import save_run, zoo

ROOT = Path(__file__).resolve().parents[1]


def _tool():
    spec = importlib.util.spec_from_file_location("zoo_report", ROOT / "tools" / "zoo_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_stored_zoo_report_is_what_the_records_give():
    assert _tool().main(["--check"]) == 0


@pytest.fixture
def store(tmp_path):
    errors = {"plain20": (0.10, 0.12), "resnet20": (0.08, 0.11), "plain56": (0.15, 0.16)}
    errors["resnet56"] = (0.075, 0.105)
    for i, (model, (train, test)) in enumerate(errors.items()):
        save_run(record(model, 11730, train, test, tags=("zoo",), uid=str(i)), tmp_path)
    # another schedule of the same network: never pooled with the zoo's
    save_run(record("resnet20", 391, 0.3, 0.3, tags=("zoo",), uid="short"), tmp_path)
    return tmp_path


def test_zoo_study_takes_the_runs_that_trained_alike(store):
    study = zoo.zoo_study(store)
    assert sorted(study) == [("plain", 20), ("plain", 56), ("residual", 20), ("residual", 56)]
    assert study[("residual", 20)].train == (pytest.approx(8.0),)


def test_one_seed_claims_take_the_borrowed_error_bar(store):
    claims = {c.text: c for c in zoo.zoo_claims(zoo.zoo_study(store), spread=1.0)}
    plain = claims["plain-56 trains worse than plain-20"]
    assert plain.difference == pytest.approx(5.0) and plain.se == pytest.approx(math.sqrt(2))
    assert plain.holds and "borrowed" in plain.evidence
    deeper = claims["ResNet-56 trains better than ResNet-20"]  # 0.5 points: within the bar
    assert deeper.in_order and not deeper.holds
    verdicts = {r["claim"]: r["verdict"] for r in zoo.verdict_rows(list(claims.values()))}
    assert verdicts["plain-56 trains worse than plain-20"] == "holds"
    assert verdicts["ResNet-56 trains better than ResNet-20"] == "in order, within the error bar"
    no_bar = zoo.verdict_rows(zoo.zoo_claims(zoo.zoo_study(store), spread=None))
    assert {r["verdict"] for r in no_bar} <= {"in order, no error bar", "reversed, no error bar"}


def test_zoo_figure_has_both_errors_for_every_network(store):
    fig = zoo_figure(zoo.zoo_runs(store))
    train, test = fig.axes
    assert [line.get_label() for line in train.lines] == [
        "plain-20",
        "ResNet-20",
        "plain-56",
        "ResNet-56",
    ]
    assert len(test.lines) == 4 and test.get_xlabel() == "epoch"
    assert {line.get_linestyle() for line in train.lines} == {"--", "-"}
