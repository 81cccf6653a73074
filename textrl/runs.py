"""A training run's folder: config, atomic checkpoints, metrics, curves, progress bar.

Layout of ``RunDir(path)``::

    config.json            the run's settings (save_config)
    metrics.jsonl          one JSON object per log call: {"step": ..., "time": ..., scalars}
    tb/                    the same scalars for TensorBoard
    curves.png             every logged scalar against step (plot_curves)
    checkpoints/latest     name of the newest complete checkpoint
    checkpoints/step-00012345/
        model.safetensors  tensors of the model(s) (flat dict, e.g. "online.*", "target.*")
        extra.pt           optimizer state etc., read back with torch.load(weights_only=True)
        replay.npz         replay arrays (np.load(allow_pickle=False))
        replay.json        replay metadata
        rng.json           Python/numpy/torch RNG states
        meta.json          step and counters; written last

A checkpoint is written into ``step-XXXXXXXX.tmp/`` and renamed with ``os.replace``; ``latest``
is replaced the same way. A crash leaves at most a ``.tmp`` folder, which :meth:`load_latest`
ignores. Nothing is ever unpickled.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = ["Checkpoint", "MetricsLogger", "ProgressBar", "RunDir", "capture_rng_state",
           "load_checkpoint", "plot_curves", "read_metrics", "restore_rng_state"]

_STEP_DIGITS = 8


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Checkpoint(NamedTuple):
    """What :meth:`RunDir.load_latest` returns."""

    step: int
    path: Path
    model_state: dict[str, Any]  # name -> torch.Tensor
    extra: dict[str, Any]  # e.g. {"optimizer": optimizer.state_dict()}
    replay_state: dict[str, Any] | None  # {"arrays": {...}, "meta": {...}}
    rng_state: dict[str, Any] | None
    meta: dict[str, Any]


class RunDir:
    """One run's folder (created if missing); see the module docstring for the layout."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.checkpoint_dir = self.path / "checkpoints"

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    def save_config(self, config: Mapping[str, Any]) -> Path:
        """Write ``config.json`` (atomically)."""
        _write_atomic(self.config_path, json.dumps(dict(config), indent=2, sort_keys=True))
        return self.config_path

    def load_config(self) -> dict[str, Any]:
        if not self.config_path.is_file():
            raise FileNotFoundError(f"run: no config.json in {str(self.path)!r}")
        return json.loads(self.config_path.read_text(encoding="utf-8"))

    def save_checkpoint(self, step: int, model_state: Mapping[str, Any],
                        extra_tensors: Mapping[str, Any] | None = None,
                        replay_state: Mapping[str, Any] | None = None,
                        rng_state: Mapping[str, Any] | None = None,
                        meta: Mapping[str, Any] | None = None, keep: int = 2) -> Path:
        """Write checkpoint ``step`` atomically, point ``latest`` at it, keep the last ``keep``.

        ``model_state``: flat name -> tensor (safetensors; shared/tied tensors are cloned).
        ``extra_tensors``: nested dicts/lists of tensors and numbers such as an optimizer's
        ``state_dict()`` (``torch.save``, read with ``weights_only=True``). ``replay_state``:
        ``{"arrays": {name: ndarray}, "meta": {...}}``. ``rng_state``: from
        :func:`capture_rng_state`. ``meta``: JSON-able counters.
        """
        import torch
        from safetensors.torch import save_file

        self.checkpoint_dir.mkdir(exist_ok=True)
        name = f"step-{int(step):0{_STEP_DIGITS}d}"
        final, tmp = self.checkpoint_dir / name, self.checkpoint_dir / (name + ".tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        save_file({k: v.detach().cpu().contiguous().clone() for k, v in model_state.items()},
                  str(tmp / "model.safetensors"))
        torch.save(dict(extra_tensors or {}), tmp / "extra.pt")
        if replay_state is not None:
            arrays = replay_state["arrays"]
            bad = [k for k, v in arrays.items() if np.asarray(v).dtype == object]
            if bad:
                raise TypeError(f"save_checkpoint: replay arrays {bad} have dtype object "
                                "(would need pickle)")
            np.savez(tmp / "replay.npz", **arrays)
            (tmp / "replay.json").write_text(json.dumps(replay_state["meta"]), encoding="utf-8")
        if rng_state is not None:
            (tmp / "rng.json").write_text(json.dumps(rng_state), encoding="utf-8")
        meta_out = {"step": int(step), "time": time.time(), **dict(meta or {})}
        (tmp / "meta.json").write_text(json.dumps(meta_out, indent=2), encoding="utf-8")
        aside = None
        if final.exists():  # re-saving a step (e.g. after a resume): replace it, keeping the
            aside = final.with_name(final.name + ".old")  # old one until the new one is in
            shutil.rmtree(aside, ignore_errors=True)
            os.replace(final, aside)
        os.replace(tmp, final)
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
        _write_atomic(self.checkpoint_dir / "latest", name + "\n")
        for old in self.checkpoints()[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def checkpoints(self) -> list[Path]:
        """Complete checkpoint folders, oldest first (``.tmp``/``.old`` folders are not)."""
        if not self.checkpoint_dir.is_dir():
            return []
        found = [p for p in self.checkpoint_dir.glob("step-*")  # not .tmp/.old folders
                 if p.is_dir() and p.name.split("-", 1)[1].isdigit()
                 and (p / "meta.json").is_file()]
        return sorted(found, key=lambda p: int(p.name.split("-", 1)[1]))

    def latest_path(self) -> Path | None:
        """The checkpoint named by ``latest`` if complete, else the newest complete one."""
        pointer = self.checkpoint_dir / "latest"
        if pointer.is_file():
            candidate = self.checkpoint_dir / pointer.read_text(encoding="utf-8").strip()
            if (candidate / "meta.json").is_file() and not candidate.name.endswith(".tmp"):
                return candidate
        found = self.checkpoints()
        return found[-1] if found else None

    def load_latest(self) -> Checkpoint | None:
        """Load the newest complete checkpoint, or ``None`` when there is none."""
        path = self.latest_path()
        return None if path is None else load_checkpoint(path)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read one checkpoint folder without unpickling anything."""
    import torch
    from safetensors.torch import load_file

    path = Path(path)
    meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    model_state = load_file(str(path / "model.safetensors"))
    extra = torch.load(path / "extra.pt", map_location="cpu", weights_only=True)
    replay_state = None
    if (path / "replay.npz").is_file():
        with np.load(path / "replay.npz", allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        replay_state = {"arrays": arrays,
                        "meta": json.loads((path / "replay.json").read_text(encoding="utf-8"))}
    rng_state = None
    if (path / "rng.json").is_file():
        rng_state = json.loads((path / "rng.json").read_text(encoding="utf-8"))
    return Checkpoint(int(meta["step"]), path, model_state, extra, replay_state, rng_state, meta)


# --------------------------------------------------------------------------------------------
# RNG states as JSON


def capture_rng_state(np_rng: np.random.Generator | None = None,
                      torch_generator: Any = None) -> dict[str, Any]:
    """Python, numpy (global and ``np_rng``) and torch (global and generator) RNG states."""
    import torch

    version, internal, gauss = random.getstate()
    legacy = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy_global": [legacy[0], legacy[1].tolist(), *(v.item() if hasattr(v, "item") else v
                                                           for v in legacy[2:])],
        "torch": torch.get_rng_state().tolist(),
    }
    if np_rng is not None:
        state["numpy"] = np_rng.bit_generator.state
    if torch_generator is not None:
        state["torch_generator"] = torch_generator.get_state().tolist()
    return state


def restore_rng_state(state: Mapping[str, Any], np_rng: np.random.Generator | None = None,
                      torch_generator: Any = None) -> None:
    """Inverse of :func:`capture_rng_state` (``np_rng``/``torch_generator`` set in place)."""
    import torch

    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy_global"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if np_rng is not None:
        np_rng.bit_generator.state = state["numpy"]
    if torch_generator is not None:
        torch_generator.set_state(torch.tensor(state["torch_generator"], dtype=torch.uint8))


# --------------------------------------------------------------------------------------------
# Metrics


class MetricsLogger:
    """Append scalars to ``metrics.jsonl`` (flushed per line) and mirror them to TensorBoard.

    Lines are appended to an existing file. ``resume_step``: first drop the lines logged after
    that step by an interrupted run, so a resumed run's curves have no duplicate steps.
    """

    def __init__(self, run_dir: str | Path | RunDir, tensorboard: bool = True,
                 resume_step: int | None = None) -> None:
        self.run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
        path = self.run.metrics_path
        if resume_step is not None and path.is_file():
            kept = [line for line in path.read_text(encoding="utf-8").splitlines()
                    if line.strip() and json.loads(line).get("step", 0) <= resume_step]
            _write_atomic(path, "".join(line + "\n" for line in kept))
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
        if self._writer is not None:
            for key, value in record.items():
                if key not in ("step", "time") and isinstance(value, (int, float)) \
                        and not isinstance(value, bool):
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
    """The records of ``metrics.jsonl``."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def plot_curves(run_dir: str | Path) -> Path:
    """Plot every numeric scalar of ``metrics.jsonl`` against step into ``curves.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, tuple[list[int], list[float]]] = {}
    for record in read_metrics(run_dir):
        for key, value in record.items():
            if key in ("step", "time") or isinstance(value, bool) \
                    or not isinstance(value, (int, float)):
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
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    out = Path(run_dir) / "curves.png"
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


class ProgressBar:
    """tqdm bar over environment steps: steps/s (tqdm's rate), epsilon, loss, recent return."""

    def __init__(self, total: int, initial: int = 0, enabled: bool = True,
                 desc: str = "train") -> None:
        self._bar = None
        if enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=desc, unit="step",
                             dynamic_ncols=True, smoothing=0.05)
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
