"""Mamba-2's state space duality (SSD), in NumPy: one recurrence, three ways to compute it (lesson 08).

Mamba-2 (Dao & Gu, 2024, "Transformers are SSMs") restricts Mamba's diagonal A to a *scalar* per
head and time step. For one head of one sequence, with the discrete decay ``a_t = Δ_t·A`` (a
log-decay, ≤ 0) and the input already scaled by the step, ``x̄_t = Δ_t·x_t``:

    h_t = exp(a_t) · h_{t−1} + x̄_t ⊗ B_t          (state, (D, N): one row per channel of the head)
    y_t = h_t · C_t                                 (output, (D,))

Unrolled, y = M x̄ with the lower-triangular L×L matrix

    M[t, s] = (C_t · B_s) · exp(a_{s+1} + … + a_t)   for s ≤ t,  0 above the diagonal,

a *semiseparable* matrix (every block below the diagonal has rank ≤ N). That is the duality: the
same map is a recurrence (a scan, linear in L) and a masked attention-like product (quadratic in
L, but matrix multiplications). The SSD algorithm mixes the two: cut the sequence into chunks of
Q steps, use the quadratic form inside each chunk and the recurrence between chunks, in four
steps (the four lines of ``ssd_minimal_discrete`` in ``mamba_ssm``, whose docstring calls it the
paper's Listing 1):

1. :func:`intra_chunk_outputs` — the diagonal blocks of M: each chunk's output from its own inputs;
2. :func:`chunk_states` — the state each chunk leaves behind, starting from zero;
3. :func:`pass_states` — a short sequential scan over chunks: the true state at each chunk start;
4. :func:`state_outputs` — what the incoming state contributes to each chunk's outputs.

:func:`ssd_chunked` runs them; :func:`ssd_scan` (the recurrence) and :func:`ssd_quadratic` (M x̄)
are the two yardsticks it must equal.

The sums ``a_{s+1} + … + a_t`` are *segment sums*. :func:`segsum_naive` takes them as a difference
of two cumulative sums, which fails: once a cumulative sum is −inf (a step with Δ → ∞, a full
reset), −inf − (−inf) is NaN; and for long sequences the difference of two large cumulative sums
loses the digits of a short segment. :func:`segsum` sums each segment directly (a masked cumsum).

Glossary (code name: symbol, shape), one head of one sequence; the layout (L, D) of the course's
single-sequence NumPy references:

    x:  input, already multiplied by Δ (x̄),      (L, D)   (D = the head's channels, P in the paper)
    a:  log-decay per step, Δ_t·A,               (L,)     (≤ 0 for a stable model)
    B:  input matrix B_t,                        (L, N)   (N = d_state)
    C:  output matrix C_t,                       (L, N)
    h:  state h_t,                               (D, N)
"""

from __future__ import annotations

import numpy as np

from mamba_edu.contract import positive_int, real_scalar, shape_error

__all__ = [
    "discretize",
    "segsum_naive",
    "segsum",
    "semiseparable_matrix",
    "ssd_scan",
    "ssd_quadratic",
    "intra_chunk_outputs",
    "chunk_states",
    "pass_states",
    "state_outputs",
    "ssd_chunked",
]


def _vector(a, name="a"):
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"expected {name} of shape (L,), got {a.shape}")
    return a


def _ssd_args(x, a, B, C):
    """Check the shapes of one head's arguments; return them as float64 arrays."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"expected x of shape (L, D), got {x.shape}")
    L, _ = x.shape
    a = np.asarray(a, dtype=np.float64)
    if a.shape != (L,):
        raise shape_error("a", "(L,)", (L,), a.shape)
    B = np.asarray(B, dtype=np.float64)
    if B.ndim != 2 or B.shape[0] != L:
        raise ValueError(f"expected B of shape (L, N) with L = {L}, got {B.shape}")
    C = np.asarray(C, dtype=np.float64)
    if C.shape != B.shape:
        raise shape_error("C", "(L, N)", B.shape, C.shape)
    return x, a, B, C


def _initial_state(h0, D, N):
    if h0 is None:
        return np.zeros((D, N))
    h0 = np.asarray(h0, dtype=np.float64)
    if h0.shape != (D, N):
        raise shape_error("h0", "(D, N)", (D, N), h0.shape)
    return h0


def discretize(x, delta, A):
    """(x̄, a) = (Δ_t x_t, Δ_t A): Mamba-2's discretization of one head (B by Euler, as in Mamba).

    x (L, D); delta (L,), positive; A a negative scalar. Returns x̄ (L, D) and a (L,).
    """
    x = np.asarray(x, dtype=np.float64)
    delta = _vector(delta, "delta")
    if x.ndim != 2 or x.shape[0] != delta.shape[0]:
        raise ValueError(f"expected x of shape (L, D) with L = {delta.shape[0]}, got {x.shape}")
    A = real_scalar("A", A)  # Mamba-2: one scalar per head
    return delta[:, None] * x, delta * A


def segsum_naive(a):
    """S[t, s] = cumsum(a)[t] − cumsum(a)[s] below the diagonal, −inf above. (L,) → (L, L).

    The same sums as :func:`segsum`, taken as a difference: NaN once a cumulative sum is −inf,
    and inaccurate when the cumulative sums are large and the segment short. Kept to show why.
    """
    a = _vector(a)
    cs = np.cumsum(a)
    with np.errstate(invalid="ignore"):  # −inf − (−inf): the NaN is the point of this function
        S = cs[:, None] - cs[None, :]
    S[np.triu_indices(len(a), k=1)] = -np.inf
    return S


def segsum(a):
    """S[t, s] = a[s+1] + … + a[t] for s ≤ t (0 on the diagonal), −inf above. (L,) → (L, L).

    Each segment is summed on its own: a column-wise cumsum of the matrix whose entry (t, s) is
    a[t] below the diagonal and 0 elsewhere. exp(S) is then the decay from step s to step t,
    exactly 0 above the diagonal, and never NaN for finite or −inf entries of a.
    """
    a = _vector(a)
    L = len(a)
    strictly_below = np.tril(np.ones((L, L), dtype=bool), k=-1)
    S = np.cumsum(np.where(strictly_below, a[:, None], 0.0), axis=0)
    S[~np.tril(np.ones((L, L), dtype=bool))] = -np.inf
    return S


def semiseparable_matrix(a, B, C):
    """M[t, s] = (C_t · B_s) exp(a_{s+1} + … + a_t) for s ≤ t, 0 above: the SSM as one L×L matrix.

    a (L,); B, C (L, N). Attention's form: (C Bᵀ) is the "scores" matrix, exp(segsum(a)) its mask.
    """
    a = _vector(a)
    B = np.asarray(B, dtype=np.float64)
    C = np.asarray(C, dtype=np.float64)
    if B.shape != C.shape or B.ndim != 2 or B.shape[0] != len(a):
        raise ValueError(
            f"expected B and C of shape (L, N) with L = {len(a)}, got {B.shape}, {C.shape}"
        )
    return (C @ B.T) * np.exp(segsum(a))


def ssd_scan(x, a, B, C, h0=None):
    """The recurrence, one step at a time: (y (L, D), last state (D, N)). The yardstick.

    h_t = exp(a_t) h_{t−1} + x_t ⊗ B_t, y_t = h_t C_t, from h_{−1} = h0 (zeros by default).
    """
    x, a, B, C = _ssd_args(x, a, B, C)
    L, D = x.shape
    h = _initial_state(h0, D, B.shape[1]).copy()
    y = np.empty((L, D))
    for t in range(L):
        h = np.exp(a[t]) * h + np.outer(x[t], B[t])  # (D, N)
        y[t] = h @ C[t]
    return y, h


def ssd_quadratic(x, a, B, C):
    """y = M x with M the L×L :func:`semiseparable_matrix`: the "attention" form, O(L²)."""
    x, a, B, C = _ssd_args(x, a, B, C)
    return semiseparable_matrix(a, B, C) @ x


def _chunked(v, chunk_size):
    """(L, ...) → (n_chunks, Q, ...), padding the end with zeros. A padded step has a = 0 (decay
    1) and x = 0, so it leaves the state unchanged and its outputs are dropped."""
    L = v.shape[0]
    n_chunks = -(-L // chunk_size)
    pad = n_chunks * chunk_size - L
    v = np.concatenate([v, np.zeros((pad, *v.shape[1:]))]) if pad else v
    return v.reshape(n_chunks, chunk_size, *v.shape[1:])


def intra_chunk_outputs(x, a, B, C):
    """Step 1, the diagonal blocks: each chunk's output from its own inputs, from a zero state.

    x (n_chunks, Q, D); a (n_chunks, Q); B, C (n_chunks, Q, N) → (n_chunks, Q, D). Per chunk a
    Q×Q masked product, (C Bᵀ ∘ exp(segsum(a))) x: two matrix multiplications.
    """
    return np.stack([semiseparable_matrix(a[c], B[c], C[c]) @ x[c] for c in range(len(x))])


def chunk_states(x, a, B):
    """Step 2: the state at the end of each chunk, had the chunk started from zero.

    x (n_chunks, Q, D); a (n_chunks, Q); B (n_chunks, Q, N) → (n_chunks, D, N):
    Σ_s exp(a_{s+1} + … + a_{Q−1}) x_s ⊗ B_s, the decays being the last row of segsum(a).
    """
    decay = np.stack([np.exp(segsum(a[c])[-1]) for c in range(len(a))])  # (n_chunks, Q)
    return (decay[:, :, None] * x).transpose(0, 2, 1) @ B  # a batched matrix product


def pass_states(states, a, h0=None):
    """Step 3: the true state at the start of each chunk, by a scan over chunks (a short loop).

    states (n_chunks, D, N) from :func:`chunk_states`; a (n_chunks, Q). Returns (the state at
    the start of every chunk (n_chunks, D, N), the final state (D, N)).
    """
    n_chunks, D, N = states.shape
    h = _initial_state(h0, D, N)
    starts = np.empty_like(states)
    for c in range(n_chunks):
        starts[c] = h
        h = np.exp(a[c].sum()) * h + states[c]
    return starts, h


def state_outputs(starts, a, C):
    """Step 4: what each chunk's incoming state adds to its outputs.

    starts (n_chunks, D, N); a (n_chunks, Q); C (n_chunks, Q, N) → (n_chunks, Q, D):
    y_t += exp(a_{t0} + … + a_t) · h_start C_t, the decay from the chunk's start to step t.
    """
    decay = np.exp(np.cumsum(a, axis=1))  # (n_chunks, Q): within one chunk, no cancellation
    return decay[:, :, None] * (C @ starts.transpose(0, 2, 1))  # a batched matrix product


def ssd_chunked(x, a, B, C, chunk_size, h0=None):
    """The SSD algorithm: (y (L, D), last state (D, N)) in four steps over chunks of ``chunk_size``.

    Any L (the last chunk is padded). Equal to :func:`ssd_scan` and :func:`ssd_quadratic`.
    """
    x, a, B, C = _ssd_args(x, a, B, C)
    Q = positive_int("chunk_size", chunk_size)
    L, D = x.shape
    xc, ac, Bc, Cc = (_chunked(v, Q) for v in (x, a, B, C))
    y_diag = intra_chunk_outputs(xc, ac, Bc, Cc)  # 1
    states = chunk_states(xc, ac, Bc)  # 2
    starts, last = pass_states(states, ac, h0)  # 3
    y_off = state_outputs(starts, ac, Cc)  # 4
    return (y_diag + y_off).reshape(-1, D)[:L], last
