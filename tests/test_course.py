"""Lesson sources, student notebooks and the learner workspace."""

import json
import re

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


def solution_lines(nb):
    """Every non-trivial line between the solution markers, for leak checks."""
    lines = []
    for cell in nb.cells:
        for block in re.findall(
            r"### BEGIN (?:SOLUTION|HIDDEN TESTS)\n(.*?)### END", cell.source, re.S
        ):
            lines += [line.strip() for line in block.splitlines() if len(line.strip()) > 12]
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


def test_workspace_never_overwrites_a_changed_notebook(tmp_path):
    ws = tmp_path / "ws"
    course.update_workspace(ws, ["00"])
    path = ws / "00_orientation.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source += "\n\nMy own notes."
    nbformat.write(nb, path)
    mine = path.read_bytes()

    actions = course.update_workspace(ws, ["00"])
    assert actions[0].action == "kept yours"
    assert path.read_bytes() == mine
    beside = ws / "00_orientation.new.ipynb"
    assert actions[0].new_version == beside and beside.exists()
    assert "you have changed it" in actions[0].describe()
    # running again reuses the same .new file rather than piling up copies
    course.update_workspace(ws, ["00"])
    assert sorted(p.name for p in ws.glob("*.ipynb")) == [
        "00_orientation.ipynb",
        "00_orientation.new.ipynb",
    ]
    assert path.read_bytes() == mine


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
