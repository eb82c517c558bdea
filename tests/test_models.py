"""resnet_lab.models: the papers' architectures, exact to their published numbers."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from resnet_lab.models import (
    BasicBlock,
    Bottleneck,
    CifarPreActResNet,
    CifarResNet,
    ConvStack,
    DeepMLP,
    DepthError,
    PadShortcut,
    PreActBasicBlock,
    PreActBottleneck,
    ResNet,
    build,
    list_models,
    register_model,
    residual_blocks,
    zero_init_last_bn,
)
from resnet_lab.models.imagenet import imagenet_resnet
from resnet_lab.summary import count_macs, count_parameters


def meta_build(name: str, **kwargs) -> nn.Module:
    """Build on the meta device: exact shapes and FLOPs, no memory, no compute."""
    with torch.device("meta"):
        return build(name, **kwargs)


# --- CIFAR nets (He et al. 2016, Sec. 4.2 and Table 6) ---------------------------------------

CIFAR_PARAMS = {
    20: 269_722,
    32: 464_154,
    44: 658_586,
    56: 853_018,
    110: 1_727_962,
    1202: 19_421_274,
}


@pytest.mark.parametrize("depth, params", CIFAR_PARAMS.items())
def test_cifar_resnet_parameters(depth: int, params: int) -> None:
    assert count_parameters(meta_build(f"resnet{depth}")) == params
    # A plain net keeps every layer and only loses the (parameter-free) option-A shortcuts.
    assert count_parameters(meta_build(f"plain{depth}")) == params


@pytest.mark.parametrize("depth, mmacs", [(20, 40.6), (56, 125.5), (110, 252.9)])
def test_cifar_resnet_macs(depth: int, mmacs: float) -> None:
    assert round(count_macs(meta_build(f"resnet{depth}"), (1, 3, 32, 32)) / 1e6, 1) == mmacs


def test_cifar_layout() -> None:
    model = build("resnet20")
    assert isinstance(model, CifarResNet)
    assert [name for name, _ in model.named_children()] == [
        "conv1",
        "bn1",
        "relu",
        "layer1",
        "layer2",
        "layer3",
        "avgpool",
        "fc",
    ]
    assert [m.conv1.out_channels for m in (model.layer1[0], model.layer2[0], model.layer3[0])] == [
        16,
        32,
        64,
    ]
    assert len(model.layer1) == len(model.layer2) == len(model.layer3) == 3
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_shortcut_options_parameters() -> None:
    a, b, c = (count_parameters(meta_build("resnet20", shortcut=s)) for s in "ABC")
    assert a == count_parameters(meta_build("plain20"))  # option A is parameter-free
    # B projects only where the shape changes: 16->32 and 32->64, 1x1 conv + BN each.
    assert b - a == (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)
    # C projects on all 9 shortcuts.
    conv_bn = [(16, 16)] * 3 + [(16, 32)] + [(32, 32)] * 2 + [(32, 64)] + [(64, 64)] * 2
    assert c - a == sum(i * o + 2 * o for i, o in conv_bn)
    downsamples = [
        block.downsample for _, block in residual_blocks(build("resnet20", shortcut="B"))
    ]
    assert sum(d is not None for d in downsamples) == 2


def test_option_a_shortcut_subsamples_and_zero_pads() -> None:
    pad = PadShortcut(16, 32, stride=2)
    x = torch.randn(2, 16, 8, 8)
    y = pad(x)
    assert list(pad.parameters()) == [] and y.shape == (2, 32, 4, 4)
    # Zeros on both sides of the identity channels, 8 before and 8 after (akamaster's layout).
    assert torch.equal(y[:, 8:24], x[:, :, ::2, ::2])
    assert torch.equal(y[:, :8], torch.zeros(2, 8, 4, 4))
    assert torch.equal(y[:, 24:], torch.zeros(2, 8, 4, 4))
    # An odd number of new channels puts the extra one after.
    z = PadShortcut(3, 8)(torch.ones(1, 3, 2, 2))
    assert z[0, :, 0, 0].tolist() == [0, 0, 1, 1, 1, 0, 0, 0]
    with pytest.raises(ValueError, match="option A"):
        PadShortcut(32, 16)


class _ReferenceBlock(nn.Module):
    """akamaster/pytorch_resnet_cifar10's BasicBlock, option A, written from its description."""

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad = stride != 1 or in_planes != planes
        self.planes = planes

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if not self.pad:
            return x
        p = self.planes // 4
        return nn.functional.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, p, p))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class _ReferenceCifarResNet(nn.Module):
    """akamaster's ResNet: ``conv1``, ``bn1``, ``layer1..3``, average pooling, ``linear``."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        widths = [(16, 16, 1), (16, 32, 2), (32, 64, 2)]
        for i, (cin, cout, stride) in enumerate(widths, 1):
            blocks = [_ReferenceBlock(cin, cout, stride)]
            blocks += [_ReferenceBlock(cout, cout, 1) for _ in range(n - 1)]
            setattr(self, f"layer{i}", nn.Sequential(*blocks))
        self.linear = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = nn.functional.avg_pool2d(out, out.size()[3])
        return self.linear(out.flatten(1))


@pytest.mark.parametrize("depth", [20, 32])
def test_option_a_matches_the_reference_cifar_resnet(depth: int) -> None:
    """Weights of akamaster/pytorch_resnet_cifar10 load into ours with identical outputs."""
    torch.manual_seed(depth)
    theirs = _ReferenceCifarResNet((depth - 2) // 6)
    for m in theirs.modules():
        if isinstance(m, nn.BatchNorm2d):  # non-trivial statistics, or a wrong pad can hide
            m.running_mean.normal_(0, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.5)
    ours = build(f"resnet{depth}")
    state = {k.replace("linear.", "fc."): v for k, v in theirs.state_dict().items()}
    ours.load_state_dict(state)  # strict: the same names and shapes, once linear is fc
    theirs.eval(), ours.eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)


def test_residual_blocks_in_depth_order() -> None:
    blocks = residual_blocks(build("resnet56"))
    assert len(blocks) == 27
    assert [name for name, _ in blocks[:2]] == ["layer1.0", "layer1.1"]
    assert blocks[9][0] == "layer2.0" and blocks[-1][0] == "layer3.8"
    assert len(residual_blocks(meta_build("preact_resnet164"))) == 54
    assert len(residual_blocks(meta_build("resnet50"))) == 16


def test_plain_net_has_no_skips() -> None:
    model = build("plain20")
    assert all(not b.use_shortcut and b.downsample is None for _, b in residual_blocks(model))
    assert all(b.use_shortcut for _, b in residual_blocks(build("resnet20")))


# --- Blocks ------------------------------------------------------------------------------------

BLOCKS = [
    (BasicBlock, 16, 32, 32),
    (Bottleneck, 64, 16, 64),
    (PreActBasicBlock, 16, 32, 32),
    (PreActBottleneck, 64, 16, 64),
]


@pytest.mark.parametrize("block_type, in_planes, planes, out_planes", BLOCKS)
@pytest.mark.parametrize("shortcut", ["A", "B", "C", "none"])
def test_block_forward_is_residual_plus_shortcut(
    block_type, in_planes: int, planes: int, out_planes: int, shortcut: str
) -> None:
    torch.manual_seed(0)
    block = block_type(in_planes, planes, stride=2, shortcut=shortcut).eval()
    x = torch.randn(2, in_planes, 9, 9)
    y = block(x)
    assert y.shape == (2, out_planes, 5, 5)
    assert block.use_shortcut == (shortcut != "none")
    total = block.residual(x) + block.shortcut(x)
    preact = block_type in (PreActBasicBlock, PreActBottleneck)
    torch.testing.assert_close(y, total if preact else torch.relu(total))
    if shortcut == "none":
        assert torch.equal(block.shortcut(x), torch.zeros_like(y))
        assert block.downsample is None


def test_preact_projection_takes_the_preactivated_input() -> None:
    block = PreActBasicBlock(16, 32, stride=2, shortcut="B").eval()
    x = torch.randn(1, 16, 8, 8)
    projection = block.downsample
    assert isinstance(projection, nn.Sequential) and len(projection) == 1  # no BN of its own
    torch.testing.assert_close(block.shortcut(x), projection(torch.relu(block.bn1(x))))


@pytest.mark.parametrize("block_type", [PreActBasicBlock, PreActBottleneck])
def test_zero_init_preact_block_is_exactly_identity(block_type) -> None:
    block = block_type(64, 16 if block_type is PreActBottleneck else 64)
    block.zero_init_last_bn()
    x = torch.randn(4, 64, 8, 8)
    assert torch.equal(block(x), x)  # training mode too: the branch is exactly zero


@pytest.mark.parametrize("block_type", [BasicBlock, Bottleneck])
def test_zero_init_original_block_is_relu(block_type) -> None:
    block = block_type(64, 16 if block_type is Bottleneck else 64)
    zero_init_last_bn(block)
    x = torch.randn(4, 64, 8, 8)
    assert torch.equal(block(x), torch.relu(x))


def test_zero_init_residual_kwarg_zeroes_every_last_bn() -> None:
    for name in ("resnet20", "preact_resnet110", "resnet18"):
        blocks = residual_blocks(build(name, zero_init_residual=True))
        assert all(torch.count_nonzero(b.last_bn.weight) == 0 for _, b in blocks)
    assert all(b.last_bn.weight.min() == 1 for _, b in residual_blocks(build("resnet20")))


def test_blocks_have_torchvision_names() -> None:
    keys = set(Bottleneck(64, 64, stride=2).state_dict())
    assert {"conv1.weight", "bn3.running_var", "downsample.0.weight", "downsample.1.bias"} <= keys


# --- Pre-activation nets (He et al. 2016b) -----------------------------------------------------


def test_preact_parameters() -> None:
    p164 = count_parameters(meta_build("preact_resnet164"))
    p1001 = count_parameters(meta_build("preact_resnet1001"))
    assert round(p164 / 1e6, 2) == 1.70
    assert round(p1001 / 1e6, 1) == 10.3
    assert isinstance(meta_build("preact_resnet164").layer1[0], PreActBottleneck)
    assert isinstance(meta_build("preact_resnet110").layer1[0], PreActBasicBlock)
    model = build("preact_resnet110")
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_preact_generic_depths() -> None:
    assert isinstance(meta_build("preact_resnet56").layer1[0], PreActBasicBlock)
    model = meta_build("cifar_preact_resnet", depth=29, bottleneck=True)
    assert isinstance(model, CifarPreActResNet) and len(model.layer1) == 3
    assert model.layer3[-1].conv3.out_channels == 256


# --- ImageNet nets (He et al. 2016, Table 1) ---------------------------------------------------

IMAGENET = {
    # depth: (parameters, GMACs v1.5 at 224, GMACs v1 or None for basic-block nets)
    18: (11_689_512, 1.814, None),
    34: (21_797_672, 3.664, None),
    50: (25_557_032, 4.089, 3.86),
    101: (44_549_160, 7.801, 7.57),
    152: (60_192_808, 11.514, 11.28),
}


@pytest.mark.parametrize("depth", IMAGENET)
def test_imagenet_parameters_and_macs(depth: int) -> None:
    params, gmacs, gmacs_v1 = IMAGENET[depth]
    model = meta_build(f"resnet{depth}")
    assert isinstance(model, ResNet)
    assert count_parameters(model) == params
    assert round(count_macs(model, (1, 3, 224, 224)) / 1e9, 3) == gmacs
    if gmacs_v1 is None:
        with pytest.raises(ValueError, match="bottleneck"):
            meta_build(f"resnet{depth}", stride_in_1x1=True)
    else:
        v1 = meta_build(f"resnet{depth}", stride_in_1x1=True)
        assert count_parameters(v1) == params  # the stride moves, no weight changes
        assert round(count_macs(v1, (1, 3, 224, 224)) / 1e9, 2) == gmacs_v1


@pytest.mark.parametrize("depth", [18, 34, 50, 101, pytest.param(152, marks=pytest.mark.slow)])
def test_imagenet_matches_torchvision(depth: int) -> None:
    torch.manual_seed(depth)
    reference = getattr(torchvision.models, f"resnet{depth}")().eval()
    # Non-trivial BN statistics, so a wrong key mapping cannot go unnoticed.
    for m in reference.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
    model = build(f"resnet{depth}").eval()
    assert list(model.state_dict()) == list(reference.state_dict())
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), atol=1e-5, rtol=1e-4)


def test_imagenet_options() -> None:
    assert meta_build("resnet50", num_classes=100).fc.out_features == 100
    v1 = meta_build("resnet50", stride_in_1x1=True).layer2[0]
    v15 = meta_build("resnet50").layer2[0]
    assert (v1.conv1.stride, v1.conv2.stride) == ((2, 2), (1, 1))
    assert (v15.conv1.stride, v15.conv2.stride) == ((1, 1), (2, 2))
    assert count_parameters(meta_build("plain34")) == IMAGENET[34][0] - count_parameters(
        nn.ModuleList(b.downsample for _, b in residual_blocks(meta_build("resnet34")))
    )


# --- Deep nets run -----------------------------------------------------------------------------


@pytest.mark.slow
def test_resnet1202_forward_backward_on_cpu() -> None:
    torch.manual_seed(0)
    model = build("resnet1202")
    loss = nn.functional.cross_entropy(model(torch.randn(2, 3, 32, 32)), torch.tensor([1, 2]))
    loss.backward()
    assert torch.isfinite(loss)
    assert model.conv1.weight.grad is not None and torch.isfinite(model.conv1.weight.grad).all()


# --- Registry ----------------------------------------------------------------------------------


def test_list_models_has_every_paper_name() -> None:
    names = list_models()
    expected = [f"resnet{d}" for d in (20, 32, 44, 56, 110, 1202, 18, 34, 50, 101, 152)]
    expected += [f"plain{d}" for d in (20, 32, 44, 56, 110, 1202)]
    expected += ["preact_resnet110", "preact_resnet164", "preact_resnet1001"]
    expected += ["cifar_resnet", "cifar_plain", "cifar_preact_resnet", "mlp", "conv_stack"]
    assert set(expected) <= set(names)
    assert names.index("resnet20") < names.index("resnet110")  # natural order


def test_build_reads_depth_from_name() -> None:
    assert meta_build("resnet38").depth == 38
    assert len(meta_build("plain26").layer1) == 4
    assert isinstance(meta_build("resnet50"), ResNet)  # ImageNet wins the short name
    assert isinstance(meta_build("cifar_resnet", depth=50), CifarResNet)
    assert meta_build("ResNet56").name == "resnet56"


def test_bad_depth_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"6n\+2") as error:
        build("resnet21")
    message = str(error.value)
    assert "20, 26, 32" in message and "20, 32, 44, 56, 110, 1202" in message
    assert "resnet18/34/50/101/152" in message  # maybe an ImageNet net was meant
    with pytest.raises(DepthError, match=r"9n\+2.*164, 1001"):
        build("cifar_preact_resnet", depth=165, bottleneck=True)
    with pytest.raises(ValueError, match="18, 34, 50, 101, 152"):
        imagenet_resnet(19)


def test_bad_name_suggests_close_matches() -> None:
    with pytest.raises(ValueError, match="Did you mean 'resnet56'") as error:
        build("resnt56")
    assert "preact_resnet164" in str(error.value)  # the valid names are listed
    with pytest.raises(ValueError, match="shortcut must be one of"):
        build("resnet20", shortcut="D")


def test_register_model_rejects_duplicates() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_model(lambda: nn.Identity(), name="resnet20")


# --- Toy nets for the vanishing-gradient chapter -----------------------------------------------


def test_deep_mlp_layers_and_knobs() -> None:
    model = DeepMLP(depth=10, width=32, in_features=48, num_classes=5, norm="batchnorm")
    assert len(model.layers) == 10 and all(isinstance(m, nn.Linear) for m in model.layers)
    assert model.layers[0].in_features == 48 and model.layers[-1].out_features == 5
    assert sum(isinstance(m, nn.BatchNorm1d) for m in model.modules()) == 9
    assert model(torch.randn(4, 3, 4, 4)).shape == (4, 5)
    assert isinstance(build("mlp", activation="sigmoid").act, nn.Sigmoid)


def test_conv_stack_layers() -> None:
    model = build("conv_stack", depth=6, width=8, activation="tanh", skip=True)
    assert isinstance(model, ConvStack) and len(model.layers) == 6
    assert all(isinstance(m, nn.Conv2d) for m in model.layers[:-1])
    assert isinstance(model.layers[-1], nn.Linear)
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 10)


@pytest.mark.parametrize(
    "init, std", [("naive", 0.01), ("xavier", (2 / 512) ** 0.5), ("he", (2 / 256) ** 0.5)]
)
def test_toy_initialisations(init: str, std: float) -> None:
    torch.manual_seed(0)
    layer = DeepMLP(depth=3, width=256, in_features=256, init=init).layers[1]
    assert abs(layer.weight.std().item() / std - 1) < 0.02
    assert torch.count_nonzero(layer.bias) == 0


def _first_to_last_gradient_ratio(model: nn.Module) -> float:
    torch.manual_seed(1)
    x, y = torch.randn(64, 3, 8, 8), torch.randint(0, 10, (64,))
    nn.functional.cross_entropy(model(x), y).backward()
    return (model.layers[0].weight.grad.norm() / model.layers[-1].weight.grad.norm()).item()


def test_toy_gradients_vanish_and_skips_fix_them() -> None:
    torch.manual_seed(0)
    naive = DeepMLP(depth=20, width=64, in_features=192, activation="sigmoid", init="naive")
    torch.manual_seed(0)
    skips = DeepMLP(depth=20, width=64, in_features=192, init="he", norm="batchnorm", skip=True)
    assert _first_to_last_gradient_ratio(naive) < 1e-6
    assert _first_to_last_gradient_ratio(skips) > 1e-2


def test_toy_bad_knobs() -> None:
    with pytest.raises(ValueError, match="activation must be one of"):
        DeepMLP(activation="gelu")
    with pytest.raises(ValueError, match="init must be one of"):
        ConvStack(init="orthogonal")
    with pytest.raises(ValueError, match="at least 2"):
        DeepMLP(depth=1)


def test_zero_init_name_builds_the_same_net_with_identity_blocks():
    import torch

    from resnet_lab.models import build

    base, zi = build("resnet20"), build("ResNet20-ZI")
    assert zi.name == "resnet20-zi"
    assert [k for k in base.state_dict()] == [k for k in zi.state_dict()]
    last_bn = [m.bn2.weight for layer in (zi.layer1, zi.layer2, zi.layer3) for m in layer]
    assert len(last_bn) == 9 and all(float(w.detach().abs().sum()) == 0 for w in last_bn)
    assert float(base.layer1[0].bn2.weight.detach().abs().sum()) > 0
    with pytest.raises(ValueError, match="plain net has no shortcut"):
        build("plain20-zi")
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32)
    assert zi.eval()(x).shape == (2, 10)


def test_weight_layers_count_the_main_path_as_the_papers_depth():
    from resnet_lab.models import weight_layers

    projected = build("resnet56", shortcut="B")  # two 1x1 projection convs on shortcuts
    assert len(weight_layers(projected)) == len(weight_layers(build("plain56"))) == 56
    assert len(weight_layers(projected, shortcuts=True)) == 58
