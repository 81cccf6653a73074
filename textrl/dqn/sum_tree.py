"""A sum tree over priorities: O(log N) updates and stratified, vectorised sampling.

Prioritized experience replay (Schaul et al. 2016, Appendix B.2.1) draws transition ``i`` with
probability ``p_i / sum_k p_k``; both replays (:mod:`textrl.dqn.replay`,
:mod:`textrl.dqn.episode_replay`) keep their priorities here. Only numpy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["SumTree", "importance_weights"]


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

    def grow(self, capacity: int) -> None:
        """Enlarge to ``capacity`` leaves in place; new leaves are empty (priority 0).

        Leaves keep their indices, and a wider tree only pads with zeros, so every sum, minimum
        and sample stays exactly what the smaller tree gave.
        """
        if capacity < self.capacity:
            raise ValueError(f"SumTree.grow: cannot shrink from {self.capacity} to {capacity}")
        leaves = 1 << (int(capacity) - 1).bit_length()
        if leaves > self._leaves:
            old_sum = self._sum[self._leaves : 2 * self._leaves]
            old_min = self._min[self._leaves : 2 * self._leaves]
            self._sum = np.zeros(2 * leaves, dtype=np.float64)
            self._min = np.full(2 * leaves, np.inf, dtype=np.float64)
            self._sum[leaves : leaves + len(old_sum)] = old_sum
            self._min[leaves : leaves + len(old_min)] = old_min
            self._leaves, self._depth = leaves, leaves.bit_length() - 1
            lo, hi = leaves // 2, leaves  # parents level by level, bottom up
            while lo >= 1:
                nodes = np.arange(lo, hi)
                self._sum[nodes] = self._sum[2 * nodes] + self._sum[2 * nodes + 1]
                self._min[nodes] = np.minimum(self._min[2 * nodes], self._min[2 * nodes + 1])
                lo, hi = lo // 2, lo
        self.capacity = int(capacity)

    def leaves(self) -> np.ndarray:
        """All ``capacity`` priorities (a copy)."""
        return self._sum[self._leaves : self._leaves + self.capacity].copy()


def importance_weights(priorities: np.ndarray, tree: SumTree, beta: float) -> np.ndarray:
    """Importance weights ``(N P(i))^-beta / max_j (N P(j))^-beta = (p_i / p_min)^-beta``."""
    return (priorities / tree.min) ** (-beta)
