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

Each sandbox can also start with a **copy of a warmed numba cache** (``numba_cache``, made by
:func:`warm_numba_cache`; ``mamba-edu grade`` keeps one in the course folder), so that the
course's kernels are loaded instead of compiled again for every submission.

This module imports nbgrader, which is installed with the ``instructor`` extra
(``pip install -e '.[instructor]'``); nothing else in the course needs it.
"""

from __future__ import annotations

import copy
import datetime
import json
import os
import re
import resource
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient.exceptions import DeadKernelError
from nbclient.util import run_sync
from nbformat import NotebookNode
from nbgrader.converters.autograde import Autograde
from nbgrader.preprocessors import Execute
from traitlets import Bool, Float, Integer, Unicode

__all__ = [
    "GradingExecute",
    "SandboxError",
    "autograde_preprocessors",
    "backup_and_check",
    "grade",
    "limit_memory",
    "sandbox_kind",
    "warm_numba_cache",
]

GIB = 2**30
CAPTURE_KEY = "mamba_edu_capture"  # metadata of a test cell turned into an output recorder


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

    sandbox = Bool(
        True,
        help="Run each submission in its own sandbox and judge its outputs outside it (see "
        "docs/INSTRUCTORS.md, 'Grading untrusted code'). False: students' code runs with the "
        "rights of the grading user and the hidden tests run in the student's kernel.",
    ).tag(config=True)

    sandbox_timeout = Integer(
        1800,
        help="Seconds one submission may run in its sandbox in all; then everything in it is killed.",
    ).tag(config=True)

    numba_cache = Unicode(
        "",
        help="A numba cache folder made by warm_numba_cache (mamba-edu grade makes one): every "
        "sandbox starts with its own copy of it, so the course's kernels load instead of being "
        "compiled for each submission. Empty or missing: each sandbox compiles them.",
    ).tag(config=True)

    def __init__(self, **kw):
        super().__init__(**kw)
        self._dead: str | None = None

    # -- time: the solution cells get their own limit ----------------------------------------
    def _get_timeout(self, cell: NotebookNode | None) -> int | None:
        timeout = super()._get_timeout(cell)
        is_solution = cell is not None and cell.metadata.get("nbgrader", {}).get("solution")
        # a cell recording a student's outputs runs the student's function: same short limit
        is_solution = is_solution or (cell is not None and CAPTURE_KEY in cell.metadata)
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
        if self.sandbox:
            return self._preprocess_sandboxed(nb, resources)
        return super().preprocess(nb, resources, km)

    # -- the sandboxed run: the student's process computes outputs, this one judges them -------
    def _preprocess_sandboxed(self, nb, resources):
        # imported here: the checks (and the references they import) load only when grading
        from mamba_edu import checks
        from mamba_edu.checks import harness
        from mamba_edu.checks.exercise import fresh_cases

        salt = secrets.randbits(63)
        sent = copy.deepcopy(nb)
        plan: dict[int, tuple | str] = {}
        inputs: dict[str, list] = {}
        for i, cell in enumerate(nb.cells):
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type != "code" or not meta.get("grade") or meta.get("solution"):
                continue
            test_id = str(meta.get("grade_id", ""))
            grade_id = test_id.removesuffix("_tests")
            exercise = checks.EXERCISES.get(grade_id)
            named = re.search(rf"check_{re.escape(grade_id)}\(\s*([A-Za-z_]\w*)", cell.source)
            # the hidden tests never run in the student's process: they are replaced either way
            sent.cells[i].source = "pass"
            if exercise is None or named is None or not test_id.endswith("_tests"):
                plan[i] = (
                    f"cannot grade '{test_id}' safely: mamba_edu.checks declares no exercise "
                    f"'{grade_id}' called as check_{grade_id}(function) in this test cell"
                )
                continue
            cases = fresh_cases(exercise, salt)
            inputs[grade_id] = [{"name": c.name, "args": c.args, "kwargs": c.kwargs} for c in cases]
            plan[i] = (grade_id, exercise, cases)
            sent.cells[i].source = (
                "from mamba_edu.checks import EXERCISES as _mamba_edu_exercises\n"
                "from mamba_edu.checks.harness import capture as _mamba_edu_capture\n"
                f"_mamba_edu_capture(globals().get({named.group(1)!r}), {SANDBOX_MOUNT!r}, "
                f"{grade_id!r}, _mamba_edu_exercises[{grade_id!r}])"
            )
            sent.cells[i].metadata[CAPTURE_KEY] = grade_id

        work = Path(tempfile.mkdtemp(prefix="mamba-edu-grade-"))
        try:
            io_dir, root_dir = work / "io", work / "root"
            (io_dir / "work").mkdir(parents=True)
            root_dir.mkdir()
            nbformat.write(sent, io_dir / "in.ipynb")
            harness.write_record(str(io_dir / "inputs"), inputs)
            settings = {
                "timeout": self.timeout,
                "solution_timeout": self.solution_timeout,
                "memory_limit_gb": self.memory_limit_gb,
                "interrupt_on_timeout": self.interrupt_on_timeout,
            }
            (io_dir / "settings.json").write_text(json.dumps(settings))
            if sandbox_kind() == "root":
                for path in (io_dir, io_dir / "work"):
                    os.chown(path, SANDBOX_UID, SANDBOX_UID)
            work.chmod(0o711)
            argv = [sys.executable, "-m", "mamba_edu.grading", "--run-inside-sandbox"]
            command = sandbox_command(
                io_dir, root_dir, argv, self.memory_limit_gb, numba_cache=self.numba_cache or None
            )
            note = None
            try:
                run = subprocess.run(
                    command, capture_output=True, text=True, timeout=self.sandbox_timeout,
                    stdin=subprocess.DEVNULL,
                )  # fmt: skip
                if run.returncode != 0 and not (io_dir / "out.ipynb").exists():
                    # the runner never finished: the sandbox itself failed (not the student's
                    # code, whose failures the runner records); grading on would score zeros
                    raise SandboxError(
                        f"the sandbox failed (status {run.returncode}): {run.stderr[-1500:]}"
                    )
                if run.returncode != 0:
                    self.log.warning(
                        "The sandbox ended with status %d: %s", run.returncode, run.stderr[-2000:]
                    )
                    note = f"the submission's sandbox ended with status {run.returncode}"
            except subprocess.TimeoutExpired:
                note = (
                    f"the submission ran past its {self.sandbox_timeout} s in all and was stopped"
                )
                self.log.warning("A submission ran past sandbox_timeout and was killed.")
            back = self._read_back(io_dir / "out.ipynb", len(nb.cells))
            self._merge(nb, back, plan, io_dir, note, harness)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return nb, resources

    def _read_back(self, path: Path, n_cells: int):
        """The executed notebook the sandbox wrote, or None (it is the student's data: checked)."""
        # imported here: see _preprocess_sandboxed
        from mamba_edu.checks.harness import RecordError, read_untrusted

        try:
            back = nbformat.reads(read_untrusted(str(path)).decode("utf-8"), as_version=4)
            nbformat.validate(back)
        except (RecordError, ValueError, UnicodeDecodeError, nbformat.ValidationError) as exc:
            self.log.warning("No usable notebook came back from the sandbox: %s", exc)
            return None
        if len(back.cells) != n_cells:
            self.log.warning("The notebook from the sandbox has another number of cells.")
            return None
        return back

    def _merge(self, nb, back, plan, io_dir: Path, note: str | None, harness) -> None:
        """Outputs of the student's cells from the sandbox; test cells get the verdicts made here."""
        missing = note or "the sandbox returned no outputs for this cell"
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            ran = back.cells[i] if back is not None and back.cells[i].cell_type == "code" else None
            cell.execution_count = ran.execution_count if ran is not None else None
            if i not in plan:
                cell.outputs = ran.outputs if ran is not None else [_error("NotRun", missing)]
                continue
            if isinstance(plan[i], str):
                cell.outputs = [_error("NotGraded", plan[i])]
                continue
            grade_id, exercise, cases = plan[i]
            try:
                records = harness.read_record(str(io_dir / f"outputs-{grade_id}"))
            except (harness.RecordError, ValueError, KeyError, TypeError, AttributeError):
                records = None
            if records is None:
                # not recorded: the kernel died before, the cell was stopped, or it never ran;
                # the sandbox's own error says which (an error scores zero whatever it says)
                errors = [o for o in (ran.outputs if ran else []) if o.output_type == "error"]
                cell.outputs = errors or [
                    _error("NotGraded", f"{grade_id}: no outputs were recorded ({missing})")
                ]
                continue
            result = exercise.reword(
                harness.judge_records(
                    records, exercise.reference, cases, exercise=grade_id, rtol=exercise.rtol,
                    atol=exercise.atol, validate=exercise.validate,
                )
            )  # fmt: skip
            if result.ok:
                cell.outputs = [
                    NotebookNode(output_type="stream", name="stdout", text=result.message + "\n")
                ]
            else:
                cell.outputs = [_error("AssertionError", result.message)]

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


# ----------------------------------------------------------------------------------------------
# The sandbox: one per submission
# ----------------------------------------------------------------------------------------------
# Built from util-linux's `unshare` (in every Debian/Ubuntu base system), so nothing needs
# installing: new mount, PID, network, IPC and UTS namespaces; a root file system on a tmpfs
# holding read-only binds of the system folders, the Python and the virtual environment, and a
# read-only copy of the course's code (no lesson sources); a private tmpfs home and /tmp; the
# submission's own folder; then `chroot`, and the student's code runs as `nobody` (or, without
# root, as the unprivileged user of a user namespace) with no capabilities and no_new_privs.
# The grading process is PID 1's parent; when PID 1 (the runner) exits, the kernel kills every
# process left in the namespace.

SANDBOX_UID = 65534  # nobody
SANDBOX_MOUNT = "/grading"  # the submission's folder inside the sandbox
COURSE_MOUNT = "/opt/mamba-edu"  # the read-only copy of the course's code inside the sandbox
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
PASSED_ENV = ("LANG", "LC_ALL", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
PASSED_ENV_PREFIXES = ("NUMBA_", "TRITON_")

_SETUP = rf"""
set -eu
R=$1; IO=$2; shift 2
mount --make-rprivate /
mount -t tmpfs -o size=16m,mode=755 tmpfs "$R"
# the private /tmp and /home first: a virtual environment or course copy that lives under them
# (a clone in /tmp, a venv in a home folder) is bound on top, not hidden by them
mkdir -p "$R/tmp" "$R/home"
mount -t tmpfs -o size=1g,mode=1777,nosuid,nodev tmpfs "$R/tmp"
mount -t tmpfs -o size=256m,mode=755,nosuid,nodev tmpfs "$R/home"
while [ "$1" != "--" ]; do
  src=$1; shift
  if [ -L "$src" ]; then mkdir -p "$R$(dirname "$src")"; ln -s "$(readlink "$src")" "$R$src"; continue; fi
  mkdir -p "$R$src"; mount --rbind "$src" "$R$src"; mount -o remount,bind,ro "$R$src"
done
shift
mkdir -p "$R/proc" "$R/dev/shm" "$R/tmp" "$R/home" "$R{SANDBOX_MOUNT}" "$R{COURSE_MOUNT}"
mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
mount -t tmpfs -o size=256m,mode=1777,nosuid,nodev tmpfs "$R/dev/shm"
mkdir "$R/home/student"; chown "$SANDBOX_UID:$SANDBOX_UID" "$R/home/student"
# a copy of the warmed numba cache, the sandbox's own (NUMBA_CACHE_DIR=/tmp/numba): what the
# submission writes there goes nowhere else. Only a speed-up: a copy that fails is left out.
if [ -n "${{NUMBA_SEED:-}}" ] && cp -R "$NUMBA_SEED" "$R/tmp/numba" 2>/dev/null; then
  chown -R "$SANDBOX_UID:$SANDBOX_UID" "$R/tmp/numba"
else rm -rf "$R/tmp/numba"; fi
for d in null zero full random urandom; do touch "$R/dev/$d"; mount --bind "/dev/$d" "$R/dev/$d"; done
mount --bind "$IO" "$R{SANDBOX_MOUNT}"
mount --rbind "$COURSE" "$R{COURSE_MOUNT}"; mount -o remount,bind,ro "$R{COURSE_MOUNT}"
ip link set lo up
exec chroot "$R" "$@"
"""


class SandboxError(RuntimeError):
    """No sandbox can be made on this machine (says why and what to do)."""


_KIND: str | None = None
_COURSE_COPY: Path | None = None


def _unshare_flags(kind: str) -> list[str]:
    flags = ["--mount", "--pid", "--fork", "--net", "--ipc", "--uts", "--kill-child=SIGKILL"]
    return flags + (["--user", "--map-root-user"] if kind == "user" else [])


def sandbox_kind() -> str:
    """How this machine makes sandboxes: "root" (as the superuser) or "user" (a user namespace).

    Tried once per process with a real mount and network set-up; :class:`SandboxError` when
    neither works, saying what to do.
    """
    global _KIND
    if _KIND is not None:
        return _KIND
    missing = [
        tool for tool in ("unshare", "chroot", "setpriv", "prlimit", "ip") if not shutil.which(tool)
    ]
    if missing:
        raise SandboxError(
            f"cannot grade in a sandbox: {', '.join(missing)} not found. Install util-linux and "
            f"iproute2 (Debian/Ubuntu: apt-get install util-linux iproute2)."
        )
    kind = "root" if os.geteuid() == 0 else "user"
    with tempfile.TemporaryDirectory() as probe:
        cmd = ["unshare", *_unshare_flags(kind), "--", "/bin/sh", "-c",
               f"mount -t tmpfs tmpfs {probe} && mount -t proc proc {probe} && ip link set lo up"]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        how = (
            "the superuser could not create namespaces (in a container, run it with the "
            "capability SYS_ADMIN or --privileged)"
            if kind == "root"
            else "unprivileged user namespaces are off (sysctl kernel.unprivileged_userns_clone=1 "
            "or user.max_user_namespaces > 0), or run grading as root"
        )
        raise SandboxError(
            f"cannot grade in a sandbox on this machine: `unshare` failed ({out.stderr.strip()[-300:]}); "
            f"{how}. Grading without one (GradingExecute.sandbox = False) lets every submission "
            f"act with your rights: only for code you trust."
        )
    _KIND = kind
    return kind


def course_copy() -> Path:
    """A read-only copy of the course's code for the sandboxes (made once per process).

    Laid out as a regular (non-editable) install would be: ``mamba_edu/`` with its ``kernels``
    inside, and the results in ``data/`` beside it; never the lesson sources (``notebooks/`` holds
    every solution) nor anything else of the repository.
    """
    global _COURSE_COPY
    if _COURSE_COPY is not None and _COURSE_COPY.is_dir():
        return _COURSE_COPY
    # imported here: the copy is of whatever mamba_edu.kernels this environment really uses
    import mamba_edu
    import mamba_edu.kernels

    package = Path(mamba_edu.__file__).resolve().parent
    kernels = Path(mamba_edu.kernels.__file__).resolve().parent
    top = Path(tempfile.mkdtemp(prefix="mamba-edu-course-"))
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(package, top / "mamba_edu", ignore=skip)
    if kernels != package / "kernels":
        shutil.copytree(kernels, top / "mamba_edu" / "kernels", ignore=skip, dirs_exist_ok=True)
    data = package.parent / "data"
    if data.is_dir():
        shutil.copytree(data, top / "data", ignore=skip)
    for path in [top, *top.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    _COURSE_COPY = top
    # imported here: only a process that made a copy registers its removal
    import atexit

    atexit.register(shutil.rmtree, top, True)
    return top


def _sandbox_env() -> list[str]:
    env = {
        "HOME": "/home/student",
        "USER": "student",
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "PYTHONPATH": COURSE_MOUNT,
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLCONFIGDIR": "/tmp/matplotlib",
        "MPLBACKEND": "Agg",
        "NUMBA_CACHE_DIR": "/tmp/numba",
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    for key, value in os.environ.items():
        if key in PASSED_ENV or key.startswith(PASSED_ENV_PREFIXES):
            env.setdefault(key, value)  # NUMBA_CACHE_DIR stays the sandbox's own
    return [f"{k}={v}" for k, v in env.items()]


def _readonly_paths() -> list[str]:
    """What the sandbox sees of this machine, read-only: the system and this Python, nothing else."""
    paths = [d for d in SYSTEM_DIRS if os.path.lexists(d)]
    for prefix in {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix), sys.prefix}:
        if not any(
            prefix == p or prefix.startswith(p + "/") for p in paths if not os.path.islink(p)
        ):
            paths.append(prefix)
    return paths


def sandbox_command(
    io_dir: Path,
    root_dir: Path,
    argv: list[str],
    memory_gb: float | None,
    numba_cache: str | os.PathLike | None = None,
) -> list[str]:
    """The command that runs ``argv`` in a fresh sandbox whose ``/grading`` is ``io_dir``.

    ``numba_cache``: a folder (made by :func:`warm_numba_cache`) copied to the sandbox's own
    ``/tmp/numba``, numba's cache there; the folder itself is never in the sandbox.
    """
    seed = os.path.abspath(numba_cache) if numba_cache and os.path.isdir(numba_cache) else ""
    kind = sandbox_kind()
    uid = SANDBOX_UID if kind == "root" else 0
    limits = ["--nproc=512", f"--fsize={2**30}", "--core=0"]
    if memory_gb:
        # the runner too (the kernel limits itself lower); never above a limit already set, which
        # prlimit could not raise
        wanted = int((memory_gb + 4) * GIB)
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        limits.append(f"--as={wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)}")
    inner = [
        "prlimit", *limits, "--",
        "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
        "--bounding-set=-all", "--no-new-privs", "--",
        "env", "-i", "-C", f"{SANDBOX_MOUNT}/work", *_sandbox_env(), *argv,
    ]  # fmt: skip
    return [
        "env", f"SANDBOX_UID={uid}", f"COURSE={course_copy()}", f"NUMBA_SEED={seed}",
        "unshare", *_unshare_flags(kind), "--",
        "/bin/sh", "-c", _SETUP, "sandbox", str(root_dir), str(io_dir), *_readonly_paths(), "--",
        *inner,
    ]  # fmt: skip


def _run_inside_sandbox() -> int:
    """The sandbox's PID 1: execute ``/grading/in.ipynb`` with the plain executor, write the result.

    Whatever this writes is the student's own data to the grading process, which checks it.
    """
    io_dir = Path(SANDBOX_MOUNT)
    settings = json.loads((io_dir / "settings.json").read_text())
    nb = nbformat.read(io_dir / "in.ipynb", as_version=4)
    executor = GradingExecute(sandbox=False, **settings)
    try:
        executor.preprocess(nb, {"metadata": {"path": str(io_dir / "work")}})
    finally:
        nbformat.write(nb, io_dir / "out.ipynb")
    return 0


# ----------------------------------------------------------------------------------------------
# The numba cache the sandboxes start from
# ----------------------------------------------------------------------------------------------
# Compiling the course's kernels takes a lesson up to about a minute on a 2-core machine (two
# minutes for all of them), and every sandbox starts with an empty cache. numba keys its cache on the kernel source's folder and contents,
# so a cache is only of use to a sandbox if it was made for /opt/mamba-edu/mamba_edu/kernels:
# it is warmed in a sandbox too, one that runs the course's own code and nothing a student
# wrote. Each grading sandbox then gets its own copy (see _SETUP): numba loads cache files with
# pickle, so a submission must never write to a cache that another sandbox will load.

NUMBA_CACHE = "numba-cache"  # in the course folder, kept up to date by `mamba-edu grade`


def _compile_kernels() -> None:
    """Run the course's cached numba kernels on tiny inputs, in the dtypes the lessons use.

    The kernels copy their arguments to one C-contiguous layout, so a dtype is a signature. The
    list is what the graded lessons load (measured with NUMBA_DEBUG_CACHE=1): the first-order
    scan in float64 and complex64 (lessons 03, 04), the selective scan in float32 and float64
    (06 to 09), and the Mamba block's causal conv + SiLU (training), one-token step
    (generation) and RMSNorm (training) in the same two dtypes (07, 09). A signature left out
    costs time, not correctness: the sandbox that needs it compiles it, as it would without a
    cache.
    """
    # run only inside the warming sandbox: the grading CLI itself needs neither numpy nor numba
    import numpy as np

    # (the kernels compile on import)
    from mamba_edu.kernels import conv_cpu, norm_cpu, scan_cpu, selective_cpu

    rng = np.random.default_rng(0)
    for dtype in (np.float64, np.complex64):
        a, b = (0.5 * rng.random((2, 2, 8)) + 0.25).astype(dtype)
        h = scan_cpu.scan_forward(a, b)
        scan_cpu.scan_forward_chunked(a, b, chunk=4)
        scan_cpu.scan_backward(a, h, np.ones_like(h))
    batch, dim, length, n = 2, 4, 8, 3
    for dtype in (np.float32, np.float64):
        x, delta, z = rng.standard_normal((3, batch, dim, length)).astype(dtype)
        A = -rng.random((dim, n)).astype(dtype)
        B, C = rng.standard_normal((2, batch, n, length)).astype(dtype)
        D, bias = rng.standard_normal((2, dim)).astype(dtype)
        out, _, y_pre, ckpt = selective_cpu._forward(
            x, delta, A, B, C, D, z, bias, True, None, keep_pre=True
        )
        selective_cpu.selective_scan_bwd(
            np.ones_like(out), x, delta, A, B, C, D, z, bias, True, y_pre=y_pre, checkpoints=ckpt
        )
        rows, weight = rng.standard_normal((batch, length, dim)).astype(dtype), A[:, :2].copy()
        u = conv_cpu.causal_conv_silu_fwd(rows, weight, bias)
        conv_cpu.causal_conv_silu_bwd(np.ones_like(u), rows, weight, bias)
        rank = 2
        selective_cpu.mamba_step(
            rng.standard_normal((batch, 2 * dim)).astype(dtype),  # in_proj's output: x then z
            np.zeros((batch, dim, 2), dtype), np.zeros((batch, dim, n), dtype), weight, bias,
            rng.standard_normal((rank + 2 * n, dim)).astype(dtype),
            rng.standard_normal((dim, rank)).astype(dtype), bias, A, D,
        )  # fmt: skip
        y, rstd = norm_cpu.rms_norm_fwd(rows, D)
        norm_cpu.rms_norm_bwd(np.ones_like(y), rows, D, rstd)


def _warm_inside_sandbox() -> int:
    """The warming sandbox's PID 1: compile the kernels, hand numba's cache back in /grading."""
    import numba  # heavy, and only the warming sandbox needs it

    _compile_kernels()
    shutil.copytree(numba.config.CACHE_DIR, Path(SANDBOX_MOUNT) / NUMBA_CACHE, symlinks=True)
    return 0


def warm_numba_cache(cache_dir: str | os.PathLike, timeout: float = 1800) -> Path:
    """Compile the course's kernels in a sandbox into ``cache_dir`` (made or brought up to date).

    The sandbox runs only the course's code (:func:`_compile_kernels`) and starts from a copy of
    what ``cache_dir`` holds, so a second call loads instead of compiling (seconds). The folder
    is replaced as a whole at the end: a grading sandbox copying it meanwhile gets the old or
    the new one. Give it to :class:`GradingExecute` as ``numba_cache``. Raises
    :class:`SandboxError` when the sandbox fails.
    """
    target = Path(cache_dir).absolute()
    work = Path(tempfile.mkdtemp(prefix="mamba-edu-warm-"))
    try:
        io_dir, root_dir = work / "io", work / "root"
        (io_dir / "work").mkdir(parents=True)
        root_dir.mkdir()
        if sandbox_kind() == "root":
            for path in (io_dir, io_dir / "work"):
                os.chown(path, SANDBOX_UID, SANDBOX_UID)
        work.chmod(0o711)
        argv = [sys.executable, "-m", "mamba_edu.grading", "--warm-numba-cache"]
        command = sandbox_command(io_dir, root_dir, argv, None, numba_cache=target)
        run = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
        made = io_dir / NUMBA_CACHE
        if run.returncode != 0 or not made.is_dir():
            raise SandboxError(
                f"warming the numba cache failed (status {run.returncode}): {run.stderr[-1500:]}"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        new = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        shutil.copytree(made, new, symlinks=True, dirs_exist_ok=True)
        for path in [new, *new.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        old = target.with_name(f"{new.name}-old")
        if target.exists():
            target.rename(old)
        new.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


# ----------------------------------------------------------------------------------------------
# `mamba-edu grade`: back up, check the gradebook, autograde in sandboxes
# ----------------------------------------------------------------------------------------------

GRADEBOOK = "gradebook.db"
BACKUPS = "backups"  # in the course folder: backups/<UTC time>/{gradebook.db,submitted/}


class GradingError(RuntimeError):
    """A problem `mamba-edu grade` reports in one sentence."""


def gradebook_problem(path: Path) -> str | None:
    """What is wrong with the gradebook at ``path`` (None: it opens and passes SQLite's check)."""
    if not path.is_file():
        return "missing"
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            (verdict,) = db.execute("PRAGMA integrity_check").fetchone()
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        db.close()
    except sqlite3.DatabaseError as exc:
        return f"damaged ({exc})"
    if verdict != "ok":
        return f"damaged (SQLite: {verdict})"
    if not {"assignment", "student", "grade"} <= tables:
        return "not an nbgrader gradebook (its tables are missing)"
    return None


def backup_and_check(course_dir: Path, now: datetime.datetime | None = None) -> list[str]:
    """Restore a damaged or deleted gradebook from the newest good backup, then back up.

    The backup, ``backups/<UTC time>/``, holds ``gradebook.db`` and ``submitted/``. Returns what
    was done, one sentence each. A damaged gradebook with no good backup raises
    :class:`GradingError` (grading would only make it worse).
    """
    said: list[str] = []
    gradebook = course_dir / GRADEBOOK
    backups = course_dir / BACKUPS
    earlier = sorted((p for p in backups.glob("*") if p.is_dir()), reverse=True)
    problem = gradebook_problem(gradebook)
    if problem is not None and (problem != "missing" or earlier):
        good = next((b for b in earlier if gradebook_problem(b / GRADEBOOK) is None), None)
        if good is None:
            raise GradingError(
                f"{gradebook} is {problem} and no backup under {backups} holds a good one. "
                f"Nothing was graded; restore it by hand (or move it away to start a new one)."
            )
        if gradebook.exists():
            gradebook.replace(gradebook.with_name(f"{GRADEBOOK}.{problem.split()[0]}"))
        shutil.copy2(good / GRADEBOOK, gradebook)
        said.append(f"{GRADEBOOK} was {problem}: restored from {good.relative_to(course_dir)}")
    stamp = (now or datetime.datetime.now(datetime.UTC)).strftime("%Y%m%dT%H%M%S.%fZ")
    target = backups / stamp
    target.mkdir(parents=True)
    if gradebook.exists():
        with sqlite3.connect(gradebook) as source, sqlite3.connect(target / GRADEBOOK) as copy_:
            source.backup(copy_)  # consistent even while nbgrader has it open
        source.close()
        copy_.close()
    if (course_dir / "submitted").is_dir():
        shutil.copytree(course_dir / "submitted", target / "submitted", symlinks=True)
    said.append(f"backed up {GRADEBOOK} and submitted/ to {target.relative_to(course_dir)}")
    return said


def grade(
    course_dir: str | os.PathLike,
    lesson: str,
    nbgrader_args: list[str] = (),
    numba_cache: str | os.PathLike | None = None,
) -> int:
    """Grade every submission of ``lesson`` in ``course_dir``, each in its own sandbox.

    Checks that a sandbox can be made, restores a damaged gradebook, backs up, brings the numba
    cache the sandboxes start from up to date (``numba_cache``, by default ``numba-cache/`` in
    the course folder; see :func:`warm_numba_cache`), then runs ``nbgrader autograde`` with the
    course's executor in sandbox mode. Returns nbgrader's status.
    """
    # imported here: grading is a tool above the course module, which it only uses for names
    from mamba_edu import course

    folder = Path(course_dir)
    if not (folder / course.NBGRADER_CONFIG).is_file():
        raise GradingError(
            f"{folder} is not a course folder (no {course.NBGRADER_CONFIG}). Lay one out with "
            f"`mamba-edu assign {lesson} --course {folder}`."
        )
    # an assignment of the course folder by its own name, else a lesson (00, orientation, …)
    name = (
        lesson if (folder / "source" / lesson).is_dir() else course.find_lessons([lesson])[0].name
    )
    if not (folder / "source" / name).is_dir():
        raise GradingError(
            f"{folder} has no assignment {name} (no source/{name}/). Lay it out with "
            f"`mamba-edu assign {lesson} --course {folder}`."
        )
    try:
        sandbox_kind()
    except SandboxError as exc:
        raise GradingError(str(exc)) from None
    for line in backup_and_check(folder):
        print(line)
    cache = Path(numba_cache if numba_cache is not None else folder / NUMBA_CACHE).absolute()
    start = time.monotonic()
    try:
        warm_numba_cache(cache)
        print(f"numba cache {cache} is up to date ({time.monotonic() - start:.0f} s)")
        use_cache = [f"--GradingExecute.numba_cache={cache}"]
    except (SandboxError, OSError, subprocess.TimeoutExpired) as exc:
        # only a speed-up: without it every sandbox compiles the kernels, as it used to
        print(f"warning: no numba cache for the sandboxes ({exc}); grading goes on without")
        use_cache = []
    command = [
        sys.executable, "-m", "nbgrader", "autograde", name,
        "--GradingExecute.sandbox=True", *use_cache, *nbgrader_args,
    ]  # fmt: skip
    status = subprocess.run(command, cwd=folder).returncode
    problem = gradebook_problem(folder / GRADEBOOK)
    if problem is not None:
        raise GradingError(
            f"after grading, {GRADEBOOK} is {problem}; the backup is under {BACKUPS}/"
        )
    return status


if __name__ == "__main__":
    if sys.argv[1:] == ["--run-inside-sandbox"]:
        sys.exit(_run_inside_sandbox())
    if sys.argv[1:] == ["--warm-numba-cache"]:
        sys.exit(_warm_inside_sandbox())
    sys.exit("usage: python -m mamba_edu.grading --run-inside-sandbox (run by the grader only)")
