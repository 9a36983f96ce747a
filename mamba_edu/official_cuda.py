"""Build ``mamba_ssm``'s CUDA extension ``selective_scan_cuda``, float32 only, for the GPU at hand.

The course installs ``mamba_ssm`` without its CUDA build (``MAMBA_SKIP_CUDA_BUILD=TRUE``): the
full build compiles ten CUDA files for up to ten GPU architectures, about half an hour. The GPU
check (``make gpu-check``, ``kernels/gpu_check.py``) needs only the float32 kernels, for one
architecture, so it builds just that, from the pinned source distribution, which the Makefile
downloads at install time (``build/sources/``; the GPU machine may have no network):

* sources (:func:`build_plan`): ``selective_scan.cpp`` (the Python bindings: argument checks and
  the dispatch on dtypes), ``selective_scan_fwd_fp32.cu`` (forward, float32 inputs with real and
  complex A) and ``selective_scan_bwd_fp32_real.cu`` (backward, float32, real A), from
  ``csrc/selective_scan/`` of the source distribution, unchanged;
* the dispatch in ``selective_scan.cpp`` names every (input type, weight type) pair: float32,
  float16 and bfloat16 inputs, each with real or complex weights, forward and backward. The pairs
  not compiled would be undefined symbols, and Python refuses to import a library with undefined
  symbols. :func:`shim_source` writes a small C++ file, ours, that defines each missing pair as a
  function raising a clear error (a float16 call says the build is float32 only);
* flags (:func:`nvcc_flags`): those of mamba_ssm's ``setup.py`` for nvcc, without its verbose
  ptxas report and the ``-lineinfo`` debugging table, and one ``-gencode`` for this GPU's compute
  capability (:func:`arch_flags`) instead of its list of ten. The C++ standard is left to torch's
  loader, which picks the one its own headers need.

:func:`build` compiles with ``torch.utils.cpp_extension.load`` (ninja, every core; the ninja
of the pip package beside the running python is used when none is on PATH), then
registers the module as ``selective_scan_cuda``, the name ``mamba_ssm`` imports; call it before
anything imports ``mamba_ssm.ops.selective_scan_interface`` (``mamba_edu.official`` puts a stub
there otherwise). ``python -m mamba_edu.official_cuda --sdist PATH --build-dir DIR`` builds it in
a process of its own (the GPU check runs that in the background while it tests the course's
kernels).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "SDIST_NAME",
    "SDIST_SHA256",
    "OFFICIAL_SOURCES",
    "SHIM_MESSAGE",
    "BuildError",
    "check_sdist",
    "extract_sources",
    "arch_flags",
    "nvcc_flags",
    "parse_capability",
    "dispatched_pairs",
    "compiled_pairs",
    "missing_pairs",
    "shim_source",
    "BuildPlan",
    "build_plan",
    "build",
    "main",
]

ROOT = Path(__file__).resolve().parents[1]
SDIST_NAME = "mamba_ssm-2.3.2.post1.tar.gz"
# the file PyPI serves for mamba-ssm==2.3.2.post1 (checked when downloaded on 2026-12-01)
SDIST_SHA256 = "104cc47e9101e5401a675fa2b784f2952b9b037f3b1dd83b5ac544394e95d028"
DEFAULT_SDIST = ROOT / "build" / "sources" / SDIST_NAME
DEFAULT_BUILD_DIR = ROOT / "build" / "selective_scan_cuda"
SOURCE_FOLDER = "csrc/selective_scan"
MODULE_NAME = "selective_scan_cuda"
# the bindings and the float32 instantiations, as the source distribution has them
OFFICIAL_SOURCES = (
    "selective_scan.cpp",
    "selective_scan_fwd_fp32.cu",
    "selective_scan_bwd_fp32_real.cu",
)
SHIM_FILE = "float32_only_shim.cpp"
SHIM_MESSAGE = "this build of selective_scan_cuda (mamba-edu) has float32 kernels only"
# C++ spellings of the dispatched types, normalized (the .cu files write complex_t, an alias)
TYPE_NAMES = {
    "float": "float",
    "at::Half": "at::Half",
    "at::BFloat16": "at::BFloat16",
    "c10::complex<float>": "c10::complex<float>",
    "complex_t": "c10::complex<float>",
}
PARAMS = {"fwd": "SSMParamsBase", "bwd": "SSMParamsBwd"}
# mamba_ssm's setup.py, nvcc part (CUDA branch), minus "--ptxas-options=-v", "-lineinfo" and
# "--threads 4" (one architecture here); -std is torch's loader's choice (see the module doc)
SETUP_NVCC_FLAGS = (
    "-O3",
    "-U__CUDA_NO_HALF_OPERATORS__",
    "-U__CUDA_NO_HALF_CONVERSIONS__",
    "-U__CUDA_NO_BFLOAT16_OPERATORS__",
    "-U__CUDA_NO_BFLOAT16_CONVERSIONS__",
    "-U__CUDA_NO_BFLOAT162_OPERATORS__",
    "-U__CUDA_NO_BFLOAT162_CONVERSIONS__",
    "--expt-relaxed-constexpr",
    "--expt-extended-lambda",
    "--use_fast_math",
)
CXX_FLAGS = ("-O3",)


class BuildError(RuntimeError):
    """The extension cannot be built here; the message says why and what to do."""


def check_sdist(path) -> Path:
    """The source distribution at ``path``, after checking that it is the pinned file."""
    path = Path(path)
    if not path.is_file():
        raise BuildError(
            f"mamba_ssm's source distribution is not at {path}: `make gpu-sources` downloads it "
            f"(on a machine with network; the GPU check carries build/sources/ to the GPU)"
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        raise BuildError(
            f"{path} is not the pinned {SDIST_NAME}: sha256 {digest}, expected {SDIST_SHA256}"
        )
    return path


def extract_sources(sdist, dest) -> Path:
    """Extract ``csrc/selective_scan/`` of the (checked) source distribution into ``dest``;
    returns that folder. Only regular files of that folder are taken."""
    sdist, dest = check_sdist(sdist), Path(dest)
    out = dest / "csrc"
    out.mkdir(parents=True, exist_ok=True)
    taken = 0
    with tarfile.open(sdist, "r:gz") as archive:
        for member in archive.getmembers():
            parts = Path(member.name).parts  # mamba_ssm-2.3.2.post1/csrc/selective_scan/NAME
            if len(parts) != 4 or "/".join(parts[1:3]) != SOURCE_FOLDER or not member.isfile():
                continue
            target = out / parts[3]
            data = archive.extractfile(member).read()
            if not target.exists() or target.read_bytes() != data:  # keep ninja's timestamps
                target.write_bytes(data)
            taken += 1
    missing = [name for name in OFFICIAL_SOURCES if not (out / name).is_file()]
    if not taken or missing:
        raise BuildError(f"{sdist} has no {SOURCE_FOLDER}/{missing or ''}: not a usable sdist")
    return out


def parse_capability(text) -> tuple[int, int]:
    """``"9.0"`` → (9, 0): a compute capability written major.minor."""
    match = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", str(text))
    if not match:
        raise ValueError(f"expected a compute capability like 9.0, got {text!r}")
    return int(match[1]), int(match[2])


def arch_flags(capability) -> list[str]:
    """nvcc's flags for exactly one GPU architecture, from ``torch.cuda.get_device_capability()``:
    (9, 0) → ``-gencode arch=compute_90,code=sm_90`` (machine code for that GPU, no PTX)."""
    if (
        not isinstance(capability, tuple | list)
        or len(capability) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in capability)
    ):
        raise ValueError(f"expected a capability (major, minor) of two ints, got {capability!r}")
    major, minor = capability
    if not 7 <= major <= 12 or not 0 <= minor <= 9:
        # mamba_ssm's setup.py builds sm_75 and newer; 7.0 (V100) still compiles
        raise ValueError(f"expected a compute capability from 7.0 to 12.x, got {major}.{minor}")
    return ["-gencode", f"arch=compute_{major}{minor},code=sm_{major}{minor}"]


def nvcc_flags(capability) -> list[str]:
    """Every flag the CUDA files are compiled with (torch's loader adds its include paths)."""
    return [*SETUP_NVCC_FLAGS, *arch_flags(capability)]


_MACRO = re.compile(r"#define\s+(\w+)\(\w+,\s*NAME,\s*\.\.\.\)((?:[^\n]*\\\n)+[^\n]*)")
_USING = re.compile(r"using\s+(input_t|weight_t)\s*=\s*([^;]+);")
_CALL = re.compile(r"(\w+)\(\s*\w+\.scalar_type\(\),\s*\"selective_scan_(fwd|bwd)\"")
_INSTANCE = re.compile(r"template\s+void\s+selective_scan_(fwd|bwd)_cuda<\s*([^,>]+),\s*([^>]+)>")


def _type(name: str) -> str:
    name = " ".join(name.split())
    if name not in TYPE_NAMES:
        raise BuildError(f"unexpected type {name!r} in mamba_ssm's selective scan sources")
    return TYPE_NAMES[name]


def dispatched_pairs(cpp_text: str) -> set[tuple[str, str, str]]:
    """The (direction, input type, weight type) triples that ``selective_scan.cpp`` calls, read
    from its dispatch macros: every input type of the outer macro with every weight type of the
    inner one, for ``selective_scan_fwd`` and ``selective_scan_bwd``."""
    macros = {}
    for name, body in _MACRO.findall(cpp_text):
        macros[name] = [(role, _type(value)) for role, value in _USING.findall(body)]
    calls: dict[str, list[str]] = {}
    for macro, direction in _CALL.findall(cpp_text):
        calls.setdefault(direction, []).append(macro)
    pairs = set()
    for direction, used in calls.items():
        inputs = [t for m in used for role, t in macros.get(m, []) if role == "input_t"]
        weights = [t for m in used for role, t in macros.get(m, []) if role == "weight_t"]
        pairs |= {(direction, i, w) for i in inputs for w in weights}
    if {d for d, _, _ in pairs} != {"fwd", "bwd"}:
        raise BuildError("could not read the dtype dispatch of selective_scan.cpp")
    return pairs


def compiled_pairs(cu_texts) -> set[tuple[str, str, str]]:
    """The (direction, input type, weight type) triples that CUDA files instantiate."""
    found = {
        (direction, _type(i), _type(w))
        for text in cu_texts
        for direction, i, w in _INSTANCE.findall(text)
    }
    if not found:
        raise BuildError("no selective_scan_*_cuda instantiation found in the CUDA files")
    return found


def missing_pairs(source_dir) -> list[tuple[str, str, str]]:
    """What the bindings dispatch to but the float32 files do not compile, in a fixed order."""
    source_dir = Path(source_dir)
    wanted = dispatched_pairs((source_dir / OFFICIAL_SOURCES[0]).read_text())
    have = compiled_pairs((source_dir / name).read_text() for name in OFFICIAL_SOURCES[1:])
    if not have <= wanted:
        raise BuildError(f"the CUDA files instantiate {sorted(have - wanted)}, never dispatched")
    return sorted(wanted - have)


def shim_source(missing) -> str:
    """C++ defining each missing (direction, input, weight) instantiation as a function that
    raises ``SHIM_MESSAGE`` (an explicit specialization has the symbol the dispatch links to)."""
    lines = [
        "// Written by mamba_edu.official_cuda: the instantiations this float32-only build of",
        "// selective_scan_cuda leaves out, each raising a clear error instead of being",
        "// an undefined symbol.",
        "#include <cstdint>",
        "#include <cuda_runtime_api.h>",
        "#include <c10/util/BFloat16.h>",
        "#include <c10/util/Exception.h>",
        "#include <c10/util/Half.h>",
        "#include <c10/util/complex.h>",
        '#include "selective_scan.h"',
        "",
    ]
    for direction, params in PARAMS.items():
        lines += [
            "template <typename input_t, typename weight_t>",
            f"void selective_scan_{direction}_cuda({params} &params, cudaStream_t stream);",
            "",
        ]
    for direction, input_t, weight_t in missing:
        if direction not in PARAMS or input_t not in TYPE_NAMES or weight_t not in TYPE_NAMES:
            raise ValueError(f"unexpected instantiation {(direction, input_t, weight_t)!r}")
        lines += [
            "template <>",
            f"void selective_scan_{direction}_cuda<{input_t}, {weight_t}>("
            f"{PARAMS[direction]} &, cudaStream_t) {{",
            f'    TORCH_CHECK(false, "{SHIM_MESSAGE}: no {direction} kernel for input type '
            f'{input_t} with weights {weight_t}");',
            "}",
            "",
        ]
    return "\n".join(lines)


@dataclass(frozen=True)
class BuildPlan:
    """What :func:`build` compiles: sources in order, flags, the include folder."""

    sources: tuple[Path, ...]
    cuda_flags: tuple[str, ...]
    cxx_flags: tuple[str, ...]
    include_dir: Path


def build_plan(source_dir, capability) -> BuildPlan:
    """The build of the float32 extension for one compute capability, from the extracted
    ``csrc/selective_scan`` folder; writes the shim there (unchanged files are not rewritten)."""
    source_dir = Path(source_dir)
    shim = source_dir / SHIM_FILE
    text = shim_source(missing_pairs(source_dir))
    if not shim.exists() or shim.read_text() != text:
        shim.write_text(text)
    return BuildPlan(
        sources=(*(source_dir / name for name in OFFICIAL_SOURCES), shim),
        cuda_flags=tuple(nvcc_flags(capability)),
        cxx_flags=CXX_FLAGS,
        include_dir=source_dir,
    )


def build(sdist=DEFAULT_SDIST, build_dir=DEFAULT_BUILD_DIR, capability=None, verbose=False):
    """Build (or find built) the float32 ``selective_scan_cuda`` for ``capability`` (default:
    this GPU's), register it in ``sys.modules`` and return it. Needs CUDA's nvcc and ninja."""
    import torch  # a GPU build's own dependency, imported when a build is asked for
    from torch.utils import cpp_extension  # part of torch: the JIT extension builder

    if capability is None:
        if not torch.cuda.is_available():
            raise BuildError("no CUDA GPU is visible: give the compute capability to build for")
        capability = torch.cuda.get_device_capability()
    if getattr(cpp_extension, "CUDA_HOME", None) is None:
        raise BuildError("torch finds no CUDA toolkit (nvcc); is this torch a CUDA build?")
    here = Path(sys.executable).parent  # a venv's ninja (the pip package) beside its python
    if shutil.which("ninja") is None and (here / "ninja").is_file():
        os.environ["PATH"] = f"{here}{os.pathsep}{os.environ.get('PATH', '')}"
    build_dir = Path(build_dir)
    plan = build_plan(extract_sources(sdist, build_dir), tuple(capability))
    out = build_dir / "sm_{}{}".format(*capability)
    out.mkdir(parents=True, exist_ok=True)
    module = cpp_extension.load(
        name=MODULE_NAME,
        sources=[str(p) for p in plan.sources],
        extra_cflags=list(plan.cxx_flags),
        extra_cuda_cflags=list(plan.cuda_flags),
        extra_include_paths=[str(plan.include_dir)],
        build_directory=str(out),
        verbose=verbose,
    )
    sys.modules[MODULE_NAME] = module
    return module


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mamba_edu.official_cuda",
        description="build mamba_ssm's selective_scan_cuda, float32 only, for one GPU",
    )
    parser.add_argument("--sdist", default=str(DEFAULT_SDIST), help="the pinned sdist (.tar.gz)")
    parser.add_argument("--build-dir", default=str(DEFAULT_BUILD_DIR))
    parser.add_argument("--capability", type=parse_capability, default=None,
                        help="compute capability major.minor (default: this GPU's)")  # fmt: skip
    parser.add_argument("--check-sdist", action="store_true",
                        help="only check that --sdist is the pinned file")  # fmt: skip
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        if args.check_sdist:
            check_sdist(args.sdist)
            print(f"{args.sdist}: the pinned {SDIST_NAME}")
            return 0
        module = build(args.sdist, args.build_dir, args.capability, verbose=True)
    except BuildError as error:
        print(f"official_cuda: {error}")
        return 2
    print(f"built {module.__file__} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
