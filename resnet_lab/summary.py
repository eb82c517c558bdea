"""Model summary: per stage, output shape, parameters and multiply-adds.

Multiply-adds (MACs) are measured, not derived from formulas: PyTorch's own
``torch.utils.flop_counter.FlopCounterMode`` counts the FLOPs of every convolution and
matrix product of one forward pass, and one multiply-add is two FLOPs. BN, ReLU, pooling
and the shortcut additions are not counted, the convention of He et al. 2016 (Table 1)
and of torchvision's published numbers.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

DEFAULT_INPUT_SIZE = (1, 3, 32, 32)
_STAGE = re.compile(r"layer\d+")


@dataclass(frozen=True)
class StageSummary:
    """One row: a stage's name, output shape (with the batch dimension), parameters, MACs."""

    name: str
    output_shape: tuple[int, ...]
    params: int
    macs: int


@dataclass(frozen=True)
class ModelSummary:
    """Per-stage rows and totals; ``str()`` renders a text table."""

    model: str
    input_size: tuple[int, ...]
    rows: list[StageSummary] = field(default_factory=list)
    params: int = 0
    macs: int = 0

    def as_rows(self) -> list[dict]:
        """The stage rows as plain dicts (for tables, JSON, pandas)."""
        return [asdict(row) for row in self.rows]

    def _cells(self) -> tuple[list[str], list[list[str]], list[str]]:
        header = ["stage", "output shape", "params", "MACs"]
        body = [
            [row.name, _shape(row.output_shape), f"{row.params:,}", _si(row.macs)]
            for row in self.rows
        ]
        total = ["total", "", f"{self.params:,}", _si(self.macs)]
        return header, body, total

    def __str__(self) -> str:
        header, body, total = self._cells()
        widths = [max(len(r[i]) for r in [header, *body, total]) for i in range(len(header))]

        def line(cells: list[str]) -> str:
            left = cells[0].ljust(widths[0])
            return "  ".join(
                [left, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))]
            )

        rule = "-" * len(line(header))
        title = f"{self.model}, input {_shape(self.input_size)}"
        return "\n".join([title, line(header), rule, *map(line, body), rule, line(total)])

    def to_markdown(self) -> str:
        """A GitHub/MyST markdown table."""
        header, body, total = self._cells()
        total = [f"**{c}**" if c else c for c in total]
        rows = [header, ["---", "---:", "---:", "---:"], *body, total]
        return "\n".join("| " + " | ".join(r) + " |" for r in rows)

    def _repr_html_(self) -> str:
        header, body, total = self._cells()

        def tr(cells: list[str], tag: str = "td") -> str:
            aligned = [f'<{tag} style="text-align:left">{html.escape(cells[0])}</{tag}>']
            aligned += [
                f'<{tag} style="text-align:right">{html.escape(c)}</{tag}>' for c in cells[1:]
            ]
            return "<tr>" + "".join(aligned) + "</tr>"

        caption = html.escape(f"{self.model}, input {_shape(self.input_size)}")
        rows = "".join(tr(r) for r in body)
        return (
            f"<table><caption>{caption}</caption><thead>{tr(header, 'th')}</thead>"
            f"<tbody>{rows}</tbody><tfoot>{tr(total, 'th')}</tfoot></table>"
        )


def _shape(shape: Sequence[int]) -> str:
    return " x ".join(map(str, shape))


def _si(value: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= scale:
            return f"{value / scale:.3f}{unit}"
    return f"{value:.0f}"


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (shared ones once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _input_size(model: nn.Module, input_size: Sequence[int] | None) -> tuple[int, ...]:
    return tuple(input_size or getattr(model, "default_input_size", DEFAULT_INPUT_SIZE))


def _example_input(model: nn.Module, input_size: tuple[int, ...]) -> torch.Tensor:
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    return torch.zeros(input_size, device=device, dtype=dtype)


def _forward(model: nn.Module, x: torch.Tensor) -> None:
    # Eval mode: one image through BatchNorm1d would fail in training mode, and the
    # running statistics stay untouched.
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        model.train(was_training)


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes one input image needs, measured on the ``meta`` device (nothing is computed).

    ``train_per_image``: outputs of every layer, which autograd keeps for the backward pass
    (a lower bound: functional ops and gradients come on top). ``eval_per_image``: the two
    largest layer outputs, alive together in a forward pass without gradients.
    ``input_per_image`` and ``weights`` (parameters and buffers) complete the picture.
    """

    train_per_image: int
    eval_per_image: int
    input_per_image: int
    weights: int


def estimate_memory(
    model: nn.Module, input_size: Sequence[int] | None = None
) -> MemoryEstimate | None:
    """Memory of one image through ``model`` (see :class:`MemoryEstimate`), or None where the
    model's forward pass cannot run on the meta device (data-dependent code)."""
    size = (1, *_input_size(model, input_size)[1:])
    tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    meta = {k: torch.empty_like(v, device="meta") for k, v in tensors.items()}
    outputs: list[int] = []

    def record(_module: nn.Module, _inputs, output) -> None:
        if isinstance(output, torch.Tensor):
            outputs.append(output.numel() * output.element_size())

    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    hooks = [m.register_forward_hook(record) for m in leaves]
    was_training = model.training
    model.eval()
    try:
        x = torch.zeros(size, device="meta")
        with torch.no_grad():
            torch.func.functional_call(model, meta, (x,))
    except Exception:  # noqa: BLE001 - any model code may refuse meta tensors
        return None
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    largest = sorted(outputs)[-2:]
    return MemoryEstimate(
        train_per_image=sum(outputs),
        eval_per_image=sum(largest),
        input_per_image=x.numel() * x.element_size(),
        weights=sum(v.numel() * v.element_size() for v in tensors.values()),
    )


def format_bytes(n: float) -> str:
    """``1.5 GiB``-style sizes."""
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


def count_macs(model: nn.Module, input_size: Sequence[int] | None = None) -> int:
    """Multiply-adds of one forward pass, measured with ``FlopCounterMode`` (FLOPs / 2).

    Works on a model on the ``meta`` device too, which costs no computation at all.
    ``input_size`` defaults to ``model.default_input_size``, else ``(1, 3, 32, 32)``.
    """
    x = _example_input(model, _input_size(model, input_size))
    with FlopCounterMode(display=False) as counter:
        _forward(model, x)
    return counter.get_total_flops() // 2


def _stages(model: nn.Module) -> list[tuple[str, list[nn.Module]]]:
    """Top-level children grouped into stages: stem, layer1..layerN, head.

    Models without ``layerN`` children get one row per top-level child.
    """
    children = list(model.named_children())
    if not any(_STAGE.fullmatch(name) for name, _ in children):
        return [(name, [child]) for name, child in children]
    stages: list[tuple[str, list[nn.Module]]] = []
    seen_layer = False
    for name, child in children:
        if _STAGE.fullmatch(name):
            seen_layer = True
            stages.append((name, [child]))
            continue
        group = "head" if seen_layer else "stem"
        if not stages or stages[-1][0] != group:
            stages.append((group, []))
        stages[-1][1].append(child)
    return stages


def _flops_of(counts: dict[str, dict], module: nn.Module, key: str) -> int:
    """FLOPs of ``module`` (``key`` is its name in the counter); a container that was never
    called itself (an ``nn.ModuleList``) is the sum of its children."""
    if key in counts:
        return sum(counts[key].values())
    return sum(_flops_of(counts, child, f"{key}.{name}") for name, child in module.named_children())


def summary(model: nn.Module, input_size: Sequence[int] | None = None) -> ModelSummary:
    """Per-stage output shape, parameters and MACs of ``model`` for one input.

    ``input_size`` defaults to ``model.default_input_size`` (224x224 for the ImageNet nets),
    else ``(1, 3, 32, 32)``.
    """
    size = _input_size(model, input_size)
    stages = _stages(model)
    group_of = {
        module: index
        for index, (_, members) in enumerate(stages)
        for member in members
        for module in member.modules()
    }
    # The last module to finish inside a stage produced that stage's output.
    shapes: dict[int, tuple[int, ...]] = {}

    def record(module: nn.Module, _inputs, output) -> None:
        if isinstance(output, torch.Tensor):
            shapes[group_of[module]] = tuple(output.shape)

    hooks = [module.register_forward_hook(record) for module in group_of]
    try:
        with FlopCounterMode(display=False) as counter:
            _forward(model, _example_input(model, size))
    finally:
        for hook in hooks:
            hook.remove()
    counts = counter.get_flop_counts()
    root = type(model).__name__
    names = {id(child): name for name, child in model.named_children()}
    rows = [
        StageSummary(
            name=stage,
            output_shape=shapes.get(index, ()),
            params=sum(count_parameters(m) for m in members),
            macs=sum(_flops_of(counts, m, f"{root}.{names[id(m)]}") for m in members) // 2,
        )
        for index, (stage, members) in enumerate(stages)
    ]
    return ModelSummary(
        model=getattr(model, "name", None) or type(model).__name__,
        input_size=size,
        rows=rows,
        params=count_parameters(model),
        macs=counter.get_total_flops() // 2,
    )


__all__ = [
    "MemoryEstimate",
    "ModelSummary",
    "StageSummary",
    "count_macs",
    "count_parameters",
    "estimate_memory",
    "format_bytes",
    "summary",
]
