"""One small training loop for the lessons' PyTorch models, with a progress bar.

Lessons keep the model and the task in view; this module keeps the plumbing: seeding, the Adam
loop, a progress bar with the current loss, and the loss history for a plot.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

__all__ = ["TrainResult", "train"]


@dataclass
class TrainResult:
    losses: list[float] = field(default_factory=list)  # one per step
    seconds: float = 0.0  # wall-clock time of the loop, on the machine it ran on


def train(
    model: torch.nn.Module,
    loss_fn: Callable[[torch.nn.Module, int], torch.Tensor],
    *,
    steps: int,
    lr: float = 3e-3,
    seed: int = 0,
    desc: str = "training",
    progress: bool = True,
) -> TrainResult:
    """Minimize ``loss_fn(model, step)`` with Adam for ``steps`` steps; return the loss history.

    ``loss_fn`` builds (or picks) the batch for ``step`` itself, so the loop stays the same for
    every task. Seeds torch with ``seed`` first, so runs repeat exactly.
    """
    if steps < 1:
        raise ValueError(f"expected steps >= 1, got {steps}")
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    result = TrainResult()
    start = time.perf_counter()
    bar = tqdm(range(steps), desc=desc, disable=not progress, mininterval=0.5)
    for step in bar:
        optimizer.zero_grad()
        loss = loss_fn(model, step)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the loss became {loss.item()} at step {step}")
        loss.backward()
        optimizer.step()
        result.losses.append(float(loss.item()))
        if step % 20 == 0:
            bar.set_postfix(loss=f"{result.losses[-1]:.4f}")
    result.seconds = time.perf_counter() - start
    return result
