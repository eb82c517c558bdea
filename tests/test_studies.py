"""The depth study of chapter 6: its runs in the results store and how the chapters show them."""

from __future__ import annotations

import pytest

from resnet_lab.book import reproduction
from resnet_lab.results import SCHEMA, list_runs, save_run, studies


def record(
    model: str,
    steps: int = 391,
    train_error: float = 0.5,
    test_error: float = 0.6,
    train_size: int = 50_000,
    tags: tuple[str, ...] = ("depth-study",),
    status: str = "completed",
    date: str = "2026-01-01T00:00:00+00:00",
    uid: str = "a",
) -> dict:
    """A valid run record (the schema of resnet_lab.results) with a simple history."""
    every = max(1, steps // 10)
    step_records = [
        {"step": s, "epoch": s / steps, "train_error": 0.9 - (0.9 - train_error) * s / steps}
        for s in range(every, steps + 1, every)
    ]
    return {
        "schema": SCHEMA,
        "id": f"{model}-{uid}",
        "run_uid": f"{model}-{uid}",
        "model": model,
        "data": {"variant": "cifar10-jpeg", "train_size": train_size, "test_size": 10_000},
        "recipe": {"recipe": "paper", "batch_size": 128, "epochs": 1},
        "seed": 0,
        "epochs": 1,
        "status": status,
        "device": "cpu (test)",
        "versions": {},
        "code_version": "abc",
        "date": date,
        "tags": list(tags),
        "history": [
            {
                "epoch": 1,
                "step": steps,
                "train_loss": 1.0,
                "train_error": train_error,
                "test_loss": 1.0,
                "test_error": test_error,
                "lr": 0.1,
                "images_per_sec": 100.0,
                "wall_time": 1.0,
            }
        ],
        "steps": step_records,
        "final": {"train_error": train_error, "test_error": test_error, "test_loss": 1.0},
    }


@pytest.fixture
def store(tmp_path):
    save_run(record("plain20", train_error=0.40), tmp_path)
    save_run(record("plain56", train_error=0.55), tmp_path)
    save_run(record("resnet20", train_error=0.42), tmp_path)
    save_run(record("resnet56", train_error=0.35), tmp_path)
    # A longer run of resnet56 represents it; other tags and models are ignored.
    save_run(record("resnet56", steps=782, train_error=0.30, uid="b"), tmp_path)
    save_run(record("resnet32", tags=("other",), train_error=0.1), tmp_path)
    save_run(record("preact_resnet110"), tmp_path)
    return tmp_path


def test_parse_and_name():
    assert studies.parse_model("resnet110") == ("residual", 110)
    assert studies.parse_model("plain20") == ("plain", 20)
    assert studies.parse_model("preact_resnet110") is None
    assert studies.parse_model("resnet56-zi") == ("residual", 56)  # the laptop study's nets
    assert studies.parse_model("plain56-zi") is None  # no such network
    assert studies.model_name("plain", 56) == "plain56"
    with pytest.raises(ValueError, match="kind must be one of"):
        studies.model_name("dense", 20)


def test_depth_study_picks_one_run_per_network(store):
    study = studies.depth_study(store=store)
    assert set(study) == {("plain", 20), ("plain", 56), ("residual", 20), ("residual", 56)}
    assert studies.provenance(study[("residual", 56)])["iterations"] == 782
    assert studies.final_errors(study[("residual", 56)])["train_error"] == pytest.approx(30.0)
    (store / "empty").mkdir()
    assert studies.depth_study(store=store / "empty") == {}


def test_matched_runs_share_one_length(store):
    # resnet56 has a 782-iteration run, the others only 391: the complete sweep is 391.
    full = studies.matched_runs(store=store)
    assert set(full) == {("plain", 20), ("plain", 56), ("residual", 20), ("residual", 56)}
    assert {studies.provenance(r)["iterations"] for r in full.values()} == {391}
    alone = studies.matched_runs([("residual", 56)], store=store)
    assert studies.provenance(alone[("residual", 56)])["iterations"] == 782
    assert studies.matched_runs([("residual", 110)], store=store) == {}
    (store / "empty").mkdir()
    assert studies.matched_runs(store=store / "empty") == {}


def test_training_curves_in_percent_against_iterations(store):
    rec = studies.depth_study(store=store)[("plain", 20)]
    curves = studies.training_curves(rec, points=4)
    xs, ys = curves["training error"]
    assert len(xs) <= 5 and xs[-1] == 390  # thinned, the last point kept
    assert ys[-1] == pytest.approx(100 * (0.9 - 0.5 * 390 / 391), rel=1e-6)
    assert curves["test error"] == ([391.0], [60.0])


def test_test_curve_merges_step_and_epoch_evaluations(tmp_path):
    rec = record("resnet20", steps=400)
    rec["steps"][3]["test_error"] = 0.7  # step 160, from eval_every_steps
    rec["steps"][6]["test_error"] = 0.65  # step 280
    save_run(rec, tmp_path)
    (run,) = list_runs(tmp_path)
    assert run.test_curve() == ([160, 280, 400], [0.7, 0.65, 0.6])
    curves = studies.training_curves(run)
    assert curves["test error"] == ([160.0, 280.0, 400.0], [70.0, 65.0, 60.0])


def test_depth_explorer(store):
    explorer = reproduction.depth_explorer(studies.depth_study(store=store), store=store)
    assert explorer.default == "56 layers"
    # Figure 6: plain and residual of one depth on the same axes, or every depth of a kind.
    assert explorer.settings() == [
        "20 layers",
        "56 layers",
        "plain, every depth",
        "residual, every depth",
    ]
    names = list(explorer.data["56 layers"])
    assert names == [f"{n}-56, {c}" for n in ("plain", "ResNet") for c in ("training", "test")]
    every_plain = list(explorer.data["plain, every depth"])[::2]
    assert every_plain == ["plain-20, training", "plain-56, training"]
    assert "cifar10-jpeg" in explorer.to_html()
    assert reproduction.depth_explorer({}) is None


def test_depth_explorer_seed_band(store):
    study = studies.depth_study(store=store)
    runs = {k: [rec, rec] for k, rec in study.items()}  # two "seeds" with the same curves
    explorer = reproduction.depth_explorer(study, seeds=runs, store=store)
    test = explorer.data["56 layers"]["ResNet-56, test (2 seeds)"]
    assert test.low is not None and list(test.low) == list(test.ys) == list(test.high)
    traces = explorer.to_dict()["data"]
    fills = [t for t in traces if t.get("fill") == "toself"]
    assert 2 * len(fills) == len(traces)  # a band behind every curve


def test_table6_published_and_measured_with_provenance(store, tmp_path):
    save_run(record("resnet110", train_size=2000, uid="sub"), store)  # a subset: not comparable
    table = reproduction.table6(store=store)
    rows = {r["network"]: r for r in table.rows}
    assert rows["ResNet-20"]["test error, paper (%)"] == "8.75"
    assert rows["ResNet-20"]["test error, ours (%)"] == "60.00"
    # The four networks of the 391-iteration sweep, not resnet56's lone 782-iteration run.
    assert rows["ResNet-56"]["iterations"] == "391"
    assert rows["ResNet-56"]["train error, ours (%)"] == "35.00"
    assert rows["ResNet-56"]["device"] == "cpu (test)"
    assert rows["ResNet-110"]["test error, ours (%)"] == "not measured"
    assert rows["ResNet-110"]["test error, paper (%)"].startswith("6.43")
    assert rows["ResNet-1202"]["test error, paper (%)"] == "7.93"
    assert "plain-56" in rows and "plain-110" not in rows
    assert "ResNet-56" in str(table) and "<table>" in table._repr_html_()
    assert table.to_markdown().count("\n| ResNet") == 6
    assert "recipe paper, 1 epochs = 391 iterations" in table.note
    assert "1 other run(s)" in table.note  # the 782-iteration resnet56, left out


def test_table6_of_mixed_runs_takes_only_matched_ones(tmp_path):
    # A long run of another recipe must not sit beside the short sweep (chapter 6 once put
    # a 40-epoch `fast` ResNet-20 beside 2-epoch `paper` rows).
    for model in ("plain20", "resnet20", "resnet56"):
        save_run(record(model, steps=782, uid="sweep"), tmp_path)
    fast = record("resnet20", steps=15_640, train_error=0.08, test_error=0.12, uid="fast")
    fast["recipe"]["recipe"] = "fast"
    save_run(fast, tmp_path)
    rows = {r["network"]: r for r in reproduction.table6(store=tmp_path).rows}
    assert {rows[n]["iterations"] for n in ("ResNet-20", "plain-20", "ResNet-56")} == {"782"}
    assert {rows[n]["recipe"] for n in ("ResNet-20", "plain-20", "ResNet-56")} == {"paper"}
    # Given a mixed study, the same: only the largest matched set is used.
    mixed = {("residual", 20): list_runs(tmp_path, model="resnet20")}
    mixed[("residual", 56)] = list_runs(tmp_path, model="resnet56")
    rows = {r["network"]: r for r in reproduction.table6(study=mixed).rows}
    assert rows["ResNet-20"]["recipe"] == "paper" and rows["ResNet-20"]["iterations"] == "782"


def test_table6_seed_means(tmp_path):
    for seed, err in ((0, 0.30), (1, 0.34)):
        rec = record("resnet20", test_error=err, uid=f"s{seed}")
        rec["seed"] = seed
        save_run(rec, tmp_path)
    rows = {r["network"]: r for r in reproduction.table6(store=tmp_path).rows}
    assert rows["ResNet-20"]["test error, ours (%)"] == "32.00 ± 2.00 (2 seeds)"


def test_matched_groups_and_seed_summaries(store):
    groups = studies.matched_groups(list_runs(store, tag="depth-study"))
    # Largest first: the 391-iteration sweep of four networks, then resnet56's 782 run.
    assert [len(g) for g in groups] == [4, 1]
    assert list(groups[1]) == [("residual", 56)]
    summaries = studies.seed_summaries(groups[0])
    s = summaries[("residual", 56)]
    assert s.train == (35.0,) and s.test == (60.0,) and s.n == 1 and s.label == "ResNet-56"
    # The same summaries as the laptop study, so its claims read them.
    from resnet_lab.results import laptop

    claims = {c.text: c for c in laptop.orderings(summaries)}
    assert claims["plain-56 trains worse than plain-20"].in_order
    assert not claims["plain-56 trains worse than plain-20"].holds  # one seed: no error bar
    assert claims["ResNet-56 trains better than ResNet-20"].in_order
    # One run or a list of runs per network.
    single = studies.seed_summaries({n: runs[0] for n, runs in groups[0].items()})
    assert single[("residual", 56)].train == (35.0,)


def test_claim_groups_and_verdicts(store):
    from resnet_lab.results import laptop

    groups = studies.matched_groups(list_runs(store, tag="depth-study"))
    claims = laptop.orderings(studies.seed_summaries(groups[0]))
    by = laptop.claim_groups(claims)
    assert [len(by[k]) for k in ("plain", "residual", "residual vs plain")] == [1, 1, 2]
    assert reproduction.claims_verdict(by["plain"]) == (
        "in the paper's order in 1 of 1 comparison, each with one seed of at least one of "
        "its networks (no error bar)"
    )
    assert reproduction.claims_verdict(by["residual vs plain"]).startswith(
        "in the paper's order in 1 of 2 comparisons"
    )
    assert reproduction.claims_verdict([]).startswith("not testable")
    two = laptop.Claim("a", True, 2.0, 1.0, "e"), laptop.Claim("b", True, 0.5, 1.0, "e")
    assert reproduction.claims_verdict(two) == (
        "in the paper's order in 2 of 2 comparisons, beyond one standard error in 1"
    )


def test_final_errors_is_the_stored_final_not_the_last_window(store):
    rec = studies.depth_study(store=store)[("plain", 20)]
    # The last step record (a window of mini-batches) differs from the stored final value.
    assert 100 * rec.record["steps"][-1]["train_error"] != pytest.approx(40.0)
    assert studies.final_errors(rec) == {"train_error": pytest.approx(40.0), "test_error": 60.0}
    assert studies.seed_summaries({("plain", 20): rec})[("plain", 20)].train == (
        pytest.approx(40.0),
    )


def test_depth_takeaway_from_numbers(store):
    text = reproduction.depth_takeaway(studies.depth_study(store=store))
    assert "plain nets rises with every step in depth (40.0% at 20, 55.0% at 56 layers)" in text
    assert "residual nets falls with every step in depth (42.0% at 20, 30.0% at 56" in text
    assert "below the plain net of its depth at 1 of 2 depth" in text
    assert "no run of the depth study" in reproduction.depth_takeaway({})


def test_depth_takeaway_names_a_run_at_a_lower_learning_rate(tmp_path):
    for model, err in (("resnet20", 0.4), ("resnet56", 0.5), ("resnet110", 0.45)):
        rec = record(model, train_error=err)
        if model == "resnet110":  # its warm-up at 0.01 outlasted the first drop
            rec["history"][0]["lr"] = 0.01
        save_run(rec, tmp_path)
    study = studies.depth_study(store=tmp_path)
    assert studies.peak_lr(study[("residual", 110)]) == pytest.approx(0.01)
    text = reproduction.depth_takeaway(study)
    assert "residual nets rises with every step in depth (40.0% at 20, 50.0% at 56" in text
    assert "ResNet-110 (45.0%) is left out of the trend" in text
    assert "never rose above 0.01" in text


def test_laptop_explorer(tmp_path):
    from resnet_lab.results import laptop

    for model in ("plain20", "resnet20-zi", "plain56", "resnet56-zi"):
        for seed in (0, 1):
            rec = record(model, tags=("laptop-depth",), uid=f"s{seed}")
            rec["seed"] = seed
            save_run(rec, tmp_path)
    study = laptop.laptop_study(tmp_path)
    explorer = reproduction.laptop_explorer(study)
    assert explorer.default == "56 layers"
    assert "ResNet-56, training (2 seeds)" in explorer.data["56 layers"]
    assert "Laptop depth study" in explorer.to_html()
    assert reproduction.laptop_explorer({}) is None


@pytest.mark.slow
def test_depth_panel_trains_and_overlays(store):
    from resnet_lab.data import load_data
    from resnet_lab.engine import recipe

    data = load_data("synthetic", train_per_class=8, test_per_class=2)
    config = recipe("paper", epochs=1, batch_size=40, log_every_steps=1)
    study = studies.depth_study(store=store)
    panel = reproduction.depth_panel(data, config, study, device="cpu", background=False)
    panel.depth.value, panel.kind.value = 20, "residual"
    panel.start.click()
    assert panel.error is None, panel.error
    assert not panel.running and not panel.start.disabled
    assert len(panel.live["residual-20"]) == 2  # 80 images, batches of 40
    assert panel.histories["residual-20"][-1]["step"] == 2
    fig = reproduction.overlay_figure(study, panel.live, panel.histories)
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels == [
        "residual-20, stored (train)",
        "residual-20, live (train)",
        "residual-20, live (test)",
    ]
    fig = reproduction.overlay_figure(study, panel.live, panel.histories, data.variant)
    assert [line.get_label() for line in fig.axes[0].lines][1:] == [
        "residual-20, live on synthetic (train)",
        "residual-20, live on synthetic (test)",
    ]
    assert list_runs(store, model="resnet20")  # the live run is not saved into the store
    assert len(list_runs(store, model="resnet20")) == 1


def test_runs_trained_differently_are_not_matched(tmp_path):
    """Same recipe name and length, but one setting changed (ResNet-56 with ResNet-110's
    warm-up) or another precision: not the same sweep, so Table 6 never averages them."""
    for seed, (model, err, change) in enumerate(
        [
            ("resnet20", 0.40, {}),
            ("resnet56", 0.60, {}),
            ("resnet56", 0.62, {"amp": "off"}),  # asked differently, trained alike (fp32)
            ("resnet56", 0.40, {"warmup_steps": 400}),  # trained differently
        ]
    ):
        rec = record(model, test_error=err, uid=f"u{seed}")
        rec["seed"] = seed
        rec["recipe"].update(seed=seed, **change)
        save_run(rec, tmp_path)
    groups = studies.matched_groups(list_runs(tmp_path))
    assert [sorted(len(v) for v in g.values()) for g in groups] == [[1, 2], [1]]
    rows = {r["network"]: r for r in reproduction.table6(store=tmp_path).rows}
    assert rows["ResNet-56"]["test error, ours (%)"] == "61.00 ± 1.00 (2 seeds)"


def test_claims_verdict_names_a_reversal_beyond_its_error_bar():
    from resnet_lab.results.laptop import Claim

    claims = [
        Claim("ResNet-32 trains better than ResNet-20", True, 3.2, 1.1, ""),
        Claim("ResNet-56 trains better than ResNet-44", False, -1.9, 0.54, ""),
        Claim("ResNet-44 trains better than ResNet-32", False, -0.1, 0.5, ""),  # a tie
    ]
    assert reproduction.claims_verdict(claims) == (
        "in the paper's order in 1 of 3 comparisons, beyond one standard error in 1; "
        "reversed beyond one standard error in 1: “ResNet-56 trains better than ResNet-44” "
        "is the other way round by 1.9 points (3.5 standard errors)"
    )
