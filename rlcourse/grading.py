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

Used by ``notebooks/exercises/source/*/*.ipynb``; ``notebooks/exercises/README.md`` describes the course.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

__all__ = ["check", "check_true", "rollout", "describe_episode_ends", "reference_smoothed_action", "to_numpy"]

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
        g = to_numpy(got)
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
