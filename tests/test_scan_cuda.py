"""Parity of the numba-cuda scan kernels, under the CUDA simulator, in a fresh process.

NUMBA_ENABLE_CUDASIM must be set before numba is first imported, and this pytest process has
already imported numba (the CPU kernels), so the CUDA tests (tests/simulated/cuda_scan_cases.py)
run in a child pytest with the variable set. Its report is shown when it fails.
"""

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_cuda_scan_kernels_under_the_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(HERE.parent),
            str(HERE / "simulated" / "cuda_scan_cases.py"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=HERE.parent,
    )
    report = proc.stdout[-8000:] + proc.stderr[-4000:]
    assert proc.returncode == 0, report
    assert " passed" in proc.stdout and "failed" not in proc.stdout, report


def test_without_a_gpu_or_the_simulator_the_error_says_what_to_do():
    import numpy as np
    import pytest
    from mamba_edu.kernels import scan_cuda

    if scan_cuda.mode() != "unavailable":
        pytest.skip(f"this process runs CUDA kernels ({scan_cuda.mode()}): nothing to refuse")
    with pytest.raises(RuntimeError, match="NUMBA_ENABLE_CUDASIM=1"):
        scan_cuda.chunked_scan(np.ones(3), np.ones(3))
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        scan_cuda.block_scan(np.ones(3), np.ones(3))
