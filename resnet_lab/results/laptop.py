"""The laptop depth study: Figure 6 of He et al. (2016) at a scale a 2-core CPU trains.

Same networks as the paper's CIFAR study (6n+2 layers, three stages, option-A
shortcuts, depths 20 to 56), scaled where a laptop cannot afford the paper: 500
training images per class (5,000), images resized to 16x16, 40 epochs of the
``laptop`` recipe, and the residual nets' last BatchNorm of each block started at zero
(``resnetNN-zi``). Why this protocol, and what else was tried: ``results/README.md``.
Stored under the tag ``laptop-depth``, several seeds per network; this module reads
them back as means with standard errors and states the orderings of Figure 6 as
checked claims (:func:`orderings`, grouped by what they compare: :func:`claim_groups`).
The figure of these means: :func:`resnet_lab.book.reproduction.depth_figure`.

Training error here is the one the run records at the end: the mean over the last
epoch's mini-batches (augmented images, weights changing during the epoch). Test
error: the whole 10,000-image test split after the last epoch.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resnet_lab.results.store import RunRecord, list_runs

__all__ = [
    "DEPTHS",
    "TAG",
    "Claim",
    "SeedSummary",
    "against_shallowest",
    "against_shallowest_words",
    "claim_groups",
    "compare",
    "laptop_study",
    "orderings",
    "PILOTS",
    "PILOT_TAGS",
    "Pilot",
    "pilots",
    "pilot_rows",
    "pilot_verdict",
    "protocol_changes",
    "seed_sd",
]

TAG = "laptop-depth"
DEPTHS = (20, 32, 44, 56)
#: The protocols tried before and after the study (``results/depth-pilots/``), one seed
#: each, in the order they were run: tag -> a name for readers. Their records say how
#: they differ from the study (:func:`protocol_changes`).
PILOTS = {
    "pilot-A": "A: the paper's initialisation",
    "pB-zi": "B: zero-initialised branches",
    "pC-noaug": "C: no augmentation",
    "pilot-D-80ep": "D: twice the epochs",
    "laptop-wd1e-4": "E: the paper's weight decay",
    "laptop-32px": "F: full-size images",
    "laptop-10k": "G: twice the images",
}
PILOT_TAGS = tuple(PILOTS)
_NAME = re.compile(r"^(resnet|plain)(\d+)(-zi)?$")


@dataclass(frozen=True)
class SeedSummary:
    """Final errors (%) of every stored seed of one network of the study."""

    kind: str  # 'plain' or 'residual'
    depth: int
    model: str  # registry name, e.g. 'resnet56-zi'
    seeds: tuple[int, ...]
    train: tuple[float, ...]  # final training error of each seed, %
    test: tuple[float, ...]  # final test error of each seed, %
    runs: tuple[RunRecord, ...]

    @property
    def n(self) -> int:
        return len(self.seeds)

    @staticmethod
    def _mean(xs: Sequence[float]) -> float:
        return sum(xs) / len(xs)

    @staticmethod
    def _se(xs: Sequence[float]) -> float | None:
        """Standard error of the mean (sample sd / sqrt n); None with one seed."""
        if len(xs) < 2:
            return None
        m = sum(xs) / len(xs)
        return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1) / len(xs))

    @property
    def train_mean(self) -> float:
        return self._mean(self.train)

    @property
    def test_mean(self) -> float:
        return self._mean(self.test)

    @property
    def train_se(self) -> float | None:
        return self._se(self.train)

    @property
    def test_se(self) -> float | None:
        return self._se(self.test)

    def describe(self, which: str = "train") -> str:
        """'44.7 ± 0.6 % (3 seeds)' or '44.7 % (1 seed)'."""
        mean, se = (
            (self.train_mean, self.train_se) if which == "train" else (self.test_mean, self.test_se)
        )
        spread = f" ± {se:.1f}" if se is not None else ""
        return f"{mean:.1f}{spread} % ({self.n} seed{'s' if self.n != 1 else ''})"

    @property
    def label(self) -> str:
        return f"{'ResNet' if self.kind == 'residual' else 'plain'}-{self.depth}"


def laptop_study(
    store: str | Path | None = None, tag: str = TAG
) -> dict[tuple[str, int], SeedSummary]:
    """``{(kind, depth): SeedSummary}`` of every network with a completed stored run.

    One run per seed (the newest completed one); ordered by depth, plain first.
    """
    chosen: dict[tuple[str, int], dict[int, RunRecord]] = {}
    models: dict[tuple[str, int], str] = {}
    for rec in list_runs(store, tag=tag, status="completed"):
        match = _NAME.match(rec["model"])
        if match is None or rec["final"].get("train_error") is None:
            continue
        key = ("residual" if match.group(1) == "resnet" else "plain", int(match.group(2)))
        seeds = chosen.setdefault(key, {})
        models[key] = rec["model"]
        if rec["seed"] not in seeds or str(rec["date"]) > str(seeds[rec["seed"]]["date"]):
            seeds[rec["seed"]] = rec
    out = {}
    for key in sorted(chosen, key=lambda k: (k[1], k[0])):
        runs = tuple(chosen[key][s] for s in sorted(chosen[key]))
        out[key] = SeedSummary(
            kind=key[0],
            depth=key[1],
            model=models[key],
            seeds=tuple(r["seed"] for r in runs),
            train=tuple(100.0 * r["final"]["train_error"] for r in runs),
            test=tuple(100.0 * r["final"]["test_error"] for r in runs),
            runs=runs,
        )
    return out


@dataclass(frozen=True)
class Claim:
    """One ordering of Figure 6, tested on the stored seeds.

    ``holds``: the means are in the claimed order *and* the difference is larger than
    its standard error (sqrt(se_a^2 + se_b^2)); with one seed there is no standard
    error, so a claim cannot hold, only be ``in_order``.
    """

    text: str
    in_order: bool
    difference: float  # points, positive when in the claimed order
    se: float | None  # standard error of the difference, points
    evidence: str

    @property
    def holds(self) -> bool:
        return self.in_order and self.se is not None and self.difference > self.se

    def __str__(self) -> str:
        if self.se is None:
            verdict = "in order, one seed (no error bar)" if self.in_order else "False"
            return f"{self.text}: {verdict} ({self.evidence})"
        ratio = self.difference / self.se if self.se > 0 else math.inf
        return (
            f"{self.text}: {self.holds} ({self.evidence}; difference {self.difference:+.1f} "
            f"points = {ratio:+.1f} standard errors)"
        )


def compare(text: str, worse: SeedSummary, better: SeedSummary, which: str = "train") -> Claim:
    """The claim ``text`` that ``worse`` ends at the higher error (training by default).

    Any two groups of seeds can be compared, e.g. one network trained two ways."""
    w = worse.train if which == "train" else worse.test
    b = better.train if which == "train" else better.test
    diff = SeedSummary._mean(w) - SeedSummary._mean(b)
    se_w, se_b = SeedSummary._se(w), SeedSummary._se(b)
    se = math.sqrt(se_w**2 + se_b**2) if se_w is not None and se_b is not None else None
    evidence = f"{worse.label} {worse.describe(which)} vs {better.label} {better.describe(which)}"
    return Claim(text, diff > 0, diff, se, evidence)


def _along_depth(
    study: Mapping[tuple[str, int], SeedSummary], which: str, shallow_of: Any
) -> list[Claim]:
    """Plain deeper-is-worse and residual deeper-is-better claims, one per depth after the
    first of each kind; ``shallow_of(depths, i)`` is the depth the i-th one is held against."""
    noun = "trains" if which == "train" else "tests"
    claims = []
    for kind, word in (("plain", "worse"), ("residual", "better")):
        depths = sorted(d for k, d in study if k == kind)
        for i in range(1, len(depths)):
            a, b = study[(kind, shallow_of(depths, i))], study[(kind, depths[i])]
            text = f"{b.label} {noun} {word} than {a.label}"
            claims.append(
                compare(text, b, a, which) if kind == "plain" else compare(text, a, b, which)
            )
    return claims


def orderings(study: Mapping[tuple[str, int], SeedSummary], which: str = "train") -> list[Claim]:
    """Figure 6's orderings on mean final error (``which``: 'train' or 'test').

    Plain: every deeper net has the higher error than the next shallower one;
    residual: the lower; and residual below plain at every depth both were run at.
    """
    noun = "trains" if which == "train" else "tests"
    claims = _along_depth(study, which, lambda depths, i: depths[i - 1])
    for depth in sorted({d for _, d in study}):
        if ("plain", depth) in study and ("residual", depth) in study:
            p, r = study[("plain", depth)], study[("residual", depth)]
            claims.append(compare(f"{r.label} {noun} better than {p.label}", p, r, which))
    return claims


def against_shallowest(
    study: Mapping[tuple[str, int], SeedSummary], which: str = "train"
) -> list[Claim]:
    """Every deeper network against the shallowest of its kind (plain worse, residual better).

    A weaker reading of Figure 6 than :func:`orderings`: it asks whether depth hurts
    (plain) or helps (residual) at all, not whether every step of depth does.
    """
    return _along_depth(study, which, lambda depths, i: depths[0])


def against_shallowest_words(
    study: Mapping[tuple[str, int], SeedSummary], which: str = "train"
) -> str:
    """:func:`against_shallowest` for the residual nets, as one sentence, e.g. 'On test
    error, ResNet-32 and ResNet-44 beat ResNet-20 by more than one standard error;
    ResNet-56 only within it (+0.2 points, 0.5 standard errors).'"""
    claims = [c for c in against_shallowest(study, which) if c.text.startswith("ResNet")]
    if not claims:
        return ""
    error = "training" if which == "train" else "test"
    base = claims[0].text.rsplit(" than ", 1)[-1]
    name = {id(c): c.text.split(" ", 1)[0] for c in claims}
    held = [name[id(c)] for c in claims if c.holds]
    if len(held) == len(claims):
        return (
            f"On {error} error, every deeper ResNet beats {base}, each by more than its "
            "standard error."
        )
    parts = []
    if held:
        verb = "beats" if len(held) == 1 else "beat"
        parts.append(f"{' and '.join(held)} {verb} {base} by more than one standard error")
    for c in claims:
        if c.holds:
            continue
        ratio = f", {c.difference / c.se:.1f} standard errors" if c.se else ", one seed"
        how = "only within it" if c.in_order else f"does not beat {base}"
        parts.append(f"{name[id(c)]} {how} ({c.difference:+.1f} points{ratio})")
    return f"On {error} error, " + "; ".join(parts) + "."


def claim_groups(claims: Iterable[Any]) -> dict[str, list[Any]]:
    """Figure 6's claims (:func:`resnet_lab.results.laptop.orderings`) by what they compare.

    ``'plain'``: deeper plain against shallower plain; ``'residual'``: deeper residual
    against shallower residual; ``'residual vs plain'``: the two kinds at one depth.
    """
    out: dict[str, list[Any]] = {"plain": [], "residual": [], "residual vs plain": []}
    for claim in claims:
        if claim.text.startswith("plain-"):
            out["plain"].append(claim)
        elif "than plain-" in claim.text:
            out["residual vs plain"].append(claim)
        else:
            out["residual"].append(claim)
    return out


def protocol_changes(rec: RunRecord, reference: RunRecord) -> list[str]:
    """How run ``rec`` was trained differently from ``reference``, read from both records:
    data (images, pixels, test images), initialisation (``-zi``), every recipe field that
    changes training, and precision; e.g. ``['80 epochs (40)', 'weight_decay 0.0001 (0.0005)']``.
    """
    out = []
    data, ref_data = rec["data"], reference["data"]
    for key, name in (("train_size", "training images"), ("test_size", "test images")):
        if data.get(key) != ref_data.get(key):
            out.append(f"{data.get(key):,} {name} ({ref_data.get(key):,})")
    px, ref_px = data.get("image_size", [0])[-1], ref_data.get("image_size", [0])[-1]
    if px != ref_px:
        out.append(f"{px}x{px} pixels ({ref_px}x{ref_px})")
    zi, ref_zi = rec["model"].endswith("-zi"), reference["model"].endswith("-zi")
    if zi != ref_zi:
        init = ("zero-initialised branches", "the paper's initialisation")
        out.append(f"{init[not zi]} ({init[not ref_zi]})")
    steps, ref_steps = (r["history"][-1]["step"] if r["history"] else 0 for r in (rec, reference))
    if steps != ref_steps:
        out.append(f"{steps:,} iterations ({ref_steps:,})")
    mine, ref = (
        r.training_settings if isinstance(r, RunRecord) else RunRecord(r).training_settings
        for r in (rec, reference)
    )
    for key, value in mine.items():
        if value != ref.get(key):
            out.append(f"{_setting(key)} {_value(value)} ({_value(ref.get(key))})")
    return out


def _setting(key: str) -> str:
    return {"nesterov": "Nesterov momentum", "pct_start": "warm-up fraction"}.get(
        key, key.replace("_", " ")
    )


def _value(value: Any) -> str:
    return (
        {True: "on", False: "off", None: "none"}.get(value, str(value))
        if isinstance(value, bool | type(None))
        else str(value)
    )


@dataclass(frozen=True)
class Pilot:
    """One protocol tried for the study (one seed per network), and what it gave."""

    tag: str
    changes: tuple[str, ...]  # how it differs from the study (the study's value in brackets)
    runs: tuple[RunRecord, ...]  # completed residual runs, shallowest first
    #: standard deviation of one run's final training error over seeds (points), from the
    #: study's residual nets; None when the study has fewer than two seeds of any of them
    seed_sd: float | None = None

    def errors(self, which: str = "train") -> dict[str, float]:
        """``{'ResNet-44': 30.4, ...}``: final error (%) of each network."""
        key = "train_error" if which == "train" else "test_error"
        return {_label(r["model"]): 100.0 * r["final"][key] for r in self.runs}

    @property
    def deeper_better(self) -> Claim | None:
        """The deepest residual net against the next shallower one. One seed each, so the
        standard error of their difference is the study's: sqrt(2) x :attr:`seed_sd`."""
        if len(self.runs) < 2:
            return None
        (a, ea), (b, eb) = list(self.errors().items())[-2:]
        se = math.sqrt(2) * self.seed_sd if self.seed_sd is not None else None
        evidence = f"{b} {eb:.2f} % vs {a} {ea:.2f} %, one seed each"
        return Claim(f"{b} trains better than {a}", eb < ea, ea - eb, se, evidence)


def seed_sd(
    study: Mapping[tuple[str, int], SeedSummary], kind: str = "residual", which: str = "train"
) -> float | None:
    """Pooled standard deviation over seeds of one run's final error (points): training
    error by default, test error with ``which="test"``."""
    groups = [
        s.train if which == "train" else s.test
        for (k, _), s in study.items()
        if k == kind and s.n > 1
    ]
    dof = sum(len(g) - 1 for g in groups)
    if not dof:
        return None
    ss = sum(sum((x - sum(g) / len(g)) ** 2 for x in g) for g in groups)
    return math.sqrt(ss / dof)


def _label(model: str) -> str:
    match = _NAME.match(model)
    return (
        f"{'ResNet' if match.group(1) == 'resnet' else 'plain'}-{match.group(2)}"
        if match
        else model
    )


def pilots(store: str | Path | None = None, tag: str = TAG) -> list[Pilot]:
    """The protocols tried (:data:`PILOT_TAGS`) that stored a completed residual run, each
    described against the study's own run of its deepest network (seed 0)."""
    study = list_runs(store, tag=tag, status="completed", seed=0)
    spread = seed_sd(laptop_study(store, tag))
    out = []
    for pilot_tag in PILOT_TAGS:
        runs = [
            r
            for r in list_runs(store, tag=pilot_tag, status="completed")
            if (m := _NAME.match(r["model"])) and m.group(1) == "resnet"
        ]
        if not runs:
            continue
        runs.sort(key=lambda r: int(_NAME.match(r["model"]).group(2)))
        deepest = runs[-1]["model"]
        depth = _NAME.match(deepest).group(2)
        reference = [r for r in study if _NAME.match(r["model"]).group(2) == depth]
        reference = [r for r in reference if r["model"].startswith("resnet")] or study
        changes = protocol_changes(runs[-1], reference[0]) if reference else []
        out.append(Pilot(pilot_tag, tuple(changes), tuple(runs), spread))
    return out


def pilot_rows(found: Sequence[Pilot]) -> list[dict[str, str]]:
    """One row of text per pilot, for a table: what it changed and what it gave."""
    rows = []
    for p in found:
        rows.append(
            {
                "protocol": PILOTS.get(p.tag, p.tag),
                "differs from the study in (the study's value)": "; ".join(p.changes) or "nothing",
                "final training error, one seed (%)": ", ".join(
                    f"{name} {err:.1f}" for name, err in p.errors().items()
                ),
                "deepest ResNet against the next shallower one it trained": pilot_verdict(p),
            }
        )
    return rows


def pilot_verdict(p: Pilot) -> str:
    """The pilot's depth comparison in words, e.g. 'ResNet-56 better than ResNet-44 by
    3.5 points, beyond the standard error' or 'no difference beyond the standard error'."""
    claim = p.deeper_better
    if claim is None:
        return f"not compared: only {', '.join(p.errors())} completed"
    deeper, shallower = claim.text.split(" trains better than ")
    size = f"{abs(claim.difference):.1f} points"
    if claim.se is None:
        word = "better" if claim.in_order else "worse"
        return f"{deeper} {word} than {shallower} by {size} (one seed, no error bar)"
    if abs(claim.difference) > claim.se:
        word = "better" if claim.in_order else "worse"
        errors = p.errors()
        return (
            f"{deeper} {word} than {shallower} by {size} ({errors[deeper]:.2f} against "
            f"{errors[shallower]:.2f} %), beyond the standard error"
        )
    if abs(claim.difference) < 0.05:
        return (
            f"no difference beyond the standard error ({deeper} and {shallower} equal to 0.1 point)"
        )
    side = "lower" if claim.in_order else "higher"
    return f"no difference beyond the standard error ({deeper} {size} {side})"
