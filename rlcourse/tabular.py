"""Finite MDPs where every quantity of the lecture can be computed exactly.

``FiniteMDP(P, R, gamma, mu0)``: ``P[s, a, s']`` transition probabilities, ``R[s, a]`` expected
rewards, ``gamma`` in [0, 1), ``mu0[s]`` the initial distribution. A policy is a table
``pi[s, a]`` whose rows sum to 1. Terminal states (``terminal[s]``) must be absorbing with zero
reward (checked), so the discounted sums below are exact for episodic tasks too.

Entropy-regularized ("soft") quantities follow the slides' "Entropy-Regularized RL" pages
(Nachum et al. 2017; Haarnoja et al. 2018). The slides' regularization weight lambda is called
``temperature`` here (SAC's alpha):

- :func:`entropy` ``H(pi(.|s))``, :func:`softmax_policy` the greedy softmax policy
  ``exp((q - v) / lambda)`` and :func:`softmax_value` ``v = lambda log sum_a exp(q / lambda)``;
- :meth:`FiniteMDP.soft_values` ``(q_pi^soft, v_pi^soft)`` of a policy, exactly;
- :meth:`FiniteMDP.soft_value_iteration` the optimal soft ``q``, ``v`` and policy;
- :func:`random_mdp` a small random MDP from a seed, for tests and notebooks.

The entropy bonus is paid in non-terminal states only: once an episode has ended nothing more
is earned (as in SAC's target ``y = R`` at a terminal state). The slides' MDPs never end, so
there the two agree.

The trust-region theory follows the slides' "Performance Improvement" to "Towards TRPO" pages
(Kakade and Langford 2002; Pirotta et al. 2013; Schulman et al. 2015; Achiam et al. 2017), with
``pi`` the current policy and ``pi_new`` the slides' pi':

- :meth:`FiniteMDP.state_distribution` the *normalised* discounted state distribution ``d_pi``
  and :meth:`FiniteMDP.expected_return` ``J(pi)``;
- :meth:`FiniteMDP.surrogate` ``L_pi(pi')``, :meth:`FiniteMDP.penalised_surrogate` the slide's
  lower bound on ``J(pi')`` and :meth:`FiniteMDP.tv_penalty_coefficient` its constant;
- :meth:`FiniteMDP.performance_difference_terms` the slide's terms (A) and (B);
- :func:`total_variation` and :func:`kl_divergence` per state.

``d_pi`` is normalised (it sums to 1, as in the slides' policy gradient theorem), so an
expectation over it carries the factor ``1/(1 - gamma)`` wherever the slides' "Surrogate Loss"
pages leave it out; each docstring says where.

Used by ``notebooks/02_advantage_estimation.ipynb`` (true advantages against which GAE is measured),
the soft-value-functions notebook and the tests.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np

from rlcourse.config import check_positive, check_seed

__all__ = [
    "FiniteMDP",
    "random_walk",
    "random_mdp",
    "entropy",
    "softmax_policy",
    "softmax_value",
    "total_variation",
    "kl_divergence",
]


@dataclass
class FiniteMDP:
    P: np.ndarray
    R: np.ndarray
    gamma: float
    mu0: np.ndarray
    terminal: np.ndarray = field(default=None)  # bool (S,): states where an episode ends

    def __post_init__(self):
        self.P = np.asarray(self.P, dtype=float)
        self.R = np.asarray(self.R, dtype=float)
        self.mu0 = np.asarray(self.mu0, dtype=float)
        if self.P.ndim != 3 or self.P.shape[0] != self.P.shape[2]:
            raise ValueError(f"P must have shape (S, A, S), got {self.P.shape}")
        S, A, _ = self.P.shape
        if self.R.shape != (S, A):
            raise ValueError(f"R must have shape (S, A) = {(S, A)} to match P, got {self.R.shape}")
        if self.mu0.shape != (S,):
            raise ValueError(f"mu0 must have shape (S,) = {(S,)}, got {self.mu0.shape}")
        if (self.P < 0).any() or not np.allclose(self.P.sum(-1), 1.0, atol=1e-8):
            raise ValueError(
                "every row P[s, a, :] must be a probability distribution "
                "(non-negative, summing to 1)"
            )
        if (self.mu0 < 0).any() or not np.isclose(self.mu0.sum(), 1.0, atol=1e-8):
            raise ValueError("mu0 must be a probability distribution (non-negative, summing to 1)")
        if not 0.0 <= float(self.gamma) < 1.0:
            raise ValueError(f"gamma must lie in [0, 1) for a finite MDP, got {self.gamma}")
        self.terminal = (
            np.zeros(S, dtype=bool)
            if self.terminal is None
            else np.asarray(self.terminal, dtype=bool)
        )
        if self.terminal.shape != (S,):
            raise ValueError(f"terminal must have shape (S,) = {(S,)}, got {self.terminal.shape}")
        stay = self.P[np.arange(S), :, np.arange(S)]  # P[s, a, s] for every s and a
        absorbing = np.isclose(stay, 1.0, rtol=0, atol=1e-8).all(-1)
        rewardless = np.isclose(self.R, 0.0, rtol=0, atol=1e-12).all(-1)
        bad = np.flatnonzero(self.terminal & ~(absorbing & rewardless))
        if bad.size:
            raise ValueError(
                f"terminal={np.flatnonzero(self.terminal).tolist()} (the terminal states) is not "
                "allowed: a terminal state must be absorbing with zero reward (P[s, a, s] = 1 and "
                f"R[s, a] = 0 for every a), and states {bad.tolist()} are not"
            )

    @property
    def num_states(self) -> int:
        return self.P.shape[0]

    @property
    def num_actions(self) -> int:
        return self.P.shape[1]

    def _check_policy(self, pi: np.ndarray, name: str = "pi") -> np.ndarray:
        pi = np.asarray(pi, dtype=float)
        if pi.shape != self.R.shape:
            problem = f"got shape {pi.shape}"
        else:
            problem = _distribution_problem(pi)
        if problem:
            raise ValueError(
                f"{name}=<array of shape {pi.shape}> is not allowed: {name} must be a table of "
                f"shape (S, A) = {self.R.shape} whose rows are distributions (non-negative, "
                f"summing to 1); {problem}"
            )
        return pi

    def values(self, pi: np.ndarray) -> np.ndarray:
        """``V^pi``: the solution of ``V = r_pi + gamma P_pi V`` (a direct linear solve)."""
        pi = self._check_policy(pi)
        P_pi = np.einsum("sa,sat->st", pi, self.P)
        r_pi = (pi * self.R).sum(-1)
        return np.linalg.solve(np.eye(self.num_states) - self.gamma * P_pi, r_pi)

    def q_values(self, pi: np.ndarray) -> np.ndarray:
        """``Q^pi(s, a) = R(s, a) + gamma sum_s' P(s'|s, a) V^pi(s')``."""
        return self.R + self.gamma * self.P @ self.values(pi)

    def advantages(self, pi: np.ndarray) -> np.ndarray:
        """``A^pi(s, a) = Q^pi(s, a) - V^pi(s)``."""
        V = self.values(pi)
        return self.R + self.gamma * self.P @ V - V[:, None]

    # --- trust-region theory: d_pi, J, the surrogate and its lower bound ---------------------

    def state_distribution(self, pi: np.ndarray) -> np.ndarray:
        """The normalised discounted state distribution
        ``d_pi(s) = (1 - gamma) sum_t gamma^t P(S_t = s)``.

        ``S_0 ~ mu0`` and ``A_t ~ pi(.|S_t)``. As in the slides' policy gradient theorem, ``d_pi``
        is normalised: it sums to 1. It is the solution of
        ``d_pi = (1 - gamma) mu0 + gamma d_pi P_pi``, a direct linear solve. (The un-normalised
        discounted visitation ``sum_t gamma^t P(S_t = s)``, which sums to ``1/(1 - gamma)``, is
        ``d_pi / (1 - gamma)``.)

        Terminal states are absorbing, so they keep the mass of the episodes that have ended:
        ``d_pi(s_end)`` is ``(1 - gamma) sum_t gamma^t P(the episode is over by t and ended in
        s_end)``. Every advantage is 0 there (zero reward, no way out), so those states add nothing
        to :meth:`surrogate` or :meth:`performance_difference_terms`; they are left out of the
        penalty of :meth:`penalised_surrogate`, where the policy never acts.
        """
        pi = self._check_policy(pi)
        P_pi = np.einsum("sa,sat->st", pi, self.P)
        # d_pi (I - gamma P_pi) = (1 - gamma) mu0, solved as
        # (I - gamma P_pi)^T d_pi = (1 - gamma) mu0
        return np.linalg.solve(
            (np.eye(self.num_states) - self.gamma * P_pi).T, (1.0 - self.gamma) * self.mu0
        )

    def expected_return(self, pi: np.ndarray) -> float:
        """``J(pi) = E_{S_0 ~ mu0}[V^pi(S_0)] = mu0 @ V^pi``, the expected discounted return."""
        return float(self.mu0 @ self.values(pi))

    def surrogate(self, pi: np.ndarray, pi_new: np.ndarray) -> float:
        """The surrogate
        ``L_pi(pi') = J(pi) + 1/(1 - gamma) E_{S ~ d_pi, A ~ pi'(.|S)}[A^pi(S, A)]``.

        ``pi_new`` is the slides' pi'. This is ``L_pi`` of Kakade and Langford (2002) and of TRPO
        (Schulman et al. 2015, eq. 3: ``eta(pi) + sum_s rho_pi(s) sum_a pi'(a|s) A_pi(s, a)`` with
        the un-normalised ``rho_pi = d_pi / (1 - gamma)``): the performance difference lemma with
        the new policy's state distribution ``d_pi'`` replaced by the old one, ``d_pi``. It equals
        ``J(pi)`` at ``pi' = pi`` and has the same gradient there; away from ``pi`` it is exact up
        to the slide's term (B): ``J(pi') = L_pi(pi') - (B)``.

        The slides' "Surrogate Loss" page writes only the expectation, the term (A) of
        :meth:`performance_difference_terms`, as
        ``E_{S ~ d_pi, A ~ pi}[pi'(A|S) / pi(A|S) A^pi(S, A)]``: it drops the offset ``J(pi)``
        (a constant in pi', so the maximiser is the same) and the factor ``1/(1 - gamma)``, which
        belongs there when ``d_pi`` is normalised, as here (:meth:`state_distribution`).
        """
        pi = self._check_policy(pi)
        pi_new = self._check_policy(pi_new, "pi_new")
        d_pi = self.state_distribution(pi)
        term_a = d_pi @ self._expected_advantage(pi, pi_new) / (1.0 - self.gamma)
        return self.expected_return(pi) + term_a

    def tv_penalty_coefficient(self, pi: np.ndarray, pi_new: np.ndarray) -> float:
        """The slide's constant ``C = 2 gamma epsilon / (1 - gamma)^2`` of
        :meth:`penalised_surrogate`.

        ``epsilon = max_s |E_{A ~ pi'(.|s)}[A^pi(s, A)]|``, so ``epsilon``, and with it ``C``,
        depends on pi'. With the normalised ``d_pi`` of :meth:`state_distribution` this is exactly
        the slide's constant: the slide's term (B), in return units
        (:meth:`performance_difference_terms`), satisfies
        ``(B) <= C E_{S ~ d_pi}[D_TV(pi'(.|S), pi(.|S))]`` (Pirotta et al. 2013; in this form Achiam
        et al. 2017, Corollary 1).
        """
        pi = self._check_policy(pi)
        pi_new = self._check_policy(pi_new, "pi_new")
        epsilon = np.abs(self._expected_advantage(pi, pi_new)).max()
        return float(2.0 * self.gamma * epsilon / (1.0 - self.gamma) ** 2)

    def penalised_surrogate(self, pi: np.ndarray, pi_new: np.ndarray) -> float:
        """The slide's lower bound
        ``L_pi(pi') - C E_{S ~ d_pi}[D_TV(pi'(.|S), pi(.|S))] <= J(pi')``.

        ``L_pi`` is :meth:`surrogate`, ``C = 2 gamma epsilon / (1 - gamma)^2`` with
        ``epsilon = max_s |E_{A ~ pi'(.|s)}[A^pi(s, A)]|`` (:meth:`tv_penalty_coefficient`), and
        ``D_TV`` is :func:`total_variation`. ``J(pi') >= penalised_surrogate(pi, pi')`` for every
        pi', with equality at ``pi' = pi``; so a pi' that maximises it has ``J(pi') >= J(pi)``
        (monotonic improvement, Pirotta et al. 2013; Schulman et al. 2015).

        Why the bound holds with this ``C`` and the normalised ``d_pi``: ``d_pi' - d_pi = gamma d_pi
        (P_pi' - P_pi)(I - gamma P_pi')^{-1}``, so ``||d_pi' - d_pi||_1 <= gamma / (1 - gamma) sum_s
        d_pi(s) ||P_pi'(.|s) - P_pi(.|s)||_1 <= 2 gamma / (1 - gamma) E_{S ~ d_pi}[D_TV]``, and
        ``(B) = 1/(1 - gamma) sum_s (d_pi(s) - d_pi'(s)) E_{A ~ pi'(.|s)}[A^pi(s, A)] <= epsilon /
        (1 - gamma) ||d_pi' - d_pi||_1``.

        Differences from the slide: the slide's ``L(pi')`` is this minus ``J(pi)`` and leaves out
        the factor ``1/(1 - gamma)`` of its first term (see :meth:`surrogate`); it states the bound
        as "``J(pi) >= L(pi)``" where ``J(pi') - J(pi) >= L(pi')`` is meant. Read with a normalised
        ``d_pi``, the slide's ``L`` is no lower bound where its first term is negative (J can fall
        below it); its maximiser still never lowers J, since ``max L >= L(pi) = 0`` forces the first
        term to be at least the penalty. A terminal state adds nothing to the penalty: it is
        absorbing whatever the action, so ``P_pi'(.|s) = P_pi(.|s)`` there, and the policy never
        acts in it.
        """
        pi = self._check_policy(pi)
        pi_new = self._check_policy(pi_new, "pi_new")
        d_pi = self.state_distribution(pi)
        expected_tv = d_pi @ (total_variation(pi_new, pi) * ~self.terminal)
        return self.surrogate(pi, pi_new) - self.tv_penalty_coefficient(pi, pi_new) * expected_tv

    def performance_difference_terms(
        self, pi: np.ndarray, pi_new: np.ndarray
    ) -> tuple[float, float]:
        """The slide's terms ``(A)`` and ``(B)`` with ``J(pi') - J(pi) = (A) - (B)``, in return
        units.

        With the normalised ``d`` of :meth:`state_distribution` and
        ``g(s) = E_{A ~ pi'(.|s)}[A^pi(s, A)]``:

            (A) = 1/(1 - gamma) E_{S ~ d_pi, A ~ pi'(.|S)}[A^pi(S, A)]
                = 1/(1 - gamma) sum_s d_pi(s) g(s)
            (B) = 1/(1 - gamma) sum_s (d_pi(s) - d_pi'(s)) g(s)

        ``(A) - (B) = 1/(1 - gamma) E_{S ~ d_pi', A ~ pi'}[A^pi(S, A)] = J(pi') - J(pi)``: the
        performance difference lemma (Kakade and Langford 2002). ``(A) = L_pi(pi') - J(pi)``
        (:meth:`surrogate`) and ``(B) <= C E_{S ~ d_pi}[D_TV]`` (:meth:`penalised_surrogate`). The
        slides write both without the factor ``1/(1 - gamma)``, which is exact when their ``d`` is
        the un-normalised ``sum_t gamma^t P(S_t = s)``.
        """
        pi = self._check_policy(pi)
        pi_new = self._check_policy(pi_new, "pi_new")
        d_pi, d_pi_new = self.state_distribution(pi), self.state_distribution(pi_new)
        g = self._expected_advantage(pi, pi_new)  # g(s) = E_{A ~ pi'(.|s)}[A^pi(s, A)]
        term_a = d_pi @ g / (1.0 - self.gamma)
        term_b = (d_pi - d_pi_new) @ g / (1.0 - self.gamma)
        return float(term_a), float(term_b)

    def _expected_advantage(self, pi: np.ndarray, pi_new: np.ndarray) -> np.ndarray:
        # E_{A ~ pi'(.|s)}[A^pi(s, A)] per state
        return (pi_new * self.advantages(pi)).sum(-1)

    def soft_values(self, pi: np.ndarray, temperature: float) -> tuple[np.ndarray, np.ndarray]:
        """The soft value functions ``(q_pi^soft, v_pi^soft)`` of ``pi``, by a direct linear solve.

        ``temperature`` is the slides' lambda >= 0. Following the slide's definitions,

            q_pi^soft(s, a) = r(s, a)
                + E[sum_{t>=1} gamma^t (r(S_t, A_t) + lambda H(pi(.|S_t))) | S_0=s, A_0=a, pi]
            v_pi^soft(s)    = E_{A~pi(.|s)}[q_pi^soft(s, A)] + lambda H(pi(.|s)),

        so the entropy of the first step is in ``v`` but not in ``q`` (the sum starts at t = 1), and
        ``q_pi^soft(s, a) = r(s, a) + gamma E[v_pi^soft(S')]``. Hence ``v_pi^soft`` is the ordinary
        value of the soft reward ``r_pi(s) + lambda H(pi(.|s))``: the solution of
        ``v = r_pi + lambda H_pi + gamma P_pi v``. The bonus is not paid in terminal states.
        With ``temperature=0`` these are :meth:`q_values` and :meth:`values`.
        """
        pi = self._check_policy(pi)
        lam = _check_temperature(temperature)
        P_pi = np.einsum("sa,sat->st", pi, self.P)
        # r(s, pi) + lambda H(pi(.|s))
        r_pi = (pi * self.R).sum(-1) + lam * entropy(pi) * ~self.terminal
        v_soft = np.linalg.solve(np.eye(self.num_states) - self.gamma * P_pi, r_pi)
        q_soft = self.R + self.gamma * self.P @ v_soft
        return q_soft, v_soft

    def soft_value_iteration(
        self, temperature: float, tol: float = 1e-10, max_iter: int = 100_000
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The optimal soft ``(q*, v*, pi*)`` by iterating the soft Bellman optimality operator.

        ``temperature`` is the slides' lambda >= 0. Starting from ``q = r``, repeat

            v(s)    = lambda log sum_a exp(q(s, a) / lambda)   (the greedy softmax policy's value)
            q(s, a) = r(s, a) + gamma sum_s' P(s'|s, a) v(s')

        until the returned ``q`` is within ``tol`` of the fixed point (sup norm; the operator is a
        gamma-contraction, so a sweep that changes ``q`` by ``delta`` leaves it within
        ``gamma delta / (1 - gamma)``). ``pi*`` is the greedy softmax policy
        ``exp((q* - v*) / lambda)``; ``q*`` and ``v*`` are its own soft values. ``temperature=0`` is
        ordinary value iteration (``v = max_a q``, ties split evenly in ``pi*``). Raises
        ``RuntimeError`` if ``max_iter`` sweeps are not enough.
        """
        lam = _check_temperature(temperature)
        check_positive("tol", tol)
        check_positive("max_iter", max_iter, integer=True)
        q = self.R.copy()
        for _ in range(max_iter):
            q_new = self.R + self.gamma * self.P @ self._soft_greedy_value(q, lam)
            delta = np.abs(q_new - q).max()
            q = q_new
            if self.gamma * delta <= tol * (1.0 - self.gamma):
                break
        else:
            raise RuntimeError(
                f"soft value iteration did not reach tol={tol!r} in max_iter={max_iter!r} sweeps "
                f"(gamma={self.gamma}); raise max_iter or tol"
            )
        pi = softmax_policy(q, lam)
        # no bonus once the episode has ended
        pi[self.terminal] = softmax_policy(q[self.terminal], 0.0)
        return q, self._soft_greedy_value(q, lam), pi

    def _soft_greedy_value(self, q: np.ndarray, lam: float) -> np.ndarray:
        # lambda log sum_a exp(q / lambda) in non-terminal states, max_a q in terminal ones (no
        # entropy bonus there)
        v = softmax_value(q, lam)
        v[self.terminal] = q[self.terminal].max(-1)
        return v

    def sample_episodes(
        self, pi: np.ndarray, num_episodes: int, horizon: int, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        """Sample ``num_episodes`` episodes in parallel, time first, cut at ``horizon`` steps.

        Returns arrays of shape ``(horizon, num_episodes)``: ``states`` S_t, ``actions`` A_t,
        ``rewards`` R_{t+1}, ``next_states`` S_{t+1}, ``terminated`` (S_{t+1} terminal),
        ``truncated`` (the horizon cut the episode at t), and ``active`` (step t happened: the
        episode had not ended before). The reward of step t is ``R[S_t, A_t]``.
        """
        pi = self._check_policy(pi)
        n = int(num_episodes)
        out = {k: np.zeros((horizon, n), dtype=int) for k in ("states", "actions", "next_states")}
        out.update(
            {k: np.zeros((horizon, n), dtype=bool) for k in ("terminated", "truncated", "active")}
        )
        out["rewards"] = np.zeros((horizon, n))
        s = rng.choice(self.num_states, size=n, p=self.mu0)
        active = ~self.terminal[s]
        for t in range(horizon):
            a = _draw(rng, pi[s])
            s2 = _draw(rng, self.P[s, a])
            out["states"][t], out["actions"][t], out["next_states"][t] = s, a, s2
            out["rewards"][t] = self.R[s, a] * active
            out["active"][t] = active
            out["terminated"][t] = active & self.terminal[s2]
            out["truncated"][t] = active & ~self.terminal[s2] & (t == horizon - 1)
            active = active & ~self.terminal[s2]
            s = s2
        return out


def _draw(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One index per row of ``probs`` (rows are distributions), by inverting the cumulative sum."""
    u = rng.random(probs.shape[0])[:, None]
    return (u > np.cumsum(probs, axis=1)).sum(1).clip(max=probs.shape[1] - 1)


def random_walk(n: int = 7, gamma: float = 0.9, step_reward: float = 0.0) -> FiniteMDP:
    """A random-walk chain: states ``0 .. n+1``, both ends terminal, episodes start in the middle.

    Action 0 moves one state left, action 1 one state right (deterministically; the randomness is
    the policy's). Stepping into the right end pays +1, into the left end 0, and every other step
    pays ``step_reward``. With a policy that picks each action with probability 1/2 this is
    Sutton and Barto's random walk.
    """
    S = n + 2
    P = np.zeros((S, 2, S))
    R = np.zeros((S, 2))
    for s in range(1, n + 1):
        P[s, 0, s - 1] = 1.0
        P[s, 1, s + 1] = 1.0
        R[s] = step_reward
    R[n, 1] = 1.0
    for end in (0, S - 1):
        P[end, :, end] = 1.0  # absorbing, no reward: V = 0 there
    mu0 = np.zeros(S)
    mu0[(S - 1) // 2] = 1.0
    terminal = np.zeros(S, dtype=bool)
    terminal[[0, S - 1]] = True
    return FiniteMDP(P, R, gamma, mu0, terminal)


def random_mdp(
    num_states: int = 5, num_actions: int = 3, gamma: float = 0.9, seed: int = 0
) -> FiniteMDP:
    """A random small MDP from ``seed``, for tests and notebooks.

    Every row ``P[s, a, :]`` is drawn from a flat Dirichlet (dense: every next state is possible),
    ``R[s, a]`` from a standard normal, ``mu0`` is uniform, and no state is terminal.
    """
    check_positive("num_states", num_states, integer=True)
    check_positive("num_actions", num_actions, integer=True)
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real) or not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma={gamma!r} is not allowed: gamma must be a number in [0, 1)")
    check_seed(seed)
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(num_states), size=(num_states, num_actions))
    R = rng.standard_normal((num_states, num_actions))
    return FiniteMDP(P, R, float(gamma), np.full(num_states, 1.0 / num_states))


def entropy(pi: np.ndarray) -> np.ndarray:
    """``H(pi(.|s)) = -sum_a pi(a|s) log pi(a|s)`` per state (``0 log 0 = 0``), in nats.

    ``pi`` has the actions on its last axis: a table ``(S, A)`` gives ``(S,)``, one row ``(A,)`` a
    scalar.
    """
    pi = np.asarray(pi, dtype=float)
    if (
        pi.ndim == 0
        or pi.shape[-1] == 0
        or (pi < 0).any()
        or not np.allclose(pi.sum(-1), 1.0, atol=1e-8)
    ):
        raise ValueError(
            "pi must hold distributions over the actions on its last axis (non-negative, summing "
            f"to 1), got shape {pi.shape}"
        )
    # "+ 0.0" turns the -0.0 of a deterministic row into 0.0 for display.
    return -np.where(pi > 0, pi * np.log(np.where(pi > 0, pi, 1.0)), 0.0).sum(-1) + 0.0


def softmax_value(q: np.ndarray, temperature: float) -> np.ndarray:
    """``v(s) = lambda log sum_a exp(q(s, a) / lambda)``, the soft maximum of ``q`` over its
    last axis.

    ``temperature`` is the slides' lambda >= 0. By the log-sum-exp identity this equals
    ``E_{A~pi}[q(s, A)] + lambda H(pi(.|s))`` for the greedy softmax policy ``pi``, the largest
    value that expression takes over all policies. Computed stably (the maximum is taken out before
    exponentiating), so tiny temperatures work; ``temperature=0`` gives ``max_a q(s, a)``.
    """
    q = _check_q(q)
    lam = _check_temperature(temperature)
    m = q.max(-1)
    if lam == 0.0:
        return m
    # (q - max q) / lambda may be -inf: exp gives 0, as it should
    with np.errstate(over="ignore", under="ignore"):
        return m + lam * np.log(np.exp((q - m[..., None]) / lam).sum(-1))


def softmax_policy(q: np.ndarray, temperature: float) -> np.ndarray:
    """The greedy softmax policy ``pi(a|s) = exp((q(s, a) - v(s)) / lambda)`` w.r.t. ``q``.

    ``temperature`` is the slides' lambda >= 0 and ``v = lambda log sum_a exp(q / lambda)``
    (:func:`softmax_value`), so each row sums to 1; the actions are on ``q``'s last axis. It is
    the policy that maximises ``E_{A~pi}[q(s, A)] + lambda H(pi(.|s))``. Computed stably:
    ``exp((q - max q) / lambda)`` normalised, so tiny temperatures give the greedy policy without
    overflow. ``temperature=0`` is the greedy (argmax) policy, with exactly tied maxima sharing
    the probability evenly -- the limit of the softmax as lambda -> 0.
    """
    q = _check_q(q)
    lam = _check_temperature(temperature)
    if lam == 0.0:
        best = (q == q.max(-1, keepdims=True)).astype(float)
        return best / best.sum(-1, keepdims=True)
    # (q - max q) / lambda may be -inf: exp gives 0, as it should
    with np.errstate(over="ignore", under="ignore"):
        w = np.exp((q - q.max(-1, keepdims=True)) / lam)
    return w / w.sum(-1, keepdims=True)


def total_variation(pi_new: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """``D_TV(pi'(.|s), pi(.|s)) = 1/2 sum_a |pi'(a|s) - pi(a|s)|`` per state, the slides'
    definition.

    ``pi_new`` is the slides' pi'. Both have the actions on their last axis and the same shape: two
    tables ``(S, A)`` give ``(S,)``, two rows ``(A,)`` a scalar. It is symmetric and lies in [0, 1].
    """
    pi_new, pi = _check_pair(pi_new, pi)
    return 0.5 * np.abs(pi_new - pi).sum(-1)


def kl_divergence(pi_new: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """``D_KL(pi'(.|s), pi(.|s)) = sum_a pi'(a|s) log(pi'(a|s) / pi(a|s))`` per state, in nats.

    The order is the slides' (the new policy first, as in Pinsker's inequality on the "Towards
    TRPO" page and TRPO's constraint): ``KL(pi' || pi)``, the expectation taken under pi'.
    ``0 log(0 / q) = 0``; ``inf`` where ``pi'(a|s) > 0 = pi(a|s)``. Shapes as in
    :func:`total_variation`. Pinsker: ``D_TV <= sqrt(D_KL / 2)``.
    """
    pi_new, pi = _check_pair(pi_new, pi)
    # log 0 = -inf; 0 * inf in the branch np.where drops
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.log(np.where(pi_new > 0, pi_new, 1.0)) - np.log(pi)
        kl = np.where(pi_new > 0, pi_new * log_ratio, 0.0).sum(-1)
    return np.maximum(kl, 0.0)  # >= 0 exactly; rounding could leave -1e-17 when pi' = pi


def _distribution_problem(p: np.ndarray) -> str:
    """What keeps ``p`` from holding distributions on its last axis ('' if nothing does)."""
    if p.ndim == 0 or p.shape[-1] == 0:
        return f"got shape {p.shape}"
    if not np.isfinite(p).all():
        return "it has entries that are not finite numbers"
    if (p < 0).any():
        return f"it has a negative entry {float(p.min())!r}"
    off = np.abs(p.sum(-1) - 1.0)
    # np.allclose(sums, 1.0, atol=1e-8), as in entropy(), but faster
    if off.max(initial=0.0) > 1e-5 + 1e-8:
        return f"a row sums to {float(p.sum(-1).reshape(-1)[off.argmax()])!r}"
    return ""


def _check_pair(pi_new: np.ndarray, pi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pi_new, pi = np.asarray(pi_new, dtype=float), np.asarray(pi, dtype=float)
    for name, p in (("pi_new", pi_new), ("pi", pi)):
        problem = _distribution_problem(p)
        if problem:
            raise ValueError(
                f"{name}=<array of shape {p.shape}> is not allowed: {name} must hold distributions "
                f"over the actions on its last axis (non-negative, summing to 1); {problem}"
            )
    if pi_new.shape != pi.shape:
        raise ValueError(
            f"pi_new=<array of shape {pi_new.shape}> is not allowed: pi_new must have the shape of "
            f"pi, {pi.shape}"
        )
    return pi_new, pi


def _check_temperature(temperature: float) -> float:
    check_positive("temperature", temperature, zero_ok=True)
    return float(temperature)


def _check_q(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=float)
    if q.ndim == 0 or q.shape[-1] == 0 or not np.isfinite(q).all():
        raise ValueError(
            "q must be an array of finite action values with the actions on its last axis, got "
            f"shape {q.shape}"
        )
    return q
