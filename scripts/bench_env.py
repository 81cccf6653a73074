"""Environment throughput: exact incremental dense rewards vs re-scoring with the libraries.

Measures, in one run and on the same seeded episodes and actions (random actions inside the
``source`` action mask, built-in corpus, dense ROUGE-1 + ROUGE-2 + ROUGE-L + BLEU reward):

  (a)  ``SummarizeEnv`` steps per second (incremental scorer), raw env and through ``gym.make``;
  (a') the same with ``final_scores="library"`` (rouge-score + sacrebleu score every metric of
       the final text once per episode);
  (b)  the same rewards obtained by re-scoring the scored text with rouge-score and sacrebleu at
       every step (the way terminal-reward libraries would have to do dense rewards).

  (c)  the reward computation alone, without the environment around it: the scored texts of
       the same episodes fed to ``IncrementalScorer.update`` vs ``SentenceScorer.score``.

It also checks that (a) and (b) produce the same rewards. Usage:

    python scripts/bench_env.py [--episodes 400] [--baseline-episodes 40]
"""

from __future__ import annotations

import argparse
import platform
import time

import gymnasium as gym
import numpy as np

import textrl  # noqa: F401  (registers the environments)
from textrl.envs.summarize import SummarizeEnv
from textrl.scoring.sentence import SentenceScorer

REWARD = "rouge1+rouge2+rougeL+bleu"


class RescoringEnv(SummarizeEnv):
    """Baseline: identical episodes, but each step re-scores the text with the libraries."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._rescorer = SentenceScorer(self.reward_spec.metrics, self.metric_config)

    def _prepare(self, example):
        out = super()._prepare(example)
        rescorer = self._rescorer
        scorer = out[4]
        refs = list(example.references)

        class _Rescore:  # stands in for IncrementalScorer: same interface, full re-scoring
            values = scorer.values

            def reset_text(self):
                return self.values

            def update(self, text):
                self.values = rescorer.score(text, refs)
                return self.values

        return (*out[:4], _Rescore())


def plan_episodes(env: SummarizeEnv, n: int, seed: int) -> list[tuple[int, list[int]]]:
    """Seeded (example index, actions) pairs: uniform random actions inside the mask."""
    rng = np.random.default_rng(seed)
    plans = []
    for _ in range(n):
        index = int(rng.integers(len(env.examples)))
        _, info = env.reset(options={"index": index})
        legal = np.flatnonzero(info["action_mask"])
        actions = []
        for _ in range(env.max_new_tokens):
            a = int(legal[rng.integers(len(legal))])
            actions.append(a)
            if a == env.eos_action:
                break
        plans.append((index, actions))
    return plans


def run(env, plans) -> tuple[float, int, list[float]]:
    rewards: list[float] = []
    steps = 0
    t0 = time.perf_counter()
    for index, actions in plans:
        env.reset(options={"index": index})
        for a in actions:
            _, r, term, trunc, _ = env.step(a)
            rewards.append(r)
            steps += 1
            if term or trunc:
                break
    return time.perf_counter() - t0, steps, rewards


def scored_texts(env: SummarizeEnv, plans) -> list[tuple[int, list[str]]]:
    """The text each step of each episode scores (completed words; whole text at the end)."""
    out = []
    for index, actions in plans:
        env.reset(options={"index": index})
        texts = []
        for a in actions:
            _, _, term, trunc, _ = env.step(a)
            m = env._stable_end.match(env._text)
            texts.append(env._text if term or trunc else env._text[: m.end()] if m else "")
            if term or trunc:
                break
        out.append((index, texts))
    return out


def time_scoring(env: SummarizeEnv, episodes) -> tuple[float, float, int]:
    from textrl.scoring.incremental import IncrementalScorer, shared_tools

    metrics = env.reward_spec.metrics
    tools = shared_tools(env.metric_config)
    library = SentenceScorer(metrics, env.metric_config)
    refs = {i: list(env.examples[i].references) for i, _ in episodes}
    n = sum(len(t) for _, t in episodes)
    t0 = time.perf_counter()
    for index, texts in episodes:
        inc = IncrementalScorer(refs[index], metrics, env.metric_config, _shared=tools)
        for text in texts:
            inc.update(text)
    t_inc = time.perf_counter() - t0
    t0 = time.perf_counter()
    for index, texts in episodes:
        for text in texts:
            library.score(text, refs[index])
    return t_inc, time.perf_counter() - t0, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=400)
    parser.add_argument("--baseline-episodes", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    kwargs = dict(action_mask="source", reward=REWARD, dense=True)
    fast = SummarizeEnv(final_scores="reward", **kwargs)
    lib_final = SummarizeEnv(final_scores="library", **kwargs)
    wrapped = gym.make("textrl/Summarize-v0", final_scores="reward", **kwargs)
    slow = RescoringEnv(final_scores="reward", **kwargs)
    plans = plan_episodes(fast, args.episodes, args.seed)
    sub = plans[: args.baseline_episodes]
    for env in (fast, lib_final, wrapped, slow):  # warm caches (source encodings, stems)
        run(env, plans[:5])

    rows = []
    t_a, n_a, _ = run(fast, plans)
    rows.append(("(a) incremental, raw env", n_a, t_a))
    t_w, n_w, _ = run(wrapped, plans)
    rows.append(("(a) incremental, via gym.make", n_w, t_w))
    t_l, n_l, _ = run(lib_final, plans)
    rows.append(("(a') incremental + library final scores", n_l, t_l))
    t_as, n_as, r_fast = run(fast, sub)
    rows.append((f"(a) incremental, first {len(sub)} episodes", n_as, t_as))
    t_b, n_b, r_slow = run(slow, sub)
    rows.append((f"(b) re-score every step, first {len(sub)} episodes", n_b, t_b))
    assert n_b == n_as
    t_inc, t_lib, n_c = time_scoring(fast, scored_texts(fast, sub))
    rows.append((f"(c) scoring only, incremental, first {len(sub)} episodes", n_c, t_inc))
    rows.append((f"(c) scoring only, libraries, first {len(sub)} episodes", n_c, t_lib))
    max_diff = max(abs(x - y) for x, y in zip(r_fast, r_slow))

    print(
        f"python {platform.python_version()}, {platform.machine()}, reward {REWARD!r}, "
        f"{args.episodes} episodes, max_new_tokens {fast.max_new_tokens}"
    )
    print(f"| {'variant':52} | {'steps':>6} | {'seconds':>7} | {'steps/s':>8} |")
    print(f"|{'-' * 54}|{'-' * 8}|{'-' * 9}|{'-' * 10}|")
    for name, n, t in rows:
        print(f"| {name:52} | {n:6d} | {t:7.3f} | {n / t:8.0f} |")
    speedup = (n_as / t_as) / (n_b / t_b)
    print(
        f"\nspeed-up (a)/(b) on the same {len(sub)} episodes: {speedup:.0f}x; "
        f"max |reward difference| between (a) and (b): {max_diff:.2e}"
    )
    print(
        f"speed-up of the reward computation alone (c): {t_lib / t_inc:.0f}x "
        "(includes building each episode's scorer)"
    )


if __name__ == "__main__":
    main()
