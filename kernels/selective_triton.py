"""The selective scan forward in Triton: one program per (batch element, block of channels).

Each program holds the state of ``BLOCK_D`` channels, a (BLOCK_D, N) tile, in registers and walks
through time: at step t it loads Δ_t and x_t for its channels and B_t, C_t (shared by all
channels), updates the tile, h ← exp(Δ_t A) ⊙ h + (Δ_t x_t) B_tᵀ, and stores only the output
y_t = h C_t (+ D x_t, times silu(z_t)). Like the numba-cuda kernel, it never writes the
(batch, L, D, N) states to global memory; unlike it, Triton chooses how the tile maps to threads.

On a CPU it runs under the Triton interpreter: set ``TRITON_INTERPRET=1`` before this module is
imported (the ``@triton.jit`` decorator reads it), and pass CPU tensors.
"""

from __future__ import annotations

import contextlib

import torch
import triton
import triton.language as tl

from mamba_edu.contract import selective_tensors

__all__ = ["selective_scan_fwd_triton"]


@triton.jit
def _selective_scan_fwd_kernel(
    x_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, out_ptr, last_ptr,
    dim, length, d_state,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    pid_d = tl.program_id(0)
    pid_b = tl.program_id(1)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    mask_d = offs_d < dim
    mask_n = offs_n < d_state
    mask_dn = mask_d[:, None] & mask_n[None, :]
    A = tl.load(A_ptr + offs_d[:, None] * d_state + offs_n[None, :], mask=mask_dn, other=0.0)
    bias = tl.zeros((BLOCK_D,), dtype=tl.float32)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0)
    skip = tl.zeros((BLOCK_D,), dtype=tl.float32)
    if HAS_D:
        skip = tl.load(D_ptr + offs_d, mask=mask_d, other=0.0)
    row = pid_b * dim * length + offs_d * length  # start of each channel's time series
    bc_row = pid_b * d_state * length + offs_n * length
    h = tl.zeros((BLOCK_D, BLOCK_N), dtype=tl.float32)  # the state tile: registers only
    for t in range(0, length):
        dt = tl.load(delta_ptr + row + t, mask=mask_d, other=0.0) + bias
        if SOFTPLUS:
            dt = tl.where(dt <= 20.0, tl.log(1.0 + tl.exp(dt)), dt)
        xt = tl.load(x_ptr + row + t, mask=mask_d, other=0.0)
        Bt = tl.load(B_ptr + bc_row + t, mask=mask_n, other=0.0)
        Ct = tl.load(C_ptr + bc_row + t, mask=mask_n, other=0.0)
        h = tl.exp(dt[:, None] * A) * h + (dt * xt)[:, None] * Bt[None, :]
        y = tl.sum(h * Ct[None, :], axis=1) + skip * xt
        if HAS_Z:
            zt = tl.load(z_ptr + row + t, mask=mask_d, other=0.0)
            y = y * zt * tl.sigmoid(zt)
        tl.store(out_ptr + row + t, y, mask=mask_d)
    last = last_ptr + pid_b * dim * d_state + offs_d[:, None] * d_state + offs_n[None, :]
    tl.store(last, h, mask=mask_dn)


def selective_scan_fwd_triton(
    x, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, block_d=32
):
    """Forward selective scan with Triton. torch tensors, shapes as
    :func:`mamba_edu.selective.selective_scan`; computed in float32 (inputs are converted and made
    contiguous). Returns (out (batch, D, L), last state (batch, D, N)), float32, on the inputs' device."""
    selective_tensors(x, delta, A, B, C, D, z, delta_bias)
    devices = {t.device for t in (x, delta, A, B, C, D, z, delta_bias) if t is not None}
    if len(devices) != 1:
        raise ValueError(f"expected every tensor on one device, got {sorted(map(str, devices))}")

    def prep(t):
        return None if t is None else t.to(torch.float32).contiguous()

    x, delta, A, B, C, D, z, delta_bias = map(prep, (x, delta, A, B, C, D, z, delta_bias))
    batch, dim, length = x.shape
    d_state = A.shape[1]
    out = torch.empty_like(x)
    last = torch.empty((batch, dim, d_state), dtype=torch.float32, device=x.device)
    grid = (triton.cdiv(dim, block_d), batch)
    context = torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext()
    with context:
        _selective_scan_fwd_kernel[grid](
            x, delta, A, B, C, D if D is not None else x, z if z is not None else x,
            delta_bias if delta_bias is not None else x, out, last, dim, length, d_state,
            HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
            SOFTPLUS=bool(delta_softplus), BLOCK_D=block_d,
            BLOCK_N=max(2, triton.next_power_of_2(d_state)),
        )  # fmt: skip
    return out, last
