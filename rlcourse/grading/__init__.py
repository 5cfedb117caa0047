"""Helpers of the graded exercises in ``notebooks/exercises``: feedback that says what is wrong,
test cases, and the guard that keeps graded code from running the package's own answers.

==================  ===========================================================================
module              what it holds
==================  ===========================================================================
:mod:`~.checks`     :func:`check`, :func:`check_true`, :func:`to_numpy`: the failure messages
:mod:`~.cases`      :func:`rollout` (ex1), :func:`token_batch` (ex6): the test cases' inputs
:mod:`~.forbidden`  :data:`FORBIDDEN`, and how the guard knows it: files, fingerprints
:mod:`~.guard`      :class:`forbid`, :class:`DelegationError`: the profiler and the snapshot
:mod:`~.calls`      :func:`student`, :func:`compare`, :func:`gradients`: a student's call, guarded
:mod:`~.cells`      the test cells' own checks (``compare_polyak`` ...) and ex2's reference
==================  ===========================================================================

The exercises' test cells compare a student's function with the package's reference on seeded
random inputs and on edge cases. A bare ``assert`` would tell a student only *that* something is
wrong; the test cells call :func:`check` instead, which says *which case* failed and *where*::

    AssertionError: case 'one stream, terminated at t=[2], truncated at t=[4] (still bootstraps),
    gamma=0.9': td_errors is wrong at 1 of 6 entries, first at index (2,): expected 0.5, got 1.31
      expected [1.4, 0.35, 0.5, 1.07, 0.92, 1.14]
      got      [1.4, 0.35, 1.31, 1.07, 0.92, 1.14]

A case's name carries the hint (an episode that ends inside the rollout, a time-limit truncation, a
group whose rewards are all equal, a ratio outside the clip range...), so the message points at the
idea the student missed without showing the answer's code.

Importing this package does not import torch: the importance-sampling exercise runs without it.

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
The names the tests look up, in this package and in every module of it, are snapshotted when a
guard opens and put back when it closes.

Used by ``notebooks/exercises/source/*/*.ipynb``, which import every name from here;
``notebooks/exercises/README.md`` describes the course. This file only re-exports.
"""

from __future__ import annotations

from rlcourse.grading.calls import compare, gradients, student
from rlcourse.grading.cases import describe_episode_ends, rollout, token_batch
from rlcourse.grading.cells import (
    GRPO_PROVIDED,
    check_clip_gradient,
    check_grpo_gradient,
    check_k3_gradient,
    check_ratio_gradient,
    clip_gradient,
    compare_grpo_loss,
    compare_polyak,
    compare_soft_values,
    compare_surrogate,
    grpo_gradient,
    reference_smoothed_action,
)
from rlcourse.grading.checks import SHOW_ALL, check, check_true, to_numpy
from rlcourse.grading.forbidden import FORBIDDEN, MIN_FINGERPRINT
from rlcourse.grading.forbidden import _judge as _judge  # for tests/test_grading_guard.py
from rlcourse.grading.forbidden import _print as _print
from rlcourse.grading.guard import (
    GRADING_MODULES,
    STARTERS,
    TRACER_ACTIVE,
    DelegationError,
    forbid,
)
from rlcourse.grading.guard import _is_watched as _is_watched

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
    "clip_gradient",
    "grpo_gradient",
    "GRADING_MODULES",
    "MIN_FINGERPRINT",
    "SHOW_ALL",
    "STARTERS",
]
