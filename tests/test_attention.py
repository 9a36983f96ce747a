import numpy as np
import pytest

from mamba_edu import attention


def loop_attention(q, k, v):
    """Row by row, with Python floats: an independent check of the vectorized version."""
    L, d = q.shape
    out = np.zeros_like(v)
    for t in range(L):
        scores = [float(q[t] @ k[s]) / d**0.5 for s in range(t + 1)]
        m = max(scores)
        w = [np.exp(s - m) for s in scores]
        out[t] = sum(wi * v[s] for s, wi in enumerate(w)) / sum(w)
    return out


@pytest.mark.parametrize("L, d", [(1, 3), (7, 4), (16, 2)])
def test_matches_loop(L, d):
    q, k, v = np.random.default_rng(L).standard_normal((3, L, d))
    np.testing.assert_allclose(
        attention.causal_attention(q, k, v), loop_attention(q, k, v), rtol=1e-12
    )


def test_large_scores_stay_finite():
    q = np.full((4, 2), 100.0)
    out = attention.causal_attention(q, q, np.ones((4, 2)))
    assert np.all(np.isfinite(out))


def test_bad_shapes():
    with pytest.raises(ValueError, match=r"expected q and k of shape \(L, d\)"):
        attention.causal_attention(np.ones((3, 2)), np.ones((4, 2)), np.ones((3, 2)))
