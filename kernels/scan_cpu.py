"""First-order scan on the CPU with numba: h_t = a_t · h_{t−1} + b_t, forward and backward.

The reference is :func:`mamba_edu.scan.sequential_scan`; this file is the same loop compiled by
numba (``@njit(parallel=True, fastmath=True)``), with the rows (every leading index of the
(..., L) arrays) spread over the CPU cores by ``prange``. Inside a row the loop stays sequential:
on a CPU with a few cores there are almost always more rows than cores, and the loop reads each
number once, which is as little memory traffic as a scan can have.

The backward pass is derived by hand (lesson 03, :func:`mamba_edu.scan.scan_backward`). Given
g = ∂ℓ/∂h, the gradient reaching h_t is a scan from right to left:

    dh_t = g_t + conj(a_{t+1}) · dh_{t+1}        da_t = dh_t · conj(h_{t−1})        db_t = dh_t

(conj is the identity for real numbers; PyTorch's complex convention needs it.) It is one more
loop over the same arrays, so the backward costs about as much as the forward.

:class:`FirstOrderScan` wraps both as a ``torch.autograd.Function``; :func:`first_order_scan` picks
it, or the pure-torch loop :func:`torch_scan` when numba cannot run the inputs (a GPU tensor, a
half-precision dtype) or when asked to.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from numba import config, njit, prange

from mamba_edu.contract import check_grad_input, check_scan_inputs, check_scan_tensors

# numba's default thread pool on Linux is OpenMP, whose idle threads spin while they wait. Measured
# on the course's 2-core machine while other processes were busy (and PyTorch, with its own OpenMP
# runtime, was loaded), the (64, 4096) scan took 20–28 ms with OpenMP and 1.3 ms with numba's
# own "workqueue" pool. The pool is chosen at the first parallel launch; a layer the user picked
# (NUMBA_THREADING_LAYER) is kept. (workqueue does not allow two Python threads to launch parallel
# kernels at the same time; the course never does.)
if "NUMBA_THREADING_LAYER" not in os.environ:
    os.environ["NUMBA_THREADING_LAYER"] = "workqueue"  # numba re-reads its config from the env
    config.THREADING_LAYER = "workqueue"

__all__ = [
    "scan_forward",
    "scan_forward_chunked",
    "scan_backward",
    "FirstOrderScan",
    "first_order_scan",
    "torch_scan",
]


# ----------------------------------------------------------------------------------------------
# The compiled loops. Arrays are (M, L), C-contiguous; each row is independent.
# ----------------------------------------------------------------------------------------------


@njit(parallel=True, fastmath=True, cache=True)
def _forward_rows(a, b, h0, h):
    M, L = a.shape
    for m in prange(M):
        state = h0[m]
        for t in range(L):
            state = a[m, t] * state + b[m, t]
            h[m, t] = state


@njit(parallel=True, fastmath=True, cache=True)
def _backward_rows(a, h, h0, g, da, db, dh0):
    M, L = a.shape
    for m in prange(M):
        carry = g[m, L - 1] * 0  # the gradient flowing in from h_{t+1}, zero after the last step
        for t in range(L - 1, -1, -1):
            dh = g[m, t] + carry
            db[m, t] = dh
            prev = h[m, t - 1] if t > 0 else h0[m]
            da[m, t] = dh * np.conj(prev)
            carry = np.conj(a[m, t]) * dh
        dh0[m] = carry  # = conj(a_0) · dh_0: the gradient of the initial state


@njit(parallel=True, fastmath=True, cache=True)
def _chunked_rows(a, b, h0, h, chunk):
    """Time-parallel version for few long rows: scan chunks in parallel, then carry in."""
    M, L = a.shape
    n_chunks = (L + chunk - 1) // chunk
    A = np.empty((M, n_chunks), dtype=a.dtype)  # product of a over each chunk
    # 1. local scans from a zero state, every (row, chunk) pair in parallel
    for job in prange(M * n_chunks):
        m = job // n_chunks
        c = job % n_chunks
        start = c * chunk
        stop = min(start + chunk, L)
        state = h0[m] * 0
        prod = a[m, start] * 0 + 1
        for t in range(start, stop):
            state = a[m, t] * state + b[m, t]
            prod = prod * a[m, t]
            h[m, t] = state
        A[m, c] = prod
    # 2. carries: the state entering each chunk, a short sequential scan per row
    carry = np.empty((M, n_chunks), dtype=a.dtype)
    for m in prange(M):
        state = h0[m]
        for c in range(n_chunks):
            carry[m, c] = state
            state = A[m, c] * state + h[m, min((c + 1) * chunk, L) - 1]
    # 3. carry in: h_t += (product of a in the chunk up to t) · carry
    for job in prange(M * n_chunks):
        m = job // n_chunks
        c = job % n_chunks
        start = c * chunk
        stop = min(start + chunk, L)
        x = carry[m, c]
        for t in range(start, stop):
            x = a[m, t] * x
            h[m, t] += x


# ----------------------------------------------------------------------------------------------
# NumPy entry points
# ----------------------------------------------------------------------------------------------


def scan_forward(a: np.ndarray, b: np.ndarray, h0: np.ndarray | None = None) -> np.ndarray:
    """h with h_t = a_t · h_{t−1} + b_t, compiled. a, b: (..., L), same dtype (float32, float64,
    complex64 or complex128); h0: optional (...). Returns h of shape (..., L)."""
    a2, b2, h02, shape = check_scan_inputs(a, b, h0, backend="the numba CPU scan")
    h = np.empty_like(a2)
    if shape[-1] > 0 and a2.shape[0] > 0:
        _forward_rows(a2, b2, h02, h)
    return h.reshape(shape)


def scan_forward_chunked(
    a: np.ndarray, b: np.ndarray, h0: np.ndarray | None = None, chunk: int = 1024
) -> np.ndarray:
    """The same h, computed chunk by chunk in parallel over time (useful with few, long rows).

    Keep ``chunk`` moderate: the carry-in multiplies the carry by the running product of a over
    the chunk, and with |a| < 1 a long product sinks into subnormal numbers, which CPUs handle
    up to a hundred times more slowly (measured here: a ~ U(0.9, 1), chunk 65536, 20× slower).
    """
    if not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ValueError(f"expected chunk to be a positive integer, got {chunk!r}")
    a2, b2, h02, shape = check_scan_inputs(a, b, h0, backend="the numba CPU scan")
    h = np.empty_like(a2)
    if shape[-1] > 0 and a2.shape[0] > 0:
        _chunked_rows(a2, b2, h02, h, int(chunk))
    return h.reshape(shape)


def scan_backward(a: np.ndarray, h: np.ndarray, g: np.ndarray, h0: np.ndarray | None = None):
    """Gradients (da, db, dh0) of a loss through h = scan_forward(a, b, h0), given g = ∂ℓ/∂h.

    ``h`` is the forward output (the backward needs h_{t−1}, not b). dh0 is returned even when h0
    is None (it is then the gradient a zero initial state would receive).
    """
    a2, h2, h02, shape = check_scan_inputs(a, h, h0, backend="the numba CPU scan")
    g2 = check_grad_input(g, shape, a.dtype)
    da = np.empty_like(a2)
    db = np.empty_like(a2)
    dh0 = np.zeros_like(h02)
    if shape[-1] > 0 and a2.shape[0] > 0:
        _backward_rows(a2, h2, h02, g2, da, db, dh0)
    return da.reshape(shape), db.reshape(shape), dh0.reshape(shape[:-1])


# ----------------------------------------------------------------------------------------------
# PyTorch
# ----------------------------------------------------------------------------------------------

NUMBA_DTYPES = (torch.float32, torch.float64, torch.complex64, torch.complex128)


def _check_tensors(a, b, h0):
    check_scan_tensors(
        a, b, h0,
        dtype_ok=lambda dtype: dtype.is_floating_point or dtype.is_complex,
        dtypes_wanted="floating-point or complex",
    )  # fmt: skip


def torch_scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
    """The pure-torch loop (the fallback): differentiable by autograd, runs on any device/dtype."""
    _check_tensors(a, b, h0)
    state = torch.zeros_like(a[..., 0]) if h0 is None else h0
    out = []
    for t in range(a.shape[-1]):
        state = a[..., t] * state + b[..., t]
        out.append(state)
    if not out:
        return torch.empty_like(a)
    return torch.stack(out, dim=-1)


def _np(x: torch.Tensor) -> np.ndarray:
    # autograd may hand over lazily conjugated or negated views (complex gradients): materialize
    return x.detach().resolve_conj().resolve_neg().contiguous().numpy()


class FirstOrderScan(torch.autograd.Function):
    """h = scan(a, b, h0) on CPU tensors with the numba kernels; the backward is the reverse scan."""

    @staticmethod
    def forward(ctx, a, b, h0=None):
        h = torch.from_numpy(scan_forward(_np(a), _np(b), None if h0 is None else _np(h0)))
        ctx.save_for_backward(a, h, h0)
        return h

    @staticmethod
    def backward(ctx, g):
        a, h, h0 = ctx.saved_tensors
        da, db, dh0 = scan_backward(_np(a), _np(h), _np(g), None if h0 is None else _np(h0))
        return (
            torch.from_numpy(da) if ctx.needs_input_grad[0] else None,
            torch.from_numpy(db) if ctx.needs_input_grad[1] else None,
            torch.from_numpy(dh0) if h0 is not None and ctx.needs_input_grad[2] else None,
        )


def first_order_scan(
    a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None = None, *, backend: str = "auto"
) -> torch.Tensor:
    """h_t = a_t · h_{t−1} + b_t for torch tensors (..., L), differentiable.

    ``backend``: "numba" (the compiled kernels above), "torch" (the pure-torch loop) or "auto"
    (numba for CPU tensors of dtype float32/float64/complex64/complex128, else the loop).
    """
    if backend not in ("auto", "numba", "torch"):
        raise ValueError(f"expected backend 'auto', 'numba' or 'torch', got {backend!r}")
    _check_tensors(a, b, h0)
    numba_ok = a.device.type == "cpu" and a.dtype in NUMBA_DTYPES
    if backend == "numba" and not numba_ok:
        raise TypeError(
            f"the numba scan runs CPU tensors of dtype float32, float64, complex64 or complex128, "
            f"got a {a.device.type} tensor of dtype {a.dtype} (use backend='torch')"
        )
    if backend == "torch" or not numba_ok:
        return torch_scan(a, b, h0)
    return FirstOrderScan.apply(a, b, h0)
