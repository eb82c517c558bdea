"""One registry of model names: ``build("resnet56")``, ``list_models()``.

Registered names map to constructors. Beyond them, ``build`` reads a depth from names of the
form ``resnetNN``, ``plainNN`` and ``preact_resnetNN`` (CIFAR nets of any valid depth), so
``build("resnet38")`` works without 38 being registered, and a ``-zi`` suffix
(``resnet56-zi``) gives the same net with zero-initialised residual branches.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import TypeVar

from torch import nn

ModelFn = TypeVar("ModelFn", bound=Callable[..., nn.Module])

_MODELS: dict[str, Callable[..., nn.Module]] = {}
_DEPTH_NAME = re.compile(r"(resnet|plain|preact_resnet)(\d+)")
#: ``resnet56-zi``: a CIFAR net with zero-initialised residual branches (see :func:`build`)
ZERO_INIT_SUFFIX = "-zi"
#: the deepest net a name may ask for: well beyond the papers' deepest (ResNet-1202), short of
#: the nets that take minutes to build (``resnet60002``)
MAX_DEPTH = 2000


class DepthError(ValueError):
    """A depth that no network of the family has."""


def register_model(fn: ModelFn | None = None, *, name: str | None = None):
    """Decorator: register a model constructor under its function name (or ``name``)."""

    def add(fn: ModelFn) -> ModelFn:
        key = name or fn.__name__
        if key in _MODELS:
            raise ValueError(f"model name {key!r} is already registered")
        _MODELS[key] = fn
        return fn

    return add(fn) if fn is not None else add


def _natural_key(name: str) -> tuple:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def list_models() -> list[str]:
    """Every registered model name, sorted (``resnet20`` before ``resnet110``)."""
    return sorted(_MODELS, key=_natural_key)


def build(name: str, weights=None, **kwargs) -> nn.Module:
    """Build a model by name; keyword arguments go to its constructor.

    >>> build("resnet56", shortcut="B")   # CIFAR ResNet-56, projection shortcuts
    >>> build("resnet50", num_classes=100)
    >>> build("plain20")                  # ResNet-20's layers without shortcuts
    >>> build("resnet56-zi")              # ResNet-56, each block starting as the identity
    >>> build("resnet56", weights="zoo")  # trained weights (see resnet_lab.weights)

    ``weights``: a tag such as ``"zoo"``, ``"zoo:step200"`` or ``"akamaster"``, a full name
    (``"resnet56.zoo"``) or a :class:`resnet_lab.weights.Weights` entry; the model is
    returned in training mode, as torchvision returns it (call ``.eval()`` to evaluate).
    """
    if not isinstance(name, str):
        raise TypeError(
            f"build() takes a model name such as 'resnet20' (see list_models()), not "
            f"{name!r} ({type(name).__name__})"
        )
    if weights is not None:
        from resnet_lab.weights.registry import resolve

        return resolve(name, weights).build(lambda: build(name, **kwargs))
    key = name.strip().lower()
    if key in _MODELS:
        return _MODELS[key](**kwargs)
    if key.endswith(ZERO_INIT_SUFFIX) and _DEPTH_NAME.fullmatch(key[: -len(ZERO_INIT_SUFFIX)]):
        # e.g. resnet56-zi: the same network, each residual branch's last BatchNorm scale
        # starting at zero (Goyal et al. 2017), so every block starts as the identity
        if key.startswith("plain"):
            raise ValueError(
                f"{name!r}: a plain net has no shortcut, so zero-initialised blocks would pass "
                "nothing on; the -zi form exists for residual nets only"
            )
        model = build(key[: -len(ZERO_INIT_SUFFIX)], zero_init_residual=True, **kwargs)
        model.name = key
        return model
    match = _DEPTH_NAME.fullmatch(key)
    if match is None:
        close = difflib.get_close_matches(key, list_models(), n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"unknown model {name!r}.{hint} Valid names: {', '.join(list_models())}; "
            "or resnetNN / plainNN / preact_resnetNN for a CIFAR net of depth NN."
        )
    family, digits = match.group(1), match.group(2)
    if len(digits) > len(str(MAX_DEPTH)) or int(digits) > MAX_DEPTH:
        shown = digits if len(digits) <= 12 else f"{digits[:12]}... ({len(digits)} digits)"
        raise DepthError(
            f"{family}{shown}: a depth of {shown} layers is beyond this package's limit of {MAX_DEPTH} (the papers' deepest net has 1202); "
            f"choose a depth up to {MAX_DEPTH}"
        )
    depth = int(digits)
    if family == "preact_resnet":
        # The paper's choice (He et al. 2016b, Table 3): basic blocks up to ResNet-110,
        # bottleneck blocks from ResNet-164 on.
        kwargs.setdefault("bottleneck", depth >= 164)
        return _MODELS["cifar_preact_resnet"](depth=depth, **kwargs)
    try:
        return _MODELS[f"cifar_{family}"](depth=depth, **kwargs)
    except DepthError as error:
        if family == "resnet":  # the name may have meant an ImageNet net
            raise DepthError(f"{error} ImageNet ResNets: resnet18/34/50/101/152.") from None
        raise
