"""The Linear Recurrent Unit (Orvieto et al., 2023, "Resurrecting Recurrent Neural Networks for Long
Sequences"): NumPy reference of its parametrization, initialization and forward pass.

One LRU layer maps inputs u_k ∈ R^H to outputs y_k ∈ R^H through a complex diagonal state x_k ∈ C^N:

    x_k = Λ x_{k−1} + γ ⊙ (B u_k),       y_k = Re(C x_k) + D ⊙ u_k

Glossary (code name → paper symbol):
    nu_log, theta_log → ν^log, θ^log with λ = exp(−exp(ν^log) + i·exp(θ^log))   (exponential parametrization)
    gamma_log         → γ^log with γ = √(1 − |λ|²)                             (normalization)
    B (N, H), C (H, N) complex; D (H,) real

The second half of the module holds the PyTorch versions the lessons train: ``LRULayer`` (with
switches for each idea, so that lesson 04's ablation ladder can add them one at a time), the two
baselines below it on the ladder (``TanhRNN``, ``DenseLinearRNN``) and ``SequenceClassifier``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

__all__ = [
    "LRUParams",
    "ring_init",
    "eigenvalues",
    "gamma_normalization",
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


# ----------------------------------------------------------------------------------------------
# PyTorch: the layers lesson 04 trains
# ----------------------------------------------------------------------------------------------


def diagonal_scan(lam: torch.Tensor, x: torch.Tensor, *, backend: str = "auto") -> torch.Tensor:
    """h_t = λ ⊙ h_{t−1} + x_t along time for a time-invariant diagonal λ (N,), x (B, L, N) complex.

    backend ``"numba"``: the compiled first-order scan of ``kernels/scan_cpu.py`` (hand-derived
    backward, lesson 03), the fast path on a CPU. ``"torch"``: pure PyTorch, differentiable by
    autograd, the Hillis–Steele doubling of lesson 03 (after step k, h_t holds the last 2^k inputs
    weighted by powers of λ: log₂L vectorized steps instead of L Python steps). ``"auto"``: numba
    for CPU tensors, else torch.
    """
    if x.ndim != 3 or lam.shape != (x.shape[-1],):
        raise ValueError(
            f"expected lam (N,) and x (B, L, N), got {tuple(lam.shape)} and {tuple(x.shape)}"
        )
    if backend not in ("auto", "numba", "torch"):
        raise ValueError(f"expected backend 'auto', 'numba' or 'torch', got {backend!r}")
    if backend == "numba" or (backend == "auto" and x.device.type == "cpu"):
        from mamba_edu.kernels import scan_cpu

        Bsz, L, N = x.shape
        a = lam.to(x.dtype)[None, :, None].expand(Bsz, N, L).contiguous()  # (B, N, L): time last
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
    """A diagonal complex linear recurrence, (B, L, H) → (B, L, H), with the LRU's ideas as switches.

    parametrization: ``"exp"`` (λ = exp(−exp(ν) + i·exp(θ)), always stable) or ``"re_im"`` (λ's
    real and imaginary parts learned directly: nothing keeps |λ| < 1).
    r_min, r_max, max_phase: the ring λ is initialized on (r_min = 0, r_max = 1, max_phase = 2π:
    uniform on the unit disk, like the eigenvalues of a random dense matrix).
    gamma: scale the input by γ = √(1 − |λ|²) (learned, as γ^log).
    """

    def __init__(
        self,
        H: int,
        N: int,
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
        p = init_lru(H, N, r_min, r_max, max_phase, rng=seed)
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
        if self.parametrization == "exp":
            return torch.exp(torch.complex(-torch.exp(self.nu_log), torch.exp(self.theta_log)))
        return torch.complex(self.lam_re, self.lam_im)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        lam = self.eigenvalues()
        B = torch.view_as_complex(self.B)
        Bu = u.to(B.dtype) @ B.T  # (B, L, N)
        if self.gamma_log is not None:
            Bu = Bu * torch.exp(self.gamma_log)
        h = diagonal_scan(lam, Bu)
        return (h @ torch.view_as_complex(self.C).T).real + u * self.D


class TanhRNN(nn.Module):
    """The classic RNN, h_t = tanh(W h_{t−1} + U u_t + b), read out as C h_t: (B, L, H) → (B, L, H)."""

    def __init__(self, H: int, N: int, *, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.rnn = nn.RNN(H, N, batch_first=True)
        self.out = nn.Linear(N, H)

    def forward(self, u):
        return self.out(self.rnn(u)[0])


class DenseLinearRNN(nn.Module):
    """h_t = A h_{t−1} + B u_t, y_t = C h_t with a dense real A (Glorot-style init): (B, L, H) → (B, L, H)."""

    def __init__(self, H: int, N: int, *, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.A = nn.Parameter(torch.randn(N, N, generator=g) / math.sqrt(N))
        self.B = nn.Parameter(torch.randn(N, H, generator=g) / math.sqrt(H))
        self.C = nn.Parameter(torch.randn(H, N, generator=g) / math.sqrt(N))

    def forward(self, u):
        Bu = u @ self.B.T
        h = torch.zeros(u.shape[0], self.A.shape[0])
        states = []
        for t in range(u.shape[1]):  # a dense A has no cheap parallel form here: step by step
            h = h @ self.A.T + Bu[:, t]
            states.append(h)
        return torch.stack(states, dim=1) @ self.C.T


class SequenceClassifier(nn.Module):
    """Tokens (B, L) int or features (B, L, F) float → one recurrent layer → LayerNorm of the last
    position → MLP → class logits (B, n_classes)."""

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


# The LRU paper's ablation ladder (Orvieto et al., 2023, Table 1 / Sections 3.1–3.3), one idea per rung.
LADDER = (
    ("tanh RNN", dict(kind="tanh")),
    ("dense linear RNN", dict(kind="dense")),
    ("diagonal complex (Re/Im)", dict(kind="lru", parametrization="re_im", gamma=False)),
    ("+ exp parametrization", dict(kind="lru", parametrization="exp", gamma=False)),
    ("+ ring init", dict(kind="lru", parametrization="exp", gamma=False, ring=True)),
    ("+ γ normalization (LRU)", dict(kind="lru", parametrization="exp", gamma=True, ring=True)),
)


def ladder_model(
    rung: dict,
    H: int,
    N: int,
    n_classes: int,
    *,
    vocab=None,
    features=1,
    ring=(0.9, 0.999, math.pi / 10),
    seed=0,
) -> SequenceClassifier:
    """Build the classifier for one rung of :data:`LADDER`; ``ring`` = (r_min, r_max, max_phase) for ring init."""
    kind = rung["kind"]
    if kind == "tanh":
        layer = TanhRNN(H, N, seed=seed)
    elif kind == "dense":
        layer = DenseLinearRNN(H, N, seed=seed)
    elif kind == "lru":
        r_min, r_max, max_phase = ring if rung.get("ring") else (0.0, 1.0, 2 * math.pi)
        layer = LRULayer(
            H,
            N,
            parametrization=rung["parametrization"],
            gamma=rung["gamma"],
            r_min=r_min,
            r_max=r_max,
            max_phase=max_phase,
            seed=seed,
        )
    else:
        raise ValueError(f"unknown rung kind {kind!r}")
    torch.manual_seed(seed)
    return SequenceClassifier(layer, H, n_classes, vocab=vocab, features=features)


def run_ladder(
    L: int = 64,
    *,
    steps: int = 150,
    seeds=(0,),
    H: int = 32,
    N: int = 32,
    lr: float = 1e-2,
    n_train: int = 4096,
    n_test: int = 1024,
    progress: bool = True,
) -> list[dict]:
    """Train every rung of :data:`LADDER` on the recall task with the same budget and seeds.

    Returns one row per rung: name, mean and per-seed test accuracy, the largest |λ| seen during
    training (diagonal rungs), whether training diverged, and seconds (this machine).
    """
    from mamba_edu import tasks, train

    torch.set_num_threads(1)  # small models: one thread is faster and steadier than two
    train_data = tasks.recall_first_token(n_train, L, seed=1)
    test_data = tasks.recall_first_token(n_test, L, seed=2)

    def track(step, model):
        if isinstance(model.layer, LRULayer):
            with torch.no_grad():
                return {"max_abs_lambda": float(model.layer.eigenvalues().abs().max())}
        return None

    rows = []
    for name, rung in LADDER:
        accs, max_lam, diverged, seconds = [], 0.0, False, 0.0
        for seed in seeds:
            model = ladder_model(rung, H, N, n_classes=8, vocab=16, seed=seed)
            result = train.train_classifier(
                model,
                train_data,
                test_data,
                steps=steps,
                lr=lr,
                seed=seed,
                progress=f"{name}, seed {seed}" if progress else False,
                on_step=track,
            )
            accs.append(0.0 if result.diverged else result.accuracy)
            diverged |= result.diverged
            seconds += result.seconds
            max_lam = max([max_lam, *result.extra.get("max_abs_lambda", [0.0])])
        rows.append(
            dict(
                rung=name,
                accuracy=float(np.mean(accs)),
                accuracies=[round(a, 4) for a in accs],
                max_abs_lambda=round(max_lam, 4) if max_lam else None,
                diverged=diverged,
                seconds=round(seconds, 1),
            )
        )
    return rows


def _main(argv=None) -> int:
    import argparse
    import json
    import platform
    import time

    parser = argparse.ArgumentParser(
        prog="python -m mamba_edu.lru",
        description="Run the LRU ablation ladder and save it as JSON.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("ladder")
    p.add_argument("--L", type=int, default=256)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", default="data/lru_ladder.json")
    args = parser.parse_args(argv)
    start = time.time()
    rows = run_ladder(args.L, steps=args.steps, seeds=tuple(args.seeds))
    from mamba_edu.bench import machine_summary

    record = dict(
        command=f"python -m mamba_edu.lru ladder --L {args.L} --steps {args.steps} --seeds "
        + " ".join(map(str, args.seeds)),
        task=f"recall_first_token, L = {args.L}, 8 classes, 8 distractor tokens",
        measured_on=machine_summary(),
        python=platform.python_version(),
        torch=torch.__version__,
        total_seconds=round(time.time() - start, 1),
        rows=rows,
    )
    with open(args.out, "w") as f:
        json.dump(record, f, indent=1, ensure_ascii=False)
        f.write("\n")
    for row in rows:
        print(f"{row['rung']:<28} {row['accuracy']:.3f}  {row['accuracies']}  {row['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
