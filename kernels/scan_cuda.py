"""First-order scan on a CUDA GPU with numba-cuda: a Blelloch scan per block, chunks with carries.

h_t = a_t · h_{t−1} + b_t over arrays (..., L), as in :func:`mamba_edu.scan.sequential_scan`.

How the work is laid out (lesson 03):

* **One block scans one chunk** of ``block`` time steps of one row, in shared memory, with
  Blelloch's up-sweep and down-sweep (:func:`mamba_edu.scan.blelloch_scan` is the NumPy version):
  each thread loads one step (a_t, b_t); ``block`` is a power of two and the steps past the end of
  the row are the identity (1, 0). The block writes, for every t, the composition (A_t, B_t) of its
  chunk's steps up to t, and the chunk's total.
* **Carries**: a second kernel scans the chunk totals of each row (one thread per row: there are
  only L / block of them) and gives the state entering each chunk.
* **Carry in**: a third kernel sets h_t = A_t · carry + B_t.

With L ≤ ``block`` there is a single chunk and the first kernel does all the work: that is
:func:`block_scan`. The backward pass (:func:`scan_backward`) is the same scan run right to left
(on the reversed arrays), then one element-wise kernel for da.

Running without a GPU: set ``NUMBA_ENABLE_CUDASIM=1`` *before numba is first imported* and numba
runs these kernels in its CUDA simulator, one Python thread per GPU thread (slow: keep inputs
small and grids to a few blocks). :func:`mode` says which of the two is in use.
"""

from __future__ import annotations

import numpy as np
from numba import config, cuda

from mamba_edu.contract import check_grad_input, check_scan_inputs

__all__ = ["mode", "block_scan", "chunked_scan", "scan_forward", "scan_backward", "MAX_BLOCK"]

MAX_BLOCK = 1024  # threads per block on every CUDA GPU since compute capability 2.0
MAX_GRID_Y = 65535  # blocks along the grid's y axis (chunks of one row)


def mode() -> str:
    """ "gpu" (a real CUDA device), "simulator" (NUMBA_ENABLE_CUDASIM=1) or "unavailable"."""
    if config.ENABLE_CUDASIM:
        return "simulator"
    try:
        return "gpu" if cuda.is_available() else "unavailable"
    except Exception:  # noqa: BLE001 - a broken driver install is "unavailable" too
        return "unavailable"


def _require_device() -> None:
    if mode() == "unavailable":
        raise RuntimeError(
            "no CUDA GPU is available here. To run the CUDA kernels on the CPU, set the "
            "environment variable NUMBA_ENABLE_CUDASIM=1 before numba is first imported (for "
            "example, first thing in a notebook: import os; os.environ['NUMBA_ENABLE_CUDASIM'] = '1')."
        )


_KERNELS: dict = {}


def _kernels(block: int, dtype: np.dtype):
    """Compile (once per block size and dtype) the kernels; shared arrays need a fixed size."""
    key = (block, np.dtype(dtype))
    if key in _KERNELS:
        return _KERNELS[key]
    # the simulator and real CUDA both provide it; needed at compile time only
    from numba import from_dtype

    nbtype = from_dtype(np.dtype(dtype))
    ONE = np.dtype(dtype).type(1)
    ZERO = np.dtype(dtype).type(0)

    if np.dtype(dtype).kind == "c":

        @cuda.jit(device=True)
        def conj(x):
            return x.conjugate()

    else:

        @cuda.jit(device=True)
        def conj(x):
            return x

    @cuda.jit
    def local_scan(a, b, pa, pb, tot_a, tot_b):
        # grid (rows, chunks); one thread per time step of the chunk
        sa = cuda.shared.array(block, nbtype)
        sb = cuda.shared.array(block, nbtype)
        m = cuda.blockIdx.x
        c = cuda.blockIdx.y
        tid = cuda.threadIdx.x
        t = c * block + tid
        xa = ONE
        xb = ZERO
        if t < a.shape[1]:
            xa = a[m, t]
            xb = b[m, t]
        sa[tid] = xa
        sb[tid] = xb
        # up-sweep: node `right` becomes (node right − d) ∘ (node right), a tree of totals
        d = 1
        while d < block:
            cuda.syncthreads()
            right = (tid + 1) * 2 * d - 1
            if right < block:
                left = right - d
                sb[right] = sa[right] * sb[left] + sb[right]
                sa[right] = sa[left] * sa[right]
            d *= 2
        cuda.syncthreads()
        if tid == 0:
            tot_a[m, c] = sa[block - 1]
            tot_b[m, c] = sb[block - 1]
            sa[block - 1] = ONE  # nothing comes before the chunk's first step
            sb[block - 1] = ZERO
        # down-sweep: left child ← prefix before the node; right child ← prefix ∘ left total
        d = block // 2
        while d >= 1:
            cuda.syncthreads()
            right = (tid + 1) * 2 * d - 1
            if right < block:
                left = right - d
                la = sa[left]
                lb = sb[left]
                qa = sa[right]
                qb = sb[right]
                sa[left] = qa
                sb[left] = qb
                sa[right] = qa * la
                sb[right] = la * qb + lb
            d //= 2
        cuda.syncthreads()
        if t < a.shape[1]:  # inclusive prefix = exclusive prefix ∘ this step
            pa[m, t] = sa[tid] * xa
            pb[m, t] = xa * sb[tid] + xb

    @cuda.jit
    def carry_scan(tot_a, tot_b, h0, carry):
        m = cuda.grid(1)
        if m < tot_a.shape[0]:
            state = h0[m]
            for c in range(tot_a.shape[1]):
                carry[m, c] = state
                state = tot_a[m, c] * state + tot_b[m, c]

    @cuda.jit
    def carry_in(pa, pb, carry, h):
        m = cuda.blockIdx.x
        c = cuda.blockIdx.y
        t = c * block + cuda.threadIdx.x
        if t < h.shape[1]:
            h[m, t] = pa[m, t] * carry[m, c] + pb[m, t]

    @cuda.jit
    def grads(a, h, h0, dh, da, dh0):
        m = cuda.blockIdx.x
        t = cuda.blockIdx.y * block + cuda.threadIdx.x
        if t < h.shape[1]:
            if t == 0:
                da[m, t] = dh[m, t] * conj(h0[m])
                dh0[m] = conj(a[m, 0]) * dh[m, 0]
            else:
                da[m, t] = dh[m, t] * conj(h[m, t - 1])

    _KERNELS[key] = (local_scan, carry_scan, carry_in, grads)
    return _KERNELS[key]


def _check_block(block) -> int:
    if (
        not isinstance(block, (int, np.integer))
        or block < 1
        or block > MAX_BLOCK
        or block & (block - 1)
    ):
        raise ValueError(
            f"expected block to be a power of two from 1 to {MAX_BLOCK} (threads per block), "
            f"got {block!r}"
        )
    return int(block)


def _scan_rows(a2, b2, h02, block):
    """The three kernels on (M, L) arrays; returns h (M, L) on the host."""
    M, L = a2.shape
    h = np.empty_like(a2)
    if M == 0 or L == 0:
        return h
    local_scan, carry_scan, carry_in, _ = _kernels(block, a2.dtype)
    n_chunks = -(-L // block)
    if n_chunks > MAX_GRID_Y:
        raise ValueError(
            f"L = {L} needs {n_chunks} blocks of {block} per row, more than a CUDA grid allows "
            f"({MAX_GRID_Y}); use a larger block"
        )
    d_a, d_b = cuda.to_device(a2), cuda.to_device(b2)
    d_pa = cuda.device_array((M, L), a2.dtype)
    d_pb = cuda.device_array((M, L), a2.dtype)
    d_ta = cuda.device_array((M, n_chunks), a2.dtype)
    d_tb = cuda.device_array((M, n_chunks), a2.dtype)
    d_carry = cuda.device_array((M, n_chunks), a2.dtype)
    d_h = cuda.device_array((M, L), a2.dtype)
    local_scan[(M, n_chunks), block](d_a, d_b, d_pa, d_pb, d_ta, d_tb)
    threads = min(128, M)
    carry_scan[-(-M // threads), threads](d_ta, d_tb, cuda.to_device(h02), d_carry)
    carry_in[(M, n_chunks), block](d_pa, d_pb, d_carry, d_h)
    return d_h.copy_to_host()


def chunked_scan(a: np.ndarray, b: np.ndarray, h0: np.ndarray | None = None, block: int = 32):
    """h of shape (..., L) by the multi-block chunked scan: chunks of ``block`` steps, carries.

    a, b: NumPy arrays (..., L) of one dtype (float32, float64, complex64, complex128); h0:
    optional (...). ``block``: threads per block, a power of two (the chunk length).
    """
    _require_device()
    block = _check_block(block)
    a2, b2, h02, shape = check_scan_inputs(a, b, h0, backend="the CUDA scan")
    return _scan_rows(a2, b2, h02, block).reshape(shape)


scan_forward = chunked_scan


def block_scan(a: np.ndarray, b: np.ndarray, h0: np.ndarray | None = None):
    """h of shape (..., L), L ≤ 1024, by one block per row: a single Blelloch scan in shared memory.

    The block has the smallest power-of-two number of threads ≥ L.
    """
    _require_device()
    a2, b2, h02, shape = check_scan_inputs(a, b, h0, backend="the CUDA block scan")
    L = shape[-1]
    if L > MAX_BLOCK:
        raise ValueError(
            f"expected L <= {MAX_BLOCK} for a single-block scan, got L = {L}; use chunked_scan"
        )
    block = 1 << max(0, (L - 1).bit_length())
    return _scan_rows(a2, b2, h02, block).reshape(shape)


def scan_backward(
    a: np.ndarray, h: np.ndarray, g: np.ndarray, h0: np.ndarray | None = None, block: int = 32
):
    """Gradients (da, db, dh0) through h = scan(a, b, h0), given g = ∂ℓ/∂h, on the device.

    dh_t = g_t + conj(a_{t+1}) · dh_{t+1} is the forward scan run on the reversed sequences; then
    da_t = dh_t · conj(h_{t−1}), db_t = dh_t, dh0 = conj(a_0) · dh_0 (see ``kernels/scan_cpu.py``).
    """
    _require_device()
    block = _check_block(block)
    a2, h2, h02, shape = check_scan_inputs(a, h, h0, backend="the CUDA scan")
    g2 = check_grad_input(g, shape, a.dtype)
    M, L = a2.shape
    if M == 0 or L == 0:
        return np.empty(shape, a.dtype), np.empty(shape, a.dtype), np.zeros(shape[:-1], a.dtype)
    a_next = np.zeros_like(a2)
    a_next[:, :-1] = np.conj(a2[:, 1:])
    # reverse scan = forward scan of the reversed sequences, reversed back
    rev = _scan_rows(
        a_next[:, ::-1].copy(),
        g2[:, ::-1].copy(),
        np.zeros_like(h02),
        block,
    )
    dh = rev[:, ::-1].copy()
    *_, grads = _kernels(block, a2.dtype)
    d_da = cuda.device_array((M, L), a2.dtype)
    d_dh0 = cuda.device_array(M, a2.dtype)
    grads[(M, -(-L // block)), block](
        cuda.to_device(a2), cuda.to_device(h2), cuda.to_device(h02), cuda.to_device(dh), d_da, d_dh0
    )
    return (
        d_da.copy_to_host().reshape(shape),
        dh.reshape(shape),
        d_dh0.copy_to_host().reshape(shape[:-1]),
    )
