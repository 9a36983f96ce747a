"""Lesson 09's benchmark (mamba_edu.experiments.evaluate): the parameter matching, the five model
families' shapes, the state sizes, the character LM's bits per character, and a tiny run of the
experiment."""

import json
import math

import numpy as np
import pytest
import torch

from mamba_edu import data, experiments
from mamba_edu.experiments import evaluate


def test_match_width_picks_the_closest_count_and_stops_past_the_target():
    tried = []

    def count(width):
        tried.append(width)
        return width * width

    assert evaluate.match_width(count, 1000, range(1, 200)) == (32, 1024)
    assert max(tried) == 32  # 32² > 1000: nothing wider was built
    # 31² = 961 is 39 away, 32² = 1024 is 24 away
    assert evaluate.match_width(lambda w: w * w, 985, range(1, 200))[0] == 31


def test_match_width_refuses_when_nothing_is_close_enough():
    with pytest.raises(ValueError, match="within 10% of 1000 .*closest: width 40 with 1600"):
        evaluate.match_width(lambda w: w * w, 1000, range(40, 200, 10))
    with pytest.raises(ValueError, match="tolerance"):
        evaluate.match_width(lambda w: w, 10, range(1, 20), tolerance=1.5)
    with pytest.raises(ValueError, match="target"):
        evaluate.match_width(lambda w: w, 0, range(1, 20))


def _gru_count_by_formula(width, vocab, n_classes, n_layer):
    """Parameters of the GRU family counted by hand: embedding; per layer a LayerNorm, a GRU
    (3 gates × (input and recurrent weights, two biases)), a LayerNorm and a width → 2·width →
    width MLP; the final LayerNorm and the head."""
    d = width
    gru = 3 * (d * d + d * d + 2 * d)
    mlp = d * 2 * d + 2 * d + 2 * d * d + d
    per_layer = 2 * d + gru + 2 * d + mlp
    return vocab * d + n_layer * per_layer + 2 * d + d * n_classes + n_classes


def test_parameter_count_of_one_family_agrees_with_a_hand_count():
    model = evaluate.EvalModel("GRU", 10, 7, vocab=5, n_layer=2)
    assert model.num_parameters() == _gru_count_by_formula(10, 5, 7, 2)


def test_matched_families_are_within_ten_percent_of_mamba():
    cfg = evaluate.config(quick=True)
    spec = evaluate._task_spec(cfg, "induction_heads")
    widths = evaluate.matched_widths(spec, cfg, spec["d_state"])
    assert set(widths) == set(evaluate.FAMILIES)
    target = widths["Mamba"][1]
    for family, (width, count) in widths.items():
        model = evaluate.EvalModel(
            family, width, spec["n_classes"], vocab=spec["vocab"], n_layer=cfg["n_layer"],
            d_state=spec["d_state"], max_len=spec["max_len"],
        )  # fmt: skip
        measured = sum(p.numel() for p in model.parameters())
        assert measured == count
        assert abs(measured - target) <= 0.1 * target, family
    assert len({w for w, _ in widths.values()}) > 1  # the families really differ in width


@pytest.mark.parametrize("family", evaluate.FAMILIES)
def test_every_family_answers_in_the_expected_shapes(family):
    torch.manual_seed(0)
    tokens = torch.randint(0, 9, (3, 12))
    one = evaluate.EvalModel(family, 8, 5, vocab=9, n_layer=1, d_state=2, max_len=12)
    assert one(tokens).shape == (3, 5)
    several = evaluate.EvalModel(family, 8, 5, vocab=9, n_out=4, n_layer=1, d_state=2)
    assert several(tokens).shape == (3, 4, 5)
    pixels = torch.rand(3, 12, 1)
    assert evaluate.EvalModel(family, 8, 10, features=1, n_layer=1)(pixels).shape == (3, 10)
    # same seed, same weights; another seed, other weights
    a, b, c = (evaluate.EvalModel(family, 8, 5, vocab=9, seed=s) for s in (1, 1, 2))
    assert torch.equal(a(tokens), b(tokens)) and not torch.equal(a(tokens), c(tokens))


def test_models_are_causal_where_they_read_the_answer():
    """Changing a token after position t must not change the answer read at t (n_out answers
    are read at the last positions: each of them sees only its past)."""
    torch.manual_seed(0)
    for family in evaluate.FAMILIES:
        model = evaluate.EvalModel(family, 8, 5, vocab=9, n_out=3, n_layer=1, d_state=2)
        tokens = torch.randint(0, 9, (2, 10))
        changed = tokens.clone()
        changed[:, -1] = (changed[:, -1] + 1) % 9
        before, after = model(tokens), model(changed)
        assert torch.allclose(before[:, :2], after[:, :2], atol=1e-6), family
        assert not torch.allclose(before[:, 2], after[:, 2]), family


def test_bad_models_are_refused_clearly():
    with pytest.raises(ValueError, match="family one of"):
        evaluate.EvalModel("LSTM", 8, 5, vocab=9)
    with pytest.raises(ValueError, match="exactly one of vocab"):
        evaluate.EvalModel("GRU", 8, 5)
    with pytest.raises(ValueError, match="multiple of"):
        evaluate.EvalModel("Transformer", 7, 5, vocab=9)
    model = evaluate.EvalModel("Transformer", 8, 5, vocab=9, max_len=6)
    with pytest.raises(ValueError, match="max_len = 6"):
        model(torch.zeros(1, 7, dtype=torch.int64))


def test_only_attention_state_grows_with_the_text():
    for family in evaluate.FAMILIES:
        short = evaluate.state_size(family, 32, 16, 2, 100)
        long = evaluate.state_size(family, 32, 16, 2, 1000)
        assert (long == 10 * short) if family == "Transformer" else (long == short), family
    assert evaluate.state_size("Mamba", 32, 16, 2, 1) == 2 * 2 * 32 * 16  # d_inner · N · layers


TINY = dict(
    families=["GRU", "Mamba"],
    seeds=[0, 1],
    budget_seconds=0.05,
    max_steps=3,
    tasks=dict(
        induction_heads=dict(L=6, vocab=4, test_factors=[1, 2], n_train=32, n_test=8),
        mqar=dict(n_pairs=2, vocab=8, d_states=[1, 2], n_train=32, n_test=8),
    ),
)


def test_tiny_run_records_every_unit_with_its_budget(tmp_path):
    out = tmp_path / "evaluation.json"
    record = experiments.run("evaluate", quick=True, out=out, config=TINY, progress=False)
    assert json.loads(out.read_text()) == record
    assert record["experiment"] == "evaluate" and record["seeds"] == [0, 1]
    assert "machine" in record and "date_utc" in record and "budget" in record
    assert record["tasks"] == ["induction_heads", "mqar (d_state 1)", "mqar (d_state 2)"]
    assert len(record["rows"]) == 3 * 2 and len(record["runs"]) == 3 * 2 * 2
    for row in record["rows"]:
        runs = [record["runs"][f"{row['task']} | {row['model']} | seed {s}"] for s in (0, 1)]
        assert row["metric"] == "accuracy" and row["higher_is_better"] is True
        assert row["scores"] == [round(r["accuracy"], 4) for r in runs]
        assert row["score"] == pytest.approx(np.mean(row["scores"]), abs=1e-4)
        assert row["min_score"] == min(row["scores"]) and row["max_score"] == max(row["scores"])
        assert all(1 <= r["steps"] <= 3 for r in runs)
        for r in runs:  # the machine's load at both ends of the unit: 1, 5, 15 minutes
            assert len(r["load_start"]) == len(r["load_end"]) == 3
            assert all(x >= 0 for x in r["load_start"] + r["load_end"])
        curve = runs[0]["curve"]
        assert curve["step"][-1] == runs[0]["steps"] and len(curve["loss"]) == len(curve["step"])
    loads = [r[k][0] for r in record["runs"].values() for k in ("load_start", "load_end")]
    assert record["load_average"] == dict(
        min=min(loads), mean=round(float(np.mean(loads)), 2), max=max(loads)
    )
    row = record["rows"][0]
    assert row["task"] == "induction_heads" and 0 <= row["accuracy at L = 12"] <= 1
    # the state knob reaches Mamba: a bigger d_state, a bigger state
    states = {r["task"]: r["state"] for r in record["rows"] if r["model"] == "Mamba"}
    assert states["mqar (d_state 2)"] == 2 * states["mqar (d_state 1)"]


def test_set_threads_sets_torch_and_numba_and_refuses_nonsense():
    import numba

    before = torch.get_num_threads(), numba.get_num_threads()
    try:
        evaluate.set_threads(1)
        assert torch.get_num_threads() == 1 and numba.get_num_threads() == 1
    finally:
        torch.set_num_threads(before[0])
        numba.set_num_threads(before[1])
    with pytest.raises(ValueError, match="threads a positive integer"):
        evaluate.set_threads(0)


# ---- the character LM: bits per character ---------------------------------------------------


class _BigramModel(torch.nn.Module):
    """Predicts the next character from the current one only: logits = log P(next | current)."""

    def __init__(self, probs):
        super().__init__()
        self.log_probs = torch.log(torch.as_tensor(probs, dtype=torch.float64))

    def forward(self, tokens):  # (batch, L) → (batch, L, vocab)
        return self.log_probs[tokens]


def _add_one_bigram(ids, vocab):
    """P(next | current) counted on ids with one added to every pair (as the baseline)."""
    counts = np.ones((vocab, vocab))
    for a, b in zip(ids[:-1], ids[1:], strict=True):
        counts[a, b] += 1
    return counts / counts.sum(axis=1, keepdims=True)


def test_validation_bpc_equals_the_mean_negative_log2_probability_of_every_next_character():
    torch.manual_seed(0)
    length, vocab = 8, 7
    ids = np.random.default_rng(0).integers(0, vocab, 4 * length + 1)
    model = evaluate.EvalModel("GRU", 6, vocab, vocab=vocab, n_out=length, n_layer=1)
    with torch.no_grad():
        logits = model(torch.as_tensor(ids[:-1].reshape(4, length))).double().numpy()
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))  # log-softmax by hand
    targets = ids[1:].reshape(4, length)
    by_hand = -np.take_along_axis(log_probs, targets[..., None], -1).mean() / math.log(2)
    assert evaluate.validation_bpc(model, ids, length) == pytest.approx(by_hand, rel=1e-5)
    with pytest.raises(ValueError, match=r"shape \(n · length \+ 1,\) with length = 8"):
        evaluate.validation_bpc(model, ids[:-1], length)  # 32 characters: one target short


def test_a_model_predicting_the_bigram_distribution_scores_the_bigram_bpc():
    """The harness's validation characters, scored by a model that outputs the bigram
    distribution counted (here, independently) on the training part, give the record's bigram
    baseline; the uniform distribution gives log2(vocab), the row's chance."""
    t = dict(max_chars=20_000, val_fraction=0.1, L=16, n_train=8, n_test=20)
    cfg = dict(d_state=2, tasks=dict(char_lm=t))
    spec = evaluate._task_spec(cfg, "char_lm")
    corpus = data.load_corpus(t["max_chars"])
    vocab = data.CharVocab(corpus.text)
    train_ids, val_ids = data.train_val_split(vocab.encode(corpus.text), t["val_fraction"])
    assert np.array_equal(spec["val_ids"], val_ids[: 20 * 16 + 1])
    assert spec["test"][0].shape == spec["test"][1].shape == (20, 16)
    bigram = _BigramModel(_add_one_bigram(train_ids, vocab.size))
    bpc = evaluate.validation_bpc(bigram, spec["val_ids"], t["L"])
    assert bpc == pytest.approx(spec["baselines"]["bigram_bpc"], abs=1e-4)
    assert spec["baselines"]["bigram_bpc"] < spec["baselines"]["unigram_bpc"] < spec["chance"]
    uniform = _BigramModel(np.full((vocab.size, vocab.size), 1 / vocab.size))
    assert evaluate.validation_bpc(uniform, spec["val_ids"], t["L"]) == pytest.approx(
        spec["chance"]
    )
    with pytest.raises(ValueError, match="at least n_test · L \\+ 1 = 3201 characters"):
        evaluate._task_spec(dict(d_state=2, tasks=dict(char_lm={**t, "n_test": 200})), "char_lm")


def test_task_metric_names_bpc_only_for_the_language_model():
    assert evaluate.task_metric("char_lm") == "bpc"
    assert evaluate.task_metric("mqar (d_state 2)") == "accuracy"
    assert evaluate.METRICS == {"accuracy": True, "bpc": False}
    with pytest.raises(ValueError, match="task name"):
        evaluate.task_metric(None)


TINY_LM = dict(
    families=["GRU", "Transformer"],
    seeds=[0, 1],
    budget_seconds=0.05,
    max_steps=2,
    tasks=dict(
        char_lm=dict(max_chars=20_000, val_fraction=0.1, L=8, n_train=32, n_test=4),
        long_copy=dict(length=3, vocab=4, n_train=16, n_test=4),
    ),
)


def test_tiny_run_scores_the_language_model_in_bits_per_character(tmp_path):
    record = experiments.run(
        "evaluate", quick=True, out=tmp_path / "e.json", config=TINY_LM, progress=False
    )
    assert record["tasks"] == ["char_lm", "long_copy"]
    assert record["metrics"] == {"char_lm": "bpc", "long_copy": "accuracy"}
    lm_rows = [row for row in record["rows"] if row["task"] == "char_lm"]
    vocab_size = record["baselines"]["char_lm"]["corpus"]["vocab_size"]
    for row in lm_rows:
        runs = [record["runs"][f"char_lm | {row['model']} | seed {s}"] for s in (0, 1)]
        assert row["metric"] == "bpc" and row["higher_is_better"] is False
        assert row["scores"] == [round(r["bpc"], 4) for r in runs]
        # two steps from random weights: near the uniform guess, far above the bigram model
        assert row["chance"] == pytest.approx(math.log2(vocab_size), abs=1e-4)
        assert row["baselines"]["bigram_bpc"] + 1 < row["min_score"] <= row["max_score"] < 8
        assert 0 <= row["next_char_accuracy"] <= 1
    table = evaluate.fmt_table(record)
    assert "bpc ↓" in table and "accuracy ↑" in table
    bigram = record["baselines"]["char_lm"]["bigram_bpc"]
    assert f"bigram {bigram:.3f} bpc" in table
    assert "long_copy" not in evaluate.fmt_table(record, "char_lm")
    with pytest.raises(ValueError, match="one of \\['char_lm', 'long_copy'\\]"):
        evaluate.fmt_table(record, "listops")
