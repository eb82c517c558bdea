"""resnet-lab bench: both pipelines train, the ratio and the breakdown are what they say.

No assertion here is about speed (speed goals are measured by running the bench);
these check that the numbers are computed from the right timings and reported.
"""

from __future__ import annotations

import pytest

from resnet_lab import bench as bench_mod
from resnet_lab import cli


def test_result_ratio_and_breakdown_text():
    r = bench_mod.BenchResult(
        model="resnet20",
        device="cpu",
        batch_size=128,
        steps=10,
        rounds=3,
        data="synthetic",
        workers=2,
        engine_ips=400.0,
        reference_ips=300.0,
        engine_compute_ips=410.0,
        reference_compute_ips=320.0,
    )
    assert r.ratio == pytest.approx(4 / 3)
    text = str(r)
    assert "ratio engine / reference: 1.33x" in text
    assert "model code alone: 1.28x" in text  # 410 / 320
    assert "free data pipeline could give the reference: 1.07x" in text  # 320 / 300
    assert "its data pipeline adds 6% of a step" in text  # reference: 1 - 300/320
    plain = bench_mod.BenchResult(
        **{**r.__dict__, "engine_compute_ips": None, "reference_compute_ips": None}
    )
    assert "breakdown" not in str(plain)


def test_one_batch_repeats_the_first_batch_and_leaves_the_rest():
    source = iter([1, 2, 3])
    fixed = bench_mod._one_batch(source)
    assert [next(fixed) for _ in range(4)] == [1, 1, 1, 1]
    assert next(source) == 2


def test_bench_trains_every_pipeline_on_cpu(monkeypatch):
    seen = []
    real_sync = bench_mod._sync

    def counting_sync(device):
        seen.append(device.type)
        real_sync(device)

    monkeypatch.setattr(bench_mod, "_sync", counting_sync)
    from resnet_lab import engine

    steps = []
    real_step = engine.train_step
    monkeypatch.setattr(engine, "train_step", lambda *a, **k: steps.append(1) or real_step(*a, **k))
    r = bench_mod.bench(
        "resnet20",
        batch_size=8,
        steps=1,
        warmup=0,
        rounds=1,
        device="cpu",
        data="synthetic",
        workers=0,
        amp="off",
        breakdown=True,
    )
    assert (
        r.data == "synthetic"
        and r.engine_precision == r.reference_precision == "fp32"
        and r.channels_last
    )
    for ips in (r.engine_ips, r.reference_ips, r.engine_compute_ips, r.reference_compute_ips):
        assert ips > 0
    assert len(seen) == 2 * 4  # before and after the timed steps of each of the four pipelines
    assert len(steps) == 4  # every pipeline trains with the engine's one step function


@pytest.mark.parametrize("kwargs", [{"steps": 0}, {"rounds": 0}, {"batch_size": 0}, {"warmup": -1}])
def test_bench_rejects_bad_counts(kwargs):
    with pytest.raises(ValueError, match="positive"):
        bench_mod.bench("resnet20", device="cpu", data="synthetic", **kwargs)


def test_cli_bench_prints_breakdown(capsys):
    code = cli.main(
        [
            "bench",
            "resnet20",
            "--batch-size",
            "8",
            "--steps",
            "1",
            "--warmup",
            "0",
            "--rounds",
            "1",
            "--workers",
            "0",
            "--data",
            "synthetic",
            "--device",
            "cpu",
            "--breakdown",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "ratio engine / reference" in out and "model code alone" in out
