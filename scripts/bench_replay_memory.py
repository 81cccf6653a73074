"""Memory and checkpoint size of the text learner's episode replay, against an older file.

    git show 14f7ef8:textrl/dqn/episode_replay.py > /tmp/old_episode_replay.py
    python scripts/bench_replay_memory.py --baseline /tmp/old_episode_replay.py

Builds ``EpisodeReplay(200_000, demo_capacity=10_000_000)`` (the text learner's settings), adds
5,000 episodes of 30 steps (every other one a demonstration), calls ``state_dict()``, and prints
the growth of peak memory, the times and the bytes of the arrays a checkpoint writes. Each
variant runs in its own process so that peak memory is its own.
"""

from __future__ import annotations

import argparse
import importlib.util
import resource
import subprocess
import sys
import time

import numpy as np


def measure(path: str | None) -> str:
    if path:
        spec = importlib.util.spec_from_file_location("baseline_episode_replay", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        replay_class = module.EpisodeReplay
    else:
        from textrl.dqn.episode_replay import EpisodeReplay as replay_class
    start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    replay = replay_class(200_000, demo_capacity=10_000_000)
    for i in range(5000):
        replay.add(np.arange(200), np.arange(30), np.arange(30), np.zeros(30), True, i % 2 == 0)
    build = time.perf_counter() - t
    t = time.perf_counter()
    state = replay.state_dict()
    save = time.perf_counter() - t
    mb = sum(v.nbytes for v in state["arrays"].values()) / 1e6
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start) / 1024
    return f"| {path or 'textrl'} | +{grown:.0f} MB | {build:.2f} s | {save:.2f} s | {mb:.1f} MB |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", help="an older episode_replay.py to compare against")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # (the child process)
    args = parser.parse_args()
    if args.one is not None:
        print(measure(args.one or None))
        return
    print("| replay | peak memory | build + 5000 adds | state_dict | arrays |")
    print("|---|---|---|---|---|")
    for path in ([args.baseline] if args.baseline else []) + [""]:
        cmd = [sys.executable, __file__, "--one", path]
        print(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
