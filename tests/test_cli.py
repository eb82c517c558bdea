"""The resnet-lab command: help everywhere, clean errors for user mistakes, real runs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from resnet_lab import cli, results


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["sweep", "--help"],
                                  ["bench", "--help"], ["info", "--help"]])  # fmt: skip
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
        (["train", "resnet20", "--data", "missing-folder.zip"], "unknown dataset"),
        (["train", "resnet20", "--data", "synthetic", "--epochs", "0"], "positive integer"),
        (["sweep", "--models", "resnet20", "plainX"], "unknown model"),
        (["info"], "--list"),
    ],
)
def test_user_mistakes_exit_2_without_traceback(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bad_option_exits_2_from_argparse(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "resnet20", "--recipe", "slow"])
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_console_script_reports_errors_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "resnet_lab.cli", "info", "resnet7"],
                          capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert (
        proc.returncode == 2 and "Traceback" not in proc.stderr and "depth must be" in proc.stderr
    )


def test_info_prints_the_summary(capsys):
    assert cli.main(["info", "resnet20"]) == 0
    out = capsys.readouterr().out
    assert "269,722" in out and "depth (weighted layers on the main path): 20" in out
    assert cli.main(["info", "--list"]) == 0
    assert "resnet110" in capsys.readouterr().out.split()


TINY = ["--data", "synthetic", "--subset", "2", "--test-subset", "1", "--epochs", "1",
        "--batch-size", "10", "--quiet"]  # fmt: skip


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
    assert cli.main(["sweep", "--models", "resnet20", "plain20", "--seeds", "0", *TINY,
                     "--store", "store", "--output", "sweep"]) == 0  # fmt: skip
    assert "skip resnet20 seed 0" in capsys.readouterr().out
    assert sorted(r.model for r in results.list_runs(tmp_path / "store")) == ["plain20", "resnet20"]


def test_recipe_flags_reach_the_config():
    args = cli._parser().parse_args(
        ["train", "resnet20", "--recipe", "paper", "--epochs", "2", "--log-every", "20",
         "--eval-every-steps", "130", "--warmup-steps", "0"]
    )  # fmt: skip
    assert cli._config_overrides(args) == {
        "epochs": 2, "log_every_steps": 20, "eval_every_steps": 130, "warmup_steps": 0,
    }  # fmt: skip
