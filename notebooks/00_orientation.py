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
# # 00 · Orientation: why a recurrence, and how this course works
#
# **The question of this course.** A Transformer reads a sequence of length $L$ by letting every
# position look at every earlier one: $L^2$ comparisons. A recurrent network reads it one step at a
# time, carrying a fixed-size *state*: $L$ steps, constant memory per token. Recurrent networks were
# set aside because they were slow to train and forgot too quickly. Mamba (Gu & Dao, 2023) is a
# recurrence again, and it competes with Transformers. What changed?
#
# The answer comes in small steps, each one a lesson, each one checked in code. By lesson 06 you
# will have written the selective scan at the heart of Mamba in NumPy, checked it against the
# course's compiled kernel, and trained it on a task a time-invariant model finds hard. Lesson 07
# builds the Mamba block and a small language model and races it against a Transformer of the same
# size; lesson 08 goes from the reference to a fast kernel (and Mamba-2's SSD); lesson 09 puts every
# model on one small benchmark and reads the ICLR 2024 debate against what the course measured.
# Every lesson's code is checked against the official `mamba_ssm` where it has a counterpart.
#
# ## How each lesson works
#
# * **Read and run.** Prose explains one idea; the code cell below it does exactly that idea.
#   Run cells top to bottom (Shift-Enter).
# * **Exercises.** A cell with `raise NotImplementedError()` is yours to fill in. The cell after it
#   runs a **self-check**: it compares your function with the course's reference on random inputs
#   and edge cases and tells you, in words, the first thing that differs. If you skip an exercise,
#   the lesson carries on with the reference, so you can always finish.
# * **Widgets.** Sliders change a figure; move them, that is what they are for.
# * **Claims vs. measurements.** When the literature claims something (a cost, a speed-up, an
#   accuracy), the lesson measures it on your machine, prints the number, and checks it.
#
# Your notebooks live in your own workspace (`make lab` creates it). Updating the course never
# overwrites a notebook you have changed: the new version is written beside yours.

# %%
import numpy as np

from mamba_edu import attention, bench, checks, plots, scan, widgets

np.set_printoptions(precision=4, suppress=True)
print("Measurements in this notebook are taken on:", bench.machine_summary())

# %% [markdown]
# ## The road ahead
#
# Ten stages, from a plain RNN to Mamba: lessons 00–06 exist, lessons 07–09 are the plan (being
# written). Each keeps what the last one built and changes one thing.

# %%
fig = plots.roadmap()

# %% [markdown]
# ## One notation for the whole course
#
# Every lesson, the package and the kernels use the same names (the full table, with the reasons,
# is `docs/NOTATION.md`). The letters follow the Mamba paper (Gu & Dao, 2023, eq. 1:
# $h'(t) = A h(t) + B x(t)$, $y(t) = C h(t)$); where an older paper uses another letter, the
# lesson says so.
#
# | idea | in code | in the text | watch out |
# |---|---|---|---|
# | input sequence | `x` | $x_t$ | S4's papers and `mamba_ssm`'s kernels call it `u` |
# | hidden state | `h` | $h_t$ | S4 and the LRU paper write $x$ for the state; we never do |
# | output | `y` | $y_t$ | |
# | state matrix, input and output maps, skip | `A`, `B`, `C`, `D` | $A, B, C, D$ | as a *shape* letter, D is the channel count |
# | step size | `delta` | $\Delta$ | |
# | discretized A, B | `A_bar`, `B_bar` | $\bar A, \bar B$ | Mamba: $\bar A = \exp(\Delta A)$, $\bar B = \Delta B$ |
# | eigenvalues of a diagonal recurrence | `lam` | $\lambda$ | |
# | state size | `d_state` (`N` in short references) | $N$ | never `dstate` or `n_state` |
# | channels | `D` in shapes; `d_model`, `d_inner` in the block | $D$ | |
# | batch size | `batch` | batch | never `B`: B is the matrix |
# | sequence length | `L` | $L$ | |
#
# Shapes are written out next to arrays, e.g. `# (batch, L, D, N)`. Layouts: the short NumPy
# references of lessons 01–05 take one sequence, `(L, D)`, time first (row t is $x_t$); the scan
# and selective-scan functions and every kernel take `(batch, D, L)`, time last, as `mamba_ssm`
# does; PyTorch sequence models take `(batch, L, D)`. Every function's docstring states its layout.
#
# ## The recurrence everything is built on
#
# The simplest recurrence with memory keeps one number per channel and, at every step, decays it by
# a factor $a$ and adds the new input:
#
# $$h_t = a\, h_{t-1} + x_t, \qquad h_{-1} = 0.$$
#
# Unrolled, $h_t = \sum_{k \le t} a^{t-k} x_k$: an input seen $k$ steps ago still counts with weight
# $a^k$. With $0 < a < 1$ that weight shrinks geometrically. It falls to $1/e \approx 37\%$ after
# exactly $k = -1/\ln a$ steps, and since $-\ln a \approx 1 - a$ when $a$ is close to 1, that is about
# $1/(1-a)$ steps: the recurrence's *memory horizon*. Precisely, after $1/(1-a)$ steps the weight
# is $a^{1/(1-a)}$, which is $0.25$ for $a = 0.5$, $0.35$ for $a = 0.9$ and tends to $1/e$ as
# $a \to 1$ (the cell below measures it). So "the horizon" is a time scale, not a cut-off: an input
# $3/(1-a)$ steps back still counts with about $e^{-3} \approx 5\%$. Every model in this course,
# up to Mamba, is this line with richer $a$ and $x$.

# %%
print("   a    1/(1-a)   weight a^(1/(1-a))   steps to 1/e, -1/ln a")
for a_demo in (0.5, 0.8, 0.9, 0.99, 0.999):
    horizon = 1 / (1 - a_demo)
    weight = a_demo**horizon
    print(f"{a_demo:6.3f}  {horizon:7.1f}   {weight:18.3f}   {-1 / np.log(a_demo):20.1f}")
    # the weight after 1/(1-a) steps lies between a^(1/(1-a)) at a = 0.5 (1/4) and 1/e (its limit)
    assert 0.25 - 1e-12 <= weight < np.exp(-1)
#
# ### Exercise 1 — `running_state`
#
# Write `running_state(x, a)`: `x` has shape `(L, D)` (L time steps, D channels), `a` has shape
# `(D,)` (one decay per channel). Return `h` of shape `(L, D)` with the recurrence above, channel by
# channel. A loop over time is the right tool here. Do not change `x` in place.


# %% nbgrader={"grade": false, "grade_id": "running_state", "locked": false, "schema_version": 3, "solution": true}
def running_state(x, a):
    """h_t = a * h_{t-1} + x_t with h_{-1} = 0. x: (L, D), a: (D,) -> h: (L, D)."""
    ### BEGIN SOLUTION
    h = np.zeros_like(x, dtype=np.float64)
    state = np.zeros(x.shape[1])
    for t in range(x.shape[0]):
        state = a * state + x[t]
        h[t] = state
    return h
    ### END SOLUTION


# %%
checks.check_running_state(running_state)

# %% nbgrader={"grade": true, "grade_id": "running_state_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false}
# Autograded: the hidden tests run the self-check and a few extra cases.
### BEGIN HIDDEN TESTS
assert checks.check_running_state(running_state, quiet=True)
_x = np.random.default_rng(1).standard_normal((50, 3))
_a = np.array([0.0, 0.5, -0.9])
assert np.allclose(running_state(_x, _a)[:, 0], _x[:, 0])
assert np.allclose(
    running_state(_x, _a), scan.sequential_scan(np.repeat(_a[:, None], 50, 1), _x.T).T
)
### END HIDDEN TESTS

# %% [markdown]
# ### How long does it remember?
#
# Move the decay `a` and watch an input fade. With `a = 0.5` an impulse is gone after a few steps;
# with `a = 0.95` it lingers for dozens. A step input shows the other side: the state settles at
# $1/(1-a)$, the sum of the geometric series (the same number as the horizon, for another reason). Keeping memory long (a close to 1) without letting the
# state blow up is a theme of lessons 02, 04 and 05.

# %%
explorer = widgets.memory_explorer(a=0.8)
explorer

# %% [markdown]
# ## The other way to read a sequence: attention
#
# Causal attention gives position $t$ a weighted average of the values $v_s$ of all positions
# $s \le t$, with weights from a softmax of the scores $q_t \cdot k_s / \sqrt{d}$ (Vaswani et al.,
# 2017). Queries, keys and values have shape `(L, d)`.
#
# ### Exercise 2 — `causal_attention`
#
# Write `causal_attention(q, k, v)`. Steps: the score matrix `(L, L)`; set the entries above the
# diagonal (the future) to $-\infty$; softmax along each row; multiply by `v`. One trap: `np.exp` of
# a large score overflows to `inf`, and `inf / inf` is NaN. Subtracting each row's maximum before
# `exp` changes nothing mathematically and avoids it. The self-check has a case that finds out.


# %% nbgrader={"grade": false, "grade_id": "causal_attention", "locked": false, "schema_version": 3, "solution": true}
def causal_attention(q, k, v):
    """Causal softmax attention. q, k, v: (L, d) -> (L, d)."""
    ### BEGIN SOLUTION
    L, d = q.shape
    scores = q @ k.T / np.sqrt(d)
    scores = np.where(np.tril(np.ones((L, L), dtype=bool)), scores, -np.inf)
    scores = scores - scores.max(axis=1, keepdims=True)
    weights = np.exp(scores)
    weights = weights / weights.sum(axis=1, keepdims=True)
    return weights @ v
    ### END SOLUTION


# %%
checks.check_causal_attention(causal_attention)

# %% nbgrader={"grade": true, "grade_id": "causal_attention_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false}
# Autograded: the hidden tests run the self-check and test causality directly.
### BEGIN HIDDEN TESTS
assert checks.check_causal_attention(causal_attention, quiet=True)
_q, _k, _v = np.random.default_rng(2).standard_normal((3, 10, 4))
_out = causal_attention(_q, _k, _v)
_v2 = _v.copy()
_v2[7:] += 100.0  # changing the future must not change the past
assert np.allclose(causal_attention(_q, _k, _v2)[:7], _out[:7])
assert np.allclose(_out[0], _v[0])  # the first token can only attend to itself
### END HIDDEN TESTS

# %% [markdown]
# ## Claims vs. measurements: $L^2$ against $L$
#
# **Claim.** Attention costs $O(L^2 d)$ time for a sequence of length $L$; a recurrence costs
# $O(L d)$. On a log-log plot of time against $L$ the slopes should be 2 and 1.
#
# We time the course's reference versions (the same functions your exercises were checked against)
# with `d = 64` channels on a single core, keeping the best of five runs (the least disturbed by
# whatever else the machine is doing). The recurrence runs its steps in a Python
# loop, which costs a few microseconds a step whatever the work inside, so at short lengths the two
# are close: constant factors matter as much as growth rates until $L$ is large. The slope of
# attention is fitted on the four longest of the six lengths ($L$ = 512 to 4096, `lengths[2:]`),
# where the $L^2$ term dominates the fixed overheads; the recurrence's on all six.

# %%
rng = np.random.default_rng(0)
d = 64
lengths = [128, 256, 512, 1024, 2048, 4096]
calls = {}
for L in lengths:
    q, k, v = rng.standard_normal((3, L, d))
    decay = np.full((d, L), 0.9)  # (D, L): time is the last axis in mamba_edu.scan
    x = rng.standard_normal((d, L))
    calls["attention", L] = lambda q=q, k=k, v=v: attention.causal_attention(q, k, v)
    calls["recurrence", L] = lambda decay=decay, x=x: scan.sequential_scan(decay, x)
with bench.one_thread():  # one core for both: compare amounts of work, not how BLAS spreads it
    measured = bench.time_sweep(calls, repeat=5)  # every size in turns: a load burst hits each once
t_attention = [measured["attention", L] for L in lengths]
t_recurrence = [measured["recurrence", L] for L in lengths]
for L, t_a, t_r in zip(lengths, t_attention, t_recurrence, strict=True):
    print(f"L = {L:5d}: attention {t_a * 1e3:8.2f} ms   recurrence {t_r * 1e3:7.2f} ms")

slope_attention = bench.loglog_slope(lengths[2:], t_attention[2:])
slope_recurrence = bench.loglog_slope(lengths, t_recurrence)
print(
    f"fitted slopes (measured on this machine): attention {slope_attention:.2f}, recurrence {slope_recurrence:.2f}"
)
fig = plots.loglog_timings(
    lengths,
    {"causal attention": t_attention, "recurrence": t_recurrence},
    slopes={"causal attention": slope_attention, "recurrence": slope_recurrence},
    title=f"Time per sequence, d = {d} (this machine)",
)

# %% [markdown]
# The check: attention grows clearly faster than the recurrence, close to quadratically, and the
# recurrence close to linearly. (The exact numbers vary from machine to machine; the assertion
# leaves room for that.)

# %%
assert slope_attention > 1.5, f"attention slope {slope_attention:.2f}: expected close to 2"
assert slope_recurrence < 1.5, f"recurrence slope {slope_recurrence:.2f}: expected close to 1"
assert slope_attention - slope_recurrence > 0.4
ratio = t_attention[-1] / t_recurrence[-1]
print(
    f"At L = {lengths[-1]}, attention takes {ratio:.0f}x as long as the recurrence on this machine."
)

# %% [markdown]
# The recurrence wins at long lengths, but it has its own problem: step $t$ cannot start before
# step $t-1$ is done, so the loop cannot use the thousands of parallel lanes of a GPU. Lessons 01–02
# show why plain RNNs are also hard to train, lesson 03 shows how a *linear* recurrence can be
# computed in parallel after all, and the rest of the course builds up to Mamba, which keeps the
# linear cost while choosing, token by token, what to remember.
#
# ## Summary
#
# * A recurrence carries a fixed-size state: linear time in $L$, constant memory per token.
#   Attention compares every pair of positions: quadratic time. Both were measured here.
# * The decay $a$ sets the memory horizon: an input's weight falls to about $1/e$ after about
#   $1/(1-a)$ steps (exactly after $-1/\ln a$ steps).
# * One notation everywhere: `x` in, `h` the state, `y` out, `d_state` = N, `batch` never `B`.
# * Exercises are checked by self-checks that say what differs; the lesson continues either way.
#
# ## Try it
#
# 1. In the memory explorer, pick `a = 0.9` and the impulse input. Read off the step at which the
#    state has fallen to 37% of its peak. Does it match $-1/\ln a$ or $1/(1-a)$ better? Repeat for
#    `a = 0.5`, where the two differ most.
# 2. The recurrence's time per step is almost constant. Time `scan.sequential_scan` with `d = 1`
#    and with `d = 256` channels at $L = 4096$. How much does a channel cost compared with a
#    Python step? What does that say about where the time goes?
# 3. At which length $L$ does attention start to take longer than the recurrence on your machine?
#    Predict it from the two fitted lines before you measure it.
#
# Next: **01 · Recurrent networks**.
