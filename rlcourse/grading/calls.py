"""Calling a student's function under the guard: :func:`student`, :func:`compare`,
:func:`gradients`. Test cells never call a student's function directly.

The student's function runs first, on deep copies of the inputs, under
:class:`~rlcourse.grading.guard.forbid`; what it returns is read there as plain data
(:func:`_result`); only then does the reference run, outside the guard, with no profiler or tracer
set. Importing this module does not import torch.
"""

from __future__ import annotations

import copy
import sys
import types
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from rlcourse.grading.checks import _kind, check
from rlcourse.grading.guard import DelegationError, _refuse_tracers, forbid

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
        f"{where} returned a {_kind(x)}, which is not a number, an array, a tensor or a tuple of "
        "them"
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
    return [
        torch.zeros_like(leaves[i]) if g is None else g for i, g in zip(wrt, grads, strict=True)
    ]
