"""Lesson 09 — evaluation: ``listops_value``, ``closest_width``, ``fit_linear_memory``."""

from __future__ import annotations

import numpy as np

from .exercise import Case, Exercise, declare, make_check, random_cases, rng

# hand-worked ListOps expressions and their values (the generator's cases come on top)
_LISTOPS_BY_HAND = {
    "[MAX 2 9 [MIN 4 7 ] 0 ]": 9,
    "[MED 1 2 3 4 ]": 2,  # the median 2.5 truncated, as the LRA generator's int(np.median(...))
    "[SM 9 9 [SM 5 6 ] ]": 9,
    "[MIN 3 [MAX 1 [MED 7 7 0 ] ] 8 ]": 3,
}


# every expression a check has generated, with the generator's label: the reference looks its
# value up here (grading draws new expressions, in this same process, before judging them)
_LISTOPS_LABELS: dict[str, int] = dict(_LISTOPS_BY_HAND)


def _listops_cases() -> list[Case]:
    from mamba_edu import tasks  # the generator: loaded only when a lesson-09 check runs

    cases = [Case(f"by hand: {text}", (text,)) for text in _LISTOPS_BY_HAND]
    seed = int(rng(90).integers(2**31))  # new expressions when graded (rng mixes in the salt)
    tokens, labels = tasks.listops(12, max_length=40, min_length=12, max_depth=5, seed=seed)
    for i, (row, label) in enumerate(zip(tokens, labels, strict=True)):
        text = tasks.listops_text(row)
        _LISTOPS_LABELS[text] = int(label)
        cases.append(Case(f"generated {i} ({len(text.split())} symbols)", (text,)))
    return cases


def _listops_reference(text):
    if text not in _LISTOPS_LABELS:
        _listops_cases()  # the self-check's expressions
    return _LISTOPS_LABELS[text]  # the generator's own label for this expression


# The counts are module-level functions, not closures: grading sends a case's inputs to the
# submission's sandbox as a record, which holds a course function by its name only.
def _gru_like_count(width):
    return 6 * width * width + 20 * width + 100


def _wide_vocabulary_count(width):
    return 12 * width * width + 500 * width


def _square_count(width):
    return width * width


def _linear_count(width):
    return 10 * width


def _double_square_count(width):
    return 2 * width * width


def _closest_width_cases() -> list[Case]:
    # targets drawn from rng: new ones when graded
    drawn = [
        Case(
            f"random target {i}",
            (_gru_like_count, int(rng(60 + i).integers(500, 240_000)), list(range(2, 200))),
        )
        for i in range(3)
    ]
    return [
        Case("a GRU-like count, 6w² + 20w + 100", (_gru_like_count, 20_000, list(range(2, 200)))),
        Case("a wide vocabulary, 12w² + 500w", (_wide_vocabulary_count, 50_000, list(range(4, 400, 4)))),
        Case("the target hit exactly", (_square_count, 1024, list(range(1, 100)))),
        Case("a tie: the smaller width wins", (_linear_count, 15, [1, 2, 3])),
        Case("only coarse widths", (_double_square_count, 5000, [10, 40, 70, 100])),
    ] + drawn  # fmt: skip


def _closest_width_reference(count, target, widths):
    from mamba_edu.experiments import evaluate  # imports torch: only when this check runs

    return evaluate.match_width(count, target, widths, tolerance=0.99)[0]


def _fit_linear_memory_cases() -> list[Case]:
    def make(gen, shape):
        n, d_key, d_value = shape
        return gen.standard_normal((n, d_key)), gen.standard_normal((n, d_value))

    return random_cases(make, [(3, 8, 5), (8, 8, 4), (12, 8, 4), (1, 4, 2)]) + [
        Case("orthonormal keys", (np.eye(6)[:4], rng(93).standard_normal((4, 3)))),
    ]


def _recall(fn):
    # what the memory answers when asked for the stored keys: (n, d_value); unique even where
    # several memories store the pairs exactly
    return lambda keys, values: keys @ np.asarray(fn(keys, values)).T


EXERCISES = declare(
    [
        Exercise(
            "listops_value",
            """Lesson 09, exercise 1: ``fn(text)`` → the value (an int, 0 … 9) of a ListOps
            expression such as ``"[MAX 2 9 [MIN 4 7 ] 0 ]"``. Compared with the labels of
            :func:`mamba_edu.tasks.listops` and with hand-worked examples.
            """,
            _listops_cases,
            reference=_listops_reference,
            hint="[MED is the median truncated to an integer; [SM is the sum modulo 10.",
        ),
        Exercise(
            "closest_width",
            """Lesson 09, exercise 2: ``fn(count, target, widths)`` → the width whose
            ``count(width)`` is closest to ``target`` (the smaller one on a tie). Compared with
            :func:`mamba_edu.experiments.evaluate.match_width`.
            """,
            _closest_width_cases,
            reference=_closest_width_reference,
        ),
        Exercise(
            "fit_linear_memory",
            """Lesson 09, exercise 3: ``fn(keys, values)`` → S of shape (d_value, d_key), the
            least-squares linear memory (S k_i ≈ v_i, minimum norm). keys (n, d_key), values
            (n, d_value). Compared by what S recalls for the stored keys.
            """,
            _fit_linear_memory_cases,
            reference=lambda keys, values: keys @ np.linalg.pinv(keys) @ values,
            adapt=_recall,
            rtol=1e-6,
            atol=1e-8,
            rename=(("your output", "S @ keys.T, transposed,"),),
        ),
    ]
)

check_listops_value = make_check(EXERCISES["listops_value"])
check_closest_width = make_check(EXERCISES["closest_width"])
check_fit_linear_memory = make_check(EXERCISES["fit_linear_memory"])
