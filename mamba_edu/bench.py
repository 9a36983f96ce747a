"""Timing helpers for the measurements lessons make on the spot.

Every number a lesson prints is measured where it runs; these helpers make the measurement honest
(warm-up call, best of several repeats, the machine named) and fit the growth exponent of a cost.
The selective-scan benchmark tool is an experiment: ``mamba-edu run scan_benchmark``
(``mamba_edu.experiments.scan_benchmark``); ``python -m mamba_edu.bench scan`` still runs it.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np

__all__ = [
    "time_call",
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
    if repeat < 1:
        raise ValueError(f"expected repeat >= 1, got {repeat}")
    fn(*args, **kwargs)
    start = time.perf_counter()
    fn(*args, **kwargs)
    once = time.perf_counter() - start
    number = max(1, int(min_time / max(once, 1e-9)))
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn(*args, **kwargs)
        best = min(best, (time.perf_counter() - start) / number)
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
    from threadpoolctl import threadpool_limits

    torch_threads = torch.get_num_threads()
    try:
        with threadpool_limits(limits=1):
            torch.set_num_threads(1)
            yield
    finally:
        torch.set_num_threads(torch_threads)


def _main(argv=None) -> int:
    """``python -m mamba_edu.bench scan [--all] [--quick]``: the older name of
    ``mamba-edu run scan_benchmark`` (prints the tables; writes no JSON)."""
    # only on the command line: the timing helpers never import the experiments built on them
    from mamba_edu.experiments import scan_benchmark as tool

    parser = argparse.ArgumentParser(prog="python -m mamba_edu.bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    scan = sub.add_parser("scan", help="time the selective scan implementations (float32)")
    scan.add_argument("--all", action="store_true",
                      help="also run selective_scan_ref with autograd at L=2048 (about a minute)")  # fmt: skip
    scan.add_argument("--quick", action="store_true", help="tiny shapes: checks that it runs")
    args = parser.parse_args(argv)
    cfg = tool.config(args.quick)
    tool.scan_benchmark(
        cfg["forward_shape"], cfg["training_shapes"], include_slow=args.all or cfg["include_slow"]
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
