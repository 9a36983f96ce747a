"""The package's import structure: no cycle, and no unexplained import inside a function.

The graph is read from the source with ``ast`` (nothing is imported), over ``mamba_edu`` and the
``kernels/`` folder installed as ``mamba_edu.kernels``. An edge A → B means module A contains an
import of module B anywhere (top level or inside a function): a cycle hidden inside functions is
still a cycle for a reader, and it is what the architecture issue found between ``selective`` and
``kernels.selective_cpu``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"mamba_edu": ROOT / "mamba_edu", "mamba_edu.kernels": ROOT / "kernels"}


def _modules() -> dict[str, Path]:
    """Dotted module name → file, for every .py file of the two packages."""
    found = {}
    for package, folder in FOLDERS.items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join([package, *parts])
            if package == "mamba_edu" and parts[:1] == ["kernels"]:
                continue  # not a folder of mamba_edu's own (kernels/ is mapped there)
            found[name] = path
    return found


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute module an ``from ... import`` names (relative imports included)."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not _is_package(module):
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The project modules an import statement brings in (names that are modules count too)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = _resolve(module, node)
        names = [f"{base}.{alias.name}" for alias in node.names] + [base]
    out = []
    for name in names:
        # `from mamba_edu import selective` names a module; `from mamba_edu.scan import f` names
        # a function in one: keep the longest prefix that is a project module.
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name and name != module:
            out.append(name)
    return out


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                graph[name].update(_targets(name, node))
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules (first == last), or None. Iterative DFS with colours."""
    colour = dict.fromkeys(graph, 0)  # 0 unseen, 1 on the stack, 2 done
    for start in sorted(graph):
        if colour[start]:
            continue
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        colour[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                colour[node] = 2
                stack.pop()
                path.pop()
            elif colour[child] == 1:
                return path[path.index(child) :] + [child]
            elif colour[child] == 0:
                colour[child] = 1
                stack.append((child, iter(sorted(graph[child]))))
                path.append(child)
    return None


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    cycle = find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"}
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_graph_sees_known_edges():
    graph = import_graph()
    assert "mamba_edu.course" in graph["mamba_edu.cli"]  # a top-level `from mamba_edu import x`
    assert len(MODULES) > 20


def test_no_import_cycle_between_project_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " → ".join(cycle)


def test_kernels_import_only_the_contract_from_the_course_package():
    """Kernels sit beside the references: they share one argument contract and nothing else."""
    graph = import_graph()
    allowed = {"mamba_edu.contract", "mamba_edu.official"}
    offenders = {
        (name, target)
        for name, targets in graph.items()
        if name.startswith("mamba_edu.kernels")
        for target in targets
        if not target.startswith("mamba_edu.kernels")
        and target not in allowed
        # gpu_check is a command line that compares every kernel with the reference.
        and name != "mamba_edu.kernels.gpu_check"
    }
    assert not offenders, f"kernels importing course modules: {sorted(offenders)}"


def _function_imports_without_reason() -> list[str]:
    bad = []
    for path in MODULES.values():
        lines = path.read_text().splitlines()
        tree = ast.parse("\n".join(lines))
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(func):
                if not isinstance(node, ast.Import | ast.ImportFrom):
                    continue
                # The reason may sit on the import's own lines, or on the line just above the
                # run of consecutive import lines it belongs to (`try:  # why` counts).
                span = lines[node.lineno - 1 : node.end_lineno]
                row = node.lineno - 2
                while row >= 0 and lines[row].strip().startswith(("import ", "from ")):
                    span.append(lines[row])
                    row -= 1
                if row >= 0:
                    span.append(lines[row])
                if not any("#" in line for line in span):
                    here = lines[node.lineno - 1].strip()
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {here}")
    return bad


def test_imports_inside_functions_say_why():
    """Imports belong at the top of a module; one inside a function (an optional or heavy
    dependency, imported when first needed) carries a comment on its line or the line above."""
    bad = _function_imports_without_reason()
    assert not bad, "imports inside functions with no comment saying why:\n" + "\n".join(bad)


CONCEPTS = {
    "mamba_edu.contract", "mamba_edu.rnn", "mamba_edu.linear_rnn", "mamba_edu.scan",
    "mamba_edu.lru", "mamba_edu.ssm", "mamba_edu.selective", "mamba_edu.ssd", "mamba_edu.mamba",
    "mamba_edu.attention",
}  # fmt: skip
TOOLS = {
    "mamba_edu.course", "mamba_edu.grading", "mamba_edu.official", "mamba_edu.official_cuda",
    "mamba_edu.cli", "mamba_edu.book",
}  # fmt: skip


def test_layers_import_only_downward():
    """Concepts import only concepts and kernels; course material never imports the tools, except
    plots' documented look-up of the lesson list."""
    graph = import_graph()
    assert CONCEPTS <= set(graph), sorted(CONCEPTS - set(graph))
    upward = []
    for name, targets in graph.items():
        for target in targets - {"mamba_edu"}:  # the package's __init__ imports nothing
            if name in CONCEPTS and not (
                target in CONCEPTS or target.startswith("mamba_edu.kernels")
            ):
                upward.append((name, target))
            material = name not in CONCEPTS and name not in TOOLS
            material = material and not name.startswith(("mamba_edu.kernels", "mamba_edu.__main__"))
            if (
                material
                and target in TOOLS
                and (name, target) != ("mamba_edu.plots", "mamba_edu.course")
            ):
                # experiments compare with the official code: that is what official is for
                if not (
                    name.startswith("mamba_edu.experiments") and target == "mamba_edu.official"
                ):
                    upward.append((name, target))
    assert not upward, f"imports against the layers (DESIGN.md): {sorted(upward)}"
