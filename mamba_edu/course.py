"""The course itself: the lesson map, building notebooks from the lesson sources, the learner workspace.

Lesson sources are jupytext percent-format files, ``notebooks/NN_slug.py``: the instructor
version, with solutions between ``### BEGIN SOLUTION`` / ``### END SOLUTION`` and hidden tests
between ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS`` (nbgrader markup). From them this
module builds

* instructor notebooks (``build_notebook``), which CI executes end to end, and
* student notebooks (``student_notebook``): every solution replaced by ``raise NotImplementedError``
  and every hidden test removed.

``update_workspace`` writes student notebooks into a learner's folder and later refreshes them,
but never overwrites a notebook the learner has changed: it keeps the learner's file, writes the
new version beside it, and says so.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat

__all__ = [
    "Lesson",
    "ROADMAP",
    "CourseError",
    "notebooks_dir",
    "lessons",
    "find_lessons",
    "build_notebook",
    "student_notebook",
    "update_workspace",
]

NB_VERSION = 4
MANIFEST = ".mamba-edu-manifest.json"

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
CODE_STUB = "raise NotImplementedError()  # YOUR CODE HERE: replace this line"
MARKDOWN_STUB = "YOUR ANSWER HERE"


class CourseError(Exception):
    """A problem the command line reports in one sentence, with a non-zero exit."""

    exit_code = 1


class UnknownLesson(CourseError):
    exit_code = 2


@dataclass(frozen=True)
class Stage:
    """One step of the roadmap from RNN to Mamba (the lesson arc of the design)."""

    number: str
    title: str
    idea: str
    budget_s: float = 180.0  # the most a lesson may take end to end under nbval on a 2-core CPU


# The lesson arc. The roadmap figure and the README's lesson map are drawn from it.
ROADMAP: tuple[Stage, ...] = (
    Stage("00", "Orientation", "how the course works; attention vs recurrence cost", 60.0),
    Stage("01", "Recurrent networks", "BPTT by hand; vanishing and exploding gradients"),
    Stage("02", "Linear RNNs", "drop the nonlinearity; diagonalize: O(N²) → O(N) per step"),
    Stage("03", "Parallel scan", "an associative operator → a scan of logarithmic depth"),
    Stage("04", "Training linear RNNs (LRU)", "exp parametrization, ring init, γ normalization"),
    Stage(
        "05", "State-space models (S4/S4D)", "continuous time, ZOH, HiPPO, convolution = recurrence"
    ),
    Stage("06", "Selectivity (S6)", "Δ, B, C depend on the input"),
    Stage("07", "The Mamba block and a small LM", "conv → SSM → gate; constant memory per token"),
    Stage("08", "From reference to kernel", "chunked scan, state on chip, reverse-scan backward"),
    Stage("09", "Evaluation and the debate", "one benchmark, equal budgets, the criticism"),
)


@dataclass(frozen=True)
class Lesson:
    """A lesson source on disk: ``notebooks/NN_slug.py``."""

    number: str
    slug: str
    path: Path

    @property
    def name(self) -> str:
        return f"{self.number}_{self.slug}"

    @property
    def title(self) -> str:
        for stage in ROADMAP:
            if stage.number == self.number:
                return stage.title
        return self.slug.replace("_", " ").capitalize()


_LESSON_FILE = re.compile(r"^(\d\d)_([a-z0-9_]+)\.py$")


def notebooks_dir() -> Path:
    """Where the lesson sources are: ``$MAMBA_EDU_NOTEBOOKS`` or the repository's ``notebooks/``."""
    env = os.environ.get("MAMBA_EDU_NOTEBOOKS")
    path = Path(env) if env else Path(__file__).resolve().parent.parent / "notebooks"
    if not path.is_dir():
        raise CourseError(
            f"cannot find the lesson sources at {path}. Install the course from its repository "
            f"(`pip install -e .`) or set MAMBA_EDU_NOTEBOOKS to the notebooks/ folder."
        )
    return path


def lessons() -> list[Lesson]:
    """Every lesson source, in course order."""
    found = []
    for path in sorted(notebooks_dir().iterdir()):
        m = _LESSON_FILE.match(path.name)
        if m:
            found.append(Lesson(m.group(1), m.group(2), path))
    return found


def find_lessons(specs: list[str] | None) -> list[Lesson]:
    """Resolve lesson names given by a person (``00``, ``0``, ``00_orientation``, ``orientation``).

    ``None`` or an empty list means every lesson. An unknown name raises :class:`UnknownLesson`
    listing the lessons there are.
    """
    available = lessons()
    if not specs:
        return available
    chosen: list[Lesson] = []
    for spec in specs:
        key = spec.strip().lower().removesuffix(".py").removesuffix(".ipynb")
        match = [
            lesson
            for lesson in available
            if key in (lesson.name, lesson.slug, lesson.number)
            or (key.isdigit() and int(key) == int(lesson.number))
        ]
        if not match:
            names = ", ".join(lesson.name for lesson in available) or "(none)"
            raise UnknownLesson(f"unknown lesson '{spec}'. The lessons are: {names}.")
        for lesson in match:
            if lesson not in chosen:
                chosen.append(lesson)
    return chosen


def build_notebook(lesson: Lesson) -> nbformat.NotebookNode:
    """The instructor notebook (solutions included) from a lesson source."""
    nb = jupytext.read(lesson.path, fmt="py:percent")
    nb.metadata.setdefault(
        "kernelspec",
        {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
    )
    nb.metadata.pop("jupytext", None)  # the built notebook is not paired with the source
    for i, cell in enumerate(nb.cells):
        # Stable ids: the same source must give the same bytes, or the workspace could not tell a
        # learner's change from a rebuild.
        cell.id = f"{lesson.number}-{i:03d}"
    return nb


def _strip_block(source: str, begin: str, end: str, replacement: str | None) -> str:
    """Replace each ``begin`` … ``end`` block (marker lines included) by ``replacement``.

    The replacement keeps the indentation of the ``begin`` line, so a stub inside a function body
    stays valid Python. ``None`` removes the block.
    """
    out: list[str] = []
    inside = False
    for line in source.splitlines():
        stripped = line.strip()
        if not inside and stripped.startswith(begin):
            inside = True
            if replacement is not None:
                indent = line[: len(line) - len(line.lstrip())]
                out.append(indent + replacement)
            continue
        if inside and stripped.startswith(end):
            inside = False
            continue
        if not inside:
            out.append(line)
    if inside:
        raise CourseError(f"a '{begin}' block has no '{end}' line")
    return "\n".join(out)


def student_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` with solutions replaced by stubs and hidden tests removed."""
    student = nbformat.from_dict(json.loads(json.dumps(nb)))
    for cell in student.cells:
        if cell.cell_type == "code":
            cell.source = _strip_block(cell.source, BEGIN_SOLUTION, END_SOLUTION, CODE_STUB)
            cell.source = _strip_block(cell.source, BEGIN_HIDDEN, END_HIDDEN, None)
            cell.outputs = []
            cell.execution_count = None
        elif cell.cell_type == "markdown":
            cell.source = _strip_block(cell.source, BEGIN_SOLUTION, END_SOLUTION, MARKDOWN_STUB)
    return student


def _notebook_bytes(nb: nbformat.NotebookNode) -> bytes:
    return (nbformat.writes(nb, version=NB_VERSION) + "\n").encode("utf-8")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class WorkspaceAction:
    lesson: str
    action: str  # "created", "updated", "unchanged", "kept yours"
    path: Path
    new_version: Path | None = None

    def describe(self) -> str:
        if self.action == "kept yours":
            return (
                f"{self.path.name}: you have changed it, so it was left as it is; the new version "
                f"is beside it as {self.new_version.name}"
            )
        return f"{self.path.name}: {self.action}"


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CourseError(f"cannot create the workspace folder {folder}: {exc.strerror}") from None
    if not folder.is_dir():
        raise CourseError(f"the workspace {folder} exists but is not a folder")
    probe = folder / f".mamba-edu-write-test-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise CourseError(
            f"cannot write in the workspace folder {folder}: {exc.strerror}"
        ) from None


def _read_manifest(folder: Path) -> dict[str, str]:
    path = folder / MANIFEST
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        raise CourseError(
            f"{path} is damaged (not JSON). It records which notebooks you have changed; move it "
            f"away and run the command again (every existing notebook will then be kept as yours)."
        ) from None
    return {str(k): str(v) for k, v in data.get("written", {}).items()}


def _is_notebook(path: Path) -> bool:
    try:
        nbformat.read(path, as_version=NB_VERSION)
    except Exception:  # noqa: BLE001 - any failure to parse means "not a notebook"
        return False
    return True


def _beside(path: Path, data: bytes) -> Path:
    """A file name next to ``path`` for the course's newer version: free, or already holding ``data``."""
    candidate = path.with_name(f"{path.stem}.new{path.suffix}")
    n = 2
    while candidate.exists() and not (candidate.is_file() and candidate.read_bytes() == data):
        candidate = path.with_name(f"{path.stem}.new{n}{path.suffix}")
        n += 1
    return candidate


def update_workspace(
    folder: str | os.PathLike, specs: list[str] | None = None
) -> list[WorkspaceAction]:
    """Write or refresh the learner's student notebooks in ``folder``; return what was done.

    A notebook is replaced only when its bytes are exactly what this command wrote last time (the
    manifest records a checksum). A notebook the learner changed (or one the manifest does not
    know) is kept; the new version goes beside it as ``NN_slug.new.ipynb``. A file in the way that
    is not a notebook stops the command before anything is written.
    """
    folder = Path(folder)
    chosen = find_lessons(specs)
    _check_writable(folder)
    manifest = _read_manifest(folder)

    planned = []
    for lesson in chosen:
        target = folder / f"{lesson.name}.ipynb"
        if target.exists() and (target.is_dir() or not _is_notebook(target)):
            raise CourseError(
                f"{target} is in the way and is not a notebook. Nothing was written: move it away "
                f"and run the command again."
            )
        planned.append((lesson, target, _notebook_bytes(student_notebook(build_notebook(lesson)))))

    actions = []
    for lesson, target, data in planned:
        if not target.exists():
            target.write_bytes(data)
            manifest[target.name] = _sha(data)
            actions.append(WorkspaceAction(lesson.name, "created", target))
            continue
        current = target.read_bytes()
        if current == data:
            manifest[target.name] = _sha(data)
            actions.append(WorkspaceAction(lesson.name, "unchanged", target))
        elif manifest.get(target.name) == _sha(current):
            target.write_bytes(data)
            manifest[target.name] = _sha(data)
            actions.append(WorkspaceAction(lesson.name, "updated", target))
        else:
            beside = _beside(target, data)
            if not beside.exists():
                beside.write_bytes(data)
            actions.append(WorkspaceAction(lesson.name, "kept yours", target, beside))
    (folder / MANIFEST).write_text(
        json.dumps({"written": manifest}, indent=1, sort_keys=True) + "\n"
    )
    return actions


def write_notebooks(out: str | os.PathLike, specs: list[str] | None = None) -> list[Path]:
    """Build the instructor notebooks into ``out`` (a generated, git-ignored folder); return their paths."""
    out = Path(out)
    chosen = find_lessons(specs)
    _check_writable(out)
    paths = []
    for lesson in chosen:
        path = out / f"{lesson.name}.ipynb"
        path.write_bytes(_notebook_bytes(build_notebook(lesson)))
        paths.append(path)
    return paths
