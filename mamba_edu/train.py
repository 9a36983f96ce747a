"""One small training loop for every model the lessons train, with a progress bar.

Deliberately plain: AdamW, a fixed number of steps, minibatches drawn with a seeded generator, the
loss recorded at every step, accuracy measured on held-out data at the end. Seeds make a run
repeatable on one machine (PyTorch does not promise bit-identical results across machines).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

__all__ = [
    "TrainResult",
    "train_classifier",
    "accuracy",
    "LMResult",
    "train_language_model",
    "bits_per_char",
]


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


# ----------------------------------------------------------------------------------------------
# Language models (lesson 07): a budget of compute time instead of a number of steps
# ----------------------------------------------------------------------------------------------


@dataclass
class LMResult:
    val_bpc: float  # validation loss in bits per character, after training
    losses: list[float] = field(default_factory=list)  # training loss (nats) at every step
    steps: int = 0
    cpu_seconds: float = 0.0  # CPU time of this process spent training (all its threads)
    wall_seconds: float = 0.0  # wall-clock time spent training


def _windows(ids, batch, length, generator):
    starts = torch.randint(0, len(ids) - length, (batch,), generator=generator)
    windows = ids[starts[:, None] + torch.arange(length + 1)]
    return windows[:, :-1], windows[:, 1:]


@torch.no_grad()
def bits_per_char(model: nn.Module, ids, length: int = 256, batch_size: int = 32) -> float:
    """Mean cross-entropy, in bits per token, of ``model`` (tokens (batch, L) → logits (batch,
    L, vocab)) on ids (L,) cut into consecutive windows of ``length`` inputs: every window
    predicts its next ``length`` tokens, so the targets are ids[1 : 1 + n·length] with
    n = (len(ids) − 1) // length, each once (the same positions for every model)."""
    ids = _tensor(ids).long()
    if ids.dim() != 1 or len(ids) < length + 1:
        raise ValueError(f"expected ids of shape (L,) with L >= length + 1, got {tuple(ids.shape)}")
    n = (len(ids) - 1) // length
    inputs = ids[: n * length].view(n, length)
    targets = ids[1 : 1 + n * length].view(n, length)
    was_training = model.training
    model.eval()
    nats = 0.0
    for start in range(0, n, batch_size):  # batches bound the memory (attention is L × L)
        logits = model(inputs[start : start + batch_size])
        nats += float(
            nn.functional.cross_entropy(
                logits.flatten(0, 1), targets[start : start + batch_size].flatten(), reduction="sum"
            )
        )
    model.train(was_training)
    return nats / (n * length) / math.log(2)


class _LivePlot:
    """A loss plot redrawn in place in the notebook (one display, updated), for every model so
    far; outside IPython it draws nothing."""

    def __init__(self, history: dict):
        self.history, self.handle = history, None
        try:
            from IPython import get_ipython  # optional: only a notebook shows the live plot
            from IPython.display import display
        except ImportError:
            return
        if get_ipython() is None:
            return
        from matplotlib.figure import Figure  # only with a display to show it in

        self.figure = Figure(figsize=(6.5, 3.2), layout="constrained")
        self.handle = display(self.figure, display_id=True)

    def update(self):
        if self.handle is None:
            return
        self.figure.clear()
        ax = self.figure.add_subplot()
        for name, losses in self.history.items():
            nats = np.asarray(losses)
            ax.plot(np.arange(1, len(nats) + 1), nats / math.log(2), lw=1, label=name)
        ax.set_xlabel("training step")
        ax.set_ylabel("training loss (bits per character)")
        ax.set_title("live training loss", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend()
        self.handle.update(self.figure)


def train_language_model(
    model: nn.Module,
    train_ids,
    val_ids,
    *,
    cpu_seconds: float = 30.0,
    max_steps: int | None = None,
    batch_size: int = 16,
    length: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    progress: bool | str = True,
    live: dict | None = None,
    plot_every: int = 20,
) -> LMResult:
    """Train a next-token model (tokens (batch, L) → logits (batch, L, vocab)) on random windows
    of ``train_ids`` (L,) until ``cpu_seconds`` of this process's CPU time are spent (or
    ``max_steps``); return an :class:`LMResult` with the validation bits per character.

    The budget is CPU time, not wall-clock: on an idle machine the two differ by the number of
    threads used, but other programs on a shared machine do not eat into CPU time, so two models
    trained one after the other get the same compute. ``live``: a dict shared by the models of
    one comparison (name → losses); with it, a loss plot of all of them is redrawn every
    ``plot_every`` steps in the notebook.
    """
    if not cpu_seconds > 0:
        raise ValueError(f"expected cpu_seconds > 0, got {cpu_seconds}")
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"expected max_steps >= 1 or None, got {max_steps}")
    if batch_size < 1 or length < 1:
        raise ValueError(f"expected batch_size >= 1 and length >= 1, got {batch_size}, {length}")
    ids = _tensor(train_ids).long()
    if ids.dim() != 1 or len(ids) < length + 1:
        raise ValueError(
            f"expected train_ids of shape (L,) with L >= length + 1 = {length + 1}, "
            f"got {tuple(ids.shape)}"
        )
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    result = LMResult(val_bpc=float("nan"))
    label = progress if isinstance(progress, str) else "training"
    if live is not None:
        live[label] = result.losses
        plot = _LivePlot(live)
    bar = None
    if progress:
        from tqdm.auto import tqdm  # optional display, as in train_classifier

        bar = tqdm(total=round(cpu_seconds), desc=label, unit="cpu-s", leave=True)
    cpu_start, wall_start, shown = time.process_time(), time.perf_counter(), 0
    model.train()
    while True:
        spent = time.process_time() - cpu_start
        if spent >= cpu_seconds or (max_steps is not None and result.steps >= max_steps):
            break
        inputs, targets = _windows(ids, batch_size, length, generator)
        logits = model(inputs)
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        result.losses.append(loss.item())
        result.steps += 1
        if bar is not None and int(spent) > shown:
            bar.update(int(spent) - shown)
            shown = int(spent)
            bar.set_postfix(loss_bpc=f"{loss.item() / math.log(2):.2f}")
        if live is not None and result.steps % plot_every == 0:
            plot.update()
    result.cpu_seconds = time.process_time() - cpu_start
    result.wall_seconds = time.perf_counter() - wall_start
    if bar is not None:
        bar.close()
    if live is not None:
        plot.update()
    result.val_bpc = bits_per_char(model, val_ids, length=length)  # the length it learned on
    return result
