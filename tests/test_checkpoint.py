"""Checkpoints: weights-only loadable, format-checked, and refused when they do not fit."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from resnet_lab import checkpoint as C
from resnet_lab import engine as E
from resnet_lab.data import synthetic


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10)
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    ck = tmp_path_factory.mktemp("ck") / "run" / "checkpoint.pt"
    data = synthetic(64, 20)
    config = E.recipe("fast", epochs=1, batch_size=32, eval_batch_size=64)
    run = E.train(net(), data, config, progress=False, checkpoint=ck, name="net")
    return ck, data, config, run


def test_checkpoint_loads_weights_only_with_everything_to_resume(trained):
    ck, _, config, run = trained
    state = torch.load(ck, weights_only=True)
    assert state["format"] == C.FORMAT
    assert set(state) >= {
        "model",
        "optimizer",
        "scaler",
        "config",
        "progress",
        "history",
        "rng",
        "steps",
        "run",
        "wall_time",
    }
    assert state["config"] == config.to_dict() and state["history"] == run.history
    assert state["progress"]["step"] == 2 and isinstance(state["rng"]["cpu"], torch.Tensor)
    model = net()
    model.load_state_dict(state["model"])
    for a, b in zip(model.state_dict().values(), run.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_foreign_missing_and_corrupt_checkpoints_are_refused(tmp_path):
    with pytest.raises(C.CheckpointError, match="nope.pt: no such file"):
        C.load_checkpoint(tmp_path / "nope.pt")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(C.CheckpointError, match="other.pt: not a resnet_lab checkpoint"):
        C.load_checkpoint(tmp_path / "other.pt")
    (tmp_path / "cut.pt").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(C.CheckpointError, match=r"cut.pt: damaged .*delete it") as info:
        C.load_checkpoint(tmp_path / "cut.pt")
    message = str(info.value)
    assert "\n" not in message and str(tmp_path / "cut.pt") in message  # one line, full path


def test_checkpoint_tensors_are_saved_as_cpu_copies(tmp_path, monkeypatch):
    moved = []
    real_cpu = torch.Tensor.cpu

    def spy(self, *args, **kwargs):
        moved.append(tuple(self.shape))
        return real_cpu(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "cpu", spy)
    state = {
        "model": {"w": torch.ones(2, 3)},
        "optimizer": {"state": [torch.zeros(4)]},
        "config": {},
        "progress": {"acc": torch.zeros(1)},
        "history": [],
        "t": (1, 2),
    }
    C.save_checkpoint(state, tmp_path / "c.pt")
    assert sorted(moved) == [(1,), (2, 3), (4,)]  # every tensor, however deeply nested
    back = C.load_checkpoint(tmp_path / "c.pt")
    assert back["t"] == (1, 2) and torch.equal(back["optimizer"]["state"][0], torch.zeros(4))


def test_resume_with_other_settings_or_model_is_refused(trained):
    ck, data, config, _ = trained
    with pytest.raises(C.CheckpointError, match=r"batch_size=32 \(checkpoint\) vs 16"):
        E.train(
            net(),
            data,
            E.recipe("fast", epochs=1, batch_size=16),
            progress=False,
            checkpoint=ck,
            resume=True,
            name="net",
        )
    with pytest.raises(C.CheckpointError, match="belongs to model 'net'"):
        E.train(net(), data, config, progress=False, checkpoint=ck, resume=True, name="other")
    # A completed run resumed again trains nothing more and keeps its history.
    again = E.train(net(), data, config, progress=False, checkpoint=ck, resume=True, name="net")
    assert again.status == "completed" and again.epochs == 1


def test_rng_state_round_trip():
    state = C.rng_state()
    a = torch.rand(3)
    C.set_rng_state(state)
    assert torch.equal(torch.rand(3), a)
