"""Every ResNet of He et al. 2016 and 2016b, plus toy nets, behind one registry.

>>> from resnet_lab.models import build, list_models
>>> model = build("resnet56")            # CIFAR ResNet-56, option A shortcuts
>>> model = build("resnet50")            # ImageNet ResNet-50, torchvision's state_dict keys

Modules: ``blocks`` (residual blocks and shortcuts), ``cifar`` (6n+2 and 9n+2 CIFAR nets),
``imagenet`` (ResNet-18..152), ``toy`` (deep MLPs and conv stacks), ``registry`` (names).
"""

from __future__ import annotations

from resnet_lab.models.blocks import (
    BasicBlock,
    Bottleneck,
    PadShortcut,
    PreActBasicBlock,
    PreActBottleneck,
    ResidualBlock,
    init_weights,
    make_shortcut,
    residual_blocks,
    zero_init_last_bn,
)
from resnet_lab.models.cifar import CifarPreActResNet, CifarResNet
from resnet_lab.models.imagenet import ResNet
from resnet_lab.models.layers import weight_layers
from resnet_lab.models.registry import DepthError, build, list_models, register_model
from resnet_lab.models.toy import ConvStack, DeepMLP

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "CifarPreActResNet",
    "CifarResNet",
    "ConvStack",
    "DeepMLP",
    "DepthError",
    "PadShortcut",
    "PreActBasicBlock",
    "PreActBottleneck",
    "ResNet",
    "ResidualBlock",
    "build",
    "init_weights",
    "list_models",
    "make_shortcut",
    "register_model",
    "weight_layers",
    "residual_blocks",
    "zero_init_last_bn",
]
