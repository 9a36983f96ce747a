"""Lesson 07's longer run: the Mamba LM against the Transformer of the same size on the standard
library's docstrings, character level: ``mamba-edu run lm`` → ``data/lm.json``.

The lesson trains both models for a minute; this trains each for ``seconds`` of wall-clock time
(about 10 minutes on an idle 2-core CPU) with seeds 0, 1, 2, and stores per model and seed the
learning curve (training and validation bits per character against steps and seconds), the final
validation bits per character, and a sampled text. Unigram and bigram baselines, counted on the
training part, are stored beside them.

Equal budget means equal wall-clock time, as in the lesson: on a shared machine the number of
steps a model gets depends on the load, so the steps are stored too. Every unit sets torch and
numba to ``threads`` threads (one by default: on a CPU shared with other jobs a second thread
that waits for a busy core made a training step several times slower, see ``data/README.md``).
"""

from __future__ import annotations

import math
import time

import numba
import numpy as np
import torch
import torch.nn.functional as F

from mamba_edu import attention, data
from mamba_edu import mamba as course_mamba

__all__ = ["SUMMARY", "MODELS", "config", "units", "run_unit", "summarize", "baselines"]

SUMMARY = "lesson 07: Mamba LM vs matched Transformer, stdlib docstrings, equal time, 3 seeds"

MODELS = ("Mamba", "Transformer")


def config(quick: bool) -> dict:
    common = dict(val_fraction=0.1, prompt="def ", temperature=0.8, grad_clip=1.0, threads=1)
    if quick:
        return dict(max_chars=100_000, d_model=16, n_layer=1, n_head=2, max_len=80, batch=4, L=32, seconds=2.0,
                    max_steps=6, eval_every=3, val_batches=2, lr=3e-3, sample_chars=40,
                    seeds=[0], **common)  # fmt: skip
    return dict(max_chars=1_000_000, d_model=128, n_layer=4, n_head=4, max_len=536, batch=16, L=128, seconds=600.0,
                max_steps=1_000_000, eval_every=100, val_batches=32, lr=2e-3, sample_chars=400,
                seeds=[0, 1, 2], **common)  # fmt: skip


def units(cfg: dict) -> list[str]:
    return [f"{name} | seed {seed}" for seed in cfg["seeds"] for name in MODELS]


def _corpus(cfg: dict):
    corpus = data.load_corpus(cfg["max_chars"])
    vocab = data.CharVocab(corpus.text)
    train_ids, val_ids = data.train_val_split(vocab.encode(corpus.text), cfg["val_fraction"])
    return corpus, vocab, train_ids, val_ids


def _model(name: str, vocab_size: int, cfg: dict, seed: int):
    torch.manual_seed(seed)
    mamba = course_mamba.MambaLM(course_mamba.MambaConfig(
        vocab_size=vocab_size, d_model=cfg["d_model"], n_layer=cfg["n_layer"]))  # fmt: skip
    if name == "Mamba":
        return mamba
    # the Transformer is drawn after the Mamba of the same seed, so both depend on the seed only
    # max_len (the learned position table, counted in its parameters) is a setting of its own:
    # the matched width then does not move with the sample's length
    needed = max(cfg["L"], len(cfg["prompt"]) + cfg["sample_chars"])
    if cfg["max_len"] < needed:
        raise ValueError(
            f"expected max_len >= max(L, len(prompt) + sample_chars) = {needed}, got {cfg['max_len']}"
        )
    return attention.matched_transformer(mamba, n_head=cfg["n_head"], max_len=cfg["max_len"])


def _bpc(model, inputs, targets) -> float:
    logits = model(torch.as_tensor(inputs))
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), torch.as_tensor(targets).ravel())
    return float(loss) / math.log(2)


def _validation(model, val_windows) -> float:
    model.eval()
    with torch.no_grad():
        value = float(np.mean([_bpc(model, x, y) for x, y in val_windows]))
    model.train()
    return value


def run_unit(cfg: dict, unit: str) -> dict:
    name, seed_text = unit.split(" | ")
    seed = int(seed_text.split()[1])
    torch_threads, numba_threads = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(cfg["threads"])
    numba.set_num_threads(min(cfg["threads"], numba.config.NUMBA_NUM_THREADS))
    try:
        _, vocab, train_ids, val_ids = _corpus(cfg)
        model = _model(name, vocab.size, cfg, seed)
        # the same validation windows for every model and seed (seed 10_000: apart from training)
        val_rng = np.random.default_rng(10_000)
        val_windows = [data.random_windows(val_ids, cfg["batch"], cfg["L"], val_rng)
                       for _ in range(cfg["val_batches"])]  # fmt: skip
        rng = np.random.default_rng(seed)
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg["lr"])
        curve = [dict(step=0, seconds=0.0, train_bpc=None, val_bpc=_validation(model, val_windows))]
        train_seconds, step, recent = 0.0, 0, []
        while train_seconds < cfg["seconds"] and step < cfg["max_steps"]:
            inputs, targets = data.random_windows(train_ids, cfg["batch"], cfg["L"], rng)
            start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            logits = model(torch.as_tensor(inputs))
            loss = F.cross_entropy(logits.reshape(-1, vocab.size), torch.as_tensor(targets).ravel())
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
            optimizer.step()
            train_seconds += time.perf_counter() - start  # evaluation is not charged to the budget
            step += 1
            recent.append(loss.item() / math.log(2))
            if step % cfg["eval_every"] == 0:
                curve.append(dict(step=step, seconds=round(train_seconds, 2),
                                  train_bpc=round(float(np.mean(recent)), 4),
                                  val_bpc=round(_validation(model, val_windows), 4)))  # fmt: skip
                recent = []
        if curve[-1]["step"] != step:
            curve.append(dict(step=step, seconds=round(train_seconds, 2),
                              train_bpc=round(float(np.mean(recent)), 4) if recent else None,
                              val_bpc=round(_validation(model, val_windows), 4)))  # fmt: skip
        curve[0]["val_bpc"] = round(curve[0]["val_bpc"], 4)
        prompt = vocab.encode(cfg["prompt"])
        sample = model.generate(prompt, cfg["sample_chars"], temperature=cfg["temperature"],
                                seed=seed)  # fmt: skip
        return dict(
            model=name, seed=seed, parameters=model.num_parameters() if name == "Mamba"
            else sum(p.numel() for p in model.parameters()),
            steps=step, train_seconds=round(train_seconds, 2), tokens=step * cfg["batch"] * cfg["L"],
            val_bpc=curve[-1]["val_bpc"], curve=curve,
            sample=vocab.decode(sample[0].numpy()),
        )  # fmt: skip
    finally:
        torch.set_num_threads(torch_threads)
        numba.set_num_threads(numba_threads)


def baselines(train_ids, val_ids, vocab_size: int) -> dict:
    """Validation bits per character of the unigram and the bigram model counted on the training
    part (add-one smoothing, so that an unseen pair costs bits instead of infinity)."""
    unigram = np.bincount(train_ids, minlength=vocab_size) + 1.0
    unigram /= unigram.sum()
    pairs = np.ones((vocab_size, vocab_size))
    np.add.at(pairs, (train_ids[:-1], train_ids[1:]), 1.0)
    pairs /= pairs.sum(axis=1, keepdims=True)
    return dict(
        unigram_bpc=round(float(-np.mean(np.log2(unigram[val_ids]))), 4),
        bigram_bpc=round(float(-np.mean(np.log2(pairs[val_ids[:-1], val_ids[1:]]))), 4),
    )


def summarize(cfg: dict, results: dict) -> dict:
    corpus, vocab, train_ids, val_ids = _corpus(cfg)
    per_model = {}
    for name in MODELS:
        runs = [r for r in results.values() if r["model"] == name]
        values = [r["val_bpc"] for r in runs]
        per_model[name] = dict(
            parameters=runs[0]["parameters"], val_bpc=values,
            val_bpc_mean=round(float(np.mean(values)), 4),
            val_bpc_std=round(float(np.std(values)), 4), steps=[r["steps"] for r in runs],
        )  # fmt: skip
    return dict(
        note=("val_bpc: cross-entropy in bits per character on the same validation windows "
              "(the last 10% of the corpus); equal wall-clock training time per model "
              "(evaluation not counted); steps differ with speed and machine load."),
        corpus=dict(provenance=corpus.provenance, sha256=corpus.sha256, chars=len(corpus.text),
                    vocab_size=vocab.size),
        baselines=baselines(train_ids, val_ids, vocab.size),
        models=per_model,
        runs=results,
    )  # fmt: skip
