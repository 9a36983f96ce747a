"""Attention, the baseline every recurrence in the course is measured against.

Causal softmax attention (Vaswani et al., 2017): each position t mixes the values of positions
0..t with weights softmax(q_t · k_s / √d). Every position looks at every earlier one, so the work
grows as L², against L for a recurrence.
"""

from __future__ import annotations

import numpy as np

__all__ = ["causal_attention"]


def causal_attention(q, k, v) -> np.ndarray:
    """Causal single-head softmax attention.

    q, k, v: arrays of shape (L, d) (query, key, value for each of L positions).
    Returns (L, d): row t is Σ_{s ≤ t} softmax_s(q_t·k_s/√d) v_s.
    """
    q, k, v = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    if q.ndim != 2 or k.shape != q.shape or v.shape[0] != q.shape[0] or v.ndim != 2:
        raise ValueError(
            f"expected q and k of shape (L, d) and v of shape (L, d_v), got q {q.shape}, "
            f"k {k.shape}, v {v.shape}"
        )
    L, d = q.shape
    scores = q @ k.T / np.sqrt(d)  # (L, L)
    future = np.triu(np.ones((L, L), dtype=bool), k=1)
    scores[future] = -np.inf  # position t may not look ahead
    scores -= scores.max(axis=1, keepdims=True)  # keeps exp from overflowing; softmax is unchanged
    weights = np.exp(scores)
    weights /= weights.sum(axis=1, keepdims=True)
    return weights @ v
