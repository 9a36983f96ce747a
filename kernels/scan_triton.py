"""First-order scan in Triton: ``tl.associative_scan`` with the operator of lesson 03.

h_t = a_t · h_{t−1} + b_t over torch tensors (..., L), as in :func:`mamba_edu.scan.sequential_scan`.

One Triton program scans one row. It walks along time in tiles of ``BLOCK`` steps; inside a tile,
``tl.associative_scan`` composes the steps with

    (a₁, b₁) ∘ (a₂, b₂) = (a₁·a₂, a₂·b₁ + b₂)

(the compiler turns that into a parallel scan across the tile's lanes), and the state left by
the previous tile is carried in: h = A·state + B. Steps past the end of the row are loaded as the
identity (1, 0), so the last lane of a tile always holds the state after the tile.

The backward pass is the same scan read right to left (tiles are loaded with descending time
indices): dh_t = g_t + a_{t+1}·dh_{t+1}, then da_t = dh_t·h_{t−1}, db_t = dh_t.

Triton has no complex dtype: this kernel takes float32 and float64. Without a GPU, set
``TRITON_INTERPRET=1`` before the first call (the kernels here are built on first use, so the
variable need not be set before this module is imported, as most Triton code requires): the
interpreter runs the same program on CPU tensors with NumPy, which checks the logic, not the
speed.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from mamba_edu.contract import check_scan_tensors

__all__ = ["mode", "scan_forward", "scan_backward", "TritonScan", "triton_scan", "DTYPES"]

DTYPES = (torch.float32, torch.float64)
_KERNELS: dict = {}


def mode() -> str:
    """ "interpreter" (TRITON_INTERPRET=1), "gpu" (a CUDA device for Triton) or "unavailable"."""
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        return "interpreter"
    return "gpu" if torch.cuda.is_available() else "unavailable"


# The kernels' Python sources. They are handed to ``triton.jit`` on first use (``_kernels``), not
# at import, so that TRITON_INTERPRET is read when a scan is first called. Triton resolves the
# helper names below (``combine``, ``last_lane``) among this module's globals, where ``_kernels``
# puts the compiled helpers.
combine = last_lane = None


def _combine(a1, b1, a2, b2):
    # first (a1, b1), then (a2, b2)
    return a1 * a2, a2 * b1 + b2


def _last_lane(x, BLOCK: tl.constexpr):
    lanes = tl.arange(0, BLOCK)
    return tl.sum(tl.where(lanes == BLOCK - 1, x, 0.0), axis=0)


def _forward_kernel(a_ptr, b_ptr, h0_ptr, h_ptr, L, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    base = row * L
    state = tl.load(h0_ptr + row)
    for start in range(0, L, BLOCK):
        t = start + tl.arange(0, BLOCK)
        inside = t < L
        a = tl.load(a_ptr + base + t, mask=inside, other=1.0)
        b = tl.load(b_ptr + base + t, mask=inside, other=0.0)
        A, B = tl.associative_scan((a, b), 0, combine)
        h = A * state + B
        tl.store(h_ptr + base + t, h, mask=inside)
        state = last_lane(h, BLOCK)


def _backward_kernel(a_ptr, h_ptr, h0_ptr, g_ptr, da_ptr, db_ptr, dh0_ptr, L, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    base = row * L
    carry = tl.load(h0_ptr + row) * 0.0  # dh_{t+1}, zero after the last step
    for start in range(0, L, BLOCK):
        t = L - 1 - (start + tl.arange(0, BLOCK))  # descending time: a reverse scan
        inside = t >= 0
        has_next = inside & (t + 1 < L)
        c = tl.load(a_ptr + base + t + 1, mask=has_next, other=0.0)  # a_{t+1}, 0 at the end
        c = tl.where(inside, c, 1.0)  # lanes before the start of the row: the identity
        g = tl.load(g_ptr + base + t, mask=inside, other=0.0)
        C, G = tl.associative_scan((c, g), 0, combine)
        dh = C * carry + G
        h_prev = tl.load(h_ptr + base + t - 1, mask=inside & (t > 0), other=0.0)
        h_prev = tl.where(t > 0, h_prev, tl.load(h0_ptr + row))
        tl.store(db_ptr + base + t, dh, mask=inside)
        tl.store(da_ptr + base + t, dh * h_prev, mask=inside)
        carry = last_lane(dh, BLOCK)
    a0 = tl.load(a_ptr + base)
    tl.store(dh0_ptr + row, a0 * carry)  # carry is now dh_0


def _kernels():
    """Compile the kernels on first use (TRITON_INTERPRET is read here, not at import)."""
    global combine, last_lane
    interpret = mode() == "interpreter"
    if interpret in _KERNELS:
        return _KERNELS[interpret]
    combine = triton.jit(_combine)
    last_lane = triton.jit(_last_lane)
    _KERNELS[interpret] = (triton.jit(_forward_kernel), triton.jit(_backward_kernel))
    return _KERNELS[interpret]


def _require():
    m = mode()
    if m == "unavailable":
        raise RuntimeError(
            "Triton cannot run here: it needs a CUDA GPU, or the interpreter. On a CPU, set "
            "TRITON_INTERPRET=1 in the environment before the first call "
            "(import os; os.environ['TRITON_INTERPRET'] = '1'); `pip install triton` if it is missing."
        )
    return m


def _check(a, b, h0, names=("a", "b")):
    check_scan_tensors(
        a, b, h0, names,
        dtype_ok=lambda dtype: dtype in DTYPES,
        dtypes_wanted="float32 or float64 for the Triton scan (Triton has no complex type)",
    )  # fmt: skip
    if a.device != b.device:
        na, nb = names
        raise ValueError(
            f"expected {na} and {nb} on the same device, got {a.device} and {b.device}"
        )


def _block(L: int, block: int | None) -> int:
    if block is None:
        return min(1024, max(16, 1 << max(0, (L - 1).bit_length())))
    if not isinstance(block, int) or block < 16 or block & (block - 1):
        raise ValueError(f"expected block to be a power of two >= 16, got {block!r}")
    return block


def scan_forward(
    a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None = None, block: int | None = None
) -> torch.Tensor:
    """h of shape (..., L) by the Triton kernel. a, b: float32 or float64 tensors (..., L); h0:
    optional (...). ``block``: lanes per tile (a power of two ≥ 16; default: L rounded up, ≤ 1024)."""
    _require()
    _check(a, b, h0)
    shape = a.shape
    L = shape[-1]
    M = shape[:-1].numel()
    a2 = a.detach().contiguous().reshape(M, L)
    b2 = b.detach().contiguous().reshape(M, L)
    h = torch.empty_like(a2)
    if M == 0 or L == 0:
        return h.reshape(shape)
    h02 = torch.zeros(M, dtype=a.dtype, device=a.device) if h0 is None else h0.detach().reshape(M)
    forward_kernel, _ = _kernels()
    forward_kernel[(M,)](a2, b2, h02.contiguous(), h, L, BLOCK=_block(L, block))
    return h.reshape(shape)


def scan_backward(
    a: torch.Tensor,
    h: torch.Tensor,
    g: torch.Tensor,
    h0: torch.Tensor | None = None,
    block: int | None = None,
):
    """(da, db, dh0) through h = scan_forward(a, b, h0), given g = ∂ℓ/∂h (a reverse scan)."""
    _require()
    _check(a, h, h0, names=("a", "h"))
    _check(h, g, None, names=("h", "g"))
    shape = a.shape
    L = shape[-1]
    M = shape[:-1].numel()
    a2, h2, g2 = (x.detach().contiguous().reshape(M, L) for x in (a, h, g))
    da, db = torch.empty_like(a2), torch.empty_like(a2)
    dh0 = torch.zeros(M, dtype=a.dtype, device=a.device)
    if M == 0 or L == 0:
        return da.reshape(shape), db.reshape(shape), dh0.reshape(shape[:-1])
    h02 = torch.zeros(M, dtype=a.dtype, device=a.device) if h0 is None else h0.detach().reshape(M)
    _, backward_kernel = _kernels()
    backward_kernel[(M,)](a2, h2, h02.contiguous(), g2, da, db, dh0, L, BLOCK=_block(L, block))
    return da.reshape(shape), db.reshape(shape), dh0.reshape(shape[:-1])


class TritonScan(torch.autograd.Function):
    """h = scan(a, b, h0) with the Triton kernels, differentiable (backward: the reverse scan)."""

    @staticmethod
    def forward(ctx, a, b, h0=None):
        h = scan_forward(a, b, h0)
        ctx.save_for_backward(a, h, h0)
        return h

    @staticmethod
    def backward(ctx, g):
        a, h, h0 = ctx.saved_tensors
        da, db, dh0 = scan_backward(a, h, g.contiguous(), h0)
        return da, db, dh0 if h0 is not None else None


def triton_scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
    """h_t = a_t · h_{t−1} + b_t with the Triton kernels, differentiable."""
    _check(a, b, h0)
    return TritonScan.apply(a, b, h0)
