"""The soft-value views of notebook 04: the grid against the definitions, the figures and views build headless."""

import matplotlib
import numpy as np
import pytest

from rlcourse.tabular import entropy, random_mdp, random_walk, softmax_policy, softmax_value
from rlcourse.training import History
from rlcourse.widgets import (
    SoftPolicyGrid,
    draw_soft_policy,
    draw_temperature,
    soft_policy_grid,
    soft_policy_view,
)

matplotlib.use("Agg")

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
        np.testing.assert_allclose(grid.v[k], softmax_value(grid.q[k], lam), atol=1e-10)  # log-sum-exp
        np.testing.assert_allclose(grid.entropy[k], entropy(grid.pi[k]), atol=1e-12)


def test_grid_values_are_the_policys_own_soft_and_ordinary_values(mdp, grid):
    for k, lam in enumerate(grid.temperatures):
        q_soft, v_soft = mdp.soft_values(grid.pi[k], lam)
        np.testing.assert_allclose(grid.q[k], q_soft, atol=1e-8)
        np.testing.assert_allclose(grid.v[k], v_soft, atol=1e-8)
        # the slide's definition: v = E_{A~pi}[q(s, A)] + lambda H(pi(.|s))
        np.testing.assert_allclose(grid.v[k], (grid.pi[k] * grid.q[k]).sum(-1) + lam * grid.entropy[k], atol=1e-8)
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
    # ... these are: v*_lambda = max_pi (V^pi + lambda B^pi) with one maximiser for all states, B^pi the
    # discounted entropy; so v* and B^{pi*} do not decrease and V^{pi*} does not increase as lambda grows.
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


def test_soft_policy_figure_and_view_build_without_a_browser(grid):
    fig = draw_soft_policy(grid, temperature=0.3, state=2)
    assert len(fig.axes) == 3
    assert "state 2" in fig.axes[0].get_title()
    heights = [bar.get_height() for bar in fig.axes[0].patches]
    np.testing.assert_allclose(heights, grid.pi[grid.index(0.3), 2])
    with pytest.raises(ValueError, match="state"):
        draw_soft_policy(grid, 0.3, state=4)

    view = soft_policy_view(grid, temperature=0.0, state=1)
    slider, states = view.children[0].children
    assert slider.value == 0.0 and states.value == 1
    drawn = []
    import rlcourse.widgets as w

    original = w.draw_soft_policy
    try:
        w.soft.draw_soft_policy = lambda g, lam, s, fig=None: drawn.append((lam, s)) or original(g, lam, s)
        slider.value = float(grid.temperatures[-1])
        states.value = 3
    finally:
        w.soft.draw_soft_policy = original
    assert drawn == [(float(grid.temperatures[-1]), 1), (float(grid.temperatures[-1]), 3)]
    with pytest.raises(ValueError, match="state"):
        soft_policy_view(grid, state=7)


def test_temperature_figure_reads_alpha_and_entropy_of_each_run():
    runs = {}
    for label, alphas in [("fixed", [0.2, 0.2]), ("tuned", [0.15, 0.05])]:
        h = History()
        for i, alpha in enumerate(alphas):
            h.add_iteration(1000 * (i + 1), 1000 * (i + 2), alpha=alpha, entropy=-0.5 * i)
        runs[label] = h
    runs["empty"] = History()
    fig = draw_temperature(runs, target_entropy=-1.0)
    ax_alpha, ax_h = fig.axes
    assert [line.get_label() for line in ax_alpha.get_lines()] == ["fixed", "tuned"]
    np.testing.assert_allclose(ax_alpha.get_lines()[1].get_ydata(), [0.15, 0.05])
    np.testing.assert_allclose(ax_alpha.get_lines()[1].get_xdata(), [2000, 3000])
    assert ax_alpha.get_yscale() == "log"
    assert any(np.allclose(line.get_ydata(), -1.0) for line in ax_h.get_lines())


def test_grid_is_a_plain_dataclass(grid):
    assert isinstance(grid, SoftPolicyGrid)
