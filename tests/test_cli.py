"""The mamba-edu command line, run as a learner runs it: clear messages and exit codes."""

import json
import subprocess
import sys
from pathlib import Path

import nbformat


def cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "mamba_edu", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_list_shows_the_roadmap():
    out = cli("list")
    assert out.returncode == 0
    assert "00  Orientation" in out.stdout and "notebooks/00_orientation.py" in out.stdout
    assert "09  Evaluation" in out.stdout


def test_workspace_then_changed_notebook_kept(tmp_path):
    ws = tmp_path / "ws"
    first = cli("workspace", str(ws))
    assert first.returncode == 0, first.stderr
    assert "00_orientation.ipynb: created" in first.stdout
    path = ws / "00_orientation.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].source = "# my experiment\n" + nb.cells[1].source
    nbformat.write(nb, path)
    mine = path.read_bytes()
    second = cli("workspace", str(ws))
    assert second.returncode == 0
    assert "you have changed it" in second.stdout and "no newer course version" in second.stdout
    assert path.read_bytes() == mine and not (ws / "00_orientation.new.ipynb").exists()


def test_unknown_lesson_exits_2_with_the_list(tmp_path):
    out = cli("workspace", str(tmp_path / "ws"), "--lesson", "99")
    assert out.returncode == 2
    assert "unknown lesson '99'" in out.stderr and "00_orientation" in out.stderr
    assert not (tmp_path / "ws").exists()


def test_unwritable_folder_exits_1(tmp_path):
    (tmp_path / "f").write_text("x")
    out = cli("workspace", str(tmp_path / "f" / "ws"))
    assert out.returncode == 1
    assert "cannot create the workspace folder" in out.stderr
    assert "Traceback" not in out.stderr


def test_not_a_notebook_exits_1_and_keeps_the_file(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "00_orientation.ipynb").write_bytes(b"\x00\x01 binary")
    out = cli("workspace", str(ws))
    assert out.returncode == 1
    assert "not a notebook" in out.stderr
    assert (ws / "00_orientation.ipynb").read_bytes() == b"\x00\x01 binary"


def test_build_writes_instructor_notebooks(tmp_path):
    out = cli("build", "--out", str(tmp_path / "nb"), "00")
    assert out.returncode == 0
    nb = nbformat.read(tmp_path / "nb" / "00_orientation.ipynb", as_version=4)
    assert any("### BEGIN SOLUTION" in c.source for c in nb.cells)


def test_usage_error_exits_2():
    out = cli("frobnicate")
    assert out.returncode == 2 and "invalid choice" in out.stderr


def test_solution_prints_one_exercise():
    out = cli("solution", "00", "running_state")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("# 00_orientation, exercise 1 of 2: running_state (2 points")
    assert "def running_state(x, a):" in out.stdout and "state = a * state + x[t]" in out.stdout
    assert "### BEGIN" not in out.stdout
    assert "def causal_attention" not in out.stdout  # one exercise, not the lesson
    assert (
        cli("solution", "orientation", "2").stdout
        == cli("solution", "0", "causal_attention").stdout
    )


def test_solution_unknown_exercise_or_lesson_lists_the_valid_ones():
    out = cli("solution", "00", "scan")
    assert out.returncode == 2 and out.stdout == ""
    assert "no exercise 'scan'" in out.stderr
    assert "running_state (1), causal_attention (2)" in out.stderr
    assert "Traceback" not in out.stderr
    out = cli("solution", "99", "x")
    assert (
        out.returncode == 2
        and "unknown lesson '99'" in out.stderr
        and "00_orientation" in out.stderr
    )


def test_assign_writes_the_course_folder_and_says_what_next(tmp_path):
    out = cli("assign", "00", "--course", str(tmp_path / "class"))
    assert out.returncode == 0, out.stderr
    assert "source/00_orientation/00_orientation.ipynb: created" in out.stdout
    assert "nbgrader generate_assignment 00_orientation" in out.stdout
    (tmp_path / "class" / "nbgrader_config.py").write_text("# mine\n")
    again = cli("assign", "00", "--course", str(tmp_path / "class"))
    assert again.returncode == 0 and "you have changed it" in again.stdout
    assert (tmp_path / "class" / "nbgrader_config.py").read_text() == "# mine\n"


def test_assign_needs_a_course_folder():
    out = cli("assign", "00")
    assert out.returncode == 2 and "--course" in out.stderr


def test_run_list_shows_every_experiment_on_one_line():
    out = cli("run", "--list")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    names = [line.split()[0] for line in lines]
    # every experiment module in the folder is listed once (a module nobody registered fails here)
    folder = Path(__file__).resolve().parents[1] / "mamba_edu" / "experiments"
    modules = {p.stem for p in folder.glob("*.py") if not p.stem.startswith("_")}
    assert sorted(names) == sorted(modules) and len(names) == len(set(names))
    assert names[:3] == ["lru_ladder", "selective_copying", "scan_benchmark"]
    assert "lesson 04" in lines[0] and "lesson 06" in lines[1]


def test_run_with_a_bad_or_missing_name_says_what_exists():
    out = cli("run", "lm_big")
    assert out.returncode == 2
    assert "unknown experiment 'lm_big'" in out.stderr and "lru_ladder" in out.stderr
    assert "Traceback" not in out.stderr
    out = cli("run")
    assert out.returncode == 2 and "--list" in out.stderr


def test_run_quick_writes_its_record(tmp_path):
    target = tmp_path / "ladder.json"
    out = cli("run", "lru_ladder", "--quick", "--out", str(target))
    assert out.returncode == 0, out.stderr
    assert f"written to {target}" in out.stdout
    record = json.loads(target.read_text())
    assert record["command"] == f"mamba-edu run lru_ladder --quick --out {target}"
    assert record["quick"] is True and len(record["rows"]) == 6


def test_grade_refuses_a_folder_that_is_not_a_course(tmp_path):
    out = cli("grade", "00", "--course", str(tmp_path))
    assert out.returncode == 2
    assert "is not a course folder (no nbgrader_config.py)" in out.stderr
    assert "mamba-edu assign 00" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "backups").exists()  # nothing written
