"""The depth study as the chapters show it: Figure 6 explorers, Table 6, takeaways in words.

He et al. (2016, Sec. 4.2) train plain and residual CIFAR nets of 20 to 110 layers
(Fig. 6) and compare the residual ones with other networks in Table 6. This module shows
the runs that :mod:`resnet_lab.results.studies` picks out of the results store:

- :func:`depth_explorer`: a kernel-free :class:`~resnet_lab.book.explorer.Explorer` with
  controls depth and network, training and test error against iterations
  (:func:`laptop_explorer`: the same for the laptop depth study; :func:`depth_figure`:
  its final errors against depth);
- :func:`table6`: our test errors beside the published ones, from one matched sweep, with
  its provenance (data, recipe, epochs, iterations, device, date);
- :func:`depth_takeaway`, :func:`claims_verdict`: what the stored numbers say, in words;
- :func:`depth_panel`: train a chosen network live, over its stored curves.

Nothing here invents a number: a combination that was never run is reported as not
measured, and published numbers are labelled as such.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resnet_lab.book.explorer import PALETTE, Explorer, Series
from resnet_lab.book.tables import Table
from resnet_lab.results import RunRecord
from resnet_lab.results.laptop import SeedSummary
from resnet_lab.results.studies import (
    DEPTHS,
    KINDS,
    final_errors,
    full_cifar_runs,
    matched_groups,
    matched_runs,
    model_name,
    peak_lr,
    provenance,
    seed_runs,
    training_curves,
)

__all__ = [
    "PAPER_110_MEAN_STD",
    "PAPER_PARAMS_M",
    "PAPER_PREACT_TEST_ERROR",
    "PAPER_TEST_ERROR",
    "ComparisonTable",
    "claims_verdict",
    "depth_explorer",
    "depth_figure",
    "depth_panel",
    "depth_takeaway",
    "laptop_explorer",
    "overlay_figure",
    "study_caption",
    "sweep_provenance",
    "table6",
]

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
    # A claim whose reverse holds: the deeper net is on the wrong side beyond the noise.
    reversed_ = [c for c in claims if c.se is not None and -c.difference > c.se]
    if reversed_:
        text += f"; reversed beyond one standard error in {len(reversed_)}: " + "; ".join(
            f"“{c.text}” is the other way round by {-c.difference:.1f} points "
            f"({-c.difference / c.se:.1f} standard errors)"
            for c in reversed_
        )
    if no_bar:
        text += f" ({no_bar} with only one seed of a network: no error bar)"
    return text


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


def _seed_series(curves: Sequence[tuple[list, list]], color: str, dash: str) -> Series:
    """Mean over seeds at the x values every seed has, with the min-max band if several."""
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
    study = matched_runs() if study is None else study
    study = {k: r for k, r in study.items() if k[1] in depths and k[0] in kinds}
    if not study:
        return None
    seeds = seed_runs(study, store) if seeds is None else seeds
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
    """The depth explorer for the laptop depth study (:func:`resnet_lab.results.laptop.laptop_study`).

    ``study`` maps ``(kind, depth)`` to a :class:`~resnet_lab.results.laptop.SeedSummary`; every
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
    runs = full_cifar_runs(store) if study is None else _as_runs(study)
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
    """A :class:`~resnet_lab.book.widgets.TrainPanel` that trains the chosen plain or residual net.

    Each run trains ``plain<depth>`` or ``resnet<depth>`` on ``data`` with ``config``
    (a :class:`~resnet_lab.engine.TrainConfig`) and draws its curves over the stored
    run of the same network. One run at a time; Stop ends a run after the current step.
    """
    import torch

    from resnet_lab.book.widgets import TrainPanel
    from resnet_lab.engine import train
    from resnet_lab.models import build

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


def depth_figure(study: Mapping[tuple[str, int], SeedSummary], ax: Any = None) -> Any:
    """Final training (dashed) and test (solid) error against depth, mean ± standard error."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.0))
    colors = {"plain": "tab:orange", "residual": "tab:blue"}
    for kind in ("plain", "residual"):
        rows = [s for (k, _), s in study.items() if k == kind]
        if not rows:
            continue
        depths = [s.depth for s in rows]
        name = "plain" if kind == "plain" else "ResNet"
        for which, style in (("train", "--"), ("test", "-")):
            means = [s.train_mean if which == "train" else s.test_mean for s in rows]
            errs = [(s.train_se if which == "train" else s.test_se) or 0.0 for s in rows]
            ax.errorbar(
                depths,
                means,
                yerr=errs,
                fmt="o" + style,
                color=colors[kind],
                capsize=3,
                label=f"{name}, {'training' if which == 'train' else 'test'}",
            )
    ax.set_xticks(sorted({s.depth for s in study.values()}))
    ax.set_xlabel("depth (weight layers)")
    ax.set_ylabel("final error (%)")
    seeds = sorted({s.n for s in study.values()})
    ax.set_title(
        "Laptop depth study: mean ± standard error over " + "/".join(map(str, seeds)) + " seeds"
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax
