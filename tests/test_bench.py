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


def test_time_sweep_measures_each_call():
    import time

    t = bench.time_sweep({1: lambda: time.sleep(0.005), 2: lambda: time.sleep(0.01)}, repeat=2)
    assert set(t) == {1, 2}
    assert 0.0045 < t[1] < 0.1 and 0.009 < t[2] < 0.2
    assert t[2] > 1.5 * t[1]


def test_time_sweep_takes_turns_and_drops_a_burst():
    """The measurements go round the calls (a, b, a, b, ...), and one slow call is discarded."""
    import time

    order = []
    slow_call = {"a": 4}  # the 5th call of "a" (its 2nd measurement) hits a 'burst'

    def make(key):
        def fn():
            order.append(key)
            if order.count(key) - 1 == slow_call.get(key):
                time.sleep(0.05)
            time.sleep(0.001)

        return fn

    t = bench.time_sweep({"a": make("a"), "b": make("b")}, repeat=3, min_time=0.0)
    assert order == ["a", "a", "b", "b", "a", "b", "a", "b", "a", "b"]
    assert t["a"] < 0.02  # the burst landed in one round; the minimum drops it


def test_time_sweep_rejects_bad_input():
    with pytest.raises(ValueError, match="repeat"):
        bench.time_sweep({1: print}, repeat=0)
    with pytest.raises(ValueError, match="zero-argument callable"):
        bench.time_sweep({})
    with pytest.raises(ValueError, match="zero-argument callable"):
        bench.time_sweep({1: 3.0})


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


def test_timing_helpers_do_not_import_the_experiments():
    """bench is a concept module: lessons import it; it must not pull in the benchmark tool."""
    import subprocess
    import sys

    code = "import sys, mamba_edu.bench; print('mamba_edu.experiments' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr
