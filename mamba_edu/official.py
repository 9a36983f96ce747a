"""The one adapter that imports the official ``mamba_ssm`` (pinned 2.3.2.post1), also on a CPU.

The course checks its references against the official implementation (tests, ``bench``,
``kernels/gpu_check.py``, lesson 07). ``mamba_ssm`` is built for GPUs; on a machine without CUDA
it is installed with ``MAMBA_SKIP_CUDA_BUILD=TRUE MAMBA_FORCE_BUILD=TRUE`` and imported here with
a few small adaptations, all in this module and none in the course's own code:

* ``mamba_ssm/__init__.py`` imports every model and their heavy optional dependencies. The
  package is registered without running that file (a bare module whose ``__path__`` is the
  installed folder); submodules are imported one by one as callers ask for them.
* ``selective_scan_interface`` does ``import selective_scan_cuda`` (the compiled extension). When
  it is absent a stub module stands in; it raises if called. On a CPU the ``Mamba`` block's slow
  path calls ``selective_scan_fn``; :func:`mamba_block` points that name, in the block's module
  only, at the official pure-torch ``selective_scan_ref`` (same arguments, same mathematics).
  On a GPU, ``make gpu-check`` builds the extension's float32 part (:mod:`mamba_edu.official_cuda`)
  and :func:`register_cuda_extension` puts it where the stub was.
* Triton kernels (``selective_state_update``, ``mamba_chunk_scan_combined``) run on CPU tensors
  under ``TRITON_INTERPRET=1`` (set before triton is first imported). They enter
  ``torch.cuda.device(index)``, which needs CUDA: a null context for CPU tensors;
  ``torch.cuda.get_device_properties`` is stubbed; MAMBA_DETERMINISTIC=1 keeps autotuning to a
  single configuration where mamba_ssm honours it, and under the interpreter every autotuned
  kernel keeps only its first configuration (the Mamba-2 kernels list several, and timing them
  needs a GPU driver; any configuration computes the same values).
* RMSNorm and the fused add+norm are Triton kernels too: without a GPU they run the official
  ``rms_norm_ref`` / ``layer_norm_ref`` (pure torch, from the same file) instead.
* ``selective_scan_ref`` casts its inputs with ``.float()``; :func:`keep_float64` makes ``.float()``
  a no-op for float64 tensors while it is active, to run the official algorithm in double.

Use: ``ok, why = official.status()``; then the accessors (:func:`selective_scan_ref`, ...), which
raise :class:`Unavailable` with the reason when ``mamba_ssm`` cannot be imported.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import importlib.util
import os
import sys
import types
import warnings

__all__ = [
    "EXPECTED_VERSION",
    "Unavailable",
    "status",
    "load",
    "selective_scan_ref",
    "selective_scan_fn",
    "selective_state_update",
    "mamba_chunk_scan_combined",
    "ssd_minimal_discrete",
    "norm_kernels",
    "mamba_block",
    "mamba_lm",
    "keep_float64",
    "register_cuda_extension",
]

EXPECTED_VERSION = "2.3.2.post1"


class Unavailable(RuntimeError):
    """mamba_ssm cannot be used here; the message says why (not installed, wrong version, ...)."""


def status() -> tuple[bool, str]:
    """(usable?, why not): installed at the pinned version, with torch and einops importable."""
    try:
        version = importlib.metadata.version("mamba-ssm")
    except importlib.metadata.PackageNotFoundError:
        return False, (
            "mamba-ssm is not installed (make test installs it: MAMBA_SKIP_CUDA_BUILD=TRUE "
            "MAMBA_FORCE_BUILD=TRUE pip install --no-build-isolation mamba-ssm==2.3.2.post1)"
        )
    if version != EXPECTED_VERSION:
        return False, f"mamba-ssm {version} is installed; the course pins {EXPECTED_VERSION}"
    for dependency in ("torch", "einops"):
        if importlib.util.find_spec(dependency) is None:
            return False, f"mamba-ssm needs {dependency}, which is not installed"
    return True, ""


def _cuda_extension() -> bool:
    """Whether mamba_ssm's compiled CUDA extension is importable (a GPU build)."""
    module = sys.modules.get("selective_scan_cuda")
    if module is not None:
        return not getattr(module, "_mamba_edu_stub", False)
    return importlib.util.find_spec("selective_scan_cuda") is not None


def load() -> types.ModuleType:
    """Register the ``mamba_ssm`` package (without running its ``__init__``) and the CPU shims;
    returns the package. Raises :class:`Unavailable` with the reason when it cannot."""
    ok, why = status()
    if not ok:
        raise Unavailable(why)
    os.environ.setdefault("MAMBA_DETERMINISTIC", "1")  # one autotune configuration
    if "mamba_ssm" not in sys.modules:
        spec = importlib.util.find_spec("mamba_ssm")  # locates the folder, runs nothing
        package = types.ModuleType("mamba_ssm")
        package.__path__ = list(spec.submodule_search_locations)
        package.__spec__ = spec
        package.__version__ = EXPECTED_VERSION
        sys.modules["mamba_ssm"] = package
    if not _cuda_extension():
        stub = types.ModuleType("selective_scan_cuda")

        def _no_cuda(*args, **kwargs):
            raise RuntimeError(
                "selective_scan_cuda is a CPU stub: mamba_ssm's CUDA build is absent"
            )

        stub.fwd = stub.bwd = _no_cuda
        stub._mamba_edu_stub = True
        sys.modules["selective_scan_cuda"] = stub
    _patch_torch_cuda_for_cpu()
    _one_autotune_config_when_interpreting()
    return sys.modules["mamba_ssm"]


def register_cuda_extension(module: types.ModuleType) -> None:
    """Use ``module`` as mamba_ssm's ``selective_scan_cuda`` (a build of the GPU check,
    :mod:`mamba_edu.official_cuda`, or its CPU stand-in), also where the stub was imported."""
    if not callable(getattr(module, "fwd", None)) or not callable(getattr(module, "bwd", None)):
        raise TypeError(f"expected a selective_scan_cuda module with fwd and bwd, got {module!r}")
    sys.modules["selective_scan_cuda"] = module
    interface = sys.modules.get("mamba_ssm.ops.selective_scan_interface")
    if interface is not None:  # imported with the stub: it looks the name up at each call
        interface.selective_scan_cuda = module


def _one_autotune_config_when_interpreting() -> None:
    """Under TRITON_INTERPRET=1, ``triton.autotune`` keeps its first configuration only: with
    several it would time them, which needs a GPU driver. Set before mamba_ssm's Triton modules
    are imported (their decorators run then)."""
    if os.environ.get("TRITON_INTERPRET") != "1" or importlib.util.find_spec("triton") is None:
        return
    from triton.runtime import autotuner  # only under the interpreter, which imports triton anyway

    if getattr(autotuner.Autotuner, "_mamba_edu_one_config", False):
        return
    real_init = autotuner.Autotuner.__init__

    def init(self, fn, arg_names, configs, *args, **kwargs):
        real_init(self, fn, arg_names, list(configs)[:1], *args, **kwargs)

    autotuner.Autotuner.__init__ = init
    autotuner.Autotuner._mamba_edu_one_config = True


def _import(name: str) -> types.ModuleType:
    load()
    try:
        with warnings.catch_warnings():
            # MAMBA_DETERMINISTIC=1 makes mamba_ssm keep its cheapest autotune configuration,
            # and say once that TRITON_CACHE_AUTOTUNING=1 would time them all instead: the
            # course wants the single configuration, so the advice is not shown.
            warnings.filterwarnings("ignore", message="Deterministic mode: ")
            return importlib.import_module(name)
    except Exception as error:  # noqa: BLE001 - any import failure is reported, with its cause
        raise Unavailable(f"importing {name} failed: {type(error).__name__}: {error}") from error


def _patch_torch_cuda_for_cpu() -> None:
    import torch  # a dependency of mamba_ssm, imported only once it is asked for

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


def _reference_norms() -> None:
    """Without a GPU, RMSNorm and the fused add+norm run the official pure-torch references."""
    import torch  # a dependency of mamba_ssm, imported only once it is asked for

    if torch.cuda.is_available():
        return
    layer_norm = _import("mamba_ssm.ops.triton.layer_norm")
    if getattr(layer_norm, "_mamba_edu_reference", False):
        return
    # the Triton kernels stay reachable for their own parity tests (norm_kernels)
    layer_norm._mamba_edu_kernels = (layer_norm.layer_norm_fn, layer_norm.rms_norm_fn)

    def norm_fn(x, weight, bias, residual=None, *args, eps=1e-6, prenorm=False,
                residual_in_fp32=False, is_rms_norm=False, **kwargs):  # fmt: skip
        reference = layer_norm.rms_norm_ref if is_rms_norm else layer_norm.layer_norm_ref
        if residual is not None and residual_in_fp32:
            residual = residual.float()
        return reference(x, weight, bias, residual=residual, eps=eps, prenorm=prenorm, upcast=True)

    def rms_norm_fn(x, weight, bias, residual=None, *args, **kwargs):
        return norm_fn(x, weight, bias, residual, *args, is_rms_norm=True, **kwargs)

    layer_norm.layer_norm_fn = norm_fn
    layer_norm.rms_norm_fn = rms_norm_fn  # what RMSNorm.forward looks up
    layer_norm._mamba_edu_reference = True


def selective_scan_ref():
    """The official ``selective_scan_ref`` (pure torch): ``(u, delta, A, B, C, D=None, z=None,
    delta_bias=None, delta_softplus=False, return_last_state=False)``, layout (batch, D, L)."""
    return _import("mamba_ssm.ops.selective_scan_interface").selective_scan_ref


def selective_scan_fn():
    """The official fused CUDA ``selective_scan_fn``; raises :class:`Unavailable` without the
    compiled extension (a CPU install)."""
    load()
    if not _cuda_extension():
        raise Unavailable("mamba_ssm's CUDA extension (selective_scan_cuda) is not built here")
    return _import("mamba_ssm.ops.selective_scan_interface").selective_scan_fn


def selective_state_update():
    """(the official Triton ``selective_state_update``, its torch ``selective_state_update_ref``).
    Without a GPU, set TRITON_INTERPRET=1 before triton is first imported."""
    module = _import("mamba_ssm.ops.triton.selective_state_update")
    return module.selective_state_update, module.selective_state_update_ref


def mamba_chunk_scan_combined():
    """The official Triton SSD (Mamba-2) ``mamba_chunk_scan_combined``; under the interpreter
    without a GPU (TRITON_INTERPRET=1 before triton is first imported)."""
    return _import("mamba_ssm.ops.triton.ssd_combined").mamba_chunk_scan_combined


def ssd_minimal_discrete():
    """The official minimal SSD (Mamba-2 paper, Listing 1; pure torch):
    ``ssd_minimal_discrete(X, A, B, C, block_len, initial_states=None)`` → (Y, final_state), with
    X (batch, L, heads, head_dim) already multiplied by Δ, A (batch, L, heads) = Δ·A per step,
    B, C (batch, L, heads, N); L a multiple of block_len."""
    return _import("mamba_ssm.modules.ssd_minimal").ssd_minimal_discrete


def norm_kernels():
    """(the official Triton ``layer_norm_fn``, ``rms_norm_fn``), the fused norms of
    ``mamba_ssm.ops.triton.layer_norm`` (even where :func:`mamba_block` has pointed the module's
    names at the pure-torch references for a CPU run). Without a GPU, set TRITON_INTERPRET=1
    before triton is first imported."""
    module = _import("mamba_ssm.ops.triton.layer_norm")
    kernels = getattr(module, "_mamba_edu_kernels", None)
    return kernels if kernels is not None else (module.layer_norm_fn, module.rms_norm_fn)


def mamba_block():
    """The official ``mamba_ssm.modules.mamba_simple.Mamba`` class. Without the CUDA extension
    its forward takes the slow path (no causal_conv1d) whose ``selective_scan_fn`` is pointed at
    ``selective_scan_ref``; construct it with ``use_fast_path=False`` to say so explicitly.
    Without a GPU its ``step`` runs its pure-torch branch (see :func:`_reference_step`)."""
    module = _import("mamba_ssm.modules.mamba_simple")
    if not _cuda_extension():
        module.selective_scan_fn = selective_scan_ref()
    _reference_step(module)
    _reference_norms()
    return module.Mamba


def _reference_step(module) -> None:
    """Without a GPU, ``Mamba.step`` (one token of generation) takes its own pure-torch branch,
    which it runs when ``selective_state_update`` is None, instead of the Triton kernel: that
    kernel would need TRITON_INTERPRET=1 set before triton is first imported, and it computes the
    same update (:func:`selective_state_update` still returns the kernel for its own tests)."""
    import torch  # a dependency of mamba_ssm, imported only once it is asked for

    if not torch.cuda.is_available():
        module.selective_state_update = None


def mamba_lm():
    """(``MambaLMHeadModel``, ``MambaConfig``) from ``mamba_ssm.models``; on a CPU with the
    reference norms and the block's reference scan (see :func:`mamba_block`)."""
    mamba_block()
    module = _import("mamba_ssm.models.mixer_seq_simple")
    config = _import("mamba_ssm.models.config_mamba")
    block = _import("mamba_ssm.modules.block")
    layer_norm = _import("mamba_ssm.ops.triton.layer_norm")
    for user in (module, block):  # they imported the Triton functions by name
        user.layer_norm_fn = layer_norm.layer_norm_fn
        if hasattr(user, "rms_norm_fn"):
            user.rms_norm_fn = layer_norm.rms_norm_fn
    return module.MambaLMHeadModel, config.MambaConfig


@contextlib.contextmanager
def keep_float64():
    """While active, ``tensor.float()`` leaves float64 tensors in float64 (see the module doc)."""
    import torch  # a dependency of mamba_ssm, imported only once it is asked for

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
