"""Attention, the baseline every recurrence in the course is measured against.

Causal softmax attention (Vaswani et al., 2017): each position t mixes the values of positions
0..t with weights softmax(q_t · k_s / √d). Every position looks at every earlier one, so the work
grows as L², against L for a recurrence.

:class:`TransformerLM` is lesson 07's baseline: a pre-norm causal decoder (GPT-2's layout) with a
tied head and a KV cache for generation, sized by :func:`matched_transformer` to the parameter
count of a given :class:`mamba_edu.mamba.MambaLM`. Layouts: tokens (batch, L); the KV cache
holds per layer keys and values of shape (batch, n_head, positions so far, head size) — it grows
by one position per generated token, where Mamba's state does not grow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mamba_edu.contract import positive_int as _check_int
from mamba_edu.mamba import MambaLM, _check_tokens, generate_tokens

__all__ = [
    "causal_attention",
    "TransformerConfig",
    "TransformerLM",
    "transformer_parameter_count",
    "matched_transformer",
]

POSITIONS = ("learned", "sinusoidal")


def causal_attention(q, k, v) -> np.ndarray:
    """Causal single-head softmax attention.

    q, k, v: arrays of shape (L, d) (query, key, value for each of L positions).
    Returns (L, d): row t is Σ_{s ≤ t} softmax_s(q_t·k_s/√d) v_s.
    """
    q, k, v = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    if q.ndim != 2 or k.shape != q.shape or v.shape[0] != q.shape[0] or v.ndim != 2:
        raise ValueError(
            f"expected q and k of shape (L, d) and v of shape (L, d_v), got q {q.shape}, "
            f"k {k.shape}, v {v.shape}"
        )
    L, d = q.shape
    scores = q @ k.T / np.sqrt(d)  # (L, L)
    future = np.triu(np.ones((L, L), dtype=bool), k=1)
    scores[future] = -np.inf  # position t may not look ahead
    scores -= scores.max(axis=1, keepdims=True)  # keeps exp from overflowing; softmax is unchanged
    weights = np.exp(scores)
    weights /= weights.sum(axis=1, keepdims=True)
    return weights @ v


# ----------------------------------------------------------------------------------------------
# PyTorch: the Transformer baseline of lesson 07
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransformerConfig:
    """A pre-norm causal decoder: ``n_layer`` × (x + Attn(LN(x)), x + MLP(LN(x))), LN, tied head.

    ``positions``: "learned" (a table of ``max_len`` vectors) or "sinusoidal" (fixed, no
    parameters); either way at most ``max_len`` positions. The MLP is d_model → mlp_ratio·d_model
    → d_model with GELU.
    """

    vocab_size: int = 256
    d_model: int = 128
    n_layer: int = 4
    n_head: int = 4
    max_len: int = 1024
    positions: str = "learned"
    mlp_ratio: int = 4
    initializer_range: float = 0.02

    def __post_init__(self):
        for name in ("vocab_size", "d_model", "n_layer", "n_head", "max_len", "mlp_ratio"):
            _check_int(name, getattr(self, name))
        if self.d_model % self.n_head:
            raise ValueError(
                f"expected d_model divisible by n_head, got d_model {self.d_model}, "
                f"n_head {self.n_head}"
            )
        if self.positions not in POSITIONS:
            raise ValueError(f"expected positions one of {POSITIONS}, got {self.positions!r}")


def transformer_parameter_count(config: TransformerConfig) -> int:
    """Parameters of :class:`TransformerLM` by formula: V·d (+ max_len·d if learned) + per layer
    (4d² + 4d attention, 2·r·d² + (r + 1)·d MLP, 4d two LayerNorms) + 2d final LayerNorm."""
    d, r = config.d_model, config.mlp_ratio
    per_layer = (4 * d * d + 4 * d) + (2 * r * d * d + (r + 1) * d) + 4 * d
    positions = config.max_len * d if config.positions == "learned" else 0
    return config.vocab_size * d + positions + config.n_layer * per_layer + 2 * d


def _sinusoids(length, d_model):
    """Vaswani et al.'s fixed positions: sin/cos of position / 10000^(2i/d), (length, d_model)."""
    position = torch.arange(length, dtype=torch.float64)[:, None]
    freq = torch.exp(
        -math.log(10000.0) * torch.arange(0, d_model, 2, dtype=torch.float64) / d_model
    )
    table = torch.zeros(length, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq[: d_model // 2])
    return table.float()


class _DecoderLayer(nn.Module):
    def __init__(self, config):
        super().__init__()
        d = config.d_model
        self.n_head = config.n_head
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc = nn.Linear(d, config.mlp_ratio * d)
        self.fc_out = nn.Linear(config.mlp_ratio * d, d)

    def _heads(self, t):  # (batch, L, d) → (batch, n_head, L, head size)
        return t.unflatten(-1, (self.n_head, -1)).transpose(1, 2)

    def forward(self, h, cache=None):
        """h: (batch, L, d_model). Without a cache: causal attention over the L positions. With a
        cache (k, v) of earlier positions: the L new positions attend to those and to each other
        causally. Returns (h, (k, v) including the new positions)."""
        q, k, v = (self._heads(t) for t in self.qkv(self.ln1(h)).chunk(3, dim=-1))
        if cache is not None:
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        if cache is None or h.shape[1] > 1:
            past = k.shape[2] - q.shape[2]
            allowed = torch.ones(q.shape[2], k.shape[2], dtype=torch.bool, device=h.device).tril(
                past
            )
            attn = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        else:  # one new token may look at every cached position: no mask needed
            attn = F.scaled_dot_product_attention(q, k, v)
        h = h + self.proj(attn.transpose(1, 2).flatten(-2))
        h = h + self.fc_out(F.gelu(self.fc(self.ln2(h))))
        return h, (k, v)


class TransformerLM(nn.Module):
    """The baseline language model (see :class:`TransformerConfig`). GPT-2's initialization:
    weights N(0, 0.02²), biases 0, the two projections into the residual stream of each layer
    divided by √(2·n_layer)."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        if not isinstance(config, TransformerConfig):
            raise TypeError(
                f"expected config to be a TransformerConfig, got {type(config).__name__}"
            )
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.d_model)
        if config.positions == "learned":
            self.position = nn.Parameter(torch.zeros(config.max_len, config.d_model))
        else:
            self.register_buffer(
                "position", _sinusoids(config.max_len, config.d_model), persistent=False
            )
        self.layers = nn.ModuleList(_DecoderLayer(config) for _ in range(config.n_layer))
        self.norm_f = nn.LayerNorm(config.d_model)
        std = config.initializer_range
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=std)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=std)
        if config.positions == "learned":
            nn.init.normal_(self.position, std=std)
        for layer in self.layers:  # two residual branches per layer
            for linear in (layer.proj, layer.fc_out):
                nn.init.normal_(linear.weight, std=std / math.sqrt(2 * config.n_layer))

    def _run(self, tokens, cache, start):
        _check_tokens(tokens, self.config.vocab_size)
        if tokens.dim() != 2 or 0 in tokens.shape:
            raise ValueError(
                f"expected tokens of shape (batch, L) with L >= 1, got {tuple(tokens.shape)}"
            )
        end = start + tokens.shape[1]
        if end > self.config.max_len:
            raise ValueError(
                f"expected at most max_len = {self.config.max_len} positions, got {end}"
            )
        h = self.embedding(tokens) + self.position[start:end].to(self.embedding.weight.dtype)
        new_cache = []
        for i, layer in enumerate(self.layers):
            h, kv = layer(h, None if cache is None else cache[i])
            new_cache.append(kv)
        logits = F.linear(self.norm_f(h), self.embedding.weight)  # tied head
        return logits, new_cache

    def forward(self, tokens):
        """tokens (batch, L) → logits (batch, L, vocab_size)."""
        return self._run(tokens, None, 0)[0]

    def prefill(self, tokens):
        """The prompt (batch, L) in parallel → (logits of its last token (batch, vocab_size),
        cache). The cache is {"length": L, "layers": [(k, v) of shape (batch, n_head, L, head)]}."""
        logits, layers = self._run(tokens, None, 0)
        return logits[:, -1], {"length": tokens.shape[1], "layers": layers}

    def step(self, token, cache):
        """One token (batch,) and the cache → (logits (batch, vocab_size), the cache one position
        longer). Memory grows with every token: 2 · n_layer · d_model numbers per position."""
        if not isinstance(cache, dict) or "layers" not in cache:
            raise TypeError("expected cache: the dict returned by prefill() or step()")
        if not isinstance(token, torch.Tensor) or token.dim() != 1:
            raise ValueError("expected token: a tensor of shape (batch,)")
        logits, layers = self._run(token[:, None], cache["layers"], cache["length"])
        return logits[:, 0], {"length": cache["length"] + 1, "layers": layers}

    def generate(self, prompt, n, temperature=1.0, top_k=None, seed=None):
        """As :meth:`mamba_edu.mamba.MambaLM.generate`: (batch, L + n) token ids, the prompt run
        in parallel, then one cached :meth:`step` per token."""
        return generate_tokens(self, prompt, n, temperature, top_k, seed)

    def num_parameters(self) -> int:
        """Parameters counted once (the tied head shares the embedding)."""
        return sum(p.numel() for p in self.parameters())


def matched_transformer(
    mamba, n_layer=None, n_head=4, max_len=1024, positions="learned", tolerance=0.05
) -> TransformerLM:
    """A :class:`TransformerLM` whose parameter count is within ``tolerance`` (±5%) of ``mamba``'s
    (a :class:`MambaLM`): same vocabulary and number of layers (unless ``n_layer`` is given), the
    width (a multiple of ``n_head``) whose count comes closest. Raises ValueError if none does."""
    if not isinstance(mamba, MambaLM):
        raise TypeError(f"expected mamba to be a MambaLM, got {type(mamba).__name__}")
    n_layer = mamba.config.n_layer if n_layer is None else _check_int("n_layer", n_layer)
    n_head = _check_int("n_head", n_head)
    if not 0 < tolerance < 1:
        raise ValueError(f"expected 0 < tolerance < 1, got {tolerance}")
    target = mamba.num_parameters()

    def config(d):
        return TransformerConfig(
            vocab_size=mamba.config.vocab_size, d_model=d, n_layer=n_layer, n_head=n_head,
            max_len=max_len, positions=positions,
        )  # fmt: skip

    best, d = None, n_head
    while True:  # the count grows with d: stop once past the target
        count = transformer_parameter_count(config(d))
        if best is None or abs(count - target) < abs(best[1] - target):
            best = (d, count)
        if count > target:
            break
        d += n_head
    if abs(best[1] - target) > tolerance * target:
        raise ValueError(
            f"no width gives a Transformer within {tolerance:.0%} of {target} parameters with "
            f"n_layer {n_layer}, n_head {n_head}, max_len {max_len} (closest: d_model {best[0]}, "
            f"{best[1]}); try another n_layer or n_head"
        )
    return TransformerLM(config(best[0]))
