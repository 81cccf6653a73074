"""The DQN core both training loops share: networks, optimizers, replay, RNGs and counters.

:class:`DQNCore` owns everything a checkpoint restores and does the steps every DQN learner does
the same way: one guarded optimizer step (:meth:`DQNCore.apply_gradients`: NaN/inf guard,
gradient-norm clipping), the target update after it (:meth:`DQNCore.update_target`: a hard copy
or Polyak averaging every ``target_update_interval`` gradient steps), and checkpoint save and
restore (:meth:`DQNCore.save`, :meth:`DQNCore.restore`). The Gymnasium learner
(:mod:`textrl.dqn.train_gym`) and the text learner (:mod:`textrl.text.learner`) add only their
own update. :class:`TrainState` is the typed set of counters and schedules a checkpoint stores;
:func:`training_session` is the one way a loop ends: metrics closed, curves drawn, a divergence
reported with the last good checkpoint.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import ctypes.util
import dataclasses
import functools
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from textrl.dqn.blas import reproducible_blas, warm_vector_math
from textrl.dqn.checkpoints import (
    Checkpoint,
    RunDir,
    capture_rng_state,
    load_network_state,
    network_state,
    restore_rng_state,
)
from textrl.dqn.config import DQNConfig
from textrl.dqn.losses import check_finite
from textrl.dqn.monitoring import MetricsLogger, plot_curves

__all__ = [
    "DQNCore",
    "StopRequest",
    "TrainState",
    "polyak_update",
    "resolve_device",
    "stop_on_ctrl_c",
    "torch_threads",
    "training_session",
    "trim_heap",
]

BLAS_MODE = reproducible_blas()
"""Chosen at import, before torch's first matrix product: MKL's results do not depend on memory
alignment (:mod:`textrl.dqn.blas`; a run records the mode in ``environment.jsonl``)."""
warm_vector_math()  # MKL's vector math starts on one thread (textrl.dqn.blas says why)

Phase = Literal["mle", "dqn"]


@dataclass
class TrainState:
    """Counters and schedules of a run, saved in every checkpoint (``meta.json``)."""

    phase: Phase = "dqn"
    """``"mle"`` while the text agent's warm start runs, then ``"dqn"``."""
    env_steps: int = 0
    """Environment steps acted (tokens, for text)."""
    grad_steps: int = 0
    """DQN gradient steps."""
    episodes: int = 0
    """Episodes finished by acting."""
    mle_updates: int = 0
    """Warm-start (cross-entropy) gradient steps of the text agent."""
    mle_seconds: float = 0.0
    """Seconds spent in the warm start, over all invocations."""
    dqn_seconds: float = 0.0
    """Seconds spent in the text agent's DQN phase, over all invocations (its LR schedule)."""
    mle_best: float = -math.inf
    """Best validation score of the warm start so far."""
    mle_stale: int = 0
    """Warm-start evaluations in a row without a new best (early stopping's patience)."""
    best_eval: float = -math.inf
    """Best validation score so far (``best.safetensors``)."""
    next_eval: int = 0
    """Environment step at which the next evaluation is due (see :meth:`due`)."""
    next_checkpoint: int = 0
    next_log: int = 0
    checkpoint_pending: bool = False
    """A periodic checkpoint is due at the next episode end (Gymnasium loop)."""
    envs_seeded: bool = False
    """The text environments have had their first, seeded reset."""

    @classmethod
    def start(cls, cfg: DQNConfig, phase: Phase = "dqn") -> TrainState:
        """The state of a new run: counters at 0, the first evaluation/checkpoint/log due."""
        return cls(
            phase=phase,
            next_eval=cfg.eval_every,
            next_checkpoint=cfg.checkpoint_every,
            next_log=cfg.log_every,
        )

    @property
    def checkpoint_step(self) -> int:
        """The number a checkpoint is named by: environment steps plus warm-start updates."""
        return self.env_steps + self.mle_updates

    def due(self, name: Literal["eval", "checkpoint", "log"], every: int) -> bool:
        """True once each time ``env_steps`` reaches ``next_<name>``, which then moves to the
        next multiple of ``every`` after ``env_steps``; never when ``every`` is 0."""
        attr = f"next_{name}"
        if every <= 0 or self.env_steps < getattr(self, attr):
            return False
        setattr(self, attr, (self.env_steps // every + 1) * every)
        return True

    def to_json(self) -> dict[str, Any]:
        """JSON-able values (``-inf`` as ``None``)."""
        return {k: (None if v == -math.inf else v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_json(cls, values: Mapping[str, Any]) -> TrainState:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"checkpoint: unknown training state keys {unknown} (written by "
                "another textrl version?)"
            )
        out = cls(**values)
        for name in ("mle_best", "best_eval"):
            if getattr(out, name) is None:
                setattr(out, name, -math.inf)
        return out


@torch.no_grad()
def polyak_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """``theta_target <- tau * theta_online + (1 - tau) * theta_target``; ``tau=1`` copies.

    (Lillicrap et al. 2016; SB3's ``polyak_update``.) Buffers (e.g. normalisation statistics)
    are copied, not averaged.
    """
    if not 0.0 < tau <= 1.0:
        raise ValueError(f"polyak_update: tau must be in (0, 1], got {tau}")
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        if tau == 1.0:
            t.copy_(o)
        else:
            t.lerp_(o, tau)
    for t, o in zip(target.buffers(), online.buffers(), strict=True):
        t.copy_(o)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with ``n`` torch threads, then restore the previous setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@functools.cache
def _malloc_trim() -> Any:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl, Windows)
        return None


def trim_heap() -> bool:
    """Give the heap memory freed so far back to the OS (glibc's ``malloc_trim(0)``); returns
    False where the C library has no such call.

    The text learner's batches are ``(B, T, A)`` tensors with a different ``T`` at every
    update. glibc serves such blocks from its heap once its dynamic mmap threshold has grown,
    and keeps the holes they leave: on SciTLDR the learner's resident memory grew by ~10 MB per
    update (1.2 to 3.7 GB in 120 updates; one 60-minute run reached 8.7 GB and was killed for
    memory beside two others). Trimming every few updates keeps it flat (BENCHMARKS.md).
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


class DQNCore:
    """Online and target networks, optimizers, replay, RNGs and counters of one run.

    Build the online network after ``torch.manual_seed(cfg.seed)``; the target starts as its
    copy. ``optimizers`` maps names (as saved in checkpoints) to optimizers over the online
    network's parameters; the default is one Adam at ``cfg.lr`` named ``"optimizer"``.
    """

    def __init__(
        self,
        cfg: DQNConfig,
        online: nn.Module,
        replay: Any,
        optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
        phase: Phase = "dqn",
    ) -> None:
        self.cfg = cfg
        self.online = online
        self.target = copy.deepcopy(online).requires_grad_(False).eval()  # no dropout in targets
        self.optimizers = dict(
            optimizers or {"optimizer": torch.optim.Adam(online.parameters(), lr=cfg.lr)}
        )
        self.replay = replay
        self.rng = np.random.default_rng(cfg.seed)  # replay sampling, env seeds
        self.gen = torch.Generator().manual_seed(cfg.seed)  # exploration
        self.state = TrainState.start(cfg, phase)

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The main optimizer (over all online parameters)."""
        return self.optimizers["optimizer"]

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    # -- one gradient step ------------------------------------------------------------------

    def apply_gradients(
        self,
        loss: torch.Tensor,
        what: str = "loss",
        optimizer: str = "optimizer",
        params: Iterable[nn.Parameter] | None = None,
    ) -> None:
        """Backpropagate ``loss`` and step ``optimizer`` over ``params`` (default: all).

        Raises ``FloatingPointError`` for a NaN/inf loss or gradient norm (nothing is changed
        then). Gradients are clipped to ``cfg.max_grad_norm``.
        """
        step = self.state.grad_steps if self.state.phase == "dqn" else self.state.mle_updates
        check_finite(loss, step, what)
        params = list(self.online.parameters() if params is None else params)
        self.online.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.max_grad_norm is not None:
            norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.max_grad_norm)
            check_finite(norm, step, "gradient norm")
        self.optimizers[optimizer].step()

    def update_target(self) -> None:
        """After each DQN gradient step: count it; every ``target_update_interval`` steps copy
        the online network into the target (``hard``) or average it in with ``tau``."""
        self.state.grad_steps += 1
        if self.state.grad_steps % self.cfg.target_update_interval == 0:
            tau = self.cfg.tau if self.cfg.target_update == "polyak" else 1.0
            polyak_update(self.target, self.online, tau)

    def sync_target(self) -> None:
        """Make the target an exact copy of the online network (e.g. after a warm start)."""
        self.target.load_state_dict(self.online.state_dict())

    # -- checkpoints ------------------------------------------------------------------------

    def save(
        self,
        run: RunDir,
        meta: Mapping[str, Any] | None = None,
        rng_extra: Mapping[str, Any] | None = None,
    ) -> Path:
        """Checkpoint networks, optimizers, replay, RNGs (plus ``rng_extra``) and the state."""
        return run.save_checkpoint(
            self.state.checkpoint_step,
            self.network_state(),
            extra_tensors={name: opt.state_dict() for name, opt in self.optimizers.items()},
            replay_state=self.replay.state_dict(),
            rng_state={**capture_rng_state(self.rng, self.gen), **(rng_extra or {})},
            meta={"state": self.state.to_json(), **(meta or {})},
            keep=self.cfg.keep_checkpoints,
        )

    def network_state(self) -> dict[str, Any]:
        """The networks a checkpoint stores, as one flat tensor dict."""
        return network_state(self.online, self.target)

    def restore(self, checkpoint: Checkpoint) -> None:
        """Continue from ``checkpoint`` exactly (the inverse of :meth:`save`)."""
        load_network_state(checkpoint.model_state, self.online, self.target)
        for name, opt in self.optimizers.items():
            if name in checkpoint.extra:
                opt.load_state_dict(checkpoint.extra[name])
        if checkpoint.replay_state is not None:
            self.replay.load_state_dict(checkpoint.replay_state)
        if checkpoint.rng_state is not None:
            restore_rng_state(checkpoint.rng_state, self.rng, self.gen)
        if "state" not in checkpoint.meta:
            raise ValueError(
                f"checkpoint: {str(checkpoint.path)!r} was written by an earlier "
                "textrl (no training state); start a new run folder"
            )
        self.state = TrainState.from_json(checkpoint.meta["state"])


class StopRequest:
    """Set by the first Ctrl-C; training loops check it where a checkpoint is exact."""

    def __init__(self) -> None:
        self.requested = False


@contextlib.contextmanager
def stop_on_ctrl_c() -> Iterator[StopRequest]:
    """While the block runs, the first Ctrl-C (SIGINT) only sets ``.requested``: the loop stops
    at its next safe point (between updates, rounds or steps) and checkpoints exactly there. A
    second Ctrl-C interrupts at once (``KeyboardInterrupt``). Outside the main thread, or where
    signals cannot be set, Ctrl-C keeps its default meaning."""
    import signal
    import sys
    import threading

    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handler(signum: int, frame: Any) -> None:
        if request.requested:
            raise KeyboardInterrupt
        request.requested = True
        print(
            "\ntextrl train: stopping at the next safe point to checkpoint (Ctrl-C again to "
            "abort at once)",
            file=sys.stderr,
        )

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield request
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def training_session(run: RunDir, logger: MetricsLogger, state_of: Any) -> Iterator[None]:
    """Wrap a training loop: on divergence log it and name the last good checkpoint; always
    close the metrics and draw ``curves.png`` (a plotting failure never loses the run).

    ``state_of()`` returns the current :class:`TrainState` (the core may replace it on resume).
    """
    try:
        yield
    except FloatingPointError as exc:
        state = state_of()
        logger.log(state.checkpoint_step, {"diverged": 1})
        last = run.latest_path()
        raise FloatingPointError(
            f"{exc} Stopped at env step {state.env_steps}; last good "
            f"checkpoint: {last if last else 'none'}."
        ) from None
    finally:
        logger.close()
        if run.metrics_path.is_file():
            try:
                plot_curves(run.path)
            except Exception as exc:  # noqa: BLE001 - the run's files matter more than a plot
                print(f"textrl train: could not plot curves: {exc}")


def resolve_device(device: str) -> torch.device:
    """``"auto"``: CUDA when available, else the CPU; ``"cuda"`` without CUDA is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: 'cuda' was asked for but torch sees no CUDA device")
    return torch.device(device)
