"""The selective scan in Triton, forward and backward: one program per (batch element, block of
channels).

Forward: each program holds the state of ``BLOCK_D`` channels, a (BLOCK_D, N) tile, in registers
and walks through time: at step t it loads Δ_t and x_t for its channels and B_t, C_t (shared by
all channels), updates the tile, h ← exp(Δ_t A) ⊙ h + (Δ_t x_t) B_tᵀ, and stores only the output
y_t = h C_t (+ D x_t, times silu(z_t)), and, at the start of every chunk of ``CHUNK`` steps, the
tile itself: the checkpoints the backward pass starts from. Like the numba-cuda kernel, it never
writes the (batch, L, D, N) states to global memory; unlike it, Triton chooses how the tile maps
to threads.

Backward (the reverse scan, derived in :mod:`mamba_edu.kernels.selective_cpu`): the program walks
the chunks from last to first; for each it recomputes the chunk's states from the checkpoint
(Triton has no indexable register arrays, so the CHUNK + 1 tiles go to a per-program scratch
buffer that stays in L2), then goes back through the chunk carrying gh = ∂loss/∂h. The output
before the gate is recomputed from the same states, so the gate is undone in the kernel and
nothing but the checkpoints is kept between the passes. ∂B_t, ∂C_t (sums over channels) are added
across programs with atomics; ∂A, ∂D, ∂Δ_bias are written per batch element and summed after.

Computes in float32, or float64 when every input is float64. On a CPU it runs under the Triton
interpreter: set ``TRITON_INTERPRET=1`` before this module is imported (the ``@triton.jit``
decorator reads it), and pass CPU tensors.
"""

from __future__ import annotations

import contextlib

import torch
import triton
import triton.language as tl

from mamba_edu.contract import selective_tensors

__all__ = [
    "selective_scan_fwd_triton",
    "selective_scan_bwd_triton",
    "SelectiveScanTritonFn",
    "selective_scan_triton",
    "CHUNK",
]

CHUNK = 64  # time steps between two checkpoints (and recomputed at once by the backward pass)


@triton.jit
def _selective_scan_fwd_kernel(
    x_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, out_ptr, last_ptr, ckpt_ptr,
    dim, length, d_state,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    SAVE: tl.constexpr, CHUNK_T: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    pid_d = tl.program_id(0)
    pid_b = tl.program_id(1)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    mask_d = offs_d < dim
    mask_n = offs_n < d_state
    mask_dn = mask_d[:, None] & mask_n[None, :]
    A = tl.load(A_ptr + offs_d[:, None] * d_state + offs_n[None, :], mask=mask_dn, other=0.0)
    bias = tl.zeros((BLOCK_D,), dtype=A.dtype)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0)
    skip = tl.zeros((BLOCK_D,), dtype=A.dtype)
    if HAS_D:
        skip = tl.load(D_ptr + offs_d, mask=mask_d, other=0.0)
    row = pid_b * dim * length + offs_d * length  # start of each channel's time series
    bc_row = pid_b * d_state * length + offs_n * length
    tile = offs_d[:, None] * d_state + offs_n[None, :]  # (D, N) offsets within one state
    chunks = tl.cdiv(length, CHUNK_T)
    h = tl.zeros((BLOCK_D, BLOCK_N), dtype=A.dtype)  # the state tile: registers only
    for t in range(0, length):
        if SAVE:
            if t % CHUNK_T == 0:  # the checkpoint: the state before the chunk's first step
                where = ckpt_ptr + (pid_b * chunks + t // CHUNK_T) * dim * d_state + tile
                tl.store(where, h, mask=mask_dn)
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
    last = last_ptr + pid_b * dim * d_state + tile
    tl.store(last, h, mask=mask_dn)


@triton.jit
def _selective_scan_bwd_kernel(
    x_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, dout_ptr, glast_ptr,
    ckpt_ptr, scratch_ptr, dx_ptr, ddelta_ptr, dz_ptr, dA_ptr, dD_ptr, dbias_ptr, dB_ptr, dC_ptr,
    dim, length, d_state,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    CHUNK_T: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    pid_d = tl.program_id(0)
    pid_b = tl.program_id(1)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    mask_d = offs_d < dim
    mask_n = offs_n < d_state
    mask_dn = mask_d[:, None] & mask_n[None, :]
    tile = offs_d[:, None] * d_state + offs_n[None, :]
    A = tl.load(A_ptr + tile, mask=mask_dn, other=0.0)
    bias = tl.zeros((BLOCK_D,), dtype=A.dtype)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0)
    skip = tl.zeros((BLOCK_D,), dtype=A.dtype)
    if HAS_D:
        skip = tl.load(D_ptr + offs_d, mask=mask_d, other=0.0)
    row = pid_b * dim * length + offs_d * length
    bc_row = pid_b * d_state * length + offs_n * length
    state = pid_b * dim * d_state + tile  # this program's tile in a (batch, D, N) array
    # this program's scratch: CHUNK_T + 1 state tiles of (BLOCK_D, BLOCK_N)
    program = pid_b * tl.num_programs(0) + pid_d
    scratch = scratch_ptr + program * (CHUNK_T + 1) * BLOCK_D * BLOCK_N
    local = tl.arange(0, BLOCK_D)[:, None] * BLOCK_N + offs_n[None, :]
    chunks = tl.cdiv(length, CHUNK_T)
    gh = tl.load(glast_ptr + state, mask=mask_dn, other=0.0)  # ∂loss/∂h_t, carried backwards
    dA = tl.zeros((BLOCK_D, BLOCK_N), dtype=A.dtype)
    dD = tl.zeros((BLOCK_D,), dtype=A.dtype)
    dbias = tl.zeros((BLOCK_D,), dtype=A.dtype)
    for back in range(0, chunks):
        c = chunks - 1 - back
        t0 = c * CHUNK_T
        steps = tl.minimum(CHUNK_T, length - t0)
        # recompute the chunk's states from its checkpoint: slot 0 the checkpoint, slot s + 1
        # the state after step s
        h = tl.load(ckpt_ptr + (pid_b * chunks + c) * dim * d_state + tile, mask=mask_dn, other=0.0)
        tl.store(scratch + local, h)
        for s in range(0, steps):
            t = t0 + s
            dt = tl.load(delta_ptr + row + t, mask=mask_d, other=0.0) + bias
            if SOFTPLUS:
                dt = tl.where(dt <= 20.0, tl.log(1.0 + tl.exp(dt)), dt)
            xt = tl.load(x_ptr + row + t, mask=mask_d, other=0.0)
            Bt = tl.load(B_ptr + bc_row + t, mask=mask_n, other=0.0)
            h = tl.exp(dt[:, None] * A) * h + (dt * xt)[:, None] * Bt[None, :]
            tl.store(scratch + (s + 1) * BLOCK_D * BLOCK_N + local, h)
        tl.debug_barrier()  # the reverse pass reads tiles other threads may have written
        cur = h  # the state after the chunk's last step
        for back_s in range(0, steps):
            s = steps - 1 - back_s
            t = t0 + s
            prev = tl.load(scratch + s * BLOCK_D * BLOCK_N + local)
            raw = tl.load(delta_ptr + row + t, mask=mask_d, other=0.0) + bias
            dt = raw
            slope = tl.full((BLOCK_D,), 1.0, A.dtype)
            if SOFTPLUS:
                dt = tl.where(raw <= 20.0, tl.log(1.0 + tl.exp(raw)), raw)
                slope = tl.where(raw <= 20.0, tl.sigmoid(raw), slope)  # softplus' slope
            xt = tl.load(x_ptr + row + t, mask=mask_d, other=0.0)
            Bt = tl.load(B_ptr + bc_row + t, mask=mask_n, other=0.0)
            Ct = tl.load(C_ptr + bc_row + t, mask=mask_n, other=0.0)
            gy = tl.load(dout_ptr + row + t, mask=mask_d, other=0.0)
            if HAS_Z:  # undo the gate: out = y_pre · silu(z), y_pre from the recomputed state
                y_pre = tl.sum(cur * Ct[None, :], axis=1) + skip * xt
                zt = tl.load(z_ptr + row + t, mask=mask_d, other=0.0)
                sig = tl.sigmoid(zt)
                tl.store(dz_ptr + row + t, gy * y_pre * sig * (1.0 + zt * (1.0 - sig)), mask=mask_d)
                gy = gy * zt * sig
            g = gh + gy[:, None] * Ct[None, :]  # ∂loss/∂h_t
            ea = tl.exp(dt[:, None] * A)
            q = g * prev * ea  # ∂loss/∂exp(Δ_t A) · exp(Δ_t A)
            gdt = tl.sum(q * A + g * Bt[None, :] * xt[:, None], axis=1)
            dA += q * dt[:, None]
            dB_t = tl.sum(tl.where(mask_dn, g * (dt * xt)[:, None], 0.0), axis=0)
            dC_t = tl.sum(tl.where(mask_dn, gy[:, None] * cur, 0.0), axis=0)
            # other programs hold other channels of this batch element: add, atomically
            tl.atomic_add(dB_ptr + bc_row + t, dB_t, mask=mask_n)
            tl.atomic_add(dC_ptr + bc_row + t, dC_t, mask=mask_n)
            gx = tl.sum(g * Bt[None, :], axis=1) * dt + gy * skip
            tl.store(dx_ptr + row + t, gx, mask=mask_d)
            graw = gdt * slope
            tl.store(ddelta_ptr + row + t, graw, mask=mask_d)
            dbias += graw
            dD += gy * xt
            gh = g * ea
            cur = prev
        tl.debug_barrier()  # before the next chunk overwrites the scratch
    tl.store(dA_ptr + state, dA, mask=mask_dn)
    tl.store(dD_ptr + pid_b * dim + offs_d, dD, mask=mask_d)
    tl.store(dbias_ptr + pid_b * dim + offs_d, dbias, mask=mask_d)


def _prepare(tensors):
    """Check the contract, one device; float64 when every tensor is float64, else float32;
    contiguous."""
    selective_tensors(*tensors)
    present = [t for t in tensors if t is not None]
    devices = {t.device for t in present}
    if len(devices) != 1:
        raise ValueError(f"expected every tensor on one device, got {sorted(map(str, devices))}")
    dtype = torch.float64 if all(t.dtype == torch.float64 for t in present) else torch.float32
    return [None if t is None else t.detach().to(dtype).contiguous() for t in tensors]


def _context(x):
    return torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext()


def _sizes(block_d, chunk):
    """The launch sizes, checked: block_d a power of two (Triton's tiles), chunk >= 1."""
    if (
        isinstance(block_d, bool)
        or not isinstance(block_d, int)
        or block_d < 1
        or block_d & (block_d - 1)
    ):
        raise ValueError(f"expected block_d to be a power of two, got {block_d!r}")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"expected chunk to be an integer >= 1, got {chunk!r}")
    return block_d, chunk


def _block_n(d_state):
    return max(2, triton.next_power_of_2(d_state))


def selective_scan_fwd_triton(
    x, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, block_d=32,
    return_checkpoints=False, chunk=CHUNK,
):  # fmt: skip
    """Forward selective scan with Triton. torch tensors, shapes as
    :func:`mamba_edu.selective.selective_scan`, layout (batch, D, L); computed in float64 when
    every input is float64, else in float32 (inputs are converted and made contiguous).
    Returns (out (batch, D, L), last state (batch, D, N)) on the inputs' device, and with
    ``return_checkpoints`` also the states before every ``chunk``-th step,
    (batch, ⌈L / chunk⌉, D, N), for :func:`selective_scan_bwd_triton`. ``block_d`` channels per
    program (a power of two); ``chunk`` steps between checkpoints."""
    block_d, chunk = _sizes(block_d, chunk)
    x, delta, A, B, C, D, z, delta_bias = _prepare((x, delta, A, B, C, D, z, delta_bias))
    batch, dim, length = x.shape
    d_state = A.shape[1]
    out = torch.empty_like(x)
    last = x.new_empty(batch, dim, d_state)
    ckpt = x.new_empty(batch, triton.cdiv(length, chunk), dim, d_state) if return_checkpoints else x
    grid = (triton.cdiv(dim, block_d), batch)
    with _context(x):
        _selective_scan_fwd_kernel[grid](
            x, delta, A, B, C, D if D is not None else x, z if z is not None else x,
            delta_bias if delta_bias is not None else x, out, last, ckpt, dim, length, d_state,
            HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
            SOFTPLUS=bool(delta_softplus), SAVE=bool(return_checkpoints), CHUNK_T=chunk,
            BLOCK_D=block_d, BLOCK_N=_block_n(d_state),
        )  # fmt: skip
    return (out, last, ckpt) if return_checkpoints else (out, last)


def selective_scan_bwd_triton(
    dout, x, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
    dlast_state=None, checkpoints=None, block_d=32, chunk=CHUNK,
):  # fmt: skip
    """Gradients of the selective scan with the Triton reverse scan. torch tensors as
    :func:`selective_scan_fwd_triton`; ``dout`` = ∂loss/∂out (batch, D, L), ``dlast_state``
    (optional) = ∂loss/∂h_{L−1} (batch, D, N), ``checkpoints`` (optional) as the forward returns
    them (else it is run to get them). Returns a dict with dx, ddelta (w.r.t. the raw Δ), dA,
    dB, dC and dD, dz, ddelta_bias for the arguments given. ``block_d`` and ``chunk`` as the
    forward pass that made the checkpoints."""
    block_d, chunk = _sizes(block_d, chunk)
    x, delta, A, B, C, D, z, delta_bias = _prepare((x, delta, A, B, C, D, z, delta_bias))
    batch, dim, length = x.shape
    d_state = A.shape[1]
    chunks = triton.cdiv(length, chunk)

    def checked(t, name, names, shape):
        if not isinstance(t, torch.Tensor) or tuple(t.shape) != tuple(shape):
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"expected {name} of shape {names} = {tuple(shape)}, got {got}")
        return t.detach().to(device=x.device, dtype=x.dtype).contiguous()

    dout = checked(dout, "dout", "(batch, D, L)", x.shape)
    state_shape = (batch, dim, d_state)
    glast = (
        x.new_zeros(state_shape)
        if dlast_state is None
        else checked(dlast_state, "dlast_state", "(batch, D, N)", state_shape)
    )
    if checkpoints is None:
        *_, checkpoints = selective_scan_fwd_triton(
            x, delta, A, B, C, D, z, delta_bias, delta_softplus, block_d, True, chunk
        )
    ckpt = checked(checkpoints, "checkpoints", "(batch, ⌈L/chunk⌉, D, N)",
                   (batch, chunks, dim, d_state))  # fmt: skip
    grid = (triton.cdiv(dim, block_d), batch)
    block_n = _block_n(d_state)
    scratch = x.new_empty(grid[0] * grid[1] * (chunk + 1) * block_d * block_n)
    dx, ddelta = torch.empty_like(x), torch.empty_like(x)
    dz = torch.empty_like(x) if z is not None else x
    dA = x.new_empty(batch, dim, d_state)
    dD, dbias = x.new_empty(batch, dim), x.new_empty(batch, dim)
    dB, dC = x.new_zeros(batch, d_state, length), x.new_zeros(batch, d_state, length)
    with _context(x):
        _selective_scan_bwd_kernel[grid](
            x, delta, A, B, C, D if D is not None else x, z if z is not None else x,
            delta_bias if delta_bias is not None else x, dout, glast, ckpt, scratch,
            dx, ddelta, dz, dA, dD, dbias, dB, dC, dim, length, d_state,
            HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
            SOFTPLUS=bool(delta_softplus), CHUNK_T=chunk, BLOCK_D=block_d, BLOCK_N=block_n,
        )  # fmt: skip
    result = {"dx": dx, "ddelta": ddelta, "dA": dA.sum(0), "dB": dB, "dC": dC}
    if D is not None:
        result["dD"] = dD.sum(0)
    if z is not None:
        result["dz"] = dz
    if delta_bias is not None:
        result["ddelta_bias"] = dbias.sum(0)
    return {
        k: result[k]
        for k in ("dx", "ddelta", "dA", "dB", "dC", "dD", "dz", "ddelta_bias")
        if k in result
    }


class SelectiveScanTritonFn(torch.autograd.Function):
    """The Triton selective scan as a differentiable torch op (float32 or float64; CUDA
    tensors, or CPU tensors under the interpreter).

    ``SelectiveScanTritonFn.apply(x, delta, A, B, C, D, z, delta_bias, delta_softplus[, block_d,
    chunk])`` returns (out, last_state); the forward saves the inputs and the chunk checkpoints
    only."""

    @staticmethod
    def forward(ctx, x, delta, A, B, C, D, z, delta_bias, delta_softplus, block_d=32, chunk=CHUNK):
        tensors = (x, delta, A, B, C, D, z, delta_bias)
        out, last, ckpt = selective_scan_fwd_triton(
            *tensors, delta_softplus, block_d, return_checkpoints=True, chunk=chunk
        )
        ctx.save_for_backward(*tensors, ckpt)
        ctx.delta_softplus = delta_softplus
        ctx.sizes = block_d, chunk
        return out, last

    @staticmethod
    def backward(ctx, dout, dlast):
        *tensors, ckpt = ctx.saved_tensors
        x = tensors[0]
        if dout is None:
            dout = torch.zeros_like(x)
        g = selective_scan_bwd_triton(dout, *tensors, ctx.delta_softplus, dlast, ckpt, *ctx.sizes)
        # back to each input's own dtype (the kernel computed in float32 unless all were float64)
        names = ("dx", "ddelta", "dA", "dB", "dC", "dD", "dz", "ddelta_bias")
        return (
            *(None if t is None else g[k].to(t.dtype) for k, t in zip(names, tensors, strict=True)),
            None, None, None,
        )  # fmt: skip


def selective_scan_triton(
    x, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
    return_last_state=False, block_d=32, chunk=CHUNK,
):  # fmt: skip
    """The selective scan on torch tensors with the Triton kernels, differentiable. Layout
    (batch, D, L) as :func:`mamba_edu.selective.selective_scan`; ``block_d`` channels per
    program, ``chunk`` steps between the checkpoints the backward pass recomputes from."""
    selective_tensors(x, delta, A, B, C, D, z, delta_bias)
    block_d, chunk = _sizes(block_d, chunk)
    out, last = SelectiveScanTritonFn.apply(
        x, delta, A, B, C, D, z, delta_bias, bool(delta_softplus), block_d, chunk
    )
    return (out, last) if return_last_state else out
