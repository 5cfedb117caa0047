"""A class on JupyterHub, on this machine: real unix users, PAM logins, nbgrader's exchange.

    sudo python3 hub/classroom.py demo     # what `make class` runs: a hub with demo users until Ctrl-C

(hub/measure.py uses it for the numbers of hub/README.md; it needs only Python's standard library.)

:class:`Classroom` is what both the lecturer's demo and the end-to-end test (tests/hub) start:

1. the **course environment**, a virtual environment every user can run (built from a system Python,
   never from one under /root), with rlcourse, JupyterLab, nbgrader and JupyterHub at the versions of
   the lock file; built once per lock file under the prefix (default /opt/rlcourse-hub) and reused,
   with this checkout's rlcourse installed into it afresh each time;
2. configurable-http-proxy from npm, once per version, beside it;
3. the **users**: one instructor and the students, real unix accounts with passwords and private homes
   (0700), each with nbgrader pointed at the shared exchange; the instructor gets the course folder
   (the six assignments' sources) in ``~/rlcourse``;
4. **JupyterHub** on 127.0.0.1 with ``hub/jupyterhub_config.py``: PAM authenticator, one server per user,
   running as that user, and a "classroom" service whose token drives the hub's REST API.

Stopping it (``close()``, Ctrl-C, SIGTERM) stops the hub, every server and process of its users, and
removes the users, their homes and the class's folder (exchange included). The environment and the
proxy stay, as caches. Only root can do all this: accounts and per-user servers need it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HUB_CONFIG = REPO / "hub" / "jupyterhub_config.py"
COURSE_CONFIG = REPO / "notebooks" / "exercises" / "nbgrader_config.py"
SOURCES = REPO / "notebooks" / "exercises" / "source"
LOCK = REPO / "requirements" / "course.lock"  # the course environment (Makefile: LOCK)
PREFIX = Path(os.environ.get("RLCOURSE_HUB_PREFIX", "/opt/rlcourse-hub"))
PROXY_VERSION = "5.3.0"  # configurable-http-proxy, from npm
COURSE_ID = "rlcourse"
# System interpreters tried for the course environment, first that every user can run wins.
PYTHONS = ("/usr/bin/python3.11", "/usr/bin/python3.12", "/usr/bin/python3.13", "/usr/bin/python3")
EXTRAS = "grading,hub"
LAB_SETTINGS = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}


class ClassroomError(RuntimeError):
    """The class cannot be set up here, or one of its steps failed; the message says which and why."""


# ------------------------------------------------------------------------------------ the machine


def _run(command: list[str], check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if check and done.returncode != 0:
        raise ClassroomError(f"`{shlex.join(command)}` failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done


def _world_runnable(path: str) -> bool:
    """Whether any user can run ``path``: every folder above it traversable by others, the file
    executable by others (what a server spawned as a student needs of the course's Python)."""
    real = Path(os.path.realpath(path))
    if not real.is_file() or not os.stat(real).st_mode & 0o001:
        return False
    return all(os.stat(p).st_mode & 0o001 for p in real.parents)


def lock_python(lock: Path = LOCK) -> tuple[int, ...]:
    """The oldest Python the lock installs on (its ``# requires-python: >=X.Y`` line)."""
    found = re.search(r"^# requires-python: >=([\d.]+)", lock.read_text(), re.M) if lock.is_file() else None
    return tuple(int(x) for x in found.group(1).split(".")) if found else (3, 11)


def system_python() -> str | None:
    """A Python with venv, new enough for the lock, that every user can run, or None."""
    need = lock_python()
    for candidate in PYTHONS:
        if not _world_runnable(candidate):
            continue
        check = f"import sys, ensurepip, venv; assert sys.version_info[:{len(need)}] >= {need}"
        ok = _run([candidate, "-c", check], check=False)
        if ok.returncode == 0:
            return candidate
    return None


def unavailable() -> str | None:
    """Why a class cannot be set up on this machine (None if it can): root, Linux, the user tools,
    node/npm for the proxy, a system Python every user can run, a lock file."""
    if not sys.platform.startswith("linux"):
        return f"needs Linux (real unix users and PAM), this is {sys.platform}"
    if os.geteuid() != 0:
        return "needs root: it creates unix users and runs a server as each of them (run it with sudo)"
    for tool in ("useradd", "userdel", "chpasswd", "su", "pkill", "node", "npm"):
        if shutil.which(tool) is None:
            how = "apt-get install nodejs npm" if tool in ("node", "npm") else "the passwd/procps packages"
            return f"`{tool}` is not on PATH ({how})"
    if system_python() is None:
        return (
            f"no Python >= {'.'.join(map(str, lock_python()))} (the lock's) with venv that every user can run "
            f"among {', '.join(PYTHONS)} "
            "(apt-get install python3-venv); one under /root or a home is not reachable by students"
        )
    if not LOCK.is_file():
        return f"the course's lock file {LOCK} is missing"
    return None


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(avoid: set[int] = frozenset()) -> int:
    """A free port on 127.0.0.1 whose successor is free too (the hub's port + 1 is its proxy's API)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in avoid and port + 1 not in avoid and port < 65000 and _is_free(port + 1):
            return port


# -------------------------------------------------------------------------- environment and proxy


def course_environment(prefix: Path = PREFIX, lock: Path = LOCK, log=print, torch_index: str | None = None) -> Path:
    """The course environment under ``prefix``: built from the lock file once, rlcourse reinstalled.

    The folder's name carries a hash of the lock file, the interpreter and ``torch_index``, so a changed
    lock gets a new environment. ``torch_index`` is an extra pip index for the lock's torch: on a Linux
    server without a GPU, ``https://download.pytorch.org/whl/cpu`` gets the CPU build (a few hundred MB)
    instead of PyPI's CUDA build (several GB). Returns the venv's folder.
    """
    python = system_python()
    if python is None:
        raise ClassroomError(unavailable() or "no usable system Python")
    identity = lock.read_bytes() + python.encode() + EXTRAS.encode() + (torch_index or "").encode()
    key = hashlib.sha256(identity).hexdigest()[:12]
    venv = prefix / f"env-{key}"
    stamp = venv / ".rlcourse-complete"
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    old = os.umask(0o022)  # every user must be able to read and run it
    try:
        if not stamp.exists():
            log(f"building the course environment {venv} from {lock.name} (once per lock file, about a minute)")
            shutil.rmtree(venv, ignore_errors=True)
            prefix.mkdir(parents=True, exist_ok=True)
            os.chmod(prefix, 0o755)
            _run([python, "-m", "venv", str(venv)])
            if torch_index:
                torch = re.search(r"^torch==\S+", lock.read_text(), re.M).group(0)
                _run(pip + ["-c", str(lock), "--extra-index-url", torch_index, torch])
            _run(pip + ["-c", str(lock), f"{REPO}[{EXTRAS}]"])
            stamp.touch()
            _prune(prefix, keep=venv)
        # No news or update prompts over a student's JupyterLab (the settings every server of this
        # environment starts from).
        overrides = venv / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
        overrides.parent.mkdir(parents=True, exist_ok=True)
        overrides.write_text(json.dumps(LAB_SETTINGS, indent=1))
        # This checkout's rlcourse, not an editable link into a folder students may not be able to read.
        _run(pip + ["--no-deps", "--force-reinstall", "--no-build-isolation", str(REPO)])
    finally:
        os.umask(old)
    return venv


def _prune(prefix: Path, keep: Path) -> None:
    """Remove the environments of earlier lock files (a GB or more each) that no process runs from."""
    for old in prefix.glob("env-*"):
        if old != keep and _run(["pgrep", "-f", str(old)], check=False).returncode != 0:
            shutil.rmtree(old, ignore_errors=True)


def proxy_command(prefix: Path = PREFIX, log=print) -> Path:
    """configurable-http-proxy (npm), installed once under ``prefix``; returns the executable."""
    folder = prefix / f"proxy-{PROXY_VERSION}"
    executable = folder / "node_modules" / ".bin" / "configurable-http-proxy"
    if not executable.exists():
        log(f"installing configurable-http-proxy {PROXY_VERSION} from npm into {folder}")
        old = os.umask(0o022)
        try:
            _run(["npm", "install", "--silent", "--prefix", str(folder), f"configurable-http-proxy@{PROXY_VERSION}"])
        finally:
            os.umask(old)
    return executable


# ---------------------------------------------------------------------------------------- users


@dataclass
class User:
    name: str
    password: str
    home: Path


def create_user(name: str) -> User:
    """A unix account with a random password and a private home (0700: no student reads another's
    work or the instructor's solutions). Refuses a name that exists already: it is not ours to take."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        pass
    else:
        raise ClassroomError(f"the user {name!r} exists already; choose other names or remove it (userdel -r {name})")
    _run(["useradd", "--create-home", "--shell", "/bin/bash", "-K", "HOME_MODE=0700", name])
    try:
        home = Path(pwd.getpwnam(name).pw_dir)
        os.chmod(home, 0o700)
        password = secrets.token_urlsafe(12)
        _run(["chpasswd"], input=f"{name}:{password}\n")
    except BaseException:
        remove_user(name)  # made here, so ours to remove
        raise
    return User(name, password, home)


def remove_user(name: str) -> str | None:
    """Stop every process of ``name``, then remove the account and its home; None, or what went wrong."""
    _run(["pkill", "-KILL", "-u", name], check=False)
    for _ in range(50):
        if _run(["pgrep", "-u", name], check=False).returncode != 0:
            break
        time.sleep(0.1)
    done = _run(["userdel", "--remove", name], check=False)  # warns about a missing mail spool: harmless
    try:
        pwd.getpwnam(name)
    except KeyError:
        return None
    return f"could not remove the user {name} (`userdel --remove {name}`: {done.stderr.strip()})"


def write_as(user: User, path: Path, text: str, mode: int = 0o644) -> None:
    """Write a file in ``user``'s home, owned by them (parents created, owned by them too)."""
    entry = pwd.getpwnam(user.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    for folder in [path.parent, *path.parent.parents]:
        if folder == user.home or user.home not in folder.parents:
            break
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    path.write_text(text, encoding="utf-8")
    os.chown(path, entry.pw_uid, entry.pw_gid)
    os.chmod(path, mode)


def copy_as(user: User, source: Path, target: Path) -> None:
    """Copy a folder into ``user``'s home, owned by them."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    entry = pwd.getpwnam(user.name)
    for folder, _, files in os.walk(target):
        os.chown(folder, entry.pw_uid, entry.pw_gid)
        for name in files:
            os.chown(os.path.join(folder, name), entry.pw_uid, entry.pw_gid)


# ------------------------------------------------------------------------------------ the class


@dataclass
class Classroom:
    """A hub with one instructor and some students. Use as a context manager, or call start()/close().

    Args:
        instructor: the instructor's unix name.
        students: the students' unix names.
        prefix: where the course environment, the proxy and the class's folder live.
        assignments: the assignments copied into the instructor's course folder (default: all).
        lecture: also copy the lecture notebooks into every student's ``~/lecture``.
        port: the port students connect to (default: a free one).
        torch_index: an extra pip index for torch (see :func:`course_environment`; default
            ``$RLCOURSE_TORCH_INDEX``).
    """

    instructor: str
    students: list[str]
    prefix: Path = PREFIX
    assignments: list[str] | None = None
    lecture: bool = False
    port: int | None = None
    torch_index: str | None = os.environ.get("RLCOURSE_TORCH_INDEX") or None
    log: object = print
    users: dict[str, User] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def __enter__(self) -> Classroom:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---------------------------------------------------------------------------------- set up

    def start(self) -> None:
        reason = unavailable()
        if reason:
            raise ClassroomError(f"a class cannot run on this machine: {reason}")
        self._hub = None
        t = time.perf_counter()
        self.env = course_environment(self.prefix, log=self.log, torch_index=self.torch_index)
        self.proxy = proxy_command(self.prefix, log=self.log)
        self.timings["environment_s"] = time.perf_counter() - t
        self.folder = Path(self._mkdtemp())
        self.exchange = self.folder / "exchange"
        self.state = self.folder / "hub"
        self.exchange.mkdir()
        # Everyone may create in it, no one may rename or delete what another made (the sticky bit): without
        # it a student could replace the course's folder with their own. nbgrader sets its own modes inside.
        os.chmod(self.exchange, 0o1777)
        self.state.mkdir(mode=0o700)
        for name in [self.instructor, *self.students]:
            self.users[name] = create_user(name)
            self._configure_nbgrader(self.users[name])
        # The course's folder exists before any student could claim the name, and is the instructor's.
        course_exchange = self.exchange / COURSE_ID
        course_exchange.mkdir(mode=0o755)
        teacher = pwd.getpwnam(self.instructor)
        os.chown(course_exchange, teacher.pw_uid, teacher.pw_gid)
        self._course_folder()
        if self.lecture:  # the lecture notebooks only: notebooks/exercises/source holds the solutions
            for name in self.students:
                user = self.users[name]
                for notebook in sorted((REPO / "notebooks").glob("0*.ipynb")):
                    write_as(user, user.home / "lecture" / notebook.name, notebook.read_text(encoding="utf-8"))
        t = time.perf_counter()
        self._start_hub()
        self.timings["hub_start_s"] = time.perf_counter() - t

    def _mkdtemp(self) -> str:
        import tempfile

        self.prefix.mkdir(parents=True, exist_ok=True)
        folder = tempfile.mkdtemp(prefix="class-", dir=self.prefix)
        os.chmod(folder, 0o755)  # the exchange inside must be reachable by every user
        return folder

    def _configure_nbgrader(self, user: User) -> None:
        lines = [
            "c = get_config()  # noqa: F821",
            f"c.CourseDirectory.course_id = {COURSE_ID!r}",
            f"c.Exchange.root = {str(self.exchange)!r}",
        ]
        if user.name == self.instructor:
            lines.append(f"c.CourseDirectory.root = {str(user.home / COURSE_ID)!r}")
        write_as(user, user.home / ".jupyter" / "nbgrader_config.py", "\n".join(lines) + "\n")

    def _course_folder(self) -> None:
        """The instructor's ``~/rlcourse``: the course's nbgrader_config.py with the shared exchange, and
        the sources of the assignments."""
        teacher = self.users[self.instructor]
        course = teacher.home / COURSE_ID
        names = self.assignments or sorted(p.name for p in SOURCES.iterdir() if p.is_dir())
        for name in names:
            copy_as(teacher, SOURCES / name, course / "source" / name)
        config = COURSE_CONFIG.read_text(encoding="utf-8")
        config += (
            f"\n# On this hub: the shared exchange (hub/classroom.py).\nc.Exchange.root = {str(self.exchange)!r}\n"
        )
        write_as(teacher, course / "nbgrader_config.py", config)

    def _start_hub(self) -> None:
        self.port = self.port or free_port()
        api_port = free_port({self.port})
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_hex(32)
        env = {
            "PATH": f"{self.env}/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "HOME": "/root",
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "RLCOURSE_HUB_URL": self.url,
            "RLCOURSE_HUB_API_PORT": str(api_port),
            "RLCOURSE_HUB_STATE": str(self.state),
            "RLCOURSE_HUB_ENV": str(self.env),
            "RLCOURSE_HUB_PROXY": str(self.proxy),
            "RLCOURSE_HUB_USERS": ",".join(self.users),
            "RLCOURSE_HUB_ADMINS": self.instructor,
            "RLCOURSE_HUB_TOKEN": self.token,
        }
        self.hub_log = self.state / "jupyterhub.log"
        with self.hub_log.open("wb") as out:
            self._hub = subprocess.Popen(
                [str(self.env / "bin" / "jupyterhub"), "-f", str(HUB_CONFIG)],
                cwd=self.state,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the lecturer's terminal reaches us, and we stop it in order
            )
        deadline = time.monotonic() + 60
        while True:
            if self._hub.poll() is not None:
                raise ClassroomError(f"JupyterHub exited with code {self._hub.returncode}:\n{self.log_tail()}")
            try:
                self.api("GET", "")
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise ClassroomError(f"JupyterHub did not answer within 60 s:\n{self.log_tail()}") from None
                time.sleep(0.2)

    # ------------------------------------------------------------------------------------ use

    def log_tail(self, n: int = 60) -> str:
        log = getattr(self, "hub_log", None)
        if log is None or not log.exists():
            return "(no hub log)"
        return "\n".join(log.read_text(errors="replace").splitlines()[-n:])

    def _request(self, method: str, url: str, body=None, timeout: float = 60):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", f"token {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def api(self, method: str, path: str, body=None):
        """The hub's REST API (``/hub/api/<path>``), as the classroom service."""
        return self._request(method, f"{self.url}/hub/api/{path}", body)

    def server(self, user: str, method: str, path: str, body=None, timeout: float = 60):
        """``user``'s own server (``/user/<user>/<path>``), through the proxy, as the classroom service."""
        return self._request(method, f"{self.url}/user/{user}/{path}", body, timeout)

    def spawn(self, *names: str, timeout: float = 180) -> dict[str, float]:
        """Start these users' servers together; wait until each is ready. Returns seconds per user."""
        start = time.perf_counter()
        for name in names:
            try:
                self.api("POST", f"users/{name}/server")
            except urllib.error.HTTPError as err:
                if err.code not in (400, 500):  # 400: already running; 500: see the state below
                    raise
        seconds, waiting = {}, set(names)
        deadline = time.monotonic() + timeout
        while waiting:
            for name in sorted(waiting):
                server = self.api("GET", f"users/{name}").get("servers", {}).get("")
                if server and server.get("ready"):
                    seconds[name] = time.perf_counter() - start
                    waiting.discard(name)
                elif not server or not server.get("pending"):  # neither ready nor on its way: it failed
                    raise ClassroomError(f"{name}'s server did not start:\n{self.log_tail()}")
            if waiting and time.monotonic() > deadline:
                raise ClassroomError(f"servers of {sorted(waiting)} not ready in {timeout} s:\n{self.log_tail()}")
            time.sleep(0.3)
        return seconds

    def as_user(self, name: str, command: str, cwd: str = "~", timeout: float = 600) -> subprocess.CompletedProcess:
        """Run a shell command as ``name`` in a login shell, with the course environment first on PATH
        (what the user would type in a terminal of their JupyterLab)."""
        script = f"export PATH={shlex.quote(str(self.env / 'bin'))}:$PATH; cd {cwd} && {command}"
        return _run(["su", "-", name, "-c", script], check=False, timeout=timeout)

    # --------------------------------------------------------------------------------- tear down

    def close(self) -> None:
        """Stop the hub and every server, remove the users and the class's folder. Safe to call twice;
        a second Ctrl-C while it runs does not cut the cleanup short."""
        import threading

        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(signum, signal.SIG_IGN)
        try:
            self._close()
        finally:
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGINT, signal.default_int_handler)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGHUP, signal.SIG_DFL)

    def _close(self) -> None:
        hub = getattr(self, "_hub", None)
        if hub is not None and hub.poll() is None:
            hub.send_signal(signal.SIGTERM)  # stops the servers it spawned and its proxy
            try:
                hub.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(hub.pid, signal.SIGKILL)
                hub.wait()
        self._hub = None
        state = getattr(self, "state", None)
        pid_file = state / "proxy.pid" if state else None
        if pid_file and pid_file.exists():  # a proxy left behind by a hub that was killed
            try:
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
            except (ValueError, ProcessLookupError):
                pass
        problems = [p for p in map(remove_user, list(self.users)) if p]
        self.users.clear()
        folder = getattr(self, "folder", None)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
            self.folder = None
        if problems:
            raise ClassroomError("the class did not clean up fully:\n" + "\n".join(problems))


# ------------------------------------------------------------------------------------- commands


def demo(args: argparse.Namespace) -> int:
    """`make class`: a hub with an instructor and some students, until Ctrl-C."""
    names = ["rlc-teacher"] + [f"rlc-student{i}" for i in range(1, args.students + 1)]

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    # Ctrl-C, a closed terminal and `kill` all stop the class in order (SIGINT too when it was started
    # in the background, where the shell would have it ignored).
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    room = Classroom(names[0], names[1:], prefix=args.prefix, lecture=True, port=args.port)
    room.torch_index = args.torch_index or room.torch_index
    with room:
        print(f"\nThe class's hub: {room.url}/  (stop it with Ctrl-C: the hub, the servers and these users go)\n")
        print(f"{'user':<16} {'role':<11} password")
        for user in room.users.values():
            role = "instructor" if user.name == room.instructor else "student"
            print(f"{user.name:<16} {role:<11} {user.password}")
        print(
            f"\nThe instructor's course folder is ~{room.instructor}/rlcourse: in a terminal there, "
            "`nbgrader generate_assignment ex1_returns_gae` then `nbgrader release_assignment ex1_returns_gae`;\n"
            "students find it in JupyterLab under Nbgrader > Assignment List. The formgrader opens in a tab of "
            f"its own: {room.url}/user/{room.instructor}/formgrader"
        )
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            print("\nstopping the hub and removing the demo users ...")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="a hub with demo users for a lecturer to try, until Ctrl-C")
    d.add_argument("--port", type=int, default=8000, help="where the hub listens on 127.0.0.1 (default 8000)")
    d.add_argument("--students", type=int, default=3, help="how many demo students (default 3)")
    d.add_argument("--prefix", type=Path, default=PREFIX, help=f"course environment and class folder ({PREFIX})")
    d.add_argument(
        "--torch-index",
        help="extra pip index for torch, e.g. https://download.pytorch.org/whl/cpu on a server without a GPU "
        "(default: $RLCOURSE_TORCH_INDEX, else PyPI's torch)",
    )
    args = parser.parse_args(argv)
    reason = unavailable()
    if reason:
        print(f"classroom: cannot start a class here: {reason}", file=sys.stderr)
        return 2
    try:
        return demo(args)
    except ClassroomError as err:
        print(f"classroom: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
