"""Every exercise in the lesson sources has exactly one check declaration, and every declaration an
exercise; each declaration accepts the lesson's own solution and rejects a clearly wrong one."""

import ast
import importlib

import numpy as np
import pytest

from mamba_edu import checks, course

LESSONS = course.lessons()
ALL_EXERCISES = [(lesson, ex) for lesson in LESSONS for ex in course.exercises(lesson)]


def declarations_of(lesson):
    module = checks.LESSONS.get(lesson.number)
    return {} if module is None else module.EXERCISES


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.name)
def test_each_exercise_has_exactly_one_declaration_in_its_lesson(lesson):
    in_source = [ex.grade_id for ex in course.exercises(lesson)]
    declared = list(declarations_of(lesson))
    assert len(in_source) == len(set(in_source)), f"a grade_id repeats in {lesson.name}"
    assert declared == in_source, (
        f"{lesson.name}: exercises in the source {in_source}, declared {declared} "
        f"(same names, same order)"
    )


def test_every_declaration_belongs_to_an_exercise():
    in_sources = [ex.grade_id for _, ex in ALL_EXERCISES]
    assert sorted(checks.EXERCISES) == sorted(in_sources)
    numbers = {lesson.number for lesson in LESSONS}
    assert set(checks.LESSONS) <= numbers, "a lesson module without a lesson source"


def test_each_check_is_public_under_its_grade_id():
    for name in checks.EXERCISES:
        check = getattr(checks, f"check_{name}")
        assert f"check_{name}" in checks.__all__
        assert check.__name__ == f"check_{name}" and check.__doc__


def solution_function(ex):
    """The function the solution cell defines, run in a namespace with the lesson's modules."""
    tree = ast.parse(ex.solution)
    defined = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]
    assert len(defined) == 1, f"{ex.grade_id}: the solution should define one function: {defined}"
    namespace = {"np": np}
    for name in ("attention", "linear_rnn", "lru", "mamba", "rnn", "scan", "selective", "ssm"):
        namespace[name] = importlib.import_module(f"mamba_edu.{name}")
    exec(compile(ex.solution, f"<{ex.grade_id} solution>", "exec"), namespace)
    return namespace[defined[0]]


def perturbed(value):
    """A clearly wrong version of an output: every number moved by about one."""
    if isinstance(value, (tuple, list)):
        return type(value)(perturbed(v) for v in value)
    return np.asarray(value) * 1.5 + 1.0


@pytest.mark.parametrize("lesson, ex", ALL_EXERCISES, ids=[ex.grade_id for _, ex in ALL_EXERCISES])
def test_the_lessons_solution_passes_and_a_wrong_answer_fails(lesson, ex):
    solution = solution_function(ex)
    check = getattr(checks, f"check_{ex.grade_id}")
    result = check(solution, quiet=True)
    assert result, result.message
    assert result.passed == result.total > 0

    wrong = check(lambda *args, **kwargs: perturbed(solution(*args, **kwargs)), quiet=True)
    assert not wrong and f"❌ {ex.grade_id}" in wrong.message
    assert "case '" in wrong.message  # it names the case

    nothing = check(lambda *args, **kwargs: None, quiet=True)
    assert not nothing
