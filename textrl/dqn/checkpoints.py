"""A training run's folder: its config, atomic checkpoints, weight files and the resume rules.

Layout of ``RunDir(path)``::

    config.json            the run's settings (save_config)
    environment.jsonl      one line per start or resume: Python, platform, package versions,
                           matrix-product mode
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
ignores. Nothing is ever unpickled. Metrics and curves are written by
:mod:`textrl.dqn.monitoring`.

:func:`open_run` holds the rules every training loop follows: a new run refuses a folder that
already holds checkpoints; ``resume=True`` continues the newest checkpoint, or starts a new run
(saying so) when there is none. :func:`network_state` / :func:`load_network_state` are the one
place that names the ``online.`` and ``target.`` tensors of a checkpoint.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "Checkpoint",
    "RunDir",
    "capture_rng_state",
    "load_checkpoint",
    "load_network_state",
    "load_weights",
    "network_state",
    "open_run",
    "restore_rng_state",
    "save_weights",
    "write_atomic",
]

NETWORKS = ("online", "target", "average")

_STEP_DIGITS = 8


def _fsync_folder(folder: Path, files: bool = False) -> None:
    """fsync ``folder``'s entries (and, with ``files``, every file in it) where supported."""
    if files:
        for child in folder.iterdir():
            if child.is_file():
                with open(child, "rb") as f:
                    os.fsync(f.fileno())
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a fsynced temporary file and ``os.replace``."""
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
    """One run's folder; see the module docstring for the layout.

    Reading never creates anything; the folder is made by the first write (a run that fails
    before writing leaves no empty folder behind).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.checkpoint_dir = self.path / "checkpoints"

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    def save_config(self, config: Mapping[str, Any]) -> Path:
        """Write ``config.json`` and add a line to ``environment.jsonl``, both atomically (a
        crash leaves the old file or the new one, never half a line)."""
        self.path.mkdir(parents=True, exist_ok=True)
        write_atomic(self.config_path, json.dumps(dict(config), indent=2, sort_keys=True))
        record = self.path / "environment.jsonl"
        earlier = record.read_text(encoding="utf-8") if record.is_file() else ""
        if earlier and not earlier.endswith("\n"):  # a line cut by an older, appending version
            earlier += "\n"
        write_atomic(record, earlier + json.dumps(environment()) + "\n")
        return self.config_path

    def load_config(self) -> dict[str, Any]:
        """The run's ``config.json`` (errors say when the folder is not a run folder)."""
        if not self.config_path.is_file():
            raise FileNotFoundError(
                f"run: no config.json in {str(self.path)!r} (is it a run folder written by "
                "'textrl train'?)"
            )
        saved = json.loads(self.config_path.read_text(encoding="utf-8"))
        if not isinstance(saved, dict):
            raise ValueError(f"run: config.json in {str(self.path)!r} is not a JSON object")
        return saved

    def save_checkpoint(
        self,
        step: int,
        model_state: Mapping[str, Any],
        extra_tensors: Mapping[str, Any] | None = None,
        replay_state: Mapping[str, Any] | None = None,
        rng_state: Mapping[str, Any] | None = None,
        meta: Mapping[str, Any] | None = None,
        keep: int = 2,
    ) -> Path:
        """Write checkpoint ``step`` atomically, point ``latest`` at it, keep the last ``keep``.

        ``model_state``: flat name -> tensor (safetensors; shared/tied tensors are cloned).
        ``extra_tensors``: nested dicts/lists of tensors and numbers such as an optimizer's
        ``state_dict()`` (``torch.save``, read with ``weights_only=True``). ``replay_state``:
        ``{"arrays": {name: ndarray}, "meta": {...}}``. ``rng_state``: from
        :func:`capture_rng_state`. ``meta``: JSON-able counters.
        """
        import torch
        from safetensors.torch import save_file

        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        name = f"step-{int(step):0{_STEP_DIGITS}d}"
        final, tmp = self.checkpoint_dir / name, self.checkpoint_dir / (name + ".tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        save_file(
            {k: v.detach().cpu().contiguous().clone() for k, v in model_state.items()},
            str(tmp / "model.safetensors"),
        )
        torch.save(dict(extra_tensors or {}), tmp / "extra.pt")
        if replay_state is not None:
            arrays = replay_state["arrays"]
            bad = [k for k, v in arrays.items() if np.asarray(v).dtype == object]
            if bad:
                raise TypeError(
                    f"save_checkpoint: replay arrays {bad} have dtype object (would need pickle)"
                )
            np.savez(tmp / "replay.npz", **arrays)
            (tmp / "replay.json").write_text(json.dumps(replay_state["meta"]), encoding="utf-8")
        if rng_state is not None:
            (tmp / "rng.json").write_text(json.dumps(rng_state), encoding="utf-8")
        meta_out = {"step": int(step), "time": time.time(), **dict(meta or {})}
        (tmp / "meta.json").write_text(json.dumps(meta_out, indent=2), encoding="utf-8")
        _fsync_folder(tmp, files=True)  # every byte on disk before the rename makes it visible
        aside = None
        if final.exists():  # re-saving a step (e.g. after a resume): replace it, keeping the
            aside = final.with_name(final.name + ".old")  # old one until the new one is in
            shutil.rmtree(aside, ignore_errors=True)
            os.replace(final, aside)
        os.replace(tmp, final)
        _fsync_folder(self.checkpoint_dir)
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
        write_atomic(self.checkpoint_dir / "latest", name + "\n")
        for old in self.checkpoints()[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def checkpoints(self) -> list[Path]:
        """Complete checkpoint folders, oldest first (``.tmp``/``.old`` folders are not)."""
        if not self.checkpoint_dir.is_dir():
            return []
        found = [
            p
            for p in self.checkpoint_dir.glob("step-*")  # not .tmp/.old folders
            if p.is_dir() and p.name.split("-", 1)[1].isdigit() and (p / "meta.json").is_file()
        ]
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

    def _set_aside(self, damaged: list[Path]) -> None:
        """Rename unreadable checkpoints to ``*.bad`` (kept for inspection, never loaded or
        counted again), so that pruning and ``latest`` only ever see readable ones."""
        for path in damaged:
            bad = path.with_name(path.name + ".bad")
            shutil.rmtree(bad, ignore_errors=True)
            os.replace(path, bad)

    def load_latest(self) -> Checkpoint | None:
        """Load the newest readable checkpoint, or ``None`` when there is none.

        A checkpoint that cannot be read (truncated by a full disk, corrupted, not ours) is
        reported on stderr and the one before it is tried; when none can be read, a
        ``ValueError`` lists why, rather than silently starting over.
        """
        newest = self.latest_path()
        candidates = ([newest] if newest is not None else []) + [
            p for p in reversed(self.checkpoints()) if p != newest
        ]
        problems = []
        for path in candidates:
            try:
                checkpoint = load_checkpoint(path)
            except Exception as exc:  # noqa: BLE001 - any unreadable file: try the previous one
                if isinstance(exc, pickle.UnpicklingError):  # never suggest weights_only=False
                    reason = "holds a pickle that is not plain tensors (refused: it could run code)"
                else:
                    reason = f"{type(exc).__name__}: {exc}"
                problems.append(f"{path.name}: {reason}"[:300])
                print(
                    f"textrl: checkpoint {str(path)!r} cannot be read ({problems[-1]}); "
                    "trying the one before it",
                    file=sys.stderr,
                )
                continue
            if problems:
                print(f"textrl: resuming from {str(path)!r}", file=sys.stderr)
                self._set_aside(candidates[: candidates.index(path)])
            return checkpoint
        if problems:
            raise ValueError(
                f"checkpoint: no readable checkpoint in {str(self.checkpoint_dir)!r}: "
                + "; ".join(problems)
            )
        return None


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
        replay_state = {
            "arrays": arrays,
            "meta": json.loads((path / "replay.json").read_text(encoding="utf-8")),
        }
    rng_state = None
    if (path / "rng.json").is_file():
        rng_state = json.loads((path / "rng.json").read_text(encoding="utf-8"))
    return Checkpoint(int(meta["step"]), path, model_state, extra, replay_state, rng_state, meta)


# --------------------------------------------------------------------------------------------
# RNG states as JSON


def capture_rng_state(
    np_rng: np.random.Generator | None = None, torch_generator: Any = None
) -> dict[str, Any]:
    """Python, numpy (global and ``np_rng``) and torch (global and generator) RNG states."""
    import torch

    version, internal, gauss = random.getstate()
    legacy = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy_global": [
            legacy[0],
            legacy[1].tolist(),
            *(v.item() if hasattr(v, "item") else v for v in legacy[2:]),
        ],
        "torch": torch.get_rng_state().tolist(),
    }
    if np_rng is not None:
        state["numpy"] = np_rng.bit_generator.state
    if torch_generator is not None:
        state["torch_generator"] = torch_generator.get_state().tolist()
    return state


def restore_rng_state(
    state: Mapping[str, Any], np_rng: np.random.Generator | None = None, torch_generator: Any = None
) -> None:
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
# Networks in checkpoints and weight files


def network_state(online: Any, target: Any) -> dict[str, Any]:
    """The flat tensor dict a checkpoint stores for an online and a target network."""
    state = {f"online.{k}": v for k, v in online.state_dict().items()}
    state.update({f"target.{k}": v for k, v in target.state_dict().items()})
    return state


def unpack_network_state(model_state: Mapping[str, Any], which: str = "online") -> dict[str, Any]:
    """The ``state_dict`` of one network (``"online"`` or ``"target"``) of a checkpoint."""
    if which not in NETWORKS:
        raise ValueError(f"which: expected one of {NETWORKS}, got {which!r}")
    prefix = which + "."
    return {k[len(prefix) :]: v for k, v in model_state.items() if k.startswith(prefix)}


def load_network_state(model_state: Mapping[str, Any], online: Any, target: Any) -> None:
    """Load a checkpoint's online and target networks (inverse of :func:`network_state`)."""
    online.load_state_dict(unpack_network_state(model_state, "online"))
    target.load_state_dict(unpack_network_state(model_state, "target"))


def save_weights(module: Any, path: str | Path) -> Path:
    """Write ``module``'s weights to a ``.safetensors`` file atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    tmp = path.with_suffix(".tmp")
    save_file(
        {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}, str(tmp)
    )
    os.replace(tmp, path)
    return path


def load_weights(module: Any, path: str | Path, field: str = "weights") -> None:
    """Load ``.safetensors`` weights into ``module``; errors name ``field`` and what to match."""
    from safetensors.torch import load_file

    path = Path(path)
    if path.suffix != ".safetensors" or not path.is_file():
        raise FileNotFoundError(
            f"{field}: expected an existing .safetensors file, got {str(path)!r}"
        )
    try:
        module.load_state_dict(load_file(str(path)))
    except RuntimeError as exc:  # shapes or names differ: say which settings to match
        raise ValueError(
            f"{field}: {str(path)!r} does not fit this network (same "
            f"--d-model/--n-layers/--tokenizer/... needed): {exc}"
        ) from None


# --------------------------------------------------------------------------------------------
# Starting or resuming a run


PACKAGES = (
    "textrl-gym",
    "torch",
    "numpy",
    "tokenizers",
    "transformers",
    "datasets",
    "gymnasium",
    "sacrebleu",
    "rouge-score",
    "nltk",
    "safetensors",
)
"""Packages whose versions a run records, so that two runs of one seed that differ can be told
apart by their installs (or shown to share one)."""


def environment() -> dict[str, Any]:
    """When and with what a run started: Python, the platform, :data:`PACKAGES`' versions
    (``None`` for one that is not installed) and the matrix-product mode
    (:func:`textrl.dqn.blas.blas_mode`)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from textrl.dqn.blas import blas_mode

    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: installed(name) for name in PACKAGES},
        "blas": blas_mode(),
    }


def open_run(path: str | Path, resume: bool) -> tuple[RunDir, Checkpoint | None]:
    """The run folder and, when resuming, its newest checkpoint: the rules of every loop.

    - ``resume=False``: a folder that already holds checkpoints is refused (choose another or
      pass ``resume``); a ``metrics.jsonl`` left by an attempt that saved no checkpoint is
      removed, so the new run's curves start clean.
    - ``resume=True``: the newest complete checkpoint; with none, a new run starts (with a
      note on stderr), so one command both starts and continues a preemptible job.
    """
    import sys

    run = RunDir(path)
    checkpoint = None
    if resume:
        checkpoint = run.load_latest()
        if checkpoint is None:
            print(
                f"textrl train: no checkpoint in {str(run.path)!r}; starting a new run",
                file=sys.stderr,
            )
    elif run.latest_path() is not None:
        raise ValueError(
            f"train: {str(run.path)!r} already holds checkpoints; pass resume=True "
            "(--resume) to continue it or choose a new run folder"
        )
    if checkpoint is None:
        run.metrics_path.unlink(missing_ok=True)
    return run, checkpoint
