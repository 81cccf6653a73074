"""CartPole-v1: textrl's DQN against Stable-Baselines3's DQN at the same step budget.

SB3 gets rl-baselines3-zoo's DQN hyperparameters for CartPole-v1 verbatim; our agent gets
``PRESETS["CartPole-v1"]`` (the zoo's values plus n-step, Polyak target, double Q and a decaying
learning rate, see :mod:`textrl.config`), or the zoo's values with ``--ours-preset zoo``. Same
number of environment steps, one torch thread, run one after the other, never in parallel.
Each trained agent is scored by 20 greedy episodes on the same evaluation seeds (not those
used during training). Prints a markdown table and the command.

    python scripts/bench_cartpole.py --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# rl-baselines3-zoo hyperparams/dqn.yml, CartPole-v1 ("Almost Tuned").
ZOO_SB3 = {
    "learning_rate": 2.3e-3,
    "batch_size": 64,
    "buffer_size": 100_000,
    "learning_starts": 1000,
    "gamma": 0.99,
    "target_update_interval": 10,
    "train_freq": 256,
    "gradient_steps": 128,
    "exploration_fraction": 0.16,
    "exploration_final_eps": 0.04,
    "policy_kwargs": {"net_arch": [256, 256]},
}
ENV_ID = "CartPole-v1"


def eval_seed(seed: int) -> int:
    return 10_000 + 100 * seed


def run_ours(seed: int, steps: int, out: Path, overrides: dict, preset: str) -> tuple[dict, float]:
    from textrl.dqn.config import PRESETS, ZOO_CARTPOLE, GymConfig
    from textrl.dqn.train_gym import evaluate_gym, load_q_network, train_gym

    base = PRESETS[ENV_ID] if preset == "tuned" else ZOO_CARTPOLE
    cfg = GymConfig(**{**base, "seed": seed, "total_steps": steps, "torch_threads": 1, **overrides})
    start = time.perf_counter()
    train_gym(ENV_ID, cfg, out / f"ours-seed{seed}", progress=False, tensorboard=False)
    wall = time.perf_counter() - start
    net, _ = load_q_network(out / f"ours-seed{seed}")
    return evaluate_gym(net, ENV_ID, 20, eval_seed(seed)), wall


def run_sb3(seed: int, steps: int) -> tuple[dict, float]:
    import gymnasium as gym
    import torch
    from stable_baselines3 import DQN

    torch.set_num_threads(1)
    start = time.perf_counter()
    model = DQN("MlpPolicy", gym.make(ENV_ID), seed=seed, device="cpu", verbose=0, **ZOO_SB3)
    model.learn(total_timesteps=steps)
    wall = time.perf_counter() - start
    env = gym.make(ENV_ID)
    returns = []
    for i in range(20):
        obs, _ = env.reset(seed=eval_seed(seed) + i)
        total, done = 0.0, False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(int(action))
            total, done = total + float(reward), terminated or truncated
        returns.append(total)
    return {"mean_return": float(np.mean(returns)), "std_return": float(np.std(returns))}, wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--steps", type=int, default=50_000, help="env steps per run")
    parser.add_argument("--skip-sb3", action="store_true", help="run only textrl's agent")
    parser.add_argument("--skip-ours", action="store_true", help="run only SB3")
    parser.add_argument(
        "--ours-preset",
        choices=["tuned", "zoo"],
        default="tuned",
        help="our agent with PRESETS['CartPole-v1'] (tuned) or with the zoo's "
        "values as SB3 gets them (zoo)",
    )
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="FIELD=VALUE",
        help="override GymConfig fields of our agent, e.g. n_step=3",
    )
    parser.add_argument("--out-dir", default=None, help="run folders (default: a temp dir)")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    out = Path(args.out_dir or tempfile.mkdtemp(prefix="bench_cartpole_"))
    rows = []
    for seed in args.seeds:
        ours = (
            None if args.skip_ours else run_ours(seed, args.steps, out, overrides, args.ours_preset)
        )
        if ours:
            print(
                f"seed {seed} ours: {ours[0]['mean_return']:.1f} ± {ours[0]['std_return']:.1f}"
                f" in {ours[1]:.0f} s",
                file=sys.stderr,
                flush=True,
            )
        sb3 = run_sb3(seed, args.steps) if not args.skip_sb3 else None
        if sb3:
            print(
                f"seed {seed} sb3:  {sb3[0]['mean_return']:.1f} ± {sb3[0]['std_return']:.1f}"
                f" in {sb3[1]:.0f} s",
                file=sys.stderr,
                flush=True,
            )
        rows.append((seed, ours, sb3))

    def cell(result: tuple[dict, float] | None) -> tuple[str, str]:
        if result is None:
            return "-", "-"
        return (
            f"{result[0]['mean_return']:.1f} ± {result[0]['std_return']:.1f}",
            f"{result[1]:.0f} s",
        )

    print(f"\nCartPole-v1, {args.steps} env steps, 20 greedy evaluation episodes per seed\n")
    print("| seed | textrl DQN return | textrl wall time | SB3 DQN return | SB3 wall time |")
    print("|---:|---:|---:|---:|---:|")
    for seed, ours, sb3 in rows:
        print(f"| {seed} | {' | '.join(cell(ours))} | {' | '.join(cell(sb3))} |")
    for name, idx in (("textrl", 1), ("SB3", 2)):
        done = [r[idx] for r in rows if r[idx] is not None]
        if done:
            means = [d[0]["mean_return"] for d in done]
            print(
                f"\n{name}: mean over seeds {np.mean(means):.1f}, seeds >= 475: "
                f"{sum(m >= 475 for m in means)}/{len(means)}, "
                f"mean wall time {np.mean([d[1] for d in done]):.0f} s"
            )
    print(f"\nCommand: python {' '.join(shlex.quote(a) for a in sys.argv)}")
    print(f"Run folders: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
