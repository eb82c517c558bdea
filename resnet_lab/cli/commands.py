"""``bench``, ``info`` and ``suite``: check the arguments, then hand over to the library."""

from __future__ import annotations

import argparse

from resnet_lab.cli.errors import UsageError, _writable_folder


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
        # a dry run's synthetic records stay in its own folder unless --store says otherwise
        store = args.store or (args.out / "store" if args.dry_run else results.default_store())
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
