"""The selective scan as numba-cuda kernels, forward and backward: chunked, the state kept on chip.

The memory argument of the Mamba paper (Section 3.3.2): the states h_t, all (batch, L, D, N) of them,
are the big tensor, N times larger than the input. A fused kernel never writes them to global
(GPU main) memory: it reads x, Δ, B, C once, keeps each channel's state in registers, and writes
only y, (batch, D, L), the last state, (batch, D, N), and, for the backward pass, the state at
the start of every chunk of ``CHUNK`` steps, (batch, ⌈L / CHUNK⌉, D, N): 1/CHUNK of the states.

Layout of the work (forward):

* one thread per (batch element, channel d): it owns h[d, :], N numbers in a thread-local array
  of the fixed size ``MAX_DSTATE`` (registers, or local memory cached in L1: on chip either way);
* one block of ``THREADS`` channels of one batch element: B_t and C_t are the same for all of
  them, so the block loads them for a chunk of ``CHUNK`` time steps into shared memory once
  (cooperatively, one value per thread), synchronizes, and every thread advances its state
  through the chunk reading B and C from shared memory; then the next chunk.

The backward pass (the reverse scan, derived in :mod:`mamba_edu.kernels.selective_cpu`) walks the
chunks from last to first. For each chunk a thread recomputes its states from the saved
checkpoint into a (CHUNK + 1, N) local buffer (the mamba_ssm design: store chunk boundaries,
recompute the rest), then goes back through the chunk carrying gh = ∂loss/∂h. The gate is undone
in the kernel too (the output before the gate is recomputed from the same states), so nothing
but the checkpoints is saved between the passes. ∂B_t and ∂C_t are sums over channels: the
threads of a block add into a shared (N, CHUNK) accumulator (shared-memory atomics), which the
block adds to global memory once per chunk; ∂A, ∂D and ∂Δ_bias (sums over the batch) are written
per batch element and added up on the host.

Both passes compute in float32 or float64 (one compiled pair per dtype). On a CPU they run under
the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1`` set before numba is first imported), at Python
speed: keep the inputs tiny there.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda

from mamba_edu.contract import selective_args, selective_tensors

__all__ = [
    "selective_scan_fwd_cuda",
    "selective_scan_bwd_cuda",
    "SelectiveScanCudaFn",
    "selective_scan_cuda",
    "launch",
    "launch_bwd",
    "THREADS",
    "CHUNK",
    "MAX_DSTATE",
]

THREADS = 64  # channels per block
CHUNK = 32  # time steps per chunk: B and C staged in shared memory, one checkpoint saved
MAX_DSTATE = 64  # the largest N the kernel's register array holds
_DTYPES = (np.float32, np.float64)


def _build(dtype):
    """Compile-time constants (the shared and local arrays' dtype) differ per dtype: one pair
    of kernels each, built on first use."""
    f = dtype  # the kernels' float type (np.float32 or np.float64), a constant for numba
    zero, one, threshold = f(0.0), f(1.0), f(20.0)

    @cuda.jit(fastmath=True)
    def forward(x, delta, A, B, C, D, z, delta_bias, flags, out, last, ckpt):
        # flags: [has_D, has_z, has_bias, softplus, save_checkpoints]
        batch, dim, length = x.shape
        d_state = A.shape[1]
        b = cuda.blockIdx.y
        d = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
        tid = cuda.threadIdx.x
        B_chunk = cuda.shared.array((MAX_DSTATE, CHUNK), dtype=f)
        C_chunk = cuda.shared.array((MAX_DSTATE, CHUNK), dtype=f)
        h = cuda.local.array(MAX_DSTATE, dtype=f)  # this channel's state, on chip
        for n in range(d_state):
            h[n] = zero
        active = d < dim
        a_row = d if active else 0
        bias = delta_bias[a_row] if flags[2] else zero
        skip = D[a_row] if flags[0] else zero
        for t0 in range(0, length, CHUNK):
            steps = min(CHUNK, length - t0)
            # stage B and C for this chunk: all threads of the block share them
            for k in range(tid, d_state * steps, cuda.blockDim.x):
                n = k // steps
                s = k % steps
                B_chunk[n, s] = B[b, n, t0 + s]
                C_chunk[n, s] = C[b, n, t0 + s]
            cuda.syncthreads()
            if active:
                if flags[4]:  # the checkpoint: the state before the chunk's first step
                    for n in range(d_state):
                        ckpt[b, t0 // CHUNK, d, n] = h[n]
                for s in range(steps):
                    t = t0 + s
                    dt = delta[b, d, t] + bias
                    if flags[3] and dt <= threshold:
                        dt = math.log1p(math.exp(dt))
                    xt = x[b, d, t]
                    y = zero
                    for n in range(d_state):
                        h[n] = math.exp(dt * A[d, n]) * h[n] + dt * B_chunk[n, s] * xt
                        y += C_chunk[n, s] * h[n]
                    y += skip * xt
                    if flags[1]:
                        zt = z[b, d, t]
                        y = y * zt / (one + math.exp(-zt))
                    out[b, d, t] = y
            cuda.syncthreads()  # before the next chunk overwrites the shared buffers
        if active:
            for n in range(d_state):
                last[b, d, n] = h[n]

    @cuda.jit(fastmath=True)
    def backward(
        x, delta, A, B, C, D, z, delta_bias, flags, dout, glast, ckpt,
        dx, ddelta, dz, dA_part, dD_part, dbias_part, dB, dC,
    ):  # fmt: skip
        # flags: [has_D, has_z, has_bias, softplus]; dB, dC (batch, N, L) start at zero
        batch, dim, length = x.shape
        d_state = A.shape[1]
        b = cuda.blockIdx.y
        d = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
        tid = cuda.threadIdx.x
        # shared memory holds the ∂B, ∂C accumulators of a chunk; B_t and C_t are read from
        # global memory (the same address for every thread of a warp: one broadcast via L1)
        dB_chunk = cuda.shared.array((MAX_DSTATE, CHUNK), dtype=f)
        dC_chunk = cuda.shared.array((MAX_DSTATE, CHUNK), dtype=f)
        hs = cuda.local.array((CHUNK + 1, MAX_DSTATE), dtype=f)  # the chunk's states, recomputed
        gh = cuda.local.array(MAX_DSTATE, dtype=f)  # ∂loss/∂h_t, carried backwards
        dA = cuda.local.array(MAX_DSTATE, dtype=f)
        active = d < dim
        a_row = d if active else 0
        bias = delta_bias[a_row] if flags[2] else zero
        skip = D[a_row] if flags[0] else zero
        for n in range(d_state):
            gh[n] = glast[b, a_row, n]
            dA[n] = zero
        dD = zero
        dbias = zero
        chunks = (length + CHUNK - 1) // CHUNK
        for back in range(chunks):
            c = chunks - 1 - back
            t0 = c * CHUNK
            steps = min(CHUNK, length - t0)
            for k in range(tid, d_state * steps, cuda.blockDim.x):
                dB_chunk[k // steps, k % steps] = zero
                dC_chunk[k // steps, k % steps] = zero
            cuda.syncthreads()
            if active:
                # recompute: hs[0] is the checkpoint, hs[s + 1] the state after step s
                for n in range(d_state):
                    hs[0, n] = ckpt[b, c, d, n]
                for s in range(steps):
                    t = t0 + s
                    dt = delta[b, d, t] + bias
                    if flags[3] and dt <= threshold:
                        dt = math.log1p(math.exp(dt))
                    dtx = dt * x[b, d, t]
                    for n in range(d_state):
                        hs[s + 1, n] = math.exp(dt * A[d, n]) * hs[s, n] + dtx * B[b, n, t]
                # the reverse scan through the chunk
                for back_s in range(steps):
                    s = steps - 1 - back_s
                    t = t0 + s
                    raw = delta[b, d, t] + bias
                    dt = raw
                    slope = one
                    if flags[3] and raw <= threshold:
                        dt = math.log1p(math.exp(raw))
                        slope = one / (one + math.exp(-raw))  # softplus' slope, σ(raw)
                    xt = x[b, d, t]
                    gy = dout[b, d, t]
                    if flags[1]:  # undo the gate: out = y_pre · silu(z), y_pre recomputed
                        y_pre = skip * xt
                        for n in range(d_state):
                            y_pre += C[b, n, t] * hs[s + 1, n]
                        zt = z[b, d, t]
                        sig = one / (one + math.exp(-zt))
                        dz[b, d, t] = gy * y_pre * sig * (one + zt * (one - sig))
                        gy = gy * zt * sig
                    gdt = zero
                    gx = zero
                    for n in range(d_state):
                        g = gh[n] + gy * C[b, n, t]  # ∂loss/∂h_t[n]
                        cuda.atomic.add(dC_chunk, (n, s), gy * hs[s + 1, n])
                        ea = math.exp(dt * A[d, n])
                        q = g * hs[s, n] * ea  # ∂loss/∂exp(Δ_t A) · exp(Δ_t A)
                        gdt += q * A[d, n] + g * B[b, n, t] * xt
                        dA[n] += q * dt
                        cuda.atomic.add(dB_chunk, (n, s), g * dt * xt)
                        gx += g * dt * B[b, n, t]
                        gh[n] = g * ea
                    dx[b, d, t] = gx + gy * skip
                    graw = gdt * slope
                    ddelta[b, d, t] = graw
                    dbias += graw
                    dD += gy * xt
            cuda.syncthreads()
            # other blocks hold other channels of the same batch element: add, atomically
            for k in range(tid, d_state * steps, cuda.blockDim.x):
                n = k // steps
                s = k % steps
                cuda.atomic.add(dB, (b, n, t0 + s), dB_chunk[n, s])
                cuda.atomic.add(dC, (b, n, t0 + s), dC_chunk[n, s])
            cuda.syncthreads()  # before the next chunk clears the accumulators
        if active:
            for n in range(d_state):
                dA_part[b, d, n] = dA[n]
            dD_part[b, d] = dD
            dbias_part[b, d] = dbias

    return forward, backward


_KERNELS: dict = {}


def _kernels(dtype):
    dtype = np.dtype(dtype).type
    if dtype not in _KERNELS:
        _KERNELS[dtype] = _build(dtype)
    return _KERNELS[dtype]


def _kernel_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in [np.dtype(k) for k in _DTYPES]:
        raise TypeError(f"the CUDA selective scan runs in float32 or float64, got dtype {dtype}")
    return dtype.type


def _flags(D, z, delta_bias, delta_softplus, save=True):
    return np.array(
        [D is not None, z is not None, delta_bias is not None, bool(delta_softplus), save],
        np.int32,
    )


def _check_state_size(A):
    if A.shape[1] > MAX_DSTATE:
        raise ValueError(f"expected a state size N <= {MAX_DSTATE}, got A of shape {A.shape}")


def _to_device(a, placeholder_shape, dtype):
    if a is None:
        return cuda.to_device(np.zeros(placeholder_shape, dtype))
    return cuda.to_device(np.ascontiguousarray(a, dtype))


def selective_scan_fwd_cuda(
    x, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
    dtype=np.float32, return_checkpoints=False,
):  # fmt: skip
    """Forward selective scan on the GPU (or the simulator). NumPy arrays in and out (copied to
    and from the device); shapes as :func:`mamba_edu.selective.selective_scan`, layout
    (batch, D, L). Computes in ``dtype`` (float32, the default, or float64).
    Returns (out (batch, D, L), last state (batch, D, N)), and with ``return_checkpoints`` also
    the states before every CHUNK-th step, (batch, ⌈L / CHUNK⌉, D, N), for
    :func:`selective_scan_bwd_cuda`."""
    dtype = _kernel_dtype(dtype)
    x, delta, A, B, C, D, z, delta_bias = selective_args(
        x, delta, A, B, C, D, z, delta_bias, dtype=dtype
    )
    _check_state_size(A)
    batch, dim, length = x.shape
    d_state = A.shape[1]
    out = cuda.device_array((batch, dim, length), dtype)
    last = cuda.device_array((batch, dim, d_state), dtype)
    ckpt = cuda.device_array((batch, -(-length // CHUNK), dim, d_state), dtype)
    launch(
        *(_to_device(a, (1, 1, 1), dtype) for a in (x, delta, A, B, C)),
        _to_device(D, (1,), dtype), _to_device(z, (1, 1, 1), dtype),
        _to_device(delta_bias, (1,), dtype), _flags(D, z, delta_bias, delta_softplus),
        out, last, ckpt,
    )  # fmt: skip
    result = out.copy_to_host(), last.copy_to_host()
    return (*result, ckpt.copy_to_host()) if return_checkpoints else result


def selective_scan_bwd_cuda(
    dout, x, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
    dlast_state=None, checkpoints=None, dtype=np.float32,
):  # fmt: skip
    """Gradients of the selective scan with the numba-cuda reverse scan. NumPy arrays in and out.

    ``dout`` = ∂loss/∂out, (batch, D, L); ``dlast_state`` (optional) = ∂loss/∂h_{L−1},
    (batch, D, N); ``checkpoints`` (optional) as :func:`selective_scan_fwd_cuda` returns them,
    else the forward pass is run to get them. Returns a dict with dx, ddelta (w.r.t. the raw Δ,
    before bias and softplus), dA, dB, dC and dD, dz, ddelta_bias for the arguments given, in
    ``dtype`` (as :func:`mamba_edu.kernels.selective_cpu.selective_scan_bwd`)."""
    dtype = _kernel_dtype(dtype)
    x, delta, A, B, C, D, z, delta_bias = selective_args(
        x, delta, A, B, C, D, z, delta_bias, dtype=dtype
    )
    _check_state_size(A)
    batch, dim, length = x.shape
    d_state = A.shape[1]
    shape = (batch, dim, length)
    dout = _checked(dout, "dout", "(batch, D, L)", shape, dtype)
    glast = (
        np.zeros((batch, dim, d_state), dtype)
        if dlast_state is None
        else _checked(dlast_state, "dlast_state", "(batch, D, N)", (batch, dim, d_state), dtype)
    )
    ckpt_shape = (batch, -(-length // CHUNK), dim, d_state)
    if checkpoints is None:
        *_, checkpoints = selective_scan_fwd_cuda(
            x, delta, A, B, C, D, z, delta_bias, delta_softplus, dtype, return_checkpoints=True
        )
    checkpoints = _checked(
        checkpoints, "checkpoints", "(batch, ⌈L/CHUNK⌉, D, N)", ckpt_shape, dtype
    )
    arrays = [
        *(_to_device(a, (1, 1, 1), dtype) for a in (x, delta, A, B, C)),
        _to_device(D, (1,), dtype), _to_device(z, (1, 1, 1), dtype),
        _to_device(delta_bias, (1,), dtype), _flags(D, z, delta_bias, delta_softplus),
        _to_device(dout, None, dtype), _to_device(glast, None, dtype),
        _to_device(checkpoints, None, dtype),
    ]  # fmt: skip
    grads = {
        "dx": cuda.device_array(shape, dtype),
        "ddelta": cuda.device_array(shape, dtype),
        "dz": cuda.device_array(shape if z is not None else (1, 1, 1), dtype),
        "dA_part": cuda.device_array((batch, dim, d_state), dtype),
        "dD_part": cuda.device_array((batch, dim), dtype),
        "dbias_part": cuda.device_array((batch, dim), dtype),
        "dB": cuda.to_device(np.zeros((batch, d_state, length), dtype)),
        "dC": cuda.to_device(np.zeros((batch, d_state, length), dtype)),
    }
    launch_bwd(*arrays, *grads.values())
    host = {k: v.copy_to_host() for k, v in grads.items()}
    result = {
        "dx": host["dx"], "ddelta": host["ddelta"], "dA": host["dA_part"].sum(axis=0),
        "dB": host["dB"], "dC": host["dC"],
    }  # fmt: skip
    if D is not None:
        result["dD"] = host["dD_part"].sum(axis=0)
    if z is not None:
        result["dz"] = host["dz"]
    if delta_bias is not None:
        result["ddelta_bias"] = host["dbias_part"].sum(axis=0)
    return result


def _checked(value, name, names, shape, dtype):
    array = np.asarray(value)
    if array.shape != tuple(shape):
        raise ValueError(f"expected {name} of shape {names} = {tuple(shape)}, got {array.shape}")
    return np.ascontiguousarray(array, dtype)


def _grid(x):
    batch, dim, _ = x.shape
    return (math.ceil(dim / THREADS), batch)


def _flags_on_device(flags):
    if isinstance(flags, (list, tuple, np.ndarray)):
        return cuda.to_device(np.asarray(flags, np.int32))
    return flags


def launch(x, delta, A, B, C, D, z, delta_bias, flags, out, last, ckpt=None):
    """Launch the forward kernel on arrays already on the device (numba device arrays or CUDA
    torch tensors, all float32 or all float64, contiguous; placeholders of any shape for absent
    D, z, delta_bias). ``flags`` = [has_D, has_z, has_bias, softplus] (a fifth entry, save the
    checkpoints, is set when ``ckpt``, (batch, ⌈L / CHUNK⌉, D, N), is given).
    Asynchronous: synchronize before timing."""
    if isinstance(flags, (list, tuple, np.ndarray)):
        flags = np.asarray(flags, np.int32)
        if flags.size == 4:
            flags = np.append(flags, np.int32(ckpt is not None))
    if tuple(flags.shape) != (5,):
        raise ValueError(
            "expected flags [has_D, has_z, has_bias, softplus, save_checkpoints] (a device "
            f"array needs all five), got shape {tuple(flags.shape)}"
        )
    if ckpt is None:
        ckpt = cuda.device_array((1, 1, 1, 1), _dtype_of(x))  # a placeholder, never written
    forward, _ = _kernels(_dtype_of(x))
    forward[_grid(x), THREADS](
        x, delta, A, B, C, D, z, delta_bias, _flags_on_device(flags), out, last, ckpt
    )


def launch_bwd(
    x, delta, A, B, C, D, z, delta_bias, flags, dout, glast, ckpt,
    dx, ddelta, dz, dA_part, dD_part, dbias_part, dB, dC,
):  # fmt: skip
    """Launch the backward kernel on device arrays (as :func:`launch`). dB and dC, (batch, N, L),
    must hold zeros (the kernel adds into them); dA_part (batch, D, N), dD_part and dbias_part
    (batch, D) receive per-batch-element sums. Asynchronous."""
    _, backward = _kernels(_dtype_of(x))
    backward[_grid(x), THREADS](
        x, delta, A, B, C, D, z, delta_bias, _flags_on_device(flags), dout, glast, ckpt,
        dx, ddelta, dz, dA_part, dD_part, dbias_part, dB, dC,
    )  # fmt: skip


def _dtype_of(array):
    """np.float32 / np.float64 for a NumPy or numba device array or a torch tensor."""
    name = str(array.dtype).removeprefix("torch.")
    return _kernel_dtype(np.dtype(name))


# ----------------------------------------------------------------------------------------------
# PyTorch: the two kernels as one differentiable op
# ----------------------------------------------------------------------------------------------


def _make_function():
    import torch  # heavy, and only the torch entry points need it

    def numpy(t):
        return None if t is None else t.detach().numpy()

    class SelectiveScanCudaFn(torch.autograd.Function):
        """The numba-cuda selective scan as a differentiable torch op: float32 or float64
        tensors, all CUDA tensors on a GPU, or all CPU tensors under the simulator.

        ``SelectiveScanCudaFn.apply(x, delta, A, B, C, D, z, delta_bias, delta_softplus)``
        returns (out, last_state); the forward saves only the inputs and the chunk checkpoints,
        (batch, ⌈L / CHUNK⌉, D, N), and the backward kernel recomputes the rest."""

        @staticmethod
        def forward(ctx, x, delta, A, B, C, D, z, delta_bias, delta_softplus):
            tensors = (x, delta, A, B, C, D, z, delta_bias)
            dtype = _one_dtype(torch, tensors)
            if x.is_cuda:
                flags = _flags(D, z, delta_bias, delta_softplus)
                out, last, ckpt = _torch_outputs(torch, x, A)
                launch(*_torch_args(torch, tensors), flags, out, last, ckpt)
            else:
                out, last, ckpt = (
                    torch.from_numpy(a)
                    for a in selective_scan_fwd_cuda(
                        *map(numpy, tensors), delta_softplus, dtype, return_checkpoints=True
                    )
                )
            ctx.save_for_backward(*tensors, ckpt)
            ctx.delta_softplus = delta_softplus
            return out, last

        @staticmethod
        def backward(ctx, dout, dlast):
            *tensors, ckpt = ctx.saved_tensors
            x, _, A, _, _, D, z, delta_bias = tensors
            dout = torch.zeros_like(x) if dout is None else dout.contiguous()
            if dlast is None:
                dlast = x.new_zeros(x.shape[0], x.shape[1], A.shape[1])
            if x.is_cuda:
                flags = _flags(D, z, delta_bias, ctx.delta_softplus)
                batch, dim, length = x.shape
                d_state = A.shape[1]
                grads = {
                    "dx": torch.empty_like(x), "ddelta": torch.empty_like(x),
                    "dz": torch.empty_like(x) if z is not None else x.new_empty(1, 1, 1),
                    "dA_part": x.new_empty(batch, dim, d_state),
                    "dD_part": x.new_empty(batch, dim), "dbias_part": x.new_empty(batch, dim),
                    "dB": x.new_zeros(batch, d_state, length),
                    "dC": x.new_zeros(batch, d_state, length),
                }  # fmt: skip
                launch_bwd(
                    *_torch_args(torch, tensors), flags, dout, dlast.contiguous(), ckpt,
                    *grads.values(),
                )  # fmt: skip
                g = {
                    "dx": grads["dx"], "ddelta": grads["ddelta"], "dA": grads["dA_part"].sum(0),
                    "dB": grads["dB"], "dC": grads["dC"], "dD": grads["dD_part"].sum(0),
                    "dz": grads["dz"], "ddelta_bias": grads["dbias_part"].sum(0),
                }  # fmt: skip
            else:
                g = {
                    k: torch.from_numpy(v)
                    for k, v in selective_scan_bwd_cuda(
                        numpy(dout), *map(numpy, tensors), ctx.delta_softplus, numpy(dlast),
                        numpy(ckpt), _dtype_of(x),
                    ).items()
                }  # fmt: skip
            present = dict(D=D, z=z, ddelta_bias=delta_bias)
            return (
                g["dx"], g["ddelta"], g["dA"], g["dB"], g["dC"],
                g["dD"] if present["D"] is not None else None,
                g["dz"] if present["z"] is not None else None,
                g["ddelta_bias"] if present["ddelta_bias"] is not None else None, None,
            )  # fmt: skip

    return SelectiveScanCudaFn


def _one_dtype(torch, tensors):
    dtypes = {t.dtype for t in tensors if t is not None}
    devices = {t.device for t in tensors if t is not None}
    if len(dtypes) != 1 or not dtypes <= {torch.float32, torch.float64}:
        raise TypeError(
            "expected every tensor of the selective scan in one dtype, float32 or float64, got "
            f"{sorted(str(d) for d in dtypes)}"
        )
    if len(devices) != 1:
        raise ValueError(f"expected every tensor on one device, got {sorted(map(str, devices))}")
    return _dtype_of(tensors[0])


def _torch_args(torch, tensors):
    """Contiguous CUDA tensors for the kernel (numba reads them through the CUDA array
    interface, no copy); a one-element placeholder for an absent optional argument."""
    x = tensors[0]
    placeholder = {5: (1,), 6: (1, 1, 1), 7: (1,)}
    return [
        x.new_zeros(placeholder[i]) if t is None else t.detach().contiguous()
        for i, t in enumerate(tensors)
    ]


def _torch_outputs(torch, x, A):
    batch, dim, length = x.shape
    d_state = A.shape[1]
    out = torch.empty_like(x)
    last = x.new_empty(batch, dim, d_state)
    ckpt = x.new_empty(batch, -(-length // CHUNK), dim, d_state)
    return out, last, ckpt


try:
    SelectiveScanCudaFn = _make_function()
except ImportError:  # pragma: no cover - torch is a core dependency
    SelectiveScanCudaFn = None


def selective_scan_cuda(
    x, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
    return_last_state=False,
):  # fmt: skip
    """The selective scan on torch tensors with the numba-cuda kernels, differentiable (forward
    and backward kernels). Layout (batch, D, L) as :func:`mamba_edu.selective.selective_scan`;
    CUDA tensors on a GPU, CPU tensors under the simulator; float32 or float64."""
    tensors = (x, delta, A, B, C, D, z, delta_bias)
    selective_tensors(*tensors)
    _check_state_size(A)
    out, last = SelectiveScanCudaFn.apply(*tensors, bool(delta_softplus))
    return (out, last) if return_last_state else out
