"""Linear recurrences: recurrent = unrolled = diagonal (float64), conjugate pairs, defective A."""

import numpy as np
import pytest
import torch

from mamba_edu import linear_rnn as lr


def system(N=6, D=2, P=3, radius=0.9, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((N, N))
    A *= radius / np.max(np.abs(np.linalg.eigvals(A)))
    return A, rng.standard_normal((N, D)), rng.standard_normal((P, N))


def rel_err(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


def plain_loop(x, A, B, C):
    """Independent reference: the recurrence written out with Python scalars."""
    N, L = A.shape[0], x.shape[0]
    h = [0.0] * N
    out = []
    for t in range(L):
        h = [
            sum(A[i][j] * h[j] for j in range(N)) + sum(B[i][d] * x[t][d] for d in range(len(x[t])))
            for i in range(N)
        ]
        out.append([sum(C[p][i] * h[i] for i in range(N)) for p in range(len(C))])
    return np.array(out)


@pytest.mark.parametrize("L", [1, 2, 40])
def test_recurrence_and_unrolled_form_agree(L):
    A, B, C = system(seed=L)
    x = np.random.default_rng(1).standard_normal((L, 2))
    y = lr.linear_rnn(x, A, B, C)
    assert y.shape == (L, 3)
    assert rel_err(y, plain_loop(x, A, B, C)) <= 1e-12
    assert rel_err(lr.unrolled(x, A, B, C), y) <= 1e-8


def test_kernel_is_C_A_power_B():
    A, B, C = system()
    K = lr.convolution_kernel(A, B, C, 5)
    assert K.shape == (5, 3, 2)
    for j in range(5):
        np.testing.assert_allclose(K[j], C @ np.linalg.matrix_power(A, j) @ B, rtol=1e-12)


def test_states_are_returned():
    A, B, C = system()
    x = np.random.default_rng(2).standard_normal((5, 2))
    y, h = lr.linear_rnn(x, A, B, C, return_states=True)
    np.testing.assert_allclose(h[0], B @ x[0])
    np.testing.assert_allclose(y, h @ C.T)


@pytest.mark.parametrize("half", [False, True])
@pytest.mark.parametrize("L", [1, 3, 64])
def test_diagonal_matches_dense(half, L):
    A, B, C = system(N=8, seed=3)
    lam = np.linalg.eigvals(A)
    assert np.any(np.abs(lam.imag) > 1e-3), "the test needs complex eigenvalues"
    x = np.random.default_rng(4).standard_normal((L, 2))
    diag = lr.diagonalize(A, B, C, half=half)
    y = lr.diagonal_rnn(x, *diag)
    assert y.dtype == np.float64
    assert rel_err(y, lr.linear_rnn(x, A, B, C)) <= 1e-8
    n_complex = int(np.sum(np.abs(lam.imag) > 1e-12))
    assert diag.lam.shape == ((8 - n_complex // 2,) if half else (8,))
    expected = lam[lam.imag >= -1e-12] if half else lam
    np.testing.assert_allclose(np.sort_complex(diag.lam), np.sort_complex(expected), atol=1e-12)


def test_diagonal_eigenvalues_are_the_eigenvalues_of_A():
    A, B, C = system(N=5, seed=7)
    diag = lr.diagonalize(A, B, C)
    for lam in diag.lam:
        assert abs(np.linalg.det(A - lam * np.eye(5))) < 1e-10


def test_rotation_only_complex_pair():
    theta = 0.3
    A = 0.95 * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    B, C = np.array([[1.0], [0.0]]), np.array([[1.0, 0.0]])
    half = lr.diagonalize(A, B, C, half=True)
    assert half.lam.shape == (1,)
    assert half.lam[0] == pytest.approx(0.95 * np.exp(1j * theta))
    x = np.zeros((30, 1))
    x[0] = 1.0
    # the impulse response of the first coordinate is 0.95^t cos(θ t)
    np.testing.assert_allclose(
        lr.diagonal_rnn(x, *half)[:, 0], 0.95 ** np.arange(30) * np.cos(theta * np.arange(30))
    )


def test_repeated_but_diagonalizable_eigenvalue_is_fine():
    S = np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0]])
    A = S @ np.diag([0.5, 0.5, -0.3]) @ np.linalg.inv(S)
    B, C = np.ones((3, 1)), np.ones((2, 3))
    x = np.random.default_rng(0).standard_normal((20, 1))
    y = lr.diagonal_rnn(x, *lr.diagonalize(A, B, C))
    assert rel_err(y, lr.linear_rnn(x, A, B, C)) <= 1e-8


@pytest.mark.parametrize(
    "A",
    [
        np.array([[0.5, 1.0], [0.0, 0.5]]),
        np.array([[0.9, 1.0, 0.0], [0.0, 0.9, 1.0], [0.0, 0.0, 0.9]]),
        np.array([[0.0, 1.0], [0.0, 0.0]]),
    ],
    ids=["jordan-2", "jordan-3", "nilpotent"],
)
def test_defective_matrix_raises_a_clear_error(A):
    N = A.shape[0]
    with pytest.raises(lr.NotDiagonalizableError) as info:
        lr.diagonalize(A, np.ones((N, 1)), np.ones((1, N)))
    message = str(info.value)
    assert "independent eigenvector" in message and "condition number" in message
    assert f"appears {N} times" in message


def test_nearly_defective_matrix_is_refused_and_limit_is_adjustable():
    A = np.array([[0.5, 1.0], [1e-14, 0.5]])  # eigenvalues 0.5 ± 1e-7, eigenvectors nearly parallel
    with pytest.raises(lr.NotDiagonalizableError, match="condition number"):
        lr.diagonalize(A, np.ones((2, 1)), np.ones((1, 2)))
    assert lr.diagonalize(A, np.ones((2, 1)), np.ones((1, 2)), max_condition=1e9).condition > 1e5


def test_stability_horizon_and_impulse_response():
    assert lr.is_stable(np.diag([0.5, -0.99]))
    assert not lr.is_stable(np.array([[0.0, 1.01], [-1.01, 0.0]]))  # |λ| = 1.01
    assert lr.memory_horizon(0.9) == pytest.approx(10.0)
    assert lr.memory_horizon(0.9j) == pytest.approx(10.0)
    assert lr.memory_horizon(1.0) == float("inf")
    np.testing.assert_allclose(lr.impulse_response(0.5j, 4), [1, 0.5j, -0.25, -0.125j])


def test_operation_counts():
    dense = lr.step_operations(64, 4, 4, "dense")
    diag = lr.step_operations(64, 4, 4, "diagonal")
    half = lr.step_operations(64, 4, 4, "half")
    assert dense["state"] == 64 * 64 and diag["state"] == 4 * 64 and half["state"] == 2 * 64
    assert dense["total"] == 64 * 64 + 2 * 64 * 4
    assert half["input"] == dense["input"] and half["output"] == dense["output"]
    with pytest.raises(ValueError, match="form"):
        lr.step_operations(4, 1, 1, "sparse")


def test_errors_name_the_expected_shapes():
    A, B, C = system()
    x = np.zeros((5, 2))
    with pytest.raises(ValueError, match=r"expected B of shape \(N, D\) with N = 6"):
        lr.linear_rnn(x, A, B.T, C)
    with pytest.raises(ValueError, match=r"expected x of shape \(L, D\) with D = 2"):
        lr.linear_rnn(np.zeros((5, 3)), A, B, C)
    with pytest.raises(ValueError, match="square"):
        lr.linear_rnn(x, A[:, :4], B, C)
    with pytest.raises(ValueError, match=r"expected C of shape \(P, M\) with M = 6"):
        lr.diagonal_rnn(x, np.ones(6), np.ones((6, 2)), np.ones((3, 5)))
    with pytest.raises(ValueError, match="L >= 1"):
        lr.convolution_kernel(A, B, C, 0)


# ---- the PyTorch layer -----------------------------------------------------------------------


def test_torch_layer_unrolled_equals_recurrent_and_numpy():
    layer = lr.DiagonalLinearRecurrence(3, 5, seed=1).double()
    x = torch.randn(2, 25, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = layer(x)
    assert rel_err(y.detach().numpy(), layer.forward_recurrent(x).detach().numpy()) <= 1e-10
    lam, B, C = layer.system()
    assert np.all(np.abs(lam) < 1)
    expected = lr.diagonal_rnn(x[1].numpy(), lam, B, C) + layer.d.detach().numpy() * x[1].numpy()
    assert rel_err(y[1].detach().numpy(), expected) <= 1e-10


def test_linear_stack_without_mlp_is_linear_in_its_input():
    model = lr.LinearStack(1, 1, H=8, N=4, depth=2, mlp=False).double()
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 1, 12, 1, dtype=torch.float64, generator=g)
    zero = model(torch.zeros_like(a))  # the encoder/decoder biases make it affine
    lhs = model(2.0 * a + b) - zero
    rhs = 2.0 * (model(a) - zero) + (model(b) - zero)
    torch.testing.assert_close(lhs, rhs)
    nonlinear = lr.LinearStack(1, 1, H=8, N=4, depth=2, mlp=True).double()
    zero = nonlinear(torch.zeros_like(a))
    assert not torch.allclose(nonlinear(2 * a) - zero, 2 * (nonlinear(a) - zero))


def test_linear_stack_last_step_readout():
    model = lr.LinearStack(1, 2, H=4, N=3, readout="last").double()
    x = torch.randn(5, 9, 1, dtype=torch.float64)
    assert model(x).shape == (5, 2)
    model.readout = "sequence"
    full = model(x)
    assert full.shape == (5, 9, 2)
    model.readout = "last"
    torch.testing.assert_close(model(x), full[:, -1])
    with pytest.raises(ValueError, match="readout"):
        lr.LinearStack(1, 1, readout="mean")
