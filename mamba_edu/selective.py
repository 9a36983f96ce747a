"""The selective scan (S6), Mamba's recurrence, written as plainly as it can be (lesson 06).

A selective state-space model is a linear recurrence whose parameters depend on the input. For
every batch element b, channel d and state index n:

    x_t[n] = exp(Δ_t · A[d, n]) · x_{t−1}[n]  +  Δ_t · B_t[n] · u_t        (state update)
    y_t    = Σ_n C_t[n] · x_t[n]  +  D[d] · u_t                            (readout)
    out_t  = y_t · silu(z_t)                                                (optional gate)

with Δ_t = softplus(Δ_raw_t + Δ_bias[d]) when ``delta_softplus`` is set. A is discretized with the
zero-order hold (Ā = exp(ΔA)) but B with the Euler rule (B̄ = ΔB): the Mamba paper (Gu & Dao, 2023,
eq. 4 and Section 3.6) writes ZOH for both, and the official code, whose trained models everyone
uses, does exp(ΔA) and ΔB. We follow the code.

Glossary (code name: symbol, shape). The batch size is written ``batch`` in code and B in shapes;
the matrix B keeps its paper name.

    u:      input u,                   (B, D, L)
    delta:  step size Δ (before bias), (B, D, L)
    A:      state matrix A (diagonal), (D, N), real (negative for a stable model)
    B:      input matrix B_t,          (B, N, L)  (time-varying: "selective")
    C:      output matrix C_t,         (B, N, L)
    D:      skip connection D,         (D,)
    z:      gate z,                    (B, D, L)
    x:      the state x_t,             (B, D, N)

The layout (B, D, L), time last, is the official ``selective_scan_ref``'s, so the two can be
compared argument for argument.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "selective_scan",
    "selective_scan_materialized",
    "selective_step",
    "influence",
    "softplus",
    "silu",
    "validate_selective_args",
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


def _shape_error(name, expected_names, expected, got) -> ValueError:
    return ValueError(
        f"expected {name} of shape {expected_names} = {tuple(expected)}, got {tuple(got)}"
    )


def _as_real_array(name, value, dtype):
    array = np.asarray(value)
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
    ):
        kind = "complex" if np.iscomplexobj(array) else str(array.dtype)
        raise TypeError(f"expected {name} to be a real float array, got dtype {kind}")
    return array.astype(dtype, copy=False)


def validate_selective_args(u, delta, A, B, C, D=None, z=None, delta_bias=None, dtype=None):
    """Check shapes and dtypes of the selective scan's arguments; return them as arrays of one dtype.

    ``dtype`` defaults to float64 (the reference's precision). Raises ValueError naming the
    expected shape, or TypeError for a non-real dtype.
    """
    dtype = np.dtype(np.float64 if dtype is None else dtype)
    u = _as_real_array("u", u, dtype)
    if u.ndim != 3:
        raise ValueError(f"expected u of shape (B, D, L) (batch, channels, time), got {u.shape}")
    batch, dim, length = u.shape
    if length == 0:
        raise ValueError(f"expected a sequence of length L >= 1, got u of shape {u.shape} (L = 0)")
    A = _as_real_array("A", A, dtype)
    if A.ndim != 2 or A.shape[0] != dim:
        raise ValueError(f"expected A of shape (D, N) with D = {dim} (from u), got {A.shape}")
    dstate = A.shape[1]
    if dstate == 0:
        raise ValueError(f"expected a state of size N >= 1, got A of shape {A.shape}")
    delta = _as_real_array("delta", delta, dtype)
    if delta.shape != u.shape:
        raise _shape_error("delta", "(B, D, L)", u.shape, delta.shape)
    B = _as_real_array("B", B, dtype)
    if B.shape != (batch, dstate, length):
        raise _shape_error("B", "(B, N, L)", (batch, dstate, length), B.shape)
    C = _as_real_array("C", C, dtype)
    if C.shape != (batch, dstate, length):
        raise _shape_error("C", "(B, N, L)", (batch, dstate, length), C.shape)
    if D is not None:
        D = _as_real_array("D", D, dtype)
        if D.shape != (dim,):
            raise _shape_error("D", "(D,)", (dim,), D.shape)
    if z is not None:
        z = _as_real_array("z", z, dtype)
        if z.shape != u.shape:
            raise _shape_error("z", "(B, D, L)", u.shape, z.shape)
    if delta_bias is not None:
        delta_bias = _as_real_array("delta_bias", delta_bias, dtype)
        if delta_bias.shape != (dim,):
            raise _shape_error("delta_bias", "(D,)", (dim,), delta_bias.shape)
    return u, delta, A, B, C, D, z, delta_bias


def _step_sizes(delta, delta_bias, delta_softplus):
    """Δ as the recurrence uses it: the raw Δ (…, D, L), plus the bias (D,), through softplus."""
    if delta_bias is not None:
        delta = delta + delta_bias[:, None]
    return softplus(delta) if delta_softplus else delta


def _skip_and_gate(y, u, D, z):
    """out = (y + D u) · silu(z), for whichever of D and z is given; shapes (…, D, L)."""
    if D is not None:
        y = y + D[:, None] * u
    return y if z is None else y * silu(z)


def selective_scan(
    u,
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

    Shapes as in the module docstring: u, delta, z (B, D, L); A (D, N); B, C (B, N, L); D and
    delta_bias (D,). Returns ``out`` of shape (B, D, L), and also the final state x_{L−1} of shape
    (B, D, N) when ``return_last_state`` is set. Computes in ``dtype`` (float64 by default).
    """
    u, delta, A, B, C, D, z, delta_bias = validate_selective_args(
        u, delta, A, B, C, D, z, delta_bias, dtype=dtype
    )
    batch, dim, length = u.shape
    dstate = A.shape[1]
    delta = _step_sizes(delta, delta_bias, delta_softplus)

    x = np.zeros((batch, dim, dstate), dtype=u.dtype)  # the state, (B, D, N)
    y = np.empty((batch, dim, length), dtype=u.dtype)
    for t in range(length):  # the loop is the idea: x_t needs x_{t-1}
        dt = delta[:, :, t, None]  # (B, D, 1)
        A_bar = np.exp(dt * A)  # (B, D, N): zero-order hold for A
        Bu_bar = dt * B[:, None, :, t] * u[:, :, t, None]  # (B, D, N): Euler for B
        x = A_bar * x + Bu_bar
        y[:, :, t] = np.einsum("bdn,bn->bd", x, C[:, :, t])
    y = _skip_and_gate(y, u, D, z)
    return (y, x) if return_last_state else y


def selective_step(state, u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    """One decode step: advance the state by a single token (what generation does, lesson 07).

    state: (B, D, N); u, delta, z: (B, D); A: (D, N); B, C: (B, N); D, delta_bias: (D,).
    Returns (out of shape (B, D), the new state of shape (B, D, N)); ``state`` is not modified.
    Running it L times gives the same result as :func:`selective_scan` on the whole sequence.
    """
    state = np.asarray(state)
    if state.ndim != 3:
        raise ValueError(f"expected state of shape (B, D, N), got {state.shape}")
    batch, dim, dstate = state.shape

    def column(a):
        return None if a is None else np.asarray(a)[..., None]

    for name, value, shape, names in [
        ("u", u, (batch, dim), "(B, D)"),
        ("delta", delta, (batch, dim), "(B, D)"),
        ("B", B, (batch, dstate), "(B, N)"),
        ("C", C, (batch, dstate), "(B, N)"),
        ("z", z, (batch, dim), "(B, D)"),
    ]:
        if value is not None and np.shape(value) != shape:
            raise _shape_error(name, names, shape, np.shape(value))
    u, delta, A, B, C, D, z, delta_bias = validate_selective_args(
        column(u), column(delta), A, column(B), column(C), D, column(z), delta_bias,
        dtype=np.result_type(state.dtype, np.float64),
    )  # fmt: skip
    dt = _step_sizes(delta, delta_bias, delta_softplus)[:, :, 0, None]  # (B, D, 1)
    new_state = np.exp(dt * A) * state + dt * B[:, None, :, 0] * u[:, :, 0, None]
    y = np.einsum("bdn,bn->bd", new_state, C[:, :, 0])[:, :, None]  # (B, D, 1): one step
    return _skip_and_gate(y, u, D, z)[:, :, 0], new_state


def selective_scan_materialized(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, dtype=np.float64
):
    """The same output as :func:`selective_scan`, computed the way the official
    ``selective_scan_ref`` does: first the decays exp(Δ A) and the inputs Δ B u for every
    (b, d, t, n) at once, two (B, D, L, N) arrays, then the recurrence over them.

    Vectorizing the exp over the whole sequence is faster in NumPy, but the memory grows like
    B·D·L·N: the (B, D, L, N) tensors are what a fused kernel never writes (lesson 06)."""
    u, delta, A, B, C, D, z, delta_bias = validate_selective_args(
        u, delta, A, B, C, D, z, delta_bias, dtype=dtype
    )
    delta = _step_sizes(delta, delta_bias, delta_softplus)
    decay = np.exp(delta[..., None] * A[None, :, None, :])  # (B, D, L, N)
    drive = delta[..., None] * B.transpose(0, 2, 1)[:, None] * u[..., None]  # (B, D, L, N)
    x = np.zeros_like(decay[:, :, 0])  # (B, D, N)
    y = np.empty_like(u)
    for t in range(u.shape[2]):
        x = decay[:, :, t] * x + drive[:, :, t]
        y[:, :, t] = np.einsum("bdn,bn->bd", x, C[:, :, t])
    return _skip_and_gate(y, u, D, z)


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
        if d_model < 1 or d_state < 1 or expand < 1:
            raise ValueError(
                f"expected d_model, d_state, expand >= 1, got {d_model}, {d_state}, {expand}"
            )
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
        """(u, Δ before bias, B, C) in the kernel's layout: (b, D, L), (b, D, L), (b, N, L)."""
        if x.dim() != 3:
            raise ValueError(f"expected x of shape (batch, L, d_model), got {tuple(x.shape)}")
        u = F.silu(self.in_proj(self.norm(x)))  # (b, L, D)
        batch, length, d_inner = u.shape
        if self.selective:
            dt_low, B, C = self.x_proj(u).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
            delta = self.dt_proj(dt_low)  # (b, L, D)
            B, C, delta = (t.transpose(1, 2).contiguous() for t in (B, C, delta))
        else:
            delta = u.new_zeros(batch, d_inner, length)
            B = self.B[None, :, None].expand(batch, -1, length).contiguous()
            C = self.C[None, :, None].expand(batch, -1, length).contiguous()
        return u.transpose(1, 2).contiguous(), delta, B, C

    def forward(self, x):
        u, delta, B, C = self.ssm_inputs(x)
        from mamba_edu.kernels import selective_cpu  # numba: imported when a layer first runs

        A = -torch.exp(self.A_log)
        y = selective_cpu.selective_scan(
            u, delta, A, B, C, self.D, None, self.dt_bias, delta_softplus=True
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
