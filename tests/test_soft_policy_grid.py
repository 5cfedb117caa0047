"""The soft policy grid of notebook 04 (rlcourse.sweeps.soft_policy_grid) against the definitions
of the soft values, the greedy softmax policy and its entropy (rlcourse.tabular)."""

import numpy as np
import pytest

from rlcourse.sweeps import SoftPolicyGrid, soft_policy_grid
from rlcourse.tabular import entropy, random_mdp, random_walk, softmax_policy, softmax_value

TEMPERATURES = np.r_[0.0, np.geomspace(0.01, 2.0, 16)]


@pytest.fixture(scope="module")
def mdp():
    return random_mdp(4, 3, gamma=0.9, seed=1)  # the notebook's MDP


@pytest.fixture(scope="module")
def grid(mdp):
    return soft_policy_grid(mdp, TEMPERATURES)


def test_grid_shapes_and_sorted_unique_temperatures(mdp):
    grid = soft_policy_grid(mdp, [1.0, 0.1, 1.0, 0.0])
    np.testing.assert_array_equal(grid.temperatures, [0.0, 0.1, 1.0])
    assert grid.q.shape == grid.pi.shape == (3, mdp.num_states, mdp.num_actions)
    assert grid.v.shape == grid.entropy.shape == grid.values.shape == (3, mdp.num_states)
    assert grid.index(0.09) == 1 and grid.index(50) == 2


def test_grid_policies_are_the_greedy_softmax_policies_of_the_soft_optimal_q(mdp, grid):
    for k, lam in enumerate(grid.temperatures):
        q_star, v_star, _ = mdp.soft_value_iteration(lam)
        np.testing.assert_allclose(grid.q[k], q_star, atol=1e-10)
        np.testing.assert_allclose(grid.pi[k], softmax_policy(grid.q[k], lam), atol=1e-12)
        np.testing.assert_allclose(
            grid.v[k], softmax_value(grid.q[k], lam), atol=1e-10
        )  # log-sum-exp
        np.testing.assert_allclose(grid.entropy[k], entropy(grid.pi[k]), atol=1e-12)


def test_grid_values_are_the_policys_own_soft_and_ordinary_values(mdp, grid):
    for k, lam in enumerate(grid.temperatures):
        q_soft, v_soft = mdp.soft_values(grid.pi[k], lam)
        np.testing.assert_allclose(grid.q[k], q_soft, atol=1e-8)
        np.testing.assert_allclose(grid.v[k], v_soft, atol=1e-8)
        # the slide's definition: v = E_{A~pi}[q(s, A)] + lambda H(pi(.|s))
        np.testing.assert_allclose(
            grid.v[k], (grid.pi[k] * grid.q[k]).sum(-1) + lam * grid.entropy[k], atol=1e-8
        )
        np.testing.assert_allclose(grid.values[k], mdp.values(grid.pi[k]), atol=1e-12)


def test_no_policy_beats_the_greedy_softmax_policy_in_soft_value(mdp, grid):
    rng = np.random.default_rng(0)
    k = grid.index(0.3)
    lam = grid.temperatures[k]
    for _ in range(50):
        pi = rng.dirichlet(np.ones(mdp.num_actions), size=mdp.num_states)
        assert (mdp.soft_values(pi, lam)[1] <= grid.v[k] + 1e-9).all()


def test_temperature_zero_is_the_ordinary_optimum_and_small_temperatures_approach_it(mdp, grid):
    assert grid.temperatures[0] == 0.0
    greedy = np.eye(mdp.num_actions)[grid.q[0].argmax(-1)]
    np.testing.assert_array_equal(grid.pi[0], greedy)
    np.testing.assert_allclose(grid.entropy[0], 0.0, atol=1e-12)
    np.testing.assert_allclose(grid.v[0], grid.values[0], atol=1e-8)  # no bonus: soft = ordinary
    np.testing.assert_allclose(grid.v[0], mdp.q_values(greedy).max(-1), atol=1e-8)
    # 0 <= v*_lambda - V* <= lambda log|A| / (1 - gamma)
    gap = grid.v - grid.v[0]
    bound = grid.temperatures[:, None] * np.log(mdp.num_actions) / (1 - mdp.gamma)
    assert (gap >= -1e-8).all() and (gap <= bound + 1e-8).all()
    np.testing.assert_allclose(grid.pi[1], greedy, atol=1e-6)  # lambda = 0.01


def test_entropy_falls_as_the_temperature_falls_on_the_notebooks_mdp(grid):
    # Not a theorem for the one-step entropy (q* moves with lambda too), but true on this MDP ...
    assert (np.diff(grid.entropy, axis=0) >= -1e-9).all()
    assert grid.entropy[-1].min() > 0.9 * np.log(3)  # close to uniform at lambda = 2


@pytest.mark.parametrize("seed", range(6))
def test_soft_value_rises_reward_falls_and_discounted_entropy_rises_with_the_temperature(seed):
    # ... these are: v*_lambda = max_pi (V^pi + lambda B^pi) with one maximiser for all states, B^pi
    # the discounted entropy; so v* and B^{pi*} do not decrease and V^{pi*} does not increase as
    # lambda grows.
    grid = soft_policy_grid(random_mdp(4, 3, gamma=0.9, seed=seed), TEMPERATURES)
    assert (np.diff(grid.v, axis=0) >= -1e-8).all()
    assert (np.diff(grid.values, axis=0) <= 1e-8).all()
    bonus = (grid.v - grid.values)[1:] / grid.temperatures[1:, None]
    assert (np.diff(bonus, axis=0) >= -1e-6).all()


def test_grid_handles_terminal_states():
    grid = soft_policy_grid(random_walk(5), [0.0, 0.5])
    np.testing.assert_allclose(grid.v[:, [0, -1]], 0.0, atol=1e-12)
    np.testing.assert_allclose(grid.pi.sum(-1), 1.0)


@pytest.mark.parametrize("temperatures", [[], [0.1, -0.1], [np.nan], [np.inf]])
def test_bad_temperatures_name_the_parameter(mdp, temperatures):
    with pytest.raises(ValueError, match="temperatures"):
        soft_policy_grid(mdp, temperatures)


def test_grid_is_a_plain_dataclass(grid):
    assert isinstance(grid, SoftPolicyGrid)


def test_grid_soft_value_is_the_largest_regularised_one_step_value(mdp, grid):
    # v*(s) = max over pi(.|s) of E_{A~pi}[q*(s, A)] + lambda H(pi(.|s)): brute force over a
    # lattice of distributions on three actions never beats the grid's v*, and pi* attains it
    k = grid.index(0.5)
    lam, q = grid.temperatures[k], grid.q[k]
    steps = np.linspace(0.0, 1.0, 41)
    lattice = np.array([(a, b, 1 - a - b) for a in steps for b in steps if a + b <= 1 + 1e-12])
    lattice = np.clip(lattice, 0.0, 1.0)
    lattice /= lattice.sum(-1, keepdims=True)
    for s in range(mdp.num_states):
        values = lattice @ q[s] + lam * entropy(lattice)
        assert values.max() <= grid.v[k, s] + 1e-9
        best = grid.pi[k, s] @ q[s] + lam * entropy(grid.pi[k, s])
        assert best == pytest.approx(grid.v[k, s], abs=1e-9)
