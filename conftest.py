"""Repository-wide pytest hooks (``tests/`` and the lessons run under nbval both load these).

* The time budget of each lesson executed under nbval: nbval runs a notebook as one test per
  cell; this adds the cells' times up per lesson and fails the run when a lesson takes longer than
  its budget (``mamba_edu.course.ROADMAP``: 60 s for lesson 00, 3 minutes for the others, on a
  2-core CPU).
* Each lesson whose every cell passed is saved with its outputs to ``$MAMBA_EDU_EXECUTED`` (when
  set; ``make test-lessons`` sets ``build/executed``), stamped with the SHA-256 of the notebook that
  ran, so that ``make book`` shows these outputs instead of running the lessons again.
* A run stopped with SIGTERM (``timeout``, a CI limit) tears its fixtures down first, so that no
  Jupyter server, kernel or Chromium outlives it (``tests/processes.py`` covers SIGKILL).
"""

import hashlib
import os
import signal
import threading
from collections import defaultdict
from pathlib import Path

import pytest

_lesson_seconds: dict[str, float] = defaultdict(float)
# nbval cells (node ids) whose run passed, for saving the lessons that passed in full
_passed_cells: set[str] = set()


def _budgets() -> list[tuple[str, float, float]]:
    from mamba_edu.course import ROADMAP

    budgets = {stage.number: stage.budget_s for stage in ROADMAP}
    return [
        (name, secs, budgets.get(name[:2], 180.0)) for name, secs in sorted(_lesson_seconds.items())
    ]


def pytest_configure(config):
    # By default Python dies of SIGTERM on the spot, without tearing anything down. Turned into
    # KeyboardInterrupt, it makes pytest stop the way Ctrl-C does: the current test ends, every
    # fixture is torn down (servers, kernels, browsers), and the exit status says "interrupted".
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum, frame):
    # Only the first one: `timeout` signals pytest and then its whole process group, and a second
    # KeyboardInterrupt would cut the teardown short. SIGKILL still ends the run at any moment.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt("SIGTERM: stopping, and tearing the fixtures down")


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::", 1)[0]
    if path.endswith(".ipynb"):
        _lesson_seconds[Path(path).stem] += report.duration


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    outputs = getattr(item, "test_outputs", None)  # set by nbval on each cell it ran
    if outputs is not None and report.when == "call" and report.passed:
        item.cell.outputs = list(outputs)
        _passed_cells.add(item.nodeid)


def _save_executed(session, folder: Path) -> None:
    """Write every lesson all of whose cells ran and passed; forget older runs of the others."""
    # imported here: only lesson runs get this far, and nbval brings nbformat with it
    import nbformat

    cells: dict[Path, list] = defaultdict(list)
    for item in session.items:
        if hasattr(item, "test_outputs") or type(item).__name__ == "IPyNbCell":
            cells[Path(str(item.parent.fspath))].append(item)
    folder.mkdir(parents=True, exist_ok=True)
    for path, items in cells.items():
        target = folder / path.name
        if not all(item.nodeid in _passed_cells for item in items):
            target.unlink(missing_ok=True)  # never leave a run that no longer matches the lesson
            continue
        nb = items[0].parent.nb
        nb.metadata["mamba_edu"] = {
            "source_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "executed_by": "nbval (make test-lessons)",
        }
        nbformat.write(nb, target)


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("MAMBA_EDU_EXECUTED") and _lesson_seconds:
        _save_executed(session, Path(os.environ["MAMBA_EDU_EXECUTED"]))
    if _lesson_seconds and any(secs > budget for _, secs, budget in _budgets()):
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _lesson_seconds:
        return
    terminalreporter.section("lesson time budgets (this machine)")
    for name, secs, budget in _budgets():
        flag = "OVER BUDGET: make the lesson faster" if secs > budget else "ok"
        terminalreporter.write_line(f"{name}: {secs:6.1f} s of {budget:.0f} s  {flag}")
