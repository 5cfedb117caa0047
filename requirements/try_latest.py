"""Try the newest releases: a throwaway venv, the tests, a report of what breaks.

    make latest                                      # the whole suite, as make test runs it
    make latest TESTS="tests/test_advantages.py -k gae"
    python requirements/try_latest.py --newest-torch -- tests/test_ppo.py

A fresh venv in a throwaway folder (printed; nothing in the repository changes) gets rlcourse with
every extra and the newest releases pyproject.toml allows, the lock ignored; only torch stays at
the lock's release unless --newest-torch (a newer torch on Linux is PyPI's CUDA build, several GB).
Then the tests run in it (RLCOURSE_FAST=1, the pytest arguments after `--`), and the report says
which packages differ from the lock (old -> new), what `pip check` finds, which tests failed, and
which direct dependencies pyproject.toml holds below their newest release. The report is printed
and written to <folder>/report.txt; the exit status is 1 when a test failed or pip check is not
clean. To adopt the new releases: `make lock`, then `make test`.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import locktools as lt
import tomllib


def direct_requirements() -> dict[str, str]:
    """{normalized name: specifier} of pyproject.toml's dependencies and every extra's."""
    project = tomllib.loads((lt.ROOT / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + sum(project["optional-dependencies"].values(), [])
    reqs = {}
    for line in lines:
        m = re.match(r"\s*([A-Za-z0-9_.-]+)\s*(?:\[[^\]]*\])?\s*([^;]*)", line)
        reqs[lt.normalize(m.group(1))] = m.group(2).replace(" ", "")
    return reqs


def newest_release(py: Path, name: str) -> str | None:
    """The newest release of name on the configured indexes (`pip index versions`), or None."""
    out = subprocess.run([str(py), "-m", "pip", "index", "versions", name],
                         capture_output=True, text=True)
    m = re.search(r"^\S+ \(([^)]+)\)", out.stdout, re.M)
    return m.group(1) if m else None


def failed_tests(junit: Path) -> list[str]:
    """`file::test` of every failed or erroring test case in a junit XML report."""
    if not junit.exists():
        return []
    failed = []
    for case in ET.parse(junit).iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            where = case.get("file") or case.get("classname", "").replace(".", "/") + ".py"
            failed.append(f"{where}::{case.get('name')}")
    return failed


def run_tests(py: Path, pytest_args: list[str], folder: Path) -> tuple[int, list[str], str]:
    """Run pytest in the venv from the repository root; echo and save its output.
    Returns (exit status, failed tests, pytest's summary line)."""
    junit = folder / "junit.xml"
    cmd = [str(py), "-m", "pytest", *pytest_args, "-p", "no:cacheprovider",
           f"--junitxml={junit}"]
    print("+ RLCOURSE_FAST=1", " ".join(cmd), flush=True)
    env = dict(os.environ, RLCOURSE_FAST="1")
    lines = []
    with subprocess.Popen(cmd, cwd=lt.ROOT, env=env, text=True, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT) as proc, \
            (folder / "pytest.log").open("w") as log:
        for line in proc.stdout:
            sys.stdout.write(line)
            log.write(line)
            lines.append(line.rstrip())
    summary = next((line.strip("= ") for line in reversed(lines) if line.startswith("=")), "")
    return proc.returncode, failed_tests(junit), summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 usage="%(prog)s [options] [-- PYTEST_ARGS...]")
    ap.add_argument("--python", default=sys.executable, help="the Python for the venv")
    ap.add_argument("--dir", type=Path, help="the throwaway folder (default: a new one in /tmp)")
    ap.add_argument("--lock", type=Path, default=lt.LOCK, help="the lock to compare with")
    ap.add_argument("--newest-torch", action="store_true",
                    help="take the newest torch too (on Linux: the CUDA build, several GB)")
    ap.add_argument("pytest_args", nargs="*", help="what pytest runs (default: pyproject's tests)")
    args = ap.parse_args(argv)

    folder = args.dir or Path(tempfile.mkdtemp(prefix="rlcourse-latest-"))
    folder.mkdir(parents=True, exist_ok=True)
    lock = lt.read_lock(args.lock)
    torch = "torch" if args.newest_torch else f"torch=={lock['torch']}"
    extras = ",".join(lt.extras())
    print(f"throwaway folder: {folder} (pip's output in {folder / 'install.log'})")
    start = time.monotonic()
    py = lt.make_venv(args.python, folder / "venv", [torch, "-e", f".[{extras}]"],
                      log=folder / "install.log")
    installed_s = time.monotonic() - start
    problems = lt.pip_check(py)
    # As the lock writes them: no pip, no local labels (torch 2.13.0+cpu is torch 2.13.0).
    newest = {n: v.split("+")[0] for n, v in lt.freeze(py).items() if n != "pip"}
    status, failed, summary = run_tests(py, args.pytest_args, folder)

    direct = direct_requirements()
    changed = sorted(n for n in newest.keys() & lock.keys() if newest[n] != lock[n])
    added, gone = sorted(newest.keys() - lock.keys()), sorted(lock.keys() - newest.keys())
    held = []
    for name, spec in sorted(direct.items()):
        if ("==" in spec or "<" in spec) and name in newest:
            release = newest_release(py, name)
            if release and release != newest[name]:
                held.append(f"  {name} {newest[name]} (pyproject.toml: {spec}; newest {release})")

    mark = lambda n: "*" if n in direct else " "  # noqa: E731 - a direct dependency
    py_version, plat = lt.python_info(py)
    report = [
        f"make latest: newest releases vs {args.lock}"
        f" (Python {py_version}, {plat}; {torch}; installed in {installed_s:.0f} s)",
        f"packages: {len(newest)} installed, {len(changed)} newer or older than the lock,"
        f" {len(added)} not in it, {len(gone)} in it but gone (* = direct dependency)",
        *(f" {mark(n)}{n}: {lock[n]} -> {newest[n]}" for n in changed),
        *(f" {mark(n)}{n}: (not in the lock) -> {newest[n]}" for n in added),
        *(f" {mark(n)}{n}: {lock[n]} -> (no longer installed)" for n in gone),
        "held back by pyproject.toml:" + ("" if held else " none"),
        *held,
        "pip check: " + ("clean" if not problems else f"{len(problems)} problem(s)"),
        *(f"  {p}" for p in problems),
        f"tests: pytest {' '.join(args.pytest_args) or '(pyproject testpaths)'}",
        f"  {summary or 'no summary'} (exit status {status})",
        *(f"  FAILED {t}" for t in failed),
        f"folder: {folder} (report.txt, install.log, pytest.log, junit.xml; delete when done)",
    ]
    text = "\n".join(report) + "\n"
    (folder / "report.txt").write_text(text)
    print("\n" + text, end="")
    return 1 if status or problems else 0


if __name__ == "__main__":
    sys.exit(main())
