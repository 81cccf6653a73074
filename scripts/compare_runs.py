"""Paired comparison of two text runs on the same documents (e.g. DQN against SCST).

    .venv/bin/python scripts/compare_runs.py RUN_A RUN_B [--split test] [--weights best]

Decodes ``--split`` of RUN_B's data with each run's ``--weights`` the way ``textrl eval``
does (greedy; each run's own ``no_repeat_ngram``), then runs the eval report's paired bootstrap
(:func:`textrl.scoring.paired_comparison`, 1000 resamples) of B against A. Prints one Markdown
row per metric under the multi-max protocol: both scores, B − A, its 95% interval and p.
"""

from __future__ import annotations

import argparse

from textrl.scoring import paired_comparison
from textrl.text.evaluation import load_text_run, run_no_repeat_ngram

METRICS = ("rouge1", "rouge2", "rougeL", "bleu")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.add_argument("--split", default="test")
    p.add_argument("--weights", default="best")
    args = p.parse_args()
    texts, env = {}, None
    for run in (args.run_b, args.run_a):  # B first: its env gives the documents to both
        cfg, run_env, agent = load_text_run(run, args.weights, split=args.split)
        env = env or run_env
        no_repeat = run_no_repeat_ngram(cfg, None, 1)
        texts[run] = agent.generate([e.document for e in env.examples], no_repeat_ngram=no_repeat)
    references = [list(e.references) for e in env.examples]
    result = paired_comparison(
        texts[args.run_a],
        texts[args.run_b],
        references,
        config=env.metric_config,
        metrics=METRICS,
        seed=0,
    ).to_dict()
    print(f"{args.run_b} − {args.run_a}, {len(references)} documents of {args.split}, multi-max")
    print("| metric | A | B | B − A | 95% CI | p |\n|---|---:|---:|---:|---|---:|")
    for metric, c in result["metrics_max_ref"].items():
        print(
            f"| {metric} | {c['a']:.2f} | {c['b']:.2f} | {c['difference']:+.2f} | "
            f"[{c['ci'][0]:+.2f}, {c['ci'][1]:+.2f}] | {c['p_value']:.3f} |"
        )


if __name__ == "__main__":
    main()
