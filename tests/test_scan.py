import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mamba_edu import scan


def closed_form(a, b):
    """h_t = sum_k (prod_{j=k+1..t} a_j) b_k, computed without a recurrence."""
    L = a.shape[-1]
    h = np.zeros(np.broadcast_shapes(a.shape, b.shape), dtype=np.result_type(a, b, float))
    for t in range(L):
        for k in range(t + 1):
            h[..., t] += np.prod(a[..., k + 1 : t + 1], axis=-1) * b[..., k]
    return h


@settings(max_examples=30, deadline=None)
@given(
    L=st.integers(1, 12), D=st.integers(1, 3), seed=st.integers(0, 1000), complex_a=st.booleans()
)
def test_sequential_scan_matches_closed_form(L, D, seed, complex_a):
    rng = np.random.default_rng(seed)
    a = rng.uniform(-1, 1, (D, L))
    if complex_a:
        a = a * np.exp(1j * rng.uniform(0, np.pi, (D, L)))
    b = rng.standard_normal((D, L))
    np.testing.assert_allclose(
        scan.sequential_scan(a, b), closed_form(a, b), rtol=1e-12, atol=1e-12
    )


def test_initial_state_is_carried():
    a = np.full((2, 5), 0.5)
    b = np.zeros((2, 5))
    h = scan.sequential_scan(a, b, h0=np.array([1.0, 2.0]))
    np.testing.assert_allclose(h[:, -1], np.array([1.0, 2.0]) * 0.5**5)


@pytest.mark.parametrize(
    "a, b, h0, message",
    [
        (np.ones(3), np.ones(4), None, "a.shape=(3,), b.shape=(4,)"),
        (np.float64(1), np.ones(4), None, "time last"),
        (np.ones((2, 3)), np.ones((2, 3)), np.ones(3), "h0 of shape (2,)"),
    ],
)
def test_bad_shapes_are_named(a, b, h0, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        scan.sequential_scan(a, b, h0)
