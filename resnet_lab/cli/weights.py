"""``resnet-lab weights`` (list, export) and ``resnet-lab eval``: trained weights."""

from __future__ import annotations

import argparse

from resnet_lab.cli.errors import EXIT_FAILED, UsageError, _check_model_name
from resnet_lab.cli.train import _load_data

#: 0.01 points, the precision ``eval`` reproduces stored numbers to
_POINTS = 0.01


def _cmd_weights(args: argparse.Namespace) -> int:
    if args.action == "export":
        return _export(args)
    from resnet_lab import weights

    entries = weights.list_weights(args.model)
    if not entries:
        raise UsageError(f"no weights for {args.model}; `resnet-lab weights` lists them all")
    print(weights_table(entries))
    return 0


def weights_table(entries) -> str:
    """One line per entry: name, parameters, step, data, test and training error, file."""
    rows = [("name", "params", "step", "data", "test err", "train err", "file")]
    for w in entries:
        m = w.metrics
        rows.append(
            (
                w.name,
                f"{w.num_params / 1e6:.2f} M",
                "-" if w.step is None else f"{w.step:,}",
                w.data,
                _percent(m["test_error"]),
                _percent(m["train_error"]),
                w.file or f"rebuilt from seed {w.seed}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(n) for c, n in zip(r, widths, strict=True)).rstrip() for r in rows]
    refs = [w for w in entries if w.reported]
    if refs:
        r = refs[0].reported
        lines.append(
            f"(akamaster: trained on the official {r['data']} files, where their own numbers "
            "are 8.27 / 7.37 / 6.90 / 6.61 % test error for ResNet-20/32/44/56; on "
            "cifar10-jpeg JPEG compression costs them about ten points: compare only runs "
            "measured on the same data variant)"
        )
    return "\n".join(lines)


def _percent(error: float | None) -> str:
    return "not measured" if error is None else f"{100 * error:.2f} %"


def _export(args: argparse.Namespace) -> int:
    from resnet_lab.weights import export

    if args.run is None or args.record is None:
        raise UsageError("weights export takes the run's folder and --record RECORD.json")
    if not (args.run / "checkpoint.pt").is_file():
        raise UsageError(f"{args.run} has no checkpoint.pt: give the run's --output folder")
    data = _load_data(args, args.quiet)
    export.export_run(
        args.run,
        args.record,
        data,
        out=args.out or export.SHIPPED,
        release=args.release,
        replace=args.replace,
    )
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    import resnet_lab as rl
    from resnet_lab.weights.measure import measure

    args.model = _check_model_name(args.model)
    entry = rl.weights.resolve(args.model, args.weights)
    model = rl.build(args.model, weights=entry)
    if args.device:
        model = model.to(args.device)
    data = _load_data(args, args.quiet)
    train_pc, test_pc = data.subset_sizes or (None, None)
    m = measure(model, data, entry.mean, entry.std, subset_per_class=None)
    print(f"{entry.name} on {data.variant} (fp32, BatchNorm in eval mode, no augmentation)")
    stored = entry.metrics
    same_data = data.variant == entry.data
    if not same_data:
        print(
            f"stored numbers were measured on {entry.data}, this is {data.variant}: not "
            "comparable, nothing to check"
        )
    checks = []
    sub = stored.get("subset", {})
    test_known = test_pc is None or test_pc == sub.get("test_per_class")
    checks.append(_report("test error", m["test_wrong"], m["test_images"], stored, "test",
                          same_data and test_known, sub if test_pc is not None else None))  # fmt: skip
    checks.append(_report("training error", m["train_wrong"], m["train_images"], stored,
                          "train", same_data and train_pc is None, None))  # fmt: skip
    if entry.reported:
        r = entry.reported
        print(
            f"(published with the weights: {100 * r['test_error']:.2f} % test error on "
            f"{r['data']}, another data variant)"
        )
    return EXIT_FAILED if False in checks else 0


def _report(what, wrong, images, stored, split, comparable, subset) -> bool | None:
    """Print one measured number beside the stored one; whether they agree (None: no
    stored number for these images)."""
    error = 100 * wrong / max(1, images)
    line = f"{what:<15} {error:6.2f} %  ({wrong} of {images})"
    if not comparable:
        print(line + "  (nothing stored for these images)")
        return None
    if subset is not None:
        want, n = subset["wrong"], subset["images"]
    else:
        want, n = stored[f"{split}_wrong"], stored[f"{split}_images"]
    if want is None or n != images:
        print(line + "  (no stored number for these images)")
        return None
    expected = 100 * want / n
    ok = abs(error - expected) < _POINTS / 2 + 1e-9 or wrong == want
    verdict = "reproduced" if ok else f"differs by {error - expected:+.2f} points"
    print(line + f"  stored {expected:.2f} % ({want} of {n}): {verdict}")
    return ok
