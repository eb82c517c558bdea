"""The resnet-lab command: help everywhere, clean errors for user mistakes, real runs."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from resnet_lab import cli, results
from resnet_lab.cli import flags, sweep
from resnet_lab.cli.parser import _parser


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["train", "--help"],
        ["sweep", "--help"],
        ["bench", "--help"],
        ["info", "--help"],
        ["weights", "--help"],
        ["eval", "--help"],
    ],
)
def test_help_everywhere(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 0
    assert "usage: resnet-lab" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "resnet21", "--data", "synthetic"], "depth must be"),
        (["train", "nosuchnet", "--data", "synthetic"], "unknown model"),
        (
            ["train", "resnet20", "--data", "missing-folder.zip"],
            "'missing-folder.zip' does not exist",
        ),
        (["train", "resnet20", "--data", "cifar11"], "unknown dataset 'cifar11'"),
        (["train", "resnet20", "--data", "synthetic", "--epochs", "0"], "positive integer"),
        (["sweep", "--models", "resnet20", "plainX"], "unknown model"),
        (["info"], "--list"),
        (["info", "resnet20", "--input-size", "3", "0", "0"], "three positive numbers"),
        (["train", "resnet20", "--data", "synthetic", "--subset", "0"], "--subset N takes"),
        (["train", "resnet20", "--data", "synthetic", "--device", "bogus"], "unknown device"),
        (
            ["train", "resnet20", "--data", "synthetic", "--output", "r", "--resume"],
            "no checkpoint at r/checkpoint.pt",
        ),
        (
            ["train", "resnet20", "--data", "synthetic", "--output", "a-file"],
            "choose another --output",
        ),
        (
            ["train", "resnet20", "--data", "synthetic", "--store", "a-file"],
            "choose another --store",
        ),
        (["train", "resnet20", "--data", "synthetic", "--set", "nesterov=maybe"], "as bool"),
        (["train", "resnet20", "--data", "synthetic", "--set", "speed=11"], "FIELD one of"),
        (["bench", "resnet20", "--data", "missing.zip"], "'missing.zip' does not exist"),
        (["bench", "nosuchnet"], "unknown model"),
        (["eval", "nosuchnet", "--weights", "zoo"], "unknown model"),
        (["eval", "resnet20", "--weights", "imagenet"], "valid for resnet20"),
        (["weights", "export", "no-run", "--record", "r.json"], "has no checkpoint.pt"),
    ],
)
def test_user_mistakes_exit_2_without_traceback(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("a file where a folder should be")
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bad_option_exits_2_from_argparse(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "resnet20", "--recipe", "slow"])
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_console_script_reports_errors_without_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "resnet_lab.cli", "info", "resnet7"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert (
        proc.returncode == 2 and "Traceback" not in proc.stderr and "depth must be" in proc.stderr
    )


def test_info_prints_the_summary(capsys):
    assert cli.main(["info", "resnet20"]) == 0
    out = capsys.readouterr().out
    assert "269,722" in out and "depth (weighted layers on the main path): 20" in out
    assert cli.main(["info", "--list"]) == 0
    assert "resnet110" in capsys.readouterr().out.split()


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
    "--quiet",
]


@pytest.mark.slow
def test_train_then_sweep_skips_stored_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "resnet20", *TINY, "--store", "store", "--tag", "x"]) == 0
    (run,) = results.list_runs(tmp_path / "store")
    assert run.model == "resnet20" and run.tags == ["x"] and run.variant == "synthetic"
    assert (tmp_path / "runs" / "resnet20-synthetic-fast-e1-s0" / "checkpoint.pt").exists()
    # Running the same command again refuses to clobber the checkpoint...
    assert cli.main(["train", "resnet20", *TINY, "--store", "store"]) == 2
    assert "--resume" in capsys.readouterr().err
    # ...and a sweep trains only what the store lacks.
    assert (
        cli.main(
            [
                "sweep",
                "--models",
                "ResNet20",
                "PLAIN20",
                "--seeds",
                "0",
                *TINY,
                "--store",
                "store",
                "--output",
                "sweep",
            ]
        )
        == 0
    )
    assert "skip resnet20 seed 0" in capsys.readouterr().out
    # Names in another case are the same models, stored under the registry's spelling.
    assert sorted(r.model for r in results.list_runs(tmp_path / "store")) == ["plain20", "resnet20"]


def test_recipe_flags_reach_the_config():
    args = _parser().parse_args(
        [
            "train",
            "resnet20",
            "--recipe",
            "paper",
            "--epochs",
            "2",
            "--log-every",
            "20",
            "--eval-every-steps",
            "130",
            "--warmup-steps",
            "0",
        ]
    )
    assert flags._config_overrides(args) == {
        "epochs": 2,
        "log_every_steps": 20,
        "eval_every_steps": 130,
        "warmup_steps": 0,
    }


def test_set_reads_any_field_by_its_type():
    args = _parser().parse_args(
        [
            "train",
            "resnet20",
            "--set",
            "nesterov=true",
            "--set",
            "milestones=0.3,0.6",
            "--set",
            "warmup-lr=0.02",
            "--set",
            "eval_batch_size=500",
            "--set",
            "channels_last=none",
            "--set",
            "schedule=cosine",
        ]
    )
    assert flags._config_overrides(args) == {
        "nesterov": True,
        "milestones": (0.3, 0.6),
        "warmup_lr": 0.02,
        "eval_batch_size": 500,
        "channels_last": None,
        "schedule": "cosine",
    }
    from resnet_lab import engine

    config = engine.recipe("paper", **flags._config_overrides(args))
    assert config.nesterov and config.milestones == (0.3, 0.6) and config.warmup_lr == 0.02


def test_a_field_with_flag_metadata_gets_a_flag_and_a_typed_set(monkeypatch, capsys):
    """Flags come from TrainConfig's field metadata: a new field needs no edit of the CLI."""
    from resnet_lab import engine
    from resnet_lab.engine.config import _flag

    @dataclasses.dataclass
    class Config(engine.TrainConfig):
        ema_decay: float = dataclasses.field(default=0.0, metadata=_flag("--ema", "EMA decay"))
        swa: bool = dataclasses.field(default=False, metadata=_flag("--swa", "average weights"))
        ema_every: int | None = None  # no flag metadata: --set only

    monkeypatch.setattr(flags, "TrainConfig", Config)
    train = ["train", "resnet20"]
    assert flags._config_overrides(_parser().parse_args([*train, "--ema", "0.99", "--swa"])) == {
        "ema_decay": 0.99,
        "swa": True,
    }
    assert flags._config_overrides(_parser().parse_args(train)) == {}  # the recipe decides
    args = _parser().parse_args(
        [*train, "--set", "ema_decay=1", "--set", "swa=no", "--set", "ema-every=5"]
    )
    overrides = flags._config_overrides(args)
    assert overrides == {"ema_decay": 1.0, "swa": False, "ema_every": 5}
    assert type(overrides["ema_decay"]) is float and type(overrides["ema_every"]) is int
    assert flags._parse_set(["ema_every=none"]) == {"ema_every": None}
    with pytest.raises(ValueError, match="cannot read 'x' as float"):
        flags._parse_set(["ema_decay=x"])
    # Said back as flags in the library's advice, and listed in the help with their text.
    assert flags._spell_flag("ema_decay", 0.5) == "--ema 0.5"
    assert flags._spell_flag("swa", True) == "--swa"
    assert flags._spell_flag("ema_every", 3) == "--set ema_every=3"
    with pytest.raises(SystemExit):
        _parser().parse_args([*train, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--ema EMA_DECAY EMA decay" in out and "--swa average weights" in out
    with pytest.raises(SystemExit):
        _parser().parse_args([*train, "--ema", "high"])
    assert "argument --ema: invalid float value: 'high'" in capsys.readouterr().err


def test_every_recipe_flag_is_a_flagged_trainconfig_field():
    from resnet_lab import engine

    train = next(
        a
        for a in _parser()._subparsers._group_actions[0].choices.values()  # noqa: SLF001
        if a.prog.endswith(" train")
    )
    dests = {a.dest for a in train._actions}  # noqa: SLF001
    flagged = {f.name for f in dataclasses.fields(engine.TrainConfig) if "flag" in f.metadata}
    assert flagged <= dests and {"lr", "epochs", "compile", "log_every_steps"} <= flagged


def test_an_unknown_set_field_names_the_valid_fields(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "resnet20", "--data", "synthetic", "--set", "lr_max=0.1"]) == 2
    err = capsys.readouterr().err
    assert "TrainConfig has no field 'lr_max'" in err and "Traceback" not in err
    valid = err.split("FIELD one of", 1)[1]
    assert all(name in valid for name in ("lr", "nesterov", "milestones", "warmup_lr"))
    assert "recipe" not in valid  # set by its own flag
    assert cli.main(["train", "resnet20", "--data", "synthetic", "--set", "seed=3"]) == 2
    assert "seed has a flag of its own, --seed" in capsys.readouterr().err


@pytest.mark.slow
def test_diverged_run_keeps_its_history_beside_the_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = [
        "train",
        "resnet20",
        *TINY,
        "--lr",
        "1e12",
        "--set",
        "schedule=constant",
        "--output",
        "run",
        "--store",
        "store",
    ]
    argv[argv.index("--epochs") + 1] = "3"
    assert cli.main(argv) == cli.EXIT_FAILED
    err = capsys.readouterr().err
    assert "diverged" in err and "--lr" in err and "the history so far (0 epochs) is in run/" in err
    # lr 1e12: the first step's loss is finite, its weights and BatchNorm statistics are not
    assert "BatchNorm tensors are not finite" in err and "no checkpoint was saved" in err
    (kept,) = results.list_runs(tmp_path / "run")
    assert kept.status == "diverged" and kept.model == "resnet20"
    assert not (tmp_path / "store").exists()  # the store holds finished runs only


def test_sweep_goes_on_after_a_failed_run_and_exits_non_zero(tmp_path, monkeypatch, capsys):
    from resnet_lab import engine

    monkeypatch.chdir(tmp_path)
    trained = []

    def fake_train(model, data, config, *, name, **kwargs):
        trained.append(name)
        if name == "plain20":
            raise engine.TrainingDiverged("training diverged: the loss became NaN at step 3", None)
        run = engine.Run(model_name=name, config=config, data=data.info())
        run.status = "completed"
        return run

    monkeypatch.setattr(engine, "train", fake_train)
    monkeypatch.setattr(sweep, "_report", lambda run, ctx, **kwargs: 0)
    code = cli.main(["sweep", "--models", "plain20", "resnet20", *TINY, "--store", "store"])
    assert code == cli.EXIT_FAILED and trained == ["plain20", "resnet20"]
    err = capsys.readouterr().err
    assert "plain20 seed 0 failed" in err and "1 run(s) failed: plain20 seed 0" in err


def test_sweep_jobs_trains_runs_in_processes_and_skips_stored(tmp_path, capsys):
    args = [
        "sweep",
        "--models",
        "resnet20",
        "plain20",
        "--seeds",
        "0",
        "--data",
        "synthetic",
        "--subset",
        "2",
        "--test-subset",
        "1",
        "--epochs",
        "1",
        "--image-size",
        "8",
        "--store",
        str(tmp_path / "store"),
        "--output",
        str(tmp_path / "runs"),
        "--jobs",
        "2",
    ]
    assert cli.main(args) == 0
    stored = sorted(p.name.split("-")[0] for p in (tmp_path / "store").glob("*.json"))
    assert stored == ["plain20", "resnet20"]
    assert "done resnet20 seed 0" in capsys.readouterr().out
    assert cli.main(args) == 0  # everything is stored now: nothing is trained again
    out = capsys.readouterr().out
    assert "skip plain20 seed 0" in out and "start" not in out


def test_strip_options_removes_options_and_their_values():
    argv = ["sweep", "--models", "a", "b", "--seeds", "0", "1", "--jobs=2", "--epochs", "3"]
    assert sweep._strip_options(argv, {"--models", "--seeds", "--jobs"}) == [
        "sweep",
        "--epochs",
        "3",
    ]


@pytest.mark.parametrize("native_bf16", [False, True])
def test_sweep_counts_a_stored_run_by_the_precision_it_trained_in(
    tmp_path, monkeypatch, native_bf16
):
    """``amp='auto'`` is fp32 on one CPU and bf16 on another: a stored run is 'already done'
    only where this sweep would train in the precision it trained in."""
    import json
    from types import SimpleNamespace

    from test_studies import record

    from resnet_lab import engine, runtime

    stored = record("resnet20")
    stored["recipe"] = engine.recipe("fast", epochs=1).to_dict()  # amp='auto'
    stored["precision"] = "fp32"  # made on a CPU without native bf16
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "run.json").write_text(json.dumps(stored))
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: native_bf16)
    info = {"variant": "cifar10-jpeg", "source": "x.zip", "train_size": 50_000}
    info.update(test_size=10_000, num_classes=10, image_size=[3, 32, 32])
    data = SimpleNamespace(variant="cifar10-jpeg", train_y=[0] * 50_000, info=lambda: info)

    def done(**change) -> bool:
        config = engine.recipe("fast", epochs=1, **change)
        return sweep._already_stored(tmp_path / "store", "resnet20", data, config, "cpu")

    assert done(amp="off")  # asks for fp32: the stored fp32 run is it
    assert not done(amp="bf16")
    assert done() is (not native_bf16)  # 'auto' is bf16 here when the CPU has it
    assert not done(amp="off", lr=0.3)  # any other recipe change still counts
