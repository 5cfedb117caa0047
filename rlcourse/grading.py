"""Helpers of the graded exercises in ``notebooks/exercises``: feedback that says what is wrong, and test cases.

The exercises' test cells compare a student's function with the package's reference on seeded random
inputs and on edge cases. A bare ``assert`` would tell a student only *that* something is wrong; the
test cells call :func:`check` instead, which says *which case* failed and *where*::

    AssertionError: case 'one stream, terminated at t=[2], truncated at t=[4] (still bootstraps), gamma=0.9':
    td_errors is wrong at 1 of 6 entries, first at index (2,): expected 0.5, got 1.31
      expected [1.4, 0.35, 0.5, 1.07, 0.92, 1.14]
      got      [1.4, 0.35, 1.31, 1.07, 0.92, 1.14]

A case's name carries the hint (an episode that ends inside the rollout, a time-limit truncation, a
group whose rewards are all equal, a ratio outside the clip range...), so the message points at the
idea the student missed without showing the answer's code.

The case generators (:func:`rollout`) are here rather than in the notebooks so that the hidden tests can
use them too: autograding restores every test cell from the instructor's copy, but a helper defined in a
student-editable cell could be changed.

Importing this module does not import torch: the importance-sampling exercise runs without it.

**The guard.** Test cells call a student's function through :func:`student`, :func:`compare` or
:func:`gradients`, never directly. While the student's code runs, a profiler (``sys.setprofile``)
watches every Python call. A call of the package's own version of a function an exercise asks for
(:data:`FORBIDDEN`: those functions, the references the tests use, and the package's helpers that
would give an answer away) fails at once with a :class:`DelegationError`, an ``AssertionError``::

    AssertionError: case 'one episode, terminated at t=[4], gamma=0.9, lambda=0.0': gae called
    rlcourse's own gae (rlcourse.advantages): write it yourself

However the function was reached (an import inside the student's function, a module attribute,
the ``reference_gae`` a test cell binds at the notebook's top level, a method such as
``mdp.surrogate``, another package function that calls it, ``types.FunctionType(ref.__code__,
...)``), the package's code is known by its file and qualified name; a copy compiled from the same
source (``exec(inspect.getsource(ref))``) is known by its instructions. The test's own call of the
reference runs outside the guard. :class:`forbid` says what else it refuses, and what it cannot.

Used by ``notebooks/exercises/source/*/*.ipynb``; ``notebooks/exercises/README.md`` describes the course.
"""

from __future__ import annotations

import copy
import os
import sys
import threading
import types
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "FORBIDDEN",
    "DelegationError",
    "check",
    "check_true",
    "compare",
    "describe_episode_ends",
    "forbid",
    "gradients",
    "reference_smoothed_action",
    "rollout",
    "student",
    "to_numpy",
    "TRACER_ACTIVE",
    "GRPO_PROVIDED",
    "check_clip_gradient",
    "check_grpo_gradient",
    "check_k3_gradient",
    "check_ratio_gradient",
    "compare_grpo_loss",
    "compare_polyak",
    "compare_soft_values",
    "compare_surrogate",
    "token_batch",
]

SHOW_ALL = 12
"""Arrays with at most this many entries are printed whole in a failure message."""


def _is_tensor(x: Any) -> bool:
    torch = sys.modules.get("torch")  # a tensor can exist only if torch was imported
    return torch is not None and isinstance(x, torch.Tensor)


def to_numpy(x: Any) -> np.ndarray:
    """``x`` as a float64 (or bool) NumPy array: tensors are detached and moved to the CPU first."""
    if _is_tensor(x):
        x = x.detach().cpu()
        x = x.numpy() if x.dtype == sys.modules["torch"].bool else x.double().numpy()
    a = np.asarray(x)
    return a if a.dtype == bool else a.astype(np.float64)


def _number(x: Any) -> str:
    return str(x) if isinstance(x, bool) else f"{x:.6g}"


def _fmt(a: np.ndarray) -> str:
    if a.ndim == 0:
        return _number(a.item())
    if a.ndim == 1 and a.size <= SHOW_ALL:
        return "[" + ", ".join(map(_number, a.tolist())) + "]"
    return " ".join(np.array2string(a, precision=5, threshold=SHOW_ALL, separator=", ").split())


def _kind(x: Any) -> str:
    t = type(x)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__.split('.')[0]}.{t.__name__}"


def check(name: str, got: Any, expected: Any, case: str, atol: float = 1e-6, rtol: float = 1e-5) -> None:
    """Raise an ``AssertionError`` that says what differs unless ``got`` matches ``expected``.

    ``expected`` comes from the package's reference; ``got`` from the student's function. Checked in this
    order, each with its own message: something was returned (not ``None``); a tensor where a tensor
    is expected (the callers backpropagate through it); the shape, exactly (no broadcasting: a ``(T, 1)``
    against a ``(T,)`` is a bug); NaN or infinity where the reference is finite (a division by zero or an
    overflow); then the values, within ``atol + rtol |expected|``. Messages start with ``case <case>:``.

    Args:
        name: what is checked, as the student knows it (a function's name, "the gradient w.r.t. ...").
        got: the student's result: a tensor, an array, a number.
        expected: the reference result.
        case: a short description of the inputs, which hints at the idea the case tests.
        atol, rtol: tolerances, as in :func:`numpy.isclose`.
    """
    where = f"case {case!r}: {name}"
    if got is None:
        raise AssertionError(f"{where} returned None: did you forget to `return` the result?")
    if _is_tensor(expected) and not _is_tensor(got):
        raise AssertionError(
            f"{where} returned a {_kind(got)}, expected a torch.Tensor (keep the computation in torch, so "
            "that gradients can flow through it)"
        )
    try:
        with forbid(f"the value checked as {name}"):  # a lazy result would compute itself here
            g = to_numpy(got)
    except DelegationError as err:
        raise DelegationError(f"case {case!r}: {err}") from None
    except (TypeError, ValueError) as err:
        raise AssertionError(f"{where} returned a {_kind(got)}, which is not a number or an array ({err})") from None
    e = to_numpy(expected)
    if g.dtype == object:
        raise AssertionError(f"{where} returned a {_kind(got)} that is not an array of numbers")
    if g.shape != e.shape:
        what = "a single number, shape ()" if e.ndim == 0 else f"shape {e.shape}"
        raise AssertionError(f"{where} has the wrong shape: expected {what}, got shape {g.shape}")
    if e.dtype == bool or g.dtype == bool:
        wrong = g != e
    else:
        bad = ~np.isfinite(g) & np.isfinite(e)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            at = f" at index {first} ({int(bad.sum())} of {e.size} entries are not finite)" if e.ndim else ""
            raise AssertionError(
                f"{where} is {_fmt(g[first])}{at} where {_fmt(e[first])} is expected: "
                "a division by zero, or an exponential that overflowed?"
            )
        wrong = ~np.isclose(g, e, atol=atol, rtol=rtol, equal_nan=True)
    if wrong.any():
        if e.ndim == 0:
            raise AssertionError(f"{where} is wrong: expected {_fmt(e)}, got {_fmt(g)}")
        first = tuple(int(i) for i in np.argwhere(wrong)[0])
        message = (
            f"{where} is wrong at {int(wrong.sum())} of {e.size} entries, first at index {first}: "
            f"expected {_fmt(e[first])}, got {_fmt(g[first])}"
        )
        if e.size <= SHOW_ALL:
            message += f"\n  expected {_fmt(e)}\n  got      {_fmt(g)}"
        raise AssertionError(message)


def check_true(condition: Any, message: str, case: str) -> None:
    """Raise ``AssertionError("case <case>: <message>")`` unless ``condition`` holds (a property, not a value)."""
    if not bool(condition):
        raise AssertionError(f"case {case!r}: {message}")


def describe_episode_ends(terminated: Any, truncated: Any | None = None) -> str:
    """``"terminated at t=[2], truncated at t=[5]"`` for a ``(T,)`` stream; ``(T, N)`` flags give a count per kind."""
    term = to_numpy(terminated).astype(bool)
    trunc = np.zeros_like(term) if truncated is None else to_numpy(truncated).astype(bool)
    parts = []
    for label, flags in (("terminated", term), ("truncated", trunc)):
        if flags.ndim == 1 and flags.any():
            parts.append(f"{label} at t={np.flatnonzero(flags).tolist()}")
        elif flags.ndim > 1 and flags.any():
            parts.append(f"{int(flags.sum())} steps {label}")
    return ", ".join(parts) if parts else "no episode ends before the rollout's last step"


def rollout(
    seed: int,
    steps: int,
    envs: int | None = None,
    p_terminated: float = 0.15,
    p_truncated: float = 0.1,
    complete: bool = False,
) -> tuple[dict, str]:
    """A random time-first rollout for the advantage-estimation exercise, and a description of it.

    Returns ``(data, description)`` where ``data`` holds float32 tensors ``rewards``, ``values``,
    ``next_values`` and bool tensors ``terminated``, ``truncated``, shape ``(steps,)`` or ``(steps, envs)``,
    with the conventions of :mod:`rlcourse.advantages`: ``next_values[t]`` is ``values[t + 1]`` inside an
    episode, and the value of the episode's final observation (drawn afresh, *not* 0) where it ended,
    so a function that bootstraps through a terminal step gets a visibly different answer. A step is
    never both terminated and truncated.

    Args:
        seed: seeds the draw (a ``torch.Generator``), so a test case is the same on every run.
        steps: ``T``.
        envs: ``N`` parallel streams, or ``None`` for one stream of shape ``(T,)``.
        p_terminated, p_truncated: chance that a step ends its episode by termination, by truncation.
        complete: every episode is complete: the last step terminates and no step is truncated.
    """
    import torch

    shape = (steps,) if envs is None else (steps, envs)
    gen = torch.Generator().manual_seed(seed)
    rewards = torch.randn(shape, generator=gen)
    values = torch.randn(shape, generator=gen)
    final_values = torch.randn(shape, generator=gen)  # v(S_{t+1}) where S_{t+1} ends an episode
    u = torch.rand(shape, generator=gen)
    terminated = u < p_terminated
    truncated = (u >= p_terminated) & (u < p_terminated + p_truncated)
    if complete:
        terminated[-1] = True
        truncated[:] = False
    ended = terminated | truncated
    next_values = torch.empty(shape)
    next_values[:-1] = torch.where(ended[:-1], final_values[:-1], values[1:])
    next_values[-1] = final_values[-1]  # the rollout's last step: the observation the next rollout starts from
    data = dict(rewards=rewards, values=values, next_values=next_values, terminated=terminated, truncated=truncated)
    size = f"T={steps}" + ("" if envs is None else f", N={envs}")
    return data, f"seed {seed}, {size}, {describe_episode_ends(terminated, truncated)}"


def reference_smoothed_action(action: Any, noise: Any, noise_clip: float, low: Any, high: Any) -> Any:
    """The package's TD3 target action ``clip(mu_{theta-}(S') + clip(epsilon, -c, c), low, high)`` for a *given* noise.

    :func:`rlcourse.algos.td3.smoothed_target_action` draws ``epsilon`` itself (``torch.randn_like``) and
    measures it in units of the action scale ``(high - low) / 2``. The exercise's function takes the
    noise as an argument instead, so this hands the package that same draw and rescales the
    configuration: the result is the package's answer for these inputs.

    Args:
        action: ``mu_{theta-}(S')``, shape ``(B, d)``.
        noise: ``epsilon`` before clipping (already times its standard deviation), shape ``(B, d)``.
        noise_clip: ``c``, in action units.
        low, high: the action bounds, shape ``(d,)``; ``high - low`` must be the same in every dimension.
    """
    from unittest import mock

    import torch

    from rlcourse.algos import td3

    center, scale = (high + low) / 2, (high - low) / 2
    s = float(scale.flatten()[0])
    if s <= 0 or not torch.allclose(scale, torch.full_like(scale, s)):
        raise ValueError(
            f"high - low = {(high - low).tolist()} is not allowed here: the reference measures the noise in one "
            "action scale, so every dimension must have the same positive range"
        )

    class TargetActor:  # stands in for mu_{theta-}: returns the given action
        def __call__(self, obs):
            return action

    actor = TargetActor()
    actor.center, actor.scale = center, scale
    config = td3.Config(target_noise=1.0 / s, target_noise_clip=float(noise_clip) / s)
    with mock.patch.object(td3.torch, "randn_like", lambda like: noise.to(like.dtype)):
        return td3.smoothed_target_action(actor, None, config)


# ------------------------------------------------------------------------------------- the guard

FORBIDDEN: dict[str, tuple[str, ...]] = {
    "rlcourse.advantages": (
        "td_errors",  # ex1
        "returns_to_go",  # ex1
        "gae",  # ex1
        "discounted_returns",  # returns-to-go of complete episodes
        "kstep_returns",  # with k = T: returns-to-go
        "lambda_returns",  # with lambda = 1: returns-to-go (the reference calls it)
        "_episode_ends",  # where a sum stops: what the episode-end tests are about
        "_episode_end_index",
        "group_relative_advantages",  # ex6
        "group_relative_step_advantages",  # with one step: the group-relative advantages
        "normalize",  # (R - mean) / (std + eps) of one group
    ),
    "rlcourse.objectives": (
        "dqn_target",  # ex2
        "double_dqn_target",  # with the same network twice: the DQN target
        "ddpg_target",  # the last step of the DQN and TD3 targets
        "td3_target",  # ex2
        "_not_terminal",  # the terminal mask of every target: what the terminal-state tests check
        "soft_td_target",  # ex3
        "importance_weights",  # ex5; ex6's grpo_loss may use it (its setup cell provides it)
        "clipped_surrogate",  # ex5; ex6's grpo_loss may use it (its setup cell provides it)
        "kl_k3",  # ex6
        "aggregate_tokens",  # grpo_loss's average per answer
    ),
    "rlcourse.nets": ("polyak_update",),  # ex2
    "rlcourse.algos.td3": ("smoothed_target_action",),  # ex2
    "rlcourse.algos.grpo": ("grpo_loss",),  # ex6
    "rlcourse.tabular": (
        "softmax_policy",  # ex3
        "softmax_value",  # ex3
        "FiniteMDP.soft_values",  # ex3
        "FiniteMDP.soft_value_iteration",  # its fixed point holds the soft values
        "FiniteMDP._soft_greedy_value",
        "FiniteMDP.surrogate",  # ex5
        "FiniteMDP._expected_advantage",  # g(s), the surrogate's sum
        "FiniteMDP.performance_difference_terms",  # its term (A) is the surrogate minus J(pi)
        "FiniteMDP.penalised_surrogate",
    ),
    "rlcourse.importance": (
        "importance_weighted_estimate",  # ex4
        "effective_sample_size",  # ex4
        "estimator_variance",  # ex4
    ),
    "rlcourse.grading": (  # ex2's reference, and the test cells' checks, which run references
        "reference_smoothed_action",
        "compare_polyak",
        "compare_soft_values",
        "check_ratio_gradient",
        "clip_gradient",
        "check_clip_gradient",
        "compare_surrogate",
        "check_k3_gradient",
        "compare_grpo_loss",
        "grpo_gradient",
        "check_grpo_gradient",
    ),
}
"""The package's functions that graded code may not run: ``{module: qualified names}``.

Every function an exercise asks for, the references the tests compare with, and the package's
functions that compute the same answer under another name or hold the step a test is about (the
terminal mask, where an episode's sum stops, the average per answer). Functions the exercises give
students to build on stay allowed: :func:`rlcourse.tabular.entropy`, the exact quantities of
:class:`~rlcourse.tabular.FiniteMDP` that the surrogate is made of (``state_distribution``,
``advantages``, ``values``, ``expected_return``), and, in ex6 only, ``importance_weights`` and
``clipped_surrogate`` from Exercise 5 (its test cells pass them in ``allow``). Any function of the
package that calls a forbidden one (a training loop, a widget) is caught by that call.
"""

_HERE = os.path.dirname(os.path.realpath(__file__))
# Taken when the setup cell imports this module, before any student cell runs: a student who later
# rebinds sys.setprofile cannot keep the guard from installing its profiler.
_SETPROFILE = sys.setprofile
_GETPROFILE = sys.getprofile


def _source_file(module: str) -> str:
    return os.path.normcase(os.path.join(_HERE, *module.split(".")[1:]) + ".py")


_FILES = {_source_file(module): (module, frozenset(names)) for module, names in FORBIDDEN.items()}


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
        id(sys.setprofile): (sys.setprofile, "called sys.setprofile, which would switch the guard off"),
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


MIN_FINGERPRINT = 20
"""Below this many instructions, a function's fingerprint keeps the names of its arguments and
local variables: short honest code (a terminal mask, a one-line target) can compile to the same
few instructions as the package's, and only a copy with the very same names counts as one."""


def _fingerprint(code: types.CodeType, by_position: bool = True) -> tuple:
    """What a copy compiled from the same source shares with the original: its instructions and
    their arguments (names of globals and attributes, constants, nested functions), local
    variables by their position, jumps as indices.

    Not the file, the line numbers, the function's own name or its docstring; not the names of its
    arguments and local variables (a copy with renamed variables is the same code; with
    ``by_position=False`` they are kept, see :data:`MIN_FINGERPRINT`); nor how a call
    of a module's attribute was compiled (``torch.exp(x)`` gives other instructions when the
    compiler saw ``import torch`` in the same source, as in a module, than in a function compiled
    on its own).
    """
    import dis

    instructions = list(dis.get_instructions(code))
    index = {ins.offset: i for i, ins in enumerate(instructions)}
    jumps = set(dis.hasjrel) | set(dis.hasjabs)
    positional = set(dis.haslocal) | set(dis.hasfree)
    out = []
    for ins in instructions:
        name = "LOAD_ATTR" if ins.opname == "LOAD_METHOD" else ins.opname
        if ins.opcode in jumps:
            arg: Any = index.get(ins.argval, ins.argval)
        elif ins.opcode in positional and by_position:
            arg = ins.arg
        elif isinstance(ins.argval, types.CodeType):
            arg = _fingerprint(ins.argval, by_position)
        else:
            arg = (type(ins.argval).__name__, repr(ins.argval))
        out.append((name, arg))
    return tuple(out)


def _print(code: types.CodeType) -> tuple:
    """The fingerprint a copy is known by: by position, or with names below MIN_FINGERPRINT."""
    fingerprint = _fingerprint(code)
    return fingerprint if len(fingerprint) >= MIN_FINGERPRINT else ("named", _fingerprint(code, False))


class _Table:
    """Fingerprints of the forbidden functions of the modules imported so far.

    Only imported modules are read, so that the guard itself imports nothing (the importance
    sampling exercise runs without torch); ``refresh`` adds a module once it is imported.
    """

    def __init__(self) -> None:
        self.done: set[str] = set()
        self.prints: dict[tuple, tuple[str, str]] = {}
        self.version = 0  # grows with every module read
        self.seen = -1  # len(sys.modules) at the last refresh

    def refresh(self) -> None:
        if len(sys.modules) == self.seen:
            return
        self.seen = len(sys.modules)
        for module, names in FORBIDDEN.items():
            if module in self.done or module not in sys.modules:
                continue
            complete = True
            for qualname in names:
                obj: Any = sys.modules[module]
                for part in qualname.split("."):
                    obj = getattr(obj, part, None)
                while hasattr(obj, "__wrapped__"):  # polyak_update is wrapped by torch.no_grad()
                    obj = obj.__wrapped__
                code = getattr(obj, "__code__", None)
                if isinstance(code, types.CodeType):
                    self.prints.setdefault(_print(code), (module, qualname))
                else:
                    complete = False  # still being imported: read it again later
            if complete:
                self.done.add(module)
                self.version += 1


_TABLE = _Table()
_FX = "ran code generated by torch.fx (a traced copy of a function?)"
# id(code) -> (code, table version, verdict): the code object is kept, so that its id is not reused
_VERDICTS: dict[int, tuple[types.CodeType, int, tuple[str, str, str] | None]] = {}
_FILE_MODULES: dict[str, tuple[str, frozenset[str]] | None] = {}


def _judge(code: types.CodeType) -> tuple[str, str, str] | None:
    """``(how, module, qualname)`` if running ``code`` runs the package's own answer, else ``None``.

    ``how`` is "called" for the package's code itself (known by its file and qualified name,
    however it was reached), "ran a copy of" for code compiled from the same source elsewhere.
    """
    if len(sys.modules) != _TABLE.seen:
        _TABLE.refresh()
    entry = _VERDICTS.get(id(code))
    if entry is not None and entry[0] is code:
        # a clean verdict given before more modules were read is given again
        if entry[2] is not None or entry[1] == _TABLE.version:
            return entry[2]
    verdict = None
    filename = code.co_filename
    if filename not in _FILE_MODULES:
        _FILE_MODULES[filename] = _FILES.get(os.path.normcase(os.path.realpath(filename)))
    owner = _FILE_MODULES[filename]
    qualname = getattr(code, "co_qualname", code.co_name)  # co_qualname: Python 3.11+
    if owner is not None and qualname in owner[1]:
        verdict = ("called", owner[0], qualname)
    elif filename.startswith("<eval_with_key"):
        verdict = (_FX, "", "")
    else:
        found = _TABLE.prints.get(_print(code))
        if found is not None:
            verdict = ("ran a copy of", *found)
    _VERDICTS[id(code)] = (code, _TABLE.version, verdict)
    return verdict


def _parse_allowed(allow: Iterable[str]) -> frozenset[tuple[str, str]]:
    allowed = set()
    for name in allow:
        module = max((m for m in FORBIDDEN if name.startswith(m + ".")), key=len, default=None)
        qualname = name[len(module) + 1 :] if module else ""
        if module is None or qualname not in FORBIDDEN[module]:
            raise ValueError(
                f"allow={name!r} is not allowed: it must name a function of FORBIDDEN, e.g. "
                "'rlcourse.objectives.clipped_surrogate'"
            )
        allowed.add((module, qualname))
    return frozenset(allowed)


class DelegationError(AssertionError):
    """Graded code ran the package's own answer, or did what would hide it from the guard."""


_LOCAL = threading.local()

TRACER_ACTIVE = "a profiler/tracer is active; grading needs it off (turn off the debugger)"
_GETTRACE = sys.gettrace
_THREAD_HOOKS = (threading.getprofile, threading.gettrace)


def _tracer_set() -> bool:
    """Whether a profiler or tracer other than an open guard's is set, in ``sys`` or ``threading``."""
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
    """The globals of the first frame outside this module: the notebook, when a test cell calls."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals is globals():
        frame = frame.f_back
    return frame.f_globals if frame is not None else globals()


class _Snapshot:
    """The identity of every value the tests look up by name at call time, taken when a guard opens.

    Namespaces: the caller's globals and ``__main__``'s (the notebook's), this module's, those of
    the modules of :data:`FORBIDDEN` and of their classes, ``builtins``, ``copy``, ``threading``,
    ``numpy``, ``torch`` and ``torch.Tensor``; and the code, defaults and keyword defaults of every
    function of this module and of the modules of :data:`FORBIDDEN`. :meth:`restore` puts back
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
        ours = sys.modules.get(__name__)
        modules = [ours] if ours is not None else []
        modules += [sys.modules[m] for m in (*FORBIDDEN, *_WATCHED_MODULES) if m in sys.modules]
        for module in modules:
            namespace = vars(module)
            self._add(f"{module.__name__}'s", namespace, module, seen)
            if module.__name__ not in FORBIDDEN and module is not ours:
                continue
            for value in list(namespace.values()):
                if isinstance(value, types.FunctionType):
                    self.functions.append((value, _function_state(value)))
                elif isinstance(value, type) and value.__module__ == module.__name__:
                    self._add(f"{module.__name__}.{value.__name__}'s", value.__dict__, value, seen)
                    for attr in list(value.__dict__.values()):
                        if isinstance(attr, types.FunctionType):
                            self.functions.append((attr, _function_state(attr)))
        torch = sys.modules.get("torch")
        if torch is not None:
            self._add("torch.Tensor's", torch.Tensor.__dict__, torch.Tensor, seen)

    def _add(self, label: str, namespace: Any, owner: Any, seen: set[int]) -> None:
        if id(namespace) not in seen:
            seen.add(id(namespace))
            self.spaces.append((label, namespace, owner, dict(namespace)))

    def restore(self) -> list[str]:
        """Put back what changed; return ``["the notebook's `check`", ...]``, empty if nothing did."""
        changed = []
        for label, namespace, owner, before in self.spaces:
            now = dict(namespace)
            if len(now) == len(before) and all(now.get(k, _MISSING) is v for k, v in before.items()):
                continue
            for name in [*before, *(k for k in now if k not in before)]:
                old, new = before.get(name, _MISSING), now.get(name, _MISSING)
                if old is new:
                    continue
                if old is _MISSING and isinstance(owner, types.ModuleType) and isinstance(new, types.ModuleType):
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
    notebook's namespace, this module, the modules of :data:`FORBIDDEN`, builtins, NumPy, torch):
    on exit, every name the block rebound, added or deleted there is put back, and the block
    fails ("gae changed the notebook's `check` while it was being graded"). When nothing was
    refused, an exception of the block propagates unchanged.

    ``allow``: qualified names from :data:`FORBIDDEN` the block may run (ex6 gives its students
    ``rlcourse.objectives.importance_weights`` and ``clipped_surrogate``). A guard inside a guard
    (same thread) changes nothing: the outer one watches, with its own rules.

    It costs one Python call per function call (and per C call) of the block, and the snapshot
    (about 0.2 ms); graded functions are small. It is no sandbox: code that patches the package
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
            raise DelegationError(f"{self.who} set a tracer: not allowed while it is graded") from None
        return False


_NUMBERS = (bool, int, float, complex)


def _result(x: Any, where: str, depth: int = 0) -> Any:
    """``x``, a student's result, as plain data: tensors, arrays, numbers, ``None``, and tuples and
    lists of them; anything else fails with an ``AssertionError``.

    Called under the guard, so that an object with code of its own (whose ``__iter__``,
    ``__array__`` or ``__torch_function__`` would compute the answer later, when the test reads it
    outside the guard) is read, or refused, while the guard still watches. Tensor and array
    subclasses become their base class, a subclass of a number its plain value.
    """
    if x is None or type(x) in _NUMBERS:
        return x
    if isinstance(x, (tuple, list)) and depth < 4:
        items = [_result(item, where, depth + 1) for item in x]
        return tuple(items) if isinstance(x, tuple) else items
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return x if type(x) in (torch.Tensor, torch.nn.Parameter) else x.as_subclass(torch.Tensor)
    if isinstance(x, np.ndarray):
        a = x if type(x) is np.ndarray else x.view(np.ndarray)
        if a.dtype == object:
            raise AssertionError(f"{where} returned an array of Python objects, not of numbers")
        return a
    if isinstance(x, np.generic) and type(x).__module__ == "numpy":
        return x
    if isinstance(x, (*_NUMBERS, np.generic)):  # a subclass of a number: its value, read now
        return np.asarray(x).item()
    raise AssertionError(
        f"{where} returned a {_kind(x)}, which is not a number, an array, a tensor or a tuple of them"
    )


def _name_of(fn: Any) -> str:
    # A function's __name__ is a plain attribute; another object's could be a property running code.
    return fn.__name__ if isinstance(fn, types.FunctionType) else f"your {type(fn).__name__}"


def student(
    fn: Callable, *, name: str | None = None, case: str | None = None, allow: Iterable[str] = ()
) -> Callable:
    """``fn`` (a student's function) wrapped: every call runs under :class:`forbid`.

    ``student(gae)(rewards, ...)`` returns what ``gae`` returns, read under the guard as plain
    data (:func:`_result`), or raises :class:`DelegationError` if ``gae`` reached a forbidden
    function; with ``case``, messages start ``case '<case>':`` as :func:`check`'s do. Exceptions of
    ``fn`` propagate.

    Args:
        fn: the student's function.
        name: how messages call it (default: its ``__name__``).
        case: the test case, for the message.
        allow: names of :data:`FORBIDDEN` that ``fn`` may run.
    """
    who = name or _name_of(fn)
    allow = tuple(allow)
    where = who if case is None else f"case {case!r}: {who}"

    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            with forbid(who, allow):
                return _result(fn(*args, **kwargs), where)
        except DelegationError as err:
            if case is None:
                raise
            raise DelegationError(f"case {case!r}: {err}") from None

    return call


def compare(
    name: str,
    fn: Callable,
    reference: Callable,
    args: Sequence[Any],
    case: str,
    *,
    allow: Iterable[str] = (),
    atol: float = 1e-6,
    rtol: float = 1e-5,
) -> None:
    """``check(name, fn(*args), reference(*args), case)``, the student's ``fn`` under the guard.

    The student's function runs first, on a deep copy of ``args`` (changing its inputs in place
    changes nothing the test uses), and its result is read under the guard; only then does the
    reference run, on the original ``args``: no answer exists anywhere while the student's code
    runs, and no profiler or tracer may be set when the reference runs (:func:`_refuse_tracers`).
    """
    got = student(fn, name=name, case=case, allow=allow)(*copy.deepcopy(tuple(args)))
    _refuse_tracers(case)
    expected = reference(*args)
    check(name, got, expected, case, atol=atol, rtol=rtol)


def gradients(
    name: str,
    fn: Callable,
    args: Sequence[Any],
    wrt: Sequence[int],
    case: str,
    *,
    allow: Iterable[str] = (),
) -> list:
    """The gradients of ``fn(*args).sum()`` w.r.t. ``args[i]`` for ``i`` in ``wrt``, by autograd.

    Those arguments are replaced by fresh leaf copies that require grad, the others by deep copies;
    the forward and the backward pass both run under the guard (a custom ``backward`` is student
    code too). An argument that gets no gradient (it does not flow into the result) gets zeros.
    Raises an ``AssertionError`` that says so when ``fn`` does not return a tensor, or returns one
    cut off from the graph (``.detach()``, ``.item()``, NumPy or ``torch.no_grad()``): the mistake
    a gradient test is there to catch. The caller computes the expected gradients afterwards.
    """
    import torch

    leaves = {i: args[i].detach().clone().requires_grad_(True) for i in wrt}
    args = [leaves[i] if i in leaves else copy.deepcopy(a) for i, a in enumerate(args)]
    where = f"case {case!r}: {name}"
    try:
        with forbid(name, allow):
            out = _result(fn(*args), where)
            if not isinstance(out, torch.Tensor):
                raise AssertionError(
                    f"{where} returned a {_kind(out)}, expected a torch.Tensor that gradients "
                    "flow through"
                )
            if not out.requires_grad:
                raise AssertionError(
                    f"{where} returned a tensor cut off from the graph: no gradient flows back to "
                    "its inputs. Keep the computation in torch, without .detach(), .item(), NumPy "
                    "or torch.no_grad()"
                )
            out.sum().backward()
            grads = [leaves[i].grad for i in wrt]
    except DelegationError as err:
        raise DelegationError(f"case {case!r}: {err}") from None
    _refuse_tracers(case)
    return [torch.zeros_like(leaves[i]) if g is None else g for i, g in zip(wrt, grads, strict=True)]


# ------------------------------------------------------------------- the test cells' own checks
#
# Checks that a test cell would otherwise define itself: here, a solution cell cannot rebind what
# they use (the notebook's names are not read), and each takes the student's function as an
# argument. They run the student's function first and compute the expected answer afterwards.

GRPO_PROVIDED = ("rlcourse.objectives.importance_weights", "rlcourse.objectives.clipped_surrogate")
"""What ex6's setup cell gives its students from Exercise 5: ``grpo_loss`` may use rlcourse's own."""


def compare_polyak(polyak_update: Callable, make_net: Callable, rho: float, seed: int, case: str) -> None:
    """ex2: ``polyak_update(target, online, rho)`` (in place) against the course's version on copies
    of the same networks; the online network must not change."""
    import torch

    from rlcourse.nets import polyak_update as reference_polyak_update

    torch.manual_seed(seed)
    target, online = make_net(), make_net()
    target_before, online_before = copy.deepcopy(target), copy.deepcopy(online)
    names = [name for name, _ in target_before.named_parameters()]
    params = torch.nn.Module.parameters

    def graded(target: Any, online: Any, rho: float) -> tuple:  # the parameters read under the guard
        polyak_update(target, online, rho)
        return tuple(p.detach().clone() for p in params(target)), tuple(p.detach().clone() for p in params(online))

    got_target, got_online = student(graded, name=_name_of(polyak_update), case=case)(target, online, rho)
    _refuse_tracers(case)
    expected = copy.deepcopy(target_before)
    reference_polyak_update(expected, copy.deepcopy(online_before), rho)
    pairs = zip(names, got_target, expected.parameters(), strict=True)
    for name, got, want in pairs:
        check(f"the target's {name} after polyak_update", got, want, case)
    for name, got, want in zip(names, got_online, online_before.parameters(), strict=True):
        check(f"the online network's {name} (must not change)", got, want, case)


def compare_soft_values(soft_values: Callable, mdp: Any, pi: Any, lam: float, case: str) -> None:
    """ex3: ``soft_values(P, R, gamma, pi, lam)`` against ``mdp.soft_values(pi, lam)``."""
    args = copy.deepcopy((mdp.P, mdp.R, mdp.gamma, pi, lam))
    result = student(soft_values, case=case)(*args)
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise AssertionError(f"case {case!r}: soft_values must return a pair (q, v)")
    _refuse_tracers(case)
    want_q, want_v = mdp.soft_values(pi, lam)
    check("q (the first result of soft_values)", result[0], want_q, case)
    check("v (the second result of soft_values)", result[1], want_v, case)


def check_ratio_gradient(importance_weights: Callable, new: Any, old: Any, case: str) -> None:
    """ex5: the gradient of ``sum(importance_weights(new, old))``: omega w.r.t. new, 0 w.r.t. old."""
    import torch

    d_new, d_old = gradients("importance_weights", importance_weights, (new, old), (0, 1), case)
    check("the gradient of sum(omega) w.r.t. log_prob_new", d_new, torch.exp(new - old), case)
    check("the gradient w.r.t. log_prob_old (the data's policy is a constant: detach it)", d_old,
          torch.zeros_like(old), case)


def clip_gradient(ratio: Any, advantages: Any, eps: float) -> tuple:
    """d min(ratio A, clip(ratio, 1 - eps, 1 + eps) A) / d ratio from the definition (off the
    kinks), and where it is flat: past 1 + eps with A > 0, below 1 - eps with A < 0."""
    import torch

    flat = ((ratio > 1 + eps) & (advantages > 0)) | ((ratio < 1 - eps) & (advantages < 0))
    return torch.where(flat, torch.zeros_like(ratio), advantages), flat


def check_clip_gradient(clipped_surrogate: Callable, ratio: Any, advantages: Any, eps: float, case: str) -> None:
    """ex5: the gradient of the summed clipped surrogate w.r.t. the ratios (exactly 0 where the
    objective is flat) and w.r.t. the advantages (0: detached inside the function)."""
    import torch

    case += f", eps={eps}"
    args = ratio, advantages, eps
    d_ratio, d_advantages = gradients("clipped_surrogate", clipped_surrogate, args, (0, 1), case)
    want, flat = clip_gradient(ratio, advantages, eps)
    check("the gradient w.r.t. ratio", d_ratio, want, case)
    flat_is_flat = "the gradient w.r.t. ratio must be exactly 0 where the clipped objective is "
    flat_is_flat += "flat (the ratio is past the clip range in the direction A favours)"
    check_true((d_ratio[flat] == 0).all(), flat_is_flat, case)
    check("the gradient w.r.t. advantages (constants: detach the advantages inside the function)",
          d_advantages, torch.zeros_like(advantages), case)


def compare_surrogate(surrogate: Callable, mdp: Any, pi: Any, pi_new: Any, case: str) -> None:
    """ex5: ``surrogate(mdp, pi, pi_new)`` against ``mdp.surrogate(pi, pi_new)``."""
    got = student(surrogate, case=case)(*copy.deepcopy((mdp, pi, pi_new)))
    _refuse_tracers(case)
    check("surrogate", got, mdp.surrogate(pi, pi_new), case)


def check_k3_gradient(kl_k3: Callable, log_prob: Any, ref_log_prob: Any, case: str) -> None:
    """ex6: the gradient of the summed k3 estimates: 1 - r w.r.t. log_prob, 0 w.r.t. the reference."""
    import torch

    case += ", the gradient of the summed estimates"
    d_log_prob, d_ref = gradients("kl_k3", kl_k3, (log_prob, ref_log_prob), (0, 1), case)
    check("the gradient w.r.t. log_prob", d_log_prob, 1 - torch.exp(ref_log_prob - log_prob), case)
    check("the gradient w.r.t. ref_log_prob (the reference policy is fixed: detach it)", d_ref,
          torch.zeros_like(ref_log_prob), case)


def token_batch(seed: int, answers: int, length: int) -> tuple:
    """ex6: ``(new, old, ref, adv, mask, case)``, log-probabilities of padded answers' tokens."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    old = -2 * torch.rand(answers, length, generator=gen)
    new = old + 0.5 * torch.randn(answers, length, generator=gen)  # ratios inside and outside the clip range
    ref = old + 0.5 * torch.randn(answers, length, generator=gen)
    lengths = torch.randint(1, length + 1, (answers,), generator=gen)
    lengths[0] = length
    mask = (torch.arange(length) < lengths[:, None]).float()
    adv = torch.randn(answers, 1, generator=gen).expand(answers, length)
    return new, old, ref, adv, mask, f"seed {seed}: {answers} answers of {lengths.tolist()} tokens, padded to {length}"


def compare_grpo_loss(grpo_loss: Callable, batch: tuple, clip_eps: float, kl_coef: float) -> None:
    """ex6: ``grpo_loss`` against the course's, on a :func:`token_batch`."""
    from rlcourse.algos.grpo import grpo_loss as reference_grpo_loss

    *tensors, case = batch
    case += f", clip_eps={clip_eps}, kl_coef={kl_coef}"
    args = (*tensors, clip_eps, kl_coef)
    got = student(grpo_loss, case=case, allow=GRPO_PROVIDED)(*copy.deepcopy(args))
    _refuse_tracers(case)
    check("grpo_loss", got, reference_grpo_loss(*args)[0], case)


def grpo_gradient(new: Any, old: Any, ref: Any, adv: Any, mask: Any, clip_eps: float, kl_coef: float) -> tuple:
    """d loss / d log_prob of every token: -1 / (N |o_i|) times d/d log_prob of the token's
    objective, rho A (0 where the clipped objective is flat) - kl_coef (1 - r), r = pi_ref / pi."""
    import torch

    rho, r = torch.exp(new - old), torch.exp(ref - new)
    flat = ((rho > 1 + clip_eps) & (adv > 0)) | ((rho < 1 - clip_eps) & (adv < 0))
    d_objective = torch.where(flat, torch.zeros_like(rho), rho * adv) - kl_coef * (1 - r)
    weight = mask / mask.sum(dim=1, keepdim=True) / mask.shape[0]
    return -weight * d_objective, flat & (mask > 0)


def check_grpo_gradient(grpo_loss: Callable, batch: tuple, clip_eps: float, kl_coef: float) -> None:
    """ex6: the gradient of ``grpo_loss`` w.r.t. log_prob, from the definition: exactly 0 where the
    clipped objective is flat (without the KL term) and on padding."""
    *tensors, case = batch
    case += f", clip_eps={clip_eps}, kl_coef={kl_coef}"
    args = (*tensors, clip_eps, kl_coef)
    (got,) = gradients("grpo_loss", grpo_loss, args, (0,), case, allow=GRPO_PROVIDED)
    want, flat = grpo_gradient(*args)
    mask = args[4]
    check("the gradient of grpo_loss w.r.t. log_prob", got, want, case)
    check_true((got[mask == 0] == 0).all(), "padding tokens must get no gradient (mask them)", case)
    if kl_coef == 0:
        check_true((got[flat] == 0).all(),
                   "the gradient must be exactly 0 where the clipped objective is "
                   "flat (the ratio is past the clip range in the direction A favours)", case)
