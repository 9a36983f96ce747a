# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Selectivity: the S6 layer
#
# > **Notation** (the course's one table, `docs/NOTATION.md`): input $x_t$, state $h_t$, output $y_t$;
# > $A, B, C, D$ the state matrix, input map, output map and skip; $\Delta$ the step (`delta`);
# > $\bar A_t = e^{\Delta_t A}$, $\bar B_t$ its discretized $B$; $N$ the state size (`d_state`); $D$ also
# > counts channels in shapes (`d_inner` in the layer); $R$ the rank of $\Delta$'s projection
# > (`dt_rank`). The batch size is `batch`, never $B$. `mamba_ssm` calls the scan's input `u`: here it
# > is $x$.
#
# **The question.** Every model since lesson 02 has been *time-invariant*: the same $\bar A$,
# $\bar B$ and $C$ at every step, whatever the input says. That is what made the convolution view
# of lesson 05 possible. But can such a model decide *what* to remember? Read
# "the door code is 4 7 1, do not tell anyone": a useful memory keeps the digits and lets the
# filler pass. A time-invariant recurrence treats every token the same way.
#
# Mamba's answer (Gu & Dao, 2023, <https://arxiv.org/abs/2312.00752>, Section 3) is to let the
# step size $\Delta$ and the matrices $B$ and $C$ be computed from the input at every step: the
# **selective** state-space model, S6.
# In this lesson:
#
# 1. the task that separates the two kinds of model: **selective copying**;
# 2. the selective scan in NumPy (exercise 1), and why it is a scan and no longer a convolution;
# 3. what $\Delta$ does, token by token: **reset** or **ignore** (exercise 2 and a widget);
# 4. Mamba's Theorem 1: with one state entry, S6 *is* a gated RNN (exercise 3);
# 5. claims checked on the spot: the memory a fused kernel saves, what Mamba costs, selective
#    copying trained live (LTI vs S6), and what a larger state $N$ buys each of them (stored runs).

# %%
import time
import tracemalloc

import numpy as np
import torch

from mamba_edu import bench, checks, plots, selective, ssm, tasks, train, widgets

np.set_printoptions(precision=4, suppress=True)
print("Timings in this notebook are measured on:", bench.machine_summary())

# %% [markdown]
# ## The task: selective copying
#
# A sequence holds a few data tokens (ids 1–8) at random places among blanks (id 0); then markers
# (id 9) ask for the data tokens, in order. Here are three sequences of length 16 with 3 tokens
# to copy:

# %%
demo_tokens, demo_labels = tasks.selective_copying(3, 16, n_memorize=3, vocab=8, seed=0)
for row, label in zip(demo_tokens, demo_labels, strict=True):
    shown = " ".join("." if t == 0 else ("?" if t == 9 else str(t)) for t in row)
    print(f"{shown}   →  answer {' '.join(map(str, label))}")

# %% [markdown]
# The *spacing* changes from one sequence to the next. One time-invariant SSM layer computes
# $y = K * x$, one fixed convolution: the weight of a token in the output depends only on how
# long ago it came, not on whether it was a data token or a blank. To copy, a model must keep a
# token *because of what it is*. (A *stack* of such layers with nonlinearities between them can
# still learn small instances, as the measurements below show; what it cannot do is make its
# memory depend on the content, so it needs more capacity and training as $L$ grows.) (The Mamba
# paper's version has length 4096, a vocabulary of 16 and 16 data tokens to copy (its Appendix E.1);
# a two-layer S4 without gating reaches 18.3% there, the same model with S6 97.0% (its Table 1).)
#
# ## The selective scan
#
# For one channel $d$ of the input (after its projection) and a state of $N$ numbers, S6 computes,
# at every step $t$,
#
# $$\Delta_t = \mathrm{softplus}(w_\Delta \cdot \mathbf{x}_t + b_\Delta), \qquad
#   B_t = W_B\, \mathbf{x}_t, \qquad C_t = W_C\, \mathbf{x}_t,$$
#
# $$h_t = e^{\Delta_t A} \odot h_{t-1} + \Delta_t\, B_t\, x_t, \qquad y_t = C_t \cdot h_t,$$
#
# where $\mathbf{x}_t$ is the whole input vector at step $t$ (all $D$ channels) and $x_t$ channel
# $d$'s entry; $A$ is diagonal and negative (S4D-Real: $A_n = -n$), $\bar A_t = e^{\Delta_t A}$ by
# zero-order hold and $\bar B_t = \Delta_t B_t$ by the Euler rule, as the official code does (lesson
# 05). **$A$ itself stays input-independent**: a learned constant, the same at every step. Only
# through $\Delta_t$ does the input reach the decay $e^{\Delta_t A}$ (Mamba, Section 3.2, Algorithm 2).
# The shapes, in the layout of the official `selective_scan_ref` (batch first, time last):
#
# | name | meaning | shape |
# |---|---|---|
# | `x` | input (`u` in `mamba_ssm`) | (batch, D, L) |
# | `delta` | step sizes $\Delta$ | (batch, D, L) |
# | `A` | state matrix (diagonal), input-independent | (D, N) |
# | `B`, `C` | input and output matrices, **one per step** | (batch, N, L) |
# | state $h$ | | (batch, D, N) |
#
# $\bar A_t$ now changes with $t$, so the kernel $K$ of lesson 05 no longer exists: the output
# cannot be computed as a convolution or with the FFT. What survives is the recurrence, and with
# it the parallel scan of lesson 03: $(a_1, b_1) \circ (a_2, b_2) = (a_1 a_2,\; a_2 b_1 + b_2)$
# never needed the $a_t$ to be equal.
#
# ### Exercise 1 — the selective scan, one sequence
#
# Write `selective_scan_loop(x, delta, A, B, C)` for one sequence (no batch): `x` and `delta` of
# shape `(D, L)` (`delta` already positive), `A` of shape `(D, N)`, `B` and `C` of shape `(N, L)`.
# Return `y` of shape `(D, L)`. A loop over time is the idea; inside it, work on all channels and
# all $N$ state entries at once.


# %% nbgrader={"grade": false, "grade_id": "selective_scan_loop", "locked": false, "schema_version": 3, "solution": true}
def selective_scan_loop(x, delta, A, B, C):
    """The selective scan of one sequence: x, delta (D, L); A (D, N); B, C (N, L) -> y (D, L)."""
    ### BEGIN SOLUTION
    D, L = x.shape
    h = np.zeros(A.shape)  # (D, N)
    y = np.empty((D, L))
    for t in range(L):
        dt = delta[:, t, None]  # (D, 1)
        h = np.exp(dt * A) * h + dt * B[None, :, t] * x[:, t, None]
        y[:, t] = h @ C[:, t]
    return y
    ### END SOLUTION


# %%
checks.check_selective_scan_loop(selective_scan_loop)

# %% nbgrader={"grade": true, "grade_id": "selective_scan_loop_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false}
# Autograded: the hidden tests run the self-check and the time-invariant special case.
### BEGIN HIDDEN TESTS
assert checks.check_selective_scan_loop(selective_scan_loop, quiet=True)
_rng = np.random.default_rng(11)
_A = -np.arange(1.0, 5.0)[None, :]  # one channel, N = 4
_B, _C, _x = _rng.standard_normal(4), _rng.standard_normal(4), _rng.standard_normal(30)
_y = selective_scan_loop(
    _x[None],
    np.full((1, 30), 0.1),
    _A,
    np.repeat(_B[:, None], 30, 1),
    np.repeat(_C[:, None], 30, 1),
)
_K = ssm.ssm_kernel(np.exp(0.1 * _A[0]), 0.1 * _B, _C, 30).real
assert np.allclose(_y[0], ssm.causal_conv(_x, _K))
### END HIDDEN TESTS

# %% [markdown]
# From here on the lesson uses the package's reference, `selective.selective_scan` (batched, with
# the options the official function has: $D$, a gate $z$, a bias and softplus for $\Delta$), so a
# learner who skipped the exercise can go on. It is the yardstick for the fast kernels: here the
# numba kernel from `kernels/` against it, and the time-invariant special case against lesson
# 05's convolution.

# %%
from mamba_edu.kernels import selective_cpu


def random_scan_args(batch, D, L, N, seed=0):
    """Random arguments for the selective scan, with S4D-Real A = −(1, …, N) in every channel."""
    rng = np.random.default_rng(seed)
    return dict(
        x=rng.standard_normal((batch, D, L)),
        delta=rng.uniform(-4.0, 0.0, (batch, D, L)),  # before softplus: Δ ≈ 0.02 … 0.7
        A=-np.tile(np.arange(1.0, N + 1), (D, 1)),
        B=rng.standard_normal((batch, N, L)),
        C=rng.standard_normal((batch, N, L)),
    )


args = random_scan_args(2, 8, 200, 16)
y_reference = selective.selective_scan(**args, delta_softplus=True)
y_kernel, _ = selective_cpu.selective_scan_fwd(**args, delta_softplus=True)
print(
    f"numba kernel vs NumPy reference: largest difference {np.max(np.abs(y_kernel - y_reference)):.1e}"
)
assert np.allclose(y_kernel, y_reference, rtol=1e-10, atol=1e-12)

# time-invariant special case: the same Δ, B, C at every step is lesson 05's convolution
rng = np.random.default_rng(0)
L, N = 200, 16
dt, b_n, c_n = 0.05, rng.standard_normal(N), rng.standard_normal(N)
x1 = rng.standard_normal(L)
y_lti = selective.selective_scan(
    x1[None, None], np.full((1, 1, L), dt), -np.arange(1.0, N + 1)[None],
    np.tile(b_n[None, :, None], (1, 1, L)), np.tile(c_n[None, :, None], (1, 1, L)),
)[0, 0]  # fmt: skip
K = ssm.ssm_kernel(np.exp(-dt * np.arange(1.0, N + 1)), dt * b_n, c_n, L).real
gap = np.max(np.abs(y_lti - ssm.fft_conv(x1, K)))
print(f"constant Δ, B, C: selective scan vs FFT convolution, largest difference {gap:.1e}")
assert gap < 1e-9

# %% [markdown]
# ## Where Mamba's $\Delta$ comes from: a low-rank projection and a bias
#
# In the equations above $\Delta_t$ came from "$w_\Delta \cdot \mathbf{x}_t + b_\Delta$". Mamba computes
# it for all $D$ channels at once through a **low-rank** map (Section 3.2 of the paper defines
# $s_\Delta(x) = \mathrm{Broadcast}_D(\mathrm{Linear}_1(x))$, used in Algorithm 2; Section 3.6 generalizes
# it to rank $R$ and calls the result a low-rank projection; $R = \lceil d_{\text{model}} / 16 \rceil$ is
# the default of the official code, `dt_rank="auto"` in `mamba_ssm/modules/mamba_simple.py`):
#
# $$\Delta_t = \mathrm{softplus}\big(W_{\uparrow} (W_{\downarrow} \mathbf{x}_t) + b_\Delta\big), \qquad
#   W_{\downarrow} \in \mathbb{R}^{R \times D}, \; W_{\uparrow} \in \mathbb{R}^{D \times R}, \;
#   R = \lceil d_{\text{model}} / 16 \rceil,$$
#
# so the step sizes of all channels move together along $R$ directions. In `mamba_ssm`, and in this
# course's `selective.SelectiveSSM`, $W_\downarrow$ is the first $R$ rows of `x_proj` (which also
# produces $B_t$ and $C_t$), $W_\uparrow$ is `dt_proj`, and the bias $b_\Delta$ (`dt_bias`) is
# initialized so that $\mathrm{softplus}(b_\Delta)$ is log-uniform in $[10^{-3}, 10^{-1}]$: each channel
# starts with its own timescale, from about 10 to about 1000 steps, as S4D's $\Delta$ did (lesson 05).
# (The paper, Section 3.6, writes this initialization as $\tau_\Delta^{-1}(\mathrm{Uniform}([0.001, 0.1]))$;
# the official code draws the value log-uniformly in that range, and this course follows the code.)
# The inverse softplus, $b = \Delta + \log(1 - e^{-\Delta})$, is how the bias is set. Checked on the
# layer this lesson trains:

# %%
torch.manual_seed(0)
layer = selective.SelectiveSSM(d_model=32, d_state=16)
d_inner = layer.D.shape[0]
dt_init = torch.nn.functional.softplus(layer.dt_bias.detach())
print(f"d_model = 32 → d_inner D = {d_inner}, Δ's rank R = dt_rank = {layer.dt_rank}")
print(f"x_proj: {tuple(layer.x_proj.weight.shape)} = (R + 2N, D): Δ's low-rank input, B_t and C_t")
print(
    f"dt_proj: {tuple(layer.dt_proj.weight.shape)} = (D, R), no bias: the bias is dt_bias, added in the scan"
)
print(f"softplus(dt_bias) at initialization: {dt_init.min():.4f} … {dt_init.max():.4f}")
print(
    f"A = −exp(A_log), shape {tuple(layer.A_log.shape)}: a parameter, not computed from the input"
)
assert layer.dt_rank == 2 and tuple(layer.dt_proj.weight.shape) == (d_inner, 2)
assert 1e-3 <= dt_init.min() and dt_init.max() <= 1e-1

# %% [markdown]
# ### The S6 layer in the open
#
# Lesson 06 trains `selective.SelectiveSSM`. Here is the whole layer written out in PyTorch, with a
# plain loop over time for the scan (the package runs the compiled kernel of `kernels/` instead,
# whose backward pass lesson 08 derives). Same parameter names, so the package layer's weights load
# into it, and the outputs are compared.

# %%
import math

import torch.nn.functional as F
from torch import nn


class S6Layer(nn.Module):
    """x + out_proj(S6(silu(in_proj(norm(x))))), on (batch, L, d_model)."""

    def __init__(self, d_model=32, d_state=16, expand=2):
        super().__init__()
        D, N, self.R = expand * d_model, d_state, math.ceil(d_model / 16)
        self.norm, self.in_proj = nn.LayerNorm(d_model), nn.Linear(d_model, D)
        self.A_log, self.D = nn.Parameter(torch.zeros(D, N)), nn.Parameter(torch.zeros(D))
        self.dt_bias = nn.Parameter(torch.zeros(D))
        self.x_proj = nn.Linear(D, self.R + 2 * N, bias=False)  # → (Δ low rank, B_t, C_t)
        self.dt_proj = nn.Linear(self.R, D, bias=False)
        self.out_proj = nn.Linear(D, d_model)

    def forward(self, x):
        xs = F.silu(self.in_proj(self.norm(x)))  # (batch, L, D)
        N = self.A_log.shape[1]
        dt_low, B, C = self.x_proj(xs).split([self.R, N, N], dim=-1)  # B, C: (batch, L, N)
        delta = F.softplus(self.dt_proj(dt_low) + self.dt_bias)  # (batch, L, D)
        A = -torch.exp(self.A_log)  # (D, N): input-independent
        h, ys = xs.new_zeros(xs.shape[0], xs.shape[2], N), []  # state (batch, D, N)
        for t in range(xs.shape[1]):
            dt = delta[:, t, :, None]  # (batch, D, 1)
            h = torch.exp(dt * A) * h + dt * B[:, t, None, :] * xs[:, t, :, None]
            ys.append((h * C[:, t, None, :]).sum(-1) + self.D * xs[:, t])
        return x + self.out_proj(torch.stack(ys, dim=1))


ours = S6Layer()
ours.load_state_dict(layer.state_dict())
probe = torch.randn(2, 40, 32, generator=torch.Generator().manual_seed(0))
with torch.no_grad():
    gap = (ours(probe) - layer(probe)).abs().max().item()
print(f"written-out S6 layer vs selective.SelectiveSSM: largest difference {gap:.1e}")
assert gap < 1e-5

# %% [markdown]
# ## What $\Delta$ decides: reset or ignore
#
# Take a single state entry with decay $a < 0$ and $B = 1$: $h_t = e^{\Delta_t a} h_{t-1} +
# \Delta_t x_t$. Unrolled, $h_t = \sum_{s \le t} M_{ts}\, x_s$ with
#
# $$M_{ts} = \Delta_s \exp\!\Big(a \sum_{r=s+1}^{t} \Delta_r\Big) \quad (s \le t), \qquad M_{ts} = 0
#   \quad (s > t).$$
#
# Two limits explain what selection buys (Section 3.5 of the paper):
#
# * **large $\Delta_t$**: token $t$ is written strongly, and every earlier column is multiplied by
#   $e^{a\Delta_t} \approx 0$: the state **resets** and focuses on the current token;
# * **tiny $\Delta_t$**: token $t$ is barely written, and nothing is forgotten: it is **ignored**,
#   and the state carries on as if it had not been there.
#
# A time-invariant model has one $\Delta$ for every token: it cannot do one thing for the digits
# and the other for the filler.
#
# ### Exercise 2 — the influence matrix
#
# Write `influence(delta, a)`: `delta` of shape `(L,)` (non-negative), `a` a negative number;
# return $M$ of shape `(L, L)` as defined above. (A double loop is fine; `np.cumsum` gives a
# loop-free version.)


# %% nbgrader={"grade": false, "grade_id": "influence", "locked": false, "schema_version": 3, "solution": true}
def influence(delta, a):
    """M[t, s] = delta[s] * exp(a * (delta[s+1] + ... + delta[t])) for s <= t, else 0."""
    ### BEGIN SOLUTION
    L = len(delta)
    M = np.zeros((L, L))
    for t in range(L):
        for s in range(t + 1):
            M[t, s] = delta[s] * np.exp(a * np.sum(delta[s + 1 : t + 1]))
    return M
    ### END SOLUTION


# %%
checks.check_influence(influence)

# %% nbgrader={"grade": true, "grade_id": "influence_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false}
# Autograded: the hidden tests run the self-check and the unrolled recurrence itself.
### BEGIN HIDDEN TESTS
assert checks.check_influence(influence, quiet=True)
_delta = np.random.default_rng(12).uniform(0.0, 1.5, 7)
_u = np.random.default_rng(13).standard_normal(7)
_h, _states = 0.0, []
for _t in range(7):
    _h = np.exp(-0.7 * _delta[_t]) * _h + _delta[_t] * _u[_t]
    _states.append(_h)
assert np.allclose(influence(_delta, -0.7) @ _u, _states)
### END HIDDEN TESTS

# %% [markdown]
# The forgetting explorer draws $M$ for a sentence. The marked tokens (red) get one $\Delta$, the
# others another, the way a selective model would compute them from the tokens. Try:
#
# * **Δ other** down to $10^{-4}$: the filler is ignored, and the digits stay in the state to the
#   end (the bottom-left panel: the weight of each token in the final state);
# * **Δ marked** up to 30: each digit resets the state, so only the *last* digit survives. One
#   state entry cannot hold three tokens: Mamba has $N = 16$ entries per channel and a $B_t$ that
#   chooses *which* entries a token is written into;
# * the "topic change" sentence with a large Δ on the marked full stop and "now": a reset that
#   drops the old topic.

# %%
explorer = widgets.forgetting_explorer()
explorer

# %% [markdown]
# ## Theorem 1: with one state entry, S6 is a gated RNN
#
# Mamba's Theorem 1 (Gu & Dao 2023, Section 3.5.1; proof in Appendix C) connects selection to
# the gates of lesson 01's LSTM and GRU. Take $N = 1$, $A = -1$, $B = 1$, $\Delta_t = \mathrm{softplus}(z_t)$ with
# $z_t$ a linear function of the input, and discretize **both** $A$ and $B$ by zero-order hold
# (lesson 05): $\bar A_t = e^{-\Delta_t}$, $\bar B_t = (\Delta_t A)^{-1}(e^{\Delta_t A} - 1)\Delta_t B = 1 - e^{-\Delta_t}$.
# Two lines:
#
# 1. $e^{-\mathrm{softplus}(z)} = \frac{1}{1 + e^{z}} = 1 - \sigma(z)$, with $\sigma$ the logistic sigmoid;
# 2. so $\bar A_t = 1 - g_t$ and $\bar B_t = g_t$ with $g_t = \sigma(z_t)$:
#    $$h_t = (1 - g_t)\, h_{t-1} + g_t\, x_t,$$
#    a gated RNN whose gate is computed from the input: $g_t \to 1$ resets onto $x_t$, $g_t \to 0$
#    ignores it (the two limits of the forgetting explorer).
#
# The code of `mamba_ssm` (and of this course) uses the Euler rule $\bar B_t = \Delta_t$ for $B$, so
# there the input weight is $\mathrm{softplus}(z_t)$ instead of $\sigma(z_t)$: the same for small $\Delta$,
# not for large.
#
# ### Exercise 3 — S6 with one state entry
#
# Write `s6_one_state(x, z)`: `x` and `z` real arrays of shape `(L,)`. Run the S6 recurrence with
# $N = 1$, $A = -1$, $B = 1$, $\Delta_t = \mathrm{softplus}(z_t)$ and zero-order hold for both
# $\bar A_t$ and $\bar B_t$ (not the Euler $\bar B$), from $h_0 = 0$; return the states $h$ of shape
# `(L,)`. Use `np.logaddexp(0, z)` for a softplus that does not overflow.


# %% nbgrader={"grade": false, "grade_id": "s6_one_state", "locked": false, "schema_version": 3, "solution": true}
def s6_one_state(x, z):
    """S6 with N = 1, A = -1, B = 1, delta = softplus(z), ZOH for A and B. x, z: (L,) -> h: (L,)."""
    ### BEGIN SOLUTION
    delta = np.logaddexp(0.0, z)
    A_bar = np.exp(-delta)
    B_bar = 1.0 - A_bar  # (ΔA)^{-1}(e^{ΔA} − 1)ΔB with A = −1, B = 1
    h, out = 0.0, np.empty(len(x))
    for t in range(len(x)):
        h = A_bar[t] * h + B_bar[t] * x[t]
        out[t] = h
    return out
    ### END SOLUTION


# %%
checks.check_s6_one_state(s6_one_state)

# %% nbgrader={"grade": true, "grade_id": "s6_one_state_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false}
# Autograded: the hidden tests run the self-check and Theorem 1's gated form.
### BEGIN HIDDEN TESTS
assert checks.check_s6_one_state(s6_one_state, quiet=True)
_x, _z = np.random.default_rng(21).standard_normal((2, 9))
_g, _h, _hs = 1 / (1 + np.exp(-_z)), 0.0, []
for _t in range(9):
    _h = (1 - _g[_t]) * _h + _g[_t] * _x[_t]
    _hs.append(_h)
assert np.allclose(s6_one_state(_x, _z), _hs)
### END HIDDEN TESTS

# %% [markdown]
# **Theorem 1, checked numerically** on fixed seeds: S6 with zero-order hold against the gated
# RNN with $g_t = \sigma(z_t)$. The S6 states come from the package's selective scan (the
# self-check above compared your `s6_one_state` with the same recurrence, and this cell runs
# whether or not the exercise is done). The package scan uses the Euler $\bar B_t = \Delta_t B_t$;
# giving it $B_t = (1 - e^{-\Delta_t}) / \Delta_t$ turns its input weight into the zero-order-hold
# $\bar B_t$, computed from $\Delta_t$ alone, with no sigmoid in sight. Last, the Euler version as
# `mamba_ssm` runs it, for scale.

# %%
rng_t1 = np.random.default_rng(7)
x_t1, z_t1 = rng_t1.standard_normal(200), 2.0 * rng_t1.standard_normal(200)
gate = 1 / (1 + np.exp(-z_t1))
h_gated, h_prev = np.empty(200), 0.0
for t, (g, xt) in enumerate(zip(gate, x_t1, strict=True)):
    h_prev = (1 - g) * h_prev + g * xt
    h_gated[t] = h_prev
delta_t1 = np.logaddexp(0.0, z_t1)
B_zoh = -np.expm1(-delta_t1) / delta_t1  # Δ_t · B_t = 1 − e^{−Δ_t}: the ZOH B̄ with A = −1, B = 1
h_zoh = selective.selective_scan(
    x_t1[None, None], z_t1[None, None], -np.ones((1, 1)),
    B_zoh[None, None], np.ones((1, 1, 200)), delta_softplus=True,
)[0, 0]  # fmt: skip
h_euler = selective.selective_scan(
    x_t1[None, None], z_t1[None, None], -np.ones((1, 1)), np.ones((1, 1, 200)),
    np.ones((1, 1, 200)), delta_softplus=True,
)[0, 0]  # fmt: skip
gap_zoh = np.max(np.abs(h_zoh - h_gated))
gap_euler = np.max(np.abs(h_euler - h_gated))
print(f"S6 with ZOH B̄ = 1 − e^(−Δ) vs gated RNN: largest difference {gap_zoh:.1e}")
print(f"S6 with Euler B̄ = Δ (mamba_ssm):         largest difference {gap_euler:.2f}")
assert gap_zoh < 1e-12
assert gap_euler > 0.1  # the Euler B̄ is a different (if similar) gate: the theorem needs ZOH

# %% [markdown]
# ## Claims vs. measurements: what a fused kernel saves
#
# **Claim** (Section 3.3): computing the recurrence naively materializes
# $\bar A = e^{\Delta A}$ and $\bar B u$ for every (batch, channel, step, state) — tensors of
# shape (batch, D, L, N), $N$ times the size of the input — while a fused kernel keeps the state
# (batch, D, N) in fast memory and writes only the output (batch, D, L).
#
# The test, in NumPy on this machine: the official reference's strategy
# (`selective_scan_materialized`, which computes both tensors up front) against the plain loop
# (`selective_scan`, which holds one state), with Python's `tracemalloc` recording the peak memory
# of each call.


# %%
def peak_bytes(fn, *args, **kwargs):
    """(peak bytes allocated during fn(*args, **kwargs), seconds it took)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    start = time.perf_counter()
    fn(*args, **kwargs)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, seconds


shape = (1, 64, 1024, 16)  # (batch, D, L, N)
batch, D, L, N = shape
big = random_scan_args(*shape, seed=1)
mib = 2.0**20
one_bldn = batch * D * L * N * 8  # bytes of one (batch, D, L, N) float64 tensor
peak_mat, t_mat = peak_bytes(selective.selective_scan_materialized, **big, delta_softplus=True)
peak_loop, t_loop = peak_bytes(selective.selective_scan, **big, delta_softplus=True)
print(
    f"(batch, D, L, N) = {shape}, float64; one (batch, D, L, N) tensor is {one_bldn / mib:.1f} MiB"
)
print(
    f"  materialized (the reference's strategy): peak {peak_mat / mib:6.1f} MiB, {t_mat * 1e3:6.0f} ms"
)
print(
    f"  loop holding one state:                  peak {peak_loop / mib:6.1f} MiB, {t_loop * 1e3:6.0f} ms"
)
assert peak_mat > 1.9 * one_bldn  # the two (batch, D, L, N) tensors, at least
assert peak_loop < 0.5 * one_bldn

# %% [markdown]
# The materialized version holds at least two (batch, D, L, N) tensors, as the arithmetic says; the
# loop needs a fraction of one. Which of the two is faster in NumPy depends on the machine (one
# big vectorized `exp` against $L$ small ones, but also writing and reading the big tensors); the
# memory does not. On a GPU the big tensors would travel through slow main memory twice, which is
# why the official CUDA kernel never writes them. The numba kernel in `kernels/selective_cpu.py`
# keeps a block of the state in a small buffer instead: lesson 08 reads it. For scale, by arithmetic only: one layer of a 1.4B-parameter Mamba (D = 4096 after
# the expansion, N = 16) on a batch of 8 sequences of 2048 tokens would materialize
# $8 \cdot 4096 \cdot 2048 \cdot 16 \cdot 2$ bytes $=$ 2 GiB *per tensor* in bf16.
#
# ## What Mamba costs
#
# For one S6 layer on (batch, L, D) with state size N (Mamba, Section 3.3.2, states the first and
# last points):
#
# * **work** is $O(\text{batch} \cdot L \cdot D \cdot N)$: every (sequence, step, channel, state entry) does
#   a fixed handful of operations ($\Delta A$, its exp, two products with $h$ and $x$, an add, $C_t h$
#   and its sum: about 8). Linear in $L$, like any recurrence;
# * **depth** (steps that must run one after another): $L$ for the loop; $O(\log L)$ for a parallel
#   scan (lesson 03), which keeps the work $O(L)$; the CUDA kernel is chunked: each thread scans a few
#   steps in sequence, warps combine, and a running prefix carries the state across chunks of up to
#   2,048 steps (lesson 03's chunked scan);
# * **$O(L \log L)$** appears only in lesson 05's FFT convolution, which needs one kernel for every
#   position: a *time-invariant* model (S4, S4D). S6 has no such kernel; its cost is the scan's
#   $O(L)$. The video's "$O(n \log n)$" describes S4, not Mamba;
# * **bytes moved** decide the speed, because a scan does few operations per byte. Materializing
#   writes $\bar A$ and $\bar B x$, two (batch, L, D, N) tensors, and reads them back; a fused kernel
#   reads $x$, $\Delta$ (batch, L, D), $B_t$, $C_t$ (batch, L, N) and $A$ (D, N) once, keeps the state
#   (batch, D, N) on chip, and writes $y$ (batch, L, D).
#
# The arithmetic, for one layer of a 1.4B-parameter Mamba (D = 4096 after expansion, batch 8, L = 2048,
# bf16) as N grows:


# %%
def s6_costs(batch, L, D, N, bytes_per_number=2):
    """(operations, bytes moved materialized, bytes moved fused) of one S6 layer: arithmetic only."""
    work = 8 * batch * L * D * N
    io = (
        3 * batch * L * D + 2 * batch * L * N + D * N
    ) * bytes_per_number  # x, Δ, B, C, A in; y out
    materialized = io + 4 * batch * L * D * N * bytes_per_number  # Ā and B̄x written, then read
    return work, materialized, io


print("   N   work (GFLOP)   bytes materialized   bytes fused   ratio")
costs = {}
for N_cost in (1, 4, 16, 64):
    costs[N_cost] = s6_costs(8, 2048, 4096, N_cost)
    work, materialized, fused = costs[N_cost]
    print(
        f"{N_cost:4d}   {work / 1e9:12.1f}   {materialized / 2**30:14.2f} GiB   "
        f"{fused / 2**30:7.3f} GiB   {materialized / fused:5.1f}x"
    )
assert costs[16][0] == 16 * costs[1][0]  # the work grows with N ...
assert costs[16][2] < 1.01 * costs[1][2]  # ... the fused kernel's bytes hardly do

# %% [markdown]
# **Why Mamba can afford N = 16.** Fused, a ×16 state costs ×16 operations but under 1 % more bytes
# ($B_t$ and $C_t$ are shared by all $D$ channels), and a memory-bound kernel gets those operations
# almost free; materialized, it would cost ×16 bytes too (about 22× the fused traffic at N = 16, in the
# table). The state-expansion measurements below ask what the larger state *buys*.
#
# ## Claims vs. measurements: selective copying, LTI vs S6
#
# **Claim** (Mamba, Table 1; the setting in Appendix E.1): on selective copying at L = 4096 with 16
# data tokens, a two-layer time-invariant SSM without gating (S4) reaches 18.3 % and the same model
# with S6 97.0 %.
#
# The test: `selective.TokenSSM`, an embedding, two residual SSM layers (state $N = 16$, the
# official initialization) and a readout at the marker positions, trained twice with the same
# seed, data and budget. The only difference: `selective=True` computes $\Delta$, $B$, $C$ from the
# input as above; `selective=False` learns them as constants (an S4D-Real layer). The recurrence
# runs on the numba kernel with its hand-written backward pass (lesson 08).

# %%
SEQ_LEN, N_MEMORIZE, VOCAB, STEPS = 64, 2, 8, 300
train_data = tasks.selective_copying(8192, SEQ_LEN, N_MEMORIZE, VOCAB, seed=1)
test_data = tasks.selective_copying(1024, SEQ_LEN, N_MEMORIZE, VOCAB, seed=2)
# small matrices: one torch thread is faster; the scan kernel still uses every core
torch.set_num_threads(1)
results, models = {}, {}
for name, is_selective in (("S6 (selective)", True), ("LTI (S4D-Real)", False)):
    models[name] = selective.TokenSSM(VOCAB + 2, N_MEMORIZE, d_model=32, selective=is_selective)
    results[name] = train.train_classifier(
        models[name], train_data, test_data, steps=STEPS, batch_size=64, lr=3e-3, seed=0,
        progress=name,
    )  # fmt: skip
for name, result in results.items():
    print(
        f"{name:>15}: accuracy {result.accuracy:.3f} (chance {1 / VOCAB:.3f}), {result.seconds:.0f} s of training"
    )
fig = plots.loss_curves(
    {name: r.losses for name, r in results.items()},
    title=f"selective copying, L = {SEQ_LEN}, {N_MEMORIZE} tokens, same budget",
)

# %%
acc_s6, acc_lti = (r.accuracy for r in results.values())
assert acc_s6 > 0.8, acc_s6
assert acc_s6 > acc_lti + 0.3, (acc_s6, acc_lti)

# %% [markdown]
# With the same budget the selective model copies and the time-invariant one is far behind. How
# strong is that over seeds? The same comparison with model and training seeds 0, 1, 2 is stored,
# with the command that produced it:

# %%
import json
from pathlib import Path

DATA = Path(selective.__file__).resolve().parent.parent / "data"
stored = json.loads((DATA / "selective_copying.json").read_text())
print(f"{stored['task']}; {stored['command']}")
print(
    f"measured on {stored['machine']}, {stored['date_utc'][:10]}, {stored['total_seconds']:.0f} s"
)
runs = {row["model"]: row for row in stored["rows"]}
for name, row in runs.items():
    per_seed = ", ".join(f"{a:.3f}" for a in row["accuracies"])
    print(f"{name:>15}: per seed {per_seed}   (mean {row['accuracy']:.3f})")
lti_low, lti_high = runs["LTI (S4D-Real)"]["min_accuracy"], runs["LTI (S4D-Real)"]["max_accuracy"]
s6_low = runs["S6 (selective)"]["min_accuracy"]
print(f"LTI between {lti_low:.0%} and {lti_high:.0%}; S6 at least {s6_low:.0%}")
assert s6_low > lti_high + 0.4  # every S6 seed above every LTI seed, by a wide margin
assert lti_high > 0.25  # but the best LTI seed is well above chance

# %% [markdown]
# Read it precisely. On this small version (L = 64, 2 tokens, 300 steps) the time-invariant model
# ends anywhere from chance (12.5 %) to the highest percentage printed above, depending on the seed:
# it is *not unable* to learn the task; a two-layer stack with nonlinearities can still work out where two tokens sat
# among 64 positions, and with more steps or a larger learning rate it gets further (try it, question
# 1 below). What it cannot do is make its memory depend on what a token is, so its cost grows with
# the spacing it must cover; the paper's gap (Table 1: 18.3 % for S4 vs 97.0 % for S6, no gating,
# two layers) is at L = 4096 with 16 tokens. What selection changes at any scale is *how*: the
# selective model solves the task with a rule that does not depend on the spacing at all.

# %% [markdown]
# What did the selective model learn? The story above suggests "large $\Delta$ on data tokens, tiny
# on blanks". The cell below measures it: for each layer and each of its 64 channels, the mean
# $\Delta_t$ the trained model computes at data tokens, at blanks and at the markers, on 256 test
# sequences.

# %%
with torch.no_grad():
    model = models["S6 (selective)"]
    x_test = torch.from_numpy(test_data[0][:256])
    body = x_test.numpy()[:, :SEQ_LEN] > 0  # where the data tokens are
    h = model.embed(x_test)
    for number, layer in enumerate(model.layers):
        deltas = layer.step_sizes(h).numpy()  # (batch, channels, L)
        at_data = np.stack([deltas[:, d, :SEQ_LEN][body].mean() for d in range(deltas.shape[1])])
        at_blank = np.stack([deltas[:, d, :SEQ_LEN][~body].mean() for d in range(deltas.shape[1])])
        at_marker = deltas[:, :, SEQ_LEN:].mean(axis=(0, 2))
        print(
            f"layer {number}: mean Δ at data tokens {at_data.mean():.3f}, at blanks "
            f"{at_blank.mean():.3f}, at markers {at_marker.mean():.3f}; channels whose Δ at data "
            f"tokens is more than 3x their Δ at blanks: {(at_data > 3 * at_blank).sum()} of {len(at_data)}"
        )
        h = layer(h)

# %% [markdown]
# Read the numbers before the story. Averaged over channels the trained model need not give data
# tokens the larger $\Delta$: selection has three levers, and a blank can also be ignored by being
# written with $\bar B_t x_t \approx 0$ (its embedding and $B_t$ are learned too), or read past
# with $C_t$. The per-channel count shows how many channels use $\Delta$ the way the forgetting
# explorer does. Training finds *a* selective solution, not necessarily the one we would draw.

# %% [markdown]
# ## Claims vs. measurements: state expansion, N = 1, 4, 16
#
# Mamba keeps $N = 16$ state entries per channel where a gated RNN keeps one (Theorem 1's $N = 1$):
# the "×16" of its state. What does a larger state buy, and does it buy the same for a selective and
# a time-invariant model? The test: selective copying with **4** tokens to keep at once (L = 32), the
# two models of the previous section at $N \in \{1, 4, 16\}$, everything else equal (data, width
# $d_{\text{model}} = 16$, 300 steps, learning rate, seeds 0 and 1). Twelve trainings do not fit in
# a lesson; they are stored, with the command that produced them:

# %%
sweep = json.loads((DATA / "state_expansion.json").read_text())
MODELS_SWEEP = ("S6 (selective)", "LTI (S4D-Real)")
print(f"{sweep['task']}; {sweep['command']}")
print(f"measured on {sweep['machine']}, {sweep['date_utc'][:10]}, {sweep['total_seconds']:.0f} s")
print(f"{'model':>15}  {'N':>3}  {'parameters':>10}  {'per seed':>15}  {'mean':>6}")
table = {}
for row in sweep["rows"]:
    table[row["model"], row["d_state"]] = row
    per_seed = " ".join(f"{a:.3f}" for a in row["accuracies"])
    print(
        f"{row['model']:>15}  {row['d_state']:>3}  {row['parameters']:>10}  {per_seed:>15}  "
        f"{row['accuracy']:6.3f}"
    )
margins = [
    s6 - lti
    for n in sweep["config"]["d_states"]
    for s6, lti in zip(
        table["S6 (selective)", n]["accuracies"],
        table["LTI (S4D-Real)", n]["accuracies"],
        strict=True,
    )
]
print(f"S6 minus LTI, every N and seed: smallest margin {min(margins):.3f}")
assert min(margins) > 0.04  # S6 ahead at every N, on every seed (stored margins ≥ 0.05)
for name in MODELS_SWEEP:
    gain = table[name, 16]["accuracy"] - table[name, 1]["accuracy"]
    print(f"{name:>15}: mean accuracy at N = 16 minus at N = 1: {gain:+.3f}")
    assert gain < 0.05  # at this budget the ×16 state bought nothing measurable

# %% [markdown]
# What the table says, and what it does not. At every $N$, on both seeds, the selective model is
# ahead. But neither model gained from a larger state here: all of them are limited by the budget
# (300 steps; none is near 100 %), not by memory. Even $N = 1$ gives each layer
# $2 \cdot d_{\text{model}} = 32$ state numbers, more than 4 tokens of 8 values need, so this small task
# cannot show the ×16 paying off. Where the state *is* the bottleneck (long contexts with many things
# to keep, language) is where a larger $N$ is measured to help; the paper's ablations are on
# language modelling with models of about 350M parameters (Mamba, Section 4.6), far beyond a CPU
# lesson. Note too that "same budget" means the same data, steps and width: S6's parameter count
# grows a little with $N$ (its `x_proj` produces $B_t$ and $C_t$), the LTI model's less.


# %% [markdown]
# ## Summary
#
# * One time-invariant SSM layer applies one convolution to every input: a token's weight depends
#   only on its lag, not on what it is. Stacked, such layers still learn small selective-copying
#   instances partly (the LTI range printed above, over the stored seeds); they cannot make memory
#   depend on content.
# * S6 computes $\Delta_t$, $B_t$, $C_t$ from the input ($\Delta_t$ through a rank-$R$ projection and a
#   bias that starts each channel at its own timescale); $A$ stays a learned constant.
#   $\bar A_t = e^{\Delta_t A}$ then changes with $t$: no convolution kernel, no FFT; the recurrence
#   (and its parallel scan) remains.
# * $\Delta_t$ is a gate on memory: large resets the state onto the current token, tiny ignores
#   the token (Theorem 1: with $N = 1$ and ZOH, S6 *is* the gated RNN $h_t = (1 - g_t)h_{t-1} + g_t x_t$).
#   $B_t$ and $C_t$ choose where a token is written and what is read.
# * Cost: $O(\text{batch}\cdot L\cdot D\cdot N)$ work, linear in $L$; $O(L\log L)$ belongs to the FFT of
#   time-invariant models. Materializing $e^{\Delta A}$ and $\Delta B x$ costs (batch, D, L, N) memory
#   and traffic, measured above; a fused kernel keeps the state on chip (lesson 08), which is why
#   $N = 16$ is affordable.
# * Trained with the same budget, the selective model learned selective copying on every stored seed
#   and the time-invariant one did not; the state-size sweep shows what $N$ bought at this scale.
#
# ## Try it
#
# 1. Train the LTI model of the live comparison with `lr=1e-2` and `steps=600`: how close does it
#    get to S6 at L = 64? Then double `SEQ_LEN`: does the gap open again?
# 2. In `s6_one_state`, replace the ZOH $\bar B_t$ by the Euler $\Delta_t$ that `mamba_ssm` uses and
#    plot both states for $z_t$ from −4 to 4: where do the two gates differ most?
# 3. With `s6_costs`, find the N at which the fused kernel's bytes have grown by 10 % over N = 1
#    for D = 4096: how much larger could the state be before its traffic mattered?
#
# Next: **07 · The Mamba block**, which wraps S6 with a short convolution and a gate, and a small
# language model built from it.
