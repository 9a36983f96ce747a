"""The vanilla recurrent network (Elman, 1990) and backpropagation through time, by hand (lesson 01).

One step of the network applies the same small network to the new input and the previous state:

    a_t = W h_{t−1} + U x_t + b,      h_t = φ(a_t),      y_t = V h_t + c

with φ one of ``tanh``, ``relu`` or ``identity``. Glossary (code name → symbol, shape):

    x  → x_t, inputs           (L, D)      W → recurrent weights  (N, N)
    h  → h_t, states           (L, N)      U → input weights      (N, D)
    y  → y_t, outputs          (L, P)      b → bias               (N,)
    dh → ∂ℓ/∂h_t, direct part  (L, N)      V, c → readout         (P, N), (P,)

Training needs ∂ℓ/∂θ for every parameter θ. Backpropagation through time (BPTT; Werbos, 1990) runs
the recurrence backwards: the gradient reaching h_t is what the loss says about h_t directly plus
what flows back from h_{t+1}. The same backward chain multiplies the Jacobians
∂h_{t+1}/∂h_t = diag(φ'(a_{t+1})) W, so the influence of h_t on h_T, ‖∂h_T/∂h_t‖, behaves like
ρ(W)^{T−t}: it vanishes or explodes geometrically (Bengio, Simard & Frasconi, 1994; Pascanu,
Mikolov & Bengio, 2013). This module computes those norms too.

Everything is NumPy in float64; loops over time are written out because the loop is the idea.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mamba_edu.contract import float_array

__all__ = [
    "NONLINEARITIES",
    "activate",
    "activation_derivative",
    "spectral_radius",
    "random_recurrent_matrix",
    "init_rnn",
    "rnn_forward",
    "rnn_backward",
    "rnn_loss",
    "bptt",
    "BPTTResult",
    "state_jacobians",
    "jacobian_norms",
    "decay_rate",
]

NONLINEARITIES = ("tanh", "relu", "identity")


def _nonlinearity(name: str) -> str:
    if name not in NONLINEARITIES:
        raise ValueError(f"expected nonlinearity one of {NONLINEARITIES}, got {name!r}")
    return name


def activate(a, nonlinearity: str = "tanh") -> np.ndarray:
    """φ(a) for φ in ``tanh``, ``relu``, ``identity``."""
    name = _nonlinearity(nonlinearity)
    a = np.asarray(a, dtype=np.float64)
    if name == "tanh":
        return np.tanh(a)
    if name == "relu":
        return np.maximum(a, 0.0)
    return a.copy()


def activation_derivative(h, nonlinearity: str = "tanh") -> np.ndarray:
    """φ'(a) written with the *output* h = φ(a), which is what the forward pass keeps.

    tanh' = 1 − h²; relu' = 1 where h > 0 else 0 (the subgradient 0 at a = 0, as in PyTorch);
    identity' = 1.
    """
    name = _nonlinearity(nonlinearity)
    h = np.asarray(h, dtype=np.float64)
    if name == "tanh":
        return 1.0 - h**2
    if name == "relu":
        return (h > 0).astype(np.float64)
    return np.ones_like(h)


# ----------------------------------------------------------------------------------------------
# Shapes and parameters
# ----------------------------------------------------------------------------------------------


def _float_array(name: str, value, ndim: int, shape_text: str) -> np.ndarray:
    """``value`` as a float64 array of ``ndim`` dimensions (integers converted; bool, complex,
    object and string arrays refused by the shared contract, naming the argument)."""
    arr = float_array(name, value, np.float64, integers=True)
    if arr.ndim != ndim:
        raise ValueError(f"expected {name} of shape {shape_text}, got shape {arr.shape}")
    return arr.astype(np.float64, copy=False)


def _square(name: str, W) -> np.ndarray:
    W = _float_array(name, W, 2, "(N, N)")
    if W.shape[0] != W.shape[1]:
        raise ValueError(f"expected {name} of shape (N, N) (square), got shape {W.shape}")
    return W


def spectral_radius(W) -> float:
    """ρ(W) = max |eigenvalue|: the factor by which W^k grows or shrinks per step, for large k."""
    W = np.asarray(W)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"expected a square matrix (N, N), got shape {W.shape}")
    return float(np.max(np.abs(np.linalg.eigvals(W))))


def random_recurrent_matrix(N: int, radius: float, seed: int = 0) -> np.ndarray:
    """A random Gaussian (N, N) matrix rescaled to have spectral radius exactly ``radius``."""
    if N < 1:
        raise ValueError(f"expected N >= 1, got {N}")
    if radius < 0:
        raise ValueError(f"expected radius >= 0, got {radius}")
    W = np.random.default_rng(seed).standard_normal((N, N)) / np.sqrt(N)
    return W * (radius / spectral_radius(W))


def init_rnn(
    D: int, N: int, P: int, *, radius: float = 0.9, seed: int = 0
) -> dict[str, np.ndarray]:
    """Parameters ``{"W", "U", "b", "V", "c"}`` of an RNN with D inputs, N states and P outputs.

    W is Gaussian with spectral radius ``radius``; U and V have entries N(0, 1/fan_in); b, c = 0.
    """
    rng = np.random.default_rng(seed)
    return {
        "W": random_recurrent_matrix(N, radius, seed=seed + 1),
        "U": rng.standard_normal((N, D)) / np.sqrt(D),
        "b": np.zeros(N),
        "V": rng.standard_normal((P, N)) / np.sqrt(N),
        "c": np.zeros(P),
    }


# ----------------------------------------------------------------------------------------------
# Forward and backward
# ----------------------------------------------------------------------------------------------


def rnn_forward(x, W, U, b, nonlinearity: str = "tanh", h0=None) -> np.ndarray:
    """States h_t = φ(W h_{t−1} + U x_t + b) for t = 0..L−1, starting from h_{−1} = ``h0`` (zero).

    x: (L, D), or (batch, L, D) for a batch of sequences run side by side. W: (N, N), U: (N, D),
    b: (N,), h0: (N,) or (batch, N). Returns h of shape (L, N) (or (batch, L, N)), float64.
    """
    _nonlinearity(nonlinearity)
    x = np.asarray(x)
    if x.ndim not in (2, 3):
        raise ValueError(f"expected x of shape (L, D) or (batch, L, D), got shape {x.shape}")
    x = _float_array("x", x, x.ndim, "(L, D)")
    W = _square("W", W)
    N = W.shape[0]
    D = x.shape[-1]
    U = _float_array("U", U, 2, f"(N, D) = ({N}, {D})")
    if U.shape != (N, D):
        raise ValueError(f"expected U of shape (N, D) = ({N}, {D}), got {U.shape}")
    b = _float_array("b", b, 1, f"(N,) = ({N},)")
    if b.shape != (N,):
        raise ValueError(f"expected b of shape (N,) = ({N},), got {b.shape}")
    batch = x.shape[:-2]
    state = np.zeros(batch + (N,))
    if h0 is not None:
        h0 = np.asarray(h0, dtype=np.float64)
        if h0.shape != state.shape:
            raise ValueError(f"expected h0 of shape {state.shape}, got {h0.shape}")
        state = state + h0
    L = x.shape[-2]
    h = np.empty(batch + (L, N))
    for t in range(L):  # the loop is the idea: step t needs h_{t-1}
        state = activate(state @ W.T + x[..., t, :] @ U.T + b, nonlinearity)
        h[..., t, :] = state
    return h


def _check_sequence_pair(x, h, W):
    x = _float_array("x", x, 2, "(L, D)")
    W = _square("W", W)
    N = W.shape[0]
    h = _float_array("h", h, 2, f"(L, N) = ({x.shape[0]}, {N})")
    if h.shape != (x.shape[0], N):
        raise ValueError(f"expected h of shape (L, N) = ({x.shape[0]}, {N}), got {h.shape}")
    return x, h, W


def rnn_backward(x, h, dh, W, nonlinearity: str = "tanh", h0=None) -> dict[str, np.ndarray]:
    """Backpropagation through time for the recurrent part of the network.

    x: inputs (L, D); h: the states from :func:`rnn_forward` (L, N); dh: ∂ℓ/∂h_t (L, N), the part
    of the loss's gradient that reaches h_t *directly* (from y_t), not through later states.
    Returns ``{"W": ∂ℓ/∂W (N, N), "U": ∂ℓ/∂U (N, D), "b": ∂ℓ/∂b (N,), "h0": ∂ℓ/∂h_{−1} (N,)}``.

    Going backwards, g = ∂ℓ/∂h_t collects dh_t and W^T δ_{t+1}; δ_t = g ⊙ φ'(a_t) is ∂ℓ/∂a_t;
    each δ_t contributes δ_t h_{t−1}^T to ∂ℓ/∂W, δ_t x_t^T to ∂ℓ/∂U and δ_t to ∂ℓ/∂b.
    """
    x, h, W = _check_sequence_pair(x, h, W)
    dh = _float_array("dh", dh, 2, f"(L, N) = {h.shape}")
    if dh.shape != h.shape:
        raise ValueError(f"expected dh of shape (L, N) = {h.shape}, got {dh.shape}")
    L, N = h.shape
    prev = np.zeros((L, N))  # h_{t-1} for every t
    if h0 is not None:
        prev[0] = np.asarray(h0, dtype=np.float64)
    prev[1:] = h[:-1]
    slope = activation_derivative(h, nonlinearity)  # φ'(a_t), (L, N)
    dW = np.zeros((N, N))
    dU = np.zeros((N, x.shape[1]))
    db = np.zeros(N)
    from_later = np.zeros(N)  # W^T δ_{t+1}: what h_t receives through h_{t+1}
    for t in reversed(range(L)):
        delta = (dh[t] + from_later) * slope[t]  # ∂ℓ/∂a_t
        dW += np.outer(delta, prev[t])
        dU += np.outer(delta, x[t])
        db += delta
        from_later = W.T @ delta
    return {"W": dW, "U": dU, "b": db, "h0": from_later}


def rnn_loss(params: dict, x, target, nonlinearity: str = "tanh", h0=None):
    """ℓ = ½ Σ_t ‖V h_t + c − target_t‖². Returns (ℓ, h (L, N), y (L, P))."""
    h = rnn_forward(x, params["W"], params["U"], params["b"], nonlinearity, h0)
    if h.ndim != 2:
        raise ValueError(f"expected x of shape (L, D) (one sequence), got {np.shape(x)}")
    V = _float_array("V", params["V"], 2, "(P, N)")
    y = h @ V.T + params["c"]
    target = _float_array("target", target, 2, f"(L, P) = {y.shape}")
    if target.shape != y.shape:
        raise ValueError(f"expected target of shape (L, P) = {y.shape}, got {target.shape}")
    return 0.5 * float(np.sum((y - target) ** 2)), h, y


@dataclass
class BPTTResult:
    """What :func:`bptt` returns: the loss, every parameter's gradient, and ‖∂h_T/∂h_t‖ per step."""

    loss: float
    grads: dict[str, np.ndarray]  # keys W, U, b, V, c, h0: same shapes as the parameters
    jacobian_norms: np.ndarray  # (L,): entry t is ‖∂h_{L−1}/∂h_t‖₂
    h: np.ndarray  # (L, N)
    y: np.ndarray  # (L, P)


def bptt(params: dict, x, target, nonlinearity: str = "tanh", h0=None) -> BPTTResult:
    """Loss, gradients of every parameter, and per-step Jacobian norms of an RNN with a readout.

    ``params`` holds W (N, N), U (N, D), b (N,), V (P, N), c (P,) (see :func:`init_rnn`);
    x (L, D); target (L, P); ℓ = ½ Σ_t ‖V h_t + c − target_t‖².
    """
    loss, h, y = rnn_loss(params, x, target, nonlinearity, h0)
    err = y - np.asarray(target, dtype=np.float64)  # ∂ℓ/∂y_t, (L, P)
    V = np.asarray(params["V"], dtype=np.float64)
    grads = rnn_backward(x, h, err @ V, params["W"], nonlinearity, h0)
    grads["V"] = err.T @ h
    grads["c"] = err.sum(axis=0)
    norms = jacobian_norms(h, params["W"], nonlinearity)
    return BPTTResult(loss, grads, norms, h, y)


# ----------------------------------------------------------------------------------------------
# How far back does a gradient reach?
# ----------------------------------------------------------------------------------------------


def state_jacobians(h, W, nonlinearity: str = "tanh") -> np.ndarray:
    """J with J[t] = ∂h_T/∂h_t (T = L − 1) for t = 0..T, shape (L, N, N).

    J[T] = I, and J[t] = J[t+1] · diag(φ'(a_{t+1})) · W: the chain rule, one step at a time.
    """
    W = _square("W", W)
    N = W.shape[0]
    h = _float_array("h", h, 2, f"(L, N) with N = {N}")
    if h.shape[1] != N:
        raise ValueError(f"expected h of shape (L, N) with N = {N}, got {h.shape}")
    slope = activation_derivative(h, nonlinearity)
    L = h.shape[0]
    J = np.empty((L, N, N))
    J[L - 1] = np.eye(N)
    for t in reversed(range(L - 1)):
        J[t] = (J[t + 1] * slope[t + 1]) @ W  # J · diag(φ') scales the columns
    return J


def jacobian_norms(h, W, nonlinearity: str = "tanh") -> np.ndarray:
    """‖∂h_T/∂h_t‖₂ (largest singular value) for t = 0..T, shape (L,). Entry T is 1."""
    J = state_jacobians(h, W, nonlinearity)
    return np.linalg.norm(J, ord=2, axis=(1, 2))


def decay_rate(norms, start: int | None = None) -> float:
    """Fitted slope of log ‖∂h_T/∂h_t‖ against the distance k = T − t, per step.

    ``norms`` is the output of :func:`jacobian_norms` (entry t is distance T − t). The fit uses
    distances from ``start`` (default: a quarter of the length, past the transient) to the end and
    skips exact zeros (a ReLU network can cut a path completely). Theory for a linear network:
    log ρ(W), since ‖W^k‖^{1/k} → ρ(W) (Gelfand's formula).
    """
    norms = np.asarray(norms, dtype=np.float64)
    if norms.ndim != 1 or norms.size < 3:
        raise ValueError(f"expected norms of shape (L,) with L >= 3, got shape {norms.shape}")
    by_distance = norms[::-1]
    k = np.arange(by_distance.size)
    start = by_distance.size // 4 if start is None else start
    keep = (k >= start) & (by_distance > 0) & np.isfinite(by_distance)
    if keep.sum() < 2:
        raise ValueError("fewer than two positive norms to fit a decay rate to")
    slope, _ = np.polyfit(k[keep], np.log(by_distance[keep]), 1)
    return float(slope)
