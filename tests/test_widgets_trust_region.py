"""The importance-sampling and trust-region views of notebooks 05 and 06: their data against the exact functions
of rlcourse.importance and rlcourse.tabular, the figures' content, and the views' controls (headless)."""

import matplotlib
import numpy as np
import pytest

import rlcourse.widgets as w
from rlcourse import importance as isx
from rlcourse.tabular import FiniteMDP, kl_divergence, random_mdp, random_walk, softmax_policy, total_variation
from rlcourse.training import History
from rlcourse.widgets import (
    ImportanceSamplingGrid,
    TrustRegionPath,
    draw_importance_sampling,
    draw_trpo_runs,
    draw_trust_region,
    importance_sampling_grid,
    importance_sampling_view,
    policy_path,
    trust_region_path,
    trust_region_view,
)

matplotlib.use("Agg")

X = np.linspace(-4, 4, 41)
P = isx.discretized_gaussian(X, 0.0, 1.0)
F = X**2
SHIFTS = np.array([0.0, 0.5, 1.0, 2.0])
STEPS = np.r_[0.0, np.geomspace(1e-3, 20, 25)]


@pytest.fixture(scope="module")
def shift_grid():
    proposals = [isx.tilted_proposal(P, X, m) for m in SHIFTS]
    return importance_sampling_grid(X, F, P, proposals, SHIFTS, n=20, repeats=200, seed=3, param_name="shift")


@pytest.fixture(scope="module")
def bandit():
    pi = np.array([0.5, 0.3, 0.15, 0.05])
    r = np.array([0.2, 0.5, 0.1, 1.0])
    mdp = FiniteMDP(np.ones((1, 4, 1)), r[None], 0.0, [1.0])
    return mdp, pi, mdp.advantages(pi[None])[0]


@pytest.fixture(scope="module")
def mdp_and_policy():
    mdp = random_mdp(4, 3, gamma=0.9, seed=2)
    pi = softmax_policy(np.random.default_rng(0).standard_normal((4, 3)), 1.0)
    return mdp, pi


@pytest.fixture(scope="module")
def path(mdp_and_policy):
    mdp, pi = mdp_and_policy
    return trust_region_path(mdp, pi, STEPS)


# ------------------------------------------------------------------------------ importance sampling grid


def test_grid_exact_columns_are_the_functions_of_rlcourse_importance(shift_grid):
    g = shift_grid
    assert isinstance(g, ImportanceSamplingGrid)
    assert g.p.shape == g.q.shape == (len(SHIFTS), X.size)
    assert g.estimates.shape == g.normalized.shape == g.ess.shape == (len(SHIFTS), 200)
    for m, shift in enumerate(SHIFTS):
        np.testing.assert_allclose(g.q[m], isx.tilted_proposal(P, X, shift))
        np.testing.assert_allclose(g.p[m], P)
        assert g.mu[m] == pytest.approx(isx.exact_mean(P, F))
        assert g.mu[m] == pytest.approx(isx.estimator_mean(P, g.q[m], F))  # unbiased
        assert g.variance[m] == pytest.approx(isx.estimator_variance(P, g.q[m], F, n=20))
        assert g.direct[m] == pytest.approx(isx.direct_variance(P, F, n=20))
        assert g.chi2[m] == pytest.approx(isx.chi2_divergence(P, g.q[m]))
    assert g.variance[0] == pytest.approx(g.direct[0])  # q = p: plain Monte Carlo
    assert (np.diff(g.variance) > 0).all() and (np.diff(g.chi2) > 0).all()  # both grow as q leaves p


def test_grid_estimates_are_the_package_estimates_of_samples_drawn_from_q(shift_grid):
    g = shift_grid
    for m in (0, 2, 3):
        idx = isx.sample(g.q[m], g.n * g.repeats, seed=3).reshape(g.repeats, g.n)
        for i in (0, 17, 199):
            x = idx[i]
            p_x, q_x, f_x = g.p[m][x], g.q[m][x], F[x]
            assert g.estimates[m, i] == pytest.approx(isx.importance_weighted_estimate(p_x, q_x, f_x))
            assert g.normalized[m, i] == pytest.approx(isx.self_normalized_estimate(p_x, q_x, f_x))
            assert g.ess[m, i] == pytest.approx(isx.effective_sample_size(isx.likelihood_ratios(p_x, q_x)))
    # q = p: every weight is 1, so both estimates are the plain mean and the ESS is n
    np.testing.assert_allclose(g.estimates[0], g.normalized[0])
    np.testing.assert_allclose(g.ess[0], g.n)


def test_grid_estimates_are_unbiased_where_the_variance_is_moderate(shift_grid):
    g = shift_grid
    for m in range(3):  # shift <= 1: 200 estimates pin the mean down to a few standard errors
        stderr = np.sqrt(g.variance[m] / g.repeats)
        assert abs(g.estimates[m].mean() - g.mu[m]) < 4 * stderr


def test_same_proposal_means_the_same_samples_at_every_position(bandit):
    mdp, pi, adv = bandit
    steps = [0.0, 1.0, 5.0]
    g = importance_sampling_grid(
        np.arange(4), adv, [policy_path(pi, adv, s) for s in steps], pi, steps, n=10, repeats=50
    )
    # the estimate is mean_i w_i A(X_i) over the same actions X_i at every step: at step 0 it is the plain mean
    idx = isx.sample(pi, 500, seed=0).reshape(50, 10)
    np.testing.assert_allclose(g.estimates[0], adv[idx].mean(1))
    ratio = g.p[2] / pi
    np.testing.assert_allclose(g.estimates[2], (ratio[idx] * adv[idx]).mean(1))
    # mu is the improvement J(pi') - J(pi) of the one-state MDP
    for m, pi_new in enumerate(g.p):
        assert g.mu[m] == pytest.approx(mdp.expected_return(pi_new[None]) - mdp.expected_return(pi[None]))


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(params=[]), "params"),
        (dict(params=[0.0, np.nan]), "params"),
        (dict(q=np.ones((3, 41)) / 41), "q="),
        (dict(n=0), "n=0"),
        (dict(repeats=1), "repeats=1"),
    ],
)
def test_bad_grid_input_names_the_argument(kwargs, message):
    args = dict(x=X, f=F, p=P, q=P, params=[0.0, 1.0])
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        importance_sampling_grid(**args)


def test_a_proposal_that_misses_part_of_the_support_is_refused():
    q = np.where(X >= 0, P, 0.0)
    with pytest.raises(ValueError, match="biased"):
        importance_sampling_grid(X, F, P, q / q.sum(), [0.0])


# --------------------------------------------------------------------------- importance sampling figure/view


def test_importance_sampling_figure_shows_the_grid_at_the_chosen_position(shift_grid):
    g = shift_grid
    fig = draw_importance_sampling(g, 0.9)  # nearest: shift 1.0
    ax_dist, ax_hist, ax_var, ax_ess, ax_weight = fig.axes  # the weight axis, a twin of the first, comes last
    np.testing.assert_allclose(ax_weight.get_lines()[0].get_ydata(), g.p[2] / g.q[2])
    assert "shift = 1" in ax_dist.get_title()
    assert f"{float(kl_divergence(P, g.q[2])):.3g}" in ax_dist.get_title()
    np.testing.assert_allclose(ax_dist.get_lines()[0].get_ydata(), g.q[2])  # q
    np.testing.assert_allclose(ax_dist.get_lines()[1].get_ydata(), g.p[2])  # p
    counts = sum(patch.get_height() for patch in ax_hist.patches)
    lo, hi = ax_hist.get_xlim()
    inside = ((g.estimates[2] >= lo) & (g.estimates[2] <= hi)).sum()
    assert counts == inside
    assert any(np.allclose(line.get_xdata(), g.mu[2]) for line in ax_hist.get_lines())  # the true mean
    np.testing.assert_allclose(ax_var.get_lines()[0].get_ydata(), g.variance)
    np.testing.assert_allclose(ax_ess.get_lines()[0].get_ydata(), 1 / (1 + g.chi2))
    np.testing.assert_allclose(ax_ess.get_lines()[1].get_ydata(), g.ess.mean(1) / g.n)
    text = ax_hist.texts[0].get_text()
    assert f"exact sd {np.sqrt(g.variance[2]):.3g}" in text


def test_importance_sampling_figure_draws_the_self_normalised_histogram_on_request(shift_grid):
    plain = draw_importance_sampling(shift_grid, 2.0)
    both = draw_importance_sampling(shift_grid, 2.0, normalized=True)
    assert len(both.axes[1].patches) == len(plain.axes[1].patches) + 1  # one step outline more
    assert "self-normalised" in both.axes[1].texts[0].get_text()


def test_small_supports_are_drawn_as_bars_with_their_ratios(bandit):
    _, pi, adv = bandit
    steps = [0.0, 3.0]
    g = importance_sampling_grid(
        np.arange(4), adv, [policy_path(pi, adv, s) for s in steps], pi, steps, n=10, repeats=20
    )
    ax_dist = draw_importance_sampling(g, 3.0).axes[0]
    heights = [bar.get_height() for bar in ax_dist.patches]
    np.testing.assert_allclose(heights, np.r_[pi, g.p[1]])
    assert [t.get_text() for t in ax_dist.texts] == [f"{r:.2f}" for r in g.p[1] / pi]


def test_importance_sampling_view_has_its_controls_and_redraws(shift_grid, monkeypatch):
    view = importance_sampling_view(shift_grid, param=0.4)
    assert view.slider.value == 0.5 and view.checkbox.value is False
    assert view.slider.options == tuple((f"{s:.3g}", float(s)) for s in SHIFTS)
    drawn = []
    original = w.draw_importance_sampling
    monkeypatch.setattr(
        w.importance, "draw_importance_sampling", lambda g, v, n, fig=None: drawn.append((v, n)) or original(g, v, n)
    )
    view.slider.value = 2.0
    view.checkbox.value = True
    assert drawn == [(2.0, False), (2.0, True)]


# ---------------------------------------------------------------------------------------------- policy path


def test_policy_path_starts_at_pi_and_moves_towards_the_greedy_policy(mdp_and_policy):
    mdp, pi = mdp_and_policy
    adv = mdp.advantages(pi)
    greedy = softmax_policy(adv, 0.0)
    np.testing.assert_allclose(policy_path(pi, adv, 0.0), pi)
    np.testing.assert_allclose(policy_path(pi, adv, 0.0, "mixture"), pi)
    np.testing.assert_allclose(policy_path(pi, adv, 1.0, "mixture"), greedy)
    np.testing.assert_allclose(policy_path(pi, adv, 200.0), greedy, atol=1e-6)
    # the softmax path is softmax(log pi + step A)
    np.testing.assert_allclose(policy_path(pi, adv, 0.7), softmax_policy(np.log(pi) + 0.7 * adv, 1.0))
    for path in ("softmax", "mixture"):
        kl = [kl_divergence(policy_path(pi, adv, s, path), pi) for s in np.linspace(0, 1, 11)]
        assert (np.diff(kl, axis=0) >= -1e-12).all()  # per state, KL(pi' || pi) does not decrease


def test_policy_path_keeps_zero_probabilities_and_names_bad_input():
    pi = np.array([0.0, 0.5, 0.5])
    adv = np.array([5.0, -1.0, 1.0])
    assert policy_path(pi, adv, 3.0)[0] == 0.0
    with pytest.raises(ValueError, match="step"):
        policy_path(pi, adv, -1.0)
    with pytest.raises(ValueError, match="step"):
        policy_path(pi, adv, 1.5, "mixture")
    with pytest.raises(ValueError, match="path"):
        policy_path(pi, adv, 0.5, "natural")
    with pytest.raises(ValueError, match="shape"):
        policy_path(pi, adv[:2], 0.5)


# ----------------------------------------------------------------------------------------- trust region path


def test_path_columns_are_the_exact_functions_of_rlcourse_tabular(mdp_and_policy, path):
    mdp, pi = mdp_and_policy
    assert isinstance(path, TrustRegionPath)
    d_pi = mdp.state_distribution(pi)
    J = mdp.expected_return(pi)
    assert path.J == pytest.approx(J)
    for k in (0, 5, 12, len(STEPS) - 1):
        pi_new = path.policies[k]
        np.testing.assert_allclose(pi_new, policy_path(pi, mdp.advantages(pi), STEPS[k]))
        assert path.improvement[k] == pytest.approx(mdp.expected_return(pi_new) - J, abs=1e-12)
        assert path.surrogate[k] == pytest.approx(mdp.surrogate(pi, pi_new) - J, abs=1e-12)
        assert path.lower_bound[k] == pytest.approx(mdp.penalised_surrogate(pi, pi_new) - J, abs=1e-12)
        term_a, term_b = mdp.performance_difference_terms(pi, pi_new)
        assert path.surrogate[k] == pytest.approx(term_a, abs=1e-10)
        assert path.neglected[k] == pytest.approx(term_b, abs=1e-12)
        assert path.penalty_coefficient[k] == pytest.approx(mdp.tv_penalty_coefficient(pi, pi_new))
        assert path.mean_tv[k] == pytest.approx(d_pi @ total_variation(pi_new, pi))
        kl = kl_divergence(pi_new, pi)
        assert path.mean_kl[k] == pytest.approx(d_pi @ kl)
        assert path.max_kl[k] == pytest.approx(kl.max())
        C = path.penalty_coefficient[k]
        assert path.pinsker_bound[k] == pytest.approx(path.surrogate[k] - C * (d_pi @ np.sqrt(kl / 2)))


def test_path_satisfies_the_lemma_the_bound_and_pinsker(path):
    np.testing.assert_allclose(path.improvement, path.surrogate - path.neglected, atol=1e-10)  # (A) - (B)
    assert (path.improvement >= path.lower_bound - 1e-10).all()  # the penalised surrogate is a lower bound
    assert (path.lower_bound >= path.pinsker_bound - 1e-10).all()  # Pinsker's version is lower still
    assert (path.neglected <= path.penalty_coefficient * path.mean_tv + 1e-10).all()
    np.testing.assert_allclose([path.improvement[0], path.surrogate[0], path.lower_bound[0]], 0.0, atol=1e-12)
    assert path.lower_bound.max() > 0  # a guaranteed improvement exists
    assert (np.diff(path.mean_kl) >= -1e-12).all()


def test_trust_region_end_is_the_last_step_within_delta(path):
    for delta in (1e-4, 0.01, 0.1):
        k = path.trust_region_end(delta)
        assert path.mean_kl[k] <= delta < path.mean_kl[k + 1]
    assert path.trust_region_end(1e9) == len(STEPS) - 1
    assert path.index(0.00095) == 1


def test_path_leaves_terminal_states_out_of_the_expectations():
    mdp = random_walk(5)
    pi = np.full((mdp.num_states, 2), 0.5)
    g = trust_region_path(mdp, pi, [0.0, 0.5, 2.0])
    d_pi = mdp.state_distribution(pi)
    kl = kl_divergence(g.policies[2], pi)
    assert g.mean_kl[2] == pytest.approx(d_pi[~mdp.terminal] @ kl[~mdp.terminal])
    assert (g.improvement >= g.lower_bound - 1e-10).all()


# ------------------------------------------------------------------------------------ trust region figure/view


def test_trust_region_figure_shows_the_path_and_marks_the_trust_region(path):
    k = path.index(0.3)
    fig = draw_trust_region(path, 0.3, delta=0.01)
    ax, ax_zoom, ax_kl = fig.axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_allclose(lines["J(π') − J(π)  (exact)"].get_ydata(), path.improvement)
    np.testing.assert_allclose(lines["L_π(π') − J(π)  (surrogate, term (A))"].get_ydata(), path.surrogate)
    np.testing.assert_allclose(lines["L_π(π') − C·E[D_TV] − J(π)  (lower bound)"].get_ydata(), path.lower_bound)
    assert f"{path.improvement[k]:.4f}" in ax.get_title() and f"{path.lower_bound[k]:.4f}" in ax.get_title()
    edge = path.trust_region_end(0.01)
    shaded = [p for p in ax.patches if "trust region" in p.get_label()]
    assert len(shaded) == 1 and shaded[0].get_x() + shaded[0].get_width() == pytest.approx(STEPS[edge])
    assert ax_zoom.get_xlim()[1] <= 2 * max(STEPS[edge], STEPS[int(path.lower_bound.argmax())]) + 1e-12
    kl_line = ax_kl.get_lines()[0]
    np.testing.assert_allclose(kl_line.get_ydata(), path.mean_kl[path.mean_kl > 0])
    assert any(np.allclose(line.get_ydata(), 0.01) for line in ax_kl.get_lines())  # delta
    with pytest.raises(ValueError, match="delta"):
        draw_trust_region(path, 0.3, delta=0.0)


def test_trust_region_view_has_two_sliders_and_redraws(path, monkeypatch):
    view = trust_region_view(path, delta=0.01)
    assert view.step.value == pytest.approx(STEPS[path.trust_region_end(0.01)])  # starts at the edge
    assert 0.01 in [value for _, value in view.delta.options]
    drawn = []
    original = w.draw_trust_region
    monkeypatch.setattr(
        w.trust_region, "draw_trust_region", lambda g, s, d, fig=None: drawn.append((s, d)) or original(g, s, d)
    )
    view.step.value = float(STEPS[3])
    view.delta.value = 0.1
    assert drawn == [(float(STEPS[3]), 0.01), (float(STEPS[3]), 0.1)]
    view = trust_region_view(path, step=1.0, delta=0.003)
    assert view.step.value == float(STEPS[path.index(1.0)]) and view.delta.value == 0.003
    with pytest.raises(ValueError, match="deltas"):
        trust_region_view(path, deltas=[0.0, 0.1])


# ------------------------------------------------------------------------------------------------- TRPO runs


def fake_history(kls, fractions, returns):
    h = History()
    for i, (kl, frac) in enumerate(zip(kls, fractions, strict=True)):
        h.add_iteration(i + 1, 100 * (i + 1), kl=kl, step_fraction=frac, surrogate=0.01 * i, rejected=1 - frac)
    for i, ret in enumerate(returns):
        h.add_episode(50 * (i + 1), ret, int(ret))
    return h


def test_trpo_runs_figure_draws_every_seed_and_their_mean():
    runs = {
        "epochs = 1": [fake_history([0.008, 0.007], [1.0, 1.0], [20, 40]), fake_history([0.006, 0.009], [1, 1], [30])],
        "epochs = 3": [fake_history([0.009, 0.0095, 0.01], [0.4, 0.33, 0.33], [25, 60, 90])],
    }
    fig = draw_trpo_runs(runs, delta=0.01, threshold=475, window=2)
    ax_ret, ax_kl, ax_step, ax_sur = fig.axes
    means = {line.get_label(): line for line in ax_kl.get_lines() if "mean of seeds" in line.get_label()}
    np.testing.assert_allclose(means["epochs = 1 (mean of seeds)"].get_ydata(), [0.007, 0.008])
    np.testing.assert_allclose(means["epochs = 3 (mean of seeds)"].get_ydata(), [0.009, 0.0095, 0.01])
    assert any(np.allclose(line.get_ydata(), 0.01) for line in ax_kl.get_lines())  # delta
    step_means = [line for line in ax_step.get_lines() if "mean of seeds" in line.get_label()]
    np.testing.assert_allclose(step_means[1].get_ydata(), [0.4, 0.33, 0.33])
    assert len([line for line in ax_ret.get_lines() if line.get_label() != "threshold 475"]) == 3  # one per seed
    assert any(np.allclose(line.get_ydata(), 475) for line in ax_ret.get_lines())
    assert len(ax_sur.get_lines()) == 3 + 2  # three seeds, two means
