"""The ``mamba-edu`` command line.

mamba-edu list                       the lesson map
mamba-edu workspace [DIR] [-l N ...] write or refresh your student notebooks (never overwrites yours)
mamba-edu build [--out DIR] [N ...]  build the instructor notebooks (what CI executes)
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
    kept = [a for a in actions if a.action == "kept yours"]
    print(f"Workspace ready in {args.dir} ({len(actions)} lesson(s)).")
    if kept:
        print(
            f"{len(kept)} notebook(s) you changed were kept; compare each with its .new version and "
            f"copy over what you want."
        )
    return 0


def _cmd_build(args) -> int:
    for path in course.write_notebooks(args.out, args.lessons):
        print(path)
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
