"""``textrl train``, ``textrl eval`` and ``textrl generate``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from textrl.config import add_dataclass_arguments, config_from_args

TRAIN_HELP = """\
Train a DQN agent. Without arguments: the text agent on the built-in corpus (about 10 minutes on
2 CPU cores), into runs/<time>/. With --env ID: the classic DQN with an MLP Q-network on any
Gymnasium env with discrete actions and vector observations (e.g. CartPole-v1, which gets the
rl-baselines3-zoo hyperparameters unless overridden). The defaults shown are the text agent's.
Settings merge as: defaults < --config FILE (JSON or TOML) < flags given here. With --resume the
run's saved config.json replaces the defaults, so only the flags you give change."""


# TrainConfig fields that the text loop does not use.
GYM_ONLY = {"lr_end", "net_arch", "train_freq", "eval_episodes"}


def register(sub: argparse._SubParsersAction) -> None:
    from textrl.train_text import TextTrainConfig

    train = sub.add_parser("train", help="train a DQN agent (text by default, or --env ID)",
                           description=TRAIN_HELP,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("--env", metavar="ID", default=None,
                       help="a Gymnasium env id (vector observations) instead of text")
    train.add_argument("--out", metavar="RUN_DIR", default=None,
                       help="run folder (default: runs/<YYYYmmdd-HHMMSS>)")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in --out from its latest checkpoint")
    train.add_argument("--config", metavar="FILE", default=None,
                       help="JSON or TOML file of settings (field names as below, with _)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_dataclass_arguments(train.add_argument_group("settings"), TextTrainConfig)
    train.set_defaults(func=cmd_train)

    ev = sub.add_parser("eval", help="decode a split with a trained run and score it",
                        description="Greedy (or beam) decoding over a split, scored with "
                        "sacrebleu and rouge-score (x100) against the first reference and the "
                        "best reference per document, beside the random, lead-1 and MLE "
                        "baselines. For a --env run: mean return over greedy episodes.")
    ev.add_argument("run_dir", metavar="RUN_DIR")
    ev.add_argument("--data", default=None, help="data to evaluate on (default: the run's)")
    ev.add_argument("--split", default="test", help="split to evaluate (default: test)")
    ev.add_argument("--out", default=None, metavar="REPORT.json",
                    help="write the JSON report here and a Markdown table beside it")
    ev.add_argument("--beam", type=int, default=1, help="beam width over Q-values (1: greedy)")
    ev.add_argument("--weights", default="best", choices=["best", "final", "mle"],
                    help="best on the eval split during training, the last checkpoint, or "
                    "the MLE warm start")
    ev.add_argument("--no-repeat-ngram", type=int, default=0, metavar="N",
                    help="greedy decoding never repeats a token N-gram (0: plain argmax of Q)")
    ev.add_argument("--limit", type=int, default=None, help="first N documents only")
    ev.add_argument("--no-baselines", action="store_true", help="skip the baselines")
    ev.add_argument("--episodes", type=int, default=20, help="episodes (--env runs)")
    ev.add_argument("--seed", type=int, default=0, help="seed of the random baseline/episodes")
    ev.set_defaults(func=cmd_eval)

    gen = sub.add_parser("generate", help="summarise a document with a trained run")
    gen.add_argument("run_dir", metavar="RUN_DIR")
    gen.add_argument("document", help="the document text, or - to read it from stdin")
    gen.add_argument("--beam", type=int, default=1, help="beam width over Q-values (1: greedy)")
    gen.add_argument("--weights", default="best", choices=["best", "final", "mle"])
    gen.add_argument("--no-repeat-ngram", type=int, default=0, metavar="N",
                     help="never repeat a token N-gram (greedy only; 0: plain argmax of Q)")
    gen.set_defaults(func=cmd_generate)


def cmd_train(args: argparse.Namespace) -> int:
    from textrl.config import TrainConfig
    from textrl.train_text import TextTrainConfig, train_text

    out = Path(args.out or Path("runs") / time.strftime("%Y%m%d-%H%M%S"))
    if args.resume and args.out is None:
        raise ValueError("--resume: name the run folder to continue with --out RUN_DIR")
    saved = _saved_config(out) if args.resume else None
    if args.env is not None or (saved and "env_id" in saved):
        from textrl.train_gym import PRESETS, train_gym

        env_id = args.env or saved["env_id"]  # type: ignore[index]
        text_only = sorted(set(vars(args)) & (_fields(TextTrainConfig) - _fields(TrainConfig)))
        if text_only:
            flags = ["--" + f.replace("_", "-") for f in text_only]
            raise ValueError(f"--env {env_id}: options {flags} are for text training only")
        base = {k: v for k, v in (saved or {}).items() if k in _fields(TrainConfig)}
        cfg = config_from_args(TrainConfig, args, preset=base or PRESETS.get(env_id))
        print(f"textrl train: {env_id} -> {out}")
        result = train_gym(env_id, cfg, out, resume=args.resume, progress=not args.no_progress)
    else:
        gym_only = sorted(set(vars(args)) & GYM_ONLY)
        if gym_only:
            flags = ["--" + f.replace("_", "-") for f in gym_only]
            raise ValueError(f"options {flags} apply to --env training only (text training "
                             "learns from whole episodes after each round of --num-envs)")
        base = {k: v for k, v in (saved or {}).items() if k != "kind"}
        cfg = config_from_args(TextTrainConfig, args, preset=base or None)
        print(f"textrl train: {cfg.data} -> {out}")
        result = train_text(cfg, out, resume=args.resume, progress=not args.no_progress)
    print(json.dumps(_jsonable(result), indent=2))
    print(f"run folder: {out}  (next: textrl eval {out})")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    saved = _saved_config(Path(args.run_dir))
    if "env_id" in saved:
        from textrl.train_gym import evaluate_gym

        result = evaluate_gym(args.run_dir, episodes=args.episodes, seed=args.seed)
        if args.out:
            Path(args.out).write_text(json.dumps(result, indent=2))
        print(f"{saved['env_id']}: mean return {result['mean_return']:.1f} "
              f"± {result['std_return']:.1f} over {args.episodes} episodes")
        return 0
    from textrl.evaluate import evaluate_run, report_markdown

    report = evaluate_run(args.run_dir, data=args.data, split=args.split, weights=args.weights,
                          beam=args.beam, limit=args.limit, baselines=not args.no_baselines,
                          seed=args.seed, out=args.out, no_repeat_ngram=args.no_repeat_ngram)
    print(report_markdown(report))
    if args.out:
        print(f"wrote {args.out} and {Path(args.out).with_suffix('.md')}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from textrl.evaluate import load_text_run

    document = sys.stdin.read() if args.document == "-" else args.document
    if not document.strip():
        raise ValueError("document: expected non-empty text")
    _, _, agent = load_text_run(args.run_dir, args.weights, split=None)
    print(agent.generate([document.strip()], beam=args.beam,
                         no_repeat_ngram=args.no_repeat_ngram)[0])
    return 0


def _saved_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"run: no config.json in {str(run_dir)!r} (is it a run folder "
                                "written by 'textrl train'?)")
    return json.loads(path.read_text(encoding="utf-8"))


def _fields(cls: type) -> set[str]:
    import dataclasses

    return {f.name for f in dataclasses.fields(cls)}


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, (int, float, str, bool, type(None))) else str(v))
            for k, v in d.items() if not isinstance(v, list)}
