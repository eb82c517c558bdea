"""Block deletion (Veit et al. 2016): what a deleted block computes, and that nothing leaks."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from resnet_lab.analysis import lesion
from resnet_lab.models.blocks import BasicBlock, PreActBasicBlock, init_weights


class TinyNet(nn.Module):
    """Stem, two blocks at width 4, one downsampling block to width 8, classifier."""

    def __init__(self, shortcut: str = "A", block: type[nn.Module] = BasicBlock) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.layer1 = nn.Sequential(block(4, 4, 1, shortcut), block(4, 4, 1, shortcut))
        self.layer2 = nn.Sequential(block(4, 8, 2, shortcut))
        self.fc = nn.Linear(8, 10)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        return self.fc(x.mean((2, 3)))


def _net(shortcut: str = "A", block: type[nn.Module] = BasicBlock) -> nn.Module:
    torch.manual_seed(0)
    return TinyNet(shortcut, block).eval()


def _data(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, 8, 8, generator=gen), torch.randint(0, 10, (n,), generator=gen)


def test_deleted_identity_block_is_identity() -> None:
    net = _net()
    x = torch.relu(torch.randn(2, 4, 8, 8))  # block inputs follow a ReLU
    block = net.layer1[0]
    with lesion.delete_blocks(net, 0):
        assert torch.equal(block(x), x)
    assert not torch.equal(block(x), x)  # restored


def test_deleted_downsampling_block_keeps_its_shortcut() -> None:
    net = _net("B")
    x = torch.relu(torch.randn(2, 4, 8, 8))
    block = net.layer2[0]
    with lesion.delete_blocks(net, 2), torch.no_grad():
        out = block(x)
        assert torch.allclose(out, F.relu(block.shortcut(x)))
    assert out.shape == (2, 8, 4, 4)


def test_plain_blocks_become_identity_or_option_a() -> None:
    net = _net("none")
    x = torch.relu(torch.randn(2, 4, 8, 8))
    with lesion.delete_blocks(net, [0, 2]):
        assert torch.equal(net.layer1[0](x), x)
        out = net.layer2[0](x)
    assert out.shape == (2, 8, 4, 4)
    assert torch.equal(out[:, 2:6], x[:, :, ::2, ::2])  # option A pads both sides
    assert torch.count_nonzero(out[:, :2]) == torch.count_nonzero(out[:, 6:]) == 0


def test_preact_deletion_has_no_final_relu() -> None:
    net = _net("B", PreActBasicBlock)
    x = torch.randn(2, 4, 8, 8)  # may be negative: no ReLU before a pre-activation block
    with lesion.delete_blocks(net, 0):
        assert torch.equal(net.layer1[0](x), x)


def test_delete_blocks_restores_on_error() -> None:
    net = _net()
    x, _ = _data(4)
    before = net(x)
    with pytest.raises(RuntimeError), lesion.delete_blocks(net, [0, 1, 2]):
        raise RuntimeError("boom")
    assert torch.equal(net(x), before)
    assert all("forward" not in vars(b) for b in (net.layer1[0], net.layer1[1], net.layer2[0]))


def test_bad_index_and_model_raise_value_error() -> None:
    with pytest.raises(ValueError, match="out of range"), lesion.delete_blocks(_net(), 3):
        pass
    with (
        pytest.raises(ValueError, match="resnet_lab.models"),
        lesion.delete_blocks(nn.Linear(2, 2), 0),
    ):
        pass


def test_block_deletion_errors_match_manual_deletion() -> None:
    net = _net()
    x, y = _data()
    errors = lesion.block_deletion_errors(net, x, y, batch_size=16)
    assert len(errors) == 3
    for i, err in enumerate(errors):
        with lesion.delete_blocks(net, i), torch.no_grad():
            manual = (net(x).argmax(1) != y).float().mean().item()
        assert err == pytest.approx(manual)
    skipped = lesion.block_deletion_errors(net, x, y, skip_downsampling=True)
    assert math.isnan(skipped[2]) and skipped[:2] == pytest.approx(errors[:2])


def test_error_rate_normalises_uint8_and_restores_mode() -> None:
    net = _net().train()
    gen = torch.Generator().manual_seed(2)
    images = torch.randint(0, 256, (32, 3, 8, 8), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, 10, (32,), generator=gen)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    err = lesion.error_rate(net, images, labels, mean=mean, std=std)
    assert net.training
    net.eval()
    x = (images.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(
        1, 3, 1, 1
    )
    with torch.no_grad():
        assert err == pytest.approx((net(x).argmax(1) != labels).float().mean().item())
    with pytest.raises(ValueError, match="mean="):
        lesion.error_rate(net, images, labels)


def test_random_deletion_errors_shape_and_zero_deletions() -> None:
    net = _net()
    x, y = _data()
    out = lesion.random_deletion_errors(net, x, y, counts=[0, 1, 2], trials=3)
    assert sorted(out) == [0, 1, 2] and all(len(v) == 3 for v in out.values())
    assert out[0] == [lesion.error_rate(net, x, y)] * 3
    with pytest.raises(ValueError, match="keep their shape"):
        lesion.random_deletion_errors(net, x, y, counts=[3])
