"""The ways in (make, .ci/run, conda) install one pinned environment: requirements/course.lock."""

import re
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "course.lock"
MAKEFILE = (ROOT / "Makefile").read_text()
# gymnasium's pip extras are packages of their own, which the lock must pin too.
PIP_EXTRAS = {("gymnasium", "classic-control"): ["pygame-ce"], ("gymnasium", "mujoco"): ["mujoco"]}


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def lock_pins() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][A-Za-z0-9.!]*)", line)
            assert m, f"{LOCK.name}: {line!r} is not a `name==version` pin without a local label"
            name = canonicalize_name(m.group(1))
            assert name not in pins, f"{name} is pinned twice"
            pins[name] = m.group(2)
    return pins


def direct_requirements() -> list[Requirement]:
    """The dependencies of the package and of every extra."""
    extras = project()["optional-dependencies"]
    return [Requirement(r) for r in project()["dependencies"] + sum(extras.values(), [])]


def test_the_lock_pins_every_direct_dependency_of_every_extra_within_pyproject():
    pins = lock_pins()
    assert {"test", "grading", "hub", "bench"} <= set(project()["optional-dependencies"])
    for req in direct_requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{name} ({req}) is not in {LOCK.name}: run make lock"
        assert Version(pins[name]) in req.specifier, f"{LOCK.name} pins {name}=={pins[name]}: {req}"
        for extra in req.extras:
            for package in PIP_EXTRAS[(name, extra)]:
                assert package in pins, f"{package} ({req}) is not in {LOCK.name}"


def test_the_lock_says_how_it_was_made_and_pins_torch_for_every_platform():
    text = LOCK.read_text()
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    assert "make lock" in header and "requirements/make_lock.py" in header
    assert re.search(r"with Python 3\.\d+\.\d+ on \w+", header)
    assert re.search(r"^# requires-python: >=3\.\d+", text, re.M)
    assert re.fullmatch(r"\d+\.\d+\.\d+", lock_pins()["torch"])  # no +cpu: right on CUDA too
    assert "rlcourse" not in lock_pins()


def test_make_installs_the_lock_and_only_the_locked_torch():
    assert re.search(r"^LOCK := requirements/course\.lock$", MAKEFILE, re.M)
    stamp = re.search(r"^\$\(BIN\)/\.rlcourse-installed: (.*)$", MAKEFILE, re.M).group(1)
    assert "$(LOCK)" in stamp.split(), "a changed lock must reinstall"
    recipes = [line for line in MAKEFILE.splitlines() if line.startswith("\t")]
    installs = [line for line in recipes if "pip install" in line or "$(PIP) install" in line]
    assert len(installs) >= 3  # torch, the course, the bench extra
    for line in installs:
        assert "-c $(CONSTRAINTS)" in line, f"an install that ignores the lock: {line.strip()}"
    # No silent fallback: a failed torch install stops make and says so, nothing else is tried.
    torch_line = next(line for line in installs if '"$(TORCH)"' in line)
    assert "|| {" in torch_line and "exit 1" in MAKEFILE
    assert not re.search(r"pip install\s+\"?torch\"?\s*$", MAKEFILE, re.M)
    assert re.search(r"^TORCH \?= \$\(LOCK_TORCH\)$", MAKEFILE, re.M)


def test_every_target_that_installs_goes_through_the_locked_stamp():
    for target in ("lab", "test", "exercises", "bench"):
        prereqs = re.search(rf"^{target}: (.*)$", MAKEFILE, re.M).group(1)
        assert re.search(r"\.rlcourse-(bench-)?installed", prereqs), target
    for target in ("lock", "latest"):
        assert re.search(rf"^{target}:", MAKEFILE, re.M), f"make {target}"


def test_environment_yml_installs_the_lock_with_the_same_extras_as_make():
    text = (ROOT / "environment.yml").read_text()
    block = text.split("dependencies:")[1]
    entries = re.findall(r"^  - (\S.*?)\s*$", block, re.M)  # top-level conda dependencies
    made_with = re.search(r"with Python (3\.\d+)", LOCK.read_text()).group(1)
    assert entries == [f"python={made_with}", "pip", "pip:"], "conda supplies Python and pip only"
    pip_entries = re.findall(r"^      - (.*?)\s*$", text, re.M)
    assert pip_entries == ["-c requirements/course.lock", "-e .[test,grading]"]
    make_extras = re.search(r'-e "\.\[([^\]]*)\]"', MAKEFILE).group(1)
    assert make_extras == "test,grading"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"```(?:bash|sh)?\n(.*?)```", readme, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
    assert commands == ["make lab", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_readme_says_where_the_lock_is_and_how_to_remake_and_try_newer():
    readme = (ROOT / "README.md").read_text()
    for words in ("requirements/course.lock", "make lock", "make latest"):
        assert words in readme
