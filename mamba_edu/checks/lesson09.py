"""Lesson 09 — evaluation: ``listops_value``, ``closest_width``, ``fit_linear_memory``."""

from __future__ import annotations

import numpy as np

from .exercise import Case, Exercise, declare, make_check, random_cases, rng

# hand-worked ListOps expressions (the generator's cases come on top)
_LISTOPS_BY_HAND = (
    "[MAX 2 9 [MIN 4 7 ] 0 ]",  # 9
    "[MED 1 2 3 4 ]",  # 2: the median 2.5 truncated, as the LRA generator's int(np.median(...))
    "[SM 9 9 [SM 5 6 ] ]",  # 9
    "[MIN 3 [MAX 1 [MED 7 7 0 ] ] 8 ]",  # 3
)


def _listops_cases() -> list[Case]:
    from mamba_edu import tasks  # the generator: loaded only when a lesson-09 check runs

    cases = [Case(f"by hand: {text}", (text,)) for text in _LISTOPS_BY_HAND]
    # the generator's seed comes from `rng`: new expressions when grading (fresh_cases' salt)
    seed = int(rng(90).integers(2**31))
    tokens, _ = tasks.listops(12, max_length=40, min_length=12, max_depth=5, seed=seed)
    for i, row in enumerate(tokens):
        text = tasks.listops_text(row)
        cases.append(Case(f"generated {i} ({len(text.split())} symbols)", (text,)))
    return cases


def _listops_reference(text):
    # a stack evaluator with the generator's own operators, for any expression (grading draws
    # new ones); tests/test_checks.py checks that it gives the generator's labels
    from mamba_edu import tasks

    stack: list[list] = []
    for symbol in text.split():
        if symbol in tasks.LISTOPS_OPERATORS:
            stack.append([symbol])
        elif symbol == "]":
            op, *args = stack.pop()
            value = tasks._listops_apply(op, args)
            if not stack:
                return value
            stack[-1].append(value)
        else:
            stack[-1].append(int(symbol))
    raise ValueError(f"not a complete ListOps expression: {text!r}")


def _quadratic_count(a, b, c):
    return lambda width: a * width * width + b * width + c


def _closest_width_cases() -> list[Case]:
    # a case is (a, b, c, target, widths): the count a w² + b w + c goes in as its coefficients
    # (data, which a record carries to a sandboxed grading; a function could not) and `adapt`
    # hands the learner's function the count itself
    def make(gen, shape):
        n, top = shape
        widths = sorted(int(w) for w in gen.choice(np.arange(1, top + 1), n, replace=False))
        a, b, c = (int(gen.integers(lo, hi)) for lo, hi in ((1, 20), (0, 600), (0, 200)))
        count = _quadratic_count(a, b, c)
        # a target near the count of a width inside the list, off by up to a third of the step
        # to the next width (and of the count itself: the reference's ±99 % always holds)
        i = int(gen.integers(1, n - 1))
        off = min(count(widths[i + 1]) - count(widths[i]), count(widths[i])) // 3
        return a, b, c, count(widths[i]) + int(gen.integers(-off, off + 1)), widths

    return random_cases(
        make, [(30, 200), (8, 40), (60, 400)], seed=95, label="a random quadratic, (widths, up to)"
    ) + [
        Case("a GRU-like count, 6w² + 20w + 100", (6, 20, 100, 20_000, list(range(2, 200)))),
        Case("a wide vocabulary, 12w² + 500w", (12, 500, 0, 50_000, list(range(4, 400, 4)))),
        Case("the target hit exactly", (1, 0, 0, 1024, list(range(1, 100)))),
        Case("a tie: the smaller width wins", (0, 10, 0, 15, [1, 2, 3])),
        Case("only coarse widths", (2, 0, 0, 5000, [10, 40, 70, 100])),
    ]


def _closest_width_adapt(fn):
    return lambda a, b, c, target, widths: fn(_quadratic_count(a, b, c), target, widths)


def _closest_width_reference(a, b, c, target, widths):
    from mamba_edu.experiments import evaluate  # imports torch: only when this check runs

    count = _quadratic_count(a, b, c)
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
            expression such as ``"[MAX 2 9 [MIN 4 7 ] 0 ]"``. On hand-worked examples and on
            expressions drawn by :func:`mamba_edu.tasks.listops` (new ones when graded),
            compared with the value the generator's own operators give (its labels).
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
            adapt=_closest_width_adapt,
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
