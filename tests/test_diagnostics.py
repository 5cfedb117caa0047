"""The diagnostics: the one KL estimator against the exact KL, and the glossary against what
the nine algorithms really log."""

import math

import pytest
import torch

from rlcourse.algos import ALGORITHMS, a2c, ddpg, dqn, grpo, ppo, reinforce, sac, td3, trpo
from rlcourse.diagnostics import GLOSSARY, approx_kl, clip_fraction
from rlcourse.objectives import kl_k3


def exact_kl(p: torch.Tensor, q: torch.Tensor) -> float:
    """``KL(p || q) = sum_a p(a) log(p(a) / q(a))`` of two categoricals, from its definition."""
    return float((p * (p / q).log()).sum())


def test_approx_kl_estimates_kl_old_new_from_samples_of_the_old_policy():
    old = torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)
    new = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    actions = torch.multinomial(old, 200_000, replacement=True, generator=g)
    estimate = approx_kl(old.log()[actions], new.log()[actions])
    # Five standard errors of the mean of the per-sample k3 terms.
    r = new[actions] / old[actions]
    tolerance = 5 * float(((r - 1) - r.log()).std()) / math.sqrt(len(actions))
    assert estimate == pytest.approx(exact_kl(old, new), abs=tolerance)
    # The direction matters: KL(new || old) is far outside that tolerance.
    assert abs(exact_kl(new, old) - exact_kl(old, new)) > 10 * tolerance


def test_approx_kl_is_the_mean_of_kl_k3_with_the_old_policy_sampling():
    g = torch.Generator().manual_seed(1)
    log_prob_old = -torch.rand(1000, generator=g, dtype=torch.float64) * 3
    log_prob_new = log_prob_old + torch.randn(1000, generator=g, dtype=torch.float64) * 0.3
    expected = kl_k3(log_prob=log_prob_old, ref_log_prob=log_prob_new).mean()
    assert approx_kl(log_prob_old, log_prob_new) == float(expected)
    assert approx_kl(log_prob_old, log_prob_old) == 0.0


@pytest.mark.parametrize("dtype,scale", [(torch.float64, 1e-9), (torch.float32, 1e-4)])
def test_tiny_policy_changes_give_a_small_positive_kl_not_a_cancelled_negative(dtype, scale):
    g = torch.Generator().manual_seed(2)
    log_prob_old = -torch.rand(10_000, generator=g, dtype=torch.float64).to(dtype)
    log_ratio = (torch.randn(10_000, generator=g, dtype=torch.float64) * scale).to(dtype)
    log_prob_new = log_prob_old + log_ratio
    x = log_prob_new - log_prob_old  # the difference as the estimator sees it after rounding
    # These inputs are the hard case: the textbook form exp(x) - 1 - x cancels below zero on some.
    assert ((x.exp() - 1 - x) < 0).any()
    per_sample = kl_k3(log_prob=log_prob_old, ref_log_prob=log_prob_new)
    assert (per_sample >= 0).all()
    # k3 = x^2 / 2 + O(x^3): the estimate keeps that size instead of drowning in rounding.
    estimate = approx_kl(log_prob_old, log_prob_new)
    assert estimate == pytest.approx(float((x.double() ** 2 / 2).mean()), rel=1e-2)


# -- the glossary ---------------------------------------------------------------------------------

# Each algorithm (and each variant that logs other columns) for a few updates on a tiny budget.
TINY = dict(progress=False, hidden=(16,))
OFF_POLICY = dict(TINY, total_steps=400, learning_starts=100)  # logs every 250 gradient steps
RUNS = {
    "reinforce": lambda: reinforce.train("CartPole-v1", total_steps=600, **TINY),
    "a2c": lambda: a2c.train("CartPole-v1", total_steps=600, **TINY),
    "ppo": lambda: ppo.train("CartPole-v1", total_steps=1_024, **TINY),
    "ppo-kl": lambda: ppo.train("CartPole-v1", objective="kl", total_steps=1_024, **TINY),
    "trpo": lambda: trpo.train("CartPole-v1", total_steps=1_024, **TINY),
    "dqn": lambda: dqn.train("CartPole-v1", total_steps=600, learning_starts=300, **TINY),
    "ddpg": lambda: ddpg.train("Pendulum-v1", **OFF_POLICY),
    "td3": lambda: td3.train("Pendulum-v1", **OFF_POLICY),
    "sac": lambda: sac.train("Pendulum-v1", **OFF_POLICY),
    "sac-discrete": lambda: sac.train("CartPole-v1", **OFF_POLICY),
    "grpo": lambda: grpo.train(
        grpo.Config(
            iterations=2,
            questions=4,
            group_size=2,
            minibatches=1,
            hidden=16,
            eval_every=1,
            warm_start_examples=16,
            warm_start_steps=2,
        ),
        progress=False,
    ),
}


@pytest.fixture(scope="module")
def logged_columns() -> dict[str, set[str]]:
    """Every column of ``history.iterations`` that each run logged (empty if it logged no row)."""
    columns = {}
    for name, run in RUNS.items():
        _, history = run()
        columns[name] = {key for row in history.iterations for key in row}
    return columns


def test_every_algorithm_logs_rows_and_only_columns_the_glossary_explains(logged_columns):
    # The registry's algorithms and GRPO (trained on its own task) are all among the runs.
    assert {name.split("-")[0] for name in RUNS} == set(ALGORITHMS) | {"grpo"}
    for name, columns in logged_columns.items():
        assert columns, f"{name} logged no iteration in its budget: raise it"
        assert columns <= set(GLOSSARY), f"{name} logs {columns - set(GLOSSARY)}, not in GLOSSARY"


def test_every_glossary_entry_is_logged_by_some_algorithm(logged_columns):
    logged = set().union(*logged_columns.values())
    assert set(GLOSSARY) == logged, set(GLOSSARY) ^ logged


def test_the_glossary_entries_are_complete_and_in_the_module_docstring():
    import rlcourse.diagnostics as diagnostics

    for name, term in GLOSSARY.items():
        assert term.formula.strip() and term.meaning.strip(), name
        assert f"``{name}``" in diagnostics.__doc__


def test_ppo_kl_logs_kl_new_old_and_approx_kl_old_new_of_one_update(monkeypatch):
    """``kl`` is ``KL(pi_theta' || pi_theta)`` (the slide's penalty, new policy first) and
    ``approx_kl`` estimates ``KL(pi_theta || pi_theta')``, both over the rollout's states and
    recomputed here from the policies before and after the one update."""
    import copy

    from torch.distributions import kl_divergence

    seen = {}
    gae_batch, make_agent = ppo.gae_batch, ppo.make_agent

    def record_agent(config, env_id):
        seen["agent"] = make_agent(config, env_id)
        return seen["agent"]

    def record_rollout(critic, rollout, config):
        # Called once the rollout is in, before the update: the policy is still pi_theta.
        seen["old"] = copy.deepcopy(seen["agent"].policy)
        seen["batch"] = gae_batch(critic, rollout, config)
        return seen["batch"]

    monkeypatch.setattr(ppo, "make_agent", record_agent)
    monkeypatch.setattr(ppo, "gae_batch", record_rollout)
    # One iteration with a large step, so that the two directions of the KL differ clearly.
    agent, history = ppo.train(
        "CartPole-v1",
        objective="kl",
        kl_coef=0.0,
        actor_lr=0.05,
        num_envs=2,
        rollout_steps=64,
        total_steps=128,
        **TINY,
    )
    (row,) = history.iterations
    states, actions, _, _ = seen["batch"]
    with torch.no_grad():
        old, new = seen["old"](states), agent.policy(states)
        new_old = float(kl_divergence(new, old).mean())
        old_new = float(kl_divergence(old, new).mean())
        sampled = float(kl_k3(old.log_prob(actions), new.log_prob(actions)).mean())
    assert abs(new_old - old_new) > 0.05 * new_old  # the directions are told apart
    assert row["kl"] == pytest.approx(new_old, rel=1e-5)
    assert row["approx_kl"] == pytest.approx(sampled, rel=1e-5)


def test_clip_fraction_counts_the_ratios_outside_the_clip_range():
    ratios = torch.tensor([1.0, 0.79, 0.8, 1.25, 1.21, 1.5, 0.5, 1.1])
    outside = sum(abs(r - 1) > 0.2 for r in ratios.tolist())  # |omega - 1| > eps, one by one
    assert outside == 5
    assert clip_fraction(ratios, 0.2) == pytest.approx(outside / len(ratios))
    # Minibatches of sizes 1 and 3: the share of all samples (1/4), not the mean of shares (1/2)
    assert clip_fraction(torch.tensor([1.5, 1.0, 1.0, 1.0]), 0.2) == 0.25
