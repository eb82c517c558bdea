"""Loss-landscape slices around trained weights (Li et al. 2018).

The loss is a function of millions of weights; Li et al. (2018) look at it along one or
two random directions through the trained weights ``theta``:
``f(alpha) = L(theta + alpha d)`` (1-D) and ``f(alpha, beta) = L(theta + alpha d + beta e)``
(2-D). Random directions only give comparable pictures once they are *filter-normalised*
(Sec. 4): each filter of ``d`` (one output channel of a convolution, one row of a linear
layer) is rescaled to the norm of the same filter in ``theta``, because BatchNorm makes a
network invariant to the scale of its filters. Biases and BatchNorm parameters (the 1-D
parameters) get a zero direction (``ignore_bn=True``, their code's ``ignore='biasbn'``).

Losses are measured in **eval mode** (BatchNorm uses its running statistics, so each point
is a fixed function of the weights) on a fixed set of batches. Every function puts the
weights and the mode back as they were, also on errors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "LossSlice",
    "LossSurface",
    "filter_norms",
    "loss_slice_1d",
    "loss_surface_2d",
    "random_direction",
    "roughness",
]

Direction = dict[str, Tensor]
Batches = Sequence[tuple[Tensor, Tensor]]
LossFn = Callable[[Tensor, Tensor], Tensor]


def filter_norms(tensor: Tensor) -> Tensor:
    """Norm of each filter: one value per slice along the first (output) dimension."""
    return tensor.detach().flatten(1).norm(dim=1) if tensor.dim() > 1 else tensor.detach().abs()


def random_direction(
    model: nn.Module,
    filter_normalize: bool = True,
    ignore_bn: bool = True,
    seed: int = 0,
) -> Direction:
    """A Gaussian random direction in weight space, one tensor per parameter name.

    ``filter_normalize=True`` rescales every filter of the direction to the norm of the
    corresponding filter of the weights (Li et al. 2018, Sec. 4, Eq. 1). For 1-D parameters
    (biases, BatchNorm scales and shifts) ``ignore_bn=True`` sets the direction to zero;
    ``ignore_bn=False`` uses the weights themselves, as their code does. The draw depends
    only on ``seed`` (a CPU generator), not on the device.
    """
    gen = torch.Generator().manual_seed(seed)
    direction: Direction = {}
    for name, p in model.named_parameters():
        d = torch.randn(p.shape, generator=gen, dtype=torch.float32).to(p.device, p.dtype)
        if filter_normalize:
            if p.dim() <= 1:
                d = torch.zeros_like(p) if ignore_bn else p.detach().clone()
            else:
                scale = filter_norms(p) / (filter_norms(d) + 1e-10)
                d = d * scale.view(-1, *([1] * (p.dim() - 1)))
        direction[name] = d
    return direction


@dataclass
class LossSlice:
    """Loss and error (fraction 0..1) at each ``alpha`` of a 1-D slice."""

    alphas: list[float]
    loss: list[float]
    error: list[float]


@dataclass
class LossSurface:
    """Loss and error on the grid ``alphas x betas``: ``loss[i][j]`` is at ``(alphas[i], betas[j])``."""

    alphas: list[float]
    betas: list[float]
    loss: list[list[float]]
    error: list[list[float]]


def _as_batches(
    data: Batches | tuple[Tensor, Tensor], batch_size: int
) -> list[tuple[Tensor, Tensor]]:
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], Tensor):
        x, y = data
        if len(x) != len(y):
            raise ValueError(f"{len(x)} inputs but {len(y)} labels")
        return [
            (x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(x), batch_size)
        ]
    batches = list(data)
    if not batches:
        raise ValueError("no batches to evaluate the loss on")
    return batches


@contextmanager
def _perturbable(model: nn.Module) -> Iterator[dict[str, Tensor]]:
    """Eval mode and a copy of the weights; both restored on exit."""
    original = {name: p.detach().clone() for name, p in model.named_parameters()}
    was_training = model.training
    model.eval()
    try:
        yield original
    finally:
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(original[name])
        model.train(was_training)


def _check(model: nn.Module, direction: Direction, what: str) -> None:
    names = {name for name, _ in model.named_parameters()}
    if set(direction) != names:
        raise ValueError(
            f"{what} does not match the model's parameters; make it with "
            "random_direction(model) for this very model"
        )


@torch.no_grad()
def _evaluate(
    model: nn.Module, batches: list[tuple[Tensor, Tensor]], loss_fn: LossFn, device: torch.device
) -> tuple[float, float]:
    total_loss, wrong, count = 0.0, 0, 0
    for x, y in batches:
        x, y = x.to(device), y.to(device)
        out = model(x)
        total_loss += loss_fn(out, y).item() * len(y)
        wrong += (out.argmax(1) != y).sum().item()
        count += len(y)
    return total_loss / count, wrong / count


def _surface(
    model: nn.Module,
    directions: Sequence[Direction],
    points: Sequence[Sequence[float]],
    data: Batches | tuple[Tensor, Tensor],
    loss_fn: LossFn | None,
    batch_size: int,
) -> list[tuple[float, float]]:
    for i, d in enumerate(directions):
        _check(model, d, f"direction {i}")
    batches = _as_batches(data, batch_size)
    device = next(model.parameters()).device
    results = []
    with _perturbable(model) as original, torch.no_grad():
        params = dict(model.named_parameters())
        for coords in points:
            for name, p in params.items():
                p.copy_(original[name])
                for c, d in zip(coords, directions, strict=True):
                    if c:
                        p.add_(d[name], alpha=c)
            results.append(_evaluate(model, batches, loss_fn or F.cross_entropy, device))
    return results


def loss_slice_1d(
    model: nn.Module,
    direction: Direction,
    alphas: Sequence[float],
    data: Batches | tuple[Tensor, Tensor],
    loss_fn: LossFn | None = None,
    batch_size: int = 256,
) -> LossSlice:
    """Mean loss and error of ``theta + alpha * direction`` for each ``alpha`` (Li et al. 2018, Fig. 1).

    ``data`` is a list of ``(inputs, labels)`` batches, or one ``(inputs, labels)`` pair
    that is cut into batches of ``batch_size``; inputs are ready for the model. Loss is
    cross-entropy by default, averaged over all examples.
    """
    values = _surface(model, [direction], [(float(a),) for a in alphas], data, loss_fn, batch_size)
    return LossSlice([float(a) for a in alphas], [v[0] for v in values], [v[1] for v in values])


def loss_surface_2d(
    model: nn.Module,
    directions: tuple[Direction, Direction],
    alphas: Sequence[float],
    betas: Sequence[float],
    data: Batches | tuple[Tensor, Tensor],
    loss_fn: LossFn | None = None,
    batch_size: int = 256,
) -> LossSurface:
    """Loss and error of ``theta + alpha d + beta e`` on a grid (Li et al. 2018, Fig. 5).

    Use two directions drawn with different seeds; in millions of dimensions two random
    directions are almost orthogonal, as Li et al. note. Arguments as for :func:`loss_slice_1d`.
    """
    if len(directions) != 2:
        raise ValueError("loss_surface_2d needs two directions (d, e)")
    points = [(float(a), float(b)) for a in alphas for b in betas]
    values = _surface(model, list(directions), points, data, loss_fn, batch_size)
    n = len(betas)
    loss = [[values[i * n + j][0] for j in range(n)] for i in range(len(alphas))]
    error = [[values[i * n + j][1] for j in range(n)] for i in range(len(alphas))]
    return LossSurface([float(a) for a in alphas], [float(b) for b in betas], loss, error)


def roughness(values: Sequence[float] | Sequence[Sequence[float]]) -> float:
    """How far a sampled slice or surface is from convex: the fraction of interior grid
    points where a discrete second difference is negative (a local bump or a saddle).

    0 for a convex bowl, larger for a rugged landscape. A 2-D surface counts a point when
    the second difference along either axis is negative. Needs at least 3 points per axis.
    """
    t = torch.as_tensor(values, dtype=torch.float64)
    if t.dim() == 1:
        t = t.unsqueeze(0)
        axes = [1]
    elif t.dim() == 2:
        axes = [0, 1]
    else:
        raise ValueError("values must be a 1-D slice or a 2-D surface")
    if any(t.shape[a] < 3 for a in axes):
        raise ValueError("need at least 3 points along each axis")
    inner = t[..., 1:-1] if t.shape[0] == 1 else t[1:-1, 1:-1]
    bad = torch.zeros_like(inner, dtype=torch.bool)
    for a in axes:
        second = t.narrow(a, 0, t.shape[a] - 2) - 2 * t.narrow(a, 1, t.shape[a] - 2)
        second = second + t.narrow(a, 2, t.shape[a] - 2)
        other = 1 - a
        if t.shape[other] > 1:  # keep the interior along the other axis
            second = second.narrow(other, 1, t.shape[other] - 2)
        bad |= second < -1e-12
    return bad.double().mean().item()
