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
# The answer comes in small steps, each one a lesson, each one checked in code. By the end you will
# have written the selective scan at the heart of Mamba in NumPy, checked it against the official
# implementation, trained a small language model with it, and read the kernels that make it fast.
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
# Ten lessons, from a plain RNN to Mamba. Each keeps what the last one built and changes one thing.

# %%
fig = plots.roadmap()

# %% [markdown]
# Notation, used in every lesson (the papers' letters): a batch of $B$ sequences of length $L$, each
# position a vector of $D$ channels, and each channel carrying a hidden state of size $N$. Shapes are
# written out next to arrays, e.g. `# (B, L, D, N)`.
#
# ## The recurrence everything is built on
#
# The simplest recurrence with memory keeps one number per channel and, at every step, decays it by
# a factor $a$ and adds the new input:
#
# $$h_t = a\, h_{t-1} + x_t, \qquad h_{-1} = 0.$$
#
# Unrolled, $h_t = \sum_{k \le t} a^{t-k} x_k$: an input seen $k$ steps ago still counts with weight
# $a^k$. With $|a| < 1$ that weight shrinks geometrically, and after about $1/(1-a)$ steps an input
# has mostly faded: this is the recurrence's *memory horizon*. Every model in this course, up to
# Mamba, is this line with richer $a$ and $x$.
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
# $1/(1-a)$, the sum of the geometric series. Keeping memory long (a close to 1) without letting the
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
# attention is fitted on the longer half of the lengths, where the $L^2$ term dominates the fixed
# overheads.

# %%
rng = np.random.default_rng(0)
d = 64
lengths = [128, 256, 512, 1024, 2048, 4096]
t_attention, t_recurrence = [], []
with bench.one_thread():  # one core for both: compare amounts of work, not how BLAS spreads it
    for L in lengths:
        q, k, v = rng.standard_normal((3, L, d))
        decay = np.full((d, L), 0.9)  # (D, L): time is the last axis in mamba_edu.scan
        x = rng.standard_normal((d, L))
        t_attention.append(bench.time_call(attention.causal_attention, q, k, v, repeat=5))
        t_recurrence.append(bench.time_call(scan.sequential_scan, decay, x, repeat=5))
        print(
            f"L = {L:5d}: attention {t_attention[-1] * 1e3:8.2f} ms   recurrence {t_recurrence[-1] * 1e3:7.2f} ms"
        )

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
# * The decay $a$ sets the memory horizon $1/(1-a)$.
# * Exercises are checked by self-checks that say what differs; the lesson continues either way.
#
# Next: **01 · Recurrent networks**.
