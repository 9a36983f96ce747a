"""First-order linear recurrences, h_t = a_t · h_{t−1} + b_t, the operation the whole course is built on.

Arrays are shaped ``(..., L)``: time is the last axis, everything before it is independent
channels (batch, features, state). This module holds the plain sequential loop, the yardstick for
every faster version (parallel scans in lesson 03, kernels in ``kernels/``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["sequential_scan"]


def sequential_scan(a, b, h0=None) -> np.ndarray:
    """Return h with h_t = a_t · h_{t−1} + b_t for t = 0..L−1, starting from h_{−1} = ``h0`` (zero).

    a, b: arrays of shape (..., L), real or complex, broadcastable to each other.
    h0: optional initial state of shape (...) (the leading dimensions).
    Returns h of shape (..., L), in the common dtype of a and b (float64 for integer inputs).
    """
    a = np.asarray(a)
    b = np.asarray(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(
            f"expected a and b of shape (..., L) with time last, got a.shape={a.shape}, b.shape={b.shape}"
        )
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(
            f"expected a and b of the same shape (..., L) (or broadcastable), got a.shape={a.shape}, "
            f"b.shape={b.shape}"
        ) from None
    dtype = np.result_type(a, b, np.float64)
    a = np.broadcast_to(a, shape)
    b = np.broadcast_to(b, shape)
    h = np.empty(shape, dtype=dtype)
    state = np.zeros(shape[:-1], dtype=dtype)
    if h0 is not None:
        h0 = np.asarray(h0)
        if h0.shape != shape[:-1]:
            raise ValueError(
                f"expected h0 of shape {shape[:-1]} (the leading dims of a and b), got {h0.shape}"
            )
        state = state + h0
    for t in range(shape[-1]):  # the loop is the idea: each step needs the one before it
        state = a[..., t] * state + b[..., t]
        h[..., t] = state
    return h
