"""Diagnostics measure what chapter 1 and later chapters teach; these tests pin those properties."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from resnet_lab.analysis import diagnostics as dg


def mlp(depth: int, activation: str, init: str, norm: bool = False, width: int = 64) -> nn.Module:
    """A plain deep MLP in pure PyTorch (independent of resnet_lab.models)."""
    act = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}[activation]
    mods: list[nn.Module] = []
    linears = []
    for i in range(depth):
        lin = nn.Linear(32 if i == 0 else width, 10 if i == depth - 1 else width)
        std = {
            "naive": 0.01,
            "he": math.sqrt(2 / lin.in_features),
            "xavier": math.sqrt(2 / (lin.in_features + lin.out_features)),
        }[init]
        nn.init.normal_(lin.weight, std=std)
        nn.init.zeros_(lin.bias)
        linears.append(lin)
        mods.append(lin)
        if i < depth - 1:
            if norm:
                mods.append(nn.BatchNorm1d(width))
            mods.append(act())
    net = nn.Sequential(*mods)
    net.layers = linears  # what resnet_lab.models' toy nets expose
    return net


class Block(nn.Module):
    """Original residual block with the interface of resnet_lab.models blocks."""

    def __init__(self, c: int, zero_init: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.shortcut = nn.Identity()
        self.use_shortcut = True
        if zero_init:
            nn.init.zeros_(self.bn2.weight)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.residual(x) + self.shortcut(x))


class TinyResNet(nn.Module):
    def __init__(self, blocks: int = 3, c: int = 8, zero_init: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.layer1 = nn.Sequential(*[Block(c, zero_init) for _ in range(blocks)])
        self.fc = nn.Linear(c, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer1(torch.relu(self.bn1(self.conv1(x))))
        return self.fc(x.mean(dim=(2, 3)))


def batch(n: int = 64, image: bool = False, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((n, 3, 8, 8) if image else (n, 32), generator=g)
    return x, torch.randint(0, 10, (n,), generator=g)


def no_hooks(model: nn.Module) -> bool:
    return all(
        not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
        for m in model.modules()
    )


# --- decay_rate ---------------------------------------------------------------------------


def test_decay_rate_recovers_geometric_factor_in_output_to_input_direction():
    vanishing = [0.5 ** (9 - i) for i in range(10)]  # input layer smallest
    assert dg.decay_rate(vanishing) == pytest.approx(0.5)
    exploding = [2.0 ** (9 - i) for i in range(10)]  # input layer largest
    assert dg.decay_rate(exploding) == pytest.approx(2.0)
    rate, at_output = dg.decay_fit([3.0] * 5)
    assert rate == pytest.approx(1.0) and at_output == pytest.approx(3.0)


def test_decay_rate_survives_underflow_and_rejects_bad_input():
    assert dg.decay_rate([0.0, 0.0, 1e-20, 1e-10, 1.0]) < 1e-3
    with pytest.raises(ValueError, match="at least 2"):
        dg.decay_rate([1.0])
    with pytest.raises(ValueError, match="finite"):
        dg.decay_rate([1.0, float("nan")])


# --- layer_grad_norms ---------------------------------------------------------------------


def test_sigmoid_with_naive_init_vanishes():
    torch.manual_seed(0)
    norms = dg.layer_grad_norms(mlp(20, "sigmoid", "naive"), *batch())
    assert len(norms) == 20
    assert dg.decay_rate(norms) < 0.3
    assert norms[0] < 1e-8 * norms[-1]


def test_relu_with_he_init_keeps_gradients_healthy():
    torch.manual_seed(0)
    norms = dg.layer_grad_norms(mlp(20, "relu", "he"), *batch(256))
    assert 0.85 < dg.decay_rate(norms) < 1.15
    assert 0.05 < norms[0] / norms[-1] < 20


def test_batchnorm_rescues_naive_init():
    # ReLU with a too-small init shrinks the signal forward and backward alike, so every
    # layer's gradient is tiny (the rate alone looks fine); BatchNorm restores the scale.
    torch.manual_seed(0)
    x, y = batch(256)
    plain = dg.layer_grad_norms(mlp(20, "relu", "naive"), x, y)
    normed = dg.layer_grad_norms(mlp(20, "relu", "naive", norm=True), x, y)
    assert max(plain) < 1e-12
    assert min(normed) > 1e-3
    assert 0.8 < dg.decay_rate(normed) < 1.25


def test_layer_grad_norms_leaves_the_model_as_it_was():
    torch.manual_seed(0)
    net = mlp(6, "relu", "he", norm=True).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    dg.layer_grad_norms(net, *batch())
    assert not net.training  # mode restored
    assert all(p.grad is None for p in net.parameters())
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k  # running stats untouched


def test_weight_layers_without_layers_attribute_skips_shortcuts():
    net = TinyResNet(blocks=2)
    net.layer1[0].shortcut = nn.Conv2d(8, 8, 1)  # a projection shortcut is not a depth layer
    layers = dg.weight_layers(net)
    assert len(layers) == 1 + 2 * 2 + 1
    assert layers[0] is net.conv1 and layers[-1] is net.fc
    norms = dg.layer_grad_norms(net, *batch(16, image=True))
    assert len(norms) == 6 and all(n > 0 for n in norms)


# --- residual-block diagnostics -----------------------------------------------------------


def test_residual_ratios_zero_for_zero_init_and_positive_otherwise():
    torch.manual_seed(0)
    x, _ = batch(16, image=True)
    zero = TinyResNet(zero_init=True)
    blocks = list(zero.layer1)
    assert dg.residual_ratios(zero, x, train=True, blocks=blocks) == [0.0, 0.0, 0.0]
    net = TinyResNet()
    ratios = dg.residual_ratios(net, x, train=True, blocks=list(net.layer1))
    assert len(ratios) == 3 and all(r > 0.1 for r in ratios)
    assert no_hooks(net)


def test_residual_ratios_rejects_blocks_without_residual():
    net = TinyResNet()
    with pytest.raises(ValueError, match="residual"):
        dg.residual_ratios(net, batch(4, image=True)[0], blocks=[net.fc])


def test_identity_blocks_pass_the_gradient_unchanged_at_zero_init():
    # With F = 0 every block is the identity, so dL/dx is the same at every block input.
    torch.manual_seed(0)
    net = TinyResNet(blocks=4, zero_init=True)
    norms = dg.block_input_grad_norms(net, *batch(16, image=True), blocks=list(net.layer1))
    assert len(norms) == 4 and norms[0] > 0
    assert norms == pytest.approx([norms[0]] * 4, rel=1e-5)
    assert no_hooks(net)
    assert all(p.grad is None for p in net.parameters())


def test_response_stds_one_per_3x3_conv_after_bn():
    torch.manual_seed(0)
    net = TinyResNet(blocks=3)
    x, _ = batch(32, image=True)
    stds = dg.response_stds(net, x, train=True)
    assert len(stds) == 1 + 2 * 3
    # In train mode BN outputs have unit variance per channel (gamma = 1, beta = 0).
    assert stds == pytest.approx([1.0] * 7, abs=0.02)
    with torch.no_grad():
        net.layer1[1].bn2.weight.fill_(0.25)
    assert dg.response_stds(net, x, train=True)[4] == pytest.approx(0.25, abs=0.01)
    assert no_hooks(net)
    assert net.training  # TinyResNet starts in train mode and stays there


def test_activation_stats_shrink_with_naive_init():
    torch.manual_seed(0)
    stats = dg.activation_stats(mlp(10, "tanh", "naive"), batch()[0])
    assert len(stats) == 10
    assert stats[-1]["std"] < 1e-6 * stats[0]["std"]


# --- with resnet_lab.models (written alongside; skipped until it exists) ---------------------


def models():
    try:
        from resnet_lab.models import build, residual_blocks
    except ImportError:
        pytest.skip("resnet_lab.models not available yet")
    return build, residual_blocks


def test_resnet20_diagnostics_shapes_and_zero_init():
    build, residual_blocks = models()
    torch.manual_seed(0)
    net = build("resnet20")
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    assert len(dg.response_stds(net, x)) == 19  # conv1 + 18 3x3 convs in 9 blocks
    assert len(dg.block_input_grad_norms(net, x, y)) == len(residual_blocks(net)) == 9
    assert len(dg.layer_grad_norms(net, x, y)) == 20
    for _, block in residual_blocks(net):
        nn.init.zeros_(block.bn2.weight)
    assert max(dg.residual_ratios(net, x, train=True)) < 1e-6
    assert no_hooks(net)


def test_toy_mlp_from_models_vanishes_with_sigmoid():
    models()
    from resnet_lab.models import DeepMLP

    torch.manual_seed(0)
    net = DeepMLP(
        depth=20, width=64, in_features=32, num_classes=10, activation="sigmoid", init="naive"
    )
    norms = dg.layer_grad_norms(net, *batch())
    assert len(norms) == 20 and dg.decay_rate(norms) < 0.5


def test_shortcut_path_identity_only_for_preactivation():
    from resnet_lab.models import build

    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    original = build("resnet20")
    before = {k: v.clone() for k, v in original.state_dict().items()}
    pre = build("cifar_preact_resnet", depth=20)
    p_orig, p_pre = dg.shortcut_path(original, x), dg.shortcut_path(pre, x)
    assert len(p_orig["deviation"]) == len(p_pre["deviation"]) == 7  # 9 blocks, 2 downsample
    assert min(p_orig["clipped"]) > 0.01 and min(p_orig["unrolled"]) > 0.05
    assert max(p_pre["deviation"]) < 1e-6 and max(p_pre["unrolled"]) < 1e-5
    assert max(p_pre["clipped"]) < 0.01  # only float rounding differs
    for k, v in original.state_dict().items():
        assert torch.equal(v, before[k]), k  # measured on a copy
