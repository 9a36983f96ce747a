"""Test-only adapter: import the official mamba_ssm (2.3.2.post1) on a machine without CUDA.

mamba_ssm is built for GPUs. To use its reference code and its Triton kernels on a CPU we need
a few small adaptations, all of them here and none in the course's own code:

* ``mamba_ssm/__init__.py`` imports every model (Mamba2, Mamba3, ...) and their heavy optional
  dependencies. We register the package without running that file (a bare module whose
  ``__path__`` is the installed folder) and import only the submodules we compare with.
* ``selective_scan_interface`` does ``import selective_scan_cuda`` (the compiled extension,
  absent when installed with MAMBA_SKIP_CUDA_BUILD=TRUE): a stub module that raises if used.
* Triton kernels: under ``TRITON_INTERPRET=1`` (set before triton is first imported) they run on
  CPU tensors. They enter ``torch.cuda.device(index)``, which needs CUDA: replaced by a null
  context for CPU tensors; ``torch.cuda.get_device_properties`` is stubbed; MAMBA_DETERMINISTIC=1
  keeps autotuning to a single configuration.
* ``selective_scan_ref`` casts its inputs with ``.float()`` (float32). :func:`keep_float64`
  turns ``.float()`` into a no-op for float64 tensors while it is active, so the official
  algorithm can also be run, unchanged, in double precision.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import importlib.util
import os
import sys
import types

EXPECTED_VERSION = "2.3.2.post1"


def status() -> tuple[bool, str]:
    """(installed at the pinned version?, why not)."""
    try:
        version = importlib.metadata.version("mamba-ssm")
    except importlib.metadata.PackageNotFoundError:
        return False, "mamba-ssm is not installed (make test installs it; see the Makefile)"
    if version != EXPECTED_VERSION:
        return False, f"mamba-ssm {version} is installed, the parity suite pins {EXPECTED_VERSION}"
    return True, ""


def _register_package() -> None:
    if "mamba_ssm" in sys.modules:
        return
    spec = importlib.util.find_spec("mamba_ssm")  # locates the folder, runs nothing
    package = types.ModuleType("mamba_ssm")
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    package.__version__ = importlib.metadata.version("mamba-ssm")
    sys.modules["mamba_ssm"] = package
    if "selective_scan_cuda" not in sys.modules:
        stub = types.ModuleType("selective_scan_cuda")

        def _no_cuda(*args, **kwargs):
            raise RuntimeError(
                "selective_scan_cuda is a CPU stub: mamba_ssm's CUDA build is absent"
            )

        stub.fwd = stub.bwd = _no_cuda
        sys.modules["selective_scan_cuda"] = stub


def _patch_torch_cuda_for_cpu() -> None:
    import torch

    if getattr(torch.cuda, "_mamba_edu_cpu_patch", False) or torch.cuda.is_available():
        return
    real_device = torch.cuda.device

    def device(index):
        return contextlib.nullcontext() if index is None else real_device(index)

    def get_device_properties(*args, **kwargs):
        return types.SimpleNamespace(
            name="CPU (Triton interpreter)", multi_processor_count=1, major=8, minor=0,
            total_memory=0, regs_per_multiprocessor=65536, max_shared_memory_per_block_optin=101376,
        )  # fmt: skip

    torch.cuda.device = device
    torch.cuda.get_device_properties = get_device_properties
    torch.cuda._mamba_edu_cpu_patch = True


def _deterministic() -> None:
    os.environ.setdefault("MAMBA_DETERMINISTIC", "1")
    os.environ.setdefault("TRITON_CACHE_AUTOTUNING", "1")  # else mamba_ssm warns about it


def selective_scan_ref():
    """The official ``selective_scan_ref`` (pure torch)."""
    _deterministic()
    _register_package()
    module = importlib.import_module("mamba_ssm.ops.selective_scan_interface")
    return module.selective_scan_ref


def selective_state_update():
    """The official Triton ``selective_state_update`` and its torch ``_ref``; the caller must have
    set TRITON_INTERPRET=1 before triton was first imported when there is no GPU."""
    _deterministic()
    _register_package()
    _patch_torch_cuda_for_cpu()
    module = importlib.import_module("mamba_ssm.ops.triton.selective_state_update")
    return module.selective_state_update, module.selective_state_update_ref


@contextlib.contextmanager
def keep_float64():
    """While active, ``tensor.float()`` leaves float64 tensors in float64 (see module docstring)."""
    import torch

    real_float = torch.Tensor.float

    def float_keeping_double(self, *args, **kwargs):
        if self.dtype == torch.float64:
            return self
        return real_float(self, *args, **kwargs)

    torch.Tensor.float = float_keeping_double
    try:
        yield
    finally:
        torch.Tensor.float = real_float
