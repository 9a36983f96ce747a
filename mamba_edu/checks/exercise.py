"""Exercise declarations: one :class:`Exercise` per exercise, held as data by the lesson modules.

Each lesson module (``lesson00`` …) builds its declarations with :func:`declare`, keyed by the
exercise's nbgrader ``grade_id``, and publishes ``check_<grade_id>`` made by :func:`make_check`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .harness import Case, CheckResult, check_function

# Grading draws fresh inputs: every declaration builds its random inputs with `rng(seed)`, so a
# salt set here (by `fresh_cases`) turns the fixed seeds of the self-checks into new ones, for
# every lesson at once. None (the default): the self-checks' own, repeatable cases.
_SALT: int | None = None


def rng(seed: int) -> np.random.Generator:
    """The generator of one declared case: ``seed`` alone, or mixed with the grading salt."""
    return np.random.default_rng(seed if _SALT is None else [_SALT, seed])


def fresh_cases(exercise: Exercise, salt: int) -> list[Case]:
    """``exercise``'s cases with the random ones drawn anew from ``salt`` (edge cases unchanged).

    Used by grading, so that the inputs a submission is judged on are ones it has never seen:
    answers hard-coded for the self-check's cases do not pass.
    """
    global _SALT
    if isinstance(salt, bool) or not isinstance(salt, int) or salt < 0:
        raise ValueError(f"salt must be a non-negative int, got {salt!r}")
    previous, _SALT = _SALT, salt
    try:
        return list(exercise.cases()) + list(
            exercise.hidden_cases() if exercise.hidden_cases else []
        )
    finally:
        _SALT = previous


def random_cases(
    make: Callable[[np.random.Generator, Sequence[int]], tuple],
    shapes: Sequence[Sequence[int]],
    seed: int = 0,
    label: str = "random",
) -> list[Case]:
    """One case per shape, each built by ``make(rng, shape)`` with its own seed."""
    return [Case(f"{label} {tuple(s)}", make(rng(seed + i), s)) for i, s in enumerate(shapes)]


@dataclass(frozen=True)
class Exercise:
    """One exercise's declaration: what the learner writes and how it is checked.

    ``cases`` builds the inputs when the check runs (so importing the checks costs nothing).
    Exactly one of ``reference`` (the expected outputs) and ``validate`` (a property check, for a
    sampler) is given. ``adapt`` turns the learner's function into the one compared (e.g. running
    a recurrence with the parameters it returns); ``rename`` rewords the messages (``your
    output[1]`` → ``your dU``); ``hint`` is added after a wrong value.
    """

    grade_id: str
    doc: str
    cases: Callable[[], list[Case]]
    reference: Callable | None = None
    validate: Callable[[Case, Any], str | None] | None = None
    rtol: float = 1e-7
    atol: float = 1e-9
    timeout: float = 10.0
    adapt: Callable[[Callable], Callable] | None = None
    rename: tuple[tuple[str, str], ...] = ()
    hint: str | None = None
    # cases used only when grading (shapes or edge cases the self-check does not show)
    hidden_cases: Callable[[], list[Case]] | None = None

    def check(self, fn: Callable, *, quiet: bool = False, timeout: Any = ...) -> CheckResult:
        """Check ``fn``; ``timeout`` in seconds per call (default: the declaration's; None: none)."""
        timeout = self.timeout if timeout is ... else timeout
        candidate = self.adapt(fn) if self.adapt is not None and callable(fn) else fn
        result = check_function(
            candidate, self.reference, self.cases(), exercise=self.grade_id, rtol=self.rtol,
            atol=self.atol, timeout=timeout, quiet=True, validate=self.validate,
        )  # fmt: skip
        result = self.reword(result)
        if not quiet:
            print(result.message)
        return result

    def reword(self, result: CheckResult) -> CheckResult:
        """``result`` with this exercise's wording: ``rename`` applied, ``hint`` after a wrong value."""
        message = result.message
        for old, new in self.rename:
            message = message.replace(old, new)
        if not result.ok and self.hint and " differs " in message:
            message += f"\n   Hint: {self.hint}"
        return CheckResult(result.ok, result.exercise, message, result.passed, result.total)


def declare(exercises: Sequence[Exercise]) -> dict[str, Exercise]:
    """A lesson's declarations keyed by ``grade_id`` (each name once)."""
    registry: dict[str, Exercise] = {}
    for ex in exercises:
        if ex.grade_id in registry:
            raise ValueError(f"exercise {ex.grade_id!r} is declared twice")
        registry[ex.grade_id] = ex
    return registry


def make_check(exercise: Exercise) -> Callable[..., CheckResult]:
    """The public ``check_<grade_id>(fn, *, quiet=False, timeout=...)`` of one declaration."""

    def check(fn: Callable, *, quiet: bool = False, timeout: Any = exercise.timeout) -> CheckResult:
        return exercise.check(fn, quiet=quiet, timeout=timeout)

    check.__name__ = check.__qualname__ = f"check_{exercise.grade_id}"
    check.__doc__ = exercise.doc
    check.__module__ = __name__.rpartition(".")[0]
    return check
