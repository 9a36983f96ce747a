"""The self-check harness: run a learner's function, compare it with a reference, say what differs.

:func:`check_function` calls the learner's function and a reference on the same inputs and reports
the *first* problem in words: which case, which index, what was expected, what came back. It
survives whatever the learner's function does: raising (``SystemExit`` and ``KeyboardInterrupt``
included), returning the wrong shape or dtype, NaN, a masked array or an ndarray subclass that lies
about itself, changing its inputs in place, or running forever, even inside a bare ``except:``
(stopped after ``timeout`` seconds; the Jupyter kernel carries on). A wrong answer never raises: the
check prints its message and returns a :class:`CheckResult`, falsy on failure, so an autograder
test can ``assert check_...(fn)``. A mistake of the *caller* (a bad ``timeout``) does raise.

An :class:`Exercise` is one exercise's declaration (reference, cases, tolerances, hint); the lesson
modules ``lesson00`` … hold them as data, keyed by the nbgrader ``grade_id``.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import io
import json
import os
import stat
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .timelimit import CheckTimeout, checked_timeout, run_with_timeout


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
        # The message was printed when the check ran; displaying the object again would repeat it.
        return None


# ----------------------------------------------------------------------------------------------
# Reading and describing what came back
# ----------------------------------------------------------------------------------------------


class UnreadableOutput(Exception):
    """The learner's output could not be turned into plain data (its conversion raised)."""


def plain(x: Any) -> Any:
    """``x`` as plain data that its own methods can no longer misreport.

    An ndarray subclass (a masked array, one overriding ``__eq__``, ``shape`` or ``__array__``) is
    read through the base class into a plain copy: masked entries keep their real values, so a mask
    hides no mismatch. Tuples and lists are rebuilt element by element; objects with ``__array__``
    are converted once, and only that copy is judged.
    """
    if isinstance(x, tuple):
        return tuple(plain(v) for v in tuple.__iter__(x))
    if isinstance(x, list):
        return [plain(v) for v in list.__iter__(x)]
    if type(x) is np.ndarray:
        return x
    if isinstance(x, np.ndarray):
        return np.array(np.ndarray.view(x, np.ndarray), copy=True, subok=False)
    if isinstance(x, (int, float, complex, np.generic, str, bytes, dict)) or x is None:
        return x
    if hasattr(type(x), "__array__") or hasattr(type(x), "__array_interface__"):
        return plain(np.asarray(x))
    return x


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


def type_name(x: Any) -> str:
    if isinstance(x, np.ndarray):
        return f"a NumPy array of shape {x.shape} and dtype {x.dtype}"
    return f"a {type(x).__name__}"


def _learner_frame(exc: BaseException) -> str:
    """The last traceback line outside this package: usually the learner's own line."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if PACKAGE_DIR not in f.filename]
    if not frames:
        return ""
    f = frames[-1]
    where = "your code" if f.filename.startswith("<") else f.filename
    line = f" ({f.line.strip()})" if f.line else ""
    return f"\n   It happened in {where}, line {f.lineno}{line}."


PACKAGE_DIR = __file__.rpartition("/")[0] or __file__


def describe_mismatch(
    expected: Any, got: Any, *, what: str = "the output", rtol: float = 1e-7, atol: float = 1e-9
) -> str | None:
    """Compare one returned value with the expected one; return ``None`` or a sentence saying why not.

    Checks, in order: ``None`` returned, type, shape, dtype, NaN/inf, then values to
    ``rtol``/``atol`` (``numpy.isclose`` semantics), naming the first differing index. ``got`` is
    judged as :func:`plain` data.
    """
    got = plain(got)
    if got is None and expected is not None:
        return f"{what} is None. Did you forget to `return` it?"
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return (
                f"{what} should be a tuple of {len(expected)} values, got {type_name(got)}"
                + (f" of length {len(got)}" if isinstance(got, (tuple, list)) else "")
                + "."
            )
        for i, (e, g) in enumerate(zip(expected, got, strict=True)):
            problem = describe_mismatch(e, g, what=f"{what}[{i}]", rtol=rtol, atol=atol)
            if problem:
                return problem
        return None

    exp = np.asarray(expected)
    try:
        arr = got if isinstance(got, np.ndarray) else np.asarray(got)
    except Exception:  # noqa: BLE001 - anything that is not array-like
        arr = np.empty(0, dtype=object)
    if arr.dtype == object or arr.dtype.kind in "USV":
        return f"{what} should be {type_name(exp)}, got {type_name(got)}."
    if arr.shape != exp.shape:
        return f"{what} should have shape {exp.shape}, got shape {arr.shape}."
    e, k = exp.dtype, arr.dtype
    if e.kind in "fc" and k.kind not in "fc":
        return f"{what} should be floating point ({e}), got dtype {k}."
    if e.kind == "c" and k.kind != "c":
        return f"{what} should be complex ({e}), got real dtype {k}."
    if e.kind == "f" and k.kind == "c":
        return f"{what} should be real ({e}), got complex dtype {k}."
    if e.kind in "fc" and k.itemsize < e.itemsize:
        return (
            f"{what} should have dtype {e}, got {k}: lower precision loses digits the check "
            f"needs. Compute in {e}."
        )
    if e.kind in "fc":
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
        diff = ""
        if e.kind in "fc":
            diff = f" (difference {_fmt(abs(arr[idx] - exp[idx]))}, tolerance rtol={rtol:g}, atol={atol:g})"
        return (
            f"{what} differs {where}: expected {_fmt(exp[idx])}, got {_fmt(arr[idx])}{diff}. "
            f"{int((~close).sum())} of {exp.size} value(s) differ."
        )
    return None


def _changed_inputs(before: dict[str, Any], after: dict[str, Any]) -> str | None:
    for name, old in before.items():
        new = plain(after[name])
        if isinstance(old, np.ndarray):
            nan_ok = old.dtype.kind in "fc"
            same_shape = isinstance(new, np.ndarray) and new.shape == old.shape
            if same_shape and np.array_equal(new, old, equal_nan=nan_ok):
                continue
            idx = ""
            if same_shape:
                same_at = (new == old) | (np.isnan(new) & np.isnan(old) if nan_ok else False)
                first = tuple(int(i) for i in np.argwhere(~same_at)[0])
                idx = f" (first at index {first}: was {_fmt(old[first])}, now {_fmt(new[first])})"
            return (
                f"your function changed its input `{name}` in place{idx}. Work on a copy "
                f"(`{name}.copy()`) or build a new array instead: the caller still needs the "
                f"original."
            )
        if isinstance(old, (list, dict)) and old != new:
            return f"your function changed its input `{name}` in place. Work on a copy instead."
    return None


def _arg_names(reference: Callable, case: Case) -> list[str]:
    try:
        params = list(inspect.signature(reference).parameters)
    except (TypeError, ValueError):
        params = []
    names = params[: len(case.args)]
    return names + [f"argument {i + 1}" for i in range(len(names), len(case.args))]


# ----------------------------------------------------------------------------------------------
# The check
# ----------------------------------------------------------------------------------------------


def _call_and_read(fn: Callable, args: tuple, kwargs: dict) -> Any:
    out = fn(*args, **kwargs)
    try:  # inside the time limit: a lying __array__ may loop too
        return plain(out)
    except Exception as exc:  # noqa: BLE001 - any failure of the learner's object
        raise UnreadableOutput(f"{type(exc).__name__}: {exc}") from exc


def _failure_of(exc: BaseException, case: Case, timeout: float | None, seconds: float) -> str:
    """What to tell the learner when their function raised ``exc`` on ``case``."""
    if isinstance(exc, NotImplementedError):
        return (
            "not implemented yet: replace the `raise NotImplementedError` line with your "
            "code, run that cell, then run this check again."
        )
    if isinstance(exc, CheckTimeout):
        message = (
            f"stopped after {seconds:.1f} s on case '{case.name}' (the limit is {timeout:g} s). "
            f"Is there a loop that never ends?"
        )
        if getattr(exc, "still_running", False):
            return message + " It could not be stopped and still runs in the background."
        return message + " Your kernel is fine; fix the function and check again."
    if isinstance(exc, UnreadableOutput):
        return f"your output could not be read as an array ({exc}) on case '{case.name}'."
    if isinstance(exc, SystemExit):
        return (
            f"your function tried to exit Python (SystemExit({exc.code!r}), from sys.exit or "
            f"exit()) on case '{case.name}'. Return the result instead; the check stopped the "
            f"exit, and your kernel carries on." + _learner_frame(exc)
        )
    if isinstance(exc, KeyboardInterrupt):
        return f"interrupted (KeyboardInterrupt) during case '{case.name}'." + _learner_frame(exc)
    return (
        f"your function raised {type(exc).__name__}: {exc}\n   on case '{case.name}'."
        + _learner_frame(exc)
    )


def check_function(
    fn: Callable,
    reference: Callable | None,
    cases: Iterable[Case],
    *,
    exercise: str,
    rtol: float = 1e-7,
    atol: float = 1e-9,
    timeout: float | None = 10.0,
    quiet: bool = False,
    validate: Callable[[Case, Any], str | None] | None = None,
) -> CheckResult:
    """Run ``fn`` and ``reference`` on every case; print and return the first problem, or success.

    ``exercise`` names the exercise in messages. ``timeout`` is the time limit, in seconds, of one
    call of the learner's function (None: no limit). ``quiet`` suppresses printing (autograder).
    For a random output that no reference can match value for value (a sampler), pass
    ``reference=None`` and ``validate(case, output)``, which returns ``None`` or what is wrong.
    """
    timeout = checked_timeout(timeout)
    if (reference is None) == (validate is None):
        raise ValueError("expected exactly one of reference and validate")
    cases = list(cases)
    if not callable(fn):
        return finish(
            False,
            exercise,
            f"expected a function to check, got {type_name(fn)}. Pass the function itself, "
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
        args, kwargs = copy.deepcopy(case.args), copy.deepcopy(case.kwargs)
        before = {n: copy.deepcopy(a) for n, a in zip(names, args, strict=True)}
        before.update(copy.deepcopy(kwargs))
        start = time.perf_counter()
        try:
            got = run_with_timeout(lambda: _call_and_read(fn, args, kwargs), timeout)  # noqa: B023 - called at once
        except BaseException as exc:  # noqa: BLE001 - the learner's code may raise anything
            detail = _failure_of(exc, case, timeout, time.perf_counter() - start)
            return finish(False, exercise, detail, i, len(cases), quiet)
        after = dict(zip(names, args, strict=True)) | kwargs
        problem = _changed_inputs(before, after)
        if problem is None and reference is not None:
            problem = describe_mismatch(expected, got, what="your output", rtol=rtol, atol=atol)
        elif problem is None:
            problem = validate(case, got)
        if problem is not None:
            return finish(
                False, exercise, f"on case '{case.name}', {problem}", i, len(cases), quiet
            )
    detail = f"all {len(cases)} cases match the reference."
    return finish(True, exercise, detail, len(cases), len(cases), quiet)


def finish(
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
# Grading with the verdict outside the student's process
# ----------------------------------------------------------------------------------------------
# When a class is graded (mamba_edu.grading), the student's kernel only computes the student's
# outputs on inputs it receives and writes them out as plain data: JSON for the structure, one
# .npz file for the arrays, never pickle (reading a pickle runs code). The grading process, which
# no student code ever ran in, computes the reference and judges them with the functions above.

MAX_RECORD_BYTES = 256 * 2**20  # a record larger than this is not read back (a hostile one)


class RecordError(Exception):
    """Data that cannot travel in or out of the sandbox as a record (names what and why)."""


def pack(value: Any, arrays: dict[str, np.ndarray], *, what: str = "value") -> Any:
    """``value`` as JSON-ready structure; its arrays go to ``arrays`` under fresh keys.

    Understood: None, bool, int, float, complex, str, NumPy scalars and arrays (not of dtype
    object), NumPy's default random generator (PCG64), module-level functions of the course (by
    name), and tuples, lists and dicts (with str keys) of those. Anything else raises
    :class:`RecordError` naming ``what``.
    """
    if value is None or isinstance(value, (bool, str)):
        return {"t": "atom", "v": value}
    if isinstance(value, int) and not isinstance(value, bool):
        return {"t": "int", "v": str(int(value))}  # a string: JSON numbers lose big ints
    if isinstance(value, float):
        return {"t": "float", "v": float.hex(float(value))}  # hex: exact, inf and nan included
    if isinstance(value, complex):
        return {"t": "complex", "v": [float.hex(value.real), float.hex(value.imag)]}
    if isinstance(value, (np.ndarray, np.generic)):
        arr = np.ndarray.view(np.asarray(value), np.ndarray)
        if arr.dtype.hasobject:
            raise RecordError(f"{what} is an array of Python objects, which cannot be recorded")
        key = f"a{len(arrays)}"
        arrays[key] = np.array(arr, copy=True)
        return {"t": "array" if isinstance(value, np.ndarray) else "scalar", "k": key}
    if isinstance(value, np.random.Generator) and type(value.bit_generator) is np.random.PCG64:
        # a sampler's input (lesson 04): sent as its state, rebuilt on the other side
        return {"t": "generator", "v": value.bit_generator.state}
    if inspect.isfunction(value) and _course_function(value.__module__, value.__qualname__):
        # a course function given as an input (lesson 03's scan operators): sent by name
        return {"t": "function", "v": [value.__module__, value.__qualname__]}
    if isinstance(value, (tuple, list)):
        items = tuple.__iter__(value) if isinstance(value, tuple) else list.__iter__(value)
        kind = "tuple" if isinstance(value, tuple) else "list"
        return {"t": kind, "v": [pack(v, arrays, what=f"{what}[{i}]") for i, v in enumerate(items)]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {
            "t": "dict",
            "v": {k: pack(v, arrays, what=f"{what}[{k!r}]") for k, v in value.items()},
        }
    raise RecordError(f"{what} is {type_name(value)}, which cannot be recorded for grading")


def _course_function(module: str, qualname: str) -> bool:
    """A function of the course's own modules, reachable by name (not a lambda or a closure)."""
    return module.startswith("mamba_edu.") and "<" not in qualname


def unpack(tree: Any, arrays: Any) -> Any:
    """The value :func:`pack` recorded (``arrays``: a mapping such as an opened ``.npz``)."""
    if not isinstance(tree, dict) or "t" not in tree:
        raise RecordError(f"damaged record: {str(tree)[:80]!r}")
    kind = tree["t"]
    if kind == "atom":
        if tree["v"] is None or isinstance(tree["v"], (bool, str)):
            return tree["v"]
    elif kind == "int":
        return int(tree["v"])
    elif kind == "float":
        return float.fromhex(tree["v"])
    elif kind == "complex":
        return complex(float.fromhex(tree["v"][0]), float.fromhex(tree["v"][1]))
    elif kind in ("array", "scalar"):
        arr = arrays[str(tree["k"])]
        return arr if kind == "array" else arr[()]
    elif kind == "function":
        module, qualname = (str(v) for v in tree["v"])
        if _course_function(module, qualname):
            found = importlib.import_module(module)
            for part in qualname.split("."):
                found = getattr(found, part)
            return found
    elif kind == "generator":
        bit_generator = np.random.PCG64()
        bit_generator.state = tree["v"]
        return np.random.Generator(bit_generator)
    elif kind in ("tuple", "list"):
        items = [unpack(v, arrays) for v in tree["v"]]
        return tuple(items) if kind == "tuple" else items
    elif kind == "dict":
        return {str(k): unpack(v, arrays) for k, v in tree["v"].items()}
    raise RecordError(f"damaged record: unknown kind {kind!r}")


def write_record(path_stem: str, value: Any) -> None:
    """Write ``value`` as ``<path_stem>.json`` and ``<path_stem>.npz`` (see :func:`pack`)."""
    arrays: dict[str, np.ndarray] = {}
    tree = pack(value, arrays)
    np.savez(path_stem + ".npz", **arrays)
    with open(path_stem + ".json", "w") as f:
        json.dump(tree, f)


def read_untrusted(path: str, limit: int = MAX_RECORD_BYTES) -> bytes:
    """The bytes of a file a student's code may have written, read without following links.

    A link could point at a file the student must not see; a fifo could hang the grader. Raises
    :class:`RecordError` unless ``path`` is a regular file of at most ``limit`` bytes.
    """
    name = os.path.basename(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise RecordError(f"cannot open {name}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise RecordError(f"{name} is not a regular file")
        if info.st_size > limit:
            raise RecordError(f"{name} is larger than {limit} bytes")
        return f.read(limit + 1)


def read_record(path_stem: str) -> Any:
    """Read back what :func:`write_record` wrote, refusing links and oversized or odd files.

    The files may come from a student's sandbox: they are opened without following symbolic
    links (a link could point at a file the student must not see), must be regular files of at
    most :data:`MAX_RECORD_BYTES`, and arrays are read without pickle.
    """
    tree = json.loads(read_untrusted(path_stem + ".json"))
    try:
        with np.load(io.BytesIO(read_untrusted(path_stem + ".npz")), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError) as exc:
        raise RecordError(f"damaged arrays: {exc}") from None
    return unpack(tree, arrays)


def record_outputs(
    fn: Callable,
    cases: list[Case],
    *,
    adapt: Callable[[Callable], Callable] | None = None,
    timeout: float | None = 10.0,
) -> list[dict]:
    """Run the learner's ``fn`` on each case, in the learner's process; judge nothing.

    One entry per case: ``{"out": output, "args": inputs after the call, "kwargs": …}`` or
    ``{"error": what went wrong, in words}``. The grading process compares these with the reference
    (:func:`judge_records`); this side never sees the expected values.
    """
    timeout = checked_timeout(timeout)
    records: list[dict] = []
    if not callable(fn):
        return [{"error": f"expected a function, got {type_name(fn)}"} for _ in cases]
    candidate = adapt(fn) if adapt is not None else fn
    for case in cases:
        args, kwargs = copy.deepcopy(case.args), copy.deepcopy(case.kwargs)
        start = time.perf_counter()
        try:
            got = run_with_timeout(lambda: _call_and_read(candidate, args, kwargs), timeout)  # noqa: B023 - called at once
            records.append({"out": got, "args": args, "kwargs": kwargs})
        except BaseException as exc:  # noqa: BLE001 - the learner's code may raise anything
            detail = _failure_of(exc, case, timeout, time.perf_counter() - start)
            records.append({"error": detail})
            if isinstance(exc, CheckTimeout):
                break  # a loop that never ends need not be tried on every case
    return records


def judge_records(
    records: list[Any],
    reference: Callable | None,
    cases: list[Case],
    *,
    exercise: str,
    rtol: float = 1e-7,
    atol: float = 1e-9,
    validate: Callable[[Case, Any], str | None] | None = None,
) -> CheckResult:
    """Judge outputs recorded by :func:`record_outputs` against ``reference`` on ``cases``.

    Runs in the grading process. ``records`` is untrusted data: anything that is not what
    :func:`record_outputs` writes counts as a failure of that case, never as a pass.
    """
    if (reference is None) == (validate is None):
        raise ValueError("expected exactly one of reference and validate")
    if not isinstance(records, list):
        records = []
    for i, case in enumerate(cases):
        rec = records[i] if i < len(records) else None
        if not isinstance(rec, dict):
            detail = f"no output was recorded for case '{case.name}' (the code did not run to it)."
            return finish(False, exercise, detail, i, len(cases), True)
        if "error" in rec:
            return finish(False, exercise, str(rec["error"])[:2000], i, len(cases), True)
        names = _arg_names(reference or (lambda *a: None), case)
        before = dict(zip(names, case.args, strict=True)) | dict(case.kwargs)
        got_args = rec.get("args")
        got_kwargs = rec.get("kwargs")
        if (
            not isinstance(got_args, (tuple, list))
            or len(got_args) != len(case.args)
            or not isinstance(got_kwargs, dict)
        ):
            detail = f"the record of case '{case.name}' is damaged."
            return finish(False, exercise, detail, i, len(cases), True)
        after = dict(zip(names, got_args, strict=True)) | got_kwargs
        problem = _changed_inputs(before, after)
        if problem is None and reference is not None:
            expected = reference(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
            got = rec.get("out")
            problem = describe_mismatch(expected, got, what="your output", rtol=rtol, atol=atol)
        elif problem is None:
            problem = validate(case, rec.get("out"))
        if problem is not None:
            return finish(False, exercise, f"on case '{case.name}', {problem}", i, len(cases), True)
    detail = f"all {len(cases)} cases match the reference."
    return finish(True, exercise, detail, len(cases), len(cases), True)


def capture(fn: Any, folder: str, grade_id: str, exercise: Any) -> None:
    """In a student's sandboxed kernel: record ``fn``'s outputs on the inputs the grader left.

    ``exercise`` is the declaration (:class:`~mamba_edu.checks.exercise.Exercise`) of ``grade_id``.
    The grader wrote ``<folder>/inputs.{json,npz}`` (cases for every exercise, fresh random
    values); this writes ``<folder>/outputs-<grade_id>.{json,npz}`` and prints one line. What the
    student's code does to this function or to NumPy here can only spoil their own record.
    """
    cases = [
        Case(c["name"], tuple(c["args"]), dict(c["kwargs"]))
        for c in read_record(folder + "/inputs")[grade_id]
    ]
    records = record_outputs(fn, cases, adapt=exercise.adapt, timeout=exercise.timeout)
    safe = []
    for case, rec in zip(cases, records, strict=False):
        try:
            pack(rec, {})
            safe.append(rec)
        except RecordError as exc:
            safe.append(
                {"error": f"on case '{case.name}', your output could not be recorded: {exc}."}
            )
    write_record(f"{folder}/outputs-{grade_id}", safe)
    print(f"{grade_id}: outputs on {len(cases)} fresh cases recorded; the grader checks them.")
