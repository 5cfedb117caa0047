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
    "rlcourse.grading": ("reference_smoothed_action",),  # ex2's reference
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


_THREAD = "started a thread, which the guard cannot watch"
_PROCESS = "started a process, which the guard cannot watch"


def _watched_builtins() -> dict[int, tuple[Any, str]]:
    """``{id: (builtin, what calling it does)}``: C functions graded code may not call.

    A thread or a process would run outside the profiler, which watches one thread; changing the
    profiler would switch the guard off.
    """
    import _thread

    setprofile = "called sys.setprofile, which would switch the guard off"
    found = {id(sys.setprofile): (sys.setprofile, setprofile)}
    for module, names, what in (
        (_thread, ("start_new_thread", "start_joinable_thread"), _THREAD),
        (os, ("fork", "forkpty", "system", "posix_spawn", "posix_spawnp"), _PROCESS),
    ):
        for name in names:
            function = getattr(module, name, None)
            if function is not None:
                found[id(function)] = (function, what)
    try:
        import _posixsubprocess  # what subprocess and multiprocessing start processes with

        found[id(_posixsubprocess.fork_exec)] = (_posixsubprocess.fork_exec, _PROCESS)
    except ImportError:  # not on Windows
        pass
    return found


_WATCHED = _watched_builtins()


def _fingerprint(code: types.CodeType) -> tuple:
    """What a copy compiled from the same source shares with the original: its instructions and
    their arguments (names, local variables, constants, nested functions), jumps as indices.

    Not the file, the line numbers, the function's own name or its docstring; nor how a call of a
    module's attribute was compiled (``torch.exp(x)`` gives other instructions when the compiler saw
    ``import torch`` in the same source, as in a module, than in a function compiled on its own).
    """
    import dis

    instructions = list(dis.get_instructions(code))
    index = {ins.offset: i for i, ins in enumerate(instructions)}
    jumps = set(dis.hasjrel) | set(dis.hasjabs)
    out = []
    for ins in instructions:
        name = "LOAD_ATTR" if ins.opname == "LOAD_METHOD" else ins.opname
        if ins.opcode in jumps:
            arg: Any = index.get(ins.argval, ins.argval)
        elif isinstance(ins.argval, types.CodeType):
            arg = _fingerprint(ins.argval)
        else:
            arg = (type(ins.argval).__name__, repr(ins.argval))
        out.append((name, arg))
    return tuple(out)


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
                    self.prints.setdefault(_fingerprint(code), (module, qualname))
                else:
                    complete = False  # still being imported: read it again later
            if complete:
                self.done.add(module)
                self.version += 1


_TABLE = _Table()
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
    else:
        found = _TABLE.prints.get(_fingerprint(code))
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


class forbid:  # noqa: N801 (a context manager, used like a function: `with forbid("gae"):`)
    """While the ``with`` block runs, a call of a :data:`FORBIDDEN` function fails.

    ``with forbid("gae"): result = gae(...)``. A profiler (``sys.setprofile``) sees every Python
    call in this thread; a call of forbidden code (:func:`_judge`) raises ``DelegationError("gae
    called rlcourse's own gae (rlcourse.advantages): write it yourself")`` at once, so the reference
    does not run. Python removes a profiler that raises, so the failure is also recorded and the
    block's end raises it again: a student's ``try/except`` around the call cannot hide it. Refused
    as well, since they would blind the guard: starting a thread or a process, and calling
    ``sys.setprofile``. A block that returns with the profiler gone (removed another way) fails too.
    The previous profiler is restored in every case; when nothing was refused, an exception of the
    block propagates unchanged.

    ``allow``: qualified names from :data:`FORBIDDEN` the block may run (ex6 gives its students
    ``rlcourse.objectives.importance_weights`` and ``clipped_surrogate``). A guard inside a guard
    (same thread) changes nothing: the outer one watches, with its own rules.

    It costs one Python call per function call (and per C call) of the block; graded functions are
    small (0.1 ms on a GAE of 12 steps). It is no sandbox: code that edits this module's state,
    patches the references or ``check`` before the tests run, or calls ``ctypes`` is not stopped,
    and threads started before the block are not watched.
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
        judge, watched, allowed = _judge, _WATCHED, self.allowed

        def profile(frame: types.FrameType, event: str, arg: Any) -> None:
            if event == "call":
                found = judge(frame.f_code)
                if found is not None and found[1:] not in allowed:
                    how, module, qualname = found
                    self._fail(f"{how} rlcourse's own {qualname} ({module}): write it yourself")
            elif event == "c_call" and id(arg) in watched and not self.closing:
                self._fail(f"{watched[id(arg)][1]}: not allowed while it is graded")

        return profile

    def __enter__(self) -> forbid:
        self.outer = getattr(_LOCAL, "guard", None)
        if self.outer is not None:
            return self
        _TABLE.refresh()
        self.previous = _GETPROFILE()
        self.profile = self._profiler()
        _LOCAL.guard = self
        _SETPROFILE(self.profile)
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if self.outer is not None:
            return False
        self.closing = True  # our own sys.setprofile below is no violation
        current = _GETPROFILE()
        _SETPROFILE(self.previous)
        _LOCAL.guard = None
        if self.problem is not None:
            if isinstance(exc, DelegationError) and str(exc) == self.problem:
                return False
            raise DelegationError(self.problem) from None
        # Judged only when the block returns normally: an exception fails the test anyway, and an
        # interrupt (the cell's time limit) that lands inside the profiler removes it too.
        if current is not self.profile and exc is None:
            raise DelegationError(
                f"{self.who} removed or replaced the profiler that watches for rlcourse's own "
                "functions: not allowed while it is graded"
            ) from None
        return False


def _plain(x: Any, depth: int = 0) -> Any:
    """``x`` without code of its own: tuples and lists rebuilt, tensor and array subclasses as their
    base class.

    Called under the guard on what a student's function returned, so that a lazy object (whose
    ``__iter__`` or ``__torch_function__`` would compute the answer later, when the test reads it
    outside the guard) is read while the guard still watches.
    """
    if isinstance(x, (tuple, list)) and depth < 4:
        items = [_plain(item, depth + 1) for item in x]
        return tuple(items) if isinstance(x, tuple) else items
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return x if type(x) in (torch.Tensor, torch.nn.Parameter) else x.as_subclass(torch.Tensor)
    if isinstance(x, np.ndarray) and type(x) is not np.ndarray:
        return x.view(np.ndarray)
    return x


def _name_of(fn: Any) -> str:
    # A function's __name__ is a plain attribute; another object's could be a property running code.
    return fn.__name__ if isinstance(fn, types.FunctionType) else f"your {type(fn).__name__}"


def student(
    fn: Callable, *, name: str | None = None, case: str | None = None, allow: Iterable[str] = ()
) -> Callable:
    """``fn`` (a student's function) wrapped: every call runs under :class:`forbid`.

    ``student(gae)(rewards, ...)`` returns what ``gae`` returns (read under the guard, see
    :func:`_plain`), or raises :class:`DelegationError` if ``gae`` reached a forbidden function;
    with ``case``, its message starts ``case '<case>':`` as :func:`check`'s do. Exceptions of ``fn``
    propagate.

    Args:
        fn: the student's function.
        name: how messages call it (default: its ``__name__``).
        case: the test case, for the message.
        allow: names of :data:`FORBIDDEN` that ``fn`` may run.
    """
    who = name or _name_of(fn)
    allow = tuple(allow)

    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            with forbid(who, allow):
                return _plain(fn(*args, **kwargs))
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

    The reference runs first, outside the guard: a student's function that changes its inputs in
    place cannot change what it is compared with.
    """
    expected = reference(*args)
    got = student(fn, name=name, case=case, allow=allow)(*args)
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

    Those arguments are replaced by fresh leaf copies that require grad; the forward and the
    backward pass both run under the guard (a custom ``backward`` is student code too). An argument
    that gets no gradient (it does not flow into the result) gets zeros. Raises an
    ``AssertionError`` that says so when ``fn`` does not return a tensor, or returns one cut off
    from the graph (``.detach()``, ``.item()``, NumPy or ``torch.no_grad()``): the mistake a
    gradient test is there to catch.
    """
    import torch

    args = list(args)
    leaves = {i: args[i].detach().clone().requires_grad_(True) for i in wrt}
    for i, leaf in leaves.items():
        args[i] = leaf
    where = f"case {case!r}: {name}"
    try:
        with forbid(name, allow):
            out = _plain(fn(*args))
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
    except DelegationError as err:
        raise DelegationError(f"case {case!r}: {err}") from None
    return [torch.zeros_like(leaves[i]) if leaves[i].grad is None else leaves[i].grad for i in wrt]
