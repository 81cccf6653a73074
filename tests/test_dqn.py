"""Tests of the DQN tensor functions (textrl.dqn.policy, .losses, .core, .mlp) against
hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from textrl.dqn.core import polyak_update
from textrl.dqn.losses import check_finite, large_margin_loss, nstep_targets, td_loss
from textrl.dqn.mlp import MLPQNetwork
from textrl.dqn.policy import (
    epsilon_greedy,
    epsilon_greedy_one,
    greedy_actions,
    linear_schedule,
    masked_q,
)


def test_masked_argmax_and_max_never_pick_illegal_actions() -> None:
    q = torch.tensor([[5.0, 1.0, 3.0, -2.0], [9.0, 8.0, 7.0, 6.0], [-1e30, 2.0, -1e30, 0.0]])
    mask = torch.tensor(
        [
            [0, 1, 1, 1],
            [0, 0, 0, 1],  # all but one masked: the worst action must be chosen
            [1, 0, 1, 0],
        ],
        dtype=torch.int8,
    )
    assert greedy_actions(q, mask).tolist() == [2, 3, 0]
    masked = masked_q(q, mask)
    assert masked.max(-1).values.tolist() == [3.0, 6.0, pytest.approx(-1e30)]
    assert masked[0, 0] == torch.finfo(torch.float32).min
    # bool masks and no mask
    assert greedy_actions(q, mask.bool()).tolist() == [2, 3, 0]
    assert greedy_actions(q, None).tolist() == [0, 0, 1]


def test_greedy_refuses_a_row_without_legal_action() -> None:
    with pytest.raises(ValueError, match="no legal action"):
        greedy_actions(torch.zeros(2, 3), torch.tensor([[1, 0, 0], [0, 0, 0]]))


def test_epsilon_greedy_explores_uniformly_inside_the_mask() -> None:
    gen = torch.Generator().manual_seed(0)
    q = torch.zeros(20_000, 6)
    q[:, 0] = 10.0  # the greedy action is illegal in the mask below
    mask = torch.tensor([0, 1, 0, 1, 1, 0], dtype=torch.int8).expand(20_000, 6)
    actions = epsilon_greedy(q, mask, 1.0, gen)
    counts = torch.bincount(actions, minlength=6)
    assert counts[[0, 2, 5]].sum() == 0
    assert all(abs(c / 20_000 - 1 / 3) < 0.02 for c in counts[[1, 3, 4]].tolist())
    # eps = 0 is greedy; eps = 0.5 mixes in about half random (legal) actions
    assert (epsilon_greedy(q, mask, 0.0, gen) == 1).all()
    mixed = epsilon_greedy(q, mask, 0.5, gen)
    assert set(mixed.unique().tolist()) <= {1, 3, 4}
    assert abs((mixed != 1).float().mean().item() - 0.5 * 2 / 3) < 0.02


def test_single_epsilon_greedy_skips_the_network_when_it_explores() -> None:
    gen = torch.Generator().manual_seed(0)
    mask = torch.tensor([0, 1, 0, 1, 1, 0], dtype=torch.int8)
    calls = []

    def q_of() -> torch.Tensor:
        calls.append(1)
        return torch.tensor([[10.0, 0.0, 0.0, 3.0, 0.0, 0.0]])  # greedy 0 is illegal: 3

    explored = [epsilon_greedy_one(q_of, 6, mask, 1.0, gen) for _ in range(3000)]
    assert not calls  # never computed for exploratory steps
    counts = torch.bincount(torch.tensor(explored), minlength=6)
    assert counts[[0, 2, 5]].sum() == 0 and all(
        abs(c / 3000 - 1 / 3) < 0.04 for c in counts[[1, 3, 4]]
    )
    assert epsilon_greedy_one(q_of, 6, mask, 0.0, gen) == 3 and len(calls) == 1
    mixed = [epsilon_greedy_one(q_of, 6, None, 0.5, gen) for _ in range(4000)]
    assert abs(len(calls) - 1 - 2000) < 150  # the network ran for the greedy half only
    assert abs(sum(a != 0 for a in mixed) / 4000 - 0.5 * 5 / 6) < 0.03
    with pytest.raises(ValueError, match="no legal action"):
        epsilon_greedy_one(q_of, 6, torch.zeros(6, dtype=torch.int8), 0.5, gen)


def test_double_dqn_targets_against_hand_computed_values() -> None:
    q_online = torch.tensor([[1.0, 3.0, 2.0], [0.5, 0.1, 4.0]])
    q_target = torch.tensor([[10.0, 20.0, 30.0], [7.0, 8.0, 9.0]])
    returns = torch.tensor([1.0, 2.0])
    discounts = torch.tensor([0.9, 0.81])
    # double: argmax online = [1, 2] -> target values [20, 9]
    double = nstep_targets(q_online, q_target, None, returns, discounts, double=True)
    assert double.tolist() == pytest.approx([1.0 + 0.9 * 20.0, 2.0 + 0.81 * 9.0])
    # plain max of the target: [30, 9]
    single = nstep_targets(None, q_target, None, returns, discounts, double=False)
    assert single.tolist() == pytest.approx([1.0 + 0.9 * 30.0, 2.0 + 0.81 * 9.0])
    # masks apply to both: row 0 may only take actions 0 and 2, row 1 only 0 and 1
    mask = torch.tensor([[1, 0, 1], [1, 1, 0]], dtype=torch.int8)
    double_m = nstep_targets(q_online, q_target, mask, returns, discounts, double=True)
    assert double_m.tolist() == pytest.approx([1.0 + 0.9 * 30.0, 2.0 + 0.81 * 7.0])
    single_m = nstep_targets(None, q_target, mask, returns, discounts, double=False)
    assert single_m.tolist() == pytest.approx([1.0 + 0.9 * 30.0, 2.0 + 0.81 * 8.0])


def test_terminal_drops_the_bootstrap_and_truncation_keeps_it() -> None:
    gamma = 0.99
    q_next = torch.tensor([[5.0, 7.0], [5.0, 7.0]])
    returns = torch.tensor([1.0, 1.0])
    terminated = torch.tensor([1.0, 0.0])  # row 1: truncated by a time limit
    discounts = gamma * (1 - terminated)
    targets = nstep_targets(q_next, q_next, None, returns, discounts)
    assert targets.tolist() == pytest.approx([1.0, 1.0 + gamma * 7.0])
    # an all-masked terminal next state (finfo.min) still gives a finite target
    mask = torch.tensor([[0, 0], [1, 1]])
    targets = nstep_targets(q_next, q_next, mask, returns, discounts)
    assert torch.isfinite(targets).all() and targets[0] == 1.0


def test_targets_carry_no_gradient() -> None:
    q = torch.tensor([[1.0, 2.0]], requires_grad=True)
    out = nstep_targets(q * 2, q * 3, None, torch.zeros(1), torch.ones(1))
    assert not out.requires_grad


def test_td_loss_huber_mse_and_weights() -> None:
    q_sa = torch.tensor([0.0, 0.0, 0.0], requires_grad=True)
    targets = torch.tensor([0.5, 2.0, -3.0])
    huber, td = td_loss(q_sa, targets, huber=True)
    # Huber(delta=1): 0.5 * 0.5^2, 2 - 0.5, 3 - 0.5
    assert huber.item() == pytest.approx((0.125 + 1.5 + 2.5) / 3)
    assert td.tolist() == [0.5, 2.0, -3.0] and not td.requires_grad
    mse, _ = td_loss(q_sa, targets, huber=False)
    assert mse.item() == pytest.approx((0.25 + 4.0 + 9.0) / 3)
    weighted, _ = td_loss(q_sa, targets, torch.tensor([1.0, 0.0, 2.0]), huber=False)
    assert weighted.item() == pytest.approx((0.25 + 0.0 + 18.0) / 3)
    weighted.backward()
    assert q_sa.grad is not None and q_sa.grad[1] == 0.0


def test_large_margin_loss_against_hand_computed_values() -> None:
    q = torch.tensor([[1.0, 2.0, 0.5], [3.0, 1.0, 2.9], [0.0, 5.0, 1.0]])
    expert = torch.tensor([1, 0, 0])
    # row 0: max(1+.8, 2+0, .5+.8) - 2 = 0; row 1: max(3, 1.8, 3.7) - 3 = 0.7
    # row 2: max(0, 5.8, 1.8) - 0 = 5.8
    loss = large_margin_loss(q, expert, None, margin=0.8)
    assert loss.item() == pytest.approx((0.0 + 0.7 + 5.8) / 3)
    # with a mask, row 1's action 2 and row 2's action 1 are illegal
    mask = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 0, 1]])
    masked = large_margin_loss(q, expert, mask, margin=0.8)
    assert masked.item() == pytest.approx((0.0 + 0.0 + 1.8) / 3)
    weights = torch.tensor([1.0, 1.0, 0.0])
    assert large_margin_loss(q, expert, None, 0.8, weights).item() == pytest.approx(0.7 / 3)


def test_polyak_update_and_hard_copy() -> None:
    torch.manual_seed(0)
    online, target = MLPQNetwork(3, 2, "4"), MLPQNetwork(3, 2, "4")
    before = [p.clone() for p in target.parameters()]
    polyak_update(target, online, 0.1)
    for t, b, o in zip(target.parameters(), before, online.parameters(), strict=True):
        assert torch.allclose(t, 0.9 * b + 0.1 * o)
    polyak_update(target, online, 1.0)
    assert all(
        torch.equal(t, o) for t, o in zip(target.parameters(), online.parameters(), strict=True)
    )
    with pytest.raises(ValueError, match="tau"):
        polyak_update(target, online, 0.0)


def test_linear_schedule() -> None:
    assert linear_schedule(1.0, 0.1, 0.5, 0.0) == 1.0
    assert linear_schedule(1.0, 0.1, 0.5, 0.25) == pytest.approx(0.55)
    assert linear_schedule(1.0, 0.1, 0.5, 0.9) == pytest.approx(0.1)
    assert linear_schedule(1.0, 0.1, 0.0, 0.0) == 0.1


def test_mlp_shapes_and_dueling_identity() -> None:
    torch.manual_seed(0)
    net = MLPQNetwork(4, 3, "8,8", dueling=True)
    obs = torch.randn(5, 4)
    q = net(obs)
    assert q.shape == (5, 3)
    h = net.trunk(obs)
    adv = net.head(h)
    # Q - V = A - mean(A): the mean of Q over actions equals V
    assert torch.allclose(q.mean(-1), net.value(h).squeeze(-1), atol=1e-6)
    expected = net.value(h) + adv - adv.mean(-1, keepdim=True)  # Wang et al. 2016, eq. 9
    assert torch.allclose(q, expected, atol=1e-6)
    assert MLPQNetwork(4, 2, "").forward(obs).shape == (5, 2)  # linear Q
    with pytest.raises(ValueError, match="net_arch"):
        MLPQNetwork(4, 2, "256,x")


def test_check_finite_raises_a_clear_error() -> None:
    check_finite(torch.tensor(1.0), 3)
    for bad in (math.nan, math.inf):
        with pytest.raises(FloatingPointError, match="at gradient step 7.*diverged"):
            check_finite(torch.tensor(bad), 7)
