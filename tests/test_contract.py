"""mamba_edu.contract: the one argument contract of the scans, and the import rules around it."""

import ast
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from mamba_edu import contract

ROOT = Path(__file__).resolve().parents[1]


def test_positive_int_rejects_non_integers_with_the_name():
    assert contract.positive_int("d_state", 16) == 16
    assert contract.positive_int("d_state", np.int32(3)) == 3
    for bad in (3.0, 2.5, True, np.bool_(True), "4", None, np.ones(1)):
        with pytest.raises(TypeError, match="expected d_state to be an integer >= 1"):
            contract.positive_int("d_state", bad)
    for bad in (0, -2):
        with pytest.raises(ValueError, match=f"expected d_state to be an integer >= 1, got {bad}"):
            contract.positive_int("d_state", bad)


def test_real_scalar_rejects_arrays_bools_and_complex():
    assert contract.real_scalar("a", 2) == 2.0 and contract.real_scalar("a", np.float32(0.5)) == 0.5
    with pytest.raises(
        TypeError,
        match=re.escape("expected a to be a real number (a scalar), got an array of shape (1,)"),
    ):
        contract.real_scalar("a", np.array([0.5]))
    for bad in (True, 1j, "0.5", None):
        with pytest.raises(TypeError, match="expected a to be a real number"):
            contract.real_scalar("a", bad)


def test_float_array_names_argument_dtype_and_shape():
    out = contract.float_array("x", [[1.0, 2.0]], np.float32, shape=(1, 2), names="(batch, L)")
    assert out.dtype == np.float32 and out.shape == (1, 2)
    for bad, kind in [(np.ones(3, int), "int64"), (np.ones(3, bool), "bool"), (np.array(["a"]), "<U1"),
                      (np.array([None]), "object"), (np.ones(3, complex), "complex")]:  # fmt: skip
        with pytest.raises(
            TypeError, match=re.escape(f"expected x to be a real float array, got dtype {kind}")
        ):
            contract.float_array("x", bad)
    assert contract.float_array("x", np.arange(3), integers=True).dtype == np.float64
    with pytest.raises(
        ValueError,
        match=re.escape("expected x of shape (batch, D, L) = (2, 8, 64), got (2, 64, 8)"),
    ):
        contract.float_array("x", np.zeros((2, 64, 8)), shape=(2, 8, 64), names="(batch, D, L)")


def test_require_length():
    assert contract.require_length("x", (2, 5)) == 5
    with pytest.raises(
        ValueError,
        match=re.escape(
            "expected x of shape (..., L) with a sequence of length L >= 1, got (2, 0)"
        ),
    ):
        contract.require_length("x", (2, 0))


def test_selective_contract_is_the_same_for_numpy_and_torch():
    shapes = contract.selective_shapes(2, 3, 5, 4)
    good = {name: np.zeros(shape) for name, (shape, _) in shapes.items()}
    assert all(
        a.shape == good[n].shape
        for n, a in zip(contract.SELECTIVE_ARGS, contract.selective_args(**good), strict=True)
    )
    contract.selective_tensors(**{k: torch.from_numpy(v) for k, v in good.items()})
    for name, (shape, names) in shapes.items():
        wrong = shape[:-1] + (shape[-1] + 1,)
        if name in ("x", "A"):
            continue  # these two define the others' sizes
        message = f"expected {name} of shape {names} = {shape}, got {wrong}"
        bad = {**good, name: np.zeros(wrong)}
        with pytest.raises(ValueError, match=re.escape(message)):
            contract.selective_args(**bad)
        with pytest.raises(ValueError, match=re.escape(message)):
            contract.selective_tensors(**{k: torch.from_numpy(v) for k, v in bad.items()})


def _module_level_imports(path):
    """Names of the modules a file imports at module level (not inside functions)."""
    tree = ast.parse(path.read_text())
    names = []
    for node in tree.body:
        if isinstance(node, ast.Try):  # optional dependencies: try: import numba
            nodes = node.body
        else:
            nodes = [node]
        for item in nodes:
            if isinstance(item, ast.Import):
                names += [alias.name for alias in item.names]
            elif isinstance(item, ast.ImportFrom):
                base = "." * item.level + (item.module or "")
                names.append(base)
    return names


def test_contract_is_a_leaf_and_kernels_import_only_the_contract_from_mamba_edu():
    assert {n.split(".")[0] for n in _module_level_imports(ROOT / "mamba_edu" / "contract.py")} <= {
        "__future__", "numbers", "numpy"
    }  # fmt: skip
    for path in sorted((ROOT / "kernels").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):  # inside functions too: the kernels never reach the references
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mamba_edu"):
                module = node.module
                allowed = module in ("mamba_edu.contract",) or module.startswith(
                    "mamba_edu.kernels"
                )
                if path.name == "gpu_check.py":  # a script nothing imports (see its docstring)
                    allowed = allowed or module == "mamba_edu" or module == "mamba_edu.official"
                assert allowed, f"{path.name} imports {module}"
