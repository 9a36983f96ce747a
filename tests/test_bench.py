import os

import numpy as np
import pytest

from mamba_edu import bench


def test_loglog_slope_recovers_exponent():
    sizes = np.array([10, 20, 40, 80])
    assert bench.loglog_slope(sizes, 3e-6 * sizes**2) == pytest.approx(2.0)
    assert bench.loglog_slope(sizes, 5e-3 * sizes**1.0) == pytest.approx(1.0)


def test_loglog_slope_rejects_bad_input():
    with pytest.raises(ValueError, match="same length"):
        bench.loglog_slope([1, 2], [1.0])
    with pytest.raises(ValueError, match="positive"):
        bench.loglog_slope([1, 2], [0.0, 1.0])


def test_time_call_measures_a_sleep():
    import time

    t = bench.time_call(time.sleep, 0.01, repeat=2)
    assert 0.009 < t < 0.2


def test_machine_summary_names_cores():
    assert "core(s)" in bench.machine_summary()


def test_one_thread_limits_blas_and_torch_then_restores():
    import torch
    from threadpoolctl import threadpool_info

    before_torch = torch.get_num_threads()
    before_blas = [p["num_threads"] for p in threadpool_info()]
    with bench.one_thread():
        assert torch.get_num_threads() == 1
        assert all(p["num_threads"] == 1 for p in threadpool_info())
    assert torch.get_num_threads() == before_torch
    assert [p["num_threads"] for p in threadpool_info()] == before_blas


def test_scan_benchmark_times_every_contender_on_tiny_shapes():
    lines = []
    rows = bench.scan_benchmark((1, 4, 8, 2), ((1, 4, 8, 2),), include_slow=True, out=lines.append)
    text = "\n".join(lines)
    assert "on this machine" in text and "load average" in text
    assert "numba compilation before timing" in text
    names = {(r["kind"], r["name"]) for r in rows}
    for name in ("NumPy loop (mamba_edu.selective)", "ours: numba kernel"):
        assert ("forward", name) in names
    assert any(n.startswith("exp floor") for _, n in names)
    assert ("forward + backward", "ours: numba SelectiveScanFn") in names
    for row in rows:
        assert row["seconds"] > 0
        if row["name"].startswith("ours"):
            assert row["ratio"] == pytest.approx(1.0)


def test_exp_floor_divides_by_threads():
    one = bench.exp_floor((1, 8, 64, 16), 1)
    assert one > 0
    assert bench.exp_floor((1, 8, 64, 16), 4) < one


def test_compilation_is_done_before_timing(tmp_path):
    """With numba's cache empty, the first kernel call compiles for seconds; after
    _compile_kernels the timed calls (other shapes, same dtype) must be fast."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        import time
        import torch
        from mamba_edu import bench
        from mamba_edu.kernels import selective_cpu

        compile_s = bench._compile_kernels()
        args = {k: torch.from_numpy(v).requires_grad_(True)
                for k, v in bench._selective_inputs(2, 8, 16, 4).items()}
        start = time.perf_counter()
        selective_cpu.selective_scan(**args, delta_softplus=True, backend="numba").sum().backward()
        print(compile_s, time.perf_counter() - start)
        """
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    compile_s, timed_s = map(float, done.stdout.split())
    assert compile_s > 1.0  # an empty cache: it really compiled
    assert timed_s < 0.5, f"the timed call took {timed_s:.2f} s: it compiled again"
