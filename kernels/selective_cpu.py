"""The selective scan on the CPU: numba kernels for the forward and the backward pass.

Same mathematics as :func:`mamba_edu.selective.selective_scan` (the NumPy reference, lesson 06),
made fast in the way the official CUDA kernel is:

* the state h of a block of channels, (N, w) numbers, lives in a small local buffer: the
  (batch, D, L, N) tensor of all states is never materialized in the forward pass;
* (batch element, block of channels) work items are independent, so they are spread over the
  cores (``prange``); time runs sequentially inside one;
* the innermost loop runs over the block's channels, contiguous in memory, so that LLVM
  vectorizes it; exp is :func:`vexp`, a polynomial that vectorizes (numba's pip build has no
  vector math library, and a scalar exp call per element would cost 20 times more);
* time runs in chunks of 64 steps; a chunk's x, Δ, z (and, going backward, ∂loss/∂out and the
  output before the gate) are first copied into small (64, w) time-major buffers, so that every
  loop over channels after that reads contiguous memory. The kernels index their (batch, D, L)
  arguments as one C-contiguous layout, (batch, L, D) memory for a torch module's time-major
  views (flag ``tm``), so that numba knows the strides when it compiles and these copies
  vectorize too. Against the kernels that read the caller's arrays through run-time strides
  inside the recurrence, this made the forward 1.8 and the backward 1.6 times as fast, measured
  on a 2-core AMD EPYC (Zen 3, one thread) at (batch, D, L, N) = (12, 256, 64, 16) and
  (12, 512, 256, 16), float32, time-major input;
* Δ = softplus(raw Δ + bias) is :func:`vsoftplus`, computed for the whole chunk before the
  recurrence needs it, so that it vectorizes too (a scalar log1p call per (t, d) had cost as
  much as the whole recurrence).

The backward pass is a reverse scan, derived by hand (lesson 08). With g_t = ∂loss/∂out_t:

    gy_t        = g_t · silu(z_t)                      (or g_t without a gate)
    gh_t        = gy_t · C_t + exp(Δ_{t+1} A) · gh_{t+1}   (the reverse recurrence, gh_L = 0)
    ∂C_t       += gy_t · h_t                  ∂D   += gy_t · x_t
    ∂Δ_t        = Σ_n gh_t · (A · exp(Δ_t A) · h_{t−1} + B_t · x_t)
    ∂A         += gh_t · Δ_t · exp(Δ_t A) · h_{t−1}
    ∂B_t       += gh_t · Δ_t · x_t            ∂x_t  = gy_t · D + Σ_n gh_t · Δ_t · B_t

The forward pass saves the state at the start of every chunk of ``_CHUNK`` = 64 steps (as the
official CUDA kernel saves it at chunk boundaries). The backward walks back one chunk at a time:
it recomputes the chunk's Δ, states and decays exp(Δ A) from the checkpoint into a (65, N, w)
buffer that stays in cache, then goes back through the chunk without computing another exp. ∂B, ∂C (sums over
channels) and ∂A (a sum over the batch) are written as partial sums per work item and added up
at the end (where a CUDA kernel would use atomics). softplus' slope, the gate's backward and the gradients of
D and of the bias are done in the kernel.

x, Δ, z and the output may be laid out time-major ((batch, L, D) memory seen as (batch, D, L)), as a
torch sequence module holds them: the kernels then read and write that memory directly, without
the two transposed copies per tensor and pass that the (batch, D, L) layout would cost such a
caller (an argument in the other layout than x is copied once to x's).

Public entry points: :func:`selective_scan_fwd` / :func:`selective_scan_bwd` (NumPy in, NumPy
out), :class:`SelectiveScanFn` (a ``torch.autograd.Function``) and :func:`selective_scan` (torch
tensors; numba on the CPU, a pure-torch loop otherwise).
"""

from __future__ import annotations

import numpy as np

from mamba_edu.contract import selective_args, selective_tensors

try:  # numba is a core dependency, but the pure-torch fallback below runs without it
    import numba
    from numba import njit, prange

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - numba is a core dependency; kept for the fallback's sake
    HAVE_NUMBA = False

__all__ = [
    "HAVE_NUMBA",
    "selective_scan_fwd",
    "selective_scan_bwd",
    "selective_scan_torch",
    "SelectiveScanFn",
    "selective_scan",
    "mamba_step",
    "numba_applies",
    "check_numba_applies",
    "use_numba",
]

_KERNEL_DTYPES = (np.float32, np.float64)
# Time runs in chunks of 64 steps. At the start of a chunk the kernels copy the chunk's inputs
# into local buffers and compute Δ (and, going backward, softplus' slope) for its 64 steps, and
# the forward pass saves the state; the backward pass recomputes a chunk's states from that
# checkpoint into a (65, N, w) buffer.
_CHUNK = 64
# LLVM's fast-math flags, all but "nnan" and "ninf": with those two (numba's fastmath=_FASTMATH) LLVM
# may assume no NaN or inf ever occurs and fold away the comparisons that keep them, so a NaN in
# Δ became Δ = 0 and a diverged model looked healthy. The flags kept are the ones that let the
# loops vectorize (reassociating sums, fused multiply-add, reciprocals, approximate functions).
_FASTMATH = {"reassoc", "contract", "arcp", "nsz", "afn"}


# ----------------------------------------------------------------------------------------------
# numba kernels. Arguments are always arrays (absent ones are zeros and a flag says so), B and C
# are transposed to (batch, L, N) so that the inner loop over n reads contiguous memory.
# ----------------------------------------------------------------------------------------------


def vexp(y):
    """exp(y) written so that LLVM can vectorize a loop of them (see the numba version below)."""
    return np.exp(y)


def vdecay(y):
    """exp(y) for y <= 0 (or NaN) only — a decay exp(Δ A) with Δ >= 0, A <= 0 — cheaper than
    :func:`vexp` in a vectorized loop (see the numba version below)."""
    return np.exp(y)


def vsigmoid(r):
    """σ(r) = 1 / (1 + exp(−r)) in r's own float type, written so that a loop of them vectorizes
    (see the numba version below)."""
    return 1 / (1 + np.exp(-r))


def vsoftplus(r):
    """softplus(r) = log(1 + exp(r)), r itself above 20 (torch's threshold), written so that a
    loop of them vectorizes (see the numba version below)."""
    return np.where(r > 20, r, np.log1p(np.exp(np.minimum(r, 20))))


if HAVE_NUMBA:
    from numba.core import types
    from numba.extending import intrinsic, overload

    @intrinsic
    def _float_from_bits(typingctx, bits):
        """Reinterpret the bits of an int32 (int64) as a float32 (float64): 2^k without a call."""
        if bits == types.int32:
            sig = types.float32(bits)
        elif bits == types.int64:
            sig = types.float64(bits)
        else:
            return None

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], context.get_value_type(signature.return_type))

        return sig, codegen

    @njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
    def _exp_normal32(y):
        """exp(y) for float32 y in [−87, 88] (or NaN): 2^k · exp(r), k = round(y / ln 2),
        |r| <= ln(2)/2, exp(r) by its Taylor polynomial of degree 7 (error below one unit in
        the last place), 2^k by building the float's exponent bits."""
        k = np.floor(y * np.float32(1.4426950408889634) + np.float32(0.5))
        r = y - k * np.float32(0.693359375) + k * np.float32(2.12194440e-4)
        p = np.float32(1.0 / 5040.0)
        p = p * r + np.float32(1.0 / 720.0)
        p = p * r + np.float32(1.0 / 120.0)
        p = p * r + np.float32(1.0 / 24.0)
        p = p * r + np.float32(1.0 / 6.0)
        p = p * r + np.float32(0.5)
        p = p * r + np.float32(1.0)
        p = p * r + np.float32(1.0)
        return p * _float_from_bits(np.int32((np.int32(k) + 127) << 23))

    @njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
    def _exp_normal64(y):
        """exp(y) for float64 y in [−708, 709] (or NaN), as :func:`_exp_normal32` with a Taylor
        polynomial of degree 13."""
        k = np.floor(y * 1.4426950408889634 + 0.5)
        r = y - k * 0.6931471803691238 - k * 1.9082149292705877e-10
        p = 1.0 / 6227020800.0
        p = p * r + 1.0 / 479001600.0
        p = p * r + 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = p * r + 1.0
        p = p * r + 1.0
        return p * _float_from_bits((np.int64(k) + 1023) << 52)

    @overload(vexp, inline="always", fastmath=_FASTMATH)
    def _vexp_overload(y):
        # math.exp inside a loop is a call LLVM cannot vectorize (numba's pip build has no SVML),
        # and exp is the inner loop's dominant cost. So: a polynomial (_exp_normal32/64) on the
        # argument clamped to the normal range first (numba's max and min keep a NaN first
        # argument, so NaN stays NaN). Above the clamp the result is multiplied by 4, which
        # overflows to inf as exp does (slightly early: from 88 instead of 88.7 in float32, 709
        # instead of 709.8 in float64). No branches: this function is inlined several times
        # into one kernel, where numba's SSA pass mishandles branches (warnings).
        if y not in (types.float32, types.float64):
            return None
        cast = np.float32 if y == types.float32 else np.float64
        core = _exp_normal32 if y == types.float32 else _exp_normal64
        lo, hi = (
            cast(-87.0 if y == types.float32 else -708.0),
            cast(88.0 if y == types.float32 else 709.0),
        )
        one, three = cast(1.0), cast(3.0)

        def impl(y):
            return core(min(max(y, lo), hi)) * (one + three * (y > hi))

        return impl

    @overload(vdecay, inline="always", fastmath=_FASTMATH)
    def _vdecay_overload(y):
        # exp(y) for y <= 0, the decays exp(Δ A) of a scan whose Δ >= 0 and A <= 0: no upper
        # clamp and no overflow factor, three vector operations fewer than vexp per value in
        # the scans' innermost loops; equal to vexp (bit for bit) wherever y <= 0 or y is NaN.
        if y not in (types.float32, types.float64):
            return None
        core = _exp_normal32 if y == types.float32 else _exp_normal64
        lo = np.float32(-87.0) if y == types.float32 else np.float64(-708.0)

        def impl(y):
            return core(max(y, lo))

        return impl

    @overload(vsigmoid, inline="always", fastmath=_FASTMATH)
    def _vsigmoid_overload(r):
        # The constant 1 is a float of r's type: with a Python int, numba types 1 + (a float32)
        # as float64 (NumPy's promotion for scalars), and a float32 loop of sigmoids then ran
        # its division in double precision, half as many lanes per instruction, with
        # conversions each way.
        if r not in (types.float32, types.float64):
            return None
        one = (np.float32 if r == types.float32 else np.float64)(1.0)

        def impl(r):
            return one / (one + vexp(-r))

        return impl

    @njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
    def _atanh_series32(s2):
        """1 + s²/3 + s⁴/5 + ... + s¹⁰/11 in float32, by Horner's rule."""
        p = np.float32(1.0 / 11.0)
        p = p * s2 + np.float32(1.0 / 9.0)
        p = p * s2 + np.float32(1.0 / 7.0)
        p = p * s2 + np.float32(1.0 / 5.0)
        p = p * s2 + np.float32(1.0 / 3.0)
        return p * s2 + np.float32(1.0)

    @njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
    def _atanh_series64(s2):
        """1 + s²/3 + s⁴/5 + ... + s²⁸/29 in float64, by Horner's rule."""
        p = 1.0 / 29.0
        p = p * s2 + 1.0 / 27.0
        p = p * s2 + 1.0 / 25.0
        p = p * s2 + 1.0 / 23.0
        p = p * s2 + 1.0 / 21.0
        p = p * s2 + 1.0 / 19.0
        p = p * s2 + 1.0 / 17.0
        p = p * s2 + 1.0 / 15.0
        p = p * s2 + 1.0 / 13.0
        p = p * s2 + 1.0 / 11.0
        p = p * s2 + 1.0 / 9.0
        p = p * s2 + 1.0 / 7.0
        p = p * s2 + 1.0 / 5.0
        p = p * s2 + 1.0 / 3.0
        return p * s2 + 1.0

    @overload(vsoftplus, inline="always", fastmath=_FASTMATH)
    def _vsoftplus_overload(r):
        # softplus(r) = max(r, 0) + log1p(e) with e = exp(-|r|) in (0, 1]. With s = e / (2 + e)
        # (never forming 1 + e, so a tiny e keeps its digits), log1p(e) = 2 atanh(s) =
        # 2 s (1 + s²/3 + s⁴/5 + ...), and s <= 1/3: a short polynomial in s² that vectorizes
        # (6 terms for float32, 15 for float64: below one unit in the last place). Written out
        # term by term (a loop over a tuple of coefficients stays a loop, and the loop around a
        # softplus then did not vectorize: 2.2 against 1.2 ns per float32 value, measured here),
        # and with selects of cheap values instead of max(), which does not vectorize either.
        if r not in (types.float32, types.float64):
            return None
        cast = np.float32 if r == types.float32 else np.float64
        series = _atanh_series32 if r == types.float32 else _atanh_series64
        two, threshold, zero = cast(2.0), cast(20.0), cast(0.0)
        tiny = cast(-87.0 if r == types.float32 else -708.0)  # below: exp underflows to 0

        def impl(r):
            e = vexp(-abs(r))
            s = e / (two + e)
            soft = (r if r > zero else zero) + two * s * series(s * s)
            soft = soft if r > tiny else zero  # exp(r) underflows: 0 (also for r = -inf)
            soft = r if r > threshold else soft
            return soft if r == r else r  # NaN in, NaN out (every comparison above is false)

        return impl

    @njit(fastmath=_FASTMATH, error_model="numpy", cache=True)
    def _vexp_array(y, out):
        for i in range(y.size):
            out[i] = vexp(y[i])

    @njit(fastmath=_FASTMATH, error_model="numpy", cache=True)
    def _vdecay_array(y, out):
        for i in range(y.size):
            out[i] = vdecay(y[i])

    @njit(fastmath=_FASTMATH, error_model="numpy", cache=True)
    def _vsigmoid_array(y, out):
        for i in range(y.size):
            out[i] = vsigmoid(y[i])

    @njit(fastmath=_FASTMATH, error_model="numpy", cache=True)
    def _vsoftplus_array(y, out):
        for i in range(y.size):
            out[i] = vsoftplus(y[i])

    @njit(inline="always")
    def _load_chunk(src, tm, b, d0, t0, buf):
        """buf[s, j] = the input at (batch b, channel d0 + j, time t0 + s), for the rows of
        ``buf``: a chunk of a C-contiguous array, (batch, L, D) when ``tm`` (time-major: a copy of
        contiguous rows) else (batch, D, L), copied once into a small time-major buffer, so that
        every loop over channels after it reads contiguous memory and vectorizes."""
        steps, w = buf.shape
        for s in range(steps):
            row = buf[s]
            if tm:
                src_row = src[b, t0 + s, d0 : d0 + w]
                for j in range(w):
                    row[j] = src_row[j]
            else:
                for j in range(w):
                    row[j] = src[b, d0 + j, t0 + s]

    @njit(inline="always")
    def _load_rows(flat, row, rows, tm, b, d0, t0, buf):
        """:func:`_load_chunk` for an argument given as its memory ``flat`` (1-D), ``rows`` rows
        per batch element (L when ``tm``, else D), ``row`` elements apart (:func:`_flat_rows`):
        z, in a torch module a view of the second half of every row of in_proj's output, is
        read in place instead of being copied first."""
        steps, w = buf.shape
        for s in range(steps):
            out = buf[s]
            if tm:
                start = (b * rows + t0 + s) * row + d0
                src = flat[start : start + w]
                for j in range(w):
                    out[j] = src[j]
            else:
                for j in range(w):
                    out[j] = flat[(b * rows + d0 + j) * row + t0 + s]

    @njit(inline="always")
    def _store_chunk(buf, dst, tm, b, d0, t0):
        """The way back of :func:`_load_chunk`: buf[s, j] to (b, d0 + j, t0 + s) of ``dst``."""
        steps, w = buf.shape
        for s in range(steps):
            row = buf[s]
            if tm:
                dst_row = dst[b, t0 + s, d0 : d0 + w]
                for j in range(w):
                    dst_row[j] = row[j]
            else:
                for j in range(w):
                    dst[b, d0 + j, t0 + s] = row[j]

    @njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
    def _step_sizes(dts, bias, softplus, slopes):
        """In place on a chunk of raw step sizes dts (steps, w): dts = softplus(raw + bias), or
        raw + bias without softplus. When ``slopes`` has rows it also receives d dt / d raw
        (σ(raw + bias); exactly 1 above torch's threshold 20). Loops over contiguous channels,
        so that they vectorize."""
        steps, w = dts.shape
        one, threshold = dts.dtype.type(1), dts.dtype.type(20)
        for s in range(steps):
            row = dts[s]
            if not softplus:
                for j in range(w):
                    row[j] = row[j] + bias[j]
                if slopes.shape[0]:
                    slopes[s, :] = 1
                continue
            if slopes.shape[0]:
                slope = slopes[s]
                for j in range(w):
                    r = row[j] + bias[j]
                    sig = vsigmoid(r)
                    slope[j] = sig if not r > threshold else one  # NaN keeps sig (NaN)
            for j in range(w):
                row[j] = vsoftplus(row[j] + bias[j])

    @njit(parallel=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
    def _scan_fwd_kernel(
        delta, bias, softplus, x, AT, Bt, Ct, D, z, z_row, has_z, width, out, y_pre, keep_pre, last,
        ckpt, tm, decay,
    ):  # fmt: skip
        """out = (Σ_n C_t[n] h_t[n] + D x_t) · silu(z_t) with h_t = exp(Δ_t A) h_{t−1} + Δ_t B_t x_t.

        delta (Δ before bias and softplus), x, z, out, y_pre: C-contiguous, (batch, L, D) when
        ``tm`` (time-major, a torch module's layout) else (batch, D, L); bias, D: (D,); AT: (N, D); Bt, Ct: (batch, L, N); last: (batch, N, D). Work items are (batch
        element, block of ``width`` channels); inside one, time runs sequentially, a chunk of
        _CHUNK steps at a time: the chunk's x, Δ and z are first copied into small time-major
        buffers (steps, w), so that every innermost loop runs over the block's channels in
        contiguous memory and is vectorized (8 or 16 channels per instruction). ``y_pre``
        receives the output before the gate when ``keep_pre`` is set; ``ckpt`` (batch,
        ⌈L / _CHUNK⌉, N, D) the state before every _CHUNK-th step, for the backward pass (as the
        official kernel saves the state at every chunk boundary). ``decay``: every Δ A is <= 0
        (:func:`_decays_only`), so that the recurrence may use :func:`vdecay` for exp.
        """
        if tm:
            batch, length, dim = x.shape
        else:
            batch, dim, length = x.shape
        d_state = AT.shape[0]
        blocks = (dim + width - 1) // width
        for item in prange(batch * blocks):
            b = item // blocks
            d0 = (item % blocks) * width
            d1 = min(dim, d0 + width)
            w = d1 - d0
            a = AT[:, d0:d1].copy()  # (N, w)
            h = np.zeros_like(a)  # the state of this block of channels, (N, w): stays in cache
            d_blk = D[d0:d1].copy()
            bias_blk = bias[d0:d1].copy()
            no_slopes = np.empty((0, w), dtype=a.dtype)
            dts_buf = np.empty((_CHUNK, w), dtype=a.dtype)
            xs_buf = np.empty((_CHUNK, w), dtype=a.dtype)
            ys_buf = np.empty((_CHUNK, w), dtype=a.dtype)
            zs_buf = np.empty((_CHUNK, w), dtype=a.dtype)
            for t0 in range(0, length, _CHUNK):
                steps = min(_CHUNK, length - t0)
                dts, xs, ys, zs = dts_buf[:steps], xs_buf[:steps], ys_buf[:steps], zs_buf[:steps]
                ckpt[b, t0 // _CHUNK, :, d0:d1] = h  # the checkpoint for the backward pass
                _load_chunk(delta, tm, b, d0, t0, dts)
                _step_sizes(dts, bias_blk, softplus, no_slopes)
                _load_chunk(x, tm, b, d0, t0, xs)
                for s in range(steps):
                    dt_t, dtx, acc = dts[s], xs[s], ys[s]
                    for j in range(w):
                        acc[j] = d_blk[j] * dtx[j]
                        dtx[j] = dt_t[j] * dtx[j]  # x_t becomes Δ_t x_t
                    for n in range(d_state):
                        b_n = Bt[b, t0 + s, n]
                        c_n = Ct[b, t0 + s, n]
                        h_n = h[n]
                        a_n = a[n]
                        if decay:  # Δ >= 0, A <= 0: the cheaper exp (the same values)
                            for j in range(w):
                                v = vdecay(dt_t[j] * a_n[j]) * h_n[j] + dtx[j] * b_n
                                h_n[j] = v
                                acc[j] += c_n * v
                        else:
                            for j in range(w):
                                v = vexp(dt_t[j] * a_n[j]) * h_n[j] + dtx[j] * b_n
                                h_n[j] = v
                                acc[j] += c_n * v
                if keep_pre:
                    _store_chunk(ys, y_pre, tm, b, d0, t0)
                if has_z:
                    _load_rows(z, z_row, length if tm else dim, tm, b, d0, t0, zs)
                    for s in range(steps):
                        y_s, z_s = ys[s], zs[s]
                        for j in range(w):
                            zj = z_s[j]
                            y_s[j] = y_s[j] * zj * vsigmoid(zj)
                _store_chunk(ys, out, tm, b, d0, t0)
            last[b, :, d0:d1] = h

    @njit(parallel=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
    def _scan_bwd_kernel(
        delta, bias, softplus, x, AT, Bt, Ct, D, dout, z, z_row, has_z, y_pre, glast, ckpt, width,
        dx, ddelta, dz, dbias_part, dD_part, dA_part, dB_part, dC_part, tm, decay,
    ):  # fmt: skip
        """The reverse scan. delta (raw Δ), x, dout = ∂loss/∂out, z and y_pre (the output before
        the gate, saved by the forward pass; both empty without a gate), and the outputs dx,
        ddelta, dz: C-contiguous, (batch, L, D) when ``tm`` else (batch, D, L); glast: ∂loss/∂h_{L−1} (batch, N, D); AT: (N, D); Bt, Ct: (batch, L, N); ckpt:
        the forward pass' checkpoints (batch, ⌈L / _CHUNK⌉, N, D). As in the forward kernel, each
        chunk's slices of these arrays are copied into small time-major buffers first, and the
        chunk's gradients written back from such buffers at its end.

        The gate's backward is done here, a chunk at a time, rather than as NumPy passes over the
        whole (batch, D, L) arrays around the kernel: with out = y_pre · silu(z),
        ∂loss/∂y_pre = dout · silu(z) and ∂loss/∂z = dout · y_pre · σ(z) (1 + z (1 − σ(z))),
        written to dz.

        ``decay`` as in the forward kernel. Writes dx and ddelta (w.r.t. the raw Δ: softplus'
        slope included), (batch, D, L), and
        per-work-item partial sums dbias_part[b], dD_part[b] (D,), dA_part[b] (N, D) and
        dB_part[block, b], dC_part[block, b] (L, N), which the caller adds up.
        """
        if tm:
            batch, length, dim = x.shape
        else:
            batch, dim, length = x.shape
        d_state = AT.shape[0]
        blocks = (dim + width - 1) // width
        for item in prange(batch * blocks):
            b = item // blocks
            blk = item % blocks
            d0 = blk * width
            d1 = min(dim, d0 + width)
            w = d1 - d0
            a = AT[:, d0:d1].copy()  # (N, w)
            d_blk = D[d0:d1].copy()
            bias_blk = bias[d0:d1].copy()
            # constants of the arrays' float type (a Python 0 or 1 would make float32 sums
            # float64: NumPy's promotion rules for scalars, which numba follows)
            zero, one = a.dtype.type(0), a.dtype.type(1)
            # walk back in time, one chunk at a time: compute the chunk's Δ and softplus'
            # slope, recompute its states hs[s] = h_{t0+s-1} (hs[0] is the forward pass'
            # checkpoint) and decays eas[s] = exp(Δ_{t0+s} A), then go back through it with
            # gh = ∂loss/∂h_t (carried as exp(Δ_{t+1} A) gh_{t+1})
            dts_buf = np.empty((_CHUNK, w), dtype=a.dtype)
            slopes_buf = np.empty((_CHUNK, w), dtype=a.dtype)
            xs_buf = np.empty((_CHUNK, w), dtype=a.dtype)
            gs_buf = np.empty((_CHUNK, w), dtype=a.dtype)  # ∂loss/∂y_t, the gate undone
            zs_buf = np.empty((_CHUNK, w), dtype=a.dtype)
            ps_buf = np.empty((_CHUNK, w), dtype=a.dtype)  # y_pre, then ∂loss/∂z
            gdt_buf = np.empty((_CHUNK, w), dtype=a.dtype)
            gx_buf = np.empty((_CHUNK, w), dtype=a.dtype)
            hs = np.empty((_CHUNK + 1, d_state, w), dtype=a.dtype)
            eas = np.empty((_CHUNK, d_state, w), dtype=a.dtype)
            dtx = np.empty(w, dtype=a.dtype)
            gh = glast[b, :, d0:d1].copy()  # (N, w)
            dA = np.zeros_like(a)
            dbias = np.zeros(w, dtype=a.dtype)
            dD = np.zeros(w, dtype=a.dtype)
            for c in range((length - 1) // _CHUNK, -1, -1):
                t0 = c * _CHUNK
                steps = min(_CHUNK, length - t0)
                dts, slopes = dts_buf[:steps], slopes_buf[:steps]
                xs, gs, zs, ps = xs_buf[:steps], gs_buf[:steps], zs_buf[:steps], ps_buf[:steps]
                gdts, gxs = gdt_buf[:steps], gx_buf[:steps]
                _load_chunk(delta, tm, b, d0, t0, dts)
                _step_sizes(dts, bias_blk, softplus, slopes)
                _load_chunk(x, tm, b, d0, t0, xs)
                _load_chunk(dout, tm, b, d0, t0, gs)
                if has_z:
                    _load_rows(z, z_row, length if tm else dim, tm, b, d0, t0, zs)
                    _load_chunk(y_pre, tm, b, d0, t0, ps)
                    for s in range(steps):
                        g_s, z_s, p_s = gs[s], zs[s], ps[s]
                        for j in range(w):
                            zj = z_s[j]
                            sig = vsigmoid(zj)
                            g = g_s[j]
                            p_s[j] = g * p_s[j] * sig * (one + zj * (one - sig))  # ∂loss/∂z
                            g_s[j] = g * zj * sig
                    _store_chunk(ps, dz, tm, b, d0, t0)
                hs[0] = ckpt[b, c, :, d0:d1]
                for s in range(steps):
                    dt_t, x_t = dts[s], xs[s]
                    for j in range(w):
                        dtx[j] = dt_t[j] * x_t[j]  # Δ_t x_t
                    for n in range(d_state):
                        b_n = Bt[b, t0 + s, n]
                        a_n = a[n]
                        prev = hs[s, n]
                        new = hs[s + 1, n]
                        ea_n = eas[s, n]
                        if decay:  # Δ >= 0, A <= 0: the cheaper exp (the same values)
                            for j in range(w):
                                ea = vdecay(dt_t[j] * a_n[j])
                                ea_n[j] = ea
                                new[j] = ea * prev[j] + dtx[j] * b_n
                        else:
                            for j in range(w):
                                ea = vexp(dt_t[j] * a_n[j])
                                ea_n[j] = ea
                                new[j] = ea * prev[j] + dtx[j] * b_n
                for s in range(steps - 1, -1, -1):
                    t = t0 + s
                    dt_t, x_t, g_t, gdt, gx = dts[s], xs[s], gs[s], gdts[s], gxs[s]
                    for j in range(w):
                        dtx[j] = dt_t[j] * x_t[j]
                    gdt[:] = 0
                    gx[:] = 0  # Σ_n gh_t[n] B_t[n] first; times Δ_t after the loop over n
                    for n in range(d_state):
                        b_n = Bt[b, t, n]
                        c_n = Ct[b, t, n]
                        a_n = a[n]
                        gh_n = gh[n]
                        dA_n = dA[n]
                        prev = hs[s, n]
                        cur = hs[s + 1, n]
                        ea_n = eas[s, n]
                        sum_b = zero
                        sum_c = zero
                        for j in range(w):
                            g = gh_n[j] + g_t[j] * c_n  # ∂loss/∂h_t[n]
                            sum_c += g_t[j] * cur[j]
                            ea = ea_n[j]
                            q = g * prev[j] * ea  # ∂loss/∂exp(Δ_t A[n]) · exp(Δ_t A[n])
                            gdt[j] += q * a_n[j]
                            dA_n[j] += q * dt_t[j]
                            sum_b += g * dtx[j]
                            gx[j] += g * b_n
                            gh_n[j] = g * ea
                        dB_part[blk, b, t, n] = sum_b
                        dC_part[blk, b, t, n] = sum_c
                    # the B_t x_t term of ∂Δ_t and ∂x_t = Δ_t Σ_n gh_t B_t, both from Σ_n gh_t B_t
                    for j in range(w):
                        gb = gx[j]
                        gdt[j] += gb * x_t[j]
                        gx[j] = gb * dt_t[j]
                for s in range(steps):
                    g_t, x_t, gdt, gx, slope = gs[s], xs[s], gdts[s], gxs[s], slopes[s]
                    for j in range(w):
                        gx[j] += g_t[j] * d_blk[j]  # ∂loss/∂x_t
                        dD[j] += g_t[j] * x_t[j]
                        graw = gdt[j] * slope[j]  # ∂loss/∂(raw Δ_t)
                        gdt[j] = graw
                        dbias[j] += graw
                _store_chunk(gxs, dx, tm, b, d0, t0)
                _store_chunk(gdts, ddelta, tm, b, d0, t0)
            dA_part[b, :, d0:d1] = dA
            dbias_part[b, d0:d1] = dbias
            dD_part[b, d0:d1] = dD

    @njit(fastmath=_FASTMATH, error_model="numpy", cache=True)
    def _mamba_step_kernel(
        xz, conv_state, conv_wT, conv_b, x_w, dt_wT, dt_b, A_log, D, ssm_state,
        new_conv, new_ssm, x, xdbl, dt, y,
    ):  # fmt: skip
        """One token through a Mamba block between its two big projections (serial: decoding is
        latency-bound, and a batch of a few sequences is one core's work). Every loop that has
        an exp or a softplus runs over contiguous channels, so that LLVM vectorizes it.

        xz (batch, 2·d_inner): in_proj's output, x then z; conv_wT (d_conv, d_inner) and dt_wT
        (dt_rank, d_inner) are the weights transposed. Writes new_conv (batch, d_inner, d_conv),
        new_ssm (batch, d_inner, N), x (batch, d_inner) the conv+SiLU output, xdbl (batch,
        dt_rank + 2N) x_proj's output, dt (batch, d_inner) the step sizes, y (batch, d_inner)
        the gated output."""
        batch, d_inner, d_conv = conv_state.shape
        n_state = ssm_state.shape[2]
        rank = dt_wT.shape[0]
        A = np.empty((d_inner, n_state), dtype=ssm_state.dtype)
        for d in range(d_inner):
            a_d, log_d = A[d], A_log[d]
            for n in range(n_state):
                a_d[n] = -vexp(log_d[n])
        for b in range(batch):  # 1-D views of row b: simple loops that LLVM vectorizes
            x_b, dt_b_, y_b, xdbl_b = x[b], dt[b], y[b], xdbl[b]
            u_b, z_b = xz[b, :d_inner], xz[b, d_inner:]
            # 1. the causal conv's rolling window (drop the oldest input, append u), then SiLU
            w_last = conv_wT[d_conv - 1]
            for d in range(d_inner):
                x_b[d] = conv_b[d] + w_last[d] * u_b[d]
            for k in range(d_conv - 1):
                w_k = conv_wT[k]
                for d in range(d_inner):
                    v = conv_state[b, d, k + 1]
                    new_conv[b, d, k] = v
                    x_b[d] += w_k[d] * v
            for d in range(d_inner):
                new_conv[b, d, d_conv - 1] = u_b[d]
                x_b[d] = x_b[d] * vsigmoid(x_b[d])
            # 2. x_proj: the low-rank Δ input, B and C of this token
            for j in range(x_w.shape[0]):
                w_j = x_w[j]
                acc = w_j[0] * x_b[0]
                for d in range(1, d_inner):
                    acc += w_j[d] * x_b[d]
                xdbl_b[j] = acc
            B_b, C_b = xdbl_b[rank : rank + n_state], xdbl_b[rank + n_state :]
            # 3. Δ = softplus(dt_proj(·) + bias)
            for d in range(d_inner):
                dt_b_[d] = dt_b[d]
            for k in range(rank):
                w_k, c = dt_wT[k], xdbl_b[k]
                for d in range(d_inner):
                    dt_b_[d] += w_k[d] * c
            for d in range(d_inner):
                dt_b_[d] = vsoftplus(dt_b_[d])
            # 4. zero-order hold for A, Euler for B, the readout C·h + D·x; the gate y·SiLU(z)
            for d in range(d_inner):
                h_old, h_new, a_d = ssm_state[b, d], new_ssm[b, d], A[d]
                step, xv = dt_b_[d], x_b[d]
                sx = step * xv
                acc = D[d] * xv
                for n in range(n_state):
                    h = vdecay(step * a_d[n]) * h_old[n] + sx * B_b[n]  # Δ >= 0 > A
                    h_new[n] = h
                    acc += h * C_b[n]
                y_b[d] = acc
            for d in range(d_inner):
                y_b[d] = y_b[d] * z_b[d] * vsigmoid(z_b[d])


# The widest block of channels per work item. Each innermost loop runs over a block's channels
# once per (step, state) pair; the wider the block, the fewer times its fixed costs (loop entry
# and exit, the scalar B and C loads, the two horizontal sums of the backward) are paid per
# value. Measured here (2-core AMD EPYC, one thread, float32, (batch, D, L, N) = (12, 512, 64,
# 16), time-major): forward 12.0 / 9.9 / 9.2 / 9.0 ms and backward 21.4 / 16.6 / 13.0 / 12.7 ms
# at widths 64 / 128 / 256 / 512, although at 512 the backward's (65, N, w) buffers of states
# and decays no longer fit in the core's 512 KiB L2 cache; at D = 1024, 1024 was no faster.
_MAX_WIDTH = 512


def _block_width(dim, batch=1):
    """Channels per work item: as wide as :data:`_MAX_WIDTH`, narrower only when that leaves a
    core without work (there are batch × ⌈dim / width⌉ work items)."""
    threads = numba.get_num_threads() if HAVE_NUMBA else 1
    width = _MAX_WIDTH
    while width > 16 and batch * -(-dim // width) < 2 * threads:
        width //= 2
    return width


def _prepare(x, delta, A, B, C, D, z, delta_bias, dtype=None):
    """Validate (the reference's checks and messages) and pick the kernel dtype (float32/64)."""
    if dtype is None:
        given = [np.asarray(a) for a in (x, delta, A, B, C, D, z, delta_bias) if a is not None]
        if any(np.iscomplexobj(a) for a in given):
            raise TypeError("the CPU selective scan takes real arrays, got a complex one")
        dtype = np.result_type(*given)
        if not any(dtype == k for k in _KERNEL_DTYPES):
            dtype = np.float64 if np.issubdtype(dtype, np.integer) else np.float32
    dtype = np.dtype(dtype)
    if not any(dtype == k for k in _KERNEL_DTYPES):
        raise TypeError(f"the CPU selective scan runs in float32 or float64, got {dtype}")
    return selective_args(x, delta, A, B, C, D, z, delta_bias, dtype=dtype)


def _decays_only(A, delta_softplus):
    """Whether every exp(Δ A) of the scan is a decay, exp of a number <= 0, so that the kernels
    may use :func:`vdecay`: Δ = softplus(·) >= 0 and A <= 0 everywhere (as in Mamba, where
    A = −exp(A_log)). A NaN in A makes this False; a NaN in Δ stays NaN either way."""
    return bool(delta_softplus) and bool(np.all(A <= 0))


def _time_major(a):
    """(batch, D, L) → contiguous (batch, L, D): the layout the kernels read."""
    return np.ascontiguousarray(a.transpose(0, 2, 1))


def _is_time_major(a):
    """Whether a (batch, D, L) array is a view of contiguous (batch, L, D) memory: what a torch
    sequence module holds (:class:`mamba_edu.mamba.Mamba` passes x, Δ and z so)."""
    return a.ndim == 3 and a.transpose(0, 2, 1).flags.c_contiguous


def _uses_time_major(x):
    """The layout the kernels run in for this x (batch, D, L): time-major when x is a view of
    contiguous (batch, L, D) memory (and not contiguous as it stands, as when L = 1), else
    (batch, D, L). The kernels take one C-contiguous layout for all their (batch, D, L)
    arguments, so that numba knows the strides when it compiles and vectorizes the copies."""
    return _is_time_major(x) and not x.flags.c_contiguous


def _memory(a, tm):
    """A (batch, D, L) array as the kernels index it: C-contiguous (batch, L, D) memory when
    ``tm``, else C-contiguous (batch, D, L); copied only when it is not laid out so already (a
    torch module's x, Δ, z and ∂loss/∂out are time-major views: no copy)."""
    return np.ascontiguousarray(a.transpose(0, 2, 1) if tm else a)


def _flat_rows(a):
    """A 3-D array (batch, rows, columns) whose columns are contiguous and whose rows are evenly
    spaced (any spacing) → (its memory from the first element as a 1-D array, the row spacing in
    elements): element (i, r, c) is at (i · rows + r) · spacing + c. Copied first only when it
    is not laid out so (columns not contiguous, or batch elements not rows · spacing apart)."""
    batch, rows, cols = a.shape
    item = a.itemsize
    s_b, s_r, s_c = a.strides
    if rows == 1:
        s_r = max(s_r, cols * item)
    if (
        not (s_c == item or cols == 1)
        or s_r % item
        or s_r < cols * item
        or (batch > 1 and s_b != rows * s_r)
    ):
        a = np.ascontiguousarray(a)
        s_r = cols * item
    row = s_r // item
    size = (batch * rows - 1) * row + cols
    return np.lib.stride_tricks.as_strided(a, shape=(size,), strides=(item,)), row


def _rows(z, tm, dtype):
    """The gate z (batch, D, L) as the kernels read it: (memory, row spacing) of its (batch, L,
    D) view when ``tm``, else of (batch, D, L); (empty, 0) without a gate."""
    if z is None:
        return np.empty(0, dtype), 0
    return _flat_rows(z.transpose(0, 2, 1) if tm else z)


def _empty(shape, dtype, tm):
    """A new (batch, D, L) array in the kernels' layout: (the (batch, D, L) view, its memory)."""
    if tm:
        memory = np.empty((shape[0], shape[2], shape[1]), dtype)
        return memory.transpose(0, 2, 1), memory
    memory = np.empty(shape, dtype)
    return memory, memory


def selective_scan_fwd(
    x, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, dtype=None
):
    """Forward selective scan with the numba kernel. Returns (out (batch, D, L), last state (batch, D, N)).

    Arguments as :func:`mamba_edu.selective.selective_scan`. Computes in float32 or float64 (the
    inputs' common dtype unless ``dtype`` is given); any memory layout is accepted. The element-wise
    parts (bias, softplus, D·x, the gate) are NumPy; the recurrence is the numba kernel.
    """
    out, last, _, _ = _forward(x, delta, A, B, C, D, z, delta_bias, delta_softplus, dtype)
    return out, last


def _forward(x, delta, A, B, C, D, z, delta_bias, delta_softplus, dtype, keep_pre=False):
    if not HAVE_NUMBA:  # pragma: no cover
        raise RuntimeError("numba is not installed: use selective_scan_torch instead")
    x, delta, A, B, C, D, z, delta_bias = _prepare(x, delta, A, B, C, D, z, delta_bias, dtype)
    batch, dim, length = x.shape
    d_state = A.shape[1]
    dtype = x.dtype
    # the outputs take x's layout: a time-major x (a torch module's) gives a time-major out
    tm = _uses_time_major(x)
    out, out_mem = _empty(x.shape, dtype, tm)
    empty = np.empty((0, 0, 0), dtype)
    y_pre, y_pre_mem = _empty(x.shape, dtype, tm) if keep_pre else (empty, empty)
    last = np.empty((batch, d_state, dim), dtype)
    ckpt = np.empty((batch, -(-length // _CHUNK), d_state, dim), dtype)
    _scan_fwd_kernel(
        _memory(delta, tm), np.zeros(dim, dtype) if delta_bias is None else delta_bias,
        bool(delta_softplus), _memory(x, tm), np.ascontiguousarray(A.T),
        _time_major(B), _time_major(C), np.zeros(dim, dtype) if D is None else D,
        *_rows(z, tm, dtype), z is not None,
        _block_width(dim, batch), out_mem, y_pre_mem, keep_pre, last, ckpt, tm,
        _decays_only(A, delta_softplus),
    )  # fmt: skip
    return out, np.ascontiguousarray(last.transpose(0, 2, 1)), y_pre, ckpt


def selective_scan_bwd(
    dout, x, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
    dlast_state=None, dtype=None, y_pre=None, checkpoints=None,
):  # fmt: skip
    """Gradients of the selective scan (hand-derived reverse scan), numba on all cores.

    ``dout`` is ∂loss/∂out, shape (batch, D, L); ``dlast_state`` (optional) ∂loss/∂h_{L−1}, (batch, D, N).
    Returns a dict with dx, ddelta (w.r.t. the raw delta, before bias and softplus), dA, dB, dC,
    and dD, dz, ddelta_bias for the arguments that were given. ``y_pre`` (optional, with a gate
    z) is the output before the gate, and ``checkpoints`` (optional) the states the forward
    pass saved every ``_CHUNK`` steps, both as :func:`_forward` returns them; without them
    the forward pass is run again to get them.
    """
    if not HAVE_NUMBA:  # pragma: no cover
        raise RuntimeError("numba is not installed: use selective_scan_torch instead")
    x, delta, A, B, C, D, z, delta_bias = _prepare(x, delta, A, B, C, D, z, delta_bias, dtype)
    dtype = x.dtype
    batch, dim, length = x.shape
    d_state = A.shape[1]
    dout = np.asarray(dout)
    if dout.shape != (batch, dim, length):
        raise ValueError(
            f"expected dout of shape (batch, D, L) = {(batch, dim, length)}, got {dout.shape}"
        )
    dout = dout.astype(dtype, copy=False)
    if dlast_state is None:
        glast = np.zeros((batch, d_state, dim), dtype)
    else:
        dlast_state = np.asarray(dlast_state)
        if dlast_state.shape != (batch, dim, d_state):
            raise ValueError(
                f"expected dlast_state of shape (batch, D, N) = {(batch, dim, d_state)}, "
                f"got {dlast_state.shape}"
            )
        glast = np.ascontiguousarray(dlast_state.transpose(0, 2, 1), dtype=dtype)
    result = {}
    # the element-wise tail, backwards: out = (y_scan + D x) · silu(z)
    checkpoint_shape = (batch, -(-length // _CHUNK), d_state, dim)
    need_pre = z is not None and (y_pre is None or np.shape(y_pre) != x.shape)
    if need_pre or checkpoints is None or np.shape(checkpoints) != checkpoint_shape:
        _, _, y_pre, checkpoints = _forward(
            x, delta, A, B, C, D, z, delta_bias, delta_softplus, dtype, z is not None
        )
    width = _block_width(dim, batch)
    blocks = -(-dim // width)
    # gradients in the layout of their tensors (time-major from a torch module: no copies)
    tm = _uses_time_major(x)
    dx, dx_mem = _empty(x.shape, dtype, tm)
    ddelta, ddelta_mem = _empty(x.shape, dtype, tm)
    empty = np.empty((0, 0, 0), dtype)
    dz, dz_mem = (empty, empty) if z is None else _empty(x.shape, dtype, tm)
    dbias_part = np.empty((batch, dim), dtype)
    dD_part = np.empty((batch, dim), dtype)
    dA_part = np.empty((batch, d_state, dim), dtype)
    dB_part = np.empty((blocks, batch, length, d_state), dtype)
    dC_part = np.empty((blocks, batch, length, d_state), dtype)
    _scan_bwd_kernel(
        _memory(delta, tm), np.zeros(dim, dtype) if delta_bias is None else delta_bias,
        bool(delta_softplus), _memory(x, tm), np.ascontiguousarray(A.T),
        _time_major(B), _time_major(C), np.zeros(dim, dtype) if D is None else D,
        _memory(dout, tm), *_rows(z, tm, dtype), z is not None,
        empty if z is None else _memory(np.asarray(y_pre, dtype), tm), glast,
        np.ascontiguousarray(checkpoints, dtype), width,
        dx_mem, ddelta_mem, dz_mem, dbias_part, dD_part, dA_part, dB_part, dC_part, tm,
        _decays_only(A, delta_softplus),
    )  # fmt: skip
    if z is not None:
        result["dz"] = dz
    result["dx"] = dx
    result["ddelta"] = ddelta
    result["dA"] = np.ascontiguousarray(dA_part.sum(axis=0).T)
    result["dB"] = np.ascontiguousarray(dB_part.sum(axis=0).transpose(0, 2, 1))
    result["dC"] = np.ascontiguousarray(dC_part.sum(axis=0).transpose(0, 2, 1))
    if D is not None:
        result["dD"] = dD_part.sum(axis=0)
    if delta_bias is not None:
        result["ddelta_bias"] = dbias_part.sum(axis=0)
    return {
        k: result[k]
        for k in ("dx", "ddelta", "dA", "dB", "dC", "dD", "dz", "ddelta_bias")
        if k in result
    }


def mamba_step(xz, conv_state, ssm_state, conv_w, conv_b, x_w, dt_w, dt_b, A_log, D, check=True):
    """One decode step of a Mamba block between in_proj and out_proj, with the numba kernel.

    NumPy arrays, one float dtype (float32 or float64): xz (batch, 2·d_inner) in_proj's output;
    conv_state (batch, d_inner, d_conv); ssm_state (batch, d_inner, N); conv_w (d_inner, d_conv);
    conv_b (d_inner,) or None; x_w (dt_rank + 2N, d_inner); dt_w (d_inner, dt_rank); dt_b
    (d_inner,); A_log (d_inner, N); D (d_inner,). Returns (y (batch, d_inner) before out_proj,
    new conv_state, new ssm_state); the given states are not modified. Same arithmetic as
    :meth:`mamba_edu.mamba.Mamba.step`'s torch path (and mamba_ssm's ``Mamba.step``), in one
    call instead of about fifteen small torch operations. ``check=False`` skips the checks of
    dtypes, shapes and layout, for a caller that guarantees them (the torch module, whose step
    is latency-bound: the checks cost as much as the kernel at a batch of one).
    """
    if not HAVE_NUMBA:  # pragma: no cover - numba is a core dependency
        raise RuntimeError("mamba_step needs numba")
    if not check:
        return _mamba_step_unchecked(xz, conv_state, ssm_state, conv_w, conv_b, x_w, dt_w, dt_b,
                                     A_log, D)  # fmt: skip
    arrays = dict(xz=xz, conv_state=conv_state, ssm_state=ssm_state, conv_w=conv_w, x_w=x_w,
                  dt_w=dt_w, dt_b=dt_b, A_log=A_log, D=D)  # fmt: skip
    if conv_b is not None:
        arrays["conv_b"] = conv_b
    dtypes = {np.asarray(a).dtype for a in arrays.values()}
    if len(dtypes) != 1 or not any(dtypes == {np.dtype(k)} for k in _KERNEL_DTYPES):
        raise TypeError(
            f"expected every array of mamba_step in one dtype, float32 or float64, got "
            f"{sorted(str(d) for d in dtypes)}"
        )
    a = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    for name in ("xz", "conv_w", "A_log", "dt_w"):
        if a[name].ndim != 2:
            raise ValueError(f"expected {name} with 2 dimensions, got shape {a[name].shape}")
    # the sizes come from the parameters; the token and the states must fit them
    (d_inner, d_conv), n_state, rank = a["conv_w"].shape, a["A_log"].shape[1], a["dt_w"].shape[1]
    batch = a["xz"].shape[0]
    expected = dict(
        xz=(batch, 2 * d_inner), conv_state=(batch, d_inner, d_conv),
        ssm_state=(batch, d_inner, n_state), conv_b=(d_inner,),
        x_w=(rank + 2 * n_state, d_inner), dt_w=(d_inner, rank), dt_b=(d_inner,),
        A_log=(d_inner, n_state), D=(d_inner,),
    )  # fmt: skip
    for name, shape in expected.items():
        if name in a and a[name].shape != shape:
            raise ValueError(f"expected {name} of shape {shape}, got {a[name].shape}")
    return _mamba_step_unchecked(
        a["xz"], a["conv_state"], a["ssm_state"], a["conv_w"], a.get("conv_b"), a["x_w"],
        a["dt_w"], a["dt_b"], a["A_log"], a["D"],
    )  # fmt: skip


def _mamba_step_unchecked(xz, conv_state, ssm_state, conv_w, conv_b, x_w, dt_w, dt_b, A_log, D):
    batch, d_inner, d_conv = conv_state.shape
    n_state = ssm_state.shape[2]
    rank = dt_w.shape[1]
    dtype = xz.dtype
    conv_b = np.zeros(d_inner, dtype) if conv_b is None else conv_b
    new_conv = np.empty_like(conv_state)
    new_ssm = np.empty_like(ssm_state)
    x, dt, y = (np.empty((batch, d_inner), dtype) for _ in range(3))
    xdbl = np.empty((batch, rank + 2 * n_state), dtype)
    _mamba_step_kernel(
        xz, conv_state, np.ascontiguousarray(conv_w.T), conv_b, x_w, np.ascontiguousarray(dt_w.T),
        dt_b, A_log, D, ssm_state, new_conv, new_ssm, x, xdbl, dt, y,
    )  # fmt: skip
    return y, new_conv, new_ssm


# ----------------------------------------------------------------------------------------------
# PyTorch: the autograd Function and a pure-torch fallback
# ----------------------------------------------------------------------------------------------


def selective_scan_torch(
    x, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
    return_last_state=False,
):  # fmt: skip
    """The same recurrence as a plain torch loop (any device, any float dtype; autograd works
    through it). The fallback when numba cannot run, and a second, independent check of the
    kernel's hand-derived gradients."""
    # torch is heavy and optional for the NumPy entry points above: imported by the torch paths only.
    import torch
    import torch.nn.functional as F

    selective_tensors(x, delta, A, B, C, D, z, delta_bias)
    if delta_bias is not None:
        delta = delta + delta_bias[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    h = x.new_zeros(x.shape[0], x.shape[1], A.shape[1])  # (batch, D, N)
    ys = []
    for t in range(x.shape[2]):
        dt = delta[:, :, t, None]  # (batch, D, 1)
        h = torch.exp(dt * A) * h + dt * B[:, None, :, t] * x[:, :, t, None]
        ys.append(torch.einsum("bdn,bn->bd", h, C[:, :, t]))
    y = torch.stack(ys, dim=2)
    if D is not None:
        y = y + D[:, None] * x
    if z is not None:
        y = y * F.silu(z)
    return (y, h) if return_last_state else y


def _numpy(t):
    return None if t is None else t.detach().cpu().numpy()


def _make_function():
    import torch  # heavy, and only the torch entry points need it (see _torch_loop)

    class SelectiveScanFn(torch.autograd.Function):
        """The numba selective scan as a differentiable torch op (CPU tensors, float32/float64).

        ``SelectiveScanFn.apply(x, delta, A, B, C, D, z, delta_bias, delta_softplus)`` returns
        (out, last_state); gradients flow to every tensor argument, including through last_state.
        """

        @staticmethod
        def forward(ctx, x, delta, A, B, C, D, z, delta_bias, delta_softplus):
            dtypes = {t.dtype for t in (x, delta, A, B, C, D, z, delta_bias) if t is not None}
            if len(dtypes) != 1 or not dtypes <= {torch.float32, torch.float64}:
                raise TypeError(
                    "expected every tensor of the selective scan in one dtype, float32 or "
                    f"float64, got {sorted(str(d) for d in dtypes)}"
                )
            out, last, y_pre, checkpoints = _forward(
                *(_numpy(t) for t in (x, delta, A, B, C, D, z, delta_bias)),
                delta_softplus, None, z is not None,
            )  # fmt: skip
            ctx.save_for_backward(x, delta, A, B, C, D, z, delta_bias)
            ctx.delta_softplus = delta_softplus
            ctx.y_pre = y_pre
            ctx.checkpoints = checkpoints
            return torch.from_numpy(out), torch.from_numpy(last)

        @staticmethod
        def backward(ctx, dout, dlast):
            x, delta, A, B, C, D, z, delta_bias = ctx.saved_tensors
            if dout is None:
                dout = torch.zeros_like(x)
            g = selective_scan_bwd(
                _numpy(dout), *(_numpy(t) for t in (x, delta, A, B, C, D, z, delta_bias)),
                delta_softplus=ctx.delta_softplus, dlast_state=_numpy(dlast), y_pre=ctx.y_pre,
                checkpoints=ctx.checkpoints,
            )  # fmt: skip

            def wrap(key):
                return torch.from_numpy(g[key]) if key in g else None

            return (
                wrap("dx"), wrap("ddelta"), wrap("dA"), wrap("dB"), wrap("dC"),
                wrap("dD"), wrap("dz"), wrap("ddelta_bias"), None,
            )  # fmt: skip

    return SelectiveScanFn


try:
    SelectiveScanFn = _make_function()
except ImportError:  # pragma: no cover - torch is a core dependency
    SelectiveScanFn = None


def numba_applies(tensors) -> bool:
    """Whether the course's numba kernels (this module's and :mod:`conv_cpu`'s) can take these
    torch tensors (``None`` entries are skipped): numba is installed and the tensors are all on
    the CPU, all of one dtype, float32 or float64. Backend "auto" uses the kernels exactly then."""
    import torch  # heavy, and only the torch entry points need it (see _torch_loop)

    present = [t for t in tensors if t is not None]
    return (
        HAVE_NUMBA
        and all(t.device.type == "cpu" for t in present)
        and len({t.dtype for t in present}) == 1
        and present[0].dtype in (torch.float32, torch.float64)
    )


def check_numba_applies(tensors) -> None:
    """The one error for backend "numba" on tensors the kernels cannot take (see
    :func:`numba_applies`), naming what was expected and what was given."""
    if numba_applies(tensors):
        return
    present = [t for t in tensors if t is not None]
    raise TypeError(
        "the numba backend needs numba installed and CPU tensors, all float32 or all float64; "
        f"got {sorted({str(t.dtype) for t in present})} on "
        f"{sorted({str(t.device) for t in present})}" + ("" if HAVE_NUMBA else ", numba missing")
    )


def use_numba(backend, tensors) -> bool:
    """The backend rule of every torch entry point to the course's numba kernels (the scan, the
    block's conv, RMSNorm): "torch" → False; "auto" → whether :func:`numba_applies`; "numba" →
    True, or the error of :func:`check_numba_applies`; anything else a ValueError."""
    if backend == "torch":
        return False
    if backend == "auto":
        return numba_applies(tensors)
    if backend != "numba":
        raise ValueError(f"expected backend 'auto', 'numba' or 'torch', got {backend!r}")
    check_numba_applies(tensors)
    return True


def selective_scan(
    x, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
    return_last_state=False, backend="auto",
):  # fmt: skip
    """The selective scan on torch tensors, differentiable, the fast way available.

    ``backend``: "numba" (CPU float32/float64 tensors), "torch" (the plain loop, any device and
    dtype) or "auto" (numba when it applies, else torch). Shapes as in
    :func:`mamba_edu.selective.selective_scan`.
    """
    tensors = (x, delta, A, B, C, D, z, delta_bias)
    selective_tensors(*tensors)
    if not use_numba(backend, tensors):
        return selective_scan_torch(*tensors, delta_softplus, return_last_state)
    out, last = SelectiveScanFn.apply(*tensors, bool(delta_softplus))
    return (out, last) if return_last_state else out
