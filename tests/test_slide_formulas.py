"""Slide formulas of the off-policy boxes, each against its definition written out here: the DDPG
target, the exploration rule A = mu(S) + epsilon, TD3's delayed updates, SAC's actor step as a KL to
the softmax of q, and discrete SAC's exact expectation over the next action."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
from torch.distributions import Categorical, kl_divergence

from rlcourse.algos import offpolicy, sac, td3
from rlcourse.buffers import Batch
from rlcourse.nets import CategoricalPolicy, DeterministicPolicy, QEnsemble
from rlcourse.objectives import ddpg_target


@pytest.mark.parametrize("seed", range(3))
def test_the_ddpg_target_is_the_slides_formula(seed):
    # Slide "DDPG Algorithm": y_j = R_{j+1} + gamma q_{w-}(S_{j+1}, mu_{theta-}(S_{j+1})), and
    # y_j = R_{j+1} where S_{j+1} is terminal. A time limit (truncated) is not terminal.
    g = torch.Generator().manual_seed(seed)
    rewards, next_q = torch.randn(50, generator=g), torch.randn(50, generator=g)
    terminated = torch.rand(50, generator=g) < 0.3
    y = ddpg_target(rewards, next_q, terminated, 0.97)
    for j in range(50):
        expected = rewards[j] if terminated[j] else rewards[j] + 0.97 * next_q[j]
        assert float(y[j]) == pytest.approx(float(expected), abs=1e-6)


def test_exploration_adds_gaussian_noise_to_mu_and_stays_in_the_box():
    # Slide "DDPG Algorithm": A = mu_theta(S) + epsilon, epsilon ~ N; here N(0, (noise scale)^2)
    # with scale the Box's half-width, and A clipped back into the Box.
    torch.manual_seed(0)
    low, high = np.array([-10.0, 0.0]), np.array([10.0, 4.0])
    policy = DeterministicPolicy(3, low, high, (16,))
    obs = np.random.default_rng(1).standard_normal((1, 3)).astype(np.float32)
    with torch.no_grad():
        mu = policy(torch.as_tensor(obs)).numpy()[0]
    act = policy.numpy_sampler(np.random.default_rng(2), noise=0.01)
    actions = act(np.repeat(obs, 200_000, axis=0))
    eps = actions - mu
    std = 0.01 * (high - low) / 2
    assert (np.abs(eps.mean(axis=0)) < 5 * std / np.sqrt(len(eps))).all()
    np.testing.assert_allclose(eps.std(axis=0), std, rtol=0.01)
    wild = policy.numpy_sampler(np.random.default_rng(3), noise=10.0)(np.repeat(obs, 1000, 0))
    assert (wild >= low).all() and (wild <= high).all()
    assert (wild == low).any() and (wild == high).any()  # clipped, not squashed


@pytest.mark.parametrize("delay", [1, 2, 3])
def test_td3_steps_the_actor_and_the_targets_once_every_policy_delay_critic_steps(
    delay, monkeypatch
):
    # Slide "TD3": "if j mod d = 0": the actor and both target networks are updated after every
    # d-th critic step, and only then.
    events = []
    make_learner = offpolicy.make_learner

    def spied(agent, envs, config, actor_target=True):
        learner = make_learner(agent, envs, config, actor_target)
        for name in ("critic_opt", "actor_opt"):
            _record(getattr(learner, name), name)
        return learner

    def _record(optimizer, name):
        step = optimizer.step

        def recorded(*args, **kwargs):
            events.append(name)
            return step(*args, **kwargs)

        optimizer.step = recorded

    polyak = td3.polyak_update

    def spied_polyak(target, online, rho):
        events.append("target")
        return polyak(target, online, rho)

    monkeypatch.setattr(offpolicy, "make_learner", spied)
    monkeypatch.setattr(td3, "polyak_update", spied_polyak)
    td3.train(
        "Pendulum-v1", progress=False, total_steps=130, learning_starts=100, policy_delay=delay
    )
    critic_steps = 0
    for i, event in enumerate(events):
        if event == "critic_opt":
            critic_steps += 1
            follows = events[i + 1 : i + 4]
            if critic_steps % delay == 0:
                assert follows == ["actor_opt", "target", "target"], (critic_steps, follows)
            else:
                assert follows[:1] in ([], ["critic_opt"]), (critic_steps, follows)
    # One critic step after each env step from the 100th (learning_starts) to the 130th.
    assert critic_steps == 31
    assert events.count("actor_opt") == 31 // delay
    assert events.count("target") == 2 * (31 // delay)


def _discrete_learner(seed, n_obs=4, n_actions=5):
    torch.manual_seed(seed)
    actor = CategoricalPolicy(n_obs, n_actions, (16,))
    critics = QEnsemble(n_obs, (16,), members=2, num_actions=n_actions)
    return types.SimpleNamespace(actor=actor, critics=critics, critics_target=critics)


def _batch(seed, n=32, n_obs=4):
    g = torch.Generator().manual_seed(seed)
    return Batch(
        obs=torch.randn(n, n_obs, generator=g),
        actions=torch.randint(0, 5, (n,), generator=g),
        rewards=torch.randn(n, generator=g),
        next_obs=torch.randn(n, n_obs, generator=g),
        terminated=torch.rand(n, generator=g) < 0.3,
        truncated=torch.zeros(n, dtype=torch.bool),
    )


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("alpha", [0.05, 0.5, 2.0])
def test_discrete_sac_actor_loss_is_the_kl_to_the_softmax_of_q(seed, alpha):
    # Slide "SAC": minimise E_S KL(pi_theta(.|S) || exp(q_w(S, .)/lambda) / Z(S)). Per state,
    # alpha KL = sum_a pi(a) (alpha log pi(a) - q(a)) + alpha log Z: the loss is the KL up to a
    # constant in theta, so it has the KL's gradient.
    learner, batch = _discrete_learner(seed), _batch(seed)
    loss, _ = sac.discrete_actor_loss(learner, batch, alpha)
    pi = learner.actor(batch.obs)
    with torch.no_grad():
        q = learner.critics(batch.obs).min(0).values
    target = Categorical(logits=q / alpha)
    kl = kl_divergence(Categorical(probs=pi.probs), target)
    log_z = torch.logsumexp(q / alpha, dim=-1)
    assert float(loss) == pytest.approx(float((alpha * kl - alpha * log_z).mean()), rel=1e-5)
    params = list(learner.actor.parameters())
    grad_loss = torch.autograd.grad(loss, params, retain_graph=True)
    grad_kl = torch.autograd.grad(alpha * kl.mean(), params)
    for a, b in zip(grad_loss, grad_kl, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("seed", range(3))
def test_discrete_sac_target_is_the_exact_expectation_over_the_next_action(seed):
    # y_j = R + gamma (1 - terminated) sum_a' pi(a'|S') [min_i q_{w-}^i(S', a') - alpha log pi(a'|S')]
    learner, batch = _discrete_learner(seed), _batch(seed + 10)
    alpha, gamma = 0.3, 0.95
    with torch.no_grad():
        y = sac.discrete_soft_targets(learner, batch, alpha, gamma)
        pi = learner.actor(batch.next_obs)
        q = learner.critics_target(batch.next_obs).min(0).values
    for j in range(len(y)):
        soft_value = sum(
            float(pi.probs[j, a]) * (float(q[j, a]) - alpha * float(torch.log(pi.probs[j, a])))
            for a in range(q.shape[1])
        )
        expected = float(batch.rewards[j]) + (0 if batch.terminated[j] else gamma * soft_value)
        assert float(y[j]) == pytest.approx(expected, abs=1e-5)
