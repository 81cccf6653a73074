"""Episodes from replay as padded tensors: what the text learner and the decoder read.

:func:`episode_tensors` pads a list of :class:`~textrl.dqn.episode_replay.Episode` into one
typed :class:`EpisodeTensors`; :func:`nstep_tensors` lays their n-step returns, discounts and
bootstrap indices (:func:`~textrl.dqn.episode_replay.nstep_arrays`) out the same way;
:func:`pad_sources` pads token-id sources with their attention mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from textrl.dqn.episode_replay import Episode, nstep_arrays, stack_padded

__all__ = ["EpisodeTensors", "NStepTensors", "episode_tensors", "nstep_tensors", "pad_sources"]


class EpisodeTensors(NamedTuple):
    """``B`` episodes, right-padded to the longest source ``S`` and length ``T``."""

    source: Tensor  # (B, S) long source token ids, pad_id beyond each source
    source_mask: Tensor  # (B, S) bool, True = real source token
    tokens: Tensor  # (B, T) long generated token ids, pad_id beyond each episode
    actions: Tensor  # (B, T) long action indices, 0 beyond each episode
    legal: Tensor  # (B, A) bool, the legal actions of each episode
    valid: Tensor  # (B, T) bool, True = a real step
    lengths: Tensor  # (B,) long episode lengths
    is_demo: Tensor  # (B,) bool, demonstration episodes


class NStepTensors(NamedTuple):
    """n-step targets' parts per step, ``(B, T)``, zero beyond each episode."""

    returns: Tensor  # float32, sum_{k<m} gamma^k r_{t+k}
    discounts: Tensor  # float32, gamma^m, 0 when the window reached the end of a terminal episode
    bootstrap: Tensor  # long, the state index t + m whose Q bootstraps the target


def pad_sources(
    sources: Sequence[np.ndarray], pad_id: int, device: str | torch.device = "cpu"
) -> tuple[Tensor, Tensor]:
    """(B, S) long token ids padded with ``pad_id`` and (B, S) bool mask of real tokens."""
    out, lengths = stack_padded(sources, pad_id, np.int64)
    if out.shape[1] == 0:  # only empty sources: keep one (masked) column
        out = np.full((len(sources), 1), pad_id, dtype=np.int64)
    mask = np.arange(out.shape[1])[None, :] < lengths[:, None]
    return torch.from_numpy(out).to(device), torch.from_numpy(mask).to(device)


def episode_tensors(
    episodes: Sequence[Episode], pad_id: int, n_actions: int, device: str | torch.device = "cpu"
) -> EpisodeTensors:
    """Pad ``episodes`` into one :class:`EpisodeTensors` (legal actions from ``allowed``), built
    on the CPU and moved to ``device`` at the end."""
    source, source_mask = pad_sources([e.source for e in episodes], pad_id)
    tokens, lengths = stack_padded([e.tokens for e in episodes], pad_id, np.int64)
    actions, _ = stack_padded([e.actions for e in episodes], 0, np.int64)
    legal = torch.zeros(len(episodes), n_actions, dtype=torch.bool)
    for i, e in enumerate(episodes):
        if e.allowed is None:
            legal[i] = True
        else:
            legal[i, torch.from_numpy(e.allowed.astype(np.int64))] = True
    lengths_t = torch.from_numpy(lengths)
    valid = torch.arange(tokens.shape[1])[None, :] < lengths_t[:, None]  # (B, T)
    is_demo = torch.tensor([e.is_demo for e in episodes], dtype=torch.bool)
    out = EpisodeTensors(
        source,
        source_mask,
        torch.from_numpy(tokens),
        torch.from_numpy(actions),
        legal,
        valid,
        lengths_t,
        is_demo,
    )
    return _to(out, device)


def _to(tensors: tuple, device: str | torch.device) -> Any:
    """A NamedTuple of tensors with each moved to ``device`` (the same tensors when already
    there: ``Tensor.to`` does not copy then)."""
    return type(tensors)(*(t.to(device, non_blocking=True) for t in tensors))


def nstep_tensors(
    episodes: Sequence[Episode],
    gamma: float,
    n: int,
    t_max: int,
    device: str | torch.device = "cpu",
) -> NStepTensors:
    """Each episode's :func:`nstep_arrays` in rows of a ``(B, t_max)`` layout, on ``device``."""
    shape = (len(episodes), t_max)
    returns, discounts = torch.zeros(shape), torch.zeros(shape)
    bootstrap = torch.zeros(shape, dtype=torch.long)
    for i, e in enumerate(episodes):
        r, d, b = nstep_arrays(e.rewards, e.terminated, gamma, n)
        returns[i, : len(r)] = torch.from_numpy(r)
        discounts[i, : len(d)] = torch.from_numpy(d)
        bootstrap[i, : len(b)] = torch.from_numpy(b)
    return _to(NStepTensors(returns, discounts, bootstrap), device)
