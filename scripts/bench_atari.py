"""Atari Pong throughput: textrl's DQN against Stable-Baselines3's DQN ``CnnPolicy``, same preset.

Both get rl-baselines3-zoo's DQN Atari hyperparameters (``ZOO_ATARI`` in
:mod:`textrl.dqn.config`; SB3 verbatim, including ``optimize_memory_usage=True``) and the SAME
environment object chain (:func:`textrl.dqn.atari.make_gym_env`, training version), so the
comparison is of the agents, not of the preprocessing. ``learning_starts`` is lowered to
``--learning-starts`` so that the run measures both phases: acting only (steps before
learning starts) and acting plus one gradient step every 4 env steps. Two exploration settings:
"start", the first steps of the default 10M-step run (epsilon ~1: both agents skip the network
for exploratory steps; the run is stopped after ``--steps``), and "late", epsilon 0.01 from the
first step (every step a forward pass, the regime of most of a run; SB3 still acts at random
before ``learning_starts``, as it always does). One torch thread each, run one after the other,
in the same invocation. Also measures the replays' bytes per transition:
textrl's :class:`~textrl.dqn.frame_replay.FrameReplay` filled by the run, and SB3's buffer.

    python scripts/bench_atari.py --steps 4000 --learning-starts 1000
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path

ENV_ID = "ALE/Pong-v5"


TOTAL = 10_000_000  # the preset's length: the exploration schedule of a real run
LATE_FRACTION = 1e-6  # epsilon reaches its final value at once


def sb3_kwargs(zoo: dict, learning_starts: int, phase: str) -> dict:
    return {
        "learning_rate": zoo["lr"],
        "batch_size": zoo["batch_size"],
        "buffer_size": zoo["buffer_size"],
        "learning_starts": learning_starts,
        "gamma": zoo["gamma"],
        # SB3 counts the target interval in env steps: 1000 (= 250 gradient steps at freq 4)
        "target_update_interval": zoo["target_update_interval"] * zoo["train_freq"],
        "train_freq": zoo["train_freq"],
        "gradient_steps": zoo["gradient_steps"],
        "exploration_fraction": zoo["eps_fraction"] if phase == "start" else LATE_FRACTION,
        "exploration_final_eps": zoo["eps_end"],
        "optimize_memory_usage": True,
        "replay_buffer_kwargs": {"handle_timeout_termination": False},
    }


class Clock:
    """Times the acting-only phase (to ``learning_starts``) and the learning phase."""

    def __init__(self, learning_starts: int) -> None:
        self.learning_starts, self.marks = learning_starts, {}

    def __call__(self, step: int) -> None:
        if step == 1:
            self.marks["start"] = time.perf_counter()
        elif step == self.learning_starts:
            self.marks["learn"] = time.perf_counter()
        self.marks["end"], self.last = time.perf_counter(), step

    def rates(self, updates: int) -> dict[str, float]:
        acting = self.marks["learn"] - self.marks["start"]
        learning = self.marks["end"] - self.marks["learn"]
        return {
            "acting_steps_per_s": (self.learning_starts - 1) / acting,
            "steps_per_s": (self.last - self.learning_starts) / learning,
            "updates_per_s": updates / learning,
        }


def run_ours(steps: int, learning_starts: int, out: Path, phase: str) -> tuple[dict, float]:
    from textrl.dqn.config import ZOO_ATARI, GymConfig
    from textrl.dqn.train_gym import GymTrainer

    cfg = GymConfig(
        **{
            **ZOO_ATARI,
            "total_steps": TOTAL,
            "learning_starts": learning_starts,
            "eps_fraction": ZOO_ATARI["eps_fraction"] if phase == "start" else LATE_FRACTION,
            "eval_every": 0,
            "eval_episodes": 1,
            "checkpoint_every": 0,
            "torch_threads": 1,
        }
    )
    clock = Clock(learning_starts)
    trainer = GymTrainer(ENV_ID, cfg, out, resume=False, tensorboard=False)

    def tick(info: dict) -> bool:
        clock(info["env_steps"])
        return info["env_steps"] < steps

    trainer.run(progress=False, callback=tick)
    updates = trainer.core.state.grad_steps
    return clock.rates(updates), trainer.core.replay.bytes_per_transition()


def run_sb3(steps: int, learning_starts: int, phase: str) -> tuple[dict, float]:
    import torch
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback

    from textrl.dqn.atari import make_gym_env
    from textrl.dqn.config import ZOO_ATARI

    torch.set_num_threads(1)
    clock = Clock(learning_starts)

    class Tick(BaseCallback):
        def _on_step(self) -> bool:
            clock(self.num_timesteps)
            return self.num_timesteps < steps

    model = DQN(
        "CnnPolicy",
        make_gym_env(ENV_ID, train=True),
        seed=0,
        device="cpu",
        verbose=0,
        **sb3_kwargs(ZOO_ATARI, learning_starts, phase),
    )
    model.learn(total_timesteps=TOTAL, callback=Tick())
    buffer = model.replay_buffer
    stored = sum(
        getattr(buffer, name).nbytes
        for name in ("observations", "actions", "rewards", "dones", "timeouts")
        if getattr(buffer, name, None) is not None
    )
    updates = model._n_updates
    return clock.rates(updates), stored / buffer.buffer_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--learning-starts", type=int, default=1000)
    parser.add_argument("--skip-sb3", action="store_true")
    args = parser.parse_args()
    rows = []
    for phase in ("start", "late"):
        with tempfile.TemporaryDirectory() as tmp:
            ours, ours_bytes = run_ours(args.steps, args.learning_starts, Path(tmp), phase)
        rows.append((phase, "textrl DQN (Nature CNN, FrameReplay)", ours, ours_bytes))
        if not args.skip_sb3:
            sb3, sb3_bytes = run_sb3(args.steps, args.learning_starts, phase)
            rows.append((phase, "SB3 DQN CnnPolicy (optimize_memory_usage)", sb3, sb3_bytes))
    print(f"command: python {shlex.join(sys.argv)}  (torch threads 1, {ENV_ID})\n")
    print(
        "| epsilon | agent | acting only, steps/s | learning, env steps/s | updates/s "
        "| replay B/transition |"
    )
    print("|---|---|---|---|---|---|")
    for phase, name, r, nbytes in rows:
        print(
            f"| {phase} | {name} | {r['acting_steps_per_s']:.0f} | {r['steps_per_s']:.1f} | "
            f"{r['updates_per_s']:.1f} | {nbytes:,.0f} |"
        )
    if not args.skip_sb3:
        for i in (0, 2):
            a, b = rows[i][2], rows[i + 1][2]
            print(
                f"\n{rows[i][0]}: textrl / SB3: acting "
                f"{a['acting_steps_per_s'] / b['acting_steps_per_s']:.2f}x, learning steps/s "
                f"{a['steps_per_s'] / b['steps_per_s']:.2f}x, updates/s "
                f"{a['updates_per_s'] / b['updates_per_s']:.2f}x, replay bytes "
                f"{rows[i][3] / rows[i + 1][3]:.2f}x"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
