"""Lesson 09's benchmark: five model families, the same parameter count and the same wall-clock
budget, on eight small tasks, three seeds: ``mamba-edu run evaluate`` → ``data/evaluation.json``.

Seven tasks are classification (held-out **accuracy**, higher is better); the eighth,
``char_lm``, is lesson 07's character language model on the standard library's docstrings
(:mod:`mamba_edu.data`): every position of a window predicts the next character, and the score is
validation **bits per character** (lower is better), with the unigram and bigram models counted
on the training part as references. Each row of the record names its ``metric`` and whether
``higher_is_better``; its ``score`` fields hold that metric.

Families (each a stack of ``n_layer`` pre-norm residual blocks between a shared kind of input
embedding and a linear read-out at the answer positions):

* ``GRU``: a gated nonlinear RNN (the strong form of lesson 01's RNN) + an MLP per layer;
* ``LRU``: :class:`mamba_edu.lru.LRULayer` (lesson 04) + an MLP;
* ``S4D``: the time-invariant S4D-Real layer of lesson 06 (``SelectiveSSM(selective=False)``)
  + an MLP;
* ``Mamba``: the full block of lesson 07, :class:`mamba_edu.mamba.Mamba` (no MLP, as in Mamba);
* ``Transformer``: the decoder layers of lesson 07's :class:`mamba_edu.attention.TransformerLM`
  with fixed sinusoidal positions (learned ones could not be tested at 16× the training length).

Parameter counts are matched to a Mamba model of ``reference_width`` on every task by
:func:`match_width` (within ``tolerance``, ±10 %); each model then trains for ``budget_seconds``
of wall-clock time (``train.train_classifier(max_seconds=...)``), so a fast model gets more steps.
The record keeps both, with every model's state size, so that a reader can see which resource
(parameters, time, memory) each comparison held equal, and the machine's load average
(``os.getloadavg()``) at the start and end of each unit: the budget is wall-clock time, so a busy
machine gives every model fewer steps.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np
import torch
from torch import nn

from mamba_edu import attention, data, lru, mamba, selective, tasks, train
from mamba_edu.experiments import lm

__all__ = [
    "SUMMARY",
    "FAMILIES",
    "METRICS",
    "task_metric",
    "validation_bpc",
    "EvalModel",
    "match_width",
    "matched_widths",
    "state_size",
    "set_threads",
    "config",
    "units",
    "task_names",
    "run_unit",
    "summarize",
    "fmt_table",
]

SUMMARY = (
    "lesson 09: GRU, LRU, S4D, Mamba, Transformer at equal parameters and time on 8 small tasks "
    "(7 accuracies, character LM bits per character), 3 seeds"
)

FAMILIES = ("GRU", "LRU", "S4D", "Mamba", "Transformer")
N_HEAD = 2  # the Transformer's heads (small widths: 2 heads keep the head size near 8 or more)
LRU_STATE_PER_D_STATE = 4  # the LRU keeps 4 · d_state complex numbers (it has no per-channel N)
# metric → higher is better? Accuracy: fraction of right answers; bpc: bits per character
METRICS = {"accuracy": True, "bpc": False}


# ----------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------


class _Residual(nn.Module):
    """x + f(norm(x)): the pre-norm residual wrapper every family's blocks share."""

    def __init__(self, width, inner, norm=None):
        super().__init__()
        self.norm = norm if norm is not None else nn.LayerNorm(width)
        self.inner = inner

    def forward(self, x):
        return x + self.inner(self.norm(x))


class _GRUMixer(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.gru = nn.GRU(width, width, batch_first=True)

    def forward(self, x):  # (batch, L, width) → (batch, L, width)
        return self.gru(x)[0]


class _AttentionBlock(nn.Module):
    """One of TransformerLM's decoder layers (it holds its own norms and residuals)."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(x)[0]


def _mlp(width):
    return nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))


def _blocks(family, width, n_layer, d_state, max_len, seed):
    """The family's n_layer blocks (batch, L, width) → (batch, L, width), and the positions table
    (the Transformer's only; None for the recurrent families, which know order from the scan)."""
    if family == "GRU":
        blocks = [
            [_Residual(width, _GRUMixer(width)), _Residual(width, _mlp(width))]
            for _ in range(n_layer)
        ]
    elif family == "LRU":
        blocks = [
            [
                # r in [0.9, 0.999]: the LRU paper's ring for long-range tasks (lesson 04)
                _Residual(
                    width,
                    lru.LRULayer(
                        width,
                        LRU_STATE_PER_D_STATE * d_state,
                        r_min=0.9,
                        r_max=0.999,
                        seed=seed + i,
                    ),
                ),
                _Residual(width, _mlp(width)),
            ]  # fmt: skip
            for i in range(n_layer)
        ]
    elif family == "S4D":
        # SelectiveSSM holds its own norm and residual
        blocks = [
            [selective.SelectiveSSM(width, d_state, selective=False), _Residual(width, _mlp(width))]
            for _ in range(n_layer)
        ]
    elif family == "Mamba":
        blocks = [
            [_Residual(width, mamba.Mamba(width, d_state=d_state), mamba.RMSNorm(width))]
            for _ in range(n_layer)
        ]
    elif family == "Transformer":
        config = attention.TransformerConfig(
            vocab_size=1, d_model=width, n_layer=n_layer, n_head=N_HEAD, max_len=max_len,
            positions="sinusoidal",
        )  # fmt: skip
        model = attention.TransformerLM(config)  # its initialization (GPT-2's) comes along
        return [_AttentionBlock(layer) for layer in model.layers], model.position
    else:
        raise ValueError(f"expected family one of {FAMILIES}, got {family!r}")
    return [b for pair in blocks for b in pair], None


class EvalModel(nn.Module):
    """Inputs → embedding → the family's blocks → LayerNorm → logits at the answer positions.

    ``vocab``: token inputs (batch, L) int64; else ``features``: (batch, L, features) float.
    ``n_out=None``: one answer, read at the last position → logits (batch, n_classes);
    ``n_out=K``: K answers at the last K positions → (batch, K, n_classes).
    ``d_state``: N of S4D and Mamba per channel; the LRU keeps 4·d_state complex numbers; the
    GRU's state is its width; attention keeps every position. ``max_len``: the longest sequence
    the Transformer's position table covers.
    """

    def __init__(
        self, family, width, n_classes, *, vocab=None, features=None, n_out=None, n_layer=2,
        d_state=16, max_len=1024, seed=0,
    ):  # fmt: skip
        super().__init__()
        if family not in FAMILIES:
            raise ValueError(f"expected family one of {FAMILIES}, got {family!r}")
        if (vocab is None) == (features is None):
            raise ValueError("expected exactly one of vocab (token inputs) or features (floats)")
        if not isinstance(width, int) or width < 2:
            raise ValueError(f"expected width an integer >= 2, got {width!r}")
        if family == "Transformer" and width % N_HEAD:
            raise ValueError(
                f"expected the Transformer's width a multiple of {N_HEAD}, got {width}"
            )
        self.family, self.width, self.n_out, self.d_state = family, width, n_out, d_state
        with torch.random.fork_rng():  # seeded weights; the caller's random stream is untouched
            torch.manual_seed(seed)
            self.embed = nn.Embedding(vocab, width) if vocab else nn.Linear(features, width)
            blocks, positions = _blocks(family, width, n_layer, d_state, max_len, seed)
            self.blocks = nn.ModuleList(blocks)
            self.norm = nn.LayerNorm(width)
            self.head = nn.Linear(width, n_classes)
        if positions is not None:
            self.register_buffer("positions", positions.float(), persistent=False)
        else:
            self.positions = None

    def forward(self, x):
        h = self.embed(x)  # (batch, L, width)
        if self.positions is not None:
            if h.shape[1] > len(self.positions):
                raise ValueError(
                    f"expected at most max_len = {len(self.positions)} positions, got {h.shape[1]}"
                )
            h = h + self.positions[: h.shape[1]]
        for block in self.blocks:
            h = block(h)
        if self.n_out is None:
            return self.head(self.norm(h[:, -1]))
        return self.head(self.norm(h[:, -self.n_out :]))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def state_size(family, width, d_state, n_layer, length) -> int:
    """Numbers a model keeps about the past while reading ``length`` tokens (all layers): what
    decides how much it can recall (MQAR, copying). Mamba and S4D: d_inner · N per layer
    (expand 2); LRU: 2 reals per complex state; GRU: its width; Transformer: keys and values of
    every position, 2 · width · length per layer (it grows with the text)."""
    per_layer = {
        "GRU": width,
        "LRU": 2 * LRU_STATE_PER_D_STATE * d_state,
        "S4D": 2 * width * d_state,
        "Mamba": 2 * width * d_state,
        "Transformer": 2 * width * length,
    }
    if family not in per_layer:
        raise ValueError(f"expected family one of {FAMILIES}, got {family!r}")
    return n_layer * per_layer[family]


def match_width(count, target: int, widths, tolerance: float = 0.1) -> tuple[int, int]:
    """The width whose ``count(width)`` is closest to ``target``: (width, count).

    ``widths`` are tried in increasing order and the search stops once a count passes the target
    (counts grow with the width). Raises ValueError, naming the closest, if no count is within
    ``tolerance`` (a fraction: 0.1 = ±10 %) of the target.
    """
    if not isinstance(target, int | np.integer) or target < 1:
        raise ValueError(f"expected target a positive integer count, got {target!r}")
    if not 0 < tolerance < 1:
        raise ValueError(f"expected 0 < tolerance < 1, got {tolerance}")
    best = None
    for width in sorted(widths):
        n = int(count(width))
        if best is None or abs(n - target) < abs(best[1] - target):
            best = (width, n)
        if n > target:
            break
    if best is None:
        raise ValueError("expected at least one width to try, got none")
    if abs(best[1] - target) > tolerance * target:
        raise ValueError(
            f"no width gives a count within {tolerance:.0%} of {target} (closest: width "
            f"{best[0]} with {best[1]})"
        )
    return best


def _widths(family):
    """Widths to try: any from 2 up, multiples of the head count for the Transformer."""
    return range(N_HEAD, 257, N_HEAD) if family == "Transformer" else range(2, 257)


def matched_widths(spec: dict, cfg: dict, d_state: int) -> dict:
    """family → (width, parameters) for one task, every family matched to Mamba at
    ``cfg["reference_width"]``."""
    kwargs = dict(
        n_classes=spec["n_classes"], vocab=spec.get("vocab"), features=spec.get("features"),
        n_out=spec.get("n_out"), n_layer=cfg["n_layer"], d_state=d_state,
        max_len=spec["max_len"],
    )  # fmt: skip

    def count(family):
        return lambda width: EvalModel(family, width, **kwargs).num_parameters()

    target = count("Mamba")(cfg["reference_width"])
    return {
        family: match_width(count(family), target, _widths(family), cfg["tolerance"])
        for family in cfg["families"]
    }


# ----------------------------------------------------------------------------------------------
# Tasks
# ----------------------------------------------------------------------------------------------


def task_metric(name: str) -> str:
    """The metric a task is scored with: "bpc" for the character LM, "accuracy" otherwise."""
    if not isinstance(name, str):
        raise ValueError(f"expected a task name (str), got {name!r}")
    return "bpc" if name.split(" (")[0] == "char_lm" else "accuracy"


def validation_bpc(model, val_ids, length: int) -> float:
    """Bits per character of ``model`` (tokens (batch, length) → logits (batch, length, vocab))
    on ``val_ids`` (n · length + 1,) cut into n consecutive windows: every character after the
    first is predicted once, from the characters before it in its window
    (:func:`mamba_edu.train.bits_per_char`). The mean over those n · length targets of
    −log₂ p(target), so a model that predicts the bigram distribution scores the bigram bpc."""
    val_ids = np.asarray(val_ids)
    if val_ids.ndim != 1 or len(val_ids) < length + 1 or (len(val_ids) - 1) % length:
        raise ValueError(
            f"expected val_ids of shape (n · length + 1,) with length = {length}, "
            f"got {val_ids.shape}"
        )
    return train.bits_per_char(model, val_ids, length=length)


def _char_lm(t: dict) -> dict:
    """Lesson 07's corpus (cached, checksummed) and its fixed split: training windows of L + 1
    characters at random offsets of the training part (seed 1), and the first n_test · L + 1
    characters of the validation part, cut into consecutive windows (every model and seed is
    scored on the same characters)."""
    corpus = data.load_corpus(t["max_chars"])
    vocab = data.CharVocab(corpus.text)
    train_ids, val_ids = data.train_val_split(vocab.encode(corpus.text), t["val_fraction"])
    L, n_val = t["L"], t["n_test"] * t["L"] + 1
    if len(val_ids) < n_val:
        raise ValueError(
            f"expected a validation part of at least n_test · L + 1 = {n_val} characters, got "
            f"{len(val_ids)} (raise max_chars or lower n_test)"
        )
    val_ids = val_ids[:n_val]
    x_train, y_train = data.random_windows(train_ids, t["n_train"], L, np.random.default_rng(1))
    x_test, y_test = val_ids[:-1].reshape(-1, L), val_ids[1:].reshape(-1, L)
    return dict(
        train=(x_train, y_train), test=(x_test, y_test), val_ids=val_ids, vocab=vocab.size,
        n_classes=vocab.size, n_out=L, max_len=L,
        chance=math.log2(vocab.size),  # bits per character of the uniform guess
        baselines=lm.baselines(train_ids, val_ids, vocab.size),
        corpus=dict(provenance=corpus.provenance, sha256=corpus.sha256, chars=len(corpus.text),
                    vocab_size=vocab.size, train_chars=len(train_ids),
                    val_chars_scored=n_val - 1),
    )  # fmt: skip


def task_names(cfg: dict) -> list[str]:
    """The benchmark's tasks; MQAR once per state size."""
    names = [name for name in cfg["tasks"] if name != "mqar"]
    if "mqar" in cfg["tasks"]:
        names += [f"mqar (d_state {n})" for n in cfg["tasks"]["mqar"]["d_states"]]
    return names


def _task_spec(cfg: dict, name: str) -> dict:
    """Data and shapes of task ``name``: train/test pairs (train seed 1, test seed 2, as lesson
    06), the input kind, classes, answer positions, chance, extra test sets."""
    base = name.split(" (")[0]
    t = cfg["tasks"][base]
    n_train, n_test = t["n_train"], t["n_test"]
    spec = dict(d_state=cfg["d_state"], extra={})
    if base == "selective_copying":
        args = (t["L"], t["n_memorize"], t["vocab"])
        spec.update(
            train=tasks.selective_copying(n_train, *args, seed=1),
            test=tasks.selective_copying(n_test, *args, seed=2),
            vocab=t["vocab"] + 2, n_classes=t["vocab"] + 1, n_out=t["n_memorize"],
            chance=1 / t["vocab"], max_len=t["L"] + t["n_memorize"],
        )  # fmt: skip
    elif base == "induction_heads":
        L, vocab = t["L"], t["vocab"]
        spec.update(
            train=tasks.induction_heads(n_train, L, vocab, seed=1),
            test=tasks.induction_heads(n_test, L, vocab, seed=2),
            vocab=vocab + 1, n_classes=vocab, n_out=None, chance=1 / vocab,
            max_len=L * max(t["test_factors"]),
        )  # fmt: skip
        spec["extra"] = {
            f"accuracy at L = {L * f}": tasks.induction_heads(n_test, L * f, vocab, seed=3 + f)
            for f in t["test_factors"]
            if f != 1
        }
    elif base == "listops":
        kwargs = {k: t[k] for k in ("max_length", "min_length", "max_depth", "max_args")}
        kwargs["p_operator"] = t["p_operator"]
        train_set = tasks.listops(n_train, seed=1, **kwargs)
        spec.update(
            train=train_set, test=tasks.listops(n_test, seed=2, **kwargs),
            vocab=tasks.LISTOPS_VOCAB, n_classes=10, n_out=None, max_len=t["max_length"],
            # the majority class of the training labels: what a constant guess reaches
            chance=float(np.bincount(train_set[1], minlength=10).max() / n_train),
        )  # fmt: skip
    elif base == "digits":
        train_set, test_set = tasks.digits_pixels(seed=0)
        spec.update(
            train=train_set, test=test_set, features=1, n_classes=10, n_out=None, chance=0.1,
            max_len=64,
        )  # fmt: skip
    elif base == "long_copy":
        length, vocab = t["length"], t["vocab"]
        spec.update(
            train=tasks.long_copy(n_train, length, vocab, seed=1),
            test=tasks.long_copy(n_test, length, vocab, seed=2),
            vocab=vocab + 1, n_classes=vocab, n_out=length, chance=1 / vocab,
            max_len=2 * length,
        )  # fmt: skip
    elif base == "mqar":
        pairs, vocab = t["n_pairs"], t["vocab"]
        spec.update(
            train=tasks.mqar(n_train, pairs, vocab, seed=1),
            test=tasks.mqar(n_test, pairs, vocab, seed=2),
            vocab=vocab, n_classes=vocab, n_out=pairs, chance=2 / vocab, max_len=3 * pairs,
            d_state=int(name.split("d_state ")[1].rstrip(")")),
        )  # fmt: skip
    elif base == "char_lm":
        spec.update(_char_lm(t))
    else:
        raise ValueError(f"expected a task of {task_names(cfg)}, got {name!r}")
    return spec


_CACHE: dict = {}


def _cached(cfg: dict, name: str):
    """(spec, matched widths) of a task, computed once per process and configuration."""
    key = (repr(sorted(cfg.items())), name)
    if key not in _CACHE:
        _CACHE.clear()  # one task at a time in memory: the units run task by task
        spec = _task_spec(cfg, name)
        _CACHE[key] = (spec, matched_widths(spec, cfg, spec["d_state"]))
    return _CACHE[key]


# ----------------------------------------------------------------------------------------------
# The experiment interface
# ----------------------------------------------------------------------------------------------


def config(quick: bool) -> dict:
    if quick:  # checks that everything runs, in well under two minutes; its numbers mean nothing
        return dict(
            families=list(FAMILIES), seeds=[0], budget_seconds=0.3, max_steps=200,
            batch_size=16, lr=3e-3, reference_width=32, n_layer=1, d_state=4, tolerance=0.1,
            threads=1, curve_points=20,
            tasks=dict(
                selective_copying=dict(L=12, n_memorize=2, vocab=4, n_train=128, n_test=32),
                induction_heads=dict(L=8, vocab=4, test_factors=[1, 2], n_train=128, n_test=32),
                listops=dict(max_length=16, min_length=6, max_depth=3, max_args=3,
                             p_operator=0.35, n_train=128, n_test=32),
                digits=dict(n_train=None, n_test=None),
                long_copy=dict(length=6, vocab=4, n_train=128, n_test=32),
                mqar=dict(n_pairs=3, vocab=12, d_states=[1, 4], n_train=128, n_test=32),
                char_lm=dict(max_chars=100_000, val_fraction=0.1, L=32, n_train=256, n_test=16),
            ),
        )  # fmt: skip
    return dict(
        families=list(FAMILIES), seeds=[0, 1, 2], budget_seconds=20.0, max_steps=100_000,
        batch_size=32, lr=3e-3, reference_width=32, n_layer=2, d_state=16, tolerance=0.1,
        threads=1, curve_points=50,
        tasks=dict(
            selective_copying=dict(L=64, n_memorize=4, vocab=8, n_train=4096, n_test=512),
            induction_heads=dict(L=64, vocab=16, test_factors=[1, 2, 4, 8, 16], n_train=4096,
                                 n_test=256),
            listops=dict(max_length=64, min_length=24, max_depth=5, max_args=5,
                         p_operator=0.35, n_train=4096, n_test=512),
            digits=dict(n_train=None, n_test=None),  # scikit-learn's 1,797 images, split 3:1
            long_copy=dict(length=32, vocab=16, n_train=4096, n_test=512),
            mqar=dict(n_pairs=16, vocab=64, d_states=[2, 16], n_train=4096, n_test=512),
            # lesson 07's corpus (1,000,000 characters, its 90/10 split); 256 windows of 128
            # consecutive validation characters (32,768 scored)
            char_lm=dict(max_chars=1_000_000, val_fraction=0.1, L=128, n_train=8192, n_test=256),
        ),
    )  # fmt: skip


def units(cfg: dict) -> list[str]:
    """Seed-major: an interrupted run has every task for the first seeds."""
    return [
        f"{task} | {family} | seed {seed}"
        for seed in cfg["seeds"]
        for task in task_names(cfg)
        for family in cfg["families"]
    ]


def _curve(losses, times, points):
    """At most ``points`` (step, seconds, loss) samples, each loss the mean since the last one
    (per-step losses are noisy minibatch estimates)."""
    if not losses:
        return dict(step=[], seconds=[], loss=[])
    edges = np.unique(np.linspace(0, len(losses), points + 1).astype(int))
    step, seconds, loss = [], [], []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        step.append(int(hi))
        seconds.append(round(float(times[hi - 1]), 3))
        loss.append(round(float(np.mean(losses[lo:hi])), 4))
    return dict(step=step, seconds=seconds, loss=loss)


def set_threads(threads: int) -> None:
    """Use ``threads`` threads in torch and in the numba kernels (Mamba's and S4D's scans).

    Measured on the course's 2-core machine: after one of numba's parallel kernels has run, its
    OpenMP worker threads keep the cores busy between kernels, and every other model trained in
    the same process ran about 10x slower (3 GRU steps in 3 s instead of 26); Mamba itself made
    2 steps instead of 18. One thread each gives every family the same, undisturbed clock.
    """
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"expected threads a positive integer, got {threads!r}")
    torch.set_num_threads(threads)
    # imported here: numba is the CPU kernels' dependency, loaded by them on first use anyway
    import numba

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def _warm_up(model, data):
    """One untimed forward and backward pass: numba compiles its kernels on first use (seconds),
    which must not be charged to the first model's time budget. No weight changes."""
    x, y = (torch.as_tensor(a[:2]) for a in data)
    logits = model(x)
    torch.nn.functional.cross_entropy(logits.flatten(0, -2), y.flatten()).backward()
    model.zero_grad(set_to_none=True)


def _load():
    """The machine's load averages over 1, 5 and 15 minutes (runnable processes per core
    summed over cores: 2 means two busy cores' worth of work)."""
    return [round(x, 2) for x in os.getloadavg()]


def run_unit(cfg: dict, unit: str) -> dict:
    load_start = _load()
    task, family, seed_text = unit.split(" | ")
    seed = int(seed_text.split()[1])
    set_threads(cfg["threads"])  # small models: one thread, and a fair clock for all
    spec, widths = _cached(cfg, task)
    width, params = widths[family]
    model = EvalModel(
        family, width, spec["n_classes"], vocab=spec.get("vocab"), features=spec.get("features"),
        n_out=spec["n_out"], n_layer=cfg["n_layer"], d_state=spec["d_state"],
        max_len=spec["max_len"], seed=seed,
    )  # fmt: skip
    _warm_up(model, spec["train"])
    start = time.perf_counter()
    result = train.train_classifier(
        model, spec["train"], spec["test"], steps=cfg["max_steps"], batch_size=cfg["batch_size"],
        lr=cfg["lr"], seed=seed, progress=False, max_seconds=cfg["budget_seconds"],
        on_step=lambda step, m: {"t": time.perf_counter() - start},
    )  # fmt: skip
    length = spec["test"][0].shape[1]
    metric = task_metric(task)
    out = dict(
        task=task, model=family, seed=seed, width=width, params=params,
        state=state_size(family, width, spec["d_state"], cfg["n_layer"], length),
        metric=metric, accuracy=float(result.accuracy), chance=round(spec["chance"], 4),
        diverged=result.diverged, steps=len(result.losses), seconds=round(result.seconds, 2),
        curve=_curve(result.losses, result.extra.get("t", []), cfg["curve_points"]),
    )  # fmt: skip
    if metric == "bpc":  # accuracy above is next-character accuracy; bpc is the score
        out["bpc"] = (
            float("nan") if result.diverged else validation_bpc(model, spec["val_ids"], length)
        )
    for key, (x, y) in spec["extra"].items():
        out[key] = float("nan") if result.diverged else train.accuracy(model, x, y)
    out["load_start"], out["load_end"] = load_start, _load()
    return out


def _round(x, digits=4):
    return round(float(x), digits)


def summarize(cfg: dict, results: dict) -> dict:
    """One row per (task, model): the task's ``metric`` (accuracy, higher is better; or bpc,
    lower is better) as ``score`` (mean over seeds), ``scores`` (per seed), ``min_score`` and
    ``max_score``; ``chance`` is the score of a guess (a uniform guess's bpc for the LM), and the
    LM rows add the ``baselines`` (unigram and bigram bpc); parameters, state and mean steps.
    ``runs`` keeps each unit (learning curves and load averages included) for the explorer."""
    rows, baselines = [], {}
    for task in task_names(cfg):
        metric = task_metric(task)
        if metric == "bpc":
            spec, _ = _cached(cfg, task)
            baselines[task] = dict(**spec["baselines"], corpus=spec["corpus"])
        for family in cfg["families"]:
            runs = [results[f"{task} | {family} | seed {s}"] for s in cfg["seeds"]]
            scores = [r[metric] for r in runs]
            row = dict(
                task=task, model=family, metric=metric, higher_is_better=METRICS[metric],
                params=runs[0]["params"], width=runs[0]["width"], state=runs[0]["state"],
                chance=runs[0]["chance"], score=_round(np.mean(scores)),
                scores=[_round(v) for v in scores], min_score=_round(min(scores)),
                max_score=_round(max(scores)), steps=int(np.mean([r["steps"] for r in runs])),
                seconds=round(float(np.mean([r["seconds"] for r in runs])), 1),
                diverged=any(r["diverged"] for r in runs),
            )  # fmt: skip
            if metric == "bpc":
                row["baselines"] = {k: v for k, v in baselines[task].items() if k != "corpus"}
                row["next_char_accuracy"] = _round(np.mean([r["accuracy"] for r in runs]))
            for key in runs[0]:
                if key.startswith("accuracy at L"):
                    row[key] = _round(np.mean([r[key] for r in runs]))
            rows.append(row)
    loads = [r[k][0] for r in results.values() for k in ("load_start", "load_end") if k in r]
    return dict(
        tasks=task_names(cfg),
        metrics={task: task_metric(task) for task in task_names(cfg)},
        budget=f"{cfg['budget_seconds']} s of training per model, task and seed "
        f"({cfg['threads']} torch thread), parameters within ±{cfg['tolerance']:.0%} of Mamba "
        f"at width {cfg['reference_width']}",
        # the 1-minute load average at the starts and ends of the units (2 = both cores busy)
        load_average=dict(min=min(loads), mean=_round(np.mean(loads), 2), max=max(loads))
        if loads
        else None,
        baselines=baselines,
        rows=rows,
        runs=results,
    )


def fmt_table(record: dict, task: str | None = None) -> str:
    """The record's rows as a plain-text table (one task, or all). The metric column says what
    the score is and which way is better: "accuracy ↑" or "bpc ↓"."""
    rows = [row for row in record["rows"] if task is None or row["task"] == task]
    if not rows:
        tasks = sorted({row["task"] for row in record["rows"]})
        raise ValueError(f"expected a task of the record, one of {tasks}, got {task!r}")
    lines = [
        f"{'task':<20} {'model':<12} {'params':>7} {'state':>7} {'steps':>6} {'metric':<10} "
        f"{'score':>6} {'seed range':>13}"
    ]
    for row in rows:
        metric = f"{row['metric']} {'↑' if row['higher_is_better'] else '↓'}"
        lines.append(
            f"{row['task']:<20} {row['model']:<12} {row['params']:>7} {row['state']:>7} "
            f"{row['steps']:>6} {metric:<10} {row['score']:>6.3f} "
            f"{row['min_score']:>6.3f}–{row['max_score']:<6.3f}"
        )
    for name, b in record.get("baselines", {}).items():
        lines.append(
            f"{name}: unigram {b['unigram_bpc']:.3f} bpc, bigram {b['bigram_bpc']:.3f} bpc "
            f"(counted on the training part), uniform guess {math.log2(b['corpus']['vocab_size']):.3f}"
        )
    return "\n".join(lines)
