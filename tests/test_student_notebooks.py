"""The learner's version of lesson 00 runs top to bottom: the stubs give friendly messages, not tracebacks."""

import nbformat
import pytest
from nbclient import NotebookClient

from mamba_edu import course


@pytest.mark.slow
def test_student_lesson_00_runs_and_stubs_explain_themselves():
    nb = course.student_notebook(course.build_notebook(course.find_lessons(["00"])[0]))
    NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True).execute()
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert not errors, [f"{e.ename}: {e.evalue}" for e in errors]
    stub_cells = [c for c in nb.cells if c.cell_type == "code" and course.CODE_STUB in c.source]
    assert len(stub_cells) == 2
    text = "\n".join(
        o.get("text", "")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "stream"
    )
    assert text.count("not implemented yet") == 2
    assert "Traceback" not in text
    # the rest of the lesson ran on the reference implementation
    assert "fitted slopes" in text
    nbformat.validate(nb)


@pytest.mark.slow
@pytest.mark.parametrize("number, n_stubs", [("01", 3), ("02", 3), ("06", 2)])
def test_student_lessons_run_on_the_reference_after_stubs(number, n_stubs):
    nb = course.student_notebook(course.build_notebook(course.find_lessons([number])[0]))
    NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True).execute()
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert not errors, [f"{e.ename}: {e.evalue}" for e in errors]
    text = "\n".join(
        o.get("text", "")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "stream"
    )
    assert text.count("not implemented yet") == n_stubs
    assert "Traceback" not in text
