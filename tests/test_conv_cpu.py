"""The numba causal depthwise conv + SiLU (kernels/conv_cpu.py): forward against the NumPy
reference of lesson 07, gradients against torch autograd through F.conv1d (an independent
implementation), bad input, NaN."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mamba_edu.kernels import conv_cpu

from mamba_edu import mamba as M
from mamba_edu import selective


def reference(x, weight, bias):
    """SiLU(conv) by the course's NumPy reference, which works in (batch, D, L)."""
    return selective.silu(M.causal_conv1d_reference(x.transpose(0, 2, 1), weight, bias)).transpose(
        0, 2, 1
    )


def torch_conv_silu(x, weight, bias):
    """(batch, L, D) → SiLU(causal depthwise conv) with F.conv1d (left padding d_conv − 1)."""
    dim, taps = weight.shape
    padded = F.pad(x.transpose(1, 2), (taps - 1, 0))
    return F.silu(F.conv1d(padded, weight[:, None], bias, groups=dim)).transpose(1, 2)


def wide_view(rng, batch, length, dim, dtype, extra):
    """x as the first half of a wider array, as in_proj's output holds it (rows longer than D)."""
    full = rng.standard_normal((batch, length, dim + extra)).astype(dtype)
    return full, full[:, :, :dim]


@pytest.mark.parametrize("length", [1, 2, 3, 4, 70])
@pytest.mark.parametrize("taps", [1, 2, 4])
@pytest.mark.parametrize("extra", [0, 5])
def test_forward_matches_numpy_reference(length, taps, extra):
    rng = np.random.default_rng(length * 10 + taps)
    _, x = wide_view(rng, 3, length, 7, np.float64, extra)
    weight, bias = rng.standard_normal((7, taps)), rng.standard_normal(7)
    got = conv_cpu.causal_conv_silu_fwd(x, weight, bias)
    np.testing.assert_allclose(got, reference(x, weight, bias), rtol=1e-12, atol=1e-14)
    no_bias = conv_cpu.causal_conv_silu_fwd(x, weight)
    np.testing.assert_allclose(no_bias, reference(x, weight, None), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-11), (torch.float32, 2e-5)])
@pytest.mark.parametrize("length", [1, 3, 70])
@pytest.mark.parametrize("with_bias", [True, False])
def test_gradients_match_torch_autograd(dtype, tol, length, with_bias):
    gen = torch.Generator().manual_seed(length)
    full = torch.randn(2, length, 2 * 9, dtype=dtype, generator=gen, requires_grad=True)
    x = full[..., :9]  # a view with rows 18 apart, as the block's x
    weight = torch.randn(9, 4, dtype=dtype, generator=gen, requires_grad=True)
    bias = torch.randn(9, dtype=dtype, generator=gen, requires_grad=True) if with_bias else None
    grad_out = torch.randn(2, length, 9, dtype=dtype, generator=gen)
    leaves = [full, weight] + ([bias] if with_bias else [])
    want = torch.autograd.grad(torch_conv_silu(x, weight, bias), leaves, grad_out)
    got_out = conv_cpu.causal_conv_silu(x, weight, bias)
    torch.testing.assert_close(got_out, torch_conv_silu(x, weight, bias), rtol=tol, atol=tol)
    got = torch.autograd.grad(got_out, leaves, grad_out)
    for name, g, w in zip(["x", "weight", "bias"][: len(leaves)], got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=tol, atol=tol, msg=name)


def test_any_layout_gives_the_same_answer():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 6, 5))
    weight, bias = rng.standard_normal((5, 4)), rng.standard_normal(5)
    want = conv_cpu.causal_conv_silu_fwd(x, weight, bias)
    transposed = np.ascontiguousarray(x.transpose(0, 2, 1)).transpose(0, 2, 1)  # D not unit stride
    reversed_rows = np.ascontiguousarray(x[:, ::-1])[:, ::-1]  # negative row stride
    every_other = np.repeat(x, 2, axis=0)[::2]  # batch stride of two sequences
    for view in (transposed, reversed_rows, every_other):
        np.testing.assert_allclose(conv_cpu.causal_conv_silu_fwd(view, weight, bias), want)
    grad = rng.standard_normal(x.shape)
    want_grads = conv_cpu.causal_conv_silu_bwd(grad, x, weight, bias)
    got_grads = conv_cpu.causal_conv_silu_bwd(grad, transposed, weight, bias)
    for want_g, got_g in zip(want_grads, got_grads, strict=True):
        np.testing.assert_allclose(got_g, want_g)


def test_nan_in_x_stays_nan():
    x = np.zeros((1, 5, 3), np.float32)
    x[0, 2, 1] = np.nan
    out = conv_cpu.causal_conv_silu_fwd(x, np.ones((3, 4), np.float32))
    # the NaN reaches exactly the outputs whose window holds it: t = 2..4 of channel 1
    assert np.isnan(out[0, 2:, 1]).all()
    assert not np.isnan(np.delete(out[0], 1, axis=1)).any() and not np.isnan(out[0, :2, 1]).any()


def test_bad_input_messages():
    x = np.zeros((2, 5, 3), np.float32)
    w = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"x of shape \(batch, L, D\)"):
        conv_cpu.causal_conv_silu_fwd(x[0], w)
    with pytest.raises(ValueError, match=r"weight of shape \(D, d_conv\) with D = 3"):
        conv_cpu.causal_conv_silu_fwd(x, np.zeros((4, 4), np.float32))
    with pytest.raises(TypeError, match="one dtype, float32 or float64"):
        conv_cpu.causal_conv_silu_fwd(x, w.astype(np.float64))
    with pytest.raises(TypeError, match="one dtype, float32 or float64"):
        conv_cpu.causal_conv_silu_fwd(x.astype(np.int64), w.astype(np.int64))
    with pytest.raises(ValueError, match=r"bias of shape \(D,\)"):
        conv_cpu.causal_conv_silu_fwd(x, w, np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="grad of x's shape"):
        conv_cpu.causal_conv_silu_bwd(np.zeros((2, 5, 4), np.float32), x, w)
    with pytest.raises(TypeError, match="CPU torch tensors"):
        conv_cpu.causal_conv_silu(x, w)
