"""mamba_edu.experiments: each experiment in a tiny configuration, the provenance every record
carries, resuming an interrupted run, and the benchmark tool moved out of bench."""

import datetime
import json
import os
import types

import numpy as np
import pytest
import torch

import mamba_edu
from mamba_edu import bench, experiments, selective, tasks, train
from mamba_edu.experiments import _record, lru_ladder, scan_benchmark

PROVENANCE = (
    "experiment",
    "command",
    "seeds",
    "machine",
    "python",
    "torch",
    "mamba_edu",
    "date_utc",
)


def check_provenance(record, name, seeds):
    for key in PROVENANCE:
        assert key in record, key
    assert record["experiment"] == name
    assert record["command"].startswith(f"mamba-edu run {name}")
    assert record["seeds"] == list(seeds)
    assert record["machine"] == bench.machine_summary()
    assert record["torch"] == torch.__version__
    assert record["mamba_edu"] == mamba_edu.__version__
    written = datetime.datetime.strptime(record["date_utc"], "%Y-%m-%dT%H:%M:%SZ")
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    assert abs((now - written).total_seconds()) < 600


def test_registry_modules_have_the_interface():
    assert set(experiments.REGISTRY) >= {"lru_ladder", "selective_copying", "scan_benchmark"}
    for name in experiments.REGISTRY:
        module = experiments.get(name)
        for attribute in ("SUMMARY", "config", "units", "run_unit", "summarize"):
            assert hasattr(module, attribute), (name, attribute)
        assert "\n" not in module.SUMMARY and module.SUMMARY
        for quick in (False, True):
            units = module.units(module.config(quick))
            assert units and len(set(units)) == len(units)


def test_unknown_names_and_settings_are_refused_clearly(tmp_path):
    with pytest.raises(
        experiments.ExperimentError, match="unknown experiment 'lm_big'.*lru_ladder"
    ):
        experiments.get("lm_big")
    with pytest.raises(experiments.ExperimentError, match=r"unknown setting\(s\) \['depth'\]"):
        experiments.run("lru_ladder", quick=True, out=tmp_path / "x.json", config={"depth": 2})


def test_quick_runs_never_default_to_the_committed_files():
    assert str(experiments.default_out("lru_ladder", quick=False)) == "data/lru_ladder.json"
    assert str(experiments.default_out("lru_ladder", quick=True)).startswith("data/cache/")


def test_lru_ladder_tiny(tmp_path):

    out = tmp_path / "ladder.json"
    record = experiments.run(
        "lru_ladder", quick=True, out=out, config={"seeds": [0, 1]}, progress=False
    )
    assert json.loads(out.read_text()) == record
    check_provenance(record, "lru_ladder", [0, 1])
    assert "config overrides" in record["command"]  # a tiny run says it is not the real command
    assert [row["rung"] for row in record["rows"]] == [name for name, _ in lru_ladder.LADDER]
    for row in record["rows"]:
        assert len(row["accuracies"]) == 2
        assert all(0 <= a <= 1 for a in row["accuracies"])
        assert row["accuracy"] == pytest.approx(np.mean(row["accuracies"]), abs=1e-4)
    # only the diagonal rungs track |λ|; exp-parametrized ones stay inside the unit circle
    by_name = {row["rung"]: row for row in record["rows"]}
    assert by_name["tanh RNN"]["max_abs_lambda"] is None
    assert 0 < by_name["+ exp parametrization"]["max_abs_lambda"] < 1
    assert not out.with_name(out.name + ".partial").exists()


def test_lru_ladder_models_and_errors():

    for _, rung in lru_ladder.LADDER:
        model = lru_ladder.ladder_model(rung, 8, 8, 4, vocab=10)
        assert model(torch.zeros(2, 5, dtype=torch.long)).shape == (2, 4)
    with pytest.raises(ValueError, match="unknown rung kind 'gru'"):
        lru_ladder.ladder_model({"kind": "gru"}, 8, 8, 4, vocab=10)


def test_selective_copying_unit_is_the_lessons_training(tmp_path):
    """Seed 0 of the experiment must be the lesson's run: same model, data and training call,
    built here independently from the lesson's recipe."""
    cfg = dict(L=8, n_memorize=2, vocab=8, steps=4, seeds=[0], d_model=8, n_train=64, n_test=32,
               batch_size=16, lr=3e-3)  # fmt: skip
    record = experiments.run(
        "selective_copying", out=tmp_path / "sc.json", config=cfg, progress=False
    )
    check_provenance(record, "selective_copying", [0])
    torch.set_num_threads(1)
    data = [tasks.selective_copying(n, 8, 2, 8, seed=s) for n, s in ((64, 1), (32, 2))]
    for name, is_selective in (("S6 (selective)", True), ("LTI (S4D-Real)", False)):
        model = selective.TokenSSM(10, 2, d_model=8, selective=is_selective)
        want = train.train_classifier(
            model, *data, steps=4, batch_size=16, lr=3e-3, seed=0, progress=False
        )
        (row,) = [r for r in record["rows"] if r["model"] == name]
        assert row["accuracies"] == [round(want.accuracy, 4)]


def test_state_expansion_tiny_trains_each_state_size(tmp_path):
    """Each unit is TokenSSM at its N, trained as lesson 06's comparison is; rebuilt here."""
    cfg = dict(L=8, n_memorize=2, vocab=8, steps=2, seeds=[0], d_states=[1, 3], d_model=4,
               n_train=32, n_test=16, batch_size=8, lr=3e-3)  # fmt: skip
    record = experiments.run(
        "state_expansion", out=tmp_path / "se.json", config=cfg, progress=False
    )
    check_provenance(record, "state_expansion", [0])
    rows = {(row["model"], row["d_state"]): row for row in record["rows"]}
    assert set(rows) == {(m, n) for m in ("S6 (selective)", "LTI (S4D-Real)") for n in (1, 3)}
    torch.set_num_threads(1)
    data = [tasks.selective_copying(n, 8, 2, 8, seed=s) for n, s in ((32, 1), (16, 2))]
    for (name, n), row in rows.items():
        model = selective.TokenSSM(10, 2, d_model=4, d_state=n, selective=name.startswith("S6"))
        assert row["parameters"] == sum(p.numel() for p in model.parameters())
        expected = train.train_classifier(
            model, *data, steps=2, batch_size=8, lr=3e-3, seed=0, progress=False
        ).accuracy
        assert row["accuracies"] == [round(expected, 4)], (name, n)
    # a larger state is a larger model: S6's x_proj makes B_t and C_t of size N
    assert rows["S6 (selective)", 3]["parameters"] > rows["S6 (selective)", 1]["parameters"]


def test_scan_benchmark_tiny(tmp_path):
    cfg = dict(forward_shape=[1, 4, 8, 2], training_shapes=[[1, 4, 8, 2]], include_slow=True)
    record = experiments.run("scan_benchmark", out=tmp_path / "b.json", config=cfg, progress=False)
    check_provenance(record, "scan_benchmark", [])
    timed = [row for row in record["rows"] if row["seconds"] is not None]
    assert {row["kind"] for row in timed} == {"forward", "forward + backward"}
    for row in timed:
        assert row["seconds"] > 0
        if row["name"].startswith("ours"):
            assert row["ratio"] == pytest.approx(1.0)
    for conditions in record["units"].values():
        assert conditions["numba_threads"] >= 1 and "load_average" in conditions


def fake_experiment(calls, fail_at=None):
    """An experiment with three units that records its calls and can fail at one unit."""

    def run_unit(cfg, unit):
        calls.append(unit)
        if unit == fail_at:
            raise KeyboardInterrupt  # what an interrupted long run looks like
        return {"value": cfg["scale"] * int(unit[-1])}

    return types.SimpleNamespace(
        SUMMARY="fake",
        config=lambda quick: {"scale": 2, "seeds": [0]},
        units=lambda cfg: ["u1", "u2", "u3"],
        run_unit=run_unit,
        summarize=lambda cfg, results: {"values": [r["value"] for r in results.values()]},
    )


def test_an_interrupted_run_resumes_from_its_last_finished_unit(tmp_path):
    out = tmp_path / "fake.json"
    calls = []
    with pytest.raises(KeyboardInterrupt):
        _record.run_experiment("fake", fake_experiment(calls, fail_at="u2"), quick=False,
                               out=out, overrides={}, progress=False)  # fmt: skip
    assert calls == ["u1", "u2"] and not out.exists()
    assert out.with_name("fake.json.partial").exists()
    calls.clear()
    record = _record.run_experiment(
        "fake", fake_experiment(calls), quick=False, out=out, overrides={}, progress=False
    )
    assert calls == ["u2", "u3"]  # u1 came from the checkpoint
    assert record["values"] == [2, 4, 6]
    assert not out.with_name("fake.json.partial").exists()


def test_a_changed_setting_starts_over(tmp_path):
    out = tmp_path / "fake.json"
    calls = []
    with pytest.raises(KeyboardInterrupt):
        _record.run_experiment("fake", fake_experiment(calls, fail_at="u3"), quick=False,
                               out=out, overrides={}, progress=False)  # fmt: skip
    calls.clear()
    record = _record.run_experiment("fake", fake_experiment(calls), quick=False, out=out,
                                    overrides={"scale": 3}, progress=False)  # fmt: skip
    assert calls == ["u1", "u2", "u3"]
    assert record["values"] == [3, 6, 9]


def test_scan_benchmark_times_every_contender_on_tiny_shapes():
    lines = []
    rows = scan_benchmark.scan_benchmark(
        (1, 4, 8, 2), ((1, 4, 8, 2),), include_slow=True, out=lines.append
    )
    text = "\n".join(lines)
    assert "on this machine" in text and "load average" in text
    assert "numba compilation before timing" in text
    names = {(r["kind"], r["name"]) for r in rows}
    for name in ("NumPy loop (mamba_edu.selective)", "ours: numba kernel"):
        assert ("forward", name) in names
    assert any(n.startswith("exp floor") for _, n in names)
    assert ("forward + backward", "ours: numba SelectiveScanFn") in names
    for row in rows:
        assert row["seconds"] > 0
        if row["name"].startswith("ours"):
            assert row["ratio"] == pytest.approx(1.0)


def test_exp_floor_divides_by_threads():
    one = scan_benchmark.exp_floor((1, 8, 64, 16), 1)
    assert one > 0
    assert scan_benchmark.exp_floor((1, 8, 64, 16), 4) < one


def test_compilation_is_done_before_timing(tmp_path):
    """With numba's cache empty, the first kernel call compiles for seconds; after
    _compile_kernels the timed calls (other shapes, same dtype) must be fast."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        import time
        import torch
        from mamba_edu.experiments import scan_benchmark as bench
        from mamba_edu.kernels import selective_cpu

        compile_s = bench._compile_kernels()
        args = {k: torch.from_numpy(v).requires_grad_(True)
                for k, v in bench._selective_inputs(2, 8, 16, 4).items()}
        start = time.perf_counter()
        selective_cpu.selective_scan(**args, delta_softplus=True, backend="numba").sum().backward()
        print(compile_s, time.perf_counter() - start)
        """
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    compile_s, timed_s = map(float, done.stdout.split())
    assert compile_s > 1.0  # an empty cache: it really compiled
    assert timed_s < 0.5, f"the timed call took {timed_s:.2f} s: it compiled again"


def test_scan_benchmark_command_line_runs(capsys):
    assert scan_benchmark._main(["--quick"]) == 0
    text = capsys.readouterr().out
    assert "ours: numba kernel" in text and "forward + backward" in text
