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
