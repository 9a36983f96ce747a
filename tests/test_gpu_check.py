"""The arithmetic and the record of `make gpu-check` (kernels/gpu_check.py), on a CPU: the bytes a
scan moves (against a count of the arrays a real scan reads and writes), the datasheet peaks, the
bandwidth fractions and the JSON record. The script as a whole runs in --simulate mode in
tests/test_selective_gpu_kernels.py.
"""

import json
import math
import types
from datetime import UTC, datetime

import numpy as np
import pytest
import torch
from mamba_edu.kernels import gpu_check, selective_cpu

from mamba_edu import selective


@pytest.mark.parametrize("shape", [(2, 5, 7, 3), (1, 1, 1, 1), (3, 4, 33, 16)])
def test_scan_bytes_counts_the_arrays_a_scan_reads_and_writes(shape):
    """Independent count: the nbytes of the float32 inputs, of the output the reference returns,
    of dout and of the gradients the backward returns."""
    inputs = selective.random_inputs(*shape, dtype=np.float32)
    out = selective.selective_scan(**inputs, delta_softplus=True).astype(np.float32)
    read = sum(a.nbytes for a in inputs.values())
    assert gpu_check.scan_bytes(*shape) == read + out.nbytes
    dout = np.ones_like(out)
    grads = selective_cpu.selective_scan_bwd(dout, **inputs, delta_softplus=True)
    assert set(grads) == {"d" + k for k in inputs}  # one gradient per input
    backward = read + dout.nbytes + sum(g.astype(np.float32).nbytes for g in grads.values())
    assert gpu_check.scan_bytes(*shape, backward=True) == read + out.nbytes + backward


def test_scan_bytes_at_the_benchmark_shape_and_against_lesson_08s_model():
    batch, dim, length, n = 8, 2048, 4096, 16
    bdl, bnl = batch * dim * length, batch * n * length
    forward = 4 * (4 * bdl + 2 * bnl + dim * n + 2 * dim)
    assert gpu_check.scan_bytes(batch, dim, length, n) == forward == 1_078_083_584
    assert gpu_check.scan_bytes(batch, dim, length, n, backward=True) == forward + 4 * (
        (4 + 3) * bdl + (2 + 2) * bnl + 2 * (dim * n + 2 * dim)
    )
    # lesson 08's fused count leaves out D and the Δ bias (2·D numbers)
    fused = selective.scan_io_bytes(batch, dim, length, n)[1]
    assert gpu_check.scan_bytes(batch, dim, length, n) == fused + 2 * dim * 4
    assert gpu_check.scan_bytes(1, 2, 3, 4, itemsize=8) == 2 * gpu_check.scan_bytes(1, 2, 3, 4)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "8", None])
def test_scan_bytes_refuses_bad_sizes(bad):
    with pytest.raises(ValueError, match="expected length to be a positive int"):
        gpu_check.scan_bytes(1, 2, bad, 4)


@pytest.mark.parametrize(
    "name, peak",
    [
        ("NVIDIA H200", 4.8e12),
        ("NVIDIA H200 NVL", 4.8e12),
        ("NVIDIA H100 80GB HBM3", 3.35e12),
        ("NVIDIA H100 PCIe", 2.0e12),
        ("NVIDIA H100 NVL", 3.9e12),
        ("NVIDIA A100-SXM4-80GB", 2.039e12),
        ("NVIDIA A100 80GB PCIe", 1.935e12),
        ("NVIDIA A100-SXM4-40GB", 1.555e12),
        ("NVIDIA A100-PCIE-40GB", 1.555e12),
    ],
)
def test_datasheet_peaks(name, peak):
    found, source = gpu_check.datasheet_peak(name)
    assert found == peak
    assert "datasheet" in source


def test_datasheet_peak_of_an_unknown_gpu_or_a_bad_name():
    assert gpu_check.datasheet_peak("NVIDIA GeForce RTX 4090") is None
    with pytest.raises(TypeError, match="GPU's name as a str"):
        gpu_check.datasheet_peak(None)


def test_benchmark_row_fractions():
    shape = (8, 2048, 4096, 16)
    peaks = {"datasheet": 4.8e12, "measured_copy": None}
    row = gpu_check._row(shape, "forward", "Triton kernel", 2e-3, peaks)
    rate = gpu_check.scan_bytes(*shape) / 2e-3
    assert row["bytes"] == gpu_check.scan_bytes(*shape)
    assert row["gb_per_s"] == round(rate / 1e9, 2)
    assert row["fraction_of_datasheet"] == round(rate / 4.8e12, 4)
    assert row["fraction_of_measured_copy"] is None
    both = gpu_check._row(shape, "forward+backward", "x", 1.0, {"datasheet": 1e12})
    assert both["bytes"] == gpu_check.scan_bytes(*shape, backward=True)


def test_copy_bandwidth_counts_read_and_write(monkeypatch):
    monkeypatch.setattr(gpu_check, "DEVICE", "cpu")
    rate = gpu_check.copy_bandwidth(torch, nbytes=1 << 20, repeats=3)
    assert math.isfinite(rate) and rate > 1e6  # bytes/s: a megabyte copied in well under a second


def _record(**changes):
    record = {
        "date_utc": "2026-12-01T07:00:00+00:00",
        "machine": {"gpu": "NVIDIA H200"},
        "peak_bandwidth": {"datasheet_gb_per_s": 4800.0, "measured_copy_gb_per_s": 4300.0},
        "benchmark": [{"shape": [8, 2048, 4096, 16], "implementation": "Triton kernel"}],
        "parity": [{"check": "Triton kernel (2, 96, 300, 16)", "ok": True}],
    }
    record.update(changes)
    return record


def test_write_record_names_the_gpu_and_date_and_round_trips(tmp_path):
    path = gpu_check.write_record(_record(), tmp_path / "data")
    assert path == tmp_path / "data" / "gpu_check-nvidia-h200-2026-12-01.json"
    assert json.loads(path.read_text()) == _record()
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no partial file left
    assert gpu_check.record_path(
        tmp_path, "NVIDIA A100-SXM4-80GB", datetime(2027, 1, 2, tzinfo=UTC)
    ).name == ("gpu_check-nvidia-a100-sxm4-80gb-2027-01-02.json")


def test_write_record_refuses_incomplete_or_non_json_records(tmp_path):
    with pytest.raises(ValueError, match="lacks benchmark"):
        gpu_check.write_record({k: v for k, v in _record().items() if k != "benchmark"}, tmp_path)
    with pytest.raises(ValueError, match="no gpu name"):
        gpu_check.write_record(_record(machine={"cpu": "x"}), tmp_path)
    with pytest.raises(ValueError, match="Out of range float"):
        gpu_check.write_record(_record(benchmark=[{"ms": float("nan")}]), tmp_path)
    with pytest.raises(TypeError, match="record as a dict"):
        gpu_check.write_record([], tmp_path)
    with pytest.raises(ValueError, match="letters or digits"):
        gpu_check.record_path(tmp_path, "--", datetime(2026, 1, 1))
    assert list(tmp_path.iterdir()) == []


def test_machine_describes_the_gpu(monkeypatch, tmp_path):
    """The record's machine on a GPU, with a stand-in for torch's CUDA queries (no nvidia-smi
    here: the driver is then left out, not an error)."""
    props = types.SimpleNamespace(multi_processor_count=132, total_memory=143 * 2**30)
    fake = types.SimpleNamespace(
        __version__="2.11.0+cu130",
        version=types.SimpleNamespace(cuda="13.0"),
        cuda=types.SimpleNamespace(
            get_device_properties=lambda index: props,
            get_device_name=lambda: "NVIDIA H200",
            get_device_capability=lambda: (9, 0),
        ),
    )
    monkeypatch.setattr(gpu_check, "DEVICE", "cuda")
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi
    info = gpu_check.machine(fake)
    assert info["gpu"] == "NVIDIA H200" and info["capability"] == "9.0"
    assert info["multiprocessors"] == 132 and info["memory_gib"] == 143.0
    assert info["torch"] == "2.11.0+cu130" and info["torch_cuda"] == "13.0"
    assert "driver" not in info and info["mamba_ssm"] == "2.3.2.post1"
    path = gpu_check.write_record(_record(machine=info), tmp_path / "data")
    assert path.name == "gpu_check-nvidia-h200-2026-12-01.json"


def test_official_build_refuses_a_missing_sdist(tmp_path):
    from mamba_edu import official_cuda

    with pytest.raises(official_cuda.BuildError, match="make gpu-sources"):
        gpu_check.OfficialBuild(tmp_path / "none.tar.gz", tmp_path / "build", (9, 0))
    assert not (tmp_path / "build").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a build that fails for want of CUDA")
def test_official_build_in_the_background_reports_a_failed_build(tmp_path):
    """The background build's plumbing: the child process runs the builder, which fails on this
    CPU-only torch; finish() returns no module and the end of the build log as the reason."""
    from mamba_edu import official_cuda

    if not official_cuda.DEFAULT_SDIST.is_file():
        pytest.skip("no sdist (make gpu-sources)")
    build = gpu_check.OfficialBuild(official_cuda.DEFAULT_SDIST, tmp_path, (9, 0))
    module, why = build.finish(timeout=120)
    assert module is None
    assert "the build failed (exit 2)" in why and "torch finds no CUDA toolkit" in why
    assert build.log.is_file()
