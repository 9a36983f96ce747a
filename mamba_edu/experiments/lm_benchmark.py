"""Lesson 07's language models on this CPU: training and generation speed, side by side.
``mamba-edu run lm_benchmark`` → ``data/lm_benchmark.json``, tables printed as it goes.

Contenders, all of one configuration (vocabulary 128, d_state 16, d_conv 4, expand 2, RMSNorm):

* ours: :class:`mamba_edu.mamba.MambaLM`, its scan on the course's numba kernel;
* mambapy: ``mambapy.lm.LM`` (pure PyTorch, parallel scan ``pscan`` for training, untied head);
* mamba_ssm: the official ``MambaLMHeadModel`` through :mod:`mamba_edu.official`, that is on its
  slow path: ``selective_scan_ref`` (a torch loop over time) for the scan, the reference RMSNorm,
  and ``Mamba.step``'s torch branch for generation;
* Transformer: :func:`mamba_edu.attention.matched_transformer` (parameter count within 5% of
  ours, KV cache for generation).

Training speed: tokens/s of one step (forward, cross-entropy, backward, AdamW) on a
(batch, L) batch. Every contender gets the same optimizer, torch's AdamW with ``fused=True`` (one
kernel over all parameters instead of about ten small operations per parameter tensor: at
d_model 128, L 64 the default, per-tensor AdamW was about 5% of our step, measured here).
Generation speed: tokens/s of ``step()`` (one token for each of the batch's sequences) after a
prompt. Every contender is warmed up first (numba compiles, allocators fill),
then timed in rounds, the contenders interleaved in a rotating order within each round, so that a
busy moment of the shared machine hits all of them; the ratio to ours is the median, over rounds,
of the ratio within a round (a paired measurement).

Within a round each contender runs its call again until ``min_time`` seconds have been timed
(at least once) and counts the mean time per call. Until 2026-12-01 it ran once: then one burst
of load from elsewhere counted in full against a contender whose step takes 0.2 s, while a 5 s
step spreads the same burst over 25 times as much work, so the ratios leaned against the fastest
contender. The single first call of every round is still recorded (``first_call_seconds``,
``time_vs_ours_first_call``), so that the two methods can be compared within one run.
"""

from __future__ import annotations

import os
import statistics
import time

import numba
import torch
import torch.nn.functional as F

from mamba_edu import attention, official
from mamba_edu import mamba as course_mamba
from mamba_edu.bench import machine_summary

__all__ = ["SUMMARY", "CONTENDERS", "config", "units", "run_unit", "summarize", "fmt_unit"]

SUMMARY = (
    "MambaLM training and generation tokens/s against mambapy, mamba_ssm (slow path), Transformer"
)

CONTENDERS = ("ours: MambaLM", "mambapy LM", "mamba_ssm MambaLMHeadModel (slow path)",
              "TransformerLM (matched)")  # fmt: skip
OURS = CONTENDERS[0]
VOCAB = 128


def config(quick: bool) -> dict:
    # One thread for torch and for numba, for every contender: on this 2-core machine shared with
    # other jobs a second thread waits for a busy core, and a training step of ours took 6.4 s
    # with 2 + 2 threads against 1.3 s with 1 + 1 (load average about 9); the ratios then measure
    # how each contender waits, not how much work it does. Pass threads for an idle machine.
    if quick:
        return dict(batch=2, n_layer=1, d_models=[16], lengths=[8], warmup=1, rounds=2,
                    min_time=0.0, prompt=4, gen_steps=3, torch_threads=1, numba_threads=1,
                    seeds=[0])  # fmt: skip
    return dict(batch=12, n_layer=4, d_models=[128, 256], lengths=[64, 256], warmup=1, rounds=3,
                min_time=1.0, prompt=16, gen_steps=32, torch_threads=1, numba_threads=1,
                seeds=[0])  # fmt: skip


def units(cfg: dict) -> list[str]:
    train = [f"train d_model={d} L={L}" for d in cfg["d_models"] for L in cfg["lengths"]]
    return train + [f"generate d_model={d}" for d in cfg["d_models"]]


# ----------------------------------------------------------------------------------------------
# the four models, with the same weights where the architectures allow
# ----------------------------------------------------------------------------------------------


def _models(d_model: int, cfg: dict) -> dict:
    """name → (model, logits(tokens), or a string saying why it is absent)."""
    torch.manual_seed(cfg["seeds"][0])
    c = course_mamba.MambaConfig(vocab_size=VOCAB, d_model=d_model, n_layer=cfg["n_layer"])
    ours = course_mamba.MambaLM(c)
    models = {OURS: (ours, ours)}
    # mambapy is an optional peer (the [parity] extra): missing, it is reported in its row
    try:
        from mambapy.lm import LM  # optional: see the comment above
        from mambapy.mamba import MambaConfig as PyConfig  # optional: see the comment above
    except ImportError:
        models[CONTENDERS[1]] = "mambapy is not installed (pip install '.[parity]')"
    else:
        py = LM(PyConfig(d_model=d_model, n_layers=c.n_layer, d_state=c.d_state, d_conv=c.d_conv,
                         expand_factor=c.expand, pscan=True), VOCAB, c.pad_vocab_size_multiple)  # fmt: skip
        models[CONTENDERS[1]] = (py, py)
    try:
        lm_class, config_class = official.mamba_lm()
    except official.Unavailable as why:
        models[CONTENDERS[2]] = str(why)
    else:
        theirs = lm_class(config_class(
            d_model=d_model, n_layer=c.n_layer, vocab_size=VOCAB, rms_norm=True,
            ssm_cfg=dict(d_state=c.d_state, d_conv=c.d_conv, expand=c.expand, use_fast_path=False),
            fused_add_norm=False, residual_in_fp32=True, tie_embeddings=True,
            pad_vocab_size_multiple=c.pad_vocab_size_multiple,
        ))  # fmt: skip
        state = {f"backbone.{k}": v for k, v in ours.state_dict().items()}
        state["lm_head.weight"] = state["backbone.embedding.weight"]
        theirs.load_state_dict(state)  # same weights as ours: same arithmetic to do
        models[CONTENDERS[2]] = (theirs, lambda tokens: theirs(tokens).logits)
    # positions only as long as the benchmark needs (a 1024-row table would outweigh a tiny model)
    max_len = max(cfg["lengths"]) + cfg["prompt"] + cfg["gen_steps"]
    transformer = attention.matched_transformer(ours, max_len=max_len)
    models[CONTENDERS[3]] = (transformer, transformer)
    return models


def _count(model) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


# ----------------------------------------------------------------------------------------------
# timing
# ----------------------------------------------------------------------------------------------


def _train_step(model, logits_fn, tokens):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    inputs, targets = tokens[:, :-1], tokens[:, 1:]

    def step():
        optimizer.zero_grad(set_to_none=True)
        logits = logits_fn(inputs)[..., :VOCAB]  # padded vocabularies: the real tokens only
        F.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1)).backward()
        optimizer.step()

    return step


def _generator(name, model, prompt, n):
    """A callable that decodes ``n`` greedy tokens after ``prompt`` with the model's own one-token
    step; the prompt is consumed before the clock starts (returns (prepare, decode))."""
    batch = prompt.shape[0]
    if name == CONTENDERS[1]:  # mambapy: no parallel prefill; its step over the prompt

        def prepare():
            caches = [(None, torch.zeros(batch, layer.mixer.config.d_inner,
                                         layer.mixer.config.d_conv - 1))
                      for layer in model.mamba.layers]  # fmt: skip
            for t in range(prompt.shape[1]):
                logits, caches = model.step(prompt[:, t], caches)
            return logits, caches

        def one(token, caches):
            return model.step(token, caches)

    elif name == CONTENDERS[2]:  # mamba_ssm: its forward with InferenceParams calls Mamba.step
        from mamba_ssm.utils.generation import InferenceParams  # mamba_ssm is loaded by official

        def prepare():
            params = InferenceParams(max_seqlen=prompt.shape[1] + n, max_batch_size=batch)
            logits = model(prompt, inference_params=params).logits[:, -1]
            params.seqlen_offset = prompt.shape[1]
            return logits, params

        def one(token, params):
            logits = model(token[:, None], inference_params=params).logits[:, -1]
            params.seqlen_offset += 1
            return logits, params

    else:  # ours and the Transformer: prefill(tokens) and step(token, state)

        def prepare():
            return model.prefill(prompt)

        def one(token, state):
            return model.step(token, state)

    def decode(start):
        logits, state = start
        for _ in range(n):
            token = logits[:, :VOCAB].argmax(-1)
            logits, state = one(token, state)

    return prepare, decode


def _rounds(jobs: dict, cfg: dict) -> tuple[dict, dict, dict]:
    """Warm every job up, then time them in ``rounds`` rounds, interleaved in a rotating order;
    in a round, a job's call is repeated until ``min_time`` seconds are timed (at least once).
    jobs: name → (prepare or None, run); a prepare() before every call, not timed. Returns
    (name → mean seconds per call, name → seconds of the round's first call, name → calls),
    each a list with one entry per round."""
    names = list(jobs)
    for name in names:
        prepare, run = jobs[name]
        for _ in range(cfg["warmup"]):
            if prepare:
                run(prepare())
            else:
                run()
    per_call = {name: [] for name in names}
    first = {name: [] for name in names}
    calls = {name: [] for name in names}
    for r in range(cfg["rounds"]):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            prepare, run = jobs[name]
            # numba's first parallel launch may reset OpenMP's (and so torch's) thread count
            torch.set_num_threads(cfg["torch_threads"])
            numba.set_num_threads(cfg["numba_threads"])
            timed = []
            while not timed or sum(timed) < cfg["min_time"]:
                start_state = prepare() if prepare else None
                start = time.perf_counter()
                run(start_state) if prepare else run()
                timed.append(time.perf_counter() - start)
            per_call[name].append(sum(timed) / len(timed))
            first[name].append(timed[0])
            calls[name].append(len(timed))
    return per_call, first, calls


def _conditions() -> dict:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return dict(torch_threads=torch.get_num_threads(), numba_threads=numba.get_num_threads(),
                load_average=round(load, 2))  # fmt: skip


def run_unit(cfg: dict, unit: str) -> dict:
    kind, *fields = unit.split()
    sizes = dict(field.split("=") for field in fields)
    d_model = int(sizes["d_model"])
    length = int(sizes.get("L", 0))
    threads, numba_threads = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(cfg["torch_threads"])
    numba.set_num_threads(cfg["numba_threads"])
    try:
        before = _conditions()
        models = _models(d_model, cfg)
        g = torch.Generator().manual_seed(cfg["seeds"][0])
        jobs, rows = {}, {}
        for name, entry in models.items():
            if isinstance(entry, str):
                rows[name] = dict(name=name, tokens_per_s=None, note=entry)
                continue
            model, logits_fn = entry
            rows[name] = dict(name=name, parameters=_count(model), note="")
            if kind == "train":
                model.train()
                tokens = torch.randint(0, VOCAB, (cfg["batch"], length + 1), generator=g)
                jobs[name] = (None, _train_step(model, logits_fn, tokens))
            else:
                model.eval()
                prompt = torch.randint(0, VOCAB, (cfg["batch"], cfg["prompt"]), generator=g)
                prepare, decode = _generator(name, model, prompt, cfg["gen_steps"])
                jobs[name] = (torch.no_grad()(prepare), torch.no_grad()(decode))
        seconds, first_seconds, calls = _rounds(jobs, cfg)
        after = _conditions()
    finally:
        torch.set_num_threads(threads)
        numba.set_num_threads(numba_threads)
    per_round = cfg["batch"] * (length if kind == "train" else cfg["gen_steps"])
    for name, times in seconds.items():
        rows[name].update(
            seconds=_digits(times),
            calls=calls[name],
            tokens_per_s=round(per_round / statistics.median(times), 1),
            time_vs_ours=_paired_ratio(times, seconds[OURS]),
            first_call_seconds=_digits(first_seconds[name]),
            time_vs_ours_first_call=_paired_ratio(first_seconds[name], first_seconds[OURS]),
        )
    result = dict(kind=kind, d_model=d_model, L=length or None, conditions_before=before,
                  conditions_after=after, rows=[rows[name] for name in CONTENDERS])  # fmt: skip
    print(fmt_unit(unit, result))
    return result


def _digits(times):
    return [float(f"{t:.6g}") for t in times]  # 6 significant digits: quick runs take ms


def _paired_ratio(times, ours):
    """The median over rounds of a round's time ÷ ours in that round."""
    return round(statistics.median(t / o for t, o in zip(times, ours, strict=True)), 3)


def fmt_unit(unit: str, result: dict) -> str:
    """One unit's result as the table the run prints (and lesson 07 shows). Records from before
    2026-12-01 timed one call per round and have no first-call column."""
    first = all("time_vs_ours_first_call" in row for row in result["rows"] if row["tokens_per_s"])
    lines = [f"\n{unit}  (load average {result['conditions_before']['load_average']} → "
             f"{result['conditions_after']['load_average']})",
             f"  {'model':<42} {'params':>9} {'tokens/s':>10} {'time ÷ ours':>12}"
             + (f" {'first call':>11}" if first else "")]  # fmt: skip
    for row in result["rows"]:
        if row["tokens_per_s"] is None:
            lines.append(f"  {row['name']:<42} {'—':>9} {'—':>10} {'':>12}  {row['note']}")
        else:
            lines.append(
                f"  {row['name']:<42} {row['parameters']:>9} {row['tokens_per_s']:>10.1f} "
                f"{row['time_vs_ours']:>11.2f}×"
                + (f" {row['time_vs_ours_first_call']:>10.2f}×" if first else "")
            )
    return "\n".join(lines)


def summarize(cfg: dict, results: dict) -> dict:
    return dict(
        note=(
            "tokens/s: batch·L / median seconds of one training step (forward, cross-entropy, "
            "backward, fused AdamW), or batch·gen_steps / median seconds of gen_steps greedy step() "
            "calls after a prompt; seconds: per round, the mean over the round's calls (repeated "
            f"until {cfg['min_time']} s were timed; calls says how many); time_vs_ours: median "
            "over rounds of that round's time ÷ ours (> 1: slower than ours); "
            "time_vs_ours_first_call: the same from each round's first call only (the method "
            "before 2026-12-01). A shared CPU: the load average is in each unit."
        ),
        machine_detail=machine_summary(),
        units=results,
    )
