"""The Mamba block's causal depthwise convolution and SiLU on the CPU: numba, forward and backward.

In the block (lesson 07), in_proj's output x (batch, L, d_inner) goes through

    u_t = SiLU(bias + Σ_k weight[:, k] · x_{t − K + 1 + k})     (K = d_conv taps, zeros before t = 0)

before x_proj and the scan. :func:`mamba_edu.mamba.causal_conv1d_reference` is the NumPy
reference; :class:`mamba_edu.mamba.Mamba` has the same arithmetic as K shifted torch
multiply-adds (its "torch" path). This module does it in one pass per direction, in the layout
the linear layers produce — (batch, L, d_inner) rows, which may be a view with a longer row
stride (x is the first half of in_proj's output, so its rows are 2·d_inner apart) — without a
transposed copy, and with the SiLU fused in:

* forward: one pass, every loop over contiguous channels (vectorized); SiLU's σ is
  :func:`~mamba_edu.kernels.selective_cpu.vsigmoid`;
* backward: the pre-activation is recomputed from x (cheaper than storing it), then
  ∂pre = ∂u · σ(pre) (1 + pre (1 − σ(pre))), ∂x_s = Σ_k weight[:, k] · ∂pre_{s + K − 1 − k},
  ∂weight[:, k] = Σ_{b, t} ∂pre_t · x_{t − K + 1 + k}, ∂bias = Σ_{b, t} ∂pre_t; the sums over the
  batch are partial sums per work item (a batch element), added up at the end.

In torch, the shifted multiply-adds and their backward are about a dozen operations over
(batch, L, d_inner) per call; this replaces them by one kernel each way
(:class:`CausalConvSiluFn`, used by :class:`mamba_edu.mamba.Mamba` with the numba backend).
"""

from __future__ import annotations

import numpy as np
from mamba_edu.kernels.selective_cpu import _FASTMATH, HAVE_NUMBA, _flat_rows, vsigmoid

if HAVE_NUMBA:
    from numba import njit, prange

__all__ = ["causal_conv_silu_fwd", "causal_conv_silu_bwd", "CausalConvSiluFn", "causal_conv_silu"]


if HAVE_NUMBA:

    @njit(inline="always")
    def _pre_activation(xf, row, b, length, t, wT, bias, acc):
        """acc = bias + Σ_k wT[k] · x[b, t − K + 1 + k], the taps before t = 0 left out (zeros);
        element (b, t, d) of x is xf[(b · length + t) · row + d]."""
        taps, dim = wT.shape
        for d in range(dim):
            acc[d] = bias[d]
        for k in range(max(0, taps - 1 - t), taps):
            start = (b * length + t - taps + 1 + k) * row
            x_row, w_k = xf[start : start + dim], wT[k]
            for d in range(dim):
                acc[d] += w_k[d] * x_row[d]

    @njit(parallel=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
    def _conv_fwd_kernel(xf, row, batch, length, wT, bias, out):
        """out[b, t] = SiLU(bias + Σ_k wT[k] · x[b, t − K + 1 + k]); element (b, t, d) of x is
        xf[(b · length + t) · row + d] (rows of a (batch, L, ·) array, ``row`` apart)."""
        dim = wT.shape[1]
        for b in prange(batch):
            acc = np.empty(dim, dtype=wT.dtype)
            for t in range(length):
                _pre_activation(xf, row, b, length, t, wT, bias, acc)
                o = out[b, t]
                for d in range(dim):
                    p = acc[d]
                    o[d] = p * vsigmoid(p)

    @njit(parallel=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
    def _conv_bwd_kernel(xf, row, batch, length, wT, bias, grad, dx, dw_part, dbias_part):
        """Gradients of :func:`_conv_fwd_kernel` for ∂loss/∂out ``grad`` (batch, L, D): dx
        (batch, L, D), and partial sums per batch element dw_part[b] (K, D), dbias_part[b]."""
        taps, dim = wT.shape
        one = wT.dtype.type(1)
        for b in prange(batch):
            gpre = np.empty((length, dim), dtype=wT.dtype)  # pre-activation, then ∂loss/∂pre
            dw, dbias = dw_part[b], dbias_part[b]
            dw[:] = 0
            dbias[:] = 0
            for t in range(length):
                p_t, g_t = gpre[t], grad[b, t]
                _pre_activation(xf, row, b, length, t, wT, bias, p_t)
                for d in range(dim):
                    p = p_t[d]
                    sig = vsigmoid(p)
                    gp = g_t[d] * sig * (one + p * (one - sig))
                    p_t[d] = gp
                    dbias[d] += gp
                for k in range(max(0, taps - 1 - t), taps):
                    start = (b * length + t - taps + 1 + k) * row
                    x_row, dw_k = xf[start : start + dim], dw[k]
                    for d in range(dim):
                        dw_k[d] += p_t[d] * x_row[d]
            for s in range(length):
                o = dx[b, s]
                for d in range(dim):
                    o[d] = 0
                for k in range(max(0, s + taps - length), taps):
                    g_t, w_k = gpre[s + taps - 1 - k], wT[k]
                    for d in range(dim):
                        o[d] += w_k[d] * g_t[d]


def _conv_args(x, weight, bias):
    x = np.asarray(x)
    if x.ndim != 3 or 0 in x.shape:
        raise ValueError(f"expected x of shape (batch, L, D) with no empty axis, got {x.shape}")
    weight = np.asarray(weight)
    dim = x.shape[2]
    if weight.ndim != 2 or weight.shape[0] != dim or weight.shape[1] < 1:
        raise ValueError(f"expected weight of shape (D, d_conv) with D = {dim}, got {weight.shape}")
    dtypes = {a.dtype for a in (x, weight, bias) if a is not None}
    if len(dtypes) != 1 or not dtypes <= {np.dtype(np.float32), np.dtype(np.float64)}:
        raise TypeError(
            "expected x, weight and bias in one dtype, float32 or float64, got "
            f"{sorted(str(d) for d in dtypes)}"
        )
    dtype = x.dtype
    if bias is None:
        bias = np.zeros(dim, dtype)
    bias = np.asarray(bias)
    if bias.shape != (dim,):
        raise ValueError(f"expected bias of shape (D,) = {(dim,)}, got {bias.shape}")
    return x, np.ascontiguousarray(weight.T), np.ascontiguousarray(bias)


def causal_conv_silu_fwd(x, weight, bias=None):
    """SiLU(causal depthwise conv): x (batch, L, D), weight (D, d_conv), bias (D,) or None, one
    dtype (float32 or float64) → (batch, L, D), contiguous. x may be a view whose rows are
    further apart than D (the channel axis must be contiguous); it is not copied then."""
    x, wT, bias = _conv_args(x, weight, bias)
    batch, length, _ = x.shape
    xf, row = _flat_rows(x)
    out = np.empty(x.shape, x.dtype)
    _conv_fwd_kernel(xf, row, batch, length, wT, bias, out)
    return out


def causal_conv_silu_bwd(grad, x, weight, bias=None):
    """Gradients of :func:`causal_conv_silu_fwd` for ∂loss/∂out ``grad`` (batch, L, D):
    (dx (batch, L, D), dweight (D, d_conv), dbias (D,))."""
    x, wT, bias = _conv_args(x, weight, bias)
    grad = np.asarray(grad)
    if grad.shape != x.shape:
        raise ValueError(f"expected grad of x's shape {x.shape}, got {grad.shape}")
    grad = np.ascontiguousarray(grad, dtype=x.dtype)
    batch, length, dim = x.shape
    xf, row = _flat_rows(x)
    dx = np.empty(x.shape, x.dtype)
    dw_part = np.empty((batch,) + wT.shape, x.dtype)
    dbias_part = np.empty((batch, dim), x.dtype)
    _conv_bwd_kernel(xf, row, batch, length, wT, bias, grad, dx, dw_part, dbias_part)
    return dx, np.ascontiguousarray(dw_part.sum(axis=0).T), dbias_part.sum(axis=0)


def _make_function():
    import torch  # heavy, and only the torch entry points need it (as in selective_cpu)

    class CausalConvSiluFn(torch.autograd.Function):
        """``CausalConvSiluFn.apply(x, weight, bias)``: the numba kernels above as a
        differentiable torch op (CPU, float32/float64; bias may be None)."""

        @staticmethod
        def forward(ctx, x, weight, bias):
            ctx.save_for_backward(x, weight, bias)
            return torch.from_numpy(causal_conv_silu_fwd(*_numpy(x, weight, bias)))

        @staticmethod
        def backward(ctx, grad):
            x, weight, bias = ctx.saved_tensors
            dx, dw, db = causal_conv_silu_bwd(grad.numpy(), *_numpy(x, weight, bias))
            return (
                torch.from_numpy(dx),
                torch.from_numpy(dw),
                (None if bias is None else torch.from_numpy(db)),
            )

    return CausalConvSiluFn


def _numpy(*tensors):
    return tuple(None if t is None else t.detach().numpy() for t in tensors)


CausalConvSiluFn = _make_function() if HAVE_NUMBA else None


def causal_conv_silu(x, weight, bias=None):
    """SiLU(causal depthwise conv) of torch tensors x (batch, L, D), weight (D, d_conv), bias
    (D,) or None, differentiable, with the numba kernels (CPU, float32/float64)."""
    import torch  # heavy, and only the torch entry points need it (as in selective_cpu)

    tensors = [t for t in (x, weight, bias) if t is not None]
    if not all(isinstance(t, torch.Tensor) and t.device.type == "cpu" for t in tensors):
        raise TypeError("expected CPU torch tensors for x, weight and bias")
    return CausalConvSiluFn.apply(x, weight, bias)
