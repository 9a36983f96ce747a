"""State-space models: the continuous view of a linear recurrence (S4, S4D; lessons 05 onward).

A continuous-time SSM maps an input signal x(t) to an output y(t) through a state h(t) of size N:

    h'(t) = A h(t) + B x(t),        y(t) = C h(t)                       (Gu & Dao, 2023, eq. 1)

(S4 writes the state x and the input u; the course follows the Mamba paper's h and x.) Sampling
with step Δ turns it into the linear recurrence of lesson 02,

    h_k = Ā h_{k−1} + B̄ x_k,        y_k = C h_k,

where (Ā, B̄) depend on the *discretization rule*. Unrolled, y = K * x is a causal convolution with
the kernel K_l = C Ā^l B̄ (l = 0 … L−1): one model, two ways to compute it.

Shapes: A is (N, N) for a dense SSM or (N,) for a diagonal one (its eigenvalues); B is (N,) and C is
(N,) for one input channel. Diagonal A may be complex; the course then uses the real part of the
output (S4D keeps one of each conjugate pair and doubles the real part). The state size is
``d_state`` in signatures. Layout: single-sequence, single-channel NumPy references; a sequence is
(L,), time along its only axis.

Where papers and the official code disagree, the code is followed and the docstring says so.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from numpy.polynomial import legendre

from mamba_edu import contract

__all__ = [
    "discretize",
    "hippo_legs",
    "hippo_legs_normal",
    "hippo_legs_online",
    "legendre_reconstruct",
    "s4d_real",
    "s4d_lin",
    "s4d_inv",
    "ssm_kernel",
    "causal_conv",
    "fft_conv",
    "ssm_recurrence",
]

METHODS = ("euler", "bilinear", "zoh")


def _numeric(value, name: str) -> np.ndarray:
    """``value`` as a float or complex array (diagonal SSMs are complex, so contract.float_array,
    which is for real arrays, does not fit); integer, boolean and object arrays are refused."""
    array = np.asarray(value)
    if array.dtype.kind not in "fc":
        raise TypeError(f"expected {name} to be a float or complex array, got dtype {array.dtype}")
    return array


def _sequence(value, name: str) -> np.ndarray:
    """A sequence of shape (L,) with L >= 1, float or complex."""
    array = _numeric(value, name)
    if array.ndim != 1 or array.shape[0] < 1:
        raise ValueError(f"expected {name} of shape (L,) with L >= 1, got {array.shape}")
    return array


def _as_ssm(A, B):
    A = _numeric(A, "A")
    B = _numeric(B, "B")
    if A.ndim == 2:
        N = A.shape[0]
        if A.shape != (N, N):
            raise ValueError(f"expected a square A of shape (N, N), got {A.shape}")
    elif A.ndim == 1:
        N = A.shape[0]
    else:
        raise ValueError(f"expected A of shape (N, N) (dense) or (N,) (diagonal), got {A.shape}")
    if B.shape != (N,):
        raise ValueError(f"expected B of shape (N,) = ({N},), got {B.shape}")
    return A, B, N


def discretize(A, B, delta: float, method: str = "zoh"):
    """Return (Ā, B̄) for the step Δ = ``delta`` with the rule ``method``: ``"euler"``,
    ``"bilinear"`` or ``"zoh"``. A is (N, N) dense or (N,) diagonal, B (N,); Ā and B̄ keep those
    shapes.

    * Euler (forward):  Ā = I + ΔA,                    B̄ = ΔB
    * bilinear (Tustin): Ā = (I − ΔA/2)⁻¹(I + ΔA/2),    B̄ = (I − ΔA/2)⁻¹ ΔB      (S4)
    * zero-order hold:  Ā = exp(ΔA),                   B̄ = (ΔA)⁻¹(exp(ΔA) − I) ΔB  (S4D, Mamba's A)

    Mamba itself uses ZOH for A but the Euler rule B̄ = ΔB for B (the official code does this;
    see ``mamba_edu.selective``). A diagonal A (shape (N,)) gives a diagonal Ā (shape (N,)).
    """
    A, B, N = _as_ssm(A, B)
    if method not in METHODS:
        raise ValueError(f"expected method one of {METHODS}, got {method!r}")
    dt = contract.real_scalar("delta", delta)
    if not np.isfinite(dt) or dt <= 0:
        raise ValueError(f"expected a positive step delta, got {delta}")
    dtype = np.result_type(A, B, np.float64)
    if A.ndim == 1:
        dA = dt * A.astype(dtype)
        if method == "euler":
            return 1 + dA, dt * B.astype(dtype)
        if method == "bilinear":
            return (1 + dA / 2) / (1 - dA / 2), dt * B / (1 - dA / 2)
        Ab = np.exp(dA)
        # (exp(ΔA) − 1)/(ΔA) · ΔB, with the limit ΔB where ΔA = 0
        safe = np.where(dA == 0, 1, dA)
        factor = np.where(dA == 0, 1, (Ab - 1) / safe)
        return Ab, factor * dt * B
    eye = np.eye(N, dtype=dtype)
    dA = dt * A.astype(dtype)
    if method == "euler":
        return eye + dA, dt * B.astype(dtype)
    if method == "bilinear":
        left = eye - dA / 2
        return np.linalg.solve(left, eye + dA / 2), np.linalg.solve(left, dt * B)
    Ab = scipy.linalg.expm(dA)
    return Ab, np.linalg.solve(dA, (Ab - eye) @ (dt * B))


def hippo_legs(d_state: int):
    """HiPPO-LegS matrices A (N, N) and B (N,), N = ``d_state`` (Gu et al., 2020, the scaled
    Legendre measure).

    A_nk = −√(2n+1)·√(2k+1) for n > k,  −(n+1) for n = k,  0 for n < k;   B_n = √(2n+1).
    With these, h'(t) = A h(t)/t + B x(t)/t keeps h(t) the Legendre coefficients of x's history.
    """
    n = np.arange(contract.positive_int("d_state", d_state))
    r = np.sqrt(2 * n + 1)
    A = -np.tril(np.outer(r, r), k=-1) - np.diag(n + 1.0)
    return A, r.copy()


def hippo_legs_normal(d_state: int):
    """The normal part of HiPPO-LegS and its low-rank term: (A_normal (N, N), P (N,)), with
    A = A_normal − P Pᵀ for A from :func:`hippo_legs` (S4's "normal plus low-rank" form,
    Gu, Goel & Ré 2022, Section 3; P_n = √(n + ½)).

    A_normal = −½ I + S with S skew-symmetric (S_nk = −½√(2n+1)√(2k+1) below the diagonal,
    +½√(2n+1)√(2k+1) above): a normal matrix whose eigenvalues all have real part −½. S4
    diagonalizes this part; S4D-Lin and S4D-Inv approximate its eigenvalues' imaginary parts.
    """
    A, _ = hippo_legs(d_state)
    P = np.sqrt(np.arange(A.shape[0]) + 0.5)
    return A + np.outer(P, P), P


def hippo_legs_online(f, d_state: int) -> np.ndarray:
    """Compress the history of a sampled signal f_1 … f_L into N Legendre coefficients, online.

    HiPPO-LegS is the time-varying ODE c'(t) = A c(t)/t + B f(t)/t (A, B from :func:`hippo_legs`);
    its bilinear discretization at step k (t = kΔ, so Δ cancels: LegS has no timescale) is

        c_k = (I − A/(2k))⁻¹ [(I + A/(2k)) c_{k−1} + B f_k / k].

    f has shape (L,), real. Returns c of shape (L, N), N = ``d_state``: row k summarizes
    f_1 … f_k, all of it, at every k.
    """
    f = _sequence(contract.float_array("f", f), "f")  # real: the Legendre coefficients are real
    A, B = hippo_legs(d_state)
    N = A.shape[0]
    eye = np.eye(N)
    c = np.zeros(N)
    out = np.empty((f.shape[0], N))
    for k, fk in enumerate(f, start=1):
        left = eye - A / (2 * k)  # lower triangular: a triangular solve is enough
        c = scipy.linalg.solve_triangular(left, (eye + A / (2 * k)) @ c + B * fk / k, lower=True)
        out[k - 1] = c
    return out


def legendre_reconstruct(c, M: int) -> np.ndarray:
    """The history the coefficients c (N,) describe, at M evenly spaced points from oldest to
    newest: shape (M,).

    f(s) ≈ Σ_n c_n √(2n+1) P_n(2s/t − 1) for 0 ≤ s ≤ t (P_n: Legendre polynomials).
    """
    c = _numeric(c, "c")
    if c.ndim != 1 or c.shape[0] < 1:
        raise ValueError(f"expected coefficients c of shape (N,) with N >= 1, got {c.shape}")
    c = contract.float_array("c", c)
    s = np.linspace(-1.0, 1.0, contract.positive_int("M", M))
    return legendre.legval(s, c * np.sqrt(2 * np.arange(c.shape[0]) + 1))


def s4d_real(d_state: int) -> np.ndarray:
    """S4D-Real: A_n = −(n+1), n = 0 … N−1 (real, as Mamba's A_log = log(1 … N)); shape (N,)."""
    return -(np.arange(contract.positive_int("d_state", d_state)) + 1.0)


def s4d_lin(d_state: int) -> np.ndarray:
    """S4D-Lin: A_n = −1/2 + iπn (the official code's form; the Mamba paper writes it without π);
    shape (N,), complex."""
    n = np.arange(contract.positive_int("d_state", d_state))
    return -0.5 + 1j * np.pi * n


def s4d_inv(d_state: int) -> np.ndarray:
    """S4D-Inv: A_n = −1/2 + i (N/π)(N/(2n+1) − 1); shape (N,), complex."""
    N = contract.positive_int("d_state", d_state)
    n = np.arange(N)
    return -0.5 + 1j * (N / np.pi) * (N / (2 * n + 1) - 1)


def ssm_kernel(Ab, Bb, C, L: int) -> np.ndarray:
    """The convolution kernel K_l = C Ā^l B̄ for l = 0 … L−1 of a discretized SSM.

    Dense Ā (N, N): built by repeated multiplication. Diagonal Ā (N,): the Vandermonde form
    K_l = Σ_n C_n B̄_n Ā_n^l, one matrix product (S4D). B̄ and C have shape (N,). Returns shape
    (L,), complex if any input is.
    """
    Ab, Bb, N = _as_ssm(Ab, Bb)
    C = _numeric(C, "C")
    if C.shape != (N,):
        raise ValueError(f"expected C of shape (N,) = ({N},), got {C.shape}")
    L = contract.positive_int("L", L)
    if Ab.ndim == 1:
        powers = Ab[:, None] ** np.arange(L)[None, :]  # (N, L): the Vandermonde matrix
        return (C * Bb) @ powers
    K = np.empty(L, dtype=np.result_type(Ab, Bb, C))
    v = Bb.astype(K.dtype)
    for l in range(L):
        K[l] = C @ v
        v = Ab @ v
    return K


def ssm_recurrence(Ab, Bb, C, x) -> np.ndarray:
    """Run the discretized SSM step by step on one input sequence x of shape (L,):
    h_k = Ā h_{k−1} + B̄ x_k, y_k = C h_k. B̄ and C have shape (N,); returns y (L,)."""
    Ab, Bb, N = _as_ssm(Ab, Bb)
    C = _numeric(C, "C")
    if C.shape != (N,):
        raise ValueError(f"expected C of shape (N,) = ({N},), got {C.shape}")
    x = _sequence(x, "x")
    h = np.zeros(N, dtype=np.result_type(Ab, Bb, np.float64))
    y = np.empty(x.shape[0], dtype=np.result_type(h, C))
    for k, xk in enumerate(x):
        h = (Ab * h if Ab.ndim == 1 else Ab @ h) + Bb * xk
        y[k] = C @ h
    return y


def _conv_args(x, K):
    x, K = _sequence(x, "x"), _numeric(K, "K")
    if K.shape != x.shape:
        raise ValueError(f"expected x and K of the same shape (L,), got {x.shape} and {K.shape}")
    return x, K


def causal_conv(x, K) -> np.ndarray:
    """y_k = Σ_{j ≤ k} K_j x_{k−j}, directly: O(L²) work. x, K and y have shape (L,)."""
    x, K = _conv_args(x, K)
    return np.convolve(x, K)[: x.shape[0]]


def fft_conv(x, K) -> np.ndarray:
    """The same causal convolution through the FFT: O(L log L). Zero-padding to 2L keeps it causal.
    x, K and y have shape (L,)."""
    x, K = _conv_args(x, K)
    L = x.shape[0]
    n = 2 * L
    if np.iscomplexobj(x) or np.iscomplexobj(K):
        return np.fft.ifft(np.fft.fft(x, n) * np.fft.fft(K, n))[:L]
    return np.fft.irfft(np.fft.rfft(x, n) * np.fft.rfft(K, n), n)[:L]
