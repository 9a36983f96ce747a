"""Lesson sources, student notebooks and the learner workspace."""

import copy
import json
import re
from pathlib import Path

import jupytext
import nbformat
import pytest

from mamba_edu import course

LESSONS = course.lessons()


def test_there_are_lessons_and_they_follow_the_roadmap():
    assert LESSONS, "no lesson sources found in notebooks/"
    numbers = [stage.number for stage in course.ROADMAP]
    for lesson in LESSONS:
        assert lesson.number in numbers, f"{lesson.path.name} is not on the roadmap"


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda l: l.name)
def test_source_round_trips_through_jupytext(lesson):
    text = lesson.path.read_text()
    again = jupytext.writes(jupytext.reads(text, fmt="py:percent"), fmt="py:percent")
    assert again == text


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda l: l.name)
def test_nbgrader_markup_is_consistent(lesson):
    nb = course.build_notebook(lesson)
    assert course.check_markup(nb, lesson.name) == []
    ids = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader")
        has_solution = course.BEGIN_SOLUTION in cell.source
        if meta is None:
            assert not has_solution, (
                f"a cell with a solution has no nbgrader metadata:\n{cell.source[:200]}"
            )
            continue
        assert meta["schema_version"] == 3
        ids.append(meta["grade_id"])
        if meta.get("solution"):
            assert has_solution and course.END_SOLUTION in cell.source, meta["grade_id"]
        if meta.get("grade"):
            assert meta.get("points", 0) > 0 and meta.get("locked"), meta["grade_id"]
            assert course.BEGIN_HIDDEN in cell.source, meta["grade_id"]
    assert len(ids) == len(set(ids)), f"duplicate grade_id in {lesson.name}: {ids}"
    # every exercise: a solution cell, then its test cell <name>_tests with whole points
    exs = course.exercises(lesson)
    assert [i for ex in exs for i in (ex.grade_id, ex.test_id)] == ids
    for ex in exs:
        assert ex.test_id == ex.grade_id + "_tests" and isinstance(ex.points, int)


def _exercise_nb(solution_meta=None, test_meta=None, solution_src=None, test_src=None):
    sol = {"grade": False, "grade_id": "f", "locked": False, "schema_version": 3, "solution": True}
    test = {
        "grade": True,
        "grade_id": "f_tests",
        "locked": True,
        "points": 2,
        "schema_version": 3,
        "solution": False,
    }
    cells = [
        nbformat.v4.new_code_cell(
            solution_src or "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"
        ),
        nbformat.v4.new_code_cell(
            test_src or "### BEGIN HIDDEN TESTS\nassert f() == 1\n### END HIDDEN TESTS"
        ),
    ]
    cells[0].metadata["nbgrader"] = {**sol, **(solution_meta or {})}
    cells[1].metadata["nbgrader"] = {**test, **(test_meta or {})}
    return nbformat.v4.new_notebook(cells=cells)


def test_check_markup_accepts_the_pattern():
    assert course.check_markup(_exercise_nb()) == []


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"solution_meta": {"schema_version": 2}}, "schema_version must be 3"),
        ({"solution_meta": {"grade_id": "Bad Name"}}, "lower-case name"),
        ({"test_meta": {"grade_id": "f_check"}}, "must be named 'f_tests'"),
        ({"test_meta": {"points": 0}}, "positive whole number"),
        ({"test_meta": {"points": 1.5}}, "positive whole number"),
        ({"test_meta": {"locked": False}}, "must be locked"),
        ({"solution_meta": {"locked": True}}, "cannot be locked"),
        ({"solution_meta": {"grade": True, "points": 1}}, "needs manual grading"),
        ({"test_src": "assert f() == 1"}, "HIDDEN TESTS"),
        ({"solution_src": "def f():\n    return 1"}, "BEGIN SOLUTION"),
        ({"test_meta": {"grade_id": "f"}}, "used twice"),
        ({"test_meta": {"color": "red"}}, "unknown nbgrader keys"),
    ],
)
def test_check_markup_names_each_problem(kwargs, message):
    problems = course.check_markup(_exercise_nb(**kwargs), "lesson")
    assert any(message in p for p in problems), problems


def test_check_markup_wants_a_test_cell_per_exercise():
    nb = _exercise_nb()
    del nb.cells[1]
    assert any("has no test cell" in p for p in course.check_markup(nb))
    nb = _exercise_nb()
    nb.cells.insert(0, copy.deepcopy(nb.cells[1]))  # a test before any exercise
    nb.cells[0].metadata["nbgrader"]["grade_id"] = "g_tests"
    assert any("no exercise before it" in p for p in course.check_markup(nb))


def test_exercises_of_lesson_00():
    exs = course.exercises(course.find_lessons(["00"])[0])
    assert [(e.number, e.grade_id, e.test_id, e.points) for e in exs] == [
        (1, "running_state", "running_state_tests", 2),
        (2, "causal_attention", "causal_attention_tests", 2),
    ]
    assert exs[0].solution.startswith("def running_state(x, a):")
    assert "### BEGIN" not in exs[0].solution and "state = a * state + x[t]" in exs[0].solution
    assert "state = a * state + x[t]" in exs[0].solution_lines


def test_find_exercise_by_name_number_or_test_and_unknown_lists_them():
    lesson = course.find_lessons(["00"])[0]
    for spec in ["causal_attention", "2", "causal_attention_tests", " Causal_Attention "]:
        assert course.find_exercise(lesson, spec).grade_id == "causal_attention"
    with pytest.raises(course.UnknownExercise, match=r"no exercise 'nope'.*running_state \(1\)"):
        course.find_exercise(lesson, "nope")
    with pytest.raises(course.UnknownExercise, match="no exercise '3'"):
        course.find_exercise(lesson, "3")


_HIDDEN = re.compile(r"### BEGIN (?:SOLUTION|HIDDEN TESTS)\n(.*?)### END", re.S)


def solution_lines(nb):
    """Every non-trivial line between the solution markers, for leak checks, less the lines the
    lesson also shows in the open (a generic ``with torch.no_grad():`` is no secret)."""
    visible = "\n".join(_HIDDEN.sub("", cell.source) for cell in nb.cells)
    lines = []
    for cell in nb.cells:
        for block in _HIDDEN.findall(cell.source):
            lines += [
                line.strip()
                for line in block.splitlines()
                if len(line.strip()) > 12 and line.strip() not in visible
            ]
    return lines


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda l: l.name)
def test_student_notebook_has_no_solution_text(lesson):
    instructor = course.build_notebook(lesson)
    student = course.student_notebook(instructor)
    text = nbformat.writes(student)
    secrets = solution_lines(instructor)
    assert secrets, "the lesson has exercises, so there should be solution text to hide"
    for line in secrets:
        assert line not in text, f"solution text leaked into the student notebook: {line!r}"
    assert "### BEGIN" not in text and "### END" not in text
    n_exercises = sum(1 for c in instructor.cells if c.metadata.get("nbgrader", {}).get("solution"))
    stubs = sum(c.source.count(course.CODE_STUB) for c in student.cells if c.cell_type == "code")
    assert stubs == n_exercises
    # the stubs are valid Python
    for cell in student.cells:
        if cell.cell_type == "code":
            compile(cell.source.replace("%matplotlib", "#"), lesson.name, "exec")


def test_strip_keeps_indentation_and_rejects_unclosed_blocks():
    src = "def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n"
    assert course._strip_block(src, course.BEGIN_SOLUTION, course.END_SOLUTION, "raise X") == (
        "def f(x):\n    raise X"
    )
    with pytest.raises(course.CourseError, match="no '### END SOLUTION'"):
        course._strip_block(
            "### BEGIN SOLUTION\nx", course.BEGIN_SOLUTION, course.END_SOLUTION, "s"
        )


@pytest.mark.parametrize("spec", ["00", "0", "00_orientation", "orientation", "00_orientation.py"])
def test_find_lessons_accepts_the_usual_names(spec):
    assert course.find_lessons([spec])[0].name == "00_orientation"


def test_unknown_lesson_lists_the_lessons():
    with pytest.raises(course.UnknownLesson, match=r"unknown lesson '42'.*00_orientation"):
        course.find_lessons(["42"])


# --- workspace -------------------------------------------------------------------------------


def test_workspace_created_then_unchanged(tmp_path):
    actions = course.update_workspace(tmp_path / "ws")
    assert {a.action for a in actions} == {"created"}
    nb = nbformat.read(tmp_path / "ws" / "00_orientation.ipynb", as_version=4)
    assert any("raise NotImplementedError()" in c.source for c in nb.cells)
    again = course.update_workspace(tmp_path / "ws")
    assert {a.action for a in again} == {"unchanged"}


def _as_if_the_course_changed(ws: Path, name: str) -> None:
    """Make the manifest say the course's version last offered for ``name`` was another one."""
    manifest = json.loads((ws / course.MANIFEST).read_text())
    manifest["written"][name] = course._sha(b"an older course version")
    (ws / course.MANIFEST).write_text(json.dumps(manifest))


def test_workspace_never_overwrites_a_changed_notebook(tmp_path):
    ws = tmp_path / "ws"
    course.update_workspace(ws, ["00"])
    path = ws / "00_orientation.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source += "\n\nMy own notes."
    nbformat.write(nb, path)
    mine = path.read_bytes()
    beside = ws / "00_orientation.new.ipynb"

    # the course has not changed: the learner's file is kept and no copy of the course's is made
    actions = course.update_workspace(ws, ["00"])
    assert actions[0].action == "kept yours" and actions[0].new_version is None
    assert path.read_bytes() == mine and not beside.exists()
    assert "no newer course version" in actions[0].describe()

    # the course changed: its version goes beside, once
    _as_if_the_course_changed(ws, path.name)
    actions = course.update_workspace(ws, ["00"])
    assert actions[0].action == "kept yours"
    assert actions[0].new_version == beside and beside.exists()
    assert "you have changed it" in actions[0].describe()
    beside.unlink()  # the learner has read it and deletes it: it is not made again
    course.update_workspace(ws, ["00"])
    assert sorted(p.name for p in ws.glob("*.ipynb")) == ["00_orientation.ipynb"]
    # a later course version replaces the one .new file rather than piling up .new2, .new3
    nbformat.write(nbformat.v4.new_notebook(), beside)  # an older .new, with no cells
    _as_if_the_course_changed(ws, path.name)
    course.update_workspace(ws, ["00"])
    assert sorted(p.name for p in ws.glob("*.ipynb")) == [
        "00_orientation.ipynb",
        "00_orientation.new.ipynb",
    ]
    assert nbformat.read(beside, as_version=4).cells
    assert path.read_bytes() == mine


def test_workspace_checks_every_file_before_writing_one(tmp_path, monkeypatch):
    import io

    ws = tmp_path / "ws"
    course.update_workspace(ws, ["00", "01"])
    old = course._notebook_bytes(nbformat.v4.new_notebook())  # an older course version
    for name in ("00_orientation.ipynb", "01_recurrent_networks.ipynb"):
        _as_if_the_course_changed(ws, name)
        (ws / name).write_bytes(old)  # what was written last time, per the manifest below
    manifest = json.loads((ws / course.MANIFEST).read_text())
    manifest["written"] = {k: course._sha(old) for k in manifest["written"]}
    (ws / course.MANIFEST).write_text(json.dumps(manifest))
    before = {p.name: p.read_bytes() for p in ws.iterdir()}
    locked = ws / "01_recurrent_networks.ipynb"
    real_open = io.open

    def no_writing_there(file, mode="r", *args, **kwargs):
        if Path(file) == locked and any(m in mode for m in "wa+"):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(io, "open", no_writing_there)
    monkeypatch.setattr("builtins.open", no_writing_there)
    with pytest.raises(
        course.CourseError, match="cannot write .*01_recurrent_networks.ipynb.*Nothing was written"
    ):
        course.update_workspace(ws, ["00", "01"])
    assert {p.name: p.read_bytes() for p in ws.iterdir()} == before


def test_workspace_updates_an_untouched_notebook_when_the_course_changes(tmp_path):
    ws = tmp_path / "ws"
    course.update_workspace(ws, ["00"])
    path = ws / "00_orientation.ipynb"
    # simulate an older course version: rewrite the file and record it as ours in the manifest
    old = course._notebook_bytes(
        nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("old")])
    )
    path.write_bytes(old)
    manifest = json.loads((ws / course.MANIFEST).read_text())
    manifest["written"][path.name] = course._sha(old)
    (ws / course.MANIFEST).write_text(json.dumps(manifest))
    actions = course.update_workspace(ws, ["00"])
    assert actions[0].action == "updated"
    assert path.read_bytes() != old


def test_unknown_file_without_manifest_is_kept(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    path = ws / "00_orientation.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), path)
    before = path.read_bytes()
    actions = course.update_workspace(ws, ["00"])
    assert actions[0].action == "kept yours" and path.read_bytes() == before


def test_a_file_that_is_not_a_notebook_stops_everything(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "00_orientation.ipynb").write_text("my essay, not JSON")
    with pytest.raises(course.CourseError, match="is not a notebook. Nothing was written"):
        course.update_workspace(ws)
    assert (ws / "00_orientation.ipynb").read_text() == "my essay, not JSON"
    assert sorted(p.name for p in ws.iterdir()) == ["00_orientation.ipynb"]


def test_unwritable_workspace(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(course.CourseError, match="cannot create the workspace folder"):
        course.update_workspace(blocker / "ws")


def test_damaged_manifest_is_reported(tmp_path):
    ws = tmp_path / "ws"
    course.update_workspace(ws, ["00"])
    (ws / course.MANIFEST).write_text("{broken")
    with pytest.raises(course.CourseError, match="damaged"):
        course.update_workspace(ws, ["00"])


def test_readme_lesson_map_lists_every_lesson():
    readme = (course.notebooks_dir().parent / "README.md").read_text()
    for lesson in LESSONS:
        assert f"`notebooks/{lesson.path.name}`" in readme, (
            f"README's lesson map lacks {lesson.name}"
        )
    for stage in course.ROADMAP:
        assert f"| {stage.number} |" in readme
    assert "make lab" in readme and "make test" in readme


# --- nbgrader course folder (mamba-edu assign) -------------------------------------------------


def test_assign_lays_out_an_nbgrader_course(tmp_path):
    actions = course.assign(tmp_path / "class")
    paths = [a.path for a in actions]
    assert paths[0] == "nbgrader_config.py"
    assert "source/00_orientation/00_orientation.ipynb" in paths
    assert {a.action for a in actions} == {"created"}
    nb = nbformat.read(tmp_path / "class/source/00_orientation/00_orientation.ipynb", as_version=4)
    assert any(course.BEGIN_SOLUTION in c.source for c in nb.cells)
    config = (tmp_path / "class/nbgrader_config.py").read_text()
    assert "c.CourseDirectory.course_id = 'mamba-edu'" in config
    compile(config, "nbgrader_config.py", "exec")
    again = course.assign(tmp_path / "class")
    assert {a.action for a in again} == {"unchanged"}


def test_assign_keeps_what_the_instructor_changed(tmp_path):
    folder = tmp_path / "class"
    course.assign(folder, ["00"])
    config = folder / "nbgrader_config.py"
    config.write_text(config.read_text() + "c.Execute.timeout = 999\n")
    source = folder / "source/00_orientation/00_orientation.ipynb"
    nb = nbformat.read(source, as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("points"))
    cell.metadata["nbgrader"]["points"] = 5
    nbformat.write(nb, source)
    mine = {p: p.read_bytes() for p in (config, source)}

    actions = {a.path: a for a in course.assign(folder, ["00"])}
    for path in mine:
        rel = str(path.relative_to(folder))
        assert actions[rel].action == "kept yours" and path.read_bytes() == mine[path]
        assert actions[rel].new_version == f"mamba-edu-new/{rel}"
        assert (folder / "mamba-edu-new" / rel).exists()
        assert "you have changed it" in actions[rel].describe()
    # the course's version is kept out of source/, where nbgrader would take it for a notebook
    assert sorted(p.name for p in (folder / "source/00_orientation").iterdir()) == [
        "00_orientation.ipynb"
    ]


def test_assign_refreshes_its_own_untouched_files(tmp_path):
    folder = tmp_path / "class"
    course.assign(folder, ["00"])
    config = folder / "nbgrader_config.py"
    old = b"# an older course version\n"
    config.write_bytes(old)
    manifest = json.loads((folder / course.ASSIGN_MANIFEST).read_text())
    manifest["written"]["nbgrader_config.py"] = course._sha(old)
    (folder / course.ASSIGN_MANIFEST).write_text(json.dumps(manifest))
    actions = {a.path: a.action for a in course.assign(folder, ["00"])}
    assert actions["nbgrader_config.py"] == "updated"
    assert config.read_text() == course.nbgrader_config()


def test_assign_existing_file_without_manifest_is_kept(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "nbgrader_config.py").write_text("c = get_config()\n")
    actions = {a.path: a.action for a in course.assign(folder, ["00"])}
    assert actions["nbgrader_config.py"] == "kept yours"
    assert (folder / "nbgrader_config.py").read_text() == "c = get_config()\n"


def test_assign_stops_before_writing_when_something_is_in_the_way(tmp_path):
    folder = tmp_path / "class"
    (folder / "source").mkdir(parents=True)
    (folder / "source/00_orientation").write_text("a file where a folder should be")
    with pytest.raises(course.CourseError, match="is in the way.*Nothing was written"):
        course.assign(folder, ["00"])
    assert sorted(p.name for p in folder.rglob("*")) == ["00_orientation", "source"]


def test_assign_damaged_manifest_and_unknown_lesson(tmp_path):
    folder = tmp_path / "class"
    course.assign(folder, ["00"])
    (folder / course.ASSIGN_MANIFEST).write_text("{broken")
    with pytest.raises(course.CourseError, match="damaged"):
        course.assign(folder, ["00"])
    with pytest.raises(course.UnknownLesson, match="unknown lesson '42'"):
        course.assign(tmp_path / "other", ["42"])
    assert not (tmp_path / "other").exists()
