"""Resident memory of the text learner over rounds of acting (and learning): a table.

    python scripts/probe_memory.py --mode learn --rounds 120 \
        --init-weights runs/es-s1/mle.safetensors --tokenizer runs/es-s1/tokenizer

Each round acts one episode per environment (``TextTrainer.act``); ``--mode learn`` adds one
DQN update per round, ``--mode trim`` also trims the heap every 8 updates (what training does),
``--mode act`` only acts. Run with ``MALLOC_MMAP_THRESHOLD_=65536`` to see glibc's heap
fragmentation go away. Linux only (reads /proc/self/statm).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time

from textrl.dqn.core import trim_heap
from textrl.text.config import TextConfig
from textrl.text.train import TRIM_EVERY, TextTrainer


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=("act", "learn", "trim"), default="learn")
    parser.add_argument("--rounds", type=int, default=120)
    parser.add_argument("--every", type=int, default=20, help="print a row every N rounds")
    parser.add_argument("--data", default="../shared/data/scitldr-a")
    parser.add_argument("--init-weights", default=None)
    parser.add_argument("--tokenizer", default=None)
    args = parser.parse_args()
    cfg = TextConfig(
        data=args.data,
        tokenizer=args.tokenizer,
        init_weights=args.init_weights,
        mle=False,
        torch_threads=1,
        seed=1,
    )
    folder = tempfile.mkdtemp(prefix="probe-memory-")
    try:
        trainer = TextTrainer(cfg, folder)
        print(f"| round | env steps | resident MB | seconds |  (built: {rss_mb():.0f} MB)")
        print("|---|---|---|---|")
        t0 = time.perf_counter()
        for i in range(1, args.rounds + 1):
            trainer.act(0.05)
            if args.mode != "act":
                trainer.learner.dqn_update(0.4)
            if args.mode == "trim" and i % TRIM_EVERY == 0:
                trim_heap()
            if i % args.every == 0:
                steps = trainer.state.env_steps
                print(f"| {i} | {steps} | {rss_mb():.0f} | {time.perf_counter() - t0:.0f} |")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
