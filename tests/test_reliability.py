"""Nothing a user makes is lost or lies: bad input is one line (exit 2) and leaves nothing
behind, a diverged run never reads "completed" and its checkpoint is its last good epoch,
a batch that cannot fit is refused before training, messages use the caller's words."""

from __future__ import annotations

import json
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
from resnet_lab.checkpoint import CheckpointError
from resnet_lab.cli.flags import _config, _spell_flag
from resnet_lab.cli.train import _load_data
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


# ----------------------------------------------------------------------------- resume honesty


def _cli(argv, capsys) -> tuple[int, str]:
    code = cli.main(argv)
    said = capsys.readouterr()
    return code, said.out + said.err


def _one_line_error(code: int, text: str, *words: str) -> None:
    err = [line for line in text.strip().splitlines() if "error" in line or "resnet-lab" in line]
    assert code == 2 and "Traceback" not in text, text
    assert len(err) == 1 and all(w in err[0] for w in words), text


def test_resume_refuses_other_data_and_a_finished_run_keeps_its_record(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    base = ["train", "resnet20", *TINY, "--image-size", "8", "--output", "run", "--store", "st"]
    code, _ = _cli(base, capsys)
    assert code == 0
    (path,) = Path("st").glob("*.json")
    before = path.read_text()
    for other, named in (
        (["--subset", "3"], "train_size=20 (checkpoint) vs 30 (now)"),
        (["--test-subset", "2"], "test_size=10 (checkpoint) vs 20 (now)"),
        (["--image-size", "16"], "variant='synthetic-8px' (checkpoint)"),
    ):
        argv = [*base, "--resume", *other]
        if "--image-size" in other:
            argv = [a for i, a in enumerate(argv) if a != "8" or argv[i - 1] != "--image-size"]
            argv.remove("--image-size")
            argv += other
        code, text = _cli(argv, capsys)
        _one_line_error(code, text, "was trained on other data", named, "another checkpoint path")
    assert [p.read_text() for p in Path("st").glob("*.json")] == [before]  # not re-saved


def _stopped_run(tmp_path, data, **kw):
    ck = tmp_path / "ck.pt"

    def stop(event, run, record):
        if event == "epoch":
            raise E.StopTraining

    config = small(**kw)
    first = E.train(tiny_net(), data, config, progress=False, checkpoint=ck, callbacks=[stop])
    assert first.status == "stopped"
    return ck, config


def test_resume_refuses_another_precision_or_other_images_of_the_same_sizes(data, tmp_path):
    import dataclasses

    ck, config = _stopped_run(tmp_path, data, amp="off")
    bf16 = dataclasses.replace(config, amp="bf16")
    with pytest.raises(CheckpointError, match=r"was trained in fp32, but would continue in bf16"):
        E.train(tiny_net(), data, bf16, progress=False, checkpoint=ck, resume=True)
    other = synthetic(64, 20, seed=1)  # the same variant, source and sizes
    with pytest.raises(CheckpointError, match="the images or labels differ"):
        E.train(tiny_net(), other, config, progress=False, checkpoint=ck, resume=True)
    run = E.train(tiny_net(), data, config, progress=False, checkpoint=ck, resume=True)
    assert run.status == "completed" and run.epochs == 3 and run.precision == "fp32"


def test_resume_refuses_a_step_past_the_total(data, tmp_path):
    from resnet_lab import checkpoint as C

    ck, config = _stopped_run(tmp_path, data)
    state = C.load_checkpoint(ck)
    state["progress"]["step"] = 10_000
    C.save_checkpoint(state, ck)
    with pytest.raises(CheckpointError, match=r"at step 10000 .* past this run's 6 steps"):
        E.train(tiny_net(), data, config, progress=False, checkpoint=ck, resume=True)


def test_a_checkpoint_of_the_previous_version_still_resumes(data, tmp_path):
    """No precision, data fingerprint or step-record mark: checked on what it has."""
    from resnet_lab import checkpoint as C

    ck, config = _stopped_run(tmp_path, data)  # amp 'auto': its precision is not known
    state = C.load_checkpoint(ck)
    for key in ("precision", "data_fingerprint"):
        del state["run"][key]
    state["progress"].pop("record_mark", None)
    C.save_checkpoint(state, ck)
    run = E.train(tiny_net(), data, config, progress=False, checkpoint=ck, resume=True)
    assert run.status == "completed" and run.epochs == 3


class _SignalAt(nn.Module):
    """tiny_net that sends itself ``sig`` in its ``at``-th training step."""

    def __init__(self, at: int, sig: int = signal.SIGINT):
        super().__init__()
        self.net, self.at, self.sig, self.steps = tiny_net(), at, sig, 0

    def forward(self, x):
        if self.training:
            self.steps += 1
            if self.steps == self.at:
                os.kill(os.getpid(), self.sig)
        return self.net(x)


def test_the_first_step_record_after_a_mid_epoch_resume_averages_all_its_steps(tmp_path):
    d = synthetic(64, 20, seed=0)
    config = small(epochs=2, batch_size=8, log_every_steps=4, deterministic=True)
    whole = E.train(_SignalAt(0), d, config, progress=False)
    ck = tmp_path / "ck.pt"
    first = E.train(_SignalAt(6), d, config, progress=False, checkpoint=ck)
    assert first.status == "interrupted" and "step 6" in first.message  # between records
    resumed = E.train(_SignalAt(0), d, config, progress=False, checkpoint=ck, resume=True)
    keys = ("step", "train_loss", "train_error", "lr")
    assert [[r[k] for k in keys] for r in resumed.steps] == [
        [r[k] for k in keys] for r in whole.steps
    ]


def test_sigterm_saves_a_checkpoint_and_says_how_to_resume(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    real_train = engine.train

    sent = []

    def term(event, run, record):
        if event == "epoch" and not sent:
            sent.append(os.kill(os.getpid(), signal.SIGTERM))

    monkeypatch.setattr(engine, "train", lambda *a, **kw: real_train(*a, **kw, callbacks=[term]))
    before = signal.getsignal(signal.SIGTERM)
    argv = ["train", "resnet20", *TINY, "--output", "run", "--no-store", "--quiet"]
    argv[argv.index("--epochs") + 1] = "2"
    code, text = _cli(argv, capsys)
    assert code == cli.EXIT_INTERRUPTED and "interrupted at step 2" in text
    assert "resume with --resume" in text and Path("run/checkpoint.pt").exists()
    assert signal.getsignal(signal.SIGTERM) is before
    code, text = _cli([*argv, "--resume"], capsys)
    assert code == 0 and "completed after 2 epochs" in text


# ----------------------------------------------------------------------------- one writer


def test_a_second_writer_is_refused_at_once_naming_the_first(tmp_path, monkeypatch, capsys):
    from resnet_lab import locks

    monkeypatch.chdir(tmp_path)
    argv = ["train", "resnet20", *TINY, "--output", "run", "--no-store"]
    with locks.exclusive(Path("run/.checkpoint.pt.lock"), "x", "y"):
        code, text = _cli(argv, capsys)
    _one_line_error(code, text, "in use by another process", f"pid {os.getpid()} on host")
    assert not Path("run/checkpoint.pt").exists()
    # A lock file left by a killed process blocks nothing: the kernel dropped its lock.
    Path("run/.checkpoint.pt.lock").write_text("pid 999999 on host gone since 2020")
    Path("run/.checkpoint.pt.x1y2.tmp").write_bytes(b"\0" * 1000)  # a save a SIGKILL cut short
    code, _ = _cli(argv, capsys)
    assert code == 0 and sorted(p.name for p in Path("run").iterdir()) == ["checkpoint.pt"]


def test_a_sweep_skips_a_run_another_sweep_is_training(tmp_path, monkeypatch, capsys):
    from resnet_lab.cli import sweep

    monkeypatch.chdir(tmp_path)
    argv = ["sweep", "--models", "resnet20", *TINY, "--image-size", "8", "--store", "st"]
    args = cli._parser().parse_args(argv)
    data = _load_data(args, quiet=True)
    with sweep._claim(Path("st"), "resnet20", data, _config(args, 0)) as holder:
        assert holder is None
        code, text = _cli(argv, capsys)
    assert code == 0 and f"skip resnet20 seed 0: trained by pid {os.getpid()}" in text
    assert not Path("st").exists() or not list(Path("st").glob("*.json"))
    code, text = _cli(argv, capsys)
    assert code == 0 and len(list(Path("st").glob("*.json"))) == 1
    assert not Path("st/.claims").exists()  # released claims leave nothing behind


def test_a_sweep_does_not_skip_a_run_measured_on_another_test_subset(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["sweep", "--models", "resnet20", *TINY, "--image-size", "8", "--store", "st"]
    assert _cli(argv, capsys)[0] == 0
    argv[argv.index("--test-subset") + 1] = "2"
    code, text = _cli([*argv, "--output", "other"], capsys)
    assert code == 0 and "skip" not in text
    assert sorted(
        r.data["test_size"] for r in __import__("resnet_lab").results.list_runs("st")
    ) == [
        10,
        20,
    ]


# ----------------------------------------------------------------------------- full disk


def _full_disk(monkeypatch, exc: Exception) -> None:
    def save(obj, f, *a, **kw):
        f.write(b"partial")
        raise exc

    monkeypatch.setattr(torch, "save", save)


@pytest.mark.parametrize(
    "exc",
    [
        OSError(28, "No space left on device"),
        RuntimeError(
            "[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed "
            "writing file data/3: file write failed"
        ),
    ],
)
def test_a_full_disk_names_the_file_and_the_room_and_keeps_the_old_checkpoint(
    tmp_path, monkeypatch, exc
):
    from resnet_lab import checkpoint as C

    ck = tmp_path / "ck.pt"
    C.save_checkpoint({"model": {"w": torch.ones(1000)}}, ck)
    old = ck.read_bytes()
    _full_disk(monkeypatch, exc)
    with pytest.raises(OSError) as info:
        C.save_checkpoint({"model": {"w": torch.zeros(2**20)}}, ck)
    assert info.value.filename == str(ck)
    assert "the file needs about 4.0 MiB" in str(info.value) and "MiB are free there" in str(
        info.value
    )
    assert ck.read_bytes() == old and sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]


def test_a_full_disk_during_training_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _full_disk(monkeypatch, OSError(28, "No space left on device"))
    code, text = _cli(["train", "resnet20", *TINY, "--output", "run", "--no-store"], capsys)
    assert code == cli.EXIT_FAILED and "Traceback" not in text
    (line,) = [t for t in text.splitlines() if "No space left" in t]
    assert "run/checkpoint.pt" in line and "needs about" in line and "free space" in line


# ----------------------------------------------------------------------------- the store


def test_the_store_reads_past_any_bad_file_naming_each_once(tmp_path):
    from test_studies import record

    from resnet_lab import results

    store = tmp_path / "store"
    results.save_run(record("resnet20"), store)
    bad = {
        "milestones.json": ("recipe", {"recipe": "paper", "milestones": 5}),
        "variant.json": ("data", {"variant": None}),
        "tags.json": ("tags", [{"a": 1}]),
        "final.json": ("final", {"test_error": "low"}),
    }
    for name, (field, value) in bad.items():
        rec = record("plain20", uid=name)
        rec[field] = value
        (store / name).write_text(json.dumps(rec))
    os.mkfifo(store / "fifo.json")  # reading it would wait for ever
    with pytest.warns(UserWarning) as warned:
        runs = results.list_runs(store)
    assert [r.model for r in runs] == ["resnet20"]
    said = [str(w.message) for w in warned]
    for name in [*bad, "fifo.json"]:
        assert sum(name in w for w in said) == 1, said
    assert any("recipe.milestones" in w for w in said)
    with pytest.raises(results.ResultsError):
        results.validate_store(store)


# ----------------------------------------------------------------------------- data


def test_a_dry_run_of_the_gpu_suite_keeps_its_records_in_its_own_folder(tmp_path, monkeypatch):
    from resnet_lab import suite

    seen = {}
    monkeypatch.setattr(suite, "run_gpu", lambda out, **kw: seen.update(kw, out=out) or 0)
    monkeypatch.setenv("RESNET_LAB_RESULTS", str(tmp_path / "real"))
    assert cli.main(["suite", "gpu", "--dry-run", "--out", str(tmp_path / "out")]) == 0
    assert seen["store"] == tmp_path / "out" / "store"
    assert (
        cli.main(["suite", "gpu", "--out", str(tmp_path / "o2"), "--dry-run", "--store", "s"]) == 0
    )
    assert seen["store"] == Path("s")
