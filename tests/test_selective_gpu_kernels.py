"""The GPU selective scan kernels on a CPU: numba-cuda under the CUDA simulator, Triton under its
interpreter, against the NumPy reference; tiny shapes (a few blocks) since both run at Python speed.

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


def test_gpu_check_script_runs_simulated_and_refuses_without_a_gpu():
    """`make gpu-check` runs this script on a GPU; here its --simulate mode runs the same parity
    and benchmark code on a CPU, and the plain mode must say clearly that there is no GPU."""
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "TRITON_INTERPRET": "1"}
    command = [sys.executable, "-m", "mamba_edu.kernels.gpu_check"]
    simulated = subprocess.run(
        [*command, "--simulate"], capture_output=True, text=True, timeout=600, env=env
    )
    assert simulated.returncode == 0, simulated.stdout[-3000:] + simulated.stderr[-3000:]
    assert re.search(r"^\d+ passed, 0 failed", simulated.stdout, re.MULTILINE), simulated.stdout
    assert "ok   numba-cuda chunked kernel" in simulated.stdout
    assert "ok   Triton kernel" in simulated.stdout
    assert "ok   mamba_ssm Triton selective_state_update" in simulated.stdout
    assert "GB/s" in simulated.stdout
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
