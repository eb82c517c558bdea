"""The identity-fitting experiment of chapter 3: stacks, inputs and the zero-gamma identity."""

from __future__ import annotations

import pytest
import torch

from resnet_lab.analysis import experiments as ex
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


class _Claim:
    def __init__(self, in_order, se, holds):
        self.in_order, self.se, self.holds = in_order, se, holds


@pytest.mark.parametrize(
    ("in_order", "se", "holds", "start"),
    [
        (True, 1.0, True, "holds"),
        (True, None, False, "is in order, on one seed"),
        (True, 5.0, False, "is in order, but within"),
        (False, None, False, "does not hold"),
        (False, 1.0, False, "does not hold"),
    ],
)
def test_claim_verdict_words(in_order, se, holds, start):
    assert ex.claim_verdict(_Claim(in_order, se, holds)).startswith(start)


def test_claim_verdict_of_several_claims_is_the_weakest():
    held, one_seed, wrong = _Claim(True, 1.0, True), _Claim(True, None, False), _Claim(False, 1, 0)
    assert ex.claim_verdict([held, held]).startswith("holds (every difference")
    assert ex.claim_verdict([held, one_seed]).startswith("is in order, on one seed")
    assert ex.claim_verdict([held, one_seed, wrong]) == "does not hold"


def test_claim_verdict_of_a_mixed_ordering_says_which_part_holds():
    from resnet_lab.results import laptop

    def net(depth, train):
        return laptop.SeedSummary(
            "residual", depth, f"resnet{depth}-zi", (0, 1, 2), train, train, ()
        )

    study = {
        ("residual", 20): net(20, (32.0, 33.0, 32.5)),
        ("residual", 32): net(32, (29.0, 29.5, 29.2)),
        ("residual", 44): net(44, (30.5, 31.0, 30.8)),
    }
    verdict = ex.claim_verdict(laptop.orderings(study))
    assert verdict.startswith("does not hold as a whole: ")
    assert "ResNet-32 trains better than ResNet-20: holds (+3.3 points" in verdict
    assert "ResNet-44 trains better than ResNet-32: reversed (-1.5 points" in verdict
    # Against the shallowest, both deeper nets train better.
    against = laptop.against_shallowest(study)
    assert [c.text for c in against] == [
        "ResNet-32 trains better than ResNet-20",
        "ResNet-44 trains better than ResNet-20",
    ]
    assert all(c.holds for c in against)
    # In order throughout, but one difference within its error bar: the verdict says which.
    study[("residual", 44)] = net(44, (30.0, 34.0, 31.0))
    verdict = ex.claim_verdict(laptop.against_shallowest(study))
    assert verdict.startswith("is in order, but not every difference exceeds its standard error: ")
    assert "ResNet-32 trains better than ResNet-20: holds" in verdict
    assert "ResNet-44 trains better than ResNet-20: in order, within its standard error" in verdict
    with pytest.raises(ValueError):
        ex.claim_verdict([])


def test_claim_verdict_reads_laptop_claims():
    from resnet_lab.results import laptop

    one = laptop.SeedSummary("plain", 20, "plain20", (0,), (40.0,), (45.0,), ())
    deep = laptop.SeedSummary("plain", 56, "plain56", (0,), (70.0,), (71.0,), ())
    claim = laptop.orderings({("plain", 20): one, ("plain", 56): deep})[0]
    assert ex.claim_verdict(claim) == "is in order, on one seed (no error bar)"


def test_first_epoch_below():
    steps = [
        {"epoch": 1.0, "train_error": 0.91},
        {"epoch": 2.0, "train_error": None},
        {"epoch": 3.0, "train_error": 0.85},
    ]
    assert ex.first_epoch_below(steps, 0.9) == 3.0
    assert ex.first_epoch_below(steps, 0.95) == 1.0
    assert ex.first_epoch_below(steps, 0.5) is None


def test_near_identity_target_and_fitting_it():
    x = ex.identity_inputs(n=4, channels=4, size=5, seed=0)
    assert torch.equal(ex.near_identity_target(x, 0.0), x)
    t1, t2 = ex.near_identity_target(x, 0.5, seed=1), ex.near_identity_target(x, 0.5, seed=1)
    assert torch.equal(t1, t2) and not torch.equal(t1, x)
    # a zero-gamma residual stack is the identity: its error is that of the perturbation
    stack = ex.identity_stack(2, channels=4, residual=True, zero_init=True, seed=0)
    losses = ex.fit_identity(stack, x, steps=3, lr=0.01, target=t1)
    assert losses[0] == pytest.approx(torch.mean((t1 - x) ** 2).item())
    with pytest.raises(ValueError):
        ex.fit_identity(stack, x, steps=1, target=t1[:2])
