"""Importance sampling against its definitions: exact unbiasedness, the variance formula, ESS, errors.

Slide "Importance Sampling". The exact checks use distributions whose probabilities are powers of 2 and
integer ``f``: every product, ratio and sum is then exact in float64, so ``==`` is the right test.
"""

from fractions import Fraction

import numpy as np
import pytest
import torch

from rlcourse import importance as imp

# Dyadic p, q and integer f: p/q, q * (p/q) * f and their sums are exact in float64.
P = np.array([1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 16])
Q = np.array([1 / 8, 1 / 8, 1 / 4, 1 / 4, 1 / 4])
F = np.array([3.0, -1.0, 5.0, 2.0, -7.0])


def _random_problem(seed, k=6):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(k))
    q = rng.dirichlet(np.ones(k))
    f = rng.normal(size=k) * 3
    return p, q, f


def _single_sample_estimates(p, q, f):
    """The value the n = 1 estimate takes for each outcome x, computed by the package's own estimator."""
    return np.array([imp.importance_weighted_estimate([p[x]], [q[x]], [f[x]]) for x in range(len(p))])


# ---------------------------------------------------------------------------------------- unbiasedness


def test_unbiased_exactly_on_dyadic_distributions():
    mu = float(np.dot(P, F))
    estimates = _single_sample_estimates(P, Q, F)
    # E_q[mu_hat] = sum_x q(x) mu_hat(x): every term and sum is exact here, so equality is exact.
    assert float(np.sum(Q * estimates)) == mu
    assert imp.estimator_mean(P, Q, F) == mu == imp.exact_mean(P, F)


@pytest.mark.parametrize("seed", range(5))
def test_unbiased_against_rational_arithmetic(seed):
    p, q, f = _random_problem(seed)
    # The same sum in exact rational arithmetic of the float64 inputs.
    pr, qr, fr = ([Fraction(v) for v in a] for a in (p, q, f))
    mu = sum(a * b for a, b in zip(pr, fr, strict=True))
    expectation = sum(qx * (px / qx) * fx for px, qx, fx in zip(pr, qr, fr, strict=True))
    assert expectation == mu  # the slide's identity, exactly
    estimates = _single_sample_estimates(p, q, f)
    assert float(np.sum(q * estimates)) == pytest.approx(float(mu), rel=1e-13, abs=1e-13)
    assert imp.estimator_mean(p, q, f) == pytest.approx(float(mu), rel=1e-13, abs=1e-13)


def test_zero_q_is_allowed_where_p_times_f_is_zero():
    p = np.array([0.5, 0.25, 0.25, 0.0])
    f = np.array([1.0, 0.0, 2.0, 9.0])
    q = np.array([0.5, 0.0, 0.25, 0.25])  # misses x=1 (f = 0) only; x=3 has p = 0
    assert imp.estimator_mean(p, q, f) == imp.exact_mean(p, f) == 1.0
    assert imp.estimator_variance(p, q, f) == pytest.approx(0.5**2 * 1 / 0.5 + 0.25**2 * 4 / 0.25 - 1.0)


def test_missing_support_is_an_error_that_says_biased():
    p = np.array([0.5, 0.5, 0.0])
    q = np.array([1.0, 0.0, 0.0])
    f = np.array([1.0, 2.0, 3.0])
    for fn in (imp.estimator_mean, imp.estimator_variance):
        with pytest.raises(ValueError, match=r"q=.*is not allowed: q\(x\) = 0 where p\(x\) f\(x\) != 0 .*biased"):
            fn(p, q, f)
    with pytest.raises(ValueError, match="biased"):
        imp.chi2_divergence(p, q)


# ------------------------------------------------------------------------------------------- variance


def test_variance_formula_on_a_hand_example():
    p = np.array([0.5, 0.5])
    q = np.array([0.25, 0.75])
    f = np.array([2.0, 4.0])
    # mu_hat is 0.5/0.25*2 = 4 with probability 1/4 and 0.5/0.75*4 = 8/3 with probability 3/4.
    values, probs = np.array([4.0, 8 / 3]), q
    mean = np.dot(probs, values)
    assert mean == pytest.approx(3.0)
    assert imp.estimator_variance(p, q, f) == pytest.approx(np.dot(probs, (values - mean) ** 2))
    assert imp.estimator_variance(p, q, f, n=10) == pytest.approx(imp.estimator_variance(p, q, f) / 10)


@pytest.mark.parametrize("seed", range(3))
def test_variance_formula_matches_monte_carlo(seed):
    p, q, f = _random_problem(seed)
    exact_var = imp.estimator_variance(p, q, f)
    mu = imp.exact_mean(p, f)
    values = p / q * f  # mu_hat(x)
    # Standard error of a sample variance: sqrt((m4 - sigma^4) / N), m4 the exact 4th central moment.
    m4 = float(np.dot(q, (values - mu) ** 4))
    n_samples = 200_000
    x = imp.sample(q, n_samples, seed=seed)
    draws = values[x]
    assert imp.importance_weighted_estimate(p[x], q[x], f[x]) == pytest.approx(draws.mean(), rel=1e-12)
    assert abs(draws.mean() - mu) < 5 * np.sqrt(exact_var / n_samples)
    assert abs(draws.var(ddof=1) - exact_var) < 5 * np.sqrt((m4 - exact_var**2) / n_samples)


def test_variance_of_the_mean_of_n_samples_matches_monte_carlo():
    p, q, f = _random_problem(7)
    n, repeats = 20, 10_000
    rng = np.random.default_rng(1)
    x = imp.sample(q, n * repeats, seed=rng).reshape(repeats, n)
    estimates = np.array([imp.importance_weighted_estimate(p[row], q[row], f[row]) for row in x])
    var_n = imp.estimator_variance(p, q, f, n=n)
    # Standard error of the sample variance of the means, from the exact 4th central moment of a mean of
    # n i.i.d. terms: m4_n = (m4 + 3 (n - 1) sigma^4) / n^3.
    values, mu, var_1 = p / q * f, imp.exact_mean(p, f), imp.estimator_variance(p, q, f)
    m4_n = (float(np.dot(q, (values - mu) ** 4)) + 3 * (n - 1) * var_1**2) / n**3
    assert abs(estimates.mean() - mu) < 5 * np.sqrt(var_n / repeats)
    assert abs(estimates.var(ddof=1) - var_n) < 5 * np.sqrt((m4_n - var_n**2) / repeats)


def test_q_equal_p_gives_the_plain_monte_carlo_variance_and_the_optimal_q_gives_zero():
    p, _, f = _random_problem(3)
    assert imp.estimator_variance(p, p, f) == pytest.approx(imp.direct_variance(p, f), rel=1e-12)
    f_pos = np.abs(f) + 0.1
    q_star = imp.optimal_proposal(p, f_pos)
    assert imp.estimator_variance(p, q_star, f_pos) == pytest.approx(0.0, abs=1e-12)
    # For f of both signs q* is still the best: no random q does better.
    q_star = imp.optimal_proposal(p, f)
    best = imp.estimator_variance(p, q_star, f)
    assert best == pytest.approx(np.sum(p * np.abs(f)) ** 2 - imp.exact_mean(p, f) ** 2, rel=1e-10)
    rng = np.random.default_rng(0)
    for _ in range(50):
        assert imp.estimator_variance(p, rng.dirichlet(np.ones(len(p))), f) >= best - 1e-12


def test_variance_grows_as_q_moves_away_from_p():
    x = np.linspace(-4, 4, 41)
    p = imp.discretized_gaussian(x, mean=0.0, std=1.0)
    f = x**2  # E_p[f] is the variance of p
    betas = np.linspace(0.0, 2.0, 11)
    tilted = [imp.tilted_proposal(p, x, b) for b in betas]
    variances = [imp.estimator_variance(p, q, f) for q in tilted]
    chi2 = [imp.chi2_divergence(p, q) for q in tilted]
    assert tilted[0] == pytest.approx(p)
    assert np.all(np.diff(chi2) > 0) and chi2[0] == pytest.approx(0.0, abs=1e-12)
    # f = x^2 is symmetric, so shifting q (by beta std^2) away from 0 only hurts.
    assert np.all(np.diff(variances) > 0)
    assert variances[-1] > 10 * variances[0]
    # Every tilted q keeps the support of p: the estimate stays unbiased however far it moves.
    for q in tilted:
        assert imp.estimator_mean(p, q, f) == pytest.approx(imp.exact_mean(p, f), rel=1e-10)


def test_tilting_a_gaussian_shifts_its_mean_and_chi2_has_the_mgf_form():
    x = np.linspace(-10, 10, 401)
    p = imp.discretized_gaussian(x, mean=0.5, std=1.5)
    q = imp.tilted_proposal(p, x, beta=0.4)
    assert np.dot(q, x) == pytest.approx(0.5 + 0.4 * 1.5**2, abs=1e-6)
    mgf = lambda s: np.dot(p, np.exp(s * x))
    assert imp.chi2_divergence(p, q) == pytest.approx(mgf(0.4) * mgf(-0.4) - 1, rel=1e-10)


def test_mixture_family_moves_from_p_to_r_and_chi2_grows():
    p, r, f = _random_problem(11)
    ts = np.linspace(0, 1, 11)
    qs = [imp.mixture_proposal(p, t, r) for t in ts]
    assert qs[0] == pytest.approx(p) and qs[-1] == pytest.approx(r)
    assert all(q.sum() == pytest.approx(1.0) for q in qs)
    assert np.all(np.diff([imp.chi2_divergence(p, q) for q in qs]) > 0)
    # The documented slope at t = 0 of the variance for a given f: E_p[f^2] - E_r[f^2].
    h = 1e-6
    slope = (imp.estimator_variance(p, imp.mixture_proposal(p, h, r), f) - imp.estimator_variance(p, p, f)) / h
    assert slope == pytest.approx(np.dot(p, f**2) - np.dot(r, f**2), rel=1e-4)
    uniform = imp.mixture_proposal(p, 1.0)
    assert uniform == pytest.approx(np.full(len(p), 1 / len(p)))


# ------------------------------------------------------------------------------- self-normalised, ESS


def test_self_normalized_estimate_is_consistent():
    p, q, f = _random_problem(5)
    mu = imp.exact_mean(p, f)
    # Its asymptotic variance (Owen 2013, 9.2): sum p^2 (f - mu)^2 / q / n.
    asym_var = float(np.sum(p**2 * (f - mu) ** 2 / q))
    for n in (100, 10_000, 1_000_000):  # the tolerance shrinks like 1 / sqrt(n): the error goes to 0
        x = imp.sample(q, n, seed=n)
        estimate = imp.self_normalized_estimate(p[x], q[x], f[x])
        assert abs(estimate - mu) < 5 * np.sqrt(asym_var / n)


def test_self_normalized_estimate_needs_p_and_q_only_up_to_constants_and_is_biased_for_one_sample():
    p, q, f = _random_problem(6)
    x = imp.sample(q, 500, seed=0)
    snis = imp.self_normalized_estimate(p[x], q[x], f[x])
    assert imp.self_normalized_estimate(7.0 * p[x], 0.3 * q[x], f[x]) == pytest.approx(snis, rel=1e-12)
    assert f[x].min() <= snis <= f[x].max()
    assert imp.self_normalized_estimate(p[x], q[x], np.full(500, 2.5)) == pytest.approx(2.5)
    # With n = 1 it returns f(X_1), whose mean E_q[f] differs from mu: biased (unlike the plain estimate).
    one_sample = np.array([imp.self_normalized_estimate([p[k]], [q[k]], [f[k]]) for k in range(len(p))])
    assert one_sample == pytest.approx(f)
    assert float(np.dot(q, one_sample)) != pytest.approx(imp.exact_mean(p, f), abs=1e-3)


def test_effective_sample_size():
    n = 50
    assert imp.effective_sample_size(np.full(n, 0.37)) == pytest.approx(n)
    p, q, _ = _random_problem(2)
    x = imp.sample(p, n, seed=0)
    assert imp.effective_sample_size(imp.likelihood_ratios(p[x], p[x])) == pytest.approx(n)
    x = imp.sample(q, n, seed=0)
    w = imp.likelihood_ratios(p[x], q[x])
    assert w == pytest.approx(p[x] / q[x])
    ess = imp.effective_sample_size(w)
    assert 1.0 <= ess < n
    assert imp.effective_sample_size(1e6 * w) == pytest.approx(ess)
    assert ess == pytest.approx(w.sum() ** 2 / (w**2).sum())
    assert imp.effective_sample_size([1.0, 0.0, 0.0]) == pytest.approx(1.0)
    # Large n: ESS / n -> 1 / (1 + chi^2(p || q)).
    x = imp.sample(q, 400_000, seed=1)
    fraction = imp.effective_sample_size(imp.likelihood_ratios(p[x], q[x])) / len(x)
    assert fraction == pytest.approx(1 / (1 + imp.chi2_divergence(p, q)), rel=0.02)


def test_ess_falls_as_q_moves_away_from_p():
    x = np.linspace(-4, 4, 41)
    p = imp.discretized_gaussian(x, 0.0, 1.0)
    ess = []
    for beta in (0.0, 0.5, 1.0, 2.0):
        q = imp.tilted_proposal(p, x, beta)
        s = imp.sample(q, 20_000, seed=0)
        ess.append(imp.effective_sample_size(imp.likelihood_ratios(p[s], q[s])))
    assert ess[0] == pytest.approx(20_000)
    assert np.all(np.diff(ess) < 0)


def test_accepts_torch_tensors():
    p, q, f = (torch.tensor(a) for a in (P, Q, F))
    assert imp.estimator_mean(p, q, f) == imp.exact_mean(P, F)


# ---------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: imp.exact_mean([0.5, 0.4], [1.0, 2.0]), r"p=.*is not allowed: a distribution must sum to 1, p sums"),
        (lambda: imp.estimator_variance(P, Q * 2, F), r"q=.*is not allowed: a distribution must sum to 1"),
        (lambda: imp.estimator_mean([1.5, -0.5], [0.5, 0.5], [1, 1]), r"p=.*is not allowed: p must be >= 0"),
        (lambda: imp.estimator_mean(P, Q, F[:3]), r"shapes p\(5,\), q\(5,\), f\(3,\) are not allowed"),
        (lambda: imp.estimator_mean(P, Q[:4] / Q[:4].sum(), F), r"shapes .* are not allowed"),
        (lambda: imp.exact_mean(np.eye(2) / 2, [1, 2]), r"p=.*is not allowed: p must be a non-empty 1-D array"),
        (
            lambda: imp.exact_mean([0.5, 0.5], [1.0, np.nan]),
            r"f=.*is not allowed: every entry of f must be a finite number",
        ),
        (lambda: imp.estimator_variance(P, Q, F, n=0), r"n=0 is not allowed"),
        (lambda: imp.importance_weighted_estimate([0.5], [0.0], [1.0]), r"q_x=.*is not allowed: q_x must be > 0"),
        (lambda: imp.importance_weighted_estimate([0.5, 0.1], [0.5], [1.0]), r"shapes p_x\(2,\), q_x\(1,\), f_x\(1,\)"),
        (lambda: imp.self_normalized_estimate([0.0, 0.0], [0.5, 0.5], [1, 2]), r"p_x=.*is not allowed: .*all 0"),
        (lambda: imp.effective_sample_size([0.0, 0.0]), r"weights=.*is not allowed: at least one weight"),
        (lambda: imp.effective_sample_size([1.0, -1.0]), r"weights=.*is not allowed: weights must be >= 0"),
        (lambda: imp.effective_sample_size([]), r"weights=.*is not allowed: weights must be a non-empty 1-D"),
        (lambda: imp.mixture_proposal(P, 1.5), r"t=1.5 is not allowed: t must be a number in \[0, 1\]"),
        (lambda: imp.tilted_proposal(P, F, np.inf), r"beta=inf is not allowed"),
        (lambda: imp.discretized_gaussian([0.0, 1.0], 0.0, 0.0), r"std=0.0 is not allowed: std must be > 0"),
        (lambda: imp.optimal_proposal([0.5, 0.5], [0.0, 0.0]), r"f=.*is not allowed"),
        (lambda: imp.sample([0.5, 0.6], 3), r"q=.*is not allowed: a distribution must sum to 1"),
    ],
)
def test_bad_input_gets_a_clear_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
