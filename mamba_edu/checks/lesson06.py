"""Lesson 06 — selectivity: ``selective_scan_loop``, ``influence``, ``s6_one_state``."""

from __future__ import annotations

import numpy as np

from .exercise import Case, Exercise, declare, make_check, random_cases, rng


def _selective():
    from mamba_edu import selective  # imports torch: loaded only when a lesson-06 check runs

    return selective


def _selective_scan_loop_reference(x, delta, A, B, C):
    # one sequence in the lesson's layout, (D, L) and (N, L), is a batch of one for the reference
    return _selective().selective_scan(x[None], delta[None], A, B[None], C[None])[0]


def _selective_scan_loop_cases() -> list[Case]:
    def make(gen, shape):
        D, N, L = shape
        return (
            gen.standard_normal((D, L)),
            gen.uniform(1e-3, 0.5, (D, L)),
            -gen.uniform(0.5, 4.0, (D, N)),
            gen.standard_normal((N, L)),
            gen.standard_normal((N, L)),
        )

    gen = rng(66)
    big_steps = (
        gen.standard_normal((2, 8)),
        np.full((2, 8), 50.0),  # Δ so large that exp(ΔA) ≈ 0: every step resets the state
        -np.ones((2, 3)),
        gen.standard_normal((3, 8)),
        gen.standard_normal((3, 8)),
    )
    return random_cases(make, [(3, 4, 12), (1, 1, 5), (5, 16, 30)]) + [
        Case("one step (L = 1)", make(rng(67), (2, 3, 1))),
        Case("huge Δ: each step forgets everything before it", big_steps),
    ]


def _influence_cases() -> list[Case]:
    def make(gen, shape):
        (L,) = shape
        return gen.uniform(0.01, 1.0, L), float(-gen.uniform(0.2, 3.0))

    return random_cases(make, [(6,), (1,), (25,)]) + [
        Case(
            "a reset: one huge Δ in the middle", (np.array([0.1, 0.1, 0.1, 30.0, 0.1, 0.1]), -1.0)
        ),
        Case("an ignored step: Δ = 0 at t = 2", (np.array([0.5, 0.5, 0.0, 0.5]), -2.0)),
    ]


def _s6_one_state_reference(x, z):
    # the S6 recurrence itself with N = 1, A = −1, B = 1 and zero-order hold for both Ā and B̄,
    # written from the ZOH formulas (not from Theorem 1's gated form, which the lesson checks)
    delta = np.logaddexp(0.0, z)
    A_bar = np.exp(-delta)
    B_bar = np.expm1(-delta) / -1.0  # (ΔA)⁻¹(e^{ΔA} − 1)·ΔB with A = −1, B = 1
    h, out = 0.0, np.empty(len(x))
    for t in range(len(x)):
        h = A_bar[t] * h + B_bar[t] * x[t]
        out[t] = h
    return out


def _s6_one_state_cases() -> list[Case]:
    def make(gen, shape):
        (L,) = shape
        return gen.standard_normal(L), 2.0 * gen.standard_normal(L)

    return random_cases(make, [(12,), (1,), (60,)], seed=70) + [
        Case("huge z: every step resets onto x_t", (np.arange(1.0, 6.0), np.full(5, 40.0))),
        Case("very negative z: the input is ignored", (np.arange(1.0, 6.0), np.full(5, -40.0))),
    ]


EXERCISES = declare(
    [
        Exercise(
            "selective_scan_loop",
            """Lesson 06, exercise 1: ``fn(u, delta, A, B, C)`` → y of shape (D, L), one sequence.

            u, delta: (D, L) (delta already positive, after softplus); A: (D, N); B, C: (N, L).
            Compared with :func:`mamba_edu.selective.selective_scan` on a batch of one.
            """,
            _selective_scan_loop_cases,
            reference=_selective_scan_loop_reference,
            rtol=1e-9,
            atol=1e-12,
        ),
        Exercise(
            "influence",
            """Lesson 06, exercise 2: ``fn(delta, a)`` → M of shape (L, L), the weight of input s in
            the state at t. Compared with :func:`mamba_edu.selective.influence`.
            """,
            _influence_cases,
            reference=lambda delta, a: _selective().influence(delta, a),
            rtol=1e-9,
            atol=1e-12,
        ),
        Exercise(
            "s6_one_state",
            """Lesson 06, exercise 3: ``fn(x, z)`` → h of shape (L,): S6 with N = 1, A = −1, B = 1,
            Δ_t = softplus(z_t), zero-order hold for Ā and B̄ (Mamba's Theorem 1 setting).

            x, z: (L,) real. Compared with the recurrence written from the ZOH formulas.
            """,
            _s6_one_state_cases,
            reference=_s6_one_state_reference,
            rtol=1e-9,
            atol=1e-12,
            hint="ZOH gives B̄ = 1 − e^{−Δ} here, not the Euler Δ",
        ),
    ]
)

check_selective_scan_loop = make_check(EXERCISES["selective_scan_loop"])
check_influence = make_check(EXERCISES["influence"])
check_s6_one_state = make_check(EXERCISES["s6_one_state"])
