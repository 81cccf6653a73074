"""The learner on each available device: learned transitions/s, same configuration and batch.

For ``cpu`` and, when torch sees one, ``cuda``, in one run:

- the text learner (``TextLearner.dqn_update``, the default ``--algo anchored`` with its frozen
  prior pass, on a replay filled by in-process acting on the built-in corpus) at
  ``--batch-sizes`` episodes per update;
- the gym learner's update (``textrl.dqn.train_gym.dqn_update``: the Nature-CNN double DQN of
  the Atari preset) on a replay of random 84x84 frames, at the same batch sizes in transitions.

Ratios are against the CPU row of the same learner and batch. On a machine without CUDA it
prints the CPU rows and says so (no GPU number is ever made up).

Usage: ``python scripts/bench_device.py [--seconds 15] [--batch-sizes 32,128] [--threads 1]``
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time

import numpy as np
import torch

from textrl.dqn.config import ZOO_ATARI, GymConfig
from textrl.dqn.core import DQNCore, torch_threads
from textrl.dqn.replay import TransitionReplay
from textrl.dqn.train_gym import build_q_network, dqn_update
from textrl.text.config import TextConfig
from textrl.text.train import TextTrainer


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def text_rate(device: str, batch: int, seconds: float, threads: int) -> float:
    cfg = TextConfig(
        mle=False, value_warmup_updates=0, batch_size=batch, device=device, torch_threads=threads
    )
    job = TextTrainer(cfg, tempfile.mkdtemp(prefix="textrl-bench-device-"))
    while job.learner.replay.num_transitions < 20 * batch * 20:
        job.act(0.05)
    learner = job.learner
    learner.dqn_update(0.4)  # warm-up (CUDA kernels, allocator)
    _sync(device)
    learned, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        learned += learner.dqn_update(0.4)["transitions"]
    _sync(device)
    return learned / (time.perf_counter() - t0)


def cnn_rate(device: str, batch: int, seconds: float, threads: int) -> float:
    cfg = GymConfig(**{**ZOO_ATARI, "batch_size": batch, "device": device})
    net = build_q_network("cnn", (4, 84, 84), 6, cfg.net_arch, cfg.dueling).to(device)
    # random frames: the update's cost does not depend on what the pixels show
    replay = TransitionReplay(
        2_000, (4, 84, 84), gamma=cfg.gamma, n_step=cfg.n_step, obs_dtype=np.uint8
    )
    rng = np.random.default_rng(0)
    obs = rng.integers(0, 256, size=(4, 84, 84), dtype=np.uint8)
    for t in range(1_500):
        nxt = rng.integers(0, 256, size=(4, 84, 84), dtype=np.uint8)
        replay.add(obs, t % 6, 0.0, nxt, t % 500 == 499, False)
        obs = nxt
    core = DQNCore(cfg, net, replay)
    with torch_threads(threads):
        dqn_update(core, cfg, 0.4)
        _sync(device)
        done, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            dqn_update(core, cfg, 0.4)
            done += batch
        _sync(device)
    return done / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=15.0, help="timed seconds per row")
    p.add_argument("--batch-sizes", default="32,128")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the CPU learner")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    print(f"# {platform.platform()}, torch {torch.__version__}, CPU threads {a.threads}, GPU {gpu}")
    print("| learner | batch | device | transitions/s | vs CPU |")
    print("|---|---|---|---|---|")
    for name, rate in (("text (anchored)", text_rate), ("Nature CNN (Atari)", cnn_rate)):
        for batch in (int(b) for b in a.batch_sizes.split(",")):
            base = None
            for device in devices:
                r = rate(device, batch, a.seconds, a.threads)
                base = base or r
                print(f"| {name} | {batch} | {device} | {r:,.0f} | {r / base:.2f}x |", flush=True)
    if gpu is None:
        print("\nNo CUDA device here: GPU rows not measured.")


if __name__ == "__main__":
    main()
