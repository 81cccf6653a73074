"""Replay of single transitions for vector observations (the Gymnasium path).

:class:`TransitionReplay` keeps circular numpy arrays that store each observation once (the next
observation is the one of the following row, as SB3's ``optimize_memory_usage``); the next
observation of an episode's last step is kept aside, so truncated episodes bootstrap from the
right state. n-step returns are built at sample time (as RLlib's episode replay). Prioritized
sampling uses :class:`textrl.dqn.sum_tree.SumTree`.

Only numpy here; the learner turns batches into tensors. ``state_dict()`` returns
``{"arrays": {name: ndarray}, "meta": {json-able}}`` (what :class:`textrl.dqn.checkpoints.RunDir`
saves).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from textrl.dqn.sum_tree import SumTree, importance_weights

__all__ = ["TransitionBatch", "TransitionReplay"]


class TransitionBatch(NamedTuple):
    """A batch of n-step transitions (numpy). ``B`` = batch size."""

    obs: np.ndarray  # (B, *obs_shape) observation s_t
    actions: np.ndarray  # (B,) int64
    returns: np.ndarray  # (B,) float32, sum_{k<m} gamma^k r_{t+k}, m <= n steps used
    discounts: np.ndarray  # (B,) float32, gamma^m, or 0 when the window reached a terminal
    next_obs: np.ndarray  # (B, *obs_shape) bootstrap observation s_{t+m}
    masks: np.ndarray | None  # (B, A) int8 action mask at s_t (None: masks never given)
    next_masks: np.ndarray | None  # (B, A) int8 action mask at s_{t+m}
    weights: np.ndarray  # (B,) float32 importance weights (ones when uniform)
    indices: np.ndarray  # (B,) int64, for update_priorities


class TransitionReplay:
    """Circular replay for vector observations, each observation stored once.

    Rows ``(capacity // num_envs, num_envs)``: column ``e`` holds env ``e``'s steps in time
    order, so the next observation of row ``i`` is the observation of row ``i + 1`` (SB3's
    ``optimize_memory_usage``). The next observation (and mask) of a step that ended an episode
    (terminated or truncated) is stored aside, fixing the known defect of storing the reset
    observation in its place: a truncated episode bootstraps from its real last state. A step is
    sampleable once its next observation is known (the following ``add``, or at once if it ended
    the episode). n-step windows (Sutton & Barto ch. 7) are built at sample time and stop at the
    episode's end or at the newest stored step (a shorter window with its own ``gamma^m``).
    """

    def __init__(
        self,
        capacity: int,
        obs_shape: Sequence[int],
        num_envs: int = 1,
        gamma: float = 0.99,
        n_step: int = 1,
        prioritized: bool = False,
        alpha: float = 0.6,
        eps: float = 1e-6,
        obs_dtype: Any = np.float32,
    ) -> None:
        if num_envs < 1 or capacity // num_envs < 2:
            raise ValueError(
                f"TransitionReplay: capacity must be >= 2 * num_envs, got "
                f"capacity={capacity}, num_envs={num_envs}"
            )
        if n_step < 1:
            raise ValueError(f"TransitionReplay: n_step must be >= 1, got {n_step}")
        self.rows, self.num_envs = capacity // num_envs, num_envs
        self.obs_shape = tuple(int(s) for s in obs_shape)
        self.gamma, self.n_step = float(gamma), int(n_step)
        self.prioritized, self.alpha, self.eps = prioritized, float(alpha), float(eps)
        shape = (self.rows, num_envs)
        self.obs = np.zeros(shape + self.obs_shape, dtype=obs_dtype)
        self.actions = np.zeros(shape, dtype=np.int64)
        self.rewards = np.zeros(shape, dtype=np.float32)
        self.terminated = np.zeros(shape, dtype=bool)
        self.truncated = np.zeros(shape, dtype=bool)
        self.ready = np.zeros(shape, dtype=bool)  # next observation known: sampleable
        self.masks: np.ndarray | None = None  # (rows, E, A) int8, allocated at the first mask
        self.final: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}  # flat -> next obs, mask
        self.pos, self.full = 0, False
        self.pending = np.zeros(num_envs, dtype=bool)  # env's newest row awaits its next obs
        self.last_next_obs = np.zeros((num_envs,) + self.obs_shape, dtype=obs_dtype)
        self.last_next_mask: np.ndarray | None = None  # (E, A) int8 when masks are given
        self.tree = SumTree(self.rows * num_envs) if prioritized else None
        self.max_priority = 1.0

    def __len__(self) -> int:
        """Number of stored steps (sampleable or about to be)."""
        return (self.rows if self.full else self.pos) * self.num_envs

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
        """Store one step of each env; unbatched arguments are accepted when ``num_envs == 1``.

        ``obs`` must be the previous call's ``next_obs`` unless that step ended the episode
        (then the reset observation). ``mask``/``next_mask``: int8/bool action masks of ``obs``
        and ``next_obs`` (``next_mask`` is kept only for episode ends, for truncation bootstrap).
        With Gymnasium vector envs in next-step autoreset mode, skip the reset steps.
        """
        E = self.num_envs
        single = np.ndim(action) == 0
        if single and E != 1:
            raise ValueError(f"TransitionReplay.add: expected {E} envs, got one action")
        obs = np.asarray(obs).reshape((E,) + self.obs_shape)
        next_obs = np.asarray(next_obs).reshape((E,) + self.obs_shape)
        action = np.asarray(action).reshape(E)
        ended = np.asarray(terminated, dtype=bool) | np.asarray(truncated, dtype=bool)
        ended = ended.reshape(E)
        broken = self.pending & ~np.all((obs == self.last_next_obs).reshape(E, -1), axis=1)
        if broken.any():
            raise ValueError(
                f"TransitionReplay.add: obs of env(s) {np.flatnonzero(broken)} "
                "differs from the previous next_obs though that step did not end "
                "the episode; pass terminated/truncated=True at episode ends"
            )
        row, prev = self.pos, (self.pos - 1) % self.rows
        for e in range(E):  # drop the side-stored final observations being overwritten
            self.final.pop(row * E + e, None)
        self.obs[row], self.actions[row] = obs, action
        self.rewards[row] = np.asarray(reward, dtype=np.float32).reshape(E)
        self.terminated[row] = np.asarray(terminated, dtype=bool).reshape(E)
        self.truncated[row] = np.asarray(truncated, dtype=bool).reshape(E)
        if mask is not None:
            mask = np.asarray(mask, dtype=np.int8).reshape(E, -1)
            if self.masks is None:
                self.masks = np.ones((self.rows, E, mask.shape[1]), dtype=np.int8)
            self.masks[row] = mask
        for e in np.flatnonzero(ended):
            nm = None if next_mask is None else np.asarray(next_mask, np.int8).reshape(E, -1)[e]
            self.final[row * E + e] = (next_obs[e].copy(), nm)
        completed = np.flatnonzero(self.pending)  # the previous row's next obs is this obs
        self.ready[prev, completed] = True
        self.ready[row] = ended
        if self.tree is not None:
            self.tree.update(prev * E + completed, self.max_priority)
            self.tree.update(row * E + np.arange(E), np.where(ended, self.max_priority, 0.0))
        self.pending = ~ended
        self.last_next_obs = next_obs.copy()
        if next_mask is not None:
            self.last_next_mask = np.asarray(next_mask, dtype=np.int8).reshape(E, -1).copy()
        self.pos = (self.pos + 1) % self.rows
        self.full = self.full or self.pos == 0

    def add_episode(
        self,
        obs: Any,
        actions: Any,
        rewards: Any,
        terminated: bool,
        truncated: bool,
        priorities: Any = None,
        masks: Any = None,
    ) -> np.ndarray:
        """Store a whole episode of one env (``num_envs == 1``): ``obs`` holds its ``T + 1``
        observations (the last one after the final step), ``actions``/``rewards`` ``T`` values,
        ``masks`` ``T + 1`` action masks or None. The last step ends the episode (``terminated``
        or else ``truncated``; an episode cut off mid-way is stored as truncated). Priorities,
        e.g. from an actor's own TD errors (Ape-X), replace the new steps' maximal priority.
        Returns the flat indices of the stored steps."""
        if self.num_envs != 1:
            raise ValueError("add_episode: whole episodes need a replay with num_envs=1")
        obs = self._episode_observations(obs)
        T = len(actions)
        if T < 1 or len(obs) != T + 1 or len(rewards) != T:
            raise ValueError(
                f"add_episode: expected T >= 1 actions, T rewards and T + 1 observations, got "
                f"{T}, {len(rewards)} and {len(obs)}"
            )
        if self.pending.any():  # an episode added step by step is still open
            self.truncate_pending()
        rows = (self.pos + np.arange(T)) % self.rows
        for t in range(T):
            last = t == T - 1
            self.add(
                obs[t],
                actions[t],
                rewards[t],
                obs[t + 1],
                terminated and last,
                (truncated or not terminated) and last,
                mask=None if masks is None else masks[t],
                next_mask=None if masks is None else masks[t + 1],
            )
        if priorities is not None and self.tree is not None:
            prios = (np.abs(np.asarray(priorities, dtype=np.float64)) + self.eps) ** self.alpha
            self.tree.update(rows, prios)
            self.max_priority = max(self.max_priority, float(prios.max()))
        return rows

    def _episode_observations(self, obs: Any) -> np.ndarray:
        """An episode's observations as :meth:`add` takes them, ``(T + 1, *obs_shape)``."""
        return np.asarray(obs)

    def truncate_pending(self) -> None:
        """Mark each env's newest step, if its episode is still open, as truncated.

        For an episode cut off from outside (a run resumed from a mid-episode checkpoint starts
        a fresh episode): the step keeps its known next observation and bootstraps from it.
        """
        E = self.num_envs
        row = (self.pos - 1) % self.rows
        for e in np.flatnonzero(self.pending):
            self.truncated[row, e] = self.ready[row, e] = True
            mask = None if self.last_next_mask is None else self.last_next_mask[e].copy()
            self.final[row * E + e] = (self.last_next_obs[e].copy(), mask)
            if self.tree is not None:
                self.tree.update(row * E + e, self.max_priority)
        self.pending[:] = False

    def sample(
        self, batch_size: int, rng: np.random.Generator, beta: float = 0.4
    ) -> TransitionBatch:
        """Sample n-step transitions: uniform, or by priority with IS weights (exponent beta)."""
        if not self.ready.any():
            raise ValueError("TransitionReplay.sample: no complete transition stored yet")
        if self.tree is not None:
            flat, prios = self.tree.sample(batch_size, rng)
            weights = importance_weights(prios, self.tree, beta).astype(np.float32)
        else:
            flat = rng.integers(0, len(self), size=batch_size)
            bad = ~self.ready.reshape(-1)[flat]
            while bad.any():  # at most num_envs steps are pending: rejection is cheap
                flat[bad] = rng.integers(0, len(self), size=int(bad.sum()))
                bad = ~self.ready.reshape(-1)[flat]
            weights = np.ones(batch_size, dtype=np.float32)
        return self.gather(flat, weights)

    def gather(self, flat: np.ndarray, weights: np.ndarray | None = None) -> TransitionBatch:
        """The n-step transitions starting at the stored steps ``flat`` (indices as sampled).

        Each index must be sampleable (its next observation known; see :meth:`sampleable`).
        """
        E = self.num_envs
        flat = np.asarray(flat, dtype=np.int64)
        row, env = np.divmod(flat, E)
        returns, discounts, last = self._nstep(row, env)
        boot = (last + 1) % self.rows
        next_obs = self._observations(boot, env)  # (B, *obs), a copy
        masks = next_masks = None
        if self.masks is not None:
            masks, next_masks = self.masks[row, env], self.masks[boot, env]
        for i in np.flatnonzero(self.terminated[last, env] | self.truncated[last, env]):
            final_obs, final_mask = self.final[int(last[i]) * E + int(env[i])]
            next_obs[i] = self._final_observation(int(last[i]), int(env[i]), final_obs)
            if next_masks is not None:
                next_masks[i] = 1 if final_mask is None else final_mask
        return TransitionBatch(
            self._observations(row, env),
            self.actions[row, env],
            returns,
            discounts,
            next_obs,
            masks,
            next_masks,
            np.ones(len(flat), dtype=np.float32) if weights is None else weights,
            flat,
        )

    def sampleable(self) -> np.ndarray:
        """Flat indices of the stored steps that :meth:`sample` may return."""
        return np.flatnonzero(self.ready.reshape(-1)[: len(self)])

    def _observations(self, row: np.ndarray, env: np.ndarray) -> np.ndarray:
        """Observations stored at ``(row, env)``, ``(B, *obs_shape)`` (a copy)."""
        return self.obs[row, env]

    def _final_observation(self, last: int, env: int, stored: np.ndarray) -> np.ndarray:
        """The next observation of the episode-ending step ``(last, env)``, stored aside."""
        return stored

    def _nstep(self, row: np.ndarray, env: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Windows from ``row``: (returns, discounts, last row used), vectorised over the batch."""
        returns = np.zeros(row.shape, dtype=np.float64)
        steps = np.zeros(row.shape, dtype=np.int64)
        active = np.ones(row.shape, dtype=bool)
        last, r = row.copy(), row.copy()
        for k in range(self.n_step):
            returns += np.where(active, self.gamma**k * self.rewards[r, env], 0.0)
            last = np.where(active, r, last)
            steps += active
            nxt = (r + 1) % self.rows
            ended = self.terminated[r, env] | self.truncated[r, env]
            active &= ~ended & self.ready[nxt, env]
            r = nxt
        discounts = np.where(self.terminated[last, env], 0.0, self.gamma**steps)
        return returns.astype(np.float32), discounts.astype(np.float32), last

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """Priorities ``(|td| + eps) ** alpha`` for sampled ``indices`` (Schaul et al. 2016)."""
        if self.tree is None:
            return
        prios = (np.abs(np.asarray(td_errors, dtype=np.float64)) + self.eps) ** self.alpha
        indices = np.asarray(indices, dtype=np.int64)
        keep = self.ready.reshape(-1)[indices]  # a row overwritten since sampling stays as is
        self.tree.update(indices[keep], prios[keep])
        self.max_priority = max(self.max_priority, float(prios.max(initial=0.0)))

    def state_dict(self) -> dict[str, Any]:
        """``{"arrays": ..., "meta": ...}``: the filled rows, side-stored finals, priorities."""
        n = self.rows if self.full else self.pos
        arrays = {
            name: getattr(self, name)[:n]
            for name in ("obs", "actions", "rewards", "terminated", "truncated", "ready")
        }
        if self.masks is not None:
            arrays["masks"] = self.masks[:n]
        keys = sorted(self.final)
        arrays["final_index"] = np.asarray(keys, dtype=np.int64)
        arrays["final_obs"] = (
            np.stack([self.final[k][0] for k in keys])
            if keys
            else np.zeros((0,) + self.obs_shape, dtype=self.obs.dtype)
        )
        has_mask = [self.final[k][1] is not None for k in keys]
        if any(has_mask):
            width = next(m.shape[0] for _, m in self.final.values() if m is not None)
            arrays["final_mask"] = np.stack(
                [
                    np.ones(width, np.int8) if m is None else m
                    for _, m in (self.final[k] for k in keys)
                ]
            )
            arrays["final_has_mask"] = np.asarray(has_mask)
        arrays["pending"], arrays["last_next_obs"] = self.pending, self.last_next_obs
        if self.last_next_mask is not None:
            arrays["last_next_mask"] = self.last_next_mask
        if self.tree is not None:
            arrays["priorities"] = self.tree.leaves()
        meta = {
            "kind": "TransitionReplay",
            "rows": self.rows,
            "num_envs": self.num_envs,
            "obs_shape": list(self.obs_shape),
            "gamma": self.gamma,
            "n_step": self.n_step,
            "prioritized": self.prioritized,
            "alpha": self.alpha,
            "eps": self.eps,
            "pos": self.pos,
            "full": self.full,
            "max_priority": self.max_priority,
        }
        return {"arrays": {k: np.ascontiguousarray(v) for k, v in arrays.items()}, "meta": meta}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`; the replay must have been built with the same shape."""
        a, meta = state["arrays"], state["meta"]
        for key in ("rows", "num_envs", "obs_shape", "prioritized"):
            mine = list(self.obs_shape) if key == "obs_shape" else getattr(self, key)
            if meta[key] != mine:
                raise ValueError(
                    f"TransitionReplay.load_state_dict: {key} is {mine!r} here but "
                    f"{meta[key]!r} in the saved state"
                )
        self.gamma, self.n_step = float(meta["gamma"]), int(meta["n_step"])
        self.alpha, self.eps = float(meta["alpha"]), float(meta["eps"])
        self.pos, self.full = int(meta["pos"]), bool(meta["full"])
        self.max_priority = float(meta["max_priority"])
        n = len(a["obs"])
        for name in ("obs", "actions", "rewards", "terminated", "truncated", "ready"):
            getattr(self, name)[:n] = a[name]
        if "masks" in a:
            self.masks = np.ones((self.rows, self.num_envs) + a["masks"].shape[2:], np.int8)
            self.masks[:n] = a["masks"]
        has_mask = a.get("final_has_mask")
        self.final = {
            int(k): (
                a["final_obs"][i].copy(),
                a["final_mask"][i].copy() if has_mask is not None and has_mask[i] else None,
            )
            for i, k in enumerate(a["final_index"])
        }
        self.pending = a["pending"].astype(bool).copy()
        self.last_next_obs = a["last_next_obs"].copy()
        self.last_next_mask = a["last_next_mask"].copy() if "last_next_mask" in a else None
        if self.tree is not None:
            self.tree.update(np.arange(self.tree.capacity), a["priorities"])
