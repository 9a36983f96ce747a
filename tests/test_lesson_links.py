"""No lesson or README points a learner to a lesson that does not exist.

The rule (what counts as a reference, and when it is allowed):

* **A link or file name** — ``notebooks/07_mamba.py``, ``[next](08_kernels.ipynb)``, a bare
  ``NN_slug.py`` / ``NN_slug.ipynb`` — must name a lesson source that exists in ``notebooks/``
  (the ``.ipynb`` is built from the ``.py`` of the same name). A learner would click it.
* **A lesson named by number** — "lesson 07", "lessons 02, 04 and 05", "lessons 01–03",
  "**04 · Training …**" — must be a lesson that exists *or* a stage of the course's ROADMAP
  (:data:`mamba_edu.course.ROADMAP`, drawn in lesson 00's roadmap figure). The roadmap is the
  course's published plan, so "lesson 08 shows the kernel" is a true statement about where the course
  goes even while lesson 08 is being written; "lesson 10" is not in the plan and fails. A range
  ("lessons 04–09") must have every lesson in between in the plan.

Checked in every lesson source (``notebooks/*.py``) and in ``README.md``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mamba_edu import course

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"

# "lesson 07", "Lessons 01–02", "lessons 02, 04 and 05", "lessons 04 to 06"
_BY_NUMBER = re.compile(
    r"\b[Ll]essons?\s+(\d{1,2}(?:\s*(?:,|and|or|to|through|–|—|-)\s*\d{1,2}\b)*)"
)
# "**04 · Training linear RNNs**": how lessons name the next one
_BY_TITLE = re.compile(r"\*\*(\d{1,2})\s*·")
# a lesson file: notebooks/NN_slug, or NN_slug.py / NN_slug.ipynb anywhere
_FILE = re.compile(
    r"(?:notebooks/(\d\d_[A-Za-z0-9_]+)(?:\.py|\.ipynb)?)|(?<![\w/.])(\d\d_[A-Za-z0-9_]+)\.(?:py|ipynb)\b"
)


def existing_lessons() -> set[str]:
    """Names (``NN_slug``) of the lesson sources on disk (as :func:`mamba_edu.course.lessons` finds them)."""
    return {lesson.name for lesson in course.lessons()}


def planned_numbers() -> set[int]:
    """Lesson numbers a text may mention: the lessons on disk and the roadmap's stages."""
    on_disk = {int(name[:2]) for name in existing_lessons()}
    return on_disk | {int(stage.number) for stage in course.ROADMAP}


def numbers_referenced(text: str) -> list[tuple[int, str]]:
    """Every lesson number a text mentions, with the words that mention it (ranges expanded)."""
    found = []
    for match in _BY_NUMBER.finditer(text):
        phrase = match.group(0)
        numbers = [int(n) for n in re.findall(r"\d{1,2}", match.group(1))]
        found += [(n, phrase) for n in numbers]
        for low, high in re.findall(r"(\d{1,2})\s*(?:–|—|-|to|through)\s*(\d{1,2})", phrase):
            found += [(n, phrase) for n in range(int(low) + 1, int(high))]
    found += [(int(m.group(1)), m.group(0)) for m in _BY_TITLE.finditer(text)]
    return found


def files_referenced(text: str) -> list[str]:
    """Every ``NN_slug`` a text links to or names as a file."""
    return [m.group(1) or m.group(2) for m in _FILE.finditer(text)]


def broken_references(text: str, lessons: set[str], allowed: set[int]) -> list[str]:
    """The references in ``text`` that point nowhere, in words ([] when all resolve)."""
    problems = [
        f"{phrase!r} names lesson {n:02d}, which is neither in notebooks/ nor on the ROADMAP"
        for n, phrase in numbers_referenced(text)
        if n not in allowed
    ]
    problems += [
        f"{name!r} is not a lesson file in notebooks/ (lessons: {sorted(lessons)})"
        for name in files_referenced(text)
        if name not in lessons
    ]
    return problems


# ------------------------------------------------------------------------------------------------
# the finder must be able to fail
# ------------------------------------------------------------------------------------------------

LESSONS = {"00_orientation", "01_recurrent_networks", "02_linear_rnns"}
ALLOWED = {0, 1, 2, 3}


@pytest.mark.parametrize(
    "text, culprit",
    [
        ("as lesson 10 shows", "lesson 10"),
        ("Lesson 4 trains it", "lesson 04"),
        ("see lessons 01, 02 and 05", "lesson 05"),
        ("lessons 02–05 build it", "lesson 04"),  # inside the range
        ("Next: **07 · The Mamba block**", "lesson 07"),
        ("open [the next one](notebooks/11_x.py)", "'11_x'"),
        ("run `01_recurrent_network.py`", "'01_recurrent_network'"),  # a typo in the slug
        ("build `notebooks/03_parallel_scan` first", "'03_parallel_scan'"),  # planned, no file
    ],
)
def test_finder_reports_a_missing_lesson(text, culprit):
    problems = broken_references(text, LESSONS, ALLOWED)
    assert any(culprit in p for p in problems), (text, problems)


def test_finder_accepts_references_that_resolve():
    text = (
        "Lessons 01–03 (lessons 00, 01 and 02, lesson 03's scan) come first; open "
        "`00_orientation.ipynb` or [lesson 02](notebooks/02_linear_rnns.py). Next: **01 · RNNs**. "
        "The 10 lessons, 2 of which; x_1 and W_2 are not lessons; data/lm_benchmark.json neither."
    )
    assert broken_references(text, LESSONS, ALLOWED) == []


# ------------------------------------------------------------------------------------------------
# the course itself
# ------------------------------------------------------------------------------------------------

SOURCES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py")) + [ROOT / "README.md"]


def test_lessons_are_read_from_this_checkout():
    assert course.notebooks_dir().resolve() == NOTEBOOKS


def test_the_roadmap_covers_every_lesson_on_disk():
    on_disk = {int(name[:2]) for name in existing_lessons()}
    assert on_disk <= {int(stage.number) for stage in course.ROADMAP}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_no_reference_to_a_missing_lesson(path):
    problems = broken_references(path.read_text(), existing_lessons(), planned_numbers())
    assert problems == [], f"{path.relative_to(ROOT)}: " + "; ".join(problems)
