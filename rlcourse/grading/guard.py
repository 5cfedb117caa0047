"""The grading guard: :class:`forbid`, a ``with`` block in which graded code cannot run the
package's own answers (:data:`~rlcourse.grading.forbidden.FORBIDDEN`) nor blind the guard.

While the block runs, a profiler (``sys.setprofile``) sees every Python call in this thread and asks
:func:`~rlcourse.grading.forbidden._judge` about it; starting a thread or a process and setting a
profiler or tracer are refused (:func:`_watched_builtins`); on exit, every name the tests look up is
put back as it was on entry (:func:`_take`, :func:`_restore`). :mod:`rlcourse.grading.calls` calls a
student's function inside it.

What runs after the student's code cannot be changed by it. The guard's life is one generator
frame (:func:`_session`): its code is fixed once it runs, its locals are its own, and its helpers
and names are private copies made before the student's code runs (:data:`_PRIVATE`, from what this
module held at import), so rebinding, re-coding or deleting anything of this module, of
:mod:`~rlcourse.grading.forbidden` or of ``builtins`` cannot stop the restore or the failure. The
``with`` statement closes it through a C callable it fetched on entry (:class:`_Exit`); the
profiler is sealed (:func:`_seal`) so that ``sys.getprofile()`` gives no way to its code or state.

Importing this module does not import torch.
"""

from __future__ import annotations

import builtins
import functools
import gc
import operator
import os
import sys
import threading
import types
from collections.abc import Callable, Iterable
from typing import Any

from rlcourse.grading import forbidden as _forbidden
from rlcourse.grading.forbidden import _FX, FORBIDDEN, _judge, _parse_allowed

# The guard's private namespace (_private) holds a sealed copy of _judge instead (_private_judge).

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
_GC = "looked for objects through the garbage collector, which could reach the guard's own"
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
    profiler or setting a tracer would switch the guard off or watch the tests' reference calls;
    the garbage collector's lists of objects would reach the guard's private state.
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
    for function in (gc.get_objects, gc.get_referrers, gc.get_referents):
        found[id(function)] = (function, _GC)
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
    own = getattr(_LOCAL, "profile", None)  # the open guard's profiler, if one is open
    profiler = _GETPROFILE()
    if profiler is not None and (own is None or profiler is not own):
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
_GRAVEYARD: list = []  # what a closing guard took out of the namespaces, kept alive (see _restore)
_ModuleType, _getframe, _is, _MODULES = types.ModuleType, sys._getframe, operator.is_, sys.modules


def _caller_globals() -> dict:
    """The globals of the first frame outside :data:`GRADING_MODULES`: the notebook, when a test
    cell calls (through ``compare`` in ``calls``, ``compare_polyak`` in ``cells``, ...)."""
    ours = {id(vars(module)) for module in _grading_modules()}
    frame = sys._getframe(1)
    while frame is not None and id(frame.f_globals) in ours:
        frame = frame.f_back
    return frame.f_globals if frame is not None else globals()


def _seal(function: Callable) -> Callable:
    """``function`` behind a C wrapper (an uncached ``functools.lru_cache``) that has no attribute
    leading back to it: whoever holds the wrapper (``sys.getprofile()``) cannot reach the function's
    code, closure or globals; only ``gc`` can, which the guard refuses."""
    return functools._lru_cache_wrapper(function, 0, False, tuple)


def _take(caller: dict) -> tuple[tuple, tuple]:
    """What the tests look up by name at call time, taken when a guard opens: ``(spaces,
    functions)``.

    Namespaces: the caller's globals and ``__main__``'s (the notebook's), those of every module of
    :data:`GRADING_MODULES` and of the modules of :data:`FORBIDDEN`, and of their classes,
    ``builtins``, ``copy``, ``threading``, ``numpy``, ``torch`` and ``torch.Tensor``, and
    ``sys.modules``; each as ``(label, namespace, owner, keys, values, type(owner))``. Functions:
    every function of the grading's modules and of those of :data:`FORBIDDEN`, with its code,
    defaults, keyword defaults and ``__dict__`` (their identities, and what the two dictionaries
    hold), as tuples in step.
    """
    spaces: list[tuple] = []
    functions: dict[int, types.FunctionType] = {}  # a function re-exported is kept once
    seen: set[int] = set()

    def add(label: str, namespace: Any, owner: Any) -> None:
        if id(namespace) not in seen:
            seen.add(id(namespace))
            keys, values = tuple(namespace), tuple(namespace.values())
            spaces.append((label, namespace, owner, keys, values, type(owner)))

    main = sys.modules.get("__main__")
    for namespace in (caller, vars(main) if main is not None else None):
        if namespace is not None:
            add("the notebook's", namespace, None)
    ours = _grading_modules()
    others = [m for m in (*FORBIDDEN, *_WATCHED_MODULES) if m not in GRADING_MODULES]
    for module in ours + [sys.modules[m] for m in others if m in sys.modules]:
        namespace = vars(module)
        add(f"{module.__name__}'s", namespace, module)
        if module.__name__ not in FORBIDDEN and module not in ours:
            continue
        for value in list(namespace.values()):
            if isinstance(value, types.FunctionType):
                functions[id(value)] = value
            elif isinstance(value, type) and value.__module__ == module.__name__:
                add(f"{module.__name__}.{value.__name__}'s", value.__dict__, value)
                for attribute in list(value.__dict__.values()):
                    if isinstance(attribute, types.FunctionType):
                        functions[id(attribute)] = attribute
    torch = sys.modules.get("torch")
    if torch is not None:
        add("torch.Tensor's", torch.Tensor.__dict__, torch.Tensor)
    add("sys.modules's", sys.modules, sys)  # what `import` finds: a module replaced there
    found = tuple(functions.values())
    states = tuple(tuple(map(_attribute(name), found)) for name in _FUNCTION_STATE)
    filled = tuple(  # the few functions with keyword defaults or attributes: what those hold
        (i, tuple(kw.items()) if kw else (), tuple(attributes.items()))
        for i, (kw, attributes) in enumerate(zip(states[2], states[3], strict=True))
        if kw or attributes
    )
    return tuple(spaces), (found, states, filled)


_FUNCTION_STATE = (  # what _take keeps of a function; the first four are put back
    "__code__",
    "__defaults__",
    "__kwdefaults__",
    "__dict__",
    "__module__",
    "__qualname__",
)
_attribute = operator.attrgetter


def _restore(spaces: tuple, functions: tuple) -> list[str]:
    """Put back what changed since :func:`_take`; return ``["the notebook's `check`", ...]``, empty
    if nothing did.

    Runs after the student's code, with no profiler, as a private copy: it compares by identity
    only and calls nothing of the student's (no ``==``, no ``isinstance`` that could read a
    ``__class__``, no hash of a key that is not a plain ``str``). What it takes out of a namespace
    is kept alive (:data:`_GRAVEYARD`), so that no ``__del__`` runs the student's code after the
    restore.
    """
    is_, changed = _is, []
    for label, namespace, owner, keys, values, kind in spaces:
        if type(owner) is not kind:  # a module given a class whose __getattr__ answers for it
            changed.append(f"the class of {label[:-2]}")
            object.__setattr__(owner, "__class__", kind)
        now_keys, now_values = list(namespace), list(namespace.values())
        if (
            len(now_keys) == len(keys)
            and all(map(is_, now_keys, keys))
            and all(map(is_, now_values, values))
        ):
            continue
        _GRAVEYARD.append((now_keys, now_values))
        before = dict(zip(keys, values, strict=True))
        now = {k: v for k, v in zip(now_keys, now_values, strict=True) if type(k) is str}
        kept = []  # `import numpy.testing` adds `testing` to numpy: no change
        for name in [*keys, *(k for k in now if k not in before)]:
            old, new = before.get(name, _MISSING), now.get(name, _MISSING)
            if old is new:
                continue
            if old is _MISSING and (
                namespace is _MODULES  # an import during the block: kept
                or (issubclass(kind, _ModuleType) and issubclass(type(new), _ModuleType))
            ):
                kept.append((name, new))
                continue
            changed.append(f"{label} `{name}`")
        if len(now) != len(now_keys):
            changed.append(f"{label} keys that are not names")
        if issubclass(kind, type):  # a class: its namespace is read-only
            for name in [*keys, *now]:
                old, new = before.get(name, _MISSING), now.get(name, _MISSING)
                if old is _MISSING:
                    delattr(owner, name)
                elif old is not new:
                    setattr(owner, name, old)
        else:
            dict.clear(namespace)
            dict.update(namespace, before)
            dict.update(namespace, kept)
    found, states, filled = functions
    same = [
        all(map(is_, map(_attribute(name), found), state))
        for name, state in zip(_FUNCTION_STATE[:4], states[:4], strict=True)
    ]
    if all(same) and all(
        (not kw or _same_items(states[2][i], kw)) and _same_items(states[3][i], attributes)
        for i, kw, attributes in filled
    ):
        return changed
    codes, defaults, kwdefaults, dicts, modules, qualnames = states
    kept_items = {i: (kw, attributes) for i, kw, attributes in filled}
    for i, function in enumerate(found):
        kw, attributes = kept_items.get(i, ((), ()))
        if (
            function.__code__ is codes[i]
            and function.__defaults__ is defaults[i]
            and function.__kwdefaults__ is kwdefaults[i]
            and function.__dict__ is dicts[i]
            and (not kw or _same_items(kwdefaults[i], kw))
            and _same_items(dicts[i], attributes)
        ):
            continue
        changed.append(f"the code of {modules[i]}.{qualnames[i]}")
        _GRAVEYARD.append((function.__code__, function.__defaults__, function.__kwdefaults__))
        _GRAVEYARD.append((function.__dict__, dict(dicts[i])))
        function.__code__, function.__defaults__ = codes[i], defaults[i]
        function.__kwdefaults__, function.__dict__ = kwdefaults[i], dicts[i]
        if kw:
            dict.clear(kwdefaults[i])
            dict.update(kwdefaults[i], kw)
        dict.clear(dicts[i])
        dict.update(dicts[i], attributes)
    return changed


def _same_items(mapping: dict, items: tuple) -> bool:
    """Whether ``mapping`` holds the very keys and values of ``items``, in order (by identity)."""
    is_ = _is
    return (
        len(mapping) == len(items)
        and all(map(is_, mapping, (k for k, _ in items)))
        and all(map(is_, mapping.values(), (v for _, v in items)))
    )


def _profiler(own: int, who: str, allowed: frozenset, problems: list) -> Callable:
    """The profiler of one guard, sealed (:func:`_seal`): it fails a call of forbidden code
    (:func:`~rlcourse.grading.forbidden._judge`, a private copy) and a watched C call; the first
    failure is recorded in ``problems``, which only the guard's session holds. ``own`` is the id
    of the session's frame, whose own ``sys.setprofile`` is no violation."""
    judge, watched, watched_code, error = _judge, _WATCHED, _WATCHED_CODE, DelegationError

    def fail(what: str) -> None:
        if not problems:
            problems.append(f"{who} {what}")
        raise error(problems[0])

    def profile(frame: types.FrameType, event: str, arg: Any) -> None:
        if event == "call":
            code = frame.f_code
            found = judge(code)
            if found is not None and found[1:] not in allowed:
                how, module, qualname = found
                if how == _FX:
                    fail(f"{how}: not allowed while it is graded")
                fail(f"{how} rlcourse's own {qualname} ({module}): write it yourself")
            if code in watched_code:
                fail(f"{watched_code[code]}: not allowed while it is graded")
        elif event == "c_call" and id(arg) in watched and id(frame) != own:
            fail(f"{watched[id(arg)][1]}: not allowed while it is graded")

    return _seal(profile)


def _session(who: str, allowed: frozenset, token: list, caller: dict) -> Any:
    """One guard, from its opening to its verdict, as a generator run as a private copy.

    Opened by ``next`` (:meth:`forbid.__enter__`): it refuses to open under a profiler or tracer,
    takes the snapshot (:func:`_take`) and installs the profiler (:func:`_profiler`). Closed by
    ``max(token, exc_type, exc, tb, key=send)`` (:class:`_Exit`): it receives the four values
    one by one, yields ``0`` as each one's key (``max`` then returns ``token``, an empty list, so
    that the ``with`` statement lets an exception through), and between the last two removes the
    profiler, puts back what changed (:func:`_restore`) and raises the guard's failure, if any.
    Only the ``with`` statement holds ``token``. Everything used after the first ``yield`` is a
    local of this frame or a name of its private namespace.
    """
    problems: list[str] = []
    nested = getattr(_LOCAL, "profile", None) is not None  # the outer guard watches, with its rules
    if not nested:
        _refuse_tracers()
        spaces, functions = _take(caller)
        profile = _profiler(id(_getframe()), who, allowed, problems)
        _LOCAL.profile = profile
        _SETPROFILE(profile)
    got = yield
    while got is not token:  # anything but the with statement's exit: refused, and remembered
        if not problems:
            problems.append(f"{who} resumed the guard's closing: not allowed while it is graded")
        got = yield 0
    exc_type = yield 0
    error = yield 0
    yield 0  # the traceback
    if nested:
        yield 0
        return
    current = _GETPROFILE()
    _SETPROFILE(None)  # there was none at entry: a foreign profiler is never put back
    _LOCAL.profile = None
    changed = _restore(spaces, functions)
    if problems:
        if not (type(error) is DelegationError and error.args[0] is problems[0]):
            raise DelegationError(problems[0]) from None
    elif changed:
        raise DelegationError(
            f"{who} changed {changed[0]} while it was being graded (put back): not allowed; a "
            "graded function may not assign global names"
        ) from None
    # Judged only when the block returns normally: an exception fails the test anyway, and an
    # interrupt (the cell's time limit) that lands inside the profiler removes it too.
    elif current is not profile and exc_type is None:
        raise DelegationError(
            f"{who} removed or replaced the profiler that watches for rlcourse's own functions: "
            "not allowed while it is graded"
        ) from None
    elif exc_type is None and _GETTRACE() is not None:
        raise DelegationError(f"{who} set a tracer: not allowed while it is graded") from None
    yield 0


class _Exit:
    """``forbid.__exit__``: on ``with``, the C callable ``max(token, ..., key=session.send)``.

    The ``with`` statement fetches ``__exit__`` once, on entry, and keeps it where no Python code
    reaches it; calling it resumes the guard's session (:func:`_session`) through C alone. A
    student who rebinds or re-codes anything of the guard's cannot change what runs then.
    """

    def __get__(self, guard: forbid | None, owner: type | None = None) -> Any:
        if guard is None:
            return self
        token: list = []
        session = _private()["_session"](guard.who, guard.allowed, token, _caller_globals())
        guard.__dict__["_session"] = session  # primed, and dropped, by __enter__
        return functools.partial(max, token, key=session.send)


class forbid:  # noqa: N801 (a context manager, used like a function: `with forbid("gae"):`)
    """While the ``with`` block runs, a call of a :data:`FORBIDDEN` function fails.

    ``with forbid("gae"): result = gae(...)``. A profiler (``sys.setprofile``) sees every Python
    call in this thread; a call of forbidden code (:func:`_judge`) raises ``DelegationError("gae
    called rlcourse's own gae (rlcourse.advantages): write it yourself")`` at once, so the reference
    does not run. Python removes a profiler that raises, so the failure is also recorded and the
    block's end raises it again: a student's ``try/except`` around the call cannot hide it. Refused
    as well, since they would blind the guard: starting a thread or a process, calling
    ``sys.setprofile``, ``sys.settrace`` or threading's versions, listing objects through ``gc``,
    and running code that torch.fx generated. A block that returns with the profiler gone (removed
    another way) fails too.

    The guard refuses to open while another profiler or tracer is set (a debugger, or a spy a
    solution cell set to record the tests' own calls of the references): :data:`TRACER_ACTIVE`.
    It snapshots, on entry, what the tests look up while they run (:func:`_take`: the
    notebook's namespace, every module of ``rlcourse.grading``, the modules of :data:`FORBIDDEN`,
    builtins, NumPy, torch):
    on exit, every name the block rebound, added or deleted there is put back, and the block
    fails ("gae changed the notebook's `check` while it was being graded"). When nothing was
    refused, an exception of the block propagates unchanged. The exit runs private copies of the
    guard's code (:func:`_session`): the block cannot change it.

    ``allow``: qualified names from :data:`FORBIDDEN` the block may run (ex6 gives its students
    ``rlcourse.objectives.importance_weights`` and ``clipped_surrogate``). A guard inside a guard
    (same thread) changes nothing: the outer one watches, with its own rules.

    It costs one Python call per function call (and per C call) of the block, and the snapshot on
    entry; graded functions are small. It is no sandbox: code that patches the package
    before the tests run (in a solution cell, outside any guard), edits objects the tests hold
    (not names), or calls ``ctypes`` is not stopped, and threads started before the block are not
    watched.
    """

    __exit__ = _Exit()

    def __init__(self, who: str = "your code", allow: Iterable[str] = ()) -> None:
        self.who = who
        self.allowed = _parse_allowed(allow)

    def __enter__(self) -> forbid:
        next(self.__dict__.pop("_session"))
        return self


def _private_judge() -> Callable:
    """:func:`~rlcourse.grading.forbidden._judge` as a private copy, sealed: the module's source run
    again in a namespace of its own, with its own tables and caches and a copy of ``builtins``.
    Rebinding, re-coding or filling anything of :mod:`rlcourse.grading.forbidden` while graded
    does not change what the profiler asks."""
    namespace = {
        "__name__": _forbidden.__name__,
        "__file__": _forbidden.__file__,
        "__builtins__": dict(vars(builtins)),
    }
    with open(_forbidden.__file__, encoding="utf-8") as source:
        exec(compile(source.read(), _forbidden.__file__, "exec"), namespace)
    return _seal(namespace["_judge"])


def _freeze() -> tuple[tuple, tuple, tuple]:
    """This module's names as they are at import, for :func:`_private`: ``(names, functions,
    builtins)``. A dictionary is kept as a read-only view of a copy; a function of this module as
    its code and defaults (made anew for each guard); ``_judge`` is the private, sealed copy."""
    names, functions = [], []
    for name, value in globals().items():
        if isinstance(value, types.FunctionType) and value.__module__ == __name__:
            kwdefaults = tuple((value.__kwdefaults__ or {}).items())
            functions.append((name, value.__code__, value.__defaults__, kwdefaults))
            continue
        if name == "__builtins__":
            continue
        if type(value) is dict and value is not sys.modules:
            value = types.MappingProxyType(dict(value))
        names.append((name, value))
    names.append(("_judge", _private_judge()))
    return tuple(names), tuple(functions), tuple(vars(builtins).items())


def _private() -> dict:
    """A namespace of this module's own, made anew for each guard from :data:`_PRIVATE` (taken at
    import): its functions are new function objects bound to it, its builtins a copy. The guard's
    session runs in it, so nothing the student's code rebinds or re-codes is what it calls."""
    names, functions, builtin_items = _PRIVATE
    namespace = {"__builtins__": dict(builtin_items)}
    for name, value in names:
        namespace[name] = dict(value) if type(value) is types.MappingProxyType else value
    for name, code, defaults, kwdefaults in functions:
        function = types.FunctionType(code, namespace, name, defaults)
        if kwdefaults:
            function.__kwdefaults__ = dict(kwdefaults)
        namespace[name] = function
    return namespace


_PRIVATE = _freeze()
