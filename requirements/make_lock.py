"""Regenerate requirements/course.lock, the versions of every package the course is tested with.

    make lock                       # = python requirements/make_lock.py
    python requirements/make_lock.py --torch torch==2.14.1   # move torch on purpose

How: a fresh venv (in a temporary folder) gets `pip install <torch pin> -e ".[<every extra>]"`,
the package's dependencies and all its extras resolved together, each at the newest release that
pyproject.toml allows; `pip check` must be clean; its `pip freeze` becomes the lock, with local
version labels dropped (this machine's torch 2.13.0+cpu is written torch==2.13.0, which PyPI's CUDA
build and the macOS wheel satisfy too). torch stays at the lock's release unless --torch says
otherwise. Run the tests against the new lock (make test) before committing it.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
from pathlib import Path

import locktools as lt


def header(torch: str, extras: list[str], py_version: str, plat: str, pip_version: str,
           min_python: str) -> str:
    """The lock's opening comment: what it is, how it was made, how to use and remake it."""
    day = datetime.date.today().isoformat()
    return f"""\
# The rlcourse course environment: every package version the course is tested with, the
# package's dependencies and its extras ({", ".join(extras)}) resolved together.
#
# Made by `make lock` (requirements/make_lock.py) on {day}, with Python {py_version} on {plat}
# and pip {pip_version}: a fresh venv, `pip install "{torch}" -e ".[{",".join(extras)}]"`,
# `pip check` clean, then `pip freeze` with local version labels dropped (torch 2.13.0+cpu,
# the CPU wheel, is written torch==2.13.0: PyPI's CUDA and macOS wheels of it satisfy it too).
# Do not edit by hand: change pyproject.toml, run `make lock`, then `make test`, then commit.
# `make latest` tries the newest releases instead, in a throwaway venv, and reports what breaks.
#
# requires-python: >={min_python}  (the highest floor among the pinned packages)
#
# Use it as pip constraints, never as requirements (the Makefile and environment.yml do):
#     pip install -c requirements/course.lock "torch==2.13.0"
#     pip install -c requirements/course.lock -e ".[test,grading]"
# Every package listed is held to its version; packages that only another platform needs
# (nvidia-* and triton for CUDA torch, appnope on macOS, ...) are not listed and install as
# their dependents ask.
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--python", default=sys.executable,
                    help="the Python to make the venv with (default: this one)")
    ap.add_argument("--torch", help="torch requirement (default: the lock's torch==X.Y.Z)")
    ap.add_argument("--lock", type=Path, default=lt.LOCK, help="the file to write")
    ap.add_argument("--venv", type=Path,
                    help="where to build the venv (default: a temporary folder, then deleted)")
    args = ap.parse_args(argv)

    torch = args.torch
    if torch is None:
        version = lt.read_lock(args.lock).get("torch") if args.lock.exists() else None
        if version is None:
            raise SystemExit(f"{args.lock} has no torch pin: say which with --torch torch==X.Y.Z")
        torch = f"torch=={version}"
    extras = lt.extras()

    with tempfile.TemporaryDirectory(prefix="rlcourse-lock-") as tmp:
        venv = args.venv or Path(tmp) / "venv"
        py = lt.make_venv(args.python, venv, [torch, "-e", f".[{','.join(extras)}]"])
        problems = lt.pip_check(py)
        if problems:
            raise SystemExit("pip check is not clean, the lock is not written:\n"
                             + "\n".join(problems))
        pins = {name: version.split("+")[0] for name, version in lt.freeze(py).items()}
        py_version, plat = lt.python_info(py)
        pip_version = pins.pop("pip")  # the user's pip is the user's business
        text = header(torch, extras, py_version, plat, pip_version, lt.min_python(py))
        text += "".join(f"{name}=={pins[name]}\n" for name in sorted(pins))

    old = lt.read_lock(args.lock) if args.lock.exists() else {}
    args.lock.write_text(text)
    changed = sorted(n for n in pins.keys() | old.keys() if pins.get(n) != old.get(n))
    print(f"wrote {args.lock}: {len(pins)} packages, {len(changed)} changed")
    for name in changed:
        print(f"  {name}: {old.get(name, '-')} -> {pins.get(name, '-')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
