"""The numba selective scan (kernels/selective_cpu.py): forward against the NumPy reference,
backward against torch autograd through an independent torch loop and against finite differences."""

import re

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mamba_edu.kernels import selective_cpu as kc

from mamba_edu import selective

GRAD_KEYS = {
    "x": "dx", "delta": "ddelta", "A": "dA", "B": "dB", "C": "dC", "D": "dD", "z": "dz",
    "delta_bias": "ddelta_bias",
}  # fmt: skip


def make_inputs(
    batch=2, dim=5, length=9, d_state=4, seed=0, dtype=np.float64, options=True, softplus=True
):
    """Random arguments (the package's one maker); without softplus, Δ is positive so that
    exp(ΔA) decays, as in a trained model. Without ``options``, no D, z, delta_bias."""
    args = selective.random_inputs(
        batch, dim, length, d_state, seed=seed, dtype=dtype, D=options, z=options,
        delta_bias=options, delta_softplus=softplus,
    )  # fmt: skip
    return {k: v for k, v in args.items() if v is not None}


def torch_grads(args, softplus, dout, dlast=None):
    """Gradients by torch autograd through the plain torch loop (no hand-derived formula)."""
    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in args.items()}
    out, last = kc.selective_scan_torch(**tensors, delta_softplus=softplus, return_last_state=True)
    loss = (out * torch.tensor(dout)).sum()
    if dlast is not None:
        loss = loss + (last * torch.tensor(dlast)).sum()
    loss.backward()
    return {GRAD_KEYS[k]: t.grad.numpy() for k, t in tensors.items()}


def assert_matches_reference_and_autograd(args, seed, fwd_tol, bwd_tol):
    """The kernels on ``args`` (softplus on): forward and last state against the NumPy
    reference, gradients for a random ∂loss/∂out against torch autograd; tolerances (rtol, atol)."""
    out, last = kc.selective_scan_fwd(**args, delta_softplus=True)
    ref, ref_last = selective.selective_scan(**args, delta_softplus=True, return_last_state=True)
    np.testing.assert_allclose(out, ref, *fwd_tol)
    np.testing.assert_allclose(last, ref_last, *fwd_tol)
    dout = np.random.default_rng(seed).standard_normal(out.shape)
    got = kc.selective_scan_bwd(dout, **args, delta_softplus=True)
    for key, value in torch_grads(args, True, dout).items():
        np.testing.assert_allclose(got[key], value, *bwd_tol, err_msg=key)


shapes = dict(
    batch=st.integers(1, 3),
    dim=st.integers(1, 70),  # 70: more than one block of channels, the last one partial
    length=st.sampled_from([1, 2, 7, 33, 300]),  # 300: several 64-step chunks and a partial one
    d_state=st.integers(1, 17),
    seed=st.integers(0, 10_000),
    options=st.booleans(),
    softplus=st.booleans(),
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**shapes)
def test_forward_matches_reference_float64(batch, dim, length, d_state, seed, options, softplus):
    args = make_inputs(batch, dim, length, d_state, seed, options=options, softplus=softplus)
    out, last = kc.selective_scan_fwd(**args, delta_softplus=softplus)
    ref, ref_last = selective.selective_scan(
        **args, delta_softplus=softplus, return_last_state=True
    )
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(last, ref_last, rtol=1e-12, atol=1e-12)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**shapes)
def test_forward_float32_within_official_tolerance(
    batch, dim, length, d_state, seed, options, softplus
):
    args = make_inputs(
        batch, dim, length, d_state, seed, dtype=np.float32, options=options, softplus=softplus
    )
    out, last = kc.selective_scan_fwd(**args, delta_softplus=softplus)
    assert out.dtype == np.float32 and last.dtype == np.float32
    ref, ref_last = selective.selective_scan(
        **args, delta_softplus=softplus, return_last_state=True
    )
    # the official tests' float32 tolerance is rtol 6e-4, atol 2e-3; this is tighter
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(last, ref_last, rtol=1e-4, atol=1e-4)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**shapes, with_dlast=st.booleans())
def test_backward_matches_torch_autograd(
    batch, dim, length, d_state, seed, options, softplus, with_dlast
):
    args = make_inputs(batch, dim, length, d_state, seed, options=options, softplus=softplus)
    rng = np.random.default_rng(seed + 1)
    dout = rng.standard_normal((batch, dim, length))
    dlast = rng.standard_normal((batch, dim, d_state)) if with_dlast else None
    got = kc.selective_scan_bwd(dout, **args, delta_softplus=softplus, dlast_state=dlast)
    expected = torch_grads(args, softplus, dout, dlast)
    assert set(got) == set(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(got[key], value, rtol=1e-10, atol=1e-10, err_msg=key)


def test_backward_float32_close_to_float64():
    args = make_inputs(2, 40, 50, 16, seed=5)
    dout = np.random.default_rng(6).standard_normal((2, 40, 50))
    g64 = kc.selective_scan_bwd(dout, **args, delta_softplus=True)
    g32 = kc.selective_scan_bwd(
        dout.astype(np.float32), **{k: v.astype(np.float32) for k, v in args.items()},
        delta_softplus=True,
    )  # fmt: skip
    for key in g64:
        assert g32[key].dtype == np.float32
        scale = np.abs(g64[key]).max()
        np.testing.assert_allclose(g32[key], g64[key], rtol=6e-4, atol=2e-3 * scale, err_msg=key)


def test_autograd_function_passes_gradcheck():
    args = make_inputs(1, 3, 4, 2, seed=11)
    tensors = [torch.tensor(args[k], requires_grad=True) for k in GRAD_KEYS]

    def f(*ts):
        out, last = kc.SelectiveScanFn.apply(*ts, True)
        return out, last

    assert torch.autograd.gradcheck(f, tensors, eps=1e-6, atol=1e-7, rtol=1e-6)


def test_backend_auto_numba_and_torch_agree_and_train():
    args = make_inputs(2, 6, 12, 4, seed=2, dtype=np.float32)
    results = {}
    for backend in ("numba", "torch", "auto"):
        tensors = {k: torch.tensor(v, requires_grad=True) for k, v in args.items()}
        out, last = kc.selective_scan(
            **tensors, delta_softplus=True, return_last_state=True, backend=backend
        )
        (out.square().sum() + last.sum()).backward()
        results[backend] = (out.detach(), {k: t.grad for k, t in tensors.items()})
    for backend in ("numba", "auto"):
        torch.testing.assert_close(results[backend][0], results["torch"][0], rtol=1e-4, atol=1e-4)
        for k, g in results["torch"][1].items():
            torch.testing.assert_close(results[backend][1][k], g, rtol=1e-3, atol=1e-3)
    # a half-precision input cannot use numba: auto falls back to the torch loop
    half = {k: torch.tensor(v, dtype=torch.bfloat16) for k, v in args.items()}
    out = kc.selective_scan(**half, delta_softplus=True)
    assert out.dtype == torch.bfloat16
    with pytest.raises(TypeError, match="numba backend needs numba installed and CPU tensors"):
        kc.selective_scan(**half, backend="numba")
    with pytest.raises(ValueError, match="expected backend"):
        kc.selective_scan(**half, backend="cuda")


def test_vexp_matches_numpy_exp():
    for dtype, tol in ((np.float32, 3e-7), (np.float64, 5e-15)):
        y = np.linspace(-80, 80, 20001).astype(dtype)
        out = np.empty_like(y)
        kc._vexp_array(y, out)
        np.testing.assert_allclose(out, np.exp(y.astype(np.float64)), rtol=tol)


def test_vdecay_equals_vexp_for_arguments_up_to_zero():
    for dtype in (np.float32, np.float64):
        finite = -np.geomspace(1e-30, 1e4, 5001)
        y = np.concatenate([finite, [0.0, -0.0, -np.inf, np.nan, -87.0, -87.5, -708.5]])
        y = y.astype(dtype)
        want, got = np.empty_like(y), np.empty_like(y)
        kc._vexp_array(y, want)
        kc._vdecay_array(y, got)
        np.testing.assert_array_equal(got, want)  # bit for bit, NaN where vexp has NaN


def test_decays_only_needs_softplus_and_a_nonpositive_a():
    A = -np.ones((3, 2))
    assert kc._decays_only(A, True)
    assert not kc._decays_only(A, False)  # Δ may be negative without softplus
    A[1, 1] = 0.5
    assert not kc._decays_only(A, True)
    A[1, 1] = np.nan
    assert not kc._decays_only(A, True)


def test_scan_with_a_positive_a_entry_matches_reference():
    args = make_inputs(2, 5, 70, 3, seed=8)
    args["A"] = args["A"].copy()
    args["A"][2, 1] = 0.3  # a growing mode: the kernels must not take the decay-only exp
    assert_matches_reference_and_autograd(
        args, seed=1, fwd_tol=(1e-10, 1e-12), bwd_tol=(1e-9, 1e-11)
    )


def test_vsigmoid_matches_numpy_in_its_own_dtype():
    for dtype, tol in ((np.float32, 3e-7), (np.float64, 5e-15)):
        y = np.linspace(-80, 80, 4001).astype(dtype)
        out = np.empty_like(y)
        kc._vsigmoid_array(y, out)
        wide = y.astype(np.float64)
        np.testing.assert_allclose(out, 1 / (1 + np.exp(-wide)), rtol=tol)


def test_vsoftplus_matches_softplus_in_float64():
    for dtype, tol in ((np.float32, 5e-7), (np.float64, 1e-14)):
        # both sides of torch's threshold at 20, tiny and huge magnitudes, the exp clamp
        y = np.concatenate(
            [np.linspace(-80, 40, 24001), [-1e-30, 0.0, 1e-30, 19.999, 20.0, 20.001, 1e6]]
        ).astype(dtype)
        out = np.empty_like(y)
        kc._vsoftplus_array(y, out)
        wide = y.astype(np.float64)
        expected = np.where(wide > 20, wide, np.log1p(np.exp(np.minimum(wide, 20))))
        np.testing.assert_allclose(out, expected, rtol=tol)
    # below exp's range softplus underflows: zero, not a clamped exp(-87)
    tiny = np.array([-100.0, -1e4], np.float32)
    out = np.empty_like(tiny)
    kc._vsoftplus_array(tiny, out)
    assert np.all(out < 1e-37)


def test_non_contiguous_inputs_are_handled():
    args = make_inputs(2, 7, 10, 3, seed=4)
    expected = kc.selective_scan_fwd(**args, delta_softplus=True)[0]
    # the same numbers in Fortran order and as strided views
    fortran = {k: np.asfortranarray(v) for k, v in args.items()}
    np.testing.assert_allclose(kc.selective_scan_fwd(**fortran, delta_softplus=True)[0], expected)
    doubled = {k: np.repeat(v, 2, axis=-1)[..., ::2] for k, v in args.items()}
    assert not doubled["x"].flags.c_contiguous
    np.testing.assert_allclose(kc.selective_scan_fwd(**doubled, delta_softplus=True)[0], expected)
    tensors = {
        k: torch.tensor(v).transpose(0, -1).contiguous().transpose(0, -1) for k, v in args.items()
    }
    assert not tensors["x"].is_contiguous()
    out = kc.selective_scan(**tensors, delta_softplus=True)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)


def test_time_major_inputs_give_the_same_outputs_and_gradients():
    """x, Δ, z and dout as views of (batch, L, D) memory (the torch module's layout), over several
    64-step chunks and a partial block of channels: the kernels read and write them through their
    strides and must agree with the (batch, D, L)-contiguous call to rounding."""
    args = make_inputs(2, 70, 150, 5, seed=7)
    dout = np.random.default_rng(8).standard_normal(args["x"].shape)

    def time_major(a):
        return np.ascontiguousarray(a.transpose(0, 2, 1)).transpose(0, 2, 1)

    tm = {k: time_major(v) if k in ("x", "delta", "z") else v for k, v in args.items()}
    assert not tm["x"].flags.c_contiguous and kc._is_time_major(tm["x"])
    out, last = kc.selective_scan_fwd(**args, delta_softplus=True)
    out_tm, last_tm = kc.selective_scan_fwd(**tm, delta_softplus=True)
    assert kc._is_time_major(out_tm)  # the output keeps the caller's layout
    np.testing.assert_allclose(out_tm, out, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(last_tm, last, rtol=1e-12, atol=1e-13)
    expected = kc.selective_scan_bwd(dout, **args, delta_softplus=True)
    got = kc.selective_scan_bwd(time_major(dout), **tm, delta_softplus=True)
    for key, value in expected.items():
        np.testing.assert_allclose(got[key], value, rtol=1e-11, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("width", [16, 64, 512])
def test_results_do_not_depend_on_the_block_width(monkeypatch, width):
    """The kernels split channels into blocks of ``_block_width`` (one work item each; ∂B, ∂C
    and ∂A are summed over blocks and the batch afterwards). Forced widths — five blocks, the
    last one partial (16), and one block for all channels (512) — must give the reference's
    forward and torch autograd's gradients, over two 64-step chunks, time-major."""
    monkeypatch.setattr(kc, "_block_width", lambda dim, batch=1: width)
    args = make_inputs(2, 70, 100, 5, seed=11)
    args = {
        k: np.ascontiguousarray(v.transpose(0, 2, 1)).transpose(0, 2, 1) if v.ndim == 3 else v
        for k, v in args.items()
    }
    assert_matches_reference_and_autograd(
        args, seed=12, fwd_tol=(1e-12, 1e-12), bwd_tol=(1e-10, 1e-10)
    )


@pytest.mark.parametrize("time_major", [True, False])
def test_a_gate_with_spaced_rows_is_read_in_place_and_gives_the_same_results(time_major):
    """z as the second half of wider rows — in a torch module, in_proj's output holds x and z
    side by side, so z's rows are 2·D apart — in both layouts: the kernels read it through its
    row spacing (no copy: the memory they get is z's own) and agree with a contiguous z."""
    args = make_inputs(2, 70, 150, 5, seed=9)
    dout = np.random.default_rng(10).standard_normal(args["x"].shape)
    z = args["z"]
    if time_major:  # (batch, L, 2D) memory, z = its second half along D, seen as (batch, D, L)
        wide = np.concatenate([np.zeros_like(z), z], axis=1).transpose(0, 2, 1).copy()
        spaced = wide[:, :, 70:].transpose(0, 2, 1)
        x = np.ascontiguousarray(args["x"].transpose(0, 2, 1)).transpose(0, 2, 1)
    else:  # (batch, D, 2L) memory, z = its second half along L
        wide = np.concatenate([np.zeros_like(z), z], axis=2)
        spaced = wide[:, :, 150:]
        x = args["x"]
    flat, row = kc._rows(spaced, time_major, np.float64)
    assert np.shares_memory(flat, wide) and row == wide.shape[2]
    given = dict(args, z=spaced, x=x)
    out, last = kc.selective_scan_fwd(**given, delta_softplus=True)
    want, want_last = kc.selective_scan_fwd(**args, delta_softplus=True)
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(last, want_last, rtol=1e-12, atol=1e-13)
    got = kc.selective_scan_bwd(dout, **given, delta_softplus=True)
    expected = kc.selective_scan_bwd(dout, **args, delta_softplus=True)
    for key, value in expected.items():
        np.testing.assert_allclose(got[key], value, rtol=1e-11, atol=1e-12, err_msg=key)


@pytest.mark.parametrize(
    "change, error, message",
    [
        (dict(delta=np.zeros((2, 5, 8))), ValueError, "expected delta of shape (batch, D, L) = (2, 5, 9), got (2, 5, 8)"),
        (dict(B=np.zeros((2, 9, 4))), ValueError, "expected B of shape (batch, N, L) = (2, 4, 9), got (2, 9, 4)"),
        (dict(A=np.zeros(5)), ValueError, "expected A of shape (D, N) with D = 5"),
        (dict(A=np.zeros((5, 4), complex)), TypeError, "real"),
        (dict(x=np.zeros((2, 5, 0)), delta=np.zeros((2, 5, 0)), B=np.zeros((2, 4, 0)), C=np.zeros((2, 4, 0)), z=None), ValueError, "L >= 1"),
    ],
)  # fmt: skip
def test_bad_input_numpy_entry_points(change, error, message):
    args = make_inputs()
    args.update(change)
    with pytest.raises(error, match=re.escape(message)):
        kc.selective_scan_fwd(**args)
    with pytest.raises(error, match=re.escape(message)):
        kc.selective_scan_bwd(np.zeros((2, 5, 9)), **args)


def test_bad_input_bwd_gradient_shapes_and_dtype():
    args = make_inputs()
    with pytest.raises(
        ValueError, match=re.escape("expected dout of shape (batch, D, L) = (2, 5, 9)")
    ):
        kc.selective_scan_bwd(np.zeros((2, 9, 5)), **args)
    with pytest.raises(ValueError, match=re.escape("expected dlast_state of shape (batch, D, N)")):
        kc.selective_scan_bwd(np.zeros((2, 5, 9)), **args, dlast_state=np.zeros((2, 4, 5)))
    with pytest.raises(TypeError, match="float32 or float64"):
        kc.selective_scan_fwd(**args, dtype=np.float16)


@pytest.mark.parametrize(
    "change, error, message",
    [
        (dict(delta=torch.zeros(2, 5, 8)), ValueError, "expected delta of shape (batch, D, L) = (2, 5, 9), got (2, 5, 8)"),
        (dict(C=torch.zeros(2, 5, 9)), ValueError, "expected C of shape (batch, N, L) = (2, 4, 9), got (2, 5, 9)"),
        (dict(D=torch.zeros(4)), ValueError, "expected D of shape (D,) = (5,), got (4,)"),
        (dict(x=np.zeros((2, 5, 9))), TypeError, "expected x to be a torch.Tensor"),
        (dict(x=torch.zeros(2, 5, 9, dtype=torch.int64)), TypeError, "expected x to be a real floating tensor"),
        (dict(x=torch.zeros(2, 5, 0), delta=torch.zeros(2, 5, 0), B=torch.zeros(2, 4, 0), C=torch.zeros(2, 4, 0), z=torch.zeros(2, 5, 0)), ValueError, "L >= 1"),
    ],
)  # fmt: skip
def test_bad_input_torch_entry_point(change, error, message):
    args = {k: torch.tensor(v) for k, v in make_inputs().items()}
    args.update(change)
    for backend in ("numba", "torch"):
        with pytest.raises(error, match=re.escape(message)):
            kc.selective_scan(**args, backend=backend)


def test_mixed_dtypes_are_refused_by_the_function():
    args = {k: torch.tensor(v) for k, v in make_inputs().items()}
    args["A"] = args["A"].float()
    with pytest.raises(TypeError, match="one dtype"):
        kc.SelectiveScanFn.apply(*args.values(), False)
    with pytest.raises(TypeError, match="numba backend needs"):
        kc.selective_scan(**args, backend="numba")


# ----------------------------------------------------------------------------------------------
# the decode step (Mamba.step's middle part in one numba call) against the NumPy reference
# ----------------------------------------------------------------------------------------------


def _step_case(d_model=12, d_state=5, conv_bias=True, batch=3, dtype=np.float64, seed=0):
    """A Mamba block's parameters (perturbed away from init), a token and random states, plus
    the kernel's arguments (in_proj's output computed here, as the module does)."""
    from mamba_edu import mamba  # the block's reference lives there

    torch.manual_seed(seed)
    block = mamba.Mamba(d_model, d_state=d_state, conv_bias=conv_bias).double()
    with torch.no_grad():
        for p in block.parameters():
            p.add_(0.2 * torch.randn_like(p))
    p = mamba.block_parameters(block)
    rng = np.random.default_rng(seed)
    d_inner = block.d_inner
    hidden = rng.standard_normal((batch, d_model))
    conv_state = rng.standard_normal((batch, d_inner, block.d_conv))
    ssm_state = rng.standard_normal((batch, d_inner, d_state))
    xz = hidden @ p["in_proj.weight"].T
    args = [xz, conv_state, ssm_state, p["conv1d.weight"][:, 0], p.get("conv1d.bias"),
            p["x_proj.weight"], p["dt_proj.weight"], p["dt_proj.bias"], p["A_log"], p["D"]]  # fmt: skip
    args = [None if a is None else a.astype(dtype) for a in args]
    return block, p, hidden, conv_state, ssm_state, args


@pytest.mark.parametrize("conv_bias", [True, False])
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("d_model, d_state, batch", [(12, 5, 3), (40, 16, 1), (8, 1, 2)])
def test_mamba_step_matches_block_step_reference(d_model, d_state, batch, dtype, tol, conv_bias):
    from mamba_edu import mamba  # the block's reference lives there

    _, p, hidden, conv_state, ssm_state, args = _step_case(
        d_model, d_state, conv_bias, batch, dtype, seed=d_model
    )
    given = [None if a is None else a.copy() for a in args]
    y, new_conv, new_ssm = kc.mamba_step(*args)
    out_ref, (conv_ref, ssm_ref) = mamba.block_step_reference(hidden, conv_state, ssm_state, p)
    assert y.dtype == new_ssm.dtype == dtype
    out = y.astype(np.float64) @ p["out_proj.weight"].T
    scale = np.abs(out_ref).max()
    np.testing.assert_allclose(out, out_ref, rtol=tol, atol=tol * scale)
    np.testing.assert_allclose(new_conv, conv_ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(new_ssm, ssm_ref, rtol=tol, atol=tol * np.abs(ssm_ref).max())
    for before, after in zip(given, args, strict=True):  # the given states are not modified
        if before is not None:
            np.testing.assert_array_equal(before, after)


def test_mamba_step_keeps_nan_to_its_sequence():
    """A NaN in one sequence's token or state comes out as NaN in that sequence only (the
    kernel's fast-math flags must not fold NaN away, as they once did for the scan)."""
    *_, args = _step_case(batch=3)
    for which in (0, 2):  # xz (the token), ssm_state
        poisoned = [None if a is None else a.copy() for a in args]
        poisoned[which][1].flat[0] = np.nan
        y, _, new_ssm = kc.mamba_step(*poisoned)
        assert np.isnan(y[1]).any() and np.isnan(new_ssm[1]).any()
        assert np.isfinite(y[[0, 2]]).all() and np.isfinite(new_ssm[[0, 2]]).all()


@pytest.mark.parametrize(
    "index, value, error, message",
    [
        (0, np.zeros((3, 7)), ValueError, "expected xz of shape (3, 48)"),
        (2, np.zeros((3, 24, 4)), ValueError, "expected ssm_state of shape (3, 24, 5), got (3, 24, 4)"),
        (1, np.zeros((2, 24, 4)), ValueError, "expected conv_state of shape (3, 24, 4), got (2, 24, 4)"),
        (5, np.zeros((3, 24)), ValueError, "expected x_w of shape (11, 24)"),
        (8, np.zeros((24, 5), np.float32), TypeError, "one dtype, float32 or float64"),
    ],
)  # fmt: skip
def test_mamba_step_bad_input(index, value, error, message):
    *_, args = _step_case(batch=3)
    args[index] = value
    with pytest.raises(error, match=re.escape(message)):
        kc.mamba_step(*args)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_module_step_kernel_equals_its_torch_path(dtype, tol):
    """Mamba.step runs the kernel when no gradient is wanted and its torch lines otherwise (and
    with backend "torch"): the two give the same token outputs and states over 20 tokens."""
    block, *_ = _step_case(d_model=16, d_state=4)
    block = block.to(dtype)
    hidden = torch.randn(2, 20, 16, dtype=dtype, generator=torch.Generator().manual_seed(5))
    results = {}
    for backend in ("auto", "torch"):
        block.backend = backend
        conv_state, ssm_state = block.initial_states(2)
        outs = []
        with torch.no_grad():
            for t in range(20):
                out, conv_state, ssm_state = block.step(hidden[:, t], conv_state, ssm_state)
                outs.append(out)
        results[backend] = (torch.stack(outs, 1), ssm_state)
    for got, expected in zip(results["auto"], results["torch"], strict=True):
        torch.testing.assert_close(got, expected, rtol=tol, atol=tol)
    assert block._step_kernel_applies(*(torch.zeros(1, 2 * block.d_inner, dtype=dtype),),
                                      *block.initial_states(1)) is False  # backend "torch" now  # fmt: skip
    block.backend = "auto"
    with torch.no_grad():
        assert block._step_kernel_applies(torch.zeros(1, 2 * block.d_inner, dtype=dtype),
                                          *block.initial_states(1))  # fmt: skip
    assert not block._step_kernel_applies(torch.zeros(1, 2 * block.d_inner, dtype=dtype),
                                          *block.initial_states(1))  # grad enabled  # fmt: skip
