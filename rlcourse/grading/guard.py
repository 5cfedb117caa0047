"""The grading guard: :class:`forbid`, a ``with`` block in which graded code cannot run the
package's own answers (:data:`~rlcourse.grading.forbidden.FORBIDDEN`) nor blind the guard.

While the block runs, a profiler (``sys.setprofile``) sees every Python call in this thread and asks
:func:`~rlcourse.grading.forbidden._judge` about it; starting a thread or a process and setting a
profiler or tracer are refused (:func:`_watched_builtins`); on exit, every name the tests look up is
put back as it was on entry (:class:`_Snapshot`). :mod:`rlcourse.grading.calls` calls a student's
function inside it.

Importing this module does not import torch.
"""

from __future__ import annotations

import os
import sys
import threading
import types
from collections.abc import Callable, Iterable
from typing import Any

from rlcourse.grading.forbidden import _FX, _TABLE, FORBIDDEN, _judge, _parse_allowed

# Taken when the setup cell imports rlcourse.grading, before any student cell runs: a student who
# later rebinds sys.setprofile cannot keep the guard from installing its profiler.
_SETPROFILE = sys.setprofile
_GETPROFILE = sys.getprofile

GRADING_MODULES = tuple(
    f"rlcourse.grading{suffix}"
    for suffix in ("", ".cases", ".calls", ".cells", ".checks", ".forbidden", ".guard")
)
"""The modules of :mod:`rlcourse.grading` (the package and every file of it): their names are
snapshotted, their frames are the grading's own (tests/test_grading_guard.py checks the list
against the package's files)."""


def _grading_modules() -> list[types.ModuleType]:
    return [sys.modules[name] for name in GRADING_MODULES if name in sys.modules]


_THREAD = (
    "started a thread, which the guard cannot watch (a progress bar such as tqdm starts one: "
    "progress bars are not allowed inside graded functions)"
)
_PROCESS = "started a process, which the guard cannot watch"
_EXEC = "replaced the running process (os.exec*), which the guard cannot watch"

# Names of ``_thread`` and ``os`` that start a thread or a process, or replace the process:
# tests/test_grading_guard.py walks both modules and checks that each such name is watched.
STARTERS = ("start", "fork", "spawn", "exec", "posix_spawn", "system", "popen")


def _starts(name: str) -> bool:
    return name.startswith(STARTERS) and name != "execfile"


def _watched_builtins() -> tuple[dict[int, tuple[Any, str]], dict[types.CodeType, str]]:
    """``({id: (builtin, what calling it does)}, {code: what calling it does})``: the C functions
    and the Python functions graded code may not call.

    A thread or a process would run outside the profiler, which watches one thread; changing the
    profiler or setting a tracer would switch the guard off or watch the tests' reference calls.
    """
    import _thread

    found = {
        id(sys.setprofile): (
            sys.setprofile,
            "called sys.setprofile, which would switch the guard off",
        ),
        id(sys.settrace): (sys.settrace, "called sys.settrace, which would watch the tests"),
    }
    codes: dict[types.CodeType, str] = {}
    for function, what in (
        (threading.setprofile, "called threading.setprofile, which would watch the tests"),
        (threading.settrace, "called threading.settrace, which would watch the tests"),
    ):
        codes[function.__code__] = what
    for module, what in ((_thread, _THREAD), (os, _PROCESS)):
        for name in dir(module):
            if not _starts(name):
                continue
            function = getattr(module, name)
            reason = _EXEC if name.startswith("exec") else what
            if isinstance(function, types.FunctionType):
                codes[function.__code__] = reason
            elif callable(function):
                found[id(function)] = (function, reason)
    try:
        import _posixsubprocess  # what subprocess and multiprocessing start processes with

        found[id(_posixsubprocess.fork_exec)] = (_posixsubprocess.fork_exec, _PROCESS)
    except ImportError:  # not on Windows
        pass
    return found, codes


def _is_watched(function: Any) -> bool:
    """Whether calling ``function`` under the guard fails (for the tests)."""
    code = getattr(function, "__code__", None)
    return id(function) in _WATCHED or (isinstance(code, types.CodeType) and code in _WATCHED_CODE)


_WATCHED, _WATCHED_CODE = _watched_builtins()


class DelegationError(AssertionError):
    """Graded code ran the package's own answer, or did what would hide it from the guard."""


_LOCAL = threading.local()

TRACER_ACTIVE = "a profiler/tracer is active; grading needs it off (turn off the debugger)"
_GETTRACE = sys.gettrace
_THREAD_HOOKS = (threading.getprofile, threading.gettrace)


def _tracer_set() -> bool:
    """Whether a profiler or tracer other than an open guard's is set, in ``sys`` or
    ``threading``."""
    guard = getattr(_LOCAL, "guard", None)
    profiler = _GETPROFILE()
    if profiler is not None and (guard is None or profiler is not guard.profile):
        return True
    return _GETTRACE() is not None or any(hook() is not None for hook in _THREAD_HOOKS)


def _refuse_tracers(case: str | None = None) -> None:
    """Raise :class:`DelegationError` (:data:`TRACER_ACTIVE`) if a profiler or tracer is set.

    Called when a guard opens and before every call of a reference: a profiler or tracer (one a
    solution cell set, or a debugger's) would see the reference's locals and its result.
    """
    if _tracer_set():
        raise DelegationError(TRACER_ACTIVE if case is None else f"case {case!r}: {TRACER_ACTIVE}")


_MISSING = object()
_WATCHED_MODULES = ("builtins", "copy", "threading", "numpy", "torch")


def _caller_globals() -> dict:
    """The globals of the first frame outside :data:`GRADING_MODULES`: the notebook, when a test
    cell calls (through ``compare`` in ``calls``, ``compare_polyak`` in ``cells``, ...)."""
    ours = {id(vars(module)) for module in _grading_modules()}
    frame = sys._getframe(1)
    while frame is not None and id(frame.f_globals) in ours:
        frame = frame.f_back
    return frame.f_globals if frame is not None else globals()


class _Snapshot:
    """The identity of every value the tests look up by name at call time, taken when a guard opens.

    Namespaces: the caller's globals and ``__main__``'s (the notebook's), those of every module of
    :data:`GRADING_MODULES` (the package ``rlcourse.grading`` and each of its files) and of the
    modules of :data:`FORBIDDEN`, and of their classes, ``builtins``, ``copy``, ``threading``,
    ``numpy``, ``torch`` and ``torch.Tensor``; and the code, defaults and keyword defaults of every
    function in the grading's modules and in those of :data:`FORBIDDEN`. :meth:`restore` puts back
    whatever the guarded block rebound, added or deleted (a submodule that an import added to a
    package is no change).
    """

    def __init__(self, caller: dict) -> None:
        self.spaces: list[tuple[str, Any, Any, dict]] = []
        self.functions: list[tuple[types.FunctionType, tuple]] = []
        seen: set[int] = set()
        main = sys.modules.get("__main__")
        for namespace in (caller, vars(main) if main is not None else None):
            if namespace is not None:
                self._add("the notebook's", namespace, None, seen)
        ours = _grading_modules()
        others = [m for m in (*FORBIDDEN, *_WATCHED_MODULES) if m not in GRADING_MODULES]
        modules = ours + [sys.modules[m] for m in others if m in sys.modules]
        functions: set[int] = set()  # a function re-exported by the package is kept once
        for module in modules:
            namespace = vars(module)
            self._add(f"{module.__name__}'s", namespace, module, seen)
            if module.__name__ not in FORBIDDEN and module not in ours:
                continue
            for value in list(namespace.values()):
                if isinstance(value, types.FunctionType):
                    self._add_function(value, functions)
                elif isinstance(value, type) and value.__module__ == module.__name__:
                    self._add(f"{module.__name__}.{value.__name__}'s", value.__dict__, value, seen)
                    for attr in list(value.__dict__.values()):
                        if isinstance(attr, types.FunctionType):
                            self._add_function(attr, functions)
        torch = sys.modules.get("torch")
        if torch is not None:
            self._add("torch.Tensor's", torch.Tensor.__dict__, torch.Tensor, seen)

    def _add(self, label: str, namespace: Any, owner: Any, seen: set[int]) -> None:
        if id(namespace) not in seen:
            seen.add(id(namespace))
            self.spaces.append((label, namespace, owner, dict(namespace)))

    def _add_function(self, function: types.FunctionType, seen: set[int]) -> None:
        if id(function) not in seen:
            seen.add(id(function))
            self.functions.append((function, _function_state(function)))

    def restore(self) -> list[str]:
        """Put back what changed; return ``["the notebook's `check`", ...]``, empty if nothing
        did."""
        changed = []
        for label, namespace, owner, before in self.spaces:
            now = dict(namespace)
            if len(now) == len(before) and all(
                now.get(k, _MISSING) is v for k, v in before.items()
            ):
                continue
            for name in [*before, *(k for k in now if k not in before)]:
                old, new = before.get(name, _MISSING), now.get(name, _MISSING)
                if old is new:
                    continue
                added_module = old is _MISSING and isinstance(new, types.ModuleType)
                if added_module and isinstance(owner, types.ModuleType):
                    continue  # `import numpy.testing` adds `testing` to numpy: no change
                changed.append(f"{label} `{name}`")
                _put(namespace, owner, name, old)
        for function, state in self.functions:
            if any(a is not b for a, b in zip(_function_state(function), state, strict=True)):
                changed.append(f"the code of {function.__module__}.{function.__qualname__}")
                function.__code__, function.__defaults__, function.__kwdefaults__ = state
        return changed


def _function_state(function: types.FunctionType) -> tuple:
    return function.__code__, function.__defaults__, function.__kwdefaults__


def _put(namespace: Any, owner: Any, name: str, value: Any) -> None:
    """``namespace[name] = value`` (or ``del``, for ``_MISSING``), through ``owner`` for a class."""
    if isinstance(owner, type):
        if value is _MISSING:
            delattr(owner, name)
        else:
            setattr(owner, name, value)
    elif value is _MISSING:
        del namespace[name]
    else:
        namespace[name] = value


class forbid:  # noqa: N801 (a context manager, used like a function: `with forbid("gae"):`)
    """While the ``with`` block runs, a call of a :data:`FORBIDDEN` function fails.

    ``with forbid("gae"): result = gae(...)``. A profiler (``sys.setprofile``) sees every Python
    call in this thread; a call of forbidden code (:func:`_judge`) raises ``DelegationError("gae
    called rlcourse's own gae (rlcourse.advantages): write it yourself")`` at once, so the reference
    does not run. Python removes a profiler that raises, so the failure is also recorded and the
    block's end raises it again: a student's ``try/except`` around the call cannot hide it. Refused
    as well, since they would blind the guard: starting a thread or a process, calling
    ``sys.setprofile``, ``sys.settrace`` or threading's versions, and running code that torch.fx
    generated. A block that returns with the profiler gone (removed another way) fails too.

    The guard refuses to open while another profiler or tracer is set (a debugger, or a spy a
    solution cell set to record the tests' own calls of the references): :data:`TRACER_ACTIVE`.
    It snapshots, on entry, what the tests look up while they run (:class:`_Snapshot`: the
    notebook's namespace, every module of ``rlcourse.grading``, the modules of :data:`FORBIDDEN`,
    builtins, NumPy, torch):
    on exit, every name the block rebound, added or deleted there is put back, and the block
    fails ("gae changed the notebook's `check` while it was being graded"). When nothing was
    refused, an exception of the block propagates unchanged.

    ``allow``: qualified names from :data:`FORBIDDEN` the block may run (ex6 gives its students
    ``rlcourse.objectives.importance_weights`` and ``clipped_surrogate``). A guard inside a guard
    (same thread) changes nothing: the outer one watches, with its own rules.

    It costs one Python call per function call (and per C call) of the block, and the snapshot on
    entry; graded functions are small. It is no sandbox: code that patches the package
    before the tests run (in a solution cell, outside any guard), edits objects the tests hold
    (not names), or calls ``ctypes`` is not stopped, and threads started before the block are not
    watched.
    """

    def __init__(self, who: str = "your code", allow: Iterable[str] = ()) -> None:
        self.who = who
        self.allowed = _parse_allowed(allow)
        self.problem: str | None = None
        self.closing = False
        self.outer: forbid | None = None

    def _fail(self, what: str) -> None:
        if self.problem is None:
            self.problem = f"{self.who} {what}"
        raise DelegationError(self.problem)

    def _profiler(self) -> Callable:
        judge, watched, watched_code, allowed = _judge, _WATCHED, _WATCHED_CODE, self.allowed

        def profile(frame: types.FrameType, event: str, arg: Any) -> None:
            if event == "call":
                code = frame.f_code
                found = judge(code)
                if found is not None and found[1:] not in allowed:
                    how, module, qualname = found
                    if how == _FX:
                        self._fail(f"{how}: not allowed while it is graded")
                    self._fail(f"{how} rlcourse's own {qualname} ({module}): write it yourself")
                if code in watched_code and not self.closing:
                    self._fail(f"{watched_code[code]}: not allowed while it is graded")
            elif event == "c_call" and id(arg) in watched and not self.closing:
                self._fail(f"{watched[id(arg)][1]}: not allowed while it is graded")

        return profile

    def __enter__(self) -> forbid:
        self.outer = getattr(_LOCAL, "guard", None)
        if self.outer is not None:
            return self
        _refuse_tracers()
        _TABLE.refresh()
        self.snapshot = _Snapshot(_caller_globals())
        self.profile = self._profiler()
        _LOCAL.guard = self
        _SETPROFILE(self.profile)
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if self.outer is not None:
            return False
        self.closing = True  # our own sys.setprofile below is no violation
        current = _GETPROFILE()
        _SETPROFILE(None)  # there was none at entry: a foreign profiler is never put back
        _LOCAL.guard = None
        changed = self.snapshot.restore()
        if self.problem is not None:
            if isinstance(exc, DelegationError) and str(exc) == self.problem:
                return False
            raise DelegationError(self.problem) from None
        if changed:
            raise DelegationError(
                f"{self.who} changed {changed[0]} while it was being graded (put back): not "
                "allowed; a graded function may not assign global names"
            ) from None
        # Judged only when the block returns normally: an exception fails the test anyway, and an
        # interrupt (the cell's time limit) that lands inside the profiler removes it too.
        if current is not self.profile and exc is None:
            raise DelegationError(
                f"{self.who} removed or replaced the profiler that watches for rlcourse's own "
                "functions: not allowed while it is graded"
            ) from None
        if exc is None and _tracer_set():
            raise DelegationError(
                f"{self.who} set a tracer: not allowed while it is graded"
            ) from None
        return False
