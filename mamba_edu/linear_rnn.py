"""Linear recurrences: drop the nonlinearity, unroll, diagonalize (lesson 02).

The linear RNN keeps the recurrence of lesson 01 but removes φ:

    h_t = A h_{t−1} + B x_t,      y_t = C h_t,      h_{−1} = 0.

Glossary (code name → symbol, shape): x → inputs (L, D); h → states (L, N); y → outputs (L, P);
A → state matrix (N, N); B → input matrix (N, D); C → output matrix (P, N); K → kernel (L, P, D).

Three views of the same map, all in this module and all equal to float64 rounding:

* **recurrent** (:func:`linear_rnn`): one step at a time, N² work per step for the state;
* **unrolled** (:func:`unrolled`): h_t = Σ_{k≤t} A^{t−k} B x_k, so y = K * x is a causal
  convolution with the kernel K_j = C A^j B (:func:`convolution_kernel`);
* **diagonal** (:func:`diagonalize`, :func:`diagonal_rnn`): with A = V Λ V^{−1}, the state
  h̃ = V^{−1} h obeys h̃_t = Λ h̃_{t−1} + (V^{−1}B) x_t and y_t = (C V) h̃_t: N independent scalar
  recurrences, N work per step. A real A has complex eigenvalues in conjugate pairs; their two
  states are conjugate too, so one of each pair suffices, with y_t = Re(Σ 2 C̃_n h̃_n) over the pair
  representatives (the trick S4D and the LRU use).

The PyTorch part at the bottom (:class:`DiagonalLinearRecurrence`, :class:`LinearStack`) trains a
small stack of diagonal linear recurrences and element-wise MLPs on CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mamba_edu.rnn import _float_array as _real  # one shape check for both modules

__all__ = [
    "linear_rnn",
    "convolution_kernel",
    "unrolled",
    "NotDiagonalizableError",
    "DiagonalSystem",
    "diagonalize",
    "diagonal_rnn",
    "is_stable",
    "impulse_response",
    "memory_horizon",
    "step_operations",
    "DiagonalLinearRecurrence",
    "PointwiseMLP",
    "LinearStack",
]


# ----------------------------------------------------------------------------------------------
# Shape checks
# ----------------------------------------------------------------------------------------------


def _system(A, B, C) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    A = _real("A", A, 2, "(N, N)")
    N = A.shape[0]
    if A.shape != (N, N):
        raise ValueError(f"expected A of shape (N, N) (square), got shape {A.shape}")
    B = _real("B", B, 2, f"(N, D) with N = {N}")
    if B.shape[0] != N:
        raise ValueError(f"expected B of shape (N, D) with N = {N}, got {B.shape}")
    C = _real("C", C, 2, f"(P, N) with N = {N}")
    if C.shape[1] != N:
        raise ValueError(f"expected C of shape (P, N) with N = {N}, got {C.shape}")
    return A, B, C


def _inputs(x, D: int) -> np.ndarray:
    x = _real("x", x, 2, f"(L, D) with D = {D}")
    if x.shape[1] != D:
        raise ValueError(f"expected x of shape (L, D) with D = {D}, got {x.shape}")
    return x


# ----------------------------------------------------------------------------------------------
# Recurrent and unrolled views
# ----------------------------------------------------------------------------------------------


def linear_rnn(x, A, B, C, h0=None, *, return_states: bool = False):
    """y_t = C h_t with h_t = A h_{t−1} + B x_t, h_{−1} = ``h0`` (zero). x: (L, D) → y: (L, P).

    With ``return_states=True`` returns (y, h) with h of shape (L, N).
    """
    A, B, C = _system(A, B, C)
    x = _inputs(x, B.shape[1])
    L, N = x.shape[0], A.shape[0]
    state = np.zeros(N)
    if h0 is not None:
        h0 = np.asarray(h0, dtype=np.float64)
        if h0.shape != (N,):
            raise ValueError(f"expected h0 of shape (N,) = ({N},), got {h0.shape}")
        state = state + h0
    h = np.empty((L, N))
    for t in range(L):
        state = A @ state + B @ x[t]  # N² + N·D multiply-adds
        h[t] = state
    y = h @ C.T
    return (y, h) if return_states else y


def convolution_kernel(A, B, C, L: int) -> np.ndarray:
    """K with K[j] = C A^j B for j = 0..L−1, shape (L, P, D): the response at lag j to an input."""
    A, B, C = _system(A, B, C)
    if int(L) != L or L < 1:
        raise ValueError(f"expected a length L >= 1, got {L}")
    K = np.empty((int(L), C.shape[0], B.shape[1]))
    power_times_B = B.copy()  # A^j B, (N, D)
    for j in range(int(L)):
        K[j] = C @ power_times_B
        power_times_B = A @ power_times_B
    return K


def unrolled(x, A, B, C) -> np.ndarray:
    """The closed form y_t = Σ_{k≤t} C A^{t−k} B x_k, as a causal convolution of x with the kernel.

    x: (L, D) → y: (L, P). Every y_t is a sum over inputs only: no output waits for another.
    """
    A, B, C = _system(A, B, C)
    x = _inputs(x, B.shape[1])
    L = x.shape[0]
    K = convolution_kernel(A, B, C, L)
    y = np.zeros((L, C.shape[0]))
    for lag in range(L):  # y_t += K_lag x_{t−lag} for every t ≥ lag at once
        y[lag:] += x[: L - lag] @ K[lag].T
    return y


# ----------------------------------------------------------------------------------------------
# The diagonal view
# ----------------------------------------------------------------------------------------------


class NotDiagonalizableError(ValueError):
    """A has no basis of eigenvectors (or is too close to having none to diagonalize safely)."""


@dataclass
class DiagonalSystem:
    """A linear recurrence in its eigenbasis: h̃_t = lam ⊙ h̃_{t−1} + B x_t, y_t = Re(C h̃_t).

    lam (M,) complex eigenvalues; B (M, D) complex, V^{−1}B; C (P, M) complex, C V (times 2 for
    conjugate-pair representatives when ``half``). M = N, or fewer when ``half``.
    Unpacks as ``lam, B, C = system``.
    """

    lam: np.ndarray
    B: np.ndarray
    C: np.ndarray
    half: bool = False
    condition: float = 1.0  # condition number of the eigenvector matrix V

    def __iter__(self):
        return iter((self.lam, self.B, self.C))


def _show(z: complex) -> str:
    z = complex(z)
    return f"{z.real:.4g}" if abs(z.imag) <= 1e-9 * max(1.0, abs(z)) else f"{z:.4g}"


def _defect_report(A: np.ndarray, lam: np.ndarray) -> str:
    """Which eigenvalues have fewer independent eigenvectors than their multiplicity."""
    N = A.shape[0]
    scale = max(1.0, float(np.max(np.abs(lam))))
    # A Jordan block of size m splits under rounding into m eigenvalues about eps^(1/m) apart, so
    # a loose tolerance groups them; the rank of A − μI (with a tight tolerance) counts eigenvectors.
    unassigned = list(range(N))
    lines = []
    while unassigned:
        i = unassigned[0]
        group = [j for j in unassigned if abs(lam[j] - lam[i]) <= 1e-4 * scale]
        unassigned = [j for j in unassigned if j not in group]
        mu = np.mean(lam[group])
        s = np.linalg.svd(A - mu * np.eye(N), compute_uv=False)
        independent = int(np.sum(s <= 1e-6 * scale * max(1.0, s[0])))
        if independent < len(group):
            lines.append(
                f"eigenvalue ≈ {_show(mu)} appears {len(group)} times but has only "
                f"{max(independent, 1)} independent eigenvector(s)"
            )
    return "; ".join(lines)


def diagonalize(A, B, C, *, half: bool = False, max_condition: float = 1e6) -> DiagonalSystem:
    """Eigendecompose A = V Λ V^{−1} and return the equivalent diagonal system (Λ, V^{−1}B, C V).

    A (N, N), B (N, D), C (P, N), all real. With ``half=True`` only one eigenvalue of each
    conjugate pair is kept (real eigenvalues are all kept) and its column of C̃ is doubled, so that
    Re(C̃ h̃) still gives y exactly with about half the complex states.

    Raises :class:`NotDiagonalizableError` when A is defective (a repeated eigenvalue with too few
    eigenvectors, like the Jordan block [[λ, 1], [0, λ]]) or so close to it that the eigenvector
    matrix V has condition number above ``max_condition``: the diagonal system would then lose
    about log10(cond V) digits, and a silently wrong answer is worse than an error.
    """
    A, B, C = _system(A, B, C)
    N = A.shape[0]
    lam, V = np.linalg.eig(A)
    lam = lam.astype(np.complex128)
    V = V.astype(np.complex128)
    with np.errstate(all="ignore"):
        condition = float(np.linalg.cond(V))
    if not np.isfinite(condition) or condition > max_condition:
        defects = _defect_report(A, lam)
        why = defects if defects else "its eigenvectors are nearly parallel"
        raise NotDiagonalizableError(
            f"A ({N}×{N}) cannot be diagonalized safely: {why}. The eigenvector matrix V has "
            f"condition number {condition:.3g} (limit {max_condition:.3g}), so V^-1 B and C V "
            f"would lose about {np.log10(max(condition, 1.0)):.0f} of 16 digits. A Jordan block "
            f"such as [[0.5, 1], [0, 0.5]] is the classic case. Keep the dense recurrence for "
            f"such an A, or (as S4D and the LRU do) choose the diagonal form directly."
        )
    if half:
        scale = max(1.0, float(np.max(np.abs(lam))))
        is_real = np.abs(lam.imag) <= 1e-12 * scale
        upper = lam.imag > 1e-12 * scale
        if int(upper.sum()) != int((lam.imag < -1e-12 * scale).sum()):
            raise ValueError("the complex eigenvalues of a real A should come in conjugate pairs")
        keep_V = np.concatenate([V[:, is_real].real.astype(np.complex128), V[:, upper]], axis=1)
        full_V = np.concatenate([keep_V, V[:, upper].conj()], axis=1)
        n_keep = keep_V.shape[1]
        lam_kept = np.concatenate([lam[is_real].real.astype(np.complex128), lam[upper]])
        Bt = np.linalg.solve(full_V, B.astype(np.complex128))[:n_keep]
        weights = np.concatenate([np.ones(int(is_real.sum())), 2.0 * np.ones(int(upper.sum()))])
        Ct = (C @ keep_V) * weights
        return DiagonalSystem(lam_kept, Bt, Ct, half=True, condition=condition)
    Bt = np.linalg.solve(V, B.astype(np.complex128))
    Ct = C @ V
    return DiagonalSystem(lam, Bt, Ct, half=False, condition=condition)


def diagonal_rnn(x, lam, B, C, *, return_states: bool = False):
    """y_t = Re(C h̃_t) with h̃_t = lam ⊙ h̃_{t−1} + B x_t, h̃_{−1} = 0: M scalar recurrences.

    x (L, D) real; lam (M,), B (M, D), C (P, M), complex or real. Returns y (L, P) real
    (and the complex states (L, M) with ``return_states=True``).
    """
    lam = np.asarray(lam)
    if lam.ndim != 1:
        raise ValueError(f"expected lam of shape (M,) (one eigenvalue per state), got {lam.shape}")
    M = lam.shape[0]
    B = np.asarray(B)
    C = np.asarray(C)
    if B.ndim != 2 or B.shape[0] != M:
        raise ValueError(f"expected B of shape (M, D) with M = {M}, got {B.shape}")
    if C.ndim != 2 or C.shape[1] != M:
        raise ValueError(f"expected C of shape (P, M) with M = {M}, got {C.shape}")
    x = _inputs(x, B.shape[1])
    L = x.shape[0]
    lam = lam.astype(np.complex128)
    inputs = x @ B.T.astype(np.complex128)  # (L, M): B x_t for every t at once
    h = np.empty((L, M), dtype=np.complex128)
    state = np.zeros(M, dtype=np.complex128)
    for t in range(L):
        state = lam * state + inputs[t]  # M multiplications, not M²
        h[t] = state
    y = (h @ C.T.astype(np.complex128)).real
    return (y, h) if return_states else y


def is_stable(A) -> bool:
    """True when every eigenvalue of A lies strictly inside the unit circle (states stay bounded)."""
    A = _real("A", A, 2, "(N, N)")
    return bool(np.max(np.abs(np.linalg.eigvals(A))) < 1.0)


def impulse_response(lam, L: int) -> np.ndarray:
    """λ^k for k = 0..L−1: the state of h_t = λ h_{t−1} + x_t after an impulse x_0 = 1."""
    return complex(lam) ** np.arange(int(L))


def memory_horizon(lam) -> float:
    """1 / (1 − |λ|): the number of steps over which the weights |λ|^k sum up (inf if |λ| ≥ 1)."""
    r = abs(complex(lam))
    return float("inf") if r >= 1.0 else 1.0 / (1.0 - r)


def step_operations(N: int, D: int, P: int, form: str = "dense") -> dict[str, int]:
    """Real multiplications of one step of each form: state update, input B x_t, output C h_t.

    ``form``: ``"dense"`` (A h: N²), ``"diagonal"`` (N complex states: a complex product costs 4
    real multiplications, a complex-by-real one 2, and only Re(C h̃) is needed: 2 per term), or
    ``"half"`` (conjugate pairs kept once; counted as N/2 complex states, i.e. A with no real
    eigenvalues). Additions are of the same order and left out.
    """
    if form == "dense":
        counts = {"state": N * N, "input": N * D, "output": P * N}
    elif form == "diagonal":
        counts = {"state": 4 * N, "input": 2 * N * D, "output": 2 * P * N}
    elif form == "half":
        M = (N + 1) // 2
        counts = {"state": 4 * M, "input": 2 * M * D, "output": 2 * P * M}
    else:
        raise ValueError(f"expected form 'dense', 'diagonal' or 'half', got {form!r}")
    counts["total"] = sum(counts.values())
    return counts


# ----------------------------------------------------------------------------------------------
# PyTorch: a stack of diagonal linear recurrences and element-wise MLPs
# ----------------------------------------------------------------------------------------------


class DiagonalLinearRecurrence(nn.Module):
    """h̃_t = λ ⊙ h̃_{t−1} + B̃ x_t, y_t = Re(C̃ h̃_t) + d ⊙ x_t, on (batch, L, H) inputs.

    λ = r·e^{iθ} with r = sigmoid(ν) in (0, 1), so the recurrence is stable whatever ν and θ the
    optimizer picks (lesson 04 studies better parametrizations). N complex states, H channels.
    """

    def __init__(self, H: int, N: int, *, r_min: float = 0.4, r_max: float = 0.95, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        r = r_min + (r_max - r_min) * torch.rand(N, generator=g)
        self.nu = nn.Parameter(torch.log(r / (1 - r)))  # sigmoid(nu) = r
        self.theta = nn.Parameter(torch.pi * torch.rand(N, generator=g))
        scale_b, scale_c = 1 / np.sqrt(2 * H), 1 / np.sqrt(N)
        self.B_re = nn.Parameter(torch.randn(N, H, generator=g) * scale_b)
        self.B_im = nn.Parameter(torch.randn(N, H, generator=g) * scale_b)
        self.C_re = nn.Parameter(torch.randn(H, N, generator=g) * scale_c)
        self.C_im = nn.Parameter(torch.randn(H, N, generator=g) * scale_c)
        self.d = nn.Parameter(torch.randn(H, generator=g))

    def eigenvalues(self) -> torch.Tensor:
        return torch.polar(torch.sigmoid(self.nu), self.theta)  # (N,) complex

    def system(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(lam, B̃, C̃) as NumPy arrays, for :func:`diagonal_rnn`."""
        with torch.no_grad():
            lam = self.eigenvalues().numpy()
            B = torch.complex(self.B_re, self.B_im).numpy()
            C = torch.complex(self.C_re, self.C_im).numpy()
        return lam.astype(np.complex128), B.astype(np.complex128), C.astype(np.complex128)

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 3 or x.shape[-1] != self.d.shape[0]:
            raise ValueError(
                f"expected x of shape (batch, L, H) with H = {self.d.shape[0]}, got {tuple(x.shape)}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, L, H) -> (batch, L, H)
        """The unrolled form: h̃_t = Σ_{s≤t} λ^{t−s} B̃ x_s, as one batched product (no time loop).

        λ^k = r^k (cos kθ + i sin kθ) is built in real arithmetic for every lag k at once, as an
        (L, L, N) lower-triangular table; for the short sequences of the lessons this is faster on a
        CPU than stepping through time (lesson 03 shows how a scan does it in O(L) work).
        """
        self._check(x)
        L = x.shape[1]
        t = torch.arange(L, dtype=x.dtype)
        lag = t[:, None] - t[None, :]  # (L, L): t − s
        causal = (lag >= 0).to(x.dtype)[..., None]
        lag = lag.clamp(min=0)[..., None]  # (L, L, 1)
        log_r = torch.nn.functional.logsigmoid(self.nu)  # (N,)
        magnitude = torch.exp(lag * log_r) * causal  # (L, L, N): r^(t−s), zero above the diagonal
        power_re = magnitude * torch.cos(lag * self.theta)
        power_im = magnitude * torch.sin(lag * self.theta)
        u_re, u_im = x @ self.B_re.T, x @ self.B_im.T  # (batch, L, N)
        mix = "tsn,bsn->btn"
        h_re = torch.einsum(mix, power_re, u_re) - torch.einsum(mix, power_im, u_im)
        h_im = torch.einsum(mix, power_re, u_im) + torch.einsum(mix, power_im, u_re)
        return h_re @ self.C_re.T - h_im @ self.C_im.T + self.d * x

    def forward_recurrent(self, x: torch.Tensor) -> torch.Tensor:
        """The same map one step at a time (complex arithmetic): slower here, equal to rounding."""
        self._check(x)
        lam = self.eigenvalues()  # complex64, or complex128 after .double()
        B = torch.complex(self.B_re, self.B_im)
        C = torch.complex(self.C_re, self.C_im)
        u = x.to(lam.dtype) @ B.T  # (batch, L, N)
        state = torch.zeros(x.shape[0], lam.shape[0], dtype=lam.dtype)
        states = []
        for t in range(x.shape[1]):  # element-wise: N multiplications a step
            state = lam * state + u[:, t]
            states.append(state)
        h = torch.stack(states, dim=1)  # (batch, L, N)
        return (h @ C.T).real + self.d * x


class PointwiseMLP(nn.Module):
    """The same small MLP applied at every time step on its own (no mixing across time)."""

    def __init__(self, H: int, expand: int = 2):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(H, expand * H), nn.GELU(), nn.Linear(expand * H, H))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class LinearStack(nn.Module):
    """encoder → [linear recurrence → (+ element-wise MLP, residual)] × depth → decoder.

    With ``mlp=False`` every piece is linear, so the whole model is one linear time-invariant map
    from the input sequence to the output sequence, however deep: a single linear recurrence.
    ``readout="sequence"`` returns (batch, L, d_out); ``"last"`` returns the last step only,
    (batch, d_out), e.g. class logits for :func:`mamba_edu.train.train_classifier`.
    """

    def __init__(
        self,
        d_in: int,
        d_out: int,
        *,
        H: int = 32,
        N: int = 32,
        depth: int = 2,
        mlp: bool = True,
        readout: str = "sequence",
        seed: int = 0,
    ):
        super().__init__()
        if readout not in ("sequence", "last"):
            raise ValueError(f"expected readout 'sequence' or 'last', got {readout!r}")
        self.readout = readout
        with torch.random.fork_rng():  # seeded weights, without touching the caller's generator
            torch.manual_seed(seed)
            self.encoder = nn.Linear(d_in, H)
            self.recurrences = nn.ModuleList(
                DiagonalLinearRecurrence(H, N, seed=seed * 1000 + i) for i in range(depth)
            )
            self.mlps = nn.ModuleList(PointwiseMLP(H) for _ in range(depth)) if mlp else None
            self.decoder = nn.Linear(H, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, L, d_in) -> (batch, L, d_out)
        z = self.encoder(x)
        for i, recurrence in enumerate(self.recurrences):
            z = recurrence(z)
            if self.mlps is not None:
                z = z + self.mlps[i](z)
        return self.decoder(z[:, -1] if self.readout == "last" else z)
