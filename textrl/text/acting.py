"""Acting: ``num_envs`` summarisation environments stepped in lock-step by one Q-network.

Each round resets every environment, encodes their sources once
(:meth:`~textrl.text.qnetwork.QNetwork.encode_source`) and then takes one batched, cached network
step per token (:meth:`~textrl.text.qnetwork.QNetwork.step`), epsilon-greedy inside each
episode's action mask, until every episode has ended. The result is a :class:`Rollout` of
whole :class:`~textrl.dqn.episode_replay.Episode` for the replay.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch

from textrl.dqn.episode_replay import Episode
from textrl.dqn.policy import epsilon_greedy, masked_q
from textrl.envs.summarize import SummarizeEnv
from textrl.text.batches import pad_sources
from textrl.text.qnetwork import QNetwork

__all__ = ["LockstepActor", "Rollout"]


class Rollout(NamedTuple):
    """One round of acting."""

    episodes: list[Episode]  # one per environment, in environment order
    steps: int  # environment steps taken in all
    scores: list[float]  # each episode's return (= its final score: rewards telescope)
    indices: list[int]  # each episode's document (its index in the environments' examples)
    env_seconds: float = 0.0  # time spent in the environments' reset and step


class LockstepActor:
    """The training environments and how they act together (see the module docstring)."""

    def __init__(self, envs: Sequence[SummarizeEnv]) -> None:
        if not envs:
            raise ValueError("LockstepActor: expected at least one environment")
        self.envs = list(envs)
        first = self.envs[0]
        self.pad_id = first.pad_id
        self.action_token_ids = first.action_token_ids
        self.action_tokens = torch.as_tensor(first.action_token_ids)

    @torch.no_grad()
    def collect(
        self,
        net: QNetwork,
        eps: float,
        generator: torch.Generator,
        seeds: Sequence[int] | None = None,
        indices: Sequence[int] | None = None,
        sample_scale: float | None = None,
    ) -> Rollout:
        """One episode in each environment (reset with ``seeds`` when given, on the documents
        ``indices`` when given). Epsilon-greedy inside each mask, or with ``sample_scale`` a
        draw from ``softmax(sample_scale * Q)`` inside it (the soft head's policy for
        ``1 / soft_tau``)."""
        if indices is not None and len(indices) != len(self.envs):
            raise ValueError(
                f"indices: expected one document index per environment ({len(self.envs)}), "
                f"got {len(indices)}"
            )
        t_env = time.perf_counter()
        resets = [
            e.reset(
                seed=None if seeds is None else seeds[i],
                options=None if indices is None else {"index": int(indices[i])},
            )
            for i, e in enumerate(self.envs)
        ]
        env_seconds = time.perf_counter() - t_env
        sources = [o["source"][: int(o["source_length"])] for o, _ in resets]
        masks = np.stack([info["action_mask"] for _, info in resets])  # (K, A)
        src, smask = pad_sources(sources, self.pad_id)
        legal = torch.from_numpy(masks).bool()
        was_training = net.training
        net.eval()
        cache = net.encode_source(src, smask)
        q = net.step(cache)  # (K, A)
        k = len(self.envs)
        actions: list[list[int]] = [[] for _ in range(k)]
        rewards: list[list[float]] = [[] for _ in range(k)]
        done = [False] * k
        steps = 0
        while True:
            if sample_scale is None:
                a = epsilon_greedy(q, legal, eps, generator)  # (K,)
            else:
                logits = masked_q(q * sample_scale, legal)
                a = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)[:, 0]
            t_env = time.perf_counter()
            for i in range(k):
                if done[i]:
                    continue
                _, r, term, trunc, _ = self.envs[i].step(int(a[i]))
                actions[i].append(int(a[i]))
                rewards[i].append(r)
                steps += 1
                done[i] = term or trunc
            env_seconds += time.perf_counter() - t_env
            if all(done):
                break
            q = net.step(cache, self.action_tokens[a])
        net.train(was_training)
        # Stored as terminal even when the env truncated at max_new_tokens: the length limit is
        # part of this task (the state shows the position, and the last step already paid the
        # final score), so nothing follows. Bootstrapping there (gamma = 1) would read Q of a
        # state no transition ever trains, and in a first run Q diverged from it.
        episodes = [
            Episode(
                sources[i].astype(np.int32),
                self.action_token_ids[actions[i]].astype(np.int32),
                np.asarray(actions[i], dtype=np.int32),
                np.asarray(rewards[i], dtype=np.float32),
                terminated=True,
                is_demo=False,
                allowed=None if masks[i].all() else np.flatnonzero(masks[i]).astype(np.int32),
            )
            for i in range(k)
        ]
        indices_out = [int(info["index"]) for _, info in resets]
        scores = [float(sum(r)) for r in rewards]
        return Rollout(episodes, steps, scores, indices_out, env_seconds)

    def rng_states(self) -> list[dict[str, Any]]:
        """Each environment's generator state (which documents it draws next)."""
        return [e.np_random.bit_generator.state for e in self.envs]

    def set_rng_states(self, states: Sequence[dict[str, Any]]) -> None:
        for env, state in zip(self.envs, states):
            env.np_random.bit_generator.state = state
