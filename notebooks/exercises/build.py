"""Generate the student versions of the graded exercises and check that nothing secret leaks into them.

    python notebooks/exercises/build.py                 # every assignment (what `make exercises` runs)
    python notebooks/exercises/build.py ex4_importance  # some of them
    python notebooks/exercises/build.py --check-only    # check an existing release/ without regenerating

For every assignment in ``source/`` this lints the instructor's notebook, runs ``nbgrader
generate_assignment`` (which writes ``release/<assignment>/``), then checks the release: no nbgrader
marker, no line of a solution and no line of a hidden test in any released file, no outputs, and a
kernelspec. It exits with status 1 and a list of the problems if anything is wrong.

``tests/test_exercises.py`` imports this file (it is not part of the package) and reuses its functions.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

COURSE = Path(__file__).resolve().parent

SOLUTION = ("### BEGIN SOLUTION", "### END SOLUTION")
HIDDEN = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
# What nbgrader puts where a solution was (its default ClearSolutions.code_stub for Python).
STUB_LINES = {"# YOUR CODE HERE", "raise NotImplementedError()"}


class BuildError(RuntimeError):
    """The sources are malformed, nbgrader failed, or a release leaks a solution or a hidden test."""


# --------------------------------------------------------------------------------------------- nbgrader


def nbgrader_command() -> list[str]:
    """The ``nbgrader`` of this Python's environment (the venv's), or a clear error if it is not installed."""
    candidate = Path(sys.executable).parent / "nbgrader"
    found = str(candidate) if candidate.exists() else shutil.which("nbgrader")
    if found is None:
        raise BuildError(
            "nbgrader is not installed in this environment: install the grading extra, "
            "`pip install -e '.[grading]'` (`make test` and `make exercises` do it)"
        )
    return [found]


def nbgrader_env() -> dict[str, str]:
    """The environment for nbgrader: this venv's ``bin/`` first on PATH, since nbgrader runs ``alembic`` from
    PATH when it creates a gradebook, and the kernel must be this environment's Python."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def run_nbgrader(args: list[str], course: Path = COURSE, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run ``nbgrader <args>`` in the course folder; return the finished process (its exit status unchecked)."""
    return subprocess.run(
        nbgrader_command() + args,
        cwd=course,
        env=nbgrader_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def generate(assignment: str, course: Path = COURSE) -> None:
    """``nbgrader generate_assignment <assignment> --force``: the student version in ``release/<assignment>/``."""
    done = run_nbgrader(["generate_assignment", assignment, "--force"], course)
    if done.returncode != 0:
        raise BuildError(f"nbgrader generate_assignment {assignment} failed:\n{done.stdout}{done.stderr}")


# ------------------------------------------------------------------------------------------- the sources


def assignments(course: Path = COURSE) -> list[str]:
    """The assignments of the course: the folders of ``source/``."""
    return sorted(p.name for p in (course / "source").iterdir() if p.is_dir() and not p.name.startswith("."))


def source_notebook(assignment: str, course: Path = COURSE) -> Path:
    return course / "source" / assignment / f"{assignment}.ipynb"


def read_notebook(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def nbgrader_meta(cell: dict) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def regions(text: str, markers: tuple[str, str]) -> tuple[list[str], list[str]]:
    """Split a cell's lines into (inside the marked regions, outside them); the marker lines are neither."""
    inside, outside, depth = [], [], 0
    for line in text.splitlines():
        stripped = line.strip()
        if stripped == markers[0]:
            depth += 1
        elif stripped == markers[1]:
            depth -= 1
        elif depth > 0:
            inside.append(line)
        else:
            outside.append(line)
    return inside, outside


def secret_lines(nb: dict) -> tuple[set[str], set[str]]:
    """The stripped lines that must not reach students: (solution lines, hidden-test lines).

    A line that also occurs outside every marked region (an ``import``, a ``return out`` that the visible
    code uses as well) is public anyway and is left out, so a match in a release is a real leak.
    """
    solution, hidden, public = set(), set(), set()
    for cell in nb["cells"]:
        text = cell_source(cell)
        sol_in, rest = regions(text, SOLUTION)
        hid_in, rest = regions("\n".join(rest), HIDDEN)
        solution.update(line.strip() for line in sol_in)
        hidden.update(line.strip() for line in hid_in)
        public.update(line.strip() for line in rest)
    public |= STUB_LINES | {""}
    return solution - public, hidden - public


def lint_source(assignment: str, course: Path = COURSE) -> list[str]:
    """Problems of an instructor's notebook that would break the release or the grading."""
    path = source_notebook(assignment, course)
    if not path.exists():
        return [f"{assignment}: {path.relative_to(course)} is missing (a notebook named after its folder)"]
    nb = read_notebook(path)
    problems = []
    where = f"{assignment}: source"
    if nb.get("metadata", {}).get("kernelspec", {}).get("name") != "python3":
        problems.append(f"{where} has no python3 kernelspec in its metadata")
    ids, previous, points = set(), None, 0
    for index, cell in enumerate(nb["cells"]):
        meta, text = nbgrader_meta(cell), cell_source(cell)
        if cell.get("outputs") or cell.get("execution_count"):
            problems.append(f"{where} cell {index} has outputs: clear them before committing")
        if not meta:
            if any(m in text for m in MARKERS):
                problems.append(f"{where} cell {index} has nbgrader markers but no nbgrader metadata")
            continue
        grade_id = meta.get("grade_id")
        if grade_id in ids:
            problems.append(f"{where}: grade_id {grade_id!r} is used twice")
        ids.add(grade_id)
        if meta.get("solution") and SOLUTION[0] not in text:
            problems.append(f"{where}: solution cell {grade_id!r} has no {SOLUTION[0]} / {SOLUTION[1]} region")
        if meta.get("grade"):
            points += meta.get("points", 0)
            if not meta.get("locked"):
                problems.append(f"{where}: test cell {grade_id!r} is not locked (students could edit it in the UI)")
            if not meta.get("points"):
                problems.append(f"{where}: test cell {grade_id!r} is worth no points")
            # nbgrader 0.9.6 puts a deleted test cell back after the previous cell it knows about, and fails on
            # that submission when the previous one is neither a solution nor a test cell.
            if previous is not None and not (previous.get("grade") or previous.get("solution")):
                problems.append(
                    f"{where}: test cell {grade_id!r} follows the read-only cell {previous.get('grade_id')!r}; put a "
                    "solution or test cell right before it (or drop the other cell's nbgrader metadata)"
                )
        for begin, end in (SOLUTION, HIDDEN):
            if text.count(begin) != text.count(end):
                problems.append(f"{where}: cell {grade_id!r} has unbalanced {begin} / {end} markers")
        previous = meta
    if points == 0:
        problems.append(f"{where} has no test cell with points")
    return problems


# ------------------------------------------------------------------------------------------- the release


def released_texts(release_dir: Path) -> list[tuple[str, str]]:
    """``(name, text)`` for everything students get: every cell's source and outputs of every notebook, and
    every other file."""
    texts = []
    for path in sorted(release_dir.rglob("*")):
        if not path.is_file():
            continue
        name = str(path.relative_to(release_dir))
        if path.suffix == ".ipynb":
            nb = read_notebook(path)
            for index, cell in enumerate(nb["cells"]):
                texts.append((f"{name} cell {index}", cell_source(cell)))
                for output in cell.get("outputs", []):
                    texts.append((f"{name} cell {index} output", json.dumps(output)))
        else:
            texts.append((name, path.read_text(encoding="utf-8", errors="replace")))
    return texts


def find_leaks(assignment: str, course: Path = COURSE) -> list[str]:
    """Everything in ``release/<assignment>/`` that students must not see; an empty list if it is clean."""
    release_dir = course / "release" / assignment
    notebook = release_dir / f"{assignment}.ipynb"
    if not notebook.exists():
        return [f"{assignment}: {notebook.relative_to(course)} is missing: run generate first"]
    solution, hidden = secret_lines(read_notebook(source_notebook(assignment, course)))
    problems = []
    for name, text in released_texts(release_dir):
        for marker in MARKERS:
            if marker in text:
                problems.append(f"{assignment}: {name} contains the marker {marker!r}")
        for line in text.splitlines():
            stripped = line.strip()
            if stripped in solution:
                problems.append(f"{assignment}: {name} contains a solution line: {stripped!r}")
            if stripped in hidden:
                problems.append(f"{assignment}: {name} contains a hidden-test line: {stripped!r}")
    nb = read_notebook(notebook)
    if nb.get("metadata", {}).get("kernelspec", {}).get("name") != "python3":
        problems.append(f"{assignment}: the release has no python3 kernelspec")
    if any(cell.get("outputs") for cell in nb["cells"]):
        problems.append(f"{assignment}: the release has outputs")
    return problems


def build(names: list[str] | None = None, course: Path = COURSE, check_only: bool = False) -> list[str]:
    """Lint, generate and check the given assignments (all by default); return the problems found."""
    problems = []
    for assignment in names or assignments(course):
        found = lint_source(assignment, course)
        if not found and not check_only:
            generate(assignment, course)
        found = found or find_leaks(assignment, course)
        problems += found
        points = sum(
            nbgrader_meta(c).get("points", 0) for c in read_notebook(source_notebook(assignment, course))["cells"]
        )
        status = "OK" if not found else f"{len(found)} problem(s)"
        print(f"{assignment}: {points:g} points, release/{assignment}/ {status}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("assignments", nargs="*", help="assignments to build (default: every folder of source/)")
    parser.add_argument("--check-only", action="store_true", help="check release/ as it is, without regenerating")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.assignments) - set(assignments()))
    if unknown:
        parser.error(f"no such assignment: {', '.join(unknown)}; the course has {', '.join(assignments())}")
    try:
        problems = build(args.assignments, check_only=args.check_only)
    except BuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
