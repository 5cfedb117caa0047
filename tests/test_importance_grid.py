"""The importance sampling grid of notebook 05 (rlcourse.importance.importance_sampling_grid): its
exact columns against the module's functions and brute-force enumeration, its samples against the
estimates of the same samples."""

import itertools

import numpy as np
import pytest

from rlcourse import importance as isx
from rlcourse.importance import ImportanceSamplingGrid, importance_sampling_grid
from rlcourse.sweeps import policy_path
from rlcourse.tabular import FiniteMDP

X = np.linspace(-4, 4, 41)
P = isx.discretized_gaussian(X, 0.0, 1.0)
F = X**2
SHIFTS = np.array([0.0, 0.5, 1.0, 2.0])


@pytest.fixture(scope="module")
def shift_grid():
    proposals = [isx.tilted_proposal(P, X, m) for m in SHIFTS]
    return importance_sampling_grid(
        X, F, P, proposals, SHIFTS, n=20, repeats=200, seed=3, param_name="shift"
    )


@pytest.fixture(scope="module")
def bandit():
    pi = np.array([0.5, 0.3, 0.15, 0.05])
    r = np.array([0.2, 0.5, 0.1, 1.0])
    mdp = FiniteMDP(np.ones((1, 4, 1)), r[None], 0.0, [1.0])
    return mdp, pi, mdp.advantages(pi[None])[0]


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
    assert (np.diff(g.variance) > 0).all() and (
        np.diff(g.chi2) > 0
    ).all()  # both grow as q leaves p


def test_grid_estimates_are_the_package_estimates_of_samples_drawn_from_q(shift_grid):
    g = shift_grid
    for m in (0, 2, 3):
        idx = isx.sample(g.q[m], g.n * g.repeats, seed=3).reshape(g.repeats, g.n)
        for i in (0, 17, 199):
            x = idx[i]
            p_x, q_x, f_x = g.p[m][x], g.q[m][x], F[x]
            assert g.estimates[m, i] == pytest.approx(
                isx.importance_weighted_estimate(p_x, q_x, f_x)
            )
            assert g.normalized[m, i] == pytest.approx(isx.self_normalized_estimate(p_x, q_x, f_x))
            assert g.ess[m, i] == pytest.approx(
                isx.effective_sample_size(isx.likelihood_ratios(p_x, q_x))
            )
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
    # the estimate is mean_i w_i A(X_i) over the same actions X_i at every step: at step 0 it is the
    # plain mean
    idx = isx.sample(pi, 500, seed=0).reshape(50, 10)
    np.testing.assert_allclose(g.estimates[0], adv[idx].mean(1))
    ratio = g.p[2] / pi
    np.testing.assert_allclose(g.estimates[2], (ratio[idx] * adv[idx]).mean(1))
    # mu is the improvement J(pi') - J(pi) of the one-state MDP
    for m, pi_new in enumerate(g.p):
        assert g.mu[m] == pytest.approx(
            mdp.expected_return(pi_new[None]) - mdp.expected_return(pi[None])
        )


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


# Definition-based checks added with the move to the math floor.


def test_exact_variance_is_the_variance_over_every_sample_of_size_n():
    # Var[1/n sum_i w(X_i) f(X_i)] with X_i ~ q i.i.d., by enumerating all K^n samples
    p = np.array([0.5, 0.3, 0.2])
    q = np.array([0.2, 0.3, 0.5])
    f = np.array([1.0, -2.0, 4.0])
    n = 3
    grid = importance_sampling_grid(np.arange(3.0), f, p, q, [0.0], n=n, repeats=2)
    values, probs = [], []
    for xs in itertools.product(range(3), repeat=n):
        xs = list(xs)
        values.append(np.mean(p[xs] / q[xs] * f[xs]))
        probs.append(np.prod(q[xs]))
    values, probs = np.array(values), np.array(probs)
    mean = probs @ values
    assert mean == pytest.approx(grid.mu[0], abs=1e-12)  # unbiased
    assert grid.variance[0] == pytest.approx(probs @ (values - mean) ** 2, abs=1e-12)
    assert grid.chi2[0] == pytest.approx(q @ (p / q - 1) ** 2, abs=1e-12)


def test_ess_of_each_repeat_is_kongs_formula(shift_grid):
    g = shift_grid
    idx = isx.sample(g.q[3], g.n * g.repeats, seed=3).reshape(g.repeats, g.n)
    w = g.p[3][idx] / g.q[3][idx]
    np.testing.assert_allclose(g.ess[3], w.sum(1) ** 2 / (w**2).sum(1), rtol=1e-12)
    assert ((g.ess >= 1 - 1e-12) & (g.ess <= g.n + 1e-9)).all()


def test_shapes_that_do_not_fit_are_named():
    with pytest.raises(ValueError, match="x and f"):
        importance_sampling_grid(X, F[:-1], P, P, [0.0])
    with pytest.raises(ValueError, match="p="):
        importance_sampling_grid(X, F, P[:-1], P, [0.0])
