"""The notation decided in docs/NOTATION.md holds in every public signature of the package."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import mamba_edu

# Names the notation retired: the input is x (not u), the state size d_state or N (not dstate).
RETIRED = {
    "u": "the input is `x` (docs/NOTATION.md)",
    "dstate": "the state size is `d_state`",
    "n_state": "the state size is `d_state`",
}
# Modules whose public functions are not the course's concepts (command lines, notebook tooling).
SKIP = {"mamba_edu.cli", "mamba_edu.__main__", "mamba_edu.course", "mamba_edu.grading"}


def _public_modules():
    names = ["mamba_edu.kernels"]
    for info in pkgutil.walk_packages(mamba_edu.__path__, "mamba_edu."):
        if info.name not in SKIP and not info.name.rpartition(".")[2].startswith("_"):
            names.append(info.name)
    for info in pkgutil.walk_packages(importlib.import_module("mamba_edu.kernels").__path__):
        if not info.name.startswith("_") and info.name not in {"gpu_check"}:
            names.append(f"mamba_edu.kernels.{info.name}")
    return sorted(set(names))


def _callables(module):
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(obj):
            yield name, obj
        elif inspect.isclass(obj):
            for meth_name, meth in vars(obj).items():
                if inspect.isfunction(meth) and (
                    not meth_name.startswith("_") or meth_name == "__init__"
                ):
                    yield f"{name}.{meth_name}", meth


def _offences():
    found = []
    for module_name in _public_modules():
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:  # an optional backend (e.g. CUDA) that cannot load here
            if "mamba_edu" in str(exc):
                raise
            continue
        for name, fn in _callables(module):
            for param in inspect.signature(fn).parameters:
                if param in RETIRED:
                    found.append(f"{module_name}.{name}({param}): {RETIRED[param]}")
    return found


def test_the_scan_finds_a_planted_offence(monkeypatch):
    def planted(u, d_state):
        return u

    planted.__module__ = "mamba_edu.scan"
    monkeypatch.setattr(
        importlib.import_module("mamba_edu.scan"), "planted", planted, raising=False
    )
    assert any("planted(u)" in line for line in _offences())


def test_public_signatures_follow_the_notation():
    offences = _offences()
    assert not offences, "signatures against docs/NOTATION.md:\n" + "\n".join(offences)


def test_the_notation_table_is_in_the_package_docstring():
    for name in ("``x``", "``h``", "``d_state``", "``batch``", "(batch, D, L)"):
        assert name in mamba_edu.__doc__
