"""Nothing a user makes is lost or lies: bad input is one line (exit 2) and leaves nothing
behind, a diverged run never reads "completed" and its checkpoint is its last good epoch,
a batch that cannot fit is refused before training, messages use the caller's words."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from resnet_lab import cli, engine
from resnet_lab import engine as E
from resnet_lab.cli.flags import _spell_flag
from resnet_lab.data import synthetic

TINY = [
    "--data",
    "synthetic",
    "--subset",
    "2",
    "--test-subset",
    "1",
    "--epochs",
    "1",
    "--batch-size",
    "10",
]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "resnet20", *TINY, "--lr", "inf"], "--lr inf: lr must be a finite number > 0"),
        (["train", "resnet20", *TINY, "--momentum", "nan"], "--momentum nan: momentum must be in"),
        (["train", "resnet20", *TINY, "--set", "gamma=nan"], "--set gamma=nan: gamma must be"),
        (["train", "resnet20", *TINY, "--set", "warmup_lr=-1"], "--set warmup_lr=-1: warmup_lr"),
        (
            ["train", "resnet20", *TINY, "--set", "eval_batch_size=0"],
            "--set eval_batch_size=0: eval_batch_size must be a positive integer",
        ),
        (["sweep", "--models", "resnet20", *TINY, "--lr", "-1"], "--lr -1: lr must be"),
        (
            ["train", "resnet20", "--data", "no/such/cifar.zip"],
            "'no/such/cifar.zip' does not exist",
        ),
        (
            ["info", "resnet20", "--input-size", "1", "32", "32"],
            "takes images with 3 channels (e.g. --input-size 3 32 32)",
        ),
        (["info", "resnet20", "--num-classes", "-3"], "--num-classes -3: a classifier needs"),
        (["info", "resnet20", "--num-classes", "0"], "--num-classes 0: a classifier needs"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_leaves_no_folder(
    argv, message, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []  # no results/ nor runs/ folder made before the refusal


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_device_errors_name_the_flag(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "resnet20", *TINY, "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "use --device cpu" in err and "device='cpu'" not in err
    assert list(tmp_path.iterdir()) == []


def test_config_errors_name_the_field_for_the_api():
    for field, value in [
        ("lr", math.inf),
        ("momentum", math.nan),
        ("gamma", math.nan),
        ("warmup_lr", -1.0),
        ("eval_batch_size", 0),
        ("weight_decay", -1e-4),
        ("batch_size", 0),
        ("seed", -1),
        ("label_smoothing", 1.0),
    ]:
        with pytest.raises(E.ConfigError) as info:
            E.recipe("fast", **{field: value})
        assert info.value.field == field and str(info.value).startswith(f"TrainConfig: {field} ")


def test_info_answers_any_input_size_at_once_with_a_memory_estimate(capsys):
    # On the meta device: no 120 GB allocation for a 100000 x 100000 image.
    assert cli.main(["info", "resnet20", "--input-size", "3", "100000", "100000"]) == 0
    out = capsys.readouterr().out
    assert "269,722" in out and "TiB of layer outputs when training" in out


# ----------------------------------------------------------------------------- divergence


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
    )


@pytest.fixture(scope="module")
def data():
    return synthetic(64, 20, seed=0)


def small(**kw) -> E.TrainConfig:
    kw = {"epochs": 3, "batch_size": 32, "log_every_steps": 1, "eval_batch_size": 20, **kw}
    return E.recipe("fast", **kw)


class _BadFromEpoch(nn.Module):
    """Finite training losses throughout; from training epoch ``epoch`` on (2 steps an epoch)
    the test loss is NaN (``what='test'``) or a BatchNorm buffer is inf (``what='buffer'``)."""

    def __init__(self, epoch: int, what: str):
        super().__init__()
        self.net, self.epoch, self.what, self.steps = tiny_net(), epoch, what, 0

    def forward(self, x):
        if self.training:
            self.steps += 1
            if self.what == "buffer" and self.steps > 2 * (self.epoch - 1):
                self.net[1].running_var.fill_(math.inf)  # before BatchNorm reads it
        out = self.net(x)
        if not self.training and self.what == "test" and self.steps > 2 * (self.epoch - 1):
            out = out * math.nan
        return out


@pytest.mark.parametrize(
    "what, named", [("test", "the test loss is nan"), ("buffer", "net.1.running_var")]
)
@pytest.mark.parametrize("checkpoint_every", [1, 2])
def test_a_run_with_any_non_finite_value_diverges_and_keeps_its_last_good_epoch(
    data, tmp_path, what, named, checkpoint_every
):
    ck = tmp_path / "ck.pt"
    config = small(checkpoint_every=checkpoint_every)
    with pytest.raises(E.TrainingDiverged, match=named) as info:
        E.train(_BadFromEpoch(2, what), data, config, progress=False, checkpoint=ck)
    run = info.value.run
    assert run.status == "diverged" and [h["epoch"] for h in run.history] == [1]
    assert all(s["step"] <= 2 for s in run.steps)
    # The checkpoint is epoch 1 (with checkpoint_every=2 it was kept in memory, saved now).
    state = torch.load(ck, weights_only=True)
    assert state["progress"]["epoch"] == 1 and info.value.checkpoint_step == 2
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())


def test_a_first_epoch_that_diverges_saves_no_checkpoint(data, tmp_path):
    ck = tmp_path / "ck.pt"
    with pytest.raises(E.TrainingDiverged) as info:
        E.train(_BadFromEpoch(1, "buffer"), data, small(), progress=False, checkpoint=ck)
    assert not ck.exists() and info.value.checkpoint_step is None
    assert info.value.run.history == [] and info.value.run.checkpoint is None


def test_the_divergence_hint_names_an_unusual_setting_in_the_callers_words(data):
    config = small(momentum=0.995)
    with pytest.raises(E.TrainingDiverged) as info:
        E.train(_BadFromEpoch(1, "test"), data, config, progress=False)
    exc = info.value
    assert "momentum 0.995 is above 0.99" in str(exc) and "(momentum=0.9)" in str(exc)
    assert "lower the learning rate" not in str(exc)
    assert "(--momentum 0.9)" in exc.explain(_spell_flag)
    with pytest.raises(E.TrainingDiverged) as info:
        E.train(_BadFromEpoch(1, "test"), data, small(), progress=False)
    assert "lower the learning rate (lr=" in str(info.value)
    assert "(--lr " in info.value.explain(_spell_flag)


# ----------------------------------------------------------------------------- memory


def test_a_batch_that_cannot_fit_is_refused_before_training(data, monkeypatch):
    monkeypatch.setattr(E.checks, "_available_memory", lambda device: 1_000_000)
    with pytest.raises(
        E.OutOfMemory, match=r"a training batch of 32 images needs at least"
    ) as info:
        E.train(tiny_net(), data, small(), progress=False)
    assert info.value.run is None
    (fix,) = info.value.fixes
    fits = fix.settings["batch_size"]
    assert 1 <= fits < 32
    fitting = small(epochs=1, batch_size=fits, eval_batch_size=fits)
    E.train(tiny_net(), data, fitting, progress=False)  # the suggestion does fit


def test_the_command_line_refuses_a_huge_batch_naming_the_flag(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(E.checks, "_available_memory", lambda device: 20_000_000)
    assert cli.main(["train", "resnet20", *TINY, "--batch-size", "100000"]) == 2
    err = capsys.readouterr().err
    assert "needs at least" in err and "--batch-size " in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- interrupts


@pytest.mark.parametrize("quiet", [True, False])
def test_the_interrupt_message_is_printed_once_in_the_command_lines_words(
    tmp_path, monkeypatch, capsys, quiet
):
    monkeypatch.chdir(tmp_path)
    real_train = engine.train

    def press_ctrl_c(event, run, record):
        if event == "epoch":
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(
        engine, "train", lambda *a, **kw: real_train(*a, **kw, callbacks=[press_ctrl_c])
    )
    argv = ["train", "resnet20", *TINY, "--output", "run", "--no-store"]
    argv[argv.index("--epochs") + 1] = "2"
    assert cli.main(argv + (["--quiet"] if quiet else [])) == cli.EXIT_INTERRUPTED
    said = capsys.readouterr()
    text = said.out + said.err
    assert text.count("interrupted at step") == 1, text
    assert "--resume" in text and "resume=True" not in text
    assert Path("run/checkpoint.pt").exists()


# ----------------------------------------------------------------------------- data, store


def test_a_class_mismatch_names_the_classes(tmp_path):
    from resnet_lab.data import DataError, load_data

    for split, classes in (("train", ("cat", "dog")), ("test", ("cat", "emu"))):
        for c in classes:
            (tmp_path / "set" / split / c).mkdir(parents=True)
            (tmp_path / "set" / split / c / "0.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"only in train/: dog; only in test/: emu"):
        load_data(tmp_path / "set")


@pytest.mark.slow
def test_the_store_test_suite_fails_on_a_damaged_file_naming_it(tmp_path):
    from resnet_lab import results

    store = tmp_path / "store"
    (store / "sub").mkdir(parents=True)
    (store / "sub" / "broken.json").write_text('{"schema": "resnet_lab.run/1", "id": "x')
    suite = Path(__file__).resolve().parent / "test_results_store.py"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(suite)],
        capture_output=True,
        text=True,
        env={**os.environ, "RESNET_LAB_CHECK_STORE": str(store)},
    )
    assert proc.returncode == 1 and "sub/broken.json" in proc.stdout, proc.stdout[-2000:]
    with pytest.warns(UserWarning, match="sub/broken.json"):
        assert results.list_runs(store) == []  # readers go on
