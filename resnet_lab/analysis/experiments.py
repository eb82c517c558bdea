"""Small, self-contained experiments behind chapters 2 and 3 of the book.

The residual-learning argument of He et al. (2016, Sec. 3.1): if an identity mapping
were optimal for some layers, a stack of nonlinear layers would have to *learn* it,
while a residual block only has to push its branch ``F`` to zero. :func:`identity_stack`
builds a stack of basic blocks with or without shortcuts and :func:`fit_identity`
measures how fast each learns ``y = x``.

Chapter 2 reads the laptop depth study (:mod:`resnet_lab.results.laptop`) and the live runs with
:func:`claim_verdict` (a claim's verdict as words for the prose) and
:func:`first_epoch_below` (when a training curve leaves chance level).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from resnet_lab.models import BasicBlock, init_weights, residual_blocks

__all__ = [
    "claim_verdict",
    "first_epoch_below",
    "fit_identity",
    "identity_inputs",
    "identity_stack",
    "near_identity_target",
    "set_residual_scale",
]


def identity_stack(
    blocks: int,
    channels: int = 16,
    residual: bool = True,
    zero_init: bool = False,
    seed: int = 0,
) -> nn.Sequential:
    """``blocks`` basic blocks of ``channels`` channels at stride 1 (He et al. 2016, Fig. 2).

    ``residual=False`` removes the shortcuts (a plain stack of ``2 * blocks`` conv layers
    with exactly the same parameters); ``zero_init=True`` starts every residual branch at
    zero (Goyal et al. 2017), so the stack is the identity on non-negative inputs.
    He initialisation, seeded, so plain and residual stacks start from the same weights.
    """
    if blocks < 1 or channels < 1:
        raise ValueError(f"blocks and channels must be >= 1, got {blocks} and {channels}")
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        shortcut = "A" if residual else "none"
        stack = nn.Sequential(
            *(BasicBlock(channels, channels, stride=1, shortcut=shortcut) for _ in range(blocks))
        )
        init_weights(stack)
    finally:
        torch.random.set_rng_state(gen_state)
    if zero_init:
        set_residual_scale(stack, 0.0)
    return stack


def identity_inputs(n: int = 128, channels: int = 16, size: int = 8, seed: int = 0) -> Tensor:
    """Non-negative random feature maps ``relu(N(0, 1))``, shaped ``(n, channels, size, size)``.

    Inside a network of original blocks every block input has passed a ReLU, so the
    identity is only asked of non-negative inputs.
    """
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, channels, size, size, generator=gen).clamp_min(0)


def fit_identity(
    model: nn.Module,
    x: Tensor,
    steps: int = 200,
    lr: float = 0.01,
    seed: int = 0,
    target: Tensor | None = None,
) -> list[float]:
    """Train ``model`` to map ``x`` to itself; returns the mean squared error before each step.

    Full-batch Adam on ``mean((model(x) - x)**2)``, BatchNorm in train mode; ``model`` is
    trained in place. The first entry is the error at initialisation, the last the error
    after the last step. ``target`` replaces ``x`` as what the model should output (same
    shape), e.g. a near-identity target from :func:`near_identity_target`.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    y = x if target is None else target
    if y.shape != x.shape:
        raise ValueError(f"target shape {tuple(y.shape)} differs from input shape {tuple(x.shape)}")
    torch.manual_seed(seed)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses: list[float] = []
    for _ in range(steps):
        loss = F.mse_loss(model(x), y)
        losses.append(loss.item())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        losses.append(F.mse_loss(model(x), y).item())
    model.eval()
    return losses


def near_identity_target(x: Tensor, scale: float, seed: int = 0) -> Tensor:
    """``x + scale * g(x)`` for a fixed random 3x3 convolution ``g`` (He initialisation).

    ``scale = 0`` is the identity; as ``scale`` grows the target moves away from it.
    Seeded, and the global random state is left untouched.
    """
    gen = torch.Generator().manual_seed(seed)
    channels = x.shape[1]
    weight = torch.randn(channels, channels, 3, 3, generator=gen) * (2.0 / (9 * channels)) ** 0.5
    with torch.no_grad():
        return x + scale * F.conv2d(x, weight.to(x.dtype), padding=1)


def set_residual_scale(model: nn.Module, gamma: float) -> nn.Module:
    """Set the scale of the BN that closes every residual branch to ``gamma``; returns ``model``.

    ``gamma = 0`` is the zero-init of Goyal et al. (2017, Sec. 5.1): every block starts as
    the identity (on non-negative inputs); ``gamma = 1`` is the usual initialisation.
    """
    found = residual_blocks(model)
    if not found:
        raise ValueError("the model has no residual blocks; pass a network from resnet_lab.models")
    with torch.no_grad():
        for _, block in found:
            block.last_bn.weight.fill_(gamma)
    return model


def claim_verdict(claims: Any) -> str:
    """The verdict of one :class:`resnet_lab.results.laptop.Claim`, or of several together, as words.

    'holds (...)' when every claim holds (its difference is larger than its standard
    error); 'does not hold' when any claim's means are out of order; otherwise the means
    are in order but not shown to be larger than the noise between seeds: 'is in order,
    on one seed (no error bar)' when some network has a single seed, else 'is in order,
    but within its standard error'.
    """
    group = [claims] if hasattr(claims, "in_order") else list(claims)
    if not group:
        raise ValueError("no claims to judge")
    if not all(c.in_order for c in group):
        if len(group) > 1 and all(hasattr(c, "text") for c in group):
            # Several claims, some out of order: say which part holds and which does not.
            return "does not hold as a whole: " + "; ".join(_one_verdict(c) for c in group)
        return "does not hold"
    if all(c.holds for c in group):
        difference = "the difference is" if len(group) == 1 else "every difference is"
        return f"holds ({difference} larger than its standard error)"
    if any(c.se is None for c in group):
        return "is in order, on one seed (no error bar)"
    if len(group) > 1 and any(c.holds for c in group) and all(hasattr(c, "text") for c in group):
        # In order throughout, beyond the noise only in part: say which part.
        return "is in order, but not every difference exceeds its standard error: " + "; ".join(
            _one_verdict(c) for c in group
        )
    return "is in order, but within its standard error"


def _one_verdict(claim: Any) -> str:
    """'ResNet-32 trains better than ResNet-20: holds (+3.2 points, 2.9 standard errors)'."""
    size = f"{claim.difference:+.1f} points"
    if claim.se:
        size += f", {abs(claim.difference) / claim.se:.1f} standard errors"
    if claim.holds:
        word = "holds"
    elif not claim.in_order:
        word = "reversed" if claim.se is None or -claim.difference > claim.se else "not in order"
    elif claim.se is None:
        word = "in order, one seed"
    else:
        word = "in order, within its standard error"
    return f"{claim.text}: {word} ({size})"


def first_epoch_below(
    steps: Iterable[Mapping[str, Any]], level: float, metric: str = "train_error"
) -> float | None:
    """The first logged epoch at which ``metric`` is below ``level`` (same units), or None.

    ``steps`` are a run's logged points (``Run.steps`` or a stored record's ``"steps"``),
    each with an ``"epoch"`` and the metric, e.g. the training error as a fraction.
    """
    for point in steps:
        value = point.get(metric)
        if value is not None and value < level:
            return point["epoch"]
    return None
