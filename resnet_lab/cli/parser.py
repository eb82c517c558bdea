"""The ``resnet-lab`` argument parser: one subparser per command; the recipe flags of
``train`` and ``sweep`` come from TrainConfig's field metadata (:mod:`.flags`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from resnet_lab.cli.flags import _add_config_flags


def _add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument(
        "--data",
        default="auto",
        help="auto, cifar10, cifar100, synthetic, or an image folder (directory or .zip); "
        "auto uses RESNET_LAB_DATA, then official CIFAR-10 (default: %(default)s)",
    )
    g.add_argument(
        "--subset",
        type=int,
        metavar="N",
        help="train on a class-balanced subset of N images per class",
    )
    g.add_argument(
        "--test-subset",
        type=int,
        metavar="N",
        help="evaluate on a class-balanced subset of N test images per class",
    )
    g.add_argument(
        "--image-size",
        type=int,
        metavar="PIXELS",
        help="shrink the images to PIXELS x PIXELS by area averaging (the data "
        "variant then names the size, e.g. cifar10-jpeg-16px)",
    )
    g.add_argument("--no-download", action="store_true", help="never download datasets")


def _add_training_args(p: argparse.ArgumentParser) -> None:
    _add_data_args(p)
    g = p.add_argument_group("recipe (any field overrides the recipe's value)")
    g.add_argument(
        "--recipe",
        default="fast",
        choices=["fast", "paper", "laptop"],
        help="fast: one-cycle, label smoothing; paper: He et al. 2016 §4.2; laptop: "
        "the laptop depth study's (warm-up, linear decay, 40 epochs) "
        "(default: %(default)s)",
    )
    _add_config_flags(g)  # --epochs, --lr, ...: every TrainConfig field with a flag
    g.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        dest="set_fields",
        help="any other TrainConfig field, repeatable, e.g. --set nesterov=true "
        "--set milestones=0.5,0.75 --set warmup_lr=0.01 (see resnet_lab.engine"
        ".TrainConfig)",
    )
    g = p.add_argument_group("run")
    g.add_argument("--device", help="cpu, cuda, cuda:1 or mps (default: best available)")
    g.add_argument(
        "--output",
        type=Path,
        metavar="DIR",
        help="folder for checkpoints (default: runs/<model>-<data>-<recipe>-<length>-s<seed>)",
    )
    g.add_argument("--resume", action="store_true", help="continue from the checkpoint in --output")
    g.add_argument(
        "--store",
        type=Path,
        default=None,
        metavar="DIR",
        help="results store (default: $RESNET_LAB_RESULTS or ./results)",
    )
    g.add_argument("--no-store", action="store_true", help="do not save the run in the store")
    g.add_argument("--tag", action="append", default=[], help="tag the stored run (repeatable)")
    g.add_argument("--quiet", action="store_true", help="no progress bars")


def _parser() -> argparse.ArgumentParser:
    from resnet_lab._version import __version__

    parser = argparse.ArgumentParser(
        prog="resnet-lab",
        description="Train, sweep, benchmark and inspect the ResNets of He et al. (2016).",
        epilog="Run `resnet-lab COMMAND --help` for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"resnet-lab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _train_parser(sub)
    _sweep_parser(sub)
    _bench_parser(sub)
    _info_parser(sub)
    _suite_parser(sub)
    _add_weights_parser(sub)
    _add_eval_parser(sub)
    return parser


def _train_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train one model and save the run in the results store",
        description="Train one model; the run is saved in the results store.",
    )
    p.add_argument(
        "model", help="model name, e.g. resnet20, plain56, resnet110 (see `info --list`)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed for initialisation and data order")
    _add_training_args(p)


def _sweep_parser(sub) -> None:
    p = sub.add_parser(
        "sweep",
        help="train several models and seeds into the results store",
        description="Train every model with every seed; runs already in the store "
        "are skipped, so an interrupted sweep can be started again.",
    )
    p.add_argument("--models", nargs="+", required=True, metavar="MODEL")
    p.add_argument("--seeds", nargs="+", type=int, default=[0], metavar="SEED")
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="train N runs at once, each in its own process with cores/N threads (on "
        "a CPU, small networks get more from 2 cores as two 1-thread runs than "
        "as one 2-thread run)",
    )
    _add_training_args(p)


def _bench_parser(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="training images/s: this engine vs a torchvision DataLoader",
        description="Train a few steps with this engine and with a reference "
        "torchvision pipeline (DataLoader + per-image transforms), "
        "in one process, and print images per second and their ratio.",
    )
    p.add_argument("model", help="model name, e.g. resnet20")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=20, help="timed steps per pipeline")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--rounds", type=int, default=2, help="alternating timed rounds per pipeline")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of the reference")
    p.add_argument("--data", default="auto", help="as for train; synthetic if none is found")
    p.add_argument("--device", help="cpu, cuda or mps (default: best available)")
    p.add_argument("--compile", action="store_true", help="also torch.compile the engine's model")
    p.add_argument("--amp", choices=["auto", "bf16", "fp16", "off"], default="auto")
    p.add_argument(
        "--breakdown",
        action="store_true",
        help="also time both models on one batch held in memory, to split the ratio "
        "into data pipeline and model code",
    )


def _info_parser(sub) -> None:
    p = sub.add_parser(
        "info",
        help="model summary: stages, shapes, parameters, multiply-adds",
        description="Print a model's stages, output shapes, parameters and MACs.",
    )
    p.add_argument("model", nargs="?", help="model name (omit with --list)")
    p.add_argument("--list", action="store_true", help="list every model name")
    p.add_argument("--num-classes", type=int, default=None)
    p.add_argument(
        "--input-size",
        type=int,
        nargs="+",
        metavar="N",
        help="input size C H W (default: 3 32 32 for CIFAR nets, 3 224 224 for ImageNet)",
    )


def _suite_parser(sub) -> None:
    p = sub.add_parser(
        "suite",
        help="GPU suite: throughput, time to 91 percent, depth study, chapters",
        description="Part gpu: training throughput, ResNet-20 to 91 percent test "
        "accuracy and a depth study on one GPU within a wall-clock "
        "budget. Part chapters: every chapter at the standard tier. "
        "Summaries go to --out, rewritten after every stage.",
    )
    p.add_argument("part", choices=["gpu", "chapters"])
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder for the summary (Markdown, JSON), the log and the records zip",
    )
    p.add_argument(
        "--data",
        help="CIFAR-10: the JPEG zip, or the .tar.xz that tools/gpu_carry.py makes (default: auto)",
    )
    p.add_argument(
        "--store",
        type=Path,
        metavar="DIR",
        help="gpu: results store for the runs (default: $RESNET_LAB_RESULTS or ./results; "
        "with --dry-run, OUT/store)",
    )
    p.add_argument(
        "--budget-s",
        type=float,
        default=540.0,
        metavar="S",
        help="wall-clock seconds, never overrun (default: %(default)s)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="tiny sizes on this machine (gpu: a CPU will do; chapters: one small "
        "generated notebook)",
    )
    p.add_argument("--device", help="gpu: cuda or cuda:N (default: best available)")
    p.add_argument(
        "--stages",
        nargs="+",
        choices=["throughput", "compiled", "target", "depth"],
        default=["throughput", "compiled", "target", "depth"],
        help="gpu: the stages to run (default: all)",
    )
    p.add_argument(
        "--wheels",
        type=Path,
        metavar="DIR",
        help="chapters: wheels to install where nbclient/ipykernel are missing",
    )
    p.add_argument(
        "--chapters",
        nargs="+",
        metavar="PREFIX",
        help="chapters: only these (e.g. 04 07; default: every chapter)",
    )
    p.add_argument(
        "--executor",
        choices=["auto", "nbclient", "exec"],
        default="auto",
        help="chapters: a Jupyter kernel (nbclient) or plain Python (default: nbclient "
        "where installed)",
    )


def _add_weights_parser(sub) -> None:
    p = sub.add_parser(
        "weights",
        help="list the trained weights, or export a finished zoo run into them",
        description="Without an action: one line per weights entry (`build(model, "
        "weights=TAG)` takes the part after the dot). `weights export RUN_DIR --record "
        "RECORD.json`: a finished run (its checkpoint, snapshots and record) into shipped "
        "files and manifest entries, each measured on the data the run trained on.",
    )
    p.add_argument("action", nargs="?", choices=["list", "export"], default="list")
    p.add_argument("run", nargs="?", type=Path, help="export: the run's --output folder")
    p.add_argument("--model", help="list: only this model's entries")
    p.add_argument("--record", type=Path, help="export: the run's record in the results store")
    p.add_argument("--release", default="zoo", help="export: the tag's release part (zoo)")
    p.add_argument("--replace", action="store_true", help="export: replace existing entries")
    p.add_argument("--out", type=Path, help="export: folder of files + manifest (the package's)")
    _add_data_args(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_eval_parser(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="test error and clean training error of trained weights",
        description="Measure test error and training error (whole training split, no "
        "augmentation) of MODEL with trained weights, in fp32 with BatchNorm in eval mode, "
        "and compare them with the stored numbers.",
    )
    p.add_argument("model", help="model name, e.g. resnet20")
    p.add_argument("--weights", required=True, help="a tag (zoo, zoo:step200, akamaster)")
    p.add_argument("--device", help="cpu, cuda or mps (default: cpu)")
    _add_data_args(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
