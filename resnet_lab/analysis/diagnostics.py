"""Measurements of what happens inside a network: gradient norms, residual sizes, layer responses.

Chapter 1 measures gradient norms per layer at initialisation (Glorot & Bengio 2010;
He et al. 2015, Sec. 2.2), later chapters the size of residual functions and the
responses of Fig. 7 of He et al. (2016), chapter 7 how far a block is from ``x + F(x)``
(:func:`shortcut_path`, He et al. 2016b).

Modes, stated once for every function here:

- Gradient measurements (:func:`layer_grad_norms`, :func:`block_input_grad_norms`) run in
  **train mode** by default (``train=True``): BatchNorm normalises with batch statistics,
  as it does when the gradients are used for training.
- Forward measurements (:func:`residual_ratios`, :func:`response_stds`,
  :func:`activation_stats`) run in **eval mode** by default (``train=False``): Fig. 7 of
  He et al. (2016) measures trained networks on test images. Pass ``train=True`` for a
  network at initialisation, whose BatchNorm running statistics are still (0, 1).
- :func:`shortcut_path` runs a copy of the model in train mode; the model is not touched.

Every function restores the model's mode and its buffers (BatchNorm running statistics),
leaves ``.grad`` of the parameters untouched and removes its hooks, also on errors.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from resnet_lab.models.layers import weight_layers as main_path_layers

__all__ = [
    "activation_stats",
    "block_input_grad_norms",
    "decay_fit",
    "decay_rate",
    "layer_grad_norms",
    "residual_ratios",
    "response_stds",
    "shortcut_path",
    "weight_layers",
]

LossFn = Callable[[Tensor, Tensor], Tensor]

# Norms that underflow to exactly 0 are floored here before taking logs, so the fit still
# says "vanishing" instead of failing on log(0). Measure in float64 to see how small they are.
_NORM_FLOOR = 1e-300


@contextmanager
def _measuring(model: nn.Module, train: bool) -> Iterator[None]:
    """Put ``model`` in the requested mode and restore mode and buffers afterwards.

    Train-mode forward passes update BatchNorm running statistics; a measurement must
    not change the model it measures.
    """
    was_training = [m.training for m in model.modules()]
    buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
    model.train(train)
    try:
        yield
    finally:
        for m, mode in zip(model.modules(), was_training, strict=True):
            m.training = mode
        with torch.no_grad():
            for name, b in model.named_buffers():
                if name in buffers:
                    b.copy_(buffers[name])


def _loss(model: nn.Module, x: Tensor, y: Tensor, loss_fn: LossFn | None) -> Tensor:
    out = model(x)
    return (loss_fn or F.cross_entropy)(out, y)


def weight_layers(model: nn.Module) -> list[nn.Module]:
    """The weight layers of ``model`` from input to output.

    ``model.layers`` when the model defines it (the toy nets of chapter 1), else every
    ``nn.Conv2d`` / ``nn.Linear`` in registration order, leaving out projection
    shortcuts (modules under a ``shortcut`` / ``downsample`` attribute) so that plain and
    residual networks of the same depth give lists of the same length.
    """
    layers = getattr(model, "layers", None)
    if layers is not None:
        return list(layers)
    return [m for _, m in main_path_layers(model)]


def layer_grad_norms(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    loss_fn: LossFn | None = None,
    train: bool = True,
) -> list[float]:
    """Frobenius norm of dL/dW for every weight layer, from input (index 0) to output.

    The loss is ``loss_fn(model(x), y)`` (cross-entropy by default, mean over the batch).
    Gradients come from ``torch.autograd.grad``, so the parameters' ``.grad`` stays as it was.
    """
    layers = weight_layers(model)
    if not layers:
        raise ValueError("the model has no nn.Conv2d/nn.Linear layers and no `.layers` list")
    weights = [layer.weight for layer in layers]
    with _measuring(model, train):
        loss = _loss(model, x, y, loss_fn)
        grads = torch.autograd.grad(loss, weights, allow_unused=True)
    return [0.0 if g is None else g.detach().norm().item() for g in grads]


def decay_fit(norms: Sequence[float]) -> tuple[float, float]:
    """Least-squares fit of ``log(norm_i) = a + b * i``; returns ``(rate, norm_at_output)``.

    ``rate = exp(-b)`` is the factor by which the gradient norm is multiplied per layer
    going **from the output back towards the input**: ``rate < 1`` means gradients vanish
    on the way to the input, ``rate > 1`` that they explode. ``norm_at_output`` is the fitted
    norm of the last layer, so the fitted line is ``norm_at_output * rate ** (L - 1 - i)``.
    """
    if len(norms) < 2:
        raise ValueError(f"need the norms of at least 2 layers to fit a rate, got {len(norms)}")
    logs = [math.log(max(float(n), _NORM_FLOOR)) for n in norms]
    if not all(math.isfinite(v) for v in logs):
        raise ValueError("norms must be finite; an inf/nan norm means the forward pass overflowed")
    n = len(logs)
    mean_i = (n - 1) / 2
    mean_l = sum(logs) / n
    slope = sum((i - mean_i) * (v - mean_l) for i, v in enumerate(logs)) / sum(
        (i - mean_i) ** 2 for i in range(n)
    )
    intercept = mean_l - slope * mean_i
    return math.exp(-slope), math.exp(intercept + slope * (n - 1))


def decay_rate(norms: Sequence[float]) -> float:
    """Per-layer factor of the gradient norm going from output to input (<1 vanishing, >1 exploding).

    See :func:`decay_fit`. Over ``L`` layers the input layer's gradient is about
    ``rate ** (L - 1)`` times the output layer's.
    """
    return decay_fit(norms)[0]


def _residual_blocks(model: nn.Module, blocks: Sequence[nn.Module] | None) -> list[nn.Module]:
    if blocks is not None:
        found = list(blocks)
    else:
        from resnet_lab.models import residual_blocks

        found = [block for _, block in residual_blocks(model)]
    if not found:
        raise ValueError(
            "no residual/plain blocks found; pass a network from resnet_lab.models "
            "(e.g. rl.build('resnet20')) or the blocks themselves via blocks=[...]"
        )
    return found


@contextmanager
def _hooks(handles: list) -> Iterator[list]:
    try:
        yield handles
    finally:
        for h in handles:
            h.remove()


def block_input_grad_norms(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    loss_fn: LossFn | None = None,
    train: bool = True,
    blocks: Sequence[nn.Module] | None = None,
) -> list[float]:
    """Frobenius norm of dL/d(input of each block), blocks in depth order.

    This is the signal that reaches a block from above: with identity shortcuts it
    contains the gradient of the loss w.r.t. every later block's output unchanged
    (He et al. 2016b, Eq. 5). Norm of the whole batch tensor, loss averaged over the batch.
    Blocks default to ``resnet_lab.models.residual_blocks(model)``.
    """
    found = _residual_blocks(model, blocks)
    inputs: list[Tensor | None] = [None] * len(found)

    def grab(index: int):
        def hook(module: nn.Module, args: tuple) -> None:
            inputs[index] = args[0]

        return hook

    handles = [b.register_forward_pre_hook(grab(i)) for i, b in enumerate(found)]
    with _hooks(handles), _measuring(model, train):
        x = x.detach().requires_grad_(True)  # so the first block's input is in the graph
        loss = _loss(model, x, y, loss_fn)
        if any(t is None for t in inputs):
            raise ValueError("some blocks were not called in the forward pass of the model")
        grads = torch.autograd.grad(loss, inputs, allow_unused=True)
    return [0.0 if g is None else g.detach().norm().item() for g in grads]


def residual_ratios(
    model: nn.Module,
    x: Tensor,
    train: bool = False,
    blocks: Sequence[nn.Module] | None = None,
) -> list[float]:
    """Per block ``||F(x)|| / ||x||`` for the block's own input ``x``, averaged over the batch.

    ``F`` is ``block.residual``, the residual branch before the addition. A small ratio
    means the block stays close to the identity, the premise of Sec. 3.1 of He et al. (2016).
    For downsampling blocks F(x) and x have different shapes; the ratio still compares
    their sizes per example. Eval mode by default (see the module docstring).
    """
    found = _residual_blocks(model, blocks)
    for block in found:
        if not callable(getattr(block, "residual", None)):
            raise ValueError(
                f"{type(block).__name__} has no `residual(x)` method; residual_ratios needs "
                "blocks from resnet_lab.models"
            )
    ratios: list[float | None] = [None] * len(found)

    def measure(index: int):
        def hook(module: nn.Module, args: tuple) -> None:
            inp = args[0]
            # Re-running the branch is simpler than hooking inside it, and exact in eval mode;
            # in train mode BatchNorm sees the same batch, so the statistics match too.
            fx = module.residual(inp)
            num = fx.flatten(1).norm(dim=1)
            den = inp.flatten(1).norm(dim=1).clamp_min(1e-12)
            ratios[index] = (num / den).mean().item()

        return hook

    handles = [b.register_forward_pre_hook(measure(i)) for i, b in enumerate(found)]
    with _hooks(handles), _measuring(model, train), torch.no_grad():
        model(x)
    if any(r is None for r in ratios):
        raise ValueError("some blocks were not called in the forward pass of the model")
    return [float(r) for r in ratios]


def _is_3x3(module: nn.Module) -> bool:
    return isinstance(module, nn.Conv2d) and tuple(module.kernel_size) == (3, 3)


def response_stds(model: nn.Module, x: Tensor, train: bool = False) -> list[float]:
    """Std of the response of every 3x3 conv layer, in call order (He et al. 2016, Fig. 7).

    The response is the layer's output after its BatchNorm and before the nonlinearity
    or the addition: the output of the BatchNorm module that directly consumes the conv's
    output. A 3x3 conv that is not followed by BatchNorm (e.g. the last conv of a
    pre-activation block) contributes its own output instead. The std is taken over all
    elements of the batch's response. Eval mode by default, as in the paper (trained
    networks, test images).
    """
    convs = [m for m in model.modules() if _is_3x3(m)]
    if not convs:
        raise ValueError("the model has no 3x3 nn.Conv2d layers")
    order: list[int] = []  # conv call order, as ids of conv modules
    outputs: dict[int, Tensor] = {}  # id(conv module) -> its output tensor
    stds: dict[int, float] = {}

    def conv_hook(module: nn.Module, args: tuple, out: Tensor) -> None:
        order.append(id(module))
        outputs[id(module)] = out
        stds[id(module)] = out.float().std().item()

    def bn_hook(module: nn.Module, args: tuple, out: Tensor) -> None:
        inp = args[0]
        for key, conv_out in outputs.items():
            if conv_out is inp:
                stds[key] = out.float().std().item()
                break

    handles = [m.register_forward_hook(conv_hook) for m in convs]
    handles += [
        m.register_forward_hook(bn_hook)
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]
    with _hooks(handles), _measuring(model, train), torch.no_grad():
        model(x)
    return [stds[key] for key in order]


def activation_stats(model: nn.Module, x: Tensor, train: bool = False) -> list[dict[str, float]]:
    """Mean and std of every weight layer's output (pre-activation), input to output.

    Returns one dict per layer of :func:`weight_layers` with keys ``mean``, ``std`` and
    ``rms``. The forward counterpart of :func:`layer_grad_norms`: with a bad initialisation
    the signal shrinks or grows layer by layer going forward too (Glorot & Bengio 2010).
    """
    layers = weight_layers(model)
    if not layers:
        raise ValueError("the model has no nn.Conv2d/nn.Linear layers and no `.layers` list")
    stats: list[dict[str, float] | None] = [None] * len(layers)

    def measure(index: int):
        def hook(module: nn.Module, args: tuple, out: Tensor) -> None:
            out = out.float()
            stats[index] = {
                "mean": out.mean().item(),
                "std": out.std().item(),
                "rms": out.pow(2).mean().sqrt().item(),
            }

        return hook

    handles = [layer.register_forward_hook(measure(i)) for i, layer in enumerate(layers)]
    with _hooks(handles), _measuring(model, train), torch.no_grad():
        model(x)
    return [s if s is not None else {"mean": 0.0, "std": 0.0, "rms": 0.0} for s in stats]


def shortcut_path(model: nn.Module, x: Tensor) -> dict[str, list[float]]:
    """How far each block of ``model`` is from ``x + F(x)`` (He et al. 2016b, Eqs. 3-4).

    For every block whose shortcut is the identity (same shape in and out), with a
    forward pass in train mode on ``x``:

    - ``deviation``: ``||out - (x + F(x))|| / ||x + F(x)||``, what the operation after
      the addition changes (the ReLU of the original unit; exactly 0 for pre-activation);
    - ``clipped``: the fraction of elements of ``x + F(x)`` that the block does not pass on.

    Returns ``{'deviation': [...], 'clipped': [...], 'unrolled': [...]}``, where
    ``unrolled`` holds per stage ``||x_L - (x_l + sum_i F(x_i))|| / ||x_L||``: zero when
    the stage's output is its input plus the sum of its residual functions (Eq. 4).
    The model is measured on a copy, so its BatchNorm statistics stay as they were.
    """
    from resnet_lab.models import residual_blocks

    net = copy.deepcopy(model).train()
    records: list[tuple[str, Tensor, Tensor, Tensor]] = []

    def hook(name: str):
        def fn(module: nn.Module, args: tuple, out: Tensor) -> None:
            inp = args[0]
            if module.use_shortcut and inp.shape == out.shape and module.downsample is None:
                records.append((name, inp, module.residual(inp), out))

        return fn

    handles = [b.register_forward_hook(hook(n)) for n, b in residual_blocks(net)]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
    deviation, clipped = [], []
    stages: dict[str, list[tuple[Tensor, Tensor, Tensor]]] = {}
    for name, inp, fx, out in records:
        summed = inp + fx
        deviation.append(float((out - summed).norm() / summed.norm().clamp_min(1e-12)))
        clipped.append(float((out != summed).float().mean()))
        stages.setdefault(name.split(".")[0], []).append((inp, fx, out))
    unrolled = []
    for blocks in stages.values():
        x_l, x_L = blocks[0][0], blocks[-1][2]
        total_f = sum(fx for _, fx, _ in blocks)
        unrolled.append(float((x_L - (x_l + total_f)).norm() / x_L.norm().clamp_min(1e-12)))
    return {"deviation": deviation, "clipped": clipped, "unrolled": unrolled}
