"""Lesson 01 — recurrent networks: ``rnn_forward``, ``rnn_backward``, ``jacobian_norms``."""

from __future__ import annotations

import numpy as np

from mamba_edu import rnn

from .exercise import Case, Exercise, declare, make_check, rng


def _rnn_case(gen, L, D, N, nonlinearity, *, radius=0.9, scale=1.0):
    W = rnn.random_recurrent_matrix(N, radius, seed=int(gen.integers(1 << 30)))
    U = gen.standard_normal((N, D)) * scale / np.sqrt(D)
    b = gen.standard_normal(N) * 0.1
    return gen.standard_normal((L, D)), W, U, b, nonlinearity


def _rnn_forward_cases() -> list[Case]:
    return [
        Case("tanh, random (L=12, D=3, N=5)", _rnn_case(rng(10), 12, 3, 5, "tanh")),
        Case("relu, random (L=9, D=2, N=4)", _rnn_case(rng(11), 9, 2, 4, "relu")),
        Case("identity, random (L=10, D=1, N=6)", _rnn_case(rng(12), 10, 1, 6, "identity")),
        Case("L = 1 (one step from h = 0)", _rnn_case(rng(13), 1, 3, 4, "tanh")),
        Case("N = 1 (a single state)", _rnn_case(rng(14), 8, 2, 1, "tanh")),
        Case("tanh with large inputs (saturation)", _rnn_case(rng(15), 10, 3, 5, "tanh", scale=20)),
    ]


# The backward check's expected gradients come from torch autograd on the same network, not from
# the course's own BPTT, so a shared mistake cannot pass. The weights U, b are not arguments of the
# learner's function; the reference finds them by the bytes of x.
_WEIGHTS: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}


def _rnn_backward_case(seed, L, D, N, nonlinearity, radius=0.9):
    gen = rng(seed)
    x, W, U, b, _ = _rnn_case(gen, L, D, N, nonlinearity, radius=radius)
    h = rnn.rnn_forward(x, W, U, b, nonlinearity)
    dh = gen.standard_normal((L, N))
    _WEIGHTS[x.tobytes()] = (U, b)
    return x, h, dh, W, nonlinearity


def _rnn_backward_cases() -> list[Case]:
    return [
        Case("tanh, random (L=10, D=3, N=4)", _rnn_backward_case(20, 10, 3, 4, "tanh")),
        Case("relu, random (L=8, D=2, N=5)", _rnn_backward_case(21, 8, 2, 5, "relu")),
        Case("identity, random (L=12, D=2, N=3)", _rnn_backward_case(22, 12, 2, 3, "identity")),
        Case("L = 1 (no gradient through time yet)", _rnn_backward_case(23, 1, 3, 4, "tanh")),
        Case("tanh, spectral radius 1.5 (L=15)", _rnn_backward_case(24, 15, 2, 4, "tanh", 1.5)),
    ]


def _rnn_backward_autograd(x, h, dh, W, nonlinearity):
    """(dW, dU, db) of ℓ = Σ_t dh_t · h_t by torch autograd in float64."""
    import torch  # heavy: loaded only when this check runs

    U, b = _WEIGHTS[np.asarray(x).tobytes()]
    act = {"tanh": torch.tanh, "relu": torch.relu, "identity": lambda a: a}[nonlinearity]
    Wt, Ut, bt = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (W, U, b))
    xt = torch.tensor(x, dtype=torch.float64)
    state = torch.zeros(W.shape[0], dtype=torch.float64)
    states = []
    for t in range(x.shape[0]):
        state = act(Wt @ state + Ut @ xt[t] + bt)
        states.append(state)
    (torch.stack(states) * torch.tensor(dh)).sum().backward()
    return Wt.grad.numpy(), Ut.grad.numpy(), bt.grad.numpy()


def _jacobian_case(seed, L, N, nonlinearity, radius=0.9):
    x, W, U, b, _ = _rnn_case(rng(seed), L, 2, N, nonlinearity, radius=radius)
    return rnn.rnn_forward(x, W, U, b, nonlinearity), W, nonlinearity


def _jacobian_norms_cases() -> list[Case]:
    Q, _ = np.linalg.qr(rng(35).standard_normal((4, 4)))
    return [
        Case("tanh, random (L=12, N=5)", _jacobian_case(30, 12, 5, "tanh")),
        Case("relu, random (L=10, N=6)", _jacobian_case(31, 10, 6, "relu")),
        Case(
            "identity, spectral radius 1.2 (L=15, N=4)", _jacobian_case(32, 15, 4, "identity", 1.2)
        ),
        Case("L = 1 (only ∂h_T/∂h_T = I)", _jacobian_case(33, 1, 3, "tanh")),
        Case(
            "identity, W = 0.8 × orthogonal (norms are 0.8^k)",
            (np.zeros((8, 4)), 0.8 * Q, "identity"),
        ),
    ]


EXERCISES = declare(
    [
        Exercise(
            "rnn_forward",
            """Lesson 01, exercise 1: ``fn(x, W, U, b, nonlinearity)`` returns h_t = φ(W h_{t−1} + U x_t + b).

            x (L, D), W (N, N), U (N, D), b (N,), h_{−1} = 0; returns h (L, N). Compared with
            :func:`mamba_edu.rnn.rnn_forward`.
            """,
            _rnn_forward_cases,
            reference=rnn.rnn_forward,
            hint=(
                "look at the case's name. `nonlinearity` picks np.tanh, ReLU (np.maximum(a, 0)) "
                "or identity; h[0] uses the zero state h_{-1} = 0 and x[0], every later h[t] uses "
                "h[t-1]."
            ),
        ),
        Exercise(
            "rnn_backward",
            """Lesson 01, exercise 2: ``fn(x, h, dh, W, nonlinearity)`` returns (dW, dU, db) by BPTT.

            h are the forward states (L, N) (from h_{−1} = 0) and dh[t] = ∂ℓ/∂h_t, the part of the
            loss's gradient that reaches h_t directly. The expected gradients come from **torch
            autograd** on the same network in float64, not from the course's own BPTT.
            """,
            _rnn_backward_cases,
            reference=_rnn_backward_autograd,
            rename=(
                ("your output[0]", "your dW"),
                ("your output[1]", "your dU"),
                ("your output[2]", "your db"),
            ),
            hint=(
                "walk t from L-1 down to 0; the gradient reaching h_t is dh[t] plus W.T @ "
                "delta_{t+1} (what flows back from the next step); delta_t is that times "
                "phi'(a_t), computed from h[t]; dW collects outer(delta_t, h_{t-1}) with h_{-1} = 0."
            ),
        ),
        Exercise(
            "jacobian_norms",
            """Lesson 01, exercise 3: ``fn(h, W, nonlinearity)`` returns ‖∂h_T/∂h_t‖₂ for t = 0..T.

            h (L, N) forward states, T = L − 1; returns shape (L,), with entry T equal to 1.
            Compared with :func:`mamba_edu.rnn.jacobian_norms` (spectral norm: the largest
            singular value).
            """,
            _jacobian_norms_cases,
            reference=rnn.jacobian_norms,
            hint=(
                "start from J = I at t = T and go back: J_t = J_{t+1} @ diag(phi'(a_{t+1})) @ W; "
                "the norm is the spectral norm np.linalg.norm(J, 2), not the Frobenius norm."
            ),
        ),
    ]
)

check_rnn_forward = make_check(EXERCISES["rnn_forward"])
check_rnn_backward = make_check(EXERCISES["rnn_backward"])
check_jacobian_norms = make_check(EXERCISES["jacobian_norms"])
