"""``resnet-lab``: train, sweep, benchmark and inspect ResNets from the command line.

Examples::

    resnet-lab train resnet20 --recipe fast --epochs 5             # CIFAR-10 (or RESNET_LAB_DATA)
    resnet-lab train resnet110 --recipe paper --output runs/r110   # paper schedule
    resnet-lab train resnet110 --recipe paper --output runs/r110 --resume  # continue it
    torchrun --nproc_per_node 4 -m resnet_lab.cli train resnet56   # several GPUs
    resnet-lab sweep --models plain20 resnet20 --seeds 0 1 2 --epochs 10
    resnet-lab bench resnet20 --batch-size 128
    resnet-lab info resnet56

Mistakes in the arguments (an unknown model, a missing data path) print one line
on stderr and exit with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]

EXIT_USAGE = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


class UsageError(ValueError):
    """A mistake on the command line."""


def _add_training_args(p: argparse.ArgumentParser) -> None:
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
    g = p.add_argument_group("recipe (any field overrides the recipe's value)")
    g.add_argument(
        "--recipe",
        default="fast",
        choices=["fast", "paper", "laptop"],
        help="fast: one-cycle, label smoothing; paper: He et al. 2016 §4.2; laptop: "
        "the laptop depth study's (warm-up, linear decay, 40 epochs) "
        "(default: %(default)s)",
    )
    g.add_argument("--epochs", type=int, help="passes over the training set")
    g.add_argument("--iterations", type=int, help="optimizer steps (the paper: 64000)")
    g.add_argument("--batch-size", type=int)
    g.add_argument("--lr", type=float, help="peak learning rate")
    g.add_argument("--weight-decay", type=float)
    g.add_argument("--momentum", type=float)
    g.add_argument("--schedule", choices=["multistep", "onecycle", "cosine", "constant"])
    g.add_argument("--label-smoothing", type=float)
    g.add_argument("--warmup-steps", type=int, help="steps at the warm-up lr (paper: 400)")
    g.add_argument("--amp", choices=["auto", "bf16", "fp16", "off"])
    g.add_argument("--compile", action="store_true", default=None, help="use torch.compile")
    g.add_argument(
        "--deterministic",
        action="store_true",
        default=None,
        help="deterministic algorithms (exactly reproducible on CPU)",
    )
    g.add_argument(
        "--grad-norms",
        action="store_true",
        default=None,
        help="record per-layer gradient norms each epoch",
    )
    g.add_argument(
        "--log-every",
        type=int,
        dest="log_every_steps",
        metavar="STEPS",
        help="record a step entry every STEPS steps",
    )
    g.add_argument(
        "--eval-every-steps",
        type=int,
        dest="eval_every_steps",
        metavar="STEPS",
        help="also evaluate on the test split every STEPS steps (test curves "
        "against iterations; costs one test pass each)",
    )
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
        help="gpu: results store for the runs (default: $RESNET_LAB_RESULTS or ./results)",
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


# ----------------------------------------------------------------------------- commands


def _config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    names = [
        "epochs",
        "iterations",
        "batch_size",
        "lr",
        "weight_decay",
        "momentum",
        "schedule",
        "label_smoothing",
        "warmup_steps",
        "amp",
        "compile",
        "deterministic",
        "grad_norms",
        "log_every_steps",
        "eval_every_steps",
    ]
    out = {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}
    out.update(_parse_set(getattr(args, "set_fields", None) or []))
    return out


_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def _parse_set(items: Sequence[str]) -> dict[str, Any]:
    """``--set FIELD=VALUE`` pairs as TrainConfig values, read by the field's declared type."""
    import dataclasses

    from resnet_lab.engine import TrainConfig

    types = {
        f.name: str(f.type)
        for f in dataclasses.fields(TrainConfig)
        if f.name not in ("recipe", "seed")
    }
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key, raw = key.strip().replace("-", "_"), raw.strip()
        if not sep or key not in types:
            raise UsageError(
                f"--set {item!r}: expected FIELD=VALUE with FIELD one of {', '.join(sorted(types))}"
            )
        kind = types[key]
        try:
            if raw.lower() == "none" and "None" in kind:
                value: Any = None
            elif kind.startswith("bool"):
                if raw.lower() not in _TRUE | _FALSE:
                    raise ValueError(raw)
                value = raw.lower() in _TRUE
            elif kind.startswith("int"):
                value = int(raw)
            elif kind.startswith("float"):
                value = float(raw)
            elif kind.startswith("tuple"):
                value = tuple(float(v) for v in raw.split(",") if v.strip())
            else:
                value = raw
        except ValueError:
            raise UsageError(f"--set {key}={raw}: cannot read {raw!r} as {kind}") from None
        out[key] = value
    return out


# Arguments of the library that are not TrainConfig fields, and their flags.
_OTHER_FLAGS = {
    "train_per_class": "--subset",
    "test_per_class": "--test-subset",
    "device": "--device",
}


@functools.lru_cache(maxsize=1)
def _flags() -> dict[str, argparse.Action]:
    """TrainConfig field -> its flag's action in ``resnet-lab train``."""
    train = next(
        a
        for a in _parser()._subparsers._group_actions[0].choices.values()  # noqa: SLF001
        if a.prog.endswith(" train")
    )
    return {a.dest: a for a in train._actions if a.option_strings}  # noqa: SLF001


def _spell_flag(name: str, value: Any) -> str:
    """A library setting as the command line writes it: ``--lr 0.05``, ``--set gamma=0.1``."""
    if isinstance(value, float):
        value = f"{value:.3g}"
    if name in _OTHER_FLAGS:
        return f"{_OTHER_FLAGS[name]} {value}"
    action = _flags().get(name)
    if action is None:
        return f"--set {name}={value}"
    if action.nargs == 0:  # a switch such as --compile
        return action.option_strings[0] if value else f"--set {name}=false"
    return f"{action.option_strings[0]} {value}"


def _config(args: argparse.Namespace, seed: int):
    """The run's TrainConfig; a bad value is refused here, before any folder is made."""
    from resnet_lab import engine

    try:
        return engine.recipe(args.recipe, seed=seed, **_config_overrides(args))
    except engine.ConfigError as exc:
        raise UsageError(
            f"{_spell_flag(exc.field, exc.value)}: {exc.field} {exc.problem}"
        ) from None


def _check_device(device: str | None) -> None:
    from resnet_lab import runtime

    if device is None:
        return
    try:
        runtime.pick_device(device)
    except ValueError as exc:  # the library's words are arguments; say the flag instead
        raise UsageError(str(exc).replace("device='cpu'", "--device cpu")) from None


def _load_data(args: argparse.Namespace, quiet: bool):
    from resnet_lab.data import load_data

    for flag, n in (("--subset", args.subset), ("--test-subset", args.test_subset)):
        if n is not None and n < 1:
            raise UsageError(f"{flag} N takes a number of images per class, at least 1 (got {n})")

    return load_data(
        args.data,
        download=not args.no_download,
        train_per_class=args.subset,
        test_per_class=args.test_subset,
        progress=not quiet,
        image_size=getattr(args, "image_size", None),
    )


def _build(name: str, num_classes: int):
    from resnet_lab.models import build

    return build(name, num_classes=num_classes)


def _train_one(args, model_name: str, seed: int, data, store: Path | None, ctx) -> Any:
    import torch

    from resnet_lab import distributed, engine, results

    config = _config(args, seed)
    torch.manual_seed(seed)
    model = _build(model_name, data.num_classes)
    length = f"e{config.epochs}" if config.epochs is not None else f"i{config.iterations}"
    output = (
        args.output
        or Path("runs") / f"{model_name}-{data.variant}-{config.recipe}-{length}-s{seed}"
    )
    if args.output is not None and getattr(args, "command", "") == "sweep":
        output = args.output / f"{model_name}-{data.variant}-{config.recipe}-{length}-s{seed}"
    checkpoint = output / "checkpoint.pt"
    if args.command == "train":
        if not args.resume and checkpoint.exists():
            raise UsageError(
                f"{checkpoint} already exists: add --resume to continue that run, or choose "
                "another --output"
            )
        if args.resume and not checkpoint.exists():
            raise UsageError(
                f"--resume: there is no checkpoint at {checkpoint}; give the --output folder "
                "of the run to continue, or drop --resume to start a new run"
            )
    if ctx.is_main:
        _writable_folder(output, "--output")
    device = args.device or distributed.device_for(ctx)
    try:
        run = engine.train(
            model,
            data,
            config,
            device=device,
            progress=not args.quiet and ctx.is_main,
            checkpoint=checkpoint,
            resume=args.resume or args.command == "sweep",
            name=model_name,
            tags=args.tag,
            resume_hint="--resume (the same command)",
        )
    except (engine.TrainingDiverged, engine.OutOfMemory) as exc:
        exc.cli_message = _failure(exc)
        if exc.run is not None and ctx.is_main:
            exc.cli_message += _keep_failed_run(exc, output, checkpoint)
        raise
    if store is not None and ctx.is_main:
        results.save_finished(run, store)
    return run


def _failure(exc: Exception) -> str:
    """A library failure in the command line's words (flags, not arguments)."""
    return getattr(exc, "cli_message", None) or (
        exc.explain(_spell_flag) if hasattr(exc, "explain") else str(exc)
    )


def _keep_failed_run(exc, output: Path, checkpoint: Path) -> str:
    """Save a diverged or out-of-memory run's history beside its checkpoint; say where."""
    from resnet_lab import results

    run = exc.run
    try:
        path = results.save_run(run, output)
    except (OSError, ValueError) as err:
        return f"\n(the history so far could not be saved: {err})"
    where = f"\nthe history so far ({run.epochs} epochs) is in {path}"
    step = getattr(exc, "checkpoint_step", None)
    if step is not None and checkpoint.exists():
        where += (
            f"; {checkpoint} holds step {step}, the last one where everything was finite: "
            "retry with other settings in another --output (or delete it)"
        )
    elif run.status == "diverged":
        where += "; no checkpoint was saved (no epoch ended with finite values)"
    return where


def _writable_folder(path: Path, flag: str) -> None:
    """Check that ``path`` can take files, before anything is trained. Nothing is created
    here: folders appear with their first file, so a run refused later leaves none behind."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(
            f"cannot use {path} as a folder ({existing} is a file); choose another {flag}"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write in {existing} (no permission); choose another {flag}")


def _check_model_name(name: str) -> str:
    """The registry's spelling of a valid model name (``RESNET20`` -> ``resnet20``)."""
    import torch

    from resnet_lab.models import build

    with torch.device("meta"):  # no memory, no time: only the name is checked
        build(name)
    return name.strip().lower()  # build() accepts any case; runs are stored under one


def _cmd_train(args: argparse.Namespace) -> int:
    from resnet_lab import distributed, results

    args.model = _check_model_name(args.model)
    _config(args, args.seed)
    _check_device(args.device)
    ctx = distributed.init_from_env()
    try:
        store = None if args.no_store else (args.store or results.default_store())
        if store is not None and ctx.is_main:
            _writable_folder(store, "--store")
        data = _load_data(args, args.quiet or not ctx.is_main)
        run = _train_one(args, args.model, args.seed, data, store, ctx)
        return _report(run, ctx, printed=not args.quiet)
    finally:
        distributed.cleanup()


def _report(run, ctx, printed: bool = False) -> int:
    if not ctx.is_main:
        return 0 if run.status in ("completed", "stopped") else EXIT_INTERRUPTED
    f = run.final
    te = f"{f['test_error']:.4f}" if f["test_error"] is not None else "n/a"
    print(
        f"{run.model_name} on {run.variant}: {run.status} after {run.epochs} epoch{'' if run.epochs == 1 else 's'}, "
        f"test error {te}"
    )
    if run.path is not None:
        print(f"saved {run.path}")
    if run.status == "interrupted":
        if not printed:  # the progress output already said it
            print(run.message, file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def _already_stored(store: Path, model_name: str, data, config, device: str | None = None) -> bool:
    """Whether ``store`` holds a completed run that trained as this one would, here.

    ``amp`` is a request ('auto' means bf16 on one machine and fp32 on another), so a
    stored run counts when it trained in the precision this run would train in on this
    device, whatever it asked for; every other recipe field must match.
    """
    import dataclasses

    from resnet_lab import results, runtime

    here = runtime.precision_name(runtime.amp_dtype(config.amp, runtime.pick_device(device)))
    for rec in results.list_runs(
        store, model=model_name, variant=data.variant, seed=config.seed, status="completed"
    ):
        asked = dataclasses.replace(config, amp=rec["recipe"].get("amp", config.amp))
        same_recipe = asked.trains_like(rec["recipe"]) and rec.precision == here
        if same_recipe and rec["data"].get("train_size") == len(data.train_y):
            return True
    return False


def _strip_options(argv: Sequence[str], names: set[str]) -> list[str]:
    """``argv`` without the options in ``names`` and their values."""
    out: list[str] = []
    skipping = False
    for token in argv:
        if token.split("=", 1)[0] in names:
            skipping = "=" not in token
            continue
        if skipping and not token.startswith("-"):
            continue
        skipping = False
        out.append(token)
    return out


def _sweep_in_processes(args: argparse.Namespace, store: Path, data) -> int:
    """``sweep --jobs N``: every run still to do as its own ``resnet-lab sweep`` process,
    N at a time, each with cores/N threads; a failed run does not stop the others."""
    import subprocess
    import time

    # Seed by seed, so that an interrupted sweep has whole seeds to compare.
    todo = [
        (m, s)
        for s in args.seeds
        for m in args.models
        if not _already_stored(store, m, data, _config(args, s), args.device)
    ]
    for m, s in sorted(set(itertools.product(args.models, args.seeds)) - set(todo)):
        print(f"skip {m} seed {s}: already in {store}")
    base = _strip_options(args.argv, {"--models", "--seeds", "--jobs", "--quiet"})
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // args.jobs))}
    running: list[tuple[str, subprocess.Popen]] = []
    failed: list[str] = []
    try:
        while todo or running:
            while todo and len(running) < args.jobs:
                m, s = todo.pop(0)
                cmd = [
                    sys.executable,
                    "-m",
                    "resnet_lab.cli",
                    *base,
                    "--models",
                    m,
                    "--seeds",
                    str(s),
                    "--quiet",
                ]
                print(f"start {m} seed {s}", flush=True)
                running.append((f"{m} seed {s}", subprocess.Popen(cmd, env=env)))
            time.sleep(0.5)
            for item in [r for r in running if r[1].poll() is not None]:
                running.remove(item)
                name, proc = item
                print(f"{'done' if proc.returncode == 0 else 'FAILED'} {name}", flush=True)
                if proc.returncode == EXIT_INTERRUPTED:
                    raise KeyboardInterrupt
                if proc.returncode:
                    failed.append(name)
    except KeyboardInterrupt:  # the runs checkpoint on the same Ctrl-C; wait for them
        for _, proc in running:
            proc.wait()
        print(
            "resnet-lab sweep: interrupted; start the same command again to continue",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if failed:
        print(
            f"resnet-lab sweep: {len(failed)} run(s) failed: {', '.join(failed)}", file=sys.stderr
        )
        return EXIT_FAILED
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from resnet_lab import distributed, engine, results
    from resnet_lab.checkpoint import CheckpointError

    if args.jobs < 1:
        raise UsageError(f"--jobs N takes the number of runs at once, at least 1 (got {args.jobs})")
    args.models = [_check_model_name(m) for m in args.models]
    for seed in args.seeds:
        _config(args, seed)
    _check_device(args.device)
    ctx = distributed.init_from_env()
    try:
        store = args.store or results.default_store()
        if args.no_store:
            raise UsageError("sweep saves every run in the store; drop --no-store")
        if ctx.is_main:
            _writable_folder(store, "--store")
        data = _load_data(args, args.quiet or not ctx.is_main)
        if args.jobs > 1:
            if ctx.is_distributed:
                raise UsageError("--jobs starts its own processes; do not combine it with torchrun")
            return _sweep_in_processes(args, store, data)
        failed: list[str] = []
        for model_name in args.models:
            for seed in args.seeds:
                config = _config(args, seed)
                if _already_stored(store, model_name, data, config, args.device):
                    if ctx.is_main:
                        print(f"skip {model_name} seed {seed}: already in {store}")
                    continue
                try:
                    run = _train_one(args, model_name, seed, data, store, ctx)
                except (engine.TrainingDiverged, engine.OutOfMemory, CheckpointError) as exc:
                    # One bad run does not cost the others: note it and go on.
                    failed.append(f"{model_name} seed {seed}")
                    if ctx.is_main:
                        print(
                            f"resnet-lab sweep: {model_name} seed {seed} failed: {_failure(exc)}",
                            file=sys.stderr,
                        )
                    continue
                code = _report(run, ctx, printed=not args.quiet)
                if code:  # Ctrl-C: the sweep stops (start it again to continue)
                    return code
        if failed:
            if ctx.is_main:
                print(
                    f"resnet-lab sweep: {len(failed)} run(s) failed: {', '.join(failed)}",
                    file=sys.stderr,
                )
            return EXIT_FAILED
        return 0
    finally:
        distributed.cleanup()


def _cmd_bench(args: argparse.Namespace) -> int:
    from resnet_lab.bench import bench

    result = bench(
        args.model,
        batch_size=args.batch_size,
        steps=args.steps,
        warmup=args.warmup,
        rounds=args.rounds,
        device=args.device,
        data=args.data,
        workers=args.workers,
        compile=args.compile,
        amp=args.amp,
        breakdown=args.breakdown,
    )
    print(result)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    import torch

    from resnet_lab.models import build, list_models

    if args.list or not args.model:
        if not args.list:
            raise UsageError("give a model name, or --list to see them all")
        print("\n".join(list_models()))
        return 0
    from resnet_lab.engine import model_depth
    from resnet_lab.summary import estimate_memory, format_bytes, summary

    if args.num_classes is not None and args.num_classes < 1:
        raise UsageError(f"--num-classes {args.num_classes}: a classifier needs at least 1 class")
    kwargs = {} if args.num_classes is None else {"num_classes": args.num_classes}
    # On the meta device shapes, parameters and multiply-adds cost no memory and no
    # arithmetic, so any input size is answered at once.
    with torch.device("meta"):
        model = build(args.model, **kwargs)
    size = None
    if args.input_size:
        if len(args.input_size) != 3 or min(args.input_size) < 1:
            raise UsageError("--input-size takes three positive numbers: C H W (e.g. 3 32 32)")
        c, h, w = args.input_size
        first = next((m for m in model.modules() if isinstance(m, torch.nn.Conv2d)), None)
        if first is not None and first.in_channels != c:
            raise UsageError(
                f"--input-size {c} {h} {w}: {args.model} takes images with {first.in_channels} "
                f"channels (e.g. --input-size {first.in_channels} {h} {w})"
            )
        size = (1, c, h, w)
    try:
        table = summary(model, input_size=size)
    except RuntimeError as exc:  # e.g. an image smaller than the network's total stride
        cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise UsageError(
            f"--input-size {' '.join(map(str, args.input_size or ()))}: {args.model} cannot take this "
            f"input ({cause})"
        ) from None
    print(table)
    print(f"depth (weighted layers on the main path): {model_depth(model)}")
    est = estimate_memory(model, size)
    if est is not None:
        print(
            f"memory: weights {format_bytes(est.weights)}; per image "
            f"{format_bytes(est.train_per_image)} of layer outputs when training, "
            f"{format_bytes(est.eval_per_image)} when evaluating"
        )
    return 0


def _cmd_suite(args: argparse.Namespace) -> int:
    from resnet_lab import results, suite

    if not args.budget_s > 0:
        raise UsageError(f"--budget-s {args.budget_s}: give a positive number of seconds")
    _writable_folder(args.out, "--out")
    if args.part == "gpu":
        store = args.store or results.default_store()
        _writable_folder(store, "--store")
        return suite.run_gpu(
            args.out,
            data=args.data,
            store=store,
            budget_s=args.budget_s,
            dry_run=args.dry_run,
            device=args.device,
            stages=args.stages,
        )
    return suite.run_chapters(
        args.out,
        data=args.data,
        wheels=args.wheels,
        budget_s=args.budget_s,
        dry_run=args.dry_run,
        chapters=args.chapters,
        executor=args.executor,
    )


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ARG001
    print(f"resnet-lab: warning: {message}", file=sys.stderr)


COMMANDS = {
    "train": _cmd_train,
    "sweep": _cmd_sweep,
    "bench": _cmd_bench,
    "info": _cmd_info,
    "suite": _cmd_suite,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``resnet-lab`` command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)  # exits with status 2 on bad arguments
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for sweep --jobs
    from resnet_lab.engine import OutOfMemory, TrainingDiverged

    try:
        with warnings.catch_warnings():  # one line each, without the source line of the library
            warnings.showwarning = _show_warning
            return COMMANDS[args.command](args)
    except TrainingDiverged as exc:
        print(f"resnet-lab: {_failure(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except OutOfMemory as exc:
        print(f"resnet-lab: {_failure(exc)}", file=sys.stderr)
        # refused before training (it clearly cannot fit) is a usage mistake
        return EXIT_FAILED if exc.run is not None else EXIT_USAGE
    except ValueError as exc:  # user mistakes: bad names, paths, settings
        print(f"resnet-lab {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("resnet-lab: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:  # a full disk, a folder that became read-only, ...
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        print(
            f"resnet-lab {args.command}: cannot read or write{where}: "
            f"{exc.strerror or exc}; free space or choose other folders "
            "(--output, --store)",
            file=sys.stderr,
        )
        return EXIT_FAILED


if __name__ == "__main__":  # python -m resnet_lab.cli (torchrun -m resnet_lab.cli ...)
    sys.exit(main())
