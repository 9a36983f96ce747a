"""Parity of the Triton scan kernel (kernels/scan_triton.py), under the Triton interpreter.

The kernels are built on first use, reading TRITON_INTERPRET then, so setting it here (before any
scan runs in this process) is enough. On a CPU-only machine the interpreter is the only way to
run them; it checks the logic (indices, masks, carries, the operator), not GPU thread ordering.
"""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from kernel_cases import assert_close, make_inputs, reference  # noqa: E402
from mamba_edu.kernels import scan_triton  # noqa: E402

# Under the interpreter the kernels take CPU tensors; with TRITON_INTERPRET=0 on a CUDA machine
# (`make gpu-check`) the same tests run on the GPU.
DEVICE = "cuda" if scan_triton.mode() == "gpu" else "cpu"


def test_mode_follows_the_environment(monkeypatch):
    interpreting = os.environ["TRITON_INTERPRET"] not in ("", "0")
    assert scan_triton.mode() == ("interpreter" if interpreting else "gpu")
    if not torch.cuda.is_available():
        monkeypatch.setenv("TRITON_INTERPRET", "0")
        assert scan_triton.mode() == "unavailable"
        with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
            scan_triton.scan_forward(torch.ones(3), torch.ones(3))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@settings(max_examples=6, deadline=None)
@given(
    lead=st.lists(st.integers(1, 3), min_size=0, max_size=2),
    L=st.sampled_from([1, 2, 7, 16, 33, 100]),
    block=st.sampled_from([None, 16, 32]),
    seed=st.integers(0, 10_000),
    with_h0=st.booleans(),
)
def test_forward_and_backward_match_the_reference(dtype, lead, L, block, seed, with_h0):
    a, b, h0, g = make_inputs(seed, (*lead, L), dtype, with_h0)
    h_ref, da_ref, db_ref, dh0_ref = reference(a, b, h0, g)
    ta, tb, tg = (torch.from_numpy(x).to(DEVICE) for x in (a, b, g))
    th0 = None if h0 is None else torch.from_numpy(h0).to(DEVICE)
    h = scan_triton.scan_forward(ta, tb, th0, block=block)
    assert h.dtype == ta.dtype and h.shape == ta.shape
    assert_close(h, h_ref, dtype, f"h (block {block})")
    da, db, dh0 = scan_triton.scan_backward(ta, h, tg, th0, block=block)
    assert_close(da, da_ref, dtype, "da")
    assert_close(db, db_ref, dtype, "db")
    assert_close(dh0, dh0_ref, dtype, "dh0")


def test_autograd_function_matches_autograd_of_the_torch_loop():
    from mamba_edu.kernels.scan_cpu import torch_scan

    a, b, h0, g = (
        torch.from_numpy(x).to(DEVICE) for x in make_inputs(3, (2, 37), np.float64, True)
    )
    x1 = [t.clone().requires_grad_(True) for t in (a, b, h0)]
    x2 = [t.clone().requires_grad_(True) for t in (a, b, h0)]
    scan_triton.triton_scan(*x1).backward(g)
    torch_scan(*x2).backward(g)
    for name, p1, p2 in zip(["da", "db", "dh0"], x1, x2, strict=True):
        assert_close(p1.grad, p2.grad.cpu().numpy(), np.float64, name)


def test_non_contiguous_and_empty_inputs_are_handled():
    a, b, _, g = make_inputs(5, (20, 3), np.float64)
    ta, tb = (
        torch.from_numpy(a).to(DEVICE).T,
        torch.from_numpy(b).to(DEVICE).T,
    )  # (3, 20), not contiguous
    assert not ta.is_contiguous()
    h_ref = reference(
        np.ascontiguousarray(a.T), np.ascontiguousarray(b.T), None, np.ascontiguousarray(g.T)
    )[0]
    assert_close(scan_triton.scan_forward(ta, tb), h_ref, np.float64, "h")
    assert scan_triton.scan_forward(torch.ones(2, 0), torch.ones(2, 0)).shape == (2, 0)
    da, db, dh0 = scan_triton.scan_backward(torch.ones(2, 0), torch.ones(2, 0), torch.ones(2, 0))
    assert da.shape == (2, 0) and dh0.shape == (2,)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"a.shape=\(2, 3\), b.shape=\(2, 4\)"):
        scan_triton.scan_forward(torch.ones(2, 3), torch.ones(2, 4))
    with pytest.raises(TypeError, match="no complex type"):
        scan_triton.scan_forward(
            torch.ones(3, dtype=torch.complex64), torch.ones(3, dtype=torch.complex64)
        )
    with pytest.raises(TypeError, match="float32 or float64"):
        scan_triton.scan_forward(torch.ones(3, dtype=torch.int32), torch.ones(3, dtype=torch.int32))
    with pytest.raises(TypeError, match="same dtype"):
        scan_triton.scan_forward(torch.ones(3), torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"h0 of shape \(2,\)"):
        scan_triton.scan_forward(torch.ones(2, 3), torch.ones(2, 3), torch.ones(3))
    with pytest.raises(ValueError, match="power of two"):
        scan_triton.scan_forward(torch.ones(3), torch.ones(3), block=24)
    with pytest.raises(TypeError, match="torch.Tensor"):
        scan_triton.scan_forward(np.ones(3), torch.ones(3))
