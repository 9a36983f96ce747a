"""Lesson 03 — parallel scan: ``combine``, ``associativity_gap``, ``hillis_steele``, ``chunked_scan``."""

from __future__ import annotations

import numpy as np

from mamba_edu import scan

from .exercise import Case, Exercise, declare, make_check, random_cases, rng


def _affine_pair(gen, shape, complex_=False):
    a = gen.uniform(-1.0, 1.0, shape)
    b = gen.standard_normal(shape)
    if complex_:
        a = a * np.exp(1j * gen.uniform(-np.pi, np.pi, shape))
        b = b + 1j * gen.standard_normal(shape)
    return a, b


def _complex_a_real_b(gen, shape):
    # an array allocated like the real b (np.empty_like(b)) would drop h's imaginary part
    a, _ = _affine_pair(gen, shape, complex_=True)
    return a, gen.standard_normal(shape)


def _combine_cases() -> list[Case]:
    def case(name, seed, shape, complex_=False):
        gen = rng(seed)
        return Case(name, (_affine_pair(gen, shape, complex_), _affine_pair(gen, shape, complex_)))

    return [
        case("random (5,)", 0, (5,)),
        case("random (3, 4)", 1, (3, 4)),
        case("complex a and b", 2, (6,), complex_=True),
        Case("plain numbers: (2, 3) then (5, 7)", ((2.0, 3.0), (5.0, 7.0))),
        Case(
            "the identity (1, 0) first",
            ((np.ones(3), np.zeros(3)), (np.full(3, 0.5), np.arange(3.0))),
        ),
    ]


def _average_op(x, y):
    """Not associative: the average of the two pairs."""
    return (x[0] + y[0]) / 2, (x[1] + y[1]) / 2


def _associativity_gap_cases() -> list[Case]:
    def triple(seed, shape, complex_=False):
        gen = rng(seed)
        return tuple(_affine_pair(gen, shape, complex_) for _ in range(3))

    return [
        Case("the scan operator, random (8,)", (scan.combine, *triple(0, (8,)))),
        Case("the scan operator, complex (4, 3)", (scan.combine, *triple(1, (4, 3), True))),
        Case("averaging (not associative)", (_average_op, *triple(2, (6,)))),
        Case("averaging, plain numbers", (_average_op, (1.0, 0.0), (3.0, 4.0), (5.0, 8.0))),
    ]


def _hillis_steele_cases() -> list[Case]:
    return random_cases(_affine_pair, [(8,), (13,), (2, 16), (3, 37)]) + [
        Case("L = 1", (np.array([0.5]), np.array([2.0]))),
        Case("L = 2", (np.array([0.5, 0.5]), np.array([2.0, 1.0]))),
        Case("complex a (an oscillating decay)", _affine_pair(rng(9), (2, 11), True)),
        Case("complex a, real b (h must come back complex)", _complex_a_real_b(rng(10), (2, 9))),
        Case("a = 1 (a running sum)", (np.ones(10), np.arange(10.0))),
    ]


def _chunked_scan_cases() -> list[Case]:
    return [
        Case("L = 12, chunk = 4", (*_affine_pair(rng(0), (12,)), 4)),
        Case("L = 13, chunk = 4 (a short last chunk)", (*_affine_pair(rng(1), (13,)), 4)),
        Case("(3, 20), chunk = 6", (*_affine_pair(rng(2), (3, 20)), 6)),
        Case("chunk = 1", (*_affine_pair(rng(3), (7,)), 1)),
        Case("chunk longer than L", (*_affine_pair(rng(4), (5,)), 8)),
        Case("complex a", (*_affine_pair(rng(5), (2, 9), True), 4)),
        Case("complex a, real b (h must come back complex)", (*_complex_a_real_b(rng(6), (7,)), 3)),
    ]


EXERCISES = declare(
    [
        Exercise(
            "combine",
            """Lesson 03, exercise 1: ``fn(left, right)`` with left = (a1, b1), right = (a2, b2)
            returns the composition "left, then right": (a1·a2, a2·b1 + b2). The entries may be
            numbers or arrays, real or complex. Compared with :func:`mamba_edu.scan.combine`.
            """,
            _combine_cases,
            reference=lambda left, right: scan.combine(left, right),
        ),
        Exercise(
            "associativity_gap",
            """Lesson 03, exercise 2: ``fn(op, x, y, z)`` returns the largest absolute difference,
            over both components and every element, between op(op(x, y), z) and op(x, op(y, z)),
            as a float. Tried with the scan operator (gap ≈ 1e-16) and with a non-associative one
            (a large gap). Compared with :func:`mamba_edu.scan.associativity_gap`.
            """,
            _associativity_gap_cases,
            reference=scan.associativity_gap,
            rtol=1e-6,
        ),
        Exercise(
            "hillis_steele",
            """Lesson 03, exercise 3: ``fn(a, b)`` returns h (same shape as a, b: (..., L)) by
            recursive doubling. ``a`` and ``b`` may be complex; h keeps the dtype of a·b (complex
            when either is). Compared with :func:`mamba_edu.scan.sequential_scan`: the same h, any
            bracketing.
            """,
            _hillis_steele_cases,
            reference=scan.sequential_scan,
            rtol=1e-10,
            atol=1e-12,
        ),
        Exercise(
            "chunked_scan",
            """Lesson 03, exercise 4: ``fn(a, b, chunk)`` returns h (shape (..., L)) by scanning
            chunks of ``chunk`` steps and carrying the state between them. ``a`` and ``b`` may be
            complex; h keeps the dtype of a·b (complex when either is). Compared with
            :func:`mamba_edu.scan.sequential_scan`, on lengths that are and are not multiples of
            ``chunk``.
            """,
            _chunked_scan_cases,
            reference=lambda a, b, chunk: scan.sequential_scan(a, b),
            rtol=1e-10,
            atol=1e-12,
        ),
    ]
)

check_combine = make_check(EXERCISES["combine"])
check_associativity_gap = make_check(EXERCISES["associativity_gap"])
check_hillis_steele = make_check(EXERCISES["hillis_steele"])
check_chunked_scan = make_check(EXERCISES["chunked_scan"])
