"""Feedback that says what is wrong: :func:`check` compares a student's result with the reference's
and names the case, the entry and both values; :func:`check_true` states a property.

Importing this module does not import torch: a tensor can exist only once torch was imported.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from rlcourse.grading.guard import DelegationError, forbid

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
    return (
        t.__name__ if t.__module__ == "builtins" else f"{t.__module__.split('.')[0]}.{t.__name__}"
    )


def check(
    name: str, got: Any, expected: Any, case: str, atol: float = 1e-6, rtol: float = 1e-5
) -> None:
    """Raise an ``AssertionError`` that says what differs unless ``got`` matches ``expected``.

    ``expected`` comes from the package's reference; ``got`` from the student's function. Checked
    in this order, each with its own message: something was returned (not ``None``); a tensor where
    a tensor is expected (the callers backpropagate through it); the shape, exactly (no
    broadcasting: a ``(T, 1)`` against a ``(T,)`` is a bug); NaN or infinity where the reference is
    finite (a division by zero or an overflow); then the values, within ``atol + rtol |expected|``.
    Messages start with ``case <case>:``.

    Args:
        name: what is checked, as the student knows it (a function's name, "the gradient w.r.t.
            ...").
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
            f"{where} returned a {_kind(got)}, expected a torch.Tensor (keep the computation in "
            "torch, so that gradients can flow through it)"
        )
    try:
        with forbid(f"the value checked as {name}"):  # a lazy result would compute itself here
            g = to_numpy(got)
    except DelegationError as err:
        raise DelegationError(f"case {case!r}: {err}") from None
    except (TypeError, ValueError) as err:
        raise AssertionError(
            f"{where} returned a {_kind(got)}, which is not a number or an array ({err})"
        ) from None
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
            at = (
                f" at index {first} ({int(bad.sum())} of {e.size} entries are not finite)"
                if e.ndim
                else ""
            )
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
    """Raise ``AssertionError("case <case>: <message>")`` unless ``condition`` holds (a property,
    not a value)."""
    if not bool(condition):
        raise AssertionError(f"case {case!r}: {message}")
