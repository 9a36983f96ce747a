"""The argument contract of the scans: shapes, dtypes and error messages, written once.

The NumPy references (:mod:`mamba_edu.scan`, :mod:`mamba_edu.selective`) and every kernel in
:mod:`mamba_edu.kernels` (CPU, CUDA, Triton) check their arguments here, so that a mistake gets
the same words whichever implementation it reaches. This is a leaf module: it imports only NumPy
(and torch inside the checks of torch tensors, see :func:`selective_tensors`), so that the
kernels can import it without importing the references, and nothing imports back.

Layouts (the course's notation): first-order scans take a, b of shape (..., L), time last;
the selective scan takes x, delta, z of shape (batch, D, L), A of shape (D, N), B and C of shape
(batch, N, L), D and delta_bias of shape (D,), as the official ``mamba_ssm`` (which calls x ``u``).

Generic validators for public functions:

* :func:`positive_int` a size such as d_state or a chunk length (no bools, no 3.0);
* :func:`real_scalar` one real number (no arrays, no bools);
* :func:`float_array` an array of real floating numbers, with an expected shape in the message;
* :func:`require_length` L >= 1 where a sequence is required.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = [
    "positive_int",
    "real_scalar",
    "float_array",
    "require_length",
    "shape_error",
    "scan_args",
    "check_scan_inputs",
    "check_grad_input",
    "check_scan_tensors",
    "SELECTIVE_ARGS",
    "selective_shapes",
    "selective_args",
    "selective_tensors",
]


# ----------------------------------------------------------------------------------------------
# Generic validators
# ----------------------------------------------------------------------------------------------


def positive_int(name: str, value, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``; a bool, a float (even 3.0) or a string is an error."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"expected {name} to be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"expected {name} to be an integer >= {minimum}, got {value}")
    return int(value)


def real_scalar(name: str, value) -> float:
    """``value`` as a Python float; arrays (even of size 1), bools, complex numbers are errors."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        shape = getattr(value, "shape", None)
        what = f"an array of shape {shape}" if shape is not None else repr(value)
        raise TypeError(f"expected {name} to be a real number (a scalar), got {what}")
    return float(value)


def require_length(name: str, shape, names: str = "(..., L)") -> int:
    """L = shape[-1] must be >= 1 where a sequence is required; returns L."""
    if len(shape) == 0 or shape[-1] < 1:
        raise ValueError(
            f"expected {name} of shape {names} with a sequence of length L >= 1, got {tuple(shape)}"
        )
    return shape[-1]


def shape_error(name: str, names: str, expected, got) -> ValueError:
    """The one wording of a shape mismatch:
    ``expected x of shape (batch, D, L) = (2, 8, 64), got (2, 64, 8)``."""
    return ValueError(f"expected {name} of shape {names} = {tuple(expected)}, got {tuple(got)}")


def _dtype_words(dtype) -> str:
    return "complex" if np.dtype(dtype).kind == "c" else str(dtype)


def float_array(
    name: str, value, dtype=np.float64, *, shape=None, names: str = "", integers: bool = False
) -> np.ndarray:
    """``value`` as a NumPy array of ``dtype`` (a real floating type).

    Rejected, with a message naming ``name``: bool, complex, object and string dtypes, and
    integer dtypes unless ``integers`` is set (then they are converted exactly). ``shape`` (a
    tuple, optional) is the expected shape and ``names`` its letters, e.g. "(batch, D, L)".
    """
    array = np.asarray(value)
    kind = array.dtype.kind
    if kind not in "fiu" or (kind in "iu" and not integers):
        also = " (integers are accepted too)" if integers else ""
        raise TypeError(
            f"expected {name} to be a real float array, got dtype {_dtype_words(array.dtype)}{also}"
        )
    if shape is not None and array.shape != tuple(shape):
        raise shape_error(name, names or "", shape, array.shape)
    return array.astype(dtype, copy=False)


# ----------------------------------------------------------------------------------------------
# First-order scans, h_t = a_t h_{t-1} + b_t, arrays (..., L)
# ----------------------------------------------------------------------------------------------


def scan_args(a, b, h0=None, *, name_a: str = "a", name_b: str = "b"):
    """The NumPy references' contract (:mod:`mamba_edu.scan`): a, b of shape (..., L) or
    broadcastable to one shape, real or complex numbers (integers are converted), h0 of shape (...).
    Returns (a, b, h0, shape, dtype) in their common floating dtype. L = 0 is allowed (an empty
    scan is well defined)."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(
            f"expected {name_a} and {name_b} of shape (..., L) with time last, got "
            f"{name_a}.shape={a.shape}, {name_b}.shape={b.shape}"
        )
    for name, value in ((name_a, a), (name_b, b)):
        if value.dtype.kind not in "iufc":
            raise TypeError(
                f"expected {name} to hold numbers (real or complex), got dtype {value.dtype}"
            )
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(
            f"expected {name_a} and {name_b} of the same shape (..., L) (or broadcastable), got "
            f"{name_a}.shape={a.shape}, {name_b}.shape={b.shape}"
        ) from None
    dtype = np.result_type(a, b, np.float64)
    a = np.broadcast_to(a, shape).astype(dtype, copy=False)
    b = np.broadcast_to(b, shape).astype(dtype, copy=False)
    if h0 is not None:
        h0 = np.asarray(h0)
        if h0.shape != shape[:-1]:
            raise ValueError(
                f"expected h0 of shape {shape[:-1]} (the leading dims of {name_a} and {name_b}), "
                f"got {h0.shape}"
            )
        if h0.dtype.kind not in "iufc":
            raise TypeError(f"expected h0 to hold numbers, got dtype {h0.dtype}")
        dtype = np.result_type(dtype, h0)
        a, b, h0 = a.astype(dtype, copy=False), b.astype(dtype, copy=False), h0.astype(dtype)
    return a, b, h0, shape, dtype


_KERNEL_DTYPES = {
    np.dtype(np.float32): "float32",
    np.dtype(np.float64): "float64",
    np.dtype(np.complex64): "complex64",
    np.dtype(np.complex128): "complex128",
}


def check_scan_inputs(a, b, h0=None, *, dtypes=tuple(_KERNEL_DTYPES), backend="this kernel"):
    """The first-order scan kernels' contract (NumPy in): a, b of the same shape (..., L) and
    the same dtype, one of ``dtypes``; h0 ``None`` or of shape (...) and that dtype.

    Non-contiguous arrays are copied to contiguous ones (handled, not an error). L = 0 is allowed.
    Returns (a2, b2, h02, shape) with a2, b2 of shape (M, L), h02 of shape (M,) (zeros when h0 is
    None) and ``shape`` the original shape.
    """
    for name, value in (("a", a), ("b", b)):
        if not isinstance(value, np.ndarray):
            raise TypeError(
                f"expected {name} to be a NumPy array of shape (..., L), got {type(value).__name__}"
            )
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(
            f"expected a and b of shape (..., L) with time last, got a.shape={a.shape}, "
            f"b.shape={b.shape}"
        )
    if a.shape != b.shape:
        raise ValueError(
            f"expected a and b of the same shape (..., L), got a.shape={a.shape}, b.shape={b.shape}"
            " (broadcast them first, e.g. np.broadcast_to(a, b.shape))"
        )
    allowed = ", ".join(_KERNEL_DTYPES.get(np.dtype(d), str(d)) for d in dtypes)
    for name, value in (("a", a), ("b", b)):
        if value.dtype not in [np.dtype(d) for d in dtypes]:
            raise TypeError(f"expected {name} of dtype {allowed} for {backend}, got {value.dtype}")
    if a.dtype != b.dtype:
        raise TypeError(
            f"expected a and b of the same dtype, got a.dtype={a.dtype}, b.dtype={b.dtype} "
            f"(cast one with .astype)"
        )
    shape = a.shape
    M = int(np.prod(shape[:-1], dtype=np.int64))
    a2 = np.ascontiguousarray(a).reshape(M, shape[-1])
    b2 = np.ascontiguousarray(b).reshape(M, shape[-1])
    if h0 is None:
        h02 = np.zeros(M, dtype=a.dtype)
    else:
        if not isinstance(h0, np.ndarray):
            h0 = np.asarray(h0)
        if h0.shape != shape[:-1]:
            raise ValueError(
                f"expected h0 of shape {shape[:-1]} (the leading dims of a and b), got {h0.shape}"
            )
        if h0.dtype != a.dtype:
            raise TypeError(f"expected h0 of dtype {a.dtype} (the dtype of a), got {h0.dtype}")
        h02 = np.ascontiguousarray(h0).reshape(M)
    return a2, b2, h02, shape


def check_grad_input(g, shape, dtype, name: str = "g"):
    """g (the gradient with respect to h) must match h's shape and dtype; returns it as (M, L)."""
    if not isinstance(g, np.ndarray):
        raise TypeError(f"expected {name} to be a NumPy array, got {type(g).__name__}")
    if g.shape != tuple(shape):
        raise ValueError(f"expected {name} of shape {tuple(shape)} (the shape of h), got {g.shape}")
    if g.dtype != dtype:
        raise TypeError(f"expected {name} of dtype {dtype} (the dtype of h), got {g.dtype}")
    M = int(np.prod(shape[:-1], dtype=np.int64))
    return np.ascontiguousarray(g).reshape(M, shape[-1])


def check_scan_tensors(a, b, h0=None, names=("a", "b"), dtype_ok=None, dtypes_wanted=""):
    """The torch entry points' checks: a, b tensors of one shape (..., L) and one dtype, for which
    ``dtype_ok(dtype)`` holds (``dtypes_wanted`` says which, in the message); h0 None or a tensor
    of shape (...) and that dtype."""
    import torch  # only the torch entry points need it; NumPy callers never pay its import

    na, nb = names
    for name, value in ((na, a), (nb, b)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(
                f"expected {name} to be a torch.Tensor of shape (..., L), got {type(value).__name__}"
            )
    if a.dim() == 0 or a.shape != b.shape:
        raise ValueError(
            f"expected {na} and {nb} of the same shape (..., L), got {na}.shape={tuple(a.shape)}, "
            f"{nb}.shape={tuple(b.shape)}"
        )
    if dtype_ok is not None:
        for name, value in ((na, a), (nb, b)):
            if not dtype_ok(value.dtype):
                raise TypeError(f"expected {name} of dtype {dtypes_wanted}, got {value.dtype}")
    if a.dtype != b.dtype:
        raise TypeError(
            f"expected {na} and {nb} of the same dtype, got {na}.dtype={a.dtype}, "
            f"{nb}.dtype={b.dtype}"
        )
    if h0 is not None:
        if not isinstance(h0, torch.Tensor):
            raise TypeError(f"expected h0 to be a torch.Tensor, got {type(h0).__name__}")
        if h0.shape != a.shape[:-1]:
            raise ValueError(
                f"expected h0 of shape {tuple(a.shape[:-1])} (the leading dims of {na} and {nb}), "
                f"got {tuple(h0.shape)}"
            )
        if h0.dtype != a.dtype:
            raise TypeError(f"expected h0 of dtype {a.dtype} (the dtype of {na}), got {h0.dtype}")


# ----------------------------------------------------------------------------------------------
# The selective scan
# ----------------------------------------------------------------------------------------------

#: The selective scan's arguments, in the positional order of ``mamba_ssm``'s
#: ``selective_scan_fn(u, delta, A, B, C, D, z, delta_bias)`` (it calls x ``u``).
SELECTIVE_ARGS = ("x", "delta", "A", "B", "C", "D", "z", "delta_bias")


def selective_shapes(batch: int, dim: int, length: int, d_state: int) -> dict:
    """{argument: (expected shape, its letters)} for the selective scan."""
    seq, mat, vec = (batch, dim, length), (batch, d_state, length), (dim,)
    return {
        "x": (seq, "(batch, D, L)"),
        "delta": (seq, "(batch, D, L)"),
        "A": ((dim, d_state), "(D, N)"),
        "B": (mat, "(batch, N, L)"),
        "C": (mat, "(batch, N, L)"),
        "D": (vec, "(D,)"),
        "z": (seq, "(batch, D, L)"),
        "delta_bias": (vec, "(D,)"),
    }


def _check_selective_shapes(shapes: dict) -> None:
    """One set of shape rules for NumPy arrays and torch tensors: ``shapes`` maps each given
    argument's name to its shape (tuple); absent optional arguments are missing or ``None``."""
    x = shapes["x"]
    if len(x) != 3:
        raise ValueError(f"expected x of shape (batch, D, L) (batch, channels, time), got {x}")
    batch, dim, length = x
    if length == 0:
        raise ValueError(f"expected a sequence of length L >= 1, got x of shape {x} (L = 0)")
    A = shapes["A"]
    if len(A) != 2 or A[0] != dim:
        raise ValueError(f"expected A of shape (D, N) with D = {dim} (from x), got {A}")
    if A[1] == 0:
        raise ValueError(f"expected a state of size N >= 1, got A of shape {A}")
    expected = selective_shapes(batch, dim, length, A[1])
    for name in SELECTIVE_ARGS[1:]:
        got = shapes.get(name)
        if got is not None and got != expected[name][0]:
            raise shape_error(name, expected[name][1], expected[name][0], got)


def selective_args(x, delta, A, B, C, D=None, z=None, delta_bias=None, dtype=None):
    """Check the selective scan's arguments (NumPy, or anything array-like) and return them as
    NumPy arrays of one ``dtype`` (float64 unless given), in the order they came.

    Integer arrays are accepted and converted (their values are exact); bool, complex, object
    and string arrays raise TypeError naming the argument; a wrong shape raises ValueError
    naming the expected one, e.g. ``expected B of shape (batch, N, L) = (2, 16, 64), got ...``.
    """
    dtype = np.dtype(np.float64 if dtype is None else dtype)
    values = dict(zip(SELECTIVE_ARGS, (x, delta, A, B, C, D, z, delta_bias), strict=True))
    arrays = {
        name: None if value is None else float_array(name, value, dtype, integers=True)
        for name, value in values.items()
    }
    _check_selective_shapes({k: None if v is None else v.shape for k, v in arrays.items()})
    return tuple(arrays[name] for name in SELECTIVE_ARGS)


def selective_tensors(x, delta, A, B, C, D=None, z=None, delta_bias=None) -> None:
    """The same contract for torch tensors (checked, not converted): every given argument a
    floating ``torch.Tensor`` of the shape :func:`selective_shapes` gives."""
    import torch  # only the torch entry points need it; NumPy callers never pay its import

    values = dict(zip(SELECTIVE_ARGS, (x, delta, A, B, C, D, z, delta_bias), strict=True))
    for name, value in values.items():
        if value is None:
            continue
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"expected {name} to be a torch.Tensor, got {type(value).__name__}")
        if not value.is_floating_point():
            raise TypeError(f"expected {name} to be a real floating tensor, got {value.dtype}")
    _check_selective_shapes({k: None if v is None else tuple(v.shape) for k, v in values.items()})
