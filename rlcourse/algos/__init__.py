"""One module per algorithm, each fulfilling the same contract; the registry of all nine.

The contract of an algorithm module (``tests/test_contract.py`` checks it for all nine; the command
line, the checkpoints, the summary table and the overview notebook rely on it):

``NAME: str``
    The name on the command line and in checkpoints (``"a2c"``), the key of :data:`ALL_ALGORITHMS`.
``SUMMARY: str``
    One line for ``rlcourse list``.
``CLASS: str``, ``ON_POLICY: bool``, ``REFERENCE: str``
    The slides' summary table: the algorithm's class, whether it is on-policy (in its single-epoch
    version), and its paper as ``'Authors (year), "title"'`` (:mod:`rlcourse.catalog`).
``Config``
    A dataclass of the hyperparameters, the slide's symbols in the help texts: every field is made
    by :func:`rlcourse.config.param` (a default of type bool, int, float, str or tuple, and a
    ``help`` text, which ``rlcourse train ALGO -h`` prints); ``seed`` and ``device`` among them.
    ``Config()`` works, and a bad value raises a ``ValueError`` that names it.
``PRESETS: dict[str, Config]``
    Tuned configurations: by environment id (the one ``rlcourse train ALGO --env ID`` starts
    from), GRPO's by method (``grpo``, ``rloo``, ``ppo``, all on its task).
``SLIDE: Config``
    The slide box literally (sums, no advantage normalisation, no gradient clipping, ...); its
    docstring says what differs from the defaults and why.
``make_agent(config, env_id) -> Agent``
    The untrained :class:`~rlcourse.training.Agent` (``algo == NAME``); a ``ValueError`` naming
    what is not supported if the algorithm cannot handle ``env_id``. :func:`rlcourse.training.
    load_checkpoint` rebuilds an agent with it and loads the saved weights into ``agent.modules()``.
``train(...) -> (agent, History)``
    ``train(env_id, config=None, progress=True, *, out=None, save_every=60.0, resume=False,
    **overrides)`` for the eight gymnasium algorithms (``config`` defaults to the preset for
    ``env_id``; ``overrides`` replace single fields). With ``out``, the run is saved to that folder
    every ``save_every`` seconds and ``resume=True`` continues it exactly
    (:class:`rlcourse.saving.RunKeeper`, which every loop hands its state). Ctrl-C, SIGTERM or
    SIGHUP inside raises :class:`~rlcourse.training.TrainingInterrupted` carrying the history and
    the agent so far; NaN or inf raises :class:`~rlcourse.training.NonFiniteError`.

GRPO trains a language model on :mod:`rlcourse.qa`'s question-answer task, not on a gymnasium
environment, and differs in three declared places: ``grpo.TASK`` (``"ArithmeticTask"``) is the only
env id its ``make_agent`` accepts; its ``train(config=None, reference=None, progress=True, *,
out=None, save_every=60.0, resume=False, **overrides)`` returns the trained policy rather than the
agent (notebook 08 and the graded exercises call it so); ``grpo.evaluate(agent)`` scores held-out
questions, where :func:`rlcourse.training.evaluate` runs gymnasium episodes. :func:`train_agent` and
:func:`evaluate_agent` are the one place that knows it.

:data:`ALGORITHMS` holds the eight that train on a gymnasium environment, in the order of the
slides' summary table; :data:`ALL_ALGORITHMS` adds GRPO, the table's last row.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from rlcourse.algos import a2c, ddpg, dqn, grpo, ppo, reinforce, sac, td3, trpo
from rlcourse.training import Agent, History, evaluate, register_algorithms

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
ALL_ALGORITHMS: dict[str, ModuleType] = {**ALGORITHMS, "grpo": grpo}

__all__ = ["ALGORITHMS", "ALL_ALGORITHMS", "get_algorithm", "train_agent", "evaluate_agent"]


def get_algorithm(name: str) -> ModuleType:
    """The algorithm module called ``name``, with a clear error listing the known ones."""
    try:
        return ALL_ALGORITHMS[name.lower()]
    except KeyError:
        allowed = ", ".join(ALL_ALGORITHMS)
        raise ValueError(f"unknown algorithm {name!r}: allowed are {allowed}") from None


def train_agent(
    module: ModuleType, env_id: str, config: Any, progress: bool = True, **saving: Any
) -> tuple[Agent, History]:
    """Train ``module`` on ``env_id`` with ``config``; return the agent and its history (what
    ``rlcourse train`` saves). ``saving``: ``out``, ``save_every``, ``resume`` of every ``train``
    (:mod:`rlcourse.saving`). GRPO's environment is its config's task, and its trained policy is
    put in the agent :func:`grpo.make_agent` builds."""
    if module is grpo:
        agent = grpo.make_agent(config, env_id)  # refuses anything but grpo.TASK
        agent.policy, history = grpo.train(config, progress=progress, **saving)
        return agent, history
    return module.train(env_id, config, progress=progress, **saving)


def evaluate_agent(agent: Agent, episodes: int = 10, seed: int = 10_000, greedy: bool = True):
    """The returns of ``episodes`` evaluation episodes of a trained agent (``rlcourse evaluate``):
    gymnasium episodes, or for GRPO the first ``episodes`` held-out questions (1 right, 0 wrong;
    greedy answers, so ``seed`` and ``greedy`` do not apply)."""
    if agent.algo == grpo.NAME:
        return np.asarray(grpo.evaluate(agent, episodes))
    return evaluate(agent, episodes=episodes, seed=seed, greedy=greedy)


# rlcourse.training.load_checkpoint finds the algorithm of a checkpoint here (training is a floor
# down and never imports an algorithm module).
register_algorithms(get_algorithm)
