"""The LRU paper's ablation ladder, one idea per rung, on the recall task of lesson 04:
``mamba-edu run lru_ladder`` → ``data/lru_ladder.json``.

The paper (Orvieto et al., 2023) climbs it across three tables: Table 1 removes the nonlinearity
(tanh → dense linear RNN, the latter with a reduced learning rate on A and B), Table 2 goes diagonal
and complex and changes the parametrization and initialization, Table 3 adds the γ normalization.
Our dense rung keeps the common learning rate: its A starts with spectral radius > 1 (lesson 04
measures it), so it fails before a learning rate matters.

Every rung gets the same data, budget and seeds. Lesson 04 runs a short version live
(:func:`run_ladder`) and reads the long one from the JSON.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mamba_edu import tasks, train
from mamba_edu.lru import DenseLinearRNN, LRULayer, SequenceClassifier, TanhRNN

__all__ = ["SUMMARY", "LADDER", "ladder_model", "run_ladder", "config", "units", "run_unit"]

SUMMARY = "lesson 04: the LRU ablation ladder (6 rungs) on recall_first_token, L = 256, 3 seeds"

LADDER = (
    ("tanh RNN", dict(kind="tanh")),
    ("dense linear RNN", dict(kind="dense")),
    ("diagonal complex (Re/Im)", dict(kind="lru", parametrization="re_im", gamma=False)),
    ("+ exp parametrization", dict(kind="lru", parametrization="exp", gamma=False)),
    ("+ ring init", dict(kind="lru", parametrization="exp", gamma=False, ring=True)),
    ("+ γ normalization (LRU)", dict(kind="lru", parametrization="exp", gamma=True, ring=True)),
)
N_CLASSES, N_NOISE = 8, 8  # recall_first_token: 8 classes, 8 distractor tokens (vocabulary 16)


def ladder_model(
    rung: dict,
    H: int,
    d_state: int,
    n_classes: int,
    *,
    vocab=None,
    features=1,
    ring=(0.9, 0.999, math.pi / 10),
    seed=0,
) -> SequenceClassifier:
    """The classifier for one rung of :data:`LADDER`: inputs (batch, L) tokens → logits
    (batch, n_classes). ``ring`` = (r_min, r_max, max_phase) for the rungs with ring init."""
    kind = rung["kind"]
    if kind == "tanh":
        layer = TanhRNN(H, d_state, seed=seed)
    elif kind == "dense":
        layer = DenseLinearRNN(H, d_state, seed=seed)
    elif kind == "lru":
        r_min, r_max, max_phase = ring if rung.get("ring") else (0.0, 1.0, 2 * math.pi)
        layer = LRULayer(
            H,
            d_state,
            parametrization=rung["parametrization"],
            gamma=rung["gamma"],
            r_min=r_min,
            r_max=r_max,
            max_phase=max_phase,
            seed=seed,
        )
    else:
        raise ValueError(f"unknown rung kind {kind!r}; expected 'tanh', 'dense' or 'lru'")
    torch.manual_seed(seed)
    return SequenceClassifier(layer, H, n_classes, vocab=vocab, features=features)


def _track(step, model):
    """Largest |λ| of a diagonal rung at this step (the Re/Im rung can leave the unit circle)."""
    if isinstance(model.layer, LRULayer):
        with torch.no_grad():
            return {"max_abs_lambda": float(model.layer.eigenvalues().abs().max())}
    return None


def _data(cfg: dict):
    """Train and test sets (seeds 1 and 2: the same for every rung and model seed)."""
    L = cfg["L"]
    return (
        tasks.recall_first_token(cfg["n_train"], L, N_CLASSES, N_NOISE, seed=1),
        tasks.recall_first_token(cfg["n_test"], L, N_CLASSES, N_NOISE, seed=2),
    )


def _train_rung(rung_index: int, seed: int, cfg: dict, data, progress) -> dict:
    name, rung = LADDER[rung_index]
    torch.set_num_threads(1)  # small models: one thread is faster and steadier than two
    model = ladder_model(
        rung, cfg["H"], cfg["d_state"], n_classes=N_CLASSES, vocab=N_CLASSES + N_NOISE, seed=seed
    )
    result = train.train_classifier(
        model, *data, steps=cfg["steps"], lr=cfg["lr"], seed=seed, progress=progress, on_step=_track
    )
    return dict(
        accuracy=0.0 if result.diverged else result.accuracy,
        diverged=result.diverged,
        max_abs_lambda=max(result.extra.get("max_abs_lambda", [0.0])),
        seconds=result.seconds,
    )


def _rows(cfg: dict, per_seed) -> list[dict]:
    """One row per rung: mean and per-seed accuracy (a diverged seed counts 0), largest |λ| seen,
    whether any seed diverged, training seconds summed over seeds."""
    rows = []
    for index, (name, _) in enumerate(LADDER):
        runs = [per_seed(index, seed) for seed in cfg["seeds"]]
        max_lam = max(r["max_abs_lambda"] for r in runs)
        rows.append(
            dict(
                rung=name,
                accuracy=float(np.mean([r["accuracy"] for r in runs])),
                accuracies=[round(r["accuracy"], 4) for r in runs],
                max_abs_lambda=round(max_lam, 4) if max_lam else None,
                diverged=any(r["diverged"] for r in runs),
                seconds=round(sum(r["seconds"] for r in runs), 1),
            )
        )
    return rows


def run_ladder(
    L: int = 64,
    *,
    steps: int = 150,
    seeds=(0,),
    H: int = 32,
    d_state: int = 32,
    lr: float = 1e-2,
    n_train: int = 4096,
    n_test: int = 1024,
    progress: bool = True,
) -> list[dict]:
    """Train every rung of :data:`LADDER` now (the lesson's live version); return its rows."""
    cfg = dict(L=L, steps=steps, seeds=list(seeds), H=H, d_state=d_state, lr=lr,
               n_train=n_train, n_test=n_test)  # fmt: skip
    data = _data(cfg)
    results = {
        (index, seed): _train_rung(
            index, seed, cfg, data, f"{LADDER[index][0]}, seed {seed}" if progress else False
        )
        for index in range(len(LADDER))
        for seed in cfg["seeds"]
    }
    return _rows(cfg, lambda index, seed: results[index, seed])


# --- the experiment interface (see mamba_edu.experiments) ---------------------------------------


def config(quick: bool) -> dict:
    if quick:
        return dict(L=16, steps=3, seeds=[0], H=8, d_state=8, lr=1e-2, n_train=64, n_test=32)
    return dict(L=256, steps=200, seeds=[0, 1, 2], H=32, d_state=32, lr=1e-2, n_train=4096,
                n_test=1024)  # fmt: skip


def units(cfg: dict) -> list[str]:
    return [f"rung {index} seed {seed}" for index in range(len(LADDER)) for seed in cfg["seeds"]]


_DATA_CACHE: dict = {}


def run_unit(cfg: dict, unit: str) -> dict:
    _, index, _, seed = unit.split()
    key = (cfg["L"], cfg["n_train"], cfg["n_test"])
    if key not in _DATA_CACHE:  # the same data for every unit of a run: make it once
        _DATA_CACHE.clear()
        _DATA_CACHE[key] = _data(cfg)
    return _train_rung(int(index), int(seed), cfg, _DATA_CACHE[key], progress=False)


def summarize(cfg: dict, results: dict) -> dict:
    task = f"recall_first_token, L = {cfg['L']}, {N_CLASSES} classes, {N_NOISE} distractor tokens"
    return dict(
        task=task, rows=_rows(cfg, lambda index, seed: results[f"rung {index} seed {seed}"])
    )
