"""The laptop depth study reader: seeds grouped, standard errors, and claims that can fail."""

from __future__ import annotations

import math

import pytest
from test_studies import record

from resnet_lab.book import reproduction
from resnet_lab.results import laptop, save_run


def seeded(model: str, seed: int, train: float, test: float, **kw) -> dict:
    tags = ("laptop-depth",)
    rec = record(model, train_error=train, test_error=test, tags=tags, uid=f"s{seed}", **kw)
    rec["seed"] = seed
    return rec


@pytest.fixture
def store(tmp_path):
    for seed, (p20, p56, r20, r56) in enumerate(
        [(0.40, 0.70, 0.30, 0.25), (0.42, 0.72, 0.31, 0.27), (0.44, 0.74, 0.32, 0.26)]
    ):
        save_run(seeded("plain20", seed, p20, p20 + 0.05), tmp_path)
        save_run(seeded("plain56", seed, p56, p56 + 0.05), tmp_path)
        save_run(seeded("resnet20-zi", seed, r20, r20 + 0.08), tmp_path)
        save_run(seeded("resnet56-zi", seed, r56, r56 + 0.08), tmp_path)
    # A stopped run and another tag are not part of the study.
    save_run(seeded("resnet56-zi", 3, 0.9, 0.9, status="stopped"), tmp_path)
    save_run(record("resnet32", tags=("other",)), tmp_path)
    return tmp_path


def test_study_groups_seeds_with_standard_errors(store):
    study = laptop.laptop_study(store)
    assert list(study) == [("plain", 20), ("residual", 20), ("plain", 56), ("residual", 56)]
    p20 = study[("plain", 20)]
    assert p20.seeds == (0, 1, 2) and p20.model == "plain20"
    assert p20.train_mean == pytest.approx(42.0)
    assert p20.train_se == pytest.approx(2.0 / math.sqrt(3))
    assert study[("residual", 56)].n == 3  # the stopped seed 3 is left out
    assert p20.describe() == "42.0 ± 1.2 % (3 seeds)"


def test_orderings_hold_and_fail(store):
    claims = {c.text: c for c in laptop.orderings(laptop.laptop_study(store))}
    assert claims["plain-56 trains worse than plain-20"].holds
    assert claims["ResNet-56 trains better than plain-56"].holds
    # 25.0 ± 0.6 vs 26.0 ± 0.6 ... ResNet-56 26.0 vs ResNet-20 31.0: holds
    assert claims["ResNet-56 trains better than ResNet-20"].holds
    assert str(claims["plain-56 trains worse than plain-20"]).startswith(
        "plain-56 trains worse than plain-20: True (plain-56 72.0 ± 1.2 % (3 seeds) vs"
    )


def test_a_difference_within_its_error_bar_does_not_hold(tmp_path):
    for seed, (a, b) in enumerate([(0.30, 0.31), (0.34, 0.29), (0.32, 0.33)]):
        save_run(seeded("resnet20-zi", seed, a, a), tmp_path)
        save_run(seeded("resnet56-zi", seed, b, b), tmp_path)
    (claim,) = laptop.orderings(laptop.laptop_study(tmp_path))
    assert claim.in_order and not claim.holds  # 32.0 vs 31.0, SE of the difference 1.5


def test_one_seed_is_never_a_verdict(tmp_path):
    save_run(seeded("plain20", 0, 0.4, 0.5), tmp_path)
    save_run(seeded("plain56", 0, 0.8, 0.8), tmp_path)
    (claim,) = laptop.orderings(laptop.laptop_study(tmp_path))
    assert claim.in_order and not claim.holds
    assert "one seed" in str(claim)


def test_depth_figure_draws_every_network(store):
    import matplotlib

    matplotlib.use("Agg")
    ax = reproduction.depth_figure(laptop.laptop_study(store))
    assert len(ax.containers) == 4  # plain and residual, training and test
    assert ax.get_xlabel() == "depth (weight layers)"


def pilot(model: str, tag: str, train: float, **recipe) -> dict:
    rec = record(model, train_error=train, test_error=train + 0.1, tags=(tag,), uid=tag)
    rec["recipe"].update(recipe)
    return rec


def test_protocol_changes_read_the_records():
    study = seeded("resnet56-zi", 0, 0.3, 0.4)
    study["precision"] = "fp32"
    other = pilot("resnet56", "pilot-A", 0.4, epochs=80, weight_decay=5e-4, eval_every=10)
    other["data"]["train_size"] = 10_000
    other["precision"] = "bf16"
    changes = laptop.protocol_changes(other, study)
    assert changes == [
        "10,000 training images (50,000)",
        "the paper's initialisation (zero-initialised branches)",
        "epochs 80 (1)",
        "weight decay 0.0005 (0.0001)",
        "precision bf16 (fp32)",
    ]  # eval_every (evaluation only) is not a change in training
    assert laptop.protocol_changes(study, study) == []


def test_pilots_compare_their_two_deepest_resnets_against_the_study_spread(store):
    save_run(pilot("resnet44-zi", "pilot-D-80ep", 0.20, epochs=80), store)
    save_run(pilot("resnet56-zi", "pilot-D-80ep", 0.10, epochs=80), store)
    save_run(pilot("resnet20", "pC-noaug", 0.0, augment=False), store)
    found = {p.tag: p for p in laptop.pilots(store)}
    assert list(found) == ["pC-noaug", "pilot-D-80ep"]  # in PILOT_TAGS order
    assert found["pC-noaug"].deeper_better is None
    claim = found["pilot-D-80ep"].deeper_better
    # the study's residual seeds: 30/31/32 and 25/27/26 -> pooled sd 1.0, se sqrt(2)
    assert laptop.seed_sd(laptop.laptop_study(store)) == pytest.approx(1.0)
    assert claim.text == "ResNet-56 trains better than ResNet-44"
    assert claim.difference == pytest.approx(10.0) and claim.se == pytest.approx(math.sqrt(2))
    assert claim.holds
    assert found["pilot-D-80ep"].changes == ("epochs 80 (1)",)
    rows = laptop.pilot_rows(found.values())
    column = "deepest ResNet against the next shallower one it trained"
    assert rows[0][column] == "not compared: only ResNet-20 completed"
    assert rows[0]["protocol"] == laptop.PILOTS["pC-noaug"] == "C: no augmentation"
    assert rows[1][column] == (
        "ResNet-56 better than ResNet-44 by 10.0 points (10.00 against 20.00 %), beyond the "
        "standard error"
    )


def test_a_pilot_within_the_seed_spread_does_not_hold(store):
    save_run(pilot("resnet44-zi", "laptop-wd1e-4", 0.300), store)
    save_run(pilot("resnet56-zi", "laptop-wd1e-4", 0.295), store)
    (found,) = laptop.pilots(store)
    assert found.deeper_better.in_order and not found.deeper_better.holds
    assert laptop.pilot_verdict(found) == (
        "no difference beyond the standard error (ResNet-56 0.5 points lower)"
    )


def test_against_shallowest_in_words(tmp_path):
    for seed, (a, b, c) in enumerate(
        [(0.32, 0.29, 0.31), (0.33, 0.30, 0.34), (0.325, 0.295, 0.30)]
    ):
        save_run(seeded("resnet20-zi", seed, a, a), tmp_path)
        save_run(seeded("resnet32-zi", seed, b, b), tmp_path)
        save_run(seeded("resnet56-zi", seed, c, c), tmp_path)
    words = laptop.against_shallowest_words(laptop.laptop_study(tmp_path))
    assert words.startswith("On training error, ResNet-32 beats ResNet-20 by more than one ")
    assert "; ResNet-56 only within it (+0.8 points, 0.7 standard errors)." in words
