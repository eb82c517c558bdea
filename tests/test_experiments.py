"""The identity-fitting experiment of chapter 3: stacks, inputs and the zero-gamma identity."""

from __future__ import annotations

import pytest
import torch

from resnet_lab import experiments as ex
from resnet_lab.models import build, residual_blocks


def test_plain_and_residual_stacks_share_weights():
    plain = ex.identity_stack(3, channels=8, residual=False, seed=1)
    res = ex.identity_stack(3, channels=8, residual=True, seed=1)
    assert [b.use_shortcut for b in plain] == [False] * 3
    assert [b.use_shortcut for b in res] == [True] * 3
    for p, r in zip(plain.parameters(), res.parameters(), strict=True):
        assert torch.equal(p, r)


def test_identity_stack_does_not_touch_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    ex.identity_stack(2, channels=4, seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_zero_init_stack_is_exactly_the_identity():
    x = ex.identity_inputs(n=4, channels=8, size=6, seed=0)
    assert (x >= 0).all() and x.shape == (4, 8, 6, 6)
    stack = ex.identity_stack(4, channels=8, residual=True, zero_init=True)
    with torch.no_grad():
        assert torch.equal(stack.train()(x), x)
    losses = ex.fit_identity(stack, x, steps=3)
    assert losses == [0.0] * 4


def test_fit_identity_learns_and_returns_initial_error_first():
    x = ex.identity_inputs(n=8, channels=4, size=4, seed=0)
    stack = ex.identity_stack(2, channels=4, residual=True, seed=0)
    with torch.no_grad():
        initial = torch.nn.functional.mse_loss(stack.train()(x), x).item()
    losses = ex.fit_identity(stack, x, steps=30, lr=0.01)
    assert len(losses) == 31
    assert losses[0] == pytest.approx(initial)
    assert losses[-1] < 0.5 * losses[0]


def test_set_residual_scale_sets_every_last_bn():
    model = ex.set_residual_scale(build("resnet20"), 0.25)
    scales = [b.last_bn.weight for _, b in residual_blocks(model)]
    assert len(scales) == 9
    assert all(torch.all(s == 0.25) for s in scales)


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError, match="blocks"):
        ex.identity_stack(0)
    with pytest.raises(ValueError, match="steps"):
        ex.fit_identity(ex.identity_stack(1, channels=2), torch.zeros(1, 2, 2, 2), steps=0)
    with pytest.raises(ValueError, match="residual blocks"):
        ex.set_residual_scale(torch.nn.Linear(2, 2), 0.0)
