"""Lesson 07 — the Mamba block: ``causal_depthwise_conv``, ``conv_step``, ``mamba_block``,
``mamba_step``.

The lesson's exercises work on one sequence (no batch axis), in the layout of the course's
single-sequence references: inputs (L, D), time first. The references are the package's batched
NumPy functions in :mod:`mamba_edu.mamba`, called on a batch of one.
"""

from __future__ import annotations

import math

import numpy as np

from .exercise import Case, Exercise, declare, make_check, random_cases, rng

# the keys of a block's parameters, as mamba_edu.mamba.block_parameters (and mamba_ssm) name them
PARAM_KEYS = ("in_proj.weight", "conv1d.weight", "conv1d.bias", "x_proj.weight",
              "dt_proj.weight", "dt_proj.bias", "A_log", "D", "out_proj.weight")  # fmt: skip


def _mamba():
    from mamba_edu import mamba  # imports torch: loaded only when a lesson-07 check runs

    return mamba


# ----------------------------------------------------------------------------------------------
# exercise 1: the causal depthwise convolution and its one-step form
# ----------------------------------------------------------------------------------------------


def _conv_reference(x, weight, bias):
    # (L, D) in the lesson is (batch = 1, D, L) for the package's reference
    return _mamba().causal_conv1d_reference(x.T[None], weight, bias)[0].T


def _conv_cases() -> list[Case]:
    def make(gen, shape):
        L, D, d_conv = shape
        return (
            gen.standard_normal((L, D)),
            gen.standard_normal((D, d_conv)),
            gen.standard_normal(D),
        )

    gen = rng(71)
    impulse = np.zeros((9, 2))
    impulse[3] = 1.0  # one input at t = 3: the output must show the filter, reversed in time
    return random_cases(make, [(12, 3, 4), (30, 8, 4), (5, 2, 2)], seed=70) + [
        Case("shorter than the filter (L = 2 < d_conv = 4)", make(gen, (2, 3, 4))),
        Case("an impulse at t = 3, zero bias", (impulse, gen.standard_normal((2, 4)), np.zeros(2))),
    ]


def _conv_step_reference(conv_state, x_t, weight, bias):
    out, state = _mamba().conv_step_reference(conv_state[None], x_t[None], weight, bias)
    return out[0], state[0]


def _conv_step_cases() -> list[Case]:
    def make(gen, shape):
        D, d_conv = shape
        return (
            gen.standard_normal((D, d_conv)),
            gen.standard_normal(D),
            gen.standard_normal((D, d_conv)),
            gen.standard_normal(D),
        )

    gen = rng(73)
    return random_cases(make, [(3, 4), (16, 4), (2, 3)], seed=72) + [
        Case("a zero state (the first token)", (np.zeros((4, 4)),) + make(gen, (4, 4))[1:]),
    ]


# ----------------------------------------------------------------------------------------------
# exercises 2 and 3: the whole block, on a sequence and on one token
# ----------------------------------------------------------------------------------------------


def random_block_params(gen, d_model, d_state=4, d_conv=4, expand=2, dt_rank=None) -> dict:
    """Random parameters of a Mamba block (NumPy, float64), keyed as ``block_parameters`` keys
    them, with the official A (−1 … −N per channel) and Δ biases that give Δ in [1e-3, 1e-1]."""
    d_inner = expand * d_model
    dt_rank = math.ceil(d_model / 16) if dt_rank is None else dt_rank
    scale = 1 / np.sqrt(d_model)
    dt = np.exp(gen.uniform(np.log(1e-3), np.log(1e-1), d_inner))
    return {
        "in_proj.weight": gen.uniform(-scale, scale, (2 * d_inner, d_model)),
        "conv1d.weight": gen.uniform(-0.5, 0.5, (d_inner, 1, d_conv)),
        "conv1d.bias": gen.uniform(-0.5, 0.5, d_inner),
        "x_proj.weight": gen.uniform(-0.5, 0.5, (dt_rank + 2 * d_state, d_inner)),
        "dt_proj.weight": gen.uniform(-(dt_rank**-0.5), dt_rank**-0.5, (d_inner, dt_rank)),
        "dt_proj.bias": dt + np.log(-np.expm1(-dt)),  # softplus⁻¹(Δ₀)
        "A_log": np.log(np.tile(np.arange(1.0, d_state + 1), (d_inner, 1))),
        "D": np.ones(d_inner),
        "out_proj.weight": gen.uniform(-0.3, 0.3, (d_model, d_inner)),
    }


def _as_dict(arrays):
    return dict(zip(PARAM_KEYS, arrays, strict=True))


def _with_dict(fn, n_before):
    """The learner's ``fn(..., params)`` called with the case's arrays gathered into a dict (the
    arrays themselves are the case's, so an in-place change is still caught)."""

    def candidate(*args):
        return fn(*args[:n_before], _as_dict(args[n_before:]))

    return candidate


def _block_reference(hidden, *arrays):
    return _mamba().block_forward_reference(hidden[None], _as_dict(arrays))[0]


def _block_cases() -> list[Case]:
    def make(gen, shape):
        L, d_model, d_state = shape
        params = random_block_params(gen, d_model, d_state)
        return (gen.standard_normal((L, d_model)),) + tuple(params.values())

    return random_cases(make, [(10, 4, 4), (33, 8, 16), (3, 6, 2)], seed=74) + [
        Case("one token (L = 1)", make(rng(77), (1, 4, 3))),
    ]


def _step_reference(hidden_t, conv_state, ssm_state, *arrays):
    out, (conv, ssm) = _mamba().block_step_reference(
        hidden_t[None], conv_state[None], ssm_state[None], _as_dict(arrays)
    )
    return out[0], conv[0], ssm[0]


def _step_cases() -> list[Case]:
    def make(gen, shape, zero_states=False):
        d_model, d_state = shape
        params = random_block_params(gen, d_model, d_state)
        d_inner, d_conv = params["conv1d.weight"].shape[0], params["conv1d.weight"].shape[2]
        conv_state = gen.standard_normal((d_inner, d_conv))
        ssm_state = gen.standard_normal((d_inner, d_state))
        if zero_states:
            conv_state, ssm_state = conv_state * 0, ssm_state * 0
        return (gen.standard_normal(d_model), conv_state, ssm_state) + tuple(params.values())

    return random_cases(make, [(4, 4), (8, 16), (6, 2)], seed=78) + [
        Case("the first token: zero states", make(rng(81), (4, 3), zero_states=True)),
    ]


EXERCISES = declare(
    [
        Exercise(
            "causal_depthwise_conv",
            """Lesson 07, exercise 1a: ``fn(x, weight, bias)`` → (L, D).

            x: (L, D), one sequence, time first; weight: (D, d_conv), channel d's own filter, its
            last tap on the newest input; bias: (D,). Output t of channel d is
            Σ_k weight[d, k] · x[t − (d_conv − 1) + k, d] + bias[d], with zeros before t = 0.
            Compared with :func:`mamba_edu.mamba.causal_conv1d_reference`.
            """,
            _conv_cases,
            reference=_conv_reference,
            rtol=1e-10,
            atol=1e-12,
            hint=(
                "pad d_conv − 1 zeros in front of the sequence (np.concatenate or np.pad), then "
                "out[t] = Σ_k weight[:, k] · padded[t + k] + bias."
            ),
        ),
        Exercise(
            "conv_step",
            """Lesson 07, exercise 1b: ``fn(conv_state, x_t, weight, bias)`` → (out (D,), new
            conv_state (D, d_conv)).

            conv_state holds the last d_conv inputs, oldest first; the step drops the oldest,
            appends x_t (D,) last, and returns Σ_k weight[:, k] · new_state[:, k] + bias.
            Compared with :func:`mamba_edu.mamba.conv_step_reference`.
            """,
            _conv_step_cases,
            reference=_conv_step_reference,
            rtol=1e-10,
            atol=1e-12,
            rename=(("your output[0]", "your out"), ("your output[1]", "your new conv_state")),
            hint="new_state = [conv_state[:, 1:], x_t] along the last axis; the newest input last.",
        ),
        Exercise(
            "mamba_block",
            """Lesson 07, exercise 2: ``fn(hidden, params)`` → out (L, d_model), the Mamba block on
            one sequence hidden (L, d_model); params keyed as
            :func:`mamba_edu.mamba.block_parameters` keys them. Compared with
            :func:`mamba_edu.mamba.block_forward_reference` on a batch of one.
            """,
            _block_cases,
            reference=_block_reference,
            adapt=lambda fn: _with_dict(fn, 1),
            rtol=1e-8,
            atol=1e-10,
            hint=(
                "x and z are the first and second halves of in_proj's output; the conv and SiLU "
                "act on x only; Δ = softplus(dt_proj.weight · Δ_low + dt_proj.bias); "
                "A = −exp(A_log); the gate is y · SiLU(z), before out_proj."
            ),
        ),
        Exercise(
            "mamba_step",
            """Lesson 07, exercise 3: ``fn(hidden_t, conv_state, ssm_state, params)`` → (out
            (d_model,), new conv_state (d_inner, d_conv), new ssm_state (d_inner, d_state)), the
            block on one token. Compared with :func:`mamba_edu.mamba.block_step_reference` on a
            batch of one.
            """,
            _step_cases,
            reference=_step_reference,
            adapt=lambda fn: _with_dict(fn, 3),
            rtol=1e-8,
            atol=1e-10,
            rename=(
                ("your output[0]", "your out"),
                ("your output[1]", "your new conv_state"),
                ("your output[2]", "your new ssm_state"),
            ),
            hint=(
                "h ← exp(Δ A) ⊙ h + (Δ x)[:, None] · B[None, :] (zero-order hold for A, Euler "
                "for B); y = h @ C + D x; then the gate and out_proj as in the block."
            ),
        ),
    ]
)

check_causal_depthwise_conv = make_check(EXERCISES["causal_depthwise_conv"])
check_conv_step = make_check(EXERCISES["conv_step"])
check_mamba_block = make_check(EXERCISES["mamba_block"])
check_mamba_step = make_check(EXERCISES["mamba_step"])
