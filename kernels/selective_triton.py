"""The selective scan forward in Triton: one program per (batch element, block of channels).

Each program holds the state of ``BLOCK_D`` channels, a (BLOCK_D, N) tile, in registers and walks
through time: at step t it loads Δ_t and u_t for its channels and B_t, C_t (shared by all
channels), updates the tile, x ← exp(Δ_t A) ⊙ x + (Δ_t u_t) B_tᵀ, and stores only the output
y_t = x C_t (+ D u_t, times silu(z_t)). Like the numba-cuda kernel, it never writes the
(B, L, D, N) states to global memory; unlike it, Triton chooses how the tile maps to threads.

On a CPU it runs under the Triton interpreter: set ``TRITON_INTERPRET=1`` before this module is
imported (the ``@triton.jit`` decorator reads it), and pass CPU tensors.
"""

from __future__ import annotations

import contextlib

import torch
import triton
import triton.language as tl

__all__ = ["selective_scan_fwd_triton"]


@triton.jit
def _selective_scan_fwd_kernel(
    u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, out_ptr, last_ptr,
    dim, length, dstate,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    pid_d = tl.program_id(0)
    pid_b = tl.program_id(1)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    mask_d = offs_d < dim
    mask_n = offs_n < dstate
    mask_dn = mask_d[:, None] & mask_n[None, :]
    A = tl.load(A_ptr + offs_d[:, None] * dstate + offs_n[None, :], mask=mask_dn, other=0.0)
    bias = tl.zeros((BLOCK_D,), dtype=tl.float32)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0)
    skip = tl.zeros((BLOCK_D,), dtype=tl.float32)
    if HAS_D:
        skip = tl.load(D_ptr + offs_d, mask=mask_d, other=0.0)
    row = pid_b * dim * length + offs_d * length  # start of each channel's time series
    bc_row = pid_b * dstate * length + offs_n * length
    x = tl.zeros((BLOCK_D, BLOCK_N), dtype=tl.float32)  # the state tile: registers only
    for t in range(0, length):
        dt = tl.load(delta_ptr + row + t, mask=mask_d, other=0.0) + bias
        if SOFTPLUS:
            dt = tl.where(dt <= 20.0, tl.log(1.0 + tl.exp(dt)), dt)
        ut = tl.load(u_ptr + row + t, mask=mask_d, other=0.0)
        Bt = tl.load(B_ptr + bc_row + t, mask=mask_n, other=0.0)
        Ct = tl.load(C_ptr + bc_row + t, mask=mask_n, other=0.0)
        x = tl.exp(dt[:, None] * A) * x + (dt * ut)[:, None] * Bt[None, :]
        y = tl.sum(x * Ct[None, :], axis=1) + skip * ut
        if HAS_Z:
            zt = tl.load(z_ptr + row + t, mask=mask_d, other=0.0)
            y = y * zt * tl.sigmoid(zt)
        tl.store(out_ptr + row + t, y, mask=mask_d)
    last = last_ptr + pid_b * dim * dstate + offs_d[:, None] * dstate + offs_n[None, :]
    tl.store(last, x, mask=mask_dn)


def selective_scan_fwd_triton(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, block_d=32
):
    """Forward selective scan with Triton. torch tensors, shapes as
    :func:`mamba_edu.selective.selective_scan`; computed in float32 (inputs are converted and made
    contiguous). Returns (out (B, D, L), last state (B, D, N)), float32, on the inputs' device."""
    from mamba_edu.kernels.selective_cpu import _check_torch_shapes

    _check_torch_shapes(u, delta, A, B, C, D, z, delta_bias)
    devices = {t.device for t in (u, delta, A, B, C, D, z, delta_bias) if t is not None}
    if len(devices) != 1:
        raise ValueError(f"expected every tensor on one device, got {sorted(map(str, devices))}")

    def prep(t):
        return None if t is None else t.to(torch.float32).contiguous()

    u, delta, A, B, C, D, z, delta_bias = map(prep, (u, delta, A, B, C, D, z, delta_bias))
    batch, dim, length = u.shape
    dstate = A.shape[1]
    out = torch.empty_like(u)
    last = torch.empty((batch, dim, dstate), dtype=torch.float32, device=u.device)
    grid = (triton.cdiv(dim, block_d), batch)
    context = torch.cuda.device(u.device) if u.is_cuda else contextlib.nullcontext()
    with context:
        _selective_scan_fwd_kernel[grid](
            u, delta, A, B, C, D if D is not None else u, z if z is not None else u,
            delta_bias if delta_bias is not None else u, out, last, dim, length, dstate,
            HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
            SOFTPLUS=bool(delta_softplus), BLOCK_D=block_d,
            BLOCK_N=max(2, triton.next_power_of_2(dstate)),
        )  # fmt: skip
    return out, last
