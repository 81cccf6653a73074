"""The ``textrl`` command line: one sub-command per job, each defined next to its code.

Each module in :data:`COMMAND_MODULES` has ``register(subparsers)``, which adds its
sub-commands with ``set_defaults(func=...)``; ``func(args)`` returns the exit code. Modules keep
heavy imports (torch, datasets) inside their functions so ``textrl --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

COMMAND_MODULES = ("textrl.score_cli", "textrl.agent_cli")


def build_parser() -> argparse.ArgumentParser:
    from textrl import __version__

    parser = argparse.ArgumentParser(
        prog="textrl",
        description="Token-level reinforcement learning for text generation: train a DQN "
        "summariser, evaluate it, and score generations with exact BLEU/ROUGE.")
    parser.add_argument("--version", action="version", version=f"textrl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        if importlib.util.find_spec(name) is not None:
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
    except (ValueError, TypeError, FileNotFoundError, RuntimeError, FloatingPointError) as exc:
        # Errors of input carry a message naming the field; show it without a traceback.
        print(f"textrl {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
