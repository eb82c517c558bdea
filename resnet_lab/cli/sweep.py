"""``resnet-lab sweep``: every model with every seed, skipping what the store holds, in
this process or ``--jobs N`` at a time in processes of their own."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from resnet_lab.cli.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    UsageError,
    _check_device,
    _check_model_name,
    _writable_folder,
)
from resnet_lab.cli.flags import _config, _failure
from resnet_lab.cli.train import _load_data, _report, _train_one
from resnet_lab.engine.config import bookkeeping_fields

# What a stored run's data must share with this sweep's to count as done (keys of
# ImageData.info(); one a record lacks, from an older version, is not compared).
_SAME_DATA = ("source", "train_size", "test_size", "num_classes", "image_size")


def _already_stored(store: Path, model_name: str, data, config, device: str | None = None) -> bool:
    """Whether ``store`` holds a completed run that trained as this one would, here, and was
    measured on the same data (source, training and test sizes, image size).

    ``amp`` is a request ('auto' means bf16 on one machine and fp32 on another), so a
    stored run counts when it trained in the precision this run would train in on this
    device, whatever it asked for; every other recipe field must match.
    """
    import dataclasses

    from resnet_lab import results, runtime

    if not store.is_dir():  # a new store: nothing is done yet
        return False
    here = runtime.precision_name(runtime.amp_dtype(config.amp, runtime.pick_device(device)))
    info = data.info()
    for rec in results.list_runs(
        store, model=model_name, variant=data.variant, seed=config.seed, status="completed"
    ):
        asked = dataclasses.replace(config, amp=rec["recipe"].get("amp", config.amp))
        same_recipe = asked.trains_like(rec["recipe"]) and rec.precision == here
        same_data = all(rec["data"].get(k, info[k]) == info[k] for k in _SAME_DATA)
        if same_recipe and same_data:
            return True
    return False


@contextlib.contextmanager
def _claim(store: Path, model_name: str, data, config) -> Iterator[str | None]:
    """Claim the run (model, data, recipe, seed) in ``store`` for this process while it trains:
    yields None, or who holds it when another sweep into the store trains it now."""
    from resnet_lab import locks

    settings = {**config.to_dict(), **data.info(), "model": model_name}
    for k in bookkeeping_fields():
        settings.pop(k, None)
    key = hashlib.blake2b(json.dumps(settings, sort_keys=True).encode(), digest_size=6)
    lock = store / ".claims" / f"{model_name}-{data.variant}-s{config.seed}-{key.hexdigest()}.lock"
    held = contextlib.ExitStack()
    try:
        held.enter_context(locks.exclusive(lock, f"{model_name} seed {config.seed}", "wait"))
    except locks.Busy:
        yield locks.holder(lock)
        return
    try:
        with held:
            yield None
    finally:
        with contextlib.suppress(OSError):
            lock.parent.rmdir()  # when no other claim is left in it


def _claim_here(store: Path, model_name: str, data, config, ctx):
    """:func:`_claim` in one process; under torchrun the processes train the run together."""
    if ctx.is_distributed:
        return contextlib.nullcontext(None)
    return _claim(store, model_name, data, config)


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
    terminated = []

    def on_sigterm(signum, frame):  # noqa: ARG001 - a SIGTERM is a Ctrl-C for the runs too
        terminated.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
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
            if terminated:  # a Ctrl-C reached them from the terminal, a SIGTERM did not
                proc.terminate()
        for _, proc in running:
            proc.wait()
        print(
            "resnet-lab sweep: interrupted; start the same command again to continue",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
    if failed:
        print(
            f"resnet-lab sweep: {len(failed)} run(s) failed: {', '.join(failed)}", file=sys.stderr
        )
        return EXIT_FAILED
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from resnet_lab import distributed, engine, results
    from resnet_lab.checkpoint import CheckpointError
    from resnet_lab.locks import Busy

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
                    with _claim_here(store, model_name, data, config, ctx) as holder:
                        # (stored meanwhile by the sweep that held it: done)
                        if holder is None and _already_stored(
                            store, model_name, data, config, args.device
                        ):
                            holder = "a sweep that has finished it"
                        if holder is not None:
                            print(f"skip {model_name} seed {seed}: trained by {holder}")
                            continue
                        run = _train_one(args, model_name, seed, data, store, ctx)
                except (Busy, engine.TrainingDiverged, engine.OutOfMemory, CheckpointError) as exc:
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
