"""DQN learning targets and losses as small tensor functions, shared by both training loops.

Each function names the paper or implementation it follows. Shapes: Q ``(B, A)``, per-sample
values ``(B,)``; masks as in :mod:`textrl.dqn.policy`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from textrl.dqn.policy import masked_q

__all__ = [
    "check_finite",
    "kl_anchored_q",
    "kl_soft_value",
    "large_margin_loss",
    "legal_log_softmax",
    "nstep_targets",
    "policy_gradient_loss",
    "td_loss",
]

_ILLEGAL = -1e9
"""Logit of an illegal action in :func:`legal_log_softmax`: finite, so that differences of two
log-probabilities stay finite (and are then zeroed) where ``-inf - -inf`` would be NaN."""


@torch.no_grad()
def nstep_targets(
    q_next_online: Tensor | None,
    q_next_target: Tensor,
    next_mask: Tensor | None,
    returns_n: Tensor,
    discounts_n: Tensor,
    double: bool = True,
) -> Tensor:
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


def td_loss(
    q_sa: Tensor, targets: Tensor, weights: Tensor | None = None, huber: bool = True
) -> tuple[Tensor, Tensor]:
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


def large_margin_loss(
    q: Tensor,
    expert_actions: Tensor,
    mask: Tensor | None = None,
    margin: float = 0.8,
    weights: Tensor | None = None,
) -> Tensor:
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


def legal_log_softmax(logits: Tensor, mask: Tensor | None) -> Tensor:
    """``log softmax(logits)`` renormalised over the legal actions; illegal entries are very
    negative (finite). ``logits`` ``(..., A)``, ``mask`` broadcastable to it (1 = legal)."""
    if mask is not None:
        logits = logits.masked_fill(mask == 0, _ILLEGAL)
    return F.log_softmax(logits, dim=-1)


def kl_anchored_q(
    value: Tensor, log_pi: Tensor, log_prior: Tensor, eta: float, mask: Tensor | None = None
) -> Tensor:
    """Q of a policy anchored to a frozen prior: ``V(s) + eta * (log pi(a|s) - log pi_0(a|s))``.

    The parametrisation of KL-regularised RL (maximise return minus ``eta`` times
    ``KL(pi || pi_0)`` per step; Jaques et al. 2017's KL-control, the soft-Q view of Guo et al.
    2021 with a reference policy): its optimal policy is ``pi* ∝ pi_0 exp(Q*/eta)``, so a
    network whose log-probabilities are ``log pi`` and whose value head is ``V`` represents
    ``Q`` this way, and decoding ``argmax_a log pi_0 + Q/eta`` is decoding ``pi`` itself. The
    residual ``Q - V`` is zero exactly where ``pi == pi_0`` (at the start of fine-tuning).
    ``value`` ``(...,)``, log-probabilities ``(..., A)`` (over legal actions,
    :func:`legal_log_softmax`); illegal entries are 0. Returns ``(..., A)``.
    """
    residual = eta * (log_pi - log_prior)
    if mask is not None:
        residual = torch.where(mask != 0, residual, torch.zeros_like(residual))
    return value.unsqueeze(-1) + residual


@torch.no_grad()
def kl_soft_value(q: Tensor, log_prior: Tensor, eta: float, mask: Tensor | None = None) -> Tensor:
    """The KL-regularised soft value ``V(s) = eta * log sum_a pi_0(a|s) exp(Q(s, a) / eta)``
    over legal actions (the soft Bellman backup with a prior; Q-sharp, Zhou et al. 2025, and
    Jaques et al. 2019). For ``Q`` from :func:`kl_anchored_q` with ``log pi`` normalised over
    the same legal actions, this is that ``V``. ``q``, ``log_prior`` ``(..., A)`` -> ``(...,)``."""
    scores = log_prior + q / eta
    if mask is not None:
        scores = scores.masked_fill(mask == 0, -math.inf)
    return eta * torch.logsumexp(scores, dim=-1)


def policy_gradient_loss(
    log_pi_actions: Tensor, advantages: Tensor, valid: Tensor | None = None
) -> Tensor:
    """REINFORCE with a baseline: ``-mean_episodes(advantage * sum_t log pi(a_t|s_t))``.

    Self-critical sequence training (Rennie et al. 2017) passes the sample's score minus the
    greedy decode's score on the same document as ``advantage``: a sample better than greedy
    becomes more likely, a worse one less. ``log_pi_actions`` ``(B, T)`` (log-probability of
    each taken action), ``advantages`` ``(B,)``, ``valid`` ``(B, T)`` bool (real steps).
    """
    if valid is not None:
        log_pi_actions = torch.where(valid, log_pi_actions, torch.zeros_like(log_pi_actions))
    return -(advantages.detach() * log_pi_actions.sum(-1)).mean()


def check_finite(loss: Tensor, step: int, what: str = "loss") -> None:
    """Raise ``FloatingPointError`` when ``loss`` is NaN or infinite (divergence guard)."""
    if not bool(torch.isfinite(loss).all()):
        raise FloatingPointError(
            f"{what} is {loss.detach().flatten()[0].item()} at gradient step {step}: training "
            "diverged. Lower lr, keep huber and max_grad_norm on, or check the rewards; the "
            "last checkpoint written before this step is intact."
        )
