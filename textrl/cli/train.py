"""``textrl train``: the text agent by default, classic DQN on a Gymnasium env with ``--env``.

One parser serves both: the :class:`~textrl.dqn.config.DQNConfig` settings apply to both (their
help shows each default), the :class:`~textrl.text.config.TextConfig` settings to text only and
the :class:`~textrl.dqn.config.GymConfig` settings to ``--env`` only; a flag of the other kind
is an error that names it. Which fields belong where comes from the classes themselves.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from textrl.cli.options import add_config_arguments, field_names, resolve_config
from textrl.dqn.checkpoints import RunDir
from textrl.dqn.config import PRESETS, DQNConfig, GymConfig, preset_for
from textrl.text.config import TextConfig, with_old_defaults

TRAIN_HELP = """\
Train a DQN agent. Without --env: the text agent on the built-in corpus (about 10 minutes on 2
CPU cores), into runs/<time>/. With --env ID: the classic DQN with an MLP Q-network on any
Gymnasium env with discrete actions: an MLP for vector observations, the Nature-DQN CNN for
images (Atari ids such as ALE/Pong-v5 get the papers' preprocessing: pip install
'textrl-gym[atari]'). CartPole-v1 and Atari get rl-baselines3-zoo hyperparameters unless
overridden.
Settings merge as: defaults < preset (--env) < the run's config.json (--resume) < --config FILE
(JSON or TOML) < flags given here. --resume continues the run in --out from its latest
checkpoint, or starts it when it has none."""


def register(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser(
        "train",
        help="train a DQN agent (text by default, or --env ID)",
        description=TRAIN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument(
        "--env",
        metavar="ID",
        default=None,
        help="a Gymnasium env id instead of text; presets exist for "
        f"{sorted(k for k in PRESETS if k != 'atari')} and every Atari id",
    )
    train.add_argument(
        "--out",
        metavar="RUN_DIR",
        default=None,
        help="run folder (default: runs/<YYYYmmdd-HHMMSS>, or runs/<env>-seed<seed> with --env)",
    )
    train.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its latest checkpoint"
    )
    train.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="JSON or TOML file of settings (field names as below, with _)",
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    shared = field_names(DQNConfig)
    text_defaults, gym_defaults = TextConfig(), GymConfig()
    both = {
        name: _both_defaults(getattr(text_defaults, name), getattr(gym_defaults, name))
        for name in shared
    }
    add_config_arguments(
        train.add_argument_group("DQN settings (text and --env; --env presets may differ)"),
        DQNConfig,
        only=shared,
        defaults=both,
    )
    add_config_arguments(
        train.add_argument_group("text agent settings"),
        TextConfig,
        only=field_names(TextConfig) - shared,
    )
    add_config_arguments(
        train.add_argument_group("--env settings"), GymConfig, only=field_names(GymConfig) - shared
    )
    train.set_defaults(func=cmd_train)


def _both_defaults(text: Any, gym: Any) -> str:
    return str(text) if text == gym else f"{text} text, {gym} --env"


def cmd_train(args: argparse.Namespace) -> int:
    if args.resume and args.out is None:
        raise ValueError("--resume: name the run folder to continue with --out RUN_DIR")
    run = RunDir(args.out) if args.resume else None
    saved = run.load_config() if run is not None and run.config_path.is_file() else None
    saved_env = None if saved is None else saved.get("env_id")
    env_id = args.env or saved_env
    kind, cls = ("gym", GymConfig) if env_id else ("text", TextConfig)
    wrong = sorted(
        set(vars(args)) & ((field_names(TextConfig) | field_names(GymConfig)) - field_names(cls))
    )
    if wrong:
        flags = ["--" + f.replace("_", "-") for f in wrong]
        where = f"--env {env_id} runs" if kind == "gym" else "text runs (they need --env ID)"
        raise ValueError(f"options {flags} do not apply to {where}")
    if kind == "gym":
        from textrl.dqn.atari import is_atari
        from textrl.dqn.train_gym import train_gym

        preset = preset_for(env_id, is_atari(env_id))
        cfg = resolve_config(GymConfig, args, preset=preset, saved=saved)
        out = Path(args.out or f"runs/{env_id.replace('/', '_')}-seed{cfg.seed}")
        print(f"textrl train: {env_id} -> {out}")
        result = train_gym(env_id, cfg, out, resume=args.resume, progress=not args.no_progress)
        print(
            f"{env_id}: step {result['env_steps']}, eval mean return "
            f"{result['eval_mean_return']:.1f} ± {result['eval_std_return']:.1f} over "
            f"{len(result['eval_returns'])} episodes, {result['wall_time_s']:.0f} s"
        )
    else:
        from textrl.text.train import train_text

        if saved is not None:
            saved = with_old_defaults(saved)
        cfg = resolve_config(TextConfig, args, saved=saved)
        out = Path(args.out or Path("runs") / time.strftime("%Y%m%d-%H%M%S"))
        print(f"textrl train: {cfg.data} -> {out}")
        result = train_text(cfg, out, resume=args.resume, progress=not args.no_progress)
        print(json.dumps(_jsonable(result), indent=2))
    if result.get("stopped") == "interrupted":
        print(
            f"textrl train: interrupted; checkpoint saved in {out}. Continue with: "
            f"textrl train --out {out} --resume",
            file=sys.stderr,
        )
        return 130
    print(f"run folder: {out}  (next: textrl eval {out})")
    return 0


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (v if isinstance(v, (int, float, str, bool, type(None))) else str(v))
        for k, v in d.items()
        if not isinstance(v, list)
    }


__all__ = ["cmd_train", "register"]
