"""Classic DQN on any Gymnasium env with a Discrete action space and Box observations.

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

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from textrl.dqn.checkpoints import RunDir, open_run, unpack_network_state
from textrl.dqn.config import GymConfig
from textrl.dqn.core import DQNCore, training_session
from textrl.dqn.losses import nstep_targets, td_loss
from textrl.dqn.mlp import MLPQNetwork
from textrl.dqn.monitoring import MetricsLogger, ProgressBar
from textrl.dqn.policy import epsilon_greedy, greedy_actions, linear_schedule
from textrl.dqn.replay import TransitionReplay

__all__ = ["dqn_update", "evaluate_gym", "load_q_network", "train_gym"]

EVAL_SEED_OFFSET = 1_000_003  # evaluation episodes use seeds cfg.seed + offset + i


def dqn_update(core: DQNCore, cfg: GymConfig, beta: float) -> tuple[float, float]:
    """One gradient step on a sampled batch; returns ``(loss, mean Q(s, a))``."""
    batch = core.replay.sample(cfg.batch_size, core.rng, beta)
    obs, next_obs = torch.from_numpy(batch.obs), torch.from_numpy(batch.next_obs)  # (B, D)
    next_mask = None if batch.next_masks is None else torch.from_numpy(batch.next_masks)
    with torch.no_grad():  # n-step (double) targets (B,)
        targets = nstep_targets(
            core.online(next_obs) if cfg.double else None,
            core.target(next_obs),
            next_mask,
            torch.from_numpy(batch.returns),
            torch.from_numpy(batch.discounts),
            double=cfg.double,
        )
    q_sa = core.online(obs).gather(1, torch.from_numpy(batch.actions)[:, None]).squeeze(1)  # (B,)
    weights = torch.from_numpy(batch.weights) if cfg.prioritized else None
    loss, td_errors = td_loss(q_sa, targets, weights, cfg.huber)
    core.apply_gradients(loss)
    core.update_target()
    if cfg.prioritized:
        core.replay.update_priorities(batch.indices, td_errors.numpy())
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
        torch.set_num_threads(cfg.torch_threads)
        self.env_id, self.cfg = env_id, cfg
        self.env = gym.make(env_id)
        self.obs_dim, self.n_actions = _spaces(self.env, env_id)
        torch.manual_seed(cfg.seed)
        net = MLPQNetwork(self.obs_dim, self.n_actions, cfg.net_arch, cfg.dueling)
        replay = TransitionReplay(
            cfg.buffer_size,
            (self.obs_dim,),
            gamma=cfg.gamma,
            n_step=cfg.n_step,
            prioritized=cfg.prioritized,
            alpha=cfg.per_alpha,
            eps=cfg.per_eps,
        )
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
            resume_step=self.core.state.env_steps if checkpoint else None,
        )

    def run(self, progress: bool, callback: Callable | None) -> dict[str, Any]:
        cfg, state = self.cfg, self.core.state
        bar = ProgressBar(
            cfg.total_steps, initial=state.env_steps, enabled=progress, desc=self.env_id
        )
        obs, info = None, {}
        episode_return, episode_length = 0.0, 0
        recent_returns: deque[float] = deque(maxlen=20)
        losses: list[float] = []
        q_means: list[float] = []
        saved_at = evaluated_at = -1
        stopped = "total_steps"
        start = time.perf_counter()
        deadline = None if cfg.minutes is None else start + 60.0 * cfg.minutes
        steps_at_start, last_log_time, last_log_step = state.env_steps, start, state.env_steps
        with training_session(self.run_dir, self.logger, lambda: self.core.state):
            try:
                while state.env_steps < cfg.total_steps:
                    if deadline is not None and time.perf_counter() > deadline:
                        stopped = "minutes"
                        break
                    if obs is None:
                        obs, info = self.env.reset(seed=int(self.core.rng.integers(2**31)))
                        episode_return, episode_length = 0.0, 0

                    # 1. Act epsilon-greedily inside the action mask, store the transition.
                    progress_frac = state.env_steps / cfg.total_steps
                    epsilon = linear_schedule(
                        cfg.eps_start, cfg.eps_end, cfg.eps_fraction, progress_frac
                    )
                    next_obs, reward, terminated, truncated, info = self._act(obs, info, epsilon)
                    episode_return += float(reward)
                    episode_length += 1
                    obs = next_obs
                    if terminated or truncated:
                        state.episodes += 1
                        recent_returns.append(episode_return)
                        self.logger.log(
                            state.env_steps,
                            {
                                "train/episode_return": episode_return,
                                "train/episode_length": episode_length,
                            },
                        )
                        obs = None

                    # 2. Learn every train_freq steps.
                    if (
                        state.env_steps > cfg.learning_starts
                        and state.env_steps % cfg.train_freq == 0
                    ):
                        beta = cfg.per_beta0 + (1.0 - cfg.per_beta0) * progress_frac
                        if cfg.lr_end is not None:
                            self.core.set_lr(
                                linear_schedule(cfg.lr, cfg.lr_end, 1.0, progress_frac)
                            )
                        for _ in range(cfg.gradient_steps):
                            loss, q_mean = dqn_update(self.core, cfg, beta)
                            losses.append(loss)
                            q_means.append(q_mean)

                    # 3. Evaluate, log, checkpoint (at an episode end, for exact resume).
                    if state.due("eval", cfg.eval_every):
                        self.last_eval, evaluated_at = self.evaluate(), state.env_steps
                    if state.due("log", cfg.log_every):
                        now = time.perf_counter()
                        self.logger.log(
                            state.env_steps,
                            {
                                "train/epsilon": epsilon,
                                "train/loss": float(np.mean(losses)) if losses else None,
                                "train/q_mean": float(np.mean(q_means)) if q_means else None,
                                "train/steps_per_s": (state.env_steps - last_log_step)
                                / max(now - last_log_time, 1e-9),
                                "train/grad_steps": state.grad_steps,
                            },
                        )
                        last_log_time, last_log_step = now, state.env_steps
                        losses.clear()
                        q_means.clear()
                    if state.due("checkpoint", cfg.checkpoint_every):
                        state.checkpoint_pending = True
                    if state.checkpoint_pending and obs is None:
                        state.checkpoint_pending = False
                        self.save("periodic")
                        saved_at = state.env_steps
                    bar.update(
                        1,
                        eps=epsilon,
                        loss=losses[-1] if losses else None,
                        ret=float(np.mean(recent_returns)) if recent_returns else None,
                    )
                    if (
                        callback is not None
                        and callback(
                            {
                                "env_steps": state.env_steps,
                                "episodes": state.episodes,
                                "episode_done": obs is None,
                                "epsilon": epsilon,
                            }
                        )
                        is False
                    ):
                        stopped = "callback"
                        break

                if evaluated_at != state.env_steps:
                    self.last_eval = self.evaluate()
                if saved_at != state.env_steps:
                    self.save(stopped)
            finally:
                bar.close()
                self.env.close()
        wall = time.perf_counter() - start
        ev = self.last_eval
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
        }

    def _act(self, obs: Any, info: dict[str, Any], epsilon: float) -> tuple:
        """One epsilon-greedy step inside the mask; the transition goes into replay."""
        mask = _mask(info)
        with torch.no_grad():
            q_values = self.core.online(torch.as_tensor(obs, dtype=torch.float32).reshape(1, -1))
        mask_t = None if mask is None else torch.from_numpy(mask)[None]
        action = int(epsilon_greedy(q_values, mask_t, epsilon, self.core.gen)[0])
        next_obs, reward, terminated, truncated, info = self.env.step(action)
        self.core.replay.add(
            np.ravel(obs),
            action,
            reward,
            np.ravel(next_obs),
            terminated,
            truncated,
            mask=mask,
            next_mask=_mask(info),
        )
        self.core.state.env_steps += 1
        return next_obs, reward, terminated, truncated, info

    def evaluate(self) -> dict[str, Any]:
        result = evaluate_gym(
            self.core.online, self.env_id, self.cfg.eval_episodes, self.cfg.seed + EVAL_SEED_OFFSET
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
            "obs_dim": self.obs_dim,
            "n_actions": self.n_actions,
            "net_arch": self.cfg.net_arch,
            "dueling": self.cfg.dueling,
            "reason": reason,
            "last_eval": {k: v for k, v in self.last_eval.items() if k != "returns"},
        }
        return self.core.save(self.run_dir, meta)


def evaluate_gym(
    model: Any,
    env_id: str | None = None,
    episodes: int = 20,
    seed: int = 0,
) -> dict[str, Any]:
    """Greedy returns of ``model`` over ``episodes`` episodes seeded ``seed, seed + 1, ...``.

    ``model``: a Q-network (``(B, obs_dim) -> (B, A)``) or a run folder (its latest checkpoint
    and, unless ``env_id`` is given, its env). Respects ``info["action_mask"]``.
    """
    if isinstance(model, (str, Path)):
        model, run_env = load_q_network(model)
        env_id = env_id or run_env
    if env_id is None:
        raise ValueError("evaluate_gym: env_id is required when model is a network")
    env = gym.make(env_id)
    returns, lengths = [], []
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for i in range(episodes):
            obs, info = env.reset(seed=seed + i)
            total, length, done = 0.0, 0, False
            while not done:
                q = model(torch.as_tensor(obs, dtype=torch.float32).reshape(1, -1))
                mask = _mask(info)
                mask_t = None if mask is None else torch.from_numpy(mask)[None]
                obs, reward, terminated, truncated, info = env.step(
                    int(greedy_actions(q, mask_t)[0])
                )
                total, length, done = total + float(reward), length + 1, terminated or truncated
            returns.append(total)
            lengths.append(length)
    model.train(was_training)
    env.close()
    return {
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
        "mean_length": float(np.mean(lengths)),
        "returns": returns,
    }


def load_q_network(run_dir: str | Path) -> tuple[MLPQNetwork, str]:
    """The online Q-network of a run's latest checkpoint, and the run's env id."""
    ckpt = RunDir(run_dir).load_latest()
    if ckpt is None:
        raise FileNotFoundError(f"evaluate: no checkpoint in {str(run_dir)!r}")
    m = ckpt.meta
    net = MLPQNetwork(m["obs_dim"], m["n_actions"], m["net_arch"], m["dueling"])
    net.load_state_dict(unpack_network_state(ckpt.model_state, "online"))
    return net, m["env_id"]


def _spaces(env: Any, env_id: str) -> tuple[int, int]:
    if not isinstance(env.action_space, spaces.Discrete):
        raise ValueError(
            f"train_gym: {env_id} has action space {env.action_space}; DQN needs Discrete actions"
        )
    if not isinstance(env.observation_space, spaces.Box):
        raise ValueError(
            f"train_gym: {env_id} has observation space {env.observation_space}; "
            "expected a Box (it is flattened)"
        )
    return int(np.prod(env.observation_space.shape)), int(env.action_space.n)


def _mask(info: dict[str, Any]) -> np.ndarray | None:
    mask = info.get("action_mask")
    return None if mask is None else np.asarray(mask, dtype=np.int8)
