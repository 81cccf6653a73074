"""DQN building blocks as small tensor functions, shared by the vector and the text agents.

Each function names the paper or implementation it follows. Conventions: ``q`` has shape
``(..., A)``; an action mask has the same shape (or broadcasts to it), int8 or bool, 1 = legal
(``info["action_mask"]`` of Gymnasium envs); ``None`` means every action is legal.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from textrl.config import parse_net_arch

__all__ = [
    "MLPQNetwork",
    "check_finite",
    "epsilon_greedy",
    "greedy_actions",
    "large_margin_loss",
    "linear_schedule",
    "masked_q",
    "nstep_targets",
    "polyak_update",
    "td_loss",
]


def masked_q(q: Tensor, mask: Tensor | None) -> Tensor:
    """Q-values with illegal actions (``mask == 0``) set to ``torch.finfo(q.dtype).min``.

    The one helper used both to act (argmax) and for the target's max/argmax, so the two can
    never disagree about legality (Tianshou pushes masked Q below the minimum the same way).
    The finite minimum, not ``-inf``, keeps ``0 * value`` at a terminal state equal to 0
    instead of NaN. A row with no legal action yields ``finfo.min`` everywhere (argmax 0):
    acting on such a row is refused by :func:`greedy_actions`/:func:`epsilon_greedy`.
    """
    if mask is None:
        return q
    return q.masked_fill(mask == 0, torch.finfo(q.dtype).min)


def _check_some_legal(mask: Tensor | None) -> None:
    if mask is not None and not bool((mask != 0).any(-1).all()):
        raise ValueError("action mask: a row has no legal action (all zeros); keep at least "
                         "one action legal (e.g. end-of-sequence)")


def greedy_actions(q: Tensor, mask: Tensor | None = None) -> Tensor:
    """``argmax_a Q(s, a)`` over legal actions; shape ``q.shape[:-1]``, int64."""
    _check_some_legal(mask)
    return masked_q(q, mask).argmax(-1)


def epsilon_greedy(q: Tensor, mask: Tensor | None, eps: float,
                   generator: torch.Generator | None = None) -> Tensor:
    """Epsilon-greedy actions: with probability ``eps`` a uniform draw among the LEGAL actions.

    (Mnih et al. 2015.) The uniform draw is the argmax of i.i.d. uniform scores over legal
    actions, so it never leaves the mask. Shape ``q.shape[:-1]``, int64.
    """
    greedy = greedy_actions(q, mask)
    if eps <= 0.0:
        return greedy
    explore = torch.rand(greedy.shape, generator=generator, device=q.device) < eps
    scores = torch.rand(q.shape, generator=generator, device=q.device)  # (..., A)
    random_actions = masked_q(scores, mask).argmax(-1)
    return torch.where(explore, random_actions, greedy)


@torch.no_grad()
def nstep_targets(q_next_online: Tensor | None, q_next_target: Tensor,
                  next_mask: Tensor | None, returns_n: Tensor, discounts_n: Tensor,
                  double: bool = True) -> Tensor:
    """n-step TD targets ``R_n + discount_n * Q_target(s_{t+n}, a*)``, no gradient.

    - ``double=True``: ``a* = argmax_a Q_online(s_{t+n}, a)`` and the value is read from the
      target net (double DQN, van Hasselt et al. 2016); ``q_next_online`` is required.
    - ``double=False``: ``max_a Q_target(s_{t+n}, a)`` (Mnih et al. 2015).

    Both respect ``next_mask`` through :func:`masked_q`. ``discounts_n`` is
    ``gamma^k * (1 - terminated)``: 0 when the n-step window reached a terminal state, the
    plain ``gamma^k`` when the episode was only truncated (time limit: bootstrap, Pardo et al.
    2018). Shapes: Q ``(B, A)``, returns/discounts ``(B,)`` -> ``(B,)``.
    """
    q_next_target = q_next_target.detach()
    if double:
        if q_next_online is None:
            raise ValueError("nstep_targets: double=True needs q_next_online")
        best = masked_q(q_next_online.detach(), next_mask).argmax(-1, keepdim=True)  # (B, 1)
        next_value = q_next_target.gather(-1, best).squeeze(-1)  # (B,)
    else:
        next_value = masked_q(q_next_target, next_mask).max(-1).values  # (B,)
    # A window that ended at a terminal state has discount 0: drop the (finite) value there.
    next_value = torch.where(discounts_n == 0, torch.zeros_like(next_value), next_value)
    return returns_n + discounts_n * next_value


def td_loss(q_sa: Tensor, targets: Tensor, weights: Tensor | None = None,
            huber: bool = True) -> tuple[Tensor, Tensor]:
    """TD loss and the TD errors ``targets - q_sa`` (detached, for PER priorities).

    Huber / smooth L1 with delta 1 (Mnih et al. 2015, SB3's default) or MSE (CleanRL). With
    ``weights`` (PER importance weights, Schaul et al. 2016) the loss is ``mean(w * l)``. To
    drop padded steps, index them out before calling (``q_sa[valid]``), not by zero weights.
    """
    targets = targets.detach()
    if huber:
        elementwise = F.smooth_l1_loss(q_sa, targets, reduction="none")
    else:
        elementwise = F.mse_loss(q_sa, targets, reduction="none")
    if weights is not None:
        elementwise = weights * elementwise
    return elementwise.mean(), (targets - q_sa).detach()


def large_margin_loss(q: Tensor, expert_actions: Tensor, mask: Tensor | None = None,
                      margin: float = 0.8, weights: Tensor | None = None) -> Tensor:
    """DQfD's supervised large-margin loss (Hester et al. 2018, eq. 2), mean over the batch.

    ``J_E = max_a [Q(s, a) + l(a_E, a)] - Q(s, a_E)`` with ``l = margin`` for ``a != a_E`` and 0
    for the expert action; the max runs over legal actions only. It pushes Q of every other
    action at least ``margin`` below the expert's. ``q`` ``(B, A)``, ``expert_actions`` ``(B,)``;
    ``weights`` (``(B,)``, e.g. 1 for demonstration steps, 0 otherwise) scale each term.
    """
    expert = expert_actions.long().unsqueeze(-1)  # (B, 1)
    margins = torch.full_like(q, margin).scatter(-1, expert, 0.0)  # (B, A), 0 at a_E
    augmented = masked_q(q + margins, mask).max(-1).values  # (B,)
    per_sample = augmented - q.gather(-1, expert).squeeze(-1)
    if weights is not None:
        per_sample = weights * per_sample
    return per_sample.mean()


@torch.no_grad()
def polyak_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """``theta_target <- tau * theta_online + (1 - tau) * theta_target``; ``tau=1`` copies.

    (Lillicrap et al. 2016; SB3's ``polyak_update``.) Buffers (e.g. normalisation statistics)
    are copied, not averaged.
    """
    if not 0.0 < tau <= 1.0:
        raise ValueError(f"polyak_update: tau must be in (0, 1], got {tau}")
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        if tau == 1.0:
            t.copy_(o)
        else:
            t.lerp_(o, tau)
    for t, o in zip(target.buffers(), online.buffers(), strict=True):
        t.copy_(o)


def linear_schedule(start: float, end: float, fraction: float, progress: float) -> float:
    """Linear decay from ``start`` to ``end`` over the first ``fraction`` of training.

    ``progress`` in [0, 1] is the fraction of training done (SB3's ``get_linear_fn``).
    """
    if fraction <= 0.0:
        return end
    return start + (end - start) * min(max(progress, 0.0) / fraction, 1.0)


class MLPQNetwork(nn.Module):
    """Q-network for flat vector observations: an MLP with ReLU, optionally dueling.

    Dueling (Wang et al. 2016, eq. 9): ``Q = V + A - mean_a A``, with one linear head each on
    the shared hidden layers. Input ``(B, obs_dim)`` float32, output ``(B, n_actions)``.
    """

    def __init__(self, obs_dim: int, n_actions: int, net_arch: Sequence[int] | str = (256, 256),
                 dueling: bool = False) -> None:
        super().__init__()
        if obs_dim < 1 or n_actions < 1:
            raise ValueError(f"MLPQNetwork: obs_dim and n_actions must be positive, got "
                             f"{obs_dim} and {n_actions}")
        sizes = parse_net_arch(net_arch) if isinstance(net_arch, str) else tuple(net_arch)
        layers: list[nn.Module] = []
        width = obs_dim
        for size in sizes:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        self.trunk = nn.Sequential(*layers)
        self.dueling = dueling
        self.head = nn.Linear(width, n_actions)  # advantages when dueling
        self.value = nn.Linear(width, 1) if dueling else None

    def forward(self, obs: Tensor) -> Tensor:
        h = self.trunk(obs.flatten(1).float())  # (B, H)
        out = self.head(h)  # (B, A)
        if self.value is not None:
            out = self.value(h) + out - out.mean(-1, keepdim=True)
        return out


def check_finite(loss: Tensor, step: int, what: str = "loss") -> None:
    """Raise ``FloatingPointError`` when ``loss`` is NaN or infinite (divergence guard)."""
    if not bool(torch.isfinite(loss).all()):
        raise FloatingPointError(
            f"{what} is {loss.detach().flatten()[0].item()} at gradient step {step}: training "
            "diverged. Lower lr, keep huber and max_grad_norm on, or check the rewards; the "
            "last checkpoint written before this step is intact.")
