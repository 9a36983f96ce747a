"""Lesson 00 — orientation: the exercises ``running_state`` and ``causal_attention``."""

from __future__ import annotations

import numpy as np

from mamba_edu import attention, scan

from .exercise import Case, Exercise, declare, make_check, random_cases, rng


def _running_state_reference(x, a):
    # the lesson's h_t = a·h_{t−1} + x_t is the scan with a constant a, in the scan's (D, L) layout
    return scan.sequential_scan(np.broadcast_to(a[:, None], x.T.shape), x.T).T


def _running_state_cases() -> list[Case]:
    def make(rng, shape):
        L, D = shape
        return rng.standard_normal((L, D)), rng.uniform(-0.99, 0.99, D)

    return random_cases(make, [(16, 4), (7, 1), (33, 3)]) + [
        Case("L = 1 (a single step)", (np.array([[2.0, -1.0]]), np.array([0.5, 0.9]))),
        Case("a = 0 (no memory: h equals x)", (np.arange(6.0).reshape(3, 2), np.zeros(2))),
        Case("a = 1 (a running sum)", (np.ones((5, 2)), np.ones(2))),
    ]


def _causal_attention_cases() -> list[Case]:
    def make(rng, shape):
        L, d = shape
        return tuple(rng.standard_normal((L, d)) for _ in range(3))

    big = rng(7).standard_normal((6, 4)) * 60.0
    return random_cases(make, [(8, 4), (5, 2), (17, 8)]) + [
        Case("L = 1 (one token attends only to itself)", make(rng(3), (1, 4))),
        Case(
            "large scores (exp would overflow)", (big, big.copy(), rng(8).standard_normal((6, 4)))
        ),
    ]


EXERCISES = declare(
    [
        Exercise(
            "running_state",
            """Lesson 00, exercise 1: ``fn(x, a)`` returns the states h_t = a·h_{t−1} + x_t, h_{−1} = 0.

            ``x`` has shape (L, D), ``a`` shape (D,); the result has shape (L, D). Compared with
            :func:`mamba_edu.scan.sequential_scan`.
            """,
            _running_state_cases,
            reference=_running_state_reference,
        ),
        Exercise(
            "causal_attention",
            """Lesson 00, exercise 2: ``fn(q, k, v)`` is causal softmax attention, (L, d) → (L, d).

            Compared with :func:`mamba_edu.attention.causal_attention`. One case has large scores,
            which overflow ``exp`` unless the row maximum is subtracted first.
            """,
            _causal_attention_cases,
            reference=attention.causal_attention,
        ),
    ]
)

check_running_state = make_check(EXERCISES["running_state"])
check_causal_attention = make_check(EXERCISES["causal_attention"])
