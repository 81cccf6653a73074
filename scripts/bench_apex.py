"""Ape-X on Ray: acting and learning throughput of 1 and 2 actors against the in-process trainer.

Measured in one run, on the built-in corpus with the default text configuration (the network as
initialised; epsilon 0.4 for every acting variant so episode lengths match):

- acted tokens/s of the in-process trainer (``TextTrainer.act``: ``num_envs`` environments in
  lock-step, one cached network step per token) with nothing else running;
- acted tokens/s summed over 1 and 2 Ray actors (:class:`textrl.dqn.distributed.TextActorWorker`,
  the same acting code in its own process), with no learner running, and each actor's share of
  time inside the environments (reset and step, with their exact dense rewards);
- learned transitions/s of ``TextLearner.dqn_update`` alone, and while 2 actors act.

Then the same for CartPole-v1 (env steps/s of the in-process loop's acting vs 1 and 2
:class:`~textrl.dqn.distributed.GymActorWorker`). Ray starts locally (``num_cpus`` = the
machine's cores). Prints markdown tables and the command.

    python scripts/bench_apex.py --seconds 20
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shlex
import sys
import tempfile
import time

import numpy as np
import torch

from textrl.dqn.core import torch_threads
from textrl.dqn.distributed import ActorPool, GymActorWorker, TextActorWorker, cpu_state
from textrl.text.config import TextConfig
from textrl.text.train import TextTrainer

EPS = 0.4


def pool_rate(pool: ActorPool, seconds: float, *args: object) -> tuple[float, float]:
    """Acted steps/s summed over the pool's actors, and their env share, over ``seconds``
    (after one untimed call per actor: process start, imports, the first weights)."""
    warm: set[int] = set()
    for i in range(len(pool)):
        pool.submit(i, *args)
    while len(warm) < len(pool):
        for i, _ in pool.ready(timeout=600):
            warm.add(i)
            pool.submit(i, *args)
    steps, busy, env, t0 = 0, 0.0, 0.0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for i, res in pool.ready(timeout=1.0):
            pool.submit(i, *args)
            if res is not None:
                steps += res["steps"]
                busy += res["seconds"]
                env += res["env_seconds"]
    wall = time.perf_counter() - t0
    return steps / wall, env / max(busy, 1e-9)


def text_rows(seconds: float) -> list[tuple[str, str]]:
    cfg = TextConfig(
        mle=False,
        demos=False,
        self_imitation=0.0,  # epsilon-greedy acting only, as the actors do
        value_warmup_updates=0,
        eps_start=EPS,
        eps_end=EPS,
    )
    job = TextTrainer(cfg, tempfile.mkdtemp(prefix="textrl-bench-apex-"))
    env, learner = job.actor.envs[0], job.learner
    rows = []
    # in-process acting
    job.act(EPS)
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        steps += job.act(EPS)[0]
    in_process = steps / (time.perf_counter() - t0)
    rows.append(("in-process acting, tokens/s", f"{in_process:.0f} (1.00x)"))
    # learner alone
    with torch_threads(cfg.torch_threads):
        learner.dqn_update(0.4)
        learned, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            learned += learner.dqn_update(0.4)["transitions"]
        alone = learned / (time.perf_counter() - t0)
    values = dataclasses.asdict(cfg)
    for n in (1, 2):
        args = [(values, env.tokenizer, i, n, EPS, 1000 + i) for i in range(n)]
        pool = ActorPool(TextActorWorker, args)
        pool.publish(cpu_state(learner.online))
        rate, share = pool_rate(pool, seconds)
        rows.append(
            (
                f"{n} Ray actor{'s' if n > 1 else ''} acting, tokens/s (env share)",
                f"{rate:.0f} ({rate / in_process:.2f}x; env {100 * share:.0f}%)",
            )
        )
        if n == 2:  # the learner while both actors act
            for i in range(n):
                pool.submit(i)
            with torch_threads(cfg.torch_threads):
                learned, t0 = 0, time.perf_counter()
                while time.perf_counter() - t0 < seconds:
                    learned += learner.dqn_update(0.4)["transitions"]
                    for i, _ in pool.ready(timeout=0.0):
                        pool.submit(i)
                busy = learned / (time.perf_counter() - t0)
        pool.shutdown()
    rows.append(("learner alone, transitions/s", f"{alone:.0f} (1.00x)"))
    rows.append(("learner while 2 actors act, transitions/s", f"{busy:.0f} ({busy / alone:.2f}x)"))
    return rows


def gym_rows(seconds: float) -> list[tuple[str, str]]:
    from textrl.dqn.config import PRESETS, GymConfig
    from textrl.dqn.train_gym import GymTrainer

    cfg = GymConfig(**{**PRESETS["CartPole-v1"], "eps_start": EPS, "eps_end": EPS})
    trainer = GymTrainer("CartPole-v1", cfg, tempfile.mkdtemp(), resume=False, tensorboard=False)
    t0, steps = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        if trainer.obs is None:
            trainer.obs, trainer.info = trainer.env.reset()
        trainer.act(EPS)
        steps += 1
    in_process = steps / (time.perf_counter() - t0)
    rows = [("in-process acting, env steps/s", f"{in_process:.0f} (1.00x)")]
    net_args = {
        "network": "mlp",
        "obs_shape": [4],
        "n_actions": 2,
        "net_arch": cfg.net_arch,
        "dueling": cfg.dueling,
    }
    for n in (1, 2):
        pool = ActorPool(GymActorWorker, [("CartPole-v1", net_args, i, EPS, i) for i in range(n)])
        pool.publish(cpu_state(trainer.core.online))
        rate, share = pool_rate(pool, seconds, 500)
        rows.append(
            (
                f"{n} Ray actor{'s' if n > 1 else ''} acting, env steps/s (env share)",
                f"{rate:.0f} ({rate / in_process:.2f}x; env {100 * share:.0f}%)",
            )
        )
        pool.shutdown()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="timed seconds per variant")
    args = parser.parse_args()
    torch.set_num_threads(1)
    text, gym = text_rows(args.seconds), gym_rows(args.seconds)
    print(
        f"command: python {shlex.join(sys.argv)}  ({os.cpu_count()} cores, "
        f"{platform.processor() or platform.machine()}, torch threads 1 everywhere)\n"
    )
    for title, rows in (("text agent, built-in corpus", text), ("CartPole-v1", gym)):
        print(f"| {title} | measured |\n|---|---|")
        for name, value in rows:
            print(f"| {name} | {value} |")
        print()
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    raise SystemExit(main())
