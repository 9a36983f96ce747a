"""The vanilla RNN: hand-written BPTT against torch autograd (float64), Jacobian norms, decay rates."""

import numpy as np
import pytest
import torch

from mamba_edu import rnn

TORCH_ACT = {"tanh": torch.tanh, "relu": torch.relu, "identity": lambda a: a}


def torch_loss(params, x, target, nonlinearity, h0=None):
    """An independent implementation of the same network and loss, differentiated by autograd."""
    p = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    N = p["W"].shape[0]
    h_prev = torch.zeros(N, dtype=torch.float64) if h0 is None else torch.tensor(h0)
    p["h0"] = h_prev.clone().requires_grad_(True)
    h_prev = p["h0"]
    loss = torch.zeros((), dtype=torch.float64)
    for t in range(x.shape[0]):
        h_prev = TORCH_ACT[nonlinearity](p["W"] @ h_prev + p["U"] @ torch.tensor(x[t]) + p["b"])
        y = p["V"] @ h_prev + p["c"]
        loss = loss + 0.5 * ((y - torch.tensor(target[t])) ** 2).sum()
    loss.backward()
    return loss.item(), {k: v.grad.numpy() for k, v in p.items()}


def problem(L, D=3, N=5, P=2, radius=0.9, seed=0):
    rng = np.random.default_rng(seed + 100)
    params = rnn.init_rnn(D, N, P, radius=radius, seed=seed)
    params["b"] = rng.standard_normal(N) * 0.1  # nonzero, so db is tested for real
    params["c"] = rng.standard_normal(P) * 0.1
    return params, rng.standard_normal((L, D)), rng.standard_normal((L, P))


def rel_err(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


@pytest.mark.parametrize("nonlinearity", rnn.NONLINEARITIES)
@pytest.mark.parametrize("L", [1, 2, 17])
def test_bptt_matches_torch_autograd(nonlinearity, L):
    params, x, target = problem(L, seed=L)
    ours = rnn.bptt(params, x, target, nonlinearity)
    loss, grads = torch_loss(params, x, target, nonlinearity)
    assert ours.loss == pytest.approx(loss, rel=1e-12)
    assert set(ours.grads) == {"W", "U", "b", "V", "c", "h0"}
    for name, g in grads.items():
        assert ours.grads[name].shape == g.shape, name
        assert rel_err(ours.grads[name], g) <= 1e-8, name


def test_bptt_with_initial_state_matches_torch():
    params, x, target = problem(9, seed=3)
    h0 = np.linspace(-0.5, 0.5, 5)
    ours = rnn.bptt(params, x, target, "tanh", h0=h0)
    _, grads = torch_loss(params, x, target, "tanh", h0=h0)
    for name, g in grads.items():
        assert rel_err(ours.grads[name], g) <= 1e-8, name


def test_forward_matches_a_plain_loop_and_batches():
    params, x, _ = problem(6)
    h = rnn.rnn_forward(x, params["W"], params["U"], params["b"], "relu")
    state = np.zeros(5)
    for t in range(6):
        state = np.maximum(params["W"] @ state + params["U"] @ x[t] + params["b"], 0)
        np.testing.assert_allclose(h[t], state, rtol=1e-14)
    batch = np.stack([x, 2 * x])
    hb = rnn.rnn_forward(batch, params["W"], params["U"], params["b"], "relu")
    np.testing.assert_allclose(hb[0], h, rtol=1e-14)
    np.testing.assert_allclose(
        hb[1], rnn.rnn_forward(2 * x, params["W"], params["U"], params["b"], "relu"), rtol=1e-14
    )


@pytest.mark.parametrize("nonlinearity", rnn.NONLINEARITIES)
def test_state_jacobians_match_torch(nonlinearity):
    params, x, _ = problem(7, seed=5, radius=1.1)
    W, U, b = params["W"], params["U"], params["b"]
    h = rnn.rnn_forward(x, W, U, b, nonlinearity)
    J = rnn.state_jacobians(h, W, nonlinearity)
    act = TORCH_ACT[nonlinearity]
    Wt, Ut, bt = (torch.tensor(a) for a in (W, U, b))
    for t in range(7):

        def run_from(state, t=t):
            for s in range(t + 1, 7):
                state = act(Wt @ state + Ut @ torch.tensor(x[s]) + bt)
            return state

        expected = torch.autograd.functional.jacobian(run_from, torch.tensor(h[t])).numpy()
        np.testing.assert_allclose(J[t], expected, rtol=1e-10, atol=1e-13)
    norms = rnn.jacobian_norms(h, W, nonlinearity)
    assert norms[-1] == pytest.approx(1.0)
    np.testing.assert_allclose(norms, [np.linalg.svd(j, compute_uv=False)[0] for j in J])


@pytest.mark.parametrize("radius", [0.7, 0.9, 1.1])
def test_linear_network_gradients_decay_at_the_spectral_radius(radius):
    W = rnn.random_recurrent_matrix(16, radius, seed=4)
    assert rnn.spectral_radius(W) == pytest.approx(radius)
    norms = rnn.jacobian_norms(np.zeros((100, 16)), W, "identity")
    assert rnn.decay_rate(norms) == pytest.approx(np.log(radius), rel=0.05)


def test_tanh_decays_at_least_as_fast_as_the_linear_bound():
    W = rnn.random_recurrent_matrix(16, 0.95, seed=2)
    U = np.random.default_rng(0).standard_normal((16, 1))
    x = np.random.default_rng(1).standard_normal((100, 1))
    h = rnn.rnn_forward(x, W, U, np.zeros(16), "tanh")
    assert rnn.decay_rate(rnn.jacobian_norms(h, W, "tanh")) < np.log(0.95)


def test_orthogonal_matrix_has_exact_geometric_norms():
    Q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((6, 6)))
    norms = rnn.jacobian_norms(np.zeros((10, 6)), 0.8 * Q, "identity")
    np.testing.assert_allclose(norms[::-1], 0.8 ** np.arange(10), rtol=1e-12)


def test_errors_name_the_expected_shapes():
    params, x, target = problem(4)
    with pytest.raises(ValueError, match=r"expected U of shape \(N, D\) = \(5, 3\)"):
        rnn.rnn_forward(x, params["W"], params["U"].T, params["b"])
    with pytest.raises(ValueError, match="nonlinearity"):
        rnn.rnn_forward(x, params["W"], params["U"], params["b"], "sigmoid")
    with pytest.raises(ValueError, match=r"square"):
        rnn.rnn_forward(x, params["W"][:, :3], params["U"], params["b"])
    with pytest.raises(ValueError, match=r"target of shape \(L, P\) = \(4, 2\)"):
        rnn.bptt(params, x, target.T)
    with pytest.raises(ValueError, match=r"dh of shape"):
        rnn.rnn_backward(x, np.zeros((4, 5)), np.zeros((4, 4)), params["W"])
    with pytest.raises(TypeError, match="expected x to be a real float array, got dtype complex"):
        rnn.rnn_forward(x.astype(complex), params["W"], params["U"], params["b"])
    with pytest.raises(TypeError, match="expected W to be a real float array, got dtype bool"):
        rnn.rnn_forward(x, params["W"] > 0, params["U"], params["b"])
    with pytest.raises(ValueError, match="at least|L >= 3"):
        rnn.decay_rate(np.ones(2))
