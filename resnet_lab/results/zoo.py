"""The zoo: converged CIFAR-10 networks (``results/zoo/``) and Figure 6 / Table 6 read from them.

The zoo's networks are the paper's (He et al. 2016, Sec. 4.2: option-A shortcuts,
BatchNorm scales starting at 1) and their plain twins, each trained once by the engine on
the whole training split of ``cifar10-jpeg`` with one schedule (``results/README.md``
says which and with what command). Their weights ship with the package
(:mod:`resnet_lab.models` ``weights=``); this module reads their run records.

With one seed per network a difference has no error bar of its own, so each verdict is
held against the seed-to-seed spread the laptop depth study measured
(:func:`resnet_lab.results.laptop.seed_sd`): the standard error of a difference of two
one-seed runs is taken as sqrt(2) x that spread. That study trains another protocol
(5,000 images at 16 pixels), so the bar is borrowed, and said to be.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from resnet_lab.results.laptop import Claim, SeedSummary, laptop_study, orderings, seed_sd
from resnet_lab.results.store import list_runs
from resnet_lab.results.studies import (
    CIFAR10_TRAIN_SIZE,
    matched_groups,
    seed_summaries,
)

__all__ = ["TAG", "borrowed_spread", "verdict_rows", "zoo_claims", "zoo_runs", "zoo_study"]

TAG = "zoo"


def zoo_runs(store: str | Path | None = None, tag: str = TAG):
    """The zoo's completed runs on the whole training split, ``{(kind, depth): [runs]}``.

    The largest set of runs that trained alike (:func:`matched_groups`), so a network
    trained on another schedule never joins the others. Empty when none is stored yet.
    """
    runs = [
        r
        for r in list_runs(store, tag=tag, status="completed")
        if r["data"].get("train_size") == CIFAR10_TRAIN_SIZE
    ]
    groups = matched_groups(runs)
    return groups[0] if groups else {}


def zoo_study(
    store: str | Path | None = None, tag: str = TAG
) -> dict[tuple[str, int], SeedSummary]:
    """``{(kind, depth): SeedSummary}`` of the zoo (final training and test error, %)."""
    return seed_summaries(zoo_runs(store, tag))


def borrowed_spread(store: str | Path | None = None) -> dict[str, float | None]:
    """The laptop study's pooled seed-to-seed standard deviation of one run's final error
    (points), ``{'train': sd, 'test': sd}``, over its residual networks."""
    study = laptop_study(store)
    return {which: seed_sd(study, which=which) for which in ("train", "test")}


def zoo_claims(
    study: Mapping[tuple[str, int], SeedSummary],
    spread: float | None,
    which: str = "train",
) -> list[Claim]:
    """Figure 6's orderings on the zoo (:func:`~resnet_lab.results.laptop.orderings`).

    A comparison of one seed against one seed has no standard error of its own; it gets
    sqrt(2) x ``spread`` (the borrowed seed-to-seed sd, points), and its evidence says so.
    """
    out = []
    for claim in orderings(study, which):
        if claim.se is None and spread is not None:
            claim = dataclasses.replace(
                claim,
                se=math.sqrt(2) * spread,
                evidence=claim.evidence + "; error bar borrowed from the laptop study's seeds",
            )
        out.append(claim)
    return out


def verdict_rows(claims: Sequence[Claim]) -> list[dict[str, str]]:
    """One row per claim for a table: the claim, the difference, and whether it holds."""
    rows = []
    for c in claims:
        if c.se is None:
            verdict = "in order, no error bar" if c.in_order else "reversed, no error bar"
        elif c.holds:
            verdict = "holds"
        elif c.in_order:
            verdict = "in order, within the error bar"
        elif -c.difference > c.se:
            verdict = "reversed"
        else:
            verdict = "reversed, within the error bar"
        se = f"{c.se:.1f}" if c.se is not None else "-"
        rows.append(
            {
                "claim": c.text,
                "difference (points)": f"{c.difference:+.2f}",
                "standard error (points)": se,
                "verdict": verdict,
            }
        )
    return rows
