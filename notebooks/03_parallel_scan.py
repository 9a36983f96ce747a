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
# # 03 · Parallel scan: a recurrence in logarithmic depth
#
# **The question.** A recurrence $h_t = a_t h_{t-1} + b_t$ looks hopelessly sequential: step $t$
# needs step $t-1$. A GPU has thousands of lanes and a sequence of $L = 4096$ steps would use one
# of them. Yet Mamba trains on long sequences at GPU speed. How?
#
# Because the recurrence is *linear*. One step is an affine map $x \mapsto a_t x + b_t$, and
# affine maps compose into affine maps. Composition is associative, so the $L$ compositions can
# be bracketed as a balanced tree, and a tree of $L$ leaves has depth $\log_2 L$. This idea, the
# *parallel prefix sum* or *scan* (Blelloch, 1990; Hillis & Steele, 1986), is what lets linear RNNs
# (Martin & Cundy, 2018), S5 and Mamba run in parallel over time.
#
# This lesson: the operator and its associativity; two parallel scans (Hillis–Steele and Blelloch)
# with their **work** (how many operations) and **depth** (how many parallel steps), counted; the
# chunked scan that real hardware runs; the backward pass as a reverse scan; and the kernels in
# `kernels/`, timed on this machine, including a CUDA block scan running in numba's simulator.

# %%
import os

# The CUDA kernels at the end run in numba's CUDA simulator, which must be switched on before
# numba is first imported. On a machine with an NVIDIA GPU, set this to "0" to use the GPU.
os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import numpy as np
import torch

from mamba_edu import bench, checks, plots, scan, widgets

np.set_printoptions(precision=4, suppress=True)
print("Measurements in this notebook are taken on:", bench.machine_summary())

# %% [markdown]
# ## One step is an affine map; two steps are one too
#
# Write step $t$ as the pair $(a_t, b_t)$, meaning "multiply the state by $a_t$, then add $b_t$".
# Doing $(a_1, b_1)$ and then $(a_2, b_2)$ to a state $x$ gives
# $a_2(a_1 x + b_1) + b_2 = (a_1 a_2)\,x + (a_2 b_1 + b_2)$: again a pair. So define
#
# $$(a_1, b_1) \circ (a_2, b_2) = (a_1 a_2,\; a_2 b_1 + b_2) \qquad \text{“first left, then right”}.$$
#
# The state after step $t$, starting from $h_{-1} = 0$, is the $b$ of the composition of steps
# $0, 1, \dots, t$: $h_t = \big((a_0, b_0) \circ \dots \circ (a_t, b_t)\big)_b$. Computing all these
# prefix compositions is a **scan**. The pair $(1, 0)$ does nothing: it is the identity.
#
# Shapes: `a` and `b` have shape `(..., L)`, time last, as everywhere in `mamba_edu.scan`; the
# operator works element by element on whole arrays of pairs.
#
# ### Exercise 1 — `combine`
#
# Write `combine(left, right)` where `left = (a1, b1)` and `right = (a2, b2)` are pairs of arrays
# (or numbers), real or **complex** (lesson 02's diagonal recurrences have complex $\lambda$; the
# self-check tries both). Return the pair for "left, then right". Mind the order: the operator is
# not symmetric.


# %% nbgrader={"grade": false, "grade_id": "combine", "locked": false, "schema_version": 3, "solution": true}
def combine(left, right):
    """(a1, b1) then (a2, b2) -> (a1·a2, a2·b1 + b2)."""
    ### BEGIN SOLUTION
    a1, b1 = left
    a2, b2 = right
    return a1 * a2, a2 * b1 + b2
    ### END SOLUTION


# %%
checks.check_combine(combine)

# %% nbgrader={"grade": true, "grade_id": "combine_tests", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# Autograded: the hidden tests run the self-check and apply the composed map to a state.
### BEGIN HIDDEN TESTS
assert checks.check_combine(combine, quiet=True)
_x = 0.3
_c = combine((2.0, 1.0), (-0.5, 4.0))
assert np.isclose(_c[0] * _x + _c[1], -0.5 * (2.0 * _x + 1.0) + 4.0)
### END HIDDEN TESTS

# %% [markdown]
# ## Associativity: why the bracketing is free
#
# A scan may regroup the work only if $(x \circ y) \circ z = x \circ (y \circ z)$ for all steps
# $x, y, z$. For composition of maps this is true by definition (both sides mean "do x, then y,
# then z"), and expanding both sides gives $(a_1a_2a_3,\; a_3a_2b_1 + a_3b_2 + b_3)$ twice. In
# floating point the two sides may differ by round-off, nothing more. Let us check it numerically.
#
# ### Exercise 2 — `associativity_gap`
#
# Write `associativity_gap(op, x, y, z)`: `op` is an operator on pairs (like `combine`), `x, y, z`
# are pairs of arrays, real or complex. Return, as a Python float, the largest absolute difference
# (`np.abs`, the modulus for complex numbers) between `op(op(x, y), z)` and `op(x, op(y, z))`, over
# both components of the pair and every element.


# %% nbgrader={"grade": false, "grade_id": "associativity_gap", "locked": false, "schema_version": 3, "solution": true}
def associativity_gap(op, x, y, z):
    """max |(x∘y)∘z − x∘(y∘z)| over both components and all elements, as a float."""
    ### BEGIN SOLUTION
    grouped_left = op(op(x, y), z)
    grouped_right = op(x, op(y, z))
    gaps = [
        np.max(np.abs(np.asarray(p) - np.asarray(q)))
        for p, q in zip(grouped_left, grouped_right, strict=True)
    ]
    return float(max(gaps))
    ### END SOLUTION


# %%
checks.check_associativity_gap(associativity_gap)

# %% nbgrader={"grade": true, "grade_id": "associativity_gap_tests", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# Autograded: the hidden tests run the self-check and a large random trial.
### BEGIN HIDDEN TESTS
assert checks.check_associativity_gap(associativity_gap, quiet=True)
_r = np.random.default_rng(5)
_t = [(_r.uniform(-1, 1, 100), _r.standard_normal(100)) for _ in range(3)]
assert associativity_gap(scan.combine, *_t) < 1e-13
assert associativity_gap(lambda p, q: (p[0] * q[0], p[1] - q[1]), *_t) > 0.1
### END HIDDEN TESTS

# %% [markdown]
# The numerical proof, with the course's reference (`scan.combine`, the same operator): 10,000
# random triples, real and complex, and the gap stays at round-off. For contrast, averaging two
# pairs is *not* associative, and the gap shows it at once. The operator is not commutative
# either: swapping the order is a different map.

# %%
rng = np.random.default_rng(0)


def random_steps(rng, n, complex_=False):
    a = rng.uniform(-1, 1, n)
    b = rng.standard_normal(n)
    if complex_:
        a = a * np.exp(1j * rng.uniform(-np.pi, np.pi, n))
        b = b + 1j * rng.standard_normal(n)
    return a, b


def gap(op, x, y, z):  # the reference answer to exercise 2, so the lesson runs without it
    left, right = op(op(x, y), z), op(x, op(y, z))
    return max(float(np.max(np.abs(p - q))) for p, q in zip(left, right, strict=True))


x, y, z = (random_steps(rng, 10_000) for _ in range(3))
xc, yc, zc = (random_steps(rng, 10_000, complex_=True) for _ in range(3))
average = lambda p, q: ((p[0] + q[0]) / 2, (p[1] + q[1]) / 2)  # noqa: E731
print(f"scan operator, real:    max gap over 10,000 triples = {gap(scan.combine, x, y, z):.1e}")
print(f"scan operator, complex: max gap over 10,000 triples = {gap(scan.combine, xc, yc, zc):.1e}")
print(f"averaging:              max gap                     = {gap(average, x, y, z):.2f}")
swap = max(
    float(np.max(np.abs(p - q)))
    for p, q in zip(scan.combine(x, y), scan.combine(y, x), strict=True)
)
print(f"x∘y vs y∘x (commutativity): max difference = {swap:.2f}")
assert gap(scan.combine, x, y, z) < 1e-13 and gap(scan.combine, xc, yc, zc) < 1e-13
assert gap(average, x, y, z) > 0.1 and swap > 0.1

# %% [markdown]
# ## Work and depth
#
# Two numbers describe a parallel algorithm (Blelloch, 1990):
#
# * **work**: how many operations in total (here: applications of $\circ$), the time on one core;
# * **depth**: how many steps when every operation whose inputs are ready runs at once, the time
#   on unboundedly many cores.
#
# On $p$ cores the time is roughly $\text{work}/p + \text{depth}$ (Brent's bound). The sequential
# loop has work $L-1$ and depth $L-1$: nothing can run at the same time. `mamba_edu.scan` counts
# both for every scan it runs, with a `ScanCounter`.

# %%
counter = scan.ScanCounter()
h_loop = scan.sequential_scan(*random_steps(rng, 16), counter=counter)
print(f"sequential, L = 16: work {counter.work}, depth {counter.depth}")

# %% [markdown]
# ## Hillis–Steele: recursive doubling
#
# Hillis and Steele (1986) scan with doubling offsets. At step $k$, with $d = 2^k$, every position
# $t \ge d$ combines the partial result $d$ positions to its left with its own:
# $(A,B)_t \leftarrow (A,B)_{t-d} \circ (A,B)_t$. After the step with offset $d$, position $t$ holds
# the composition of the $2d$ steps ending at $t$ (or all of them, if fewer). After
# $\lceil \log_2 L \rceil$ steps every position holds its full prefix.
#
# The catch for a program (not for the math): all positions of a step must read the values from
# *before* the step. Writing into the array while other positions still need the old values is
# the classic bug.
#
# ### Exercise 3 — `hillis_steele`
#
# Write `hillis_steele(a, b)` for arrays of shape `(..., L)` (time last): keep arrays `A`, `B`
# (copies of `a` and `b`), and for `d = 1, 2, 4, …` while `d < L` combine slices
# `[..., :-d]` (the left partners) with `[..., d:]` (the positions that update). Return `B` (with
# $h_{-1} = 0$, the state is the $b$ part). Use the operator from exercise 1 or `scan.combine`.
#
# **Complex inputs, and the dtype.** `a` and `b` may be complex (an oscillating decay), and one may
# be complex while the other is real. The result must keep the dtype of `a * b`: complex if either
# is. The trap: a copy made with `np.array(b, dtype=float)` or `np.empty_like(b)` for a real `b`
# is a float array, and writing complex numbers into it silently keeps only their real parts
# (NumPy warns with a `ComplexWarning`). `np.result_type(a, b)` gives the right dtype; the
# self-check has a complex `a` with a real `b`.


# %% nbgrader={"grade": false, "grade_id": "hillis_steele", "locked": false, "schema_version": 3, "solution": true}
def hillis_steele(a, b):
    """h_t = a_t h_{t-1} + b_t by recursive doubling; a, b: (..., L) -> h: (..., L)."""
    ### BEGIN SOLUTION
    A = np.array(a, dtype=np.result_type(a, b, float))
    B = np.array(b, dtype=A.dtype)
    L = A.shape[-1]
    d = 1
    while d < L:
        new_A, new_B = scan.combine((A[..., :-d], B[..., :-d]), (A[..., d:], B[..., d:]))
        A[..., d:] = new_A
        B[..., d:] = new_B
        d *= 2
    return B
    ### END SOLUTION


# %%
checks.check_hillis_steele(hillis_steele)

# %% nbgrader={"grade": true, "grade_id": "hillis_steele_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false}
# Autograded: the hidden tests run the self-check and a long, batched case.
### BEGIN HIDDEN TESTS
assert checks.check_hillis_steele(hillis_steele, quiet=True)
_a, _b = random_steps(np.random.default_rng(3), (4, 300))
assert np.allclose(hillis_steele(_a, _b), scan.sequential_scan(_a, _b), rtol=1e-10, atol=1e-12)
### END HIDDEN TESTS

# %% [markdown]
# The package's version counts as it goes. Depth: one step per doubling, $\lceil\log_2 L\rceil$.
# Work: the step with offset $d$ does $L - d$ combines, so the total is about $L \log_2 L$, more
# than the loop's $L - 1$. Hillis–Steele buys its short depth with extra work.

# %%
a16, b16 = random_steps(rng, 16)
counter = scan.ScanCounter()
h_hs = scan.hillis_steele_scan(a16, b16, counter=counter)
print(
    f"Hillis–Steele, L = 16: work {counter.work}, depth {counter.depth}, combines per step {counter.levels}"
)
assert np.allclose(h_hs, scan.sequential_scan(a16, b16), rtol=1e-12, atol=1e-12)

# %% [markdown]
# ## Blelloch: up-sweep and down-sweep
#
# Blelloch (1990) gets logarithmic depth *without* the extra work, with a balanced tree over the
# positions:
#
# * **Up-sweep** (a reduction): at distance $d = 1, 2, 4, \dots$, position $r = 2d-1, 4d-1, \dots$
#   becomes (position $r-d$) $\circ$ (position $r$). Each level halves the number of combines:
#   $n/2 + n/4 + \dots + 1 = n - 1$. The last position now holds the total.
# * **Clear the root**: set the last position to the identity $(1, 0)$ ("nothing comes before
#   step 0").
# * **Down-sweep**: at $d = n/2, \dots, 1$, each node hands what it holds (the composition of
#   everything before its subtree) to its left child, and to its right child that, followed by the
#   left subtree's total. Another $n - 1$ combines.
#
# Afterwards position $t$ holds the composition of steps $0..t-1$: the *exclusive* prefix; the
# inclusive one (our $h_t$) is the exclusive one at $t+1$, and the last is the up-sweep's total.
# Lengths that are not powers of two are padded with identity steps, which change nothing.
#
# Step through it: each row is what the positions hold after one step, written as the range of
# time steps composed there ("2–5" means steps 2 to 5, "·" the identity). Red lines are the
# current step's combines; dashed ones, in the down-sweep, are the hand-over to the left child.

# %%
stepper = widgets.blelloch_stepper(n=8, step=3)
stepper

# %% [markdown]
# The same algorithm on numbers, checked against the loop, for a length that is not a power of
# two. Up-sweep and down-sweep each take $\log_2 n$ steps and $n-1$ combines: work $2(n-1)$ and
# depth $2\log_2 n$, with $n$ the padded length.

# %%
a13, b13 = random_steps(rng, 13, complex_=True)
counter = scan.ScanCounter()
h_bl = scan.blelloch_scan(a13, b13, counter=counter)
print(
    f"Blelloch, L = 13 (padded to 16): work {counter.work}, depth {counter.depth}, levels {counter.levels}"
)
assert np.allclose(h_bl, scan.sequential_scan(a13, b13), rtol=1e-12, atol=1e-12)

# %% [markdown]
# ## Claims vs. measurements: "a parallel scan is O(n log n)"
#
# **Claim** (often repeated in blog posts and papers about linear RNNs): a parallel scan costs
# $O(n \log n)$. That is the *work* of Hillis–Steele. Blelloch's work is $O(n)$, about $2n$, and
# both have $O(\log n)$ *depth*. We count all three on lengths up to $2^{16}$ by running the
# algorithms (one channel, so it is quick) and compare with the formulas.

# %%
sizes = [2**k for k in range(1, 17)]
methods = ["sequential", "hillis_steele", "blelloch", "chunked"]
work = {m: [] for m in methods}
depth = {m: [] for m in methods}
for n in sizes:
    for m in methods:
        w, d = scan.work_depth(m, n)
        work[m].append(w)
        depth[m].append(d)

n = sizes[-1]
print(f"n = {n}:")
for m in methods:
    print(f"  {m:14s} work {work[m][-1]:9d} = {work[m][-1] / n:5.2f}·n    depth {depth[m][-1]:6d}")
print(f"  (n·log2 n = {n * 16}, log2 n = 16)")
fig = plots.work_depth(
    sizes, work, depth, title="Counted by running the scans (chunked: chunks of √n)"
)

# %%
hs_ratio = work["hillis_steele"][-1] / (n * np.log2(n))
bl_ratio = work["blelloch"][-1] / n
print(f"Hillis–Steele work / (n log2 n) = {hs_ratio:.3f};  Blelloch work / n = {bl_ratio:.3f}")
print(
    f"depth / log2 n: Hillis–Steele {depth['hillis_steele'][-1] / 16:.0f}, Blelloch {depth['blelloch'][-1] / 16:.0f}"
)
assert 0.9 < hs_ratio < 1.0  # n log n work, up to the missing first terms
assert 1.9 < bl_ratio < 2.0  # linear work: 2(n - 1)
assert depth["hillis_steele"][-1] == 16 and depth["blelloch"][-1] == 32

# %% [markdown]
# So the claim is half true: "$O(n \log n)$" is right for the simple scan and wrong for the
# work-efficient one, and neither is the number that makes a scan fast; the **depth** is. With
# $p$ cores the time is about work$/p$ + depth. On this course's 2-core CPU, Blelloch at
# $n = 4096$ needs $8190/2 + 24 \approx 4119$ steps, no better than the loop's 4095: with two
# cores, a parallel scan cannot win. On a GPU, $p$ is in the thousands and the depth term rules.
# Hardware in practice does neither textbook scan alone, but a **chunked** one.
#
# ## The chunked scan: what hardware does
#
# Split time into chunks of $T$ steps (one GPU block, or one CPU core, per chunk):
#
# 1. inside every chunk, all chunks at once, scan from a zero state, keeping the running product
#    of $a$ too;
# 2. scan the chunk totals (only $L/T$ of them) to get the state entering each chunk, the
#    **carry**;
# 3. **carry in**: $h_t \mathrel{+}= (\prod_{\text{chunk start} \le s \le t} a_s)\cdot\text{carry}$.
#
# Work about $2L$, depth about $T + L/T$: smallest near $T = \sqrt{L}$, and inside a chunk any scan
# can be used. The carry is the one piece of state that must cross chunk boundaries, and it is also
# what lets a kernel *return the final state*.
#
# **What Mamba's CUDA kernel does.** Not a textbook Blelloch. In `mamba_ssm`'s forward kernel
# (`csrc/selective_scan/selective_scan_fwd_kernel.cuh` in state-spaces/mamba, read at commit
# `1200d6e`), one thread block handles one (sequence, channel) pair and walks through time in
# chunks of `kNThreads × kNItems` steps, at most 128 × 16 = 2,048. Inside a chunk each thread holds
# `kNItems` consecutive steps in registers; the block scan is CUB's `BlockScan` with the
# `BLOCK_SCAN_WARP_SCANS` algorithm, which scans each thread's short run sequentially, combines
# across the 32 threads of a warp with a warp scan, then across warps. A prefix callback
# (`SSMScanPrefixCallbackOp`) carries a running prefix from one chunk to the next, in shared
# memory. That is this lesson's chunked scan, three levels deep: sequential per thread, parallel
# across threads, sequential across chunks. The only Blelloch scan on a GPU in this course is our
# own teaching kernel, `kernels/scan_cuda.py`, below.
#
# ### Exercise 4 — `chunked`
#
# Write `chunked(a, b, chunk)` for arrays `(..., L)`: loop over chunks of `chunk` steps (the last
# one may be shorter); scan each from a zero state with `scan.sequential_scan`; add the carry
# times the running product of `a` inside the chunk (`np.cumprod` along the last axis); update the
# carry with the chunk's last state. Return `h` of shape `(..., L)`. As in exercise 3, `a` and `b`
# may be complex, and `h` and the carry must have the dtype of `a * b` (`np.result_type(a, b)`).


# %% nbgrader={"grade": false, "grade_id": "chunked_scan", "locked": false, "schema_version": 3, "solution": true}
def chunked(a, b, chunk):
    """h_t = a_t h_{t-1} + b_t, chunk by chunk with a carried state; a, b: (..., L)."""
    ### BEGIN SOLUTION
    a = np.asarray(a)
    b = np.asarray(b)
    h = np.empty(np.broadcast_shapes(a.shape, b.shape), dtype=np.result_type(a, b, float))
    carry = np.zeros(h.shape[:-1], dtype=h.dtype)
    for start in range(0, h.shape[-1], chunk):
        part = slice(start, start + chunk)
        local = scan.sequential_scan(a[..., part], b[..., part])
        h[..., part] = local + np.cumprod(a[..., part], axis=-1) * carry[..., None]
        carry = h[..., part][..., -1]
    return h
    ### END SOLUTION


# %%
checks.check_chunked_scan(chunked)

# %% nbgrader={"grade": true, "grade_id": "chunked_scan_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false}
# Autograded: the hidden tests run the self-check and a long case with many chunks.
### BEGIN HIDDEN TESTS
assert checks.check_chunked_scan(chunked, quiet=True)
_a, _b = random_steps(np.random.default_rng(4), (2, 1000))
assert np.allclose(chunked(_a, _b, 37), scan.sequential_scan(_a, _b), rtol=1e-10, atol=1e-12)
### END HIDDEN TESTS

# %% [markdown]
# The package's `scan.chunked_scan` does the three phases on all chunks at once (step 1 is a loop
# of $T$ steps over an array of chunks, step 2 a loop of $L/T$ steps), so in NumPy it runs
# $T + L/T$ Python iterations instead of $L$.

# %%
a_long, b_long = random_steps(rng, (4, 4096))
counter = scan.ScanCounter()
h_chunked = scan.chunked_scan(a_long, b_long, chunk=64, counter=counter)
print(
    f"chunked, L = 4096, chunks of 64: work {counter.work} ({counter.work / 4096:.2f}·L), depth {counter.depth}"
)
assert np.allclose(h_chunked, scan.sequential_scan(a_long, b_long), rtol=1e-12, atol=1e-12)

# %% [markdown]
# ## The backward pass is a reverse scan
#
# To train through a scan we need the gradients of a loss $\ell$ with respect to $a$, $b$ (and
# $h_{-1}$), given $g_t = \partial \ell / \partial h_t$. The state $h_t$ influences the loss
# directly (through $g_t$) and through $h_{t+1} = a_{t+1} h_t + b_{t+1}$, so its total gradient is
#
# $$dh_t = g_t + a_{t+1}\, dh_{t+1}, \qquad dh_{L-1} = g_{L-1},$$
#
# the same recurrence run from right to left: a **reverse scan**, just as parallel as the forward
# one. Then $da_t = dh_t\, h_{t-1}$ and $db_t = dh_t$ (Rush's *Mamba: The Hard Way* derives the
# same for its Triton kernel). For complex numbers PyTorch's convention puts a conjugate on the
# other factor ($dh_t = g_t + \bar a_{t+1} dh_{t+1}$, $da_t = dh_t \bar h_{t-1}$). Complex backward
# passes are easy to get wrong. For example, a user of mamba.py, a popular pure-PyTorch Mamba,
# reported that its parallel scan's gradients differ from a sequential scan's for complex inputs
# ("PScan gradient is not correct?", https://github.com/alxndrTL/mamba.py/issues/65, opened
# December 2024). That is a report, still open when this lesson was written, not a confirmed bug;
# we have not reproduced it. What this lesson can show is its own check: the hand-derived gradients
# against PyTorch's autograd of the plain loop, for complex $a$.

# %%
ac, bc = random_steps(rng, (3, 50), complex_=True)
g = rng.standard_normal((3, 50)) + 1j * rng.standard_normal((3, 50))
h = scan.sequential_scan(ac, bc)
da, db, _ = scan.scan_backward(ac, h, g)

ta = torch.tensor(ac, requires_grad=True)
tb = torch.tensor(bc, requires_grad=True)
state, states = torch.zeros(3, dtype=torch.complex128), []
for t in range(50):
    state = ta[:, t] * state + tb[:, t]
    states.append(state)
torch.stack(states, -1).backward(torch.tensor(g))
err = max(np.abs(da - ta.grad.numpy()).max(), np.abs(db - tb.grad.numpy()).max())
print(f"hand-derived backward vs torch autograd (complex a): max difference {err:.1e}")
assert err < 1e-12

# %% [markdown]
# ## The kernels: from the reference to fast code
#
# `kernels/` holds the same scan written for hardware; each is checked against the NumPy
# reference by the course's tests (forward and backward, float32 and float64, real and complex).
#
# * `kernels/scan_cpu.py`: the loop compiled by numba (`@njit(parallel=True, fastmath=True)`),
#   rows spread over the cores, plus a time-chunked version, and a `torch.autograd.Function` whose
#   backward is the reverse scan above;
# * `kernels/scan_cuda.py`: numba-cuda kernels, a Blelloch scan per block in shared memory (for
#   teaching: `mamba_ssm`'s kernel uses warp scans, as described above) and a multi-block chunked
#   scan with carries;
# * `kernels/scan_triton.py`: a Triton kernel built on `tl.associative_scan` with our operator.
#
# ### CPU timings on this machine
#
# 64 channels of length 4096 (float64): the NumPy loop (4096 Python steps), the NumPy
# Hillis–Steele, Blelloch and chunked scans (a few dozen vectorized steps, but more work), and the
# numba kernel (one compiled loop per channel, channels spread over the cores). The first numba
# call compiles the kernel; `bench.time_sweep` warms each one up first, then times them in turns and
# keeps each one's best of a few runs.

# %%
from mamba_edu.kernels import scan_cpu

D, L = 64, 4096
a_t, b_t = rng.uniform(0.9, 1.0, (D, L)), rng.standard_normal((D, L))
candidates = {
    "NumPy loop (sequential_scan)": lambda: scan.sequential_scan(a_t, b_t),
    "NumPy Hillis–Steele": lambda: scan.hillis_steele_scan(a_t, b_t),
    "NumPy Blelloch": lambda: scan.blelloch_scan(a_t, b_t),
    "NumPy chunked (chunks of 64)": lambda: scan.chunked_scan(a_t, b_t, chunk=64),
    "numba kernel (scan_cpu)": lambda: scan_cpu.scan_forward(a_t, b_t),
}
reference_h = scan.sequential_scan(a_t, b_t)
for name, fn in candidates.items():
    assert np.allclose(fn(), reference_h, rtol=1e-10, atol=1e-10), name
times = bench.time_sweep(candidates, repeat=3)  # in turns, so load from elsewhere hits each alike
loop_time = times["NumPy loop (sequential_scan)"]
print(f"(D, L) = ({D}, {L}), float64, on this machine:")
for name, t in times.items():
    print(f"  {name:30s} {t * 1e3:8.2f} ms   {loop_time / t:6.1f}x the loop's speed")

# %% [markdown]
# The compiled loop wins by a wide margin: it reads each number once and does one multiply-add
# per step, with no Python in between. The NumPy parallel scans run far fewer Python steps (12
# for Hillis–Steele, 24 for Blelloch, 127 for the chunked scan, against 4096), but every step
# pushes whole `(64, 4096)` arrays through memory, and they do 2 to 12 times the arithmetic;
# which of the two effects wins depends on the machine and the sizes (the numbers above say which
# won here). On a CPU, the compiled sequential loop is the thing to beat.
#
# One long channel is the case where the rows cannot keep the cores busy, and a time-chunked
# scan is the only way to use more than one core. On 2 cores it also does about twice the memory
# traffic (a second pass for the carry-in), so it need not win: measure.

# %%
a_1, b_1 = rng.uniform(0.9, 1.0, (1, 2**20)), rng.standard_normal((1, 2**20))
long_times = {
    "numba loop, one channel": bench.time_call(scan_cpu.scan_forward, a_1, b_1, repeat=3),
    "numba chunked (chunks of 1024)": bench.time_call(
        scan_cpu.scan_forward_chunked, a_1, b_1, chunk=1024, repeat=3
    ),
    "NumPy chunked (chunks of 1024)": bench.time_call(
        scan.chunked_scan, a_1, b_1, chunk=1024, repeat=3
    ),
}
assert np.allclose(scan_cpu.scan_forward_chunked(a_1, b_1), scan_cpu.scan_forward(a_1, b_1))
import numba

print(f"one channel of L = 2^20, {numba.get_num_threads()} numba thread(s), on this machine:")
for name, t in long_times.items():
    print(f"  {name:32s} {t * 1e3:8.2f} ms")
ratio = long_times["numba loop, one channel"] / long_times["numba chunked (chunks of 1024)"]
verdict = "faster" if ratio > 1 else "slower"
print(
    f"the time-chunked kernel runs at {ratio:.2f}x the loop's speed here: {verdict} on this machine"
)

# %% [markdown]
# The check: the numba kernel is faster than the NumPy loop (by how much depends on the machine;
# the numbers above are this machine's).

# %%
assert times["numba kernel (scan_cpu)"] < loop_time
print(
    f"numba vs the NumPy loop on this machine: {loop_time / times['numba kernel (scan_cpu)']:.0f}x faster"
)

# %% [markdown]
# ### Training through the kernel
#
# Later lessons train models whose recurrences run on `scan_cpu.first_order_scan`: a
# `torch.autograd.Function` whose forward is the numba loop and whose backward is the numba
# reverse scan. Its gradients equal autograd's through the plain PyTorch loop:

# %%
a_g = torch.tensor(rng.uniform(0.5, 1.0, (8, 256)), requires_grad=True)
b_g = torch.tensor(rng.standard_normal((8, 256)), requires_grad=True)
scan_cpu.first_order_scan(a_g, b_g).square().sum().backward()
grads_kernel = (a_g.grad.clone(), b_g.grad.clone())
a_g.grad, b_g.grad = None, None
scan_cpu.torch_scan(a_g, b_g).square().sum().backward()
diff = max(
    (k - r).abs().max().item() for k, r in zip(grads_kernel, (a_g.grad, b_g.grad), strict=True)
)
print(f"numba autograd Function vs autograd of the torch loop: max gradient difference {diff:.1e}")
assert diff < 1e-9

# %% [markdown]
# ### A CUDA block scan, live (in the simulator)
#
# `scan_cuda.block_scan` launches one block per row; each thread loads one step $(a_t, b_t)$ into
# shared memory, and the block runs the up-sweep and down-sweep you stepped through above, with a
# `cuda.syncthreads()` barrier between levels. Without a GPU, numba's CUDA simulator runs every
# GPU thread as a Python thread: the same code, the same barriers, a lot slower. Then the
# multi-block version: chunks of 8 steps, one block each, a kernel for the carries, a kernel to
# carry in.

# %%
import time

from mamba_edu.kernels import scan_cuda

print("CUDA kernels run on:", scan_cuda.mode())
a_c = rng.uniform(-1, 1, (2, 16)).astype(np.float32)
b_c = rng.standard_normal((2, 16)).astype(np.float32)
start = time.perf_counter()
h_block = scan_cuda.block_scan(a_c, b_c)
print(
    f"block scan: 2 blocks of 16 threads, {time.perf_counter() - start:.2f} s in the {scan_cuda.mode()}"
)
print("h[0] from the block scan:", h_block[0, :6], "...")
print("h[0] from the NumPy loop:", scan.sequential_scan(a_c, b_c)[0, :6].astype(np.float32), "...")
assert np.allclose(h_block, scan.sequential_scan(a_c, b_c), rtol=1e-5, atol=1e-6)

a_m, b_m = rng.uniform(-1, 1, (2, 40)), rng.standard_normal((2, 40))
h_multi = scan_cuda.chunked_scan(a_m, b_m, block=8)
err = np.abs(h_multi - scan.sequential_scan(a_m, b_m)).max()
print(f"multi-block chunked scan, L = 40 in 5 blocks of 8 per row: max difference {err:.1e}")
assert err < 1e-12

# %% [markdown]
# ## What Mamba costs
#
# (This cell is here rather than in lesson 06 because it is about scans; lesson 06 measures the
# memory side on a CPU.) Mamba's selective scan runs one first-order recurrence per channel and
# per state entry: $h_t = \bar a_t h_{t-1} + \bar b_t$ on arrays of shape `(batch, D, N)`, for $L$
# steps. So:
#
# * **Work**: $O(\text{batch}\cdot L\cdot D\cdot N)$ multiply-adds, whatever scan computes it (the
#   sequential loop does exactly one per element and step; Blelloch about two; Hillis–Steele
#   $\log_2 L$ times more). Discretizing ($\exp(\Delta A)$, $\Delta B x$) and the readout $C h$
#   are of the same order.
# * **Depth** (sequential steps): $L$ for the loop, $O(\log L)$ for a parallel scan, $T + L/T$
#   for a chunked one. `mamba_ssm`'s kernel walks through its chunks one after another, so its
#   depth still grows linearly in $L$, but by a few dozen steps per 2,048-step chunk instead of
#   2,048 (our estimate in the cell below); the rest of its parallelism is across
#   $\text{batch}\cdot D$ (one block each).
# * **Where $O(L\log L)$ really appears.** A *time-invariant* SSM (S4, lesson 05) is a convolution
#   with a kernel of length $L$, which an FFT computes in $O(L\log L)$. A *selective* SSM (Mamba)
#   has no fixed kernel, so no FFT: its scan does $O(L)$ work per channel and state entry. The
#   "$O(n\log n)$" often quoted for Mamba (the course's source video says so too) is either that
#   FFT, which Mamba cannot use, or the *work* of the Hillis–Steele scan, which nobody needs to use.
# * **Bytes.** The states $h$ have shape `(batch, L, D, N)`. Written to memory (as a plain
#   PyTorch loop, or `selective_scan_ref`, does), they dominate the traffic; a fused kernel keeps
#   each state in registers, reads $x$, $\Delta$ `(batch, D, L)` and $B$, $C$ `(batch, N, L)`, and
#   writes $y$ `(batch, D, L)`. The counts below are arithmetic on the shapes, at 4 bytes a number,
#   for `d_model` = 768 with `mamba_ssm`'s defaults `expand` = 2 and `d_state` = 16 (so
#   $D$ = `d_inner` = 1536 and $N$ = 16).


# %%
def scan_costs(batch, L, D, N, bytes_per_number=4, chunk=2048):
    """Multiply-adds, sequential steps and bytes moved for a selective scan of these sizes."""
    work = batch * L * D * N  # one multiply-add per state entry and step
    io = (3 * batch * D * L + 2 * batch * N * L) * bytes_per_number  # x, delta, y; B, C
    states = batch * L * D * N * bytes_per_number  # h written once (and read once by C h)
    chunks = -(-L // chunk)
    return {
        "work": work,
        "depth_loop": L,
        "depth_blelloch": 2 * int(np.ceil(np.log2(L))),
        # an estimate per chunk: a thread reduces its 16 steps, a warp scan (5 levels), 4 warps
        # (2 levels), then the thread rescans its 16 steps from the prefix
        "depth_chunked": chunks * (16 + 5 + 2 + 16),
        "bytes_fused": io,
        "bytes_materialized": io + 2 * states,
    }


print(
    "  batch      L   work (GMAC)  depth: loop  Blelloch  chunked    fused (MB)  materialized (MB)"
)
for batch, L in ((1, 2048), (8, 2048), (8, 8192)):
    c = scan_costs(batch, L, D=1536, N=16)
    print(
        f"{batch:7d} {L:6d} {c['work'] / 1e9:12.2f} {c['depth_loop']:12d} {c['depth_blelloch']:9d} "
        f"{c['depth_chunked']:8d} {c['bytes_fused'] / 1e6:13.1f} {c['bytes_materialized'] / 1e6:18.1f}"
    )
ratio = c["bytes_materialized"] / c["bytes_fused"]
print(f"materializing the states moves {ratio:.0f}x the bytes of a fused kernel here")
assert 10 < ratio < 13  # 1 + 2·N·D / (3·D + 2·N) ≈ 1 + 2N/3 for D ≫ N: about 11.7 at N = 16

# %% [markdown]
# The ratio is $1 + 2ND/(3D + 2N) \approx 1 + 2N/3$ when $D \gg N$: the materialized states are
# $N$ times the size of one input array, written and read back once each. Materialized, every multiply-add of the scan
# comes with 8 bytes of memory traffic, and a GPU moves bytes far more slowly than it multiplies:
# the traffic, not the arithmetic, is what a kernel has to cut. Keeping the states on chip is what
# lets Mamba afford $N = 16$ (lesson 06 measures the memory of materializing on this CPU;
# lesson 08, on the roadmap, is planned to time the kernels).
#
# ## Summary
#
# * One step of a linear recurrence is a pair $(a, b)$; pairs compose with
#   $(a_1, b_1) \circ (a_2, b_2) = (a_1a_2, a_2b_1 + b_2)$, an associative (not commutative)
#   operator, checked numerically here to round-off.
# * Associativity lets a scan regroup the work: Hillis–Steele has depth $\log_2 n$ and work
#   $n\log_2 n$; Blelloch has depth $2\log_2 n$ and work $2n$. "Parallel scan is $O(n\log n)$" is
#   the work of the first only; what makes scans fast on a GPU is the logarithmic depth.
# * Hardware runs a chunked scan: scan inside chunks, scan the chunk totals, carry in.
# * The backward pass is a reverse scan; with complex numbers, mind the conjugates.
# * On this machine's CPU, the compiled sequential loop is the fastest scan; the parallel forms
#   pay off when there are many more lanes than this CPU has.
# * `mamba_ssm`'s CUDA kernel is a chunked scan (chunks of up to 2,048 steps, warp scans inside, a
#   carried prefix between chunks), not Blelloch. Mamba's work is $O(\text{batch}\cdot L\cdot D
#   \cdot N)$; $O(L\log L)$ belongs to the FFT of time-invariant models.
#
# ## Try it
#
# 1. In the Blelloch stepper, count the combines of each up-sweep and down-sweep step for $n = 16$
#    and check that they add up to $2(n-1)$. Which step has the most parallel work?
# 2. Time `scan.chunked_scan` on `(4, 4096)` with chunks of 16, 64, 256 and 1024. Where is it
#    fastest, and how does that compare with the $T \approx \sqrt{L}$ that minimizes depth?
# 3. With `scan_costs`, find the state size $N$ at which materializing the states moves 100 times
#    the bytes of the fused kernel, for $D = 1536$. What would that mean for choosing $N$?
#
# Next: **04 · Training linear RNNs (LRU)**, which trains a model on this scan.
