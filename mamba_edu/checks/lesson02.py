"""Lesson 02 — linear RNNs: ``linear_rnn``, ``convolution_kernel``, ``diagonalize``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .exercise import Case, Exercise, declare, make_check, rng
from .harness import plain, type_name


def _lr():
    from mamba_edu import linear_rnn  # imports torch: loaded only when a lesson-02 check runs

    return linear_rnn


def _linear_system(seed, N, D, P, radius=0.9, *, symmetric=False):
    gen = rng(seed)
    A = gen.standard_normal((N, N))
    if symmetric:
        A = A + A.T  # real eigenvalues only
    A *= radius / np.max(np.abs(np.linalg.eigvals(A)))
    return A, gen.standard_normal((N, D)), gen.standard_normal((P, N))


def _rotation(theta, r=0.95):
    return r * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])


def _linear_rnn_cases() -> list[Case]:
    def case(seed, L, N, D, P, radius=0.9):
        A, B, C = _linear_system(seed, N, D, P, radius)
        return (rng(seed + 1).standard_normal((L, D)), A, B, C)

    impulse = np.zeros((20, 1))
    impulse[0] = 1.0
    return [
        Case("random (L=16, N=5, D=2, P=3)", case(40, 16, 5, 2, 3)),
        Case("L = 1 (y_0 = C B x_0)", case(41, 1, 4, 3, 2)),
        Case("N = D = P = 1 (a scalar recurrence)", case(42, 10, 1, 1, 1)),
        Case(
            "a rotation (complex eigenvalues), impulse input",
            (impulse, _rotation(0.4), np.array([[1.0], [0.0]]), np.array([[1.0, 0.0]])),
        ),
        Case("unstable: spectral radius 1.1 (L=30)", case(43, 30, 4, 2, 2, radius=1.1)),
    ]


def _convolution_kernel_cases() -> list[Case]:
    return [
        Case("random (N=5, D=2, P=3, L=12)", _linear_system(50, 5, 2, 3) + (12,)),
        Case("L = 1 (only K[0] = C B)", _linear_system(51, 4, 3, 2) + (1,)),
        Case("N = D = P = 1", _linear_system(52, 1, 1, 1) + (8,)),
        Case(
            "a rotation (complex eigenvalues)",
            (_rotation(1.0), np.array([[1.0], [0.0]]), np.array([[1.0, 0.0]]), 16),
        ),
    ]


def _diagonalize_cases() -> list[Case]:
    def case(seed, N, D, P, L=20, **kw):
        return _linear_system(seed, N, D, P, **kw) + (rng(seed + 1).standard_normal((L, D)),)

    rotation = (_rotation(0.5), np.array([[1.0], [0.5]]), np.array([[1.0, -1.0]]))
    return [
        Case("real eigenvalues only (symmetric A, N=4)", case(60, 4, 2, 2, symmetric=True)),
        Case("complex eigenvalue pairs (random A, N=6)", case(61, 6, 2, 3)),
        Case(
            "a rotation (eigenvalues 0.95·e^(±0.5i))",
            rotation + (rng(62).standard_normal((25, 1)),),
        ),
        Case("N = 1", case(63, 1, 1, 1)),
        Case("one step (L = 1)", case(64, 5, 3, 2, L=1)),
    ]


def _via_diagonal(fn: Callable) -> Callable:
    """Eigenvectors can be scaled and ordered in many ways, so the arrays themselves are not
    compared: the learner's (lam, B̃, C̃) drive the diagonal recurrence, whose output is."""

    def run(A, B, C, x):
        out = plain(fn(A, B, C))
        if not isinstance(out, (tuple, list)) or len(out) != 3:
            raise ValueError(
                f"expected a tuple (lam, B_tilde, C_tilde), got {type_name(out)}"
                + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else "")
            )
        lam, Bt, Ct = (np.asarray(a) for a in out)
        N, D, P = A.shape[0], B.shape[1], C.shape[0]
        for name, arr, shape in (
            ("lam", lam, (N,)),
            ("B_tilde", Bt, (N, D)),
            ("C_tilde", Ct, (P, N)),
        ):
            if arr.shape != shape:
                raise ValueError(f"expected {name} of shape {shape}, got {arr.shape}")
        return _lr().diagonal_rnn(x, lam, Bt, Ct)

    return run


EXERCISES = declare(
    [
        Exercise(
            "linear_rnn",
            """Lesson 02, exercise 1: ``fn(x, A, B, C)`` returns y_t = C h_t, h_t = A h_{t−1} + B x_t.

            x (L, D), A (N, N), B (N, D), C (P, N), h_{−1} = 0; returns y (L, P). Compared with
            :func:`mamba_edu.linear_rnn.linear_rnn`.
            """,
            _linear_rnn_cases,
            reference=lambda x, A, B, C: _lr().linear_rnn(x, A, B, C),
            hint="h_{-1} = 0, so h_0 = B x_0 and y_0 = C B x_0.",
        ),
        Exercise(
            "convolution_kernel",
            """Lesson 02, exercise 2: ``fn(A, B, C, L)`` returns K with K[j] = C A^j B, shape (L, P, D).

            Compared with :func:`mamba_edu.linear_rnn.convolution_kernel`.
            """,
            _convolution_kernel_cases,
            reference=lambda A, B, C, L: _lr().convolution_kernel(A, B, C, L),
            hint="K[0] = C @ B (A to the power 0 is the identity); K[j] = C @ A^j @ B.",
        ),
        Exercise(
            "diagonalize",
            """Lesson 02, exercise 3: ``fn(A, B, C)`` returns (lam, B̃, C̃) with A = V diag(lam) V^{−1}.

            Eigenvectors can be scaled and ordered in many ways, so the check does not compare the
            arrays themselves: it runs the diagonal recurrence h̃_t = lam ⊙ h̃_{t−1} + B̃ x_t,
            y_t = Re(C̃ h̃_t) with the learner's (lam, B̃, C̃) on random inputs and compares y
            with the dense recurrence.
            """,
            _diagonalize_cases,
            reference=lambda A, B, C, x: _lr().linear_rnn(x, A, B, C),
            adapt=_via_diagonal,
            rename=(
                (
                    "your output",
                    "the output of the diagonal recurrence built from your (lam, B̃, C̃)",
                ),
            ),
            hint=(
                "with lam, V = np.linalg.eig(A): B̃ = V^-1 B (np.linalg.solve(V, B)) and "
                "C̃ = C V. Keep lam, B̃ and C̃ complex; only the final output takes the real part."
            ),
        ),
    ]
)

check_linear_rnn = make_check(EXERCISES["linear_rnn"])
check_convolution_kernel = make_check(EXERCISES["convolution_kernel"])
check_diagonalize = make_check(EXERCISES["diagonalize"])
