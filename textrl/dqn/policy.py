"""Acting on Q-values inside an action mask: masked Q, greedy and epsilon-greedy actions.

Conventions: ``q`` has shape ``(..., A)``; an action mask has the same shape (or broadcasts to
it), int8 or bool, 1 = legal (``info["action_mask"]`` of Gymnasium envs); ``None`` means every
action is legal. :func:`masked_q` is the one place legality is applied, for acting and for the
targets' max/argmax alike (:mod:`textrl.dqn.losses`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "decay_factor",
    "epsilon_greedy",
    "epsilon_greedy_one",
    "greedy_actions",
    "info_mask",
    "linear_schedule",
    "masked_q",
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
        raise ValueError(
            "action mask: a row has no legal action (all zeros); keep at least "
            "one action legal (e.g. end-of-sequence)"
        )


def greedy_actions(q: Tensor, mask: Tensor | None = None) -> Tensor:
    """``argmax_a Q(s, a)`` over legal actions; shape ``q.shape[:-1]``, int64."""
    _check_some_legal(mask)
    return masked_q(q, mask).argmax(-1)


def epsilon_greedy(
    q: Tensor, mask: Tensor | None, eps: float, generator: torch.Generator | None = None
) -> Tensor:
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


def epsilon_greedy_one(
    q_of: Callable[[], Tensor],
    n_actions: int,
    mask: Tensor | None,
    eps: float,
    generator: torch.Generator | None = None,
) -> int:
    """One epsilon-greedy action that computes ``q_of()`` (shape ``(A,)`` or ``(1, A)``) only
    when it acts greedily: the Q-network's forward pass is skipped for exploratory steps (as
    SB3's ``predict`` does), which is most steps early in training. The exploratory action is
    uniform over the legal actions."""
    mask_1d = None if mask is None else mask.reshape(n_actions)
    _check_some_legal(mask_1d)
    if eps > 0.0 and float(torch.rand((), generator=generator)) < eps:
        return int(masked_q(torch.rand(n_actions, generator=generator), mask_1d).argmax())
    return int(greedy_actions(q_of().reshape(n_actions), mask_1d))


def info_mask(info: dict[str, Any]) -> np.ndarray | None:
    """The action mask a Gymnasium env puts in ``info["action_mask"]``, as int8, or None."""
    mask = info.get("action_mask")
    return None if mask is None else np.asarray(mask, dtype=np.int8)


def linear_schedule(start: float, end: float, fraction: float, progress: float) -> float:
    """Linear decay from ``start`` to ``end`` over the first ``fraction`` of training.

    ``progress`` in [0, 1] is the fraction of training done (SB3's ``get_linear_fn``).
    """
    if fraction <= 0.0:
        return end
    return start + (end - start) * min(max(progress, 0.0) / fraction, 1.0)


def decay_factor(kind: str, progress: float) -> float:
    """Multiplier of a learning rate that decays to zero over training: 1 throughout for
    ``"constant"``, ``1 - progress`` for ``"linear"``, ``(1 + cos(pi progress)) / 2`` for
    ``"cosine"`` (Loshchilov & Hutter 2017, without restarts); ``progress`` is clipped to [0, 1]."""
    p = min(max(progress, 0.0), 1.0)
    if kind == "constant":
        return 1.0
    if kind == "linear":
        return 1.0 - p
    if kind == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * p))
    raise ValueError(f"decay_factor: kind={kind!r}; expected 'constant', 'linear' or 'cosine'")
