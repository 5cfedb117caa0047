"""The hub tests: a whole class on JupyterHub on this machine (hub/classroom.py starts it).

They need root (real unix users), Linux, node/npm (the hub's proxy), a system Python every user can run,
Debian's chromium and Playwright. Where any is missing they skip and say why; with
``RLCOURSE_REQUIRE_HUB=1`` (set by .ci/run) they fail instead. ``-m "not hub"`` leaves them out.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("RLCOURSE_CHROMIUM", "/usr/bin/chromium")


def load(name: str, path: Path):
    """Import a file that is not part of the package (hub/classroom.py, the exercises' test helpers)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def pytest_configure(config):
    config.addinivalue_line("markers", "hub: a class on a real JupyterHub (root, node, chromium; minutes)")


def pytest_collection_modifyitems(items):
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.hub)


def unavailable_reason() -> str | None:
    classroom = load("classroom", ROOT / "hub" / "classroom.py")
    reason = classroom.unavailable()
    if reason:
        return reason
    try:
        import nbgrader  # noqa: F401
        import playwright  # noqa: F401
    except ImportError as err:
        return f"{err.name} is not installed in the test environment (pip install -e '.[test,grading]')"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"no chromium at {CHROMIUM} (apt-get install chromium)"
    return None


@pytest.fixture(scope="session")
def classroom():
    """hub/classroom.py, once this machine is known to be able to run a class (else skip, or fail on CI)."""
    reason = unavailable_reason()
    if reason is None:
        return load("classroom", ROOT / "hub" / "classroom.py")
    if os.environ.get("RLCOURSE_REQUIRE_HUB") == "1":
        pytest.fail(f"the hub test is required (RLCOURSE_REQUIRE_HUB=1) but cannot run: {reason}", pytrace=False)
    pytest.skip(f"hub test skipped: {reason}")
