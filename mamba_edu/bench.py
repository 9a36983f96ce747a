"""Timing helpers for the measurements lessons make on the spot.

Every number a lesson prints is measured where it runs; these helpers make the measurement honest
(warm-up call, best of several repeats, the machine named) and fit the growth exponent of a cost.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np

__all__ = [
    "time_call",
    "loglog_slope",
    "machine_summary",
    "one_thread",
    "scan_benchmark",
    "exp_floor",
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
    import torch
    from threadpoolctl import threadpool_limits

    torch_threads = torch.get_num_threads()
    try:
        with threadpool_limits(limits=1):
            torch.set_num_threads(1)
            yield
    finally:
        torch.set_num_threads(torch_threads)


# ----------------------------------------------------------------------------------------------
# `python -m mamba_edu.bench scan`: the selective scan, ours against the alternatives a user has
# ----------------------------------------------------------------------------------------------

ISSUE_FORWARD = (1, 256, 2048, 16)  # (B, D, L, N), float32: the forward comparison
ISSUE_TRAINING = ((8, 128, 256, 16), (1, 256, 2048, 16))  # forward + backward comparisons


def _measure(fn, budget: float = 1.0, slow: float = 2.0) -> float:
    """time_call with as many repeats (3 to 15) as fit in about ``budget`` seconds, the same
    rule for every contender (on a shared machine more repeats find a quieter moment); a call
    slower than ``slow`` seconds is timed once."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    if first > slow:
        return first
    return time_call(fn, repeat=min(15, max(3, int(budget / max(first, 1e-9)))))


def _selective_inputs(batch, dim, length, dstate, seed=0):
    """float32 arguments shaped like a Mamba layer's (S4D-Real A, Δ bias for dt in [1e-3, 1e-1])."""
    rng = np.random.default_rng(seed)
    f32 = np.float32
    dt = np.exp(rng.uniform(np.log(1e-3), np.log(1e-1), dim))
    return dict(
        u=rng.standard_normal((batch, dim, length)).astype(f32),
        delta=(0.1 * rng.standard_normal((batch, dim, length))).astype(f32),
        A=-np.tile(np.arange(1, dstate + 1, dtype=f32), (dim, 1)),
        B=rng.standard_normal((batch, dstate, length)).astype(f32),
        C=rng.standard_normal((batch, dstate, length)).astype(f32),
        D=np.ones(dim, f32),
        delta_bias=(dt + np.log(-np.expm1(-dt))).astype(f32),  # inverse softplus
    )


def _mambapy_scan(pscan, u, delta, A, B, C, D, delta_bias):
    """The selective scan through mambapy's parallel scan (which takes (B, L, D, N) tensors)."""
    import torch.nn.functional as F

    dt = F.softplus(delta + delta_bias[:, None]).transpose(1, 2)  # (B, L, D)
    x = u.transpose(1, 2)  # (B, L, D)
    decay = (dt.unsqueeze(-1) * A).exp()  # (B, L, D, N)
    drive = dt.unsqueeze(-1) * B.transpose(1, 2).unsqueeze(2) * x.unsqueeze(-1)  # (B, L, D, N)
    states = pscan(decay, drive)  # (B, L, D, N)
    y = (states @ C.transpose(1, 2).unsqueeze(-1)).squeeze(-1)  # (B, L, D)
    return (y + D * x).transpose(1, 2)


def _scan_contenders(shape, backward: bool, include_slow: bool):
    """(name, callable or None, note) for each implementation at one shape."""
    import torch

    from mamba_edu import selective
    from mamba_edu.kernels import selective_cpu

    arrays = _selective_inputs(*shape)
    tensors = {k: torch.from_numpy(v) for k, v in arrays.items()}
    grads = {k: v.clone().requires_grad_(True) for k, v in tensors.items()}
    contenders = []

    def with_grad(fn):
        def run():
            for t in grads.values():
                t.grad = None
            fn(**grads).sum().backward()

        return run

    if backward:
        contenders.append(("NumPy loop (mamba_edu.selective)", None, "no backward"))
    else:
        contenders.append(
            ("NumPy loop (mamba_edu.selective)",
             lambda: selective.selective_scan(**arrays, delta_softplus=True, dtype=np.float32), "")
        )  # fmt: skip
    selective_scan_ref = _official_selective_scan_ref()
    if isinstance(selective_scan_ref, str):
        contenders.append(("mamba_ssm selective_scan_ref", None, selective_scan_ref))
    elif backward and not include_slow and shape[2] > 512:
        contenders.append(
            ("mamba_ssm selective_scan_ref", None, "skipped (about a minute here; --all runs it)")
        )
    else:

        def official(**kw):
            return selective_scan_ref(**kw, delta_softplus=True)

        if backward:
            contenders.append(("mamba_ssm selective_scan_ref + autograd", with_grad(official), ""))
        else:
            contenders.append(
                ("mamba_ssm selective_scan_ref", lambda: official(**tensors), "torch.no_grad")
            )
    try:
        from mambapy.pscan import pscan
    except ImportError:
        contenders.append(
            ("mambapy pscan", None, "mambapy not installed (pip install '.[parity]')")
        )
    else:

        def peer(**kw):
            return _mambapy_scan(pscan, **kw)

        if backward:
            contenders.append(("mambapy pscan + autograd", with_grad(peer), ""))
        else:
            contenders.append(("mambapy pscan", lambda: peer(**tensors), ""))

    def ours(**kw):
        return selective_cpu.selective_scan(**kw, delta_softplus=True, backend="numba")

    if backward:
        contenders.append(("ours: numba SelectiveScanFn", with_grad(ours), ""))
    else:
        contenders.append(
            ("ours: numba kernel",
             lambda: selective_cpu.selective_scan_fwd(**arrays, delta_softplus=True), "")
        )  # fmt: skip
    return contenders


def _compile_kernels() -> float:
    """Run our float32 forward and backward once on a tiny input, so that numba's compilation
    (seconds, when its on-disk cache is cold) is never counted as the kernel's time. Returns the
    seconds it took."""
    import torch

    from mamba_edu.kernels import selective_cpu

    start = time.perf_counter()
    tiny = {
        k: torch.from_numpy(v).requires_grad_(True)
        for k, v in _selective_inputs(1, 4, 3, 2).items()
    }
    selective_cpu.selective_scan(**tiny, delta_softplus=True, backend="numba").sum().backward()
    return time.perf_counter() - start


def _official_selective_scan_ref():
    """mamba_ssm's selective_scan_ref, imported without its CUDA extension, or why not."""
    import importlib
    import importlib.util
    import types

    if "mamba_ssm" not in sys.modules:  # skip mamba_ssm/__init__ (it imports every model)
        spec = importlib.util.find_spec("mamba_ssm")
        if spec is None:
            return "mamba_ssm not installed (make test installs it)"
        package = types.ModuleType("mamba_ssm")
        package.__path__ = list(spec.submodule_search_locations)
        package.__spec__ = spec
        sys.modules["mamba_ssm"] = package
    sys.modules.setdefault("selective_scan_cuda", types.ModuleType("selective_scan_cuda"))
    os.environ.setdefault("MAMBA_DETERMINISTIC", "1")
    os.environ.setdefault("TRITON_CACHE_AUTOTUNING", "1")
    try:
        module = importlib.import_module("mamba_ssm.ops.selective_scan_interface")
    except Exception as error:  # noqa: BLE001 - report any import failure as a reason
        return f"mamba_ssm import failed: {error}"
    return module.selective_scan_ref


def exp_floor(shape, threads: int) -> float:
    """Seconds for np.exp over B·L·D·N float32 numbers, divided by the cores the kernel uses: a
    floor for any selective scan that computes exp(ΔA) for every state entry at every step."""
    batch, dim, length, dstate = shape
    values = -np.random.default_rng(0).random(batch * dim * length * dstate, dtype=np.float32)
    out = np.empty_like(values)
    return _measure(lambda: np.exp(values, out=out)) / threads


def scan_benchmark(forward_shape=ISSUE_FORWARD, training_shapes=ISSUE_TRAINING,
                   include_slow=False, out=print) -> list[dict]:  # fmt: skip
    """Time every contender; print one table per shape; return the rows (seconds, ratios)."""
    import numba
    import torch

    threads = numba.get_num_threads()
    torch_threads = torch.get_num_threads()
    out(f"selective scan benchmark, float32, on this machine: {machine_summary()}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    out(
        f"numba threads {threads}, torch threads {torch_threads}; load average {load:.1f} "
        "(a shared CPU makes every number noisier; ratios within one run are the fair comparison)"
    )
    out(f"numba compilation before timing: {_compile_kernels():.1f} s (never counted below)")
    rows = []
    jobs = [(forward_shape, False)] + [(shape, True) for shape in training_shapes]
    for shape, backward in jobs:
        kind = "forward + backward" if backward else "forward"
        out(f"\n{kind}, (B, D, L, N) = {shape}")
        measured = []
        for name, fn, note in _scan_contenders(shape, backward, include_slow):
            seconds = None if fn is None else _measure(fn)
            measured.append((name, seconds, note))
        if not backward:
            measured.append(
                (f"exp floor: np.exp over B·L·D·N / {threads} cores", exp_floor(shape, threads), "")
            )
        ours = next(s for n, s, _ in measured if n.startswith("ours"))
        out(f"  {'implementation':<48} {'time':>10} {'÷ ours':>9}")
        for name, seconds, note in measured:
            if seconds is None:
                out(f"  {name:<48} {'—':>10} {'':>9}  {note}")
                continue
            ratio = seconds / ours
            out(f"  {name:<48} {seconds * 1e3:8.1f} ms {ratio:8.2f}×  {note}")
            rows.append(dict(kind=kind, shape=shape, name=name, seconds=seconds, ratio=ratio))
    return rows


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m mamba_edu.bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    scan = sub.add_parser("scan", help="time the selective scan implementations (float32)")
    scan.add_argument("--all", action="store_true",
                      help="also run selective_scan_ref with autograd at L=2048 (about a minute)")  # fmt: skip
    scan.add_argument("--quick", action="store_true", help="tiny shapes: checks that it runs")
    args = parser.parse_args(argv)
    if args.command == "scan":
        if args.quick:
            scan_benchmark((1, 8, 32, 4), ((2, 8, 16, 4),), include_slow=True)
        else:
            scan_benchmark(include_slow=args.all)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
