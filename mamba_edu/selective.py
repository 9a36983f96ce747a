"""The selective scan (S6), Mamba's recurrence, written as plainly as it can be (lesson 06).

A selective state-space model is a linear recurrence whose parameters depend on the input. For
every batch element b, channel d and state index n:

    h_t[n] = exp(Δ_t · A[d, n]) · h_{t−1}[n]  +  Δ_t · B_t[n] · x_t        (state update)
    y_t    = Σ_n C_t[n] · h_t[n]  +  D[d] · x_t                            (readout)
    out_t  = y_t · silu(z_t)                                                (optional gate)

with Δ_t = softplus(Δ_raw_t + Δ_bias[d]) when ``delta_softplus`` is set. A is discretized with the
zero-order hold (Ā = exp(ΔA)) but B with the Euler rule (B̄ = ΔB): the Mamba paper (Gu & Dao, 2023,
eq. 4 and Section 3.6) writes ZOH for both, and the official code, whose trained models everyone
uses, does exp(ΔA) and ΔB. We follow the code.

Glossary (code name: symbol, shape). The batch size is written ``batch`` in code and in shapes;
the matrix B keeps its paper name. The official ``mamba_ssm`` calls the input ``u``; the
arguments come in its positional order.

    x:      input x,                   (batch, D, L)
    delta:  step size Δ (before bias), (batch, D, L)
    A:      state matrix A (diagonal), (D, N), real (negative for a stable model), N = d_state
    B:      input matrix B_t,          (batch, N, L)  (time-varying: "selective")
    C:      output matrix C_t,         (batch, N, L)
    D:      skip connection D,         (D,)
    z:      gate z,                    (batch, D, L)
    h:      the state h_t,             (batch, D, N)

The layout (batch, D, L), time last, is the official ``selective_scan_ref``'s, so the two can be
compared argument for argument. Shapes, dtypes and error messages are checked by
:mod:`mamba_edu.contract`, which every kernel shares.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mamba_edu.contract import float_array, positive_int, selective_args, shape_error

__all__ = [
    "selective_scan",
    "selective_scan_materialized",
    "selective_step",
    "influence",
    "scan_io_bytes",
    "softplus",
    "silu",
    "validate_selective_args",
    "random_inputs",
    "SelectiveSSM",
    "TokenSSM",
]


def softplus(x):
    """log(1 + eᕽ), computed without overflow; like ``torch.nn.functional.softplus`` it returns x
    itself above 20 (where the two differ by less than 2e-9), so that it matches the official code."""
    x = np.asarray(x)
    return np.where(x > 20.0, x, np.log1p(np.exp(np.minimum(x, 20.0))))


def silu(x):
    """x · σ(x), the gate Mamba puts on its output."""
    x = np.asarray(x)
    return x / (1.0 + np.exp(-x))


def validate_selective_args(x, delta, A, B, C, D=None, z=None, delta_bias=None, dtype=None):
    """Check shapes and dtypes of the selective scan's arguments; return them as arrays of one dtype.

    ``dtype`` defaults to float64 (the reference's precision). The contract itself (shapes,
    dtypes, messages) lives in :func:`mamba_edu.contract.selective_args`, shared with every kernel.
    """
    return selective_args(x, delta, A, B, C, D, z, delta_bias, dtype=dtype)


def _step_sizes(delta, delta_bias, delta_softplus):
    """Δ as the recurrence uses it: the raw Δ (…, D, L), plus the bias (D,), through softplus."""
    if delta_bias is not None:
        delta = delta + delta_bias[:, None]
    return softplus(delta) if delta_softplus else delta


def _skip_and_gate(y, x, D, z):
    """out = (y + D x) · silu(z), for whichever of D and z is given; shapes (…, D, L)."""
    if D is not None:
        y = y + D[:, None] * x
    return y if z is None else y * silu(z)


def selective_scan(
    x,
    delta,
    A,
    B,
    C,
    D=None,
    z=None,
    delta_bias=None,
    delta_softplus=False,
    return_last_state=False,
    dtype=np.float64,
):
    """Run the selective scan over a whole sequence, one time step after another.

    Layout (batch, D, L), time last, as the module docstring: x, delta, z (batch, D, L);
    A (D, N); B, C (batch, N, L); D and delta_bias (D,). The positional order is mamba_ssm's
    ``selective_scan_fn(u, delta, A, B, C, D, z, delta_bias, delta_softplus)``, which calls the
    input x ``u``. Returns ``out`` of shape (batch, D, L), and also the final state h_{L−1} of
    shape (batch, D, N) when ``return_last_state`` is set. Computes in ``dtype`` (float64 by
    default).
    """
    x, delta, A, B, C, D, z, delta_bias = selective_args(
        x, delta, A, B, C, D, z, delta_bias, dtype=dtype
    )
    batch, dim, length = x.shape
    d_state = A.shape[1]
    delta = _step_sizes(delta, delta_bias, delta_softplus)

    h = np.zeros((batch, dim, d_state), dtype=x.dtype)  # the state, (batch, D, N)
    y = np.empty((batch, dim, length), dtype=x.dtype)
    for t in range(length):  # the loop is the idea: h_t needs h_{t-1}
        dt = delta[:, :, t, None]  # (batch, D, 1)
        A_bar = np.exp(dt * A)  # (batch, D, N): zero-order hold for A
        Bx_bar = dt * B[:, None, :, t] * x[:, :, t, None]  # (batch, D, N): Euler for B
        h = A_bar * h + Bx_bar
        y[:, :, t] = np.einsum("bdn,bn->bd", h, C[:, :, t])
    y = _skip_and_gate(y, x, D, z)
    return (y, h) if return_last_state else y


def selective_step(state, x, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    """One decode step: advance the state h by a single token (what generation does, lesson 07).

    state: (batch, D, N); x, delta, z: (batch, D); A: (D, N); B, C: (batch, N); D, delta_bias:
    (D,). Returns (out of shape (batch, D), the new state of shape (batch, D, N)); ``state`` is
    not modified. Running it L times gives the same result as :func:`selective_scan` on the
    whole sequence.
    """
    state = float_array("state", state, integers=True)
    if state.ndim != 3:
        raise ValueError(f"expected state of shape (batch, D, N), got {state.shape}")
    batch, dim, d_state = state.shape

    def column(a):
        return None if a is None else np.asarray(a)[..., None]

    for name, value, shape, names in [
        ("x", x, (batch, dim), "(batch, D)"),
        ("delta", delta, (batch, dim), "(batch, D)"),
        ("B", B, (batch, d_state), "(batch, N)"),
        ("C", C, (batch, d_state), "(batch, N)"),
        ("z", z, (batch, dim), "(batch, D)"),
    ]:
        if value is not None and np.shape(value) != shape:
            raise shape_error(name, names, shape, np.shape(value))
    x, delta, A, B, C, D, z, delta_bias = selective_args(
        column(x), column(delta), A, column(B), column(C), D, column(z), delta_bias,
        dtype=np.result_type(state.dtype, np.float64),
    )  # fmt: skip
    dt = _step_sizes(delta, delta_bias, delta_softplus)[:, :, 0, None]  # (batch, D, 1)
    new_state = np.exp(dt * A) * state + dt * B[:, None, :, 0] * x[:, :, 0, None]
    y = np.einsum("bdn,bn->bd", new_state, C[:, :, 0])[:, :, None]  # (batch, D, 1): one step
    return _skip_and_gate(y, x, D, z)[:, :, 0], new_state


def selective_scan_materialized(
    x, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, dtype=np.float64
):
    """The same output as :func:`selective_scan`, computed the way the official
    ``selective_scan_ref`` does: first the decays exp(Δ A) and the inputs Δ B x for every
    (b, d, t, n) at once, two (batch, D, L, N) arrays, then the recurrence over them.
    Layout and argument order as :func:`selective_scan`.

    Vectorizing the exp over the whole sequence is faster in NumPy, but the memory grows like
    batch·D·L·N: the (batch, D, L, N) tensors are what a fused kernel never writes (lesson 06)."""
    x, delta, A, B, C, D, z, delta_bias = selective_args(
        x, delta, A, B, C, D, z, delta_bias, dtype=dtype
    )
    delta = _step_sizes(delta, delta_bias, delta_softplus)
    decay = np.exp(delta[..., None] * A[None, :, None, :])  # (batch, D, L, N)
    drive = delta[..., None] * B.transpose(0, 2, 1)[:, None] * x[..., None]  # (batch, D, L, N)
    h = np.zeros_like(decay[:, :, 0])  # (batch, D, N)
    y = np.empty_like(x)
    for t in range(x.shape[2]):
        h = decay[:, :, t] * h + drive[:, :, t]
        y[:, :, t] = np.einsum("bdn,bn->bd", h, C[:, :, t])
    return _skip_and_gate(y, x, D, z)


def random_inputs(
    batch=2, dim=4, length=16, d_state=8, *, seed=0, dtype=np.float64, D=True, z=True,
    delta_bias=True, delta_softplus=True,
):  # fmt: skip
    """Seeded random arguments for the selective scan, as a dict in its positional order
    (x, delta, A, B, C, D, z, delta_bias), layout (batch, D, L): ``selective_scan(**args)`` or
    ``f(*args.values())`` (for mamba_ssm, which calls x ``u``).

    x, B, C, D, z are standard normal; A = −exp(U(−1, 1.5)) (decays of several time scales);
    the raw Δ is U(−3, 0.5) and its bias U(−1, 1), so that softplus gives Δ of about 0.05 to 1.
    Without ``delta_softplus`` Δ and the bias are their absolute values (exp(ΔA) must decay).
    ``D``, ``z``, ``delta_bias`` = False leave that argument None. Arrays are in ``dtype``.
    """
    batch, dim = positive_int("batch", batch), positive_int("dim", dim)
    length, d_state = positive_int("length", length), positive_int("d_state", d_state)
    rng = np.random.default_rng(seed)
    args = dict(
        x=rng.standard_normal((batch, dim, length)),
        delta=rng.uniform(-3.0, 0.5, (batch, dim, length)),
        A=-np.exp(rng.uniform(-1.0, 1.5, (dim, d_state))),
        B=rng.standard_normal((batch, d_state, length)),
        C=rng.standard_normal((batch, d_state, length)),
        D=rng.standard_normal(dim),
        z=rng.standard_normal((batch, dim, length)),
        delta_bias=rng.uniform(-1.0, 1.0, dim),
    )
    if not delta_softplus:
        args["delta"], args["delta_bias"] = np.abs(args["delta"]), np.abs(args["delta_bias"])
    for name, wanted in (("D", D), ("z", z), ("delta_bias", delta_bias)):
        if not wanted:
            args[name] = None
    return {k: None if v is None else v.astype(dtype) for k, v in args.items()}


def influence(delta, a):
    """How much the input of step s still counts in the state at step t.

    For one state entry with decay a < 0 (and B = 1), x_t = exp(Δ_t a) x_{t−1} + Δ_t u_t unrolls
    to x_t = Σ_{s ≤ t} M[t, s] u_s with

        M[t, s] = Δ_s · exp(a · (Δ_{s+1} + … + Δ_t))   for s ≤ t,   0 for s > t.

    A large Δ_s writes u_s strongly *and* wipes what came before (every earlier column is
    multiplied by exp(a Δ_s) ≈ 0): a reset. A tiny Δ_s neither writes nor forgets: the step is
    ignored. ``delta``: (L,) positive step sizes; returns M, (L, L).
    """
    delta = np.asarray(delta, dtype=np.float64)
    if delta.ndim != 1 or delta.size == 0:
        raise ValueError(f"expected delta of shape (L,) with L >= 1, got {delta.shape}")
    if np.any(delta < 0) or not np.all(np.isfinite(delta)):
        raise ValueError("expected finite step sizes delta >= 0")
    a = float(a)
    if not a < 0:
        raise ValueError(f"expected a negative decay a (a stable state), got {a}")
    total = np.cumsum(delta)  # total[t] = Δ_0 + … + Δ_t
    gap = total[:, None] - total[None, :]  # Δ_{s+1} + … + Δ_t for s <= t
    lower = np.tril(np.ones((delta.size, delta.size), dtype=bool))
    return np.where(lower, delta[None, :] * np.exp(a * np.where(lower, gap, 0.0)), 0.0)


# ----------------------------------------------------------------------------------------------
# PyTorch: an S6 layer and a small token model, trained in lesson 06 on the fast kernel
# ----------------------------------------------------------------------------------------------


def scan_io_bytes(batch, D, L, N, itemsize=4):
    """(naive, fused): bytes one selective scan moves to and from main memory (lesson 08's model).

    Fused (one kernel, as the Mamba paper's Section 3.3 describes): read x, Δ, z (batch, D, L),
    B, C (batch, N, L) and A (D, N) once, write y (batch, D, L). Naive (separate operations): the
    same, plus writing exp(ΔA) and ΔBx, reading both, writing every state and reading the states
    back: six transfers of a (batch, D, L, N) tensor. ``itemsize`` bytes per number.
    """
    sizes = {name: positive_int(name, value) for name, value in
             (("batch", batch), ("D", D), ("L", L), ("N", N), ("itemsize", itemsize))}  # fmt: skip
    batch, D, L, N, itemsize = sizes.values()
    fused = 3 * batch * D * L + 2 * batch * N * L + D * N + batch * D * L
    naive = fused + 6 * batch * D * L * N
    return naive * itemsize, fused * itemsize


class SelectiveSSM(nn.Module):
    """A residual S6 layer: x + out_proj(SSM(silu(in_proj(norm(x))))), on (batch, L, d_model).

    With ``selective=True`` Δ, B and C are computed from the input at every step, as in Mamba
    (x_proj → (Δ of rank ``dt_rank``, B, C), dt_proj → Δ per channel). With
    ``selective=False`` they are learned constants: a time-invariant S4D-Real layer with the
    same shapes and initialization, the control of the experiment. Official initializations
    (Mamba): A = −(1, …, N) per channel through A_log, D = 1, the Δ bias the inverse
    softplus of Δ drawn log-uniformly in [dt_min, dt_max]. The gate and the short convolution
    of the full Mamba block come in lesson 07. The recurrence runs on the numba kernel
    (:mod:`mamba_edu.kernels.selective_cpu`) for CPU float32/float64 tensors.
    """

    def __init__(self, d_model, d_state=16, expand=2, selective=True, dt_min=1e-3, dt_max=1e-1):
        super().__init__()
        d_model = positive_int("d_model", d_model)
        d_state = positive_int("d_state", d_state)
        expand = positive_int("expand", expand)
        d_inner = expand * d_model
        self.selective = bool(selective)
        self.d_state = d_state
        self.dt_rank = math.ceil(d_model / 16)
        self.norm = nn.LayerNorm(d_model)
        self.in_proj = nn.Linear(d_model, d_inner)
        A = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(d_inner, 1)
        self.A_log = nn.Parameter(torch.log(A))  # A = −exp(A_log) = −(1, …, N)
        self.D = nn.Parameter(torch.ones(d_inner))
        dt = torch.exp(
            torch.rand(d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        )
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # softplus⁻¹(dt)
        if self.selective:
            self.x_proj = nn.Linear(d_inner, self.dt_rank + 2 * d_state, bias=False)
            self.dt_proj = nn.Linear(self.dt_rank, d_inner, bias=False)
            nn.init.uniform_(self.dt_proj.weight, -(self.dt_rank**-0.5), self.dt_rank**-0.5)
        else:
            self.B = nn.Parameter(torch.randn(d_state) / math.sqrt(d_state))
            self.C = nn.Parameter(torch.randn(d_state) / math.sqrt(d_state))
        self.out_proj = nn.Linear(d_inner, d_model)

    def ssm_inputs(self, x):
        """(the scan's input, Δ before bias, B, C) in the kernel's layout: (batch, D, L),
        (batch, D, L), (batch, N, L), (batch, N, L)."""
        if x.dim() != 3:
            raise ValueError(f"expected x of shape (batch, L, d_model), got {tuple(x.shape)}")
        xs = F.silu(self.in_proj(self.norm(x)))  # the scan's input, (batch, L, D)
        batch, length, d_inner = xs.shape
        if self.selective:
            dt_low, B, C = self.x_proj(xs).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
            delta = self.dt_proj(dt_low)  # (b, L, D)
            B, C, delta = (t.transpose(1, 2).contiguous() for t in (B, C, delta))
        else:
            delta = xs.new_zeros(batch, d_inner, length)
            B = self.B[None, :, None].expand(batch, -1, length).contiguous()
            C = self.C[None, :, None].expand(batch, -1, length).contiguous()
        return xs.transpose(1, 2).contiguous(), delta, B, C

    def forward(self, x):
        xs, delta, B, C = self.ssm_inputs(x)
        # numba takes about a second to import: paid when a layer first runs, not on import
        from mamba_edu.kernels import selective_cpu

        A = -torch.exp(self.A_log)
        y = selective_cpu.selective_scan(
            xs, delta, A, B, C, self.D, None, self.dt_bias, delta_softplus=True
        )
        return x + self.out_proj(y.transpose(1, 2))

    def step_sizes(self, x):
        """Δ_t for every channel, (batch, D, L): what the layer decided to keep or skip."""
        _, delta, _, _ = self.ssm_inputs(x)
        return F.softplus(delta + self.dt_bias[:, None])


class TokenSSM(nn.Module):
    """Embedding → ``n_layers`` :class:`SelectiveSSM` layers → norm → logits over the
    vocabulary at the last ``n_out`` positions: (batch, n_out, vocab_size)."""

    def __init__(
        self, vocab_size, n_out=1, d_model=32, n_layers=2, d_state=16, expand=2,
        selective=True, seed=0,
    ):  # fmt: skip
        super().__init__()
        if vocab_size < 2 or n_out < 1 or n_layers < 1:
            raise ValueError(
                f"expected vocab_size >= 2, n_out >= 1 and n_layers >= 1, got {vocab_size}, "
                f"{n_out}, {n_layers}"
            )
        self.n_out = n_out
        with torch.random.fork_rng():  # seeded weights; the caller's random stream is untouched
            torch.manual_seed(seed)
            self.embed = nn.Embedding(vocab_size, d_model)
            self.layers = nn.ModuleList(
                SelectiveSSM(d_model, d_state, expand, selective) for _ in range(n_layers)
            )
            self.norm = nn.LayerNorm(d_model)
            self.head = nn.Linear(d_model, vocab_size)

    def forward(self, tokens):
        if tokens.dim() != 2 or tokens.dtype not in (torch.int64, torch.int32):
            raise ValueError(
                "expected tokens of shape (batch, L) and an integer dtype, got "
                f"{tuple(tokens.shape)} {tokens.dtype}"
            )
        h = self.embed(tokens)
        for layer in self.layers:
            h = layer(h)
        return self.head(self.norm(h[:, -self.n_out :]))
