import numpy as np
import pytest
import torch
from torch import nn

from mamba_edu import train


def separable(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.int64)


def test_training_learns_a_separable_problem_and_records_losses():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    result = train.train_classifier(
        model, separable(512, 0), separable(256, 1), steps=200, lr=1e-2, progress=False
    )
    assert result.accuracy > 0.9
    assert len(result.losses) == 200 and result.losses[-1] < result.losses[0]
    assert result.seconds > 0 and not result.diverged


def test_divergence_is_reported():
    class Exploding(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.tensor(1.0))

        def forward(self, x):
            return torch.stack([x[:, 0] * float("inf") * self.w, x[:, 1]], dim=1)

    result = train.train_classifier(
        Exploding(), separable(64, 0), separable(64, 1), steps=10, progress=False
    )
    assert result.diverged and np.isnan(result.accuracy)


def test_on_step_records_diagnostics_and_bad_sizes_fail():
    model = nn.Linear(4, 2)
    result = train.train_classifier(
        model,
        separable(64, 0),
        separable(64, 1),
        steps=5,
        progress=False,
        on_step=lambda s, m: {"step": s},
    )
    assert result.extra["step"] == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="as many inputs as labels"):
        train.train_classifier(
            model,
            (np.zeros((3, 4), np.float32), np.zeros(2, np.int64)),
            separable(4, 1),
            progress=False,
        )


def test_several_answers_per_sequence_count_one_by_one():
    """Labels (n, K) with logits (batch, K, classes): the loss and the accuracy use all K."""

    class Copy(nn.Module):  # answers K = 2 times per sequence: the sign of each input
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.tensor(0.01))

        def forward(self, x):
            return torch.stack([-x, x], dim=-1) * self.scale  # (batch, 2, 2)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 2)).astype(np.float32)
    y = (x > 0).astype(np.int64)  # (256, 2)
    result = train.train_classifier(Copy(), (x, y), (x, y), steps=50, lr=0.1, progress=False)
    assert result.accuracy == 1.0 and result.losses[-1] < result.losses[0]
    # accuracy counts answers, not sequences: half of them wrong gives 0.5
    y_half = y.copy()
    y_half[:, 1] = 1 - y_half[:, 1]
    assert train.accuracy(Copy(), x, y_half) == pytest.approx(0.5)


# ----------------------------------------------------------------------------------------------
# language models (lesson 07)
# ----------------------------------------------------------------------------------------------


class _Lookup(torch.nn.Module):
    """Logits from a fixed (vocab, vocab) table indexed by the current token: a bigram model."""

    def __init__(self, table):
        super().__init__()
        self.table = torch.nn.Parameter(torch.as_tensor(table, dtype=torch.float32))

    def forward(self, tokens):
        return self.table[tokens]


def test_bits_per_char_of_a_uniform_and_a_perfect_model():
    from mamba_edu.train import bits_per_char

    ids = np.arange(1000) % 7  # a cycle: each token says which comes next
    assert bits_per_char(_Lookup(np.zeros((7, 7))), ids, length=16) == pytest.approx(np.log2(7))
    perfect = np.full((7, 7), -50.0)
    perfect[np.arange(7), (np.arange(7) + 1) % 7] = 50.0
    assert bits_per_char(_Lookup(perfect), ids, length=16) < 1e-6
    # the scored targets are ids[1 : 1 + n·length]: a model right on those only, wrong elsewhere
    half = np.zeros((7, 7))
    half[0, 1] = 60.0  # sure of 0 → 1; uniform after every other token
    expected = np.mean([0.0 if prev == 0 else np.log2(7) for prev in ids[: 62 * 16]])
    assert bits_per_char(_Lookup(half), ids, length=16) == pytest.approx(expected, rel=1e-5)


def test_train_language_model_learns_a_cycle_and_stops_at_max_steps():
    from mamba_edu.train import train_language_model

    ids = np.arange(2000) % 5
    model = _Lookup(np.zeros((5, 5)))
    result = train_language_model(
        model, ids[:1500], ids[1500:], cpu_seconds=60, max_steps=40, batch_size=4, length=8,
        lr=0.3, progress=False,
    )  # fmt: skip
    assert result.steps == len(result.losses) == 40
    assert result.losses[-1] < 0.2 * result.losses[0]
    assert result.val_bpc < 0.5 and result.cpu_seconds > 0


def test_train_language_model_rejects_bad_arguments():
    from mamba_edu.train import train_language_model

    model = _Lookup(np.zeros((5, 5)))
    with pytest.raises(ValueError, match="cpu_seconds"):
        train_language_model(model, np.arange(100) % 5, np.arange(100) % 5, cpu_seconds=0)
    with pytest.raises(ValueError, match="train_ids"):
        train_language_model(model, np.arange(5), np.arange(100) % 5, length=8, progress=False)


def test_a_time_budget_stops_training_early():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    result = train.train_classifier(
        model, separable(256, 0), separable(64, 1), steps=10**7, max_seconds=0.2, progress=False
    )
    assert 1 <= len(result.losses) < 10**7 and 0.2 < result.seconds < 20
    assert 0 <= result.accuracy <= 1
    with pytest.raises(ValueError, match="max_seconds > 0"):
        train.train_classifier(model, separable(8, 0), separable(8, 1), max_seconds=0)
