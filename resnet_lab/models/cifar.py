"""CIFAR ResNets (He et al. 2016, Sec. 4.2) and their pre-activation forms (He et al. 2016b).

A 3x3 convolution with 16 filters, then three stages of ``n`` blocks on 32x32, 16x16 and 8x8
maps with 16, 32 and 64 filters, global average pooling and a 10-way fully connected layer:
``6n + 2`` weight layers with basic blocks, ``9n + 2`` with bottleneck blocks.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor, nn

from resnet_lab.models.blocks import (
    BasicBlock,
    PreActBasicBlock,
    PreActBottleneck,
    Shortcut,
    init_weights,
    zero_init_last_bn,
)
from resnet_lab.models.registry import DepthError, register_model

WIDTHS = (16, 32, 64)
PAPER_DEPTHS = (20, 32, 44, 56, 110, 1202)  # He et al. 2016, Table 6
PAPER_PREACT_DEPTHS = (110, 164, 1001)  # He et al. 2016b, Tables 2 and 3


def blocks_per_stage(depth: int, layers_per_block: int, paper_depths: tuple[int, ...]) -> int:
    """``n`` for a net of ``depth = 3 * layers_per_block * n + 2`` weight layers."""
    step = 3 * layers_per_block
    if depth >= step + 2 and (depth - 2) % step == 0:
        return (depth - 2) // step
    valid = ", ".join(str(step * n + 2) for n in range(1, 8))
    below = max(step + 2, depth - (depth - 2) % step)
    nearest = sorted({below, below + step} if depth > step + 2 else {step + 2})
    raise DepthError(
        f"depth must be {step}n+2 with n >= 1 ({valid}, ...); the papers use "
        f"{', '.join(map(str, paper_depths))}. Got {depth}; nearest valid: "
        f"{' or '.join(map(str, nearest))}."
    )


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 32x32 images (He et al. 2016, Sec. 4.2), or its plain counterpart.

    ``shortcut``: "A" (the paper's CIFAR choice, parameter-free), "B", "C" (Sec. 3.3 and 4.1)
    or "none" for the plain net, which has exactly the layers and parameters of option A.
    """

    default_input_size = (1, 3, 32, 32)

    def __init__(
        self,
        depth: int = 20,
        num_classes: int = 10,
        shortcut: Shortcut = "A",
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        n = blocks_per_stage(depth, 2, PAPER_DEPTHS)
        self.depth, self.shortcut = depth, shortcut
        self.name = f"plain{depth}" if shortcut == "none" else f"resnet{depth}"
        self.conv1 = nn.Conv2d(3, WIDTHS[0], kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(WIDTHS[0])
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(WIDTHS[0], WIDTHS[0], n, 1, shortcut)
        self.layer2 = self._make_layer(WIDTHS[0], WIDTHS[1], n, 2, shortcut)
        self.layer3 = self._make_layer(WIDTHS[1], WIDTHS[2], n, 2, shortcut)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(WIDTHS[2], num_classes)
        init_weights(self)
        if zero_init_residual:
            zero_init_last_bn(self)

    @staticmethod
    def _make_layer(
        in_planes: int, planes: int, blocks: int, stride: int, shortcut: Shortcut
    ) -> nn.Sequential:
        layers = [BasicBlock(in_planes, planes, stride, shortcut)]
        layers += [BasicBlock(planes, planes, 1, shortcut) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class CifarPreActResNet(nn.Module):
    """Pre-activation ResNet for 32x32 images (He et al. 2016b, Sec. 4 and Table 3).

    Basic blocks give depth 6n+2 (ResNet-110); ``bottleneck=True`` gives 9n+2 with stage
    outputs of 64, 128 and 256 channels (ResNet-164, ResNet-1001). Every block opens with
    BN-ReLU, so the stem is a bare convolution and a final BN-ReLU (``bn_final``) comes
    before pooling. ``shortcut`` defaults to "A" for basic blocks, as in the original CIFAR
    nets, and to "B" for bottlenecks, whose first block widens 16 to 64 channels.
    """

    default_input_size = (1, 3, 32, 32)

    def __init__(
        self,
        depth: int = 110,
        num_classes: int = 10,
        bottleneck: bool = False,
        shortcut: Shortcut | None = None,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        block = PreActBottleneck if bottleneck else PreActBasicBlock
        n = blocks_per_stage(depth, 3 if bottleneck else 2, PAPER_PREACT_DEPTHS)
        shortcut = shortcut or ("B" if bottleneck else "A")
        self.depth, self.shortcut = depth, shortcut
        self.name = f"preact_resnet{depth}"
        self.conv1 = nn.Conv2d(3, WIDTHS[0], kernel_size=3, padding=1, bias=False)
        in_planes = WIDTHS[0]
        for index, (planes, stride) in enumerate(zip(WIDTHS, (1, 2, 2), strict=True), start=1):
            layers = [block(in_planes, planes, stride, shortcut)]
            in_planes = planes * block.expansion
            layers += [block(in_planes, planes, 1, shortcut) for _ in range(1, n)]
            setattr(self, f"layer{index}", nn.Sequential(*layers))
        self.bn_final = nn.BatchNorm2d(in_planes)
        self.relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)
        init_weights(self)
        if zero_init_residual:
            zero_init_last_bn(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        x = self.layer3(self.layer2(self.layer1(x)))
        x = self.relu(self.bn_final(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


@register_model
def cifar_resnet(depth: int = 20, **kwargs) -> CifarResNet:
    """CIFAR ResNet of any depth 6n+2 (option A shortcuts unless ``shortcut=`` says)."""
    return CifarResNet(depth, **kwargs)


@register_model
def cifar_plain(depth: int = 20, **kwargs) -> CifarResNet:
    """Plain CIFAR net of depth 6n+2: a ResNet's layers without shortcuts (Sec. 4.2)."""
    return CifarResNet(depth, shortcut="none", **kwargs)


@register_model
def cifar_preact_resnet(depth: int = 110, **kwargs) -> CifarPreActResNet:
    """Pre-activation CIFAR ResNet: depth 6n+2, or 9n+2 with ``bottleneck=True``."""
    return CifarPreActResNet(depth, **kwargs)


for _depth in PAPER_DEPTHS:
    register_model(partial(cifar_resnet, _depth), name=f"resnet{_depth}")
    register_model(partial(cifar_plain, _depth), name=f"plain{_depth}")
register_model(partial(cifar_preact_resnet, 110, bottleneck=False), name="preact_resnet110")
register_model(partial(cifar_preact_resnet, 164, bottleneck=True), name="preact_resnet164")
register_model(partial(cifar_preact_resnet, 1001, bottleneck=True), name="preact_resnet1001")

__all__ = [
    "PAPER_DEPTHS",
    "CifarPreActResNet",
    "CifarResNet",
    "blocks_per_stage",
    "cifar_plain",
    "cifar_preact_resnet",
    "cifar_resnet",
]
