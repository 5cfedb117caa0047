"""The trust-region path of notebook 06 (rlcourse.sweeps.policy_path, trust_region_path) against
the exact functions of rlcourse.tabular, the slides' lemma and bounds, and finite differences."""

import numpy as np
import pytest

from rlcourse.sweeps import TrustRegionPath, policy_path, trust_region_path
from rlcourse.tabular import kl_divergence, random_mdp, random_walk, softmax_policy, total_variation

STEPS = np.r_[0.0, np.geomspace(1e-3, 20, 25)]


@pytest.fixture(scope="module")
def mdp_and_policy():
    mdp = random_mdp(4, 3, gamma=0.9, seed=2)
    pi = softmax_policy(np.random.default_rng(0).standard_normal((4, 3)), 1.0)
    return mdp, pi


@pytest.fixture(scope="module")
def path(mdp_and_policy):
    mdp, pi = mdp_and_policy
    return trust_region_path(mdp, pi, STEPS)


def test_policy_path_starts_at_pi_and_moves_towards_the_greedy_policy(mdp_and_policy):
    mdp, pi = mdp_and_policy
    adv = mdp.advantages(pi)
    greedy = softmax_policy(adv, 0.0)
    np.testing.assert_allclose(policy_path(pi, adv, 0.0), pi)
    np.testing.assert_allclose(policy_path(pi, adv, 0.0, "mixture"), pi)
    np.testing.assert_allclose(policy_path(pi, adv, 1.0, "mixture"), greedy)
    np.testing.assert_allclose(policy_path(pi, adv, 200.0), greedy, atol=1e-6)
    # the softmax path is softmax(log pi + step A)
    np.testing.assert_allclose(
        policy_path(pi, adv, 0.7), softmax_policy(np.log(pi) + 0.7 * adv, 1.0)
    )
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
        assert path.lower_bound[k] == pytest.approx(
            mdp.penalised_surrogate(pi, pi_new) - J, abs=1e-12
        )
        term_a, term_b = mdp.performance_difference_terms(pi, pi_new)
        assert path.surrogate[k] == pytest.approx(term_a, abs=1e-10)
        assert path.neglected[k] == pytest.approx(term_b, abs=1e-12)
        assert path.penalty_coefficient[k] == pytest.approx(mdp.tv_penalty_coefficient(pi, pi_new))
        assert path.mean_tv[k] == pytest.approx(d_pi @ total_variation(pi_new, pi))
        kl = kl_divergence(pi_new, pi)
        assert path.mean_kl[k] == pytest.approx(d_pi @ kl)
        assert path.max_kl[k] == pytest.approx(kl.max())
        C = path.penalty_coefficient[k]
        assert path.pinsker_bound[k] == pytest.approx(
            path.surrogate[k] - C * (d_pi @ np.sqrt(kl / 2))
        )


def test_path_satisfies_the_lemma_the_bound_and_pinsker(path):
    np.testing.assert_allclose(
        path.improvement, path.surrogate - path.neglected, atol=1e-10
    )  # (A) - (B)
    assert (
        path.improvement >= path.lower_bound - 1e-10
    ).all()  # the penalised surrogate is a lower bound
    assert (
        path.lower_bound >= path.pinsker_bound - 1e-10
    ).all()  # Pinsker's version is lower still
    assert (path.neglected <= path.penalty_coefficient * path.mean_tv + 1e-10).all()
    np.testing.assert_allclose(
        [path.improvement[0], path.surrogate[0], path.lower_bound[0]], 0.0, atol=1e-12
    )
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


# Definition-based checks added with the move to the math floor.


@pytest.mark.parametrize("path_name", ["softmax", "mixture"])
def test_surrogate_and_j_have_the_same_slope_at_the_start_of_the_path(mdp_and_policy, path_name):
    # L_pi touches J at pi with the same gradient, so along any smooth path from pi the slopes of
    # J(pi') - J(pi) and L_pi(pi') - J(pi) agree at step 0 (central finite differences)
    mdp, pi = mdp_and_policy
    h = 1e-5
    g = trust_region_path(mdp, pi, [0.0, h, 2 * h], path=path_name)
    slope_j = (-3 * g.improvement[0] + 4 * g.improvement[1] - g.improvement[2]) / (2 * h)
    slope_l = (-3 * g.surrogate[0] + 4 * g.surrogate[1] - g.surrogate[2]) / (2 * h)
    assert slope_l > 0  # the path goes uphill: it follows the advantages
    assert slope_j == pytest.approx(slope_l, rel=1e-4)


def test_softmax_path_step_is_a_natural_gradient_step_in_the_logits():
    # d/d step log pi'(a|s) at step 0 is A(s, a) - E_{pi}[A(s, .)] = A(s, a) (E_pi[A^pi] = 0)
    mdp = random_mdp(3, 4, gamma=0.8, seed=5)
    pi = np.random.default_rng(1).dirichlet(np.ones(4), size=3)
    adv = mdp.advantages(pi)
    h = 1e-6
    d_log = (np.log(policy_path(pi, adv, h)) - np.log(policy_path(pi, adv, 0.0))) / h
    np.testing.assert_allclose(d_log, adv, atol=1e-5)
    np.testing.assert_allclose((pi * adv).sum(-1), 0.0, atol=1e-12)


def test_path_total_variation_is_half_the_l1_distance(path, mdp_and_policy):
    mdp, pi = mdp_and_policy
    d_pi = mdp.state_distribution(pi)
    for k in (3, 10, 20):
        l1 = np.abs(path.policies[k] - pi).sum(-1)
        assert path.mean_tv[k] == pytest.approx(d_pi @ (0.5 * l1), abs=1e-14)


def test_bad_steps_are_refused(mdp_and_policy):
    mdp, pi = mdp_and_policy
    with pytest.raises(ValueError, match="steps"):
        trust_region_path(mdp, pi, [])
    with pytest.raises(ValueError, match="step"):
        trust_region_path(mdp, pi, [0.0, 2.0], path="mixture")


@pytest.mark.parametrize("seed", range(4))
def test_the_exact_trust_region_step_is_the_best_in_the_ball_and_never_lowers_j(seed):
    # Notebook 06, section 5: with exact advantages, the policy with the largest surrogate among
    # all pi' with E_{d_pi}[KL(pi' || pi)] <= delta is on the softmax path pi' ~ pi exp(eta A^pi)
    # (a linear objective under a convex constraint), and every policy on that path has
    # E_{pi'}[A^pi(s, .)] >= 0 in every state, so V^pi' >= V^pi everywhere. Checked against random
    # policies scaled into the same ball, and against the path's own values.
    rng = np.random.default_rng(seed)
    mdp = random_mdp(5, 4, gamma=0.9, seed=seed)
    pi = softmax_policy(rng.standard_normal((5, 4)), 1.0)
    adv, d = mdp.advantages(pi), mdp.state_distribution(pi)

    def mean_kl(pi_new):
        return d @ kl_divergence(pi_new, pi)

    for eta in (0.05, 0.3, 1.0, 5.0):
        best = policy_path(pi, adv, eta)
        assert ((best * adv).sum(-1) >= -1e-12).all()
        assert (mdp.values(best) >= mdp.values(pi) - 1e-10).all()
        delta, surrogate = mean_kl(best), mdp.surrogate(pi, best)
        for _ in range(100):
            # a random direction in the logits, and around the optimum, scaled onto the ball
            centre = np.log(best) if rng.random() < 0.5 else np.log(pi)
            direction = rng.standard_normal((5, 4))
            lo, hi = 0.0, 1.0
            while mean_kl(softmax_policy(centre + hi * direction, 1.0)) <= delta and hi < 1e3:
                hi *= 2
            for _ in range(50):  # bisection for the largest scale still inside the ball
                mid = (lo + hi) / 2
                inside = mean_kl(softmax_policy(centre + mid * direction, 1.0)) <= delta
                lo, hi = (mid, hi) if inside else (lo, mid)
            other = softmax_policy(centre + lo * direction, 1.0)
            if mean_kl(other) <= delta:
                assert mdp.surrogate(pi, other) <= surrogate + 1e-10
