"""Exercise self-checks: compare a learner's function with the reference and say what differs.

Every exercise in the course is checked by one harness, :func:`check_function`. It calls the
learner's function and the reference on the same inputs (random ones and edge cases), and reports
the *first* problem in words: which case, which index, what was expected, what came back.

It survives whatever a learner's function does: raising, returning the wrong shape or dtype,
returning NaN, changing its inputs in place, or running forever (stopped after ``timeout``
seconds; the Jupyter kernel carries on). A check never raises on a wrong answer: it prints its
message and returns a :class:`CheckResult`, which is falsy on failure, so that an autograder test
can simply ``assert check_...(fn)``.

The per-exercise checks (``check_<exercise>``) live at the bottom of this module, one per exercise,
each naming the reference it compares with.
"""

from __future__ import annotations

import copy
import ctypes
import inspect
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Case",
    "CheckResult",
    "check_function",
    "describe_mismatch",
    "check_running_state",
    "check_causal_attention",
    "check_combine",
    "check_associativity_gap",
    "check_hillis_steele",
    "check_chunked_scan",
    "check_rnn_forward",
    "check_rnn_backward",
    "check_jacobian_norms",
    "check_linear_rnn",
    "check_convolution_kernel",
    "check_diagonalize",
]


# ----------------------------------------------------------------------------------------------
# The harness
# ----------------------------------------------------------------------------------------------


@dataclass
class Case:
    """One input to try: a short human name and the positional / keyword arguments."""

    name: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


@dataclass
class CheckResult:
    """The outcome of a self-check. Truthy when every case passed."""

    ok: bool
    exercise: str
    message: str
    passed: int
    total: int

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        state = "passed" if self.ok else "failed"
        return f"<CheckResult {self.exercise}: {state}, {self.passed}/{self.total} cases>"

    def _ipython_display_(self) -> None:
        # The message was already printed when the check ran; showing the object again at the end
        # of a notebook cell would only repeat it.
        return None


class CheckTimeout(BaseException):
    """Raised inside a learner's function that runs past its time limit.

    A ``BaseException`` (not an ``Exception``) so that a learner's ``except Exception:`` cannot
    swallow it and keep looping.
    """


def _run_with_timeout(fn: Callable, args: tuple, kwargs: dict, timeout: float):
    """Call ``fn(*args, **kwargs)`` and stop it with :class:`CheckTimeout` after ``timeout`` s.

    In the main thread (where a Jupyter kernel runs cells) this uses a real-time interval timer:
    the signal handler raises inside the running Python code, so the call unwinds cleanly and the
    kernel lives on. Elsewhere (a check called from a worker thread) the call runs in a helper
    thread that receives the exception asynchronously. Either way a pure-Python infinite loop is
    stopped; a single long C call (one huge matrix product) finishes before the stop lands.
    """
    if timeout is None or timeout <= 0:
        return fn(*args, **kwargs)
    in_main = threading.current_thread() is threading.main_thread()
    if in_main and hasattr(signal, "setitimer"):

        def _alarm(signum, frame):
            raise CheckTimeout()

        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            return fn(*args, **kwargs)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    box: dict[str, Any] = {}

    def _target():
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller below
            box["error"] = exc

    worker = threading.Thread(target=_target, daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(worker.ident), ctypes.py_object(CheckTimeout)
        )
        worker.join(1.0)
        raise CheckTimeout()
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _fmt(x: Any) -> str:
    """A short, readable rendering of a number or small array."""
    if isinstance(x, np.ndarray):
        if x.ndim == 0:
            return _fmt(x[()])
        with np.printoptions(precision=6, threshold=8, edgeitems=3, suppress=True):
            return np.array2string(x, separator=", ")
    if isinstance(x, (float, np.floating)):
        return f"{float(x):.6g}"
    if isinstance(x, (complex, np.complexfloating)):
        return f"{complex(x):.6g}"
    return repr(x)


def _type_name(x: Any) -> str:
    if isinstance(x, np.ndarray):
        return f"a NumPy array of shape {x.shape} and dtype {x.dtype}"
    return f"a {type(x).__name__}"


def _learner_frame(exc: BaseException) -> str:
    """The last traceback line that is not in this module: usually the learner's own line."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    if not frames:
        return ""
    f = frames[-1]
    where = "your code" if f.filename.startswith("<") else f.filename
    line = f" ({f.line.strip()})" if f.line else ""
    return f"\n   It happened in {where}, line {f.lineno}{line}."


def describe_mismatch(
    expected: Any, got: Any, *, what: str = "the output", rtol: float = 1e-7, atol: float = 1e-9
) -> str | None:
    """Compare one returned value with the expected one; return ``None`` or a sentence saying why not.

    Checks, in order: ``None`` returned, type, shape, dtype, NaN/inf, then values to
    ``rtol``/``atol`` (``numpy.isclose`` semantics), naming the first differing index.
    """
    if got is None and expected is not None:
        return f"{what} is None. Did you forget to `return` it?"
    if isinstance(expected, (tuple, list)) and not isinstance(expected, np.ndarray):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return (
                f"{what} should be a tuple of {len(expected)} values, got {_type_name(got)}"
                + (f" of length {len(got)}" if isinstance(got, (tuple, list)) else "")
                + "."
            )
        for i, (e, g) in enumerate(zip(expected, got, strict=True)):
            problem = describe_mismatch(e, g, what=f"{what}[{i}]", rtol=rtol, atol=atol)
            if problem:
                return problem
        return None

    exp = np.asarray(expected)
    if isinstance(got, np.ndarray):
        arr = got
    else:
        try:
            arr = np.asarray(got)
        except Exception:  # noqa: BLE001 - anything that is not array-like
            return f"{what} should be {_type_name(exp)}, got {_type_name(got)}."
        if arr.dtype == object:
            return f"{what} should be {_type_name(exp)}, got {_type_name(got)}."
    if arr.shape != exp.shape:
        return f"{what} should have shape {exp.shape}, got shape {arr.shape}."
    if exp.dtype.kind in "fc" and arr.dtype.kind not in "fc":
        return f"{what} should be floating point ({exp.dtype}), got dtype {arr.dtype}."
    if exp.dtype.kind == "c" and arr.dtype.kind != "c":
        return f"{what} should be complex ({exp.dtype}), got real dtype {arr.dtype}."
    if exp.dtype.kind == "f" and arr.dtype.kind == "c":
        return f"{what} should be real ({exp.dtype}), got complex dtype {arr.dtype}."
    if exp.dtype.kind in "fc" and arr.dtype.itemsize < exp.dtype.itemsize:
        return (
            f"{what} should have dtype {exp.dtype}, got {arr.dtype}: lower precision loses "
            f"digits the check needs. Compute in {exp.dtype}."
        )
    if exp.dtype.kind in "fc":
        bad = ~np.isfinite(arr) & np.isfinite(exp)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            where = f" at index {idx}" if idx else ""
            return (
                f"{what} contains {_fmt(arr[idx])}{where} ({int(bad.sum())} non-finite value(s)); "
                f"expected {_fmt(exp[idx])}. Look for an overflow, a division by zero or a log of "
                f"a non-positive number."
            )
        close = np.isclose(arr, exp, rtol=rtol, atol=atol, equal_nan=True)
    else:
        close = arr == exp
    if not np.all(close):
        idx = tuple(int(i) for i in np.argwhere(~close)[0])
        where = f"at index {idx}" if idx else "in its value"
        n_bad = int((~close).sum())
        diff = ""
        if exp.dtype.kind in "fc":
            diff = f" (difference {_fmt(abs(arr[idx] - exp[idx]))}, tolerance rtol={rtol:g}, atol={atol:g})"
        return (
            f"{what} differs {where}: expected {_fmt(exp[idx])}, got {_fmt(arr[idx])}{diff}. "
            f"{n_bad} of {exp.size} value(s) differ."
        )
    return None


def _changed_inputs(before: dict[str, Any], after: dict[str, Any]) -> str | None:
    for name, old in before.items():
        new = after[name]
        if isinstance(old, np.ndarray):
            same = (
                isinstance(new, np.ndarray)
                and new.shape == old.shape
                and np.array_equal(new, old, equal_nan=old.dtype.kind in "fc")
            )
            if not same:
                idx = ""
                if isinstance(new, np.ndarray) and new.shape == old.shape:
                    same_at = new == old
                    if old.dtype.kind in "fc":
                        same_at |= np.isnan(new) & np.isnan(old)
                    first = tuple(int(i) for i in np.argwhere(~same_at)[0])
                    idx = (
                        f" (first at index {first}: was {_fmt(old[first])}, now {_fmt(new[first])})"
                    )
                return (
                    f"your function changed its input `{name}` in place{idx}. Work on a copy "
                    f"(`{name}.copy()`) or build a new array instead: the caller still needs the "
                    f"original."
                )
        elif isinstance(old, (list, dict)) and old != new:
            return f"your function changed its input `{name}` in place. Work on a copy instead."
    return None


def _arg_names(reference: Callable, case: Case) -> list[str]:
    try:
        params = list(inspect.signature(reference).parameters)
    except (TypeError, ValueError):
        params = []
    names = params[: len(case.args)]
    names += [f"argument {i + 1}" for i in range(len(names), len(case.args))]
    return names


def check_function(
    fn: Callable,
    reference: Callable | None,
    cases: Iterable[Case],
    *,
    exercise: str,
    rtol: float = 1e-7,
    atol: float = 1e-9,
    timeout: float = 10.0,
    quiet: bool = False,
    validate: Callable[[Case, Any], str | None] | None = None,
) -> CheckResult:
    """Run ``fn`` and ``reference`` on every case; print and return the first problem, or success.

    ``exercise`` names the exercise in messages. ``timeout`` is the time limit, in seconds, of one
    call of the learner's function. ``quiet`` suppresses printing (autograder tests).

    For a random output that no reference can match value for value (a sampler), pass
    ``reference=None`` and ``validate(case, output)``, which returns ``None`` or what is wrong.
    """
    if (reference is None) == (validate is None):
        raise ValueError("expected exactly one of reference and validate")
    cases = list(cases)
    if not callable(fn):
        return _finish(
            False,
            exercise,
            f"expected a function to check, got {_type_name(fn)}. Pass the function itself, "
            f"without calling it: `check(my_fn)`, not `check(my_fn())`.",
            0,
            len(cases),
            quiet,
        )
    for i, case in enumerate(cases):
        names = _arg_names(reference or fn, case)
        expected = None
        if reference is not None:
            expected = reference(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
        args = copy.deepcopy(case.args)
        kwargs = copy.deepcopy(case.kwargs)
        before = {n: copy.deepcopy(a) for n, a in zip(names, args, strict=True)}
        before.update({k: copy.deepcopy(v) for k, v in kwargs.items()})
        start = time.perf_counter()
        try:
            got = _run_with_timeout(fn, args, kwargs, timeout)
        except NotImplementedError:
            return _finish(
                False,
                exercise,
                "not implemented yet: replace the `raise NotImplementedError` line with your "
                "code, run that cell, then run this check again.",
                i,
                len(cases),
                quiet,
            )
        except CheckTimeout:
            return _finish(
                False,
                exercise,
                f"stopped after {time.perf_counter() - start:.1f} s on case '{case.name}' "
                f"(the limit is {timeout:g} s). Is there a loop that never ends? "
                f"Your kernel is fine; fix the function and check again.",
                i,
                len(cases),
                quiet,
            )
        except Exception as exc:  # noqa: BLE001 - the learner's code may raise anything
            return _finish(
                False,
                exercise,
                f"your function raised {type(exc).__name__}: {exc}\n   on case '{case.name}'."
                + _learner_frame(exc),
                i,
                len(cases),
                quiet,
            )
        after = dict(zip(names, args, strict=True))
        after.update(kwargs)
        problem = _changed_inputs(before, after)
        if problem is None and reference is not None:
            problem = describe_mismatch(expected, got, what="your output", rtol=rtol, atol=atol)
        elif problem is None:
            problem = validate(case, got)
        if problem is not None:
            return _finish(
                False, exercise, f"on case '{case.name}', {problem}", i, len(cases), quiet
            )
    return _finish(
        True,
        exercise,
        f"all {len(cases)} cases match the reference.",
        len(cases),
        len(cases),
        quiet,
    )


def _finish(
    ok: bool, exercise: str, detail: str, passed: int, total: int, quiet: bool
) -> CheckResult:
    if ok:
        message = f"✅ {exercise}: {detail} Well done!"
    else:
        message = f"❌ {exercise}: {detail}"
        if total and not detail.startswith("not implemented"):
            message += f"\n   ({passed} of {total} cases passed before this one.)"
    if not quiet:
        print(message)
    return CheckResult(ok, exercise, message, passed, total)


# ----------------------------------------------------------------------------------------------
# Input makers shared by the per-exercise checks
# ----------------------------------------------------------------------------------------------


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def random_cases(
    make: Callable[[np.random.Generator, Sequence[int]], tuple],
    shapes: Sequence[Sequence[int]],
    seed: int = 0,
    label: str = "random",
) -> list[Case]:
    """One case per shape, each built by ``make(rng, shape)`` with its own seed."""
    return [
        Case(f"{label} {tuple(shape)}", make(_rng(seed + i), shape))
        for i, shape in enumerate(shapes)
    ]


# ----------------------------------------------------------------------------------------------
# Lesson 00 — orientation
# ----------------------------------------------------------------------------------------------


def check_running_state(fn: Callable, *, quiet: bool = False, timeout: float = 10.0) -> CheckResult:
    """Lesson 00, exercise 1: ``fn(x, a)`` returns the states h_t = a·h_{t−1} + x_t, h_{−1} = 0.

    ``x`` has shape (L, D), ``a`` shape (D,); the result has shape (L, D). Compared with
    :func:`mamba_edu.scan.sequential_scan`.
    """
    from mamba_edu import scan

    def reference(x, a):
        return scan.sequential_scan(np.broadcast_to(a[:, None], x.T.shape), x.T).T

    def make(rng, shape):
        L, D = shape
        return rng.standard_normal((L, D)), rng.uniform(-0.99, 0.99, D)

    cases = random_cases(make, [(16, 4), (7, 1), (33, 3)])
    cases += [
        Case("L = 1 (a single step)", (np.array([[2.0, -1.0]]), np.array([0.5, 0.9]))),
        Case("a = 0 (no memory: h equals x)", (np.arange(6.0).reshape(3, 2), np.zeros(2))),
        Case("a = 1 (a running sum)", (np.ones((5, 2)), np.ones(2))),
    ]
    return check_function(
        fn, reference, cases, exercise="running_state", timeout=timeout, quiet=quiet
    )


def check_causal_attention(
    fn: Callable, *, quiet: bool = False, timeout: float = 10.0
) -> CheckResult:
    """Lesson 00, exercise 2: ``fn(q, k, v)`` is causal softmax attention, shapes (L, d) → (L, d).

    Compared with :func:`mamba_edu.attention.causal_attention`. One case has large scores, which
    overflow ``exp`` unless the row maximum is subtracted first.
    """
    from mamba_edu import attention

    def make(rng, shape):
        L, d = shape
        return tuple(rng.standard_normal((L, d)) for _ in range(3))

    cases = random_cases(make, [(8, 4), (5, 2), (17, 8)])
    big = _rng(7).standard_normal((6, 4)) * 60.0
    cases += [
        Case("L = 1 (one token attends only to itself)", make(_rng(3), (1, 4))),
        Case(
            "large scores (exp would overflow)", (big, big.copy(), _rng(8).standard_normal((6, 4)))
        ),
    ]
    return check_function(
        fn,
        attention.causal_attention,
        cases,
        exercise="causal_attention",
        timeout=timeout,
        quiet=quiet,
    )


# ----------------------------------------------------------------------------------------------
# Lesson 05 — state-space models
# ----------------------------------------------------------------------------------------------


def _complex_normal(rng, shape):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def check_zoh(fn: Callable, *, quiet: bool = False, timeout: float = 10.0) -> CheckResult:
    """Lesson 05, exercise 1: ``fn(lam, B, dt)`` → (Ā, B̄) by zero-order hold for a diagonal A.

    lam and B have shape (N,), complex; compared with ``ssm.discretize(lam, B, dt, "zoh")``.
    """
    from mamba_edu import ssm

    def reference(lam, B, dt):
        return ssm.discretize(lam, B, dt, "zoh")

    def make(rng, shape):
        (N,) = shape
        lam = -rng.uniform(0.1, 2, N) + 1j * rng.uniform(-5, 5, N)
        return lam, _complex_normal(rng, N), float(rng.uniform(0.01, 0.5))

    cases = random_cases(make, [(4,), (1,), (16,)])
    cases += [
        Case("S4D-Lin eigenvalues, dt = 0.1", (ssm.s4d_lin(8), np.ones(8, dtype=complex), 0.1)),
        Case(
            "real eigenvalues, tiny dt = 1e-4",
            (ssm.s4d_real(4).astype(complex), np.ones(4, dtype=complex), 1e-4),
        ),
    ]
    return check_function(
        fn, reference, cases, exercise="zoh", rtol=1e-9, atol=1e-12, timeout=timeout, quiet=quiet
    )


def check_vandermonde_kernel(
    fn: Callable, *, quiet: bool = False, timeout: float = 10.0
) -> CheckResult:
    """Lesson 05, exercise 2: ``fn(Ab, Bb, C, L)`` → K of shape (L,), K_l = Σ_n C_n B̄_n Ā_n^l.

    Compared with :func:`mamba_edu.ssm.ssm_kernel` (diagonal Ā).
    """
    from mamba_edu import ssm

    def make(rng, shape):
        N, L = shape
        Ab = rng.uniform(0.5, 0.99, N) * np.exp(1j * rng.uniform(-np.pi, np.pi, N))
        return Ab, _complex_normal(rng, N), _complex_normal(rng, N), L

    cases = random_cases(make, [(4, 16), (1, 5), (8, 33)])
    cases += [
        Case("L = 1 (the kernel is C·B̄)", make(_rng(11), (3, 1))),
        Case(
            "Ā = 0 (only the first tap survives)",
            (np.zeros(3, dtype=complex), np.ones(3, dtype=complex), np.ones(3, dtype=complex), 4),
        ),
    ]
    return check_function(
        fn,
        ssm.ssm_kernel,
        cases,
        exercise="vandermonde_kernel",
        rtol=1e-9,
        atol=1e-12,
        timeout=timeout,
        quiet=quiet,
    )


def check_fft_causal_conv(
    fn: Callable, *, quiet: bool = False, timeout: float = 10.0
) -> CheckResult:
    """Lesson 05, exercise 3: ``fn(u, K)`` → the causal convolution y_k = Σ_{j≤k} K_j u_{k−j} via the FFT.

    u and K have shape (L,), real. Compared with :func:`mamba_edu.ssm.causal_conv` (the direct sum),
    so a circular convolution (FFT without zero-padding) is caught.
    """
    from mamba_edu import ssm

    def make(rng, shape):
        (L,) = shape
        return rng.standard_normal(L), rng.standard_normal(L) * 0.9 ** np.arange(L)

    cases = random_cases(make, [(16,), (7,), (100,)])
    cases += [
        Case("L = 1", (np.array([2.0]), np.array([3.0]))),
        Case("an impulse gives back K", (np.eye(1, 9, 0)[0], np.arange(1.0, 10.0))),
    ]
    return check_function(
        fn,
        ssm.causal_conv,
        cases,
        exercise="fft_causal_conv",
        rtol=1e-8,
        atol=1e-10,
        timeout=timeout,
        quiet=quiet,
    )


# ----------------------------------------------------------------------------------------------
# Lesson 04 — training linear RNNs (LRU)
# ----------------------------------------------------------------------------------------------


def check_lru_eigenvalues(
    fn: Callable, *, quiet: bool = False, timeout: float = 10.0
) -> CheckResult:
    """Lesson 04, exercise 1: ``fn(nu_log, theta_log)`` → λ = exp(−exp(ν^log) + i·exp(θ^log)), shape (N,)."""
    from mamba_edu import lru

    def make(rng, shape):
        return rng.normal(-2, 1.5, shape), rng.normal(-1, 1.5, shape)

    cases = random_cases(make, [(8,), (1,), (64,)])
    cases += [Case("very negative ν^log (|λ| → 1)", (np.full(3, -20.0), np.zeros(3)))]
    return check_function(
        fn,
        lru.eigenvalues,
        cases,
        exercise="lru_eigenvalues",
        rtol=1e-10,
        atol=1e-12,
        timeout=timeout,
        quiet=quiet,
    )


def check_ring_init(fn: Callable, *, quiet: bool = False, timeout: float = 20.0) -> CheckResult:
    """Lesson 04, exercise 2: ``fn(N, r_min, r_max, max_phase, rng)`` → (ν^log, θ^log) whose λ are
    uniform (in area) on the ring r_min ≤ |λ| ≤ r_max with phases uniform in [0, max_phase].

    A sampler has no single right answer, so this check tests the distribution: ranges, then
    Kolmogorov–Smirnov tests of |λ| and arg λ on 20,000 samples.
    """
    from scipy import stats

    from mamba_edu import lru

    def validate(case, got):
        N, r_min, r_max, max_phase, _ = case.args
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            return f"your function should return a pair (nu_log, theta_log), got {_type_name(got)}."
        nu_log, theta_log = (np.asarray(v) for v in got)
        for name, v in (("nu_log", nu_log), ("theta_log", theta_log)):
            if v.shape != (N,):
                return f"{name} should have shape ({N},), got {v.shape}."
            if not np.all(np.isfinite(v)):
                return f"{name} has non-finite values (a log of 0 or of a negative number?)."
        lam = lru.eigenvalues(nu_log, theta_log)
        r = np.abs(lam)
        if r.min() < r_min - 1e-9 or r.max() > r_max + 1e-9:
            return f"|λ| should lie in [{r_min}, {r_max}], found values from {r.min():.4f} to {r.max():.4f}."
        if np.exp(theta_log).max() > max_phase + 1e-9:
            return f"the phases exp(θ^log) should lie in [0, {max_phase:.4f}], found up to {np.exp(theta_log).max():.4f}."
        cdf = lambda x: np.clip((x**2 - r_min**2) / (r_max**2 - r_min**2), 0, 1)  # noqa: E731
        p_r = stats.kstest(r, cdf).pvalue
        if p_r < 1e-4:
            return (
                f"|λ| is not uniform in area on the ring (KS test p = {p_r:.1e}). Uniform in area means "
                f"|λ|² uniform on [r_min², r_max²]: sampling |λ| itself uniformly is the usual slip."
            )
        p_phase = stats.kstest(np.exp(theta_log), stats.uniform(0, max_phase).cdf).pvalue
        if p_phase < 1e-4:
            return f"the phases exp(θ^log) are not uniform on [0, max_phase] (KS test p = {p_phase:.1e})."
        return None

    cases = [
        Case(
            "full disk r ∈ [0, 1), 20,000 samples",
            (20_000, 0.0, 0.999, 2 * np.pi, np.random.default_rng(0)),
        ),
        Case(
            "narrow ring [0.9, 0.999], phase ≤ π/10",
            (20_000, 0.9, 0.999, np.pi / 10, np.random.default_rng(1)),
        ),
        Case("ring [0.5, 0.9]", (20_000, 0.5, 0.9, np.pi, np.random.default_rng(2))),
    ]
    return check_function(
        fn, None, cases, exercise="ring_init", validate=validate, timeout=timeout, quiet=quiet
    )


def check_gamma(fn: Callable, *, quiet: bool = False, timeout: float = 10.0) -> CheckResult:
    """Lesson 04, exercise 3: ``fn(lam)`` → γ = √(1 − |λ|²) for complex λ of shape (N,)."""

    def reference(lam):
        return np.sqrt(1 - np.abs(lam) ** 2)

    def make(rng, shape):
        return (rng.uniform(0, 0.999, shape) * np.exp(1j * rng.uniform(-np.pi, np.pi, shape)),)

    cases = random_cases(make, [(8,), (1,), (100,)])
    cases += [
        Case("λ = 0 (γ = 1)", (np.zeros(2, dtype=complex),)),
        Case("|λ| close to 1", (np.array([0.9999j, -0.99999 + 0j]),)),
    ]
    return check_function(
        fn, reference, cases, exercise="gamma", rtol=1e-9, atol=1e-12, timeout=timeout, quiet=quiet
    )


# ----------------------------------------------------------------------------------------------
# Lesson 03 — parallel scan
# ----------------------------------------------------------------------------------------------


def _affine_pair(rng, shape, complex_=False):
    a = rng.uniform(-1.0, 1.0, shape)
    b = rng.standard_normal(shape)
    if complex_:
        a = a * np.exp(1j * rng.uniform(-np.pi, np.pi, shape))
        b = b + 1j * rng.standard_normal(shape)
    return a, b


def check_combine(fn: Callable, *, quiet: bool = False, timeout: float = 10.0) -> CheckResult:
    """Lesson 03, exercise 1: ``fn(left, right)`` with left = (a1, b1), right = (a2, b2) returns the
    composition "left, then right": (a1·a2, a2·b1 + b2). Compared with :func:`mamba_edu.scan.combine`.
    """
    from mamba_edu import scan

    def reference(left, right):
        return scan.combine(left, right)

    def case(name, seed, shape, complex_=False):
        rng = _rng(seed)
        return Case(name, (_affine_pair(rng, shape, complex_), _affine_pair(rng, shape, complex_)))

    cases = [
        case("random (5,)", 0, (5,)),
        case("random (3, 4)", 1, (3, 4)),
        case("complex a and b", 2, (6,), complex_=True),
        Case("plain numbers: (2, 3) then (5, 7)", ((2.0, 3.0), (5.0, 7.0))),
        Case(
            "the identity (1, 0) first",
            ((np.ones(3), np.zeros(3)), (np.full(3, 0.5), np.arange(3.0))),
        ),
    ]
    return check_function(fn, reference, cases, exercise="combine", timeout=timeout, quiet=quiet)


def _reference_gap(op, x, y, z):
    left = op(op(x, y), z)
    right = op(x, op(y, z))
    return float(
        max(np.max(np.abs(np.asarray(l) - np.asarray(r))) for l, r in zip(left, right, strict=True))
    )


def _average_op(x, y):
    """Not associative: the average of the two pairs."""
    return (x[0] + y[0]) / 2, (x[1] + y[1]) / 2


def check_associativity_gap(
    fn: Callable, *, quiet: bool = False, timeout: float = 10.0
) -> CheckResult:
    """Lesson 03, exercise 2: ``fn(op, x, y, z)`` returns the largest absolute difference, over
    both components and every element, between op(op(x, y), z) and op(x, op(y, z)), as a float.

    Tried with the scan operator (gap ≈ 1e-16) and with a non-associative one (a large gap).
    """
    from mamba_edu import scan

    def triple(seed, shape, complex_=False):
        rng = _rng(seed)
        return tuple(_affine_pair(rng, shape, complex_) for _ in range(3))

    cases = [
        Case("the scan operator, random (8,)", (scan.combine, *triple(0, (8,)))),
        Case("the scan operator, complex (4, 3)", (scan.combine, *triple(1, (4, 3), True))),
        Case("averaging (not associative)", (_average_op, *triple(2, (6,)))),
        Case(
            "averaging, plain numbers",
            (_average_op, (1.0, 0.0), (3.0, 4.0), (5.0, 8.0)),
        ),
    ]
    return check_function(
        fn,
        _reference_gap,
        cases,
        exercise="associativity_gap",
        rtol=1e-6,
        atol=1e-9,
        timeout=timeout,
        quiet=quiet,
    )


def check_hillis_steele(fn: Callable, *, quiet: bool = False, timeout: float = 10.0) -> CheckResult:
    """Lesson 03, exercise 3: ``fn(a, b)`` returns h (same shape as a, b: (..., L)) by recursive
    doubling. Compared with :func:`mamba_edu.scan.sequential_scan`: the same h, any bracketing."""
    from mamba_edu import scan

    def make(rng, shape):
        return _affine_pair(rng, shape)

    cases = random_cases(make, [(8,), (13,), (2, 16), (3, 37)])
    cases += [
        Case("L = 1", (np.array([0.5]), np.array([2.0]))),
        Case("L = 2", (np.array([0.5, 0.5]), np.array([2.0, 1.0]))),
        Case("complex a (an oscillating decay)", _affine_pair(_rng(9), (2, 11), True)),
        Case("a = 1 (a running sum)", (np.ones(10), np.arange(10.0))),
    ]
    return check_function(
        fn,
        scan.sequential_scan,
        cases,
        exercise="hillis_steele",
        rtol=1e-10,
        atol=1e-12,
        timeout=timeout,
        quiet=quiet,
    )


def check_chunked_scan(fn: Callable, *, quiet: bool = False, timeout: float = 10.0) -> CheckResult:
    """Lesson 03, exercise 4: ``fn(a, b, chunk)`` returns h (shape (..., L)) by scanning chunks of
    ``chunk`` steps and carrying the state between them. Compared with
    :func:`mamba_edu.scan.sequential_scan`, on lengths that are and are not multiples of ``chunk``."""
    from mamba_edu import scan

    def reference(a, b, chunk):
        return scan.sequential_scan(a, b)

    cases = [
        Case("L = 12, chunk = 4", (*_affine_pair(_rng(0), (12,)), 4)),
        Case("L = 13, chunk = 4 (a short last chunk)", (*_affine_pair(_rng(1), (13,)), 4)),
        Case("(3, 20), chunk = 6", (*_affine_pair(_rng(2), (3, 20)), 6)),
        Case("chunk = 1", (*_affine_pair(_rng(3), (7,)), 1)),
        Case("chunk longer than L", (*_affine_pair(_rng(4), (5,)), 8)),
        Case("complex a", (*_affine_pair(_rng(5), (2, 9), True), 4)),
    ]
    return check_function(
        fn,
        reference,
        cases,
        exercise="chunked_scan",
        rtol=1e-10,
        atol=1e-12,
        timeout=timeout,
        quiet=quiet,
    )


def _relabeled(
    result: CheckResult,
    replacements: Sequence[tuple[str, str]],
    *,
    hint: str | None = None,
    quiet: bool = False,
) -> CheckResult:
    """``result`` with its message reworded (names of outputs) and a hint after a wrong value."""
    message = result.message
    for old, new in replacements:
        message = message.replace(old, new)
    if not result.ok and hint and " differs " in message:
        message += f"\n   Hint: {hint}"
    if not quiet:
        print(message)
    return CheckResult(result.ok, result.exercise, message, result.passed, result.total)


# ----------------------------------------------------------------------------------------------
# Lesson 01 — recurrent networks
# ----------------------------------------------------------------------------------------------


def _rnn_case(rng, L, D, N, nonlinearity, *, radius=0.9, scale=1.0):
    from mamba_edu import rnn

    W = rnn.random_recurrent_matrix(N, radius, seed=int(rng.integers(1 << 30)))
    U = rng.standard_normal((N, D)) * scale / np.sqrt(D)
    b = rng.standard_normal(N) * 0.1
    return rng.standard_normal((L, D)), W, U, b, nonlinearity


def check_rnn_forward(fn: Callable, *, quiet: bool = False, timeout: float = 10.0) -> CheckResult:
    """Lesson 01, exercise 1: ``fn(x, W, U, b, nonlinearity)`` returns h_t = φ(W h_{t−1} + U x_t + b).

    x (L, D), W (N, N), U (N, D), b (N,), h_{−1} = 0; returns h (L, N). Compared with
    :func:`mamba_edu.rnn.rnn_forward`.
    """
    from mamba_edu import rnn

    cases = [
        Case("tanh, random (L=12, D=3, N=5)", _rnn_case(_rng(10), 12, 3, 5, "tanh")),
        Case("relu, random (L=9, D=2, N=4)", _rnn_case(_rng(11), 9, 2, 4, "relu")),
        Case("identity, random (L=10, D=1, N=6)", _rnn_case(_rng(12), 10, 1, 6, "identity")),
        Case("L = 1 (one step from h = 0)", _rnn_case(_rng(13), 1, 3, 4, "tanh")),
        Case("N = 1 (a single state)", _rnn_case(_rng(14), 8, 2, 1, "tanh")),
        Case(
            "tanh with large inputs (saturation)", _rnn_case(_rng(15), 10, 3, 5, "tanh", scale=20)
        ),
    ]
    result = check_function(
        fn, rnn.rnn_forward, cases, exercise="rnn_forward", timeout=timeout, quiet=True
    )
    return _relabeled(
        result,
        [],
        hint=(
            "look at the case's name. `nonlinearity` picks np.tanh, ReLU (np.maximum(a, 0)) or "
            "identity; h[0] uses the zero state h_{-1} = 0 and x[0], every later h[t] uses h[t-1]."
        ),
        quiet=quiet,
    )


def _torch_rnn_gradients(x, W, U, b, nonlinearity):
    """(dW, dU, db) of ℓ = Σ_t dh_t · h_t by torch autograd: independent of the NumPy reference."""
    import torch

    act = {"tanh": torch.tanh, "relu": torch.relu, "identity": lambda a: a}[nonlinearity]
    Wt, Ut, bt = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (W, U, b))
    xt = torch.tensor(x, dtype=torch.float64)
    state = torch.zeros(W.shape[0], dtype=torch.float64)
    states = []
    for t in range(x.shape[0]):
        state = act(Wt @ state + Ut @ xt[t] + bt)
        states.append(state)
    return Wt, Ut, bt, torch.stack(states)


def check_rnn_backward(fn: Callable, *, quiet: bool = False, timeout: float = 10.0) -> CheckResult:
    """Lesson 01, exercise 2: ``fn(x, h, dh, W, nonlinearity)`` returns (dW, dU, db) by BPTT.

    h are the forward states (L, N) (from h_{−1} = 0) and dh[t] = ∂ℓ/∂h_t, the part of the loss's
    gradient that reaches h_t directly. The expected gradients come from **torch autograd** on the
    same network in float64, not from the course's own BPTT.
    """
    import torch

    from mamba_edu import rnn

    weights: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}

    def make(seed, L, D, N, nonlinearity, radius=0.9):
        rng = _rng(seed)
        x, W, U, b, _ = _rnn_case(rng, L, D, N, nonlinearity, radius=radius)
        h = rnn.rnn_forward(x, W, U, b, nonlinearity)
        dh = rng.standard_normal((L, N))
        weights[x.tobytes()] = (U, b)
        return x, h, dh, W, nonlinearity

    def autograd(x, h, dh, W, nonlinearity):
        U, b = weights[np.asarray(x).tobytes()]
        Wt, Ut, bt, states = _torch_rnn_gradients(x, W, U, b, nonlinearity)
        (states * torch.tensor(dh)).sum().backward()
        return Wt.grad.numpy(), Ut.grad.numpy(), bt.grad.numpy()

    cases = [
        Case("tanh, random (L=10, D=3, N=4)", make(20, 10, 3, 4, "tanh")),
        Case("relu, random (L=8, D=2, N=5)", make(21, 8, 2, 5, "relu")),
        Case("identity, random (L=12, D=2, N=3)", make(22, 12, 2, 3, "identity")),
        Case("L = 1 (no gradient through time yet)", make(23, 1, 3, 4, "tanh")),
        Case("tanh, spectral radius 1.5 (L=15)", make(24, 15, 2, 4, "tanh", radius=1.5)),
    ]
    result = check_function(
        fn, autograd, cases, exercise="rnn_backward", timeout=timeout, rtol=1e-7, quiet=True
    )
    return _relabeled(
        result,
        [
            ("your output[0]", "your dW"),
            ("your output[1]", "your dU"),
            ("your output[2]", "your db"),
        ],
        hint=(
            "walk t from L-1 down to 0; the gradient reaching h_t is dh[t] plus W.T @ delta_{t+1} "
            "(what flows back from the next step); delta_t is that times phi'(a_t), computed from "
            "h[t]; dW collects outer(delta_t, h_{t-1}) with h_{-1} = 0."
        ),
        quiet=quiet,
    )


def check_jacobian_norms(
    fn: Callable, *, quiet: bool = False, timeout: float = 10.0
) -> CheckResult:
    """Lesson 01, exercise 3: ``fn(h, W, nonlinearity)`` returns ‖∂h_T/∂h_t‖₂ for t = 0..T.

    h (L, N) forward states, T = L − 1; returns shape (L,), with entry T equal to 1. Compared with
    :func:`mamba_edu.rnn.jacobian_norms` (spectral norm: the largest singular value).
    """
    from mamba_edu import rnn

    def make(seed, L, N, nonlinearity, radius=0.9):
        x, W, U, b, _ = _rnn_case(_rng(seed), L, 2, N, nonlinearity, radius=radius)
        return rnn.rnn_forward(x, W, U, b, nonlinearity), W, nonlinearity

    Q, _ = np.linalg.qr(_rng(35).standard_normal((4, 4)))
    cases = [
        Case("tanh, random (L=12, N=5)", make(30, 12, 5, "tanh")),
        Case("relu, random (L=10, N=6)", make(31, 10, 6, "relu")),
        Case("identity, spectral radius 1.2 (L=15, N=4)", make(32, 15, 4, "identity", 1.2)),
        Case("L = 1 (only ∂h_T/∂h_T = I)", make(33, 1, 3, "tanh")),
        Case(
            "identity, W = 0.8 × orthogonal (norms are 0.8^k)",
            (np.zeros((8, 4)), 0.8 * Q, "identity"),
        ),
    ]
    result = check_function(
        fn, rnn.jacobian_norms, cases, exercise="jacobian_norms", timeout=timeout, quiet=True
    )
    return _relabeled(
        result,
        [],
        hint=(
            "start from J = I at t = T and go back: J_t = J_{t+1} @ diag(phi'(a_{t+1})) @ W; "
            "the norm is the spectral norm np.linalg.norm(J, 2), not the Frobenius norm."
        ),
        quiet=quiet,
    )


# ----------------------------------------------------------------------------------------------
# Lesson 02 — linear RNNs
# ----------------------------------------------------------------------------------------------


def _linear_system(seed, N, D, P, radius=0.9, *, symmetric=False):
    rng = _rng(seed)
    A = rng.standard_normal((N, N))
    if symmetric:
        A = A + A.T  # real eigenvalues only
    A *= radius / np.max(np.abs(np.linalg.eigvals(A)))
    return A, rng.standard_normal((N, D)), rng.standard_normal((P, N))


def _rotation(theta, r=0.95):
    return r * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])


def check_linear_rnn(fn: Callable, *, quiet: bool = False, timeout: float = 10.0) -> CheckResult:
    """Lesson 02, exercise 1: ``fn(x, A, B, C)`` returns y_t = C h_t, h_t = A h_{t−1} + B x_t.

    x (L, D), A (N, N), B (N, D), C (P, N), h_{−1} = 0; returns y (L, P). Compared with
    :func:`mamba_edu.linear_rnn.linear_rnn`.
    """
    from mamba_edu import linear_rnn as lr

    def case(seed, L, N, D, P, radius=0.9):
        A, B, C = _linear_system(seed, N, D, P, radius)
        return (_rng(seed + 1).standard_normal((L, D)), A, B, C)

    impulse = np.zeros((20, 1))
    impulse[0] = 1.0
    cases = [
        Case("random (L=16, N=5, D=2, P=3)", case(40, 16, 5, 2, 3)),
        Case("L = 1 (y_0 = C B x_0)", case(41, 1, 4, 3, 2)),
        Case("N = D = P = 1 (a scalar recurrence)", case(42, 10, 1, 1, 1)),
        Case(
            "a rotation (complex eigenvalues), impulse input",
            (impulse, _rotation(0.4), np.array([[1.0], [0.0]]), np.array([[1.0, 0.0]])),
        ),
        Case("unstable: spectral radius 1.1 (L=30)", case(43, 30, 4, 2, 2, radius=1.1)),
    ]
    result = check_function(
        fn, lr.linear_rnn, cases, exercise="linear_rnn", timeout=timeout, quiet=True
    )
    return _relabeled(result, [], hint="h_{-1} = 0, so h_0 = B x_0 and y_0 = C B x_0.", quiet=quiet)


def check_convolution_kernel(
    fn: Callable, *, quiet: bool = False, timeout: float = 10.0
) -> CheckResult:
    """Lesson 02, exercise 2: ``fn(A, B, C, L)`` returns K with K[j] = C A^j B, shape (L, P, D).

    Compared with :func:`mamba_edu.linear_rnn.convolution_kernel`.
    """
    from mamba_edu import linear_rnn as lr

    cases = [
        Case("random (N=5, D=2, P=3, L=12)", _linear_system(50, 5, 2, 3) + (12,)),
        Case("L = 1 (only K[0] = C B)", _linear_system(51, 4, 3, 2) + (1,)),
        Case("N = D = P = 1", _linear_system(52, 1, 1, 1) + (8,)),
        Case(
            "a rotation (complex eigenvalues)",
            (_rotation(1.0), np.array([[1.0], [0.0]]), np.array([[1.0, 0.0]]), 16),
        ),
    ]
    result = check_function(
        fn, lr.convolution_kernel, cases, exercise="convolution_kernel", timeout=timeout, quiet=True
    )
    return _relabeled(
        result,
        [],
        hint="K[0] = C @ B (A to the power 0 is the identity); K[j] = C @ A^j @ B.",
        quiet=quiet,
    )


def check_diagonalize(fn: Callable, *, quiet: bool = False, timeout: float = 10.0) -> CheckResult:
    """Lesson 02, exercise 3: ``fn(A, B, C)`` returns (lam, B̃, C̃) with A = V diag(lam) V^{−1}.

    Eigenvectors can be scaled and ordered in many ways, so the check does not compare the arrays
    themselves: it runs the diagonal recurrence h̃_t = lam ⊙ h̃_{t−1} + B̃ x_t, y_t = Re(C̃ h̃_t)
    with the learner's (lam, B̃, C̃) on random inputs and compares y with the dense recurrence.
    """
    from mamba_edu import linear_rnn as lr

    def via_diagonal(A, B, C, x):
        out = fn(A, B, C)
        if not isinstance(out, (tuple, list)) or len(out) != 3:
            raise ValueError(
                f"expected a tuple (lam, B_tilde, C_tilde), got {_type_name(out)}"
                + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else "")
            )
        lam, Bt, Ct = (np.asarray(a) for a in out)
        N, D, P = A.shape[0], B.shape[1], C.shape[0]
        for name, arr, shape in (
            ("lam", lam, (N,)),
            ("B_tilde", Bt, (N, D)),
            ("C_tilde", Ct, (P, N)),
        ):
            if arr.shape != shape:
                raise ValueError(f"expected {name} of shape {shape}, got {arr.shape}")
        return lr.diagonal_rnn(x, lam, Bt, Ct)

    def dense(A, B, C, x):
        return lr.linear_rnn(x, A, B, C)

    def case(seed, N, D, P, L=20, **kw):
        return _linear_system(seed, N, D, P, **kw) + (_rng(seed + 1).standard_normal((L, D)),)

    cases = [
        Case("real eigenvalues only (symmetric A, N=4)", case(60, 4, 2, 2, symmetric=True)),
        Case("complex eigenvalue pairs (random A, N=6)", case(61, 6, 2, 3)),
        Case(
            "a rotation (eigenvalues 0.95·e^(±0.5i))",
            (_rotation(0.5), np.array([[1.0], [0.5]]), np.array([[1.0, -1.0]]))
            + (_rng(62).standard_normal((25, 1)),),
        ),
        Case("N = 1", case(63, 1, 1, 1)),
        Case("one step (L = 1)", case(64, 5, 3, 2, L=1)),
    ]
    result = check_function(
        via_diagonal if callable(fn) else fn,
        lambda A, B, C, x: dense(A, B, C, x),
        cases,
        exercise="diagonalize",
        timeout=timeout,
        quiet=True,
    )
    return _relabeled(
        result,
        [("your output", "the output of the diagonal recurrence built from your (lam, B̃, C̃)")],
        hint=(
            "with lam, V = np.linalg.eig(A): B̃ = V^-1 B (np.linalg.solve(V, B)) and C̃ = C V. "
            "Keep lam, B̃ and C̃ complex; only the final output takes the real part."
        ),
        quiet=quiet,
    )


# ----------------------------------------------------------------------------------------------
# Lesson 06 — selectivity
# ----------------------------------------------------------------------------------------------


def check_selective_scan_loop(
    fn: Callable, *, quiet: bool = False, timeout: float = 10.0
) -> CheckResult:
    """Lesson 06, exercise 1: ``fn(u, delta, A, B, C)`` → y of shape (D, L), one sequence.

    u, delta: (D, L) (delta already positive, after softplus); A: (D, N); B, C: (N, L). Compared
    with :func:`mamba_edu.selective.selective_scan` on a batch of one.
    """
    from mamba_edu import selective

    def reference(u, delta, A, B, C):
        return selective.selective_scan(u[None], delta[None], A, B[None], C[None])[0]

    def make(rng, shape):
        D, N, L = shape
        return (
            rng.standard_normal((D, L)),
            rng.uniform(1e-3, 0.5, (D, L)),
            -rng.uniform(0.5, 4.0, (D, N)),
            rng.standard_normal((N, L)),
            rng.standard_normal((N, L)),
        )

    cases = random_cases(make, [(3, 4, 12), (1, 1, 5), (5, 16, 30)])
    rng = _rng(66)
    big_steps = (
        rng.standard_normal((2, 8)),
        np.full((2, 8), 50.0),  # Δ so large that exp(ΔA) ≈ 0: every step resets the state
        -np.ones((2, 3)),
        rng.standard_normal((3, 8)),
        rng.standard_normal((3, 8)),
    )
    cases += [
        Case("one step (L = 1)", make(_rng(67), (2, 3, 1))),
        Case("huge Δ: each step forgets everything before it", big_steps),
    ]
    return check_function(
        fn, reference, cases, exercise="selective_scan_loop", rtol=1e-9, atol=1e-12,
        timeout=timeout, quiet=quiet,
    )  # fmt: skip


def check_influence(fn: Callable, *, quiet: bool = False, timeout: float = 10.0) -> CheckResult:
    """Lesson 06, exercise 2: ``fn(delta, a)`` → M of shape (L, L), the weight of input s in the
    state at t. Compared with :func:`mamba_edu.selective.influence`."""
    from mamba_edu import selective

    def make(rng, shape):
        (L,) = shape
        return rng.uniform(0.01, 1.0, L), float(-rng.uniform(0.2, 3.0))

    cases = random_cases(make, [(6,), (1,), (25,)])
    cases += [
        Case(
            "a reset: one huge Δ in the middle", (np.array([0.1, 0.1, 0.1, 30.0, 0.1, 0.1]), -1.0)
        ),
        Case("an ignored step: Δ = 0 at t = 2", (np.array([0.5, 0.5, 0.0, 0.5]), -2.0)),
    ]
    return check_function(
        fn, selective.influence, cases, exercise="influence", rtol=1e-9, atol=1e-12,
        timeout=timeout, quiet=quiet,
    )  # fmt: skip
