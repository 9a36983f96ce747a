"""The selective scan forward as a numba-cuda kernel: chunked, the state kept on chip.

The memory argument of the Mamba paper (Section 3.3.2): the states h_t, all (batch, L, D, N) of them,
are the big tensor, N times larger than the input. A fused kernel never writes them to global
(GPU main) memory: it reads x, Δ, B, C once, keeps each channel's state in registers, and writes
only y, (batch, D, L), and the last state, (batch, D, N).

Layout of the work:

* one thread per (batch element, channel d): it owns h[d, :], N numbers in a thread-local array
  of the fixed size ``MAX_DSTATE`` (registers, or local memory cached in L1: on chip either way);
* one block of ``THREADS`` channels of one batch element: B_t and C_t are the same for all of
  them, so the block loads them for a chunk of ``CHUNK`` time steps into shared memory once
  (cooperatively, one value per thread), synchronizes, and every thread advances its state
  through the chunk reading B and C from shared memory; then the next chunk.

On a CPU it runs under the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1`` set before numba is first
imported), at Python speed: keep the inputs tiny there.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda

from mamba_edu.contract import selective_args

__all__ = ["selective_scan_fwd_cuda", "launch", "THREADS", "CHUNK", "MAX_DSTATE"]

THREADS = 64  # channels per block
CHUNK = 32  # time steps of B and C staged in shared memory at a time
MAX_DSTATE = 64  # the largest N the kernel's register array holds


@cuda.jit(fastmath=True)
def _selective_scan_fwd_kernel(x, delta, A, B, C, D, z, delta_bias, flags, out, last_state):
    # flags: [has_D, has_z, has_bias, softplus]
    batch, dim, length = x.shape
    d_state = A.shape[1]
    b = cuda.blockIdx.y
    d = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    tid = cuda.threadIdx.x
    B_chunk = cuda.shared.array((MAX_DSTATE, CHUNK), dtype=np.float32)
    C_chunk = cuda.shared.array((MAX_DSTATE, CHUNK), dtype=np.float32)
    h = cuda.local.array(MAX_DSTATE, dtype=np.float32)  # this channel's state, on chip
    for n in range(d_state):
        h[n] = np.float32(0.0)
    active = d < dim
    a_row = d if active else 0
    bias = delta_bias[a_row] if flags[2] else np.float32(0.0)
    skip = D[a_row] if flags[0] else np.float32(0.0)
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
            for s in range(steps):
                t = t0 + s
                dt = delta[b, d, t] + bias
                if flags[3] and dt <= np.float32(20.0):
                    dt = math.log1p(math.exp(dt))
                xt = x[b, d, t]
                y = np.float32(0.0)
                for n in range(d_state):
                    h[n] = math.exp(dt * A[d, n]) * h[n] + dt * B_chunk[n, s] * xt
                    y += C_chunk[n, s] * h[n]
                y += skip * xt
                if flags[1]:
                    zt = z[b, d, t]
                    y = y * zt / (np.float32(1.0) + math.exp(-zt))
                out[b, d, t] = y
        cuda.syncthreads()  # before the next chunk overwrites the shared buffers
    if active:
        for n in range(d_state):
            last_state[b, d, n] = h[n]


def selective_scan_fwd_cuda(
    x, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False
):
    """Forward selective scan on the GPU (or the simulator). NumPy float32 arrays in and out
    (copied to and from the device); shapes as :func:`mamba_edu.selective.selective_scan`.
    Returns (out (batch, D, L), last state (batch, D, N)), float32."""
    x, delta, A, B, C, D, z, delta_bias = selective_args(
        x, delta, A, B, C, D, z, delta_bias, dtype=np.float32
    )
    batch, dim, length = x.shape
    d_state = A.shape[1]
    if d_state > MAX_DSTATE:
        raise ValueError(f"expected a state size N <= {MAX_DSTATE}, got A of shape {A.shape}")
    flags = np.array(
        [D is not None, z is not None, delta_bias is not None, bool(delta_softplus)], np.int32
    )

    def device(a, shape):
        return cuda.to_device(
            np.ascontiguousarray(a) if a is not None else np.zeros(shape, np.float32)
        )

    out = cuda.device_array((batch, dim, length), np.float32)
    last = cuda.device_array((batch, dim, d_state), np.float32)
    launch(
        device(x, None), device(delta, None), device(A, None), device(B, None), device(C, None),
        device(D, (1,)), device(z, (1, 1, 1)), device(delta_bias, (1,)), flags, out, last,
    )  # fmt: skip
    return out.copy_to_host(), last.copy_to_host()


def launch(x, delta, A, B, C, D, z, delta_bias, flags, out, last):
    """Launch the kernel on arrays already on the device (numba device arrays or CUDA torch
    tensors, float32, contiguous; placeholders of any shape for absent D, z, delta_bias).
    ``flags`` = [has_D, has_z, has_bias, softplus]. Asynchronous: synchronize before timing."""
    if isinstance(flags, (list, tuple, np.ndarray)):
        flags = cuda.to_device(np.asarray(flags, np.int32))
    batch, dim, _ = x.shape
    grid = (math.ceil(dim / THREADS), batch)
    _selective_scan_fwd_kernel[grid, THREADS](x, delta, A, B, C, D, z, delta_bias, flags, out, last)
