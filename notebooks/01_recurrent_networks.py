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
# # 01 · Recurrent networks: backpropagation through time, and why gradients vanish
#
# **The question.** Lesson 00 showed that a recurrence reads a sequence in linear time with a
# fixed-size state. So why did the field give up recurrent networks for Transformers? Two reasons,
# and this lesson measures both:
#
# 1. **They are hard to train.** The gradient that tells a weight how an input $k$ steps back
#    affected the loss is a product of $k$ Jacobians. Products of many matrices shrink or grow
#    geometrically: gradients *vanish* (the network cannot learn long-range dependencies) or
#    *explode* (training diverges). (Hochreiter, 1991; Bengio, Simard & Frasconi, 1994;
#    Pascanu, Mikolov & Bengio, 2013.)
# 2. **They are sequential.** Step $t$ needs the state of step $t-1$, so $L$ steps take $L$ times
#    as long, however many processors you have.
#
# You will write the network's forward pass, backpropagation through time by hand (checked against
# PyTorch's automatic differentiation), and the gradient norms that expose problem 1.

# %%
import numpy as np
import torch

from mamba_edu import bench, checks, plots, rnn, widgets

np.set_printoptions(precision=4, suppress=True)
print("Measurements in this notebook are taken on:", bench.machine_summary())

# %% [markdown]
# ## The recurrent network
#
# An RNN (Elman, 1990) applies the *same* small network at every step to two things: the new input
# $x_t$ and its own previous state $h_{t-1}$:
#
# $$a_t = W h_{t-1} + U x_t + b, \qquad h_t = \varphi(a_t), \qquad y_t = V h_t + c,$$
#
# with $h_{-1} = 0$. Shapes: inputs $x$ `(L, D)`, states $h$ `(L, N)`, outputs $y$ `(L, P)`;
# recurrent weights $W$ `(N, N)`, input weights $U$ `(N, D)`, bias $b$ `(N,)`, readout $V$
# `(P, N)`, $c$ `(P,)`. The nonlinearity $\varphi$ is `tanh`, `relu` or `identity` (no
# nonlinearity at all: the *linear* RNN of lesson 02). The readout $V, c$ plays no part in the
# recurrence, so the exercises leave it out.
#
# ### Exercise 1 — `rnn_forward`
#
# Write `rnn_forward(x, W, U, b, nonlinearity)` returning the states `h` of shape `(L, N)`.
# `nonlinearity` is one of the strings `"tanh"`, `"relu"`, `"identity"`. A loop over time is the
# right tool: it *is* the recurrence.


# %% nbgrader={"grade": false, "grade_id": "rnn_forward", "locked": false, "schema_version": 3, "solution": true}
def rnn_forward(x, W, U, b, nonlinearity):
    """h_t = phi(W h_{t-1} + U x_t + b), h_{-1} = 0. x: (L, D) -> h: (L, N)."""
    ### BEGIN SOLUTION
    phi = {"tanh": np.tanh, "relu": lambda a: np.maximum(a, 0.0), "identity": lambda a: a}
    h = np.zeros((x.shape[0], W.shape[0]))
    state = np.zeros(W.shape[0])
    for t in range(x.shape[0]):
        state = phi[nonlinearity](W @ state + U @ x[t] + b)
        h[t] = state
    return h
    ### END SOLUTION


# %%
checks.check_rnn_forward(rnn_forward)

# %% nbgrader={"grade": true, "grade_id": "rnn_forward_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false}
# Autograded: the hidden tests run the self-check and a few properties of the recurrence.
### BEGIN HIDDEN TESTS
assert checks.check_rnn_forward(rnn_forward, quiet=True)
_rng = np.random.default_rng(5)
_W, _U, _b = rnn.random_recurrent_matrix(4, 0.9, seed=5), _rng.standard_normal((4, 2)), np.zeros(4)
_x = _rng.standard_normal((9, 2))
_h = rnn_forward(_x, _W, _U, _b, "tanh")
assert np.allclose(_h[0], np.tanh(_U @ _x[0]))  # the first step starts from h = 0
_x2 = _x.copy()
_x2[6:] += 5.0  # later inputs cannot change earlier states
assert np.allclose(rnn_forward(_x2, _W, _U, _b, "tanh")[:6], _h[:6])
assert np.allclose(
    rnn_forward(_x, _W, _U, _b, "identity"), rnn.rnn_forward(_x, _W, _U, _b, "identity")
)
### END HIDDEN TESTS

# %% [markdown]
# ## Backpropagation through time (BPTT)
#
# To train, we need the gradient of a loss $\ell$ with respect to $W$, $U$ and $b$. Unroll the
# network over time and apply the chain rule backwards (Werbos, 1990). Write
# $\bar h_t = \partial \ell / \partial h_t$ for the *total* gradient reaching $h_t$. It has two
# parts: what the loss says about $h_t$ directly (through $y_t$), call it `dh[t]`, and what flows
# back from the next state, because $h_t$ also shaped $a_{t+1} = W h_t + \dots$:
#
# $$\bar h_t = \texttt{dh}_t + W^\top \delta_{t+1}, \qquad
#   \delta_t = \frac{\partial \ell}{\partial a_t} = \bar h_t \odot \varphi'(a_t), \qquad
#   \delta_L = 0.$$
#
# Each step then contributes to the weight gradients, summed over time because the same weights
# are used at every step:
#
# $$\frac{\partial \ell}{\partial W} = \sum_t \delta_t\, h_{t-1}^\top, \qquad
#   \frac{\partial \ell}{\partial U} = \sum_t \delta_t\, x_t^\top, \qquad
#   \frac{\partial \ell}{\partial b} = \sum_t \delta_t.$$
#
# The forward pass keeps $h_t = \varphi(a_t)$, and each $\varphi'$ can be written with it:
# $\tanh'(a) = 1 - \tanh(a)^2$; $\mathrm{relu}'(a) = 1$ where $h > 0$, else $0$; identity: $1$.
#
# ### Exercise 2 — `rnn_backward`
#
# Write `rnn_backward(x, h, dh, W, nonlinearity)` returning the tuple `(dW, dU, db)`, where `h`
# are the forward states `(L, N)` (computed from $h_{-1} = 0$) and `dh[t]` is the direct part of
# $\partial\ell/\partial h_t$, shape `(L, N)`. Each gradient has the shape of its parameter: `dW`
# `(N, N)`, `dU` `(N, D)`, `db` `(N,)` (sums over time of outer products `(N,) x (N,)` and
# `(N,) x (D,)`). Walk backwards through time. The self-check compares
# your gradients with **PyTorch autograd** on the same network, in float64.


# %% nbgrader={"grade": false, "grade_id": "rnn_backward", "locked": false, "schema_version": 3, "solution": true}
def rnn_backward(x, h, dh, W, nonlinearity):
    """BPTT: gradients (dW, dU, db) given states h (L, N) and direct gradients dh (L, N)."""
    ### BEGIN SOLUTION
    L, N = h.shape
    slope = {"tanh": 1.0 - h**2, "relu": (h > 0).astype(float), "identity": np.ones_like(h)}
    dW, dU, db = np.zeros((N, N)), np.zeros((N, x.shape[1])), np.zeros(N)
    from_next = np.zeros(N)
    for t in reversed(range(L)):
        delta = (dh[t] + from_next) * slope[nonlinearity][t]
        h_prev = h[t - 1] if t > 0 else np.zeros(N)
        dW += np.outer(delta, h_prev)
        dU += np.outer(delta, x[t])
        db += delta
        from_next = W.T @ delta
    return dW, dU, db
    ### END SOLUTION


# %%
checks.check_rnn_backward(rnn_backward)

# %% nbgrader={"grade": true, "grade_id": "rnn_backward_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false}
# Autograded: the hidden tests run the self-check (torch autograd) and compare with the reference.
### BEGIN HIDDEN TESTS
assert checks.check_rnn_backward(rnn_backward, quiet=True)
_rng = np.random.default_rng(6)
_W, _U, _b = (
    rnn.random_recurrent_matrix(5, 1.2, seed=6),
    _rng.standard_normal((5, 3)),
    _rng.standard_normal(5),
)
_x, _dh = _rng.standard_normal((30, 3)), _rng.standard_normal((30, 5))
for _phi in rnn.NONLINEARITIES:
    _h = rnn.rnn_forward(_x, _W, _U, _b, _phi)
    _ref = rnn.rnn_backward(_x, _h, _dh, _W, _phi)
    _got = rnn_backward(_x, _h, _dh, _W, _phi)
    for _g, _name in zip(_got, "WUb", strict=True):
        assert np.allclose(_g, _ref[_name], rtol=1e-8, atol=1e-10), (_phi, _name)
### END HIDDEN TESTS

# %% [markdown]
# ### The whole network against PyTorch
#
# The course's reference, `rnn.bptt`, adds the readout $y_t = V h_t + c$ and the loss
# $\ell = \tfrac12 \sum_t \lVert y_t - \text{target}_t\rVert^2$, and returns the gradient of
# **every** parameter, including the initial state $h_{-1}$. Below, PyTorch builds the same network
# from scratch and differentiates it automatically. The two share no code; in float64 they must
# agree to about twelve digits.

# %%
D, N, P, L = 3, 8, 2, 40
params = rnn.init_rnn(D, N, P, radius=0.95, seed=1)
params["b"] = np.random.default_rng(2).standard_normal(N) * 0.1
x = np.random.default_rng(3).standard_normal((L, D))
target = np.random.default_rng(4).standard_normal((L, P))


def torch_gradients(params, x, target, nonlinearity):
    """The same network and loss in PyTorch; gradients by autograd."""
    p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    p["h0"] = torch.zeros(N, dtype=torch.float64, requires_grad=True)
    phi = {"tanh": torch.tanh, "relu": torch.relu, "identity": lambda a: a}[nonlinearity]
    h, loss = p["h0"], 0.0
    for t in range(len(x)):
        h = phi(p["W"] @ h + p["U"] @ torch.tensor(x[t]) + p["b"])
        loss = loss + 0.5 * ((p["V"] @ h + p["c"] - torch.tensor(target[t])) ** 2).sum()
    loss.backward()
    return {k: v.grad.numpy() for k, v in p.items()}


worst = 0.0
for nonlinearity in rnn.NONLINEARITIES:
    ours = rnn.bptt(params, x, target, nonlinearity).grads
    theirs = torch_gradients(params, x, target, nonlinearity)
    errors = {k: np.max(np.abs(ours[k] - theirs[k])) / np.max(np.abs(theirs[k])) for k in theirs}
    worst = max(worst, *errors.values())
    print(
        f"{nonlinearity:>8}: largest relative difference per parameter:",
        {k: f"{e:.1e}" for k, e in errors.items()},
    )
assert worst <= 1e-8, f"hand BPTT and autograd differ by {worst:.2e}"
print(f"hand-written BPTT = torch autograd, worst relative difference {worst:.1e} (float64)")

# %% [markdown]
# ## Why gradients vanish or explode
#
# Follow the backward recursion from the last state $h_T$ ($T = L-1$) to an earlier one: each step
# back multiplies by the Jacobian $J_s = \partial h_{s}/\partial h_{s-1} = \operatorname{diag}(\varphi'(a_s))\,W$.
# Matrices do not commute, so the order matters: by the chain rule the *latest* step stands on the
# left,
#
# $$\frac{\partial h_T}{\partial h_t} = J_T\, J_{T-1} \cdots J_{t+1}
#   = \operatorname{diag}(\varphi'(a_T))\,W\;\operatorname{diag}(\varphi'(a_{T-1}))\,W \cdots
#     \operatorname{diag}(\varphi'(a_{t+1}))\,W .$$
#
# For the linear network ($\varphi$ = identity) this is $W^{T-t}$, and
# $\lVert W^k \rVert^{1/k} \to \rho(W)$, the **spectral radius** (largest eigenvalue magnitude;
# Gelfand's formula). So $\lVert \partial h_T / \partial h_t \rVert \approx \rho^{T-t}$: with
# $\rho = 0.9$ an input 50 steps back reaches the loss with weight $0.9^{50} \approx 0.005$; with
# $\rho = 1.1$, with weight $117$. With $\tanh$, $0 < \varphi' \le 1$, and that caps the
# **bound**: $\lVert \partial h_T/\partial h_t \rVert \le \prod_s \lVert\operatorname{diag}(\varphi'(a_s))\rVert\,
# \lVert W\rVert \le \sigma_{\max}(W)^{T-t}$. Pascanu et al. (2013, Sec. 2.1) use exactly this bound
# to show that the gradient must vanish when the largest *singular value* of $W$ is below
# $1/\gamma$, with $\gamma$ the largest slope of $\varphi$ (1 for $\tanh$). So a $\tanh$ RNN that
# remembers needs $W$ large enough to amplify, which drives the units into saturation or makes the
# linear part explode. There is no comfortable middle.
#
# Careful with the word "shrinks", though: $\tanh$ lowers the *bound*, not necessarily the
# gradient itself. When $W$ is not normal ($W W^\top \ne W^\top W$), the product of the Jacobians
# can be *larger* with the slopes in between than without them. The cell below shows an extreme
# case: $W = 0.9\begin{pmatrix}1 & 1\\ -1 & -1\end{pmatrix}$ has $W^2 = 0$, so the linear
# network's gradient is exactly 0 after two steps, while the $\tanh$ network's, whose two units
# have different slopes, stays of order 1.

# %%
W_nn = 0.9 * np.array([[1.0, 1.0], [-1.0, -1.0]])  # non-normal: W² = 0, largest singular value 1.8
U_nn, b_nn, x_nn = np.array([[2.0], [0.0]]), np.array([0.0, 0.5]), np.ones((8, 1))
grad_norms = {}
for phi in ("identity", "tanh"):
    h_nn = rnn.rnn_forward(x_nn, W_nn, U_nn, b_nn, phi)
    grad_norms[phi] = rnn.jacobian_norms(h_nn, W_nn, phi)[::-1]  # index = distance T - t
print("distance T - t:       ", "  ".join(f"{k:8d}" for k in range(8)))
for phi, norms in grad_norms.items():
    print(f"‖∂h_T/∂h_t‖, {phi:8}:", "  ".join(f"{v:8.1e}" for v in norms))
print(f"spectral radius of W: {max(abs(np.linalg.eigvals(W_nn))):.1e}; "
      f"largest singular value: {np.linalg.norm(W_nn, 2):.2f}")  # fmt: skip
assert np.all(grad_norms["identity"][2:] < 1e-12)  # W^k = 0 for k >= 2
assert np.all(grad_norms["tanh"][2:] > 0.1)  # the tanh gradient is far larger
assert np.all(grad_norms["tanh"] <= np.linalg.norm(W_nn, 2) ** np.arange(8) + 1e-12)  # the bound

# %% [markdown]
# The bound $\sigma_{\max}(W)^{T-t} = 1.8^{T-t}$ holds (asserted), and it says nothing useful
# here; the linear network's gradient is *not* an upper bound for the $\tanh$ network's. For the
# random Gaussian matrices used below, the $\tanh$ network does forget faster, as measured; it is
# a fact about those matrices, not a theorem.
#
# ### Exercise 3 — `jacobian_norms`
#
# Write `jacobian_norms(h, W, nonlinearity)` returning the array of
# $\lVert \partial h_T/\partial h_t \rVert_2$ for $t = 0, \dots, T$ (shape `(L,)`; the last entry
# is $\lVert I \rVert = 1$). Build the products from the end: $J_T = I$,
# $J_t = J_{t+1} \operatorname{diag}(\varphi'(a_{t+1}))\, W$. The norm is the spectral norm,
# `np.linalg.norm(J, 2)` (the largest singular value).


# %% nbgrader={"grade": false, "grade_id": "jacobian_norms", "locked": false, "schema_version": 3, "solution": true}
def jacobian_norms(h, W, nonlinearity):
    """||d h_T / d h_t||_2 for t = 0..T. h: (L, N), W: (N, N) -> (L,)."""
    ### BEGIN SOLUTION
    L, N = h.shape
    slope = {"tanh": 1.0 - h**2, "relu": (h > 0).astype(float), "identity": np.ones_like(h)}
    norms = np.zeros(L)
    J = np.eye(N)
    norms[L - 1] = 1.0
    for t in reversed(range(L - 1)):
        J = J @ np.diag(slope[nonlinearity][t + 1]) @ W
        norms[t] = np.linalg.norm(J, 2)
    return norms
    ### END SOLUTION


# %%
checks.check_jacobian_norms(jacobian_norms)

# %% nbgrader={"grade": true, "grade_id": "jacobian_norms_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false}
# Autograded: the hidden tests run the self-check and the exact case of a scaled rotation.
### BEGIN HIDDEN TESTS
assert checks.check_jacobian_norms(jacobian_norms, quiet=True)
_Q, _ = np.linalg.qr(np.random.default_rng(7).standard_normal((5, 5)))
assert np.allclose(
    jacobian_norms(np.zeros((12, 5)), 1.1 * _Q, "identity"), 1.1 ** np.arange(11, -1, -1)
)
_h = rnn.rnn_forward(
    np.ones((10, 1)),
    rnn.random_recurrent_matrix(5, 0.9, seed=1),
    np.ones((5, 1)),
    np.zeros(5),
    "relu",
)
assert np.allclose(
    jacobian_norms(_h, rnn.random_recurrent_matrix(5, 0.9, seed=1), "relu"),
    rnn.jacobian_norms(_h, rnn.random_recurrent_matrix(5, 0.9, seed=1), "relu"),
)
### END HIDDEN TESTS

# %% [markdown]
# ### The gradient explorer
#
# A random RNN with 32 states reads a noise sequence. Left: $\lVert\partial h_T/\partial h_t\rVert$
# against the distance $T - t$ on a log scale, with the linear theory $\rho^{T-t}$ dashed. A
# straight line on this plot is geometric decay; its slope is the log of the factor per step.
# Right: four state units over time. Try:
#
# * `identity`: the measured line follows $\rho^k$; below 1 it vanishes, above 1 it explodes, and
#   the states explode with it.
# * `tanh` at the same $\rho$: the decay is steeper (saturated units have $\varphi' \approx 0$),
#   and raising $\rho$ above 1 does not save the gradient: it saturates the states instead.
# * `relu`: units that are off pass no gradient at all.
# * the length: longer sequences make the gap between near and far inputs astronomically large.

# %%
explorer = widgets.gradient_explorer(radius=0.9, nonlinearity="tanh", L=100)
explorer

# %% [markdown]
# ## Claims vs. measurements: the decay rate is $\log \rho$
#
# **Claim** (Bengio et al., 1994; Pascanu et al., 2013). In a linear RNN,
# $\lVert \partial h_T/\partial h_t \rVert$ decays or grows like $\rho(W)^{T-t}$, so the slope of
# $\log \lVert \partial h_T/\partial h_t \rVert$ against the distance is $\log \rho$.
#
# We measure it on random $32 \times 32$ matrices rescaled to seven spectral radii, fitting the
# slope over distances 30 to 119 (past the first few steps, where the other eigenvalues still
# count), and compare with $\log\rho$. The same measurement on a $\tanh$ network reading a noise
# input shows how much faster the nonlinear network forgets.

# %%
radii = [0.6, 0.8, 0.9, 0.95, 1.05, 1.1, 1.2]
L_decay, N_decay = 120, 32
U_decay = np.random.default_rng(0).standard_normal((N_decay, 1)) * 0.5
x_decay = np.random.default_rng(1).standard_normal((L_decay, 1))
linear_slopes, tanh_slopes = [], []
print(" rho    log rho   measured (identity)  rel. error   measured (tanh)")
for radius in radii:
    W = rnn.random_recurrent_matrix(N_decay, radius, seed=2)
    h_lin = rnn.rnn_forward(x_decay, W, U_decay, np.zeros(N_decay), "identity")
    h_tanh = rnn.rnn_forward(x_decay, W, U_decay, np.zeros(N_decay), "tanh")
    linear_slopes.append(rnn.decay_rate(rnn.jacobian_norms(h_lin, W, "identity"), start=30))
    tanh_slopes.append(rnn.decay_rate(rnn.jacobian_norms(h_tanh, W, "tanh"), start=30))
    rel = abs(linear_slopes[-1] - np.log(radius)) / abs(np.log(radius))
    print(
        f"{radius:4.2f}   {np.log(radius):+.4f}   {linear_slopes[-1]:+.4f}"
        f"              {rel:6.2%}       {tanh_slopes[-1]:+.4f}"
    )

fig = plots.measured_vs_theory(
    np.log(radii),
    {"identity (linear RNN)": linear_slopes, "tanh RNN": tanh_slopes},
    xlabel="log ρ(W) (theory)",
    ylabel="fitted slope of log ‖∂h_T/∂h_t‖ per step",
    title="Gradient decay rate against the spectral radius (this machine)",
)

# %% [markdown]
# The check: for the linear network every measured slope is within 10% of $\log\rho$; the $\tanh$
# network's slope is at or below it: for these random matrices it forgets at least as fast (the
# counter-example above shows this is measured, not guaranteed).

# %%
rel_errors = np.abs(np.array(linear_slopes) - np.log(radii)) / np.abs(np.log(radii))
assert np.all(rel_errors < 0.10), f"relative errors {np.round(rel_errors, 3)}"
assert np.all(np.array(tanh_slopes) <= np.array(linear_slopes) + 1e-3)
print(f"largest relative error of the linear slopes: {rel_errors.max():.2%} (asserted < 10%)")
print(
    f"with rho = 0.9, an input 100 steps back reaches the loss with weight about "
    f"{np.exp(100 * linear_slopes[2]):.1e} (linear) and {np.exp(100 * tanh_slopes[2]):.1e} (tanh)"
)

# %% [markdown]
# ## The historical fixes: gates and clipping
#
# Two answers came before linear recurrences, and both are still in use.
#
# **Gates** (Hochreiter & Schmidhuber, 1997). The LSTM adds a *memory cell* whose self-connection
# has weight 1, so the error flowing back through it is neither shrunk nor grown (the paper's
# "constant error carousel"), and multiplicative *gate units*, sigmoids computed from the input and
# the state, that learn when to open and close access to that cell. The abstract reports time lags
# of more than 1000 steps bridged this way. The GRU (Cho et al., 2014) keeps the idea with two
# gates: a *reset* gate that lets the candidate state ignore the previous state, and an *update*
# gate that sets, unit by unit, how much of the previous state is carried over and how much is
# replaced. Where the update gate keeps the state, the step's Jacobian is close to the identity,
# and the gradient passes through unchanged. Lesson 06 makes Mamba's step size $\Delta$ depend on
# the input: a large $\Delta$ resets the state, a tiny one leaves it as it was, which is a gate of
# this kind (its forgetting explorer shows both).
#
# **Gradient clipping** (Pascanu et al., 2013). Against *exploding* gradients: when the gradient's
# norm exceeds a threshold, rescale it to the threshold, keeping its direction. It does nothing
# for vanishing gradients (for those the same paper proposes a regularizer). In one line, on the
# gradients of a linear RNN with $\rho = 1.2$ (the course's `rnn.bptt`):

# %%
params_big = rnn.init_rnn(D, N, P, radius=1.2, seed=1)
grads = rnn.bptt(params_big, x, target, "identity").grads
flat = np.concatenate([g.ravel() for g in grads.values()])
threshold = 1.0
clipped = flat * min(1.0, threshold / np.linalg.norm(flat))  # the clipping rule
cosine = flat @ clipped / (np.linalg.norm(flat) * np.linalg.norm(clipped))
print(
    f"gradient norm {np.linalg.norm(flat):.3g} -> {np.linalg.norm(clipped):.3g} after clipping at "
    f"{threshold}; cosine between the two directions {cosine:.6f}"
)
assert np.isclose(np.linalg.norm(clipped), threshold) and np.isclose(cosine, 1.0)

# %% [markdown]
# ## Claims vs. measurements: the recurrence is sequential
#
# **Claim.** An RNN's time grows linearly with $L$, and no step can start before the last one has
# finished: $h_t$ needs $h_{t-1}$.
#
# First, time `rnn.rnn_forward` (the reference, $N = 64$ states) as $L$ doubles. Then the sharper
# test: process the **same number of tokens** (4096) once as one long sequence and once as 64
# sequences of 64 steps run side by side. The arithmetic is identical; only the number of
# sequential steps differs. Batched sequences are independent, so their steps happen together;
# the time steps of one sequence cannot. Everything runs on one core (`bench.one_thread()`), so
# the comparison is about steps, not about how many cores a library happens to use, and
# `bench.time_sweep` times all the inputs in turns, so a burst of load from another program costs
# each of them at most one of its five measurements (the best one is kept).

# %%
N_cost, D_cost = 64, 8
W_cost = rnn.random_recurrent_matrix(N_cost, 0.9, seed=3)
U_cost = np.random.default_rng(4).standard_normal((N_cost, D_cost)) / np.sqrt(D_cost)
b_cost = np.zeros(N_cost)
lengths = [256, 512, 1024, 2048, 4096]
tokens = 4096
one_long = np.random.default_rng(5).standard_normal((tokens, D_cost))
many_short = one_long.reshape(64, 64, D_cost)  # (B, L, D): 64 sequences of 64 steps
inputs = {L_c: np.random.default_rng(L_c).standard_normal((L_c, D_cost)) for L_c in lengths}
calls = {
    L_c: lambda x=x_c: rnn.rnn_forward(x, W_cost, U_cost, b_cost) for L_c, x_c in inputs.items()
}
calls["long"] = lambda: rnn.rnn_forward(one_long, W_cost, U_cost, b_cost)
calls["batch"] = lambda: rnn.rnn_forward(many_short, W_cost, U_cost, b_cost)
with bench.one_thread():  # one core: compare sequential steps, not how BLAS spreads work
    measured = bench.time_sweep(calls, repeat=5)  # all sizes in turns: a load burst hits each once
times = [measured[L_c] for L_c in lengths]
t_long, t_batch = measured["long"], measured["batch"]
for L_c, t in zip(lengths, times, strict=True):
    print(f"L = {L_c:5d}: {t * 1e3:7.2f} ms  ({t / L_c * 1e6:.1f} µs per step)")
slope_L = bench.loglog_slope(lengths, times)
fig = plots.loglog_timings(
    lengths,
    {"RNN forward": times},
    slopes={"RNN forward": slope_L},
    title=f"RNN forward, N = {N_cost} (this machine)",
)
print(f"fitted slope of time against L: {slope_L:.2f} (measured on this machine)")
print(
    f"{tokens} tokens as 1 sequence of {tokens} steps: {t_long * 1e3:.1f} ms; "
    f"as 64 sequences of 64 steps: {t_batch * 1e3:.1f} ms ({t_long / t_batch:.0f}x faster)"
)

# %% [markdown]
# The check: the fitted slope is close to 1 (timings on a shared machine are noisy, so the assertion
# allows 0.7 to 1.5; a quadratic cost would give 2), and the same tokens take several times longer
# as one long sequence than as a batch of short ones.

# %%
assert 0.7 < slope_L < 1.5, f"time grows like L^{slope_L:.2f}: expected close to 1 (linear)"
assert t_long > 3 * t_batch, "the same work in fewer sequential steps should be much faster"

# %% [markdown]
# Same tokens, same arithmetic, and the long sequence is many times slower: its time is set by the
# number of *sequential* steps, not the amount of work. A GPU makes this worse, not better: it has
# thousands of lanes and the recurrence can use only as many as the batch and state are wide.
#
# ## Summary
#
# * An RNN applies one network to the input and the previous state: $h_t = \varphi(W h_{t-1} + U x_t + b)$.
# * BPTT runs the recurrence backwards: $\bar h_t = \texttt{dh}_t + W^\top\delta_{t+1}$,
#   $\delta_t = \bar h_t \odot \varphi'(a_t)$. Your hand-written version matched PyTorch autograd.
# * $\partial h_T/\partial h_t = J_T \cdots J_{t+1}$, latest Jacobian on the left. Its norm behaves
#   like $\rho(W)^{T-t}$ (measured: within a few percent for a linear RNN). $\tanh$'s slopes lower
#   the bound $\sigma_{\max}(W)^{T-t}$; on random matrices they made the gradient decay faster, but
#   for a non-normal $W$ they can make it larger (shown above). Long-range learning needs
#   $\rho \approx 1$, where it is fragile.
# * Gates (LSTM, GRU) and gradient clipping were the historical fixes; gates are where Mamba's
#   selectivity comes from.
# * The time is linear in $L$ and set by the sequential steps.
#
# ## Try it
#
# 1. In the gradient explorer, set `identity` and $\rho = 1$. The dashed theory is flat; is the
#    measured line? Why can $\lVert W^k\rVert$ differ from $\rho^k$ for small $k$ even when they
#    agree for large $k$ (think of the counter-example's $W$)?
# 2. Change the counter-example's `b_nn` so that both units have the same slope at every step
#    (for example by making both pre-activations zero). What happens to the $\tanh$ gradient, and
#    why does $v^\top D u$ (with $W = 0.9\,u v^\top$, $u = (1, -1)$, $v = (1, 1)$) explain it?
# 3. In the clipping cell, lower `threshold` to 0.1. The direction does not change; what does?
#    Why can clipping not help a *vanishing* gradient?
#
# Next, **02 · Linear RNNs**: what if we drop $\varphi$ altogether? The recurrence becomes a matrix
# power we can analyse exactly, diagonalize, and (in lesson 03) compute in parallel.
