"""The instructor workflow with nbgrader, for every lesson that has exercises.

For each such lesson (found from the sources, so new lessons are covered as they arrive) this lays
out a course folder with ``mamba-edu assign``, then runs the ordinary nbgrader commands on it:
``generate_assignment``, one ``autograde`` call for the whole class, ``generate_feedback`` and
``export``. The class:

* ``solutions``: the released notebook with every exercise filled in with the instructor's
  solution: full marks;
* ``untouched``: the released notebook as handed out: zero for every exercise;
* ``hostile-N``: the solutions, sabotaged. Each sabotage goes into one exercise, so that one
  autograde run covers several and the score of every exercise says whether it was handled:
  a syntax error, an infinite loop, a multi-GB allocation (each: that exercise scores zero), a
  deleted test cell (nbgrader puts it back and runs it: full marks), and ``os._exit(1)`` in a cell
  before an exercise (the exercises before keep their scores, that one and the ones after score
  zero). How the first three and ``os._exit`` are stopped is the grader's business
  (``mamba_edu.grading``), the same whatever the lesson: they are tried in one lesson,
  ``HOSTILE_LESSON`` (the one with the smallest time budget). A deleted test cell is restored from
  the lesson's own source: in every other lesson the ``solutions`` have every test cell deleted
  (one run of the lesson fewer);
* ``renamed``: the solutions under another file name: not graded (nbgrader reports it by name),
  no points.

Every notebook is graded the way the course's ``nbgrader_config.py`` sets up: in its own sandbox
(starting from a copy of the numba cache the session warms once, as ``mamba-edu grade`` does),
with the test cells judged outside it (``mamba_edu.grading``; the hostile kinds that attack the
grader itself are in ``tests/test_grading_sandbox.py``).

The hostile students are graded first (nbgrader goes in alphabetical order), so the two honest
students' results also show that the others did not disturb them. Every submitted file must be
byte for byte the same afterwards.

Cost: every autograded notebook runs the whole lesson (the ``os._exit`` one stops early): two
runs of each lesson, and two more of ``HOSTILE_LESSON``. The infinite loop costs its time limit:
the course's ``nbgrader_config.py`` is used as ``mamba-edu assign`` writes it, except that the
time limit of the cells students write is lowered from 60 s to ``SOLUTION_TIMEOUT``.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import math
import os
import re
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook
from processes import die_with_parent

from mamba_edu import course

GRADED = [lesson for lesson in course.lessons() if course.exercises(lesson)]
BIN = Path(sys.executable).parent
SOLUTION_TIMEOUT = 20  # seconds; the course's default is 60
MEMORY_LIMIT_GIB = 4  # the course's default (nbgrader_config.py), checked below
SAFETY_NET_GIB = 5  # a second limit on the whole nbgrader process tree, in case the first fails
HOSTILE_ALLOCATION_GIB = 6
_BUDGETS = {stage.number: stage.budget_s for stage in course.ROADMAP}
# the lesson that also gets the sabotages whose handling does not depend on the lesson
HOSTILE_LESSON = min(GRADED, key=lambda lesson: (_BUDGETS.get(lesson.number, 180.0), lesson.number))


def test_there_are_lessons_to_grade():
    assert GRADED, "no lesson has exercises: nothing for nbgrader to grade"


def test_the_course_config_limits_memory_as_this_test_assumes():
    text = course.nbgrader_config()
    assert f"c.GradingExecute.memory_limit_gb = {MEMORY_LIMIT_GIB}" in text
    assert MEMORY_LIMIT_GIB < SAFETY_NET_GIB < HOSTILE_ALLOCATION_GIB


def test_the_course_config_loads_and_installs_the_grading_executor(tmp_path):
    from traitlets.config.loader import PyFileConfigLoader

    from mamba_edu.grading import GradingExecute

    (tmp_path / course.NBGRADER_CONFIG).write_text(course.nbgrader_config("a-course"))
    config = PyFileConfigLoader(course.NBGRADER_CONFIG, path=str(tmp_path)).load_config()
    steps = config.Autograde.autograde_preprocessors
    assert GradingExecute in steps and not any(s.__name__ == "Execute" for s in steps)
    assert config.CourseDirectory.course_id == "a-course"
    assert config.OverwriteCells.add_missing_cells is True
    assert config.ClearSolutions.code_stub == {"python": course.CODE_STUB}


def test_the_course_config_stops_loudly_without_the_course(tmp_path):
    # nbgrader logs a failing config file and grades on without it (no limits): the config must
    # end the command instead
    (tmp_path / course.NBGRADER_CONFIG).write_text(course.nbgrader_config())
    code = (
        "import sys\n"
        "sys.modules['mamba_edu.grading'] = None  # as if the course were not installed\n"
        "from traitlets.config.loader import PyFileConfigLoader\n"
        f"PyFileConfigLoader({course.NBGRADER_CONFIG!r}, path={str(tmp_path)!r}).load_config()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "cannot use mamba_edu.grading" in out.stderr and "course's environment" in out.stderr


def test_grading_executor_limits_memory_and_time_and_survives_a_dead_kernel():
    from mamba_edu.grading import GradingExecute

    solution = {"nbgrader": {"solution": True, "grade": False, "grade_id": "x", "locked": False}}
    cells = [
        "import resource\nprint(resource.getrlimit(resource.RLIMIT_AS)[0])",
        # np.empty does not touch the memory: were the limit missing, nothing would be used
        "import numpy as np\ntry:\n    np.empty(3 * 2**30, np.uint8)\n"
        "except MemoryError:\n    print('MemoryError')",
        "while True:\n    pass",  # a cell a student writes: stopped after solution_timeout
        "print('still alive')",
        "import os\nos._exit(1)",
        "print('never')",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.cells[2].metadata = solution
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    executor = GradingExecute(timeout=120, solution_timeout=3, memory_limit_gb=1)
    start = time.monotonic()
    nb, _ = executor.preprocess(nb, {"metadata": {"path": "."}})
    assert time.monotonic() - start < 100  # the loop was stopped at 3 s, not 120 s
    text = [[o.get("text", "") for o in c.outputs] for c in nb.cells]
    errors = [[o.get("ename") for o in c.outputs if o.output_type == "error"] for c in nb.cells]
    assert text[0] == [f"{2**30}\n"]
    assert text[1] == ["MemoryError\n"]
    assert set(errors[2]) & {"KeyboardInterrupt", "CellTimeoutError"}
    assert text[3] == ["still alive\n"]
    assert errors[4] == ["DeadKernelError"] and errors[5] == ["NotRun"]


def test_limit_memory_makes_a_large_allocation_fail_at_once():
    code = (
        "from mamba_edu.grading import limit_memory\n"
        "limit_memory(1)\n"
        "import resource\n"
        "print(resource.getrlimit(resource.RLIMIT_AS))\n"
        "import numpy as np\n"
        "try:\n"
        "    np.empty(3 * 2**30, np.uint8)\n"
        "    print('allocated')\n"
        "except MemoryError:\n"
        "    print('MemoryError')\n"
        "try:\n"
        "    resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))\n"
        "    print('raised')\n"
        "except (ValueError, OSError):\n"
        "    print('cannot raise it')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_safety_net,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split("\n")
    assert lines[0] == f"({2**30}, {2**30})"
    assert lines[1] == "MemoryError"
    if os.geteuid() != 0:  # the superuser may raise a hard limit; nobody else can
        assert lines[2] == "cannot raise it"


# ----------------------------------------------------------------------------------------------
# Building the class
# ----------------------------------------------------------------------------------------------


_die_with_pytest = die_with_parent()


def _safety_net():
    """Runs in the child before exec: an address-space limit the grading kernels inherit, and
    SIGTERM for nbgrader should pytest die (its kernels then stop by themselves)."""
    limit = SAFETY_NET_GIB * 2**30
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    _die_with_pytest()


def nbgrader(folder: Path, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=_safety_net,
    )


def cell_of(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def index_of(nb, grade_id):
    return nb.cells.index(cell_of(nb, grade_id))


def syntax_error(nb, ex):
    """A syntax error in the exercise, and its test cell emptied (nbgrader must restore it)."""
    cell_of(nb, ex.grade_id).source = ex.solution + "\nthis line is not Python\n"
    cell_of(nb, ex.test_id).source = "pass"


def infinite_loop(nb, ex):
    cell_of(nb, ex.grade_id).source = "while True:\n    pass\n\n" + ex.solution


def huge_allocation(nb, ex):
    cell_of(nb, ex.grade_id).source = (
        "import resource\n"
        "print('address-space limit:', resource.getrlimit(resource.RLIMIT_AS)[0])\n"
        f"_big = bytearray({HOSTILE_ALLOCATION_GIB} * 2**30)\n\n" + ex.solution
    )


def deleted_test(nb, ex):
    del nb.cells[index_of(nb, ex.test_id)]


def kernel_exit(nb, ex):
    nb.cells.insert(index_of(nb, ex.grade_id), nbformat.v4.new_code_cell("import os\nos._exit(1)"))


# (sabotage, points the sabotaged exercise should get: "full" or 0)
SABOTAGES = [
    (syntax_error, 0),
    (infinite_loop, 0),
    (huge_allocation, 0),
    (deleted_test, "full"),
    (kernel_exit, 0),  # last: placed before the last exercise of the last hostile notebook
]


@dataclass
class Student:
    name: str
    nb: nbformat.NotebookNode
    expected: dict[str, float]  # test grade_id -> score
    filename: str | None = None
    sabotaged: dict[str, str] | None = None  # exercise grade_id -> sabotage name


def make_class(lesson, release) -> list[Student]:
    exs = course.exercises(lesson)
    full = {ex.test_id: float(ex.points) for ex in exs}
    zero = {ex.test_id: 0.0 for ex in exs}
    solved = copy.deepcopy(release)
    for ex in exs:
        cell_of(solved, ex.grade_id).source = ex.solution

    renamed = Student("renamed", copy.deepcopy(solved), zero, filename=f"{lesson.name} (1).ipynb")
    untouched = Student("untouched", copy.deepcopy(release), zero)
    if lesson != HOSTILE_LESSON:
        # The sabotage that depends on the lesson: every test cell deleted, every one restored.
        # It goes into the solutions themselves (full marks only if nbgrader restores every hidden
        # test from the source), which saves one run of the whole lesson per lesson; the plain
        # solutions are graded in HOSTILE_LESSON, and every lesson's instructor version runs its
        # hidden tests under nbval.
        nb = copy.deepcopy(solved)
        for ex in exs:
            deleted_test(nb, ex)
        sabotaged = {ex.grade_id: deleted_test.__name__ for ex in exs}
        return [Student("solutions", nb, full, sabotaged=sabotaged), untouched, renamed]
    students = [Student("solutions", solved, full), untouched, renamed]
    # One sabotage per (notebook, exercise) slot, in order; os._exit always goes before the last
    # exercise of the last notebook, so the exercises before it show their scores are kept.
    n_hostile = math.ceil(len(SABOTAGES) / len(exs))
    slots = [(j, i) for j in range(n_hostile) for i in range(len(exs))]
    plan = dict(zip(slots[: len(SABOTAGES) - 1], SABOTAGES[:-1], strict=True))
    plan[slots[-1]] = SABOTAGES[-1]
    for j in range(n_hostile):
        nb = copy.deepcopy(solved)
        expected, sabotaged = dict(full), {}
        # cells are found by grade_id, so inserting or deleting one does not upset the others
        for i, ex in enumerate(exs):
            if (j, i) in plan:
                sabotage, score = plan[(j, i)]
                sabotage(nb, ex)
                sabotaged[ex.grade_id] = sabotage.__name__
                expected[ex.test_id] = float(ex.points) if score == "full" else 0.0
        students.append(Student(f"hostile-{j}", nb, expected, sabotaged=sabotaged))
    return students


def file_hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@dataclass
class Graded:
    lesson: course.Lesson
    folder: Path
    release: nbformat.NotebookNode
    students: list[Student]
    generate: subprocess.CompletedProcess
    autograde: subprocess.CompletedProcess
    feedback: subprocess.CompletedProcess
    export: subprocess.CompletedProcess
    submitted_before: dict[str, str]
    submitted_after: dict[str, str]
    scores: dict[str, dict[str, tuple]]  # student -> test grade_id -> (auto_score, needs_manual)
    seconds: float

    def autograded(self, student: str) -> nbformat.NotebookNode:
        name = self.lesson.name
        return nbformat.read(self.folder / "autograded" / student / name / f"{name}.ipynb", 4)


@pytest.fixture(scope="module", params=GRADED, ids=lambda lesson: lesson.name)
def graded(request, tmp_path_factory, numba_cache) -> Graded:
    lesson = request.param
    name = lesson.name
    folder = tmp_path_factory.mktemp(f"course-{lesson.number}")
    start = time.monotonic()
    actions = course.assign(folder, [lesson.number])
    assert [a.action for a in actions] == ["created", "created"]

    generate = nbgrader(folder, "generate_assignment", name)
    assert generate.returncode == 0, generate.stderr[-3000:]
    release = nbformat.read(folder / "release" / name / f"{name}.ipynb", 4)

    students = make_class(lesson, release)
    for s in students:
        where = folder / "submitted" / s.name / name
        where.mkdir(parents=True)
        nbformat.write(s.nb, where / (s.filename or f"{name}.ipynb"))
    before = file_hashes(folder / "submitted")

    autograde = nbgrader(
        folder, "autograde", name, f"--GradingExecute.solution_timeout={SOLUTION_TIMEOUT}",
        f"--GradingExecute.numba_cache={numba_cache}",
    )  # fmt: skip
    after = file_hashes(folder / "submitted")
    feedback = nbgrader(folder, "generate_feedback", name)
    export = nbgrader(folder, "export")

    scores = {}
    with Gradebook(f"sqlite:///{folder / 'gradebook.db'}") as gb:
        for s in students:
            sub = gb.find_submission_notebook(name, name, s.name)
            scores[s.name] = {
                g.name: (g.score, g.auto_score, g.needs_manual_grade) for g in sub.grades
            }
    seconds = time.monotonic() - start
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():  # shown without -s: the cost is worth seeing
        print(
            f"\n{name}: assign, generate_assignment, autograde of {len(students)} students, "
            f"feedback and export took {seconds:.0f} s (this machine)"
        )
    return Graded(
        lesson,
        folder,
        release,
        students,
        generate,
        autograde,
        feedback,
        export,
        before,
        after,
        scores,
        seconds,
    )


# ----------------------------------------------------------------------------------------------
# The checks
# ----------------------------------------------------------------------------------------------


def test_release_has_no_solution_code(graded):
    text = nbformat.writes(graded.release)
    # lines that also appear outside the solutions (a bare "return h") prove nothing; the course's
    # own student version tells which those are
    public = nbformat.writes(course.student_notebook(course.build_notebook(graded.lesson)))
    exs = course.exercises(graded.lesson)
    for ex in exs:
        secret = [line for line in ex.solution_lines if line not in public]
        assert secret, f"{ex.grade_id}: the solution has no line of its own to look for"
        for line in secret:
            assert line not in text, f"solution text of {ex.grade_id} in the release: {line!r}"
        stub = cell_of(graded.release, ex.grade_id).source
        assert "raise NotImplementedError()" in stub and "### BEGIN" not in stub
        assert course.BEGIN_HIDDEN not in cell_of(graded.release, ex.test_id).source
    assert "### BEGIN SOLUTION" not in text and "### BEGIN HIDDEN TESTS" not in text


def test_release_runs_up_to_the_first_exercise(graded):
    nb = graded.autograded("untouched")
    first = index_of(nb, course.exercises(graded.lesson)[0].grade_id)
    code = [c for c in nb.cells[:first] if c.cell_type == "code"]
    assert code, "no code before the first exercise"
    for cell in code:
        assert cell.execution_count is not None, f"not run: {cell.source[:80]!r}"
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, f"{cell.source[:80]!r} failed: {errors[0].ename}: {errors[0].evalue}"


def test_autograde_finishes_and_reports_only_the_renamed_file(graded):
    log = graded.autograde.stdout + graded.autograde.stderr
    failed = set(re.findall(r"error processing assignment '[^']+' for student '([^']+)'", log))
    assert failed == {"renamed"}, log[-5000:]
    assert "Skipping unknown notebook" in log and f"{graded.lesson.name} (1).ipynb" in log
    for s in graded.students:
        if s.name != "renamed":
            assert (graded.folder / "autograded" / s.name / graded.lesson.name).is_dir(), s.name
    # the hostile students were graded before the honest ones, in the same run
    order = re.findall(r"Creating/updating student with ID '([^']+)'", log)
    hostile = [s.name for s in graded.students if s.name.startswith("hostile-")]
    assert all(order.index(h) < order.index("solutions") for h in hostile), order
    assert order.index("solutions") < order.index("untouched"), order


def test_solutions_get_full_marks(graded):
    for test_id, (score, auto, manual) in graded.scores["solutions"].items():
        points = next(ex.points for ex in course.exercises(graded.lesson) if ex.test_id == test_id)
        assert (score, auto, manual) == (points, points, False), test_id


def test_untouched_release_gets_zero_everywhere(graded):
    for test_id, (score, auto, manual) in graded.scores["untouched"].items():
        assert (score, auto, manual) == (0, 0, False), test_id


def test_hostile_submissions_score_what_they_should(graded):
    hostile = [s for s in graded.students if s.sabotaged]
    assert hostile
    wrong = []
    for s in hostile:
        got = {test_id: auto for test_id, (_, auto, _) in graded.scores[s.name].items()}
        if got != s.expected:
            wrong.append(f"{s.name} ({s.sabotaged}): expected {s.expected}, got {got}")
        if any(manual for (_, _, manual) in graded.scores[s.name].values()):
            wrong.append(f"{s.name}: flagged for manual grading")
    assert not wrong, "\n".join(wrong)


def test_every_sabotage_was_tried(graded):
    tried = [name for s in graded.students if s.sabotaged for name in s.sabotaged.values()]
    if graded.lesson == HOSTILE_LESSON:
        assert sorted(tried) == sorted(f.__name__ for f, _ in SABOTAGES)
    else:  # the lesson's own test cells, each deleted and restored
        assert tried == [deleted_test.__name__] * len(course.exercises(graded.lesson))


def test_renamed_file_gets_no_points(graded):
    assert graded.scores["renamed"]
    for test_id, (score, _, _) in graded.scores["renamed"].items():
        assert score == 0, test_id


def _outputs_of(nb, grade_id):
    return cell_of(nb, grade_id).outputs


def test_the_sabotages_were_stopped_the_way_the_course_says(graded):
    for s in graded.students:
        if not s.sabotaged:
            continue
        nb = graded.autograded(s.name)
        for grade_id, sabotage in s.sabotaged.items():
            if sabotage == "infinite_loop":
                names = {o.get("ename") for o in _outputs_of(nb, grade_id)}
                assert names & {"KeyboardInterrupt", "CellTimeoutError"}, names
            elif sabotage == "huge_allocation":
                outputs = _outputs_of(nb, grade_id)
                printed = "".join(o.get("text", "") for o in outputs)
                assert f"address-space limit: {MEMORY_LIMIT_GIB * 2**30}" in printed, printed
                assert "MemoryError" in {o.get("ename") for o in outputs}
            elif sabotage == "kernel_exit":
                i = index_of(nb, grade_id)
                died = nb.cells[i - 1]
                assert "os._exit" in died.source
                assert died.outputs[-1].ename == "DeadKernelError"
                later = [c for c in nb.cells[i:] if c.cell_type == "code"]
                assert later and all(c.outputs[0].ename == "NotRun" for c in later)
            elif sabotage == "deleted_test":
                ex = next(e for e in course.exercises(graded.lesson) if e.grade_id == grade_id)
                restored = cell_of(nb, ex.test_id)
                assert "was missing from the submission" in restored.source
                assert course.BEGIN_HIDDEN in restored.source


def test_submitted_files_are_unchanged(graded):
    assert graded.submitted_after == graded.submitted_before


def test_feedback_and_export(graded):
    assert graded.feedback.returncode == 0, graded.feedback.stderr[-3000:]
    name = graded.lesson.name
    page = graded.folder / "feedback" / "solutions" / name / f"{name}.html"
    assert page.exists()
    total = sum(ex.points for ex in course.exercises(graded.lesson))
    assert f"Score: {float(total)} / {float(total)}" in page.read_text()
    assert graded.export.returncode == 0, graded.export.stderr[-3000:]
    with open(graded.folder / "grades.csv") as f:
        rows = {row["student_id"]: row for row in csv.DictReader(f)}
    assert float(rows["solutions"]["raw_score"]) == total
    assert float(rows["untouched"]["raw_score"]) == 0
