"""Slide formulas, each against its definition written out here: the policy gradient theorem (with
Q and with the advantage) and E[delta | S, A] = A on exact tabular MDPs, TRPO's g, the DDPG target,
the exploration rule A = mu(S) + epsilon, TD3's delayed updates, SAC's actor step as a KL to the
softmax of q, and discrete SAC's exact expectation over the next action. rlcourse/data/slides.md
names each of them for its slide."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
from torch.distributions import Categorical, kl_divergence

from rlcourse.advantages import td_errors
from rlcourse.algos import offpolicy, sac, td3, trpo
from rlcourse.buffers import Batch
from rlcourse.nets import CategoricalPolicy, DeterministicPolicy, QEnsemble
from rlcourse.objectives import ddpg_target
from rlcourse.tabular import random_mdp, random_walk, softmax_policy


@pytest.mark.parametrize("seed", range(3))
def test_policy_gradient_theorem_with_q_and_with_the_advantage(seed):
    # Slides "Advantage Estimation" and "Deterministic Policy Gradient Theorem": for a softmax
    # policy with a logit theta[s, b] per pair, grad J = 1/(1-gamma) sum_s d(s) sum_a pi(a|s)
    # grad log pi(a|s) Q(s, a), and the same with A = Q - V in place of Q; d is normalised. Both
    # against central finite differences of the exact J.
    mdp = random_mdp(4, 3, gamma=0.8, seed=seed)
    theta = np.random.default_rng(seed).standard_normal((4, 3))
    pi = softmax_policy(theta, 1.0)
    eps, fd = 1e-6, np.zeros_like(theta)
    for idx in np.ndindex(*theta.shape):
        bump = np.zeros_like(theta)
        bump[idx] = eps
        plus = mdp.expected_return(softmax_policy(theta + bump, 1.0))
        minus = mdp.expected_return(softmax_policy(theta - bump, 1.0))
        fd[idx] = (plus - minus) / (2 * eps)
    d, q, adv = mdp.state_distribution(pi), mdp.q_values(pi), mdp.advantages(pi)
    # score[s, a, b] = d log pi(a|s) / d theta[s, b] = 1[a = b] - pi(b|s)
    score = np.eye(3)[None] - pi[:, None, :]
    for critic in (q, adv):
        grad = np.einsum("s,sa,sab,sa->sb", d, pi, score, critic) / (1 - mdp.gamma)
        np.testing.assert_allclose(grad, fd, atol=1e-7)


@pytest.mark.parametrize("mdp", [random_mdp(5, 3, seed=4), random_walk(7, gamma=0.9)])
def test_the_expected_td_error_is_the_advantage(mdp):
    # Slide "Advantage Estimation": E[delta_t | S_t, A_t] = A^pi(S_t, A_t) for the true V^pi. Every
    # transition (s, a, s') goes through rlcourse.advantages.td_errors, weighted by P(s'|s, a); a
    # terminal s' takes the slide's other case, R - V(s).
    S, A = mdp.num_states, mdp.num_actions
    pi = softmax_policy(np.random.default_rng(0).standard_normal((S, A)), 1.0)
    v = mdp.values(pi)
    s, a, s_next = (x.ravel() for x in np.meshgrid(range(S), range(A), range(S), indexing="ij"))
    delta = td_errors(
        torch.as_tensor(mdp.R[s, a]),
        torch.as_tensor(v[s]),
        torch.as_tensor(v[s_next]),
        torch.as_tensor(mdp.terminal[s_next]),
        mdp.gamma,
    ).numpy()
    expected = (delta * mdp.P[s, a, s_next]).reshape(S, A, S).sum(-1)
    acting = ~mdp.terminal
    np.testing.assert_allclose(expected[acting], mdp.advantages(pi)[acting], atol=1e-10)


def test_trpo_g_is_the_sum_of_score_times_advantage():
    # Slide "TRPO Algorithm": g = sum_t grad log pi_theta(A_t|S_t) A_t. trpo.surrogate_and_kl's
    # surrogate, a mean of omega_t A_t, times T has exactly that gradient at theta' = theta, where
    # the KL is 0.
    torch.manual_seed(0)
    policy = CategoricalPolicy(4, 3, (16,))
    states, actions, adv = torch.randn(64, 4), torch.randint(0, 3, (64,)), torch.randn(64)
    with torch.no_grad():
        old_pi = policy(states)
        old_pi = Categorical(logits=old_pi.logits.clone())
    old_log_prob = old_pi.log_prob(actions)
    surrogate, kl = trpo.surrogate_and_kl(policy, old_pi, states, actions, old_log_prob, adv)
    g = torch.autograd.grad(64 * surrogate, list(policy.parameters()))
    by_hand = torch.autograd.grad(
        (policy(states).log_prob(actions) * adv).sum(), list(policy.parameters())
    )
    for mine, theirs in zip(g, by_hand, strict=True):
        torch.testing.assert_close(mine, theirs)
    assert float(kl.detach()) == pytest.approx(0.0, abs=1e-7)


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
    expected = float((alpha * kl - alpha * log_z).mean().detach())
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5)
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
