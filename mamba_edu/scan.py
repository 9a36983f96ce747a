"""First-order linear recurrences, h_t = a_t · h_{t−1} + b_t, the operation the whole course is built on.

Arrays are shaped ``(..., L)``: time is the last axis, everything before it is independent
channels (batch, features, state). Every function here computes the same h; they differ in the
*order* in which the work is done, which is what decides how parallel it can be (lesson 03).

The key fact (Blelloch, 1990; used by Martin & Cundy, 2018, and by Mamba) is that one step of the
recurrence is an affine map x ↦ a·x + b, and composing two such maps gives another one:

    (a₁, b₁) ∘ (a₂, b₂) = (a₁·a₂, a₂·b₁ + b₂)      "first (a₁, b₁), then (a₂, b₂)"

This operator is associative (but not commutative), so the prefix "compositions" of the L steps
can be computed in any bracketing, e.g. as a balanced tree of depth log₂ L.

Glossary (code name → symbol):
    a, b        the per-step decay a_t and input b_t, shape (..., L)
    h0          the state before the first step, h_{−1}, shape (...)
    combine     the operator ∘ above; (1, 0) is its identity
    counter     a :class:`ScanCounter` counting operator applications (work) and parallel steps (depth)

Functions:
    sequential_scan     the plain loop, the yardstick (work L − 1, depth L − 1)
    hillis_steele_scan  doubling offsets: depth ⌈log₂ L⌉, work ≈ L·log₂ L
    blelloch_scan       up-sweep / down-sweep on a tree: depth ≈ 2·log₂ L, work ≈ 2L
    chunked_scan        scan inside chunks, scan of the chunk totals, carry in (what GPUs do)
    reverse_scan        r_t = a_t · r_{t+1} + b_t, right to left (what the backward pass needs)
    scan_backward       gradients of a loss through h, by a reverse scan
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from mamba_edu.contract import positive_int, scan_args

__all__ = [
    "ScanCounter",
    "combine",
    "sequential_scan",
    "hillis_steele_scan",
    "blelloch_scan",
    "blelloch_trace",
    "chunked_scan",
    "reverse_scan",
    "scan_backward",
    "work_depth",
]


# ----------------------------------------------------------------------------------------------
# Input checks and the operator
# ----------------------------------------------------------------------------------------------


def _prepare(a, b, h0=None, *, name_a: str = "a", name_b: str = "b"):
    """Validate and broadcast a, b (and h0): the contract in :func:`mamba_edu.contract.scan_args`."""
    return scan_args(a, b, h0, name_a=name_a, name_b=name_b)


@dataclass
class ScanCounter:
    """Counts the cost of a scan: ``work`` = applications of the operator ∘ (each on one position,
    for all channels at once), ``depth`` = parallel steps (a step may apply ∘ at many positions at
    the same time, as parallel threads would). ``levels`` records the work done at each step."""

    work: int = 0
    depth: int = 0
    levels: list[int] = field(default_factory=list)

    def step(self, n_ops: int) -> None:
        """One parallel step that applies ∘ ``n_ops`` times (a step with no work is not a step)."""
        if n_ops > 0:
            self.work += int(n_ops)
            self.depth += 1
            self.levels.append(int(n_ops))


def combine(left, right):
    """The scan operator: ``left`` = (a₁, b₁) then ``right`` = (a₂, b₂) gives (a₁a₂, a₂b₁ + b₂).

    Each argument is a pair of arrays (or numbers); applying the result to a state x equals
    applying ``left`` first and ``right`` second: a₂(a₁x + b₁) + b₂.
    """
    a1, b1 = left
    a2, b2 = right
    return a1 * a2, a2 * b1 + b2


def _with_h0(A, B, h0, counter):
    """States from the prefix compositions (A_t, B_t): h_t = A_t·h0 + B_t (one more parallel step)."""
    if h0 is None:
        return B
    if counter is not None:
        counter.step(A.shape[-1])
    return A * h0[..., None] + B


# ----------------------------------------------------------------------------------------------
# The scans
# ----------------------------------------------------------------------------------------------


def sequential_scan(a, b, h0=None, counter: ScanCounter | None = None) -> np.ndarray:
    """Return h with h_t = a_t · h_{t−1} + b_t for t = 0..L−1, starting from h_{−1} = ``h0`` (zero).

    a, b: arrays of shape (..., L), real or complex, broadcastable to each other.
    h0: optional initial state of shape (...) (the leading dimensions).
    Returns h of shape (..., L), in the common dtype of a and b (float64 for integer inputs).
    ``counter`` (optional) counts L − 1 dependent steps (L with h0): work = depth.
    """
    a, b, h0, shape, dtype = _prepare(a, b, h0)
    h = np.empty(shape, dtype=dtype)
    if shape[-1] == 0:
        return h
    state = np.zeros(shape[:-1], dtype=dtype)
    if h0 is not None:
        state = state + h0
    for t in range(shape[-1]):  # the loop is the idea: each step needs the one before it
        state = a[..., t] * state + b[..., t]
        h[..., t] = state
        if counter is not None and (t > 0 or h0 is not None):
            counter.step(1)
    return h


def hillis_steele_scan(a, b, h0=None, counter: ScanCounter | None = None) -> np.ndarray:
    """The same h by recursive doubling (Hillis & Steele, 1986).

    At step k (offset d = 2^k) every position t ≥ d combines with the partial result d positions
    to its left: (A, B)[t] ← (A, B)[t − d] ∘ (A, B)[t]. After ⌈log₂ L⌉ steps each position holds
    the composition of all steps 0..t. Depth ⌈log₂ L⌉, work Σ_d (L − d) ≈ L·log₂ L: more work than
    the loop, in exchange for logarithmic depth.
    """
    a, b, h0, shape, _ = _prepare(a, b, h0)
    A, B = a.copy(), b.copy()
    L = shape[-1]
    d = 1
    while d < L:
        # Both sides are read before anything is written: every thread of a step sees the old values.
        A_new, B_new = combine((A[..., :-d], B[..., :-d]), (A[..., d:], B[..., d:]))
        A[..., d:], B[..., d:] = A_new, B_new
        if counter is not None:
            counter.step(L - d)
        d *= 2
    return _with_h0(A, B, h0, counter)


def _blelloch_sweeps(A, B, record=None, counter=None):
    """In-place Blelloch scan on arrays whose last axis has a power-of-two length n.

    Up-sweep: a reduction tree; node i at distance d holds the composition of its 2d leaves.
    Down-sweep: the root gets the identity (1, 0); each node passes to its left child what it
    holds (the composition of everything before it) and to its right child that, followed by the
    left subtree's total. Afterwards position t holds the *exclusive* prefix (steps 0..t−1).
    Returns the total composition (all n steps). ``record`` (a list) receives one entry per step:
    (phase, d, [(left, right), ...]) with the pairs of positions that were combined.
    """
    n = A.shape[-1]
    d = 1
    while d < n:  # up-sweep
        right = np.arange(2 * d - 1, n, 2 * d)
        left = right - d
        A[..., right], B[..., right] = combine(
            (A[..., left], B[..., left]), (A[..., right], B[..., right])
        )
        if record is not None:
            record.append(("up", d, list(zip(left.tolist(), right.tolist(), strict=True))))
        if counter is not None:
            counter.step(len(right))
        d *= 2
    total = (A[..., -1].copy(), B[..., -1].copy())
    A[..., -1], B[..., -1] = 1, 0  # the identity: nothing comes before the first step
    d = n // 2
    while d >= 1:  # down-sweep
        right = np.arange(2 * d - 1, n, 2 * d)
        left = right - d
        keep_A, keep_B = A[..., left].copy(), B[..., left].copy()  # the left subtree's total
        A[..., left], B[..., left] = A[..., right], B[..., right]  # prefix before this node
        # right child: the prefix before this node, then the left subtree (earlier ∘ later)
        A[..., right], B[..., right] = combine((A[..., right], B[..., right]), (keep_A, keep_B))
        if record is not None:
            record.append(("down", d, list(zip(left.tolist(), right.tolist(), strict=True))))
        if counter is not None:
            counter.step(len(right))
        d //= 2
    return total


def blelloch_scan(a, b, h0=None, counter: ScanCounter | None = None) -> np.ndarray:
    """The same h by Blelloch's work-efficient scan (Blelloch, 1990): up-sweep, then down-sweep.

    Any L: the sequence is padded on the right with identity steps (a, b) = (1, 0) up to the next
    power of two n (padding changes nothing: the identity leaves a state as it is). Up-sweep and
    down-sweep each take log₂ n steps and n − 1 operator applications, so depth ≈ 2·log₂ L and
    work ≈ 2L: the same order of work as the loop, with logarithmic depth. The down-sweep yields
    the exclusive prefixes; the inclusive one at t is the exclusive one at t + 1, and the last is
    the up-sweep's total, so no extra work is needed.
    """
    a, b, h0, shape, dtype = _prepare(a, b, h0)
    L = shape[-1]
    if L == 0:
        return np.empty(shape, dtype=dtype)
    n = 1 << (L - 1).bit_length()
    A = np.ones(shape[:-1] + (n,), dtype=dtype)
    B = np.zeros(shape[:-1] + (n,), dtype=dtype)
    A[..., :L], B[..., :L] = a, b
    total_A, total_B = _blelloch_sweeps(A, B, counter=counter)
    # inclusive prefix at t = exclusive prefix at t + 1; the last one is the total.
    A_inc = np.concatenate([A[..., 1:], total_A[..., None]], axis=-1)[..., :L]
    B_inc = np.concatenate([B[..., 1:], total_B[..., None]], axis=-1)[..., :L]
    return _with_h0(A_inc, B_inc, h0, counter)


def blelloch_trace(n: int) -> list[tuple[str, int, list[tuple[int, int]]]]:
    """The steps of Blelloch's scan on ``n`` positions (a power of two), for figures.

    Returns a list of (phase, d, pairs): phase "up" or "down", the distance d between the two
    positions combined at that step, and the (left, right) position pairs combined there.
    """
    if n < 1 or n & (n - 1):
        raise ValueError(f"expected n to be a power of two (2, 4, 8, 16, ...), got {n}")
    record: list = []
    _blelloch_sweeps(np.ones(n), np.zeros(n), record=record)
    return record


def chunked_scan(a, b, h0=None, chunk: int = 64, counter: ScanCounter | None = None) -> np.ndarray:
    """The same h the way hardware does it: split time into chunks of ``chunk`` steps.

    1. Inside every chunk, in parallel over chunks, a sequential scan from a zero state
       (a GPU block, or a CPU core, per chunk), keeping the running products of a too.
    2. A sequential scan over the chunk totals gives the state entering each chunk (the carry).
    3. Carry in: each position adds (product of a inside its chunk so far) × (its chunk's carry).
    Depth ≈ chunk + L/chunk + 1 (smallest near chunk = √L), work ≈ 3L.
    """
    chunk = positive_int("chunk", chunk)
    a, b, h0, shape, dtype = _prepare(a, b, h0)
    L = shape[-1]
    if L == 0:
        return np.empty(shape, dtype=dtype)
    n_chunks = -(-L // chunk)
    pad = n_chunks * chunk - L
    lead = shape[:-1]
    # (..., n_chunks, chunk), padded with identity steps at the end
    a_c = np.concatenate([a, np.ones(lead + (pad,), dtype)], axis=-1).reshape(
        lead + (n_chunks, chunk)
    )
    b_c = np.concatenate([b, np.zeros(lead + (pad,), dtype)], axis=-1).reshape(
        lead + (n_chunks, chunk)
    )
    # 1. local scans, all chunks at once: (A, B) = composition of the chunk's steps so far
    A = np.empty_like(a_c)
    B = np.empty_like(b_c)
    A[..., 0], B[..., 0] = a_c[..., 0], b_c[..., 0]
    for t in range(1, chunk):
        A[..., t], B[..., t] = combine((A[..., t - 1], B[..., t - 1]), (a_c[..., t], b_c[..., t]))
        if counter is not None:
            counter.step(n_chunks)
    # 2. carries: the state entering chunk c, a sequential scan over the chunk totals
    carry = np.empty(lead + (n_chunks,), dtype=dtype)
    state = np.zeros(lead, dtype=dtype) if h0 is None else h0.astype(dtype)
    for c in range(n_chunks):
        carry[..., c] = state
        state = A[..., c, -1] * state + B[..., c, -1]
        if counter is not None and c < n_chunks - 1:
            counter.step(1)
    # 3. carry in (a chunk whose carry is zero by construction, the first one without h0, needs none)
    h = B + A * carry[..., None]
    if counter is not None:
        counter.step(L - (min(chunk, L) if h0 is None else 0))
    return h.reshape(lead + (n_chunks * chunk,))[..., :L]


def reverse_scan(a, b, hT=None) -> np.ndarray:
    """Return r with r_t = a_t · r_{t+1} + b_t for t = L−1 down to 0, starting from r_L = ``hT``.

    The same recurrence read right to left: the backward pass of a scan is one (see
    :func:`scan_backward`). Shapes as in :func:`sequential_scan`.
    """
    a, b, hT, shape, dtype = _prepare(a, b, hT)
    return sequential_scan(a[..., ::-1], b[..., ::-1], hT)[..., ::-1].astype(dtype, copy=False)


def scan_backward(a, h, g, h0=None):
    """Gradients of a loss ℓ through h = sequential_scan(a, b, h0), given g = ∂ℓ/∂h.

    With dh_t the gradient reaching h_t from g_t and from h_{t+1} = a_{t+1}·h_t + b_{t+1}:

        dh_t = g_t + a_{t+1}·dh_{t+1}      (a reverse scan, dh_{L−1} = g_{L−1})
        da_t = dh_t · h_{t−1}   (h_{−1} = h0, or 0)      db_t = dh_t      dh0 = a_0 · dh_0

    For complex values, the gradients follow PyTorch's convention (the conjugate of the Wirtinger
    derivative), so every product above takes the conjugate of the *other* factor: dh_t = g_t +
    conj(a_{t+1})·dh_{t+1}, da_t = dh_t·conj(h_{t−1}), dh0 = conj(a_0)·dh_0. Returns (da, db, dh0);
    dh0 is ``None`` when h0 is ``None``.
    """
    a, h, h0, shape, dtype = _prepare(a, h, h0, name_b="h")
    g = np.asarray(g)
    if g.shape != shape:
        raise ValueError(f"expected g of shape {shape} (the shape of h), got {g.shape}")
    dtype = np.result_type(dtype, g)
    a_next = np.concatenate(
        [a[..., 1:], np.zeros(shape[:-1] + (min(1, shape[-1]),), dtype=a.dtype)], axis=-1
    )
    dh = reverse_scan(np.conj(a_next), g).astype(dtype, copy=False)
    first = np.zeros(shape[:-1] + (min(1, shape[-1]),), dtype=dtype)
    if h0 is not None and shape[-1]:
        first[..., 0] = h0
    h_prev = np.concatenate([first, h[..., :-1]], axis=-1)
    da = dh * np.conj(h_prev)
    db = dh.copy()
    dh0 = None
    if h0 is not None:
        dh0 = np.conj(a[..., 0]) * dh[..., 0] if shape[-1] else np.zeros(shape[:-1], dtype)
    return da, db, dh0


# ----------------------------------------------------------------------------------------------
# Cost formulas, for the lesson's plots
# ----------------------------------------------------------------------------------------------


def work_depth(method: str, L: int, chunk: int | None = None) -> tuple[int, int]:
    """(work, depth) of a scan of length ``L`` without h0, measured by running it with a counter.

    ``method``: "sequential", "hillis_steele", "blelloch" or "chunked" (``chunk`` defaults to
    ⌈√L⌉). Runs the real algorithm on a length-L array of one channel and reads its counter.
    """
    fns = {
        "sequential": sequential_scan,
        "hillis_steele": hillis_steele_scan,
        "blelloch": blelloch_scan,
        "chunked": chunked_scan,
    }
    if method not in fns:
        raise ValueError(f"expected method to be one of {sorted(fns)}, got {method!r}")
    if L < 1:
        raise ValueError(f"expected L >= 1, got {L}")
    counter = ScanCounter()
    kwargs = {}
    if method == "chunked":
        kwargs["chunk"] = chunk or max(1, math.isqrt(L - 1) + 1)
    fns[method](np.ones(L), np.zeros(L), counter=counter, **kwargs)
    return counter.work, counter.depth
