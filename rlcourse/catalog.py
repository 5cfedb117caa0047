"""The slides' summary table of algorithms, built from the package itself.

Slide "summary table" (the last before the theses): for each algorithm its class, whether it is
on-policy, which state and action spaces it handles, whether its policy is deterministic, and its
reference. Here the class, the on-policy flag and the reference come from each algorithm module
(``CLASS``, ``ON_POLICY``, ``REFERENCE``); the rest is *measured* on the code: an algorithm handles
finite actions if its ``make_agent`` builds an agent for CartPole-v1 or for GRPO's question-answer
task (whose actions are tokens), continuous actions if it builds one for Pendulum-v1, and its policy
is deterministic if that agent's policy is a deterministic network (DQN's greedy Q-network, DDPG's
and TD3's actor). So the table and the code cannot disagree; ``tests/test_catalog.py`` checks the
table against the slide's.

``notebooks/01_overview.ipynb`` shows it; :data:`SLIDE_MAP` maps the slides to notebooks and
functions.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import ModuleType

__all__ = ["Row", "Milestone", "summary_table", "supports", "SLIDE_MAP", "NOTEBOOKS", "TIMELINE"]


@dataclass(frozen=True)
class Row:
    """One row of the summary table. ``on_policy`` is "✓", "✓*" (on-policy in its single-epoch
    version only: the algorithm reuses each batch for several epochs) or "✗"."""

    name: str
    algo_class: str
    on_policy: str
    continuous_states: bool
    finite_actions: bool
    continuous_actions: bool
    deterministic: bool
    reference: str
    notebook: str


# Which notebook teaches each algorithm (in the lecture's order).
NOTEBOOKS = {
    "dqn": "01_overview.ipynb",
    "reinforce": "02_advantage_estimation.ipynb",
    "a2c": "02_advantage_estimation.ipynb",
    "ddpg": "03_deterministic_policy_gradients.ipynb",
    "td3": "03_deterministic_policy_gradients.ipynb",
    "sac": "04_soft_value_functions.ipynb",
    "trpo": "06_trpo_bound.ipynb",
    "ppo": "07_ppo_clipping.ipynb",
    "grpo": "08_grpo.ipynb",
}


def supports(module: ModuleType, env_id: str) -> bool:
    """Whether the algorithm builds an agent for ``env_id`` (it refuses spaces it cannot handle with
    a ``ValueError`` naming them)."""
    try:
        module.make_agent(module.Config(), env_id)
    except ValueError:
        return False
    return True


def _row(module: ModuleType) -> Row:
    from rlcourse.algos.grpo import TASK
    from rlcourse.nets import DeterministicPolicy, QNetwork

    several_epochs = "epochs" in {f.name for f in dataclasses.fields(module.Config)}
    on_policy = ("✓*" if several_epochs else "✓") if module.ON_POLICY else "✗"
    # The environments probed, by the actions they have: finite, then continuous.
    finite = [env_id for env_id in ("CartPole-v1", TASK) if supports(module, env_id)]
    continuous = supports(module, "Pendulum-v1")
    agent = module.make_agent(module.Config(), finite[0] if finite else "Pendulum-v1")
    deterministic = isinstance(agent.policy, DeterministicPolicy | QNetwork)
    return Row(
        name=module.NAME,
        algo_class=module.CLASS,
        on_policy=on_policy,
        # every algorithm here takes real-valued observation vectors (GRPO embeds its token texts)
        continuous_states=True,
        finite_actions=bool(finite),
        continuous_actions=continuous,
        deterministic=deterministic,
        reference=module.REFERENCE,
        notebook=NOTEBOOKS[module.NAME],
    )


def summary_table() -> list[Row]:
    """The nine rows, in the slide's order (the eight gymnasium algorithms, then GRPO)."""
    from rlcourse.algos import ALL_ALGORITHMS

    return [_row(m) for m in ALL_ALGORITHMS.values()]


@dataclass(frozen=True)
class Milestone:
    """One line of the slides' history timeline: the year the slide gives, the milestone, the
    citation the slide gives, and the modules of this package it became (none: not in the code)."""

    year: int
    name: str
    citation: str
    modules: tuple[str, ...]


# Slide "A Brief History of Deep RL", line by line; notebook 01, section 1, shows it as a table
# (tests/test_catalog.py checks the two agree, and that each algorithm's module cites its paper).
TIMELINE: list[Milestone] = [
    Milestone(2013, "DQN", "Mnih et al., 2013, 2015", ("algos.dqn",)),
    Milestone(2015, "DDPG", "Lillicrap et al., 2015", ("algos.ddpg",)),
    Milestone(2015, "TRPO", "Schulman et al., 2015", ("algos.trpo",)),
    Milestone(2016, "A3C", "Mnih et al., 2016", ("algos.a2c",)),  # A2C, its synchronous version
    Milestone(2016, "AlphaGo", "Silver et al., 2016", ()),
    Milestone(2017, "PPO", "Schulman et al., 2017", ("algos.ppo",)),
    Milestone(2018, "SAC", "Haarnoja et al., 2018", ("algos.sac",)),
    Milestone(2018, "TD3", "Fujimoto et al., 2018", ("algos.td3",)),
    Milestone(2022, "RLHF", "Ouyang et al., 2022", ()),
    # the slide's year; the paper is from 2024 (notebook 01 notes it)
    Milestone(2023, "REINFORCE", "Ahmadian et al., 2024", ("algos.reinforce", "algos.grpo")),
    Milestone(2024, "GRPO", "Shao et al., 2024", ("algos.grpo",)),
]


# Each slide with something to implement, in order (consecutive slides of one title as one row):
# (title, notebook and sections, the package functions), from rlcourse/data/slides.md.
def _slide_map() -> list[tuple[str, str, tuple[str, ...]]]:
    from rlcourse.slides import SLIDES

    rows: list[tuple[str, list]] = []
    for slide in SLIDES:
        if not slide.items:
            continue
        if rows and rows[-1][0] == slide.title:
            rows[-1][1].extend(slide.items)
        else:
            rows.append((slide.title, list(slide.items)))
    return [(title, _sections(items), _functions(items)) for title, items in rows]


def _sections(items) -> str:
    """The sections of the first item's notebook that the items name, as ``"NN · 1-3, 5"``."""
    notebook = items[0].section.split(" · ")[0]
    numbers: set[int] = set()
    for item in items:
        number, _, parts = item.section.partition(" · ")
        if number != notebook:
            continue
        for part in parts.replace(" ", "").split(","):
            first, _, last = part.partition("-")
            numbers.update(range(int(first), int(last or first) + 1))
    ranges: list[list[int]] = []
    for k in sorted(numbers):
        if ranges and k == ranges[-1][1] + 1:
            ranges[-1][1] = k
        else:
            ranges.append([k, k])
    return f"{notebook} · " + ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in ranges)


def _functions(items) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name for item in items for name in item.code))


SLIDE_MAP: list[tuple[str, str, tuple[str, ...]]] = _slide_map()
"""(slide title, notebook and sections, package functions) per slide, for notebook 01's table."""
