"""Soft value functions on small finite MDPs, checked against the slides' definitions and theorems.

Slides, "Entropy-Regularized RL": the soft value functions of a policy, the greedy softmax policy
and its log-sum-exp value, the soft policy improvement theorem (Haarnoja et al. 2018), and the
limit lambda -> 0. The slides' lambda is ``temperature``. Every check runs on many random MDPs
(one per seed, sizes and gamma varying with the seed) to tight tolerances; the references here
are written out independently of ``rlcourse.tabular`` (truncated sums, plain iterations,
enumeration of all deterministic policies).
"""

import itertools
import math

import numpy as np
import pytest

from rlcourse.tabular import (
    FiniteMDP,
    entropy,
    random_mdp,
    random_walk,
    softmax_policy,
    softmax_value,
)

SEEDS = range(20)
GAMMAS = (0.0, 0.5, 0.9, 0.95)
TEMPERATURES = (1e-3, 0.1, 1.0, 10.0)


def make_mdp(seed: int) -> FiniteMDP:
    return random_mdp(num_states=2 + seed % 5, num_actions=2 + seed % 3, gamma=GAMMAS[seed % 4], seed=seed)


def random_policies(rng: np.random.Generator, S: int, A: int, n: int) -> list[np.ndarray]:
    """Stochastic policies from near-deterministic to near-uniform, plus a deterministic one."""
    pols = [rng.dirichlet(np.full(A, c), size=S) for c in np.geomspace(0.1, 10.0, n - 1)]
    pols.append(np.eye(A)[rng.integers(A, size=S)])
    return pols


def ref_entropy(pi: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.nansum(pi * np.log(pi), axis=-1)


def ref_logsumexp(x: np.ndarray) -> np.ndarray:
    m = x.max(-1)
    return m + np.log(np.exp(x - m[..., None]).sum(-1))


def slide_soft_values(mdp: FiniteMDP, pi: np.ndarray, lam: float, tol: float = 1e-13):
    """The slide's definitions, literally: a truncated discounted sum from t = 1, then v = E[q] + lam H."""
    S, A = mdp.R.shape
    H = ref_entropy(pi) * ~mdp.terminal
    soft_r = (pi * mdp.R).sum(1) + lam * H  # E[r(S_t, A_t) + lam H(pi(.|S_t)) | S_t = s]
    P_pi = np.einsum("sa,sat->st", pi, mdp.P)
    g = mdp.gamma
    bound = np.abs(soft_r).max() + 1.0
    T = 0 if g == 0 else math.ceil(math.log(tol * (1 - g) / bound) / math.log(g))
    D = mdp.P.reshape(S * A, S)  # distribution of S_1 given S_0 = s, A_0 = a
    q = mdp.R.reshape(-1).copy()
    for t in range(1, T + 1):
        q += g**t * D @ soft_r
        D = D @ P_pi
    q = q.reshape(S, A)
    return q, (pi * q).sum(1) + lam * H


def ordinary_optimum(mdp: FiniteMDP):
    """Optimal v and q by enumerating every deterministic policy (exact, no iteration)."""
    S, A = mdp.R.shape
    acts = np.array(list(itertools.product(range(A), repeat=S)))  # (A^S, S)
    P_pi = mdp.P[np.arange(S), acts]  # (N, S, S)
    r_pi = mdp.R[np.arange(S), acts]  # (N, S)
    V = np.linalg.solve(np.eye(S) - mdp.gamma * P_pi, r_pi[..., None])[..., 0]
    v_star = V.max(0)
    assert np.allclose(V[V.sum(1).argmax()], v_star, atol=1e-12)  # one policy is best in every state
    return mdp.R + mdp.gamma * mdp.P @ v_star, v_star


def plain_value_iteration(mdp: FiniteMDP, sweeps: int = 3000) -> np.ndarray:
    q = np.zeros_like(mdp.R)
    for _ in range(sweeps):
        q = mdp.R + mdp.gamma * mdp.P @ q.max(1)
    return q


# --- entropy, the greedy softmax policy and the log-sum-exp identity ------------------------------------------------


def test_entropy_definition_and_bounds():
    rng = np.random.default_rng(0)
    for A in (1, 2, 5):
        pi = rng.dirichlet(np.full(A, 0.5), size=50)
        pi[0] = np.eye(A)[0]
        pi[1] = 1.0 / A
        H = entropy(pi)
        assert H.shape == (50,)
        np.testing.assert_allclose(H, ref_entropy(pi), rtol=1e-13, atol=1e-15)
        assert H[0] == 0.0 and math.isclose(H[1], math.log(A), abs_tol=1e-15)
        assert (H >= 0).all() and (H <= math.log(A) + 1e-12).all()


@pytest.mark.parametrize("seed", SEEDS)
def test_log_sum_exp_identity(seed):
    """E_{A~pi}[q(s, A)] + lam H(pi(.|s)) = lam log sum_a exp(q(s, a) / lam) for the greedy softmax pi,
    and pi = exp((q - v) / lam)."""
    rng = np.random.default_rng(seed)
    q = rng.normal(scale=3.0, size=(6, 2 + seed % 4))
    for lam in (1e-6, 1e-3, *TEMPERATURES, 1e3):
        pi = softmax_policy(q, lam)
        v = softmax_value(q, lam)
        np.testing.assert_allclose(pi.sum(1), 1.0, atol=1e-14)
        np.testing.assert_allclose(v, lam * ref_logsumexp(q / lam), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose((pi * q).sum(1) + lam * ref_entropy(pi), v, rtol=1e-12, atol=1e-12)
        if lam >= 1e-3:  # exp((q - v) / lam) as the slide writes it (for tiny lam, exp(-gap/lam) underflows alike)
            np.testing.assert_allclose(pi, np.exp((q - v[:, None]) / lam), rtol=1e-9, atol=1e-300)


@pytest.mark.parametrize("seed", SEEDS)
def test_softmax_policy_maximises_the_regularised_objective(seed):
    """For every policy rho: v - (E_rho[q] + lam H(rho)) = lam KL(rho || pi_softmax) >= 0 (Gibbs' variational
    principle), so the greedy softmax policy is the argmax of the slide's objective."""
    rng = np.random.default_rng(seed)
    S, A = 5, 2 + seed % 4
    q = rng.normal(scale=2.0, size=(S, A))
    for lam in TEMPERATURES:
        v = softmax_value(q, lam)
        for rho in random_policies(rng, S, A, 30):
            objective = (rho * q).sum(1) + lam * ref_entropy(rho)
            with np.errstate(divide="ignore", invalid="ignore"):
                log_pi = q / lam - ref_logsumexp(q / lam)[:, None]  # log of pi, also where pi underflows to 0
                kl = np.nansum(rho * (np.log(rho) - log_pi), axis=1)
            assert (objective <= v + 1e-12).all()
            np.testing.assert_allclose(v - objective, lam * kl, rtol=1e-9, atol=1e-11)


def test_softmax_policy_tiny_and_zero_temperature():
    q = np.array([[1.0, 3.0, 3.0, -2.0], [0.0, 0.0, 0.0, 0.0], [5.0, 4.9999, -1e6, 1e6], [2.0, 1.0, 0.5, 1.5]])
    greedy = np.array([[0, 0.5, 0.5, 0], [0.25] * 4, [0, 0, 0, 1], [1, 0, 0, 0]])
    np.testing.assert_array_equal(softmax_policy(q, 0.0), greedy)  # ties split evenly
    np.testing.assert_array_equal(softmax_value(q, 0.0), q.max(1))
    for lam in (1e-8, 1e-100, 1e-300, 5e-324):  # no overflow, no nan, the limit is the greedy policy
        np.testing.assert_allclose(softmax_policy(q, lam), greedy, atol=1e-300)
        np.testing.assert_allclose(softmax_value(q, lam), q.max(1) + lam * np.log([2, 4, 1, 1]), rtol=1e-15)
    np.testing.assert_allclose(softmax_policy(q, 1e12), 0.25, atol=1e-5)  # large lam: uniform
    # one row and a batch of tables work the same way
    np.testing.assert_allclose(softmax_policy(q[0], 0.5), softmax_policy(q, 0.5)[0], rtol=1e-15)
    assert softmax_policy(np.stack([q, q]), 0.5).shape == (2, 4, 4)


# --- soft policy evaluation -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_soft_values_match_the_slide_definition(seed):
    """The linear solve equals the slide's truncated discounted sum (entropy from t = 1 in q, the first entropy
    in v) and satisfies q = r + gamma P v, v = E_pi[q] + lam H."""
    mdp = make_mdp(seed)
    rng = np.random.default_rng(seed + 1000)
    for pi, lam in zip(random_policies(rng, mdp.num_states, mdp.num_actions, 4), (0.0, *TEMPERATURES[1:]), strict=True):
        q, v = mdp.soft_values(pi, temperature=lam)
        q_ref, v_ref = slide_soft_values(mdp, pi, lam)
        np.testing.assert_allclose(q, q_ref, rtol=1e-11, atol=1e-11)
        np.testing.assert_allclose(v, v_ref, rtol=1e-11, atol=1e-11)
        np.testing.assert_allclose(q, mdp.R + mdp.gamma * mdp.P @ v, atol=1e-11)
        np.testing.assert_allclose(v, (pi * q).sum(1) + lam * ref_entropy(pi), atol=1e-11)


@pytest.mark.parametrize("seed", SEEDS)
def test_soft_values_at_temperature_zero_are_the_ordinary_values(seed):
    mdp = make_mdp(seed)
    for pi in random_policies(np.random.default_rng(seed), mdp.num_states, mdp.num_actions, 3):
        q, v = mdp.soft_values(pi, 0.0)
        np.testing.assert_allclose(v, mdp.values(pi), rtol=1e-14, atol=1e-14)
        np.testing.assert_allclose(q, mdp.q_values(pi), rtol=1e-14, atol=1e-14)
        # and continuity: |v_lam - v_0| <= lam max_s H / (1 - gamma)
        _, v_lam = mdp.soft_values(pi, 1e-6)
        assert (v_lam >= v - 1e-13).all()
        assert (v_lam - v <= 1e-6 * ref_entropy(pi).max() / (1 - mdp.gamma) + 1e-13).all()


def test_soft_values_on_the_random_walk_pay_no_bonus_after_the_episode_ends():
    mdp = random_walk(n=5, gamma=0.9)
    pi = np.full((mdp.num_states, 2), 0.5)
    lam = 0.3
    q, v = mdp.soft_values(pi, lam)
    np.testing.assert_allclose(v[mdp.terminal], 0.0, atol=1e-14)
    np.testing.assert_allclose(q[mdp.terminal], 0.0, atol=1e-14)
    _, v_ref = slide_soft_values(mdp, pi, lam)
    np.testing.assert_allclose(v, v_ref, atol=1e-12)
    # the bonus is lam log 2 per step in the chain: v_soft - v = lam log 2 * (expected discounted steps to the end)
    P_pi = np.einsum("sa,sat->st", pi, mdp.P)
    steps = np.linalg.solve(np.eye(mdp.num_states) - mdp.gamma * P_pi, (~mdp.terminal).astype(float))
    np.testing.assert_allclose(v - mdp.values(pi), lam * math.log(2) * steps, atol=1e-12)


# --- soft policy improvement ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_soft_policy_improvement_theorem(seed):
    """pi' = greedy softmax w.r.t. q_pi^soft has q_pi'^soft >= q_pi^soft and v_pi'^soft >= v_pi^soft elementwise."""
    mdp = make_mdp(seed)
    rng = np.random.default_rng(seed + 2000)
    for lam in TEMPERATURES:
        for pi in random_policies(rng, mdp.num_states, mdp.num_actions, 5):
            q, v = mdp.soft_values(pi, lam)
            pi_new = softmax_policy(q, lam)
            q_new, v_new = mdp.soft_values(pi_new, lam)
            scale = 1e-10 * (1 + np.abs(q).max())
            assert (q_new >= q - scale).all()
            assert (v_new >= v - scale).all()


@pytest.mark.parametrize("seed", SEEDS)
def test_soft_policy_iteration_climbs_to_the_soft_optimum(seed):
    mdp = make_mdp(seed)
    lam = TEMPERATURES[seed % 4]
    q_star, v_star, _ = mdp.soft_value_iteration(lam, tol=1e-12)
    pi = random_policies(np.random.default_rng(seed), mdp.num_states, mdp.num_actions, 2)[0]
    q, v = mdp.soft_values(pi, lam)
    for _ in range(100):
        q_new, v_new = mdp.soft_values(softmax_policy(q, lam), lam)
        assert (v_new >= v - 1e-10).all()
        if np.abs(q_new - q).max() < 1e-12:
            break
        q, v = q_new, v_new
    np.testing.assert_allclose(q_new, q_star, atol=1e-9)
    np.testing.assert_allclose(v_new, v_star, atol=1e-9)


# --- soft value iteration -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_soft_value_iteration_solves_the_soft_bellman_optimality_equation(seed):
    mdp = make_mdp(seed)
    rng = np.random.default_rng(seed + 3000)
    for lam in TEMPERATURES:
        q, v, pi = mdp.soft_value_iteration(lam, tol=1e-12)
        # q = r + gamma P (lam log sum_a exp(q / lam)), v its soft maximum, pi = exp((q - v) / lam)
        np.testing.assert_allclose(v, lam * ref_logsumexp(q / lam), atol=1e-12)
        np.testing.assert_allclose(q, mdp.R + mdp.gamma * mdp.P @ v, atol=1e-10)
        np.testing.assert_allclose(pi, np.exp((q - v[:, None]) / lam), rtol=1e-9, atol=1e-300)
        # q, v are the soft values of pi itself
        q_pi, v_pi = mdp.soft_values(pi, lam)
        np.testing.assert_allclose(q_pi, q, atol=1e-10)
        np.testing.assert_allclose(v_pi, v, atol=1e-10)
        # and no policy does better, in any state (so neither in J = mu0 . v)
        for rho in random_policies(rng, mdp.num_states, mdp.num_actions, 25):
            q_rho, v_rho = mdp.soft_values(rho, lam)
            assert (v_rho <= v + 1e-10).all() and (q_rho <= q + 1e-10).all()
            assert mdp.mu0 @ v_rho <= mdp.mu0 @ v + 1e-10


def test_soft_value_iteration_on_the_random_walk():
    """A small temperature keeps walking right, to the +1; a large one avoids ending the episode, because
    every step in the chain pays lam log 2 and the end pays nothing more."""
    mdp = random_walk(n=5, gamma=0.9)
    _, v0, pi0 = mdp.soft_value_iteration(0.0)
    np.testing.assert_array_equal(pi0[1:-1], [[0.0, 1.0]] * 5)
    np.testing.assert_allclose(v0[1:-1], 0.9 ** np.arange(4, -1, -1), rtol=1e-9)
    for lam in (0.05, 0.5):
        q, v, pi = mdp.soft_value_iteration(lam, tol=1e-12)
        assert (v[mdp.terminal] == 0).all()
        np.testing.assert_allclose(pi[mdp.terminal], 0.5)
        q_pi, v_pi = mdp.soft_values(pi, lam)
        np.testing.assert_allclose(v_pi, v, atol=1e-10)
        np.testing.assert_allclose(q_pi, q, atol=1e-10)
    _, v, pi = mdp.soft_value_iteration(0.05)
    assert (pi[1:-1, 1] > 0.9).all()
    _, v, pi = mdp.soft_value_iteration(0.5)
    assert pi[5, 1] < 0.1 and (v[1:-1] > 1).all()  # beside the +1 it steps away: staying is worth more


# --- the limit lambda -> 0 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_temperature_to_zero_gives_the_ordinary_optimum(seed):
    """0 <= v*_lam - v* <= lam log|A| / (1 - gamma), nondecreasing in lam; at lam = 0 soft value iteration is
    ordinary value iteration; and the greedy softmax policy tends to the greedy optimal one, with
    |pi_lam - pi*| <= (|A| - 1) |A|^(gamma / (1 - gamma)) exp(-gap / lam) (gap: best minus second-best q*)."""
    mdp = make_mdp(seed)
    S, A, g = mdp.num_states, mdp.num_actions, mdp.gamma
    q0, v0 = ordinary_optimum(mdp)
    np.testing.assert_allclose(plain_value_iteration(mdp), q0, atol=1e-10)
    q_vi, v_vi, pi_vi = mdp.soft_value_iteration(0.0, tol=1e-12)
    np.testing.assert_allclose(q_vi, q0, atol=1e-10)
    np.testing.assert_allclose(v_vi, v0, atol=1e-10)

    top2 = np.sort(q0, axis=1)[:, -2:]
    gap = (top2[:, 1] - top2[:, 0]).min()
    assert gap > 1e-4  # random MDPs have a unique optimal action in each state
    greedy = np.eye(A)[q0.argmax(1)]
    np.testing.assert_array_equal(pi_vi, greedy)

    previous = np.full(S, np.inf)
    for lam in (10.0, 1.0, 0.1, 1e-2, 1e-3, 1e-4, gap / 100, gap / 1000):
        q, v, pi = mdp.soft_value_iteration(lam, tol=1e-13)
        assert (v >= v0 - 1e-10).all()
        assert (v - v0 <= lam * math.log(A) / (1 - g) + 1e-10).all()
        assert (v <= previous + 1e-10).all()
        previous = v
        bound = (A - 1) * A ** (g / (1 - g)) * math.exp(-gap / lam)
        assert np.abs(pi - greedy).max() <= bound + 1e-12
    np.testing.assert_allclose(pi, greedy, atol=1e-12)
    np.testing.assert_allclose(q, q0, atol=gap / 1000 * math.log(A) / (1 - g) + 1e-10)


# --- random_mdp and errors ------------------------------------------------------------------------------------------


def test_random_mdp_is_a_reproducible_dense_mdp():
    a, b, c = random_mdp(4, 3, 0.8, seed=7), random_mdp(4, 3, 0.8, seed=7), random_mdp(4, 3, 0.8, seed=8)
    np.testing.assert_array_equal(a.P, b.P)
    np.testing.assert_array_equal(a.R, b.R)
    assert not np.allclose(a.P, c.P)
    assert a.P.shape == (4, 3, 4) and a.R.shape == (4, 3) and a.gamma == 0.8
    assert (a.P > 0).all() and np.allclose(a.P.sum(-1), 1.0)
    np.testing.assert_allclose(a.mu0, 0.25)
    assert not a.terminal.any()
    assert random_mdp(1, 1, 0.0, 0).P.shape == (1, 1, 1)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: softmax_policy(np.zeros(3), -1.0), "temperature=-1.0 is not allowed: temperature must be at least"),
        (lambda m: softmax_value(np.zeros(3), float("nan")), "temperature=nan is not allowed"),
        (lambda m: softmax_policy(np.zeros(3), float("inf")), "temperature=inf is not allowed"),
        (lambda m: softmax_policy(np.zeros(3), "1"), "temperature='1' is not allowed: temperature must be a number"),
        (lambda m: softmax_policy(np.array([1.0, np.nan]), 1.0), "q must be an array of finite action values"),
        (lambda m: softmax_value(np.zeros((3, 0)), 1.0), "q must be an array of finite action values"),
        (lambda m: entropy(np.array([0.5, 0.6])), "pi must hold distributions"),
        (lambda m: entropy(np.array([1.5, -0.5])), "pi must hold distributions"),
        (lambda m: m.soft_values(np.full((3, 3), 1 / 3), 1.0), r"pi must be a table of shape \(S, A\) = \(3, 2\)"),
        (lambda m: m.soft_values(np.full((3, 2), 0.5), -0.1), "temperature=-0.1 is not allowed"),
        (lambda m: m.soft_value_iteration(-1.0), "temperature=-1.0 is not allowed"),
        (lambda m: m.soft_value_iteration(1.0, tol=0.0), "tol=0.0 is not allowed: tol must be positive"),
        (lambda m: m.soft_value_iteration(1.0, max_iter=0), "max_iter=0 is not allowed: max_iter must be positive"),
        (lambda m: m.soft_value_iteration(1.0, max_iter=2.5), "max_iter=2.5 is not allowed: max_iter must be a whole"),
        (lambda m: random_mdp(0, 2), "num_states=0 is not allowed: num_states must be positive"),
        (lambda m: random_mdp(2, 1.5), "num_actions=1.5 is not allowed: num_actions must be a whole number"),
        (lambda m: random_mdp(2, 2, gamma=1.0), r"gamma=1.0 is not allowed: gamma must be a number in \[0, 1\)"),
        (lambda m: random_mdp(2, 2, seed=-1), "seed=-1 is not allowed"),
    ],
)
def test_bad_input_gets_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call(random_mdp(3, 2, 0.9, seed=0))


def test_soft_value_iteration_says_when_it_did_not_converge():
    with pytest.raises(RuntimeError, match="did not reach tol=1e-10 in max_iter=3 sweeps"):
        random_mdp(3, 2, 0.9, seed=0).soft_value_iteration(1.0, max_iter=3)
