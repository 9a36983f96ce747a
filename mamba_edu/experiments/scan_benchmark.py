"""The selective scan, ours against the alternatives a user has (float32, CPU):
``mamba-edu run scan_benchmark`` → ``data/scan_benchmark.json``, tables printed as it goes.

Contenders: the NumPy loop of ``mamba_edu.selective``, the official ``selective_scan_ref``
(mamba_ssm, imported without its CUDA extension), mambapy's parallel scan, and our numba kernel
(``kernels/selective_cpu.py``); plus a floor no selective scan can beat on this machine (the cost of
exp(ΔA) alone). ``python -m mamba_edu.bench scan [--all] [--quick]`` is the older name of this run.

Shapes are (batch, D, L, N): batch size, channels, length, state size.
"""

from __future__ import annotations

import os
import time

import numba
import numpy as np
import torch
import torch.nn.functional as F

from mamba_edu import official, selective
from mamba_edu.bench import machine_summary, time_call
from mamba_edu.kernels import selective_cpu

__all__ = ["SUMMARY", "scan_benchmark", "exp_floor", "config", "units", "run_unit", "summarize"]

SUMMARY = "the selective scan: NumPy loop, mamba_ssm ref, mambapy, our numba kernel (float32, CPU)"

ISSUE_FORWARD = (1, 256, 2048, 16)  # (batch, D, L, N), float32: forward
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


def _selective_inputs(batch, dim, length, d_state, seed=0):
    """float32 arguments shaped like a Mamba layer's (S4D-Real A, Δ bias for dt in [1e-3, 1e-1])."""
    rng = np.random.default_rng(seed)
    f32 = np.float32
    dt = np.exp(rng.uniform(np.log(1e-3), np.log(1e-1), dim))
    return dict(
        x=rng.standard_normal((batch, dim, length)).astype(f32),
        delta=(0.1 * rng.standard_normal((batch, dim, length))).astype(f32),
        A=-np.tile(np.arange(1, d_state + 1, dtype=f32), (dim, 1)),
        B=rng.standard_normal((batch, d_state, length)).astype(f32),
        C=rng.standard_normal((batch, d_state, length)).astype(f32),
        D=np.ones(dim, f32),
        delta_bias=(dt + np.log(-np.expm1(-dt))).astype(f32),  # inverse softplus
    )


def _mambapy_scan(pscan, x, delta, A, B, C, D, delta_bias):
    """The selective scan through mambapy's parallel scan (which takes (batch, L, D, N) tensors)."""
    dt = F.softplus(delta + delta_bias[:, None]).transpose(1, 2)  # (batch, L, D)
    x = x.transpose(1, 2)  # (batch, L, D)
    decay = (dt.unsqueeze(-1) * A).exp()  # (batch, L, D, N)
    drive = dt.unsqueeze(-1) * B.transpose(1, 2).unsqueeze(2) * x.unsqueeze(-1)  # (batch, L, D, N)
    states = pscan(decay, drive)  # (batch, L, D, N)
    y = (states @ C.transpose(1, 2).unsqueeze(-1)).squeeze(-1)  # (batch, L, D)
    return (y + D * x).transpose(1, 2)


def _scan_contenders(shape, backward: bool, include_slow: bool):
    """(name, callable or None, note) for each implementation at one shape."""
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

        def official(x, **kw):
            return selective_scan_ref(x, **kw, delta_softplus=True)  # mamba_ssm calls x ``u``

        if backward:
            contenders.append(("mamba_ssm selective_scan_ref + autograd", with_grad(official), ""))
        else:
            contenders.append(
                ("mamba_ssm selective_scan_ref", lambda: official(**tensors), "torch.no_grad")
            )
    try:  # optional peer (the [parity] extra): missing, it is reported as a row
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
    start = time.perf_counter()
    tiny = {
        k: torch.from_numpy(v).requires_grad_(True)
        for k, v in _selective_inputs(1, 4, 3, 2).items()
    }
    selective_cpu.selective_scan(**tiny, delta_softplus=True, backend="numba").sum().backward()
    return time.perf_counter() - start


def _official_selective_scan_ref():
    """mamba_ssm's selective_scan_ref (through the course's one adapter), or why not."""
    try:
        return official.selective_scan_ref()
    except official.Unavailable as why:
        return str(why)


def exp_floor(shape, threads: int) -> float:
    """Seconds for np.exp over B·L·D·N float32 numbers, divided by the cores the kernel uses: a
    floor for any selective scan that computes exp(ΔA) for every state entry at every step."""
    batch, dim, length, d_state = shape
    values = -np.random.default_rng(0).random(batch * dim * length * d_state, dtype=np.float32)
    out = np.empty_like(values)
    return _measure(lambda: np.exp(values, out=out)) / threads


def _header(out) -> dict:
    """Print and return where and under which load the timings are taken."""
    threads = numba.get_num_threads()
    torch_threads = torch.get_num_threads()
    out(f"selective scan benchmark, float32, on this machine: {machine_summary()}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    out(
        f"numba threads {threads}, torch threads {torch_threads}; load average {load:.1f} "
        "(a shared CPU makes every number noisier; ratios within one run are the fair comparison)"
    )
    return dict(numba_threads=threads, torch_threads=torch_threads, load_average=round(load, 2))


def _time_job(shape, backward: bool, include_slow: bool, out) -> list[dict]:
    """Time every contender at one shape (forward only, or forward + backward); print its table;
    return one row per timed contender (seconds, ratio to ours)."""
    threads = numba.get_num_threads()
    kind = "forward + backward" if backward else "forward"
    out(f"\n{kind}, (batch, D, L, N) = {tuple(shape)}")
    measured = []
    for name, fn, note in _scan_contenders(tuple(shape), backward, include_slow):
        seconds = None if fn is None else _measure(fn)
        measured.append((name, seconds, note))
    if not backward:
        measured.append(
            (f"exp floor: np.exp over B·L·D·N / {threads} cores", exp_floor(shape, threads), "")
        )
    ours = next(s for n, s, _ in measured if n.startswith("ours"))
    out(f"  {'implementation':<48} {'time':>10} {'÷ ours':>9}")
    rows = []
    for name, seconds, note in measured:
        if seconds is None:
            out(f"  {name:<48} {'—':>10} {'':>9}  {note}")
            rows.append(dict(kind=kind, shape=list(shape), name=name, seconds=None, note=note))
            continue
        ratio = seconds / ours
        out(f"  {name:<48} {seconds * 1e3:8.1f} ms {ratio:8.2f}×  {note}")
        rows.append(dict(kind=kind, shape=list(shape), name=name, seconds=seconds, ratio=ratio))
    return rows


def scan_benchmark(forward_shape=ISSUE_FORWARD, training_shapes=ISSUE_TRAINING,
                   include_slow=False, out=print) -> list[dict]:  # fmt: skip
    """Time every contender; print one table per shape; return the timed rows (seconds, ratios)."""
    _header(out)
    out(f"numba compilation before timing: {_compile_kernels():.1f} s (never counted below)")
    rows = []
    jobs = [(forward_shape, False)] + [(shape, True) for shape in training_shapes]
    for shape, backward in jobs:
        rows += [r for r in _time_job(shape, backward, include_slow, out) if r["seconds"]]
    return rows


# --- the experiment interface (see mamba_edu.experiments) ---------------------------------------


def config(quick: bool) -> dict:
    if quick:
        return dict(forward_shape=[1, 8, 32, 4], training_shapes=[[2, 8, 16, 4]], include_slow=True)
    return dict(forward_shape=list(ISSUE_FORWARD), training_shapes=[list(s) for s in ISSUE_TRAINING],
                include_slow=False)  # fmt: skip


def units(cfg: dict) -> list[str]:
    shapes = [("forward", cfg["forward_shape"])]
    shapes += [("forward + backward", shape) for shape in cfg["training_shapes"]]
    return [f"{kind} {'x'.join(map(str, shape))}" for kind, shape in shapes]


def run_unit(cfg: dict, unit: str) -> dict:
    kind, shape_text = unit.rsplit(" ", 1)
    shape = tuple(int(n) for n in shape_text.split("x"))
    lines = []
    conditions = _header(lines.append)
    # in every unit, since a resumed run starts in a fresh process; seconds once compiled
    conditions["compile_seconds"] = round(_compile_kernels(), 2)
    rows = _time_job(shape, kind != "forward", cfg["include_slow"], lines.append)
    print("\n".join(lines[2:]))  # the table as it is measured (the header goes in the JSON)
    return dict(conditions=conditions, rows=rows)


def summarize(cfg: dict, results: dict) -> dict:
    return dict(
        units={unit: result["conditions"] for unit, result in results.items()},
        rows=[row for result in results.values() for row in result["rows"]],
    )
