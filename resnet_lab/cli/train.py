"""``resnet-lab train``: load the data, train one model, keep what a failed run learned."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from resnet_lab.cli.errors import (
    EXIT_INTERRUPTED,
    UsageError,
    _check_device,
    _check_model_name,
    _writable_folder,
)
from resnet_lab.cli.flags import _config, _failure


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
