"""Ape-X on Ray: many acting processes feed one learner's replay (Horgan et al. 2018).

``textrl train --actors N`` starts N Ray actors (:class:`ActorPool`); each holds its own
environments and a CPU copy of the Q-network and acts epsilon-greedily inside the action mask
with its own fixed epsilon, Ape-X's ``eps_i = eps ** (1 + alpha * i / (N - 1))``
(:func:`apex_epsilons`; ``--apex-eps`` 0.4 and ``--apex-alpha`` 7 as in the paper, for both the
gym and the text agent). Actors return whole episodes in the replay's own compact form (the
gym path: each observation once, Atari frames unstacked; the text path:
:class:`~textrl.dqn.episode_replay.Episode`), gym episodes with initial priorities from the
actor's own 1-step TD errors (text episodes get the replay's maximal priority). The learner
(the driver process, :mod:`textrl.dqn.train_gym` and :mod:`textrl.text.train`) inserts them,
learns at the configured replay ratio, and every ``--publish-every`` gradient steps puts a new
weights version into Ray's object store; each actor loads the newest version at its next call.
The policy lag (learner version minus the version that acted) is logged.

Ray is imported only here, only when ``--actors`` is given (``pip install
'textrl-gym[distributed]'``). ``ray.init()`` starts a local Ray unless ``--ray-address`` (or
``RAY_ADDRESS``) names a cluster. Actors are restarted by Ray when their process dies
(``max_restarts=-1``); the call that died is dropped (its partial episodes are lost, the replay
and counters are the learner's) and the restarted actor gets a new call. Checkpoints stay the
learner's, so ``--resume`` works as without actors (actors start afresh, with new seeds).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from textrl.dqn.config import MissingExtra
from textrl.dqn.policy import epsilon_greedy_one, info_mask

__all__ = ["ActorPool", "GymActorWorker", "TextActorWorker", "apex_epsilons", "import_ray"]


def apex_epsilons(n: int, eps: float = 0.4, alpha: float = 7.0) -> list[float]:
    """Ape-X's per-actor exploration: ``eps ** (1 + alpha * i / (n - 1))``; one actor: ``eps``."""
    if n < 1:
        raise ValueError(f"apex_epsilons: expected n >= 1 actors, got {n}")
    if n == 1:
        return [eps]
    return [eps ** (1 + alpha * i / (n - 1)) for i in range(n)]


def import_ray() -> Any:
    try:
        import ray
    except ModuleNotFoundError as exc:
        raise MissingExtra("--actors needs Ray: pip install 'textrl-gym[distributed]'") from exc
    return ray


def cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A module's weights as CPU tensors (what actors load)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


class ActorPool:
    """N Ray actors of ``worker_cls``, each with one outstanding ``collect`` call.

    ``publish(weights)`` puts a new weights version into the object store; ``submit(i)`` asks
    actor ``i`` to act with the newest version; ``ready(timeout)`` returns the finished calls
    as ``(i, result)`` pairs, with ``result`` None for a call whose actor died (Ray restarts
    the actor; submit to it again). ``shutdown()`` stops the actors, and Ray if this pool
    started it.
    """

    def __init__(
        self,
        worker_cls: type,
        args: Sequence[tuple[Any, ...]],
        address: str | None = None,
        max_restarts: int = -1,
    ) -> None:
        ray = self.ray = import_ray()
        self.started = not ray.is_initialized()
        if self.started:
            address = address or os.environ.get("RAY_ADDRESS")
            local = {} if address else {"num_cpus": max(os.cpu_count() or 1, len(args))}
            ray.init(
                address=address,
                include_dashboard=False,
                log_to_driver=False,
                logging_level="ERROR",
                **local,
            )
        remote = ray.remote(num_cpus=1, max_restarts=max_restarts, max_task_retries=0)(worker_cls)
        # Constructor arguments (documents, tokenizer) go into the object store once and stay
        # referenced here, so that Ray can restart an actor with them at any time.
        self.arg_refs = [[ray.put(x) for x in a] for a in args]
        self.handles = [remote.remote(*refs) for refs in self.arg_refs]
        self.inflight: dict[Any, int] = {}
        self.weights: Any = None
        self.version = -1
        self.failures = 0

    def __len__(self) -> int:
        return len(self.handles)

    def publish(self, weights: dict[str, torch.Tensor]) -> int:
        """Make ``weights`` (CPU tensors) the newest version; returns its number."""
        self.weights, self.version = self.ray.put(weights), self.version + 1
        return self.version

    def submit(self, i: int, *args: Any) -> None:
        # The weights' ref travels inside a list, so Ray does not fetch and unpickle the weights
        # for every call: the actor fetches them only when the version is new to it.
        ref = self.handles[i].collect.remote([self.weights], self.version, *args)
        self.inflight[ref] = i

    def ready(self, timeout: float) -> list[tuple[int, dict[str, Any] | None]]:
        if not self.inflight:
            return []
        done, _ = self.ray.wait(
            list(self.inflight), num_returns=len(self.inflight), timeout=timeout
        )
        out = []
        for ref in done:
            i = self.inflight.pop(ref)
            try:
                out.append((i, self.ray.get(ref)))
            except self.ray.exceptions.RayActorError:
                self.failures += 1
                out.append((i, None))
        return out

    def kill(self, i: int) -> None:
        """Kill actor ``i``'s process (Ray restarts it): for fault-tolerance tests."""
        self.ray.kill(self.handles[i], no_restart=False)

    def shutdown(self) -> None:
        self.inflight.clear()  # killing the actors ends their calls
        for handle in self.handles:
            self.ray.kill(handle, no_restart=True)
        if self.started:
            self.ray.shutdown()


class GymActorWorker:
    """An Ape-X actor of the gym path: one env, a CPU Q-network, a fixed epsilon."""

    def __init__(
        self,
        env_id: str,
        net_args: dict[str, Any],
        index: int,
        epsilon: float,
        seed: int,
        gamma: float = 0.99,
    ) -> None:
        from textrl.dqn.atari import make_gym_env
        from textrl.dqn.train_gym import build_q_network

        torch.set_num_threads(1)
        self.env = make_gym_env(env_id, train=True)
        self.net = build_q_network(**net_args).eval()
        self.n_actions = net_args["n_actions"]
        self.gamma = gamma  # of the initial priorities' 1-step TD errors
        self.index, self.epsilon = index, epsilon
        self.rng = np.random.default_rng(seed)
        self.gen = torch.Generator().manual_seed(seed)
        self.version = -1
        self.obs: Any = None
        self.info: dict[str, Any] = {}
        self.episode: dict[str, list[Any]] = {}

    def collect(self, weights: list[Any], version: int, min_steps: int) -> dict[str, Any]:
        """Act at least ``min_steps`` steps; return the episodes that ended meanwhile."""
        t0 = time.perf_counter()
        self.version = _load_newest(self.net, weights, version, self.version)
        episodes, env_seconds = [], 0.0
        for _ in range(min_steps):
            if self.obs is None:
                self.obs, self.info = self.env.reset(seed=int(self.rng.integers(2**31)))
                self.episode = {"obs": [self.obs], "actions": [], "rewards": [], "masks": []}
                self.episode["masks"].append(info_mask(self.info))
            mask = self.episode["masks"][-1]
            mask_t = None if mask is None else torch.from_numpy(mask)

            def q_values() -> torch.Tensor:
                with torch.no_grad():
                    return self.net(torch.as_tensor(np.asarray(self.obs))[None])

            action = epsilon_greedy_one(q_values, self.n_actions, mask_t, self.epsilon, self.gen)
            t_env = time.perf_counter()
            self.obs, reward, terminated, truncated, self.info = self.env.step(action)
            env_seconds += time.perf_counter() - t_env
            ep = self.episode
            ep["obs"].append(self.obs)
            ep["actions"].append(action)
            ep["rewards"].append(float(reward))
            ep["masks"].append(info_mask(self.info))
            if terminated or truncated:
                episodes.append(self._finish(bool(terminated), bool(truncated)))
                self.obs = None
        return {
            "episodes": episodes,
            "steps": sum(len(e["actions"]) for e in episodes),
            "version": self.version,
            "index": self.index,
            "seconds": time.perf_counter() - t0,
            "env_seconds": env_seconds,
        }

    def _finish(self, terminated: bool, truncated: bool) -> dict[str, Any]:
        """The episode in compact form, with 1-step TD errors of this actor's network."""
        ep = self.episode
        obs = np.stack([np.asarray(o) for o in ep["obs"]])  # (T + 1, *obs_shape)
        actions = np.asarray(ep["actions"], dtype=np.int64)
        rewards = np.asarray(ep["rewards"], dtype=np.float32)
        masks = None if ep["masks"][0] is None else np.stack(ep["masks"])
        with torch.no_grad():
            q = self.net(torch.from_numpy(obs)).double().numpy()  # (T + 1, A)
        if masks is not None:
            q = np.where(masks == 0, -np.inf, q)
        boot = q[1:].max(1)
        if terminated:
            boot[-1] = 0.0
        td = rewards + self.gamma * boot - q[np.arange(len(actions)), actions]
        if obs.ndim == 4:  # stacked frames: send each frame once (FrameReplay restacks)
            obs = obs[:, -1]
        return {
            "obs": obs,
            "actions": actions,
            "rewards": rewards,
            "terminated": terminated,
            "truncated": truncated,
            "priorities": np.nan_to_num(np.abs(td), posinf=0.0),
            "masks": masks,
        }


class TextActorWorker:
    """An Ape-X actor of the text agent: ``num_envs`` environments on its own shard of the
    training split, every ``num_shards``-th row from row ``index``, which it loads itself
    (:func:`textrl.data.load_examples` with ``shard``: ``datasets`` sharding for folders and hub
    datasets), acting in lock-step (one cached network step per token for all)."""

    def __init__(
        self,
        cfg_values: dict[str, Any],
        tokenizer: Any,
        index: int,
        num_shards: int,
        epsilon: float,
        seed: int,
    ) -> None:
        from textrl.data import load_examples
        from textrl.text.acting import LockstepActor
        from textrl.text.build import build_network, make_env
        from textrl.text.config import TextConfig

        torch.set_num_threads(1)
        cfg = TextConfig(**cfg_values)
        examples = load_examples(
            cfg.data,
            cfg.split,
            document_column=cfg.document_column,
            summary_column=cfg.summary_column,
            holdout=cfg.holdout,
            shard=(index, num_shards),
        )
        self.num_examples = len(examples)
        data = examples.examples
        if cfg.reward_oracle:
            from textrl.text.demos import with_oracle_references

            data = with_oracle_references(data, make_env(cfg, cfg.split, tokenizer, data=data))
        envs = [make_env(cfg, cfg.split, tokenizer, data=data) for _ in range(cfg.num_envs)]
        self.actor = LockstepActor(envs)
        self.net = build_network(cfg, envs[0]).eval()
        self.index, self.epsilon = index, epsilon
        self.gen = torch.Generator().manual_seed(seed)
        self.seeds: list[int] | None = [seed + i for i in range(cfg.num_envs)]
        self.version = -1

    def collect(self, weights: list[Any], version: int) -> dict[str, Any]:
        """One episode per environment with the newest weights."""
        t0 = time.perf_counter()
        self.version = _load_newest(self.net, weights, version, self.version)
        rollout = self.actor.collect(self.net, self.epsilon, self.gen, self.seeds)
        self.seeds = None
        return {
            "episodes": rollout.episodes,
            "scores": rollout.scores,
            "steps": rollout.steps,
            "version": self.version,
            "index": self.index,
            "seconds": time.perf_counter() - t0,
            "env_seconds": rollout.env_seconds,
        }


def _load_newest(net: torch.nn.Module, weights: list[Any], version: int, mine: int) -> int:
    """Load ``weights[0]`` (an object ref, or the weights themselves) into ``net`` when
    ``version`` is not the one it has; returns the version it now has."""
    if version != mine:
        state = weights[0]
        if not isinstance(state, dict):
            state = import_ray().get(state)
        net.load_state_dict(state)
    return version
