"""The Linear Recurrent Unit (Orvieto et al., 2023, "Resurrecting Recurrent Neural Networks for Long
Sequences"): NumPy reference of its parametrization, initialization and forward pass.

One LRU layer maps inputs u_k ∈ R^H to outputs y_k ∈ R^H through a complex diagonal state x_k ∈ C^N:

    x_k = Λ x_{k−1} + γ ⊙ (B u_k),       y_k = Re(C x_k) + D ⊙ u_k

Glossary (code name → paper symbol):
    nu_log, theta_log → ν^log, θ^log with λ = exp(−exp(ν^log) + i·exp(θ^log))   (exponential parametrization)
    gamma_log         → γ^log with γ = √(1 − |λ|²)                             (normalization)
    B (N, H), C (H, N) complex; D (H,) real

The PyTorch module that trains on the fast scan arrives with lesson 04.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "LRUParams",
    "ring_init",
    "eigenvalues",
    "init_lru",
    "lru_forward",
    "prop3_expected_norm",
]


def ring_init(
    N: int, r_min: float = 0.0, r_max: float = 1.0, max_phase: float = 2 * np.pi, *, rng=None
):
    """Sample (nu_log, theta_log) so that λ is uniform on the ring r_min ≤ |λ| ≤ r_max, 0 ≤ arg λ ≤ max_phase.

    Uniform on the ring (in area) means |λ|² uniform on [r_min², r_max²]:
    ν^log = log(−½ log(u₁(r_max² − r_min²) + r_min²)), θ^log = log(max_phase · u₂), u₁, u₂ ~ U[0, 1).
    """
    if not 0 <= r_min < r_max <= 1:
        raise ValueError(f"expected 0 <= r_min < r_max <= 1, got r_min={r_min}, r_max={r_max}")
    if not 0 < max_phase <= 2 * np.pi:
        raise ValueError(f"expected 0 < max_phase <= 2π, got {max_phase}")
    rng = np.random.default_rng(rng)
    u1 = rng.uniform(size=N)
    u2 = rng.uniform(size=N)
    # keep u away from 0 so logs stay finite: |λ| = 1 exactly (u1 → 1 with r_max = 1) or phase 0
    # would give an infinite ν^log or θ^log
    r2 = u1 * (r_max**2 - r_min**2) + r_min**2
    r2 = np.minimum(r2, 1 - 1e-12)
    nu_log = np.log(-0.5 * np.log(r2))
    theta_log = np.log(max_phase * np.maximum(u2, 1e-12))
    return nu_log, theta_log


def eigenvalues(nu_log, theta_log) -> np.ndarray:
    """λ = exp(−exp(ν^log) + i·exp(θ^log)): always inside the unit circle, whatever the parameters."""
    return np.exp(-np.exp(nu_log) + 1j * np.exp(theta_log))


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


def init_lru(H: int, N: int, r_min=0.0, r_max=1.0, max_phase=2 * np.pi, *, rng=None) -> LRUParams:
    """The paper's initialization: ring eigenvalues, γ = √(1 − |λ|²), B ~ N(0, 1/(2H)) per real and
    imaginary part, C ~ N(0, 1/N) per part, D ~ N(0, 1)."""
    rng = np.random.default_rng(rng)
    nu_log, theta_log = ring_init(N, r_min, r_max, max_phase, rng=rng)
    lam = eigenvalues(nu_log, theta_log)
    gamma_log = np.log(np.sqrt(1 - np.abs(lam) ** 2))
    B = (rng.standard_normal((N, H)) + 1j * rng.standard_normal((N, H))) / np.sqrt(2 * H)
    C = (rng.standard_normal((H, N)) + 1j * rng.standard_normal((H, N))) / np.sqrt(N)
    D = rng.standard_normal(H)
    return LRUParams(nu_log, theta_log, gamma_log, B, C, D)


def lru_forward(params: LRUParams, u, *, normalize: bool = True, return_state: bool = False):
    """Run one LRU layer on u of shape (L, H); return y (L, H) (and the states (L, N) if asked).

    ``normalize=False`` drops γ, to see the forward blow-up the normalization prevents.
    """
    u = np.asarray(u, dtype=np.float64)
    N, H = params.B.shape
    if u.ndim != 2 or u.shape[1] != H:
        raise ValueError(f"expected u of shape (L, H) = (L, {H}), got {u.shape}")
    lam = params.lam
    gain = np.exp(params.gamma_log) if normalize else np.ones(N)
    Bu = (u @ params.B.T) * gain  # (L, N): the input to the state at every step
    x = np.zeros(N, dtype=np.complex128)
    states = np.empty((u.shape[0], N), dtype=np.complex128)
    for k in range(u.shape[0]):  # the loop is the recurrence; lesson 03 makes it parallel
        x = lam * x + Bu[k]
        states[k] = x
    y = (states @ params.C.T).real + u * params.D
    return (y, states) if return_state else y


def prop3_expected_norm(r_min: float, r_max: float) -> float:
    """E‖x_∞‖² / E‖Bu‖² for white-noise input and λ uniform on the ring, without γ (LRU paper, Prop. 3).

    Each state coordinate sums Σ_k λ^k (Bu)_k, whose variance is 1/(1 − |λ|²) times that of Bu;
    averaging 1/(1 − r²) over r² uniform on [r_min², r_max²] gives
    log((1 − r_min²)/(1 − r_max²)) / (r_max² − r_min²).
    """
    if not 0 <= r_min < r_max < 1:
        raise ValueError(f"expected 0 <= r_min < r_max < 1, got r_min={r_min}, r_max={r_max}")
    return float(np.log((1 - r_min**2) / (1 - r_max**2)) / (r_max**2 - r_min**2))
