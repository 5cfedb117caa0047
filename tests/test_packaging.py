"""The two ways in (pip via pyproject.toml, conda via environment.yml) must not drift apart."""

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
# conda-forge spells some packages differently, and gymnasium's pip extras are separate packages there.
CONDA_NAMES = {"pytorch": "torch"}
PIP_EXTRAS = {("gymnasium", "classic-control"): "pygame", ("gymnasium", "mujoco"): "mujoco"}


def split(requirement: str) -> tuple[str, set[str], str]:
    m = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*(?:\[([^\]]*)\])?\s*(.*?)\s*", requirement)
    name, extras, spec = m.group(1).lower(), m.group(2), m.group(3).replace(" ", "")
    return name, {e.strip() for e in extras.split(",")} if extras else set(), spec


def pip_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = {}
    extras = project["optional-dependencies"]
    for line in project["dependencies"] + extras["test"] + extras["grading"]:  # what `make test` installs
        name, extras, spec = split(line)
        reqs[name] = spec
        for extra in extras:
            reqs[PIP_EXTRAS[(name, extra)]] = ""
    return reqs


def conda_requirements() -> dict[str, str]:
    text = (ROOT / "environment.yml").read_text()
    block = text.split("dependencies:")[1]
    reqs = {}
    for line in block.splitlines():
        m = re.fullmatch(r"  - ([^\s:]+)\s*", line)  # top-level conda entries only, not the pip list
        if m:
            name, _, spec = split(m.group(1))
            if name not in ("python", "pip"):
                reqs[CONDA_NAMES.get(name, name)] = spec
    return reqs


def test_environment_yml_names_the_same_packages_as_pyproject():
    assert conda_requirements() == pip_requirements()


def test_environment_yml_installs_the_package_itself():
    assert "- -e ." in (ROOT / "environment.yml").read_text()


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"```(?:bash|sh)?\n(.*?)```", readme, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
    assert commands == ["make lab", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()
