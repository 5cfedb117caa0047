"""One module per algorithm; each has ``Config``, ``PRESETS``, ``make_agent`` and ``train``.

:data:`ALGORITHMS` holds those that train on a gymnasium environment (and so on the command line). GRPO,
the summary table's last row, trains a language model on :mod:`rlcourse.qa`'s question-answer task:
:mod:`rlcourse.algos.grpo` has ``Config``, ``PRESETS`` and ``train(config, reference)`` of its own.
"""

from __future__ import annotations

from types import ModuleType

from rlcourse.algos import a2c, ddpg, dqn, ppo, reinforce, sac, td3, trpo
from rlcourse.training import register_algorithms

# In the order of the slides' summary table.
ALGORITHMS: dict[str, ModuleType] = {
    "dqn": dqn,
    "reinforce": reinforce,
    "a2c": a2c,
    "ddpg": ddpg,
    "td3": td3,
    "sac": sac,
    "trpo": trpo,
    "ppo": ppo,
}

__all__ = ["ALGORITHMS", "get_algorithm"]


def get_algorithm(name: str) -> ModuleType:
    """The algorithm module called ``name``, with a clear error listing the known ones."""
    try:
        return ALGORITHMS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown algorithm {name!r}: allowed are {', '.join(ALGORITHMS)}") from None


# rlcourse.training.load_checkpoint finds the algorithm of a checkpoint here (training is a floor
# down and never imports an algorithm module).
register_algorithms(get_algorithm)
