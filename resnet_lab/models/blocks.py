"""Residual building blocks: basic and bottleneck, original and pre-activation.

Every block computes a residual branch ``F(x)`` and a shortcut, and exposes both:

* ``block.residual(x)``: ``F(x)``, the branch output before the addition (and final ReLU);
* ``block.shortcut(x)``: identity, option-A zero padding, or a 1x1 projection;
* ``block.use_shortcut``: ``False`` for a *plain* block, whose shortcut is removed.

Original blocks (He et al. 2016, Fig. 2 and Fig. 5) compute ``relu(F(x) + shortcut(x))``;
pre-activation blocks (He et al. 2016b, Fig. 1b and Fig. 4e) compute ``F(x) + shortcut(x)``
with BN and ReLU moved in front of each convolution. A plain block computes ``relu(F(x))``
(original ordering) or ``F(x)`` (pre-activation), with exactly the same layers.

Names follow torchvision (``conv1``/``bn1``..., projection in ``downsample``), so a
torchvision ``state_dict`` loads into the ImageNet networks built from these blocks.
"""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

Shortcut = Literal["A", "B", "C", "none"]
SHORTCUTS: tuple[str, ...] = ("A", "B", "C", "none")


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding 1 and no bias (a BN follows or precedes it)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution without bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class PadShortcut(nn.Module):
    """Option A shortcut (He et al. 2016, Sec. 3.3): identity that subsamples and zero-pads.

    Takes every ``stride``-th pixel and adds ``out_planes - in_planes`` zero channels, so the
    shortcut has no parameters at all. The paper does not say where the zeros go; as in
    akamaster/pytorch_resnet_cifar10, the most used PyTorch CIFAR ResNet, half go before the
    identity channels and half after (``planes // 4`` each side when the width doubles), so
    its weights load into our nets with identical outputs.
    """

    def __init__(self, in_planes: int, out_planes: int, stride: int = 1) -> None:
        super().__init__()
        if out_planes < in_planes:
            raise ValueError(
                f"option A can only add channels ({in_planes} -> {out_planes}); "
                "use shortcut='B' or 'C' to project to fewer channels"
            )
        self.in_planes, self.out_planes, self.stride = in_planes, out_planes, stride

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        extra = self.out_planes - self.in_planes
        # F.pad's last pair pads dim 1 (channels): zeros before and after the identity.
        return F.pad(x, (0, 0, 0, 0, extra // 2, extra - extra // 2))

    def extra_repr(self) -> str:
        return f"{self.in_planes}, {self.out_planes}, stride={self.stride}"


def make_shortcut(
    option: Shortcut, in_planes: int, out_planes: int, stride: int = 1, norm: bool = True
) -> nn.Module | None:
    """Build the shortcut module of a block; ``None`` means the identity.

    Options of He et al. 2016, Sec. 4.1 ("Identity vs. Projection Shortcuts"):
    A: identity, zero-padding when the shape changes (parameter-free);
    B: 1x1 projection when the shape changes, identity otherwise;
    C: 1x1 projection on every shortcut.
    ``norm=False`` drops the BN after the projection, as pre-activation nets do.
    """
    if option not in SHORTCUTS:
        raise ValueError(
            f"shortcut must be one of {', '.join(map(repr, SHORTCUTS))}, got {option!r}"
        )
    shape_changes = stride != 1 or in_planes != out_planes
    if option == "none" or (option in ("A", "B") and not shape_changes):
        return None
    if option == "A":
        return PadShortcut(in_planes, out_planes, stride)
    layers: list[nn.Module] = [conv1x1(in_planes, out_planes, stride)]
    if norm:
        layers.append(nn.BatchNorm2d(out_planes))
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    """What all blocks share: the shortcut and the BN that closes the residual branch."""

    expansion: int = 1
    downsample: nn.Module | None

    def __init__(self, in_planes: int, out_planes: int, stride: int, shortcut: Shortcut) -> None:
        super().__init__()
        self.in_planes, self.out_planes, self.stride = in_planes, out_planes, stride
        self.use_shortcut = shortcut != "none"

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        """The BN whose scale, set to 0, turns the residual branch off."""
        raise NotImplementedError

    def residual(self, x: Tensor) -> Tensor:
        """The residual branch ``F(x)``."""
        raise NotImplementedError

    def shortcut(self, x: Tensor) -> Tensor:
        """The shortcut's output; zeros for a plain block, so ``forward`` is always
        ``F(x) + shortcut(x)`` followed by the block's final activation, if any."""
        if not self.use_shortcut:
            h, w = x.shape[-2:]
            # A 3x3/pad 1 or 1x1 convolution of stride s gives ceil(size / s) pixels.
            size = (-(-h // self.stride), -(-w // self.stride))
            return x.new_zeros(x.shape[0], self.out_planes, *size)
        return x if self.downsample is None else self.downsample(x)

    def zero_init_last_bn(self) -> None:
        """Start the residual branch at zero (Goyal et al. 2017, Sec. 5.1).

        The block is then ``relu(x)`` (original) or exactly the identity (pre-activation)
        whenever its shortcut is the identity.
        """
        nn.init.zeros_(self.last_bn.weight)


class BasicBlock(ResidualBlock):
    """Two 3x3 convolutions (He et al. 2016, Fig. 2): ResNet-18/34 and the CIFAR nets."""

    expansion = 1

    def __init__(
        self, in_planes: int, planes: int, stride: int = 1, shortcut: Shortcut = "B"
    ) -> None:
        super().__init__(in_planes, planes, stride, shortcut)
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = make_shortcut(shortcut, in_planes, planes, stride)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn2

    def residual(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.bn2(self.conv2(out))

    def forward(self, x: Tensor) -> Tensor:
        out = self.residual(x)
        if self.use_shortcut:
            out = out + self.shortcut(x)
        return self.relu(out)


class Bottleneck(ResidualBlock):
    """1x1 reduce, 3x3, 1x1 expand by 4 (He et al. 2016, Fig. 5 right): ResNet-50/101/152.

    ``stride_in_1x1=False`` strides the 3x3 convolution, as torchvision does ("ResNet v1.5");
    ``True`` strides the first 1x1 convolution as in the paper's original models (v1).
    """

    expansion = 4

    def __init__(
        self,
        in_planes: int,
        planes: int,
        stride: int = 1,
        shortcut: Shortcut = "B",
        stride_in_1x1: bool = False,
    ) -> None:
        out_planes = planes * self.expansion
        super().__init__(in_planes, out_planes, stride, shortcut)
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = conv1x1(in_planes, planes, stride_1x1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride_3x3)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, out_planes)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = make_shortcut(shortcut, in_planes, out_planes, stride)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn3

    def residual(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))

    def forward(self, x: Tensor) -> Tensor:
        out = self.residual(x)
        if self.use_shortcut:
            out = out + self.shortcut(x)
        return self.relu(out)


class _PreActBlock(ResidualBlock):
    """Pre-activation plumbing (He et al. 2016b, Sec. 4.1): ``x -> relu(bn1(x))`` feeds the
    residual branch and, when the block projects, the projection too (as in the authors'
    code), while an identity or option-A shortcut carries the raw ``x``."""

    bn1: nn.BatchNorm2d
    relu: nn.ReLU

    def _branch(self, pre: Tensor) -> Tensor:
        raise NotImplementedError

    def _shortcut(self, x: Tensor, pre: Tensor) -> Tensor:
        # Only a 1x1 projection (an nn.Sequential) reads the pre-activated input.
        if self.use_shortcut and isinstance(self.downsample, nn.Sequential):
            return self.downsample(pre)
        return super().shortcut(x)

    def residual(self, x: Tensor) -> Tensor:
        return self._branch(self.relu(self.bn1(x)))

    def shortcut(self, x: Tensor) -> Tensor:
        return self._shortcut(x, self.relu(self.bn1(x)))

    def forward(self, x: Tensor) -> Tensor:
        pre = self.relu(self.bn1(x))
        out = self._branch(pre)
        if self.use_shortcut:
            out = out + self._shortcut(x, pre)
        return out


class PreActBasicBlock(_PreActBlock):
    """BN-ReLU-conv3x3, twice (He et al. 2016b, Fig. 1b); nothing follows the addition."""

    expansion = 1

    def __init__(
        self, in_planes: int, planes: int, stride: int = 1, shortcut: Shortcut = "B"
    ) -> None:
        super().__init__(in_planes, planes, stride, shortcut)
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes)
        # Projections take the already normalised input, so they carry no BN of their own.
        self.downsample = make_shortcut(shortcut, in_planes, planes, stride, norm=False)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn2

    def _branch(self, pre: Tensor) -> Tensor:
        out = self.conv1(pre)
        return self.conv2(self.relu(self.bn2(out)))


class PreActBottleneck(_PreActBlock):
    """BN-ReLU-conv for 1x1, 3x3, 1x1 (He et al. 2016b, Sec. 4.2): ResNet-164 and ResNet-1001."""

    expansion = 4

    def __init__(
        self, in_planes: int, planes: int, stride: int = 1, shortcut: Shortcut = "B"
    ) -> None:
        out_planes = planes * self.expansion
        super().__init__(in_planes, out_planes, stride, shortcut)
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv1 = conv1x1(in_planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, out_planes)
        self.downsample = make_shortcut(shortcut, in_planes, out_planes, stride, norm=False)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn3

    def _branch(self, pre: Tensor) -> Tensor:
        out = self.conv1(pre)
        out = self.conv2(self.relu(self.bn2(out)))
        return self.conv3(self.relu(self.bn3(out)))


def residual_blocks(model: nn.Module) -> list[tuple[str, ResidualBlock]]:
    """Every residual (or plain) block of ``model`` with its name, input to output."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, ResidualBlock)]


def zero_init_last_bn(model: nn.Module) -> nn.Module:
    """Zero the last BN scale of every block in ``model``; returns ``model``."""
    for _, block in residual_blocks(model):
        block.zero_init_last_bn()
    return model


def init_weights(model: nn.Module) -> nn.Module:
    """He initialisation (He et al. 2015) for convolutions, BN at scale 1 and shift 0,
    as in the paper's Sec. 3.4 and torchvision; returns ``model``."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return model


__all__ = [
    "SHORTCUTS",
    "BasicBlock",
    "Bottleneck",
    "PadShortcut",
    "PreActBasicBlock",
    "PreActBottleneck",
    "ResidualBlock",
    "Shortcut",
    "conv1x1",
    "conv3x3",
    "init_weights",
    "make_shortcut",
    "residual_blocks",
    "zero_init_last_bn",
]
