"""`make gpu-check` (python -m mamba_edu.kernels.gpu_check): the parity suite on a real CUDA GPU,
a comparison with mamba_ssm's own CUDA kernel built here, and a benchmark table, in a few minutes.

0. With ``--official-sdist``: mamba_ssm's ``selective_scan_cuda`` is built from its pinned source
   distribution, float32 only, for this GPU (:mod:`mamba_edu.official_cuda`), in a background
   process while steps 1 and 2 run (about three minutes of nvcc on one core per file).
1. Parity: the NumPy reference (float64) against the numba-cuda kernel and the Triton kernel, and
   one decode step against mamba_ssm's Triton ``selective_state_update``. float32 tolerance: the
   official rtol 6e-4, atol 2e-3.
2. Backward parity: the gradients of the numba-cuda and Triton backward kernels (through their
   autograd Functions) against the CPU kernel's hand-derived backward in float64 (itself tested
   against torch autograd): float64 kernels to 1e-10 relative, float32 at the official tolerance
   (atol scaled by the gradient's largest entry).
3. mamba_ssm's CUDA kernel as the yardstick (float32): its output and last state against the
   NumPy reference; the course's kernels' outputs against its output; its gradients against the
   CPU float64 backward, and the course's backward kernels' gradients against its gradients;
   and a float16 call, which this float32-only build must refuse with a clear error.
4. Bandwidth: the GPU's datasheet peak (:data:`PEAK_BANDWIDTH`) and the bandwidth of a large
   device-to-device copy measured here.
5. Benchmark (float32): forward, and forward + backward, time per call and achieved memory
   bandwidth (:func:`scan_bytes`: the bytes that must cross global memory, divided by the time),
   as a fraction of both peaks. The table, with the machine and the date, is written to
   ``data/gpu_check-GPU-DATE.json`` (:func:`write_record`; on a GPU only), saved again after
   each table (``"complete": true`` once the last one is in: a run stopped by its time limit
   keeps what it measured).

On a machine without a CUDA GPU it says so and exits with status 2. It installs nothing.
``--simulate`` runs the same code on a CPU (CUDA simulator, Triton interpreter, tiny shapes, and
for mamba_ssm's extension a stand-in built on the course's CPU kernel, :func:`simulated_extension`):
it checks the script, not a GPU, and writes no table.

A script, not part of the kernels' import graph: nothing imports it, and it imports the NumPy
reference (``mamba_edu.selective``) and the official adapter (``mamba_edu.official``) inside the
functions that use them, so that ``import mamba_edu.kernels`` never pulls them in.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import re
import subprocess
import sys
import time
import types
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

PARITY_SHAPES = [(2, 96, 300, 16), (1, 40, 1, 4), (3, 130, 77, 64)]  # (batch, D, L, N)
BENCH_SHAPES = [(1, 256, 2048, 16), (8, 1024, 2048, 16), (8, 2048, 4096, 16)]
RTOL, ATOL = 6e-4, 2e-3
# --simulate: the same script on a CPU (CUDA simulator, Triton interpreter), tiny shapes. It
# checks the script itself, not the GPU; `make test` runs it.
SIMULATED_PARITY_SHAPES = [(2, 70, 37, 5), (1, 3, 1, 4)]
SIMULATED_BACKWARD_SHAPES = [(1, 6, 9, 3)]  # the script, not the kernels: tests/ cover those
SIMULATED_BENCH_SHAPES = [(1, 8, 16, 4)]
COPY_BYTES = 2 << 30  # the measured copy reads 2 GiB and writes 2 GiB (many times the L2)
SIMULATED_COPY_BYTES = 8 << 20
BUILD_TIMEOUT = 480  # seconds the official build may take, counted from its start
ROOT = Path(__file__).resolve().parents[1]
DEVICE = "cuda"

# Peak memory bandwidth by GPU, from the vendor's datasheets (bytes/s; the first pattern that
# matches torch.cuda.get_device_name() wins, so the more specific ones come first).
PEAK_BANDWIDTH = [
    (r"H200", 4.8e12, "NVIDIA H200 Tensor Core GPU datasheet: 4.8 TB/s HBM3e (SXM and NVL)"),
    (r"H100.*PCIe", 2.0e12, "NVIDIA H100 Tensor Core GPU datasheet: H100 PCIe, 2 TB/s HBM2e"),
    (r"H100.*NVL", 3.9e12, "NVIDIA H100 Tensor Core GPU datasheet: H100 NVL, 3.9 TB/s HBM3"),
    (r"H100", 3.35e12, "NVIDIA H100 Tensor Core GPU datasheet: H100 SXM, 3.35 TB/s HBM3"),
    (r"A100.*80GB.*PCIe", 1.935e12,
     "NVIDIA A100 Tensor Core GPU datasheet: A100 80GB PCIe, 1,935 GB/s HBM2e"),
    (r"A100.*80GB", 2.039e12,
     "NVIDIA A100 Tensor Core GPU datasheet: A100 80GB SXM, 2,039 GB/s HBM2e"),
    (r"A100", 1.555e12, "NVIDIA A100 Tensor Core GPU datasheet: A100 40GB, 1,555 GB/s HBM2"),
]  # fmt: skip


def datasheet_peak(gpu_name):
    """(bytes/s, source) of the datasheet's peak memory bandwidth for a GPU named as torch
    names it ("NVIDIA H200", "NVIDIA A100-SXM4-80GB", ...), or None for a GPU not in the table."""
    if not isinstance(gpu_name, str):
        raise TypeError(f"expected the GPU's name as a str, got {type(gpu_name).__name__}")
    for pattern, peak, source in PEAK_BANDWIDTH:
        if re.search(pattern, gpu_name, re.IGNORECASE):
            return peak, source
    return None


BYTES_COUNTED = (
    "each input of the scan read once and each output written once (scan_bytes): forward x, "
    "delta, z, B, C, A, D, delta_bias read and y written; forward+backward adds the inputs and "
    "dout read again and one gradient per input written"
)


def scan_bytes(batch, dim, length, d_state, *, backward=False, itemsize=4):
    """The least number of bytes one selective scan (with D, z and Δ bias) moves to and from
    global memory: each input read once, each output written once.

    Forward: reads x, Δ, z (batch, D, L), B, C (batch, N, L), A (D, N), D and the Δ bias (D,);
    writes y (batch, D, L). ``backward=True`` adds the backward pass (the forward + backward
    pair): it reads the same inputs again and dout, (batch, D, L), and writes one gradient per
    input, each the size of that input. Internal checkpoints and recomputation are not counted:
    this is the floor that a time is divided by to give an achieved bandwidth."""
    sizes = (("batch", batch), ("dim", dim), ("length", length), ("d_state", d_state),
             ("itemsize", itemsize))  # fmt: skip
    for name, value in sizes:
        if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
            raise ValueError(f"expected {name} to be a positive int, got {value!r}")
    inputs = 3 * batch * dim * length + 2 * batch * d_state * length + dim * d_state + 2 * dim
    elements = inputs + batch * dim * length  # the forward: inputs read, y written
    if backward:
        elements += inputs + batch * dim * length + inputs  # inputs and dout read, grads written
    return int(elements * itemsize)


def _to_device(torch, array):
    return torch.from_numpy(np.ascontiguousarray(array)).to(DEVICE)


def _host(array):
    return array.detach().cpu().numpy() if hasattr(array, "detach") else np.asarray(array)


def _synchronize(torch):
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def _inputs(batch, dim, length, d_state, seed=0):
    from mamba_edu import selective  # the reference: a script's import, see the module doc

    return selective.random_inputs(batch, dim, length, d_state, seed=seed)


def _official_state_update():
    from mamba_edu import official  # the one adapter to mamba_ssm (see the module doc)

    try:
        return official.selective_state_update()[0], ""
    except official.Unavailable as error:
        return None, str(error)


def _report(name, got, expected, results, checks=None):
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    same_shape = got.shape == expected.shape
    diff = float(np.max(np.abs(got - expected))) if same_shape and got.size else float("nan")
    ok = same_shape and bool(np.allclose(got, expected, rtol=RTOL, atol=ATOL))
    results.append(ok)
    if checks is not None:
        checks.append({"check": name, "max_abs_diff": diff, "ok": ok})
    shape_note = "" if same_shape else f" (shape {got.shape}, expected {expected.shape})"
    print(f"  {'ok  ' if ok else 'FAIL'} {name:<66} max |diff| {diff:.2e}{shape_note}")


def _fail(name, error, results, checks=None):
    results.append(False)
    if checks is not None:
        checks.append({"check": name, "error": f"{type(error).__name__}: {error}", "ok": False})
    print(f"  FAIL {name}: {type(error).__name__}: {error}")


def parity(torch, results, shapes=PARITY_SHAPES, checks=None):
    # after main() has set up the simulator / interpreter variables, which must precede the import
    from mamba_edu.kernels import selective_cuda, selective_triton

    from mamba_edu import selective  # the reference: a script's import, see the module doc

    print("parity against the NumPy reference (float64), float32 kernels on the GPU")
    for shape in shapes:
        args = _inputs(*shape)
        ref, ref_last = selective.selective_scan(
            **args, delta_softplus=True, return_last_state=True
        )
        f32 = {k: v.astype(np.float32) for k, v in args.items()}
        gpu = {k: _to_device(torch, v) for k, v in f32.items()}
        runs = [
            ("numba-cuda chunked kernel",
             lambda f32=f32: selective_cuda.selective_scan_fwd_cuda(**f32, delta_softplus=True)),
            ("Triton kernel",
             lambda gpu=gpu: selective_triton.selective_scan_fwd_triton(**gpu, delta_softplus=True)),
        ]  # fmt: skip
        for name, run in runs:
            try:
                out, last = (_host(a) for a in run())
            except Exception as error:  # noqa: BLE001 - report and carry on with the others
                _fail(f"{name} {shape}", error, results, checks)
                continue
            _report(f"{name} {shape}", out, ref, results, checks)
            _report(f"{name}, last state {shape}", last, ref_last, results, checks)
    update, why = _official_state_update()
    if update is None:
        print(f"  (mamba_ssm selective_state_update: skipped, {why})")
        return
    batch, dim, d_state = 4, 200, 16
    one = selective.random_inputs(batch, dim, 1, d_state, seed=1)  # a sequence of one step
    step = {k: v[..., 0] if v.ndim == 3 else v for k, v in one.items()}
    step["state"] = np.random.default_rng(2).standard_normal((batch, dim, d_state))
    y, new_state = selective.selective_step(**step, delta_softplus=True)
    t = {k: _to_device(torch, v.astype(np.float32)) for k, v in step.items()}
    state = t["state"].clone()
    name = "mamba_ssm Triton selective_state_update"
    try:
        out = update(state, t["x"], t["delta"], t["A"], t["B"], t["C"], D=t["D"], z=t["z"],
                     dt_bias=t["delta_bias"], dt_softplus=True)  # fmt: skip
    except Exception as error:  # noqa: BLE001
        _fail(name, error, results, checks)
        return
    _report(f"{name}, output", _host(out), y, results, checks)
    _report(f"{name}, state", _host(state), new_state, results, checks)


GRAD_NAMES = ("x", "delta", "A", "B", "C", "D", "z", "delta_bias")
INPUT_TYPED = ("x", "delta", "B", "C", "z")  # mamba_ssm's "input type" arguments


def _grads(torch, scan, args, dout, dlast, dtype, **kwargs):
    """Gradients of Σ out·dout + Σ last·dlast through ``scan`` (an autograd Function's wrapper),
    keyed by argument name; ``dlast`` None: the output's gradient only (mamba_ssm's kernel has
    no gradient for the last state)."""
    tensors = {k: _to_device(torch, v.astype(dtype)).requires_grad_(True) for k, v in args.items()}
    out, last = scan(**tensors, delta_softplus=True, return_last_state=True, **kwargs)
    loss = (out * _to_device(torch, dout.astype(dtype))).sum()
    if dlast is not None:
        loss = loss + (last * _to_device(torch, dlast.astype(dtype))).sum()
    grads = torch.autograd.grad(loss, list(tensors.values()))
    return {k: _host(g) for k, g in zip(tensors, grads, strict=True)}


def _report_grads(name, got, expected, dtype, results, checks=None):
    """One line for all the gradients of one run: ok when every one is within tolerance (float64:
    1e-10 relative; float32: rtol 6e-4, atol 2e-3 times the gradient's largest entry); the
    largest difference relative to its gradient's largest entry, and which gradient it was.
    ``got`` is keyed by argument name (x, delta, ...), ``expected`` by gradient (dx, ddelta, ...)."""
    worst, worst_name, ok = 0.0, "", True
    for key in GRAD_NAMES:
        want = np.asarray(expected["d" + key], dtype=np.float64)
        have = np.asarray(got[key], dtype=np.float64)
        if have.shape != want.shape:
            ok, worst, worst_name = False, float("inf"), f"{key} shape {have.shape}"
            continue
        scale = max(float(np.max(np.abs(want))), 1e-300)
        if dtype == np.float64:
            ok &= bool(np.allclose(have, want, rtol=1e-10, atol=1e-10 * scale))
        else:
            ok &= bool(np.allclose(have, want, rtol=RTOL, atol=ATOL * max(1.0, scale)))
        diff = float(np.max(np.abs(have - want))) / scale
        if diff >= worst:
            worst, worst_name = diff, key
    results.append(ok)
    if checks is not None:
        checks.append({"check": name, "max_rel_diff": worst, "worst": "d" + worst_name, "ok": ok})
    print(f"  {'ok  ' if ok else 'FAIL'} {name:<66} max rel. diff {worst:.2e} (d{worst_name})")


def backward_parity(torch, results, shapes=PARITY_SHAPES, checks=None):
    # after main() has set up the simulator / interpreter variables, which must precede the import
    from mamba_edu.kernels import selective_cpu, selective_cuda, selective_triton

    print("\nbackward parity against the CPU kernel's float64 backward (checked against autograd)")
    for shape in shapes:
        args = _inputs(*shape)
        rng = np.random.default_rng(3)
        dout = rng.standard_normal(args["x"].shape)
        dlast = rng.standard_normal((shape[0], shape[1], shape[3]))
        ref = selective_cpu.selective_scan_bwd(dout, **args, delta_softplus=True, dlast_state=dlast)
        for dtype in (np.float64, np.float32):
            for name, scan in (
                ("numba-cuda backward", selective_cuda.selective_scan_cuda),
                ("Triton backward", selective_triton.selective_scan_triton),
            ):
                label = f"{name}, {np.dtype(dtype).name} {shape}"
                try:
                    got = _grads(torch, scan, args, dout, dlast, dtype)
                except Exception as error:  # noqa: BLE001 - report and carry on with the others
                    _fail(label, error, results, checks)
                    continue
                _report_grads(label, got, ref, dtype, results, checks)


def _official_scan(official):
    """mamba_ssm's ``selective_scan_fn`` with the course's keyword names (x, not u)."""

    def scan(x, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
             return_last_state=False):  # fmt: skip
        return official(x, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)

    return scan


def official_parity(torch, results, official, shapes=PARITY_SHAPES, checks=None):
    """mamba_ssm's CUDA ``selective_scan_fn`` (float32) against the NumPy reference, and the
    course's kernels against it, forward and backward (see the module doc, step 3)."""
    # after main() has set up the simulator / interpreter variables, which must precede the import
    from mamba_edu.kernels import selective_cpu, selective_cuda, selective_triton

    # the reference, and the build's refusal message: a script's imports (see the module doc)
    from mamba_edu import official_cuda, selective

    print("\nmamba_ssm's CUDA kernel (selective_scan_cuda, float32) as the yardstick")
    scan = _official_scan(official)
    for shape in shapes:
        args = _inputs(*shape)
        gpu = {k: _to_device(torch, v.astype(np.float32)) for k, v in args.items()}
        ref, ref_last = selective.selective_scan(
            **args, delta_softplus=True, return_last_state=True
        )
        try:
            out, last = (_host(a) for a in scan(**gpu, delta_softplus=True, return_last_state=True))
        except Exception as error:  # noqa: BLE001 - report and carry on with the others
            _fail(f"mamba_ssm CUDA {shape}", error, results, checks)
            continue
        _report(f"mamba_ssm CUDA vs NumPy reference {shape}", out, ref, results, checks)
        _report(f"mamba_ssm CUDA vs NumPy reference, last state {shape}", last, ref_last,
                results, checks)  # fmt: skip
        course = [
            ("numba-cuda kernel",
             lambda args=args: selective_cuda.selective_scan_fwd_cuda(
                 **{k: v.astype(np.float32) for k, v in args.items()}, delta_softplus=True)),
            ("Triton kernel",
             lambda gpu=gpu: selective_triton.selective_scan_fwd_triton(**gpu, delta_softplus=True)),
        ]  # fmt: skip
        for name, run in course:
            try:
                mine = _host(run()[0])
            except Exception as error:  # noqa: BLE001
                _fail(f"{name} vs mamba_ssm CUDA {shape}", error, results, checks)
                continue
            _report(f"{name} vs mamba_ssm CUDA {shape}", mine, out, results, checks)
        # gradients of Σ out·dout (mamba_ssm has no gradient for the last state)
        dout = np.random.default_rng(4).standard_normal(args["x"].shape)
        ref_grads = selective_cpu.selective_scan_bwd(dout, **args, delta_softplus=True)
        try:
            theirs = _grads(torch, scan, args, dout, None, np.float32)
        except Exception as error:  # noqa: BLE001
            _fail(f"mamba_ssm CUDA backward {shape}", error, results, checks)
            continue
        _report_grads(f"mamba_ssm CUDA backward vs CPU float64 backward {shape}", theirs,
                      ref_grads, np.float32, results, checks)  # fmt: skip
        yardstick = {"d" + k: v for k, v in theirs.items()}
        for name, course_scan in (
            ("numba-cuda backward", selective_cuda.selective_scan_cuda),
            ("Triton backward", selective_triton.selective_scan_triton),
        ):
            label = f"{name} vs mamba_ssm CUDA backward {shape}"
            try:
                got = _grads(torch, course_scan, args, dout, None, np.float32)
            except Exception as error:  # noqa: BLE001
                _fail(label, error, results, checks)
                continue
            _report_grads(label, got, yardstick, np.float32, results, checks)
    # the float32-only build refuses other dtypes with the shim's message, not a crash; the
    # binding wants x, Δ, z and the time-varying B, C in the input type, A, D, bias in float32
    half = {k: _to_device(torch, v.astype(np.float16 if k in INPUT_TYPED else np.float32))
            for k, v in _inputs(1, 4, 8, 2).items()}  # fmt: skip
    name = "mamba_ssm CUDA refuses float16 (float32-only build)"
    try:
        scan(**half, delta_softplus=True)
    except RuntimeError as error:
        ok = official_cuda.SHIM_MESSAGE in str(error)
        results.append(ok)
        if checks is not None:
            checks.append({"check": name, "ok": ok})
        print(f"  {'ok  ' if ok else 'FAIL'} {name}{'' if ok else ': ' + str(error)[:200]}")
    else:
        results.append(False)
        if checks is not None:
            checks.append({"check": name, "ok": False})
        print(f"  FAIL {name}: it returned a result")


def _time_gpu(torch, fn, budget=1.0):
    fn()
    _synchronize(torch)
    start = time.perf_counter()
    fn()
    _synchronize(torch)
    once = time.perf_counter() - start
    number = max(1, min(100, int(budget / max(once, 1e-6))))
    start = time.perf_counter()
    for _ in range(number):
        fn()
    _synchronize(torch)
    return (time.perf_counter() - start) / number


def copy_bandwidth(torch, nbytes=COPY_BYTES, repeats=10):
    """Bytes/s of a device-to-device copy of ``nbytes`` (counting the bytes read and the bytes
    written), the best of ``repeats`` timed copies after a warm-up: what this GPU's memory
    delivers to a plain stream, the practical ceiling of a memory-bound kernel."""
    n = max(1, nbytes // 4)
    src = torch.ones(n, dtype=torch.float32, device=DEVICE)
    dst = torch.empty_like(src)
    dst.copy_(src)
    _synchronize(torch)
    best = math.inf
    for _ in range(repeats):
        if DEVICE == "cuda":
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            dst.copy_(src)
            stop.record()
            stop.synchronize()
            seconds = start.elapsed_time(stop) / 1e3
        else:
            began = time.perf_counter()
            dst.copy_(src)
            seconds = time.perf_counter() - began
        best = min(best, seconds)
    del src, dst
    return 2 * n * 4 / best


def _row(shape, mode, name, seconds, peaks):
    moved = scan_bytes(*shape, backward=mode == "forward+backward")
    rate = moved / seconds
    row = {"shape": list(shape), "mode": mode, "implementation": name,
           "ms": round(seconds * 1e3, 4), "bytes": moved, "gb_per_s": round(rate / 1e9, 2)}  # fmt: skip
    for key, peak in peaks.items():
        row[f"fraction_of_{key}"] = None if not peak else round(rate / peak, 4)
    return row


def _print_row(row):
    fractions = " ".join(
        "   -  " if row[k] is None else f"{row[k]:6.1%}"
        for k in ("fraction_of_datasheet", "fraction_of_measured_copy")
    )
    print(f"  {str(tuple(row['shape'])):<22} {row['implementation']:<38} {row['ms']:9.3f} ms "
          f"{row['gb_per_s']:8.1f} {fractions}")  # fmt: skip


def _bench_header(title, official, why):
    print(f"\nbenchmark, {title} (time, achieved bandwidth in GB/s, fraction of peak)")
    if official is None:
        print(f"  (mamba_ssm selective_scan_cuda: not timed, {why})")
    print(f"  {'(batch, D, L, N)':<22} {'implementation':<38} {'time':>12} {'GB/s':>8} "
          f"{'sheet':>6} {'copy':>6}")  # fmt: skip


def benchmark(torch, shapes=BENCH_SHAPES, official=None, why="", peaks=None):
    """Forward, float32, D, z, Δ bias and softplus on: the rows of the table (also printed)."""
    # after main() has set up the simulator / interpreter variables, which must precede the import
    from mamba_edu.kernels import selective_cuda, selective_triton

    peaks = peaks or {}
    _bench_header("float32 forward with D, z, Δ bias and softplus", official, why)
    # D, z, bias, softplus: all on; no checkpoints (the forward alone, as in inference)
    flags = selective_cuda.cuda.to_device(np.array([1, 1, 1, 1, 0], np.int32))
    rows = []
    for shape in shapes:
        batch, dim, length, d_state = shape
        f32 = {k: v.astype(np.float32) for k, v in _inputs(*shape).items()}
        gpu = {k: _to_device(torch, v) for k, v in f32.items()}
        out = torch.empty_like(gpu["x"])
        last = torch.empty(batch, dim, d_state, device=DEVICE)
        dev = gpu if DEVICE == "cuda" else {k: v.numpy() for k, v in gpu.items()}  # simulator
        contenders = [
            ("numba-cuda chunked kernel", lambda g=dev, o=out, s=last: selective_cuda.launch(
                g["x"], g["delta"], g["A"], g["B"], g["C"], g["D"], g["z"], g["delta_bias"],
                flags, o if DEVICE == "cuda" else o.numpy(), s if DEVICE == "cuda" else s.numpy())),
            ("Triton kernel", lambda g=gpu: selective_triton.selective_scan_fwd_triton(
                **g, delta_softplus=True)),
        ]  # fmt: skip
        if official is not None:
            contenders.append(
                ("mamba_ssm selective_scan_cuda",
                 lambda g=gpu: official(*g.values(), delta_softplus=True))
            )  # fmt: skip
        rows += _time_contenders(torch, shape, "forward", contenders, peaks)
    return rows


def _time_contenders(torch, shape, mode, contenders, peaks):
    rows = []
    for name, fn in contenders:
        try:
            seconds = _time_gpu(torch, fn)
        except Exception as error:  # noqa: BLE001
            print(f"  {str(shape):<22} {name:<38} failed: {type(error).__name__}: {error}")
            continue
        rows.append(_row(shape, mode, name, seconds, peaks))
        _print_row(rows[-1])
    return rows


def benchmark_backward(torch, shapes=BENCH_SHAPES, official=None, why="", peaks=None):
    """Forward + backward through the autograd Functions, float32, all options on."""
    # after main() has set up the simulator / interpreter variables, which must precede the import
    from mamba_edu.kernels import selective_cuda, selective_triton

    peaks = peaks or {}
    _bench_header("float32 forward + backward (autograd), same options", official, why)
    rows = []
    for shape in shapes:
        f32 = {k: v.astype(np.float32) for k, v in _inputs(*shape).items()}
        leaves = {k: _to_device(torch, v).requires_grad_(True) for k, v in f32.items()}
        dout = torch.ones_like(leaves["x"])

        def step(scan, leaves=leaves, dout=dout):
            out = scan(*leaves.values(), delta_softplus=True)
            # autograd.grad: fresh gradients each call, none accumulated into .grad
            torch.autograd.grad(out, list(leaves.values()), dout)

        contenders = [
            ("numba-cuda fwd+bwd", lambda: step(selective_cuda.selective_scan_cuda)),
            ("Triton fwd+bwd", lambda: step(selective_triton.selective_scan_triton)),
        ]
        if official is not None:
            contenders.append(("mamba_ssm selective_scan_cuda fwd+bwd", lambda: step(official)))
        rows += _time_contenders(torch, shape, "forward+backward", contenders, peaks)
    return rows


# ----------------------------------------------------------------------------------------------
# mamba_ssm's extension: built here (real GPU), or a stand-in (--simulate)
# ----------------------------------------------------------------------------------------------


class OfficialBuild:
    """``python -m mamba_edu.official_cuda`` in a background process (its output goes to
    ``build.log`` in the build folder), so that nvcc compiles while the GPU checks run."""

    def __init__(self, sdist, build_dir, capability):
        from mamba_edu import official_cuda  # the builder: a script's import (module doc)

        official_cuda.check_sdist(sdist)  # fail now, not minutes later, on a missing file
        self.sdist, self.build_dir = Path(sdist), Path(build_dir)
        self.capability = tuple(capability)
        self.build_dir.mkdir(parents=True, exist_ok=True)
        self.log = self.build_dir / "build.log"
        command = [
            sys.executable, "-m", "mamba_edu.official_cuda", "--sdist", str(self.sdist),
            "--build-dir", str(self.build_dir), "--capability", "{}.{}".format(*self.capability),
        ]  # fmt: skip
        self.started = time.perf_counter()
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def finish(self, timeout=BUILD_TIMEOUT):
        """(the registered module, '') or (None, why); the module's build summary in ``info``."""
        from mamba_edu import official, official_cuda  # (as __init__: a script's import)

        left = max(1.0, timeout - (time.perf_counter() - self.started))
        try:
            code = self.process.wait(timeout=left)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None, f"the build did not finish in {timeout} s (log: {self.log})"
        seconds = time.perf_counter() - self.started
        if code != 0:
            tail = self.log.read_text(errors="replace").splitlines()[-15:]
            return None, f"the build failed (exit {code}), end of {self.log}:\n" + "\n".join(tail)
        try:  # finds the library built and up to date, and imports it
            module = official_cuda.build(self.sdist, self.build_dir, self.capability)
        except Exception as error:  # noqa: BLE001 - reported as the reason
            return None, f"loading the built extension failed: {type(error).__name__}: {error}"
        official.register_cuda_extension(module)
        self.info = {
            "seconds": round(seconds, 1),
            "capability": "{}.{}".format(*self.capability),
            "sources": [p.name for p in official_cuda.build_plan(
                self.build_dir / "csrc", self.capability).sources],
            "nvcc_flags": official_cuda.nvcc_flags(self.capability),
        }  # fmt: skip
        return module, ""


def simulated_extension(torch):
    """A stand-in for ``selective_scan_cuda`` on a CPU (``--simulate``): the official binding's
    ``fwd`` and ``bwd`` signatures and return values, computed by the course's CPU kernel, so
    that mamba_ssm's own autograd Function and this script's comparison code run unchanged. It
    refuses all but float32 inputs with the real build's message."""
    from mamba_edu.kernels import selective_cpu  # its arithmetic (a script's import)

    from mamba_edu import official_cuda  # the real build's refusal message (module doc)

    def numpy(t):
        return None if t is None else t.detach().cpu().numpy()

    def groups_of_one(t):  # mamba_ssm passes B and C as (batch, groups = 1, N, L)
        if t.dim() != 4 or t.shape[1] != 1:
            raise RuntimeError("the stand-in takes B and C of shape (batch, 1, N, L)")
        return numpy(t[:, 0])

    def check(u, delta, A, B, C, D, z, delta_bias):
        given = dict(u=u, delta=delta, A=A, B=B, C=C, D=D, z=z, delta_bias=delta_bias)
        for name, t in given.items():  # the binding's dtype rules (selective_scan.cpp)
            want = u.dtype if name in ("u", "delta", "B", "C", "z") else torch.float32
            if t is not None and t.dtype != want:
                raise RuntimeError(f"stand-in: expected {name} in {want}, got {t.dtype}")
        if u.dtype != torch.float32:
            raise RuntimeError(f"{official_cuda.SHIM_MESSAGE} (stand-in; got {u.dtype})")

    def fwd(u, delta, A, B, C, D, z, delta_bias, delta_softplus):
        check(u, delta, A, B, C, D, z, delta_bias)
        args = (numpy(u), numpy(delta), numpy(A), groups_of_one(B), groups_of_one(C), numpy(D))
        out, last = selective_cpu.selective_scan_fwd(
            *args, None, numpy(delta_bias), delta_softplus, dtype=np.float32
        )
        states = np.zeros((*last.shape[:2], 1, 2 * last.shape[2]), np.float32)
        states[..., 0, 1::2] = last  # mamba_ssm reads the last state as x[:, :, -1, 1::2]
        result = [torch.from_numpy(out), torch.from_numpy(states)]
        if z is not None:
            result.append(torch.from_numpy(out * numpy(z) / (1 + np.exp(-numpy(z)))))
        return result

    def bwd(u, delta, A, B, C, D, z, delta_bias, dout, x, out, dz, delta_softplus, recompute):
        check(u, delta, A, B, C, D, z, delta_bias)
        g = selective_cpu.selective_scan_bwd(
            numpy(dout), numpy(u), numpy(delta), numpy(A), groups_of_one(B), groups_of_one(C),
            numpy(D), numpy(z), numpy(delta_bias), delta_softplus, dtype=np.float32,
        )  # fmt: skip

        def tensor(key, like=None):
            value = g.get(key)
            if value is None:
                return None
            value = torch.from_numpy(np.ascontiguousarray(value, np.float32))
            return value[:, None] if like is not None else value

        grads = [tensor("dx"), tensor("ddelta"), tensor("dA"), tensor("dB", B),
                 tensor("dC", C), tensor("dD"), tensor("ddelta_bias")]  # fmt: skip
        return grads + ([tensor("dz")] if z is not None else [])

    module = types.ModuleType("selective_scan_cuda")
    module.fwd, module.bwd = fwd, bwd
    module.__doc__ = "gpu_check --simulate: a CPU stand-in for mamba_ssm's CUDA extension"
    return module


def _official(args, torch, build):
    """(mamba_ssm's selective_scan_fn, '') or (None, why) after the build (or stand-in)."""
    from mamba_edu import official  # the one adapter to mamba_ssm (see the module doc)

    ok, why = official.status()
    if not ok:
        return None, why
    if args.simulate:
        official.register_cuda_extension(simulated_extension(torch))
    elif build is not None:
        module, why = build.finish()
        if module is None:
            return None, why
    try:
        return official.selective_scan_fn(), ""
    except official.Unavailable as error:
        hint = "" if args.official_sdist else " (make gpu-check builds it: --official-sdist)"
        return None, f"{error}{hint}"


# ----------------------------------------------------------------------------------------------
# the record: data/gpu_check-GPU-DATE.json
# ----------------------------------------------------------------------------------------------


RECORD_KEYS = ("date_utc", "machine", "peak_bandwidth", "benchmark", "parity")


def record_path(folder, gpu_name, when):
    """``folder/gpu_check-<gpu>-<YYYY-MM-DD>.json``, the GPU's name in lower-case words joined
    by dashes ("NVIDIA H200" → nvidia-h200)."""
    slug = "-".join(re.findall(r"[a-z0-9]+", str(gpu_name).lower()))
    if not slug:
        raise ValueError(f"expected a GPU name with letters or digits, got {gpu_name!r}")
    return Path(folder) / f"gpu_check-{slug}-{when:%Y-%m-%d}.json"


def write_record(record, folder):
    """Write the run's record as indented JSON to :func:`record_path` (through a temporary file,
    so that an interrupted write leaves no half file); returns the path."""
    if not isinstance(record, dict):
        raise TypeError(f"expected the record as a dict, got {type(record).__name__}")
    missing = [key for key in RECORD_KEYS if key not in record]
    if missing:
        raise ValueError(f"the record lacks {', '.join(missing)}")
    gpu = record["machine"].get("gpu") if isinstance(record["machine"], dict) else None
    if not gpu:
        raise ValueError("the record's machine has no gpu name")
    when = datetime.fromisoformat(record["date_utc"])
    path = record_path(folder, gpu, when)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record, indent=1, allow_nan=False) + "\n"
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.replace(path)
    return path


def _version(name):
    import importlib.metadata  # only for the record's versions

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine(torch):
    """What the record says about where it ran."""
    from mamba_edu import bench  # the CPU's one-line summary: a script's import (module doc)

    info = {"cpu": bench.machine_summary(), "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__,
            "torch_cuda": torch.version.cuda, "triton": _version("triton"),
            "numba_cuda": _version("numba-cuda"), "numpy": np.__version__,
            "mamba_ssm": _version("mamba-ssm")}  # fmt: skip
    if DEVICE == "cuda":
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=torch.cuda.get_device_name(), multiprocessors=props.multi_processor_count,
                    memory_gib=round(props.total_memory / 2**30, 1),
                    capability="{}.{}".format(*torch.cuda.get_device_capability()))  # fmt: skip
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            query = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
            info["driver"] = subprocess.run(
                query, capture_output=True, text=True, timeout=20
            ).stdout.strip()
    else:
        info["gpu"] = "none (simulated on a CPU)"
    return info


# ----------------------------------------------------------------------------------------------
# the command line
# ----------------------------------------------------------------------------------------------


def _simulate_setup(torch) -> str:
    """Checks for --simulate; returns an error message or ''."""
    global DEVICE
    if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1" or os.environ.get("TRITON_INTERPRET") != "1":
        return "--simulate needs NUMBA_ENABLE_CUDASIM=1 and TRITON_INTERPRET=1 set before start"
    DEVICE = "cpu"
    real_device = torch.cuda.device
    torch.cuda.device = lambda index: (  # Triton kernels enter it; a no-op for CPU tensors
        contextlib.nullcontext() if index is None else real_device(index)
    )
    return ""


def main(argv=None) -> int:
    import argparse  # a command line's own import, kept with it

    parser = argparse.ArgumentParser(prog="python -m mamba_edu.kernels.gpu_check")
    parser.add_argument(
        "--simulate",
        action="store_true",
        help="run on a CPU under the CUDA simulator and Triton interpreter",
    )
    parser.add_argument(
        "--official-sdist",
        default=None,
        help="build mamba_ssm's selective_scan_cuda from this pinned sdist",
    )
    parser.add_argument(
        "--build-dir",
        default=str(ROOT / "build" / "selective_scan_cuda"),
        help="where the extension is built (kept: a second run reuses it)",
    )
    parser.add_argument("--data-dir", default=str(ROOT / "data"),
                        help="where the record gpu_check-GPU-DATE.json is written")  # fmt: skip
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:  # said plainly when missing, rather than a traceback at import
        import torch
    except ImportError:
        print("gpu-check: torch is not installed; run `make gpu-check`, which installs the pins")
        return 2
    if args.simulate:
        problem = _simulate_setup(torch)
        if problem:
            print(f"gpu-check: {problem}")
            return 2
        where = "a CPU, simulated (checks the script, not a GPU)"
    elif not torch.cuda.is_available():
        print(
            "gpu-check: no CUDA GPU is visible (torch.cuda.is_available() is False). Nothing to "
            "check here; on a CPU, `make test` runs the same kernels under the CUDA simulator and "
            "the Triton interpreter."
        )
        return 2
    else:
        where = torch.cuda.get_device_name()
    results: list[bool] = []
    checks: list[dict] = []
    build = None
    if args.official_sdist and not args.simulate:
        capability = torch.cuda.get_device_capability()
        try:
            build = OfficialBuild(args.official_sdist, args.build_dir, capability)
        except Exception as error:  # noqa: BLE001 - the course's checks still run
            _fail("mamba_ssm selective_scan_cuda build", error, results, checks)
        else:
            print(f"building mamba_ssm's selective_scan_cuda (float32, sm_{capability[0]}"
                  f"{capability[1]}) in the background, log: {build.log}")  # fmt: skip
    # after the simulator / interpreter variables are set (they must precede numba's import)
    from mamba_edu.kernels import available

    print(f"gpu-check on {where}, torch {torch.__version__}")
    for backend in available().values():
        print(f"  {backend}")
    simulate = args.simulate
    parity(torch, results, SIMULATED_PARITY_SHAPES if simulate else PARITY_SHAPES, checks)
    backward_parity(torch, results, SIMULATED_BACKWARD_SHAPES if simulate else PARITY_SHAPES,
                    checks)  # fmt: skip
    official, why = _official(args, torch, build)
    if official is None:
        print(f"\nmamba_ssm's CUDA kernel: not compared, {why}")
        if args.official_sdist:  # asked for and not there: a failure, not a skip
            results.append(False)
            checks.append({"check": "mamba_ssm selective_scan_cuda build", "error": why,
                           "ok": False})  # fmt: skip
    else:
        if build is not None:
            print(f"\nmamba_ssm's selective_scan_cuda built in {build.info['seconds']:.0f} s")
        official_parity(torch, results, official,
                        SIMULATED_BACKWARD_SHAPES if simulate else PARITY_SHAPES, checks)  # fmt: skip
    datasheet = None if simulate else datasheet_peak(where)
    copy = copy_bandwidth(torch, SIMULATED_COPY_BYTES if simulate else COPY_BYTES)
    print(f"\npeak memory bandwidth: datasheet "
          f"{'not in the table' if datasheet is None else f'{datasheet[0] / 1e9:.0f} GB/s'}; "
          f"measured copy {copy / 1e9:.0f} GB/s (read + write)")  # fmt: skip
    peaks = {"datasheet": None if datasheet is None else datasheet[0], "measured_copy": copy}
    record = {
        "tool": "python -m mamba_edu.kernels.gpu_check (make gpu-check)",
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "complete": False,  # until the last table is in: the record is saved after each one
        "machine": None if simulate else machine(torch),
        "peak_bandwidth": {
            "datasheet_gb_per_s": None if datasheet is None else datasheet[0] / 1e9,
            "datasheet_source": None if datasheet is None else datasheet[1],
            "measured_copy_gb_per_s": round(copy / 1e9, 1),
            "measured_copy_bytes": 2 * (SIMULATED_COPY_BYTES if simulate else COPY_BYTES),
        },
        "bytes_counted": BYTES_COUNTED,
        "benchmark": [],
        "official_build": getattr(build, "info", None) or {"error": why or "not built"},
        "parity": checks,
    }

    def save():
        failed = results.count(False)
        record.update(passed=len(results) - failed, failed=failed,
                      total_seconds=round(time.perf_counter() - started, 1))  # fmt: skip
        if not simulate:  # a simulated run measures no GPU: nothing to keep
            return write_record(record, args.data_dir)

    save()
    shapes = SIMULATED_BENCH_SHAPES if simulate else BENCH_SHAPES
    record["benchmark"] += benchmark(torch, shapes, official, why, peaks)
    save()
    record["benchmark"] += benchmark_backward(torch, shapes, official, why, peaks)
    record["complete"] = True
    path = save()
    if path is not None:
        print(f"\nrecord: {path}")
    failed = results.count(False)
    print(f"\n{len(results) - failed} passed, {failed} failed ({record['total_seconds']:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
