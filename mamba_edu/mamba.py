"""The Mamba block and a small Mamba language model (lesson 07).

The block (Gu & Dao, 2023, Fig. 3), as the official ``mamba_ssm.modules.mamba_simple.Mamba``
computes it, for an input ``hidden`` of shape (batch, L, d_model):

    x, z  = in_proj(hidden)                        two streams of d_inner = expand · d_model
    x     = silu(causal depthwise conv1d(x))       kernel d_conv (4), one filter per channel, bias
    Δ_low, B, C = x_proj(x)                        sizes dt_rank, d_state, d_state
    Δ     = softplus(dt_proj.weight · Δ_low + dt_proj.bias)
    y     = selective_scan(x, Δ, A = −exp(A_log), B, C, D) · silu(z)     (lesson 06's S6, gated)
    out   = out_proj(y)

Generation runs the same block one token at a time with two fixed-size states per layer:
the last d_conv inputs of the convolution, (batch, d_inner, d_conv), and the SSM state h,
(batch, d_inner, d_state). Their size does not grow with the text: constant memory per token.

Three implementations, checked against one another and against the official code in
``tests/test_mamba.py``:

* :func:`block_forward_reference` / :func:`block_step_reference`: NumPy, float64, written to be
  read; the SSM part is :func:`mamba_edu.selective.selective_scan` (the course reference).
* :class:`Mamba`: the torch module, whose scan runs on the course's CPU kernel with autograd
  (:mod:`mamba_edu.kernels.selective_cpu`), or on a plain torch loop as a fallback.
* :class:`MambaLM`: embedding → n_layer × (RMSNorm → Mamba, residual) → RMSNorm → tied head.

Layouts: torch sequence modules (batch, L, d_model); the scan's arguments (batch, D, L), time
last, as in ``mamba_ssm``; states (batch, d_inner, d_conv) and (batch, d_inner, d_state).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mamba_edu import contract, selective

__all__ = [
    "MambaConfig",
    "Mamba",
    "MambaLM",
    "RMSNorm",
    "causal_conv1d_reference",
    "conv_step_reference",
    "block_forward_reference",
    "block_step_reference",
    "block_parameters",
    "sample_next_token",
    "generate_tokens",
]

BACKENDS = ("auto", "numba", "torch")


_check_int = contract.positive_int  # the course's one wording for sizes


def _check_positive(name, value):
    value = contract.real_scalar(name, value)
    if not value > 0 or not math.isfinite(value):
        raise ValueError(f"expected {name} > 0 and finite, got {value}")
    return value


# ----------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MambaConfig:
    """Sizes and initialization of a :class:`MambaLM` (names and defaults as ``mamba_ssm``'s).

    ``dt_rank=None`` means the official "auto": ceil(d_model / 16). The vocabulary is padded up
    to a multiple of ``pad_vocab_size_multiple`` for the embedding table (the official models do
    this for fast matmuls on GPUs); logits are returned for the ``vocab_size`` real tokens only.
    """

    vocab_size: int = 256
    d_model: int = 128
    n_layer: int = 4
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    dt_rank: int | None = None
    dt_min: float = 1e-3
    dt_max: float = 1e-1
    dt_init_floor: float = 1e-4
    dt_scale: float = 1.0
    conv_bias: bool = True
    bias: bool = False
    norm_epsilon: float = 1e-5
    pad_vocab_size_multiple: int = 8
    initializer_range: float = 0.02

    def __post_init__(self):
        for name in ("vocab_size", "d_model", "n_layer", "d_state", "d_conv", "expand"):
            _check_int(name, getattr(self, name))
        _check_int("pad_vocab_size_multiple", self.pad_vocab_size_multiple)
        if self.dt_rank is not None:
            _check_int("dt_rank", self.dt_rank)
        for name in ("dt_min", "dt_max", "dt_init_floor", "dt_scale", "norm_epsilon"):
            _check_positive(name, getattr(self, name))
        _check_positive("initializer_range", self.initializer_range)
        if self.dt_min > self.dt_max:
            raise ValueError(f"expected dt_min <= dt_max, got {self.dt_min} > {self.dt_max}")

    @property
    def d_inner(self) -> int:
        return self.expand * self.d_model

    @property
    def resolved_dt_rank(self) -> int:
        return math.ceil(self.d_model / 16) if self.dt_rank is None else self.dt_rank

    @property
    def padded_vocab_size(self) -> int:
        m = self.pad_vocab_size_multiple
        return -(-self.vocab_size // m) * m

    def block_kwargs(self) -> dict:
        """The arguments of :class:`Mamba` that this configuration sets."""
        return dict(
            d_state=self.d_state, d_conv=self.d_conv, expand=self.expand, dt_rank=self.dt_rank,
            dt_min=self.dt_min, dt_max=self.dt_max, dt_init_floor=self.dt_init_floor,
            dt_scale=self.dt_scale, conv_bias=self.conv_bias, bias=self.bias,
        )  # fmt: skip


# ----------------------------------------------------------------------------------------------
# NumPy reference (float64, one readable line per equation)
# ----------------------------------------------------------------------------------------------


def causal_conv1d_reference(x, weight, bias=None):
    """Causal depthwise convolution: channel d at time t sees x[d, t − d_conv + 1 … t] only.

    x: (batch, D, L), time last; weight: (D, d_conv); bias: (D,) or None. Returns (batch, D, L).
    Equivalent to padding d_conv − 1 zeros on the left and sliding each channel's own filter.
    """
    x = np.asarray(x, dtype=np.float64)
    weight = np.asarray(weight, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"expected x of shape (batch, D, L), got {x.shape}")
    if weight.ndim != 2 or weight.shape[0] != x.shape[1]:
        raise ValueError(
            f"expected weight of shape (D, d_conv) with D = {x.shape[1]}, got {weight.shape}"
        )
    d_conv = weight.shape[1]
    length = x.shape[2]
    padded = np.concatenate([np.zeros(x.shape[:2] + (d_conv - 1,)), x], axis=2)
    out = np.zeros_like(x)
    for k in range(d_conv):  # tap k multiplies the input k steps before the newest (tap d_conv−1)
        out += weight[None, :, k, None] * padded[:, :, k : k + length]
    if bias is not None:
        out += np.asarray(bias, dtype=np.float64)[None, :, None]
    return out


def conv_step_reference(conv_state, x, weight, bias=None):
    """One step of the causal convolution: roll the window left, write the newest input last.

    conv_state: (batch, D, d_conv), the last d_conv inputs, oldest first; x: (batch, D);
    weight: (D, d_conv); bias: (D,) or None. Returns (out (batch, D), new conv_state); the
    argument is not modified.
    """
    conv_state = np.asarray(conv_state, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    weight = np.asarray(weight, dtype=np.float64)
    if conv_state.ndim != 3:
        raise ValueError(f"expected conv_state of shape (batch, D, d_conv), got {conv_state.shape}")
    if x.shape != conv_state.shape[:2]:
        raise ValueError(f"expected x of shape (batch, D) = {conv_state.shape[:2]}, got {x.shape}")
    if weight.shape != conv_state.shape[1:]:
        raise ValueError(
            f"expected weight of shape (D, d_conv) = {conv_state.shape[1:]}, got {weight.shape}"
        )
    new_state = np.concatenate([conv_state[:, :, 1:], x[:, :, None]], axis=2)
    out = (new_state * weight[None]).sum(axis=2)
    if bias is not None:
        out = out + np.asarray(bias, dtype=np.float64)[None]
    return out, new_state


def block_parameters(module) -> dict:
    """The parameters of a :class:`Mamba` module as float64 NumPy arrays, keyed by name."""
    return {k: v.detach().cpu().to(torch.float64).numpy() for k, v in module.state_dict().items()}


def _split_params(params):
    required = ("in_proj.weight", "conv1d.weight", "x_proj.weight", "dt_proj.weight",
                "dt_proj.bias", "A_log", "D", "out_proj.weight")  # fmt: skip
    missing = [k for k in required if k not in params]
    if missing:
        raise KeyError(
            f"expected params with keys {required} (see block_parameters), missing {missing}"
        )
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    d_inner = p["D"].shape[0]
    d_state = p["A_log"].shape[1]
    dt_rank = p["dt_proj.weight"].shape[1]
    return p, d_inner, d_state, dt_rank


def _linear(x, params, name):
    out = x @ params[f"{name}.weight"].T
    bias = params.get(f"{name}.bias")
    return out if bias is None else out + bias


def block_forward_reference(hidden, params, return_states=False):
    """The Mamba block on a whole sequence, in NumPy float64.

    hidden: (batch, L, d_model); params: a dict as :func:`block_parameters` returns. Returns
    out (batch, L, d_model), and with ``return_states`` also (conv_state (batch, d_inner,
    d_conv), ssm_state (batch, d_inner, d_state)): what generation continues from.
    """
    p, d_inner, d_state, dt_rank = _split_params(params)
    hidden = np.asarray(hidden, dtype=np.float64)
    if hidden.ndim != 3 or hidden.shape[2] != p["in_proj.weight"].shape[1] or hidden.shape[1] == 0:
        raise ValueError(
            f"expected hidden of shape (batch, L >= 1, d_model = {p['in_proj.weight'].shape[1]}), "
            f"got {hidden.shape}"
        )
    xz = _linear(hidden, p, "in_proj")  # (batch, L, 2 d_inner)
    x, z = xz[..., :d_inner], xz[..., d_inner:]
    x, z = x.transpose(0, 2, 1), z.transpose(0, 2, 1)  # (batch, d_inner, L): the scan's layout
    weight = p["conv1d.weight"][:, 0, :]  # (d_inner, d_conv)
    d_conv = weight.shape[1]
    # the conv state is the last d_conv inputs, zeros in front when the prompt is shorter
    conv_state = np.concatenate([np.zeros(x.shape[:2] + (d_conv,)), x], axis=2)[:, :, -d_conv:]
    x = selective.silu(causal_conv1d_reference(x, weight, p.get("conv1d.bias")))
    x_dbl = x.transpose(0, 2, 1) @ p["x_proj.weight"].T  # (batch, L, dt_rank + 2 N)
    dt_low = x_dbl[..., :dt_rank]
    B = x_dbl[..., dt_rank : dt_rank + d_state].transpose(0, 2, 1)  # (batch, N, L)
    C = x_dbl[..., dt_rank + d_state :].transpose(0, 2, 1)
    delta = (dt_low @ p["dt_proj.weight"].T).transpose(0, 2, 1)  # (batch, d_inner, L), no bias
    A = -np.exp(p["A_log"])
    y, ssm_state = selective.selective_scan(
        x, delta, A, B, C, p["D"], z, p["dt_proj.bias"], delta_softplus=True,
        return_last_state=True,
    )  # fmt: skip
    out = _linear(y.transpose(0, 2, 1), p, "out_proj")
    return (out, (conv_state, ssm_state)) if return_states else out


def block_step_reference(hidden, conv_state, ssm_state, params):
    """The Mamba block on one token, in NumPy float64.

    hidden: (batch, d_model); conv_state: (batch, d_inner, d_conv); ssm_state: (batch, d_inner,
    d_state). Returns (out (batch, d_model), (new conv_state, new ssm_state)); the arguments are
    not modified. Running it token after token gives :func:`block_forward_reference`.
    """
    p, d_inner, d_state, dt_rank = _split_params(params)
    hidden = np.asarray(hidden, dtype=np.float64)
    if hidden.ndim != 2 or hidden.shape[1] != p["in_proj.weight"].shape[1]:
        raise ValueError(
            f"expected hidden of shape (batch, d_model = {p['in_proj.weight'].shape[1]}), "
            f"got {hidden.shape}"
        )
    xz = _linear(hidden, p, "in_proj")
    x, z = xz[:, :d_inner], xz[:, d_inner:]  # (batch, d_inner)
    x, conv_state = conv_step_reference(
        conv_state, x, p["conv1d.weight"][:, 0, :], p.get("conv1d.bias")
    )
    x = selective.silu(x)
    x_dbl = x @ p["x_proj.weight"].T
    dt_low, B, C = (
        x_dbl[:, :dt_rank],
        x_dbl[:, dt_rank : dt_rank + d_state],
        x_dbl[:, dt_rank + d_state :],
    )
    delta = dt_low @ p["dt_proj.weight"].T  # (batch, d_inner), bias added inside the step
    y, ssm_state = selective.selective_step(
        ssm_state, x, delta, -np.exp(p["A_log"]), B, C, p["D"], z, p["dt_proj.bias"], True
    )
    return _linear(y, p, "out_proj"), (conv_state, ssm_state)


# ----------------------------------------------------------------------------------------------
# PyTorch: the block
# ----------------------------------------------------------------------------------------------


class _SkinnyLinear(torch.autograd.Function):
    """F.linear(u, weight) without bias, for dt_proj (u: (..., dt_rank), weight: (d_inner,
    dt_rank)): the same numbers, but its backward computes the two narrow products transposed,
    ∂u = (weightᵀ · gᵀ)ᵀ and ∂weight = (uᵀ · g)ᵀ. Written as autograd writes them, g · weight and
    gᵀ · u, their results have only dt_rank columns, a shape for which the CPU BLAS here (MKL in
    torch's wheel) is slow: at (12·64 tokens, d_inner 256, rank 8) 324 and 377 µs, transposed 98
    and 76 µs (measured here, one thread)."""

    @staticmethod
    def forward(ctx, u, weight):
        ctx.save_for_backward(u, weight)
        return F.linear(u, weight)

    @staticmethod
    def backward(ctx, grad):
        u, weight = ctx.saved_tensors
        g = grad.reshape(-1, grad.shape[-1])
        du = (weight.t() @ g.t()).t().reshape(u.shape) if ctx.needs_input_grad[0] else None
        dw = (u.reshape(-1, u.shape[-1]).t() @ g).t() if ctx.needs_input_grad[1] else None
        return du, dw


def _scan(x, delta, A, B, C, D, z, delta_bias, backend):
    """The one call into the course's selective-scan kernel (layout (batch, D, L)): returns
    (y, last state). backend "numba" is the CPU kernel with its hand-written backward, "torch"
    a plain loop that autograd differentiates, "auto" the kernel when it applies."""
    from mamba_edu.kernels import selective_cpu  # numba compiles on first import: only when run

    return selective_cpu.selective_scan(
        x, delta, A, B, C, D, z, delta_bias, delta_softplus=True, return_last_state=True,
        backend=backend,
    )  # fmt: skip


class Mamba(nn.Module):
    """The Mamba block (mixer) on (batch, L, d_model), parameters named as ``mamba_ssm``'s.

    Official initialization: A_log = log(1, …, d_state) per channel (A = −(1, …, N)); D = 1;
    dt_proj.weight uniform in ±dt_scale · dt_rank^−½; dt_proj.bias = softplus⁻¹(Δ₀) with Δ₀
    log-uniform in [dt_min, dt_max] and floored at dt_init_floor, so that Δ starts in that range;
    the other layers keep PyTorch's default initialization. ``backend`` chooses the scan:
    "auto" (the numba kernel for CPU float32/float64, else torch), "numba" or "torch".
    """

    def __init__(
        self, d_model, d_state=16, d_conv=4, expand=2, dt_rank=None, dt_min=1e-3, dt_max=1e-1,
        dt_init_floor=1e-4, dt_scale=1.0, conv_bias=True, bias=False, backend="auto",
    ):  # fmt: skip
        super().__init__()
        self.d_model = _check_int("d_model", d_model)
        self.d_state = _check_int("d_state", d_state)
        self.d_conv = _check_int("d_conv", d_conv)
        self.expand = _check_int("expand", expand)
        if dt_rank in (None, "auto"):
            dt_rank = math.ceil(d_model / 16)
        self.dt_rank = _check_int("dt_rank", dt_rank)
        for name, value in [("dt_min", dt_min), ("dt_max", dt_max),
                            ("dt_init_floor", dt_init_floor), ("dt_scale", dt_scale)]:  # fmt: skip
            _check_positive(name, value)
        if dt_min > dt_max:
            raise ValueError(f"expected dt_min <= dt_max, got {dt_min} > {dt_max}")
        self.backend = backend
        self.d_inner = d_inner = self.expand * self.d_model

        self.in_proj = nn.Linear(d_model, 2 * d_inner, bias=bias)  # → x and z
        # depthwise (groups = channels); the causal left padding is done in forward
        self.conv1d = nn.Conv1d(d_inner, d_inner, d_conv, groups=d_inner, bias=conv_bias)
        self.x_proj = nn.Linear(d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, d_inner, bias=True)
        bound = self.dt_rank**-0.5 * dt_scale  # keeps Δ's variance independent of dt_rank
        nn.init.uniform_(self.dt_proj.weight, -bound, bound)
        dt = torch.exp(
            torch.rand(d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        ).clamp(min=dt_init_floor)
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # softplus⁻¹(dt)
        self.dt_proj.bias._no_reinit = True  # MambaLM's init must not zero it (as upstream)
        A = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(d_inner, 1)
        self.A_log = nn.Parameter(torch.log(A))  # (d_inner, N); A = −exp(A_log) stays negative
        self.D = nn.Parameter(torch.ones(d_inner))
        self.out_proj = nn.Linear(d_inner, d_model, bias=bias)

    @property
    def backend(self):
        return self._backend

    @backend.setter
    def backend(self, value):
        if value not in BACKENDS:
            raise ValueError(f"expected backend one of {BACKENDS}, got {value!r}")
        self._backend = value

    def _check_hidden(self, hidden, ndim, layout):
        if not isinstance(hidden, torch.Tensor):
            raise TypeError(f"expected hidden to be a torch.Tensor, got {type(hidden).__name__}")
        if not hidden.is_floating_point():
            raise TypeError(f"expected hidden to be a float tensor, got {hidden.dtype}")
        if hidden.dim() != ndim or hidden.shape[-1] != self.d_model or 0 in hidden.shape:
            raise ValueError(
                f"expected hidden of shape {layout} with d_model = {self.d_model} and no empty "
                f"axis, got {tuple(hidden.shape)}"
            )

    def forward(self, hidden, return_states=False):
        """hidden: (batch, L, d_model) → out (batch, L, d_model); with ``return_states`` also
        (conv_state (batch, d_inner, d_conv), ssm_state (batch, d_inner, d_state)), the states
        after the last token, from which :meth:`step` continues (prefill)."""
        self._check_hidden(hidden, 3, "(batch, L, d_model)")
        length = hidden.shape[1]
        # Everything stays in (batch, L, ·) memory, the layout of the linear layers. The scan
        # takes its (batch, D, L) arguments as transposed views of that memory (the kernel reads
        # them in place), so no tensor is copied to change layout; the gate silu(z) and its
        # backward run inside the kernel.
        x, z = self.in_proj(hidden).chunk(2, dim=-1)  # (batch, L, d_inner) each, views
        # F.pad with a negative amount crops: the last d_conv inputs, zero-padded if L < d_conv
        conv_state = F.pad(
            x[:, -self.d_conv :].transpose(1, 2), (self.d_conv - min(length, self.d_conv), 0)
        )
        x = self._conv_silu(x)  # (batch, L, d_inner), contiguous
        dt_low, B, C = self.x_proj(x).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        # Δ before its bias, which is added inside the scan (see _SkinnyLinear for why not F.linear)
        delta = _SkinnyLinear.apply(dt_low, self.dt_proj.weight)
        A = -torch.exp(self.A_log)
        y, ssm_state = _scan(
            x.transpose(1, 2), delta.transpose(1, 2), A, B.transpose(1, 2), C.transpose(1, 2),
            self.D, z.transpose(1, 2), self.dt_proj.bias, self.backend,
        )  # fmt: skip
        out = self.out_proj(y.transpose(1, 2))  # y is time-major in memory: no copy here
        return (out, (conv_state, ssm_state)) if return_states else out

    def _conv_silu(self, x):
        """SiLU(causal depthwise conv) of x (batch, L, d_inner): the course's numba kernel (one
        pass each way, :mod:`mamba_edu.kernels.conv_cpu`) when the backend says so
        (:func:`~mamba_edu.kernels.selective_cpu.use_numba`, the scan's rule); else the torch
        form below."""
        if self.backend != "torch":  # (no numba import for "torch")
            # numba compiles on first import: only when run (as in _scan)
            from mamba_edu.kernels import conv_cpu, selective_cpu

            if selective_cpu.use_numba(self.backend, (x, self.conv1d.weight, self.conv1d.bias)):
                return conv_cpu.causal_conv_silu(x, self.conv1d.weight[:, 0], self.conv1d.bias)
        return F.silu(self._causal_conv(x))

    def _causal_conv(self, x):
        """The causal depthwise convolution on x (batch, L, d_inner), in that layout: out_t =
        bias + Σ_k weight[:, k] · x_{t − d_conv + 1 + k}, zeros before the start. Written as
        d_conv shifted multiply-adds instead of nn.Conv1d, which wants (batch, d_inner, L) and
        so two transposed copies (forward and backward) per call."""
        length = x.shape[1]
        padded = F.pad(x, (0, 0, self.d_conv - 1, 0))  # (batch, L + d_conv − 1, d_inner)
        taps = self.conv1d.weight[:, 0].t()  # (d_conv, d_inner)
        out = padded[:, :length] * taps[0]
        if self.conv1d.bias is not None:
            out = out + self.conv1d.bias
        for k in range(1, self.d_conv):
            out = torch.addcmul(out, padded[:, k : k + length], taps[k])
        return out

    def initial_states(self, batch, dtype=None, device=None):
        """Zero states for a fresh sequence: (conv_state (batch, d_inner, d_conv),
        ssm_state (batch, d_inner, d_state))."""
        _check_int("batch", batch)
        dtype = self.out_proj.weight.dtype if dtype is None else dtype
        device = self.out_proj.weight.device if device is None else device
        return (
            torch.zeros(batch, self.d_inner, self.d_conv, dtype=dtype, device=device),
            torch.zeros(batch, self.d_inner, self.d_state, dtype=dtype, device=device),
        )

    def _step_kernel_applies(self, xz, conv_state, ssm_state):
        """Whether :meth:`step` may run its middle part as one numba call: when generating (no
        gradient wanted), on the CPU, in float32 or float64, unless the backend is "torch"."""
        if self.backend == "torch" or torch.is_grad_enabled():
            return False
        from mamba_edu.kernels import selective_cpu  # numba compiles on first import (as _scan)

        tensors = (xz, conv_state, ssm_state, self.A_log, self.x_proj.weight)
        return (
            selective_cpu.numba_applies(tensors)
            and conv_state.is_contiguous()
            and ssm_state.is_contiguous()
        )

    def _step_kernel(self, xz, conv_state, ssm_state):
        """The step between in_proj and out_proj — the conv window, SiLU, x_proj, Δ, the state
        update, the readout and the gate — in one call of the course's numba kernel (the same
        arithmetic as the torch lines below it; about fifteen small torch operations cost
        more in dispatch than in arithmetic at decoding's batch sizes)."""
        from mamba_edu.kernels import selective_cpu  # numba compiles on first import: only when run

        def arr(t):
            return None if t is None else t.detach().numpy()

        y, conv_state, ssm_state = selective_cpu.mamba_step(
            arr(xz), arr(conv_state), arr(ssm_state), arr(self.conv1d.weight[:, 0]),
            arr(self.conv1d.bias), arr(self.x_proj.weight), arr(self.dt_proj.weight),
            arr(self.dt_proj.bias), arr(self.A_log), arr(self.D), check=False,
        )  # fmt: skip
        return torch.from_numpy(y), torch.from_numpy(conv_state), torch.from_numpy(ssm_state)

    def step(self, hidden, conv_state, ssm_state):
        """One token: hidden (batch, 1, d_model) or (batch, d_model); conv_state (batch, d_inner,
        d_conv); ssm_state (batch, d_inner, d_state). Returns (out shaped like hidden,
        new conv_state, new ssm_state); the given states are not modified."""
        squeeze = hidden.dim() == 2 if isinstance(hidden, torch.Tensor) else False
        if squeeze:
            hidden = hidden[:, None]
        self._check_hidden(hidden, 3, "(batch, 1, d_model) or (batch, d_model)")
        if hidden.shape[1] != 1:
            raise ValueError(
                f"expected one token, hidden of shape (batch, 1, d_model), got {tuple(hidden.shape)}"
            )
        batch = hidden.shape[0]
        for name, state, size in [("conv_state", conv_state, self.d_conv),
                                  ("ssm_state", ssm_state, self.d_state)]:  # fmt: skip
            if not isinstance(state, torch.Tensor) or tuple(state.shape) != (
                batch,
                self.d_inner,
                size,
            ):
                got = (
                    tuple(state.shape) if isinstance(state, torch.Tensor) else type(state).__name__
                )
                raise ValueError(
                    f"expected {name} of shape (batch, d_inner, {size}) = "
                    f"{(batch, self.d_inner, size)}, got {got}"
                )
        xz = self.in_proj(hidden[:, 0])  # (batch, 2·d_inner): x then z
        if self._step_kernel_applies(xz, conv_state, ssm_state):
            y, conv_state, ssm_state = self._step_kernel(xz, conv_state, ssm_state)
            out = self.out_proj(y)
            return (out if squeeze else out[:, None]), conv_state, ssm_state
        x, z = xz.chunk(2, dim=-1)  # (batch, d_inner) each
        conv_state = torch.cat([conv_state[:, :, 1:], x[:, :, None]], dim=2)  # roll, newest last
        x = (conv_state * self.conv1d.weight[:, 0]).sum(dim=-1)
        if self.conv1d.bias is not None:
            x = x + self.conv1d.bias
        x = F.silu(x)
        dt_low, B, C = self.x_proj(x).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.softplus(F.linear(dt_low, self.dt_proj.weight) + self.dt_proj.bias)
        A = -torch.exp(self.A_log)
        dA = torch.exp(delta[:, :, None] * A)  # (batch, d_inner, N): zero-order hold for A
        ssm_state = dA * ssm_state + (delta * x)[:, :, None] * B[:, None, :]  # Euler for B
        y = torch.einsum("bdn,bn->bd", ssm_state, C) + self.D * x
        out = self.out_proj(y * F.silu(z))
        return (out if squeeze else out[:, None]), conv_state, ssm_state


# ----------------------------------------------------------------------------------------------
# PyTorch: the language model
# ----------------------------------------------------------------------------------------------


class RMSNorm(nn.Module):
    """x / √(mean(x²) + eps) · weight over the last axis (no mean subtraction, no bias).

    When a backward pass will follow (gradients enabled and wanted) and ``backend`` allows it
    ("auto" on CPU float32/float64 tensors, or "numba"), the course's numba kernels
    (:mod:`mamba_edu.kernels.norm_cpu`) run it, one pass each way; otherwise torch's
    ``F.rms_norm``, the same formula in one operation (five separate ones cost a decoding step
    more time in dispatch than in arithmetic), whose backward is about ten operations."""

    def __init__(self, d_model, eps=1e-5, backend="auto"):
        super().__init__()
        self.eps = _check_positive("eps", eps)
        self.weight = nn.Parameter(torch.ones(_check_int("d_model", d_model)))
        self.backend = backend

    backend = Mamba.backend  # the same property: one of BACKENDS, checked when set

    def forward(self, x):
        wants_grad = torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad)
        if wants_grad and self.backend != "torch":
            # numba compiles on first import: only when run (as in _scan)
            from mamba_edu.kernels import norm_cpu, selective_cpu

            if selective_cpu.use_numba(self.backend, (x, self.weight)):
                return norm_cpu.rms_norm(x, self.weight, self.eps)
        return F.rms_norm(x, self.weight.shape, self.weight, self.eps)


class _Layer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.norm = RMSNorm(config.d_model, config.norm_epsilon)
        self.mixer = Mamba(config.d_model, **config.block_kwargs())


def _check_tokens(tokens, vocab_size, name="tokens"):
    if not isinstance(tokens, torch.Tensor):
        raise TypeError(
            f"expected {name} to be a torch.Tensor of token ids, got {type(tokens).__name__}"
        )
    if tokens.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise TypeError(f"expected {name} of an integer dtype, got {tokens.dtype}")
    if tokens.numel() and (tokens.min() < 0 or tokens.max() >= vocab_size):
        raise ValueError(
            f"expected {name} in [0, {vocab_size}), got values in "
            f"[{int(tokens.min())}, {int(tokens.max())}]"
        )


def _as_prompt(prompt, vocab_size):
    """A prompt as a (batch, L) int64 tensor: from a 1-D or 2-D tensor, array or list of ints."""
    if not isinstance(prompt, torch.Tensor):
        array = np.asarray(prompt)
        if array.size == 0:
            raise ValueError(
                f"expected prompt of shape (L,) or (batch, L) with L >= 1, got {array.shape}"
            )
        if array.dtype.kind not in "iu":
            raise TypeError(f"expected prompt to hold integer token ids, got dtype {array.dtype}")
        prompt = torch.as_tensor(array, dtype=torch.int64)
    if prompt.dim() == 1:
        prompt = prompt[None]
    if prompt.dim() != 2 or prompt.shape[1] == 0 or prompt.shape[0] == 0:
        raise ValueError(
            f"expected prompt of shape (L,) or (batch, L) with L >= 1, got {tuple(prompt.shape)}"
        )
    _check_tokens(prompt, vocab_size, "prompt")
    return prompt.long()


def sample_next_token(logits, temperature=1.0, top_k=None, generator=None):
    """Draw one token per row from logits (batch, vocab) → (batch,) int64.

    temperature 0 takes the most likely token; otherwise softmax(logits / temperature),
    restricted to the ``top_k`` largest logits when given.
    """
    if isinstance(temperature, bool) or not isinstance(temperature, int | float):
        raise TypeError(f"expected temperature to be a number >= 0, got {temperature!r}")
    if not (temperature >= 0 and math.isfinite(temperature)):
        raise ValueError(f"expected temperature >= 0 and finite, got {temperature}")
    if top_k is not None:
        top_k = _check_int("top_k", top_k)
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits.double(), dim=-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


def generate_tokens(model, prompt, n, temperature=1.0, top_k=None, seed=None):
    """Sample n tokens after ``prompt`` ((L,) or (batch, L) ids) from any model with
    ``prefill(tokens) → (logits, state)`` and ``step(token, state) → (logits, state)`` (MambaLM,
    TransformerLM): the prompt runs in parallel, then one step per token. Returns (batch, L + n).
    """
    vocab_size = model.config.vocab_size
    prompt = _as_prompt(prompt, vocab_size)
    n = _check_int("n", n, minimum=0)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits, state = model.prefill(prompt)
            tokens = [prompt]
            for i in range(n):
                token = sample_next_token(logits, temperature, top_k, generator)
                tokens.append(token[:, None])
                if i + 1 < n:
                    logits, state = model.step(token, state)
    finally:
        model.train(was_training)
    return torch.cat(tokens, dim=1)


class MambaLM(nn.Module):
    """A Mamba language model: embedding → n_layer × (x + Mamba(RMSNorm(x))) → RMSNorm → head.

    The head is tied to the embedding (logits = h · Eᵀ). Initialization as ``mamba_ssm``'s
    ``_init_weights`` (one residual branch per layer): embedding N(0, initializer_range²);
    Linear biases zero except dt_proj's; each out_proj.weight redrawn kaiming-uniform (a = √5)
    and divided by √n_layer, so the residual stream's variance does not grow with depth.
    """

    def __init__(self, config: MambaConfig):
        super().__init__()
        if not isinstance(config, MambaConfig):
            raise TypeError(f"expected config to be a MambaConfig, got {type(config).__name__}")
        self.config = config
        self.embedding = nn.Embedding(config.padded_vocab_size, config.d_model)
        self.layers = nn.ModuleList(_Layer(config) for _ in range(config.n_layer))
        self.norm_f = RMSNorm(config.d_model, config.norm_epsilon)
        self._init_weights()

    def _init_weights(self):
        for module in self.modules():
            if isinstance(module, nn.Linear) and module.bias is not None:
                if not getattr(module.bias, "_no_reinit", False):
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=self.config.initializer_range)
        for layer in self.layers:
            weight = layer.mixer.out_proj.weight
            nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
            with torch.no_grad():
                weight /= math.sqrt(self.config.n_layer)

    def set_backend(self, backend):
        """Choose every block's kernels (scan, conv) and every RMSNorm's: "auto", "numba" or
        "torch"."""
        for layer in self.layers:
            layer.mixer.backend = backend
            layer.norm.backend = backend
        self.norm_f.backend = backend
        return self

    def _logits(self, h):
        h = self.norm_f(h)
        return F.linear(h, self.embedding.weight[: self.config.vocab_size])  # tied head

    def forward(self, tokens, return_states=False):
        """tokens: (batch, L) int64 → logits (batch, L, vocab_size); with ``return_states`` also
        the list of per-layer (conv_state, ssm_state) after the last token."""
        _check_tokens(tokens, self.config.vocab_size)
        if tokens.dim() != 2 or 0 in tokens.shape:
            raise ValueError(
                f"expected tokens of shape (batch, L) with L >= 1, got {tuple(tokens.shape)}"
            )
        h = self.embedding(tokens)
        states = []
        for layer in self.layers:
            out, state = layer.mixer(layer.norm(h), return_states=True)
            h = h + out
            states.append(state)
        logits = self._logits(h)
        return (logits, states) if return_states else logits

    def prefill(self, tokens):
        """Run the prompt (batch, L) in parallel: (logits of its last token (batch, vocab_size),
        per-layer states)."""
        logits, states = self.forward(tokens, return_states=True)
        return logits[:, -1], states

    def step(self, token, states):
        """One token (batch,) and the per-layer states → (logits (batch, vocab_size), new states).
        The states are n_layer pairs of fixed size: memory does not grow with the text."""
        _check_tokens(token, self.config.vocab_size, "token")
        if token.dim() != 1:
            raise ValueError(f"expected token of shape (batch,), got {tuple(token.shape)}")
        if not isinstance(states, list | tuple) or len(states) != len(self.layers):
            raise ValueError(
                f"expected states: a list of {len(self.layers)} (conv_state, ssm_state) pairs"
            )
        h = self.embedding(token)[:, None]  # (batch, 1, d_model)
        new_states = []
        for layer, (conv_state, ssm_state) in zip(self.layers, states, strict=True):
            out, conv_state, ssm_state = layer.mixer.step(layer.norm(h), conv_state, ssm_state)
            h = h + out
            new_states.append((conv_state, ssm_state))
        return self._logits(h[:, 0]), new_states

    def initial_states(self, batch):
        """Zero per-layer states, to decode from an empty context."""
        return [layer.mixer.initial_states(batch) for layer in self.layers]

    def generate(self, prompt, n, temperature=1.0, top_k=None, seed=None):
        """Continue ``prompt`` ((L,) or (batch, L) token ids) by ``n`` sampled tokens; returns
        (batch, L + n) int64. The prompt runs in parallel, then one :meth:`step` per token."""
        return generate_tokens(self, prompt, n, temperature, top_k, seed)

    def num_parameters(self) -> int:
        """Parameters counted once (the tied head shares the embedding)."""
        return sum(p.numel() for p in self.parameters())
