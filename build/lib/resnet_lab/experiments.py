"""Small, self-contained experiments behind chapters 2 and 3 of the book.

The residual-learning argument of He et al. (2016, Sec. 3.1): if an identity mapping
were optimal for some layers, a stack of nonlinear layers would have to *learn* it,
while a residual block only has to push its branch ``F`` to zero. :func:`identity_stack`
builds a stack of basic blocks with or without shortcuts and :func:`fit_identity`
measures how fast each learns ``y = x``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from resnet_lab.models import BasicBlock, init_weights, residual_blocks

__all__ = ["fit_identity", "identity_inputs", "identity_stack", "set_residual_scale"]


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
) -> list[float]:
    """Train ``model`` to map ``x`` to itself; returns the mean squared error before each step.

    Full-batch Adam on ``mean((model(x) - x)**2)``, BatchNorm in train mode; ``model`` is
    trained in place. The first entry is the error at initialisation.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    torch.manual_seed(seed)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses: list[float] = []
    for _ in range(steps):
        loss = F.mse_loss(model(x), x)
        losses.append(loss.item())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        losses.append(F.mse_loss(model(x), x).item())
    model.eval()
    return losses


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
