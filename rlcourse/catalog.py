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

__all__ = ["Row", "summary_table", "supports", "SLIDE_MAP", "NOTEBOOKS"]


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


# The slides, in order: (slide titles, notebook and sections, the package functions that implement
# them).
SLIDE_MAP: list[tuple[str, str, tuple[str, ...]]] = [
    ("A Brief History of Deep RL", "01 · 1", ("catalog.summary_table",)),
    ("Advantage Estimation", "02 · 1", ("advantages.td_errors",)),
    (
        "Data collection of A2C",
        "02 · 2, 4",
        ("advantages.returns_to_go", "rollouts.collect_rollout"),
    ),
    (
        "A2C",
        "02 · 2, 6",
        ("algos.a2c.train", "objectives.policy_gradient_loss", "objectives.critic_loss"),
    ),
    (
        "On-Policy vs Off-Policy Deep RL",
        "01 · 2",
        ("algos.dqn.train", "algos.a2c.train", "buffers.ReplayBuffer"),
    ),
    (
        "Generalized Advantage Estimation",
        "02 · 3, 5",
        ("advantages.kstep_returns", "advantages.lambda_returns", "advantages.gae"),
    ),
    (
        "Data collection of A2C + GAE; A2C + GAE",
        "02 · 3, 6",
        ("algos.common.gae_batch", "algos.a2c.train"),
    ),
    (
        "REINFORCE, a row of the summary table (Williams, 1992)",
        "02 · 7",
        ("algos.reinforce.train", "advantages.returns_to_go"),
    ),
    (
        "Deterministic Policy Gradient Theorem",
        "03 · 1",
        ("lq.LQProblem.dpg_gradient", "lq.LQProblem.finite_difference_gradient"),
    ),
    (
        "(Deep) Deterministic Policy Gradient; DDPG Algorithm",
        "03 · 2-3",
        ("algos.ddpg.train", "objectives.ddpg_target", "nets.polyak_update"),
    ),
    (
        "Twin Delayed Deep Deterministic Policy Gradient (TD3)",
        "03 · 4-7",
        ("algos.td3.train", "objectives.td3_target", "diagnostics.q_overestimation"),
    ),
    (
        "Entropy-Regularized RL",
        "04 · 1-4, 6",
        (
            "tabular.entropy",
            "tabular.FiniteMDP.soft_values",
            "tabular.softmax_policy",
            "tabular.softmax_value",
        ),
    ),
    ("Policy Improvement Theorem (soft)", "04 · 5", ("tabular.FiniteMDP.soft_value_iteration",)),
    (
        "Soft Actor-Critic; Soft Actor-Critic Algorithm",
        "04 · 7-8",
        ("algos.sac.train", "objectives.soft_td_target"),
    ),
    (
        "Importance Sampling",
        "05 · 1-4",
        (
            "importance.importance_weighted_estimate",
            "importance.self_normalized_estimate",
            "importance.effective_sample_size",
        ),
    ),
    ("Sample Reuse; True loss; Surrogate objective", "05 · 5", ("objectives.importance_weights",)),
    (
        "Performance Improvement; Surrogate Loss Construction",
        "06 · 1-3",
        (
            "tabular.FiniteMDP.performance_difference_terms",
            "tabular.FiniteMDP.surrogate",
            "tabular.total_variation",
        ),
    ),
    (
        "Surrogate Loss; Towards TRPO",
        "06 · 4-6",
        ("tabular.FiniteMDP.penalised_surrogate", "tabular.kl_divergence"),
    ),
    (
        "Trust Region Policy Optimization; TRPO Algorithm; Multi-Epoch TRPO",
        "06 · 7",
        ("algos.trpo.train", "algos.trpo.conjugate_gradient", "algos.trpo.line_search"),
    ),
    (
        "From TRPO to PPO",
        "07 · 1-3",
        (
            "objectives.importance_weights",
            "objectives.clipped_surrogate",
            "algos.ppo.adapt_kl_coef",
        ),
    ),
    ("PPO Algorithm with Clipping", "07 · 4-6", ("algos.ppo.train",)),
    ("RLHF", "08 · 1-2", ("qa.warm_start",)),
    (
        "Group Relative Policy Optimization (GRPO)",
        "08 · 1-7",
        ("advantages.group_relative_advantages", "objectives.kl_k3", "algos.grpo.train"),
    ),
    ("Summary table", "01 · 1", ("catalog.summary_table",)),
]
