"""Where fine-tuning can find signal: greedy decoding against best-of-K sampling, per document.

For one text run's weights on one split, this decodes each document greedily and samples
``--samples`` summaries at each ``--temperatures`` from the network's soft policy
(``softmax(Q / (soft_tau * T))``, as ``--self-imitation`` and ``--algo scst`` do), scores them
all with the training reward through the environments, and prints per temperature the mean
sample score, the best of 1/4/K, the share of documents where the best of 4 beats greedy and the
lengths. ``--weights-files`` instead prints the greedy score of each weights file (e.g. a probe's
final weights) next to the run's, on the same documents: the "did the training objective move"
check of BENCHMARKS.md.

    python scripts/sample_vs_greedy.py runs/ws1 --weights mle --split train --docs 96
    python scripts/sample_vs_greedy.py runs/ws1 --weights mle --split train --docs 400 \\
        --weights-files runs/s3/final.safetensors
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from textrl.text.acting import LockstepActor
from textrl.text.build import make_env
from textrl.text.evaluation import greedy_scores, load_text_run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", help="a text run folder")
    p.add_argument("--weights", default="mle", help="best, mle or final (default: mle)")
    p.add_argument("--split", default="train")
    p.add_argument("--docs", type=int, default=96, help="first N documents of the split")
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--temperatures", default="0.3,0.5,0.7,1.0")
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--weights-files", default=None, help="comma-separated .safetensors to compare greedily"
    )
    a = p.parse_args()
    torch.set_num_threads(1)
    cfg, env, agent = load_text_run(a.run, a.weights, split=a.split)
    if a.weights_files:
        from safetensors.torch import load_file

        def show(name: str) -> None:
            s = greedy_scores(agent, env, a.docs)
            print(f"{name}: greedy score {s['eval_score']:.4f}, {s['eval_length']:.1f} words")

        show(f"{a.run} ({a.weights})")
        for path in a.weights_files.split(","):
            agent.net.load_state_dict(load_file(path))
            show(path)
        return
    e = a.num_envs
    envs = [env] + [make_env(cfg, a.split, env.tokenizer) for _ in range(e - 1)]
    actor, net = LockstepActor(envs), agent.net
    gen = torch.Generator().manual_seed(a.seed)
    temps = [float(t) for t in a.temperatures.split(",")]
    greedy, greedy_len = [], []
    samples = {t: ([], []) for t in temps}  # scores (K, docs), lengths
    n = min(a.docs, len(env.examples)) // e * e
    for start in range(0, n, e):
        idx = list(range(start, start + e))
        g = actor.collect(net, 0.0, gen, None, idx)
        greedy += g.scores
        greedy_len += [len(x.actions) for x in g.episodes]
        for t in temps:
            scale = 1 / (cfg.soft_tau * t)
            rolls = [actor.collect(net, 0.0, gen, None, idx, scale) for _ in range(a.samples)]
            samples[t][0].append([r.scores for r in rolls])
            samples[t][1].append([[len(x.actions) for x in r.episodes] for r in rolls])
    g = np.array(greedy)
    print(f"{n} documents of {a.split}; greedy {g.mean():.4f}, {np.mean(greedy_len):.1f} tokens")
    print("| T | mean sample | best of 4 | best of K | best of 4 beats greedy | best-of-K tokens |")
    print("|---|---|---|---|---|---|")
    for t in temps:
        s = np.concatenate(samples[t][0], 1)  # (K, n)
        lengths = np.concatenate(samples[t][1], 1)
        best4 = s[:4].max(0)
        best = s.argmax(0)
        print(
            f"| {t} | {s.mean():.4f} | {best4.mean():.4f} | {s.max(0).mean():.4f} (K={len(s)}) "
            f"| {(best4 > g + 1e-9).mean():.0%} | {lengths[best, np.arange(n)].mean():.1f} |"
        )


if __name__ == "__main__":
    main()
