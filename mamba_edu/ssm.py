"""State-space models: the continuous view of a linear recurrence (S4, S4D; lessons 05 onward).

A continuous-time SSM maps an input signal u(t) to an output y(t) through a state x(t) of size N:

    x'(t) = A x(t) + B u(t),        y(t) = C x(t)                       (Gu et al., 2022, eq. 1)

Sampling with step Δ turns it into the linear recurrence of lesson 02,

    x_k = Ā x_{k−1} + B̄ u_k,        y_k = C x_k,

where (Ā, B̄) depend on the *discretization rule*. Unrolled, y = K * u is a causal convolution with
the kernel K_l = C Ā^l B̄ (l = 0 … L−1): one model, two ways to compute it.

Shapes: A is (N, N) for a dense SSM or (N,) for a diagonal one (its eigenvalues); B is (N,) and C is
(N,) for one input channel. Diagonal A may be complex; the course then uses the real part of the
output (S4D keeps one of each conjugate pair and doubles the real part).

Where papers and the official code disagree, the code is followed and the docstring says so.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from numpy.polynomial import legendre

__all__ = [
    "discretize",
    "hippo_legs",
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


def _as_ssm(A, B):
    A = np.asarray(A)
    B = np.asarray(B)
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


def discretize(A, B, dt: float, method: str = "zoh"):
    """Return (Ā, B̄) for step ``dt`` with the rule ``method``: ``"euler"``, ``"bilinear"`` or ``"zoh"``.

    * Euler (forward):  Ā = I + ΔA,                    B̄ = ΔB
    * bilinear (Tustin): Ā = (I − ΔA/2)⁻¹(I + ΔA/2),    B̄ = (I − ΔA/2)⁻¹ ΔB      (S4)
    * zero-order hold:  Ā = exp(ΔA),                   B̄ = (ΔA)⁻¹(exp(ΔA) − I) ΔB  (S4D, Mamba's A)

    Mamba itself uses ZOH for A but the Euler rule B̄ = ΔB for B (the official code does this;
    see ``mamba_edu.selective``). A diagonal A (shape (N,)) gives a diagonal Ā (shape (N,)).
    """
    A, B, N = _as_ssm(A, B)
    if method not in METHODS:
        raise ValueError(f"expected method one of {METHODS}, got {method!r}")
    if not np.isfinite(dt) or dt <= 0:
        raise ValueError(f"expected a positive step dt, got {dt}")
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


def hippo_legs(N: int):
    """HiPPO-LegS matrices (A, B) of size N (Gu et al., 2020, the scaled Legendre measure).

    A_nk = −√(2n+1)·√(2k+1) for n > k,  −(n+1) for n = k,  0 for n < k;   B_n = √(2n+1).
    With these, x'(t) = A x(t)/t + B u(t)/t keeps x(t) the Legendre coefficients of u's history.
    """
    if int(N) != N or N < 1:
        raise ValueError(f"expected a positive integer N, got {N}")
    n = np.arange(N)
    r = np.sqrt(2 * n + 1)
    A = -np.tril(np.outer(r, r), k=-1) - np.diag(n + 1.0)
    return A, r.copy()


def hippo_legs_online(f, N: int) -> np.ndarray:
    """Compress the history of a sampled signal f_1 … f_L into N Legendre coefficients, online.

    HiPPO-LegS is the time-varying ODE c'(t) = A c(t)/t + B f(t)/t (A, B from :func:`hippo_legs`);
    its bilinear discretization at step k (t = kΔ, so Δ cancels: LegS has no timescale) is

        c_k = (I − A/(2k))⁻¹ [(I + A/(2k)) c_{k−1} + B f_k / k].

    Returns c of shape (L, N): row k summarizes f_1 … f_k, all of it, at every k.
    """
    f = np.asarray(f, dtype=np.float64)
    if f.ndim != 1 or f.shape[0] < 1:
        raise ValueError(f"expected a signal f of shape (L,) with L >= 1, got {f.shape}")
    A, B = hippo_legs(N)
    eye = np.eye(N)
    c = np.zeros(N)
    out = np.empty((f.shape[0], N))
    for k, fk in enumerate(f, start=1):
        left = eye - A / (2 * k)  # lower triangular: a triangular solve is enough
        c = scipy.linalg.solve_triangular(left, (eye + A / (2 * k)) @ c + B * fk / k, lower=True)
        out[k - 1] = c
    return out


def legendre_reconstruct(c, M: int) -> np.ndarray:
    """The history the coefficients c (N,) describe, at M evenly spaced points from oldest to newest.

    f(s) ≈ Σ_n c_n √(2n+1) P_n(2s/t − 1) for 0 ≤ s ≤ t (P_n: Legendre polynomials).
    """
    c = np.asarray(c, dtype=np.float64)
    if c.ndim != 1:
        raise ValueError(f"expected coefficients c of shape (N,), got {c.shape}")
    x = np.linspace(-1.0, 1.0, M)
    return legendre.legval(x, c * np.sqrt(2 * np.arange(c.shape[0]) + 1))


def s4d_real(N: int) -> np.ndarray:
    """S4D-Real: A_n = −(n+1), n = 0 … N−1 (real, as Mamba's A_log = log(1 … N))."""
    return -(np.arange(N) + 1.0)


def s4d_lin(N: int) -> np.ndarray:
    """S4D-Lin: A_n = −1/2 + iπn (the official code's form; the Mamba paper writes it without π)."""
    n = np.arange(N)
    return -0.5 + 1j * np.pi * n


def s4d_inv(N: int) -> np.ndarray:
    """S4D-Inv: A_n = −1/2 + i (N/π)(N/(2n+1) − 1)."""
    n = np.arange(N)
    return -0.5 + 1j * (N / np.pi) * (N / (2 * n + 1) - 1)


def ssm_kernel(Ab, Bb, C, L: int) -> np.ndarray:
    """The convolution kernel K_l = C Ā^l B̄ for l = 0 … L−1 of a discretized SSM.

    Dense Ā (N, N): built by repeated multiplication. Diagonal Ā (N,): the Vandermonde form
    K_l = Σ_n C_n B̄_n Ā_n^l, one matrix product (S4D). Returns shape (L,), complex if any input is.
    """
    Ab = np.asarray(Ab)
    Bb = np.asarray(Bb)
    C = np.asarray(C)
    Ab, Bb, N = _as_ssm(Ab, Bb)
    if C.shape != (N,):
        raise ValueError(f"expected C of shape (N,) = ({N},), got {C.shape}")
    if L < 1:
        raise ValueError(f"expected L >= 1, got {L}")
    if Ab.ndim == 1:
        powers = Ab[:, None] ** np.arange(L)[None, :]  # (N, L): the Vandermonde matrix
        return (C * Bb) @ powers
    K = np.empty(L, dtype=np.result_type(Ab, Bb, C))
    v = Bb.astype(K.dtype)
    for l in range(L):
        K[l] = C @ v
        v = Ab @ v
    return K


def ssm_recurrence(Ab, Bb, C, u) -> np.ndarray:
    """Run the discretized SSM step by step on u of shape (L,): y_k = C x_k, x_k = Ā x_{k−1} + B̄ u_k."""
    Ab, Bb, N = _as_ssm(Ab, Bb)
    u = np.asarray(u)
    if u.ndim != 1:
        raise ValueError(f"expected u of shape (L,), got {u.shape}")
    x = np.zeros(N, dtype=np.result_type(Ab, Bb, np.float64))
    y = np.empty(u.shape[0], dtype=np.result_type(x, C))
    for k, uk in enumerate(u):
        x = (Ab * x if Ab.ndim == 1 else Ab @ x) + Bb * uk
        y[k] = C @ x
    return y


def causal_conv(u, K) -> np.ndarray:
    """y_k = Σ_{j ≤ k} K_j u_{k−j}, directly: O(L²) work. u and K have shape (L,)."""
    u, K = np.asarray(u), np.asarray(K)
    if u.ndim != 1 or K.shape != u.shape:
        raise ValueError(f"expected u and K of the same shape (L,), got {u.shape} and {K.shape}")
    return np.convolve(u, K)[: u.shape[0]]


def fft_conv(u, K) -> np.ndarray:
    """The same causal convolution through the FFT: O(L log L). Zero-padding to 2L keeps it causal."""
    u, K = np.asarray(u), np.asarray(K)
    if u.ndim != 1 or K.shape != u.shape:
        raise ValueError(f"expected u and K of the same shape (L,), got {u.shape} and {K.shape}")
    L = u.shape[0]
    n = 2 * L
    if np.iscomplexobj(u) or np.iscomplexobj(K):
        return np.fft.ifft(np.fft.fft(u, n) * np.fft.fft(K, n))[:L]
    return np.fft.irfft(np.fft.rfft(u, n) * np.fft.rfft(K, n), n)[:L]
