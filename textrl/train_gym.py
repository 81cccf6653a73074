"""Classic DQN on any Gymnasium env with a Discrete action space and Box observations.

The loop reads top to bottom like CleanRL's ``dqn.py``: act epsilon-greedily, store, sample,
compute targets, loss, optimizer step, target update; plus what a long run needs: periodic
greedy evaluation, metrics, atomic checkpoints and exact resume, a NaN/inf guard. The Rainbow
switches (double, n-step, prioritized replay, dueling, Polyak) come from :class:`TrainConfig`.

Exact resume: each training episode starts with ``env.reset(seed=...)`` drawn from the run's
numpy generator, and periodic checkpoints are written at the first episode end after they are
due. A checkpoint thus holds everything the continuation depends on (networks, optimizer,
replay, RNG states, counters) and a resumed run repeats the uninterrupted one step for step.
A final checkpoint written mid-episode (budget reached) resumes with a fresh episode.

Run ``python -m textrl.train_gym --env CartPole-v1`` (``--help`` lists every setting).
"""

from __future__ import annotations

import argparse
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from textrl.config import (
    PRESETS,
    TrainConfig,
    add_dataclass_arguments,
    config_from_args,
    config_to_dict,
)

if TYPE_CHECKING:
    import torch

__all__ = ["add_gym_arguments", "evaluate_gym", "load_q_network", "main", "run_gym_from_args",
           "train_gym"]

EVAL_SEED_OFFSET = 1_000_003  # evaluation episodes use seeds cfg.seed + offset + i


def _spaces(env: Any, env_id: str) -> tuple[int, int]:
    from gymnasium import spaces

    if not isinstance(env.action_space, spaces.Discrete):
        raise ValueError(f"train_gym: {env_id} has action space {env.action_space}; DQN needs "
                         "Discrete actions")
    if not isinstance(env.observation_space, spaces.Box):
        raise ValueError(f"train_gym: {env_id} has observation space {env.observation_space}; "
                         "expected a Box (it is flattened)")
    return int(np.prod(env.observation_space.shape)), int(env.action_space.n)


def _mask(info: dict[str, Any]) -> np.ndarray | None:
    mask = info.get("action_mask")
    return None if mask is None else np.asarray(mask, dtype=np.int8)


def evaluate_gym(model: Any, env_id: str | None = None, episodes: int = 20, seed: int = 0,
                 ) -> dict[str, Any]:
    """Greedy returns of ``model`` over ``episodes`` episodes seeded ``seed, seed + 1, ...``.

    ``model``: a Q-network (``(B, obs_dim) -> (B, A)``) or a run folder (its latest checkpoint
    and, unless ``env_id`` is given, its env). Respects ``info["action_mask"]``.
    """
    import gymnasium as gym
    import torch

    from textrl.dqn import greedy_actions

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
                    int(greedy_actions(q, mask_t)[0]))
                total, length, done = total + float(reward), length + 1, terminated or truncated
            returns.append(total)
            lengths.append(length)
    model.train(was_training)
    env.close()
    return {"mean_return": float(np.mean(returns)), "std_return": float(np.std(returns)),
            "mean_length": float(np.mean(lengths)), "returns": returns}


def load_q_network(run_dir: str | Path) -> tuple[torch.nn.Module, str]:
    """The online Q-network of a run's latest checkpoint, and the run's env id."""
    from textrl.dqn import MLPQNetwork
    from textrl.runs import RunDir

    ckpt = RunDir(run_dir).load_latest()
    if ckpt is None:
        raise FileNotFoundError(f"evaluate: no checkpoint in {str(run_dir)!r}")
    m = ckpt.meta
    net = MLPQNetwork(m["obs_dim"], m["n_actions"], m["net_arch"], m["dueling"])
    net.load_state_dict({k[len("online."):]: v for k, v in ckpt.model_state.items()
                         if k.startswith("online.")})
    return net, m["env_id"]


def train_gym(env_id: str, cfg: TrainConfig, run_dir: str | Path, resume: bool = False,
              progress: bool = True, tensorboard: bool = True,
              callback: Callable[[dict[str, Any]], bool | None] | None = None) -> dict[str, Any]:
    """Train a DQN on ``env_id`` into ``run_dir``; returns the final metrics.

    ``resume=True`` continues from the run's latest checkpoint. ``callback(state)`` is called
    after every env step with ``step``, ``episodes``, ``episode_done``, ``epsilon``; returning
    ``False`` stops the run (a final checkpoint is written). Stops at ``cfg.total_steps`` or
    ``cfg.minutes``, whichever comes first. A NaN/inf loss or gradient raises
    ``FloatingPointError`` naming the last good checkpoint.
    """
    import gymnasium as gym
    import torch

    from textrl.dqn import (
        MLPQNetwork,
        check_finite,
        epsilon_greedy,
        linear_schedule,
        nstep_targets,
        polyak_update,
        td_loss,
    )
    from textrl.replay import TransitionReplay
    from textrl.runs import (
        MetricsLogger,
        ProgressBar,
        RunDir,
        capture_rng_state,
        plot_curves,
        restore_rng_state,
    )

    torch.set_num_threads(cfg.torch_threads)
    run = RunDir(run_dir)
    env = gym.make(env_id)
    obs_dim, n_actions = _spaces(env, env_id)

    # Networks, optimizer, replay, RNGs: everything a checkpoint restores.
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)  # env seeds, replay sampling
    gen = torch.Generator().manual_seed(cfg.seed)  # exploration
    q_net = MLPQNetwork(obs_dim, n_actions, cfg.net_arch, cfg.dueling)
    target_net = MLPQNetwork(obs_dim, n_actions, cfg.net_arch, cfg.dueling)
    target_net.load_state_dict(q_net.state_dict())
    target_net.requires_grad_(False)
    optimizer = torch.optim.Adam(q_net.parameters(), lr=cfg.lr)
    replay = TransitionReplay(cfg.buffer_size, (obs_dim,), gamma=cfg.gamma, n_step=cfg.n_step,
                              prioritized=cfg.prioritized, alpha=cfg.per_alpha, eps=cfg.per_eps)
    step = grad_steps = episodes = 0
    last_eval: dict[str, Any] = {}

    if resume:
        ckpt = run.load_latest()
        if ckpt is None:
            raise FileNotFoundError(f"resume: no checkpoint in {str(run.path)!r}")
        if ckpt.meta.get("env_id", env_id) != env_id:
            raise ValueError(f"resume: {str(run.path)!r} was trained on {ckpt.meta['env_id']}, "
                             f"not {env_id}")
        q_net.load_state_dict({k[7:]: v for k, v in ckpt.model_state.items()
                               if k.startswith("online.")})
        target_net.load_state_dict({k[7:]: v for k, v in ckpt.model_state.items()
                                    if k.startswith("target.")})
        optimizer.load_state_dict(ckpt.extra["optimizer"])
        replay.load_state_dict(ckpt.replay_state)
        replay.truncate_pending()  # a mid-episode checkpoint: that episode ends here
        restore_rng_state(ckpt.rng_state, rng, gen)
        step, grad_steps, episodes = (ckpt.meta[k] for k in ("step", "grad_steps", "episodes"))
        last_eval = ckpt.meta.get("last_eval", {})
    elif run.latest_path() is not None:
        raise ValueError(f"train: {str(run.path)!r} already holds checkpoints; pass resume=True "
                         "(--resume) to continue it or choose a new run folder")
    else:
        run.metrics_path.unlink(missing_ok=True)  # left by an attempt that saved no checkpoint
    run.save_config({"env_id": env_id, **config_to_dict(cfg)})
    logger = MetricsLogger(run, tensorboard=tensorboard, resume_step=step if resume else None)
    bar = ProgressBar(cfg.total_steps, initial=step, enabled=progress, desc=env_id)

    def save(reason: str) -> Path:
        model_state = {**{f"online.{k}": v for k, v in q_net.state_dict().items()},
                       **{f"target.{k}": v for k, v in target_net.state_dict().items()}}
        meta = {"step": step, "grad_steps": grad_steps, "episodes": episodes,
                "env_id": env_id, "obs_dim": obs_dim, "n_actions": n_actions,
                "net_arch": cfg.net_arch, "dueling": cfg.dueling, "reason": reason,
                "last_eval": {k: v for k, v in last_eval.items() if k != "returns"}}
        return run.save_checkpoint(step, model_state, {"optimizer": optimizer.state_dict()},
                                   replay.state_dict(), capture_rng_state(rng, gen), meta,
                                   keep=cfg.keep_checkpoints)

    def evaluate() -> dict[str, Any]:
        result = evaluate_gym(q_net, env_id, cfg.eval_episodes, cfg.seed + EVAL_SEED_OFFSET)
        logger.log(step, {"eval/mean_return": result["mean_return"],
                          "eval/std_return": result["std_return"],
                          "eval/mean_length": result["mean_length"]})
        return result

    obs, info = None, {}
    episode_return, episode_length = 0.0, 0
    recent_returns: deque[float] = deque(maxlen=20)
    losses: list[float] = []
    q_means: list[float] = []
    checkpoint_due, saved_at, evaluated_at = False, -1, -1
    stopped = "total_steps"
    start = time.perf_counter()
    deadline = None if cfg.minutes is None else start + 60.0 * cfg.minutes
    steps_at_start, last_log_time, last_log_step = step, start, step
    try:
        while step < cfg.total_steps:
            if deadline is not None and time.perf_counter() > deadline:
                stopped = "minutes"
                break
            if obs is None:
                obs, info = env.reset(seed=int(rng.integers(2**31)))
                episode_return, episode_length = 0.0, 0

            # 1. Act epsilon-greedily inside the action mask, store the transition.
            progress_frac = step / cfg.total_steps
            epsilon = linear_schedule(cfg.eps_start, cfg.eps_end, cfg.eps_fraction, progress_frac)
            mask = _mask(info)
            with torch.no_grad():
                q_values = q_net(torch.as_tensor(obs, dtype=torch.float32).reshape(1, -1))
            mask_t = None if mask is None else torch.from_numpy(mask)[None]
            action = int(epsilon_greedy(q_values, mask_t, epsilon, gen)[0])
            next_obs, reward, terminated, truncated, info = env.step(action)
            replay.add(np.ravel(obs), action, reward, np.ravel(next_obs), terminated, truncated,
                       mask=mask, next_mask=_mask(info))
            step += 1
            episode_return += float(reward)
            episode_length += 1
            obs = next_obs
            if terminated or truncated:
                episodes += 1
                recent_returns.append(episode_return)
                logger.log(step, {"train/episode_return": episode_return,
                                  "train/episode_length": episode_length})
                obs = None

            # 2. Learn: sample, n-step (double) targets, TD loss, clipped step, target update.
            if step > cfg.learning_starts and step % cfg.train_freq == 0:
                beta = cfg.per_beta0 + (1.0 - cfg.per_beta0) * progress_frac
                if cfg.lr_end is not None:
                    for group in optimizer.param_groups:
                        group["lr"] = linear_schedule(cfg.lr, cfg.lr_end, 1.0, progress_frac)
                for _ in range(cfg.gradient_steps):
                    batch = replay.sample(cfg.batch_size, rng, beta)
                    b_obs = torch.from_numpy(batch.obs)  # (B, obs_dim)
                    b_next = torch.from_numpy(batch.next_obs)  # (B, obs_dim)
                    b_actions = torch.from_numpy(batch.actions)  # (B,)
                    next_mask = (None if batch.next_masks is None
                                 else torch.from_numpy(batch.next_masks))
                    with torch.no_grad():
                        targets = nstep_targets(
                            q_net(b_next) if cfg.double else None, target_net(b_next),
                            next_mask, torch.from_numpy(batch.returns),
                            torch.from_numpy(batch.discounts), double=cfg.double)  # (B,)
                    q_all = q_net(b_obs)  # (B, A)
                    q_sa = q_all.gather(1, b_actions[:, None]).squeeze(1)  # (B,)
                    weights = torch.from_numpy(batch.weights) if cfg.prioritized else None
                    loss, td_errors = td_loss(q_sa, targets, weights, cfg.huber)
                    check_finite(loss, grad_steps)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if cfg.max_grad_norm is not None:
                        norm = torch.nn.utils.clip_grad_norm_(q_net.parameters(),
                                                              cfg.max_grad_norm)
                        check_finite(norm, grad_steps, "gradient norm")
                    optimizer.step()
                    grad_steps += 1
                    if cfg.prioritized:
                        replay.update_priorities(batch.indices, td_errors.numpy())
                    if grad_steps % cfg.target_update_interval == 0:
                        polyak_update(target_net, q_net,
                                      1.0 if cfg.target_update == "hard" else cfg.tau)
                    losses.append(loss.item())
                    q_means.append(q_sa.detach().mean().item())

            # 3. Evaluate, log, checkpoint (at an episode end, for exact resume).
            if cfg.eval_every and step % cfg.eval_every == 0:
                last_eval, evaluated_at = evaluate(), step
            if step % cfg.log_every == 0:
                now = time.perf_counter()
                logger.log(step, {
                    "train/epsilon": epsilon,
                    "train/loss": float(np.mean(losses)) if losses else None,
                    "train/q_mean": float(np.mean(q_means)) if q_means else None,
                    "train/steps_per_s": (step - last_log_step) / max(now - last_log_time, 1e-9),
                    "train/grad_steps": grad_steps})
                last_log_time, last_log_step = now, step
                losses.clear()
                q_means.clear()
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                checkpoint_due = True
            if checkpoint_due and obs is None:
                save("periodic")
                checkpoint_due, saved_at = False, step
            bar.update(1, eps=epsilon, loss=losses[-1] if losses else None,
                       ret=float(np.mean(recent_returns)) if recent_returns else None)
            if callback is not None and callback({"step": step, "episodes": episodes,
                                                  "episode_done": obs is None,
                                                  "epsilon": epsilon}) is False:
                stopped = "callback"
                break

        if evaluated_at != step:
            last_eval = evaluate()
        if saved_at != step:
            save(stopped)
    except FloatingPointError as exc:
        logger.log(step, {"diverged": 1})
        last = run.latest_path()
        raise FloatingPointError(
            f"{exc} Stopped at env step {step} of {env_id}; last good checkpoint: "
            f"{last if last else 'none'}.") from None
    finally:
        bar.close()
        logger.close()
        env.close()
        if run.metrics_path.is_file():
            plot_curves(run.path)
    wall = time.perf_counter() - start
    return {"env_id": env_id, "step": step, "episodes": episodes, "grad_steps": grad_steps,
            "stopped": stopped, "wall_time_s": wall,
            "steps_per_s": (step - steps_at_start) / max(wall, 1e-9),
            "eval_mean_return": last_eval["mean_return"],
            "eval_std_return": last_eval["std_return"],
            "eval_mean_length": last_eval["mean_length"],
            "eval_returns": last_eval["returns"], "run_dir": str(run.path)}


# --------------------------------------------------------------------------------------------
# Command line: python -m textrl.train_gym


def add_gym_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of a gym training command (``--env``, ``--run-dir``, ``--resume``, settings)."""
    parser.add_argument("--env", default=None,
                        help="Gymnasium env id with Discrete actions and Box observations; "
                        f"presets exist for {sorted(PRESETS)} (default: the resumed run's, "
                        "else CartPole-v1)")
    parser.add_argument("--run-dir", default=None,
                        help="run folder (default: runs/<env>-seed<seed>)")
    parser.add_argument("--config", default=None,
                        help="JSON or TOML file of settings (over the preset, under flags)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run folder's latest checkpoint with its config")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="hide the progress bar")
    add_dataclass_arguments(parser.add_argument_group("training settings"), TrainConfig)


def run_gym_from_args(args: argparse.Namespace) -> int:
    """Merge defaults < preset < run's config (resume) < --config < flags, then train."""
    from textrl.runs import RunDir

    saved: dict = {}
    if args.resume and args.run_dir and (Path(args.run_dir) / "config.json").is_file():
        saved = RunDir(args.run_dir).load_config()
        args.env = args.env or saved.get("env_id")
    args.env = args.env or "CartPole-v1"
    preset = dict(PRESETS.get(args.env, {}))
    saved.pop("env_id", None)
    preset.update(saved)
    cfg = config_from_args(TrainConfig, args, preset=preset)
    run_dir = args.run_dir or f"runs/{args.env.replace('/', '_')}-seed{cfg.seed}"
    result = train_gym(args.env, cfg, run_dir, resume=args.resume, progress=args.progress)
    print(f"{args.env}: step {result['step']}, eval mean return "
          f"{result['eval_mean_return']:.1f} ± {result['eval_std_return']:.1f} over "
          f"{len(result['eval_returns'])} episodes, {result['wall_time_s']:.0f} s; "
          f"run folder {result['run_dir']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m textrl.train_gym",
                                     description="DQN on a Gymnasium env with vector "
                                     "observations (the classic-control check of the agent).")
    add_gym_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_gym_from_args(args)
    except (ValueError, FileNotFoundError, FloatingPointError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())

