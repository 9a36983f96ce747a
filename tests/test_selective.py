"""The NumPy selective scan reference (mamba_edu.selective) against independent formulations.

The official implementation is compared in tests/test_parity_mamba_ssm.py.
"""

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mamba_edu import selective


def make_inputs(batch=2, dim=3, length=5, d_state=4, seed=0, dtype=np.float64):
    return selective.random_inputs(batch, dim, length, d_state, seed=seed, dtype=dtype)


def closed_form(x, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    """Every output element as an explicit sum over past inputs, scalar by scalar, no recurrence:
    y_t = Σ_n C_t[n] Σ_{k<=t} exp(A[n] Σ_{j=k+1..t} Δ_j) Δ_k B_k[n] x_k."""
    batch, dim, length = x.shape
    d_state = A.shape[1]
    dt = delta + (0 if delta_bias is None else delta_bias[:, None])
    if delta_softplus:
        dt = np.log(1 + np.exp(dt))
    out = np.zeros((batch, dim, length))
    for b in range(batch):
        for d in range(dim):
            for t in range(length):
                total = 0.0
                for n in range(d_state):
                    for k in range(t + 1):
                        decay = np.exp(A[d, n] * dt[b, d, k + 1 : t + 1].sum())
                        total += C[b, n, t] * decay * dt[b, d, k] * B[b, n, k] * x[b, d, k]
                if D is not None:
                    total += D[d] * x[b, d, t]
                if z is not None:
                    total *= z[b, d, t] / (1 + np.exp(-z[b, d, t]))
                out[b, d, t] = total
    return out


@settings(max_examples=25, deadline=None)
@given(
    batch=st.integers(1, 2),
    dim=st.integers(1, 3),
    length=st.integers(1, 7),
    d_state=st.integers(1, 4),
    seed=st.integers(0, 10_000),
    use_d=st.booleans(),
    use_z=st.booleans(),
    use_bias=st.booleans(),
    softplus=st.booleans(),
)
def test_matches_closed_form(batch, dim, length, d_state, seed, use_d, use_z, use_bias, softplus):
    args = make_inputs(batch, dim, length, d_state, seed)
    args["D"] = args["D"] if use_d else None
    args["z"] = args["z"] if use_z else None
    args["delta_bias"] = args["delta_bias"] if use_bias else None
    got = selective.selective_scan(**args, delta_softplus=softplus)
    np.testing.assert_allclose(
        got, closed_form(**args, delta_softplus=softplus), rtol=1e-12, atol=1e-12
    )


def test_last_state_matches_the_recurrence_by_hand():
    args = make_inputs(batch=1, dim=1, length=3, d_state=2, seed=3)
    u, dt, A, B = args["x"][0, 0], args["delta"][0, 0], args["A"][0], args["B"][0]
    x = np.zeros(2)
    for t in range(3):
        x = np.exp(dt[t] * A) * x + dt[t] * B[:, t] * u[t]
    _, last = selective.selective_scan(
        args["x"], args["delta"], args["A"], args["B"], args["C"], return_last_state=True
    )
    np.testing.assert_allclose(last[0, 0], x, rtol=1e-14)


def test_step_by_step_decode_equals_the_whole_sequence():
    args = make_inputs(batch=2, dim=3, length=6, d_state=4, seed=7)
    full, last = selective.selective_scan(**args, delta_softplus=True, return_last_state=True)
    state = np.zeros((2, 3, 4))
    outs = []
    for t in range(6):
        y, state = selective.selective_step(
            state, args["x"][:, :, t], args["delta"][:, :, t], args["A"], args["B"][:, :, t],
            args["C"][:, :, t], args["D"], args["z"][:, :, t], args["delta_bias"], True,
        )  # fmt: skip
        outs.append(y)
    np.testing.assert_allclose(np.stack(outs, axis=2), full, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(state, last, rtol=1e-13, atol=1e-13)


def test_softplus_and_silu():
    x = np.array([-30.0, -1.0, 0.0, 1.0, 19.0, 25.0])
    np.testing.assert_allclose(
        selective.softplus(x)[:5], np.log1p(np.exp(x[:5])), rtol=1e-14, atol=1e-300
    )
    assert selective.softplus(x)[5] == 25.0  # torch's threshold: x itself above 20
    np.testing.assert_allclose(selective.silu(x), x / (1 + np.exp(-x)), rtol=1e-14)


def test_computes_in_float64_by_default_and_float32_on_request():
    args = make_inputs(dtype=np.float32)
    assert selective.selective_scan(**args).dtype == np.float64
    y32 = selective.selective_scan(**args, dtype=np.float32)
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, selective.selective_scan(**args), rtol=1e-4, atol=1e-5)


def test_inputs_are_not_modified_and_non_contiguous_views_work():
    args = make_inputs(length=6)
    copies = {k: v.copy() for k, v in args.items()}
    expected = selective.selective_scan(**args, delta_softplus=True)
    for k, v in args.items():
        np.testing.assert_array_equal(v, copies[k])
    # the same numbers as Fortran-ordered (non-contiguous) arrays
    fortran = {k: np.asfortranarray(v) for k, v in args.items()}
    assert not fortran["x"].flags.c_contiguous
    np.testing.assert_array_equal(
        selective.selective_scan(**fortran, delta_softplus=True), expected
    )


def _msg(text):
    return re.escape(text)


@pytest.mark.parametrize(
    "change, error, message",
    [
        (dict(x=np.zeros((2, 3))), ValueError, "expected x of shape (batch, D, L)"),
        (dict(delta=np.zeros((2, 5, 3))), ValueError, "expected delta of shape (batch, D, L) = (2, 3, 5), got (2, 5, 3)"),
        (dict(A=np.zeros((4, 3))), ValueError, "expected A of shape (D, N) with D = 3 (from x), got (4, 3)"),
        (dict(B=np.zeros((2, 5, 4))), ValueError, "expected B of shape (batch, N, L) = (2, 4, 5), got (2, 5, 4)"),
        (dict(C=np.zeros((1, 4, 5))), ValueError, "expected C of shape (batch, N, L) = (2, 4, 5), got (1, 4, 5)"),
        (dict(D=np.zeros(4)), ValueError, "expected D of shape (D,) = (3,), got (4,)"),
        (dict(z=np.zeros((2, 3, 4))), ValueError, "expected z of shape (batch, D, L) = (2, 3, 5), got (2, 3, 4)"),
        (dict(delta_bias=np.zeros((3, 1))), ValueError, "expected delta_bias of shape (D,) = (3,), got (3, 1)"),
        (dict(A=np.zeros((3, 4), complex)), TypeError, "expected A to be a real float array, got dtype complex"),
        (dict(x=np.array([["a"]])), TypeError, "expected x to be a real float array"),
    ],
)  # fmt: skip
def test_bad_input_is_named(change, error, message):
    args = make_inputs()
    args.update(change)
    with pytest.raises(error, match=_msg(message)):
        selective.selective_scan(**args)


def test_empty_sequence_is_refused():
    args = make_inputs(length=1)
    args = {k: (v[..., :0] if v.ndim == 3 else v) for k, v in args.items()}
    with pytest.raises(ValueError, match="L >= 1"):
        selective.selective_scan(**args)


def test_step_rejects_bad_state():
    args = make_inputs(length=1)
    with pytest.raises(
        ValueError, match=_msg("expected x of shape (batch, D) = (2, 3), got (2, 4)")
    ):
        selective.selective_step(
            np.zeros((2, 3, 4)), np.zeros((2, 4)), args["delta"][..., 0], args["A"],
            args["B"][..., 0], args["C"][..., 0],
        )  # fmt: skip
    with pytest.raises(ValueError, match="state of shape"):
        selective.selective_step(np.zeros((3, 4)), *[None] * 5)


def test_materialized_scan_equals_the_loop():
    args = make_inputs(2, 3, 7, 4, seed=8)
    for softplus in (True, False):
        expected = selective.selective_scan(**args, delta_softplus=softplus)
        got = selective.selective_scan_materialized(**args, delta_softplus=softplus)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


def test_influence_is_the_response_to_unit_impulses():
    rng = np.random.default_rng(3)
    delta, a = rng.uniform(0.0, 2.0, 9), -1.3
    M = selective.influence(delta, a)
    for s in range(9):  # feed u = e_s through x_t = exp(Δ_t a) x_{t−1} + Δ_t u_t
        x, column = 0.0, []
        for t in range(9):
            x = np.exp(delta[t] * a) * x + delta[t] * (t == s)
            column.append(x)
        np.testing.assert_allclose(M[:, s], column, rtol=1e-12, atol=1e-15)
    # a huge Δ resets: nothing before it survives; Δ = 0 ignores: the token is not written
    reset = selective.influence(np.array([1.0, 1.0, 60.0, 1.0]), -1.0)
    assert np.all(reset[3, :2] < 1e-20) and reset[3, 2] > 1.0
    ignored = selective.influence(np.array([1.0, 0.0, 1.0]), -1.0)
    assert np.all(ignored[:, 1] == 0) and ignored[2, 0] == pytest.approx(np.exp(-1.0))


def test_influence_rejects_bad_input():
    with pytest.raises(ValueError, match="negative decay"):
        selective.influence([0.1, 0.2], 0.5)
    with pytest.raises(ValueError, match=r"delta >= 0"):
        selective.influence([0.1, -0.2], -1.0)
    with pytest.raises(ValueError, match=r"shape \(L,\)"):
        selective.influence(np.ones((2, 2)), -1.0)


@pytest.mark.parametrize("selective_flag", [True, False])
def test_selective_ssm_layer_runs_the_reference_recurrence(selective_flag):
    import torch

    torch.manual_seed(0)
    layer = selective.SelectiveSSM(8, d_state=4, selective=selective_flag).double()
    x = torch.randn(2, 11, 8, dtype=torch.float64)
    u, delta, B, C = (t.detach().numpy() for t in layer.ssm_inputs(x))
    A = -np.exp(layer.A_log.detach().numpy())
    y = selective.selective_scan(
        u, delta, A, B, C, layer.D.detach().numpy(), None, layer.dt_bias.detach().numpy(),
        delta_softplus=True,
    )  # fmt: skip
    expected = x + layer.out_proj(torch.from_numpy(y).transpose(1, 2))
    torch.testing.assert_close(layer(x), expected, rtol=1e-10, atol=1e-12)
    steps = layer.step_sizes(x)
    varies = float(steps.detach().std(dim=2).max())
    if selective_flag:
        assert varies > 1e-3  # Δ depends on the input, so it changes along the sequence
    else:
        assert varies == 0.0 and np.array_equal(np.broadcast_to(B[:, :, :1], B.shape), B)
    # the official initialization: A = −(1 … N), D = 1, Δ = softplus(bias) in [1e-3, 1e-1]
    np.testing.assert_allclose(A[0], -np.arange(1, 5))
    dt = torch.nn.functional.softplus(layer.dt_bias.detach())
    assert float(dt.min()) >= 1e-3 - 1e-9 and float(dt.max()) <= 1e-1 + 1e-9


def test_token_model_shapes_seed_and_errors():
    import torch

    model = selective.TokenSSM(vocab_size=10, n_out=3, d_model=16, seed=4)
    tokens = torch.randint(0, 10, (5, 12))
    logits = model(tokens)
    assert logits.shape == (5, 3, 10)
    same = selective.TokenSSM(vocab_size=10, n_out=3, d_model=16, seed=4)
    torch.testing.assert_close(same(tokens), logits)
    logits.sum().backward()  # gradients reach every parameter through the numba kernel
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    with pytest.raises(ValueError, match="integer dtype"):
        model(torch.randn(5, 12))
    with pytest.raises(ValueError, match="vocab_size >= 2"):
        selective.TokenSSM(vocab_size=1)
    with pytest.raises(ValueError, match=r"x of shape \(batch, L, d_model\)"):
        model.layers[0](torch.randn(4, 16))
