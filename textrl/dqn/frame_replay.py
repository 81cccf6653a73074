"""Replay for stacked image frames that stores each frame once (the Atari path).

A stacked observation ``(k, H, W)`` of step ``t`` is the frames of steps ``t-k+1 .. t``, padded
at the episode's start with its first frame (Gymnasium's ``FrameStackObservation`` with
``padding_type="reset"``). Storing stacks for ``s`` and ``s'`` keeps each frame ``2k`` times
(8 × 7 KB = 56 KB per transition for 4 stacked 84×84 frames); :class:`FrameReplay` keeps only
the newest frame of each step (7,056 bytes) and rebuilds stacks from indices at sample time, as
Dopamine's and SB3's memory-optimised buffers do. With the bookkeeping (action, reward, flags,
the step's age in its episode) a transition costs about 7.1 KB, so 1M transitions fit in ~7 GB.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from textrl.dqn.replay import TransitionReplay

__all__ = ["FrameReplay"]


class FrameReplay(TransitionReplay):
    """:class:`~textrl.dqn.replay.TransitionReplay` of stacked frames, one frame per step.

    ``add`` takes the stacked observations ``(k, H, W)`` (or ``(E, k, H, W)``) the env returns,
    checks that each stack is the previous frames of its episode (so a mismatched wrapper is an
    error, never silently wrong data) and stores the newest frame. ``age[row, env]`` is the
    step's index in its episode, capped at ``k - 1``: the stack of row ``i`` is the frames of
    rows ``i - min(j, age) for j = k-1 .. 0``. The next observation of an episode's last step
    keeps its newest frame aside (as the base class does), with its history from the rows.

    When the ring overwrites a row, the up to ``k - 1`` oldest rows whose stacks reached back to
    it stop being sampleable (they would be overwritten within ``k - 1`` steps anyway): a
    sampled stack is always the one the agent saw. n-step windows and priorities are the base
    class's.
    """

    def __init__(
        self,
        capacity: int,
        frame_shape: Sequence[int] = (84, 84),
        stack: int = 4,
        num_envs: int = 1,
        gamma: float = 0.99,
        n_step: int = 1,
        prioritized: bool = False,
        alpha: float = 0.6,
        eps: float = 1e-6,
    ) -> None:
        if stack < 1:
            raise ValueError(f"FrameReplay: stack must be >= 1, got {stack}")
        if num_envs >= 1 and capacity // num_envs <= stack:
            raise ValueError(
                f"FrameReplay: capacity // num_envs must exceed stack={stack}, got "
                f"capacity={capacity}, num_envs={num_envs}"
            )
        super().__init__(
            capacity,
            frame_shape,
            num_envs=num_envs,
            gamma=gamma,
            n_step=n_step,
            prioritized=prioritized,
            alpha=alpha,
            eps=eps,
            obs_dtype=np.uint8,
        )
        self.stack = int(stack)
        self.age = np.zeros((self.rows, self.num_envs), dtype=np.uint8)
        self._back = np.arange(self.stack - 1, -1, -1)  # steps back of stack positions 0..k-1

    @property
    def stacked_shape(self) -> tuple[int, ...]:
        """Shape of one stacked observation, ``(k, H, W)``."""
        return (self.stack,) + self.obs_shape

    def bytes_per_transition(self) -> float:
        """Bytes of storage per stored step at full capacity (side-stored finals excluded)."""
        arrays = [self.obs, self.actions, self.rewards, self.terminated, self.truncated]
        arrays += [self.ready, self.age] + ([] if self.masks is None else [self.masks])
        total = sum(a.nbytes for a in arrays)
        if self.tree is not None:
            total += self.tree._sum.nbytes + self.tree._min.nbytes
        return total / (self.rows * self.num_envs)

    def add(
        self,
        obs: Any,
        action: Any,
        reward: Any,
        next_obs: Any,
        terminated: Any,
        truncated: Any,
        mask: Any = None,
        next_mask: Any = None,
    ) -> None:
        """Store one step of each env from its stacked ``obs`` and ``next_obs`` (see class)."""
        E, k = self.num_envs, self.stack
        obs = np.asarray(obs, dtype=np.uint8).reshape((E,) + self.stacked_shape)
        next_obs = np.asarray(next_obs, dtype=np.uint8).reshape((E,) + self.stacked_shape)
        row, prev = self.pos, (self.pos - 1) % self.rows
        age = np.where(self.pending, np.minimum(self.age[prev].astype(np.int64) + 1, k - 1), 0)
        for e in range(E):
            self._check_stack(obs[e], row, e, int(age[e]))
        if self.full:  # rows whose stacks reached back to the overwritten one
            for d in range(1, k):
                q = (row + d) % self.rows
                lost = self.age[q] >= d
                self.ready[q, lost] = False
                if self.tree is not None and lost.any():
                    self.tree.update(q * E + np.flatnonzero(lost), 0.0)
        self.age[row] = age
        super().add(
            obs[:, -1], action, reward, next_obs[:, -1], terminated, truncated, mask, next_mask
        )

    def _episode_observations(self, obs: Any) -> np.ndarray:
        """``add_episode`` takes an episode's frames ``(T + 1, H, W)`` (the compact form actors
        send) or its stacks ``(T + 1, k, H, W)``; frames are stacked here as the env stacks
        them (the first frame repeated at the start)."""
        obs = np.asarray(obs, dtype=np.uint8)
        if obs.shape[1:] == self.stacked_shape:
            return obs
        if obs.shape[1:] != self.obs_shape:
            raise ValueError(
                f"add_episode: expected frames (T + 1, {', '.join(map(str, self.obs_shape))}) "
                f"or stacks (T + 1, {', '.join(map(str, self.stacked_shape))}), got {obs.shape}"
            )
        t = np.arange(len(obs))[:, None] - self._back[None, :]  # (T + 1, k)
        return obs[np.maximum(t, 0)]

    def _check_stack(self, stacked: np.ndarray, row: int, env: int, age: int) -> None:
        """``stacked`` must be the episode's previous ``age`` frames, padded with the first."""
        for j in range(1, self.stack):  # j steps back from the newest frame
            back = min(j, age)
            want = stacked[-1] if back == 0 else self.obs[(row - back) % self.rows, env]
            if not np.array_equal(stacked[-1 - j], want):
                raise ValueError(
                    f"FrameReplay.add: frame {self.stack - 1 - j} of env {env}'s stacked "
                    "observation is not the frame stored for that step of its episode; expected "
                    f"{self.stack} frames stacked oldest first, padded at the episode's start "
                    "with its first frame (FrameStackObservation(env, k, padding_type='reset'))"
                )

    def _observations(self, row: np.ndarray, env: np.ndarray) -> np.ndarray:
        back = np.minimum(self._back[None, :], self.age[row, env][:, None].astype(np.int64))
        return self.obs[(row[:, None] - back) % self.rows, env[:, None]]  # (B, k, H, W)

    def _final_observation(self, last: int, env: int, stored: np.ndarray) -> np.ndarray:
        age = min(int(self.age[last, env]) + 1, self.stack - 1)  # of the unstored next step
        return np.stack(
            [
                stored if b == 0 else self.obs[(last + 1 - b) % self.rows, env]
                for b in np.minimum(self._back, age)
            ]
        )

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        n = self.rows if self.full else self.pos
        state["arrays"]["age"] = np.ascontiguousarray(self.age[:n])
        state["meta"].update(kind="FrameReplay", stack=self.stack)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        meta = state["meta"]
        if meta.get("kind") != "FrameReplay" or meta.get("stack") != self.stack:
            raise ValueError(
                f"FrameReplay.load_state_dict: expected a FrameReplay of {self.stack} stacked "
                f"frames, got {meta.get('kind')} with stack {meta.get('stack')}"
            )
        super().load_state_dict(state)
        self.age[: len(state["arrays"]["age"])] = state["arrays"]["age"]
