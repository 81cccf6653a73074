"""Matrix products that do not depend on where tensors happen to lie in memory.

torch's x86 CPU builds multiply matrices with Intel MKL, whose results can depend on the memory
alignment of the operands (Intel documents it; its reproducibility mode exists for it): the same
product of the same numbers can be summed in another order, and round differently, when a
tensor lands at another address. Training amplifies one such rounding difference. Measured on
SciTLDR with 2 torch threads: two warm starts of one seed, from code that differed by a log
line at start-up, were equal after 100 updates and different after 200; a few bytes of junk
allocated before training changed the weights within 10 updates (with 1 thread they did not).
What moves the heap is anything at all: another library version, one more log line.

MKL's *conditional numerical reproducibility* mode (``MKL_CBWR=AUTO,STRICT``) removes the
dependence: the code path is still the fastest the CPU has (``AUTO``), and ``STRICT`` makes the
result independent of alignment. It must be chosen before MKL's first call, so
:mod:`textrl.dqn.core` calls :func:`reproducible_blas` when it is imported. Measured on the
2-core machine: the same weights whatever the alignment, at about the same speed (BENCHMARKS.md).

What stays different: runs with different ``--torch-threads`` (another split of the sums), runs
on another CPU type, and GPU runs (cuBLAS has its own rules). Not every run-to-run difference is
gone either: with 2 threads, about 1 run in 6 of the same process still ended with other weights
after 20-30 updates (text and CNN alike, cause not found; BENCHMARKS.md). A user's own
``MKL_CBWR`` is left as it is.
"""

from __future__ import annotations

import ctypes
import functools
import os
import warnings
from pathlib import Path
from typing import Any

import torch

__all__ = ["AUTO_STRICT", "blas_mode", "reproducible_blas"]

AUTO_STRICT = 0x10002
"""``MKL_CBWR_AUTO | MKL_CBWR_STRICT`` (2 | 0x10000 in MKL's ``mkl_service.h``)."""

_ALL = -1  # MKL_CBWR_ALL: the whole setting, branch and flags


@functools.cache
def _mkl_cbwr() -> tuple[Any, Any] | None:
    """MKL's get and set calls for the mode, inside torch's CPU library; None where torch has
    no MKL (macOS, ARM) or does not export them."""
    if not torch.backends.mkl.is_available():
        return None
    libs = sorted((Path(torch.__file__).parent / "lib").glob("libtorch_cpu.*"))
    for path in libs:
        try:
            lib = ctypes.CDLL(str(path))  # (the copy torch has loaded already)
            get, set_ = lib.mkl_serv_cbwr_get, lib.mkl_serv_cbwr_set
        except (OSError, AttributeError):
            continue
        get.argtypes, get.restype = [ctypes.c_int], ctypes.c_int
        set_.argtypes, set_.restype = [ctypes.c_int], ctypes.c_int
        return get, set_
    return None


def blas_mode() -> str:
    """What governs torch's CPU matrix products now: ``"mkl strict"`` (alignment does not
    change results), ``"mkl default"`` (it can), ``"MKL_CBWR=<value>"`` (the user's choice),
    ``"mkl, mode unknown"`` (a torch build whose MKL calls are not found) or ``"no mkl"``."""
    calls = _mkl_cbwr()
    if calls is None:
        return "mkl, mode unknown" if torch.backends.mkl.is_available() else "no mkl"
    if calls[0](_ALL) == AUTO_STRICT:
        return "mkl strict"
    if os.environ.get("MKL_CBWR"):
        return f"MKL_CBWR={os.environ['MKL_CBWR']}"
    return "mkl default"


def reproducible_blas() -> str:
    """Choose MKL's strict reproducibility mode unless the user set ``MKL_CBWR``; returns
    :func:`blas_mode`.

    MKL refuses a change after its first product: then this returns ``"mkl default"`` and warns
    (a ``RuntimeWarning``) that runs of one seed may differ, with the two ways out: import
    textrl before multiplying anything with torch, or set ``MKL_CBWR=AUTO,STRICT`` in the
    environment before Python starts."""
    calls = _mkl_cbwr()
    if calls is not None and not os.environ.get("MKL_CBWR"):
        calls[1](AUTO_STRICT)
    mode = blas_mode()
    if mode == "mkl default":
        warnings.warn(
            "textrl: torch's MKL multiplied matrices before textrl.dqn was imported, so MKL's "
            "strict reproducibility mode could not be chosen: results can depend on memory "
            "alignment and two runs of one seed may differ. Import textrl.dqn before any torch "
            "product, or start Python with MKL_CBWR=AUTO,STRICT in the environment.",
            RuntimeWarning,
            stacklevel=2,
        )
    return mode
