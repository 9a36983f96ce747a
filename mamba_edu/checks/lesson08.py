"""Lesson 08 — from reference to kernel: ``scan_io_bytes``, ``chunk_backward``, ``chunk_states``."""

from __future__ import annotations

import numpy as np

from .exercise import Case, Exercise, declare, make_check, random_cases, rng


def _scan_io_bytes_reference(batch, D, L, N, itemsize):
    from mamba_edu import selective  # imports torch: loaded only when a lesson-08 check runs

    return selective.scan_io_bytes(batch, D, L, N, itemsize)


def _scan_io_bytes_cases() -> list[Case]:
    def make(gen, bounds):
        # sizes drawn up to `bounds` (batch, D, L, N), and one of the usual item sizes
        sizes = tuple(int(gen.integers(1, bound + 1)) for bound in bounds)
        return (*sizes, int(gen.choice([2, 4, 8])))

    bounds = [(4, 64, 512, 16), (16, 2048, 4096, 64), (2, 8, 8, 4)]
    return random_cases(make, bounds, seed=84, label="random sizes up to") + [
        Case("one layer of a small Mamba, float32", (8, 2048, 4096, 16, 4)),
        Case("a single channel and step", (1, 1, 1, 1, 4)),
        Case("bf16, N = 64", (2, 64, 1000, 64, 2)),
        Case("float64, odd sizes", (3, 5, 7, 11, 8)),
    ]


def _ssd():
    from mamba_edu import ssd  # the concept module; imported when a lesson-08 check runs

    return ssd


def _chunk_states_cases() -> list[Case]:
    def make(gen, shape):
        n_chunks, Q, D, N = shape
        return (
            gen.standard_normal((n_chunks, Q, D)),
            -gen.uniform(0.01, 1.5, (n_chunks, Q)),
            gen.standard_normal((n_chunks, Q, N)),
        )

    reset = make(rng(81), (2, 4, 2, 3))
    reset[1][0, 1] = -np.inf  # Δ → ∞ at one step: the chunk forgets what came before it
    long_decay = make(rng(82), (1, 64, 2, 2))
    long_decay[1][:] = -20.0  # large decays: exp of a cumulative sum alone would underflow
    return random_cases(make, [(3, 4, 2, 3), (1, 1, 1, 1), (2, 16, 5, 8)], seed=80) + [
        Case("a full reset (a = −inf) inside a chunk", reset),
        Case("strong decay over 64 steps", long_decay),
    ]


def _chunk_backward_reference(a, b, h_start, g, gh_next):
    # torch autograd on the forward recurrence: independent of the reverse scan under test
    import torch  # heavy; only this reference needs it

    a_t, b_t = (torch.tensor(np.asarray(v, dtype=np.float64), requires_grad=True) for v in (a, b))
    h0 = torch.tensor(float(h_start), dtype=torch.float64, requires_grad=True)
    h, loss = h0, torch.zeros((), dtype=torch.float64)
    for t in range(len(a)):
        h = a_t[t] * h + b_t[t]
        loss = loss + float(g[t]) * h
    loss = loss + float(gh_next) * h
    loss.backward()
    return a_t.grad.numpy(), b_t.grad.numpy(), float(h0.grad)


def _chunk_backward_cases() -> list[Case]:
    def make(gen, shape):
        (Q,) = shape
        return (
            gen.uniform(0.3, 1.0, Q),
            gen.standard_normal(Q),
            float(gen.standard_normal()),
            gen.standard_normal(Q),
            float(gen.standard_normal()),
        )

    return random_cases(make, [(8,), (1,), (33,)], seed=90) + [
        Case("nothing from the next chunk (the last chunk)", (*make(rng(95), (6,))[:4], 0.0)),
        Case(
            "a = 0 at step 2: gradient stops there",
            (np.array([0.9, 0.8, 0.0, 0.7]), np.ones(4), 2.0, np.ones(4), 1.0),
        ),
    ]


EXERCISES = declare(
    [
        Exercise(
            "scan_io_bytes",
            """Lesson 08, exercise 1: ``fn(batch, D, L, N, itemsize)`` → (naive bytes, fused bytes)
            moved to and from main memory by one selective scan, with the lesson's model: the fused
            kernel reads x, Δ, z (batch, D, L), B, C (batch, N, L) and A (D, N) once and writes y
            (batch, D, L); the naive one also writes and reads exp(ΔA) and ΔBx and writes and reads
            the states, six (batch, D, L, N) transfers.
            """,
            _scan_io_bytes_cases,
            reference=_scan_io_bytes_reference,  # selective.scan_io_bytes
            rtol=0.0,
            atol=0.5,
            hint="count elements first (every tensor once for the fused kernel), then × itemsize",
        ),
        Exercise(
            "chunk_backward",
            """Lesson 08, exercise 2: ``fn(a, b, h_start, g, gh_next)`` → (da, db, dh_start) for
            one chunk of h_t = a_t h_{t−1} + b_t, recomputing the chunk's states from its saved
            start state. g (Q,) = ∂loss/∂h_t directly; gh_next = ∂loss/∂h_{Q−1} through the later
            chunks. Compared with torch autograd.
            """,
            _chunk_backward_cases,
            reference=_chunk_backward_reference,
            rtol=1e-9,
            atol=1e-12,
            hint="the reverse scan: dh_t = g_t + a_{t+1} dh_{t+1}, starting from "
            "dh_{Q−1} = g_{Q−1} + gh_next; then da_t = dh_t h_{t−1}, db_t = dh_t, "
            "dh_start = a_0 dh_0",
        ),
        Exercise(
            "chunk_states",
            """Lesson 08, exercise 3 (SSD step 2): ``fn(x, a, B)`` → the state at the end of each
            chunk, started from zero, shape (n_chunks, D, N). x (n_chunks, Q, D); a (n_chunks, Q)
            log-decays; B (n_chunks, Q, N). Compared with :func:`mamba_edu.ssd.chunk_states`.
            """,
            _chunk_states_cases,
            reference=lambda x, a, B: _ssd().chunk_states(x, a, B),
            rtol=1e-9,
            atol=1e-12,
            hint="the decay from step s to the chunk's end is exp(a[s+1] + … + a[Q−1]): sum that "
            "segment itself (a difference of cumulative sums is NaN after a = −inf)",
        ),
    ]
)

check_scan_io_bytes = make_check(EXERCISES["scan_io_bytes"])
check_chunk_backward = make_check(EXERCISES["chunk_backward"])
check_chunk_states = make_check(EXERCISES["chunk_states"])
