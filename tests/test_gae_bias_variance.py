"""GAE's bias and variance on a finite MDP (rlcourse.sweeps), against their definitions: the exact
bias of the lambda-return by brute-force propagation, the sampled bias and variance against the
exact one and against a direct mean over the visits."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rlcourse.advantages import gae
from rlcourse.sweeps import gae_bias_variance, gae_on_episodes, lambda_return_bias, noisy_critic
from rlcourse.tabular import random_mdp, random_walk

LAMBDAS = np.linspace(0.0, 1.0, 6)


@pytest.fixture(scope="module")
def walk():
    mdp = random_walk(5, gamma=0.9)
    pi = np.tile([0.4, 0.6], (mdp.num_states, 1))
    return mdp, pi


@pytest.fixture(scope="module")
def grid(walk):
    mdp, pi = walk
    return gae_bias_variance(
        mdp,
        pi,
        gammas=[0.8, 0.95],
        lambdas=LAMBDAS,
        critic_errors=[0.0, 0.2],
        num_episodes=1500,
        horizon=80,
        seed=1,
    )


def test_noisy_critic_is_exact_at_zero_error_and_keeps_terminals_at_zero(walk):
    mdp, pi = walk
    v = mdp.values(pi)
    exact = noisy_critic(v, 0.0, mdp.terminal)
    assert (exact[~mdp.terminal] == v[~mdp.terminal]).all()
    # terminals are 0 exactly; the linear solve gives them 0 up to its rounding (4.6e-16 on some
    # machines' LAPACK)
    assert (exact[mdp.terminal] == 0).all()
    np.testing.assert_allclose(v[mdp.terminal], 0.0, atol=1e-12)
    small, large = (
        noisy_critic(v, 0.1, mdp.terminal, seed=3),
        noisy_critic(v, 0.3, mdp.terminal, seed=3),
    )
    live = ~mdp.terminal
    np.testing.assert_allclose((large - v)[live], 3 * (small - v)[live])  # same pattern, scaled
    assert (noisy_critic(v, 0.5, mdp.terminal)[mdp.terminal] == 0).all()
    with pytest.raises(ValueError, match="error"):
        noisy_critic(v, -0.1, mdp.terminal)


def test_gae_on_episodes_matches_the_definition_on_one_episode(walk):
    mdp, pi = walk
    episodes = mdp.sample_episodes(pi, 1, 60, np.random.default_rng(0))
    critic = noisy_critic(mdp.values(pi), 0.2, mdp.terminal)
    gamma, lam = 0.9, 0.7
    got = gae_on_episodes(episodes, critic, gamma, lam)[:, 0]
    steps = int(episodes["active"][:, 0].sum())
    s, s2, r = (
        episodes["states"][:steps, 0],
        episodes["next_states"][:steps, 0],
        episodes["rewards"][:steps, 0],
    )
    v_next = np.where(mdp.terminal[s2], 0.0, critic[s2])
    delta = r + gamma * v_next - critic[s]
    want = [sum((gamma * lam) ** (k - t) * delta[k] for k in range(t, steps)) for t in range(steps)]
    np.testing.assert_allclose(got[:steps], want, atol=1e-12)


def test_exact_bias_is_zero_for_a_perfect_critic_and_for_lambda_one(walk):
    mdp, pi = walk
    v = mdp.values(pi)
    for lam in LAMBDAS:
        np.testing.assert_allclose(lambda_return_bias(mdp, pi, v, lam), 0.0, atol=1e-12)
    critic = noisy_critic(v, 0.3, mdp.terminal)
    assert np.abs(lambda_return_bias(mdp, pi, critic, 0.0)).max() > 1e-2
    np.testing.assert_allclose(lambda_return_bias(mdp, pi, critic, 1.0), 0.0, atol=1e-12)


def test_exact_bias_at_lambda_zero_is_the_one_step_bootstrap_error(walk):
    # v^(1) = R + gamma v_w(S'), so its bias against Q is gamma E[e(S') | s, a].
    mdp, pi = walk
    v = mdp.values(pi)
    critic = noisy_critic(v, 0.3, mdp.terminal)
    e = np.where(mdp.terminal, 0.0, critic - v)
    np.testing.assert_allclose(
        lambda_return_bias(mdp, pi, critic, 0.0), mdp.gamma * mdp.P @ e, atol=1e-12
    )


def test_exact_bias_matches_a_brute_force_expectation(walk):
    # E[sum_k (gamma lambda)^k delta_{t+k} | s, a] by propagating the state distribution, step by
    # step.
    mdp, pi = walk
    v = mdp.values(pi)
    critic = noisy_critic(v, 0.3, mdp.terminal, seed=5)
    c = np.where(mdp.terminal, 0.0, critic)
    gamma, lam = mdp.gamma, 0.6
    P_pi = np.einsum("sa,sat->st", pi, mdp.P)
    expected_delta = mdp.R + gamma * mdp.P @ c - c[:, None]  # E[delta | s, a]
    state_delta = (pi * expected_delta).sum(1)  # E[delta | s]
    total = expected_delta.copy()
    dist = mdp.P.copy()  # distribution of S_{t+k} given (s, a), k = 1
    for k in range(1, 400):
        total += (gamma * lam) ** k * dist @ state_delta
        dist = dist @ P_pi
    want = total + c[:, None] - mdp.q_values(pi)  # bias of v^lambda = A^GAE + v_w(s) against Q
    np.testing.assert_allclose(lambda_return_bias(mdp, pi, critic, lam), want, atol=1e-10)


def _sampling_noise(grid):
    # A sampled squared bias overshoots by about Var / visits per pair: the squared error of a mean.
    return grid.variance / grid.visits[grid.visits > 0].min()


def test_perfect_critic_gives_unbiased_gae_for_every_lambda(grid):
    # The sampled squared bias is only sampling noise.
    assert (grid.bias2[:, 0, :] <= 3 * _sampling_noise(grid)[:, 0, :] + 1e-12).all()
    np.testing.assert_allclose(grid.bias2_exact[:, 0, :], 0.0, atol=1e-20)


def test_lambda_one_has_no_bias_from_the_critic(grid):
    np.testing.assert_allclose(grid.bias2_exact[:, :, -1], 0.0, atol=1e-20)
    assert (grid.bias2[:, 1, -1] <= 3 * _sampling_noise(grid)[:, 1, -1]).all()
    assert (grid.bias2[:, 1, 0] > 10 * _sampling_noise(grid)[:, 1, 0]).all()


def test_sampled_bias_matches_the_exact_bias(grid):
    gap = np.abs(grid.bias2[:, 1, :] - grid.bias2_exact[:, 1, :])
    assert (gap <= 0.05 * grid.bias2_exact[:, 1, :] + 3 * _sampling_noise(grid)[:, 1, :]).all()


def test_imperfect_critic_bias_shrinks_and_variance_grows_with_lambda(grid):
    assert (np.diff(grid.bias2_exact[:, 1, :], axis=-1) < 0).all()
    assert (np.diff(grid.variance, axis=-1) > 0).all()
    # deterministic moves: given (s, a), the one-step estimate has no randomness at all
    np.testing.assert_allclose(grid.variance[:, :, 0], 0.0, atol=1e-12)


def test_mse_is_bias_squared_plus_variance_and_equals_the_direct_mse(walk):
    mdp, pi = walk
    lam, err = 0.5, 0.2
    grid = gae_bias_variance(mdp, pi, [0.9], [lam], [err], num_episodes=400, horizon=80, seed=2)
    np.testing.assert_allclose(grid.mse, grid.bias2 + grid.variance)
    # direct: visit-weighted mean of (A^GAE + v_w(S_t) - Q(S_t, A_t))^2 over all visits
    episodes = mdp.sample_episodes(pi, 400, 80, np.random.default_rng(2))
    critic = noisy_critic(mdp.values(pi), err, mdp.terminal)
    active, s, a = episodes["active"], episodes["states"], episodes["actions"]
    ret = (gae_on_episodes(episodes, critic, 0.9, lam) + critic[s])[active]
    pair = (s * 2 + a)[active]
    q = mdp.q_values(pi).reshape(-1)
    # per-pair MSE = bias^2 + variance, pooled by visit counts = plain mean over visits
    np.testing.assert_allclose(grid.mse[0, 0, 0], np.mean((ret - q[pair]) ** 2), rtol=1e-9)


def test_grid_shapes_and_the_callers_mdp_is_left_alone(walk):
    mdp, pi = walk
    grid = gae_bias_variance(mdp, pi, [0.5, 0.7], [0.0, 1.0], [0.0], num_episodes=50, horizon=40)
    assert grid.bias2.shape == grid.variance.shape == grid.bias2_exact.shape == (2, 1, 2)
    assert grid.visits.shape == (mdp.num_states, 2) and grid.visits[mdp.terminal].sum() == 0
    assert mdp.gamma == 0.9  # each gamma gets its own copy of the MDP


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"lambdas": [1.5]}, "lambdas"),
        ({"gammas": [1.0]}, "gamma"),
        ({"critic_errors": [-1.0]}, "critic_errors"),
        ({"num_episodes": 1}, "num_episodes"),
    ],
)
def test_bad_grid_arguments_name_the_parameter(walk, kwargs, word):
    mdp, pi = walk
    args = {
        "gammas": [0.9],
        "lambdas": [0.5],
        "critic_errors": [0.0],
        "num_episodes": 10,
        "horizon": 20,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=word):
        gae_bias_variance(mdp, pi, **args)


# Definition-based checks added with the move to the math floor.


def test_sampled_variance_is_the_per_pair_variance_pooled_by_visits(walk):
    # Var[A^GAE | s, a] by np.var over the visits of each pair, weighted by the visit counts.
    mdp, pi = walk
    lam, err, gamma = 0.7, 0.3, 0.9
    grid = gae_bias_variance(mdp, pi, [gamma], [lam], [err], num_episodes=300, horizon=60, seed=4)
    episodes = mdp.sample_episodes(pi, 300, 60, np.random.default_rng(4))
    critic = noisy_critic(mdp.values(pi), err, mdp.terminal)
    active, s, a = episodes["active"], episodes["states"], episodes["actions"]
    adv = gae_on_episodes(episodes, critic, gamma, lam)[active]
    pair = (s * 2 + a)[active]
    pairs = np.unique(pair)
    per_pair = np.array([np.var(adv[pair == k]) for k in pairs])
    counts = np.array([(pair == k).sum() for k in pairs])
    np.testing.assert_allclose(grid.variance[0, 0, 0], counts @ per_pair / counts.sum(), rtol=1e-9)
    np.testing.assert_allclose(grid.visits.reshape(-1)[pairs], counts)


def test_gae_on_episodes_is_gae_of_the_looked_up_critic():
    # the bridge only looks the critic up at S_t and S_{t+1}: the same as calling gae directly
    mdp = random_mdp(4, 2, gamma=0.8, seed=3)
    pi = np.full((4, 2), 0.5)
    episodes = mdp.sample_episodes(pi, 5, 30, np.random.default_rng(1))
    critic = np.arange(4.0)
    want = gae(
        torch.as_tensor(episodes["rewards"]),
        torch.as_tensor(critic[episodes["states"]]),
        torch.as_tensor(critic[episodes["next_states"]]),
        torch.as_tensor(episodes["terminated"]),
        torch.as_tensor(episodes["truncated"]),
        0.8,
        0.6,
    )
    np.testing.assert_array_equal(gae_on_episodes(episodes, critic, 0.8, 0.6), want.numpy())


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    lam=st.floats(0.0, 1.0),
    error=st.floats(0.0, 2.0),
)
def test_exact_bias_is_linear_in_the_critics_error(seed, lam, error):
    # bias = gamma (1 - lambda) P (I - gamma lambda P_pi)^{-1} e: linear in e = v_w - V^pi
    mdp = random_mdp(4, 3, gamma=0.9, seed=seed % 50)
    pi = np.random.default_rng(seed).dirichlet(np.ones(3), size=4)
    v = mdp.values(pi)
    unit = lambda_return_bias(mdp, pi, noisy_critic(v, 1.0, mdp.terminal, seed=seed), lam)
    scaled = lambda_return_bias(mdp, pi, noisy_critic(v, error, mdp.terminal, seed=seed), lam)
    np.testing.assert_allclose(scaled, error * unit, atol=1e-9 * (1 + np.abs(unit).max()))


def test_noisy_critic_and_lambda_return_bias_name_bad_input(walk):
    mdp, pi = walk
    v = mdp.values(pi)
    with pytest.raises(ValueError, match="gae_lambda"):
        lambda_return_bias(mdp, pi, v, 1.5)
    with pytest.raises(ValueError, match="error=-1"):
        noisy_critic(v, -1, mdp.terminal)
