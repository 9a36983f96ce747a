"""Fast implementations of the course's reference code ("production kernels").

Installed as ``mamba_edu.kernels``. Each kernel is checked against the NumPy reference in
``mamba_edu`` (tests/), and the reference against the official ``mamba_ssm``.

* ``scan_cpu``, ``scan_cuda``, ``scan_triton``: the first-order scan h_t = a_t h_{t−1} + b_t
  (lesson 03) on the CPU (numba, forward and backward, an autograd Function), with numba-cuda
  and with Triton.
* ``selective_cpu``: the selective scan (forward and hand-derived backward) with numba on the
  CPU, and ``SelectiveScanFn``, a ``torch.autograd.Function`` the lessons train with.
* ``conv_cpu``: the Mamba block's causal depthwise convolution + SiLU with numba on the CPU,
  forward and backward in one pass each, reading in_proj's output in place, and
  ``CausalConvSiluFn`` (used by :class:`mamba_edu.mamba.Mamba` with the numba backend).
* ``selective_cuda``: the chunked selective scan with numba-cuda, forward and backward (the
  backward recomputes each chunk's states from checkpoints the forward saved), and
  ``SelectiveScanCudaFn``, its autograd Function (real GPU, or the CUDA simulator on a CPU).
* ``selective_triton``: the same in Triton, forward, backward and ``SelectiveScanTritonFn``
  (real GPU, or the interpreter).

:func:`available` says which backends can run here, and how.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

import numpy as _np

# numba-cuda 0.30.4 still calls np.row_stack, which NumPy 2.5 removed (seen on an H200 machine
# whose image has NumPy 2.5.2); the course pins NumPy 2.4, where it exists. np.vstack is the same
# function under its current name.
if not hasattr(_np, "row_stack"):
    _np.row_stack = _np.vstack

__all__ = ["Backend", "available"]


@dataclass(frozen=True)
class Backend:
    """Whether one kernel family can run here: ``how`` it runs, or ``why`` it cannot."""

    name: str
    runs: bool
    how: str = ""
    why: str = ""

    def __str__(self) -> str:
        return f"{self.name}: {self.how}" if self.runs else f"{self.name}: unavailable ({self.why})"


def _cpu() -> Backend:
    if importlib.util.find_spec("numba") is None:
        return Backend("cpu", False, why="numba is not installed; the pure-torch loop is used")
    import numba  # only once find_spec said it is there: the package imports without numba

    return Backend("cpu", True, how=f"numba on the CPU, {numba.get_num_threads()} thread(s)")


def _cuda() -> Backend:
    if importlib.util.find_spec("numba") is None:
        return Backend("cuda", False, why="numba is not installed")
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return Backend(
            "cuda", True, how="CUDA simulator (NUMBA_ENABLE_CUDASIM=1): Python speed, tiny inputs"
        )
    try:
        # numba.cuda probes the driver on import: reached only when someone asks about CUDA.
        from numba import cuda

        if cuda.is_available():
            device = cuda.get_current_device()
            name = device.name.decode() if isinstance(device.name, bytes) else device.name
            return Backend("cuda", True, how=f"real GPU: {name}")
        reason = "no CUDA GPU or driver found"
    except Exception as error:  # noqa: BLE001 - any failure to reach CUDA is a reason to report
        reason = f"numba.cuda failed: {error}"
    return Backend(
        "cuda", False,
        why=f"{reason}; set NUMBA_ENABLE_CUDASIM=1 before numba is imported to simulate",
    )  # fmt: skip


def _triton() -> Backend:
    if importlib.util.find_spec("triton") is None:
        return Backend("triton", False, why="triton is not installed (pip install '.[parity]')")
    if os.environ.get("TRITON_INTERPRET") == "1":
        return Backend("triton", True, how="Triton interpreter (TRITON_INTERPRET=1): NumPy speed")
    try:
        import torch  # heavy: the backend report is the only place here that needs it

        if torch.cuda.is_available():
            return Backend("triton", True, how=f"real GPU: {torch.cuda.get_device_name()}")
    except Exception as error:  # noqa: BLE001
        return Backend("triton", False, why=f"torch.cuda failed: {error}")
    return Backend(
        "triton", False,
        why="no CUDA GPU visible to torch; set TRITON_INTERPRET=1 before triton is imported "
        "to interpret",
    )  # fmt: skip


def available() -> dict[str, Backend]:
    """{"cpu": Backend, "cuda": Backend, "triton": Backend}: what can run here and how.

    >>> print(available()["cpu"])  # doctest: +SKIP
    cpu: numba on the CPU, 2 thread(s)
    """
    return {"cpu": _cpu(), "cuda": _cuda(), "triton": _triton()}
