"""The numba RMSNorm (kernels/norm_cpu.py): forward and gradients against torch autograd through
an RMSNorm written out in plain torch operations (an independent implementation), gradcheck, NaN
kept to its row, bad input, and the RMSNorm module's choice between the kernels and F.rms_norm."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mamba_edu.kernels import norm_cpu

from mamba_edu import mamba as M


def plain_rms_norm(x, weight, eps):
    """x / √(mean(x²) + eps) · weight, in separate torch operations (autograd differentiates)."""
    return x / torch.sqrt(x.square().mean(dim=-1, keepdim=True) + eps) * weight


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
@pytest.mark.parametrize("shape", [(5,), (1, 3), (3, 70, 37), (2, 130, 16)])  # 130: 3 work items
@pytest.mark.parametrize("strided", [False, True])
def test_forward_and_gradients_match_plain_torch(dtype, tol, shape, strided):
    gen = torch.Generator().manual_seed(sum(shape))
    d = shape[-1]
    if strided:  # every other column of a wider array: not contiguous
        full = torch.randn(*shape[:-1], 2 * d, dtype=dtype, generator=gen, requires_grad=True)
        x = full[..., ::2]
    else:
        full = x = torch.randn(*shape, dtype=dtype, generator=gen, requires_grad=True)
    weight = torch.randn(d, dtype=dtype, generator=gen, requires_grad=True)
    grad_out = torch.randn(*shape, dtype=dtype, generator=gen)
    want_y = plain_rms_norm(x, weight, 1e-5)
    want = torch.autograd.grad(want_y, [full, weight], grad_out)
    got_y = norm_cpu.rms_norm(x, weight, 1e-5)
    assert got_y.dtype == dtype and got_y.shape == x.shape
    got = torch.autograd.grad(got_y, [full, weight], grad_out)
    torch.testing.assert_close(got_y, want_y, rtol=tol, atol=tol)
    for g, w, name in zip(got, want, ["x", "weight"], strict=True):
        torch.testing.assert_close(g, w, rtol=tol, atol=tol, msg=name)


def test_gradcheck_float64():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(4, 6, dtype=torch.float64, generator=gen, requires_grad=True)
    weight = torch.randn(6, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: norm_cpu.rms_norm(a, b, 0.1), (x, weight))


def test_nan_stays_in_its_row():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 8))
    x[2, 3] = np.nan
    weight = rng.standard_normal(8)
    y, rstd = norm_cpu.rms_norm_fwd(x, weight)
    assert np.isnan(y[2]).all() and np.isfinite(np.delete(y, 2, axis=0)).all()
    gx, gw = norm_cpu.rms_norm_bwd(np.ones_like(y), x, weight, rstd)
    assert np.isnan(gx[2]).all() and np.isfinite(np.delete(gx, 2, axis=0)).all()
    assert np.isnan(gw).all()  # every column sums over row 2


@pytest.mark.parametrize(
    "x, weight, error, message",
    [
        (np.ones((2, 3)), np.ones(4), ValueError, r"x of shape \(\.\.\., d\) with d = 4"),
        (np.ones((0, 3)), np.ones(3), ValueError, "no empty axis"),
        (np.ones((2, 3)), np.ones((3, 1)), ValueError, r"weight of shape \(d,\)"),
        (np.ones((2, 3)), np.ones(3, np.int64), TypeError, "float32 or float64"),
        (np.ones((2, 3), np.float32), np.ones(3), TypeError, "x of dtype float64"),
    ],
)
def test_bad_input_names_what_was_expected(x, weight, error, message):
    with pytest.raises(error, match=message):
        norm_cpu.rms_norm_fwd(x, weight)


def test_bad_gradient_arguments():
    x, weight = np.ones((2, 3)), np.ones(3)
    _, rstd = norm_cpu.rms_norm_fwd(x, weight)
    with pytest.raises(ValueError, match="grad of shape"):
        norm_cpu.rms_norm_bwd(np.ones((2, 4)), x, weight, rstd)
    with pytest.raises(ValueError, match=r"rstd of shape \(rows,\)"):
        norm_cpu.rms_norm_bwd(np.ones((2, 3)), x, weight, rstd[:1])
    with pytest.raises(TypeError, match="numba backend needs"):
        norm_cpu.rms_norm(torch.ones(2, 3), torch.ones(3, dtype=torch.float64))


def test_module_uses_the_kernels_when_training_and_f_rms_norm_otherwise(monkeypatch):
    """RMSNorm runs the kernels when a backward will follow and its backend allows it, and
    F.rms_norm otherwise (generation, backend "torch"); both give the same numbers."""
    calls = []
    kernel = norm_cpu.rms_norm
    monkeypatch.setattr(norm_cpu, "rms_norm", lambda *a: calls.append(1) or kernel(*a))
    norm = M.RMSNorm(16)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
    x = torch.randn(3, 5, 16, requires_grad=True)
    trained = norm(x)
    assert calls == [1]
    with torch.no_grad():
        generated = norm(x)
    norm.backend = "torch"
    plain = norm(x)
    assert calls == [1]
    torch.testing.assert_close(trained, plain, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(generated, F.rms_norm(x, (16,), norm.weight, 1e-5))
    with pytest.raises(ValueError, match="backend one of"):
        norm.backend = "cuda"
    model = M.MambaLM(M.MambaConfig(vocab_size=8, d_model=8, n_layer=2)).set_backend("torch")
    assert {m.backend for m in model.modules() if isinstance(m, M.RMSNorm | M.Mamba)} == {"torch"}
