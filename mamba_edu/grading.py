"""Running students' notebooks under nbgrader: the executor the course's ``nbgrader_config.py`` uses.

``nbgrader autograde`` executes every submitted notebook. Students hand in whatever they have,
and grading must survive all of it. nbgrader's own executor already stops a cell that runs past
``Execute.timeout`` (it interrupts the kernel and carries on) and records errors as zero scores.
:class:`GradingExecute` adds three things:

* **a memory limit** on the grading kernel (``memory_limit_gb``, the kernel's address space, set
  with ``setrlimit`` as the kernel starts, before any student code runs), so that an allocation of
  many gigabytes fails at once with ``MemoryError`` instead of swapping the grading machine;
* **a shorter time limit for the cells students write** (``solution_timeout``): in this course an
  exercise cell defines a function, which takes milliseconds, so a long-running one is a runaway
  loop and need not hold grading up for the full ``timeout`` of the lesson's heavier cells;
* **surviving a dead kernel** (``os._exit``, a crash, the kernel killed): nbgrader would discard
  the whole notebook and give the student nothing, not even for the exercises done before; here
  the cells already run keep their outputs (and so their scores), and every cell after gets an
  error output saying it was not run (so its tests score zero, never full marks by default).

This module imports nbgrader, which is installed with the ``instructor`` extra
(``pip install -e '.[instructor]'``); nothing else in the course needs it.
"""

from __future__ import annotations

from nbclient.exceptions import DeadKernelError
from nbclient.util import run_sync
from nbformat import NotebookNode
from nbgrader.converters.autograde import Autograde
from nbgrader.preprocessors import Execute
from traitlets import Float, Integer

__all__ = ["GradingExecute", "autograde_preprocessors", "limit_memory"]

GIB = 2**30


def _limit_code(gb: float) -> str:
    """One line of Python that limits the process running it to ``gb`` GiB of address space.

    Run by the grading kernel as it starts (a line of code rather than an import of this module,
    which would load nbgrader into every kernel), and by :func:`limit_memory`.
    """
    n = int(gb * GIB)
    return (
        "import resource as _r; _h = _r.getrlimit(_r.RLIMIT_AS)[1]; "
        f"_n = {n} if _h == _r.RLIM_INFINITY else min({n}, _h); "
        "_r.setrlimit(_r.RLIMIT_AS, (_n, _n)); del _r, _h, _n"
    )


def limit_memory(gb: float) -> None:
    """Limit this process (and what it starts) to ``gb`` GiB of address space, for good.

    Both the soft and the hard limit are lowered, so code running later in the process cannot
    raise them again (only the superuser can). A limit that is already lower is kept.
    """
    if not gb > 0:
        raise ValueError(f"expected a memory limit in GiB > 0, got {gb}")
    exec(_limit_code(gb), {})  # the very line the grading kernel runs


def _error(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(
        output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"]
    )


class GradingExecute(Execute):
    """nbgrader's ``Execute`` with a memory limit, a solution-cell timeout and dead-kernel survival."""

    solution_timeout = Integer(
        60,
        allow_none=True,
        help="Seconds a cell students write (nbgrader 'solution' cell) may run; None: 'timeout'.",
    ).tag(config=True)

    memory_limit_gb = Float(
        4.0,
        allow_none=True,
        help="Address space (GiB) of the grading kernel; None or 0: no limit.",
    ).tag(config=True)

    def __init__(self, **kw):
        super().__init__(**kw)
        self._dead: str | None = None

    # -- time: the solution cells get their own limit ----------------------------------------
    def _get_timeout(self, cell: NotebookNode | None) -> int | None:
        timeout = super()._get_timeout(cell)
        is_solution = cell is not None and cell.metadata.get("nbgrader", {}).get("solution")
        if is_solution and self.solution_timeout and self.solution_timeout > 0:
            return min(timeout, self.solution_timeout) if timeout else self.solution_timeout
        return timeout

    # -- memory: the kernel limits itself before running anything -----------------------------
    async def async_start_new_kernel(self, **kwargs):
        before = list(self.extra_arguments)
        if self.memory_limit_gb:
            line = _limit_code(float(self.memory_limit_gb))
            self.extra_arguments = [*before, f"--IPKernelApp.exec_lines={line}"]
        try:
            return await super().async_start_new_kernel(**kwargs)
        finally:
            self.extra_arguments = before

    # nbclient binds the synchronous version to its own async one; bind it to ours
    start_new_kernel = run_sync(async_start_new_kernel)

    # -- a dead kernel: keep what ran, mark the rest as not run ------------------------------
    def preprocess(self, nb, resources=None, km=None):
        self._dead = None
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        if self._dead is not None:
            cell.outputs = [_error("NotRun", self._dead)]
            cell.execution_count = None
            return cell, resources
        try:
            return super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self._dead = (
                f"not run: the kernel died in cell {index} (the code there ended the Python "
                f"process, crashed it, or it was killed), so the cells after it were not run"
            )
            self.log.warning("The kernel died in cell %d; the cells after it score zero.", index)
            cell.outputs = [
                *cell.get("outputs", []),
                _error(
                    "DeadKernelError", f"the kernel died while running this cell (cell {index})"
                ),
            ]
            return cell, resources


def autograde_preprocessors() -> list:
    """nbgrader's autograde steps with :class:`GradingExecute` in place of ``Execute``."""
    default = Autograde.class_traits()["autograde_preprocessors"].default()
    if Execute not in default:
        raise RuntimeError(
            f"nbgrader's autograde steps have changed ({default}); update grading.py"
        )
    return [GradingExecute if step is Execute else step for step in default]
