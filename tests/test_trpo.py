"""TRPO's parts against their definitions (conjugate gradient, Fisher-vector products, line
search) and the whole algorithm on CartPole (it learns, and every accepted step respects the trust
region)."""

import copy

import numpy as np
import pytest
import torch
from torch.distributions import kl_divergence
from torch.func import functional_call
from torch.nn.utils import parameters_to_vector

from benchmarks.learning_tests import assert_learned, stored
from benchmarks.learning_tests import train as train_config
from rlcourse.algos import trpo
from rlcourse.nets import CategoricalPolicy, GaussianPolicy

RANDOM_CARTPOLE = stored()["random"]["CartPole-v1"]  # mean return of random actions


def random_spd(n, seed, condition=100.0):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    eigenvalues = torch.logspace(0, np.log10(condition), n, dtype=torch.float64)
    return q @ torch.diag(eigenvalues) @ q.T, torch.randn(n, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("seed", range(5))
def test_conjugate_gradient_solves_a_symmetric_positive_definite_system(seed):
    m, b = random_spd(12, seed)
    # n iterations suffice in exact arithmetic; rounding costs a few more, and CG stops at its
    # tolerance
    x = trpo.conjugate_gradient(lambda v: m @ v, b, iters=50, tol=1e-24)
    torch.testing.assert_close(x, torch.linalg.solve(m, b), rtol=1e-8, atol=1e-8)


def test_conjugate_gradient_error_in_the_m_norm_never_grows():
    """CG minimises ||x - x*||_M over a growing Krylov space, so the error shrinks with every
    iteration."""
    m, b = random_spd(20, 7, condition=100.0)
    exact = torch.linalg.solve(m, b)
    errors = []
    for iters in range(1, 21):
        e = trpo.conjugate_gradient(lambda v: m @ v, b, iters=iters) - exact
        errors.append(float(e @ m @ e))
    assert all(
        later <= earlier * (1 + 1e-9) for earlier, later in zip(errors, errors[1:], strict=False)
    )
    assert errors[-1] < 1e-6 * errors[0]


def flat_kl(policy, states):
    """theta' -> mean KL(pi_theta || pi_theta') with theta fixed at the policy's current
    parameters."""
    names = [name for name, _ in policy.named_parameters()]
    shapes = [p.shape for p in policy.parameters()]
    sizes = [p.numel() for p in policy.parameters()]
    with torch.no_grad():
        fixed = policy(states)

    def kl(theta):
        params = {n: t.view(s) for n, t, s in zip(names, theta.split(sizes), shapes, strict=True)}
        new = functional_call(policy, params, (states,))
        return torch.distributions.kl_divergence(fixed, new).mean()

    return kl


@pytest.mark.parametrize(
    "make", [lambda: CategoricalPolicy(3, 4, (5,)), lambda: GaussianPolicy(3, 2, (5,), -0.5)]
)
def test_fisher_vector_product_is_the_hessian_of_the_kl(make):
    torch.manual_seed(0)
    policy = make().double()
    states = torch.randn(40, 3, dtype=torch.float64)
    theta = parameters_to_vector(policy.parameters()).detach()
    hessian = torch.autograd.functional.hessian(flat_kl(policy, states), theta)
    for seed in range(3):
        v = torch.randn(
            len(theta), generator=torch.Generator().manual_seed(seed), dtype=torch.float64
        )
        torch.testing.assert_close(
            trpo.fisher_vector_product(policy, states, v), hessian @ v, rtol=1e-9, atol=1e-12
        )
        damped = trpo.fisher_vector_product(policy, states, v, damping=0.1)
        torch.testing.assert_close(damped, hessian @ v + 0.1 * v, rtol=1e-9, atol=1e-12)


def test_fisher_is_the_expected_outer_product_of_the_score():
    """For a categorical policy, F = mean_s sum_a pi(a|s) grad log pi(a|s) grad log pi(a|s)^T
    exactly."""
    torch.manual_seed(1)
    policy = CategoricalPolicy(3, 4, (5,)).double()
    states = torch.randn(6, 3, dtype=torch.float64)
    params = list(policy.parameters())
    fisher = 0
    for s in states:
        pi = policy(s[None])
        for a in range(4):
            score = parameters_to_vector(
                torch.autograd.grad(pi.log_prob(torch.tensor([a])).sum(), params, retain_graph=True)
            )
            fisher = fisher + pi.probs[0, a].detach() * torch.outer(score, score)
    fisher = fisher / len(states)
    v = torch.randn(len(score), dtype=torch.float64)
    torch.testing.assert_close(
        trpo.fisher_vector_product(policy, states, v), fisher @ v, rtol=1e-9, atol=1e-12
    )


def test_line_search_takes_the_largest_admissible_step():
    delta, b = 0.01, 0.5
    tried = []

    def evaluate_step(alpha):  # KL grows like alpha^2 and crosses delta at alpha = 0.5
        tried.append(alpha)
        return alpha - alpha**2, 0.04 * alpha**2

    assert trpo.line_search(evaluate_step, delta, b, max_backtracks=10) == 0.5
    assert tried == [1.0, 0.5]  # alpha = 1 broke the trust region; 0.5 is on its border, accepted


def test_line_search_rejects_steps_that_do_not_improve_the_surrogate():
    # inside the trust region everywhere, but the surrogate only improves for alpha < 0.3
    assert trpo.line_search(lambda a: (0.3 - a, 0.0), 0.01, 0.5, max_backtracks=10) == 0.25
    # never improves: no step at all
    assert trpo.line_search(lambda a: (-a, 0.0), 0.01, 0.5, max_backtracks=10) == 0.0
    # improves only at steps smaller than the last one tried
    assert trpo.line_search(lambda a: (0.001 - a, 0.0), 0.01, 0.5, max_backtracks=3) == 0.0


def test_trpo_learns_cartpole_and_respects_the_trust_region(monkeypatch):
    # The trust region is checked independently of the line search and of the logged kl: the
    # policy before each update is copied with the rollout's states, and afterwards the exact
    # mean KL(pi_new || pi_old) over those states is computed here from the two networks.
    made, before = {}, []
    make_agent, gae_batch = trpo.make_agent, trpo.gae_batch

    def keep_agent(config, env_id):
        made["agent"] = make_agent(config, env_id)
        return made["agent"]

    def keep_policy(critic, rollout, config):
        batch = gae_batch(critic, rollout, config)
        before.append((batch[0], copy.deepcopy(made["agent"].policy)))
        return batch

    monkeypatch.setattr(trpo, "make_agent", keep_agent)
    monkeypatch.setattr(trpo, "gae_batch", keep_policy)
    agent, history = train_config("trpo", seed=1)
    afters = [policy for _, policy in before[1:]] + [agent.policy]
    with torch.no_grad():
        kl = np.array(
            [
                float(kl_divergence(new(states), old(states)).mean())
                for (states, old), new in zip(before, afters, strict=True)
            ]
        )
    delta = trpo.PRESETS["CartPole-v1"].delta
    assert (kl <= delta * (1 + 1e-5)).all() and kl.max() > 0.2 * delta  # large steps, inside
    np.testing.assert_allclose(history.column("kl", "iterations"), kl, rtol=1e-4, atol=1e-7)
    assert np.mean(history.column("return")[:20]) < 2 * RANDOM_CARTPOLE
    assert_learned("trpo", agent)  # what "learns" means: benchmarks/learning_tests.py
    assert history.column("explained_variance", "iterations")[-1] > 0


def test_multi_epoch_trpo_keeps_the_constraint_against_the_data_collecting_policy():
    _, history = trpo.train(
        "CartPole-v1", progress=False, total_steps=4_096, rollout_steps=128, epochs=3
    )
    assert (history.column("kl", "iterations") <= 0.01 * (1 + 1e-5)).all()
    assert (
        history.column("step_fraction", "iterations") < 1
    ).any()  # later epochs must shorten their steps


@pytest.mark.parametrize(
    "changes,message",
    [
        (dict(delta=0.0), "delta=0.0 is not allowed"),
        (dict(backtrack_ratio=1.0), "backtrack_ratio=1.0 is not allowed"),
        (dict(cg_iters=0), "cg_iters=0 is not allowed"),
        (dict(epochs=0), "epochs=0 is not allowed"),
        (dict(cg_damping=-0.1), "cg_damping=-0.1 is not allowed"),
    ],
)
def test_bad_trpo_hyperparameters_are_named(changes, message):
    with pytest.raises(ValueError, match=message):
        trpo.Config(**changes)


def test_critic_minibatches_cover_the_rollout_once_in_near_equal_sizes(monkeypatch):
    """100 transitions in 3 critic minibatches are 33, 33 and 34 in every critic epoch."""
    sizes = []
    loss = trpo.critic_loss

    def record(values, targets):
        sizes.append(len(values))
        return loss(values, targets)

    monkeypatch.setattr(trpo, "critic_loss", record)
    trpo.train(
        "CartPole-v1",
        progress=False,
        num_envs=2,
        rollout_steps=50,
        critic_minibatches=3,
        critic_epochs=2,
        total_steps=100,
    )
    assert sorted(sizes) == [33, 33, 33, 33, 34, 34]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("delta", [1e-3, 0.01, 0.5])
def test_the_full_step_puts_the_quadratic_kl_model_exactly_at_delta(seed, delta):
    # Slide "TRPO algorithm": theta + sqrt(2 delta / x^T F x) x. Its length along x is the one at
    # which the second-order model of the KL, 1/2 s^T F s, reaches delta.
    F, g = random_spd(6, seed)
    x = torch.linalg.solve(F, g)  # the natural gradient F^-1 g
    s = trpo.max_step(x, lambda v: F @ v, delta)
    assert float(0.5 * s @ F @ s) == pytest.approx(delta, rel=1e-10)
    scale = s / x
    assert torch.allclose(scale, scale[0]) and scale[0] > 0  # along x, forwards
    # The same step written with g: sqrt(2 delta / (g^T F^-1 g)) F^-1 g.
    assert torch.allclose(s, torch.sqrt(2 * delta / (g @ x)) * x)
