"""`make gpu-check` (python -m mamba_edu.kernels.gpu_check): the parity suite on a real CUDA GPU,
then a benchmark table against mamba_ssm's CUDA selective_scan_fn, in a few minutes.

1. Parity: the NumPy reference (float64) against the numba-cuda kernel, the Triton kernel and,
   when its CUDA build is present, mamba_ssm's ``selective_scan_fn``; and one decode step against
   mamba_ssm's Triton ``selective_state_update``. float32 tolerance: the official rtol 6e-4,
   atol 2e-3.
2. Backward parity: the gradients of the numba-cuda and Triton backward kernels (through their
   autograd Functions) against the CPU kernel's hand-derived backward in float64 (itself tested
   against torch autograd): float64 kernels to 1e-10 relative, float32 at the official tolerance
   (atol scaled by the gradient's largest entry).
3. Benchmark (float32): forward, and forward + backward, time per call and achieved memory
   bandwidth (bytes that must cross global memory: forward x, Δ, z read, y written, B and C
   read; fwd+bwd adds the backward's reads of those and dout, and its writes of dx, dΔ, dz, dB,
   dC: the least a fused pair moves; divided by the time).

On a machine without a CUDA GPU it says so and exits with status 2. It installs nothing.

A script, not part of the kernels' import graph: nothing imports it, and it imports the NumPy
reference (``mamba_edu.selective``) and the official adapter (``mamba_edu.official``) inside the
functions that use them, so that ``import mamba_edu.kernels`` never pulls them in.
"""

from __future__ import annotations

import contextlib
import os
import time

import numpy as np

PARITY_SHAPES = [(2, 96, 300, 16), (1, 40, 1, 4), (3, 130, 77, 64)]  # (batch, D, L, N)
BENCH_SHAPES = [(1, 256, 2048, 16), (8, 1024, 2048, 16), (8, 2048, 4096, 16)]
RTOL, ATOL = 6e-4, 2e-3
# --simulate: the same script on a CPU (CUDA simulator, Triton interpreter), tiny shapes. It
# checks the script itself, not the GPU; `make test` runs it.
SIMULATED_PARITY_SHAPES = [(2, 70, 37, 5), (1, 3, 1, 4)]
SIMULATED_BACKWARD_SHAPES = [(1, 6, 9, 3)]  # the script, not the kernels: tests/ cover those
SIMULATED_BENCH_SHAPES = [(1, 8, 16, 4)]
DEVICE = "cuda"


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


def _official_cuda():
    """mamba_ssm's CUDA selective_scan_fn, or the reason it is absent."""
    from mamba_edu import official  # the one adapter to mamba_ssm (see the module doc)

    try:
        return official.selective_scan_fn(), ""
    except official.Unavailable as error:
        return None, str(error)


def _official_state_update():
    from mamba_edu import official  # the one adapter to mamba_ssm (see the module doc)

    try:
        return official.selective_state_update()[0], ""
    except official.Unavailable as error:
        return None, str(error)


def _report(name, got, expected, results):
    got = np.asarray(got, dtype=np.float64)
    diff = float(np.max(np.abs(got - expected))) if got.size else 0.0
    ok = got.shape == expected.shape and np.allclose(got, expected, rtol=RTOL, atol=ATOL)
    results.append(ok)
    print(f"  {'ok  ' if ok else 'FAIL'} {name:<58} max |diff| {diff:.2e}")


def parity(torch, results, shapes=PARITY_SHAPES):
    # after main() has set up the simulator / interpreter variables, which must precede the import
    from mamba_edu.kernels import selective_cuda, selective_triton

    from mamba_edu import selective  # the reference: a script's import, see the module doc

    official, why_official = _official_cuda()
    print("parity against the NumPy reference (float64), float32 kernels on the GPU")
    if official is None:
        print(f"  (mamba_ssm selective_scan_fn: skipped, {why_official})")
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
        if official is not None:
            runs.append(
                ("mamba_ssm selective_scan_fn (CUDA)",
                 lambda gpu=gpu: official(*gpu.values(), delta_softplus=True, return_last_state=True))
            )  # fmt: skip
        for name, run in runs:
            try:
                out, last = (_host(a) for a in run())
            except Exception as error:  # noqa: BLE001 - report and carry on with the others
                results.append(False)
                print(f"  FAIL {name} {shape}: {type(error).__name__}: {error}")
                continue
            _report(f"{name} {shape}", out, ref, results)
            _report(f"{name}, last state {shape}", last, ref_last, results)
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
    try:
        out = update(state, t["x"], t["delta"], t["A"], t["B"], t["C"], D=t["D"], z=t["z"],
                     dt_bias=t["delta_bias"], dt_softplus=True)  # fmt: skip
    except Exception as error:  # noqa: BLE001
        results.append(False)
        print(f"  FAIL mamba_ssm Triton selective_state_update: {type(error).__name__}: {error}")
        return
    _report("mamba_ssm Triton selective_state_update, output", out.cpu().numpy(), y, results)
    _report("mamba_ssm Triton selective_state_update, state", state.cpu().numpy(), new_state,
            results)  # fmt: skip


GRAD_NAMES = ("x", "delta", "A", "B", "C", "D", "z", "delta_bias")


def _grads(torch, scan, args, dout, dlast, dtype, **kwargs):
    """Gradients of Σ out·dout + Σ last·dlast through ``scan`` (an autograd Function's wrapper)."""
    tensors = {k: _to_device(torch, v.astype(dtype)).requires_grad_(True) for k, v in args.items()}
    out, last = scan(**tensors, delta_softplus=True, return_last_state=True, **kwargs)
    loss = (out * _to_device(torch, dout.astype(dtype))).sum()
    loss = loss + (last * _to_device(torch, dlast.astype(dtype))).sum()
    loss.backward()
    return {k: _host(t.grad) for k, t in tensors.items()}


def _report_grads(name, got, expected, dtype, results):
    """One line for all the gradients of one run: ok when every one is within tolerance (float64:
    1e-10 relative; float32: rtol 6e-4, atol 2e-3 times the gradient's largest entry); the
    largest difference relative to its gradient's largest entry, and which gradient it was."""
    worst, worst_name, ok = 0.0, "", True
    for key in GRAD_NAMES:
        want = expected["d" + key]
        have = np.asarray(got[key], dtype=np.float64)
        scale = max(float(np.max(np.abs(want))), 1e-300)
        if dtype == np.float64:
            ok &= bool(np.allclose(have, want, rtol=1e-10, atol=1e-10 * scale))
        else:
            ok &= bool(np.allclose(have, want, rtol=RTOL, atol=ATOL * max(1.0, scale)))
        diff = float(np.max(np.abs(have - want))) / scale
        if diff >= worst:
            worst, worst_name = diff, key
    results.append(ok)
    print(f"  {'ok  ' if ok else 'FAIL'} {name:<58} max rel. diff {worst:.2e} (d{worst_name})")


def backward_parity(torch, results, shapes=PARITY_SHAPES):
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
                    results.append(False)
                    print(f"  FAIL {label}: {type(error).__name__}: {error}")
                    continue
                _report_grads(label, got, ref, dtype, results)


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


def benchmark(torch, shapes=BENCH_SHAPES):
    # after main() has set up the simulator / interpreter variables, which must precede the import
    from mamba_edu.kernels import selective_cuda, selective_triton

    official, why_official = _official_cuda()
    print("\nbenchmark, float32 forward with D, z, Δ bias and softplus (time, achieved bandwidth)")
    if official is None:
        print(f"  (mamba_ssm selective_scan_fn: not timed, {why_official})")
    print(f"  {'(batch, D, L, N)':<22} {'implementation':<32} {'time':>10} {'GB/s':>8}")
    # D, z, bias, softplus: all on; no checkpoints (the forward alone, as in inference)
    flags = selective_cuda.cuda.to_device(np.array([1, 1, 1, 1, 0], np.int32))
    for shape in shapes:
        batch, dim, length, d_state = shape
        f32 = {k: v.astype(np.float32) for k, v in _inputs(*shape).items()}
        gpu = {k: _to_device(torch, v) for k, v in f32.items()}
        out = torch.empty_like(gpu["x"])
        last = torch.empty(batch, dim, d_state, device=DEVICE)
        dev = gpu if DEVICE == "cuda" else {k: v.numpy() for k, v in gpu.items()}  # simulator
        moved = 4 * (4 * batch * dim * length + 2 * batch * d_state * length)  # bytes
        contenders = [
            ("numba-cuda chunked kernel", lambda g=dev, o=out, s=last: selective_cuda.launch(
                g["x"], g["delta"], g["A"], g["B"], g["C"], g["D"], g["z"], g["delta_bias"],
                flags, o if DEVICE == "cuda" else o.numpy(), s if DEVICE == "cuda" else s.numpy())),
            ("Triton kernel", lambda g=gpu: selective_triton.selective_scan_fwd_triton(
                **g, delta_softplus=True)),
        ]  # fmt: skip
        if official is not None:
            contenders.append(
                (
                    "mamba_ssm selective_scan_fn",
                    lambda g=gpu: official(*g.values(), delta_softplus=True),
                )
            )
        for name, fn in contenders:
            try:
                seconds = _time_gpu(torch, fn)
            except Exception as error:  # noqa: BLE001
                print(f"  {str(shape):<22} {name:<32} failed: {type(error).__name__}: {error}")
                continue
            print(
                f"  {str(shape):<22} {name:<32} {seconds * 1e3:7.3f} ms {moved / seconds / 1e9:8.1f}"
            )


def benchmark_backward(torch, shapes=BENCH_SHAPES):
    """Forward + backward through the autograd Functions, float32, all options on."""
    # after main() has set up the simulator / interpreter variables, which must precede the import
    from mamba_edu.kernels import selective_cuda, selective_triton

    official, why_official = _official_cuda()
    print("\nbenchmark, float32 forward + backward (autograd), same options (time, bandwidth)")
    if official is None:
        print(f"  (mamba_ssm selective_scan_fn: not timed, {why_official})")
    print(f"  {'(batch, D, L, N)':<22} {'implementation':<32} {'time':>10} {'GB/s':>8}")
    for shape in shapes:
        batch, dim, length, d_state = shape
        f32 = {k: v.astype(np.float32) for k, v in _inputs(*shape).items()}
        leaves = {k: _to_device(torch, v).requires_grad_(True) for k, v in f32.items()}
        dout = torch.ones_like(leaves["x"])
        # the least a fused forward + backward moves: forward reads x, Δ, z, B, C and writes y;
        # backward reads x, Δ, z, dout, B, C and writes dx, dΔ, dz, dB, dC (float32)
        moved = 4 * ((4 + 7) * batch * dim * length + (2 + 4) * batch * d_state * length)

        def step(scan, leaves=leaves, dout=dout):
            out = scan(**leaves, delta_softplus=True)
            out.backward(dout)

        contenders = [
            ("numba-cuda fwd+bwd", lambda: step(selective_cuda.selective_scan_cuda)),
            ("Triton fwd+bwd", lambda: step(selective_triton.selective_scan_triton)),
        ]
        if official is not None:
            contenders.append(
                ("mamba_ssm selective_scan_fn fwd+bwd",
                 lambda t=leaves, g=dout: official(*t.values(), delta_softplus=True).backward(g))
            )  # fmt: skip
        for name, fn in contenders:
            try:
                seconds = _time_gpu(torch, fn)
            except Exception as error:  # noqa: BLE001
                print(f"  {str(shape):<22} {name:<32} failed: {type(error).__name__}: {error}")
                continue
            print(
                f"  {str(shape):<22} {name:<32} {seconds * 1e3:7.3f} ms {moved / seconds / 1e9:8.1f}"
            )


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
    parser.add_argument("--simulate", action="store_true",
                        help="run on a CPU under the CUDA simulator and Triton interpreter")  # fmt: skip
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
    # after the simulator / interpreter variables are set (they must precede numba's import)
    from mamba_edu.kernels import available

    print(f"gpu-check on {where}, torch {torch.__version__}")
    for backend in available().values():
        print(f"  {backend}")
    results: list[bool] = []
    parity(torch, results, SIMULATED_PARITY_SHAPES if args.simulate else PARITY_SHAPES)
    backward_parity(torch, results, SIMULATED_BACKWARD_SHAPES if args.simulate else PARITY_SHAPES)
    benchmark(torch, SIMULATED_BENCH_SHAPES if args.simulate else BENCH_SHAPES)
    benchmark_backward(torch, SIMULATED_BENCH_SHAPES if args.simulate else BENCH_SHAPES)
    failed = results.count(False)
    print(
        f"\n{len(results) - failed} passed, {failed} failed ({time.perf_counter() - started:.0f} s)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
