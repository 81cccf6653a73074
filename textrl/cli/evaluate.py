"""``textrl eval`` and ``textrl generate``: use a trained run (text, or ``--env`` for eval)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from textrl.cli.options import non_negative_int, positive_int
from textrl.dqn.checkpoints import RunDir
from textrl.text.config import WEIGHTS


def register(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser(
        "eval",
        help="decode a split with a trained run and score it",
        description="Greedy (or beam) decoding over a split, scored with "
        "sacrebleu and rouge-score (x100) against the first reference and the "
        "best reference per document, beside the random, lead-1 and MLE "
        "baselines. For a --env run: mean return over greedy episodes.",
    )
    ev.add_argument("run_dir", metavar="RUN_DIR")
    ev.add_argument("--data", default=None, help="data to evaluate on (default: the run's)")
    ev.add_argument("--split", default="test", help="split to evaluate (default: test)")
    ev.add_argument(
        "--out",
        default=None,
        metavar="REPORT.json",
        help="write the JSON report here and a Markdown table beside it",
    )
    ev.add_argument(
        "--beam",
        type=positive_int,
        default=1,
        help="beam width over the policy softmax(Q / tau) (1: greedy)",
    )
    ev.add_argument(
        "--weights",
        default="best",
        choices=WEIGHTS,
        help="best on the eval split during training, the last checkpoint (its moving average "
        "of the weights when the run keeps one), or the MLE warm start",
    )
    ev.add_argument(
        "--no-repeat-ngram",
        type=non_negative_int,
        default=None,
        metavar="N",
        help="greedy decoding never repeats a token N-gram (0: plain argmax of Q; default: as "
        "the run's evaluations decoded, its config's no_repeat_ngram)",
    )
    ev.add_argument(
        "--against",
        default=None,
        metavar="OTHER_RUN",
        help="also decode the documents with another text run and report a paired bootstrap "
        "of this run minus it (e.g. DQN against SCST from the same warm start)",
    )
    ev.add_argument(
        "--against-weights",
        default="best",
        choices=WEIGHTS,
        help="which weights of --against to decode (default: best)",
    )
    ev.add_argument("--limit", type=positive_int, default=None, help="first N documents only")
    ev.add_argument("--no-baselines", action="store_true", help="skip the baselines")
    ev.add_argument("--episodes", type=positive_int, default=20, help="episodes (--env runs)")
    ev.add_argument("--seed", type=int, default=0, help="seed of the random baseline/episodes")
    ev.add_argument(
        "--epsilon",
        type=float,
        default=None,
        help="--env runs: epsilon of the evaluation episodes (default: the run's eval_epsilon)",
    )
    ev.set_defaults(func=cmd_eval)

    gen = sub.add_parser("generate", help="summarise a document with a trained run")
    gen.add_argument("run_dir", metavar="RUN_DIR")
    gen.add_argument("document", help="the document text, or - to read it from stdin")
    gen.add_argument(
        "--beam",
        type=positive_int,
        default=1,
        help="beam width over the policy softmax(Q / tau) (1: greedy)",
    )
    gen.add_argument("--weights", default="best", choices=WEIGHTS)
    gen.add_argument(
        "--no-repeat-ngram",
        type=non_negative_int,
        default=None,
        metavar="N",
        help="never repeat a token N-gram (greedy only; 0: plain argmax of Q; default: the "
        "run's no_repeat_ngram, 0 with --beam)",
    )
    gen.set_defaults(func=cmd_generate)


def cmd_eval(args: argparse.Namespace) -> int:
    saved = RunDir(args.run_dir).load_config()
    if saved.get("kind") == "gym" or "env_id" in saved:
        if args.against is not None:
            raise ValueError(f"--against: compares text runs; {args.run_dir!r} is an --env run")
        from textrl.dqn.train_gym import evaluate_gym

        epsilon = saved.get("eval_epsilon", 0.0) if args.epsilon is None else args.epsilon
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"--epsilon: expected a number in [0, 1], got {epsilon}")
        result = evaluate_gym(args.run_dir, episodes=args.episodes, seed=args.seed, epsilon=epsilon)
        if args.out:
            Path(args.out).write_text(json.dumps(result, indent=2))
        print(
            f"{saved['env_id']}: mean return {result['mean_return']:.1f} "
            f"± {result['std_return']:.1f} over {args.episodes} episodes (epsilon {epsilon}; "
            "game scores, unclipped)"
        )
        return 0
    from textrl.text.evaluation import evaluate_run, report_markdown

    report = evaluate_run(
        args.run_dir,
        data=args.data,
        split=args.split,
        weights=args.weights,
        beam=args.beam,
        limit=args.limit,
        baselines=not args.no_baselines,
        seed=args.seed,
        out=args.out,
        no_repeat_ngram=args.no_repeat_ngram,
        against=args.against,
        against_weights=args.against_weights,
    )
    print(report_markdown(report))
    if args.out:
        print(f"wrote {args.out} and {Path(args.out).with_suffix('.md')}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from textrl.text.evaluation import load_text_run, run_no_repeat_ngram

    document = sys.stdin.read() if args.document == "-" else args.document
    if not document.strip():
        raise ValueError("document: expected non-empty text")
    cfg, env, agent = load_text_run(args.run_dir, args.weights, split=None)
    no_repeat = run_no_repeat_ngram(cfg, args.no_repeat_ngram, args.beam)
    source, _ = env.source_and_mask(document.strip())
    known = [int(t) for t in source if int(t) != env.tokenizer.unk_id]
    if not env.tokenizer.decode(known).strip():  # only unknown characters (and spaces)
        raise ValueError(
            "document: none of its characters are in the run's vocabulary (every token is "
            f"unknown: {document.strip()[:40]!r}); nothing to summarise"
        )
    print(agent.generate([document.strip()], beam=args.beam, no_repeat_ngram=no_repeat)[0])
    return 0
