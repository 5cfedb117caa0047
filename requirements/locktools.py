"""What requirements/make_lock.py and requirements/try_latest.py share: a throwaway venv with
rlcourse and every extra installed, its `pip freeze` and `pip check`, and the lock file read back.

Standard library only: these scripts run with the Python that will make the venv, before anything
is installed.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "course.lock"
PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


def normalize(name: str) -> str:
    """PEP 503: `Jupyter_Server` and `jupyter-server` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def extras() -> list[str]:
    """Every optional extra of pyproject.toml (test, grading, hub, bench, ...), sorted."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return sorted(project["optional-dependencies"])


def read_lock(path: Path = LOCK) -> dict[str, str]:
    """{normalized name: version} of a lock file's `name==version` lines."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            m = PIN.fullmatch(line)
            if not m:
                raise SystemExit(f"{path}: not a `name==version` line: {line!r}")
            pins[normalize(m.group(1))] = m.group(2)
    return pins


def run(cmd: list[str], log: Path | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Run cmd, echo it; with log, append its output there instead of the terminal."""
    print("+", " ".join(cmd), flush=True)
    if log is None:
        return subprocess.run(cmd, text=True, **kwargs)
    with log.open("a") as out:
        out.write("+ " + " ".join(cmd) + "\n")
        out.flush()
        return subprocess.run(cmd, text=True, stdout=out, stderr=subprocess.STDOUT, **kwargs)


def make_venv(python: str, venv: Path, install: list[str], log: Path | None = None) -> Path:
    """A fresh venv at venv with `pip install <install>` run in it from the repository root;
    returns its python. Exits with pip's message if the install fails."""
    run([python, "-m", "venv", "--clear", str(venv)], log, check=True)
    py = venv / "bin" / "python"
    if run([str(py), "-m", "pip", "install", *install], log, cwd=ROOT).returncode:
        where = f" (see {log})" if log else ""
        raise SystemExit(f"pip install {' '.join(install)} failed{where}")
    return py


def freeze(py: Path) -> dict[str, str]:
    """{normalized name: version} of what the venv holds (setuptools and pip too, which some
    packages need at run time), rlcourse itself left out."""
    out = subprocess.run([str(py), "-m", "pip", "freeze", "--all", "--exclude-editable"],
                         capture_output=True, text=True, check=True).stdout
    pins = {}
    for line in out.splitlines():
        m = PIN.fullmatch(line.strip())
        if not m:
            raise SystemExit(f"pip freeze gave a line that is not `name==version`: {line!r}")
        if normalize(m.group(1)) != "rlcourse":
            pins[normalize(m.group(1))] = m.group(2)
    return pins


def pip_check(py: Path) -> list[str]:
    """The problems `pip check` finds (empty when the venv is consistent)."""
    out = subprocess.run([str(py), "-m", "pip", "check"], capture_output=True, text=True)
    if out.returncode == 0:
        return []
    return [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]


def python_info(py: Path) -> tuple[str, str]:
    """(Python version, platform) of the venv's interpreter, e.g. ('3.11.7', 'Linux x86_64')."""
    code = ("import platform as p; "
            "print(p.python_version(), p.system(), p.machine())")
    version, *plat = subprocess.run([str(py), "-c", code], capture_output=True, text=True,
                                    check=True).stdout.split()
    return version, " ".join(plat)


def min_python(py: Path) -> str:
    """The highest `Requires-Python: >=X.Y[.Z]` among the venv's packages: the oldest Python the
    pinned versions all support (e.g. '3.11', or '3.11.5': some packages need a bugfix release, which a
    system Python such as Debian 12's 3.11.2 may not be)."""
    code = ("import importlib.metadata as m\n"
            "for d in m.distributions(): print(d.metadata.get('Requires-Python') or '')")
    out = subprocess.run([str(py), "-c", code], capture_output=True, text=True, check=True).stdout
    found = re.findall(r">=\s*(\d+)\.(\d+)(?:\.(\d+))?", out)
    floors = [(int(a), int(b), int(c or 0)) for a, b, c in found]
    floor = max(floors, default=(3, 0, 0))
    return ".".join(map(str, floor if floor[2] else floor[:2]))
