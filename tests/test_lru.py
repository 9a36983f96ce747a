"""mamba_edu.lru: the ring distribution (KS tests), Proposition 3, and the forward pass vs a closed form."""

import numpy as np
import pytest
from scipy import stats

from mamba_edu import lru


@pytest.mark.parametrize(
    "r_min, r_max, max_phase", [(0.0, 1.0, 2 * np.pi), (0.9, 0.999, np.pi / 10), (0.4, 0.6, 1.0)]
)
def test_ring_samples_follow_the_ring_distribution(r_min, r_max, max_phase):
    lam = lru.eigenvalues(*lru.ring_init(10_000, r_min, r_max, max_phase, rng=0))
    r, phase = np.abs(lam), np.angle(lam) % (2 * np.pi)
    # uniform in area on the ring: P(|λ| ≤ r) = (r² − r_min²)/(r_max² − r_min²)
    ring_cdf = lambda x: np.clip((x**2 - r_min**2) / (r_max**2 - r_min**2), 0, 1)  # noqa: E731
    assert stats.kstest(r, ring_cdf).pvalue > 1e-3
    assert stats.kstest(phase, stats.uniform(0, max_phase).cdf).pvalue > 1e-3
    assert np.all(r < 1)


def test_ks_test_would_notice_a_wrong_distribution():
    # sampling |λ| uniformly (instead of |λ|²) is the classic mistake: the same test rejects it
    r = np.random.default_rng(0).uniform(0.0, 1.0, 10_000)
    assert stats.kstest(r, lambda x: np.clip(x**2, 0, 1)).pvalue < 1e-6


def test_eigenvalues_stay_inside_the_unit_circle_for_any_parameters():
    rng = np.random.default_rng(1)
    lam = lru.eigenvalues(rng.normal(0, 5, 1000), rng.normal(0, 5, 1000))
    assert np.all(np.abs(lam) < 1)


def closed_form(params, u, normalize=True):
    L = u.shape[0]
    lam = params.lam
    gain = np.exp(params.gamma_log) if normalize else 1.0
    k = np.arange(L)
    powers = (
        lam[None, None, :] ** np.clip(k[:, None] - k[None, :], 0, None)[:, :, None]
    )  # (L, L, N)
    mask = (k[:, None] >= k[None, :])[:, :, None]
    Bu = (u @ params.B.T) * gain  # (L, N)
    x = np.einsum("kjn,jn->kn", powers * mask, Bu)
    return (x @ params.C.T).real + u * params.D


@pytest.mark.parametrize("normalize", [True, False])
def test_forward_matches_closed_form(normalize):
    params = lru.init_lru(H=3, d_state=5, r_min=0.5, r_max=0.95, rng=2)
    u = np.random.default_rng(3).standard_normal((12, 3))
    np.testing.assert_allclose(
        lru.lru_forward(params, u, normalize=normalize),
        closed_form(params, u, normalize),
        rtol=1e-10,
        atol=1e-12,
    )


def test_prop3_formula_matches_simulation_and_gamma_removes_the_blow_up():
    r_min, r_max = 0.9, 0.99
    params = lru.init_lru(H=64, d_state=2000, r_min=r_min, r_max=r_max, rng=4)
    u = np.random.default_rng(5).standard_normal((2000, 64))  # white noise, E u² = 1
    _, x_raw = lru.lru_forward(params, u, normalize=False, return_state=True)
    _, x_norm = lru.lru_forward(params, u, normalize=True, return_state=True)
    bu2 = np.mean(np.sum(np.abs(params.B) ** 2, axis=1))  # E|(Bu)_n|²
    steady = slice(1000, None)  # r_max^(2·1000) ≈ 2e-9: the start has been forgotten
    measured = np.mean(np.abs(x_raw[steady]) ** 2) / bu2
    assert measured == pytest.approx(lru.prop3_expected_norm(r_min, r_max), rel=0.05)
    # with γ the state keeps the size of its input
    assert np.mean(np.abs(x_norm[steady]) ** 2) / bu2 == pytest.approx(1.0, rel=0.05)


def test_bad_input():
    with pytest.raises(ValueError, match="r_min < r_max"):
        lru.ring_init(4, 0.9, 0.5)
    params = lru.init_lru(3, 2, rng=0)
    with pytest.raises(ValueError, match=r"x of shape \(L, H\) = \(L, 3\)"):
        lru.lru_forward(params, np.ones((5, 2)))
    with pytest.raises(ValueError, match=r"x of shape \(L, H\) = \(L, 3\) with L >= 1"):
        lru.lru_forward(params, np.ones((0, 3)))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: lru.ring_init(4.0), "expected d_state to be an integer >= 1, got 4.0"),
        (lambda: lru.ring_init(0), "expected d_state to be an integer >= 1, got 0"),
        (lambda: lru.ring_init(True), "expected d_state to be an integer >= 1"),
        (lambda: lru.init_lru(3, 2.5), "expected d_state to be an integer >= 1, got 2.5"),
        (lambda: lru.init_lru("3", 2), "expected H to be an integer >= 1"),
        (lambda: lru.ring_init(4, np.array([0.1]), 0.5), "expected r_min to be a real number"),
        (
            lambda: lru.ring_init(4, 0.1, 0.5, max_phase=np.ones(2)),
            "expected max_phase to be a real number",
        ),
        (
            lambda: lru.prop3_expected_norm(np.array([0.5]), 0.9),
            "expected r_min to be a real number",
        ),
        (
            lambda: lru.eigenvalues(np.zeros(3, dtype=int), np.zeros(3)),
            "expected nu_log to be a real float array",
        ),
        (lambda: lru.eigenvalues(np.zeros(3), np.zeros(2)), "same shape"),
        (
            lambda: lru.lru_forward(lru.init_lru(3, 2, rng=0), np.ones((5, 3), dtype=int)),
            "expected x to be a real float array, got dtype int64",
        ),
        (
            lambda: lru.lru_forward(lru.init_lru(3, 2, rng=0), np.array([[None] * 3])),
            "expected x to be a real float array, got dtype object",
        ),
    ],
)
def test_bad_input_names_the_argument(call, message):
    with pytest.raises((TypeError, ValueError), match=message):
        call()


def test_numpy_integer_sizes_are_accepted():
    nu_log, theta_log = lru.ring_init(np.int64(5), rng=0)
    assert nu_log.shape == theta_log.shape == (5,)
    assert lru.init_lru(np.int32(2), np.int64(3), rng=0).B.shape == (3, 2)


# --- PyTorch layers ---------------------------------------------------------------------------

import torch  # noqa: E402

from mamba_edu import scan  # noqa: E402


@pytest.mark.parametrize("backend", ["numba", "torch"])
@pytest.mark.parametrize("L", [1, 5, 64, 100])
def test_diagonal_scan_matches_the_numpy_loop(L, backend):
    rng = np.random.default_rng(L)
    lam = rng.uniform(0.3, 0.99, 6) * np.exp(1j * rng.uniform(-3, 3, 6))
    x = rng.standard_normal((2, L, 6)) + 1j * rng.standard_normal((2, L, 6))
    got = lru.diagonal_scan(torch.tensor(lam), torch.tensor(x), backend=backend).numpy()
    want = scan.sequential_scan(
        np.broadcast_to(lam[None, :, None], (2, 6, L)), x.transpose(0, 2, 1)
    )
    np.testing.assert_allclose(got, want.transpose(0, 2, 1), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_diagonal_scan_gradients_match_autograd_of_the_loop(backend):
    rng = np.random.default_rng(0)
    lam_np = rng.uniform(0.5, 0.95, 3) * np.exp(1j * rng.uniform(-1, 1, 3))
    x_np = rng.standard_normal((1, 9, 3)) + 1j * rng.standard_normal((1, 9, 3))

    def loop(lam, x):
        h, out = torch.zeros(3, dtype=torch.complex128), []
        for t in range(x.shape[1]):
            h = lam * h + x[0, t]
            out.append(h)
        return torch.stack(out)[None]

    grads = []
    for f in (lambda lam, x: lru.diagonal_scan(lam, x, backend=backend), loop):
        lam = torch.tensor(lam_np, requires_grad=True)
        x = torch.tensor(x_np, requires_grad=True)
        f(lam, x).abs().pow(2).sum().backward()
        grads.append((lam.grad.numpy(), x.grad.numpy()))
    np.testing.assert_allclose(grads[0][0], grads[1][0], rtol=1e-10)
    np.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-10)


@pytest.mark.parametrize("gamma", [True, False])
def test_torch_layer_matches_numpy_reference(gamma):
    layer = lru.LRULayer(3, 5, r_min=0.5, r_max=0.95, gamma=gamma, seed=7).double()
    params = lru.init_lru(3, 5, 0.5, 0.95, rng=7)
    u = np.random.default_rng(1).standard_normal((1, 20, 3))
    with torch.no_grad():
        got = layer(torch.tensor(u)).numpy()[0]
    # the layer keeps float32 parameters' precision, cast to float64 here
    np.testing.assert_allclose(
        got, lru.lru_forward(params, u[0], normalize=gamma), rtol=1e-4, atol=1e-5
    )


def test_re_im_layer_can_leave_the_unit_circle_but_exp_cannot():
    free = lru.LRULayer(2, 4, parametrization="re_im", seed=0)
    with torch.no_grad():
        free.lam_re += 1.0
    assert free.eigenvalues().abs().max() > 1
    stable = lru.LRULayer(2, 4, parametrization="exp", seed=0)
    with torch.no_grad():
        stable.nu_log -= 30.0
    assert stable.eigenvalues().abs().max() <= 1


def test_layer_and_scan_errors():
    with pytest.raises(ValueError, match="parametrization 'exp' or 're_im'"):
        lru.LRULayer(2, 2, parametrization="polar")
    with pytest.raises(ValueError, match=r"lam \(N,\) and x \(batch, L, N\)"):
        lru.diagonal_scan(
            torch.ones(3, dtype=torch.complex64), torch.ones(2, 4, 2, dtype=torch.complex64)
        )
