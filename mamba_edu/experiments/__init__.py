"""Long runs whose results the lessons display from ``data/*.json``.

A lesson trains or times what fits in a minute or two on a laptop CPU; the longer version of the
same measurement (more seeds, longer sequences, bigger shapes) is an *experiment*: one module here,
run with ``mamba-edu run NAME`` and stored, with its provenance, as ``data/NAME.json``.

Each module defines:

* ``SUMMARY``: one line for ``mamba-edu run --list``;
* ``config(quick: bool) -> dict``: the settings of the full run (or of a tiny one that only checks
  that it runs); every number that changes the result is in it and goes into the JSON;
* ``units(config) -> list[str]``: the independent pieces of work (one rung and seed, one shape),
  in order; a run that stops is resumed from the last finished one;
* ``run_unit(config, unit) -> dict``: compute one piece (JSON-serializable);
* ``summarize(config, results: dict[str, dict]) -> dict``: the fields the lesson reads.

:func:`run` does the rest (progress bar, checkpoint, provenance). A later lesson adds an experiment
by adding a module and one line to :data:`REGISTRY`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from mamba_edu.experiments._record import ExperimentError, default_out, run_experiment

__all__ = ["REGISTRY", "ExperimentError", "get", "summaries", "run", "default_out"]

# name → module; modules are imported only when asked for (each pulls in torch and its models)
REGISTRY: dict[str, str] = {
    "lru_ladder": "mamba_edu.experiments.lru_ladder",
    "selective_copying": "mamba_edu.experiments.selective_copying",
    "scan_benchmark": "mamba_edu.experiments.scan_benchmark",
    "lm_benchmark": "mamba_edu.experiments.lm_benchmark",
    "state_expansion": "mamba_edu.experiments.state_expansion",
    "lm": "mamba_edu.experiments.lm",
    "evaluate": "mamba_edu.experiments.evaluate",
}


def get(name: str) -> ModuleType:
    """The module of experiment ``name``; an :class:`ExperimentError` listing the names otherwise."""
    if not isinstance(name, str) or name not in REGISTRY:
        known = ", ".join(sorted(REGISTRY))
        raise ExperimentError(f"unknown experiment {name!r}; expected one of: {known}")
    return importlib.import_module(REGISTRY[name])


def summaries() -> dict[str, str]:
    """name → its one-line summary, for ``mamba-edu run --list``."""
    return {name: get(name).SUMMARY for name in REGISTRY}


def run(name: str, *, quick: bool = False, out=None, config=None, progress: bool = True) -> dict:
    """Run experiment ``name`` and write its JSON record to ``out``; return the record.

    ``out`` defaults to ``data/NAME.json`` (``data/cache/NAME-quick.json`` with ``quick``, so that
    a check never overwrites a committed result). ``config`` overrides single settings (tests use it
    for tiny runs; the record then says so, and its command is not a reproduction command).
    """
    module = get(name)
    return run_experiment(
        name, module, quick=quick, out=out, overrides=config or {}, progress=progress
    )
