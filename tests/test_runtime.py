"""The runtime picks device, tier and data location from arguments and environment variables."""

from __future__ import annotations

import pytest
import torch

import resnet_lab as rl
from resnet_lab import runtime


def test_tier_defaults_to_quick_on_cpu(monkeypatch):
    monkeypatch.delenv("RESNET_LAB_TIER", raising=False)
    assert runtime.pick_tier(device=torch.device("cpu")) == "quick"
    assert runtime.pick_tier(device=torch.device("cuda")) == "standard"


def test_tier_from_environment_and_argument(monkeypatch):
    monkeypatch.setenv("RESNET_LAB_TIER", " Standard ")
    assert runtime.pick_tier() == "standard"
    assert runtime.pick_tier("quick") == "quick"


def test_bad_tier_names_the_choices(monkeypatch):
    monkeypatch.setenv("RESNET_LAB_TIER", "huge")
    with pytest.raises(ValueError, match="quick, standard, full"):
        runtime.pick_tier()


def test_notebooks_refuse_the_full_tier(monkeypatch, capsys):
    monkeypatch.setenv("RESNET_LAB_TIER", "full")
    with pytest.raises(ValueError, match="resnet-lab train --recipe paper"):
        rl.setup()


def test_setup_prints_one_line_and_seeds(monkeypatch, capsys):
    monkeypatch.setenv("RESNET_LAB_TIER", "quick")
    monkeypatch.delenv("RESNET_LAB_DEVICE", raising=False)
    env = rl.setup(seed=3)
    first = torch.rand(1)
    rl.setup(seed=3, quiet=True)
    assert torch.equal(first, torch.rand(1))
    line = capsys.readouterr().out.strip()
    assert line.count("\n") == 0 and f"tier {env.tier}" in line and "/" not in line.split("|")[-1]


def test_cuda_device_requested_without_gpu_says_what_to_do(monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    monkeypatch.setenv("RESNET_LAB_DEVICE", "cuda")
    with pytest.raises(ValueError, match="device='cpu'"):
        runtime.pick_device()


def test_data_location_argument_beats_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RESNET_LAB_DATA", str(tmp_path / "env"))
    assert runtime.data_location() == tmp_path / "env"
    assert runtime.data_location(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.setenv("RESNET_LAB_DATA", "")
    assert runtime.data_location() is None


def test_glue_works_without_myst_nb(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_myst(name, *args, **kwargs):
        if name.startswith("myst_nb"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_myst)
    assert rl.glue("answer", 42) == 42


def test_show_source_shows_the_real_code():
    code = rl.show_source(runtime.pick_tier)
    assert "def pick_tier" in code.data


@pytest.mark.parametrize(
    "choice, message", [("bogus", "unknown device 'bogus'"), ("cuda:x", "unknown device")]
)
def test_unknown_device_names_the_choices(choice, message):
    with pytest.raises(ValueError, match=message):
        runtime.pick_device(choice)


def test_mps_requested_without_an_apple_gpu_says_what_to_do(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"no Apple GPU.*device='cpu'"):
        runtime.pick_device("mps")
