"""Parity: the numba CPU scan kernels (kernels/scan_cpu.py) against the NumPy reference and autograd."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_cases import assert_close, make_inputs, reference
from mamba_edu.kernels import scan_cpu

from mamba_edu import scan

DTYPES = [np.float32, np.float64, np.complex64, np.complex128]

shapes = st.tuples(
    st.lists(st.integers(1, 4), min_size=0, max_size=2),  # leading dims
    st.sampled_from([1, 2, 3, 7, 16, 31, 100, 257]),  # L: 1, powers of two and not
)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@settings(max_examples=20, deadline=None)
@given(shape=shapes, seed=st.integers(0, 10_000), with_h0=st.booleans())
def test_forward_and_backward_match_the_reference(dtype, shape, seed, with_h0):
    lead, L = shape
    a, b, h0, g = make_inputs(seed, (*lead, L), dtype, with_h0)
    h_ref, da_ref, db_ref, dh0_ref = reference(a, b, h0, g)
    h = scan_cpu.scan_forward(a, b, h0)
    assert h.dtype == np.dtype(dtype) and h.shape == a.shape
    assert_close(h, h_ref, dtype, "h")
    da, db, dh0 = scan_cpu.scan_backward(a, h, g, h0)
    assert_close(da, da_ref, dtype, "da")
    assert_close(db, db_ref, dtype, "db")
    assert_close(dh0, dh0_ref, dtype, "dh0")


@pytest.mark.parametrize("dtype", [np.float64, np.complex128], ids=str)
@pytest.mark.parametrize("L, chunk", [(1, 4), (10, 3), (64, 16), (100, 7), (5, 100)])
def test_time_chunked_kernel_matches_the_reference(dtype, L, chunk):
    a, b, h0, g = make_inputs(L, (3, L), dtype, with_h0=True)
    h_ref = reference(a, b, h0, g)[0]
    assert_close(scan_cpu.scan_forward_chunked(a, b, h0, chunk=chunk), h_ref, dtype, "h")


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128, torch.float32], ids=str)
@pytest.mark.parametrize("with_h0", [False, True])
@pytest.mark.parametrize("L", [1, 13, 64])
def test_autograd_function_matches_autograd_of_the_torch_loop(dtype, with_h0, L):
    a, b, h0, g = (
        None if x is None else torch.from_numpy(x)
        for x in make_inputs(L, (2, 3, L), torch.empty(0, dtype=dtype).numpy().dtype, with_h0)
    )
    leaves = [a, b] + ([h0] if with_h0 else [])
    x1 = [t.clone().requires_grad_(True) for t in leaves]
    x2 = [t.clone().requires_grad_(True) for t in leaves]
    h1 = scan_cpu.first_order_scan(*x1, backend="numba")
    h2 = scan_cpu.first_order_scan(*x2, backend="torch")  # the pure-torch loop
    assert h1.grad_fn is not None and "FirstOrderScan" in type(h1.grad_fn).__name__
    h1.backward(g)
    h2.backward(g)
    np_dtype = h1.detach().numpy().dtype
    assert_close(h1.detach(), h2.detach().numpy(), np_dtype, "h")
    for name, p1, p2 in zip(["da", "db", "dh0"], x1, x2, strict=False):
        assert_close(p1.grad, p2.grad.numpy(), np_dtype, name)


def test_gradcheck_real_and_complex():
    gen = torch.Generator().manual_seed(0)
    for dtype in (torch.float64, torch.complex128):
        a = (0.9 * torch.rand(1, 5, generator=gen)).to(dtype).requires_grad_(True)
        b = torch.randn(1, 5, generator=gen).to(dtype).requires_grad_(True)
        h0 = torch.randn(1, generator=gen).to(dtype).requires_grad_(True)
        assert torch.autograd.gradcheck(scan_cpu.FirstOrderScan.apply, (a, b, h0))


def test_lazily_conjugated_gradients_are_handled():
    a, b, _, _ = (
        torch.from_numpy(x) if x is not None else None
        for x in make_inputs(2, (2, 9), np.complex128)
    )
    x1 = [t.clone().requires_grad_(True) for t in (a, b)]
    x2 = [t.clone().requires_grad_(True) for t in (a, b)]
    # conj() of the output makes autograd pass a conjugate view as the incoming gradient
    (scan_cpu.first_order_scan(*x1).conj() * torch.arange(9)).real.sum().backward()
    (scan_cpu.torch_scan(*x2).conj() * torch.arange(9)).real.sum().backward()
    for p1, p2 in zip(x1, x2, strict=True):
        assert_close(p1.grad, p2.grad.numpy(), np.complex128, "gradient")


def test_auto_backend_falls_back_to_the_torch_loop_for_half_precision():
    a = torch.full((2, 5), 0.5, dtype=torch.bfloat16, requires_grad=True)
    b = torch.ones(2, 5, dtype=torch.bfloat16, requires_grad=True)
    h = scan_cpu.first_order_scan(a, b)
    assert "FirstOrderScan" not in type(h.grad_fn).__name__
    np.testing.assert_allclose(h[0].detach().float().numpy(), [1, 1.5, 1.75, 1.875, 1.9375])
    h.sum().backward()
    assert b.grad is not None
    with pytest.raises(TypeError, match="backend='torch'"):
        scan_cpu.first_order_scan(a, b, backend="numba")
    with pytest.raises(ValueError, match="backend"):
        scan_cpu.first_order_scan(a, b, backend="cuda")


# ----------------------------------------------------------------------------------------------
# Bad input: a clear error, or handled
# ----------------------------------------------------------------------------------------------


def test_non_contiguous_inputs_are_handled():
    a, b, _, g = make_inputs(0, (40, 6), np.float64)
    a_t, b_t, g_t = a.T, b.T, g.T  # (6, 40), not C-contiguous
    assert not a_t.flags.c_contiguous
    h_ref, da_ref, db_ref, _ = reference(
        np.ascontiguousarray(a_t), np.ascontiguousarray(b_t), None, np.ascontiguousarray(g_t)
    )
    h = scan_cpu.scan_forward(a_t, b_t)
    assert_close(h, h_ref, np.float64, "h")
    da, db, _ = scan_cpu.scan_backward(a_t, h, g_t)
    assert_close(da, da_ref, np.float64, "da")
    ta = torch.from_numpy(a_t).requires_grad_(True)
    tb = torch.from_numpy(b_t).requires_grad_(True)
    scan_cpu.first_order_scan(ta, tb).backward(torch.from_numpy(g_t))
    assert_close(ta.grad, da_ref, np.float64, "da through autograd")


def test_length_zero_is_handled():
    h = scan_cpu.scan_forward(np.ones((3, 0)), np.ones((3, 0)))
    assert h.shape == (3, 0)
    da, db, dh0 = scan_cpu.scan_backward(np.ones((3, 0)), h, np.ones((3, 0)))
    assert da.shape == db.shape == (3, 0) and dh0.shape == (3,)
    assert scan_cpu.scan_forward_chunked(np.ones((3, 0)), np.ones((3, 0))).shape == (3, 0)
    t = scan_cpu.first_order_scan(torch.ones(2, 0), torch.ones(2, 0))
    assert t.shape == (2, 0)


@pytest.mark.parametrize(
    "a, b, h0, error, message",
    [
        (np.ones((2, 3)), np.ones((2, 4)), None, ValueError, r"a.shape=\(2, 3\), b.shape=\(2, 4\)"),
        (np.ones(3), np.ones(3, np.float32), None, TypeError, "same dtype"),
        (np.ones(3, int), np.ones(3, int), None, TypeError, "float32, float64, complex64"),
        (np.ones(3, np.float16), np.ones(3, np.float16), None, TypeError, "float16"),
        (np.ones((2, 3)), np.ones((2, 3)), np.ones(3), ValueError, r"h0 of shape \(2,\)"),
        (
            np.ones((2, 3)),
            np.ones((2, 3)),
            np.ones(2, np.float32),
            TypeError,
            "h0 of dtype float64",
        ),
        (np.array(1.0), np.array(1.0), None, ValueError, "time last"),
        ([1.0, 2.0], np.ones(2), None, TypeError, "NumPy array"),
    ],
)
def test_bad_numpy_input_is_named(a, b, h0, error, message):
    with pytest.raises(error, match=message):
        scan_cpu.scan_forward(a, b, h0)


def test_bad_gradient_and_chunk_are_named():
    a = np.ones((2, 3))
    with pytest.raises(ValueError, match=r"g of shape \(2, 3\)"):
        scan_cpu.scan_backward(a, a, np.ones((3, 2)))
    with pytest.raises(TypeError, match="g of dtype float64"):
        scan_cpu.scan_backward(a, a, np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="positive integer"):
        scan_cpu.scan_forward_chunked(a, a, chunk=0)


def test_bad_tensor_input_is_named():
    with pytest.raises(ValueError, match=r"a.shape=\(2, 3\), b.shape=\(3, 2\)"):
        scan_cpu.first_order_scan(torch.ones(2, 3), torch.ones(3, 2))
    with pytest.raises(TypeError, match="same dtype"):
        scan_cpu.first_order_scan(torch.ones(3), torch.ones(3, dtype=torch.float64))
    with pytest.raises(TypeError, match="floating-point or complex"):
        scan_cpu.first_order_scan(
            torch.ones(3, dtype=torch.int64), torch.ones(3, dtype=torch.int64)
        )
    with pytest.raises(ValueError, match=r"h0 of shape \(2,\)"):
        scan_cpu.first_order_scan(torch.ones(2, 3), torch.ones(2, 3), torch.ones(3))
    with pytest.raises(TypeError, match="torch.Tensor"):
        scan_cpu.first_order_scan(np.ones(3), torch.ones(3))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128])
@pytest.mark.parametrize("which", ["a", "b", "h0"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_propagate_like_the_reference(dtype, which, value):
    """A NaN or inf in a, b or h0 reaches the same h and gradients as in the NumPy reference."""
    rng = np.random.default_rng(0)
    arrays = dict(
        a=rng.uniform(0.5, 0.99, (3, 9)).astype(dtype),
        b=rng.standard_normal((3, 9)).astype(dtype),
        h0=rng.standard_normal(3).astype(dtype),
    )
    arrays[which][(1, 3) if which != "h0" else 1] = value
    a, b, h0 = arrays["a"], arrays["b"], arrays["h0"]
    g = np.ones(a.shape, dtype)
    with np.errstate(all="ignore"):
        ref = scan.sequential_scan(a, b, h0)
        expected = (ref, *scan.scan_backward(a, ref, g, h0))
        h = scan_cpu.scan_forward(a, b, h0)
        got = (h, *scan_cpu.scan_backward(a, h, g, h0))
        chunked = scan_cpu.scan_forward_chunked(a, b, h0, 4)
    assert np.isnan(ref).any() or np.isinf(ref).any()
    for name, x, y in zip(("h", "da", "db", "dh0"), got, expected, strict=True):
        np.testing.assert_array_equal(np.isnan(x), np.isnan(y), err_msg=f"NaN in {name}")
        np.testing.assert_array_equal(np.isinf(x), np.isinf(y), err_msg=f"inf in {name}")
    np.testing.assert_array_equal(np.isnan(chunked), np.isnan(ref), err_msg="NaN, chunked")
