"""environment.yml (conda, Binder) agrees with pyproject.toml."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def load():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return env, project


def pins(requirements):
    out = {}
    for req in requirements:
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^;\s]+)$", req.strip())
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


def test_channels_python_and_pip():
    env, project = load()
    assert env["channels"] == ["conda-forge"]
    deps = env["dependencies"]
    assert "pip" in deps
    python = [d for d in deps if isinstance(d, str) and d.startswith("python")]
    assert python == ["python=3.11"]
    assert ">=3.11" in project["requires-python"] and "<3.12" in project["requires-python"]


def test_pip_block_installs_the_course_last_and_pins_agree():
    env, project = load()
    block = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert block[-1] == "-e ."
    project_pins = pins(project["dependencies"])
    assert project_pins["torch"] == "2.13.0"
    for name, version in pins(block).items():
        assert project_pins.get(name) == version, (
            f"{name}=={version} in environment.yml, pyproject says {project_pins.get(name)}"
        )


def test_every_runtime_dependency_is_pinned():
    _, project = load()
    unpinned = [r for r in project["dependencies"] if "==" not in r]
    assert not unpinned, f"unpinned runtime dependencies: {unpinned}"
