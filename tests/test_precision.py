"""The precision a run trains in: chosen by hardware (amp='auto'), recorded, printed."""

from __future__ import annotations

import pytest
import torch

import resnet_lab as rl
from resnet_lab import bench as bench_mod
from resnet_lab import data, engine, results

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _no_forced_precision(monkeypatch):
    """These tests read how `auto` is chosen; `make notebooks-test` sets RESNET_LAB_AMP."""
    monkeypatch.delenv("RESNET_LAB_AMP", raising=False)


def _fake_capabilities(monkeypatch, **flags):
    caps = {"avx2": True, "avx512_bf16": False, "amx_bf16": False, **flags}
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: caps, raising=False)


def test_auto_is_bf16_on_a_cpu_with_native_bf16(monkeypatch):
    _fake_capabilities(monkeypatch, avx512_bf16=True)
    assert engine.cpu_has_native_bf16()
    assert engine.amp_dtype("auto", CPU) is torch.bfloat16
    assert engine.precision_of("auto", "cpu") == "bf16"


def test_auto_is_bf16_on_a_cpu_with_amx(monkeypatch):
    _fake_capabilities(monkeypatch, amx_bf16=True)
    assert engine.precision_of("auto", "cpu") == "bf16"


def test_auto_is_fp32_on_a_cpu_without_native_bf16(monkeypatch):
    _fake_capabilities(monkeypatch)  # e.g. an AVX2-only CPU: bf16 would be emulated
    assert not engine.cpu_has_native_bf16()
    assert engine.amp_dtype("auto", CPU) is None
    assert engine.precision_of("auto", "cpu") == "fp32"


def test_older_torch_falls_back_to_the_cpu_probes(monkeypatch):
    monkeypatch.delattr(torch.cpu, "get_capabilities", raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    assert engine.precision_of("auto", "cpu") == "bf16"
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert engine.precision_of("auto", "cpu") == "fp32"


@pytest.mark.parametrize("native", [True, False])
def test_an_explicit_amp_wins(monkeypatch, native):
    _fake_capabilities(monkeypatch, avx512_bf16=native)
    assert engine.precision_of("off", "cpu") == "fp32"
    assert engine.precision_of("bf16", "cpu") == "bf16"


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("forced, expected", [("off", "fp32"), ("bf16", "bf16"), (" Auto ", None)])
def test_resnet_lab_amp_forces_what_auto_means(monkeypatch, native, forced, expected):
    _fake_capabilities(monkeypatch, avx512_bf16=native)
    monkeypatch.setenv("RESNET_LAB_AMP", forced)
    hardware = "bf16" if native else "fp32"
    assert engine.precision_of("auto", "cpu") == (expected or hardware)
    assert engine.precision_of("off", "cpu") == "fp32"  # an explicit choice still wins
    assert engine.precision_of("bf16", "cpu") == "bf16"
    assert f"precision {expected or hardware} |" in str(rl.setup(quiet=True))  # the setup line


def test_resnet_lab_amp_forces_the_precision_a_run_trains_in(monkeypatch, tiny):
    _fake_capabilities(monkeypatch, avx512_bf16=True)
    monkeypatch.setenv("RESNET_LAB_AMP", "off")
    torch.manual_seed(0)
    config = engine.recipe("fast", epochs=1, batch_size=16, log_every_steps=0)
    assert config.amp == "auto"
    run = engine.train(rl.build("resnet20"), tiny, config, device="cpu", progress=False)
    assert run.precision == "fp32"
    assert results.record_from_run(run)["precision"] == "fp32"


def test_an_unknown_resnet_lab_amp_is_one_line_that_names_the_choices(monkeypatch):
    monkeypatch.setenv("RESNET_LAB_AMP", "fp8")
    with pytest.raises(ValueError, match="RESNET_LAB_AMP must be one of auto, bf16, fp16, off"):
        engine.amp_dtype("auto", CPU)


def test_mps_stays_fp32(monkeypatch):
    _fake_capabilities(monkeypatch, avx512_bf16=True)
    assert engine.amp_dtype("auto", torch.device("mps")) is None


@pytest.fixture
def tiny():
    return data.synthetic(n_train=32, n_test=16, image_size=8)


@pytest.mark.parametrize("amp, expected", [("off", "fp32"), ("bf16", "bf16")])
def test_run_and_record_name_the_precision(tiny, tmp_path, capsys, amp, expected):
    torch.manual_seed(0)
    config = engine.recipe("fast", epochs=1, batch_size=16, amp=amp, log_every_steps=0)
    run = engine.train(rl.build("resnet20"), tiny, config, device="cpu")
    assert run.precision == expected
    record = results.load_run(results.save_finished(run, tmp_path))
    assert record["precision"] == expected and record.precision == expected
    assert f"{expected} (channels-last)" in capsys.readouterr().out  # the run's first line


def test_records_from_before_the_field_read_their_precision(tiny, tmp_path):
    torch.manual_seed(0)
    config = engine.recipe("fast", epochs=1, batch_size=16, amp="off", log_every_steps=0)
    run = engine.train(rl.build("resnet20"), tiny, config, device="cpu", progress=False)
    record = results.record_from_run(run)
    del record["precision"]
    for amp, device_type, expected in [
        ("auto", "cpu", "fp32"),
        ("bf16", "cpu", "bf16"),
        ("off", "cuda", "fp32"),
        ("auto", "cuda", "unknown"),
    ]:
        rec = dict(record, recipe={**record["recipe"], "amp": amp}, device_type=device_type)
        assert results.RunRecord(rec, None).precision == expected


def test_bench_times_the_engine_in_its_precision_and_the_reference_in_fp32():
    r = bench_mod.bench(
        "resnet20",
        batch_size=8,
        steps=1,
        warmup=0,
        rounds=1,
        device="cpu",
        data="synthetic",
        workers=0,
        amp="bf16",
    )
    assert (r.engine_precision, r.reference_precision) == ("bf16", "fp32")
    text = str(r)
    assert "bf16): " in text and "fp32): " in text
