"""Helpers for the algorithms' config dataclasses: documented fields and checks with clear messages.

Each algorithm's ``Config`` is a dataclass whose fields are declared with :func:`param`, which
stores a help text (shown by ``rlcourse train ALGO --help``) next to the default, and checks its
values in ``__post_init__`` with the ``check_*`` functions below. A message names the parameter,
the value given and what is allowed.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import numbers
from typing import Any

__all__ = [
    "param",
    "check_unit_interval",
    "check_positive",
    "check_choice",
    "check_device",
    "check_seed",
    "check_bool",
    "check_number",
    "check_layers",
    "replace",
    "training_config",
    "from_dict",
    "to_dict",
]


def param(default: Any, help: str) -> Any:  # noqa: A002 - mirrors argparse's name
    """A dataclass field with a default and a help text."""
    if isinstance(default, (list, dict)):
        return dataclasses.field(
            default_factory=lambda: copy.deepcopy(default), metadata={"help": help}
        )
    return dataclasses.field(default=default, metadata={"help": help})


def _fail(name: str, value: Any, allowed: str) -> None:
    raise ValueError(f"{name}={value!r} is not allowed: {name} must be {allowed}")


def _number(name: str, value: Any) -> float:
    # numbers.Real also admits NumPy scalars such as np.float32(0.9) from a sweep over np.linspace.
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        _fail(name, value, "a number")
    return float(value)


def check_unit_interval(name: str, value: Any) -> None:
    """``value`` must be a number in [0, 1] (gamma, lambda, ...)."""
    v = _number(name, value)
    if not 0.0 <= v <= 1.0:
        _fail(name, value, "in [0, 1]")


def check_positive(
    name: str, value: Any, integer: bool = False, zero_ok: bool = False, inf_ok: bool = False
) -> None:
    """``value`` must be > 0 (or >= 0 with ``zero_ok``), a whole number if ``integer``, finite
    unless ``inf_ok``."""
    if integer and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
        _fail(name, value, "a whole number")
    v = _number(name, value)
    if math.isnan(v) or (math.isinf(v) and not (inf_ok and v > 0)):
        _fail(name, value, "a finite number" + (" or inf" if inf_ok else ""))
    if v < 0 or (v == 0 and not zero_ok):
        _fail(name, value, "at least 0" if zero_ok else "positive")


def check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        _fail(name, value, "True or False")


def check_number(name: str, value: Any) -> None:
    """Any finite number (e.g. an initial log standard deviation)."""
    if not math.isfinite(_number(name, value)):
        _fail(name, value, "a finite number")


def check_seed(value: Any) -> None:
    """A seed is a whole number in [0, 2**32)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value < 2**32:
        _fail("seed", value, "a whole number in [0, 2**32)")


def check_layers(name: str, value: Any) -> None:
    """Hidden layer sizes: a non-empty tuple or list of positive whole numbers."""
    ok = isinstance(value, (tuple, list)) and len(value) > 0
    ok = ok and all(
        isinstance(h, numbers.Integral) and not isinstance(h, bool) and h > 0 for h in value
    )
    if not ok:
        _fail(name, value, "a non-empty list of positive layer sizes, e.g. (64, 64)")


def check_choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        _fail(name, value, "one of " + ", ".join(repr(c) for c in choices))


def check_device(value: Any) -> None:
    """``device`` must be ``cpu`` or ``cuda`` (``cuda:N``), and CUDA must be there if asked for."""
    import torch

    if not isinstance(value, str) or not (value == "cpu" or value.split(":")[0] == "cuda"):
        _fail("device", value, "'cpu' or 'cuda'")
    if value.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"device={value!r} is not available: this machine has no CUDA GPU; use device='cpu'"
        )


def check_field_types(config: Any) -> None:
    """Every field must have its default's type: a whole number where the default is one, a number
    (not nan) where it is a float, True or False, a string, a tuple of layer sizes. The range checks
    come after, in each ``Config``; this catches ``gamma="0.99"`` or ``epochs=2.5`` with a message
    naming the field."""
    for f in dataclasses.fields(config):
        value, default = getattr(config, f.name), f.default
        if isinstance(default, bool):
            check_bool(f.name, value)
        elif isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                _fail(f.name, value, "a whole number")
        elif isinstance(default, float):
            if math.isnan(_number(f.name, value)):
                _fail(f.name, value, "a number, not nan")
        elif isinstance(default, str) and not isinstance(value, str):
            _fail(f.name, value, "a string")
        elif isinstance(default, tuple):
            check_layers(f.name, value)


def replace(config: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` with a clear error for a misspelt field name."""
    names = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(changes) - names)
    if unknown:
        raise ValueError(
            f"{type(config).__module__.split('.')[-1]} has no hyperparameter {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(names))}"
        )
    return dataclasses.replace(config, **changes)


def training_config(
    cls: type, presets: dict[str, Any], env_id: Any, config: Any, overrides: dict[str, Any]
) -> Any:
    """The config a ``train(env_id, config, **overrides)`` call runs with: ``config``, or the preset
    for ``env_id``, or ``cls()``, with ``overrides`` replacing single fields. A clear
    ``TypeError`` for an environment object where its id is expected, and for a config of another
    kind (a dict, another algorithm's ``Config``)."""
    if not isinstance(env_id, str):
        spec = getattr(env_id, "spec", None)
        hint = f"; this one is {spec.id!r}" if getattr(spec, "id", None) else ""
        raise TypeError(
            f"train expects an environment id such as 'CartPole-v1', not a "
            f"{type(env_id).__name__} object{hint}: rlcourse makes its own copies of the "
            "environment from the id"
        )
    algo = cls.__module__.split(".")[-1]
    if config is not None and not isinstance(config, cls):
        if isinstance(config, dict):
            raise TypeError(
                f"config must be a {algo}.Config, not a dict: pass {algo}.Config(**values), or "
                "the values themselves as keyword arguments of train"
            )
        raise TypeError(
            f"config must be a {algo}.Config, not a {type(config).__module__}."
            f"{type(config).__qualname__}: each algorithm has its own hyperparameters"
        )
    return replace(config or presets.get(env_id, cls()), **overrides)


def to_dict(config: Any) -> dict[str, Any]:
    """Plain JSON-able dict (tuples become lists)."""
    return {
        k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()
    }


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a config from :func:`to_dict`'s output, turning lists back into tuples."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown hyperparameters for {cls.__module__}: {', '.join(unknown)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
