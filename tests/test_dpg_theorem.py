"""The deterministic policy gradient theorem, checked exactly on linear-quadratic problems
(rlcourse.lq).

Slide "Deterministic Policy Gradient Theorem": grad J = 1/(1 - gamma) E_{S ~ d^mu}[grad mu(S) grad_a
Q(S, a)|a=mu(S)], with d^mu the normalised discounted state distribution.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlcourse.lq import (
    LQProblem,
    random_lq,
    random_stabilising_gain,
    solve_discrete_lyapunov,
    spectral_radius,
)

problems = dict(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 3),
    m=st.integers(1, 2),
    gamma=st.floats(0.0, 0.99),
)
few = settings(max_examples=40, deadline=None)


def problem_and_gain(seed, n, m, gamma):
    p = random_lq(seed, state_dim=n, action_dim=m, gamma=gamma)
    return p, random_stabilising_gain(p, seed + 1)


def rel_err(x, y):
    return np.linalg.norm(x - y) / np.linalg.norm(y)


# -- the theorem ------------------------------------------------------------------------------


@few
@given(**problems)
def test_dpg_gradient_equals_finite_difference_gradient_of_J(seed, n, m, gamma):
    p, K = problem_and_gain(seed, n, m, gamma)
    dpg = p.dpg_gradient(K)
    fd = p.finite_difference_gradient(K)
    assert dpg.shape == K.shape == (m, n)
    assert rel_err(dpg, fd) < 1e-6


@pytest.mark.parametrize("seed", range(3))
def test_dpg_gradient_is_the_expectation_of_the_integrand_over_d_mu(seed):
    """1/(1 - gamma) E_{S ~ d^mu}[grad_K mu(S) grad_a Q(S, KS)], by Monte Carlo over an exact sample
    of d^mu.

    A sample of d^mu: S_T with T ~ Geometric(1 - gamma) on {0, 1, ...}, i.e. P(T = t) = (1 - gamma)
    gamma^t.
    """
    p, K = problem_and_gain(seed, 2, 1, 0.7)
    rng = np.random.default_rng(seed)
    N = 40_000
    T = rng.geometric(1 - p.gamma, size=N) - 1
    ep = p.sample_episodes(K, N, int(T.max()) + 1, rng)
    S = ep["states"][T, np.arange(N)]
    integrand = p.dpg_integrand(K, S) / (1 - p.gamma)
    mean, se = integrand.mean(0), integrand.std(0) / np.sqrt(N)
    assert np.all(np.abs(mean - p.dpg_gradient(K)) < 4 * se)


@pytest.mark.parametrize("seed", range(3))
def test_gradient_vanishes_at_the_optimal_gain(seed):
    """Policy iteration (K <- argmax_a Q^K(s, a) = -H_aa^-1 H_as s) reaches the optimum; there grad
    J = 0."""
    p = random_lq(seed, state_dim=3, action_dim=2, gamma=0.95)
    K = np.zeros((2, 3))
    for _ in range(50):
        H, _ = p.q_matrix(K)
        K = -np.linalg.solve(H[3:, 3:], H[3:, :3])
    assert np.abs(p.dpg_gradient(K)).max() < 1e-8 * abs(p.objective(K))
    assert np.abs(p.finite_difference_gradient(K)).max() < 1e-6 * abs(p.objective(K))
    # ... and a small step in any direction lowers J.
    step = 1e-3 * np.random.default_rng(seed).standard_normal(K.shape)
    assert p.objective(K + step) < p.objective(K)


# -- the ingredients: J, V, Q, grad_a Q, d^mu ------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_J_matches_monte_carlo_rollouts(seed):
    p, K = problem_and_gain(seed, 2 + seed % 2, 1 + seed % 2, 0.8)
    rng = np.random.default_rng(seed)
    N, T = 4000, 100  # gamma^T = 2e-10: the truncated tail is negligible
    ep = p.sample_episodes(K, N, T, rng)
    assert ep["states"].shape == (T, N, p.state_dim) and ep["rewards"].shape == (T, N)
    np.testing.assert_allclose(ep["rewards"], p.reward(ep["states"], ep["actions"]))
    returns = (p.gamma ** np.arange(T)) @ ep["rewards"]
    se = returns.std() / np.sqrt(N)
    assert abs(returns.mean() - p.objective(K)) < 4 * se
    assert se < 0.05 * abs(p.objective(K))  # the check has teeth


@pytest.mark.parametrize("seed", range(3))
def test_state_second_moment_matches_monte_carlo(seed):
    """Sigma_d = (1 - gamma) sum_t gamma^t E[S_t S_t'] (normalised: tr and weights as for a
    distribution)."""
    p, K = problem_and_gain(seed, 2, 1, 0.8)
    ep = p.sample_episodes(K, 4000, 100, np.random.default_rng(seed))
    w = (1 - p.gamma) * p.gamma ** np.arange(100)
    mc = np.einsum("t,tni,tnj->ij", w, ep["states"], ep["states"]) / 4000
    np.testing.assert_allclose(mc, p.state_second_moment(K), rtol=0.1, atol=0.02 * np.trace(mc))


@few
@given(**problems)
def test_J_equals_discounted_expected_cost_under_d_mu(seed, n, m, gamma):
    """Two exact routes to J: -E_{S_0}[S_0' P S_0] - c (values) and 1/(1 - gamma) E_{d^mu}[r(S, KS)]
    (occupancy)."""
    p, K = problem_and_gain(seed, n, m, gamma)
    M = p.Q + K.T @ p.R @ K
    via_d = -np.trace(M @ p.state_second_moment(K)) / (1 - gamma)
    np.testing.assert_allclose(via_d, p.objective(K), rtol=1e-10)


@few
@given(**problems)
def test_V_and_Q_satisfy_their_bellman_equations(seed, n, m, gamma):
    """Q(s, a) = r(s, a) + gamma E[V(S')] and V(s) = Q(s, Ks), with E[V(S')] exact for S' ~ N(As +
    Ba, Sigma)."""
    p, K = problem_and_gain(seed, n, m, gamma)
    rng = np.random.default_rng(seed)
    s, a = rng.standard_normal((20, n)), rng.standard_normal((20, m))
    P, c = p.value_matrix(K)

    def expected_next_value(s, a):  # E[x'Px] = mean'P mean + tr(P Sigma) for x ~ N(mean, Sigma)
        mean = s @ p.A.T + a @ p.B.T
        return -(np.einsum("bi,ij,bj->b", mean, P, mean) + np.trace(P @ p.Sigma)) - c

    q = p.q_values(K, s, a)
    np.testing.assert_allclose(
        q, p.reward(s, a) + gamma * expected_next_value(s, a), rtol=1e-10, atol=1e-10
    )
    Ks = p.actions(K, s)
    v = p.values(K, s)
    np.testing.assert_allclose(
        v, p.reward(s, Ks) + gamma * expected_next_value(s, Ks), rtol=1e-10, atol=1e-10
    )
    np.testing.assert_allclose(p.q_values(K, s, Ks), v, rtol=1e-10, atol=1e-10)
    # J is the mean of V over S_0 ~ N(0, Sigma0).
    np.testing.assert_allclose(p.objective(K), -np.trace(P @ p.Sigma0) - c, rtol=1e-12)


@few
@given(**problems)
def test_q_action_gradient_matches_finite_differences(seed, n, m, gamma):
    p, K = problem_and_gain(seed, n, m, gamma)
    rng = np.random.default_rng(seed)
    s, a = rng.standard_normal(n), rng.standard_normal(m)
    eps = 1e-6
    fd = np.array(
        [
            (p.q_values(K, s, a + eps * e) - p.q_values(K, s, a - eps * e)) / (2 * eps)
            for e in np.eye(m)
        ]
    )
    np.testing.assert_allclose(
        p.q_action_gradient(K, s, a), fd, rtol=1e-6, atol=1e-6 * np.abs(fd).max()
    )
    # The integrand of the theorem is the outer product grad_a Q(s, Ks) s'.
    np.testing.assert_allclose(p.dpg_integrand(K, s), np.outer(p.q_action_gradient(K, s, K @ s), s))


def test_lyapunov_solver():
    rng = np.random.default_rng(0)
    F = rng.standard_normal((3, 3))
    F *= 0.9 / spectral_radius(F)
    W = rng.standard_normal((3, 3))
    X = solve_discrete_lyapunov(F, W)
    np.testing.assert_allclose(X, F @ X @ F.T + W, atol=1e-12)


# -- errors --------------------------------------------------------------------------------


def test_unstable_gain_gives_a_clear_error():
    p = random_lq(0, state_dim=2, action_dim=1, gamma=0.9)
    K = random_stabilising_gain(p, 1)
    # Push the closed loop past the discounted stability boundary along a scalar multiple of B'.
    K_bad = K + 100.0 * p.B.T
    assert np.sqrt(p.gamma) * spectral_radius(p.A + p.B @ K_bad) >= 1
    for method in (
        "objective",
        "dpg_gradient",
        "finite_difference_gradient",
        "value_matrix",
        "state_second_moment",
    ):
        with pytest.raises(
            ValueError, match=r"K=.* is not allowed: K must be stabilising.*sqrt\(gamma\)"
        ):
            getattr(p, method)(K_bad)


def test_bad_problem_inputs_give_clear_errors():
    good = dict(
        A=0.5 * np.eye(2),
        B=np.ones((2, 1)),
        Q=np.eye(2),
        R=np.eye(1),
        Sigma=np.eye(2),
        gamma=0.9,
        Sigma0=np.eye(2),
    )
    LQProblem(**good)
    with pytest.raises(
        ValueError, match=r"gamma=1.0 is not allowed: gamma must be a number in \[0, 1\)"
    ):
        LQProblem(**{**good, "gamma": 1.0})
    with pytest.raises(ValueError, match="R=.* is not allowed: R must be positive definite"):
        LQProblem(**{**good, "R": np.zeros((1, 1))})
    with pytest.raises(ValueError, match="Q=.* is not allowed: Q must be symmetric"):
        LQProblem(**{**good, "Q": np.array([[1.0, 1.0], [0.0, 1.0]])})
    with pytest.raises(ValueError, match=r"B must have shape"):
        LQProblem(**{**good, "B": np.ones((3, 1))})
    p = LQProblem(**good)
    with pytest.raises(ValueError, match=r"K must have shape \(action_dim, state_dim\) = \(1, 2\)"):
        p.objective(np.zeros((2, 1)))
    with pytest.raises(ValueError, match="eps=0.0 is not allowed: eps must be a positive number"):
        p.finite_difference_gradient(np.zeros((1, 2)), eps=0.0)
