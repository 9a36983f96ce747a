"""Synthetic sequence tasks, generated from a seed (nothing is downloaded).

Each generator returns NumPy arrays: inputs ``x`` of shape (n, L, d_in), integer ``labels`` of
shape (n, L) and a boolean ``mask`` of shape (L,) marking the positions that are scored.
"""

from __future__ import annotations

import numpy as np

__all__ = ["delayed_xor"]


def delayed_xor(n: int, L: int, delays: tuple[int, int] = (2, 5), seed: int = 0):
    """Random ±1 inputs; the label at step t is 1 when x_{t−a} and x_{t−b} differ, else 0.

    (a, b) = ``delays``. The label is the XOR of two past bits, i.e. whether x_{t−a}·x_{t−b} = −1.
    Any *linear* function of the inputs is uncorrelated with it (E[x_i x_j x_k] = 0 for independent
    ±1 inputs), so the best linear fit in squared error or cross-entropy is a constant: chance, 50 %
    (a hand-set threshold on x_{t−a} + x_{t−b} gets 75 %, never more). The pieces the task needs
    (two delayed copies, then a product) are a linear recurrence followed by a nonlinearity.

    Returns x (n, L, 1) float64, labels (n, L) int64, mask (L,) bool (True where t ≥ max(a, b)).
    """
    a, b = (int(d) for d in delays)
    if n < 1 or L < 1:
        raise ValueError(f"expected n >= 1 and L >= 1, got n={n}, L={L}")
    if min(a, b) < 0 or max(a, b) >= L:
        raise ValueError(f"expected delays in 0..L-1 = 0..{L - 1}, got {delays}")
    rng = np.random.default_rng(seed)
    x = rng.choice([-1.0, 1.0], size=(n, L))
    labels = np.zeros((n, L), dtype=np.int64)
    first = max(a, b)
    labels[:, first:] = (x[:, first - a : L - a] != x[:, first - b : L - b]).astype(np.int64)
    mask = np.arange(L) >= first
    return x[..., None], labels, mask
