"""Lesson 06's state-expansion sweep (the "×16" of Mamba's N = 16): selective copying learned by
a selective SSM (S6) and by its time-invariant twin (S4D-Real) at state sizes N ∈ {1, 4, 16}, same
data, parameters outside the state, and budget:
``mamba-edu run state_expansion`` → ``data/state_expansion.json``.

N changes only the state (and the few weights that produce B_t, C_t): the question is what a
larger state buys each kind of model on a task that needs several tokens kept at once.
"""

from __future__ import annotations

import numpy as np
import torch

from mamba_edu import selective, train
from mamba_edu.experiments.selective_copying import _data  # the same task and data sets

__all__ = ["SUMMARY", "MODELS", "config", "units", "run_unit", "summarize"]

SUMMARY = "lesson 06: state size N ∈ {1, 4, 16}, S6 vs LTI, selective copying (L = 32, 4 tokens)"

MODELS = {"S6 (selective)": True, "LTI (S4D-Real)": False}  # name → TokenSSM(selective=...)


def config(quick: bool) -> dict:
    common = dict(n_memorize=4, vocab=8, batch_size=64, lr=3e-3)
    if quick:
        return dict(L=8, steps=3, seeds=[0], d_states=[1, 4], d_model=8, n_train=64, n_test=32,
                    **common)  # fmt: skip
    return dict(L=32, steps=300, seeds=[0, 1], d_states=[1, 4, 16], d_model=16, n_train=8192,
                n_test=1024, **common)  # fmt: skip


def units(cfg: dict) -> list[str]:
    return [
        f"{name} | N {n} | seed {seed}"
        for seed in cfg["seeds"]
        for n in cfg["d_states"]
        for name in MODELS
    ]


def run_unit(cfg: dict, unit: str) -> dict:
    name, n_text, seed_text = unit.split(" | ")
    d_state, seed = int(n_text.split()[1]), int(seed_text.split()[1])
    torch.set_num_threads(
        1
    )  # small matrices: one torch thread is faster (the scan uses every core)
    model = selective.TokenSSM(
        cfg["vocab"] + 2, cfg["n_memorize"], d_model=cfg["d_model"], d_state=d_state,
        selective=MODELS[name], seed=seed,
    )  # fmt: skip
    result = train.train_classifier(
        model, *_data(cfg), steps=cfg["steps"], batch_size=cfg["batch_size"], lr=cfg["lr"],
        seed=seed, progress=False,
    )  # fmt: skip
    return dict(
        accuracy=0.0 if result.diverged else float(result.accuracy),
        diverged=result.diverged,
        parameters=sum(p.numel() for p in model.parameters()),
        seconds=round(result.seconds, 1),
    )


def summarize(cfg: dict, results: dict) -> dict:
    rows = []
    for n in cfg["d_states"]:
        for name in MODELS:
            runs = [results[f"{name} | N {n} | seed {seed}"] for seed in cfg["seeds"]]
            accuracies = [r["accuracy"] for r in runs]
            rows.append(
                dict(
                    model=name,
                    d_state=n,
                    accuracy=float(np.mean(accuracies)),
                    accuracies=[round(a, 4) for a in accuracies],
                    parameters=runs[0]["parameters"],
                    diverged=any(r["diverged"] for r in runs),
                    seconds=round(sum(r["seconds"] for r in runs), 1),
                )
            )
    task = (
        f"selective_copying, L = {cfg['L']}, {cfg['n_memorize']} tokens, vocabulary "
        f"{cfg['vocab']}, chance {1 / cfg['vocab']:.3f}"
    )
    return dict(task=task, rows=rows)
