"""mamba_edu.experiments.lm_benchmark in its --quick form: the record's provenance, every
contender in every unit, positive speeds that follow from the recorded times."""

from __future__ import annotations

import datetime
import json
import statistics
import time

import pytest
import torch

import mamba_edu
from mamba_edu import bench, experiments, official
from mamba_edu.experiments import lm_benchmark


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    out = tmp_path_factory.mktemp("lm") / "lm_benchmark.json"
    threads = torch.get_num_threads()
    result = experiments.run("lm_benchmark", quick=True, out=out, progress=False)
    assert torch.get_num_threads() == threads  # the run restores the caller's setting
    assert json.loads(out.read_text()) == result
    return result


def test_registered_for_mamba_edu_run():
    assert experiments.get("lm_benchmark") is lm_benchmark
    cfg = lm_benchmark.config(quick=False)
    # the configuration the issue asks for
    assert (cfg["batch"], cfg["n_layer"]) == (12, 4)
    assert (cfg["d_models"], cfg["lengths"]) == ([128, 256], [64, 256])
    assert len(lm_benchmark.units(cfg)) == 4 + 2


def test_quick_record_has_provenance(record):
    assert record["experiment"] == "lm_benchmark" and record["quick"] is True
    assert record["command"].startswith("mamba-edu run lm_benchmark --quick")
    assert record["machine"] == bench.machine_summary()
    assert record["torch"] == torch.__version__ and record["mamba_edu"] == mamba_edu.__version__
    written = datetime.datetime.strptime(record["date_utc"], "%Y-%m-%dT%H:%M:%SZ")
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    assert abs((now - written).total_seconds()) < 3600
    assert record["config"] == lm_benchmark.config(quick=True)


def test_every_contender_timed_with_positive_numbers(record):
    cfg = record["config"]
    assert list(record["units"]) == lm_benchmark.units(cfg)
    mamba_ssm_here = official.status()[0]
    for unit, result in record["units"].items():
        for key in ("conditions_before", "conditions_after"):
            conditions = result[key]
            assert conditions["torch_threads"] == cfg["torch_threads"]
            assert (
                conditions["numba_threads"] == cfg["numba_threads"]
                and conditions["load_average"] >= 0
            )
        rows = {row["name"]: row for row in result["rows"]}
        assert list(rows) == list(lm_benchmark.CONTENDERS), unit
        for name, row in rows.items():
            if name.startswith("mamba_ssm") and not mamba_ssm_here:
                assert row["tokens_per_s"] is None and row["note"]
                continue
            times = row["seconds"]
            assert len(times) == cfg["rounds"] and all(t > 0 for t in times), (unit, name)
            per_round = cfg["batch"] * (
                result["L"] if result["kind"] == "train" else cfg["gen_steps"]
            )
            assert row["tokens_per_s"] == pytest.approx(
                per_round / statistics.median(times), rel=1e-3, abs=0.051
            )  # tokens/s is stored to 0.1
            assert row["time_vs_ours"] > 0 and row["parameters"] > 0
            # quick: min_time 0, so one call per round, and that call is the first call
            assert row["calls"] == [1] * cfg["rounds"], (unit, name)
            assert row["first_call_seconds"] == times
            assert row["time_vs_ours_first_call"] == row["time_vs_ours"]
        ours = rows[lm_benchmark.OURS]
        assert ours["time_vs_ours"] == 1.0
        if mamba_ssm_here:  # the official model holds our weights: the same parameters
            assert rows[lm_benchmark.CONTENDERS[2]]["parameters"] == ours["parameters"]
        transformer = rows[lm_benchmark.CONTENDERS[3]]["parameters"]
        assert abs(transformer - ours["parameters"]) <= 0.05 * ours["parameters"]


def test_rounds_repeat_calls_until_min_time_and_do_not_time_prepare():
    """A job whose call takes ~10 ms is repeated until 60 ms are timed; the per-call time is
    their mean; the untimed prepare() (30 ms) counts in neither; the first call is kept."""
    log = []

    def slow_prepare():
        time.sleep(0.03)
        return "state"

    def run(state=None):
        log.append(state)
        time.sleep(0.01)

    jobs = {"fast": (None, run), "prepared": (slow_prepare, run)}
    cfg = dict(warmup=1, rounds=2, min_time=0.06, torch_threads=1, numba_threads=1)
    threads = torch.get_num_threads()
    try:
        per_call, first, calls = lm_benchmark._rounds(jobs, cfg)
    finally:
        torch.set_num_threads(threads)
    for name in jobs:
        assert len(per_call[name]) == len(first[name]) == len(calls[name]) == 2
        assert all(n >= 6 for n in calls[name]), calls
        assert all(0.0095 < t < 0.025 for t in per_call[name] + first[name]), (name, per_call)
    assert log.count("state") == 1 + sum(calls["prepared"])  # a prepare() before every call
