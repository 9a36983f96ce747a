"""Input checks shared by the first-order scan kernels (CPU, CUDA, Triton).

Every kernel takes arrays shaped (..., L), time last, and flattens the leading dimensions into
rows. The checks here turn whatever a caller passes into C-contiguous (M, L) arrays of one
supported dtype, or fail with a message that names what was expected; :func:`check_scan_tensors`
does the same checks for the torch entry points.
"""

from __future__ import annotations

import numpy as np

_NAMES = {
    np.dtype(np.float32): "float32",
    np.dtype(np.float64): "float64",
    np.dtype(np.complex64): "complex64",
    np.dtype(np.complex128): "complex128",
}


def check_scan_inputs(a, b, h0=None, *, dtypes=tuple(_NAMES), backend: str = "this kernel"):
    """Validate a, b (and h0) for a first-order scan kernel.

    a, b: NumPy arrays of the same shape (..., L) and the same dtype, one of ``dtypes``.
    h0: ``None`` or an array of shape (...) and the same dtype.
    Non-contiguous arrays are copied to contiguous ones (handled, not an error). L = 0 is allowed.
    Returns (a2, b2, h02, shape) with a2, b2 of shape (M, L), h02 of shape (M,) (zeros when h0 is
    None) and ``shape`` the original shape.
    """
    for name, x in (("a", a), ("b", b)):
        if not isinstance(x, np.ndarray):
            raise TypeError(
                f"expected {name} to be a NumPy array of shape (..., L), got {type(x).__name__}"
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
    allowed = ", ".join(_NAMES.get(np.dtype(d), str(d)) for d in dtypes)
    for name, x in (("a", a), ("b", b)):
        if x.dtype not in [np.dtype(d) for d in dtypes]:
            raise TypeError(f"expected {name} of dtype {allowed} for {backend}, got {x.dtype}")
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
    import torch

    na, nb = names
    for name, x in ((na, a), (nb, b)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(
                f"expected {name} to be a torch.Tensor of shape (..., L), got {type(x).__name__}"
            )
    if a.dim() == 0 or a.shape != b.shape:
        raise ValueError(
            f"expected {na} and {nb} of the same shape (..., L), got {na}.shape={tuple(a.shape)}, "
            f"{nb}.shape={tuple(b.shape)}"
        )
    if dtype_ok is not None:
        for name, x in ((na, a), (nb, b)):
            if not dtype_ok(x.dtype):
                raise TypeError(f"expected {name} of dtype {dtypes_wanted}, got {x.dtype}")
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
