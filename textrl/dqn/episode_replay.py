"""Replay of whole token episodes (the text path), with episode-level priorities.

Each :class:`Episode` is stored once (source, tokens, actions, rewards, legal actions); n-step
targets are built from whole episodes at learning time (:func:`nstep_arrays`), so one forward
pass of the Q-network gives Q for every step of a sampled episode. Demonstrations are kept apart
with a priority bonus (DQfD, Hester et al. 2018). Only numpy here.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from textrl.dqn.sum_tree import SumTree, importance_weights

__all__ = ["Episode", "EpisodeBatch", "EpisodeReplay", "nstep_arrays", "stack_padded"]


_INITIAL_SLOTS = 1024  # the episode replay's first tree size; it doubles when full


def _free_slots(free: np.ndarray, meta: dict[str, Any], max_slots: int) -> tuple[list[int], int]:
    """A checkpoint's free slots as (given-back slots, first never-used slot).

    Checkpoints written before the tree could grow hold the whole free list: the never-used
    slots ``max_slots - 1, ..., m`` (popped from the end, so ``m`` first) followed by the
    given-back ones. Either way the slots are reused in the same order.
    """
    if "fresh_slots_from" in meta:
        return free.tolist(), int(meta["fresh_slots_from"])
    run = free == max_slots - 1 - np.arange(len(free))
    k = len(free) if run.all() else int(np.argmin(run))  # length of the never-used prefix
    return free[k:].tolist(), max_slots - k


def nstep_arrays(
    rewards: np.ndarray, terminated: bool, gamma: float, n: int
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
        returns += gamma**k * padded[t + k]  # zero past the episode's end
    boot = np.minimum(t + n, T)
    discounts = gamma ** (boot - t).astype(np.float64)
    if terminated:
        discounts[boot == T] = 0.0
    return returns.astype(np.float32), discounts.astype(np.float32), boot.astype(np.int64)


def stack_padded(
    arrays: Sequence[np.ndarray], pad_value: Any = 0, dtype: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad 1-D arrays into ``(B, max_len)``; returns ``(padded, lengths int64)``."""
    lengths = np.asarray([len(a) for a in arrays], dtype=np.int64)
    dtype = dtype or (arrays[0].dtype if len(arrays) else np.float32)
    out = np.full((len(arrays), int(lengths.max(initial=0))), pad_value, dtype=dtype)
    for i, a in enumerate(arrays):
        out[i, : len(a)] = a
    return out, lengths


class Episode(NamedTuple):
    """One token episode of ``T >= 1`` steps, stored once."""

    source: np.ndarray  # (S,) int32 source token ids (unpadded)
    tokens: np.ndarray  # (T,) int32 generated token ids
    actions: np.ndarray  # (T,) int32 action indices
    rewards: np.ndarray  # (T,) float32 in replay (demonstrations outside it: float64)
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
    episodes uniformly. Episodes get increasing integer ids. ``demos_in_batch=False`` keeps the
    demonstrations out of :meth:`sample_episodes` (priority 0); :meth:`sample_demos` draws them
    (the text agent's self-imitation keeps its elite episodes there).
    """

    def __init__(
        self,
        capacity: int,
        demo_capacity: int = 0,
        prioritized: bool = True,
        alpha: float = 0.6,
        eps: float = 1e-6,
        demo_bonus: float = 1.0,
        demos_in_batch: bool = True,
    ) -> None:
        if capacity < 1 or demo_capacity < 0:
            raise ValueError(
                f"EpisodeReplay: capacity must be >= 1 and demo_capacity >= 0, got "
                f"{capacity} and {demo_capacity}"
            )
        self.capacity, self.demo_capacity = int(capacity), int(demo_capacity)
        self.prioritized, self.alpha = prioritized, float(alpha)
        self.eps, self.demo_bonus = float(eps), float(demo_bonus)
        self.demos_in_batch = bool(demos_in_batch)
        # Every episode has >= 1 step, so capacity + demo_capacity slots always suffice. The tree
        # starts small and doubles as episodes arrive: the text learner's demonstration store is
        # "unbounded" (10M), and a full-size tree, slot table and free list cost ~1 GB of memory
        # and 80 MB in every checkpoint for a store that holds a few thousand episodes.
        self.max_slots = self.capacity + self.demo_capacity
        self.tree = SumTree(min(self.max_slots, _INITIAL_SLOTS))
        self.episodes: dict[int, Episode] = {}
        self.slot: dict[int, int] = {}
        self._slot_id = np.full(self.tree.capacity, -1, dtype=np.int64)  # slot -> episode id
        self.td_max: dict[int, float] = {}  # raw |TD| max (+eps) per episode
        self._order: dict[bool, OrderedDict[int, int]] = {
            False: OrderedDict(),
            True: OrderedDict(),
        }  # id -> length
        # Free slots: the ones evicted episodes gave back (reused last-in first-out), then the
        # never-used ones from ``_fresh`` upwards.
        self._free: list[int] = []
        self._fresh = 0
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
        if is_demo and not self.demos_in_batch:
            return 0.0  # kept apart: drawn by sample_demos only
        if not self.prioritized:
            return 1.0
        return (td + (self.demo_bonus if is_demo else 0.0)) ** self.alpha

    def add(
        self,
        source: Any,
        tokens: Any,
        actions: Any,
        rewards: Any,
        terminated: bool,
        is_demo: bool = False,
        allowed: Any = None,
    ) -> int:
        """Store one episode; returns its id. Evicts whole oldest episodes of its kind."""
        ep = Episode(
            np.asarray(source, dtype=np.int32).reshape(-1),
            np.asarray(tokens, dtype=np.int32).reshape(-1),
            np.asarray(actions, dtype=np.int32).reshape(-1),
            np.asarray(rewards, dtype=np.float32).reshape(-1),
            bool(terminated),
            bool(is_demo),
            None if allowed is None else np.unique(np.asarray(allowed, dtype=np.int32)),
        )
        T = len(ep.actions)
        if T < 1 or len(ep.tokens) != T or len(ep.rewards) != T:
            raise ValueError(
                f"EpisodeReplay.add: tokens, actions and rewards must have the same "
                f"length >= 1, got {len(ep.tokens)}, {T}, {len(ep.rewards)}"
            )
        limit = self.demo_capacity if ep.is_demo else self.capacity
        if T > limit:
            raise ValueError(
                f"EpisodeReplay.add: an episode of {T} steps exceeds "
                f"{'demo_capacity' if ep.is_demo else 'capacity'}={limit}"
            )
        while self.transitions[ep.is_demo] + T > limit:
            self._evict(next(iter(self._order[ep.is_demo])))
        eid, self.next_id = self.next_id, self.next_id + 1
        slot = self._take_slot()
        self.episodes[eid], self.slot[eid], self.td_max[eid] = ep, slot, self.max_td
        self._slot_id[slot] = eid
        self._order[ep.is_demo][eid] = T
        self.transitions[ep.is_demo] += T
        self.tree.update(slot, self._priority(self.max_td, ep.is_demo))
        return eid

    def add_episode(self, episode: Episode) -> int:
        """Store an :class:`Episode` (as :meth:`add`); returns its id."""
        return self.add(*episode)

    def _take_slot(self) -> int:
        if self._free:
            return self._free.pop()
        slot, self._fresh = self._fresh, self._fresh + 1
        self._ensure_slots(self._fresh)  # never past max_slots: every episode has >= 1 step
        return slot

    def _ensure_slots(self, n: int) -> None:
        """Double the tree (and the slot table) until it has at least ``n`` slots."""
        while self.tree.capacity < n:
            self.tree.grow(min(2 * self.tree.capacity, self.max_slots))
        if len(self._slot_id) < self.tree.capacity:
            grown = np.full(self.tree.capacity, -1, dtype=np.int64)
            grown[: len(self._slot_id)] = self._slot_id
            self._slot_id = grown

    def _evict(self, eid: int) -> None:
        ep = self.episodes.pop(eid)
        slot = self.slot.pop(eid)
        del self.td_max[eid]
        self.transitions[ep.is_demo] -= self._order[ep.is_demo].pop(eid)
        self.tree.update(slot, 0.0)
        self._slot_id[slot] = -1
        self._free.append(slot)

    def sample_episodes(
        self, n_episodes: int, rng: np.random.Generator, beta: float = 0.4
    ) -> EpisodeBatch:
        """Draw ``n_episodes`` by episode priority (stratified) with IS weights ``(p/p_min)^-b``."""
        if not self.episodes:
            raise ValueError("EpisodeReplay.sample_episodes: the replay is empty")
        slots, prios = self.tree.sample(n_episodes, rng)
        ids = self._slot_id[slots]
        weights = (
            importance_weights(prios, self.tree, beta) if self.prioritized else np.ones(n_episodes)
        )
        return EpisodeBatch(ids, [self.episodes[int(i)] for i in ids], weights.astype(np.float32))

    def sample_demos(self, n_episodes: int, rng: np.random.Generator) -> list[Episode]:
        """Draw ``n_episodes`` demonstrations uniformly (with replacement)."""
        ids = list(self._order[True])
        if not ids:
            raise ValueError("EpisodeReplay.sample_demos: no demonstration is stored")
        return [self.episodes[ids[i]] for i in rng.integers(len(ids), size=n_episodes)]

    def update_priorities(
        self, episode_ids: Sequence[int] | np.ndarray, per_step_td_errors: Sequence[np.ndarray]
    ) -> None:
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
            "free_slots": np.asarray(self._free, dtype=np.int64),  # given back, LIFO
            "has_allowed": np.asarray([e.allowed is not None for e in eps], dtype=bool),
        }
        for name, dtype in (
            ("source", np.int32),
            ("tokens", np.int32),
            ("actions", np.int32),
            ("rewards", np.float32),
            ("allowed", np.int32),
        ):
            parts = [
                np.zeros(0, dtype) if getattr(e, name) is None else getattr(e, name) for e in eps
            ]
            arrays[name] = np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)
            arrays[name + "_len"] = np.asarray([len(p) for p in parts], dtype=np.int64)
        meta = {
            "kind": "EpisodeReplay",
            "capacity": self.capacity,
            "demo_capacity": self.demo_capacity,
            "prioritized": self.prioritized,
            "alpha": self.alpha,
            "eps": self.eps,
            "demo_bonus": self.demo_bonus,
            "demos_in_batch": self.demos_in_batch,
            "next_id": self.next_id,
            "fresh_slots_from": self._fresh,
            "max_td": self.max_td,
        }
        return {"arrays": arrays, "meta": meta}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`: settings, episodes, priorities and tree slots."""
        a, meta = state["arrays"], state["meta"]
        self.__init__(
            meta["capacity"],
            meta["demo_capacity"],
            meta["prioritized"],  # type: ignore[misc]
            meta["alpha"],
            meta["eps"],
            meta["demo_bonus"],
            meta.get("demos_in_batch", True),  # checkpoints before it always had them in
        )
        split = {
            name: np.split(a[name], np.cumsum(a[name + "_len"])[:-1])
            if len(a[name + "_len"])
            else []
            for name in ("source", "tokens", "actions", "rewards", "allowed")
        }
        self._free, self._fresh = _free_slots(a["free_slots"], meta, self.max_slots)
        self._ensure_slots(self._fresh)  # the slots already handed out must exist
        for i, eid in enumerate(a["ids"].tolist()):
            ep = Episode(
                split["source"][i],
                split["tokens"][i],
                split["actions"][i],
                split["rewards"][i],
                bool(a["terminated"][i]),
                bool(a["is_demo"][i]),
                split["allowed"][i] if a["has_allowed"][i] else None,
            )
            slot = int(a["slots"][i])
            self.episodes[eid], self.slot[eid], self._slot_id[slot] = ep, slot, eid
            self._order[ep.is_demo][eid] = len(ep.actions)
            self.transitions[ep.is_demo] += len(ep.actions)
            self._set_td(eid, float(a["td_max"][i]))
        self.next_id, self.max_td = int(meta["next_id"]), float(meta["max_td"])
