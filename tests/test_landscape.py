"""Loss-landscape slices (Li et al. 2018): filter normalisation, base loss, weights restored."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from resnet_lab.analysis import landscape as ls


def _net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Conv2d(6, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
    )
    net.train()
    with torch.no_grad():  # give BN non-trivial running statistics
        net(torch.randn(32, 3, 8, 8) * 2 + 1)
    return net


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(40, 3, 8, 8, generator=gen), torch.randint(0, 10, (40,), generator=gen)


def test_filter_normalised_direction_matches_filter_norms() -> None:
    net = _net()
    d = ls.random_direction(net, seed=3)
    for name, p in net.named_parameters():
        if p.dim() > 1:
            assert torch.allclose(ls.filter_norms(d[name]), ls.filter_norms(p), rtol=1e-4)
        else:
            assert torch.count_nonzero(d[name]) == 0  # biases and BN ignored
    keep = ls.random_direction(net, ignore_bn=False, seed=3)
    assert torch.equal(keep["1.weight"], net[1].weight)
    raw = ls.random_direction(net, filter_normalize=False, seed=3)
    assert torch.count_nonzero(raw["0.bias"]) == 6
    assert torch.equal(ls.random_direction(net, seed=3)["3.weight"], d["3.weight"])
    assert not torch.equal(ls.random_direction(net, seed=4)["3.weight"], d["3.weight"])


def test_slice_at_zero_is_the_base_loss_and_weights_are_restored() -> None:
    net = _net()
    x, y = _data()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net.eval()
    with torch.no_grad():
        out = net(x)
    base_loss = F.cross_entropy(out, y).item()
    base_error = (out.argmax(1) != y).float().mean().item()
    net.train()
    d = ls.random_direction(net, seed=0)
    s = ls.loss_slice_1d(net, d, [-1.0, 0.0, 0.5], (x, y), batch_size=16)
    assert s.alphas == [-1.0, 0.0, 0.5]
    assert s.loss[1] == pytest.approx(base_loss, rel=1e-5)
    assert s.error[1] == pytest.approx(base_error)
    assert s.loss[0] != pytest.approx(base_loss)
    assert net.training  # mode restored
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k  # weights and BN statistics untouched


def test_slice_point_equals_manually_moved_weights() -> None:
    net = _net().eval()
    x, y = _data()
    d = ls.random_direction(net, seed=5)
    s = ls.loss_slice_1d(net, d, [0.3], [(x[:20], y[:20]), (x[20:], y[20:])])
    moved = _net().eval()
    with torch.no_grad():
        for name, p in moved.named_parameters():
            p.add_(d[name], alpha=0.3)
        expected = F.cross_entropy(moved(x), y).item()
    assert s.loss[0] == pytest.approx(expected, rel=1e-5)


def test_surface_grid_layout_and_axes() -> None:
    net = _net()
    x, y = _data()
    d, e = ls.random_direction(net, seed=0), ls.random_direction(net, seed=1)
    surf = ls.loss_surface_2d(net, (d, e), [-0.5, 0.0, 0.5], [0.0, 0.25], (x, y))
    assert len(surf.loss) == 3 and all(len(row) == 2 for row in surf.loss)
    along_d = ls.loss_slice_1d(net, d, [-0.5, 0.5], (x, y))
    assert surf.loss[0][0] == pytest.approx(along_d.loss[0], rel=1e-5)
    assert surf.loss[2][0] == pytest.approx(along_d.loss[1], rel=1e-5)
    along_e = ls.loss_slice_1d(net, e, [0.25], (x, y))
    assert surf.loss[1][1] == pytest.approx(along_e.loss[0], rel=1e-5)


def test_direction_from_another_model_is_rejected() -> None:
    net = _net()
    with pytest.raises(ValueError, match="random_direction"):
        ls.loss_slice_1d(net, {"nope": torch.zeros(1)}, [0.0], _data())


def test_roughness() -> None:
    assert ls.roughness([4.0, 1.0, 0.0, 1.0, 4.0]) == 0.0
    assert ls.roughness([0.0, 1.0, 0.0, 1.0, 0.0]) == pytest.approx(2 / 3)
    bowl = [[a * a + b * b for b in range(-2, 3)] for a in range(-2, 3)]
    assert ls.roughness(bowl) == 0.0
    saddle = [[a * a - b * b for b in range(-2, 3)] for a in range(-2, 3)]
    assert ls.roughness(saddle) == 1.0
    with pytest.raises(ValueError):
        ls.roughness([1.0, 2.0])
