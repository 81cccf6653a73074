"""Replay memories: a sum tree, a transition replay for vector observations, an episode replay.

- :class:`SumTree`: priorities with O(log N) updates and stratified, vectorised sampling
  (Schaul et al. 2016, "Prioritized Experience Replay", Appendix B.2.1); it also tracks the
  minimum priority, which gives the largest importance weight over the whole memory.
- :class:`TransitionReplay`: circular numpy arrays storing each observation once (the next
  observation is the one of the following row, as SB3's ``optimize_memory_usage``); the next
  observation of an episode's last step is kept aside, so truncated episodes bootstrap from the
  right state. n-step returns are built at sample time (as RLlib's episode replay).
- :class:`EpisodeReplay`: whole token episodes stored once (the text path), episode-level
  priorities, demonstrations kept apart with a priority bonus (DQfD, Hester et al. 2018).

Only numpy here; the learner turns batches into tensors. ``state_dict()`` returns
``{"arrays": {name: ndarray}, "meta": {json-able}}`` (what :class:`textrl.runs.RunDir` saves).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "Episode",
    "EpisodeBatch",
    "EpisodeReplay",
    "SumTree",
    "TransitionBatch",
    "TransitionReplay",
    "nstep_arrays",
    "stack_padded",
]


class SumTree:
    """Binary sum tree (and min tree) over ``capacity`` non-negative priorities.

    Leaves hold priorities (0 = empty slot, never sampled). ``sample`` draws ``n`` indices with
    probability ``p_i / total`` by stratified sampling: one uniform draw in each of ``n`` equal
    segments of ``[0, total)`` (Schaul et al. 2016), all ``n`` descents vectorised per level.
    ``min`` is the smallest positive priority, tracked by a second tree, so the importance
    weights can be normalised by their maximum over the whole memory as in the paper
    (``w_i = (p_i / p_min) ** -beta``), not by the batch maximum.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"SumTree: capacity must be positive, got {capacity}")
        self.capacity = int(capacity)
        self._leaves = 1 << (self.capacity - 1).bit_length()  # a power of two >= capacity
        self._depth = self._leaves.bit_length() - 1
        self._sum = np.zeros(2 * self._leaves, dtype=np.float64)  # node i: children 2i, 2i+1
        self._min = np.full(2 * self._leaves, np.inf, dtype=np.float64)

    @property
    def total(self) -> float:
        """Sum of all priorities."""
        return float(self._sum[1])

    @property
    def min(self) -> float:
        """Smallest positive priority (``inf`` when empty)."""
        return float(self._min[1])

    def __getitem__(self, idx: Any) -> np.ndarray:
        return self._sum[np.asarray(idx, dtype=np.int64) + self._leaves]

    def update(self, idx: Any, priority: Any) -> None:
        """Set ``priority`` (scalar or array) at leaf ``idx`` (int or array); sums recomputed.

        Parents are recomputed from their children (not updated by deltas), so float error
        never accumulates. For a repeated index the last value wins.
        """
        idx = np.atleast_1d(np.asarray(idx, dtype=np.int64))
        prio = np.broadcast_to(np.asarray(priority, dtype=np.float64), idx.shape)
        if idx.size == 0:
            return
        if idx.min() < 0 or idx.max() >= self.capacity:
            raise IndexError(f"SumTree: index out of range [0, {self.capacity}): {idx}")
        if not np.all(np.isfinite(prio) & (prio >= 0)):
            raise ValueError(f"SumTree: priorities must be finite and >= 0, got {prio}")
        nodes = idx + self._leaves
        self._sum[nodes] = prio
        self._min[nodes] = np.where(prio > 0, prio, np.inf)
        for _ in range(self._depth):
            nodes = np.unique(nodes >> 1)
            left, right = 2 * nodes, 2 * nodes + 1
            self._sum[nodes] = self._sum[left] + self._sum[right]
            self._min[nodes] = np.minimum(self._min[left], self._min[right])

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Stratified draw of ``n`` leaf indices; returns ``(indices int64, priorities)``."""
        total = self.total
        if not total > 0:
            raise ValueError("SumTree.sample: all priorities are zero (nothing to sample)")
        u = (np.arange(n) + rng.random(n)) * (total / n)  # (n,) one point per segment
        node = np.ones(n, dtype=np.int64)
        for _ in range(self._depth):
            left = 2 * node
            left_sum = self._sum[left]
            # Go right past the left mass, but never into an empty subtree (float round-off
            # near the total would otherwise land on a zero-priority leaf).
            go_right = (u >= left_sum) & (self._sum[left + 1] > 0)
            u = np.where(go_right, u - left_sum, u)
            node = np.where(go_right, left + 1, left)
        return node - self._leaves, self._sum[node]

    def leaves(self) -> np.ndarray:
        """All ``capacity`` priorities (a copy)."""
        return self._sum[self._leaves:self._leaves + self.capacity].copy()


def _is_weights(priorities: np.ndarray, tree: SumTree, beta: float) -> np.ndarray:
    """Importance weights ``(N P(i))^-beta / max_j (N P(j))^-beta = (p_i / p_min)^-beta``."""
    return (priorities / tree.min) ** (-beta)


# --------------------------------------------------------------------------------------------
# Vector observations


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

    def __init__(self, capacity: int, obs_shape: Sequence[int], num_envs: int = 1,
                 gamma: float = 0.99, n_step: int = 1, prioritized: bool = False,
                 alpha: float = 0.6, eps: float = 1e-6, obs_dtype: Any = np.float32) -> None:
        if num_envs < 1 or capacity // num_envs < 2:
            raise ValueError(f"TransitionReplay: capacity must be >= 2 * num_envs, got "
                             f"capacity={capacity}, num_envs={num_envs}")
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

    def add(self, obs: Any, action: Any, reward: Any, next_obs: Any, terminated: Any,
            truncated: Any, mask: Any = None, next_mask: Any = None) -> None:
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
        ended = (np.asarray(terminated, dtype=bool) | np.asarray(truncated, dtype=bool))
        ended = ended.reshape(E)
        broken = self.pending & ~np.all((obs == self.last_next_obs).reshape(E, -1), axis=1)
        if broken.any():
            raise ValueError(f"TransitionReplay.add: obs of env(s) {np.flatnonzero(broken)} "
                             "differs from the previous next_obs though that step did not end "
                             "the episode; pass terminated/truncated=True at episode ends")
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

    def sample(self, batch_size: int, rng: np.random.Generator,
               beta: float = 0.4) -> TransitionBatch:
        """Sample n-step transitions: uniform, or by priority with IS weights (exponent beta)."""
        E = self.num_envs
        if not self.ready.any():
            raise ValueError("TransitionReplay.sample: no complete transition stored yet")
        if self.tree is not None:
            flat, prios = self.tree.sample(batch_size, rng)
            weights = _is_weights(prios, self.tree, beta).astype(np.float32)
        else:
            flat = rng.integers(0, len(self), size=batch_size)
            bad = ~self.ready.reshape(-1)[flat]
            while bad.any():  # at most num_envs steps are pending: rejection is cheap
                flat[bad] = rng.integers(0, len(self), size=int(bad.sum()))
                bad = ~self.ready.reshape(-1)[flat]
            weights = np.ones(batch_size, dtype=np.float32)
        row, env = np.divmod(flat, E)
        returns, discounts, last = self._nstep(row, env)
        boot = (last + 1) % self.rows
        next_obs = self.obs[boot, env]  # (B, *obs_shape), a copy
        masks = next_masks = None
        if self.masks is not None:
            masks, next_masks = self.masks[row, env], self.masks[boot, env]
        for i in np.flatnonzero(self.terminated[last, env] | self.truncated[last, env]):
            final_obs, final_mask = self.final[int(last[i]) * E + int(env[i])]
            next_obs[i] = final_obs
            if next_masks is not None:
                next_masks[i] = 1 if final_mask is None else final_mask
        return TransitionBatch(self.obs[row, env], self.actions[row, env], returns, discounts,
                               next_obs, masks, next_masks, weights, flat.astype(np.int64))

    def _nstep(self, row: np.ndarray, env: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Windows from ``row``: (returns, discounts, last row used), vectorised over the batch."""
        returns = np.zeros(row.shape, dtype=np.float64)
        steps = np.zeros(row.shape, dtype=np.int64)
        active = np.ones(row.shape, dtype=bool)
        last, r = row.copy(), row.copy()
        for k in range(self.n_step):
            returns += np.where(active, self.gamma ** k * self.rewards[r, env], 0.0)
            last = np.where(active, r, last)
            steps += active
            nxt = (r + 1) % self.rows
            ended = self.terminated[r, env] | self.truncated[r, env]
            active &= ~ended & self.ready[nxt, env]
            r = nxt
        discounts = np.where(self.terminated[last, env], 0.0, self.gamma ** steps)
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
        arrays = {name: getattr(self, name)[:n] for name in
                  ("obs", "actions", "rewards", "terminated", "truncated", "ready")}
        if self.masks is not None:
            arrays["masks"] = self.masks[:n]
        keys = sorted(self.final)
        arrays["final_index"] = np.asarray(keys, dtype=np.int64)
        arrays["final_obs"] = np.stack([self.final[k][0] for k in keys]) if keys else \
            np.zeros((0,) + self.obs_shape, dtype=self.obs.dtype)
        has_mask = [self.final[k][1] is not None for k in keys]
        if any(has_mask):
            width = next(m.shape[0] for _, m in self.final.values() if m is not None)
            arrays["final_mask"] = np.stack([np.ones(width, np.int8) if m is None else m
                                             for _, m in (self.final[k] for k in keys)])
            arrays["final_has_mask"] = np.asarray(has_mask)
        arrays["pending"], arrays["last_next_obs"] = self.pending, self.last_next_obs
        if self.last_next_mask is not None:
            arrays["last_next_mask"] = self.last_next_mask
        if self.tree is not None:
            arrays["priorities"] = self.tree.leaves()
        meta = {"kind": "TransitionReplay", "rows": self.rows, "num_envs": self.num_envs,
                "obs_shape": list(self.obs_shape), "gamma": self.gamma, "n_step": self.n_step,
                "prioritized": self.prioritized, "alpha": self.alpha, "eps": self.eps,
                "pos": self.pos, "full": self.full, "max_priority": self.max_priority}
        return {"arrays": {k: np.ascontiguousarray(v) for k, v in arrays.items()}, "meta": meta}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`; the replay must have been built with the same shape."""
        a, meta = state["arrays"], state["meta"]
        for key in ("rows", "num_envs", "obs_shape", "prioritized"):
            mine = list(self.obs_shape) if key == "obs_shape" else getattr(self, key)
            if meta[key] != mine:
                raise ValueError(f"TransitionReplay.load_state_dict: {key} is {mine!r} here but "
                                 f"{meta[key]!r} in the saved state")
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
            int(k): (a["final_obs"][i].copy(),
                     a["final_mask"][i].copy() if has_mask is not None and has_mask[i] else None)
            for i, k in enumerate(a["final_index"])}
        self.pending = a["pending"].astype(bool).copy()
        self.last_next_obs = a["last_next_obs"].copy()
        self.last_next_mask = a["last_next_mask"].copy() if "last_next_mask" in a else None
        if self.tree is not None:
            self.tree.update(np.arange(self.tree.capacity), a["priorities"])


# --------------------------------------------------------------------------------------------
# Token episodes (text path)


def nstep_arrays(rewards: np.ndarray, terminated: bool, gamma: float, n: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n-step returns of one episode of ``T`` steps, vectorised over its steps.

    State index ``i`` means "after ``i`` generated tokens": step ``t`` goes from state ``t`` to
    ``t + 1``; state ``T`` is terminal when ``terminated`` (EOS) and is bootstrapped from when
    the episode was truncated. For each step ``t``, with ``m = min(n, T - t)``:

    - ``returns_n[t] = sum_{k<m} gamma^k r_{t+k}`` (float32)
    - ``bootstrap_index[t] = t + m`` (int64, at most ``T``)
    - ``discounts_n[t] = gamma^m``, or 0 when ``t + m == T`` and the episode terminated.

    The target is ``returns_n + discounts_n * V(s[bootstrap_index])`` (Sutton & Barto ch. 7).
    """
    if n < 1:
        raise ValueError(f"nstep_arrays: n must be >= 1, got {n}")
    r = np.asarray(rewards, dtype=np.float64)
    T = r.shape[0]
    t = np.arange(T)
    padded = np.concatenate([r, np.zeros(n)])  # (T + n,)
    returns = np.zeros(T, dtype=np.float64)
    for k in range(n):
        returns += gamma ** k * padded[t + k]  # zero past the episode's end
    boot = np.minimum(t + n, T)
    discounts = gamma ** (boot - t).astype(np.float64)
    if terminated:
        discounts[boot == T] = 0.0
    return returns.astype(np.float32), discounts.astype(np.float32), boot.astype(np.int64)


def stack_padded(arrays: Sequence[np.ndarray], pad_value: Any = 0, dtype: Any = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad 1-D arrays into ``(B, max_len)``; returns ``(padded, lengths int64)``."""
    lengths = np.asarray([len(a) for a in arrays], dtype=np.int64)
    dtype = dtype or (arrays[0].dtype if len(arrays) else np.float32)
    out = np.full((len(arrays), int(lengths.max(initial=0))), pad_value, dtype=dtype)
    for i, a in enumerate(arrays):
        out[i, :len(a)] = a
    return out, lengths


class Episode(NamedTuple):
    """One token episode of ``T >= 1`` steps, stored once."""

    source: np.ndarray  # (S,) int32 source token ids (unpadded)
    tokens: np.ndarray  # (T,) int32 generated token ids
    actions: np.ndarray  # (T,) int32 action indices
    rewards: np.ndarray  # (T,) float32
    terminated: bool  # ended by EOS (True) or truncated at the length limit (False)
    is_demo: bool  # a demonstration (e.g. a reference summary)
    allowed: np.ndarray | None  # (K,) sorted int32 legal action indices; None = all legal


class EpisodeBatch(NamedTuple):
    """Episodes drawn by :meth:`EpisodeReplay.sample_episodes` (repeats possible)."""

    episode_ids: np.ndarray  # (B,) int64, for update_priorities
    episodes: list[Episode]
    weights: np.ndarray  # (B,) float32 importance weights (ones when not prioritized)


class EpisodeReplay:
    """Replay of whole token episodes with episode-level prioritized sampling.

    ``capacity`` counts agent transitions: when a new episode does not fit, whole oldest agent
    episodes are evicted. Demonstrations count against ``demo_capacity`` instead and are never
    evicted by agent data (DQfD keeps them permanently); past ``demo_capacity`` the oldest
    demonstrations go. An episode's priority is ``(max_t |TD_t| + eps + demo_bonus) ** alpha``
    (DQfD adds a demonstration bonus epsilon_d to the priority, Hester et al. 2018); a new episode
    gets the largest priority seen so far (Schaul et al. 2016). ``prioritized=False`` samples
    episodes uniformly. Episodes get increasing integer ids.
    """

    def __init__(self, capacity: int, demo_capacity: int = 0, prioritized: bool = True,
                 alpha: float = 0.6, eps: float = 1e-6, demo_bonus: float = 1.0) -> None:
        if capacity < 1 or demo_capacity < 0:
            raise ValueError(f"EpisodeReplay: capacity must be >= 1 and demo_capacity >= 0, got "
                             f"{capacity} and {demo_capacity}")
        self.capacity, self.demo_capacity = int(capacity), int(demo_capacity)
        self.prioritized, self.alpha = prioritized, float(alpha)
        self.eps, self.demo_bonus = float(eps), float(demo_bonus)
        # Every episode has >= 1 step, so capacity + demo_capacity slots always suffice.
        self.tree = SumTree(self.capacity + self.demo_capacity)
        self.episodes: dict[int, Episode] = {}
        self.slot: dict[int, int] = {}
        self._slot_id = np.full(self.tree.capacity, -1, dtype=np.int64)  # slot -> episode id
        self.td_max: dict[int, float] = {}  # raw |TD| max (+eps) per episode
        self._order: dict[bool, OrderedDict[int, int]] = {False: OrderedDict(),
                                                          True: OrderedDict()}  # id -> length
        self._free = list(range(self.tree.capacity - 1, -1, -1))
        self.transitions = {False: 0, True: 0}  # agent, demo
        self.next_id = 0
        self.max_td = 1.0

    def __len__(self) -> int:
        """Number of stored episodes."""
        return len(self.episodes)

    @property
    def num_transitions(self) -> int:
        return self.transitions[False] + self.transitions[True]

    def _priority(self, td: float, is_demo: bool) -> float:
        if not self.prioritized:
            return 1.0
        return (td + (self.demo_bonus if is_demo else 0.0)) ** self.alpha

    def add(self, source: Any, tokens: Any, actions: Any, rewards: Any, terminated: bool,
            is_demo: bool = False, allowed: Any = None) -> int:
        """Store one episode; returns its id. Evicts whole oldest episodes of its kind."""
        ep = Episode(np.asarray(source, dtype=np.int32).reshape(-1),
                     np.asarray(tokens, dtype=np.int32).reshape(-1),
                     np.asarray(actions, dtype=np.int32).reshape(-1),
                     np.asarray(rewards, dtype=np.float32).reshape(-1), bool(terminated),
                     bool(is_demo),
                     None if allowed is None else np.unique(np.asarray(allowed, dtype=np.int32)))
        T = len(ep.actions)
        if T < 1 or len(ep.tokens) != T or len(ep.rewards) != T:
            raise ValueError(f"EpisodeReplay.add: tokens, actions and rewards must have the same "
                             f"length >= 1, got {len(ep.tokens)}, {T}, {len(ep.rewards)}")
        limit = self.demo_capacity if ep.is_demo else self.capacity
        if T > limit:
            raise ValueError(f"EpisodeReplay.add: an episode of {T} steps exceeds "
                             f"{'demo_capacity' if ep.is_demo else 'capacity'}={limit}")
        while self.transitions[ep.is_demo] + T > limit:
            self._evict(next(iter(self._order[ep.is_demo])))
        eid, self.next_id = self.next_id, self.next_id + 1
        slot = self._free.pop()
        self.episodes[eid], self.slot[eid], self.td_max[eid] = ep, slot, self.max_td
        self._slot_id[slot] = eid
        self._order[ep.is_demo][eid] = T
        self.transitions[ep.is_demo] += T
        self.tree.update(slot, self._priority(self.max_td, ep.is_demo))
        return eid

    def _evict(self, eid: int) -> None:
        ep = self.episodes.pop(eid)
        slot = self.slot.pop(eid)
        del self.td_max[eid]
        self.transitions[ep.is_demo] -= self._order[ep.is_demo].pop(eid)
        self.tree.update(slot, 0.0)
        self._slot_id[slot] = -1
        self._free.append(slot)

    def sample_episodes(self, n_episodes: int, rng: np.random.Generator,
                        beta: float = 0.4) -> EpisodeBatch:
        """Draw ``n_episodes`` by episode priority (stratified) with IS weights ``(p/p_min)^-b``."""
        if not self.episodes:
            raise ValueError("EpisodeReplay.sample_episodes: the replay is empty")
        slots, prios = self.tree.sample(n_episodes, rng)
        ids = self._slot_id[slots]
        weights = (_is_weights(prios, self.tree, beta) if self.prioritized
                   else np.ones(n_episodes))
        return EpisodeBatch(ids, [self.episodes[int(i)] for i in ids],
                            weights.astype(np.float32))

    def update_priorities(self, episode_ids: Sequence[int] | np.ndarray,
                          per_step_td_errors: Sequence[np.ndarray]) -> None:
        """Set each episode's priority from its steps' TD errors (max |TD| + eps).

        Ids evicted since sampling are ignored.
        """
        for eid, td in zip(episode_ids, per_step_td_errors, strict=True):
            eid = int(eid)
            if eid not in self.episodes:
                continue
            raw = float(np.abs(np.asarray(td, dtype=np.float64)).max(initial=0.0)) + self.eps
            self._set_td(eid, raw)
            self.max_td = max(self.max_td, raw)

    def _set_td(self, eid: int, raw: float) -> None:
        self.td_max[eid] = raw
        self.tree.update(self.slot[eid], self._priority(raw, self.episodes[eid].is_demo))

    def state_dict(self) -> dict[str, Any]:
        """Episodes concatenated into flat arrays with offsets, plus JSON metadata."""
        ids = list(self.episodes)  # insertion order = age order
        eps = [self.episodes[i] for i in ids]
        arrays: dict[str, np.ndarray] = {
            "ids": np.asarray(ids, dtype=np.int64),
            "terminated": np.asarray([e.terminated for e in eps], dtype=bool),
            "is_demo": np.asarray([e.is_demo for e in eps], dtype=bool),
            "td_max": np.asarray([self.td_max[i] for i in ids], dtype=np.float64),
            "slots": np.asarray([self.slot[i] for i in ids], dtype=np.int64),
            "free_slots": np.asarray(self._free, dtype=np.int64),
            "has_allowed": np.asarray([e.allowed is not None for e in eps], dtype=bool)}
        for name, dtype in (("source", np.int32), ("tokens", np.int32), ("actions", np.int32),
                            ("rewards", np.float32), ("allowed", np.int32)):
            parts = [np.zeros(0, dtype) if getattr(e, name) is None else getattr(e, name)
                     for e in eps]
            arrays[name] = np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)
            arrays[name + "_len"] = np.asarray([len(p) for p in parts], dtype=np.int64)
        meta = {"kind": "EpisodeReplay", "capacity": self.capacity,
                "demo_capacity": self.demo_capacity, "prioritized": self.prioritized,
                "alpha": self.alpha, "eps": self.eps, "demo_bonus": self.demo_bonus,
                "next_id": self.next_id, "max_td": self.max_td}
        return {"arrays": arrays, "meta": meta}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`: settings, episodes, priorities and tree slots."""
        a, meta = state["arrays"], state["meta"]
        self.__init__(meta["capacity"], meta["demo_capacity"], meta["prioritized"],  # type: ignore[misc]
                      meta["alpha"], meta["eps"], meta["demo_bonus"])
        split = {name: np.split(a[name], np.cumsum(a[name + "_len"])[:-1])
                 if len(a[name + "_len"]) else []
                 for name in ("source", "tokens", "actions", "rewards", "allowed")}
        self._free = a["free_slots"].tolist()
        for i, eid in enumerate(a["ids"].tolist()):
            ep = Episode(split["source"][i], split["tokens"][i], split["actions"][i],
                         split["rewards"][i], bool(a["terminated"][i]), bool(a["is_demo"][i]),
                         split["allowed"][i] if a["has_allowed"][i] else None)
            slot = int(a["slots"][i])
            self.episodes[eid], self.slot[eid], self._slot_id[slot] = ep, slot, eid
            self._order[ep.is_demo][eid] = len(ep.actions)
            self.transitions[ep.is_demo] += len(ep.actions)
            self._set_td(eid, float(a["td_max"][i]))
        self.next_id, self.max_td = int(meta["next_id"]), float(meta["max_td"])
