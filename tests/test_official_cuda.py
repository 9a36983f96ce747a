"""The float32 build of mamba_ssm's ``selective_scan_cuda`` (mamba_edu/official_cuda.py), as far as
a CPU can check it: the source selection, the shim for the instantiations left out, the flags,
the sdist checks, and how the build refuses to run without a GPU or a CUDA toolkit.

The compile itself needs nvcc and minutes; it runs in ``make gpu-check`` on a GPU. Here the
pinned sdist (``make install-test`` downloads it to build/sources/) is read for facts: which
(input, weight) types the bindings dispatch to, which ones the float32 files compile, and the
nvcc flags of its setup.py. Without the sdist these tests skip, except under CI or
MAMBA_EDU_REQUIRE_PARITY=1, where a missing sdist is a failure.
"""

import ast
import os
import sys
import tarfile
import types

import pytest
import torch

from mamba_edu import official, official_cuda

FLOAT, HALF, BF16, COMPLEX = "float", "at::Half", "at::BFloat16", "c10::complex<float>"


@pytest.fixture(scope="module")
def sdist():
    path = official_cuda.DEFAULT_SDIST
    if not path.is_file():
        why = f"{path} is absent (make install-test or make gpu-sources downloads it)"
        if os.environ.get("CI") or os.environ.get("MAMBA_EDU_REQUIRE_PARITY") == "1":
            pytest.fail(why)
        pytest.skip(why)
    return path


@pytest.fixture(scope="module")
def sources(sdist, tmp_path_factory):
    return official_cuda.extract_sources(sdist, tmp_path_factory.mktemp("official"))


def test_arch_flags_name_exactly_one_architecture():
    assert official_cuda.arch_flags((9, 0)) == ["-gencode", "arch=compute_90,code=sm_90"]
    assert official_cuda.arch_flags((8, 6)) == ["-gencode", "arch=compute_86,code=sm_86"]
    assert official_cuda.arch_flags([12, 0]) == ["-gencode", "arch=compute_120,code=sm_120"]


@pytest.mark.parametrize(
    "bad, message",
    [
        ((9,), "two ints"),
        ("9.0", "two ints"),
        ((9.0, 0), "two ints"),
        ((True, 0), "two ints"),
        ((6, 1), "from 7.0 to 12.x, got 6.1"),
        ((9, -1), "got 9.-1"),
    ],
)
def test_arch_flags_refuse_a_bad_capability(bad, message):
    with pytest.raises(ValueError, match=message):
        official_cuda.arch_flags(bad)


def test_parse_capability():
    assert official_cuda.parse_capability("9.0") == (9, 0)
    assert official_cuda.parse_capability(" 12.1 ") == (12, 1)
    for bad in ("sm_90", "9", "9.0.1", ""):
        with pytest.raises(ValueError, match="like 9.0"):
            official_cuda.parse_capability(bad)


def _setup_nvcc_flags(setup_py: str) -> list[str]:
    """The literal nvcc flags in mamba_ssm's setup.py (the CUDA branch: the list passed to
    append_nvcc_threads), read with ast."""
    for node in ast.walk(ast.parse(setup_py)):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", None) == "append_nvcc_threads"
            and isinstance(node.args[0], ast.BinOp)
        ):
            return [ast.literal_eval(e) for e in node.args[0].left.elts]
    raise AssertionError("no append_nvcc_threads([...] + cc_flag) call in setup.py")


def test_nvcc_flags_are_setup_pys_minus_the_documented_ones_plus_one_arch(sdist):
    with tarfile.open(sdist) as archive:
        setup_py = archive.extractfile("mamba_ssm-2.3.2.post1/setup.py").read().decode()
    theirs = _setup_nvcc_flags(setup_py)
    dropped = {"--ptxas-options=-v", "-lineinfo", "-std=c++17"}  # see the module's doc
    assert dropped <= set(theirs)
    ours = official_cuda.nvcc_flags((9, 0))
    assert ours == [f for f in theirs if f not in dropped] + official_cuda.arch_flags((9, 0))
    assert ours.count("-gencode") == 1


def test_the_bindings_dispatch_twelve_type_pairs_and_float32_files_compile_three(sources):
    cpp = (sources / "selective_scan.cpp").read_text()
    wanted = official_cuda.dispatched_pairs(cpp)
    assert wanted == {
        (d, i, w) for d in ("fwd", "bwd") for i in (FLOAT, HALF, BF16) for w in (FLOAT, COMPLEX)
    }
    have = official_cuda.compiled_pairs(
        (sources / name).read_text() for name in official_cuda.OFFICIAL_SOURCES[1:]
    )
    # the fp32 forward file compiles complex A too; the backward file real A only
    assert have == {("fwd", FLOAT, FLOAT), ("fwd", FLOAT, COMPLEX), ("bwd", FLOAT, FLOAT)}
    missing = official_cuda.missing_pairs(sources)
    assert set(missing) == wanted - have and len(missing) == 9


def test_the_half_precision_files_are_what_the_shim_replaces(sources):
    """The sdist's own fp16/bf16/complex files instantiate exactly the pairs the shim defines:
    the shim stands in for them, no more, no less."""
    others = sorted(sources.glob("selective_scan_*.cu"))
    others = [p for p in others if p.name not in official_cuda.OFFICIAL_SOURCES]
    assert len(others) == 7  # 2 forward + 5 backward files left out
    assert official_cuda.compiled_pairs(p.read_text() for p in others) == set(
        official_cuda.missing_pairs(sources)
    )


def test_dispatch_reader_on_a_small_made_up_binding():
    cpp = (
        "#define DISPATCH_I(ITYPE, NAME, ...) \\\n"
        "    if (ITYPE == a) { using input_t = at::Half; __VA_ARGS__(); } \\\n"
        "    else { using input_t = float; __VA_ARGS__(); }\n"
        "#define DISPATCH_W(WTYPE, NAME, ...) \\\n"
        "    { using weight_t = float; __VA_ARGS__(); }\n"
        'DISPATCH_I(u.scalar_type(), "selective_scan_fwd", [&] {\n'
        '    DISPATCH_W(A.scalar_type(), "selective_scan_fwd", [&] { f(); }); });\n'
        'DISPATCH_I(u.scalar_type(), "selective_scan_bwd", [&] {\n'
        '    DISPATCH_W(A.scalar_type(), "selective_scan_bwd", [&] { f(); }); });\n'
    )
    assert official_cuda.dispatched_pairs(cpp) == {
        ("fwd", HALF, FLOAT), ("fwd", FLOAT, FLOAT), ("bwd", HALF, FLOAT), ("bwd", FLOAT, FLOAT)
    }  # fmt: skip
    with pytest.raises(official_cuda.BuildError, match="dispatch"):
        official_cuda.dispatched_pairs("int main() {}")
    with pytest.raises(official_cuda.BuildError, match="unexpected type 'double'"):
        official_cuda.dispatched_pairs(cpp.replace("at::Half", "double"))


def test_shim_defines_each_missing_pair_once_and_nothing_else(sources):
    missing = official_cuda.missing_pairs(sources)
    text = official_cuda.shim_source(missing)
    for direction, input_t, weight_t in missing:
        params = official_cuda.PARAMS[direction]
        head = f"void selective_scan_{direction}_cuda<{input_t}, {weight_t}>({params} &"
        assert text.count(head) == 1, head
    assert text.count("template <>") == len(missing)
    assert text.count(f'TORCH_CHECK(false, "{official_cuda.SHIM_MESSAGE}') == len(missing)
    assert "selective_scan_fwd_cuda<float, float>(" not in text
    assert "selective_scan_bwd_cuda<float, float>(" not in text
    with pytest.raises(ValueError, match="unexpected instantiation"):
        official_cuda.shim_source([("fwd", "double", FLOAT)])


def test_build_plan_lists_the_float32_sources_and_writes_the_shim(sources):
    plan = official_cuda.build_plan(sources, (9, 0))
    assert [p.name for p in plan.sources] == [
        *official_cuda.OFFICIAL_SOURCES,
        "float32_only_shim.cpp",
    ]
    assert all(p.is_file() for p in plan.sources)
    shim = plan.sources[-1]
    assert shim.read_text() == official_cuda.shim_source(official_cuda.missing_pairs(sources))
    assert plan.cuda_flags[-2:] == ("-gencode", "arch=compute_90,code=sm_90")
    assert plan.include_dir == sources
    stamp = shim.stat().st_mtime_ns
    official_cuda.build_plan(sources, (9, 0))  # unchanged: not rewritten (ninja rebuilds nothing)
    assert shim.stat().st_mtime_ns == stamp


def test_extract_takes_only_the_selective_scan_folder_and_keeps_unchanged_files(sdist, tmp_path):
    out = official_cuda.extract_sources(sdist, tmp_path)
    assert out == tmp_path / "csrc"
    names = {p.name for p in out.iterdir()}
    assert set(official_cuda.OFFICIAL_SOURCES) <= names and "setup.py" not in names
    assert all(p.suffix in {".cpp", ".h", ".cu", ".cuh"} for p in out.iterdir())
    stamp = (out / "selective_scan.cpp").stat().st_mtime_ns
    official_cuda.extract_sources(sdist, tmp_path)
    assert (out / "selective_scan.cpp").stat().st_mtime_ns == stamp


def test_check_sdist_refuses_a_missing_or_different_file(tmp_path):
    with pytest.raises(official_cuda.BuildError, match="make gpu-sources"):
        official_cuda.check_sdist(tmp_path / official_cuda.SDIST_NAME)
    other = tmp_path / official_cuda.SDIST_NAME
    other.write_bytes(b"not the sdist")
    with pytest.raises(official_cuda.BuildError, match="not the pinned .*sha256"):
        official_cuda.check_sdist(other)
    assert official_cuda.main(["--check-sdist", "--sdist", str(other)]) == 2


def test_the_pinned_sdist_passes_its_check(sdist, capsys):
    assert official_cuda.check_sdist(sdist) == sdist
    assert official_cuda.main(["--check-sdist", "--sdist", str(sdist)]) == 0
    assert "the pinned mamba_ssm-2.3.2.post1.tar.gz" in capsys.readouterr().out


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusals on a CPU-only torch")
def test_build_refuses_without_a_gpu_or_a_cuda_toolkit(sdist, tmp_path):
    with pytest.raises(official_cuda.BuildError, match="no CUDA GPU is visible"):
        official_cuda.build(sdist, tmp_path)
    from torch.utils import cpp_extension  # as official_cuda does

    if cpp_extension.CUDA_HOME is None:  # a CPU build of torch has no CUDA toolkit to use
        with pytest.raises(official_cuda.BuildError, match="no CUDA toolkit"):
            official_cuda.build(sdist, tmp_path, capability=(9, 0))


def test_register_cuda_extension_replaces_the_stub_everywhere(monkeypatch):
    ok, why = official.status()
    if not ok:
        if os.environ.get("CI") or os.environ.get("MAMBA_EDU_REQUIRE_PARITY") == "1":
            pytest.fail(why)
        pytest.skip(why)
    official.load()
    interface = official._import("mamba_ssm.ops.selective_scan_interface")
    monkeypatch.setitem(sys.modules, "selective_scan_cuda", sys.modules["selective_scan_cuda"])
    monkeypatch.setattr(interface, "selective_scan_cuda", interface.selective_scan_cuda)
    fake = types.ModuleType("selective_scan_cuda")
    fake.fwd = fake.bwd = lambda *args: None
    official.register_cuda_extension(fake)
    assert sys.modules["selective_scan_cuda"] is fake
    assert interface.selective_scan_cuda is fake
    assert official._cuda_extension()
    with pytest.raises(TypeError, match="with fwd and bwd"):
        official.register_cuda_extension(types.ModuleType("empty"))
