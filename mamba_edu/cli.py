"""The ``mamba-edu`` command line.

mamba-edu list                       the lesson map
mamba-edu workspace [DIR] [-l N ...] write or refresh your student notebooks (never overwrites yours)
mamba-edu build [--out DIR] [N ...]  build the instructor notebooks (what CI executes)
mamba-edu solution LESSON EXERCISE   print the solution of one exercise
mamba-edu assign [N ...] --course DIR lay out an nbgrader course folder (instructors)
mamba-edu grade LESSON --course DIR  grade every submission, each in its own sandbox (instructors)
mamba-edu run NAME [--quick] [--out PATH]  run a long experiment, store it as JSON (--list: which)
mamba-edu book [--out DIR] [N ...]     build the course's static website (make book)
"""

from __future__ import annotations

import argparse
import sys

from mamba_edu import course

__all__ = ["main"]


def _cmd_list(args) -> int:
    available = {lesson.number: lesson for lesson in course.lessons()}
    for stage in course.ROADMAP:
        lesson = available.get(stage.number)
        where = f"notebooks/{lesson.path.name}" if lesson else "(coming)"
        print(f"{stage.number}  {stage.title:<34} {stage.idea:<58} {where}")
    return 0


def _cmd_workspace(args) -> int:
    actions = course.update_workspace(args.dir, args.lesson)
    for action in actions:
        print(f"  {action.describe()}")
    kept = [a for a in actions if a.action == "kept yours" and a.new_version is not None]
    print(f"Workspace ready in {args.dir} ({len(actions)} lesson(s)).")
    if kept:
        print(
            f"{len(kept)} notebook(s) you changed were kept; compare each with its .new version and "
            f"copy over what you want (a later course version replaces the .new file)."
        )
    return 0


def _cmd_build(args) -> int:
    for path in course.write_notebooks(args.out, args.lessons):
        print(path)
    return 0


def _cmd_solution(args) -> int:
    (lesson,) = course.find_lessons([args.lesson])
    ex = course.find_exercise(lesson, args.exercise)
    total = len(course.exercises(lesson))
    print(
        f"# {lesson.name}, exercise {ex.number} of {total}: {ex.grade_id} "
        f"({ex.points} point{'s' if ex.points != 1 else ''}, tested by {ex.test_id})"
    )
    print(ex.solution, end="")
    return 0


def _cmd_assign(args) -> int:
    actions = course.assign(args.course, args.lessons, course_id=args.course_id)
    for action in actions:
        print(f"  {action.describe()}")
    lessons = [a.path.split("/")[1] for a in actions if a.path.startswith("source/")]
    print(f"nbgrader course folder ready in {args.course} ({len(lessons)} lesson(s)).")
    kept = [a for a in actions if a.action == "kept yours"]
    if kept:
        print(
            f"{len(kept)} file(s) you changed were kept; the course's versions are under "
            f"{course.NEW_VERSIONS}/ (compare and copy what you want)."
        )
    print(
        f"Next, in that folder: nbgrader generate_assignment {lessons[0]}   "
        f"(see docs/INSTRUCTORS.md)"
    )
    return 0


def _cmd_grade(args) -> int:
    try:
        from mamba_edu import grading  # here: it loads nbgrader, only in the instructor extra
    except ImportError as exc:
        print(
            f"mamba-edu grade: error: grading needs nbgrader ({exc}); install the instructor "
            f"extra: pip install -e '.[instructor]'",
            file=sys.stderr,
        )
        return 2
    try:
        return grading.grade(args.course, args.lesson, args.nbgrader_args, args.numba_cache)
    except grading.GradingError as exc:
        print(f"mamba-edu grade: error: {exc}", file=sys.stderr)
        return 2


def _cmd_run(args) -> int:
    # imported here: the other commands must not wait for torch, which every experiment loads
    from mamba_edu import experiments

    if args.list:
        for name, summary in experiments.summaries().items():
            print(f"{name:<20} {summary}")
        return 0
    if args.name is None:
        names = ", ".join(experiments.REGISTRY)
        print(f"mamba-edu run: error: name an experiment ({names}) or use --list", file=sys.stderr)
        return 2
    try:
        record = experiments.run(args.name, quick=args.quick, out=args.out)
    except experiments.ExperimentError as exc:
        print(f"mamba-edu run: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"\nmamba-edu run: interrupted; the finished units are kept: run the same command "
            f"again to resume {args.name}",
            file=sys.stderr,
        )
        return 130
    out = args.out or experiments.default_out(args.name, args.quick)
    print(f"{args.name}: {record['total_seconds']:.0f} s, written to {out}")
    return 0


def _cmd_book(args) -> int:
    # imported here: the website needs nbconvert and MathJax (the `book` extra), nothing else does
    from mamba_edu import book

    pages = book.build_book(
        args.out, args.lessons or None, executed_dir=args.executed, execute=not args.no_execute
    )
    reused = sum(page.executed == "reused" for page in pages)
    print(
        f"{len(pages)} pages in {args.out} ({reused} lesson(s) from the saved nbval runs); "
        f"open {args.out}/index.html"
    )
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mamba-edu", description="Mamba from scratch: the course's command line."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="show the lesson map")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser(
        "workspace",
        help="write or refresh your student notebooks",
        description="Write student notebooks (exercises as stubs) into DIR. Run it again after "
        "updating the course: notebooks you have not changed are refreshed, notebooks you have "
        "changed are kept and the new version is written beside them.",
    )
    p.add_argument(
        "dir", nargs="?", default="workspace", help="folder to write into (default: workspace)"
    )
    p.add_argument(
        "-l",
        "--lesson",
        action="append",
        metavar="N",
        help="only this lesson (repeatable), e.g. 00 or orientation",
    )
    p.set_defaults(func=_cmd_workspace)

    p = sub.add_parser("build", help="build the instructor notebooks (solutions included)")
    p.add_argument("lessons", nargs="*", metavar="N", help="lessons to build (default: all)")
    p.add_argument(
        "--out", default="build/notebooks", help="output folder (default: build/notebooks)"
    )
    p.set_defaults(func=_cmd_build)

    p = sub.add_parser(
        "solution",
        help="print the solution of one exercise",
        description="Print the instructor's solution of one exercise, for when you are stuck "
        "or want to compare. EXERCISE is its name (e.g. running_state) or its number in the lesson.",
    )
    p.add_argument("lesson", metavar="LESSON", help="e.g. 00 or orientation")
    p.add_argument("exercise", metavar="EXERCISE", help="e.g. running_state or 1")
    p.set_defaults(func=_cmd_solution)

    p = sub.add_parser(
        "assign",
        help="lay out an nbgrader course folder (instructors)",
        description="Write nbgrader_config.py and source/<lesson>/<lesson>.ipynb into the course "
        "folder, for the lessons that have exercises; then use nbgrader as usual "
        "(generate_assignment, autograde, generate_feedback, export). Files you have changed "
        "are never overwritten: the course's version goes to mamba-edu-new/.",
    )
    p.add_argument("lessons", nargs="*", metavar="N", help="lessons to assign (default: all)")
    p.add_argument("--course", required=True, metavar="DIR", help="the nbgrader course folder")
    p.add_argument(
        "--course-id", default="mamba-edu", help="nbgrader course id (default: mamba-edu)"
    )
    p.set_defaults(func=_cmd_assign)

    p = sub.add_parser(
        "grade",
        help="grade every submission of a lesson, each in its own sandbox (instructors)",
        description="Back up gradebook.db and submitted/ (a damaged or deleted gradebook is "
        "restored from the newest good backup), then run `nbgrader autograde LESSON` with every "
        "submission in its own sandbox: no network, no view of the course folder, its processes "
        "killed at the end; the hidden tests are judged outside the student's process on fresh "
        "inputs. Then use nbgrader as usual (generate_feedback, export). See docs/INSTRUCTORS.md.",
    )
    p.add_argument("lesson", metavar="LESSON", help="e.g. 00, orientation or 00_orientation")
    p.add_argument("--course", required=True, metavar="DIR", help="the nbgrader course folder")
    p.add_argument(
        "--numba-cache",
        metavar="DIR",
        help="the compiled kernels every sandbox starts from, brought up to date first "
        "(default: numba-cache/ in the course folder)",
    )
    p.add_argument(
        "nbgrader_args",
        nargs="*",
        metavar="NBGRADER_ARG",
        help="more options for nbgrader autograde, after --, e.g. -- --student alice",
    )
    p.set_defaults(func=_cmd_grade)

    p = sub.add_parser(
        "run",
        help="run a long experiment and store its results as JSON",
        description="Run one of the longer experiments whose results the lessons display, with a "
        "progress bar. The JSON records the command, seeds, machine, versions and UTC date. "
        "An interrupted run resumes where it stopped when started again with the same settings.",
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="the experiment (see --list)")
    p.add_argument("--list", action="store_true", help="list the experiments, one line each")
    p.add_argument(
        "--quick", action="store_true", help="a tiny configuration: checks that it runs (seconds)"
    )
    p.add_argument(
        "--out",
        metavar="PATH",
        help="where to write the JSON (default: data/NAME.json; data/cache/NAME-quick.json "
        "with --quick)",
    )
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser(
        "book",
        help="build the course's static website",
        description="Build a static site of the executed lessons (student version: exercises as "
        "stubs, with the outputs of the instructor's run) into DIR: index.html plus one page per "
        "lesson, readable offline. Lessons whose saved nbval run (build/executed, written by `make "
        "test-lessons`) matches the current source are not executed again.",
    )
    p.add_argument("lessons", nargs="*", metavar="N", help="lessons to include (default: all)")
    p.add_argument("--out", default="build/book", help="output folder (default: build/book)")
    p.add_argument(
        "--executed",
        default="build/executed",
        metavar="DIR",
        help="where executed lessons are saved and reused (default: build/executed)",
    )
    p.add_argument(
        "--no-execute",
        action="store_true",
        help="fail instead of executing a lesson that has no up-to-date saved run",
    )
    p.set_defaults(func=_cmd_book)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except course.CourseError as exc:
        print(f"mamba-edu: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
