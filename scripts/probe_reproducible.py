"""Does one seed give the same weights however the heap happens to lie?

Runs ``--updates`` warm-start updates of the text agent from ``--seed``, each time in a fresh
process that first allocates a little junk memory (``--junk`` sizes in bytes, so every tensor
after it lands at another address), and prints a hash of the weights for each, under textrl's
matrix-product mode (MKL's strict reproducibility, chosen when :mod:`textrl.dqn.core` is
imported) and under MKL's default mode (the process stops textrl from choosing, as every
process was before it did), with the time per update. Equal hashes in a column: that mode
reproduces. The processes run one after another, so the times compare. Prints a markdown table
and the command.

    python scripts/probe_reproducible.py --data ../shared/data/scitldr-a --updates 20
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import time


def child(args: argparse.Namespace) -> None:
    import hashlib
    import tempfile

    import numpy as np

    junk = [np.empty(args.junk_bytes + 16 * i, np.uint8) for i in range(50)]
    import torch

    import textrl.dqn.blas

    if args.mkl_default:  # as before textrl chose the mode: its import leaves MKL as it is
        textrl.dqn.blas.reproducible_blas = textrl.dqn.blas.blas_mode
    from textrl.dqn.blas import blas_mode
    from textrl.text.config import TextConfig
    from textrl.text.train import TextTrainer

    junk += [torch.empty(args.junk_bytes + 4 * i) for i in range(50)]  # (float32: 4 bytes each)
    cfg = TextConfig(
        data=args.data, seed=args.seed, torch_threads=args.torch_threads, mle_eval_every=0
    )
    with tempfile.TemporaryDirectory() as tmp:
        trainer = TextTrainer(cfg, os.path.join(tmp, "run"))
        t0 = time.perf_counter()
        for _ in range(args.updates):
            trainer.learner.mle_update(trainer.demos)
        seconds = time.perf_counter() - t0
        h = hashlib.sha1()
        for p in trainer.learner.online.parameters():
            h.update(p.detach().cpu().numpy().tobytes())
    print(f"{h.hexdigest()[:12]} ({seconds / args.updates:.3f} s/update, {blas_mode()})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="builtin")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--updates", type=int, default=20)
    p.add_argument("--torch-threads", type=int, default=2)
    p.add_argument("--junk", type=int, nargs="+", default=[1, 7, 13, 29, 61, 100003])
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--junk-bytes", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--mkl-default", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    modes = {"textrl (MKL strict)": [], "MKL's default": ["--mkl-default"]}
    rows = []
    for junk in args.junk:
        row = [str(junk)]
        for flags in modes.values():
            cmd = [sys.executable, __file__, "--child", "--junk-bytes", str(junk), *flags]
            cmd += ["--data", args.data, "--seed", str(args.seed), "--updates", str(args.updates)]
            cmd += ["--torch-threads", str(args.torch_threads)]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            row.append(out.stdout.strip().splitlines()[-1])
        rows.append(row)
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}, {platform.processor() or platform.machine()}")
    print("$ " + shlex.join(["python", *sys.argv]))
    print()
    print("| junk bytes | " + " | ".join(modes) + " |")
    print("|---|" + "---|" * len(modes))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    hashes = [{row[i + 1].split()[0] for row in rows} for i in range(len(modes))]
    same = ["yes" if len(h) == 1 else f"no ({len(h)} different)" for h in hashes]
    print("| same weights | " + " | ".join(same) + " |")


if __name__ == "__main__":
    main()
