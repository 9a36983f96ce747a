"""The machinery every experiment shares: provenance, checkpoint (resume), progress bar."""

from __future__ import annotations

import datetime
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

import mamba_edu
from mamba_edu.bench import machine_summary

__all__ = ["ExperimentError", "default_out", "run_experiment", "provenance"]


class ExperimentError(ValueError):
    """A bad experiment name or setting: the message says what was expected."""


def default_out(name: str, quick: bool) -> Path:
    """``data/NAME.json`` (full runs, committed) or ``data/cache/NAME-quick.json`` (git-ignored)."""
    return Path("data/cache" if quick else "data") / f"{name}{'-quick' if quick else ''}.json"


def command_line(name: str, quick: bool, out, overrides: dict) -> str:
    """The command that reproduces the run (for a run with overrides: says that none does)."""
    command = f"mamba-edu run {name}" + (" --quick" if quick else "") + f" --out {out}"
    if overrides:
        command += f"  (from Python, with config overrides {overrides})"
    return command


def provenance(name: str, command: str, config: dict) -> dict:
    """Fields every record starts with: what ran, where, with which versions, when (UTC)."""
    return dict(
        experiment=name,
        command=command,
        seeds=list(config.get("seeds", [])),
        machine=machine_summary(),
        python=platform.python_version(),
        numpy=np.__version__,
        torch=torch.__version__,
        mamba_edu=mamba_edu.__version__,
        date_utc=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


def _write_json(path: Path, record: dict) -> None:
    """Write through a temporary file: an interrupted write never leaves half a record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def _checkpoint_path(out: Path) -> Path:
    return out.with_name(out.name + ".partial")


def _load_checkpoint(path: Path, config: dict) -> dict:
    """Finished units of an earlier run with the same config, else nothing (a changed setting
    would mix two experiments in one record)."""
    if not path.exists():
        return {}
    try:
        saved = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    if saved.get("config") != config:
        return {}
    return saved.get("done", {})


def run_experiment(name, module, *, quick, out, overrides, progress) -> dict:
    """Run ``module``'s units (skipping those a checkpoint holds), summarize, write the record."""
    config = module.config(quick)
    unknown = set(overrides) - set(config)
    if unknown:
        raise ExperimentError(
            f"unknown setting(s) {sorted(unknown)} for {name}; expected some of {sorted(config)}"
        )
    config = {**config, **overrides}
    # JSON turns tuples into lists: compare and store the config in its JSON form
    config = json.loads(json.dumps(config))
    out = Path(out) if out is not None else default_out(name, quick)
    checkpoint = _checkpoint_path(out)
    done = _load_checkpoint(checkpoint, config)
    units = module.units(config)
    bar = None
    if progress:
        from tqdm.auto import tqdm  # optional display dependency: loaded only when a bar is shown

        bar = tqdm(total=len(units), desc=name, initial=sum(u in done for u in units))
        if done:
            bar.write(f"resuming {name}: {len(done)} of {len(units)} unit(s) done ({checkpoint})")
    for unit in units:
        if unit in done:
            continue
        if bar is not None:
            bar.set_postfix_str(unit)
        start = time.perf_counter()
        result = module.run_unit(config, unit)
        result["unit_seconds"] = round(time.perf_counter() - start, 2)
        done[unit] = result
        _write_json(checkpoint, dict(config=config, done=done))
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    record = provenance(name, command_line(name, quick, out, overrides), config)
    record["quick"] = bool(quick)
    record["total_seconds"] = round(sum(done[u]["unit_seconds"] for u in units), 1)
    record["config"] = config
    record.update(module.summarize(config, {u: done[u] for u in units}))
    _write_json(out, record)
    checkpoint.unlink(missing_ok=True)
    return record
