"""The depth study of chapter 6, read from the results store: explorer curves and Table 6.

He et al. (2016, Sec. 4.2) train plain and residual CIFAR nets of 20 to 110 layers
(Fig. 6) and compare the residual ones with other networks in Table 6. The book's
results store holds our runs of the same networks (tag ``depth-study``); this module
turns them into

- :func:`depth_study`: one run per (network, depth), the longest-trained if several;
- :func:`depth_explorer`: a kernel-free :class:`~resnet_lab.explorer.Explorer` with
  controls depth and network, training and test error against iterations;
- :func:`table6`: our test errors beside the published ones, with the provenance
  (data, recipe, epochs, iterations, device, date) of every number.

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
    "PAPER_TEST_ERROR",
    "ComparisonTable",
    "depth_explorer",
    "depth_panel",
    "depth_takeaway",
    "model_name",
    "overlay_figure",
    "depth_study",
    "final_errors",
    "matched_runs",
    "parse_model",
    "provenance",
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
#: He et al. (2016), Table 6: parameters in millions.
PAPER_PARAMS_M = {20: 0.27, 32: 0.46, 44: 0.66, 56: 0.85, 110: 1.7, 1202: 19.4}
#: CIFAR-10 and its offline JPEG copy; their full training split has 50,000 images.
CIFAR10_VARIANTS = ("cifar10", "cifar10-jpeg")
CIFAR10_TRAIN_SIZE = 50_000

_NAME = re.compile(r"^(resnet|plain)(\d+)$")


def parse_model(name: str) -> tuple[str, int] | None:
    """``'resnet56'`` -> ``('residual', 56)``, ``'plain20'`` -> ``('plain', 20)``, else None."""
    match = _NAME.match(name)
    if match is None:
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
    """Final train and test error of a stored run, in percent."""
    final = rec["final"]
    return {
        key: (100.0 * final[key] if final.get(key) is not None else None)
        for key in ("train_error", "test_error")
    }


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
        title="CIFAR-10: plain and residual networks (measured; dashed: training, solid: test)",
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


def table6(
    store: str | Path | None = None,
    depths: Sequence[int] = (20, 32, 44, 56, 110, 1202),
    plain: bool = True,
) -> ComparisonTable:
    """Table 6 of He et al. (2016): the published test error beside ours, with provenance.

    For every depth the stored run on the full CIFAR-10 training split with the most
    iterations is used (any tag); ``plain=True`` adds the plain nets (Fig. 6) as rows.
    Depths without a stored run say 'not measured'.
    """
    best = _best(_full_cifar_runs(store))
    rows: list[dict[str, str]] = []
    for depth in depths:
        for kind in ("residual", "plain") if plain else ("residual",):
            rec = best.get((kind, depth))
            if kind == "plain" and rec is None:
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
            if rec is None:
                row.update({"test error, ours (%)": "not measured", "train error, ours (%)": "-"})
                row.update(
                    dict.fromkeys(("epochs", "iterations", "data", "recipe", "device", "date"), "-")
                )
            else:
                err, prov = final_errors(rec), provenance(rec)
                row.update(
                    {
                        "test error, ours (%)": _pct(err["test_error"]),
                        "train error, ours (%)": _pct(err["train_error"]),
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
    note = (
        "Paper: He et al. (2016), Table 6, published numbers after 64k iterations of batch 128 "
        "(about 164 epochs of 50k images); ResNet-110 best of 5 runs. Ours: measured, read "
        "from the results store; each row gives its own data, length and device."
    )
    return ComparisonTable(columns, rows, note)


def depth_takeaway(study: Mapping[tuple[str, int], RunRecord]) -> str:
    """One or two sentences, in Markdown, on what the stored study shows (from its numbers only)."""
    if not study:
        return (
            "The results store holds no run of the depth study yet, so there is nothing to "
            "compare; run `resnet-lab sweep` (see the README) to add one."
        )
    parts = []
    for kind in KINDS:
        runs = sorted((d, r) for (k, d), r in study.items() if k == kind)
        if len(runs) < 2:
            continue
        (d0, r0), (d1, r1) = runs[0], runs[-1]
        e0, e1 = final_errors(r0)["train_error"], final_errors(r1)["train_error"]
        if e0 is None or e1 is None:
            continue
        verb = "rises" if e1 > e0 else "falls"
        parts.append(
            f"the final training error of the {kind} nets {verb} from {e0:.1f}% at depth {d0} "
            f"to {e1:.1f}% at depth {d1}"
        )
    both = [d for d in DEPTHS if ("plain", d) in study and ("residual", d) in study]
    if both:
        d = max(both)
        p = final_errors(study[("plain", d)])["train_error"]
        r = final_errors(study[("residual", d)])["train_error"]
        if p is not None and r is not None:
            word = "lower" if r < p else "higher"
            parts.append(
                f"at depth {d} the residual net ends {abs(p - r):.1f} points {word} than "
                f"the plain net ({r:.1f}% against {p:.1f}%)"
            )
    if not parts:
        return f"The store holds {len(study)} run(s) of the study, too few to compare depths."
    iters = sorted({provenance(r)["iterations"] for r in study.values()})
    text = "; ".join(parts)
    return f"In the stored study ({', '.join(map(str, iters))} iterations per run), {text}."


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
        return train(model, data, config, device=device, callbacks=[on_step, callback],
                     progress=False, name=model_name(kind, depth))  # fmt: skip

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
