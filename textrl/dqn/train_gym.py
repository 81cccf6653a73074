"""Classic DQN on any Gymnasium env with a Discrete action space and Box observations.

Vector observations get an MLP Q-network and :class:`~textrl.dqn.replay.TransitionReplay`; image
observations (Atari) the DQN papers' preprocessing (:func:`textrl.dqn.atari.make_gym_env`), the
Nature CNN (:class:`~textrl.dqn.cnn.NatureCNNQNetwork`) and
:class:`~textrl.dqn.frame_replay.FrameReplay`, which stores each frame once.

``textrl train --env ID`` runs :func:`train_gym`. Each environment step reads top to bottom like
CleanRL's ``dqn.py``: act epsilon-greedily inside the action mask, store, and every
``train_freq`` steps learn (:func:`dqn_update`: sample, targets, loss, step, target update,
priorities); then evaluate, log and checkpoint on schedule. The Rainbow switches (double,
n-step, prioritized replay, dueling, Polyak) come from :class:`~textrl.dqn.config.GymConfig`;
networks, optimizer, target update and checkpoints from :class:`~textrl.dqn.core.DQNCore`.

Exact resume: each training episode starts with ``env.reset(seed=...)`` drawn from the run's
numpy generator, and periodic checkpoints are written at the first episode end after they are
due. A checkpoint thus holds everything the continuation depends on (networks, optimizer,
replay, RNG states, counters) and a resumed run repeats the uninterrupted one step for step.
A final checkpoint written mid-episode (budget reached) resumes with a fresh episode.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from textrl.dqn.atari import make_gym_env
from textrl.dqn.checkpoints import RunDir, open_run, unpack_network_state
from textrl.dqn.cnn import NatureCNNQNetwork
from textrl.dqn.config import GymConfig
from textrl.dqn.core import DQNCore, resolve_device, stop_on_ctrl_c, training_session
from textrl.dqn.frame_replay import FrameReplay
from textrl.dqn.losses import nstep_targets, td_loss
from textrl.dqn.mlp import MLPQNetwork
from textrl.dqn.monitoring import MetricsLogger, ProgressBar
from textrl.dqn.policy import (
    epsilon_greedy,
    epsilon_greedy_one,
    greedy_actions,
    info_mask,
    linear_schedule,
)
from textrl.dqn.replay import TransitionReplay

__all__ = ["build_q_network", "dqn_update", "evaluate_gym", "load_q_network", "train_gym"]

EVAL_SEED_OFFSET = 1_000_003  # evaluation episodes use seeds cfg.seed + offset + i


def dqn_update(core: DQNCore, cfg: GymConfig, beta: float) -> tuple[float, float]:
    """One gradient step on a sampled batch; returns ``(loss, mean Q(s, a))``."""
    batch = core.replay.sample(cfg.batch_size, core.rng, beta)
    device = next(core.online.parameters()).device

    def tensor(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(array).to(device, non_blocking=True)

    obs, next_obs = tensor(batch.obs), tensor(batch.next_obs)  # (B, *obs); uint8 for frames
    next_mask = None if batch.next_masks is None else tensor(batch.next_masks)
    with torch.no_grad():  # n-step (double) targets (B,), in fp32
        targets = nstep_targets(
            core.online(next_obs) if cfg.double else None,
            core.target(next_obs),
            next_mask,
            tensor(batch.returns),
            tensor(batch.discounts),
            double=cfg.double,
        )
    q_sa = core.online(obs).gather(1, tensor(batch.actions)[:, None]).squeeze(1)  # (B,)
    weights = tensor(batch.weights) if cfg.prioritized else None
    loss, td_errors = td_loss(q_sa, targets, weights, cfg.huber)
    core.apply_gradients(loss)
    core.update_target()
    if cfg.prioritized:
        core.replay.update_priorities(batch.indices, td_errors.cpu().numpy())
    return loss.item(), q_sa.detach().mean().item()


def train_gym(
    env_id: str,
    cfg: GymConfig,
    run_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
    tensorboard: bool = True,
    callback: Callable[[dict[str, Any]], bool | None] | None = None,
) -> dict[str, Any]:
    """Train a DQN on ``env_id`` into ``run_dir``; returns the final metrics.

    ``resume=True`` continues from the run's latest checkpoint (see
    :func:`textrl.dqn.checkpoints.open_run`). ``callback(info)`` is called after every env step
    with ``env_steps``, ``episodes``, ``episode_done``, ``epsilon``; returning ``False`` stops
    the run (a final checkpoint is written). Stops at ``cfg.total_steps`` or ``cfg.minutes``,
    whichever comes first. A NaN/inf loss or gradient raises ``FloatingPointError`` naming the
    last good checkpoint.
    """
    return GymTrainer(env_id, cfg, run_dir, resume, tensorboard).run(progress, callback)


class GymTrainer:
    """One invocation of the Gymnasium training loop (see :func:`train_gym`)."""

    def __init__(
        self,
        env_id: str,
        cfg: GymConfig,
        run_dir: str | Path,
        resume: bool,
        tensorboard: bool = True,
    ) -> None:
        if cfg.actors:  # a missing extra fails now, not after the run folder is made
            from textrl.dqn.distributed import import_ray

            import_ray()
        torch.set_num_threads(cfg.torch_threads)
        self.env_id, self.cfg = env_id, cfg
        self.env = make_gym_env(env_id, train=True)
        self.obs_shape, self.n_actions = _spaces(self.env, env_id)
        self.network = "cnn" if _is_stacked_frames(self.env.observation_space) else "mlp"
        torch.manual_seed(cfg.seed)
        self.device = resolve_device(cfg.device)
        net = build_q_network(
            self.network, self.obs_shape, self.n_actions, cfg.net_arch, cfg.dueling
        ).to(self.device)
        replay_kwargs = dict(
            gamma=cfg.gamma,
            n_step=cfg.n_step,
            prioritized=cfg.prioritized,
            alpha=cfg.per_alpha,
            eps=cfg.per_eps,
        )
        if self.network == "cnn":
            stack, *frame = self.obs_shape
            replay: TransitionReplay = FrameReplay(cfg.buffer_size, frame, stack, **replay_kwargs)
        else:
            obs_dim = int(np.prod(self.obs_shape))
            replay = TransitionReplay(cfg.buffer_size, (obs_dim,), **replay_kwargs)
        self.core = DQNCore(cfg, net, replay)
        self.run_dir, checkpoint = open_run(run_dir, resume)
        self.last_eval: dict[str, Any] = {}
        if checkpoint is not None:
            if checkpoint.meta.get("env_id", env_id) != env_id:
                raise ValueError(
                    f"resume: {str(self.run_dir.path)!r} was trained on "
                    f"{checkpoint.meta['env_id']}, not {env_id}"
                )
            self.core.restore(checkpoint)
            self.core.replay.truncate_pending()  # a mid-episode checkpoint: that episode ends
            self.last_eval = checkpoint.meta.get("last_eval", {})
        self.run_dir.save_config({"kind": "gym", "env_id": env_id, **dataclasses.asdict(cfg)})
        self.logger = MetricsLogger(
            self.run_dir,
            tensorboard=tensorboard,
            keep_lines=None if checkpoint is None else checkpoint.meta.get("metrics_lines"),
        )
        # The current episode and what is logged next (not checkpointed: a resumed run starts
        # a fresh episode, see the module docstring).
        self.obs: Any = None
        self.info: dict[str, Any] = {}
        self.episode_return, self.episode_length = 0.0, 0
        self.recent_returns: deque[float] = deque(maxlen=20)
        self.losses: list[float] = []
        self.q_means: list[float] = []
        self.last_log = (time.perf_counter(), self.core.state.env_steps)
        self.saved_at = self.evaluated_at = -1

    def run(self, progress: bool, callback: Callable | None) -> dict[str, Any]:
        """Step until ``total_steps``, the time budget, the callback or Ctrl-C; then evaluate
        (not after Ctrl-C) and checkpoint the final state unless that just happened."""
        cfg, state = self.cfg, self.core.state
        self.bar = ProgressBar(
            cfg.total_steps, initial=state.env_steps, enabled=progress, desc=self.env_id
        )
        start = time.perf_counter()
        deadline = None if cfg.minutes is None else start + 60.0 * cfg.minutes
        steps_at_start = state.env_steps
        with (
            training_session(self.run_dir, self.logger, lambda: self.core.state),
            stop_on_ctrl_c() as self.stop,
        ):
            try:
                if cfg.actors:
                    stopped = self.apex_loop(deadline, callback)
                else:
                    stopped = self.loop(deadline, callback)
                if stopped != "interrupted" and self.evaluated_at != state.env_steps:
                    self.last_eval = self.evaluate()
                if self.saved_at != state.env_steps:
                    self.save(stopped)
            finally:
                self.bar.close()
                self.env.close()
        return self.result(stopped, time.perf_counter() - start, steps_at_start)

    def loop(self, deadline: float | None, callback: Callable | None) -> str:
        """Step until ``total_steps``, the deadline, the callback or Ctrl-C; say which."""
        state = self.core.state
        try:
            while state.env_steps < self.cfg.total_steps:
                if deadline is not None and time.perf_counter() > deadline:
                    return "minutes"
                if self.stop.requested:  # Ctrl-C: stop between steps (an exact checkpoint)
                    return "interrupted"
                epsilon = self.step()
                info = {
                    "env_steps": state.env_steps,
                    "episodes": state.episodes,
                    "episode_done": self.obs is None,
                    "epsilon": epsilon,
                }
                if callback is not None and callback(info) is False:
                    return "callback"
        except KeyboardInterrupt:
            return "interrupted"
        return "total_steps"

    def step(self) -> float:
        """One environment step: act, learn every ``train_freq`` steps, then evaluate, log and
        checkpoint when due (checkpoints at an episode end, for exact resume). Returns epsilon."""
        cfg, state = self.cfg, self.core.state
        if self.obs is None:
            self.obs, self.info = self.env.reset(seed=int(self.core.rng.integers(2**31)))
            self.episode_return, self.episode_length = 0.0, 0
        progress_frac = state.env_steps / cfg.total_steps
        epsilon = linear_schedule(cfg.eps_start, cfg.eps_end, cfg.eps_fraction, progress_frac)
        self.act(epsilon)
        if state.env_steps > cfg.learning_starts and state.env_steps % cfg.train_freq == 0:
            self.learn(progress_frac)
        if state.due("eval", cfg.eval_every):
            self.last_eval, self.evaluated_at = self.evaluate(), state.env_steps
        if state.due("log", cfg.log_every):
            self.log(epsilon)
        if state.due("checkpoint", cfg.checkpoint_every):
            state.checkpoint_pending = True
        if state.checkpoint_pending and self.obs is None:
            state.checkpoint_pending = False
            self.save("periodic")
            self.saved_at = state.env_steps
        self.bar.update(
            1,
            eps=epsilon,
            loss=self.losses[-1] if self.losses else None,
            ret=float(np.mean(self.recent_returns)) if self.recent_returns else None,
        )
        return epsilon

    def act(self, epsilon: float) -> None:
        """Epsilon-greedy inside the action mask; the transition goes into replay."""
        mask = info_mask(self.info)
        mask_t = None if mask is None else torch.from_numpy(mask)

        def q_values() -> torch.Tensor:  # (1, A), computed only for a greedy step
            with torch.no_grad():
                return self.core.online(_batch_of_one(self.obs).to(self.device)).cpu()

        action = epsilon_greedy_one(q_values, self.n_actions, mask_t, epsilon, self.core.gen)
        next_obs, reward, terminated, truncated, self.info = self.env.step(action)
        self.core.replay.add(
            self.obs,
            action,
            reward,
            next_obs,
            terminated,
            truncated,
            mask=mask,
            next_mask=info_mask(self.info),
        )
        state = self.core.state
        state.env_steps += 1
        self.episode_return += float(reward)
        self.episode_length += 1
        self.obs = next_obs
        if terminated or truncated:
            state.episodes += 1
            self.recent_returns.append(self.episode_return)
            self.logger.log(
                state.env_steps,
                {
                    "train/episode_return": self.episode_return,
                    "train/episode_length": self.episode_length,
                },
            )
            self.obs = None

    def apex_loop(self, deadline: float | None, callback: Callable | None) -> str:
        """``--actors N``: Ray actors act (:mod:`textrl.dqn.distributed`), this process learns.

        Whole episodes arrive with the actors' TD errors as priorities; the learner keeps the
        replay ratio of the in-process loop (``gradient_steps`` updates per ``train_freq`` env
        steps after ``learning_starts``): it never learns ahead of the data, and an actor whose
        call returned gets its next one only when the learner has caught up (backpressure), so
        at the end the run has made the updates its data is owed. Weights are published every
        ``publish_every`` updates. Evaluation, logging and checkpoints as in
        :meth:`loop` (a checkpoint can be written at any time: the replay holds only whole
        episodes). ``callback(info)`` is called after each batch of arrived episodes."""
        from textrl.dqn.distributed import ActorPool, GymActorWorker, apex_epsilons, cpu_state

        cfg, state = self.cfg, self.core.state
        net_args = {
            "network": self.network,
            "obs_shape": list(self.obs_shape),
            "n_actions": self.n_actions,
            "net_arch": cfg.net_arch,
            "dueling": cfg.dueling,
        }
        epsilons = apex_epsilons(cfg.actors, cfg.apex_eps, cfg.apex_alpha)
        # New seeds on every (re)start: a resumed run's actors do not replay old episodes.
        base = cfg.seed * 1_000_003 + state.env_steps
        args = [
            (self.env_id, net_args, i, epsilons[i], base + 7_919 * i, cfg.gamma)
            for i in range(cfg.actors)
        ]
        self.actor_episodes = [0] * cfg.actors
        lags: list[int] = []
        act_seconds = env_seconds = 0.0
        pool = ActorPool(GymActorWorker, args, cfg.ray_address)
        idle: list[int] = []  # actors waiting for the learner to catch up (backpressure)
        try:
            pool.publish(cpu_state(self.core.online))
            for i in range(len(pool)):
                pool.submit(i, cfg.actor_steps)
            while True:
                if deadline is not None and time.perf_counter() > deadline:
                    return "minutes"
                if self.stop.requested:
                    return "interrupted"
                allowed = 0
                if state.env_steps > cfg.learning_starts:
                    allowed = (state.env_steps - cfg.learning_starts) // cfg.train_freq
                    allowed *= cfg.gradient_steps
                can_learn = state.grad_steps < allowed
                if not can_learn and state.env_steps >= cfg.total_steps:
                    return "total_steps"  # (the updates the data is owed are done)
                if not can_learn and state.env_steps < cfg.total_steps:
                    for i in idle:  # the learner has caught up: more data
                        pool.submit(i, cfg.actor_steps)
                    idle.clear()
                if can_learn:
                    progress_frac = state.env_steps / cfg.total_steps
                    beta = cfg.per_beta0 + (1.0 - cfg.per_beta0) * progress_frac
                    if cfg.lr_end is not None:
                        self.core.set_lr(linear_schedule(cfg.lr, cfg.lr_end, 1.0, progress_frac))
                    loss, q_mean = dqn_update(self.core, cfg, beta)
                    self.losses.append(loss)
                    self.q_means.append(q_mean)
                    if state.grad_steps % cfg.publish_every == 0:
                        pool.publish(cpu_state(self.core.online))
                arrived = pool.ready(timeout=0.0 if can_learn else 1.0)
                for i, res in arrived:
                    idle.append(i)  # resubmitted (newest weights) once the learner caught up
                    if res is None:
                        continue  # the actor died mid-call; Ray restarted it
                    lags.append(pool.version - res["version"])
                    act_seconds += res["seconds"]
                    env_seconds += res["env_seconds"]
                    for ep in res["episodes"]:
                        self.store_episode(ep, res["index"])
                if arrived:
                    self.bar.update(
                        sum(r["steps"] for _, r in arrived if r is not None),
                        loss=self.losses[-1] if self.losses else None,
                        ret=float(np.mean(self.recent_returns)) if self.recent_returns else None,
                    )
                    info = {"env_steps": state.env_steps, "episodes": state.episodes}
                    if callback is not None and callback({**info, "pool": pool}) is False:
                        return "callback"
                if state.due("eval", cfg.eval_every):
                    self.last_eval, self.evaluated_at = self.evaluate(), state.env_steps
                if state.due("log", cfg.log_every):
                    self.log(None)
                    self.logger.log(
                        state.env_steps,
                        {
                            "apex/policy_lag": float(np.mean(lags)) if lags else None,
                            "apex/version": pool.version,
                            "apex/actor_restarts": pool.failures,
                            "apex/env_share": env_seconds / max(act_seconds, 1e-9),
                        },
                    )
                    lags.clear()
                if state.due("checkpoint", cfg.checkpoint_every):
                    self.save("periodic")
                    self.saved_at = state.env_steps
        except KeyboardInterrupt:
            return "interrupted"
        finally:
            self.actor_restarts, self.weights_version = pool.failures, pool.version
            pool.shutdown()

    def store_episode(self, ep: dict[str, Any], actor: int) -> None:
        """One actor's episode into replay, counted and logged as :meth:`act` does."""
        state = self.core.state
        prios = ep["priorities"] if self.cfg.prioritized else None
        self.core.replay.add_episode(
            ep["obs"],
            ep["actions"],
            ep["rewards"],
            ep["terminated"],
            ep["truncated"],
            priorities=prios,
            masks=ep["masks"],
        )
        steps, ret = len(ep["actions"]), float(np.sum(ep["rewards"]))
        state.env_steps += steps
        state.episodes += 1
        self.actor_episodes[actor] += 1
        self.recent_returns.append(ret)
        self.logger.log(
            state.env_steps,
            {"train/episode_return": ret, "train/episode_length": steps, "train/actor": actor},
        )

    def learn(self, progress_frac: float) -> None:
        """``gradient_steps`` DQN updates (PER beta and the learning rate follow progress)."""
        cfg = self.cfg
        beta = cfg.per_beta0 + (1.0 - cfg.per_beta0) * progress_frac
        if cfg.lr_end is not None:
            self.core.set_lr(linear_schedule(cfg.lr, cfg.lr_end, 1.0, progress_frac))
        for _ in range(cfg.gradient_steps):
            loss, q_mean = dqn_update(self.core, cfg, beta)
            self.losses.append(loss)
            self.q_means.append(q_mean)

    def log(self, epsilon: float | None) -> None:
        """Training scalars since the last log: loss, Q, epsilon, steps/s."""
        state, now = self.core.state, time.perf_counter()
        steps_per_s = (state.env_steps - self.last_log[1]) / max(now - self.last_log[0], 1e-9)
        self.logger.log(
            state.env_steps,
            {
                "train/epsilon": epsilon,
                "train/loss": float(np.mean(self.losses)) if self.losses else None,
                "train/q_mean": float(np.mean(self.q_means)) if self.q_means else None,
                "train/steps_per_s": steps_per_s,
                "train/grad_steps": state.grad_steps,
            },
        )
        self.last_log = (now, state.env_steps)
        self.losses.clear()
        self.q_means.clear()

    def result(self, stopped: str, wall: float, steps_at_start: int) -> dict[str, Any]:
        state, ev = self.core.state, self.last_eval
        nan = float("nan")  # (no evaluation yet: interrupted before the first one)
        ev = {"mean_return": nan, "std_return": nan, "mean_length": nan, "returns": [], **ev}
        return {
            "env_id": self.env_id,
            "env_steps": state.env_steps,
            "episodes": state.episodes,
            "grad_steps": state.grad_steps,
            "stopped": stopped,
            "wall_time_s": wall,
            "steps_per_s": (state.env_steps - steps_at_start) / max(wall, 1e-9),
            "eval_mean_return": ev["mean_return"],
            "eval_std_return": ev["std_return"],
            "eval_mean_length": ev["mean_length"],
            "eval_returns": ev["returns"],
            "run_dir": str(self.run_dir.path),
            **(
                {
                    "actor_episodes": self.actor_episodes,
                    "actor_restarts": self.actor_restarts,
                    "weights_version": self.weights_version,
                }
                if self.cfg.actors
                else {}
            ),
        }

    def evaluate(self) -> dict[str, Any]:
        result = evaluate_gym(
            self.core.online,
            self.env_id,
            self.cfg.eval_episodes,
            self.cfg.seed + EVAL_SEED_OFFSET,
            epsilon=self.cfg.eval_epsilon,
        )
        self.logger.log(
            self.core.state.env_steps,
            {
                "eval/mean_return": result["mean_return"],
                "eval/std_return": result["std_return"],
                "eval/mean_length": result["mean_length"],
            },
        )
        return result

    def save(self, reason: str) -> Path:
        meta = {
            "env_id": self.env_id,
            "obs_shape": list(self.obs_shape),
            "network": self.network,
            "n_actions": self.n_actions,
            "net_arch": self.cfg.net_arch,
            "dueling": self.cfg.dueling,
            "reason": reason,
            "last_eval": {k: v for k, v in self.last_eval.items() if k != "returns"},
        }
        meta["metrics_lines"] = self.logger.lines
        return self.core.save(self.run_dir, meta)


def evaluate_gym(
    model: Any,
    env_id: str | None = None,
    episodes: int = 20,
    seed: int = 0,
    epsilon: float = 0.0,
) -> dict[str, Any]:
    """Returns of ``model`` over ``episodes`` episodes seeded ``seed, seed + 1, ...``.

    ``model``: a Q-network (``(B, *obs_shape) -> (B, A)``) or a run folder (its latest
    checkpoint and, unless ``env_id`` is given, its env). Acts greedily, or epsilon-greedily
    with ``epsilon`` (seeded by ``seed``), inside ``info["action_mask"]``. The env is the
    evaluation one (:func:`textrl.dqn.atari.make_gym_env` with ``train=False``): Atari returns
    are the unclipped game scores, played to the game's end.
    """
    if isinstance(model, (str, Path)):
        model, run_env = load_q_network(model)
        env_id = env_id or run_env
    if env_id is None:
        raise ValueError("evaluate_gym: env_id is required when model is a network")
    env = make_gym_env(env_id, train=False)
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    returns, lengths = [], []
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for i in range(episodes):
            obs, info = env.reset(seed=seed + i)
            total, length, done = 0.0, 0, False
            while not done:
                q = model(_batch_of_one(obs).to(device)).cpu()
                mask = info_mask(info)
                mask_t = None if mask is None else torch.from_numpy(mask)[None]
                action = (
                    epsilon_greedy(q, mask_t, epsilon, gen)
                    if epsilon
                    else greedy_actions(q, mask_t)
                )
                obs, reward, terminated, truncated, info = env.step(int(action[0]))
                total, length, done = total + float(reward), length + 1, terminated or truncated
            returns.append(total)
            lengths.append(length)
    model.train(was_training)
    env.close()
    return {
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
        "mean_length": float(np.mean(lengths)),
        "epsilon": epsilon,
        "returns": returns,
    }


def build_q_network(
    network: str,
    obs_shape: tuple[int, ...] | list[int],
    n_actions: int,
    net_arch: str = "256,256",
    dueling: bool = False,
) -> torch.nn.Module:
    """The Q-network of the gym path: ``"cnn"`` (stacked frames) or ``"mlp"`` (vectors)."""
    if network == "cnn":
        return NatureCNNQNetwork(obs_shape, n_actions, dueling)
    return MLPQNetwork(int(np.prod(obs_shape)), n_actions, net_arch, dueling)


def load_q_network(run_dir: str | Path) -> tuple[torch.nn.Module, str]:
    """The online Q-network of a run's latest checkpoint, and the run's env id."""
    ckpt = RunDir(run_dir).load_latest()
    if ckpt is None:
        raise FileNotFoundError(f"evaluate: no checkpoint in {str(run_dir)!r}")
    m = ckpt.meta
    obs_shape = m["obs_shape"] if "obs_shape" in m else [m["obs_dim"]]  # older runs: obs_dim
    net = build_q_network(
        m.get("network", "mlp"), obs_shape, m["n_actions"], m["net_arch"], m["dueling"]
    )
    net.load_state_dict(unpack_network_state(ckpt.model_state, "online"))
    return net, m["env_id"]


def _batch_of_one(obs: Any) -> torch.Tensor:
    """One observation as a batch of one, keeping ``uint8`` frames as they are (the networks
    convert)."""
    return torch.as_tensor(np.asarray(obs))[None]


def _is_stacked_frames(space: Any) -> bool:
    """``(k, H, W)`` ``uint8`` observations, as :func:`~textrl.dqn.atari.make_gym_env` makes."""
    return isinstance(space, spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3


def _spaces(env: Any, env_id: str) -> tuple[tuple[int, ...], int]:
    if not isinstance(env.action_space, spaces.Discrete):
        raise ValueError(
            f"train_gym: {env_id} has action space {env.action_space}; DQN needs Discrete actions"
        )
    if not isinstance(env.observation_space, spaces.Box):
        raise ValueError(
            f"train_gym: {env_id} has observation space {env.observation_space}; "
            "expected a Box (vectors are flattened, images get the Atari preprocessing)"
        )
    return tuple(int(s) for s in env.observation_space.shape), int(env.action_space.n)
