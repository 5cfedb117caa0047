"""What graded code may not run (:data:`FORBIDDEN`), and how the guard recognises it.

A function of the package is known by its file and qualified name (:func:`_judge`), however it was
reached; a copy compiled from the same source elsewhere is known by its instructions
(:func:`_fingerprint`). :mod:`rlcourse.grading.guard` asks :func:`_judge` about every call it sees.

Importing this module imports nothing of the package and no torch: the fingerprints of a module's
forbidden functions are read once that module has been imported (:class:`_Table`).
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Iterable
from typing import Any

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
    # ex2's reference, and the test cells' checks (they run references)
    "rlcourse.grading.cells": (
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

# rlcourse/, the directory of the package's modules: forbidden code is known by its file (and its
# qualified name), not by a name that a student could rebind
_HERE = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


def _source_file(module: str) -> str:
    """The file of ``module`` ("rlcourse.x.y"), read from the path alone: nothing is imported."""
    path = os.path.join(_HERE, *module.split(".")[1:])
    path = os.path.join(path, "__init__.py") if os.path.isdir(path) else path + ".py"
    return os.path.normcase(path)


_FILES = {_source_file(module): (module, frozenset(names)) for module, names in FORBIDDEN.items()}


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
    if len(fingerprint) >= MIN_FINGERPRINT:
        return fingerprint
    return ("named", _fingerprint(code, False))


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
