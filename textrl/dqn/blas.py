"""Matrix products and vector math that give one seed the same weights in every run.

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

The second source of run-to-run differences is MKL's vector math (VML), which torch uses for
elementwise functions such as ``sqrt`` (Adam's denominator) and ``exp``, splitting a tensor of
more than 2048 elements between its threads. When the process's first call of such a function
is split that way, one thread sometimes computes its half on a low-accuracy code path (by all
appearances a race in MKL's lazy set-up of the function). Measured on this 2-core machine with
another process keeping one core busy: Adam's first ``sqrt`` of the Nature CNN's first layer
(8192 elements) was off by up to 3.2e-4 relative, against 6e-8, in one half, in 3 to 5 of 24
processes (three sets), and in none of 72 once the function had been called on one thread
first. So importing :mod:`textrl.dqn.core` also calls :func:`warm_vector_math`. Before it,
about 1 run in 6 of one seed ended with other weights after 20-30 updates at 2 threads (text
and CNN alike; BENCHMARKS.md).

What stays different: runs with different ``--torch-threads`` (another split of the sums), runs
on another CPU type, and GPU runs (cuBLAS has its own rules). A user's own ``MKL_CBWR`` is left
as it is.
"""

from __future__ import annotations

import ctypes
import functools
import os
import warnings
from pathlib import Path
from typing import Any

import torch

__all__ = ["AUTO_STRICT", "VECTOR_MATH", "blas_mode", "reproducible_blas", "warm_vector_math"]

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


VECTOR_MATH = (
    "abs", "acos", "asin", "atan", "cos", "cosh", "erf", "erfc", "erfinv", "exp", "expm1",
    "lgamma", "log", "log10", "log1p", "log2", "rsqrt", "sin", "sinh", "sqrt", "tan", "tanh",
    "trunc",
)  # fmt: skip
"""torch functions that torch's MKL builds compute with MKL's vector math (ATen's ``cpu/vml.h``,
split between threads above 2048 elements by ``native/cpu/UnaryOpsKernel.cpp``), or may:
calling one that does not is harmless."""


def warm_vector_math() -> int:
    """Make the process's first call of each of :data:`VECTOR_MATH`, in float32 and float64, on
    the calling thread alone (8 elements: torch does not split so few between threads), so
    that no two threads make it at once (the module docstring says what that did). Returns the
    number of calls; about 0.2 ms in all."""
    calls = 0
    for dtype in (torch.float32, torch.float64):
        x = torch.full((8,), 0.5, dtype=dtype)  # inside every function's domain
        for name in VECTOR_MATH:
            getattr(torch, name)(x)
            calls += 1
    return calls
