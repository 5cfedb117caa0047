"""The trust-region theory of the slides, checked exactly on small finite MDPs (rlcourse.tabular).

Slides "Performance Improvement" to "Towards TRPO": the performance difference lemma (Kakade and
Langford 2002), the decomposition J(pi') - J(pi) = (A) - (B), the bound on (B) by the expected total
variation (Pirotta et al. 2013; Achiam et al. 2017), the penalised surrogate and monotonic
improvement, Pinsker's inequality, and the surrogate touching J to first order at pi' = pi
(Schulman et al. 2015). d_pi is the normalised discounted state distribution (it sums to 1). The
references are written out here independently of the package: truncated sums over t, subsets of
actions, finite differences.

Largest errors measured while developing (8 runs of this file with fresh hypothesis examples, one of
them with 400 examples per property; each error divided by its scale: max|R| / (1 - gamma) for values,
returns, (A), (B) and gradients, 1 for distributions; gamma up to 0.99). LARGEST_ERRORS collects them:
run pytest in-process and print it. Tolerances: TOL = 1e-11 for the identities, 1e-9 for gradients by
finite differences.

    d_pi vs the truncated sum (1 - gamma) sum_t gamma^t P(S_t = s)       1.2e-14
    sum_s d_pi(s) = 1                                                    2.9e-14
    d_pi = (1 - gamma) mu0 + gamma d_pi P_pi                             1.1e-16
    J(pi) vs the truncated sum of discounted rewards                     1.0e-14
    performance difference lemma, d_pi' with 1/(1 - gamma)              2.0e-14
    performance difference lemma, un-normalised sum_t gamma^t P(S_t=s)   2.0e-14
    performance difference lemma, importance-weighted over d_pi and pi   2.0e-14
    (A) - (B) = J(pi') - J(pi)                                           2.0e-14
    (A) by its definition, and importance-weighted over pi               2.0e-14
    (B) by its definition                                                6.4e-15
    L_pi(pi') = J(pi) + (A)                                              1.3e-14
    C = 2 gamma epsilon / (1 - gamma)^2 (scale max|R| / (1 - gamma)^3)   2.5e-15
    penalised surrogate = L - C E[D_TV] (scale: also the penalty)        6.6e-13
    L_pi(pi) = J(pi), also penalised, and (A) = (B) = 0 there            2.4e-14
    D_TV vs the largest |pi'(E) - pi(E)| over events E                   4.2e-16
    D_KL vs its definition                                               4.4e-16
    grad L = grad J at pi' = pi (both by five-point differences)         9.2e-12
    grad J by differences vs the policy gradient theorem                 9.3e-12
    grad L by differences vs the policy gradient theorem                 1.6e-13
    random walk: A^pi = 0 and the penalty unchanged at terminal states   0 (exact)
"""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlcourse.tabular import FiniteMDP, kl_divergence, random_mdp, random_walk, total_variation

GAMMAS = (0.0, 0.5, 0.9, 0.99)
mdps = dict(
    seed=st.integers(0, 2**32 - 1),
    S=st.integers(1, 6),
    A=st.integers(1, 4),
    gamma=st.sampled_from(GAMMAS),
)
few = settings(max_examples=30, deadline=None)
TOL = 1e-11  # absolute, on the scale of the quantity (see close)

LARGEST_ERRORS: dict[str, float] = {}  # the largest error seen per identity (for the table above)


def close(what: str, x, y, scale: float = 1.0, tol: float = TOL) -> None:
    """|x - y| <= tol * scale, elementwise; records the largest |x - y| / scale under ``what``."""
    err = float(np.max(np.abs(np.asarray(x, dtype=float) - np.asarray(y, dtype=float)), initial=0.0)) / scale
    LARGEST_ERRORS[what] = max(LARGEST_ERRORS.get(what, 0.0), err)
    assert err <= tol, f"{what}: error {err:.3g} (in units of {scale:.3g}) above {tol:.1g}"


def value_scale(mdp: FiniteMDP) -> float:
    """The largest |V| any policy can have: max|R| / (1 - gamma)."""
    return max(np.abs(mdp.R).max(), 1e-300) / (1.0 - mdp.gamma)


def policy(rng: np.random.Generator, S: int, A: int, full_support: bool = True) -> np.ndarray:
    pi = rng.dirichlet(np.full(A, 10 ** rng.uniform(-1, 1)), size=S)
    return (pi + 1e-3) / (1 + 1e-3 * A) if full_support else pi


def policy_pair(rng: np.random.Generator, S: int, A: int, full_support: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """pi and a pi' that is independent of it, a small or large softmax step from it, or deterministic."""
    pi = policy(rng, S, A)
    kind = rng.integers(3 if full_support else 4)
    if kind == 0:
        pi_new = policy(rng, S, A, full_support)
    elif kind in (1, 2):
        sigma = 10 ** rng.uniform(-4, -1) if kind == 1 else 10 ** rng.uniform(-1, 1)
        pi_new = softmax(np.log(pi) + sigma * rng.standard_normal((S, A)))
    else:
        pi_new = np.eye(A)[rng.integers(A, size=S)]
    return pi, pi_new


def softmax(theta: np.ndarray) -> np.ndarray:
    w = np.exp(theta - theta.max(-1, keepdims=True))
    return w / w.sum(-1, keepdims=True)


def make(seed: int, S: int, A: int, gamma: float, full_support: bool = True):
    mdp = random_mdp(S, A, gamma, seed=seed)
    pi, pi_new = policy_pair(np.random.default_rng(seed), S, A, full_support)
    return mdp, pi, pi_new


def brute_force(mdp: FiniteMDP, pi: np.ndarray, tol: float = 1e-17):
    """By truncated sums over t: rho(s) = sum_t gamma^t P(S_t = s) (un-normalised), V^pi, A^pi and J(pi)."""
    g = mdp.gamma
    P_pi = np.einsum("sa,sat->st", pi, mdp.P)
    r_pi = (pi * mdp.R).sum(1)
    T = 1 if g == 0 else math.ceil(math.log(tol * (1 - g)) / math.log(g)) + 1
    x = mdp.mu0.copy()  # P(S_t = .)
    M = np.eye(mdp.num_states)  # P(S_t = . | S_0 = s)
    rho, V, w = np.zeros(mdp.num_states), np.zeros(mdp.num_states), 1.0
    for _ in range(T):
        rho += w * x
        V += w * M @ r_pi
        x, M, w = x @ P_pi, M @ P_pi, w * g
    A = mdp.R + g * mdp.P @ V - V[:, None]
    return rho, V, A, float(mdp.mu0 @ V)


def expected_advantage(pi_new: np.ndarray, A_pi: np.ndarray) -> np.ndarray:
    """g(s) = E_{A ~ pi'(.|s)}[A^pi(s, A)]."""
    return (pi_new * A_pi).sum(1)


# --- d_pi and J --------------------------------------------------------------------------------------------------


@few
@given(**mdps)
def test_state_distribution_is_the_normalised_discounted_sum(seed, S, A, gamma):
    """d_pi(s) = (1 - gamma) sum_t gamma^t P(S_t = s): a distribution, and d_pi = (1 - gamma) mu0 + gamma d_pi P_pi."""
    mdp, *policies = make(seed, S, A, gamma, full_support=False)
    for pi in policies:
        d = mdp.state_distribution(pi)
        rho, *_ = brute_force(mdp, pi)
        assert d.shape == (S,)
        close("d_pi vs the truncated sum over t", d, (1 - gamma) * rho)
        close("sum_s d_pi(s) = 1", d.sum(), 1.0)
        assert (d >= -1e-15).all()
        close("d_pi fixed point", d, (1 - gamma) * mdp.mu0 + gamma * d @ np.einsum("sa,sat->st", pi, mdp.P))


@few
@given(**mdps)
def test_expected_return_is_the_discounted_sum_of_rewards(seed, S, A, gamma):
    mdp, *policies = make(seed, S, A, gamma, full_support=False)
    for pi in policies:
        *_, J = brute_force(mdp, pi)
        close("J(pi) vs the truncated sum over t", mdp.expected_return(pi), J, value_scale(mdp))


# --- the performance difference lemma and the decomposition ----------------------------------------------------


@few
@given(**mdps)
def test_performance_difference_lemma(seed, S, A, gamma):
    """J(pi') - J(pi) = 1/(1 - gamma) E_{S ~ d_pi', A ~ pi'}[A^pi(S, A)] with the normalised d_pi', and
    = sum_s rho_pi'(s) E_{A ~ pi'}[A^pi(s, A)] with the un-normalised rho = sum_t gamma^t P(S_t = s) (the slide's form);
    also the slide's importance-weighted form E_{S ~ d_pi, A ~ pi}[d_pi' pi' / (d_pi pi) A^pi] (times 1/(1 - gamma))."""
    mdp, pi, pi_new = make(seed, S, A, gamma)
    scale = value_scale(mdp)
    rho_new, *_, J_new = brute_force(mdp, pi_new)
    _, _, A_pi, J = brute_force(mdp, pi)
    g = expected_advantage(pi_new, A_pi)
    diff = mdp.expected_return(pi_new) - mdp.expected_return(pi)
    close("J(pi') - J(pi) vs brute force", diff, J_new - J, scale)
    d, d_new = mdp.state_distribution(pi), mdp.state_distribution(pi_new)
    close("PDL, normalised d_pi' and 1/(1 - gamma)", diff, d_new @ g / (1 - gamma), scale)
    close("PDL, un-normalised sum_t gamma^t P(S_t = s)", diff, rho_new @ g, scale)
    assert (d > 0).all()  # mu0 is uniform: every state has mass, the weights are defined
    weights = (d_new[:, None] * pi_new) / (d[:, None] * pi)
    close(
        "PDL, importance-weighted over d_pi and pi", diff, (d[:, None] * pi * weights * A_pi).sum() / (1 - gamma), scale
    )


@few
@given(**mdps)
def test_decomposition_into_the_slides_terms(seed, S, A, gamma):
    """(A) - (B) = J(pi') - J(pi), each term as the slide defines it (times 1/(1 - gamma) for the normalised d),
    (A) = L_pi(pi') - J(pi) in its importance-weighted form."""
    mdp, pi, pi_new = make(seed, S, A, gamma)
    scale = value_scale(mdp)
    rho, _, A_pi, J = brute_force(mdp, pi)
    rho_new, *_, J_new = brute_force(mdp, pi_new)
    g = expected_advantage(pi_new, A_pi)
    term_a, term_b = mdp.performance_difference_terms(pi, pi_new)
    close("(A) - (B) = J(pi') - J(pi)", term_a - term_b, J_new - J, scale)
    close("(A), E_{d_pi, pi'}[A^pi]", term_a, rho @ g, scale)  # rho = d_pi / (1 - gamma)
    close("(A), importance-weighted over pi", term_a, (rho[:, None] * pi * (pi_new / pi) * A_pi).sum(), scale)
    close("(B), sum_s (d_pi - d_pi') E_pi'[A^pi]", term_b, (rho - rho_new) @ g, scale)
    close("L_pi(pi') = J(pi) + (A)", mdp.surrogate(pi, pi_new), J + term_a, scale)


# --- the bound on (B), the penalised surrogate and Pinsker --------------------------------------------------------


@few
@given(**mdps)
def test_the_bound_on_b_and_the_penalised_surrogate(seed, S, A, gamma):
    """||d_pi' - d_pi||_1 <= 2 gamma / (1 - gamma) E_{d_pi}[D_TV] and (B) <= |(B)| <= C E_{d_pi}[D_TV] with the
    slide's C = 2 gamma epsilon / (1 - gamma)^2, epsilon = max_s |E_{A ~ pi'}[A^pi(s, A)]|, so that
    J(pi') >= L_pi(pi') - C E_{d_pi}[D_TV]."""
    mdp, pi, pi_new = make(seed, S, A, gamma, full_support=False)
    scale = value_scale(mdp)
    rho, _, A_pi, J = brute_force(mdp, pi)
    rho_new, *_, J_new = brute_force(mdp, pi_new)
    d, d_new = (1 - gamma) * rho, (1 - gamma) * rho_new
    tv = 0.5 * np.abs(pi_new - pi).sum(1)
    epsilon = np.abs(expected_advantage(pi_new, A_pi)).max()
    C = 2 * gamma * epsilon / (1 - gamma) ** 2
    close("C, the slide's constant", mdp.tv_penalty_coefficient(pi, pi_new), C, scale / (1 - gamma) ** 2)
    assert np.abs(d_new - d).sum() <= 2 * gamma / (1 - gamma) * d @ tv + 1e-13
    _, term_b = mdp.performance_difference_terms(pi, pi_new)
    assert abs(term_b) <= C * (d @ tv) + TOL * scale
    penalised = mdp.penalised_surrogate(pi, pi_new)
    penalty = C * (d @ tv)  # up to 2 gamma / (1 - gamma) times larger than max|R| / (1 - gamma)
    close("penalised surrogate = L - C E[D_TV]", penalised, mdp.surrogate(pi, pi_new) - penalty, max(scale, penalty))
    assert J_new >= penalised - TOL * scale


def subsets(A: int):
    return [list(c) for k in range(A + 1) for c in itertools.combinations(range(A), k)]


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), S=st.integers(1, 6), A=st.integers(1, 6))
def test_total_variation_kl_and_pinsker(seed, S, A):
    """D_TV = max over events E of |pi'(E) - pi(E)| = 1/2 sum_a |pi' - pi|; KL(pi' || pi) = E_{pi'}[log pi'/pi];
    Pinsker: D_TV <= sqrt(KL / 2)."""
    rng = np.random.default_rng(seed)
    pi, pi_new = policy_pair(rng, S, A, full_support=bool(rng.integers(2)))
    tv, kl = total_variation(pi_new, pi), kl_divergence(pi_new, pi)
    assert tv.shape == kl.shape == (S,)
    events = subsets(A)
    close(
        "D_TV vs max over events",
        tv,
        [max(abs(p[E].sum() - q[E].sum()) for E in events) for p, q in zip(pi_new, pi, strict=True)],
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_ref = np.nansum(pi_new * np.log(pi_new / pi), axis=1)
    np.testing.assert_array_equal(np.isinf(kl), np.isinf(kl_ref))  # pi' puts mass where pi has none
    finite = np.isfinite(kl_ref)
    close("KL vs its definition", kl[finite], kl_ref[finite], scale=max(1.0, kl_ref[finite].max(initial=0.0)))
    assert (tv <= np.sqrt(kl / 2) + 1e-15).all()  # Pinsker
    np.testing.assert_array_equal(total_variation(pi, pi_new), tv)  # symmetric
    assert (0 <= tv).all() and (tv <= 1).all() and (kl >= 0).all()
    assert (kl_divergence(pi, pi) == 0).all() and (total_variation(pi, pi) == 0).all()


def test_kl_divergence_order_support_and_one_row():
    p, q = np.array([0.5, 0.5, 0.0]), np.array([0.9, 0.05, 0.05])
    assert kl_divergence(p, q) == pytest.approx(0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.05), rel=1e-15)
    assert kl_divergence(q, p) == math.inf  # q puts mass where p has none: the order matters
    assert total_variation(p, q) == pytest.approx(0.45, rel=1e-15)
    assert total_variation(p, q) <= math.sqrt(kl_divergence(p, q) / 2)


# --- the surrogate at pi' = pi: same value, same gradient --------------------------------------------------------


def fd_gradient(f, theta: np.ndarray, h: float = 1e-3) -> np.ndarray:
    """Five-point central differences (error O(h^4)) of f at theta, coordinate by coordinate."""
    grad = np.zeros_like(theta)
    for i in np.ndindex(theta.shape):
        e = np.zeros_like(theta)
        e[i] = h
        grad[i] = (-f(theta + 2 * e) + 8 * f(theta + e) - 8 * f(theta - e) + f(theta - 2 * e)) / (12 * h)
    return grad


@settings(max_examples=20, deadline=None)
@given(**mdps)
def test_surrogate_touches_j_at_pi_with_the_same_gradient(seed, S, A, gamma):
    """L_pi(pi) = J(pi) (also penalised; (A) = (B) = 0), and with softmax logits theta, pi_theta = softmax(theta):
    grad_theta' L_pi(pi_theta')|theta'=theta = grad_theta J(pi_theta) = 1/(1 - gamma) d_pi(s) pi(b|s) A^pi(s, b)."""
    mdp, pi, _ = make(seed, S, A, gamma)
    scale = value_scale(mdp)
    J = mdp.expected_return(pi)
    close("L_pi(pi) = J(pi)", mdp.surrogate(pi, pi), J, scale)
    close("penalised L_pi(pi) = J(pi)", mdp.penalised_surrogate(pi, pi), J, scale)
    close("(A) = (B) = 0 at pi' = pi", mdp.performance_difference_terms(pi, pi), (0.0, 0.0), scale)
    theta = np.log(pi)
    grad_J = fd_gradient(lambda t: mdp.expected_return(softmax(t)), theta)
    grad_L = fd_gradient(lambda t: mdp.surrogate(pi, softmax(t)), theta)
    rho, _, A_pi, _ = brute_force(mdp, pi)
    exact = rho[:, None] * pi * A_pi  # the policy gradient theorem for softmax logits
    close("grad L = grad J at pi' = pi (finite differences)", grad_L, grad_J, scale, tol=1e-9)
    close("grad J, finite differences vs the policy gradient theorem", grad_J, exact, scale, tol=1e-9)
    close("grad L, finite differences vs the policy gradient theorem", grad_L, exact, scale, tol=1e-9)


# --- monotonic improvement -----------------------------------------------------------------------------------------

MIXTURE = np.concatenate([[0.0], np.geomspace(1e-8, 1.0, 81)])


def mixture(pi: np.ndarray, pi_dir: np.ndarray, a: float) -> np.ndarray:
    return (1 - a) * pi + a * pi_dir


@settings(max_examples=20, deadline=None)
@given(**mdps)
def test_maximising_the_penalised_surrogate_never_lowers_j(seed, S, A, gamma):
    """Over the mixtures pi' = (1 - a) pi + a greedy(A^pi), and over random softmax steps from pi, J(pi') is above the
    penalised surrogate everywhere, which equals J(pi) at pi' = pi: its maximiser never lowers J."""
    mdp, pi, _ = make(seed, S, A, gamma, full_support=False)
    scale = value_scale(mdp)
    J = mdp.expected_return(pi)
    greedy = np.eye(A)[mdp.advantages(pi).argmax(1)]
    rng = np.random.default_rng(seed + 1)
    steps = [softmax(np.log(pi + 1e-300) + s * rng.standard_normal((S, A))) for s in np.geomspace(1e-4, 3.0, 25)]
    for family in ([mixture(pi, greedy, a) for a in MIXTURE], [pi, *steps]):
        bound = np.array([mdp.penalised_surrogate(pi, p) for p in family])
        J_new = np.array([mdp.expected_return(p) for p in family])
        assert (J_new >= bound - TOL * scale).all()
        best = bound.argmax()
        assert bound[best] >= J - TOL * scale  # pi itself is in the family
        assert J_new[best] >= J - TOL * scale


def trap(gamma: float = 0.9) -> FiniteMDP:
    """State 0 (start): stay (reward 0) or go (reward +1, to state 1). State 1: escape (reward 0, back to state 0)
    or stay (reward -10)."""
    P = np.zeros((2, 2, 2))
    P[0, 0, 0] = P[0, 1, 1] = P[1, 0, 0] = P[1, 1, 1] = 1.0
    R = np.array([[0.0, 1.0], [0.0, -10.0]])
    return FiniteMDP(P, R, gamma, np.array([1.0, 0.0]))


def test_without_the_penalty_the_surrogate_can_lower_j():
    """pi stays in state 0 and escapes state 1, J(pi) = 0. Towards pi_dir (go, then stay) the surrogate only sees the
    +1 of going: A^pi(0, go) = 1 and d_pi(1) = 0, so L_pi rises linearly in a, 10 a. Its maximiser a = 1 falls into the
    trap: J = 1 - 10 gamma / (1 - gamma) = -89. The penalty, C E[D_TV] = 1800 a^2 (epsilon = 10 a), stops it at
    a = 1/360, where J improves."""
    mdp, gamma = trap(), 0.9
    pi = np.array([[1.0, 0.0], [1.0, 0.0]])
    pi_dir = np.array([[0.0, 1.0], [0.0, 1.0]])
    a_grid = np.linspace(0.0, 1.0, 361)  # steps of 1/360
    family = [mixture(pi, pi_dir, a) for a in a_grid]
    J_new = np.array([mdp.expected_return(p) for p in family])
    plain = np.array([mdp.surrogate(pi, p) for p in family])
    penalised = np.array([mdp.penalised_surrogate(pi, p) for p in family])
    assert mdp.expected_return(pi) == 0.0
    np.testing.assert_allclose(plain, 10 * a_grid, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(penalised, 10 * a_grid - 1800 * a_grid**2, rtol=1e-12, atol=1e-12)
    assert plain.argmax() == len(a_grid) - 1
    assert J_new[plain.argmax()] == pytest.approx(1 - 10 * gamma / (1 - gamma), rel=1e-13)  # -89: J falls
    assert a_grid[penalised.argmax()] == pytest.approx(1 / 360, rel=1e-12)
    assert penalised.max() == pytest.approx(1 / 72, rel=1e-12)
    assert J_new[penalised.argmax()] >= penalised.max() > 0  # J rises
    assert (J_new >= penalised - 1e-12).all()


def test_the_slides_surrogate_needs_the_factor_one_over_one_minus_gamma():
    """Read with the normalised d_pi, the slide's L(pi') = E_{d_pi, pi}[pi'/pi A^pi] - C E_{d_pi}[D_TV] (without
    1/(1 - gamma) on the first term) is not a lower bound on J(pi') - J(pi) when that term is negative; with the factor
    it is. Here pi' moves 1% of the way from a random pi towards the worst actions of A^pi (seed 191 shows it; most
    pairs do not)."""
    mdp = random_mdp(4, 3, 0.9, seed=191)
    pi = np.random.default_rng(191).dirichlet(np.ones(3), size=4)
    A_pi = mdp.advantages(pi)
    pi_new = mixture(pi, np.eye(3)[A_pi.argmin(1)], 0.01)
    d = mdp.state_distribution(pi)
    first = (d[:, None] * pi * (pi_new / pi) * A_pi).sum()  # the slide's E_{d_pi, pi}[pi'/pi A^pi]
    penalty = mdp.tv_penalty_coefficient(pi, pi_new) * d @ total_variation(pi_new, pi)
    improvement = mdp.expected_return(pi_new) - mdp.expected_return(pi)
    assert first < 0
    assert improvement < first - penalty  # the slide's reading fails ...
    assert improvement >= first / (1 - mdp.gamma) - penalty  # ... the exact one holds
    assert improvement >= mdp.penalised_surrogate(pi, pi_new) - mdp.expected_return(pi)


# --- terminal states ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(10))
def test_random_walk_terminal_states(seed):
    """Terminal states keep the mass of the ended episodes (d_pi sums to 1), the identities hold, and the policy in a
    terminal state changes neither J nor the penalised surrogate."""
    mdp = random_walk(n=5, gamma=(0.5, 0.9, 0.99)[seed % 3], step_reward=-0.1)
    rng = np.random.default_rng(seed)
    pi, pi_new = policy_pair(rng, mdp.num_states, 2)
    scale = value_scale(mdp)
    rho, _, A_pi, J = brute_force(mdp, pi)
    rho_new, *_, J_new = brute_force(mdp, pi_new)
    d = mdp.state_distribution(pi)
    close("d_pi vs the truncated sum over t", d, (1 - mdp.gamma) * rho)
    close("sum_s d_pi(s) = 1", d.sum(), 1.0)
    assert (d[mdp.terminal] > 0).all()
    close("A^pi = 0 in terminal states", A_pi[mdp.terminal], 0.0, scale)
    term_a, term_b = mdp.performance_difference_terms(pi, pi_new)
    close("(A) - (B) = J(pi') - J(pi)", term_a - term_b, J_new - J, scale)
    penalised = mdp.penalised_surrogate(pi, pi_new)
    assert J_new >= penalised - TOL * scale
    # only the policy's non-terminal rows matter
    other = pi_new.copy()
    other[mdp.terminal] = rng.dirichlet(np.ones(2), size=2)
    close("J ignores the policy in terminal states", mdp.expected_return(other), mdp.expected_return(pi_new), scale)
    close("the penalty ignores terminal states", mdp.penalised_surrogate(pi, other), penalised, scale)


# --- bad input -----------------------------------------------------------------------------------------------------

GOOD = np.full((3, 2), 0.5)
LONG_ROW = np.array([[0.5, 0.6], [0.5, 0.5], [0.5, 0.5]])
NEGATIVE = np.array([[1.5, -0.5], [0.5, 0.5], [0.5, 0.5]])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda m: m.state_distribution(np.full((3, 3), 1 / 3)),
            r"pi=<array of shape \(3, 3\)> is not allowed: pi must",
        ),
        (lambda m: m.expected_return(LONG_ROW), r"pi=.* is not allowed: .* whose rows are distributions.*sums to 1.1"),
        (lambda m: m.surrogate(GOOD, NEGATIVE), r"pi_new=.* is not allowed: pi_new must be a table.*negative"),
        (lambda m: m.surrogate(NEGATIVE, GOOD), r"pi=.* is not allowed: pi must be a table.*negative"),
        (lambda m: m.penalised_surrogate(GOOD, np.full((3, 2), np.nan)), r"pi_new=.* is not allowed.*not finite"),
        (lambda m: m.tv_penalty_coefficient(GOOD, GOOD[:2]), r"pi_new=<array of shape \(2, 2\)> is not allowed"),
        (lambda m: m.performance_difference_terms(GOOD, LONG_ROW), r"pi_new=.* is not allowed"),
        (
            lambda m: total_variation(GOOD, np.full((3, 3), 1 / 3)),
            r"pi_new=.* is not allowed: pi_new must have the shape",
        ),
        (lambda m: total_variation(LONG_ROW, GOOD), r"pi_new=.* is not allowed: .*sums to 1.1"),
        (lambda m: kl_divergence(GOOD, NEGATIVE), r"pi=.* is not allowed: pi must hold distributions.*negative"),
        (lambda m: kl_divergence(np.zeros((3, 0)), np.zeros((3, 0))), r"pi_new=.* is not allowed"),
    ],
)
def test_bad_input_gets_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call(random_mdp(3, 2, 0.9, seed=0))


def test_terminal_states_must_be_absorbing_without_reward():
    mdp = random_walk(n=3)
    with pytest.raises(ValueError, match=r"terminal=\[0, 1, 4\] .* is not allowed: a terminal state must be absorbing"):
        FiniteMDP(mdp.P, mdp.R, mdp.gamma, mdp.mu0, np.array([True, True, False, False, True]))
    R = mdp.R.copy()
    R[0, 1] = 1.0
    with pytest.raises(ValueError, match=r"with zero reward .* and states \[0\] are not"):
        FiniteMDP(mdp.P, R, mdp.gamma, mdp.mu0, mdp.terminal)
    with pytest.raises(ValueError, match=r"terminal must have shape \(S,\) = \(5,\)"):
        FiniteMDP(mdp.P, mdp.R, mdp.gamma, mdp.mu0, np.array([True, False]))
