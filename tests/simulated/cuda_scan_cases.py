"""Parity of the numba-cuda scan kernels (kernels/scan_cuda.py), run under the CUDA simulator.

Not collected by the main test run (the file name does not start with ``test_``):
tests/test_scan_cuda.py runs this file in a fresh Python process with NUMBA_ENABLE_CUDASIM=1,
which must be set before numba is first imported. The simulator runs one Python thread per GPU
thread, so the shapes stay small: a few rows, a few blocks of 8–32 threads.
"""

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/kernel_cases.py

from kernel_cases import assert_close, make_inputs, reference  # noqa: E402
from mamba_edu.kernels import scan_cuda  # noqa: E402

DTYPES = [np.float32, np.float64, np.complex64, np.complex128]


def test_the_simulator_is_in_use():
    assert os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
    assert scan_cuda.mode() == "simulator"


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@settings(max_examples=3, deadline=None)
@given(
    rows=st.integers(1, 2),
    L=st.sampled_from([1, 3, 8, 13, 40]),
    block=st.sampled_from([8, 16]),
    seed=st.integers(0, 10_000),
    with_h0=st.booleans(),
)
def test_chunked_scan_forward_and_backward_match_the_reference(
    dtype, rows, L, block, seed, with_h0
):
    a, b, h0, g = make_inputs(seed, (rows, L), dtype, with_h0)
    h_ref, da_ref, db_ref, dh0_ref = reference(a, b, h0, g)
    h = scan_cuda.chunked_scan(a, b, h0, block=block)
    assert h.dtype == np.dtype(dtype) and h.shape == a.shape
    assert_close(h, h_ref, dtype, f"h (block {block}, {-(-L // block)} chunks)")
    da, db, dh0 = scan_cuda.scan_backward(a, h, g, h0, block=block)
    assert_close(da, da_ref, dtype, "da")
    assert_close(db, db_ref, dtype, "db")
    assert_close(dh0, dh0_ref, dtype, "dh0")


@pytest.mark.parametrize("L", [1, 2, 5, 16, 29])
def test_single_block_scan_matches_the_reference(L):
    a, b, h0, g = make_inputs(L, (2, L), np.complex128, with_h0=True)
    assert_close(scan_cuda.block_scan(a, b, h0), reference(a, b, h0, g)[0], np.complex128, "h")


def test_several_leading_dims_and_non_contiguous_input():
    a, b, _, g = make_inputs(1, (20, 2, 3), np.float64)
    a_t, b_t, g_t = (np.moveaxis(x, 0, -1) for x in (a, b, g))  # (2, 3, 20), not contiguous
    assert not a_t.flags.c_contiguous
    h_ref = reference(
        *(np.ascontiguousarray(x) for x in (a_t, b_t)), None, np.ascontiguousarray(g_t)
    )[0]
    assert_close(scan_cuda.chunked_scan(a_t, b_t, block=8), h_ref, np.float64, "h")


def test_length_zero_is_handled():
    assert scan_cuda.chunked_scan(np.ones((2, 0)), np.ones((2, 0))).shape == (2, 0)
    da, db, dh0 = scan_cuda.scan_backward(np.ones((2, 0)), np.ones((2, 0)), np.ones((2, 0)))
    assert da.shape == (2, 0) and dh0.shape == (2,)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"a.shape=\(2, 3\), b.shape=\(2, 4\)"):
        scan_cuda.chunked_scan(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(TypeError, match="same dtype"):
        scan_cuda.chunked_scan(np.ones(3), np.ones(3, np.float32))
    with pytest.raises(TypeError, match="float32, float64"):
        scan_cuda.chunked_scan(np.ones(3, int), np.ones(3, int))
    with pytest.raises(ValueError, match="power of two"):
        scan_cuda.chunked_scan(np.ones(3), np.ones(3), block=12)
    with pytest.raises(ValueError, match="power of two"):
        scan_cuda.chunked_scan(np.ones(3), np.ones(3), block=2048)
    with pytest.raises(ValueError, match="use a larger block"):
        scan_cuda.chunked_scan(np.ones(65536), np.ones(65536), block=1)
    with pytest.raises(ValueError, match="L <= 1024"):
        scan_cuda.block_scan(np.ones(1025), np.ones(1025))
    with pytest.raises(ValueError, match=r"g of shape \(3,\)"):
        scan_cuda.scan_backward(np.ones(3), np.ones(3), np.ones(4))
