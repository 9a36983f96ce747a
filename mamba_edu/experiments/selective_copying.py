"""Lesson 06's comparison over several seeds: selective copying learned by a selective SSM (S6)
and by its time-invariant twin (S4D-Real), same data and budget:
``mamba-edu run selective_copying`` → ``data/selective_copying.json``.

The lesson trains one seed live (L = 64, 2 tokens, 300 steps); this repeats it with the model and
training seeds 0, 1, 2, so that the spread the lesson describes in words is on record.
"""

from __future__ import annotations

import numpy as np
import torch

from mamba_edu import selective, tasks, train

__all__ = ["SUMMARY", "MODELS", "config", "units", "run_unit", "summarize"]

SUMMARY = "lesson 06: selective copying, S6 vs LTI (S4D-Real), L = 64, 300 steps, 3 seeds"

MODELS = {"S6 (selective)": True, "LTI (S4D-Real)": False}  # name → TokenSSM(selective=...)


def config(quick: bool) -> dict:
    common = dict(n_memorize=2, vocab=8, batch_size=64, lr=3e-3)
    if quick:
        return dict(L=8, steps=3, seeds=[0], d_model=8, n_train=64, n_test=32, **common)
    # the lesson's settings (notebooks/06_selectivity.py), three seeds
    return dict(L=64, steps=300, seeds=[0, 1, 2], d_model=32, n_train=8192, n_test=1024, **common)


def units(cfg: dict) -> list[str]:
    return [f"{name} | seed {seed}" for seed in cfg["seeds"] for name in MODELS]


_DATA_CACHE: dict = {}


def _data(cfg: dict):
    """The lesson's train and test sets (seeds 1 and 2), shared by every model and seed."""
    key = (cfg["L"], cfg["n_memorize"], cfg["vocab"], cfg["n_train"], cfg["n_test"])
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()
        args = (cfg["L"], cfg["n_memorize"], cfg["vocab"])
        _DATA_CACHE[key] = (
            tasks.selective_copying(cfg["n_train"], *args, seed=1),
            tasks.selective_copying(cfg["n_test"], *args, seed=2),
        )
    return _DATA_CACHE[key]


def run_unit(cfg: dict, unit: str) -> dict:
    name, seed_text = unit.split(" | ")
    seed = int(seed_text.split()[1])
    torch.set_num_threads(
        1
    )  # small matrices: one torch thread is faster (the scan uses every core)
    model = selective.TokenSSM(
        cfg["vocab"] + 2, cfg["n_memorize"], d_model=cfg["d_model"], selective=MODELS[name],
        seed=seed,
    )  # fmt: skip
    result = train.train_classifier(
        model, *_data(cfg), steps=cfg["steps"], batch_size=cfg["batch_size"], lr=cfg["lr"],
        seed=seed, progress=False,
    )  # fmt: skip
    return dict(
        accuracy=float(result.accuracy),
        diverged=result.diverged,
        final_loss=float(np.mean(result.losses[-10:])),
        seconds=round(result.seconds, 1),
    )


def summarize(cfg: dict, results: dict) -> dict:
    rows = []
    for name in MODELS:
        runs = [results[f"{name} | seed {seed}"] for seed in cfg["seeds"]]
        accuracies = [r["accuracy"] for r in runs]
        rows.append(
            dict(
                model=name,
                accuracy=float(np.mean(accuracies)),
                accuracies=[round(a, 4) for a in accuracies],
                min_accuracy=round(min(accuracies), 4),
                max_accuracy=round(max(accuracies), 4),
                diverged=any(r["diverged"] for r in runs),
                seconds=round(sum(r["seconds"] for r in runs), 1),
            )
        )
    task = (
        f"selective_copying, L = {cfg['L']}, {cfg['n_memorize']} tokens, vocabulary "
        f"{cfg['vocab']}, chance {1 / cfg['vocab']:.3f}"
    )
    return dict(task=task, rows=rows)
