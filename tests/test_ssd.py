"""Mamba-2's SSD (mamba_edu.ssd): chunked = recurrence = semiseparable matrix, the segment sums,
and parity with lesson 06's selective scan and with mamba_ssm's ``ssd_minimal_discrete``."""

import os

import numpy as np
import pytest

from mamba_edu import official as official_mod
from mamba_edu import selective, ssd


def head(L, D=3, N=4, seed=0, decay=(0.05, 1.0)):
    """One head of one sequence: x̄ (L, D), a (L,) ≤ 0, B, C (L, N)."""
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((L, D)),
        -rng.uniform(*decay, L),
        rng.standard_normal((L, N)),
        rng.standard_normal((L, N)),
    )


def rel(got, want):
    return np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-300)


@pytest.mark.parametrize("L, chunk", [(16, 4), (17, 4), (30, 7), (5, 8), (1, 1), (12, 12), (9, 1)])
def test_chunked_equals_scan_and_matrix(L, chunk):
    x, a, B, C = head(L, seed=L + chunk)
    y_scan, h_scan = ssd.ssd_scan(x, a, B, C)
    y_matrix = ssd.ssd_quadratic(x, a, B, C)
    y_chunk, h_chunk = ssd.ssd_chunked(x, a, B, C, chunk)
    assert rel(y_matrix, y_scan) <= 1e-10
    assert rel(y_chunk, y_scan) <= 1e-10
    assert rel(h_chunk, h_scan) <= 1e-10


def test_initial_state_is_carried():
    x, a, B, C = head(20, seed=3)
    h0 = np.random.default_rng(4).standard_normal((3, 4))
    y_scan, h_scan = ssd.ssd_scan(x, a, B, C, h0=h0)
    y_chunk, h_chunk = ssd.ssd_chunked(x, a, B, C, 6, h0=h0)
    assert rel(y_chunk, y_scan) <= 1e-10 and rel(h_chunk, h_scan) <= 1e-10
    # and the initial state matters (the test could fail)
    assert rel(ssd.ssd_chunked(x, a, B, C, 6)[0], y_scan) > 1e-3


def test_scan_written_out_by_hand():
    # two steps, D = N = 1: h0 = x0 B0, h1 = e^{a1} h0 + x1 B1; y_t = C_t h_t
    x, a = np.array([[2.0], [3.0]]), np.array([-0.5, -0.7])
    B, C = np.array([[0.5], [-1.0]]), np.array([[4.0], [2.0]])
    y, h = ssd.ssd_scan(x, a, B, C)
    h0 = 2.0 * 0.5
    h1 = np.exp(-0.7) * h0 + 3.0 * -1.0
    assert np.allclose(y[:, 0], [4.0 * h0, 2.0 * h1], rtol=1e-14)
    assert np.isclose(h[0, 0], h1)


def test_equals_lesson06_selective_scan_with_scalar_A():
    """Mamba-2 is Mamba's selective scan with A the same scalar for every state entry."""
    rng = np.random.default_rng(7)
    L, D, N, A = 25, 3, 5, -0.8
    x = rng.standard_normal((L, D))
    delta = rng.uniform(0.01, 0.9, L)
    B, C = rng.standard_normal((L, N)), rng.standard_normal((L, N))
    x_bar, a = ssd.discretize(x, delta, A)
    y_ssd, _ = ssd.ssd_chunked(x_bar, a, B, C, 8)
    y_sel = selective.selective_scan(
        x.T[None], np.tile(delta, (D, 1))[None], np.full((D, N), A), B.T[None], C.T[None]
    )[0].T
    assert rel(y_ssd, y_sel) <= 1e-10


def test_segsum_stable_matches_direct_sums():
    a = np.array([-0.3, -1.2, -0.1, -2.0, -0.4])
    S = ssd.segsum(a)
    for t in range(5):
        for s in range(5):
            if s <= t:
                assert S[t, s] == pytest.approx(a[s + 1 : t + 1].sum(), abs=1e-15)
            else:
                assert S[t, s] == -np.inf


def test_naive_segsum_gives_nan_on_a_full_reset_and_stable_does_not():
    a = np.array([-0.5, -np.inf, -0.2, -0.3])  # Δ → ∞ at step 1: a full reset
    naive, stable = ssd.segsum_naive(a), ssd.segsum(a)
    assert np.isnan(naive[3, 2])  # −inf − (−inf)
    assert stable[3, 2] == pytest.approx(-0.3)
    assert not np.isnan(stable).any()
    # the decay from before the reset to after it is exactly zero
    assert np.exp(stable[2, 0]) == 0.0


def test_naive_segsum_loses_digits_on_long_sequences():
    a = np.full(200_000, -1.0)
    a[-1] = -1e-9  # a tiny last step: its one-step segment sum is -1e-9
    naive_last = ssd.segsum_naive(a[-2:] + 0.0)[1, 0]  # on a short piece the difference is fine
    assert naive_last == pytest.approx(-1e-9, rel=1e-6)
    cs = np.cumsum(a)  # on the full length it is a difference of two sums near -2e5
    assert abs((cs[-1] - cs[-2]) - (-1e-9)) > 1e-12
    assert ssd.segsum(a[-2:])[1, 0] == -1e-9


def test_chunked_survives_a_full_reset():
    x, a, B, C = head(12, seed=5)
    a[6] = -np.inf
    y_scan, _ = ssd.ssd_scan(x, a, B, C)
    y_chunk, _ = ssd.ssd_chunked(x, a, B, C, 4)
    assert np.isfinite(y_chunk).all()
    assert rel(y_chunk, y_scan) <= 1e-10


def test_steps_compose_and_chunk_states_are_true_end_states():
    x, a, B, C = head(12, seed=9)
    Q = 4
    xc, ac, Bc = x.reshape(3, Q, 3), a.reshape(3, Q), B.reshape(3, Q, 4)
    states = ssd.chunk_states(xc, ac, Bc)
    for c in range(3):  # each is the state a scan of that chunk alone ends in
        _, h = ssd.ssd_scan(xc[c], ac[c], Bc[c], C[c * Q : (c + 1) * Q])
        assert rel(states[c], h) <= 1e-12
    starts, last = ssd.pass_states(states, ac)
    _, h_full = ssd.ssd_scan(x, a, B, C)
    assert rel(last, h_full) <= 1e-12
    _, h_first8 = ssd.ssd_scan(x[:8], a[:8], B[:8], C[:8])
    assert rel(starts[2], h_first8) <= 1e-12
    assert np.all(starts[0] == 0)


def test_duality_the_matrix_is_semiseparable():
    x, a, B, C = head(16, N=2, seed=2)
    M = ssd.semiseparable_matrix(a, B, C)
    assert np.all(np.triu(M, 1) == 0)
    # every block strictly below the diagonal has rank <= N = 2
    assert np.linalg.matrix_rank(M[8:, :8], tol=1e-10) <= 2
    assert np.linalg.matrix_rank(M[4:, :4], tol=1e-10) <= 2


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: ssd.ssd_scan(np.zeros(5), np.zeros(5), np.zeros((5, 2)), np.zeros((5, 2))), "x of shape (L, D)"),
        (lambda: ssd.ssd_scan(np.zeros((5, 1)), np.zeros(4), np.zeros((5, 2)), np.zeros((5, 2))), "a of shape (L,)"),
        (lambda: ssd.ssd_scan(np.zeros((5, 1)), np.zeros(5), np.zeros((4, 2)), np.zeros((5, 2))), "B of shape (L, N)"),
        (lambda: ssd.ssd_scan(np.zeros((5, 1)), np.zeros(5), np.zeros((5, 2)), np.zeros((5, 3))), "C of shape (L, N)"),
        (lambda: ssd.ssd_chunked(np.zeros((5, 1)), np.zeros(5), np.zeros((5, 2)), np.zeros((5, 2)), 0), "chunk_size"),
        (lambda: ssd.ssd_scan(np.zeros((5, 1)), np.zeros(5), np.zeros((5, 2)), np.zeros((5, 2)), h0=np.zeros((2, 1))), "h0 of shape (D, N)"),
        (lambda: ssd.discretize(np.zeros((5, 1)), np.ones(5), np.ones(2)), "A"),
    ],
)  # fmt: skip
def test_bad_input_names_the_argument(call, message):
    with pytest.raises(
        (ValueError, TypeError), match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        call()


# --- parity with mamba_ssm's ssd_minimal_discrete (the paper's Listing 1) -----------------------


@pytest.fixture(scope="module")
def official_ssd():
    ok, why = official_mod.status()
    if not ok:
        if os.environ.get("CI") or os.environ.get("MAMBA_EDU_REQUIRE_PARITY") == "1":
            pytest.fail(f"the parity suite needs mamba_ssm: {why}")
        pytest.skip(why)
    return official_mod.ssd_minimal_discrete()


@pytest.mark.parametrize("L, chunk, heads", [(16, 4, 2), (24, 8, 1), (8, 8, 3)])
def test_chunked_equals_official_ssd_minimal(official_ssd, L, chunk, heads):
    import torch  # only this parity test needs torch tensors

    rng = np.random.default_rng(L + heads)
    D, N = 4, 3
    x = rng.standard_normal((1, L, heads, D))
    a = -rng.uniform(0.05, 1.0, (1, L, heads))
    B = rng.standard_normal((1, L, heads, N))
    C = rng.standard_normal((1, L, heads, N))
    y_off, h_off = official_ssd(*(torch.tensor(v) for v in (x, a, B, C)), chunk)
    for k in range(heads):
        y, h = ssd.ssd_chunked(x[0, :, k], a[0, :, k], B[0, :, k], C[0, :, k], chunk)
        assert rel(y, y_off[0, :, k].numpy()) <= 1e-10
        assert rel(h, h_off[0, k].numpy()) <= 1e-10  # official final state: (batch, heads, D, N)


def test_chunk_states_check_rejects_the_cumsum_difference():
    """Lesson 08's exercise 3: a learner who takes the decays as a difference of cumulative sums
    gets NaN after a full reset, and the self-check says so."""
    from mamba_edu import checks

    def by_difference(x, a, B):
        cs = np.cumsum(a, axis=1)
        with np.errstate(invalid="ignore"):  # −inf − (−inf): the NaN this test is about
            decay = np.exp(cs[:, -1:] - cs)
        return np.einsum("cs,csd,csn->cdn", decay, x, B)

    result = checks.check_chunk_states(by_difference, quiet=True)
    assert not result and "reset" in result.message
    assert checks.check_chunk_states(lambda x, a, B: ssd.chunk_states(x, a, B), quiet=True)
