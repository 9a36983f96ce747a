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
# # 05 · State-space models: S4 and S4D
#
# > **Notation** (the course's one table, `docs/NOTATION.md`): input $x_t$, state $h_t$, output $y_t$;
# > $A, B, C, D$ the state matrix, input map, output map and skip; $\Delta$ the step (`delta`),
# > $\bar A, \bar B$ its discretized $A, B$; $N$ the state size (`d_state`); $D$ also counts
# > channels in shapes; the batch size is `batch`, never $B$. The S4 papers write $u$ for the input
# > and $x$ for the state: here they are $x$ and $h$.
#
# **The question.** Lessons 02–04 treated a linear recurrence $h_k = \bar A h_{k-1} + \bar B x_k$ as
# a discrete object and asked how to initialize and parametrize $\bar A$. The S4 family (Gu, Goel &
# Ré, 2022; Gu et al., 2022 for S4D) starts somewhere else: from a *continuous-time* system that is
# sampled with a step $\Delta$. Why would that help, and what does it buy us?
#
# Three things, all checked in this lesson:
#
# 1. **A timescale.** $\Delta$ sets how fast the state forgets, separately from the dynamics $A$.
# 2. **Theory for the initialization.** HiPPO chooses $A$ so that the state is an optimal summary of
#    the whole input history.
# 3. **Two ways to compute one model.** The recurrence, or one long convolution, computed with the
#    FFT in $O(L \log L)$: this is where "$n \log n$" honestly appears in this story.

# %%
import numpy as np

from mamba_edu import bench, checks, lru, plots, ssm, widgets

np.set_printoptions(precision=4, suppress=True)
print("Timings in this notebook are measured on:", bench.machine_summary())

# %% [markdown]
# ## The continuous state-space model
#
# $$h'(t) = A\,h(t) + B\,x(t), \qquad y(t) = C\,h(t)$$
#
# with a state $h(t) \in \mathbb{R}^N$ (or $\mathbb{C}^N$), one input channel $x$ and one output $y$.
# Sampled every $\Delta$ it becomes a recurrence $h_k = \bar A h_{k-1} + \bar B x_k$, $y_k = C h_k$,
# and the *discretization rule* decides $(\bar A, \bar B)$:
#
# | rule | $\bar A$ | $\bar B$ |
# |---|---|---|
# | Euler | $I + \Delta A$ | $\Delta B$ |
# | bilinear (S4) | $(I - \tfrac{\Delta}{2}A)^{-1}(I + \tfrac{\Delta}{2}A)$ | $(I - \tfrac{\Delta}{2}A)^{-1}\Delta B$ |
# | zero-order hold (S4D, Mamba) | $e^{\Delta A}$ | $(\Delta A)^{-1}(e^{\Delta A} - I)\,\Delta B$ |
#
# Zero-order hold (ZOH) assumes the input is constant during each step and then solves the ODE
# exactly. For a diagonal $A$ (eigenvalues $\lambda_n$) every formula acts entry by entry.
#
# *Paper vs code.* Mamba discretizes $A$ with ZOH but uses the Euler rule $\bar B = \Delta B$ for
# $B$: that is what the official `selective_scan` computes, and what lesson 06 follows.
#
# ### Exercise 1 — zero-order hold for a diagonal $A$
#
# Write `zoh(lam, B, dt)`: `lam` and `B` are complex arrays of shape `(N,)`; return `(Ab, Bb)`, both
# `(N,)`, with $\bar A_n = e^{\Delta\lambda_n}$ and $\bar B_n = \frac{e^{\Delta\lambda_n} - 1}{\lambda_n} B_n$.


# %% nbgrader={"grade": false, "grade_id": "zoh", "locked": false, "schema_version": 3, "solution": true}
def zoh(lam, B, dt):
    """Zero-order hold for a diagonal SSM. lam, B: (N,) complex; dt > 0 -> (Ab, Bb), each (N,)."""
    ### BEGIN SOLUTION
    Ab = np.exp(dt * lam)
    Bb = (Ab - 1) / lam * B
    return Ab, Bb
    ### END SOLUTION


# %%
checks.check_zoh(zoh)

# %% nbgrader={"grade": true, "grade_id": "zoh_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false}
# Autograded: the hidden tests run the self-check and test the small-step limit.
### BEGIN HIDDEN TESTS
assert checks.check_zoh(zoh, quiet=True)
_lam = ssm.s4d_lin(6)
_Ab, _Bb = zoh(_lam, np.ones(6, dtype=complex), 1e-7)
assert np.allclose(_Bb, 1e-7, rtol=1e-5)  # (e^{Δλ} − 1)/λ → Δ as Δ → 0
### END HIDDEN TESTS

# %% [markdown]
# ### Claims vs. measurements: how accurate is each rule?
#
# **Claim.** Euler is a first-order method (error $\propto \Delta$), bilinear second-order
# (error $\propto \Delta^2$), and ZOH is exact when the input is constant over each step.
#
# The test: free decay of $h' = \lambda h$ from $h(0) = 1$ with $\lambda = -1 + 4i$, for one time unit,
# compared with the exact $e^{\lambda t}$. (No input, so ZOH's assumption holds trivially.)

# %%
lam_test = np.array([-1.0 + 4.0j])
steps = np.array([0.1, 0.05, 0.02, 0.01, 0.005, 0.002])
errors = {method: [] for method in ssm.METHODS}
for dt in steps:
    k = round(1.0 / dt)
    for method in ssm.METHODS:
        Ab, _ = ssm.discretize(lam_test, np.ones(1), dt, method)
        errors[method].append(abs(Ab[0] ** k - np.exp(lam_test[0])))
for method in ssm.METHODS:
    print(
        f"{method:>8}: error at Δ = 0.1 → 0.002: " + ", ".join(f"{e:.1e}" for e in errors[method])
    )
order_euler = bench.loglog_slope(steps, errors["euler"])
order_bilinear = bench.loglog_slope(steps, errors["bilinear"])
print(
    f"fitted orders: Euler {order_euler:.2f}, bilinear {order_bilinear:.2f}; ZOH largest error {max(errors['zoh']):.1e}"
)
assert 0.8 < order_euler < 1.2 and 1.8 < order_bilinear < 2.2
assert max(errors["zoh"]) < 1e-12

# %% [markdown]
# ## HiPPO: a state that summarizes the whole past
#
# What should $A$ be? HiPPO (Gu et al., 2020) answers: choose the dynamics so that the state holds the
# coefficients of the best polynomial approximation of the input's history. With the *scaled Legendre*
# measure (LegS), which weighs all of the past equally,
#
# $$A_{nk} = -\begin{cases} \sqrt{2n+1}\sqrt{2k+1} & n > k \\ n + 1 & n = k \\ 0 & n < k\end{cases},
# \qquad B_n = \sqrt{2n+1},$$
#
# and the time-varying system $h'(t) = \tfrac1t A h(t) + \tfrac1t B x(t)$ keeps $h(t)$ equal to the
# Legendre coefficients of $x$ on $[0, t]$. So the history can be *read back* from $N$ numbers:
# $x(s) \approx \sum_n h_n \sqrt{2n+1}\, P_n(2s/t - 1)$.
#
# **What S4 actually runs is not this system.** The $\tfrac1t$ makes LegS time-varying: it is the
# system the widget below simulates. S4 takes LegS's $A$ and uses it in the *time-invariant*
# $h' = A h + B x$, sampled with a learned step $\Delta$. Why that still remembers well was explained
# only later ("How to Train Your HiPPO", Gu, Johnson, Timalsina, Rudra & Ré 2022, abstract and
# Section 3: the time-invariant system projects onto exponentially warped Legendre polynomials).

# %%
A_legs, B_legs = ssm.hippo_legs(4)
print("HiPPO-LegS A for N = 4:\n", A_legs, "\nB =", B_legs)

# %% [markdown]
# Move $N$ and watch the reconstruction of the whole signal from the final state. Small $N$ gives a
# blurred past; large $N$ a sharp one, as long as the sampling is fine enough ($\Delta = 1/\text{samples}$):
# with $N = 64$ and only 250 samples the discretization error shows up in the high-order coefficients.
# Sharp edges (the square wave) need many more coefficients than smooth signals.

# %%
hippo = widgets.hippo_explorer(N=16)
hippo

# %% [markdown]
# Measured: reconstruction error of the "two sines" signal against $N$, sampled 1000 times.

# %%
t = np.linspace(0, 1, 1000)
signal = np.sin(2 * np.pi * 3 * t) + 0.5 * np.cos(2 * np.pi * 7 * t)
for N in (4, 8, 16, 32):
    coeffs = ssm.hippo_legs_online(signal, N)[-1]
    rms = np.sqrt(np.mean((ssm.legendre_reconstruct(coeffs, t.size) - signal) ** 2))
    print(
        f"N = {N:2d}: RMS error of the whole 1000-step history read back from {N} numbers: {rms:.4f}"
    )

# %% [markdown]
# ## From S4 to S4D: the normal part of HiPPO
#
# LegS's $A$ is lower triangular, so its eigenvalues are its diagonal, $-(n+1)$; but it is far from
# normal, and diagonalizing it is numerically hopeless (its eigenvectors have exponentially large
# entries: S4, Section 3.1). S4 (Gu, Goel & Ré 2022, Section 3) writes it instead as **normal plus
# low rank** (NPLR): with $P_n = \sqrt{n + \tfrac12}$,
#
# $$A = A_{\text{normal}} - P P^\top, \qquad A_{\text{normal}} = -\tfrac12 I + S, \quad S^\top = -S.$$
#
# The rank-one term is the part of LegS that is not normal: it belongs to HiPPO's matrix, it is not
# added to make anything fast. The speed comes from the normal part: a normal matrix is diagonalized
# by a unitary matrix, stably, and the rank-one term is then folded in with the Woodbury identity,
# which turns the kernel into a Cauchy-kernel product (S4, Section 3 and its Algorithm 1). A
# skew-symmetric $S$ has imaginary eigenvalues, so **every eigenvalue of the normal part is
# $-\tfrac12 + i\omega$**. Checked for $N = 16$:

# %%
A_legs16, _ = ssm.hippo_legs(16)
A_normal, P = ssm.hippo_legs_normal(16)
skew = A_normal + 0.5 * np.eye(16)
normal_eigs = np.linalg.eigvals(A_normal)
print(f"A_normal − P Pᵀ equals LegS's A: {np.allclose(A_normal - np.outer(P, P), A_legs16)}")
print(f"S = A_normal + ½I is skew-symmetric: largest |S + Sᵀ| = {np.abs(skew + skew.T).max():.1e}")
print(
    f"real parts of A_normal's eigenvalues: {normal_eigs.real.min():.6f} … {normal_eigs.real.max():.6f}"
)
print(
    f"eigenvalues of LegS's A itself (its diagonal): {np.sort(np.linalg.eigvals(A_legs16).real)[-4:]} …"
)
assert np.allclose(A_normal - np.outer(P, P), A_legs16)
assert np.allclose(normal_eigs.real, -0.5, atol=1e-9)

# %% [markdown]
# ## S4D: diagonal initializations
#
# S4D (Gu, Gupta, Goel & Ré 2022, "On the Parameterization and Initialization of Diagonal State
# Space Models", Section 4) drops the low-rank term and keeps a *diagonal* $A$ whose eigenvalues are
# chosen well; it does about as well as S4:
#
# * **S4D-LegS:** the eigenvalues of LegS's normal part, $-\tfrac12 + i\omega_n$ (computed above);
# * **S4D-Lin:** $\lambda_n = -\tfrac12 + i\pi n$ and **S4D-Inv:**
#   $\lambda_n = -\tfrac12 + i\,\tfrac{N}{\pi}\left(\tfrac{N}{2n+1} - 1\right)$: closed forms whose
#   imaginary parts approximate the $\omega_n$ (the real part $-\tfrac12$ is the normal part's);
# * **S4D-Real:** $\lambda_n = -(n+1)$: the diagonal, hence the spectrum, of the lower-triangular
#   LegS matrix *itself* (not of its normal part). Mamba's default (as $A_n = -n$, $n = 1 \dots N$).
#
# The picture puts the normal part's eigenvalues next to S4D-Lin and S4D-Inv ($N = 32$, continuous
# time, before any $\Delta$): same real part, imaginary parts that S4D-Lin spaces evenly and S4D-Inv
# bunches like the normal part does. (Only one of each conjugate pair is kept: $\mathrm{Im} \ge 0$.)

# %%
import matplotlib.pyplot as plt

normal32 = np.linalg.eigvals(ssm.hippo_legs_normal(32)[0])
normal32 = np.sort_complex(normal32[normal32.imag >= 0])
fig, ax = plt.subplots(figsize=(8, 3.2))
ax.plot(normal32.real, normal32.imag, "o", ms=5, label="LegS normal part (S4D-LegS)")
ax.plot(
    ssm.s4d_lin(32).real + 0.02, ssm.s4d_lin(32).imag, "x", label="S4D-Lin (shifted 0.02 right)"
)
ax.plot(ssm.s4d_inv(32).real - 0.02, ssm.s4d_inv(32).imag, "+", label="S4D-Inv (shifted 0.02 left)")
ax.plot(ssm.s4d_real(32), np.zeros(32), "s", ms=3, label="S4D-Real = diag of LegS")
ax.set_yscale("symlog", linthresh=1.0)
ax.set_xlabel("Re λ")
ax.set_ylabel("Im λ (symlog)")
ax.set_title("continuous-time eigenvalues, N = 32")
ax.legend(fontsize=7, loc="upper left")
fig.tight_layout()

# %% [markdown]
# *Paper vs code:* the Mamba paper writes S4D-Lin as $-\tfrac12 + in$, without the $\pi$ (its
# Section 3.6, arXiv:2312.00752; the LRU paper, arXiv:2303.06349, Section 2, writes
# $-\tfrac12 + i\pi n$); the official S4 code (which trained the reported models) has the $\pi$, and
# so does this course.
#
# Discretized with ZOH, each continuous eigenvalue becomes $\bar\lambda = e^{\Delta\lambda}$: the left
# half-plane maps into the unit disk, so every $\Delta > 0$ gives a stable recurrence, and $\Delta$ sets
# how close to the circle (how long the memory) the eigenvalues sit.

# %%
N = 32
inits = {
    "S4D-Real": ssm.s4d_real(N).astype(complex),
    "S4D-Lin": ssm.s4d_lin(N),
    "S4D-Inv": ssm.s4d_inv(N),
}
dt = 0.05
fig = plots.complex_plane(
    {name: ssm.discretize(lam, np.ones(N), dt, "zoh")[0] for name, lam in inits.items()},
    title=f"discretized eigenvalues exp(Δλ), N = {N}, Δ = {dt}",
)

# %% [markdown]
# ## The convolution view
#
# Unrolling the recurrence from $h_{-1} = 0$ gives $y_k = \sum_{j \le k} C \bar A^{j} \bar B\, x_{k-j}$: a
# causal convolution $y = K * x$ with the kernel $K_l = C \bar A^l \bar B$. For a diagonal $\bar A$ the
# kernel is a product with a Vandermonde matrix, $K_l = \sum_n C_n \bar B_n \bar\lambda_n^{\,l}$.
#
# ### Exercise 2 — the Vandermonde kernel
#
# Write `vandermonde_kernel(Ab, Bb, C, L)` for a diagonal $\bar A$ (all arguments `(N,)`, complex)
# returning `K` of shape `(L,)`. Hint: build the `(N, L)` matrix of powers $\bar\lambda_n^{\,l}$ with
# broadcasting, no loop needed.


# %% nbgrader={"grade": false, "grade_id": "vandermonde_kernel", "locked": false, "schema_version": 3, "solution": true}
def vandermonde_kernel(Ab, Bb, C, L):
    """K_l = sum_n C_n Bb_n Ab_n**l for l = 0..L-1. Ab, Bb, C: (N,) complex -> K: (L,) complex."""
    ### BEGIN SOLUTION
    powers = Ab[:, None] ** np.arange(L)[None, :]
    return (C * Bb) @ powers
    ### END SOLUTION


# %%
checks.check_vandermonde_kernel(vandermonde_kernel)

# %% nbgrader={"grade": true, "grade_id": "vandermonde_kernel_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false}
# Autograded: the hidden tests run the self-check and compare with a dense SSM.
### BEGIN HIDDEN TESTS
assert checks.check_vandermonde_kernel(vandermonde_kernel, quiet=True)
_lam = np.array([0.9, 0.5 + 0.3j, -0.2j])
_B = np.array([1.0, 2.0, -1.0], dtype=complex)
_C = np.array([0.5, 1.0j, 1.0])
assert np.allclose(vandermonde_kernel(_lam, _B, _C, 6), ssm.ssm_kernel(np.diag(_lam), _B, _C, 6))
### END HIDDEN TESTS

# %% [markdown]
# The kernels of the three initializations (one input, one output, $B = C = 1$, output $2\,\mathrm{Re}$
# because S4D keeps one eigenvalue of each conjugate pair): S4D-Real gives a sum of decaying
# exponentials; the imaginary parts of Lin and Inv add oscillations, a basis of frequencies.

# %%

L = 200
fig, ax = plt.subplots(figsize=(8, 3))
for name, lam in inits.items():
    Ab, Bb = ssm.discretize(lam, np.ones(N, dtype=complex), dt, "zoh")
    ax.plot(2 * ssm.ssm_kernel(Ab, Bb, np.ones(N, dtype=complex), L).real, label=name)
ax.set_xlabel("lag l")
ax.set_ylabel("K_l")
ax.set_title(f"SSM convolution kernels, N = {N}, Δ = {dt}")
ax.legend()
fig.tight_layout()

# %% [markdown]
# **Recurrence = convolution**, asserted: the same S4D-Lin layer run step by step and as one
# convolution, on a random input.

# %%
rng = np.random.default_rng(0)
x = rng.standard_normal(500)
C = rng.standard_normal(N) + 1j * rng.standard_normal(N)
Ab, Bb = ssm.discretize(inits["S4D-Lin"], np.ones(N, dtype=complex), dt, "zoh")
y_recurrent = ssm.ssm_recurrence(Ab, Bb, C, x)
y_convolution = ssm.causal_conv(x, ssm.ssm_kernel(Ab, Bb, C, x.size))
gap = np.max(np.abs(y_recurrent - y_convolution)) / np.max(np.abs(y_recurrent))
print(f"largest relative difference between the two views: {gap:.1e}")
assert gap < 1e-8

# %% [markdown]
# ### Exercise 3 — causal convolution with the FFT
#
# A direct convolution of length $L$ costs $O(L^2)$. The FFT turns convolution into multiplication:
# $O(L \log L)$. But the FFT computes a *circular* convolution: the end of the sequence wraps around
# onto its start. Pad both `x` and `K` with zeros to length $2L$ (`np.fft.rfft(x, n=2 * L)`),
# multiply, transform back (`np.fft.irfft(..., n=2 * L)`) and keep the first $L$ values.
#
# Write `fft_causal_conv(x, K)` for real `x` and `K` of shape `(L,)`.


# %% nbgrader={"grade": false, "grade_id": "fft_causal_conv", "locked": false, "schema_version": 3, "solution": true}
def fft_causal_conv(x, K):
    """Causal convolution y_k = sum_{j<=k} K_j x_{k-j} via the FFT. x, K: (L,) real -> y: (L,)."""
    ### BEGIN SOLUTION
    L = x.shape[0]
    spectrum = np.fft.rfft(x, n=2 * L) * np.fft.rfft(K, n=2 * L)
    return np.fft.irfft(spectrum, n=2 * L)[:L]
    ### END SOLUTION


# %%
checks.check_fft_causal_conv(fft_causal_conv)

# %% nbgrader={"grade": true, "grade_id": "fft_causal_conv_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false}
# Autograded: the hidden tests run the self-check and test causality.
### BEGIN HIDDEN TESTS
assert checks.check_fft_causal_conv(fft_causal_conv, quiet=True)
_x, _K = np.random.default_rng(5).standard_normal((2, 64))
_x2 = _x.copy()
_x2[40:] = 0.0
assert np.allclose(fft_causal_conv(_x2, _K)[:40], fft_causal_conv(_x, _K)[:40])
### END HIDDEN TESTS

# %% [markdown]
# ## Claims vs. measurements: $L^2$, $L$ and $L \log L$
#
# Three ways to compute the same output, timed as $L$ grows (one channel, $N = 32$, this machine):
# the direct convolution (`np.convolve`, compiled, $O(L^2)$), the FFT convolution ($O(L\log L)$) and
# the recurrence (a Python loop over time, $O(LN)$). The kernel is computed once beforehand, as a
# trained S4 layer would.

# %%
lengths = [512, 1024, 2048, 4096, 8192, 16384]
calls = {}
for L in lengths:
    x = rng.standard_normal(L)
    K = 2 * ssm.ssm_kernel(Ab, Bb, C, L).real
    calls["direct convolution", L] = lambda x=x, K=K: ssm.causal_conv(x, K)
    calls["FFT convolution", L] = lambda x=x, K=K: ssm.fft_conv(x, K)
with bench.one_thread():  # one core: the slopes should measure work, not thread scheduling
    measured = bench.time_sweep(calls, repeat=5)  # every size in turns: a load burst hits each once
    for L in lengths:  # the Python loop is slow and its slope is not asserted: one run each
        x = rng.standard_normal(L)
        measured["recurrence", L] = bench.time_call(ssm.ssm_recurrence, Ab, Bb, C, x, repeat=1)
timings = {
    name: [measured[name, L] for L in lengths]
    for name in ("direct convolution", "FFT convolution", "recurrence")
}
slopes = {name: bench.loglog_slope(lengths[2:], times[2:]) for name, times in timings.items()}
for name, times in timings.items():
    print(
        f"{name:>19}: "
        + "  ".join(f"{t * 1e3:8.2f}" for t in times)
        + f"  ms   slope {slopes[name]:.2f}"
    )
fig = plots.loglog_timings(lengths, timings, slopes=slopes, title="one SSM channel, this machine")

# %% [markdown]
# The slopes are fitted on the four longest lengths. Direct convolution grows about quadratically,
# the FFT close to linearly (the $\log L$ factor barely bends a log-log line), and the Python
# recurrence linearly but with a large constant: at these lengths the FFT is the fastest by far on a
# CPU. The catch for the next lesson: the convolution view needs the *same* kernel at every position,
# a time-invariant model. Mamba gives that up.

# %%
assert slopes["direct convolution"] > 1.5
assert slopes["FFT convolution"] < 1.4
speedup = timings["direct convolution"][-1] / timings["FFT convolution"][-1]
print(
    f"At L = {lengths[-1]}, the FFT convolution is {speedup:.0f}x faster than the direct one on this machine."
)

# %% [markdown]
# ## LRU and S4D, side by side
#
# The LRU of lesson 04 and S4D compute the *same* thing: a complex diagonal linear recurrence read out
# through $\mathrm{Re}(C h)$. They differ only in how the eigenvalues are parametrized and initialized:
#
# | | LRU | S4D |
# |---|---|---|
# | eigenvalue | $\lambda = e^{-e^{\nu} + i e^{\theta}}$, learned directly | $\bar\lambda = e^{\Delta\lambda}$, $\lambda$ and $\Delta$ learned |
# | initialization | uniform on a ring $r_{\min} \le \lvert\lambda\rvert \le r_{\max}$ | S4D-Lin/Inv/Real with $\Delta$ log-uniform in $[10^{-3}, 10^{-1}]$, **one $\Delta$ per channel**, shared by its $N$ eigenvalues |
# | input scaling | $\gamma = \sqrt{1 - \lvert\lambda\rvert^2}$ | $\bar B$ from ZOH ($\approx \Delta B$ for small $\Delta$) |
#
# The picture shows both sets of eigenvalues; the check below runs an LRU layer through the SSM
# convolution of this lesson and recovers the LRU's own output.

# %%
H, N_lru = 1, 64
params = lru.init_lru(H, N_lru, r_min=0.9, r_max=0.999, max_phase=np.pi / 10, rng=1)
# S4D draws one Δ per channel: the N eigenvalues of a channel share it. Four channels of 16:
log_dt = rng.uniform(np.log(1e-3), np.log(1e-1), 4)
s4d_eigs = {
    f"S4D-Lin, channel {c}, Δ = {np.exp(ld):.3f}": np.exp(np.exp(ld) * ssm.s4d_lin(16))
    for c, ld in enumerate(log_dt)
}
fig = plots.complex_plane(
    {"LRU ring [0.9, 0.999], phase ≤ π/10": params.lam, **s4d_eigs},
    title="two initializations of one recurrence",
)

x = rng.standard_normal((300, H))
gamma = np.exp(params.gamma_log)
K_lru = ssm.ssm_kernel(params.lam, gamma * params.B[:, 0], params.C[0], 300)
# y = Re(K * x) and x is real, so only the real part of the kernel matters
y_as_ssm = ssm.fft_conv(x[:, 0], K_lru.real) + params.D[0] * x[:, 0]
y_lru = lru.lru_forward(params, x)[:, 0]
print(
    f"LRU layer vs the same layer as an SSM convolution: largest difference {np.max(np.abs(y_lru - y_as_ssm)):.1e}"
)
assert np.allclose(y_lru, y_as_ssm, atol=1e-9)

# %% [markdown]
# ## Summary
#
# * A continuous SSM plus a step $\Delta$ gives a linear recurrence; ZOH maps stable continuous
#   eigenvalues into the unit disk for every $\Delta$. Euler is first-order, bilinear second-order
#   (measured above).
# * HiPPO-LegS makes the state a Legendre summary of the whole history; $N$ numbers read it back.
#   S4 runs LegS's $A$ as a time-invariant system with a learned $\Delta$, in normal-plus-low-rank
#   form; its speed comes from diagonalizing the normal part ($-\tfrac12 I$ + skew-symmetric).
# * S4D: a diagonal $A$ with Real/Lin/Inv eigenvalues (Lin/Inv: the normal part's $-\tfrac12 + i\omega$;
#   Real: LegS's own diagonal), one $\Delta$ per channel; its kernel is a Vandermonde product.
# * A time-invariant SSM is a convolution: recurrence and convolution agree to $10^{-8}$, and the
#   FFT computes it in $O(L \log L)$, measured as the flattest line above.
# * LRU and S4D are the same recurrence with different parametrizations.
#
# ## Try it
#
# 1. Compute the eigenvalues of LegS's normal part for $N = 64$ and compare their imaginary parts
#    with S4D-Inv's formula: where does the approximation hold, and where does it drift?
# 2. Repeat the discretization test with $\lambda = -1 + 40i$: at which $\Delta$ does Euler stop
#    being stable ($|1 + \Delta\lambda| > 1$), and what do bilinear and ZOH do there?
# 3. In the timing cell, make the recurrence vectorized over $N$ but still looped over time: does
#    its slope change, or only its constant?
#
# Next: **06 · Selectivity**, where $\Delta$, $B$ and $C$ start to depend on the input, and the
# convolution view is lost.
