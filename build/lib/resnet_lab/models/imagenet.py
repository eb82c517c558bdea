"""ImageNet ResNet-18/34/50/101/152 (He et al. 2016, Table 1), torchvision-compatible.

Module names and ``state_dict`` keys are torchvision's, so
``model.load_state_dict(torchvision.models.resnet50().state_dict())`` works as is.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from resnet_lab.models.blocks import (
    BasicBlock,
    Bottleneck,
    Shortcut,
    init_weights,
    zero_init_last_bn,
)
from resnet_lab.models.registry import register_model

# Blocks per stage, He et al. 2016, Table 1.
STAGES: dict[int, tuple[type[BasicBlock | Bottleneck], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


class ResNet(nn.Module):
    """ResNet for 224x224 images (He et al. 2016, Sec. 3.4 and Table 1).

    ``stride_in_1x1=False`` downsamples in the bottleneck's 3x3 convolution, as torchvision
    does ("v1.5"); ``True`` is the paper's original placement in the first 1x1 (v1), which
    reproduces Table 1's FLOPs. ``shortcut`` defaults to "B", the paper's choice for these
    nets (Sec. 4.1); "none" gives the plain nets of Table 2. ``zero_init_residual`` zeroes
    each block's last BN scale, as torchvision's option of the same name.
    """

    default_input_size = (1, 3, 224, 224)

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        layers: tuple[int, ...] | list[int],
        num_classes: int = 1000,
        zero_init_residual: bool = False,
        stride_in_1x1: bool = False,
        shortcut: Shortcut = "B",
    ) -> None:
        super().__init__()
        depth = sum(layers) * (3 if block is Bottleneck else 2) + 2
        self.name = f"plain{depth}" if shortcut == "none" else f"resnet{depth}"
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        extra = {"stride_in_1x1": stride_in_1x1} if block is Bottleneck else {}
        if stride_in_1x1 and block is not Bottleneck:
            raise ValueError("stride_in_1x1 applies to bottleneck nets (ResNet-50/101/152) only")
        for index, (planes, blocks) in enumerate(
            zip((64, 128, 256, 512), layers, strict=True), start=1
        ):
            stride = 1 if index == 1 else 2
            stage = [block(self.inplanes, planes, stride, shortcut, **extra)]
            self.inplanes = planes * block.expansion
            stage += [block(self.inplanes, planes, 1, shortcut, **extra) for _ in range(1, blocks)]
            setattr(self, f"layer{index}", nn.Sequential(*stage))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        init_weights(self)
        if zero_init_residual:
            zero_init_last_bn(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def imagenet_resnet(depth: int, **kwargs) -> ResNet:
    """ImageNet ResNet of depth 18, 34, 50, 101 or 152."""
    if depth not in STAGES:
        raise ValueError(
            f"ImageNet ResNet depth must be one of {', '.join(map(str, STAGES))}, got {depth}"
        )
    block, layers = STAGES[depth]
    return ResNet(block, layers, **kwargs)


@register_model
def resnet18(**kwargs) -> ResNet:
    """ResNet-18: basic blocks, 11.7M parameters, 1.8 GFLOPs (Table 1)."""
    return imagenet_resnet(18, **kwargs)


@register_model
def resnet34(**kwargs) -> ResNet:
    """ResNet-34: basic blocks, 21.8M parameters, 3.6 GFLOPs (Table 1)."""
    return imagenet_resnet(34, **kwargs)


@register_model
def resnet50(**kwargs) -> ResNet:
    """ResNet-50: bottleneck blocks, 25.6M parameters, 3.8 GFLOPs in v1 (Table 1)."""
    return imagenet_resnet(50, **kwargs)


@register_model
def resnet101(**kwargs) -> ResNet:
    """ResNet-101: bottleneck blocks, 44.5M parameters, 7.6 GFLOPs in v1 (Table 1)."""
    return imagenet_resnet(101, **kwargs)


@register_model
def resnet152(**kwargs) -> ResNet:
    """ResNet-152: bottleneck blocks, 60.2M parameters, 11.3 GFLOPs in v1 (Table 1)."""
    return imagenet_resnet(152, **kwargs)


@register_model
def plain18(**kwargs) -> ResNet:
    """Plain-18: ResNet-18's layers without shortcuts (Table 2)."""
    return imagenet_resnet(18, shortcut="none", **kwargs)


@register_model
def plain34(**kwargs) -> ResNet:
    """Plain-34: ResNet-34's layers without shortcuts (Table 2, Fig. 3 middle)."""
    return imagenet_resnet(34, shortcut="none", **kwargs)


__all__ = ["STAGES", "ResNet", "imagenet_resnet", "resnet18", "resnet34", "resnet50"]
__all__ += ["resnet101", "resnet152", "plain18", "plain34"]
