"""The GPU selective scan kernels on a CPU: numba-cuda under the CUDA simulator, Triton under its
interpreter, against the NumPy reference; tiny shapes (a few blocks) since both run at Python speed.

Forward and backward: the backward kernels (through their autograd Functions) against torch
autograd of an independent plain-torch loop in float64 (relative 1e-10), against a finite
difference of the NumPy reference, and in float32 at the official tolerance.

Both switches must be set before numba / triton load the kernels, and numba is already imported
in this process by other tests: the kernels run in one subprocess, which writes their outputs for
this process to compare with the reference.
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from mamba_edu.kernels import available

from mamba_edu import selective

# (batch, dim, length, d_state, options, softplus): several blocks of channels, a partial one,
# several chunks of time (CHUNK = 32) and a partial one, L = 1, N not a power of two.
CASES = [
    (2, 70, 37, 5, ("D", "z", "delta_bias"), True),
    (1, 3, 1, 16, ("D",), True),
    (3, 33, 8, 3, (), False),
]

SCRIPT = """
import os, sys, json
os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
os.environ["TRITON_INTERPRET"] = "1"
import numpy as np, torch
from mamba_edu.kernels import available
from mamba_edu.kernels.selective_cuda import selective_scan_fwd_cuda
from mamba_edu.kernels.selective_triton import selective_scan_fwd_triton
folder = sys.argv[1]
count = int(sys.argv[2])
for i in range(count):
    data = np.load(f"{folder}/case{i}.npz")
    args = {k: data[k] for k in data.files if k != "softplus"}
    softplus = bool(data["softplus"])
    out, last = selective_scan_fwd_cuda(**args, delta_softplus=softplus)
    tout, tlast = selective_scan_fwd_triton(
        **{k: torch.from_numpy(v) for k, v in args.items()}, delta_softplus=softplus
    )
    np.savez(f"{folder}/out{i}.npz", cuda=out, cuda_last=last, triton=tout.numpy(),
             triton_last=tlast.numpy())
print(json.dumps({k: [b.runs, b.how] for k, b in available().items()}))
"""


def make_inputs(batch, dim, length, d_state, options, softplus, seed):
    args = selective.random_inputs(
        batch, dim, length, d_state, seed=seed, dtype=np.float32, D="D" in options,
        z="z" in options, delta_bias="delta_bias" in options, delta_softplus=softplus,
    )  # fmt: skip
    return {k: v for k, v in args.items() if v is not None}


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpu_kernels")
    inputs = []
    for i, (batch, dim, length, d_state, options, softplus) in enumerate(CASES):
        args = make_inputs(batch, dim, length, d_state, options, softplus, seed=i)
        np.savez(folder / f"case{i}.npz", softplus=softplus, **args)
        inputs.append((args, softplus))
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "TRITON_INTERPRET": "1"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(folder), str(len(CASES))],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    backends = json.loads(result.stdout.strip().splitlines()[-1])
    outputs = [dict(np.load(folder / f"out{i}.npz")) for i in range(len(CASES))]
    return inputs, outputs, backends


def test_backends_report_simulator_and_interpreter(simulated):
    _, _, backends = simulated
    assert backends["cuda"][0] and "simulator" in backends["cuda"][1]
    assert backends["triton"][0] and "interpreter" in backends["triton"][1]
    assert backends["cpu"][0]


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("kernel", ["cuda", "triton"])
def test_kernel_matches_reference(simulated, case, kernel):
    inputs, outputs, _ = simulated
    args, softplus = inputs[case]
    ref, ref_last = selective.selective_scan(
        **args, delta_softplus=softplus, return_last_state=True
    )
    got = outputs[case]
    assert got[kernel].dtype == np.float32
    # float32 kernels against the float64 reference: tighter than the official rtol 6e-4 / atol 2e-3
    np.testing.assert_allclose(got[kernel], ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got[f"{kernel}_last"], ref_last, rtol=1e-4, atol=1e-4)


# (kernel, dtype, batch, dim, length, d_state, options, softplus, sizes): several blocks of
# channels and a partial one (numba-cuda: 64 threads; Triton: block_d 16), several chunks and a
# partial one (numba-cuda: CHUNK = 32; Triton: chunk 8), L = 1, no optional arguments.
BWD_CASES = [
    ("cuda", "float64", 2, 70, 37, 5, ("D", "z", "delta_bias"), True, {}),
    ("cuda", "float32", 2, 70, 37, 5, ("D", "z", "delta_bias"), True, {}),
    ("cuda", "float64", 2, 3, 1, 4, (), False, {}),
    ("triton", "float64", 2, 20, 19, 5, ("D", "z", "delta_bias"), True, dict(block_d=16, chunk=8)),
    ("triton", "float32", 2, 20, 19, 5, ("D", "z", "delta_bias"), True, dict(block_d=16, chunk=8)),
    ("triton", "float64", 3, 5, 9, 3, ("D",), False, {}),
]

BWD_SCRIPT = """
import os, sys, json
os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
os.environ["TRITON_INTERPRET"] = "1"
import numpy as np, torch
from mamba_edu.kernels.selective_cuda import selective_scan_cuda
from mamba_edu.kernels.selective_triton import selective_scan_triton
folder, cases = sys.argv[1], json.loads(sys.argv[2])
for i, (kernel, sizes) in enumerate(cases):
    data = np.load(f"{folder}/bwd{i}.npz")
    names = [k for k in data.files if k not in ("softplus", "dout", "dlast")]
    args = {k: torch.tensor(data[k], requires_grad=True) for k in names}
    scan = selective_scan_cuda if kernel == "cuda" else selective_scan_triton
    out, last = scan(**args, delta_softplus=bool(data["softplus"]), return_last_state=True,
                     **sizes)
    loss = (out * torch.from_numpy(data["dout"])).sum() + (last * torch.from_numpy(data["dlast"])).sum()
    loss.backward()
    np.savez(f"{folder}/grads{i}.npz", out=out.detach().numpy(), last=last.detach().numpy(),
             **{k: v.grad.numpy() for k, v in args.items()})
"""


def bwd_inputs(case, seed):
    kernel, dtype, batch, dim, length, d_state, options, softplus, sizes = case
    args = make_inputs(batch, dim, length, d_state, options, softplus, seed)
    args = {k: v.astype(dtype) for k, v in args.items()}
    rng = np.random.default_rng(seed + 100)
    dout = rng.standard_normal((batch, dim, length)).astype(dtype)
    dlast = rng.standard_normal((batch, dim, d_state)).astype(dtype)
    return args, dout, dlast


@pytest.fixture(scope="module")
def simulated_backward(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpu_backward")
    inputs = []
    for i, case in enumerate(BWD_CASES):
        args, dout, dlast = bwd_inputs(case, seed=20 + i)
        np.savez(folder / f"bwd{i}.npz", softplus=case[7], dout=dout, dlast=dlast, **args)
        inputs.append((args, dout, dlast))
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "TRITON_INTERPRET": "1"}
    cases = json.dumps([(case[0], case[8]) for case in BWD_CASES])
    result = subprocess.run(
        [sys.executable, "-c", BWD_SCRIPT, str(folder), cases],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    return inputs, [dict(np.load(folder / f"grads{i}.npz")) for i in range(len(BWD_CASES))]


def torch_autograd(args, dout, dlast, softplus):
    """Gradients of the same loss by torch autograd through a plain float64 torch loop, written
    here (independent of the kernels and of selective_cpu's hand-derived backward)."""
    t = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in args.items()}
    delta = t["delta"] + (t["delta_bias"][:, None] if "delta_bias" in t else 0.0)
    if softplus:
        delta = torch.nn.functional.softplus(delta)
    h = torch.zeros(t["x"].shape[0], t["x"].shape[1], t["A"].shape[1], dtype=torch.float64)
    ys = []
    for step in range(t["x"].shape[2]):
        dt = delta[:, :, step, None]
        h = torch.exp(dt * t["A"]) * h + dt * t["B"][:, None, :, step] * t["x"][:, :, step, None]
        ys.append((h * t["C"][:, None, :, step]).sum(-1))
    y = torch.stack(ys, dim=2)
    if "D" in t:
        y = y + t["D"][:, None] * t["x"]
    if "z" in t:
        y = y * torch.nn.functional.silu(t["z"])
    loss = (y * torch.from_numpy(dout).double()).sum() + (
        h * torch.from_numpy(dlast).double()
    ).sum()
    loss.backward()
    return y.detach().numpy(), h.detach().numpy(), {k: v.grad.numpy() for k, v in t.items()}


@pytest.mark.parametrize("case", range(len(BWD_CASES)), ids=lambda i: "-".join(
    str(v) for v in BWD_CASES[i][:6]))  # fmt: skip
def test_backward_kernel_matches_autograd(simulated_backward, case):
    inputs, outputs = simulated_backward
    args, dout, dlast = inputs[case]
    kernel, dtype, *_, softplus, _ = BWD_CASES[case]
    got = outputs[case]
    ref, ref_last, grads = torch_autograd(args, dout, dlast, softplus)
    # the forward agrees with the NumPy reference too (the yardstick of every kernel)
    numpy_ref = selective.selective_scan(**args, delta_softplus=softplus)
    np.testing.assert_allclose(ref, numpy_ref, rtol=1e-12, atol=1e-12)
    for name in args:
        assert got[name].dtype == np.dtype(dtype), name
        expected = grads[name]
        scale = float(np.abs(expected).max())
        if dtype == "float64":  # relative to the gradient's largest entry
            np.testing.assert_allclose(got[name], expected, rtol=1e-10, atol=1e-10 * scale,
                                       err_msg=f"{kernel} d{name}")  # fmt: skip
        else:  # the official float32 tolerance
            np.testing.assert_allclose(got[name], expected, rtol=6e-4, atol=2e-3,
                                       err_msg=f"{kernel} d{name}")  # fmt: skip
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == "float64" else dict(rtol=6e-4, atol=2e-3)
    np.testing.assert_allclose(got["out"], ref, **tol)
    np.testing.assert_allclose(got["last"], ref_last, **tol)


@pytest.mark.parametrize("case", [0, 3])
def test_backward_kernels_agree_with_a_finite_difference_of_the_numpy_reference(
    simulated_backward, case
):
    """Independent of torch: the directional derivative of the NumPy reference's loss along a
    random direction, by central differences, equals Σ grad · direction from the kernel."""
    inputs, outputs = simulated_backward
    args, dout, dlast = inputs[case]
    softplus = BWD_CASES[case][7]
    rng = np.random.default_rng(7)
    direction = {k: rng.standard_normal(v.shape) for k, v in args.items()}

    def loss(eps):
        moved = {k: v + eps * direction[k] for k, v in args.items()}
        out, last = selective.selective_scan(
            **moved, delta_softplus=softplus, return_last_state=True
        )
        return float((out * dout).sum() + (last * dlast).sum())

    eps = 1e-5
    numeric = (loss(eps) - loss(-eps)) / (2 * eps)
    analytic = sum(float((outputs[case][k] * direction[k]).sum()) for k in args)
    assert abs(analytic - numeric) <= 1e-6 * max(1.0, abs(numeric)), (analytic, numeric)


def test_available_here_names_every_backend_and_why():
    backends = available()
    assert set(backends) == {"cpu", "cuda", "triton"}
    assert backends["cpu"].runs and "numba" in backends["cpu"].how
    for backend in backends.values():
        assert backend.runs or backend.why  # an unavailable backend says why
    if not torch.cuda.is_available() and os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        assert not backends["cuda"].runs and "NUMBA_ENABLE_CUDASIM" in backends["cuda"].why


# Bad input is refused before anything is launched, so these run in this process.


def bad_inputs():
    return make_inputs(2, 5, 9, 4, ("D", "z", "delta_bias"), True, seed=9)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(delta=np.zeros((2, 5, 8), np.float32)), "expected delta of shape (batch, D, L) = (2, 5, 9), got (2, 5, 8)"),
        (dict(C=np.zeros((2, 9, 4), np.float32)), "expected C of shape (batch, N, L) = (2, 4, 9), got (2, 9, 4)"),
        (dict(x=np.zeros((2, 5, 0), np.float32), delta=np.zeros((2, 5, 0), np.float32), B=np.zeros((2, 4, 0), np.float32), C=np.zeros((2, 4, 0), np.float32), z=np.zeros((2, 5, 0), np.float32)), "L >= 1"),
        (dict(A=np.zeros((5, 65), np.float32)), "expected B of shape (batch, N, L) = (2, 65, 9)"),
    ],
)  # fmt: skip
def test_bad_input_cuda_and_triton(change, message):
    from mamba_edu.kernels.selective_cuda import selective_scan_fwd_cuda
    from mamba_edu.kernels.selective_triton import selective_scan_fwd_triton

    args = bad_inputs()
    args.update(change)
    with pytest.raises(ValueError, match=re.escape(message)):
        selective_scan_fwd_cuda(**args)
    with pytest.raises(ValueError, match=re.escape(message)):
        selective_scan_fwd_triton(**{k: torch.from_numpy(v) for k, v in args.items()})


def test_cuda_kernel_refuses_a_state_larger_than_its_registers():
    from mamba_edu.kernels.selective_cuda import MAX_DSTATE, selective_scan_fwd_cuda

    args = make_inputs(1, 2, 3, MAX_DSTATE + 1, (), True, seed=1)
    with pytest.raises(ValueError, match=re.escape(f"expected a state size N <= {MAX_DSTATE}")):
        selective_scan_fwd_cuda(**args)


def test_triton_refuses_wrong_types():
    from mamba_edu.kernels.selective_triton import selective_scan_fwd_triton

    args = {k: torch.from_numpy(v) for k, v in bad_inputs().items()}
    args["x"] = args["x"].numpy()
    with pytest.raises(TypeError, match="expected x to be a torch.Tensor"):
        selective_scan_fwd_triton(**args)


def test_gpu_check_script_runs_simulated_and_refuses_without_a_gpu(tmp_path):
    """`make gpu-check` runs this script on a GPU; here its --simulate mode runs the same parity
    and benchmark code on a CPU (mamba_ssm's CUDA extension replaced by a stand-in on the
    course's CPU kernel, behind mamba_ssm's own autograd Function), and writes no record; the
    plain mode must say clearly that there is no GPU."""
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "TRITON_INTERPRET": "1"}
    command = [sys.executable, "-m", "mamba_edu.kernels.gpu_check"]
    simulated = subprocess.run(
        [*command, "--simulate", "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    out = simulated.stdout
    assert simulated.returncode == 0, out[-3000:] + simulated.stderr[-3000:]
    assert re.search(r"^\d+ passed, 0 failed", out, re.MULTILINE), out
    assert "ok   numba-cuda chunked kernel" in out
    assert "ok   Triton kernel" in out
    assert "ok   mamba_ssm Triton selective_state_update" in out
    for kernel in ("numba-cuda", "Triton"):
        for dtype in ("float64", "float32"):
            assert f"ok   {kernel} backward, {dtype}" in out
        assert re.search(rf"{kernel} fwd\+bwd +\d+\.\d+ ms", out), out
        assert f"ok   {kernel} kernel vs mamba_ssm CUDA (" in out
        assert f"ok   {kernel} backward vs mamba_ssm CUDA backward (" in out
    assert "ok   mamba_ssm CUDA vs NumPy reference (" in out
    assert "ok   mamba_ssm CUDA vs NumPy reference, last state (" in out
    assert "ok   mamba_ssm CUDA backward vs CPU float64 backward (" in out
    assert "ok   mamba_ssm CUDA refuses float16 (float32-only build)" in out
    assert re.search(r"mamba_ssm selective_scan_cuda fwd\+bwd +\d+\.\d+ ms", out), out
    assert re.search(r"measured copy \d+ GB/s", out), out
    assert "GB/s" in out
    assert list(tmp_path.iterdir()) == [], "a simulated run must not write a GPU record"
    if torch.cuda.is_available():
        return
    plain_env = {
        k: v for k, v in os.environ.items() if k not in ("NUMBA_ENABLE_CUDASIM", "TRITON_INTERPRET")
    }
    plain = subprocess.run(command, capture_output=True, text=True, timeout=300, env=plain_env)
    assert plain.returncode == 2
    assert "no CUDA GPU is visible" in plain.stdout
    refused = subprocess.run(
        [*command, "--simulate"], capture_output=True, text=True, timeout=300, env=plain_env
    )
    assert refused.returncode == 2 and "needs NUMBA_ENABLE_CUDASIM=1" in refused.stdout


def test_wrong_dtypes_are_refused_by_the_gpu_kernels():
    from mamba_edu.kernels.selective_cuda import selective_scan_fwd_cuda
    from mamba_edu.kernels.selective_triton import selective_scan_fwd_triton

    args = bad_inputs()
    args["B"] = args["B"].astype(np.complex64)
    with pytest.raises(TypeError, match="expected B to be a real float array, got dtype complex"):
        selective_scan_fwd_cuda(**args)
    tensors = {k: torch.from_numpy(v) for k, v in bad_inputs().items()}
    tensors["B"] = tensors["B"].to(torch.complex64)
    with pytest.raises(TypeError, match="expected B to be a real floating tensor"):
        selective_scan_fwd_triton(**tensors)


def test_backward_entry_points_name_bad_arguments():
    """Refused before anything is launched (so this runs in this process, without a GPU)."""
    from mamba_edu.kernels.selective_cuda import launch, selective_scan_bwd_cuda
    from mamba_edu.kernels.selective_triton import selective_scan_bwd_triton, selective_scan_triton

    args = bad_inputs()
    wrong = np.zeros((2, 9, 5), np.float32)  # (batch, L, D) instead of (batch, D, L)
    message = "expected dout of shape (batch, D, L) = (2, 5, 9), got (2, 9, 5)"
    with pytest.raises(ValueError, match=re.escape(message)):
        selective_scan_bwd_cuda(wrong, **args)
    tensors = {k: torch.from_numpy(v) for k, v in args.items()}
    with pytest.raises(ValueError, match=re.escape(message)):
        selective_scan_bwd_triton(torch.from_numpy(wrong), **tensors)
    state = np.zeros((2, 4, 5), np.float32)
    with pytest.raises(ValueError, match=re.escape("expected dlast_state of shape (batch, D, N)")):
        selective_scan_bwd_cuda(np.zeros((2, 5, 9), np.float32), **args, dlast_state=state)
    with pytest.raises(TypeError, match="float32 or float64, got dtype float16"):
        selective_scan_bwd_cuda(np.zeros((2, 5, 9)), **args, dtype=np.float16)
    with pytest.raises(ValueError, match="expected block_d to be a power of two, got 24"):
        selective_scan_triton(**tensors, block_d=24)
    with pytest.raises(ValueError, match="expected chunk to be an integer >= 1, got 0"):
        selective_scan_triton(**tensors, chunk=0)
    with pytest.raises(ValueError, match=re.escape("a device array needs all five")):
        launch(*([None] * 8), np.zeros(3, np.int32), None, None)
