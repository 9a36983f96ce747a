"""Grading a hostile class with `mamba-edu grade`: sandboxes, verdicts outside, nothing shared at risk.

One small assignment keeps this cheap: lesson 00's two exercises (solution and test cells as the
lesson has them) after one import cell. The sandbox and the judging do not depend on the lesson
(they read the declarations in ``mamba_edu.checks``), and ``tests/test_nbgrader.py`` grades every
full lesson through the same executor. The class, graded in one run, in nbgrader's (alphabetical)
order: an honest student first, one hostile student per kind of attack, an honest student last.
Each hostile student hands in a wrong ``running_state`` (zeros for every case but the ones the
self-check shows, or plain zeros) and the right ``causal_attention``, so its scores say both that
wrong work gets no credit and that right work is still graded. Around the run the test records
the course folder, the installed package and the places start-up code could go, and checks that
none changed and that no process of the students is left.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import site
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbgrader.api import Gradebook

import mamba_edu
from mamba_edu import course, grading, scan
from mamba_edu.checks import harness
from mamba_edu.checks.exercise import fresh_cases

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox is Linux namespaces")

NAME = "mini"
MARK = "MAMBA_EDU_HOSTILE_MARK"  # in every hostile process's command line, to find leftovers
LESSON = course.find_lessons(["00"])[0]
EXERCISES = course.exercises(LESSON)
FULL = {ex.test_id: float(ex.points) for ex in EXERCISES}
PACKAGE = Path(mamba_edu.__file__).resolve().parent
SITE = Path(site.getsitepackages()[0])


def _mini_source() -> nbformat.NotebookNode:
    """Lesson 00's exercise and test cells after one import cell: an assignment that runs fast."""
    nb = course.build_notebook(LESSON)
    ids = {ex.grade_id for ex in EXERCISES} | {ex.test_id for ex in EXERCISES}
    cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") in ids]
    head = nbformat.v4.new_code_cell("import numpy as np\nfrom mamba_edu import checks, scan")
    head.metadata = {"nbgrader": {"grade": False, "grade_id": "imports", "locked": True,
                                  "schema_version": 3, "solution": False}}  # fmt: skip
    nb.cells = [head, *cells]
    return nb


def cell_of(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _hashes(*folders: Path) -> dict[str, str]:
    out = {}
    for folder in folders:
        for p in sorted(folder.rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts:
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


WRONG = """
def running_state(x, a):
    return np.zeros_like(x)  # wrong work
"""

# Each attack is a cell put before the (wrong) running_state; {course} is the course folder.
ATTACKS = {
    "read-secrets": """
import glob, os
targets = [{course!r} + '/gradebook.db', {notebooks!r} + '/00_orientation.py']
targets += glob.glob({course!r} + '/source/*/*.ipynb') or [{course!r} + '/source/mini/mini.ipynb']
targets += [{course!r} + '/submitted/a-honest/mini/mini.ipynb']
print('TRYING', len(targets))
for t in targets:
    try:
        print('FOUND', t, open(t, 'rb').read()[:4000])
    except OSError as exc:
        print('BLOCKED', type(exc).__name__)
""",
    "write-delete": """
import os, shutil
acts = [lambda: os.remove({course!r} + '/submitted/z-honest/mini/mini.ipynb'),
        lambda: open({course!r} + '/planted.txt', 'w').write('x'),
        lambda: shutil.rmtree({course!r} + '/source'),
        lambda: open({course!r} + '/autograded/a-honest/mini/mini.ipynb', 'w').write('{{}}')]
print('TRYING', len(acts))
for act in acts:
    try:
        act(); print('DONE')
    except OSError as exc:
        print('BLOCKED', type(exc).__name__)
""",
    "gradebook": """
import os, sqlite3, subprocess, sys
try:
    db = sqlite3.connect({course!r} + '/gradebook.db')
    db.execute('UPDATE grade SET manual_score = 99'); db.commit(); print('DONE')
except Exception as exc:
    print('BLOCKED', type(exc).__name__)
later = ("import sqlite3, time\\n"
         "time.sleep(40)\\n"
         "db = sqlite3.connect({course!r} + '/gradebook.db')\\n"
         "db.execute('UPDATE grade SET manual_score = 99'); db.commit()\\n")
subprocess.Popen([sys.executable, '-c', later, {mark!r}], start_new_session=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
if os.fork() == 0:
    os.setsid()
    os.execv(sys.executable, [sys.executable, '-c', later, {mark!r}])
print('LEFT RUNNING')
""",
    "poison-package": """
import os, mamba_edu
paths = [os.path.join(os.path.dirname(mamba_edu.__file__), 'checks', '__init__.py'),
         {package!r} + '/checks/__init__.py', {site!r} + '/numpy/__init__.py']
print('TRYING', len(paths))
for path in paths:
    try:
        open(path, 'a').write('\\nraise SystemExit("poisoned")\\n'); print('DONE', path)
    except OSError as exc:
        print('BLOCKED', type(exc).__name__)
""",
    "poison-numba-cache": """
import os
# the sandbox's own copy of the warmed cache: spoil every file (a later sandbox must not see it)
paths = [os.path.join(d, f) for d, _, files in os.walk('/tmp/numba') for f in files]
print('COPY', len(paths))
for path in paths:
    open(path, 'ab').write(b'POISONED')
try:
    open({cache!r} + '/POISONED', 'w').write('x'); print('DONE')
except OSError as exc:
    print('BLOCKED', type(exc).__name__)
""",
    "persist-startup": """
import os, site, sys
code = 'import numpy; numpy.allclose = lambda *a, **k: True\\n'
places = [os.path.expanduser('~/.ipython/profile_default/startup/00-evil.py'),
          {home!r} + '/.ipython/profile_default/startup/00-evil.py',
          os.path.join(site.getusersitepackages(), 'sitecustomize.py'),
          {site!r} + '/sitecustomize.py', {site!r} + '/evil.pth']
for path in places:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, 'w').write(code if not path.endswith('.pth') else 'import os\\n'); print('WROTE', path)
    except OSError as exc:
        print('BLOCKED', type(exc).__name__)
""",
    "rewrite-cells": """
import builtins, sys
ip = get_ipython()
# every later cell that mentions a check or an assert does nothing
ip.input_transformers_post.append(
    lambda lines: ['pass\\n'] if any(w in ''.join(lines) for w in ('check', 'assert', 'capture')) else lines)
sys.settrace(None)
builtins.AssertionError = type('Never', (Exception,), {{}})
""",
    "patch-checks": """
import numpy as np
from mamba_edu import checks
from mamba_edu.checks import harness
np.allclose = np.isclose = lambda *a, **k: True
np.array_equal = lambda *a, **k: True
harness.describe_mismatch = lambda *a, **k: None
harness.judge_records = lambda *a, **k: harness.CheckResult(True, 'x', 'ok', 1, 1)
checks.check_running_state = lambda *a, **k: True
for ex in checks.EXERCISES.values():
    object.__setattr__(ex, 'reference', lambda *a, **k: 0.0)
""",
    "hard-coded": """
from mamba_edu import checks, scan
_seen = {{}}
for _case in checks.EXERCISES['running_state'].cases():
    _x, _a = _case.args
    _seen[_x.tobytes() + _a.tobytes()] = scan.sequential_scan(
        np.broadcast_to(_a[:, None], _x.T.shape), _x.T).T.copy()
""",
}

HARD_CODED = """
def running_state(x, a):
    return _seen.get(x.tobytes() + a.tobytes(), np.zeros_like(x))  # only the visible cases
"""


def _hostile(release, attack: str, solved) -> nbformat.NotebookNode:
    nb = copy.deepcopy(solved)
    first = nb.cells.index(cell_of(nb, EXERCISES[0].grade_id))
    nb.cells.insert(first, nbformat.v4.new_code_cell(attack))
    cell_of(nb, EXERCISES[0].grade_id).source = HARD_CODED if "_seen" in attack else WRONG
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory, numba_cache):
    try:
        grading.sandbox_kind()
    except grading.SandboxError as exc:  # a failure, never a skip: grading must be safe here
        pytest.fail(str(exc))
    folder = tmp_path_factory.mktemp("course")
    home = Path.home()
    (folder / course.NBGRADER_CONFIG).write_text(course.nbgrader_config())
    (folder / "source" / NAME).mkdir(parents=True)
    nbformat.write(_mini_source(), folder / "source" / NAME / f"{NAME}.ipynb")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    run = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", NAME],
                         cwd=folder, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    release = nbformat.read(folder / "release" / NAME / f"{NAME}.ipynb", 4)
    solved = copy.deepcopy(release)
    for ex in EXERCISES:
        cell_of(solved, ex.grade_id).source = ex.solution
    fill = {"course": str(folder), "notebooks": str(course.notebooks_dir()), "mark": MARK,
            "package": str(PACKAGE), "site": str(SITE), "home": str(home),
            "cache": str(numba_cache)}  # fmt: skip
    students = {"a-honest": solved, "z-honest": copy.deepcopy(solved)}
    for kind, attack in ATTACKS.items():
        students[f"h-{kind}"] = _hostile(release, attack.format(**fill), solved)
    for name, nb in students.items():
        (folder / "submitted" / name / NAME).mkdir(parents=True)
        nbformat.write(nb, folder / "submitted" / name / NAME / f"{NAME}.ipynb")

    watched = [folder / "submitted", folder / "source", PACKAGE, SITE / "numpy"]
    before = _hashes(*watched)
    startup = [home / ".ipython/profile_default/startup/00-evil.py", SITE / "sitecustomize.py",
               SITE / "evil.pth", Path(site.getusersitepackages()) / "sitecustomize.py"]  # fmt: skip
    assert not any(p.exists() for p in startup)
    start = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "mamba_edu", "grade", NAME, "--course", str(folder),
                          "--numba-cache", str(numba_cache)],
                         cwd=folder, env=env, capture_output=True, text=True, timeout=2400)  # fmt: skip
    seconds = time.monotonic() - start
    scores = {}
    with Gradebook(f"sqlite:///{folder / 'gradebook.db'}") as gb:
        for name in students:
            sub = gb.find_submission_notebook(NAME, NAME, name)
            scores[name] = {g.name: (g.score, g.needs_manual_grade) for g in sub.grades}
    return {
        "folder": folder, "run": run, "scores": scores, "before": before, "watched": watched,
        "startup": startup, "seconds": seconds, "students": students, "cache": numba_cache,
    }  # fmt: skip


def _outputs(folder: Path, student: str) -> str:
    """What a student's graded notebook shows besides the cells' sources: the outputs.

    Only these come from the student's process (the grader keeps the sources it was handed:
    the student's own code, with the hidden tests put back), so only these can carry what an
    attack read or did. The sources would count the attacks' own ``print('BLOCKED', …)`` and
    the right ``causal_attention`` every hostile student hands in.
    """
    nb = nbformat.read(folder / "autograded" / student / NAME / f"{NAME}.ipynb", 4)
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            parts += [out.get("text", ""), out.get("ename", ""), out.get("evalue", "")]
            parts += [*out.get("traceback", []), *map(str, out.get("data", {}).values())]
    return "\n".join(parts)


def _tries(output: str) -> int:
    """How many things an attack tried, as it printed (``TRYING n``) before trying them."""
    (n,) = re.findall(r"TRYING (\d+)", output)
    return int(n)


def test_grade_runs_and_backs_up(graded):
    assert graded["run"].returncode == 0, graded["run"].stderr[-4000:]
    assert "backed up gradebook.db and submitted/" in graded["run"].stdout
    (backup,) = (graded["folder"] / grading.BACKUPS).iterdir()
    assert (backup / "submitted" / "a-honest" / NAME / f"{NAME}.ipynb").is_file()


def test_honest_students_get_exactly_full_marks(graded):
    for name in ("a-honest", "z-honest"):
        assert graded["scores"][name] == {k: (v, False) for k, v in FULL.items()}, name


@pytest.mark.parametrize("kind", sorted(ATTACKS))
def test_hostile_student_gets_no_credit_for_wrong_work(graded, kind):
    got = graded["scores"][f"h-{kind}"]
    first, second = EXERCISES[0].test_id, EXERCISES[1].test_id
    assert got[first] == (0.0, False), got  # the wrong running_state
    if kind == "rewrite-cells":  # it also stopped its own outputs from being recorded
        assert got[second] == (0.0, False), got
    else:  # the right causal_attention is still graded
        assert got[second] == (FULL[second], False), got


def test_the_hard_coded_answer_fools_the_self_check_but_not_grading(graded):
    from mamba_edu.checks import EXERCISES as DECLARED

    space = {"np": np}
    exec(ATTACKS["hard-coded"].format() + HARD_CODED, space)
    assert DECLARED["running_state"].check(space["running_state"], quiet=True)
    assert graded["scores"]["h-hard-coded"][EXERCISES[0].test_id] == (0.0, False)


def test_the_attacks_ran_and_were_blocked(graded):
    folder = graded["folder"]
    text = {kind: _outputs(folder, f"h-{kind}") for kind in ATTACKS}
    # every attempt printed BLOCKED (the glob of source/ finds nothing in the sandbox: 4 paths)
    assert text["read-secrets"].count("BLOCKED") == _tries(text["read-secrets"]) >= 4
    assert "FOUND" not in text["read-secrets"]
    assert text["write-delete"].count("BLOCKED") == _tries(text["write-delete"]) == 4
    assert "DONE" not in text["write-delete"]
    assert "LEFT RUNNING" in text["gradebook"] and "DONE" not in text["gradebook"]
    assert text["poison-package"].count("BLOCKED") == _tries(text["poison-package"]) == 3
    assert "numba cache" in graded["run"].stdout and "up to date" in graded["run"].stdout
    # the sandbox had a copy of the warmed cache, and spoilt only that copy
    assert int(re.findall(r"COPY (\d+)", text["poison-numba-cache"])[0]) > 0
    assert "BLOCKED" in text["poison-numba-cache"] and "DONE" not in text["poison-numba-cache"]
    cache = [p for p in graded["cache"].rglob("*") if p.is_file()]
    assert cache and not any(b"POISONED" in p.read_bytes() for p in cache)
    assert "WROTE" in text["persist-startup"]  # its own private home only
    assert "WROTE " + str(Path.home()) not in text["persist-startup"]


def test_no_secret_reaches_any_feedback(graded):
    folder = graded["folder"]
    secret = [line for ex in EXERCISES for line in ex.solution_lines if len(line) > 20]
    other_lessons = [
        line
        for lesson in course.lessons()
        if lesson != LESSON
        for ex in course.exercises(lesson)
        for line in ex.solution_lines
        if len(line) > 25
    ]
    for kind in ATTACKS:
        text = _outputs(folder, f"h-{kind}")
        assert "SQLite format" not in text, kind
        leaked = [line for line in other_lessons if line in text]
        assert not leaked, (kind, leaked[:3])
        if kind != "hard-coded":  # that one's cells are its own code
            assert not [line for line in secret if line in text and line not in WRONG], kind


def test_nothing_outside_the_students_output_changed(graded):
    assert _hashes(*graded["watched"]) == graded["before"]
    assert not any(p.exists() for p in graded["startup"]), [
        p for p in graded["startup"] if p.exists()
    ]
    folder = graded["folder"]
    assert not (folder / "planted.txt").exists()
    honest = nbformat.read(folder / "autograded" / "a-honest" / NAME / f"{NAME}.ipynb", 4)
    assert cell_of(honest, EXERCISES[0].test_id).outputs  # not overwritten with {}


def test_no_student_process_is_left_and_the_gradebook_stays(graded):
    left = []
    for proc in Path("/proc").iterdir():
        try:
            if MARK.encode() in (proc / "cmdline").read_bytes():
                left.append(proc.name)
        except OSError:
            continue
    assert not left, f"processes of a student still running: {left}"
    db = sqlite3.connect(graded["folder"] / "gradebook.db")
    assert db.execute("SELECT count(*) FROM grade WHERE manual_score = 99").fetchone() == (0,)
    db.close()


def _same(a, b) -> bool:
    """Two case inputs hold the same data (through the record format, which both must fit)."""
    arrays_a, arrays_b = {}, {}
    tree_a, tree_b = harness.pack(a, arrays_a), harness.pack(b, arrays_b)
    return tree_a == tree_b and all(
        np.array_equal(arrays_a[k], arrays_b[k], equal_nan=True) for k in arrays_a
    )


def test_fresh_cases_differ_from_the_self_checks_for_every_declared_exercise():
    # every exercise whose self-check has random cases gets new ones when graded
    from mamba_edu.checks import EXERCISES as DECLARED

    for grade_id, ex in DECLARED.items():
        fixed = ex.cases()
        fresh = fresh_cases(ex, 12345)
        again = fresh_cases(ex, 12345)
        assert len(fresh) >= len(fixed), grade_id
        same = [_same(a.args, b.args) for a, b in zip(fixed, fresh, strict=False)]
        repeat = [_same(a.args, b.args) for a, b in zip(fresh, again, strict=True)]
        assert all(repeat), grade_id  # the salt alone decides
        if grade_id != "ring_init":  # a sampler: its generators are part of the check (lesson 04)
            assert not all(same), f"{grade_id}: grading would use the self-check's own inputs"


def test_records_round_trip_and_refuse_links(tmp_path):
    value = (np.arange(6.0).reshape(2, 3), 3, 1.5e-300, complex(1, -2), [None, "s", True],
             {"k": np.float32(2.5)}, np.random.default_rng(4), scan.combine)  # fmt: skip
    harness.write_record(str(tmp_path / "r"), value)
    back = harness.read_record(str(tmp_path / "r"))
    assert back[0].tolist() == value[0].tolist() and back[1:6] == value[1:6]
    assert back[6].random() == np.random.default_rng(4).random()
    assert back[7] is scan.combine
    (tmp_path / "l.json").symlink_to(tmp_path / "r.json")
    (tmp_path / "l.npz").symlink_to(tmp_path / "r.npz")
    with pytest.raises(harness.RecordError, match="cannot open"):
        harness.read_record(str(tmp_path / "l"))
    with pytest.raises(harness.RecordError, match="cannot be recorded"):
        harness.pack(object(), {})
    with pytest.raises(harness.RecordError, match="cannot be recorded"):
        harness.pack(lambda x: x, {})
    with pytest.raises(harness.RecordError, match="damaged record"):  # only the course's code
        harness.unpack({"t": "function", "v": ["os", "system"]}, {})


def test_a_damaged_gradebook_is_restored_from_the_newest_good_backup(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")  # alembic
    gb = tmp_path / grading.GRADEBOOK
    with Gradebook(f"sqlite:///{gb}") as book:
        book.add_student("alice")
    said = grading.backup_and_check(tmp_path)
    assert said == [
        f"backed up gradebook.db and submitted/ to {next((tmp_path / 'backups').iterdir()).relative_to(tmp_path)}"
    ]
    gb.write_bytes(b"not a database" * 100)
    said = grading.backup_and_check(tmp_path)
    assert said[0].startswith("gradebook.db was damaged") and "restored from backups/" in said[0]
    assert grading.gradebook_problem(gb) is None
    db = sqlite3.connect(gb)
    assert db.execute("SELECT id FROM student").fetchall() == [("alice",)]
    db.close()
    gb.unlink()
    said = grading.backup_and_check(tmp_path)
    assert said[0].startswith("gradebook.db was missing: restored")
    for backup in (tmp_path / "backups").iterdir():
        (backup / grading.GRADEBOOK).write_bytes(b"junk")
    gb.write_bytes(b"junk")
    with pytest.raises(grading.GradingError, match="no backup .* holds a good one"):
        grading.backup_and_check(tmp_path)


# ----------------------------------------------------------------------------------------------
# The numba cache each sandbox starts from
# ----------------------------------------------------------------------------------------------


def _in_sandbox(tmp_path: Path, code: str, numba_cache) -> subprocess.CompletedProcess:
    """Run ``code`` with Python in a grading sandbox, as the runner would be."""
    work = Path(tempfile.mkdtemp(dir=tmp_path))
    io_dir, root_dir = work / "io", work / "root"
    (io_dir / "work").mkdir(parents=True)
    root_dir.mkdir()
    if grading.sandbox_kind() == "root":
        for path in (io_dir, io_dir / "work"):
            os.chown(path, grading.SANDBOX_UID, grading.SANDBOX_UID)
    work.chmod(0o711)
    command = grading.sandbox_command(
        io_dir, root_dir, [sys.executable, "-c", code], None, numba_cache=numba_cache
    )
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def test_each_sandbox_gets_its_own_copy_of_the_numba_cache(tmp_path, monkeypatch):
    trusted = tmp_path / "trusted"
    (trusted / "kernels_0123").mkdir(parents=True)
    (trusted / "kernels_0123" / "f.nbi").write_bytes(b"as warmed")
    before = _hashes(trusted)
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(trusted))  # NUMBA_* is passed on, but not this
    code = (
        "import os\n"
        "p = '/tmp/numba/kernels_0123/f.nbi'\n"
        f"print(os.environ['NUMBA_CACHE_DIR'], open(p, 'rb').read(), os.path.exists({str(trusted)!r}))\n"
        "open(p, 'wb').write(b'poisoned'); open('/tmp/numba/kernels_0123/new.nbc', 'w').write('x')\n"
    )
    for _ in range(2):  # the second sandbox sees the cache as warmed, not as the first left it
        out = _in_sandbox(tmp_path, code, trusted)
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout == "/tmp/numba b'as warmed' False\n"
    assert _hashes(trusted) == before


def test_a_sandbox_without_a_warmed_cache_starts_with_an_empty_one(tmp_path):
    code = "import os\nprint(os.environ['NUMBA_CACHE_DIR'], os.path.exists('/tmp/numba'))"
    for cache in (None, tmp_path / "never-warmed"):
        out = _in_sandbox(tmp_path, code, cache)
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout == "/tmp/numba False\n"


def test_the_warmed_cache_is_loaded_not_compiled_in_a_sandbox(tmp_path, numba_cache, monkeypatch):
    # numba finds a cache entry by the kernel file's folder and contents: the sandbox must see
    # the kernels where the warming sandbox saw them, or every kernel compiles again
    code = (
        "import numpy as np, torch\n"
        "from mamba_edu.kernels import scan_cpu, selective_cpu\n"
        "from mamba_edu.mamba import MambaConfig, MambaLM\n"
        "a = np.full((2, 8), 0.5)\n"
        "print(scan_cpu.scan_forward(a, a)[0, -1])\n"
        "model = MambaLM(MambaConfig(vocab_size=8, d_model=8, n_layer=1, d_state=4))\n"
        "model(torch.zeros(1, 4, dtype=torch.long)).sum().backward()\n"
        "print(model.generate([1, 2], 3, temperature=0))\n"
    )
    monkeypatch.setenv("NUMBA_DEBUG_CACHE", "1")  # passed on to the sandbox
    out = _in_sandbox(tmp_path, code, numba_cache)
    assert out.returncode == 0, out.stderr[-2000:]
    loaded = re.findall(r"data loaded from '/tmp/numba/([^']+)'", out.stdout)
    kernels = {"_forward_rows", "_scan_fwd_kernel", "_scan_bwd_kernel", "_conv_fwd_kernel",
               "_conv_bwd_kernel", "_mamba_step_kernel", "_rms_fwd_kernel",
               "_rms_bwd_kernel"}  # fmt: skip
    assert kernels <= {name.split("/")[-1].split("-")[0].split(".")[-1] for name in loaded}, (
        out.stdout[-3000:]
    )
    assert "data saved" not in out.stdout, out.stdout[-3000:]
