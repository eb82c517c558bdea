"""The depth study of chapter 6, read from the results store: explorer curves and Table 6.

He et al. (2016, Sec. 4.2) train plain and residual CIFAR nets of 20 to 110 layers
(Fig. 6) and compare the residual ones with other networks in Table 6. The book's
results store holds our runs of the same networks (tag ``depth-study``); this module
turns them into

- :func:`depth_study`: one run per (network, depth), the longest-trained if several;
- :func:`matched_groups` / :func:`seed_summaries`: runs that may be compared (same data,
  recipe and length), every seed of each network, as the seed means of
  :class:`resnet_lab.laptop.SeedSummary` (so :func:`resnet_lab.laptop.orderings` checks
  Figure 6's orderings on them too);
- :func:`depth_explorer`: a kernel-free :class:`~resnet_lab.explorer.Explorer` with
  controls depth and network, training and test error against iterations
  (:func:`laptop_explorer`: the same for the laptop depth study);
- :func:`table6`: our test errors beside the published ones, from one matched sweep, with
  its provenance (data, recipe, epochs, iterations, device, date).

One definition of a run's final error everywhere: :func:`final_errors`, what the run
record stores as ``final`` (training error: the mean over the last epoch's augmented
mini-batches; test error: the whole test split after the last epoch).

Nothing here invents a number: a combination that was never run is reported as not
measured, and published numbers are labelled as such.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resnet_lab.results import RunRecord, list_runs

if TYPE_CHECKING:
    from resnet_lab.explorer import Series
from resnet_lab.tables import Table

__all__ = [
    "DEPTHS",
    "KINDS",
    "PAPER_PARAMS_M",
    "PAPER_PREACT_TEST_ERROR",
    "PAPER_TEST_ERROR",
    "ComparisonTable",
    "claim_groups",
    "claims_verdict",
    "depth_explorer",
    "depth_panel",
    "depth_takeaway",
    "model_name",
    "overlay_figure",
    "depth_study",
    "final_errors",
    "laptop_explorer",
    "matched_groups",
    "matched_runs",
    "parse_model",
    "peak_lr",
    "provenance",
    "seed_summaries",
    "sweep_provenance",
    "shortcut_path",
    "study_caption",
    "table6",
    "training_curves",
]

DEPTHS = (20, 32, 44, 56, 110)
KINDS = ("plain", "residual")
#: He et al. (2016), Table 6: CIFAR-10 test error (%) of the residual nets after 64k
#: iterations; ResNet-110 is the best of 5 runs (mean 6.61 +/- 0.16).
PAPER_TEST_ERROR = {20: 8.75, 32: 7.51, 44: 7.17, 56: 6.97, 110: 6.43, 1202: 7.93}
PAPER_110_MEAN_STD = (6.61, 0.16)
#: He et al. (2016b), Table 3: CIFAR-10 test error (%) of the original and the
#: pre-activation unit, ``{depth: (original, pre-activation)}``; 164 and 1001 are
#: bottleneck nets, 110 has basic blocks.
PAPER_PREACT_TEST_ERROR = {110: (6.61, 6.37), 164: (5.93, 5.46), 1001: (7.61, 4.92)}
#: He et al. (2016), Table 6: parameters in millions.
PAPER_PARAMS_M = {20: 0.27, 32: 0.46, 44: 0.66, 56: 0.85, 110: 1.7, 1202: 19.4}
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
    """What two runs must share to be compared: data, training-set size, recipe, length."""
    data = rec["data"]
    return (
        rec.variant,
        data.get("train_size"),
        tuple(data.get("subset_per_class") or ()),
        rec["recipe"].get("recipe"),
        _iterations(rec),
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
    The result is what :func:`resnet_lab.laptop.orderings` and
    :func:`resnet_lab.laptop.depth_figure` take, so a sweep of one seed is checked with
    the same claims (and the same honesty about error bars) as the laptop study.
    """
    from resnet_lab.laptop import SeedSummary

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


def claim_groups(claims: Iterable[Any]) -> dict[str, list[Any]]:
    """Figure 6's claims (:func:`resnet_lab.laptop.orderings`) by what they compare.

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


def claims_verdict(claims: Sequence[Any]) -> str:
    """How a group of claims fares, in words: order, and order beyond one standard error."""
    n = len(claims)
    if n == 0:
        return "not testable (fewer than two networks stored)"
    order = sum(c.in_order for c in claims)
    held = sum(c.holds for c in claims)
    no_bar = sum(c.se is None for c in claims)
    text = f"in the paper's order in {order} of {n} comparison{'s' if n != 1 else ''}"
    if no_bar == n:
        return text + ", each with one seed of at least one of its networks (no error bar)"
    text += f", beyond one standard error in {held}"
    if no_bar:
        text += f" ({no_bar} with only one seed of a network: no error bar)"
    return text


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


def study_caption(study: Mapping[tuple[str, int], RunRecord], explorer: bool = False) -> str:
    """Where the study's curves come from (data, recipe, length, device), for a figure caption."""

    def values(key: str) -> str:
        found = sorted(
            {provenance(r)[key] for r in study.values()}, key=lambda v: (str(type(v)), v)
        )
        return ", ".join(f"{v:,}" if isinstance(v, int) else str(v) for v in found)

    epochs = values("epochs")
    return (
        f"Measured runs from the results store: data {values('data')} "
        f"({values('train_size')} training images), recipe {values('recipe')}, "
        f"{epochs} {'epoch' if epochs == '1' else 'epochs'}, device {values('device')}. "
        "Training error: running "
        "mean over the last mini-batches (augmented); test error: the whole test split "
        "at each evaluation (after each epoch, and every eval_every_steps iterations where "
        "the run set it)."
        + (" Combinations without a run show 'not measured'." if explorer else "")
    )


def _seed_runs(
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


def _seed_series(curves: Sequence[tuple[list, list]], color: str, dash: str) -> Series:
    """Mean over seeds at the x values every seed has, with the min-max band if several."""
    from resnet_lab.explorer import Series

    if len(curves) == 1:
        return Series(*curves[0], color=color, dash=dash)
    common = set(curves[0][0]).intersection(*(set(xs) for xs, _ in curves[1:]))
    xs = [x for x in curves[0][0] if x in common]
    values = [[dict(zip(cx, cy, strict=True))[x] for cx, cy in curves] for x in xs]
    mean = [sum(v) / len(v) for v in values]
    return Series(xs, mean, [min(v) for v in values], [max(v) for v in values], color, dash)


def depth_explorer(
    study: Mapping[tuple[str, int], RunRecord] | None = None,
    depths: Sequence[int] = DEPTHS,
    kinds: Sequence[str] = KINDS,
    default: tuple[int, str] = (56, "plain"),
    seeds: Mapping[tuple[str, int], Sequence[RunRecord]] | None = None,
    store: str | Path | None = None,
    title: str = "CIFAR-10: plain and residual networks (measured; dashed: training, solid: test)",
):
    """Figure 6 of He et al. (2016) from the results store, as a kernel-free explorer.

    One drop-down: a depth (plain and residual on the same axes) or a kind of network
    (every depth at once). Training error dashed, test error solid, against iterations;
    where several seeds of a run are stored (``seeds``, by default looked up in
    ``store``), the mean with a shaded min-max band. ``default[0]`` is the depth shown first.
    Returns None when the study holds no run (the notebook then says so).
    """
    from resnet_lab.explorer import PALETTE, Explorer

    study = matched_runs() if study is None else study
    study = {k: r for k, r in study.items() if k[1] in depths and k[0] in kinds}
    if not study:
        return None
    seeds = _seed_runs(study, store) if seeds is None else seeds
    curves = {
        network: [training_curves(r) for r in seeds.get(network) or [rec]]
        for network, rec in study.items()
    }
    kind_color = {"plain": PALETTE[1], "residual": PALETTE[0]}
    depth_color = {d: PALETTE[i % len(PALETTE)] for i, d in enumerate(depths)}
    label = {"plain": "plain-{}", "residual": "ResNet-{}"}

    def series(network: tuple[str, int], color: str) -> dict[str, Any]:
        name = label[network[0]].format(network[1])
        runs = curves[network]
        n = f" ({len(runs)} seeds)" if len(runs) > 1 else ""
        return {
            f"{name}, training{n}": _seed_series(
                [c["training error"] for c in runs], color, "dash"
            ),
            f"{name}, test{n}": _seed_series([c["test error"] for c in runs], color, "solid"),
        }

    views: dict[str, dict[str, Any]] = {}
    for depth in depths:
        found = [(k, depth) for k in kinds if (k, depth) in study]
        if found:
            views[f"{depth} layers"] = {
                n: s for net in found for n, s in series(net, kind_color[net[0]]).items()
            }
    for kind in kinds:
        found = [(kind, d) for d in depths if (kind, d) in study]
        if found:
            views[f"{kind}, every depth"] = {
                n: s for net in found for n, s in series(net, depth_color[net[1]]).items()
            }
    first = f"{default[0]} layers"
    return Explorer(
        {(view,): c for view, c in views.items()},
        {"show": list(views)},
        title=title,
        xlabel="iteration (mini-batch of 128 images)",
        ylabel="error (%)",
        caption=study_caption(study, explorer=True)
        + " Where several seeds are stored: their mean, and a band from the lowest to the"
        " highest.",
        default=(first,) if first in views else None,
        markers=True,
        missing_text="not measured for",
        overlay=None,
    )


def laptop_explorer(study: Mapping[tuple[str, int], Any], default: int = 56):
    """The depth explorer for the laptop depth study (:func:`resnet_lab.laptop.laptop_study`).

    ``study`` maps ``(kind, depth)`` to a :class:`~resnet_lab.laptop.SeedSummary`; every
    stored seed is drawn (mean and min-max band). None when the study is empty.
    """
    if not study:
        return None
    reps = {n: s.runs[0] for n, s in study.items()}
    seeds = {n: list(s.runs) for n, s in study.items()}
    depths = sorted({d for _, d in study})
    return depth_explorer(
        reps,
        depths=depths,
        default=(default if default in depths else depths[-1], "plain"),
        seeds=seeds,
        title="Laptop depth study: plain and residual (zero-initialised branches) CIFAR nets "
        "(measured; dashed: training, solid: test)",
    )


@dataclass
class ComparisonTable:
    """Rows of dicts with the same keys; shows as an HTML table, prints as text."""

    columns: list[str]
    rows: list[dict[str, str]]
    note: str = ""

    def __str__(self) -> str:
        return str(self._table())

    def __repr__(self) -> str:
        return str(self)

    def to_markdown(self) -> str:
        lines = ["| " + " | ".join(self.columns) + " |"]
        lines.append("|" + "|".join(" --- " for _ in self.columns) + "|")
        lines += ["| " + " | ".join(r[c] for c in self.columns) + " |" for r in self.rows]
        return "\n".join(lines) + (f"\n\n{self.note}" if self.note else "")

    def _repr_html_(self) -> str:
        return self._table()._repr_html_()

    def _table(self) -> Table:
        return Table(self.rows, self.columns, note=self.note)


def _full_cifar_runs(store: str | Path | None) -> list[RunRecord]:
    """Runs on the whole CIFAR-10 training split (subset runs are not comparable)."""
    return [
        r
        for r in list_runs(store, variant=list(CIFAR10_VARIANTS))
        if r["data"].get("train_size") == CIFAR10_TRAIN_SIZE and "subset_per_class" not in r["data"]
    ]


def _pct(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.2f}"


def _mean_cell(values: Sequence[float | None]) -> str:
    """'12.34' for one seed, '12.34 ± 0.56 (3 seeds)' (mean ± standard error) for several."""
    values = [v for v in values if v is not None]
    if not values:
        return "not measured"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    m = sum(values) / len(values)
    se = (sum((v - m) ** 2 for v in values) / (len(values) - 1) / len(values)) ** 0.5
    return f"{m:.2f} ± {se:.2f} ({len(values)} seeds)"


def _as_runs(study: Mapping[tuple[str, int], Any]) -> list[RunRecord]:
    runs: list[RunRecord] = []
    for value in study.values():
        runs += [value] if isinstance(value, RunRecord) else list(value)
    return runs


def sweep_provenance(group: Mapping[tuple[str, int], Any]) -> str:
    """One line on where a matched set of runs comes from (data, recipe, length, seeds, device)."""
    runs = _as_runs(group)
    if not runs:
        return "no runs"

    def values(key: str) -> str:
        found = sorted({str(provenance(r)[key]) for r in runs}, key=lambda v: (len(v), v))
        return " / ".join(found)

    p = provenance(runs[0])
    seeds = sorted({r["seed"] for r in runs})
    return (
        f"data {p['data']} ({p['train_size']:,} training, {p['test_size']:,} test images), "
        f"recipe {p['recipe']}, {p['epochs']} epochs = {p['iterations']:,} iterations of "
        f"batch {p['batch_size']}, seed{'s' if len(seeds) > 1 else ''} "
        f"{', '.join(map(str, seeds))}, device {values('device')}, {values('date')}"
    )


def table6(
    store: str | Path | None = None,
    depths: Sequence[int] = (20, 32, 44, 56, 110, 1202),
    plain: bool = True,
    study: Mapping[tuple[str, int], Any] | None = None,
) -> ComparisonTable:
    """Table 6 of He et al. (2016): the published test error beside ours, from one matched sweep.

    Ours come from one set of runs that may be compared (:func:`matched_groups`: the
    same data, recipe and length): by default the largest such set on the full
    CIFAR-10 training split in ``store`` (then the longest), else the largest set within
    ``study`` (``{(kind, depth): run or [runs]}``), so a run of another recipe or length
    never sits beside the others. With several seeds a cell shows mean ± standard error.
    ``plain=True`` adds the plain nets (Fig. 6) as rows; a depth without a run of the
    sweep says 'not measured'. The note gives the sweep's provenance.
    """
    runs = _full_cifar_runs(store) if study is None else _as_runs(study)
    groups = matched_groups(runs)
    group = groups[0] if groups else {}
    rows: list[dict[str, str]] = []
    for depth in depths:
        for kind in ("residual", "plain") if plain else ("residual",):
            seeds = group.get((kind, depth))
            if kind == "plain" and seeds is None:
                continue  # the paper has no plain row in Table 6 either
            paper = PAPER_TEST_ERROR.get(depth) if kind == "residual" else None
            paper_s = "-" if paper is None else f"{paper:.2f}"
            if kind == "residual" and depth == 110:
                paper_s += " (mean {:.2f} ± {:.2f})".format(*PAPER_110_MEAN_STD)
            row = {
                "network": f"{'ResNet' if kind == 'residual' else 'plain'}-{depth}",
                "params (M, paper)": f"{PAPER_PARAMS_M[depth]:g}"
                if depth in PAPER_PARAMS_M
                else "-",
                "test error, paper (%)": paper_s,
            }
            if seeds is None:
                row.update({"test error, ours (%)": "not measured", "train error, ours (%)": "-"})
                row.update(
                    dict.fromkeys(("epochs", "iterations", "data", "recipe", "device", "date"), "-")
                )
            else:
                errs = [final_errors(r) for r in seeds]
                prov = provenance(seeds[0])
                row.update(
                    {
                        "test error, ours (%)": _mean_cell([e["test_error"] for e in errs]),
                        "train error, ours (%)": _mean_cell([e["train_error"] for e in errs]),
                        "epochs": str(prov["epochs"]),
                        "iterations": f"{prov['iterations']:,}",
                        "data": f"{prov['data']} ({prov['train_size']:,} train)",
                        "recipe": str(prov["recipe"]),
                        "device": str(prov["device"]),
                        "date": prov["date"],
                    }
                )
            rows.append(row)
    columns = list(rows[0]) if rows else []
    ours = (
        f"Ours: one matched sweep, every row trained alike: {sweep_provenance(group)}. "
        "Training error: the mean over the last epoch's augmented mini-batches."
        if group
        else "Ours: no stored sweep yet."
    )
    others = sum(len(seeds) for g in groups[1:] for seeds in g.values())
    if others:
        ours += (
            f" The store's {others} other run(s) of these networks (other recipes or lengths) "
            "are left out, so that no row mixes them."
        )
    note = (
        "Paper: He et al. (2016), Table 6, published numbers after 64k iterations of batch 128 "
        "(about 164 epochs of 50k images); ResNet-110 best of 5 runs. " + ours
    )
    return ComparisonTable(columns, rows, note)


def _described(values: Sequence[tuple[int, float]]) -> str:
    return ", ".join(f"{e:.1f}% at {d}" for d, e in values)


def _trend(values: Sequence[float]) -> str:
    steps = [b - a for a, b in zip(values, values[1:], strict=False)]
    if all(x > 0 for x in steps):
        return "rises with every step in depth"
    if all(x < 0 for x in steps):
        return "falls with every step in depth"
    return "does not move one way with depth"


def depth_takeaway(study: Mapping[tuple[str, int], RunRecord]) -> str:
    """A few sentences, in Markdown, on what the stored study shows (from its numbers only).

    Every depth is listed (final training error, :func:`final_errors`); a run whose
    largest learning rate is below the others' (ResNet-110's warm-up outlasting a short
    schedule's first drop) is named as not comparable, and left out of the trend.
    """
    if not study:
        return (
            "The results store holds no run of the depth study yet, so there is nothing to "
            "compare; run `resnet-lab sweep` (see the README) to add one."
        )
    peaks = {n: peak_lr(r) for n, r in study.items()}
    top = max((p for p in peaks.values() if p is not None), default=None)
    slow = {n for n, p in peaks.items() if p is not None and top is not None and p < top}
    parts = []
    for kind in KINDS:
        runs = sorted(
            (d, final_errors(r)["train_error"]) for (k, d), r in study.items() if k == kind
        )
        runs = [(d, e) for d, e in runs if e is not None]
        fair = [(d, e) for d, e in runs if (kind, d) not in slow]
        if len(fair) < 2:
            continue
        parts.append(
            f"the final training error of the {kind} nets {_trend([e for _, e in fair])} "
            f"({_described(fair)} layers)"
        )
    both = [d for d in DEPTHS if ("plain", d) in study and ("residual", d) in study]
    lower = []
    for d in both:
        p = final_errors(study[("plain", d)])["train_error"]
        r = final_errors(study[("residual", d)])["train_error"]
        if p is not None and r is not None:
            lower.append(r < p)
    if lower:
        word = "every" if all(lower) else f"{sum(lower)} of {len(lower)}"
        parts.append(f"the residual net ends below the plain net of its depth at {word} depth")
    if not parts:
        return f"The store holds {len(study)} run(s) of the study, too few to compare depths."
    iters = sorted({provenance(r)["iterations"] for r in study.values()})
    text = f"In the stored study ({', '.join(map(str, iters))} iterations per run), " + "; ".join(
        parts
    )
    text += "."
    for kind, depth in sorted(slow, key=lambda n: n[1]):
        e = final_errors(study[(kind, depth)])["train_error"]
        name = f"{'ResNet' if kind == 'residual' else 'plain'}-{depth}"
        text += (
            f" {name} ({e:.1f}%) is left out of the trend: its learning rate never rose above "
            f"{peaks[(kind, depth)]:.2g} (its warm-up outlasts this schedule's first drop), "
            f"while the others trained at {top:.2g}, so its number is not comparable."
        )
    return text


def overlay_figure(
    study: Mapping[tuple[str, int], RunRecord],
    live: Mapping[str, Sequence[Mapping[str, Any]]],
    epochs: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    live_variant: str | None = None,
):
    """Live training curves (solid) over the stored ones of the same networks (dashed).

    ``live`` maps ``'kind-depth'`` (e.g. ``'plain-56'``) to step records, ``epochs`` to
    epoch records (test error dots); ``live_variant`` names the data the live runs train
    on (e.g. ``synthetic``), so the legend never passes them off as CIFAR. Returns a
    :class:`matplotlib.figure.Figure` made without pyplot, so it is safe to draw from a
    training thread.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.8), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    names = list(dict.fromkeys([*live, *(epochs or {})]))
    on = f" on {live_variant}" if live_variant else ""
    for i, name in enumerate(names):
        color = f"C{i % 10}"
        kind, _, depth = name.partition("-")
        stored = study.get((kind, int(depth))) if depth.isdigit() else None
        if stored is not None:
            xs, ys = training_curves(stored)["training error"]
            ax.plot(xs, ys, ls="--", lw=1, color=color, label=f"{name}, stored (train)")
        steps = live.get(name, [])
        if steps:
            ax.plot(
                [s["step"] for s in steps],
                [100 * s["train_error"] for s in steps],
                color=color,
                lw=1.8,
                label=f"{name}, live{on} (train)",
            )
        tested = [h for h in (epochs or {}).get(name, []) if h.get("test_error") is not None]
        if tested:
            ax.plot(
                [h["step"] for h in tested],
                [100 * h["test_error"] for h in tested],
                "o",
                color=color,
                label=f"{name}, live{on} (test)",
            )
    ax.set_xlabel("iteration (mini-batch of 128 images)")
    ax.set_ylabel("error (%)")
    ax.grid(alpha=0.3)
    if names:
        ax.legend(fontsize="small", loc="upper right")
    else:
        ax.text(0.5, 0.5, "press Start to train a network", ha="center", transform=ax.transAxes)
    return fig


def depth_panel(
    data: Any,
    config: Any,
    study: Mapping[tuple[str, int], RunRecord] | None = None,
    device: Any = None,
    depths: Sequence[int] = DEPTHS,
    background: bool = True,
):
    """A :class:`~resnet_lab.widgets.TrainPanel` that trains the chosen plain or residual net.

    Each run trains ``plain<depth>`` or ``resnet<depth>`` on ``data`` with ``config``
    (a :class:`~resnet_lab.engine.TrainConfig`) and draws its curves over the stored
    run of the same network. One run at a time; Stop ends a run after the current step.
    """
    import torch

    from resnet_lab.engine import train
    from resnet_lab.models import build
    from resnet_lab.widgets import TrainPanel

    study = {} if study is None else study
    live: dict[str, list[dict[str, Any]]] = {}
    panel: TrainPanel

    def train_fn(depth: int, kind: str, callback) -> Any:
        name = f"{kind}-{depth}"
        live[name] = []

        def on_step(event: str, run: Any, record: dict[str, Any]) -> None:
            if event == "step":
                live[name].append(dict(record))
                panel.redraw()

        torch.manual_seed(config.seed)
        model = build(model_name(kind, depth))
        return train(
            model,
            data,
            config,
            device=device,
            callbacks=[on_step, callback],
            progress=False,
            name=model_name(kind, depth),
        )

    panel = TrainPanel(
        train_fn,
        depths=depths,
        kinds=KINDS,
        plot_fn=lambda histories: overlay_figure(study, live, histories, data.variant),
        background=background,
    )
    panel.live = live  # type: ignore[attr-defined]
    panel.redraw()
    return panel


def model_name(kind: str, depth: int) -> str:
    """The registry name of a study network: ``('plain', 20)`` -> ``'plain20'``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return f"{'resnet' if kind == 'residual' else 'plain'}{depth}"


def shortcut_path(model: Any, x: Any) -> dict[str, list[float]]:
    """How far each block of ``model`` is from ``x + F(x)`` (He et al. 2016b, Eqs. 3-4).

    For every block whose shortcut is the identity (same shape in and out), with a
    forward pass in train mode on ``x``:

    - ``deviation``: ``||out - (x + F(x))|| / ||x + F(x)||``, what the operation after
      the addition changes (the ReLU of the original unit; exactly 0 for pre-activation);
    - ``clipped``: the fraction of elements of ``x + F(x)`` that the block does not pass on.

    Returns ``{'deviation': [...], 'clipped': [...], 'unrolled': [...]}``, where
    ``unrolled`` holds per stage ``||x_L - (x_l + sum_i F(x_i))|| / ||x_L||``: zero when
    the stage's output is its input plus the sum of its residual functions (Eq. 4).
    The model is measured on a copy, so its BatchNorm statistics stay as they were.
    """
    import copy

    import torch

    from resnet_lab.models import residual_blocks

    net = copy.deepcopy(model).train()
    records: list[tuple[str, Any, Any, Any]] = []

    def hook(name: str):
        def fn(module: Any, args: tuple, out: Any) -> None:
            inp = args[0]
            if module.use_shortcut and inp.shape == out.shape and module.downsample is None:
                records.append((name, inp, module.residual(inp), out))

        return fn

    handles = [b.register_forward_hook(hook(n)) for n, b in residual_blocks(net)]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
    deviation, clipped = [], []
    stages: dict[str, list[tuple[Any, Any, Any]]] = {}
    for name, inp, fx, out in records:
        summed = inp + fx
        deviation.append(float((out - summed).norm() / summed.norm().clamp_min(1e-12)))
        clipped.append(float((out != summed).float().mean()))
        stages.setdefault(name.split(".")[0], []).append((inp, fx, out))
    unrolled = []
    for blocks in stages.values():
        x_l, x_L = blocks[0][0], blocks[-1][2]
        total_f = sum(fx for _, fx, _ in blocks)
        unrolled.append(float((x_L - (x_l + total_f)).norm() / x_L.norm().clamp_min(1e-12)))
    return {"deviation": deviation, "clipped": clipped, "unrolled": unrolled}
