"""mamba_edu.experiments.lm (``mamba-edu run lm``): a tiny run writes the record lesson 07 reads,
and the baselines it stores are right on a hand-counted example."""

import json
import math

import numpy as np
import pytest

from mamba_edu import experiments
from mamba_edu.experiments import lm


def test_baselines_on_a_hand_counted_example():
    # train 0 0 1, validate 0 1: unigram (add-one) P = (3/5, 2/5); bigram row 0 (add-one) over
    # the pairs 00 and 01 is (2/4, 2/4), so the validation pair 01 costs exactly one bit
    got = lm.baselines(np.array([0, 0, 1]), np.array([0, 1]), vocab_size=2)
    assert got["unigram_bpc"] == pytest.approx(-(math.log2(0.6) + math.log2(0.4)) / 2, abs=1e-4)
    assert got["bigram_bpc"] == pytest.approx(1.0, abs=1e-4)


def test_tiny_run_stores_curves_samples_and_equal_sizes(tmp_path):
    cfg = dict(max_steps=2, eval_every=1, sample_chars=12, val_batches=1)
    record = experiments.run("lm", quick=True, out=tmp_path / "lm.json", config=cfg,
                             progress=False)  # fmt: skip
    assert json.loads((tmp_path / "lm.json").read_text()) == record
    assert record["experiment"] == "lm" and record["seeds"] == [0]
    vocab_size = record["corpus"]["vocab_size"]
    assert record["corpus"]["chars"] >= 100_000
    models = record["models"]
    assert set(models) == {"Mamba", "Transformer"}
    # equal parameters (±5%), as the lesson's comparison promises
    mamba, transformer = models["Mamba"]["parameters"], models["Transformer"]["parameters"]
    assert abs(transformer - mamba) <= 0.05 * mamba
    for unit, run in record["runs"].items():
        assert unit == f"{run['model']} | seed {run['seed']}"
        steps = [point["step"] for point in run["curve"]]
        assert steps == [0, 1, 2] and run["steps"] == 2
        # untrained models with small initial logits predict about uniformly: log2(vocab) bits
        assert run["curve"][0]["val_bpc"] == pytest.approx(math.log2(vocab_size), abs=0.3)
        assert run["val_bpc"] == run["curve"][-1]["val_bpc"]
        assert run["sample"].startswith("def ") and len(run["sample"]) == 4 + 12
    bigram = record["baselines"]["bigram_bpc"]
    assert 0 < bigram < record["baselines"]["unigram_bpc"] < math.log2(vocab_size)


def test_full_configuration_is_three_seeds_of_ten_minutes():
    cfg = lm.config(quick=False)
    assert cfg["seeds"] == [0, 1, 2] and cfg["seconds"] == 600
    assert lm.units(cfg) == [f"{m} | seed {s}" for s in (0, 1, 2) for m in ("Mamba", "Transformer")]
