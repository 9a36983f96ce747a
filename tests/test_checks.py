"""The self-check harness: each way a learner's function can go wrong is caught and named."""

import sys
import threading
import time

import numpy as np
import pytest

from mamba_edu import checks
from mamba_edu.checks import Case, check_function


def reference(x, a):
    return x * a


CASES = [Case("small", (np.arange(4.0), 2.0)), Case("bigger", (np.linspace(-1, 1, 9), -0.5))]


def run(fn, **kw):
    return check_function(fn, reference, CASES, exercise="demo", quiet=True, **kw)


def test_correct_function_passes_and_says_so(capsys):
    result = check_function(lambda x, a: a * x, reference, CASES, exercise="demo")
    assert result and result.passed == result.total == 2
    assert "✅ demo: all 2 cases match" in capsys.readouterr().out


def test_not_implemented_gets_a_friendly_message():
    def stub(x, a):
        raise NotImplementedError()

    result = run(stub)
    assert not result
    assert "not implemented yet" in result.message
    assert "Traceback" not in result.message


def test_exception_is_reported_with_the_learner_line():
    def broken(x, a):
        return x * undefined_name  # noqa: F821

    result = run(broken)
    assert not result
    assert "NameError" in result.message and "undefined_name" in result.message
    assert "case 'small'" in result.message
    assert "line" in result.message


def test_wrong_shape_is_named():
    result = run(lambda x, a: (x * a)[None, :])
    assert not result
    assert "shape (4,)" in result.message and "(1, 4)" in result.message


def test_wrong_dtype_is_named():
    result = run(lambda x, a: (x * a).astype(np.int64))
    assert "floating point" in result.message and "int64" in result.message
    result = run(lambda x, a: (x * a).astype(np.float32))
    assert "float32" in result.message and "float64" in result.message
    result = run(lambda x, a: (x * a).astype(complex))
    assert "complex" in result.message


def test_none_return_suggests_return():
    result = run(lambda x, a: None)
    assert "forget to `return`" in result.message


def test_nan_is_reported_at_its_index():
    def nan_at_2(x, a):
        y = x * a
        y[2] = np.nan
        return y

    result = run(nan_at_2)
    assert not result
    assert "nan" in result.message.lower() and "index (2,)" in result.message
    assert "expected 4" in result.message


def test_value_mismatch_names_first_index_expected_and_got():
    def off_by_one(x, a):
        y = x * a
        y[3] += 1.0
        return y

    result = run(off_by_one)
    assert "index (3,)" in result.message
    assert "expected 6" in result.message and "got 7" in result.message
    assert "1 of 4 value(s) differ" in result.message


def test_input_mutation_is_caught():
    def mutating(x, a):
        x *= a
        return x

    result = run(mutating)
    assert not result
    assert "changed its input `x` in place" in result.message
    assert "index (1,)" in result.message


def test_infinite_loop_is_stopped_and_harness_survives():
    def forever(x, a):
        while True:
            pass

    result = run(forever, timeout=0.5)
    assert not result
    assert "stopped after" in result.message and "never ends" in result.message
    # the process is fine: a later check still works
    assert run(lambda x, a: x * a)


def test_loop_that_swallows_exceptions_is_still_stopped():
    def stubborn(x, a):
        while True:
            try:
                sum(range(1000))
            except Exception:
                pass

    assert "stopped after" in run(stubborn, timeout=0.5).message


def test_timeout_works_outside_the_main_thread():
    box = {}

    def forever(x, a):
        while True:
            pass

    worker = threading.Thread(target=lambda: box.setdefault("r", run(forever, timeout=0.5)))
    worker.start()
    worker.join(10)
    assert not worker.is_alive()
    assert "stopped after" in box["r"].message


def test_not_a_function():
    result = run(np.arange(3))
    assert "expected a function" in result.message


def test_tuple_outputs_compared_element_by_element():
    def ref(x):
        return x + 1, x * 2

    good = check_function(
        lambda x: (x + 1, 2 * x), ref, [Case("c", (np.ones(3),))], exercise="t", quiet=True
    )
    assert good
    bad = check_function(
        lambda x: (x + 1, 3 * x), ref, [Case("c", (np.ones(3),))], exercise="t", quiet=True
    )
    assert "your output[1]" in bad.message
    short = check_function(
        lambda x: x + 1, ref, [Case("c", (np.ones(3),))], exercise="t", quiet=True
    )
    assert "tuple of 2 values" in short.message


def test_list_return_is_accepted_as_array():
    assert run(lambda x, a: list(x * a))


def test_result_display_is_quiet_in_notebooks():
    result = run(lambda x, a: x * a)
    assert result._ipython_display_() is None
    assert "passed, 2/2" in repr(result)


# The lesson 00 exercise checks accept the solutions and reject typical mistakes.


def good_running_state(x, a):
    h = np.zeros_like(x, dtype=float)
    state = np.zeros(x.shape[1])
    for t in range(len(x)):
        state = a * state + x[t]
        h[t] = state
    return h


def test_check_running_state():
    assert checks.check_running_state(good_running_state, quiet=True)

    def off_by_one_step(x, a):  # uses x_{t-1}: a classic mistake
        return np.vstack([np.zeros((1, x.shape[1])), good_running_state(x, a)[:-1]])

    result = checks.check_running_state(off_by_one_step, quiet=True)
    assert not result and "index (0, 0)" in result.message


def test_check_causal_attention_finds_missing_max_subtraction():
    def naive(q, k, v):
        L, d = q.shape
        with np.errstate(all="ignore"):
            s = np.exp(q @ k.T / np.sqrt(d)) * np.tril(np.ones((L, L)))
            return (s / s.sum(1, keepdims=True)) @ v

    result = checks.check_causal_attention(naive, quiet=True)
    assert not result
    assert "large scores" in result.message and "non-finite" in result.message

    def no_mask(q, k, v):
        s = q @ k.T / np.sqrt(q.shape[1])
        w = np.exp(s - s.max(1, keepdims=True))
        return (w / w.sum(1, keepdims=True)) @ v

    assert not checks.check_causal_attention(no_mask, quiet=True)


@pytest.mark.parametrize("bad", [lambda *a: 1 / 0, lambda *a: "text"])
def test_attention_check_survives_bad_functions(bad):
    assert not checks.check_causal_attention(bad, quiet=True)


# The lesson 01 and 02 exercise checks accept the references and reject typical mistakes.


def test_check_rnn_forward():
    from mamba_edu import rnn

    assert checks.check_rnn_forward(rnn.rnn_forward, quiet=True)

    def no_state_at_first_step_uses_x_previous(x, W, U, b, nonlinearity):
        h = rnn.rnn_forward(x, W, U, b, nonlinearity)
        return np.vstack([np.zeros((1, W.shape[0])), h[:-1]])

    result = checks.check_rnn_forward(no_state_at_first_step_uses_x_previous, quiet=True)
    assert not result and "index (0, 0)" in result.message and "Hint" in result.message

    def always_tanh(x, W, U, b, nonlinearity):
        return rnn.rnn_forward(x, W, U, b, "tanh")

    result = checks.check_rnn_forward(always_tanh, quiet=True)
    assert not result and "relu" in result.message


def test_check_rnn_backward_uses_autograd_and_names_the_gradient():
    from mamba_edu import rnn

    def reference(x, h, dh, W, nonlinearity):
        g = rnn.rnn_backward(x, h, dh, W, nonlinearity)
        return g["W"], g["U"], g["b"]

    assert checks.check_rnn_backward(reference, quiet=True)

    def no_gradient_through_time(x, h, dh, W, nonlinearity):
        delta = dh * rnn.activation_derivative(h, nonlinearity)
        prev = np.vstack([np.zeros((1, h.shape[1])), h[:-1]])
        return delta.T @ prev, delta.T @ x, delta.sum(0)

    result = checks.check_rnn_backward(no_gradient_through_time, quiet=True)
    assert not result and "your dW differs" in result.message
    assert "W.T @ delta" in result.message  # the hint
    assert "L = 1" not in result.message  # it fails on the first random case, before L = 1

    def transposed_dW(x, h, dh, W, nonlinearity):
        dW, dU, db = reference(x, h, dh, W, nonlinearity)
        return dW.T, dU, db

    assert "your dW" in checks.check_rnn_backward(transposed_dW, quiet=True).message

    def returns_dict(x, h, dh, W, nonlinearity):
        return rnn.rnn_backward(x, h, dh, W, nonlinearity)

    assert "tuple of 3 values" in checks.check_rnn_backward(returns_dict, quiet=True).message


def test_check_jacobian_norms():
    from mamba_edu import rnn

    assert checks.check_jacobian_norms(rnn.jacobian_norms, quiet=True)

    def frobenius(h, W, nonlinearity):
        J = rnn.state_jacobians(h, W, nonlinearity)
        return np.linalg.norm(J, axis=(1, 2))

    result = checks.check_jacobian_norms(frobenius, quiet=True)
    assert not result and "spectral norm" in result.message

    def forgot_derivative(h, W, nonlinearity):
        return rnn.jacobian_norms(h, W, "identity")

    result = checks.check_jacobian_norms(forgot_derivative, quiet=True)
    assert not result and "tanh" in result.message


def test_check_linear_rnn_and_kernel():
    from mamba_edu import linear_rnn as lr

    assert checks.check_linear_rnn(lr.linear_rnn, quiet=True)
    assert checks.check_convolution_kernel(lr.convolution_kernel, quiet=True)

    def states_not_outputs(x, A, B, C):
        return lr.linear_rnn(x, A, B, C, return_states=True)[1]

    result = checks.check_linear_rnn(states_not_outputs, quiet=True)
    assert not result and "shape" in result.message

    def kernel_starts_at_A(A, B, C, L):
        return np.stack([C @ np.linalg.matrix_power(A, j + 1) @ B for j in range(L)])

    result = checks.check_convolution_kernel(kernel_starts_at_A, quiet=True)
    assert not result and "index (0, 0, 0)" in result.message and "K[0] = C @ B" in result.message


def test_check_diagonalize():
    from mamba_edu import linear_rnn as lr

    def eig_solution(A, B, C):
        lam, V = np.linalg.eig(A)
        return lam, np.linalg.solve(V, B), C @ V

    assert checks.check_diagonalize(eig_solution, quiet=True)
    assert checks.check_diagonalize(lambda A, B, C: tuple(lr.diagonalize(A, B, C)), quiet=True)
    # any scaling of the eigenvectors is fine
    assert checks.check_diagonalize(
        lambda A, B, C: (lambda lam, V: (lam, np.linalg.solve(3j * V, B), C @ (3j * V)))(
            *np.linalg.eig(A)
        ),
        quiet=True,
    )

    def inverse_swapped(A, B, C):
        lam, V = np.linalg.eig(A)
        return lam, V @ B, C @ np.linalg.inv(V)

    result = checks.check_diagonalize(inverse_swapped, quiet=True)
    assert not result and "diagonal recurrence built from your" in result.message

    def real_part_too_early(A, B, C):
        lam, V = np.linalg.eig(A)
        return lam.real, np.linalg.solve(V, B).real, (C @ V).real

    result = checks.check_diagonalize(real_part_too_early, quiet=True)
    assert not result and "complex eigenvalue pairs" in result.message

    result = checks.check_diagonalize(lambda A, B, C: np.linalg.eig(A), quiet=True)
    assert not result and "tuple (lam, B_tilde, C_tilde)" in result.message


# Lesson 05 checks: accept the reference, reject typical mistakes with a message naming what differs.


def test_check_zoh():
    from mamba_edu import ssm

    assert checks.check_zoh(lambda lam, B, dt: ssm.discretize(lam, B, dt, "zoh"), quiet=True)
    euler_b = checks.check_zoh(lambda lam, B, dt: (np.exp(dt * lam), dt * B), quiet=True)
    assert not euler_b and "your output[1] differs" in euler_b.message


def test_check_vandermonde_kernel():
    from mamba_edu import ssm

    assert checks.check_vandermonde_kernel(ssm.ssm_kernel, quiet=True)

    def starts_at_power_one(Ab, Bb, C, L):
        return (C * Bb) @ (Ab[:, None] ** np.arange(1, L + 1)[None, :])

    result = checks.check_vandermonde_kernel(starts_at_power_one, quiet=True)
    assert not result and "index (0,)" in result.message


def test_check_fft_causal_conv_catches_circular_convolution():
    from mamba_edu import ssm

    assert checks.check_fft_causal_conv(ssm.fft_conv, quiet=True)

    def circular(u, K):
        return np.fft.irfft(np.fft.rfft(u) * np.fft.rfft(K), n=u.shape[0])

    result = checks.check_fft_causal_conv(circular, quiet=True)
    assert not result and "differs at index" in result.message


# Lesson 04 checks.


def test_check_lru_eigenvalues():
    from mamba_edu import lru

    assert checks.check_lru_eigenvalues(lru.eigenvalues, quiet=True)
    sign_slip = checks.check_lru_eigenvalues(
        lambda nu, th: np.exp(np.exp(nu) + 1j * np.exp(th)), quiet=True
    )
    assert not sign_slip and "differs" in sign_slip.message


def test_check_ring_init_tests_the_distribution():
    from mamba_edu import lru

    assert checks.check_ring_init(
        lambda N, a, b, p, rng: lru.ring_init(N, a, b, p, rng=rng), quiet=True
    )

    def uniform_radius(N, r_min, r_max, max_phase, rng):  # |λ| uniform instead of |λ|²
        r = rng.uniform(r_min, r_max, N)
        return np.log(-np.log(r)), np.log(max_phase * rng.uniform(size=N))

    result = checks.check_ring_init(uniform_radius, quiet=True)
    assert not result and "uniform in area" in result.message

    def too_wide(N, r_min, r_max, max_phase, rng):
        return lru.ring_init(N, r_min, r_max, 2 * np.pi, rng=rng)

    assert "phases" in checks.check_ring_init(too_wide, quiet=True).message
    assert "pair" in checks.check_ring_init(lambda *a: np.zeros(3), quiet=True).message


def test_check_gamma():
    assert checks.check_gamma(lambda lam: np.sqrt(1 - np.abs(lam) ** 2), quiet=True)
    result = checks.check_gamma(lambda lam: np.sqrt(1 - lam**2), quiet=True)  # forgot the modulus
    assert not result


def test_check_function_needs_reference_or_validate():
    with pytest.raises(ValueError, match="exactly one"):
        check_function(abs, None, [], exercise="x")


# ----------------------------------------------------------------------------------------------
# Lesson 03 — parallel scan
# ----------------------------------------------------------------------------------------------


def test_check_combine_accepts_the_operator_and_names_the_swapped_product():
    assert checks.check_combine(lambda l, r: (l[0] * r[0], r[0] * l[1] + r[1]), quiet=True)
    # a typical mistake: composing in the wrong order, a1·b2 + b1
    result = checks.check_combine(lambda l, r: (l[0] * r[0], l[0] * r[1] + l[1]), quiet=True)
    assert not result
    assert "your output[1] differs" in result.message


def test_check_associativity_gap():
    def gap(op, x, y, z):
        left, right = op(op(x, y), z), op(x, op(y, z))
        return max(
            float(np.max(np.abs(np.asarray(p) - np.asarray(q))))
            for p, q in zip(left, right, strict=True)
        )

    assert checks.check_associativity_gap(gap, quiet=True)
    # a typical mistake: comparing only the first component (a), which always associates
    result = checks.check_associativity_gap(
        lambda op, x, y, z: float(np.max(np.abs(op(op(x, y), z)[0] - op(x, op(y, z))[0]))),
        quiet=True,
    )
    assert not result and "averaging" in result.message


def test_check_hillis_steele():
    from mamba_edu import scan

    assert checks.check_hillis_steele(scan.hillis_steele_scan, quiet=True)

    def overwrites_while_reading(a, b):  # updates in place inside a step: reads new values
        A, B = np.array(a, dtype=complex), np.array(b, dtype=complex)
        L, d = A.shape[-1], 1
        while d < L:
            for t in range(d, L):
                A[..., t], B[..., t] = (
                    A[..., t - d] * A[..., t],
                    A[..., t] * B[..., t - d] + B[..., t],
                )
            d *= 2
        return B.real if np.isrealobj(b) and np.isrealobj(a) else B

    result = checks.check_hillis_steele(overwrites_while_reading, quiet=True)
    assert not result and "differs at index" in result.message


def test_check_chunked_scan():
    from mamba_edu import scan

    assert checks.check_chunked_scan(
        lambda a, b, chunk: scan.chunked_scan(a, b, chunk=chunk), quiet=True
    )

    def no_carry(a, b, chunk):  # every chunk starts from zero: the carry is forgotten
        h = np.empty(np.broadcast_shapes(a.shape, b.shape), dtype=np.result_type(a, b, float))
        for s in range(0, a.shape[-1], chunk):
            h[..., s : s + chunk] = scan.sequential_scan(
                a[..., s : s + chunk], b[..., s : s + chunk]
            )
        return h

    result = checks.check_chunked_scan(no_carry, quiet=True)
    assert not result and "L = 12, chunk = 4" in result.message and "index (4,)" in result.message


# ----------------------------------------------------------------------------------------------
# Lesson 06
# ----------------------------------------------------------------------------------------------


def _selective_loop(u, delta, A, B, C, *, euler_a=False, forget_delta_on_b=False):
    D, L = u.shape
    h = np.zeros(A.shape)
    y = np.empty((D, L))
    for t in range(L):
        dt = delta[:, t, None]
        decay = 1 + dt * A if euler_a else np.exp(dt * A)
        drive = B[None, :, t] * u[:, t, None]
        h = decay * h + (drive if forget_delta_on_b else dt * drive)
        y[:, t] = h @ C[:, t]
    return y


def test_check_selective_scan_loop():
    assert checks.check_selective_scan_loop(_selective_loop, quiet=True)
    no_delta = checks.check_selective_scan_loop(
        lambda *a: _selective_loop(*a, forget_delta_on_b=True), quiet=True
    )
    assert not no_delta and "differs" in no_delta.message
    # Euler for A is close for small Δ but not the zero-order hold: the huge-Δ case catches it
    euler = checks.check_selective_scan_loop(
        lambda *a: _selective_loop(*a, euler_a=True), quiet=True
    )
    assert not euler
    transposed = checks.check_selective_scan_loop(
        lambda u, delta, A, B, C: _selective_loop(u, delta, A, B, C).T, quiet=True
    )
    assert not transposed and "shape" in transposed.message


def test_check_influence():
    from mamba_edu import selective

    assert checks.check_influence(selective.influence, quiet=True)

    def off_by_one(delta, a):  # includes Δ_s itself in the decay
        L = len(delta)
        M = np.zeros((L, L))
        for t in range(L):
            for s in range(t + 1):
                M[t, s] = delta[s] * np.exp(a * delta[s : t + 1].sum())
        return M

    result = checks.check_influence(off_by_one, quiet=True)
    assert not result and "index (0, 0)" in result.message
    upper = checks.check_influence(lambda d, a: selective.influence(d, a).T, quiet=True)
    assert not upper


def _gated_rnn(x, z, *, euler_b=False):
    """Theorem 1's gated RNN, written independently of the check: h_t = (1 − g_t) h_{t−1} + g_t x_t
    with g_t = σ(z_t); ``euler_b`` gives the input weight softplus(z_t) instead (mamba_ssm's B̄)."""
    g = 1 / (1 + np.exp(-z))
    weight = np.logaddexp(0.0, z) if euler_b else g
    h, out = 0.0, []
    for t in range(len(x)):
        h = (1 - g[t]) * h + weight[t] * x[t]
        out.append(h)
    return np.array(out)


def test_check_s6_one_state_accepts_the_gated_rnn_and_rejects_euler():
    assert checks.check_s6_one_state(_gated_rnn, quiet=True)
    euler = checks.check_s6_one_state(lambda x, z: _gated_rnn(x, z, euler_b=True), quiet=True)
    assert not euler and "differs" in euler.message


# ----------------------------------------------------------------------------------------------
# Hostile learner code: the harness reports it and the caller's process carries on
# ----------------------------------------------------------------------------------------------


def bare_except_around_long_loop(x, a):
    while True:
        try:
            for _ in range(10**9):
                pass
        except:  # noqa: E722 - the point of the test
            pass


def sleeps_and_swallows(x, a):
    while True:
        try:
            time.sleep(5)
        except BaseException:
            pass


@pytest.mark.parametrize("stubborn", [bare_except_around_long_loop, sleeps_and_swallows])
def test_bare_except_cannot_swallow_the_time_limit(stubborn):
    start = time.perf_counter()
    result = run(stubborn, timeout=0.3)
    assert not result and "stopped after" in result.message and "case 'small'" in result.message
    assert time.perf_counter() - start < 5
    assert sys.gettrace() is None  # no tracer left behind
    assert run(lambda x, a: x * a)  # and the next check works


def test_bare_except_cannot_swallow_the_time_limit_outside_the_main_thread():
    box = {}
    worker = threading.Thread(
        target=lambda: box.setdefault("r", run(bare_except_around_long_loop, timeout=0.3))
    )
    worker.start()
    worker.join(10)
    assert not worker.is_alive()
    assert "stopped after" in box["r"].message
    assert "still runs" not in box["r"].message


@pytest.mark.parametrize(
    "exit_call, words",
    [
        (lambda: sys.exit(3), "SystemExit(3)"),
        (lambda: exit(), "SystemExit"),
        (lambda: (_ for _ in ()).throw(SystemExit("bye")), "SystemExit('bye')"),
        (lambda: (_ for _ in ()).throw(KeyboardInterrupt()), "KeyboardInterrupt"),
    ],
)
def test_exiting_is_reported_and_the_process_survives(exit_call, words):
    def leaves(x, a):
        exit_call()

    result = run(leaves)
    assert not result and words in result.message and "case 'small'" in result.message


def test_a_mask_does_not_hide_a_mismatch():
    def masks_its_mistake(x, a):
        wrong = x * a + 1.0
        return np.ma.masked_array(wrong, mask=np.ones_like(wrong, dtype=bool))

    result = run(masks_its_mistake)
    assert not result and "differs at index (0,)" in result.message and "got 1" in result.message
    assert run(lambda x, a: np.ma.masked_array(x * a, mask=x > 0))  # right values, some masked


class Liar(np.ndarray):
    """Claims to equal anything, to be close to anything, and to have any shape."""

    def __eq__(self, other):
        return np.ones(np.shape(other), dtype=bool)

    __ne__ = lambda self, other: np.zeros(np.shape(other), dtype=bool)  # noqa: E731

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return np.zeros(np.broadcast_shapes(*(np.shape(i) for i in inputs)), dtype=bool) | True

    def __array_function__(self, func, types, args, kwargs):
        return True

    @property
    def shape(self):
        return (4,)

    def __array__(self, dtype=None, copy=None):
        return np.arange(4.0) * 2.0


class ArrayLike:
    """Not an ndarray: its __array__ answers differently on each call."""

    def __init__(self, values):
        self.values, self.calls = values, 0

    def __array__(self, dtype=None, copy=None):
        self.calls += 1
        return self.values if self.calls == 1 else self.values * 0 + 99.0


def test_a_lying_ndarray_subclass_is_judged_by_its_real_data():
    def lies(x, a):
        return np.zeros(3).view(Liar)  # wrong shape and values, pretending otherwise

    result = run(lies)
    assert not result and "should have shape (4,), got shape (3,)" in result.message

    def right_values_wrong_claims(x, a):
        return (x * a).view(Liar)

    assert run(right_values_wrong_claims)  # judged by its data, which is right


def test_an_array_like_is_converted_once():
    assert run(lambda x, a: ArrayLike(x * a))  # the first answer is right and the only one read
    result = run(lambda x, a: ArrayLike(x * a + 1))
    assert not result and "differs" in result.message


def test_an_output_that_cannot_be_read_is_the_learners_failure():
    class Broken:
        def __array__(self, dtype=None, copy=None):
            raise RuntimeError("no numbers here")

    result = run(lambda x, a: Broken())
    assert not result and "could not be read" in result.message and "no numbers" in result.message


@pytest.mark.parametrize("timeout", [-1, 0, 0.0, float("nan"), float("inf"), -float("inf")])
def test_bad_timeout_value_is_the_callers_mistake(timeout):
    with pytest.raises(ValueError, match="timeout.*not in the function being checked"):
        run(lambda x, a: x * a, timeout=timeout)
    with pytest.raises(ValueError, match="timeout"):
        checks.check_running_state(good_running_state, quiet=True, timeout=timeout)


@pytest.mark.parametrize("timeout", ["10", True, False, [1.0], 1j])
def test_bad_timeout_type_is_the_callers_mistake(timeout):
    with pytest.raises(TypeError, match="timeout.*not in the function being checked"):
        run(lambda x, a: x * a, timeout=timeout)
    with pytest.raises(TypeError, match="timeout"):
        checks.check_gamma(np.abs, quiet=True, timeout=timeout)


def test_timeout_none_means_no_limit_and_ints_are_accepted():
    assert run(lambda x, a: x * a, timeout=None)
    assert run(lambda x, a: x * a, timeout=3)
    assert checks.check_running_state(good_running_state, quiet=True, timeout=np.float64(5.0))


def test_all_lists_every_public_check():
    public = {
        name for name in dir(checks) if name.startswith("check_") and name != "check_function"
    }
    assert public <= set(checks.__all__)
    assert {f"check_{name}" for name in checks.EXERCISES} == public


def test_check_scan_io_bytes():
    def right(batch, D, L, N, itemsize):
        fused = 4 * batch * D * L + 2 * batch * N * L + D * N
        return (fused + 6 * batch * D * L * N) * itemsize, fused * itemsize

    def no_A(batch, D, L, N, itemsize):  # forgets to read A (D, N)
        fused = 4 * batch * D * L + 2 * batch * N * L
        return (fused + 6 * batch * D * L * N) * itemsize, fused * itemsize

    assert checks.check_scan_io_bytes(right, quiet=True)
    assert not checks.check_scan_io_bytes(no_A, quiet=True)


def test_check_listops_value_is_judged_on_any_expression():
    from mamba_edu import tasks
    from mamba_edu.checks import lesson09

    tokens, labels = tasks.listops(200, max_length=40, min_length=12, max_depth=5, seed=11)
    for row, label in zip(tokens, labels, strict=True):  # the reference is the generator's label
        assert lesson09._listops_reference(tasks.listops_text(row)) == label
    assert checks.check_listops_value(lesson09._listops_reference, quiet=True)

    def median_rounded(text):  # [MED 1 2 3 4 ] = 3, not the generator's truncated 2
        stack = [[]]
        for symbol in text.split():
            if symbol.startswith("["):
                stack.append([symbol])
            elif symbol == "]":
                op, *args = stack.pop()
                ops = {"[MIN": min, "[MAX": max, "[SM": lambda v: sum(v) % 10}
                stack[-1].append(ops[op](args) if op in ops else round(np.median(args) + 0.01))
            else:
                stack[-1].append(int(symbol))
        return stack[0][0]

    result = checks.check_listops_value(median_rounded, quiet=True)
    assert not result and "[MED 1 2 3 4 ]" in result.message


def test_check_closest_width_gets_a_count_function_and_wants_the_smaller_on_a_tie():
    def closest(count, target, widths):
        return min(sorted(widths), key=lambda w: abs(count(w) - target))

    def larger_on_a_tie(count, target, widths):
        return min(sorted(widths, reverse=True), key=lambda w: abs(count(w) - target))

    assert checks.check_closest_width(closest, quiet=True)
    result = checks.check_closest_width(larger_on_a_tie, quiet=True)
    assert not result and "a tie" in result.message
