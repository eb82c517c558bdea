"""The depth studies in the results store: which runs make a study, which may be compared.

He et al. (2016, Sec. 4.2) train plain and residual CIFAR nets of 20 to 110 layers
(Fig. 6). The book's results store holds our runs of the same networks (tag
``depth-study``); this module picks them out:

- :func:`depth_study`: one run per (network, depth), the longest-trained if several;
- :func:`matched_runs`: one run per network, all of one length (the longest complete sweep);
- :func:`matched_groups` / :func:`seed_summaries`: runs that may be compared (same data,
  recipe and length), every seed of each network, as the seed means of
  :class:`resnet_lab.results.laptop.SeedSummary` (so
  :func:`resnet_lab.results.laptop.orderings` checks Figure 6's orderings on them too);
- :func:`provenance`, :func:`training_curves`, :func:`peak_lr`: what one stored run says.

One definition of a run's final error everywhere: :func:`final_errors`, what the run
record stores as ``final`` (training error: the mean over the last epoch's augmented
mini-batches; test error: the whole test split after the last epoch).

How the chapters show these runs (explorers, Table 6, takeaways in words):
:mod:`resnet_lab.book.reproduction`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from resnet_lab.results.laptop import SeedSummary
from resnet_lab.results.store import RunRecord, list_runs

__all__ = [
    "CIFAR10_TRAIN_SIZE",
    "CIFAR10_VARIANTS",
    "DEPTHS",
    "KINDS",
    "depth_study",
    "final_errors",
    "full_cifar_runs",
    "matched_groups",
    "matched_runs",
    "model_name",
    "parse_model",
    "peak_lr",
    "provenance",
    "seed_runs",
    "seed_summaries",
    "training_curves",
]

DEPTHS = (20, 32, 44, 56, 110)
KINDS = ("plain", "residual")
#: CIFAR-10 and its offline JPEG copy; their full training split has 50,000 images.
CIFAR10_VARIANTS = ("cifar10", "cifar10-jpeg")
CIFAR10_TRAIN_SIZE = 50_000

_NAME = re.compile(r"^(resnet|plain)(\d+)(-zi)?$")


def parse_model(name: str) -> tuple[str, int] | None:
    """``'resnet56'`` -> ``('residual', 56)``, ``'plain20'`` -> ``('plain', 20)``, else None.

    The residual nets with zero-initialised branches of the laptop study count as
    residual nets of their depth (``'resnet56-zi'`` -> ``('residual', 56)``).
    """
    match = _NAME.match(name)
    if match is None or (match.group(3) and match.group(1) == "plain"):
        return None
    return ("residual" if match.group(1) == "resnet" else "plain", int(match.group(2)))


def _iterations(rec: RunRecord) -> int:
    """Optimizer steps the run completed (the paper counts iterations)."""
    steps = [h.get("step") or 0 for h in rec["history"]]
    steps += [s.get("step") or 0 for s in rec.record.get("steps", [])]
    return int(max(steps, default=0))


def _preference(rec: RunRecord) -> tuple:
    """Completed before stopped, then more iterations, then the paper's recipe, then newer."""
    paper = rec["recipe"].get("recipe") == "paper"
    return (rec["status"] == "completed", _iterations(rec), paper, rec["date"])


def _best(runs: Iterable[RunRecord]) -> dict[tuple[str, int], RunRecord]:
    chosen: dict[tuple[str, int], RunRecord] = {}
    for rec in runs:
        parsed = parse_model(rec["model"])
        if parsed is None or rec["final"].get("test_error") is None:
            continue
        if parsed not in chosen or _preference(rec) > _preference(chosen[parsed]):
            chosen[parsed] = rec
    return dict(sorted(chosen.items(), key=lambda kv: (kv[0][1], kv[0][0])))


def depth_study(
    tag: str = "depth-study", store: str | Path | None = None, variant: str | None = None
) -> dict[tuple[str, int], RunRecord]:
    """The stored depth study: ``{(kind, depth): run}`` with kind 'plain' or 'residual'.

    With several runs of one network, the completed one with the most iterations
    (then the newest) represents it. An empty store gives an empty dict.
    """
    return _best(list_runs(store, tag=tag, variant=variant))


def matched_runs(
    networks: Iterable[tuple[str, int]] | None = None,
    tag: str = "depth-study",
    store: str | Path | None = None,
    variant: str | None = None,
) -> dict[tuple[str, int], RunRecord]:
    """One run per network, all of the same length: the longest length they all reached.

    ``networks`` are ``(kind, depth)`` pairs; None means every network the store has a
    run of, i.e. the longest *complete* sweep. Comparing a 2-epoch run with a 1-epoch
    one would mix the effect of depth with that of training time, so while a longer
    sweep is unfinished the shorter, complete one is used. Empty if no length has them all.
    """
    runs = list_runs(store, tag=tag, variant=variant)
    wanted = list(_best(runs)) if networks is None else list(networks)
    by_length: dict[int, list[RunRecord]] = {}
    for rec in runs:
        by_length.setdefault(_iterations(rec), []).append(rec)
    for length in sorted(by_length, reverse=True):
        chosen = _best(by_length[length])
        if wanted and all(n in chosen for n in wanted):
            return {n: chosen[n] for n in sorted(wanted, key=lambda n: (n[1], n[0]))}
    return {}


def provenance(rec: RunRecord) -> dict[str, Any]:
    """Where a stored number comes from: data, recipe, length, device, date, code, run id."""
    data = rec["data"]
    recipe = rec["recipe"]
    return {
        "data": data.get("variant", "?"),
        "train_size": data.get("train_size"),
        "test_size": data.get("test_size"),
        "recipe": recipe.get("recipe", "?"),
        "epochs": rec["epochs"],
        "iterations": _iterations(rec),
        "batch_size": recipe.get("batch_size"),
        "device": rec["device"],
        "date": str(rec["date"])[:10],
        "code_version": str(rec.get("code_version", "unknown"))[:12],
        "id": rec["id"],
    }


def final_errors(rec: RunRecord) -> dict[str, float | None]:
    """Final train and test error of a stored run, in percent: the book's one definition.

    Both are what the run record stores as ``final``: the training error is the mean
    over the mini-batches of the last epoch (augmented images, weights still changing),
    the test error that of the whole test split after the last epoch. Every "end
    training error" the book quotes for a stored run comes from here.
    """
    final = rec["final"]
    return {
        key: (100.0 * final[key] if final.get(key) is not None else None)
        for key in ("train_error", "test_error")
    }


def peak_lr(rec: RunRecord) -> float | None:
    """The largest learning rate a stored run trained at (from its step and epoch records)."""
    lrs = [s.get("lr") for s in [*rec.record.get("steps", []), *rec["history"]]]
    lrs = [lr for lr in lrs if lr is not None]
    return max(lrs) if lrs else None


def _comparable(rec: RunRecord) -> tuple:
    """What two runs must share to be compared: data, training-set size, length and every
    setting that decides how they trained (:attr:`RunRecord.training_settings`)."""
    data = rec["data"]
    return (
        rec.variant,
        data.get("train_size"),
        tuple(data.get("subset_per_class") or ()),
        _iterations(rec),
        json.dumps(rec.training_settings, sort_keys=True, default=str),
    )


def matched_groups(runs: Iterable[RunRecord]) -> list[dict[tuple[str, int], list[RunRecord]]]:
    """The runs split into sets that may be compared: same data, recipe and length.

    Each set is ``{(kind, depth): [one run per seed]}`` (completed runs only; of several
    runs of one seed, the newest). Sets come largest first (most networks), then
    longest: the first is the matched study a table or a figure should use.
    """
    groups: dict[tuple, dict[tuple[str, int], dict[int, RunRecord]]] = {}
    for rec in runs:
        network = parse_model(rec["model"])
        if network is None or rec["status"] != "completed":
            continue
        if rec["final"].get("test_error") is None:
            continue
        seeds = groups.setdefault(_comparable(rec), {}).setdefault(network, {})
        old = seeds.get(rec["seed"])
        if old is None or str(rec["date"]) > str(old["date"]):
            seeds[rec["seed"]] = rec
    ordered = sorted(groups.items(), key=lambda kv: (len(kv[1]), kv[0][-1]), reverse=True)
    return [
        {
            n: [seeds[s] for s in sorted(seeds)]
            for n, seeds in sorted(group.items(), key=lambda kv: (kv[0][1], kv[0][0]))
        }
        for _, group in ordered
    ]


def seed_summaries(
    group: Mapping[tuple[str, int], RunRecord | Sequence[RunRecord]],
) -> dict[tuple[str, int], Any]:
    """``{(kind, depth): laptop.SeedSummary}`` of a set of runs, errors from :func:`final_errors`.

    ``group`` maps each network to one run or to a run per seed (:func:`matched_groups`).
    The result is what :func:`resnet_lab.results.laptop.orderings` and
    :func:`resnet_lab.book.reproduction.depth_figure` take, so a sweep of one seed is checked with
    the same claims (and the same honesty about error bars) as the laptop study.
    """
    out = {}
    for (kind, depth), runs in sorted(group.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        runs = [runs] if isinstance(runs, RunRecord) else list(runs)
        errors = [final_errors(r) for r in runs]
        out[(kind, depth)] = SeedSummary(
            kind=kind,
            depth=depth,
            model=runs[0]["model"],
            seeds=tuple(r["seed"] for r in runs),
            train=tuple(e["train_error"] for e in errors),
            test=tuple(e["test_error"] for e in errors),
            runs=tuple(runs),
        )
    return out


def model_name(kind: str, depth: int) -> str:
    """The registry name of a study network: ``('plain', 20)`` -> ``'plain20'``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return f"{'resnet' if kind == 'residual' else 'plain'}{depth}"


def _thin(xs: Sequence[float], ys: Sequence[float], points: int) -> tuple[list, list]:
    """Keep about ``points`` evenly spaced points, always the last one."""
    if len(xs) <= points:
        return list(xs), list(ys)
    every = -(-len(xs) // points)
    keep = list(range(0, len(xs), every))
    if keep[-1] != len(xs) - 1:
        keep.append(len(xs) - 1)
    return [xs[i] for i in keep], [ys[i] for i in keep]


def training_curves(rec: RunRecord, points: int = 60) -> dict[str, tuple[list, list]]:
    """``{'training error': (iterations, %), 'test error': (iterations, %)}`` of a stored run.

    Training error comes from the every-N-steps records (a running mean over the last
    N mini-batches, augmented images) where the run has them, else from the epoch
    records; test error at every evaluation of the whole test split
    (:meth:`~resnet_lab.results.RunRecord.test_curve`).
    """
    steps = [s for s in rec.record.get("steps", []) if s.get("train_error") is not None]
    source = steps or [h for h in rec["history"] if h.get("train_error") is not None]
    train = _thin(
        [float(s["step"]) for s in source], [100.0 * s["train_error"] for s in source], points
    )
    steps_tested, errors = rec.test_curve()
    test = ([float(s) for s in steps_tested], [100.0 * e for e in errors])
    return {"training error": train, "test error": test}


def seed_runs(
    study: Mapping[tuple[str, int], RunRecord], store: str | Path | None = None
) -> dict[tuple[str, int], list[RunRecord]]:
    """Every stored seed of each study run: same model, data, recipe, tag and length."""
    out: dict[tuple[str, int], list[RunRecord]] = {}
    for network, rec in study.items():
        tags = rec.get("tags") or []
        candidates = list_runs(store, model=rec["model"], tag=tags[0]) if tags else []
        same = {}
        for other in [rec, *candidates]:
            alike = (
                other.variant == rec.variant
                and other["recipe"].get("recipe") == rec["recipe"].get("recipe")
                and _iterations(other) == _iterations(rec)
            )
            if alike and other["seed"] not in same:
                same[other["seed"]] = other
        out[network] = list(same.values())
    return out


def full_cifar_runs(store: str | Path | None) -> list[RunRecord]:
    """Runs on the whole CIFAR-10 training split (subset runs are not comparable)."""
    return [
        r
        for r in list_runs(store, variant=list(CIFAR10_VARIANTS))
        if r["data"].get("train_size") == CIFAR10_TRAIN_SIZE and "subset_per_class" not in r["data"]
    ]
