"""mamba_edu.ssm against independent computations: matrix exponentials, explicit inverses, loops."""

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

from mamba_edu import ssm


def random_stable(N, seed):
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((N, N))
    return M - (np.abs(np.linalg.eigvals(M)).max() + 0.5) * np.eye(N), rng.standard_normal(N)


@pytest.mark.parametrize("N, dt", [(1, 0.1), (4, 0.01), (6, 0.5)])
def test_zoh_dense_matches_augmented_matrix_exponential(N, dt):
    A, B = random_stable(N, N)
    # exp of [[A, B], [0, 0]]·dt holds exp(ΔA) and ∫_0^Δ exp(sA) ds B in its first N rows
    M = np.zeros((N + 1, N + 1))
    M[:N, :N], M[:N, N] = A, B
    E = scipy.linalg.expm(M * dt)
    Ab, Bb = ssm.discretize(A, B, dt, "zoh")
    np.testing.assert_allclose(Ab, E[:N, :N], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(Bb, E[:N, N], rtol=1e-10, atol=1e-12)


def test_bilinear_dense_matches_explicit_inverse():
    A, B = random_stable(5, 1)
    dt = 0.2
    inv = np.linalg.inv(np.eye(5) - dt / 2 * A)
    Ab, Bb = ssm.discretize(A, B, dt, "bilinear")
    np.testing.assert_allclose(Ab, inv @ (np.eye(5) + dt / 2 * A), rtol=1e-12)
    np.testing.assert_allclose(Bb, inv @ (dt * B), rtol=1e-12)


@pytest.mark.parametrize("method", ssm.METHODS)
def test_diagonal_equals_dense_on_a_diagonal_matrix(method):
    lam = np.array([-0.5 + 2j, -1.0 + 0j, -3.0 - 1j])
    B = np.array([1.0, -2.0, 0.5])
    Ab, Bb = ssm.discretize(lam, B, 0.1, method)
    Ad, Bd = ssm.discretize(np.diag(lam), B, 0.1, method)
    np.testing.assert_allclose(np.diag(Ad), Ab, rtol=1e-12)
    np.testing.assert_allclose(Bd, Bb, rtol=1e-12)


def test_zoh_handles_zero_eigenvalue_and_small_steps_approach_euler():
    Ab, Bb = ssm.discretize(np.array([0.0, -1.0]), np.ones(2), 0.1, "zoh")
    assert Ab[0] == 1.0 and Bb[0] == pytest.approx(0.1)
    lam = ssm.s4d_lin(4)
    z, _ = ssm.discretize(lam, np.ones(4), 1e-6, "zoh")
    e, _ = ssm.discretize(lam, np.ones(4), 1e-6, "euler")
    np.testing.assert_allclose(z, e, atol=1e-10)


def test_hippo_legs_entries_follow_the_formula():
    N = 7
    A, B = ssm.hippo_legs(N)
    for n in range(N):
        assert B[n] == pytest.approx(np.sqrt(2 * n + 1))
        for k in range(N):
            want = (
                -np.sqrt(2 * n + 1) * np.sqrt(2 * k + 1) if n > k else (-(n + 1) if n == k else 0)
            )
            assert A[n, k] == pytest.approx(want)


def test_s4d_initializations_follow_their_formulas():
    N = 8
    for n in range(N):
        assert ssm.s4d_real(N)[n] == -(n + 1)
        assert ssm.s4d_lin(N)[n] == pytest.approx(-0.5 + 1j * np.pi * n)
        assert ssm.s4d_inv(N)[n] == pytest.approx(-0.5 + 1j * N / np.pi * (N / (2 * n + 1) - 1))


@settings(max_examples=20, deadline=None)
@given(
    N=st.integers(1, 6), L=st.integers(1, 40), seed=st.integers(0, 10_000), diagonal=st.booleans()
)
def test_recurrence_equals_convolution(N, L, seed, diagonal):
    rng = np.random.default_rng(seed)
    if diagonal:
        A = ssm.s4d_lin(N)
        B, C = rng.standard_normal((2, N)) + 1j * rng.standard_normal((2, N))
    else:
        A, B = random_stable(N, seed)
        C = rng.standard_normal(N)
    Ab, Bb = ssm.discretize(A, B, 0.05, "zoh")
    u = rng.standard_normal(L)
    K = ssm.ssm_kernel(Ab, Bb, C, L)
    y_rec = ssm.ssm_recurrence(Ab, Bb, C, u)
    np.testing.assert_allclose(ssm.causal_conv(u, K), y_rec, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ssm.fft_conv(u, K), y_rec, rtol=1e-8, atol=1e-9)


def test_fft_conv_is_causal():
    rng = np.random.default_rng(0)
    u, K = rng.standard_normal((2, 32))
    u2 = u.copy()
    u2[20:] += 5.0
    np.testing.assert_allclose(ssm.fft_conv(u2, K)[:20], ssm.fft_conv(u, K)[:20], atol=1e-12)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: ssm.discretize(np.ones((2, 3)), np.ones(2), 0.1), r"square A of shape \(N, N\)"),
        (lambda: ssm.discretize(np.ones(3), np.ones(2), 0.1), r"B of shape \(N,\) = \(3,\)"),
        (lambda: ssm.discretize(np.ones(3), np.ones(3), -1.0), "positive step"),
        (lambda: ssm.discretize(np.ones(3), np.ones(3), 0.1, "rk4"), "method one of"),
        (
            lambda: ssm.ssm_kernel(np.ones(3), np.ones(3), np.ones(2), 4),
            r"C of shape \(N,\) = \(3,\)",
        ),
        (lambda: ssm.fft_conv(np.ones(4), np.ones(5)), "same shape"),
        (lambda: ssm.hippo_legs(0), "expected d_state to be an integer >= 1, got 0"),
        (lambda: ssm.hippo_legs(4.0), "expected d_state to be an integer >= 1, got 4.0"),
        (lambda: ssm.s4d_lin(2.5), "expected d_state to be an integer >= 1"),
        (lambda: ssm.s4d_real(np.array([3])), "expected d_state to be an integer >= 1"),
        (lambda: ssm.s4d_inv(True), "expected d_state to be an integer >= 1"),
        (lambda: ssm.hippo_legs_online(np.ones(5), 0), "expected d_state to be an integer >= 1"),
        (
            lambda: ssm.hippo_legs_online(np.ones(5, dtype=int), 3),
            "expected f to be a real float array",
        ),
        (lambda: ssm.hippo_legs_online(np.ones(0), 3), r"f of shape \(L,\) with L >= 1"),
        (lambda: ssm.legendre_reconstruct(np.ones(3), 2.0), "expected M to be an integer >= 1"),
        (
            lambda: ssm.discretize(np.ones(3), np.ones(3), np.array([0.1])),
            "expected delta to be a real number",
        ),
        (
            lambda: ssm.discretize(np.ones(3, dtype=int), np.ones(3), 0.1),
            "expected A to be a float or complex array",
        ),
        (
            lambda: ssm.discretize(np.ones(3), np.array([None] * 3), 0.1),
            "expected B to be a float or complex array",
        ),
        (
            lambda: ssm.ssm_kernel(np.ones(3), np.ones(3), np.ones(3), 0),
            "expected L to be an integer >= 1",
        ),
        (
            lambda: ssm.ssm_kernel(np.ones(3), np.ones(3), np.ones(3), 4.0),
            "expected L to be an integer >= 1",
        ),
        (lambda: ssm.ssm_recurrence(np.ones(3), np.ones(3), np.ones(3), np.ones(0)), "L >= 1"),
        (
            lambda: ssm.ssm_recurrence(np.ones(3), np.ones(3), np.ones(3), np.arange(4)),
            "expected x to be a float or complex array",
        ),
        (
            lambda: ssm.ssm_recurrence(np.ones(3), np.ones(3), np.ones(2), np.ones(4)),
            r"C of shape \(N,\) = \(3,\)",
        ),
        (lambda: ssm.causal_conv(np.ones(0), np.ones(0)), r"x of shape \(L,\) with L >= 1"),
        (
            lambda: ssm.causal_conv(np.ones(4), np.ones(4, dtype=bool)),
            "expected K to be a float or complex array",
        ),
    ],
)
def test_bad_input_is_named(call, message):
    with pytest.raises((TypeError, ValueError), match=message):
        call()


def test_hippo_legs_online_reconstructs_a_smooth_history():
    t = np.linspace(0, 1, 2000)
    f = np.sin(2 * np.pi * 3 * t) + 0.5 * np.cos(2 * np.pi * 7 * t)
    errors = {}
    for N in (8, 32):
        c = ssm.hippo_legs_online(f, N)[-1]
        errors[N] = np.sqrt(np.mean((ssm.legendre_reconstruct(c, t.size) - f) ** 2))
    assert errors[32] < 0.02 < 0.2 < errors[8]


def test_hippo_legs_online_matches_a_dense_bilinear_step():
    # one step by explicit inverse, independent of the triangular solve
    A, B = ssm.hippo_legs(5)
    f = np.array([0.3, -1.2, 2.0])
    c = np.zeros(5)
    for k, fk in enumerate(f, start=1):
        inv = np.linalg.inv(np.eye(5) - A / (2 * k))
        c = inv @ (np.eye(5) + A / (2 * k)) @ c + inv @ B * fk / k
    np.testing.assert_allclose(ssm.hippo_legs_online(f, 5)[-1], c, rtol=1e-12)


def test_legendre_reconstruct_of_a_constant():
    # f = 1 has c = (1, 0, 0, …): the first scaled Legendre polynomial is constant 1
    np.testing.assert_allclose(ssm.legendre_reconstruct(np.array([1.0, 0, 0]), 5), np.ones(5))
