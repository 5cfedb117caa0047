"""Fixtures of the browser tests: a JupyterLab server on a temp copy of notebooks/, and Debian's headless chromium.

The server is started once per pytest process (one xdist worker with ``--dist loadfile``) on 127.0.0.1, a free port
and a random token, with its own config, data, runtime, settings and workspace folders in a temp dir, and
``RLCOURSE_FAST=1`` in its environment, so every kernel runs the notebooks in fast mode. Its root is a temp copy of
notebooks/: nothing the browser runs or autosaves touches the repository. SIGTERM stops it (and its kernels) at the end.

Playwright drives the chromium that ``apt-get install chromium`` puts at /usr/bin/chromium (``RLCOURSE_CHROMIUM``
overrides the path); it never downloads a browser. Without chromium or the playwright package the tests skip and say
how to enable them; with ``RLCOURSE_REQUIRE_BROWSER=1`` (set by .ci/run) they fail instead.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
CHROMIUM = os.environ.get("RLCOURSE_CHROMIUM", "/usr/bin/chromium")
ENABLE = (
    "to enable them: `sudo apt-get install chromium` (Debian/Ubuntu; the tests launch /usr/bin/chromium, or set "
    'RLCOURSE_CHROMIUM) and `pip install -e ".[test]"` (the playwright package; never run `playwright install`)'
)


def _unavailable(reason: str):
    if os.environ.get("RLCOURSE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser tests required (RLCOURSE_REQUIRE_BROWSER=1) but {reason}; {ENABLE}", pytrace=False)
    pytest.skip(f"browser tests skipped: {reason}; {ENABLE}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


class Lab:
    """A running JupyterLab server: its URL, token, root folder (the temp copy) and REST helpers."""

    def __init__(self, url: str, token: str, root: Path, log: Path):
        self.url, self.token, self.root, self.log = url, token, root, log

    def api(self, method: str, path: str):
        request = urllib.request.Request(
            f"{self.url}/api/{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def notebook_url(self, name: str) -> str:
        # A workspace of its own per notebook, reset: no tab of an earlier notebook is restored (nor its kernel).
        workspace = Path(name).stem.replace("_", "-")
        return f"{self.url}/lab/workspaces/{workspace}/tree/{name}?reset&token={self.token}"

    def shutdown_kernels(self) -> None:
        for session in self.api("GET", "sessions"):
            try:
                self.api("DELETE", f"sessions/{session['id']}")
            except urllib.error.HTTPError:
                pass

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:]) if self.log.exists() else ""


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    """Start JupyterLab on a temp copy of notebooks/ (fast mode in its kernels); stop it with SIGTERM at the end."""
    tmp = tmp_path_factory.mktemp("jupyterlab")
    root = tmp / "notebooks"
    # The lecture notebooks only (what they read lives in the rlcourse package): no exercises, no checkpoints.
    root.mkdir()
    for notebook in sorted(NOTEBOOKS.glob("0*.ipynb")):
        shutil.copy(notebook, root / notebook.name)
    settings = tmp / "settings"
    # No news or update toast over the page; every cell in the DOM (no windowing), for the selectors and screenshots.
    _write_json(
        settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings",
        {"fetchNews": "false", "checkForUpdates": False},
    )
    tracker = settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    _write_json(tracker, {"windowingMode": "none"})
    # After an error, ipykernel aborts the run-all requests that reach it within stop_on_error_timeout (0 s by
    # default): on a loaded machine a later cell's request can arrive after that and run. Two seconds make run-all
    # stop at the error, as the error test and a failing notebook expect.
    kernel_config = tmp / "ipython" / "profile_default" / "ipython_kernel_config.py"
    kernel_config.parent.mkdir(parents=True)
    kernel_config.write_text("c.IPythonKernel.stop_on_error_timeout = 2.0\n")
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the kernels draw with the inline backend
    env.update(
        RLCOURSE_FAST="1",
        JUPYTER_CONFIG_DIR=str(tmp / "config"),
        JUPYTER_DATA_DIR=str(tmp / "data"),
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        IPYTHONDIR=str(tmp / "ipython"),
        JUPYTER_PLATFORM_DIRS="1",
        OMP_NUM_THREADS="1",  # like the rest of the suite: one thread per kernel on a small machine
        MKL_NUM_THREADS="1",
    )
    port, token = _free_port(), secrets.token_hex(16)
    url = f"http://127.0.0.1:{port}"
    log = tmp / "server.log"
    command = [
        sys.executable, "-m", "jupyter", "lab",
        "--no-browser", "--allow-root",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.expose_app_in_browser=True",
    ]  # fmt: skip
    with log.open("wb") as out:
        server = subprocess.Popen(command, env=env, cwd=tmp, stdout=out, stderr=subprocess.STDOUT)
    running = Lab(url, token, root, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with code {server.returncode}:\n{running.log_tail()}", pytrace=False)
            try:
                running.api("GET", "status")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer within 60 s:\n{running.log_tail()}", pytrace=False)
                time.sleep(0.3)
        yield running
    finally:
        server.send_signal(signal.SIGTERM)  # the server shuts its kernels down on SIGTERM
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="session")
def browser():
    """Headless chromium from the system (/usr/bin/chromium), driven by Playwright; skips without either."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        _unavailable(f"no chromium at {CHROMIUM}")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()
