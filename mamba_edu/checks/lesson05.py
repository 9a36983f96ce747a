"""Lesson 05 — state-space models: ``zoh``, ``vandermonde_kernel``, ``fft_causal_conv``."""

from __future__ import annotations

import numpy as np

from .exercise import Case, Exercise, declare, make_check, random_cases, rng


def _ssm():
    from mamba_edu import ssm  # imports scipy: loaded only when a lesson-05 check runs

    return ssm


def _complex_normal(gen, shape):
    return gen.standard_normal(shape) + 1j * gen.standard_normal(shape)


def _zoh_cases() -> list[Case]:
    ssm = _ssm()

    def make(gen, shape):
        (N,) = shape
        lam = -gen.uniform(0.1, 2, N) + 1j * gen.uniform(-5, 5, N)
        return lam, _complex_normal(gen, N), float(gen.uniform(0.01, 0.5))

    return random_cases(make, [(4,), (1,), (16,)]) + [
        Case("S4D-Lin eigenvalues, dt = 0.1", (ssm.s4d_lin(8), np.ones(8, dtype=complex), 0.1)),
        Case(
            "real eigenvalues, tiny dt = 1e-4",
            (ssm.s4d_real(4).astype(complex), np.ones(4, dtype=complex), 1e-4),
        ),
    ]


def _vandermonde_kernel_cases() -> list[Case]:
    def make(gen, shape):
        N, L = shape
        Ab = gen.uniform(0.5, 0.99, N) * np.exp(1j * gen.uniform(-np.pi, np.pi, N))
        return Ab, _complex_normal(gen, N), _complex_normal(gen, N), L

    ones = np.ones(3, dtype=complex)
    return random_cases(make, [(4, 16), (1, 5), (8, 33)]) + [
        Case("L = 1 (the kernel is C·B̄)", make(rng(11), (3, 1))),
        Case("Ā = 0 (only the first tap survives)", (np.zeros(3, dtype=complex), ones, ones, 4)),
    ]


def _fft_causal_conv_cases() -> list[Case]:
    def make(gen, shape):
        (L,) = shape
        return gen.standard_normal(L), gen.standard_normal(L) * 0.9 ** np.arange(L)

    return random_cases(make, [(16,), (7,), (100,)]) + [
        Case("L = 1", (np.array([2.0]), np.array([3.0]))),
        Case("an impulse gives back K", (np.eye(1, 9, 0)[0], np.arange(1.0, 10.0))),
    ]


EXERCISES = declare(
    [
        Exercise(
            "zoh",
            """Lesson 05, exercise 1: ``fn(lam, B, dt)`` → (Ā, B̄) by zero-order hold for a
            diagonal A. lam and B have shape (N,), complex; compared with
            ``ssm.discretize(lam, B, dt, "zoh")``.
            """,
            _zoh_cases,
            reference=lambda lam, B, dt: _ssm().discretize(lam, B, dt, "zoh"),
            rtol=1e-9,
            atol=1e-12,
        ),
        Exercise(
            "vandermonde_kernel",
            """Lesson 05, exercise 2: ``fn(Ab, Bb, C, L)`` → K of shape (L,),
            K_l = Σ_n C_n B̄_n Ā_n^l. Compared with :func:`mamba_edu.ssm.ssm_kernel` (diagonal Ā).
            """,
            _vandermonde_kernel_cases,
            reference=lambda Ab, Bb, C, L: _ssm().ssm_kernel(Ab, Bb, C, L),
            rtol=1e-9,
            atol=1e-12,
        ),
        Exercise(
            "fft_causal_conv",
            """Lesson 05, exercise 3: ``fn(u, K)`` → the causal convolution y_k = Σ_{j≤k} K_j u_{k−j}
            via the FFT. u and K have shape (L,), real. Compared with
            :func:`mamba_edu.ssm.causal_conv` (the direct sum), so a circular convolution (FFT
            without zero-padding) is caught.
            """,
            _fft_causal_conv_cases,
            reference=lambda u, K: _ssm().causal_conv(u, K),
            rtol=1e-8,
            atol=1e-10,
        ),
    ]
)

check_zoh = make_check(EXERCISES["zoh"])
check_vandermonde_kernel = make_check(EXERCISES["vandermonde_kernel"])
check_fft_causal_conv = make_check(EXERCISES["fft_causal_conv"])
