"""Timing helpers for the measurements lessons make on the spot.

Every number a lesson prints is measured where it runs; these helpers make the measurement honest
(warm-up call, best of several repeats, the machine named) and fit the growth exponent of a cost.
The selective-scan benchmark tool is an experiment: ``mamba-edu run scan_benchmark``
(``mamba_edu.experiments.scan_benchmark``; ``python -m mamba_edu.experiments.scan_benchmark
[--all] [--quick]`` runs it with its own options).
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np

__all__ = [
    "time_call",
    "time_sweep",
    "loglog_slope",
    "machine_summary",
    "one_thread",
]


def time_call(fn: Callable, *args, repeat: int = 5, min_time: float = 0.02, **kwargs) -> float:
    """Best wall-clock time, in seconds, of one ``fn(*args, **kwargs)`` call.

    One warm-up call first (caches, lazy compilation), then ``repeat`` measurements; each
    measurement runs the call enough times to last at least ``min_time`` seconds, so that very
    short calls are not swamped by timer resolution. The minimum is the least noisy estimate on a
    shared machine.
    """
    return time_sweep({0: lambda: fn(*args, **kwargs)}, repeat=repeat, min_time=min_time)[0]


def time_sweep(
    calls: dict[object, Callable[[], object]], repeat: int = 5, min_time: float = 0.02
) -> dict[object, float]:
    """Best wall-clock time, in seconds, of each zero-argument call in ``calls``, timed in turns.

    For a sweep over sizes (the points of a log-log fit) timing one size after another lets a burst
    of load from another process land on a few neighbouring sizes and bend the fitted slope. Here
    every call is warmed up and calibrated (enough calls per measurement to last ``min_time``
    seconds) first, then the ``repeat`` measurements go round all of them in turn, so a burst costs
    each size at most one of its measurements, and the minimum over the rounds drops it.
    """
    if repeat < 1:
        raise ValueError(f"expected repeat >= 1, got {repeat}")
    if not calls or not all(callable(fn) for fn in calls.values()):
        raise ValueError("expected a non-empty dict mapping each key to a zero-argument callable")
    number = {}
    for key, fn in calls.items():
        fn()
        start = time.perf_counter()
        fn()
        once = time.perf_counter() - start
        number[key] = max(1, int(min_time / max(once, 1e-9)))
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(repeat):
        for key, fn in calls.items():
            start = time.perf_counter()
            for _ in range(number[key]):
                fn()
            best[key] = min(best[key], (time.perf_counter() - start) / number[key])
    return best


def loglog_slope(sizes: Sequence[float], times: Sequence[float]) -> float:
    """Least-squares slope of log(time) against log(size): the exponent p in time ∝ size^p."""
    sizes = np.asarray(sizes, dtype=float)
    times = np.asarray(times, dtype=float)
    if sizes.shape != times.shape or sizes.size < 2:
        raise ValueError(
            f"expected two sequences of the same length >= 2, got {sizes.shape} and {times.shape}"
        )
    if np.any(sizes <= 0) or np.any(times <= 0):
        raise ValueError("expected positive sizes and times for a log-log fit")
    slope, _ = np.polyfit(np.log(sizes), np.log(times), 1)
    return float(slope)


def machine_summary() -> str:
    """One line naming where a measurement was taken, for printing beside the numbers."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"{cpu}, {cores} core(s), Python {platform.python_version()}, NumPy {np.__version__}"


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the block with NumPy's BLAS (and PyTorch) on a single thread, then restore them.

    A matrix-vector product above a size threshold is split across threads by BLAS. On a busy
    shared machine a waiting thread can stall the call a hundredfold, and even on an idle one the
    time then measures how the work is spread over cores rather than how much work there is.
    Timings that compare amounts of work (N² against N) are taken inside this block.
    """
    # imported here: the timing helpers above are used by lessons that never load torch
    import torch
    from threadpoolctl import threadpool_limits  # (as torch: only when a block is timed)

    torch_threads = torch.get_num_threads()
    try:
        with threadpool_limits(limits=1):
            torch.set_num_threads(1)
            yield
    finally:
        torch.set_num_threads(torch_threads)
