"""Every training budget of the course in one place: the full one and the fast one, with why.

One environment variable shrinks every training budget, so that the whole sequence of notebooks
runs in the test suite in minutes while, without it, each notebook's demos still finish in class
time. That variable is ``RLCOURSE_FAST``, read here once, when this module is imported: ``"1"``
picks the fast budgets (the test suite sets it), ``"0"``, empty or unset the full ones; anything
else is an error, so a typo cannot silently train the full budgets in a test run.

A budget is a :class:`Budget`: the full value, the fast value and one line on why. Its name says
who reads it:

- ``"NN/name"``: lecture notebook ``NN`` (``notebooks/NN_*.ipynb``), which shows them with
  ``BUDGETS = notebook_budgets("NN"); print(BUDGETS)`` and reads ``BUDGETS.name``; notebook 01's
  are named ``"01/<algo>/<env_id>"``, the defaults of its train view
  (:func:`rlcourse.widgets.overview.default_steps`), read as ``BUDGETS["a2c/CartPole-v1"]``;
- ``"figures/<algo>"``, ``"figures/seeds"``: ``python -m benchmarks figures``;
- ``"preset/<algo>/<env_id>"``: the budget of an algorithm's preset (``PRESETS[env_id]``;
  GRPO: ``"preset/grpo/<method>"``, in iterations). A preset is a fixed recipe, the same in both
  modes (the tests that train one pass their own ``total_steps``), so its fast value is its full
  one; ``tests/test_budgets.py`` checks each against the preset.

Measured times of the full budgets are not kept here: ``hub/results/measurements.json`` (made by
``hub/measure.py``) has each notebook's run time and slowest cell in full mode.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Budget",
    "BUDGETS",
    "FAST",
    "NotebookBudgets",
    "budget",
    "fast_mode",
    "notebook_budgets",
]


def fast_mode(value: str | None) -> bool:
    """Whether ``RLCOURSE_FAST=value`` asks for the fast budgets: ``"1"`` yes; ``"0"``, ``""`` or
    unset (``None``) no; any other value raises ``ValueError``."""
    if value is None or value in ("", "0"):
        return False
    if value == "1":
        return True
    raise ValueError(
        f"RLCOURSE_FAST={value!r} is not allowed: '1' (the fast budgets, as in the tests), "
        "'0' or unset (the full budgets)"
    )


FAST: bool = fast_mode(os.environ.get("RLCOURSE_FAST"))
"""True where ``RLCOURSE_FAST=1`` was set when the package was imported."""


@dataclass(frozen=True)
class Budget:
    """One budget: its value in full mode (class, figures), in fast mode (tests), and why."""

    full: Any
    fast: Any
    why: str

    def value(self, fast: bool | None = None) -> Any:
        """The value for ``fast`` (default: the current mode, :data:`FAST`); a copy, so that a
        caller may change the dict or list it gets."""
        return copy.deepcopy(self.fast if (FAST if fast is None else fast) else self.full)


def _same(value: Any, why: str) -> Budget:
    return Budget(value, value, why)


_PRESET = "the preset's budget, the same in both modes"
_VIEW = "the train view's default"

BUDGETS: dict[str, Budget] = {
    # -- notebook 01: the train view's defaults, also the two runs of the on-/off-policy cell
    "01/dqn/CartPole-v1": Budget(
        25_000, 2_000, f"{_VIEW}: half the preset (one gradient step per env step is slow)"
    ),
    "01/reinforce/CartPole-v1": Budget(300_000, 2_000, f"{_VIEW}: the preset, fast in wall time"),
    "01/a2c/CartPole-v1": Budget(150_000, 5_000, f"{_VIEW}: the preset, fast in wall time"),
    "01/ddpg/Pendulum-v1": Budget(10_000, 2_000, f"{_VIEW}: half the preset (slow in wall time)"),
    "01/td3/Pendulum-v1": Budget(12_000, 2_000, f"{_VIEW}: a part of the preset (slow)"),
    "01/sac/Pendulum-v1": Budget(10_000, 2_000, f"{_VIEW}: half the preset (slow in wall time)"),
    "01/sac/CartPole-v1": Budget(12_000, 2_000, f"{_VIEW}: a part of the preset (slow)"),
    "01/sac/InvertedPendulum-v5": Budget(7_500, 2_000, f"{_VIEW}: half the preset"),
    "01/trpo/CartPole-v1": Budget(100_000, 2_000, f"{_VIEW}: the preset, fast in wall time"),
    "01/ppo/CartPole-v1": Budget(100_000, 2_000, f"{_VIEW}: the preset, fast in wall time"),
    "01/ppo/Pendulum-v1": Budget(100_000, 2_000, f"{_VIEW}: the preset, fast in wall time"),
    "01/grpo/ArithmeticTask": Budget(
        25_600, 2_560, f"{_VIEW}, in answers: 100 iterations of 256 (fast: 10), after a warm start"
    ),
    # -- notebook 02: advantage estimation
    "02/gammas": Budget(
        [0.5, 0.7, 0.8, 0.9, 0.95, 0.99], [0.9, 0.99], "discount factors of the bias-variance grid"
    ),
    "02/lambdas": Budget(11, 6, "GAE lambdas from 0 to 1 in the bias-variance grid"),
    "02/critic_errors": Budget(
        [0.0, 0.05, 0.1, 0.2, 0.3, 0.5], [0.0, 0.2], "critic error scales of the grid"
    ),
    "02/episodes": Budget(4_000, 300, "sampled episodes per grid point: fewer, noisier variances"),
    "02/a2c_steps": Budget(150_000, 10_000, "A2C vs A2C + GAE on CartPole-v1: the A2C preset's"),
    "02/seeds": Budget([0, 1], [0], "seeds of the A2C comparison: two show the spread"),
    "02/reinforce_steps": Budget(
        200_000, 6_000, "REINFORCE with and without a baseline on CartPole-v1, each run"
    ),
    "02/reinforce_seeds": Budget([0, 1, 2, 3], [0], "seeds of the REINFORCE comparison"),
    # -- notebook 03: deterministic policy gradients
    "03/episodes": Budget(20_000, 2_000, "LQ episodes of the sampled DPG estimate"),
    "03/horizon": Budget(150, 100, "steps per LQ episode: gamma^150 is negligible at 0.9"),
    "03/ddpg_td3": Budget(
        dict(total_steps=6_000, hidden=(64, 64)),
        dict(total_steps=1_500, learning_starts=500, hidden=(32, 32)),
        "every DDPG and TD3 run on Pendulum-v1: six variants must fit class time",
    ),
    "03/measure_episodes": Budget(5, 2, "episodes of each critic's overestimation measurement"),
    # -- notebook 04: soft value functions
    "04/episodes": Budget(20_000, 2_000, "episodes of the sampled soft value"),
    "04/horizon": Budget(150, 120, "steps per episode: gamma^150 is negligible at 0.9"),
    "04/sac": Budget(
        dict(total_steps=6_000, learning_starts=1_000, hidden=(64, 64)),
        dict(total_steps=1_500, learning_starts=500, hidden=(32, 32)),
        "both SAC runs on Pendulum-v1 (fixed and tuned temperature)",
    ),
    # -- notebook 05: importance sampling
    "05/repeats": Budget(2_000, 300, "independent estimates drawn at every slider position"),
    # -- notebook 06: the TRPO bound
    "06/trpo": Budget(
        dict(total_steps=50_000),
        dict(total_steps=4_096, rollout_steps=128),
        "each TRPO run on CartPole-v1 (epochs 1, 3 and 5): half the preset",
    ),
    "06/seeds": Budget((0, 1, 2), (0,), "seeds per TRPO variant: three show the spread"),
    # -- notebook 07: PPO clipping
    "07/sample_sets": Budget(3_000, 300, "sample sets of the clipped-ascent experiment"),
    "07/ppo": Budget(
        dict(total_steps=100_000),
        dict(total_steps=8_192, rollout_steps=64),
        "each PPO run on CartPole-v1 (clip with three epsilons, KL penalty): the preset's",
    ),
    "07/trpo": Budget(
        dict(total_steps=100_000),
        dict(total_steps=8_192, rollout_steps=128),
        "the TRPO run beside PPO: the preset's, as many env steps as PPO's",
    ),
    # -- notebook 08: GRPO
    "08/iterations": Budget(300, 30, "GRPO iterations from the warm start (256 answers each)"),
    "08/eval_every": Budget(50, 10, "iterations between held-out accuracy measurements"),
    # -- python -m benchmarks figures: env steps of each algorithm's figure (fast: a quick check)
    "figures/dqn": Budget(40_000, 2_000, "DQN on CartPole-v1"),
    "figures/reinforce": Budget(200_000, 10_000, "REINFORCE on CartPole-v1"),
    "figures/a2c": Budget(100_000, 5_000, "A2C on CartPole-v1, also A2C vs A2C + GAE"),
    "figures/ddpg": Budget(20_000, 2_000, "DDPG on Pendulum-v1, also DDPG vs TD3"),
    "figures/td3": Budget(20_000, 2_000, "TD3 on Pendulum-v1, also DDPG vs TD3"),
    "figures/sac": Budget(20_000, 2_000, "SAC on Pendulum-v1, also tuned vs fixed temperature"),
    "figures/trpo": Budget(100_000, 5_000, "TRPO on CartPole-v1, also PPO vs TRPO"),
    "figures/ppo": Budget(100_000, 5_000, "PPO and PPO-KL on CartPole-v1, also PPO vs TRPO"),
    "figures/seeds": Budget(3, 1, "seeds per figure run (full: --seeds overrides)"),
    # -- the algorithms' presets (rlcourse/algos/*.py PRESETS): env steps, GRPO iterations
    "preset/dqn/CartPole-v1": _same(50_000, _PRESET),
    "preset/reinforce/CartPole-v1": _same(300_000, _PRESET),
    "preset/a2c/CartPole-v1": _same(150_000, _PRESET),
    "preset/ddpg/Pendulum-v1": _same(20_000, _PRESET),
    "preset/td3/Pendulum-v1": _same(20_000, _PRESET),
    "preset/sac/Pendulum-v1": _same(20_000, _PRESET),
    "preset/sac/InvertedPendulum-v5": _same(15_000, _PRESET),
    "preset/sac/CartPole-v1": _same(40_000, _PRESET),
    "preset/trpo/CartPole-v1": _same(100_000, _PRESET),
    "preset/ppo/CartPole-v1": _same(100_000, _PRESET),
    "preset/ppo/Pendulum-v1": _same(100_000, _PRESET),
    "preset/ppo_kl/CartPole-v1": _same(100_000, f"{_PRESET} (ppo.PRESETS_KL)"),
    "preset/grpo/grpo": _same(2_000, f"{_PRESET}, in iterations of 256 answers"),
    "preset/grpo/rloo": _same(2_000, f"{_PRESET}, in iterations of 256 answers"),
    "preset/grpo/ppo": _same(2_000, f"{_PRESET}, in iterations of 256 answers"),
}
"""Every budget by name; see the module's docstring for the names."""


def budget(name: str, fast: bool | None = None) -> Any:
    """The budget ``name`` for the current mode (``fast=None``) or the one asked for."""
    if name not in BUDGETS:
        raise KeyError(f"no budget named {name!r}; rlcourse.budgets.BUDGETS lists them all")
    return BUDGETS[name].value(fast)


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_show(v)}" for k, v in value.items())
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 1_000:
        return f"{value:_}"
    return repr(value)


class NotebookBudgets:
    """The budgets of one lecture notebook, for the current mode: ``nb.episodes`` or
    ``nb["a2c/CartPole-v1"]`` is the budget ``"NN/episodes"`` or ``"NN/a2c/CartPole-v1"``.
    ``print(nb)`` lists them, full and fast, with why."""

    def __init__(self, number: str, fast: bool | None = None):
        self._number = number
        self._fast = FAST if fast is None else fast
        prefix = f"{number}/"
        self._names = [name.removeprefix(prefix) for name in BUDGETS if name.startswith(prefix)]
        if not self._names:
            raise ValueError(f"number={number!r} is not allowed: no budget is named '{prefix}...'")

    def __getitem__(self, name: str) -> Any:
        return budget(f"{self._number}/{name}", self._fast)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._names:
            raise AttributeError(
                f"notebook {self._number} has no budget {name!r}; it has {', '.join(self._names)}"
            )
        return self[name]

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *(n for n in self._names if n.isidentifier())]

    def __str__(self) -> str:
        mode = (
            "fast (RLCOURSE_FAST=1, as in the tests)"
            if self._fast
            else "full (RLCOURSE_FAST=1 picks the fast ones)"
        )
        lines = [f"notebook {self._number}'s budgets, in use: {mode}"]
        width = max(len(n) for n in self._names)
        for name in self._names:
            b = BUDGETS[f"{self._number}/{name}"]
            lines.append(f"  {name:{width}s}  full {_show(b.full)}  |  fast {_show(b.fast)}")
            lines.append(f"  {'':{width}s}  {b.why}")
        return "\n".join(lines)

    __repr__ = __str__


def notebook_budgets(number: str, fast: bool | None = None) -> NotebookBudgets:
    """Notebook ``number``'s budgets (``"02"``: every ``"02/..."``) for the current mode (or
    ``fast``)."""
    return NotebookBudgets(number, fast)
