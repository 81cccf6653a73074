"""Text DQN throughput: learning from whole episodes and cached acting vs naive variants.

Measured in one run, on the built-in corpus, with the default text configuration:

- learned transitions/s of ``TextLearner.dqn_update`` (one forward pass per sampled episode gives Q
  for all its steps; the target network likewise), the same with ``algo="anchored"`` (plus one
  forward pass of the frozen prior), vs a naive learner that runs one forward pass
  per transition for ``s`` (with gradient) and for ``s'`` (online and target), re-encoding the
  source every time, on batches of the same size in transitions;
- environment steps/s acted by ``TextTrainer.act`` (source encoded once per episode, one cached
  network step per token, ``num_envs`` environments in lock-step) vs naive acting that re-runs
  the network over source + prefix at every step.

It also prints the share of acting time spent inside the environments (``step``/``reset``, with
their exact dense rewards), which says whether acting is bound by the network or by Python.

Usage: ``python scripts/bench_learner.py [--updates 6] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

from textrl.dqn.core import torch_threads
from textrl.dqn.episode_replay import stack_padded
from textrl.dqn.policy import epsilon_greedy, masked_q
from textrl.text.batches import pad_sources
from textrl.text.config import TextConfig
from textrl.text.train import TextTrainer


def naive_update(job: TextTrainer, transitions: list[tuple], gamma: float) -> int:
    """One-step double-DQN update, one forward pass per transition for s and for s'."""
    net, target, pad_id = job.learner.online, job.learner.target, job.actor.pad_id
    src, smask = pad_sources([t[0] for t in transitions], pad_id)
    prefix, plen = stack_padded([t[1] for t in transitions], pad_id, np.int64)
    nxt, nlen = stack_padded([t[2] for t in transitions], pad_id, np.int64)
    actions = torch.tensor([t[3] for t in transitions])
    rewards = torch.tensor([t[4] for t in transitions], dtype=torch.float32)
    done = torch.tensor([t[5] for t in transitions], dtype=torch.float32)
    rows = torch.arange(len(transitions))
    q_s = net(src, smask, torch.from_numpy(prefix))[rows, torch.from_numpy(plen)]  # (B, A)
    with torch.no_grad():
        q_next_online = net(src, smask, torch.from_numpy(nxt))[rows, torch.from_numpy(nlen)]
        q_next_target = target(src, smask, torch.from_numpy(nxt))[rows, torch.from_numpy(nlen)]
        best = masked_q(q_next_online, None).argmax(-1, keepdim=True)
        y = rewards + gamma * (1 - done) * q_next_target.gather(-1, best).squeeze(-1)
    loss = F.smooth_l1_loss(q_s.gather(-1, actions[:, None]).squeeze(-1), y)
    job.learner.optimizer.zero_grad()
    loss.backward()
    job.learner.optimizer.step()
    return len(transitions)


@torch.no_grad()
def naive_collect(job: TextTrainer, eps: float) -> int:
    """Acting that re-encodes source + prefix with a full forward pass at every step."""
    envs = job.actor.envs
    resets = [e.reset() for e in envs]
    sources = [o["source"][: int(o["source_length"])] for o, _ in resets]
    amask = torch.from_numpy(np.stack([i["action_mask"] for _, i in resets])).bool()
    src, smask = pad_sources(sources, job.actor.pad_id)
    k = len(envs)
    tokens = torch.zeros(k, 0, dtype=torch.long)
    done = [False] * k
    steps = 0
    while not all(done):
        q = job.learner.online(src, smask, tokens)[:, -1]  # (K, A): Q after the prefix
        a = epsilon_greedy(q, amask, eps, job.learner.gen)
        for i in range(k):
            if not done[i]:
                _, _, term, trunc, _ = envs[i].step(int(a[i]))
                steps += 1
                done[i] = term or trunc
        tokens = torch.cat([tokens, job.actor.action_tokens[a][:, None]], 1)
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=6, help="timed updates per variant")
    parser.add_argument("--rounds", type=int, default=3, help="timed acting rounds per variant")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads for gradient steps (default: the config's)",
    )
    args = parser.parse_args()
    # Time full updates (no value warm-up) on agent episodes only, as the first measurement did.
    # The dqfd learner with 3-step targets (the measured baseline of earlier sessions); the
    # anchored variants are timed on the same replay below.
    cfg = TextConfig(mle=False, demos=False, value_warmup_updates=0, algo="dqfd", n_step=3)
    if args.threads:
        cfg.torch_threads = args.threads
    job = TextTrainer(cfg, tempfile.mkdtemp(prefix="textrl-bench-learner-"))
    learner = job.learner
    for _ in range(4):  # fill replay with agent episodes
        job.act(0.5)

    # Learner: ours on sampled episodes; naive on the same number of transitions.
    with torch_threads(cfg.torch_threads):
        learner.dqn_update(0.4)
        t0, learned = time.perf_counter(), 0
        for _ in range(args.updates):
            learned += learner.dqn_update(0.4)["transitions"]
        t_ours = time.perf_counter() - t0
        per_update = learned // args.updates
        batch = learner.replay.sample_episodes(64, learner.rng, 0.4).episodes
        trans = []
        for e in batch:
            for t in range(len(e.actions)):
                trans.append(
                    (
                        e.source,
                        e.tokens[:t],
                        e.tokens[: t + 1],
                        int(e.actions[t]),
                        float(e.rewards[t]),
                        t == len(e.actions) - 1,
                    )
                )
        learner.online.train()
        naive_update(job, trans[:64], cfg.gamma)
        t0, n_naive, i = time.perf_counter(), 0, 0
        while n_naive < min(per_update, 2 * 64):
            n_naive += naive_update(job, trans[i : i + 64], cfg.gamma)
            i += 64
        t_naive = time.perf_counter() - t0
        # The anchored update (--algo anchored) on the same replay: one more forward pass, of
        # the frozen prior, per sampled episode; with Monte Carlo targets (the default n-step
        # 48) no target-network pass.
        cfg.algo = "anchored"
        learner.set_prior()
        anchored = {}
        for n_step in (3, 48):
            cfg.n_step = n_step
            learner.dqn_update(0.4)
            t0, n = time.perf_counter(), 0
            for _ in range(args.updates):
                n += learner.dqn_update(0.4)["transitions"]
            anchored[n_step] = (n, time.perf_counter() - t0)
        cfg.algo, cfg.n_step = "dqfd", 3

    # Acting, with the time inside the environments' step() and reset() measured apart (the
    # rest is the network, the policy and the bookkeeping of LockstepActor.collect).
    job.act(0.1)
    env_seconds = [0.0]
    for env in job.actor.envs:
        for name in ("step", "reset"):
            setattr(env, name, _timed(getattr(env, name), env_seconds))
    t0, acted = time.perf_counter(), 0
    for _ in range(args.rounds):
        acted += job.act(0.1)[0]
    t_act = time.perf_counter() - t0
    for env in job.actor.envs:  # back to the plain methods for the naive variant
        del env.step, env.reset
    with torch_threads(1):
        t0, acted_naive = time.perf_counter(), naive_collect(job, 0.1)
        t_act_naive = time.perf_counter() - t0

    print(
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"{cfg.torch_threads} thread(s) for learning, 1 for acting; "
        f"d_model {cfg.d_model}, {cfg.n_layers} layers, "
        f"batch {cfg.batch_size} episodes, {cfg.num_envs} envs"
    )
    print("| variant | transitions or steps | seconds | per second |")
    print("|---|---|---|---|")
    rows = [
        ("learn: whole episodes, one pass each (ours; dqfd, n=3)", learned, t_ours),
        ("learn: anchored to a frozen prior, n=3 (prior + target passes)", *anchored[3]),
        ("learn: anchored, n=48 = Monte Carlo (the default; prior pass only)", *anchored[48]),
        ("learn: one pass per transition for s and s' (naive)", n_naive, t_naive),
        ("act: cached source, one step per token (ours)", acted, t_act),
        ("act: full forward over source + prefix per step (naive)", acted_naive, t_act_naive),
    ]
    for name, n, t in rows:
        print(f"| {name} | {n} | {t:.2f} | {n / t:.0f} |")
    print(
        f"\nlearning speed-up {learned / t_ours / (n_naive / t_naive):.1f}x, "
        f"acting speed-up {acted / t_act / (acted_naive / t_act_naive):.1f}x; anchored "
        f"learner at {anchored[3][0] / anchored[3][1] / (learned / t_ours):.2f}x (n=3) and "
        f"{anchored[48][0] / anchored[48][1] / (learned / t_ours):.2f}x (n=48) the dqfd one's "
        "rate; "
        f"share of acting time inside the environments (step + reset, dense rewards): "
        f"{env_seconds[0] / t_act:.0%}"
    )


def _timed(method, total: list[float]):
    """``method`` with its wall time added to ``total[0]``."""

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            total[0] += time.perf_counter() - t0

    return timed


if __name__ == "__main__":
    main()
