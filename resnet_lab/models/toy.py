"""Small networks for the vanishing-gradient chapter: deep MLPs and plain conv stacks.

Each knob is one of the historical fixes: the activation (sigmoid and tanh saturate, ReLU
does not), the initialisation (Glorot & Bengio 2010; He et al. 2015), BatchNorm (Ioffe &
Szegedy 2015) and identity skips (He et al. 2016). ``model.layers`` lists the weight layers
from input to output, so gradients can be read layer by layer.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Literal

from torch import Tensor, nn

from resnet_lab.models.registry import register_model

Activation = Literal["sigmoid", "tanh", "relu"]
Init = Literal["naive", "xavier", "he"]
Norm = Literal["none", "batchnorm"]

#: Width of the book's in-browser playground network (:func:`spiral_mlp`).
SPIRAL_WIDTH = 16
ACTIVATIONS: dict[str, type[nn.Module]] = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}
INITS: tuple[str, ...] = ("naive", "xavier", "he")
NORMS: tuple[str, ...] = ("none", "batchnorm")
NAIVE_STD = 0.01


def _choice(kind: str, value: str, choices) -> str:
    if value not in choices:
        raise ValueError(f"{kind} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def init_layer(layer: nn.Linear | nn.Conv2d, init: Init) -> None:
    """Initialise one weight layer; biases start at zero.

    naive: N(0, 0.01^2) whatever the width, the habit before 2010; each layer then scales
    the signal by about 0.01 * sqrt(fan_in), so it and its gradients vanish with depth.
    xavier: Glorot uniform, variance 2 / (fan_in + fan_out) (Glorot & Bengio 2010, eq. 16).
    he: Kaiming normal, variance 2 / fan_in, made for ReLU (He et al. 2015, eq. 10).
    """
    if init == "naive":
        nn.init.normal_(layer.weight, std=NAIVE_STD)
    elif init == "xavier":
        nn.init.xavier_uniform_(layer.weight)
    else:
        nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


class _ToyNet(nn.Module):
    """``depth`` weight layers: an input layer, ``depth - 2`` hidden layers of equal width
    (each optionally wrapped by an identity skip, ``h + act(norm(W h))``) and an output layer."""

    layers: nn.ModuleList
    norms: nn.ModuleList

    def __init__(
        self, depth: int, activation: Activation, init: Init, norm: Norm, skip: bool
    ) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"depth counts weight layers and must be at least 2, got {depth}")
        _choice("activation", activation, ACTIVATIONS)
        _choice("init", init, INITS)
        _choice("norm", norm, NORMS)
        self.depth, self.init, self.skip = depth, init, skip
        self.act = ACTIVATIONS[activation]()

    def _init_weights(self) -> None:
        for layer in self.layers:
            init_layer(layer, self.init)

    def _features(self, h: Tensor) -> Tensor:
        for index, (layer, norm) in enumerate(zip(self.layers[:-1], self.norms, strict=True)):
            out = self.act(norm(layer(h)))
            # The input layer changes the width, so only hidden layers can carry a skip.
            h = h + out if self.skip and index > 0 else out
        return h


class DeepMLP(_ToyNet):
    """Fully connected net of ``depth`` linear layers of ``width`` units; flattens its input."""

    def __init__(
        self,
        depth: int = 20,
        width: int = 64,
        in_features: int = 3 * 32 * 32,
        num_classes: int = 10,
        activation: Activation = "relu",
        init: Init = "he",
        norm: Norm = "none",
        skip: bool = False,
    ) -> None:
        super().__init__(depth, activation, init, norm, skip)
        self.name = "mlp"
        self.default_input_size = (1, in_features)
        sizes = [in_features] + [width] * (depth - 1) + [num_classes]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(sizes))
        norm_layer = nn.BatchNorm1d if norm == "batchnorm" else (lambda _: nn.Identity())
        self.norms = nn.ModuleList(norm_layer(width) for _ in range(depth - 1))
        self._init_weights()

    def forward(self, x: Tensor) -> Tensor:
        return self.layers[-1](self._features(x.flatten(1)))


class ConvStack(_ToyNet):
    """Plain stack of ``depth - 1`` 3x3 convolutions of ``width`` channels at full
    resolution, then global average pooling and a linear classifier (the last weight layer)."""

    default_input_size = (1, 3, 32, 32)

    def __init__(
        self,
        depth: int = 20,
        width: int = 16,
        in_channels: int = 3,
        num_classes: int = 10,
        activation: Activation = "relu",
        init: Init = "he",
        norm: Norm = "none",
        skip: bool = False,
    ) -> None:
        super().__init__(depth, activation, init, norm, skip)
        self.name = "conv_stack"
        channels = [in_channels] + [width] * (depth - 1)
        convs = [nn.Conv2d(a, b, 3, padding=1) for a, b in pairwise(channels)]
        self.layers = nn.ModuleList([*convs, nn.Linear(width, num_classes)])
        norm_layer = nn.BatchNorm2d if norm == "batchnorm" else (lambda _: nn.Identity())
        self.norms = nn.ModuleList(norm_layer(width) for _ in range(depth - 1))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self._init_weights()

    def forward(self, x: Tensor) -> Tensor:
        return self.layers[-1](self.pool(self._features(x)).flatten(1))


@register_model
def mlp(**kwargs) -> DeepMLP:
    """Deep MLP for CIFAR-sized inputs (see ``DeepMLP`` for the knobs)."""
    return DeepMLP(**kwargs)


@register_model
def conv_stack(**kwargs) -> ConvStack:
    """Plain convolution stack (see ``ConvStack`` for the knobs)."""
    return ConvStack(**kwargs)


@register_model
def spiral_mlp(depth: int = 32, **kwargs) -> DeepMLP:
    """The book's playground network: a ``DeepMLP`` of ``SPIRAL_WIDTH`` units on 2-D points
    (two spirals) with 2 classes; ``skip``, ``norm``, ``init`` as in ``DeepMLP``.

    The playground page trains this network in the reader's browser with TensorFlow.js
    (``book/playground/net.js``); ``tests/test_playground.py`` checks that the page computes
    the same outputs and gradients from the same weights.
    """
    return DeepMLP(depth=depth, width=SPIRAL_WIDTH, in_features=2, num_classes=2, **kwargs)


__all__ = [
    "NAIVE_STD",
    "SPIRAL_WIDTH",
    "ConvStack",
    "DeepMLP",
    "init_layer",
    "mlp",
    "conv_stack",
    "spiral_mlp",
]
