"""The Linear Recurrent Unit (Orvieto et al., 2023, "Resurrecting Recurrent Neural Networks for Long
Sequences"): NumPy reference of its parametrization, initialization and forward pass.

One LRU layer maps inputs x_k ∈ R^H to outputs y_k ∈ R^H through a complex diagonal state h_k ∈ C^N:

    h_k = Λ h_{k−1} + γ ⊙ (B x_k),       y_k = Re(C h_k) + D ⊙ x_k

(The LRU paper writes the state x and the input u; the course writes h and x throughout, as the
Mamba paper does. N is the state size, ``d_state`` in signatures.)

Glossary (code name → paper symbol):
    nu_log, theta_log → ν^log, θ^log with λ = exp(−exp(ν^log) + i·exp(θ^log))   (exponential parametrization)
    gamma_log         → γ^log with γ = √(1 − |λ|²)                             (normalization)
    B (N, H), C (H, N) complex; D (H,) real

The second half of the module holds the PyTorch versions the lessons train: ``LRULayer`` (with
switches for each idea, so that lesson 04's ablation ladder can add them one at a time, the ladder the
paper climbs across its Tables 1, 2 and 3), the two
baselines below it on the ladder (``TanhRNN``, ``DenseLinearRNN``) and ``SequenceClassifier``.
The ladder itself (training every rung) is an experiment: ``mamba_edu.experiments.lru_ladder``.

Layouts: NumPy references take one sequence, (L, H); the PyTorch modules take (batch, L, H).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mamba_edu import contract

__all__ = [
    "LRUParams",
    "ring_init",
    "eigenvalues",
    "gamma_normalization",
    "init_lru",
    "lru_forward",
    "prop3_expected_norm",
    "diagonal_scan",
    "LRULayer",
    "TanhRNN",
    "DenseLinearRNN",
    "SequenceClassifier",
]


def ring_init(
    d_state: int,
    r_min: float = 0.0,
    r_max: float = 1.0,
    max_phase: float = 2 * np.pi,
    *,
    rng=None,
):
    """Sample (nu_log, theta_log), each of shape (d_state,), so that λ is uniform on the ring
    r_min ≤ |λ| ≤ r_max, 0 ≤ arg λ ≤ max_phase.

    Uniform on the ring (in area) means |λ|² uniform on [r_min², r_max²]:
    ν^log = log(−½ log(u₁(r_max² − r_min²) + r_min²)), θ^log = log(max_phase · u₂), u₁, u₂ ~ U[0, 1).
    """
    d_state = contract.positive_int("d_state", d_state)
    r_min, r_max = contract.real_scalar("r_min", r_min), contract.real_scalar("r_max", r_max)
    max_phase = contract.real_scalar("max_phase", max_phase)
    if not 0 <= r_min < r_max <= 1:
        raise ValueError(f"expected 0 <= r_min < r_max <= 1, got r_min={r_min}, r_max={r_max}")
    if not 0 < max_phase <= 2 * np.pi:
        raise ValueError(f"expected 0 < max_phase <= 2π, got {max_phase}")
    rng = np.random.default_rng(rng)
    u1 = rng.uniform(size=d_state)
    u2 = rng.uniform(size=d_state)
    # keep u away from 0 so logs stay finite: |λ| = 1 exactly (u1 → 1 with r_max = 1) or phase 0
    # would give an infinite ν^log or θ^log
    r2 = u1 * (r_max**2 - r_min**2) + r_min**2
    r2 = np.minimum(r2, 1 - 1e-12)
    nu_log = np.log(-0.5 * np.log(r2))
    theta_log = np.log(max_phase * np.maximum(u2, 1e-12))
    return nu_log, theta_log


def eigenvalues(nu_log, theta_log) -> np.ndarray:
    """λ = exp(−exp(ν^log) + i·exp(θ^log)): always inside the unit circle, whatever the parameters.

    nu_log and theta_log: real arrays of one shape (usually (N,)); λ has that shape, complex.
    """
    nu_log, theta_log = (
        contract.float_array("nu_log", nu_log),
        contract.float_array("theta_log", theta_log),
    )
    if nu_log.shape != theta_log.shape:
        raise ValueError(
            f"expected nu_log and theta_log of the same shape, got {nu_log.shape} and "
            f"{theta_log.shape}"
        )
    return np.exp(-np.exp(nu_log) + 1j * np.exp(theta_log))


def gamma_normalization(lam) -> np.ndarray:
    """γ = √(1 − |λ|²), shape (N,) real for λ of shape (N,): scaling the input by γ keeps the state's
    variance that of the input for white noise (the LRU normalization)."""
    return np.sqrt(1 - np.abs(lam) ** 2)


@dataclass
class LRUParams:
    nu_log: np.ndarray  # (N,)
    theta_log: np.ndarray  # (N,)
    gamma_log: np.ndarray  # (N,)
    B: np.ndarray  # (N, H) complex
    C: np.ndarray  # (H, N) complex
    D: np.ndarray  # (H,)

    @property
    def lam(self) -> np.ndarray:
        return eigenvalues(self.nu_log, self.theta_log)


def init_lru(
    H: int, d_state: int, r_min=0.0, r_max=1.0, max_phase=2 * np.pi, *, rng=None
) -> LRUParams:
    """The paper's initialization: ring eigenvalues, γ = √(1 − |λ|²), B ~ N(0, 1/(2H)) per real and
    imaginary part, C ~ N(0, 1/N) per part, D ~ N(0, 1). Shapes: B (N, H), C (H, N), D (H,), the
    rest (N,), with N = d_state."""
    H, N = contract.positive_int("H", H), contract.positive_int("d_state", d_state)
    rng = np.random.default_rng(rng)
    nu_log, theta_log = ring_init(N, r_min, r_max, max_phase, rng=rng)
    lam = eigenvalues(nu_log, theta_log)
    gamma_log = np.log(np.sqrt(1 - np.abs(lam) ** 2))
    B = (rng.standard_normal((N, H)) + 1j * rng.standard_normal((N, H))) / np.sqrt(2 * H)
    C = (rng.standard_normal((H, N)) + 1j * rng.standard_normal((H, N))) / np.sqrt(N)
    D = rng.standard_normal(H)
    return LRUParams(nu_log, theta_log, gamma_log, B, C, D)


def lru_forward(params: LRUParams, x, *, normalize: bool = True, return_state: bool = False):
    """Run one LRU layer on one sequence x of shape (L, H); return y (L, H) (and the states h,
    (L, N) complex, if asked).

    ``normalize=False`` drops γ, to see the forward blow-up the normalization prevents.
    """
    x = contract.float_array("x", x)
    N, H = params.B.shape
    if x.ndim != 2 or x.shape[1] != H or x.shape[0] < 1:
        raise ValueError(f"expected x of shape (L, H) = (L, {H}) with L >= 1, got {x.shape}")
    lam = params.lam
    gain = np.exp(params.gamma_log) if normalize else np.ones(N)
    Bx = (x @ params.B.T) * gain  # (L, N): the input to the state at every step
    h = np.zeros(N, dtype=np.complex128)
    states = np.empty((x.shape[0], N), dtype=np.complex128)
    for k in range(x.shape[0]):  # the loop is the recurrence; lesson 03 makes it parallel
        h = lam * h + Bx[k]
        states[k] = h
    y = (states @ params.C.T).real + x * params.D
    return (y, states) if return_state else y


def prop3_expected_norm(r_min: float, r_max: float) -> float:
    """E‖h_∞‖² / E‖Bx‖² for white-noise input and λ uniform on the ring, without γ (LRU paper, Prop. 3).

    Each state coordinate sums Σ_k λ^k (Bx)_k, whose variance is 1/(1 − |λ|²) times that of Bx;
    averaging 1/(1 − r²) over r² uniform on [r_min², r_max²] gives
    log((1 − r_min²)/(1 − r_max²)) / (r_max² − r_min²). Scalars in, a float out.
    """
    r_min, r_max = contract.real_scalar("r_min", r_min), contract.real_scalar("r_max", r_max)
    if not 0 <= r_min < r_max < 1:
        raise ValueError(f"expected 0 <= r_min < r_max < 1, got r_min={r_min}, r_max={r_max}")
    return float(np.log((1 - r_min**2) / (1 - r_max**2)) / (r_max**2 - r_min**2))


# ----------------------------------------------------------------------------------------------
# PyTorch: the layers lesson 04 trains
# ----------------------------------------------------------------------------------------------


def diagonal_scan(lam: torch.Tensor, x: torch.Tensor, *, backend: str = "auto") -> torch.Tensor:
    """h_t = λ ⊙ h_{t−1} + x_t along time for a time-invariant diagonal λ (N,), x (batch, L, N)
    complex (here x is the drive B x_t of the layer); returns h (batch, L, N).

    backend ``"numba"``: the compiled first-order scan of ``kernels/scan_cpu.py`` (hand-derived
    backward, lesson 03), the fast path on a CPU. ``"torch"``: pure PyTorch, differentiable by
    autograd, the Hillis–Steele doubling of lesson 03 (after step k, h_t holds the last 2^k inputs
    weighted by powers of λ: log₂L vectorized steps instead of L Python steps). ``"auto"``: numba
    for CPU tensors, else torch.
    """
    if x.ndim != 3 or lam.shape != (x.shape[-1],):
        raise ValueError(
            f"expected lam (N,) and x (batch, L, N), got {tuple(lam.shape)} and {tuple(x.shape)}"
        )
    if backend not in ("auto", "numba", "torch"):
        raise ValueError(f"expected backend 'auto', 'numba' or 'torch', got {backend!r}")
    if backend == "numba" or (backend == "auto" and x.device.type == "cpu"):
        # imported here: loading the kernels compiles (or loads) numba code, which the NumPy
        # half of this module never needs
        from mamba_edu.kernels import scan_cpu

        batch, L, N = x.shape
        a = lam.to(x.dtype)[None, :, None].expand(batch, N, L).contiguous()  # (batch, N, L)
        h = scan_cpu.first_order_scan(a, x.transpose(1, 2).contiguous(), backend=backend)
        return h.transpose(1, 2)
    h, power, offset = x, lam, 1
    L = x.shape[1]
    while offset < L:
        shifted = torch.cat([torch.zeros_like(h[:, :offset]), h[:, :-offset]], dim=1)
        h = h + power * shifted
        power = power * power
        offset *= 2
    return h


class LRULayer(nn.Module):
    """A diagonal complex linear recurrence, (batch, L, H) → (batch, L, H), with the LRU's ideas as
    switches; state size ``d_state`` (N).

    parametrization: ``"exp"`` (λ = exp(−exp(ν) + i·exp(θ)), always stable) or ``"re_im"`` (λ's
    real and imaginary parts learned directly: nothing keeps |λ| < 1).
    r_min, r_max, max_phase: the ring λ is initialized on (r_min = 0, r_max = 1, max_phase = 2π:
    uniform on the unit disk, like the eigenvalues of a random dense matrix).
    gamma: scale the input by γ = √(1 − |λ|²) (learned, as γ^log).
    """

    def __init__(
        self,
        H: int,
        d_state: int,
        *,
        parametrization: str = "exp",
        r_min: float = 0.0,
        r_max: float = 1.0,
        max_phase: float = 2 * math.pi,
        gamma: bool = True,
        seed: int = 0,
    ):
        super().__init__()
        if parametrization not in ("exp", "re_im"):
            raise ValueError(f"expected parametrization 'exp' or 're_im', got {parametrization!r}")
        p = init_lru(H, d_state, r_min, r_max, max_phase, rng=seed)
        self.parametrization = parametrization
        lam = p.lam
        if parametrization == "exp":
            self.nu_log = nn.Parameter(torch.tensor(p.nu_log, dtype=torch.float32))
            self.theta_log = nn.Parameter(torch.tensor(p.theta_log, dtype=torch.float32))
        else:
            self.lam_re = nn.Parameter(torch.tensor(lam.real, dtype=torch.float32))
            self.lam_im = nn.Parameter(torch.tensor(lam.imag, dtype=torch.float32))
        self.gamma_log = (
            nn.Parameter(torch.tensor(p.gamma_log, dtype=torch.float32)) if gamma else None
        )
        self.B = nn.Parameter(
            torch.view_as_real(torch.tensor(p.B, dtype=torch.complex64)).contiguous()
        )
        self.C = nn.Parameter(
            torch.view_as_real(torch.tensor(p.C, dtype=torch.complex64)).contiguous()
        )
        self.D = nn.Parameter(torch.tensor(p.D, dtype=torch.float32))

    def eigenvalues(self) -> torch.Tensor:
        """λ, shape (N,), complex64."""
        if self.parametrization == "exp":
            return torch.exp(torch.complex(-torch.exp(self.nu_log), torch.exp(self.theta_log)))
        return torch.complex(self.lam_re, self.lam_im)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (batch, L, H) float → y (batch, L, H)."""
        lam = self.eigenvalues()
        B = torch.view_as_complex(self.B)
        Bx = x.to(B.dtype) @ B.T  # (batch, L, N)
        if self.gamma_log is not None:
            Bx = Bx * torch.exp(self.gamma_log)
        h = diagonal_scan(lam, Bx)
        return (h @ torch.view_as_complex(self.C).T).real + x * self.D


class TanhRNN(nn.Module):
    """The classic RNN, h_t = tanh(W h_{t−1} + U x_t + b), read out as C h_t:
    (batch, L, H) → (batch, L, H), state size ``d_state``."""

    def __init__(self, H: int, d_state: int, *, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.rnn = nn.RNN(H, d_state, batch_first=True)
        self.out = nn.Linear(d_state, H)

    def forward(self, x):
        return self.out(self.rnn(x)[0])


class DenseLinearRNN(nn.Module):
    """h_t = A h_{t−1} + B x_t, y_t = C h_t with a dense real A (Glorot-style init):
    (batch, L, H) → (batch, L, H), state size ``d_state`` (N)."""

    def __init__(self, H: int, d_state: int, *, seed: int = 0):
        super().__init__()
        N = d_state
        g = torch.Generator().manual_seed(seed)
        self.A = nn.Parameter(torch.randn(N, N, generator=g) / math.sqrt(N))
        self.B = nn.Parameter(torch.randn(N, H, generator=g) / math.sqrt(H))
        self.C = nn.Parameter(torch.randn(H, N, generator=g) / math.sqrt(N))

    def forward(self, x):
        Bx = x @ self.B.T
        h = torch.zeros(x.shape[0], self.A.shape[0])
        states = []
        for t in range(x.shape[1]):  # a dense A has no cheap parallel form here: step by step
            h = h @ self.A.T + Bx[:, t]
            states.append(h)
        return torch.stack(states, dim=1) @ self.C.T


class SequenceClassifier(nn.Module):
    """Tokens (batch, L) int or features (batch, L, F) float → one recurrent layer → LayerNorm of
    the last position → MLP → class logits (batch, n_classes)."""

    def __init__(
        self,
        layer: nn.Module,
        H: int,
        n_classes: int,
        *,
        vocab: int | None = None,
        features: int = 1,
    ):
        super().__init__()
        self.embed = nn.Embedding(vocab, H) if vocab else nn.Linear(features, H)
        self.layer = layer
        self.norm = nn.LayerNorm(H)
        self.head = nn.Sequential(nn.Linear(H, H), nn.GELU(), nn.Linear(H, n_classes))

    def forward(self, x):
        return self.head(self.norm(self.layer(self.embed(x))[:, -1]))
