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

For instructors, ``assign`` lays out an nbgrader course folder (``nbgrader_config.py`` and
``source/<lesson>/<lesson>.ipynb``) from the same sources, with the same care for files the
instructor has changed; ``exercises`` and ``find_exercise`` read the exercises of a lesson (the
solution cell, its test cell, its points), which is also how a self-learner gets one solution
(``mamba-edu solution``). ``check_markup`` states the rules every exercise follows.
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
    "Exercise",
    "exercises",
    "find_exercise",
    "check_markup",
    "assign",
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
class FileAction:
    """What a command did with one file: "created", "updated", "unchanged" or "kept yours"
    (the file was changed by hand, and ``new_version`` is where the course's version went)."""

    path: Path | str  # the workspace notebook, or a path relative to the course folder
    action: str
    new_version: Path | str | None = None

    def describe(self) -> str:
        name = self.path.name if isinstance(self.path, Path) else self.path
        if self.action != "kept yours":
            return f"{name}: {self.action}"
        if self.new_version is None:
            return f"{name}: you have changed it, so it was left as it is (no newer course version)"
        if isinstance(self.new_version, Path):  # a notebook written beside the learner's
            where = f"the new version is beside it as {self.new_version.name}"
        else:
            where = f"the course's version is at {self.new_version}"
        return f"{name}: you have changed it, so it was left as it is; {where}"


def _check_writable(folder: Path, what: str = "workspace folder") -> None:
    """Create ``folder`` if needed and prove it writable (a probe file: root ignores permission bits)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CourseError(f"cannot create the {what} {folder}: {exc.strerror}") from None
    if not folder.is_dir():
        raise CourseError(f"the {what} {folder} exists but is not a folder")
    probe = folder / f".mamba-edu-write-test-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise CourseError(f"cannot write in the {what} {folder}: {exc.strerror}") from None


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


def _beside(path: Path) -> Path:
    """Where the course's newer version of a notebook the learner changed goes: ``NN.new.ipynb``.

    One such file per lesson: a later course version replaces it (it is the course's, never the
    learner's work), so versions do not pile up as ``.new2``, ``.new3``….
    """
    return path.with_name(f"{path.stem}.new{path.suffix}")


def _plan(target: Path, key: str, data: bytes, manifest: dict[str, str]) -> str:
    """What :func:`_refresh` will do with ``target``, without touching it.

    "created", "unchanged" or "updated"; "kept yours" (changed by hand since mamba-edu wrote it,
    and the course has a version the learner has not been offered yet: it goes elsewhere); or
    "yours" (changed by hand, and the course has not changed since it was last offered).
    """
    if not target.exists():
        return "created"
    current = target.read_bytes()
    if current == data:
        return "unchanged"
    if manifest.get(key) == _sha(current):
        return "updated"
    return "yours" if manifest.get(key) == _sha(data) else "kept yours"


def _refresh(
    target: Path, key: str, data: bytes, manifest: dict[str, str], put_new, *, offer_once=True
):
    """Write ``data`` to ``target`` unless someone changed the file since mamba-edu last wrote it
    (``manifest[key]`` is the checksum of the course's version last written or offered). A changed
    file is kept; ``put_new(target, data)`` puts the course's version elsewhere, once per course
    version (``offer_once=False``: at every run). Returns (the action of :func:`_plan`, where the
    new version went or None)."""
    action = _plan(target, key, data, manifest)
    if action == "yours" and not offer_once:
        action = "kept yours"
    where = None
    if action in ("created", "updated"):
        target.write_bytes(data)
    elif action == "kept yours":
        where = put_new(target, data)
    manifest[key] = _sha(data)
    return ("kept yours" if action == "yours" else action), where


def _prove_writable(path: Path) -> None:
    """Raise :class:`CourseError` unless ``path`` (an existing file) can be written.

    Opened for appending, which changes nothing; a permission test would not do (root passes it).
    """
    try:
        with open(path, "ab"):
            pass
    except OSError as exc:
        raise CourseError(
            f"cannot write {path}: {exc.strerror}. Nothing was written: make it writable (or move "
            f"it away) and run the command again."
        ) from None


def update_workspace(folder: str | os.PathLike, specs: list[str] | None = None) -> list[FileAction]:
    """Write or refresh the learner's student notebooks in ``folder``; return what was done.

    A notebook is replaced only when its bytes are exactly what this command wrote last time (the
    manifest records a checksum). A notebook the learner changed (or one the manifest does not
    know) is kept; when the course's version changed since it was last offered, the new version
    goes beside it as ``NN_slug.new.ipynb`` (one file, replaced by later versions). Every file is
    checked before anything is written: a file in the way that is not a notebook, or one that
    cannot be written, stops the command with one sentence.
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
        planned.append((target, _notebook_bytes(student_notebook(build_notebook(lesson)))))

    # check everything before writing anything: a file that cannot be written must not leave
    # the workspace half refreshed with its manifest unsaved
    for target, data in planned:
        action = _plan(target, target.name, data, manifest)
        if action == "updated":
            _prove_writable(target)
        elif action == "kept yours":
            beside = _beside(target)
            if beside.exists() and (beside.is_dir() or not _is_notebook(beside)):
                raise CourseError(
                    f"{beside} is in the way and is not a notebook. Nothing was written: move it "
                    f"away and run the command again."
                )
            if beside.exists():
                _prove_writable(beside)

    def put_beside(target: Path, data: bytes) -> Path:
        beside = _beside(target)
        beside.write_bytes(data)
        return beside

    actions = []
    try:
        for target, data in planned:
            action, beside = _refresh(target, target.name, data, manifest, put_beside)
            actions.append(FileAction(target, action, beside))
    except OSError as exc:  # lost a race with something else writing there
        raise CourseError(
            f"cannot write in {folder}: {exc.strerror} ({exc.filename}); the notebooks before it "
            f"were refreshed and recorded. Fix that and run the command again."
        ) from None
    finally:
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


# ----------------------------------------------------------------------------------------------
# Exercises: the markup rules, reading a lesson's exercises, one solution on request
# ----------------------------------------------------------------------------------------------

GRADE_ID = re.compile(r"^[a-z][a-z0-9_]*$")
TESTS_SUFFIX = "_tests"
_NBGRADER_KEYS = {"grade", "grade_id", "locked", "points", "schema_version", "solution", "task"}


class UnknownExercise(CourseError):
    exit_code = 2


@dataclass(frozen=True)
class Exercise:
    """One exercise of a lesson: a solution cell and the locked test cell that grades it.

    ``grade_id`` is the solution cell's nbgrader ``grade_id`` (the exercise's name, e.g.
    ``running_state``); its test cell is ``<grade_id>_tests`` and carries the ``points``.
    """

    lesson: Lesson
    number: int
    grade_id: str
    source: str
    test_id: str
    points: int

    @property
    def solution(self) -> str:
        """The solution cell as the instructor wrote it, without the marker lines."""
        markers = (BEGIN_SOLUTION, END_SOLUTION)
        kept = [line for line in self.source.splitlines() if not line.strip().startswith(markers)]
        return "\n".join(kept).strip("\n") + "\n"

    @property
    def solution_lines(self) -> list[str]:
        """The non-blank lines between the markers: the text a student version must not contain."""
        inside, lines = False, []
        for line in self.source.splitlines():
            if line.strip().startswith(BEGIN_SOLUTION):
                inside = True
            elif line.strip().startswith(END_SOLUTION):
                inside = False
            elif inside and line.strip():
                lines.append(line.strip())
        return lines


def check_markup(nb: nbformat.NotebookNode, name: str = "notebook") -> list[str]:
    """Every way ``nb`` breaks the course's exercise rules, one sentence each (empty: all good).

    The rules (nbgrader ``schema_version`` 3):

    * an exercise is a code cell with ``solution: true`` (not ``grade``, not ``locked``) whose
      ``grade_id`` is a lower-case name, holding one ``### BEGIN SOLUTION`` … ``### END SOLUTION``;
    * after it, before the next exercise, comes exactly one test cell named ``<grade_id>_tests``:
      ``grade: true``, ``locked: true``, ``points`` a positive whole number, and a
      ``### BEGIN HIDDEN TESTS`` … ``### END HIDDEN TESTS`` block;
    * ``grade_id``s are unique; markers appear only in the cells that own them; nothing else
      carries nbgrader metadata except read-only (``locked``) cells.
    """
    problems: list[str] = []
    seen: set[str] = set()
    open_exercise: str | None = None
    for i, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader")
        src = cell.source
        has_solution = BEGIN_SOLUTION in src or END_SOLUTION in src
        has_hidden = BEGIN_HIDDEN in src or END_HIDDEN in src
        if meta is None:
            if has_solution:
                problems.append(
                    f"{name}, cell {i}: solution markers in a cell with no nbgrader metadata"
                )
            if has_hidden:
                problems.append(
                    f"{name}, cell {i}: hidden tests in a cell with no nbgrader metadata"
                )
            continue
        gid = meta.get("grade_id")
        where = f"{name}, cell {i} ({gid})"
        unknown = sorted(set(meta) - _NBGRADER_KEYS)
        if unknown:
            problems.append(f"{where}: unknown nbgrader keys {unknown}")
        if meta.get("schema_version") != 3:
            problems.append(
                f"{where}: schema_version must be 3, got {meta.get('schema_version')!r}"
            )
        if not isinstance(gid, str) or not GRADE_ID.match(gid):
            problems.append(f"{where}: grade_id must be a lower-case name like 'running_state'")
        elif gid in seen:
            problems.append(f"{where}: grade_id '{gid}' is used twice")
        seen.add(str(gid))
        solution, grade, locked = (bool(meta.get(k)) for k in ("solution", "grade", "locked"))
        if meta.get("task"):
            problems.append(f"{where}: task cells are not used by the course (exercises are code)")
        elif solution and grade:
            problems.append(
                f"{where}: a cell that is both solution and grade needs manual grading; the "
                f"course's exercises are autograded (a solution cell, then a test cell)"
            )
        elif solution:
            if cell.cell_type != "code":
                problems.append(f"{where}: an exercise must be a code cell")
            if locked:
                problems.append(f"{where}: an exercise cannot be locked (the student writes in it)")
            if not (
                src.count(BEGIN_SOLUTION) == 1 == src.count(END_SOLUTION)
                and src.index(BEGIN_SOLUTION) < src.index(END_SOLUTION)
            ):
                problems.append(f"{where}: needs one {BEGIN_SOLUTION} … {END_SOLUTION} block")
            if has_hidden:
                problems.append(f"{where}: hidden tests belong in the test cell, not the exercise")
            if open_exercise is not None:
                problems.append(
                    f"{where}: exercise '{open_exercise}' has no test cell "
                    f"'{open_exercise}{TESTS_SUFFIX}' before this next exercise"
                )
            open_exercise = gid
        elif grade:
            points = meta.get("points")
            if cell.cell_type != "code":
                problems.append(f"{where}: a test cell must be a code cell")
            if not locked:
                problems.append(f"{where}: a test cell must be locked")
            if isinstance(points, bool) or not isinstance(points, int) or points <= 0:
                problems.append(f"{where}: points must be a positive whole number, got {points!r}")
            if not (
                src.count(BEGIN_HIDDEN) == 1 == src.count(END_HIDDEN)
                and src.index(BEGIN_HIDDEN) < src.index(END_HIDDEN)
            ):
                problems.append(f"{where}: needs one {BEGIN_HIDDEN} … {END_HIDDEN} block")
            if has_solution:
                problems.append(f"{where}: solution markers in a test cell")
            if open_exercise is None:
                problems.append(f"{where}: a test cell with no exercise before it")
            elif gid != open_exercise + TESTS_SUFFIX:
                problems.append(
                    f"{where}: the test cell of exercise '{open_exercise}' must be named "
                    f"'{open_exercise}{TESTS_SUFFIX}'"
                )
            open_exercise = None
        else:
            if not locked:
                problems.append(
                    f"{where}: nbgrader metadata that is not a solution, test or locked cell"
                )
            if has_solution or has_hidden:
                problems.append(f"{where}: markers in a read-only cell")
    if open_exercise is not None:
        problems.append(f"{name}: exercise '{open_exercise}' has no test cell after it")
    return problems


def exercises(lesson: Lesson) -> list[Exercise]:
    """The lesson's exercises in order (empty for a lesson without exercises).

    Raises :class:`CourseError` naming every problem when the markup breaks :func:`check_markup`.
    """
    nb = build_notebook(lesson)
    problems = check_markup(nb, lesson.name)
    if problems:
        raise CourseError(
            f"the exercise markup of {lesson.path.name} is inconsistent:\n  "
            + "\n  ".join(problems)
        )
    found: list[Exercise] = []
    solution_cell = None
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            solution_cell = cell
        elif meta.get("grade") and solution_cell is not None:
            sol = solution_cell.metadata["nbgrader"]["grade_id"]
            found.append(
                Exercise(
                    lesson,
                    len(found) + 1,
                    sol,
                    solution_cell.source,
                    meta["grade_id"],
                    meta["points"],
                )
            )
            solution_cell = None
    return found


def find_exercise(lesson: Lesson, spec: str) -> Exercise:
    """An exercise of ``lesson`` by name (its ``grade_id``, or its test's) or number (``1``, ``2``…).

    An unknown one raises :class:`UnknownExercise` listing the lesson's exercises.
    """
    found = exercises(lesson)
    if not found:
        with_some = [other.name for other in lessons() if other != lesson and exercises(other)]
        raise UnknownExercise(
            f"lesson {lesson.name} has no exercises. Lessons with exercises: "
            f"{', '.join(with_some) or '(none)'}."
        )
    key = spec.strip().lower()
    for ex in found:
        if key in (ex.grade_id, ex.test_id) or (key.isdigit() and int(key) == ex.number):
            return ex
    names = ", ".join(f"{ex.grade_id} ({ex.number})" for ex in found)
    raise UnknownExercise(
        f"lesson {lesson.name} has no exercise '{spec}'. Its exercises are: {names}."
    )


# ----------------------------------------------------------------------------------------------
# An nbgrader course folder for instructors
# ----------------------------------------------------------------------------------------------

NBGRADER_CONFIG = "nbgrader_config.py"
ASSIGN_MANIFEST = ".mamba-edu-assign.json"
NEW_VERSIONS = "mamba-edu-new"  # where the course's newer version of a file you changed goes

_CONFIG_TEMPLATE = """\
# nbgrader configuration for the course "Mamba from scratch", written by `mamba-edu assign`.
# It is yours to edit: `mamba-edu assign` never overwrites it once you have changed it (the course's
# newer version then goes to {new}/{config}). See docs/INSTRUCTORS.md in the course.
#
#   nbgrader generate_assignment 00_orientation    # release/: solutions and hidden tests removed
#   nbgrader autograde 00_orientation              # grade everything under submitted/
#   nbgrader generate_feedback 00_orientation      # feedback/: one HTML page per student
#   nbgrader export                                # grades.csv
c = get_config()  # noqa: F821

c.CourseDirectory.course_id = {course_id!r}

# Students' code runs through the course's executor (mamba_edu.grading.GradingExecute): nbgrader's
# own, plus a memory limit on the grading kernel, a shorter limit for the cells students write,
# and, when a submission kills its kernel (os._exit, a crash), the cells before keep their scores
# and the cells after are marked as not run (zero) instead of the whole notebook being discarded.
# nbgrader only logs an error in this file and grades on without it, so stop loudly instead.
try:
    from mamba_edu import grading

    c.Autograde.autograde_preprocessors = grading.autograde_preprocessors()
except Exception as exc:
    raise SystemExit(
        f"nbgrader_config.py: cannot use mamba_edu.grading ({{exc}}). Run nbgrader in the "
        f"course's environment (source .venv/bin/activate) so that grading keeps its limits."
    ) from None
c.Execute.timeout = {timeout}  # seconds per cell: keep it above the slowest cell of the lessons
c.Execute.interrupt_on_timeout = True  # a cell that runs too long is stopped; grading carries on
c.GradingExecute.solution_timeout = {solution_timeout}  # seconds for a cell students write
c.GradingExecute.memory_limit_gb = {memory_gb}  # address space of the grading kernel
# Each submission runs in its own sandbox (no network, no view of this folder, its processes
# killed at the end) and the hidden tests are judged outside it, on fresh inputs; see the guide's
# "Grading untrusted code". False only for code you trust: it then runs with your rights here.
c.GradingExecute.sandbox = True

# A test cell a student deleted is put back and run, so deleting a test cannot skip it.
c.OverwriteCells.add_missing_cells = True
# The same stub the course's own student notebooks carry.
c.ClearSolutions.code_stub = {{"python": {stub!r}}}
"""


def nbgrader_config(
    course_id: str = "mamba-edu",
    timeout: int = 300,
    solution_timeout: int = 60,
    memory_gb: float = 4,
) -> str:
    """The text of the course folder's ``nbgrader_config.py``."""
    return _CONFIG_TEMPLATE.format(
        new=NEW_VERSIONS,
        config=NBGRADER_CONFIG,
        course_id=course_id,
        timeout=timeout,
        solution_timeout=solution_timeout,
        memory_gb=memory_gb,
        stub=CODE_STUB,
    )


def assign(
    course_dir: str | os.PathLike,
    specs: list[str] | None = None,
    course_id: str = "mamba-edu",
) -> list[FileAction]:
    """Lay out (or refresh) an nbgrader course folder from the lesson sources; return what was done.

    Writes ``nbgrader_config.py`` and ``source/<lesson>/<lesson>.ipynb`` (the instructor notebook,
    solutions and hidden tests included) for each chosen lesson that has exercises (all of them by
    default). A file is replaced only when it is exactly what this command wrote last time (the
    manifest ``.mamba-edu-assign.json`` records checksums); a file the instructor changed (or one
    the manifest does not know) is kept, and the course's version goes to
    ``mamba-edu-new/<same path>`` (outside ``source/``, so nbgrader never picks it up). Anything in
    the way that is not a file stops the command before anything is written.
    """
    folder = Path(course_dir)
    chosen = find_lessons(specs)
    assignable = [lesson for lesson in chosen if exercises(lesson)]
    if specs:
        without = [lesson.name for lesson in chosen if lesson not in assignable]
        if without:
            have = [lesson.name for lesson in lessons() if exercises(lesson)]
            raise CourseError(
                f"{', '.join(without)} has no exercises to assign. Lessons with exercises: "
                f"{', '.join(have) or '(none)'}."
            )
    if not assignable:
        raise CourseError("no lesson has exercises yet, so there is nothing to assign")

    planned: list[tuple[str, bytes]] = [
        (NBGRADER_CONFIG, nbgrader_config(course_id).encode("utf-8"))
    ]
    for lesson in assignable:
        rel = f"source/{lesson.name}/{lesson.name}.ipynb"
        planned.append((rel, _notebook_bytes(build_notebook(lesson))))

    _check_writable(folder, "course folder")
    manifest_path = folder / ASSIGN_MANIFEST
    manifest: dict[str, str] = {}
    if manifest_path.exists():
        try:
            manifest = {
                str(k): str(v) for k, v in json.loads(manifest_path.read_text())["written"].items()
            }
        except (OSError, ValueError, KeyError, AttributeError):
            raise CourseError(
                f"{manifest_path} is damaged. It records which files mamba-edu wrote; move it away "
                f"and run the command again (every existing file will then be kept as yours)."
            ) from None
    for rel, _ in planned:
        # every folder on the way must be a folder, and the file itself a file (or absent)
        parts = Path(rel).parts
        for depth in range(1, len(parts) + 1):
            path = folder.joinpath(*parts[:depth])
            want_folder = depth < len(parts)
            if path.exists() and path.is_dir() != want_folder:
                raise CourseError(
                    f"{path} is in the way (a {'folder' if path.is_dir() else 'file'} where the "
                    f"course needs a {'folder' if want_folder else 'file'}). Nothing was "
                    f"written: move it away and run the command again."
                )

    def put_aside(target: Path, data: bytes) -> str:
        new_rel = f"{NEW_VERSIONS}/{target.relative_to(folder).as_posix()}"
        (folder / new_rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / new_rel).write_bytes(data)
        return new_rel

    actions: list[FileAction] = []
    for rel, data in planned:
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        # the instructor's mamba-edu-new/ copy is refreshed at every run, as before
        action, new_rel = _refresh(target, rel, data, manifest, put_aside, offer_once=False)
        actions.append(FileAction(rel, action, new_rel))
    manifest_path.write_text(json.dumps({"written": manifest}, indent=1, sort_keys=True) + "\n")
    return actions
