"""The ``textrl`` command line: one sub-command per job.

- ``textrl score`` (:mod:`textrl.cli.score`): score predictions against references.
- ``textrl train`` (:mod:`textrl.cli.train`): the text agent, or classic DQN with ``--env ID``.
- ``textrl eval`` and ``textrl generate`` (:mod:`textrl.cli.evaluate`): use a trained run.

Each module has ``register(subparsers)``, which adds its sub-commands with
``set_defaults(func=...)``; ``func(args)`` returns the exit code. Registering imports only
settings and argparse, never torch: ``textrl --help`` and ``textrl score`` run without it.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from textrl.dqn.config import MissingExtra

COMMAND_MODULES = ("textrl.cli.score", "textrl.cli.train", "textrl.cli.evaluate")


def build_parser() -> argparse.ArgumentParser:
    from textrl import __version__

    parser = argparse.ArgumentParser(
        prog="textrl",
        description="Token-level reinforcement learning for text generation: train a DQN "
        "summariser, evaluate it, and score generations with exact BLEU/ROUGE.",
    )
    parser.add_argument("--version", action="version", version=f"textrl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:  # (training handles Ctrl-C itself and checkpoints first)
        print(f"textrl {args.command}: interrupted", file=sys.stderr)
        return 130
    except (
        ValueError,
        TypeError,
        FileNotFoundError,
        RuntimeError,
        FloatingPointError,
        MissingExtra,
    ) as exc:
        # Errors of input (and a missing optional extra) carry a message naming the field or
        # the extra to install; show it without a traceback.
        print(f"textrl {args.command}: error: {exc}", file=sys.stderr)
        return 2
