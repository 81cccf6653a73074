"""Does the pixel agent's CNN give the same weights in every run of one seed?

Each run is a fresh process that builds the Nature CNN Q-network (4 stacked 84×84 frames, 6
actions) from one seed, makes ``--updates`` Adam updates on fixed random batches of 32 and
prints a hash of the weights. Settings compared, each in ``--runs`` processes: oneDNN's
convolutions (torch's default on x86) or torch's own (``torch.backends.mkldnn.enabled =
False``, products through MKL in textrl's strict mode), and MKL's vector math started on one
thread as importing textrl does (``warm``, :func:`textrl.dqn.blas.warm_vector_math`) or not
(``cold``: Adam's first ``sqrt`` is split between the threads). ``--load`` keeps one core busy
with another process meanwhile, which is when the cold start went wrong. Prints, per setting,
how many runs gave each hash and the time per update. One hash in a row: that setting
reproduces.

    python scripts/probe_cnn_reproducible.py --runs 16 --onednn on --load
"""

from __future__ import annotations

import argparse
import collections
import itertools
import platform
import shlex
import subprocess
import sys


def child(args: argparse.Namespace) -> None:
    import hashlib
    import time

    import torch

    import textrl.dqn.blas

    if args.vector_math == "cold":  # as before textrl made the first calls on one thread
        textrl.dqn.blas.warm_vector_math = lambda: 0
    import textrl.dqn.core  # noqa: F401  (chooses MKL's strict mode before any product)
    from textrl.dqn.cnn import NatureCNNQNetwork

    torch.backends.mkldnn.enabled = args.onednn == "on"
    torch.set_num_threads(args.torch_threads)
    torch.manual_seed(args.seed)
    net = NatureCNNQNetwork((4, 84, 84), 6)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(args.seed + 1)
    batches = [
        (
            torch.randint(0, 256, (32, 4, 84, 84), generator=g, dtype=torch.uint8),
            torch.randn(32, 6, generator=g),
        )
        for _ in range(args.updates)
    ]
    t0 = time.perf_counter()
    for x, y in batches:
        loss = ((net(x) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - t0
    h = hashlib.sha1()
    for p in net.parameters():
        h.update(p.detach().numpy().tobytes())
    print(h.hexdigest()[:12], f"{seconds / args.updates * 1000:.1f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=12, help="fresh processes per setting")
    p.add_argument("--updates", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--torch-threads", type=int, default=2)
    p.add_argument("--onednn", nargs="+", choices=["on", "off"], default=["on", "off"])
    p.add_argument("--vector-math", nargs="+", choices=["cold", "warm"], default=["cold", "warm"])
    p.add_argument("--load", action="store_true", help="keep one core busy meanwhile")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        args.onednn, args.vector_math = args.onednn[0], args.vector_math[0]
        child(args)
        return
    print(f"`python {shlex.join(sys.argv)}` ({platform.machine()}, {args.torch_threads} threads)")
    print()
    print("| convolutions | vector math | runs per weight hash | ms per update (mean) |")
    print("|---|---|---|---|")
    busy = [sys.executable, "-c", "while True: pass"]
    load = subprocess.Popen(busy) if args.load else None
    try:
        for onednn, vm in itertools.product(args.onednn, args.vector_math):
            hashes: collections.Counter[str] = collections.Counter()
            ms = []
            for _ in range(args.runs):
                cmd = [sys.executable, __file__, "--child", f"--onednn={onednn}"]
                cmd += [f"--vector-math={vm}", f"--updates={args.updates}", f"--seed={args.seed}"]
                cmd += [f"--torch-threads={args.torch_threads}"]
                run = subprocess.run(cmd, capture_output=True, text=True, check=True)
                out = run.stdout.split()
                hashes[out[0]] += 1
                ms.append(float(out[1]))
            counts = ", ".join(f"{h}: {n}" for h, n in hashes.most_common())
            name = "oneDNN (torch's default)" if onednn == "on" else "torch's own (oneDNN off)"
            print(f"| {name} | {vm} | {counts} | {sum(ms) / len(ms):.1f} |", flush=True)
    finally:
        if load is not None:
            load.kill()


if __name__ == "__main__":
    main()
