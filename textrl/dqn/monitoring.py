"""Watching a training run: metrics in JSON lines and TensorBoard, curves, a progress bar.

- :class:`MetricsLogger` appends ``{"step", "time", scalars...}`` to the run folder's
  ``metrics.jsonl`` (flushed per line) and mirrors the scalars to TensorBoard (``tb/``).
- :func:`plot_curves` draws every logged scalar against its step into ``curves.png``.
- :class:`ProgressBar` is a tqdm bar over environment steps with the latest stats.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from textrl.dqn.checkpoints import RunDir, write_atomic

__all__ = ["MetricsLogger", "ProgressBar", "plot_curves", "read_metrics"]


class MetricsLogger:
    """Append scalars to ``metrics.jsonl`` (flushed per line) and mirror them to TensorBoard.

    Lines are appended to an existing file; :attr:`lines` counts the file's records, and a
    checkpoint stores that count. ``keep_lines`` (resuming from such a checkpoint): keep only
    the first ``keep_lines`` records, dropping what an interrupted run logged after its last
    checkpoint, so a resumed run's curves have no duplicates and lose nothing the checkpoint
    knew (warm-start lines included). A torn last line (a kill mid-write) is dropped and
    reported, never an error.
    """

    def __init__(
        self, run_dir: str | Path | RunDir, tensorboard: bool = True, keep_lines: int | None = None
    ) -> None:
        self.run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
        path = self.run.metrics_path
        self.lines = 0
        if path.is_file():
            records, torn = _parse_lines(path)
            if torn:
                print(
                    f"textrl: dropped {torn} unreadable line(s) of {path} (a torn write)",
                    file=sys.stderr,
                )
            if keep_lines is not None:
                records = records[:keep_lines]
            write_atomic(path, "".join(json.dumps(r) + "\n" for r in records))
            self.lines = len(records)
        self.run.path.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "a", encoding="utf-8")
        self._writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.run.path / "tb"))

    def log(self, step: int, scalars: Mapping[str, Any]) -> None:
        """Write ``{"step": step, "time": unix time, **scalars}``; floats go to TensorBoard."""
        record = {"step": int(step), "time": round(time.time(), 3)}
        for key, value in scalars.items():
            if hasattr(value, "item"):
                value = value.item()
            if isinstance(value, float) and not math.isfinite(value):
                value = str(value)  # JSON has no NaN/inf
            record[key] = value
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        self.lines += 1
        if self._writer is not None:
            for key, value in record.items():
                if (
                    key not in ("step", "time")
                    and isinstance(value, (int, float))
                    and not isinstance(value, bool)
                ):
                    self._writer.add_scalar(key, value, int(step))

    def close(self) -> None:
        self._file.close()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of ``metrics.jsonl`` (unreadable lines skipped)."""
    path = Path(run_dir) / "metrics.jsonl"
    return _parse_lines(path)[0] if path.is_file() else []


def _parse_lines(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The JSON-object lines of ``path`` and how many lines were not (torn or corrupt)."""
    records, bad = [], 0
    for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            bad += 1
    return records, bad


def plot_curves(run_dir: str | Path) -> Path:
    """Plot every numeric scalar of ``metrics.jsonl`` against step into ``curves.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, tuple[list[int], list[float]]] = {}
    for record in read_metrics(run_dir):
        for key, value in record.items():
            if (
                key in ("step", "time")
                or isinstance(value, bool)
                or not isinstance(value, (int, float))
            ):
                continue
            xs, ys = series.setdefault(key, ([], []))
            xs.append(record["step"])
            ys.append(value)
    names = sorted(series)
    cols = min(3, max(1, len(names)))
    rows = max(1, math.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        xs, ys = series[name]
        ax.plot(xs, ys, marker="." if len(xs) < 30 else None, linewidth=1)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.tight_layout()
    out = Path(run_dir) / "curves.png"
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


class ProgressBar:
    """tqdm bar over environment steps: steps/s (tqdm's rate), epsilon, loss, recent return."""

    def __init__(
        self, total: int, initial: int = 0, enabled: bool = True, desc: str = "train"
    ) -> None:
        self._bar = None
        if enabled:
            from tqdm.auto import tqdm

            # Written to a file (a log, CI) rather than a terminal, a bar redrawn 10 times a
            # second floods it: redraw once a minute there.
            interactive = getattr(sys.stderr, "isatty", lambda: False)()
            self._bar = tqdm(
                total=total,
                initial=initial,
                desc=desc,
                unit="step",
                dynamic_ncols=True,
                smoothing=0.05,
                mininterval=0.1 if interactive else 60.0,
            )
        self._postfix: dict[str, str] = {}

    def update(self, n: int = 1, **stats: float | None) -> None:
        """Advance ``n`` steps and set the shown stats (``None`` values are skipped)."""
        if self._bar is None:
            return
        for key, value in stats.items():
            if value is not None:
                self._postfix[key] = f"{value:.3g}"
        if stats:
            self._bar.set_postfix(self._postfix, refresh=False)
        self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
