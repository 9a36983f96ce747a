"""One small training loop for every model the lessons train, with a progress bar.

Deliberately plain: AdamW, a fixed number of steps, minibatches drawn with a seeded generator, the
loss recorded at every step, accuracy measured on held-out data at the end. Seeds make a run
repeatable on one machine (PyTorch does not promise bit-identical results across machines).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

__all__ = ["TrainResult", "train_classifier", "accuracy"]


@dataclass
class TrainResult:
    accuracy: float  # on the held-out set, after training
    losses: list[float] = field(default_factory=list)  # training loss at every step
    seconds: float = 0.0  # wall-clock training time, this machine
    diverged: bool = False  # a non-finite loss stopped training early
    extra: dict = field(default_factory=dict)  # per-step diagnostics a callback recorded


def _tensor(x):
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


@torch.no_grad()
def accuracy(model: nn.Module, x, y, batch_size: int = 512) -> float:
    """Fraction of predictions (argmax of the logits) equal to their labels: one per sequence
    for labels (n,), K per sequence for labels (n, K) and logits (n, K, classes)."""
    model.eval()
    x, y = _tensor(x), _tensor(y)
    correct = 0
    for start in range(0, len(y), batch_size):
        logits = model(x[start : start + batch_size])
        correct += int((logits.argmax(-1) == y[start : start + batch_size]).sum())
    model.train()
    return correct / y.numel()


def train_classifier(
    model: nn.Module,
    train: tuple,
    test: tuple,
    *,
    steps: int = 300,
    batch_size: int = 64,
    lr: float = 3e-3,
    weight_decay: float = 0.0,
    seed: int = 0,
    progress: bool | str = True,
    on_step=None,
    max_seconds: float | None = None,
) -> TrainResult:
    """Train ``model`` (inputs → class logits) with cross-entropy; return a :class:`TrainResult`.

    Labels are (n,) with logits (batch, classes), or (n, K) with logits (batch, K, classes) for
    a model that answers K times per sequence (every answer counts in the loss and accuracy).

    ``train`` and ``test`` are ``(x, y)`` pairs (NumPy or torch). ``progress`` shows a tqdm bar (a
    string becomes its label). ``on_step(step, model)`` may return a dict of numbers to record.
    ``max_seconds`` stops training after the first step that ends past that wall-clock time (a
    time budget, as lesson 09's benchmark gives every model; ``steps`` stays the upper limit).
    """
    if steps < 1 or batch_size < 1:
        raise ValueError(f"expected steps >= 1 and batch_size >= 1, got {steps}, {batch_size}")
    if max_seconds is not None and not max_seconds > 0:
        raise ValueError(f"expected max_seconds > 0 or None, got {max_seconds}")
    x, y = (_tensor(a) for a in train)
    if len(x) != len(y):
        raise ValueError(f"expected as many inputs as labels, got {len(x)} and {len(y)}")
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    result = TrainResult(accuracy=float("nan"))
    bar = range(steps)
    if progress:
        # imported here: the bar is optional display, and tqdm.auto loads widget support
        from tqdm.auto import tqdm

        bar = tqdm(bar, desc=progress if isinstance(progress, str) else "training", leave=True)
    start = time.perf_counter()
    for step in bar:
        idx = torch.randint(0, len(y), (batch_size,), generator=generator)
        logits = model(x[idx])
        loss = nn.functional.cross_entropy(logits.flatten(0, -2), y[idx].flatten())
        if not torch.isfinite(loss):
            result.diverged = True
            result.losses.append(float("nan"))
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        result.losses.append(loss.item())
        if on_step is not None:
            for key, value in (on_step(step, model) or {}).items():
                result.extra.setdefault(key, []).append(value)
        if max_seconds is not None and time.perf_counter() - start > max_seconds:
            break
    result.seconds = time.perf_counter() - start
    if hasattr(bar, "close"):
        bar.close()
    result.accuracy = float("nan") if result.diverged else accuracy(model, *test)
    return result
