"""The package reads well beside a slide on a projector: lines of at most 100 characters and modules
short enough to hold in one's head (issue 17). Tests and notebooks are not held to it."""

from __future__ import annotations

from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rlcourse"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_LINE = 100
# "About 600 lines": a module that grows past this is split by topic (as widgets/ and grading/ are).
MAX_MODULE = 620


def test_the_package_has_modules():
    assert len(MODULES) > 40, MODULES


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_lines_fit_a_projector(path: Path):
    long = [
        f"{path.name}:{n}: {len(line)} characters"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if len(line) > MAX_LINE
    ]
    assert not long, "lines longer than 100 characters:\n" + "\n".join(long)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_modules_stay_short(path: Path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_MODULE, f"{path.name} has {n} lines: split it by topic (at most about 600)"
