"""Inputs and tolerances shared by the first-order scan kernel parity tests (CPU, CUDA, Triton).

The yardstick is the float64 NumPy reference, ``mamba_edu.scan``: kernels in float64 must match it
to 1e-12, kernels in float32 to the official tests' tolerance (rtol 6e-4, atol 2e-3) or tighter.
"""

import numpy as np

from mamba_edu import scan

TOL = {
    np.dtype(np.float64): dict(rtol=1e-12, atol=1e-12),
    np.dtype(np.complex128): dict(rtol=1e-12, atol=1e-12),
    # tighter than the official fp32 tolerance (6e-4 / 2e-3): a scan of |a| <= 1 loses little
    np.dtype(np.float32): dict(rtol=1e-4, atol=1e-5),
    np.dtype(np.complex64): dict(rtol=1e-4, atol=1e-5),
}


def make_inputs(seed, shape, dtype, with_h0=False):
    """a with |a| <= 1 (complex: random phase), b and g standard normal, h0 optional: the
    package's one maker, :func:`mamba_edu.scan.random_inputs`."""
    args = scan.random_inputs(shape, seed, dtype, h0=with_h0, grad=True)
    return args["a"], args["b"], args.get("h0"), args["g"]


def reference(a, b, h0, g):
    """Forward and backward in float64 / complex128 with the NumPy reference."""
    from mamba_edu import scan

    wide = np.complex128 if np.iscomplexobj(a) else np.float64
    a, b, g = (x.astype(wide) for x in (a, b, g))
    h0 = None if h0 is None else h0.astype(wide)
    h = scan.sequential_scan(a, b, h0)
    da, db, dh0 = scan.scan_backward(a, h, g, h0)
    if dh0 is None:
        dh0 = np.conj(a[..., 0]) * db[..., 0] if a.shape[-1] else np.zeros(a.shape[:-1], wide)
    return h, da, db, dh0


def _host(x):
    """A NumPy copy of a NumPy array or of a torch tensor on any device."""
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def assert_close(got, expected, dtype, what):
    np.testing.assert_allclose(
        _host(got), expected, err_msg=f"{what} ({np.dtype(dtype)})", **TOL[np.dtype(dtype)]
    )
