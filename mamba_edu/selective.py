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

import numpy as np

__all__ = ["selective_scan", "selective_step", "softplus", "silu", "validate_selective_args"]


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
    if delta_bias is not None:
        delta = delta + delta_bias[:, None]
    if delta_softplus:
        delta = softplus(delta)

    x = np.zeros((batch, dim, dstate), dtype=u.dtype)  # the state, (B, D, N)
    y = np.empty((batch, dim, length), dtype=u.dtype)
    for t in range(length):  # the loop is the idea: x_t needs x_{t-1}
        dt = delta[:, :, t, None]  # (B, D, 1)
        A_bar = np.exp(dt * A)  # (B, D, N): zero-order hold for A
        Bu_bar = dt * B[:, None, :, t] * u[:, :, t, None]  # (B, D, N): Euler for B
        x = A_bar * x + Bu_bar
        y[:, :, t] = np.einsum("bdn,bn->bd", x, C[:, :, t])
    if D is not None:
        y = y + D[:, None] * u
    if z is not None:
        y = y * silu(z)
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
    if delta_bias is not None:
        delta = delta + delta_bias[:, None]
    if delta_softplus:
        delta = softplus(delta)
    dt = delta[:, :, 0, None]  # (B, D, 1)
    new_state = np.exp(dt * A) * state + dt * B[:, None, :, 0] * u[:, :, 0, None]
    y = np.einsum("bdn,bn->bd", new_state, C[:, :, 0])
    if D is not None:
        y = y + D * u[:, :, 0]
    if z is not None:
        y = y * silu(z[:, :, 0])
    return y, new_state
