"""Lesson 04 — training linear RNNs (LRU): ``lru_eigenvalues``, ``ring_init``, ``gamma``."""

from __future__ import annotations

import numpy as np

from .exercise import Case, Exercise, declare, make_check, random_cases
from .harness import type_name


def _lru():
    from mamba_edu import lru  # imports torch: loaded only when a lesson-04 check runs

    return lru


def _lru_eigenvalues_cases() -> list[Case]:
    def make(gen, shape):
        return gen.normal(-2, 1.5, shape), gen.normal(-1, 1.5, shape)

    return random_cases(make, [(8,), (1,), (64,)]) + [
        Case("very negative ν^log (|λ| → 1)", (np.full(3, -20.0), np.zeros(3)))
    ]


def _ring_init_cases() -> list[Case]:
    return [
        Case(
            "full disk r ∈ [0, 1), 20,000 samples",
            (20_000, 0.0, 0.999, 2 * np.pi, np.random.default_rng(0)),
        ),
        Case(
            "narrow ring [0.9, 0.999], phase ≤ π/10",
            (20_000, 0.9, 0.999, np.pi / 10, np.random.default_rng(1)),
        ),
        Case("ring [0.5, 0.9]", (20_000, 0.5, 0.9, np.pi, np.random.default_rng(2))),
    ]


def _validate_ring_init(case: Case, got) -> str | None:
    """A sampler has no single right answer: test ranges, then the distributions (KS tests)."""
    from scipy import stats  # heavy: loaded only when this check runs

    N, r_min, r_max, max_phase, _ = case.args
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"your function should return a pair (nu_log, theta_log), got {type_name(got)}."
    nu_log, theta_log = (np.asarray(v) for v in got)
    for name, v in (("nu_log", nu_log), ("theta_log", theta_log)):
        if v.shape != (N,):
            return f"{name} should have shape ({N},), got {v.shape}."
        if v.dtype.kind not in "fiu":
            return f"{name} should hold real numbers, got dtype {v.dtype}."
        if not np.all(np.isfinite(v)):
            return f"{name} has non-finite values (a log of 0 or of a negative number?)."
    r = np.abs(_lru().eigenvalues(nu_log, theta_log))
    if r.min() < r_min - 1e-9 or r.max() > r_max + 1e-9:
        return (
            f"|λ| should lie in [{r_min}, {r_max}], found values from {r.min():.4f} to "
            f"{r.max():.4f}."
        )
    phase = np.exp(theta_log)
    if phase.max() > max_phase + 1e-9:
        return (
            f"the phases exp(θ^log) should lie in [0, {max_phase:.4f}], found up to "
            f"{phase.max():.4f}."
        )
    p_r = stats.kstest(r, lambda x: np.clip((x**2 - r_min**2) / (r_max**2 - r_min**2), 0, 1)).pvalue
    if p_r < 1e-4:
        return (
            f"|λ| is not uniform in area on the ring (KS test p = {p_r:.1e}). Uniform in area "
            f"means |λ|² uniform on [r_min², r_max²]: sampling |λ| itself uniformly is the usual "
            f"slip."
        )
    p_phase = stats.kstest(phase, stats.uniform(0, max_phase).cdf).pvalue
    if p_phase < 1e-4:
        return (
            f"the phases exp(θ^log) are not uniform on [0, max_phase] (KS test p = {p_phase:.1e})."
        )
    return None


def _gamma_cases() -> list[Case]:
    def make(gen, shape):
        return (gen.uniform(0, 0.999, shape) * np.exp(1j * gen.uniform(-np.pi, np.pi, shape)),)

    return random_cases(make, [(8,), (1,), (100,)]) + [
        Case("λ = 0 (γ = 1)", (np.zeros(2, dtype=complex),)),
        Case("|λ| close to 1", (np.array([0.9999j, -0.99999 + 0j]),)),
    ]


EXERCISES = declare(
    [
        Exercise(
            "lru_eigenvalues",
            """Lesson 04, exercise 1: ``fn(nu_log, theta_log)`` → λ = exp(−exp(ν^log) + i·exp(θ^log)),
            shape (N,). Compared with :func:`mamba_edu.lru.eigenvalues`.
            """,
            _lru_eigenvalues_cases,
            reference=lambda nu_log, theta_log: _lru().eigenvalues(nu_log, theta_log),
            rtol=1e-10,
            atol=1e-12,
        ),
        Exercise(
            "ring_init",
            """Lesson 04, exercise 2: ``fn(N, r_min, r_max, max_phase, rng)`` → (ν^log, θ^log) whose
            λ are uniform (in area) on the ring r_min ≤ |λ| ≤ r_max with phases uniform in
            [0, max_phase].

            A sampler has no single right answer, so this check tests the distribution: ranges,
            then Kolmogorov–Smirnov tests of |λ| and arg λ on 20,000 samples.
            """,
            _ring_init_cases,
            validate=_validate_ring_init,
            timeout=20.0,
        ),
        Exercise(
            "gamma",
            """Lesson 04, exercise 3: ``fn(lam)`` → γ = √(1 − |λ|²) for complex λ of shape (N,).
            Compared with :func:`mamba_edu.lru.gamma_normalization`.
            """,
            _gamma_cases,
            reference=lambda lam: _lru().gamma_normalization(lam),
            rtol=1e-9,
            atol=1e-12,
        ),
    ]
)

check_lru_eigenvalues = make_check(EXERCISES["lru_eigenvalues"])
check_ring_init = make_check(EXERCISES["ring_init"])
check_gamma = make_check(EXERCISES["gamma"])
