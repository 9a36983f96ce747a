"""NaN and inf propagate through every selective-scan kernel as through the references.

A NaN anywhere in the inputs must reach the same outputs and gradients as in the NumPy reference
(forward) and torch autograd through the plain torch loop (backward): a kernel that turned it
into a finite number would hide a diverged model during training. The CPU kernel is checked
forward and backward in float32 and float64; the CUDA-simulator and Triton-interpreter kernels
forward, on tiny inputs, in a subprocess (both switches must be set before numba / triton load).
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from mamba_edu.kernels import selective_cpu as kc

from mamba_edu import selective

NAMES = ("x", "delta", "delta_bias", "A", "B", "C", "D", "z")
# Where a non-finite value goes: one (batch, channel, time) entry, one (channel, state) entry of
# A, one (batch, state, time) entry of B or C, one channel of D or delta_bias. Early in time, so
# that the recurrence carries it forward; channel 1 of 3, so that others stay finite.
WHERE = {3: (0, 1, 2), 2: (1, 0), 1: (1,)}


def poisoned(name, value, dtype, seed=0):
    args = selective.random_inputs(2, 3, 7, 2, seed=seed, dtype=dtype)
    args[name] = args[name].copy()
    args[name][WHERE[args[name].ndim]] = value
    return args


def same_pattern(got, expected, what):
    """Same NaN positions, same ±inf positions (the forward pass must match exactly)."""
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=f"NaN in {what}")
    np.testing.assert_array_equal(
        np.isposinf(got), np.isposinf(expected), err_msg=f"+inf in {what}"
    )
    np.testing.assert_array_equal(
        np.isneginf(got), np.isneginf(expected), err_msg=f"-inf in {what}"
    )


# inf where it has a meaning: a huge input, a step size Δ → inf (the state is reset to Δ·B·x),
# an infinitely fast decay A = -inf, a gate z = ±inf. (+inf in A would be an unstable model.)
CASES = [(name, np.nan) for name in NAMES] + [
    ("x", np.inf), ("delta", np.inf), ("delta_bias", np.inf), ("A", -np.inf), ("B", np.inf),
    ("C", -np.inf), ("D", np.inf), ("z", np.inf), ("z", -np.inf),
]  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, value", CASES)
def test_cpu_forward_keeps_nan_and_inf(name, value, dtype):
    args = poisoned(name, value, dtype)
    with np.errstate(all="ignore"):
        ref, ref_last = selective.selective_scan(
            **args, delta_softplus=True, return_last_state=True
        )
    out, last = kc.selective_scan_fwd(**args, delta_softplus=True)
    if np.isnan(value):  # a NaN anywhere reaches the output (not always the last state)
        assert np.isnan(ref).any()
    same_pattern(out, ref, f"out ({name} = {value}, {dtype.__name__})")
    same_pattern(last, ref_last, f"last state ({name} = {value}, {dtype.__name__})")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name, value", CASES)
def test_cpu_backward_keeps_nan_and_inf(name, value, dtype):
    args = poisoned(name, value, np.float64)
    grads = {}
    for backend in ("numba", "torch"):  # torch: autograd through the plain loop, independent
        tensors = {k: torch.tensor(v, dtype=dtype, requires_grad=True) for k, v in args.items()}
        out = kc.selective_scan(**tensors, delta_softplus=True, backend=backend)
        dout = torch.ones_like(out)
        dout[:, :, -1] = 0.5  # a plain weighted sum, finite everywhere
        out.backward(dout)
        grads[backend] = {k: t.grad.numpy() for k, t in tensors.items()}
    for k in NAMES:
        # never hidden: wherever autograd's gradient is NaN or inf, the kernel's is NaN or inf
        # too. The kernel may mark a few more entries (it computes in another order, e.g. the
        # gradient with respect to the NaN entry itself, or inf · 0 where autograd has 0 · inf),
        # but everything it returns finite is finite in autograd and the same number.
        got, expected = grads["numba"][k], grads["torch"][k]
        hidden = ~np.isfinite(expected) & np.isfinite(got)
        assert not hidden.any(), f"d{k} finite at {np.argwhere(hidden).tolist()} ({name} = {value})"
        both = np.isfinite(expected) & np.isfinite(got)
        tol = 1e-3 if dtype == torch.float32 else 1e-8
        np.testing.assert_allclose(got[both], expected[both], rtol=tol, atol=tol, err_msg=f"d{k}")
    assert any(np.isnan(g).any() or np.isinf(g).any() for g in grads["torch"].values())


def test_cpu_softplus_and_exp_keep_nan_and_inf():
    """The two vectorizable helpers the kernel is built from, element by element."""
    for dtype in (np.float32, np.float64):
        y = np.array([np.nan, np.inf, -np.inf, 0.0, 30.0, -30.0], dtype)
        out = np.empty_like(y)
        kc._vsoftplus_array(y, out)
        np.testing.assert_allclose(out, [np.nan, np.inf, 0.0, np.log(2), 30.0, np.exp(-30.0)],
                                   rtol=1e-6, atol=0)  # fmt: skip
        kc._vexp_array(y, out)
        assert np.isnan(out[0]) and out[1] == np.inf and out[2] < 1e-37 and out[3] == 1.0


GPU_SCRIPT = """
import os, sys
os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
os.environ["TRITON_INTERPRET"] = "1"
import numpy as np, torch
from mamba_edu.kernels.selective_cuda import selective_scan_fwd_cuda
from mamba_edu.kernels.selective_triton import selective_scan_fwd_triton
folder, count = sys.argv[1], int(sys.argv[2])
for i in range(count):
    data = np.load(f"{folder}/case{i}.npz")
    args = {k: data[k] for k in data.files}
    out, _ = selective_scan_fwd_cuda(**args, delta_softplus=True)
    tout, _ = selective_scan_fwd_triton(
        **{k: torch.from_numpy(v) for k, v in args.items()}, delta_softplus=True
    )
    np.savez(f"{folder}/out{i}.npz", cuda=out, triton=tout.numpy())
"""


def test_gpu_kernels_forward_keeps_nan(tmp_path):
    cases = [poisoned(name, np.nan, np.float32) for name in NAMES]
    for i, args in enumerate(cases):
        np.savez(tmp_path / f"case{i}.npz", **args)
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "TRITON_INTERPRET": "1"}
    result = subprocess.run(
        [sys.executable, "-c", GPU_SCRIPT, str(tmp_path), str(len(cases))],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    for i, (name, args) in enumerate(zip(NAMES, cases, strict=True)):
        with np.errstate(all="ignore"):
            ref = selective.selective_scan(**args, delta_softplus=True)
        got = np.load(tmp_path / f"out{i}.npz")
        for kernel in ("cuda", "triton"):
            same_pattern(got[kernel], ref, f"{kernel} out ({name} = NaN)")
