"""Finite MDPs where every quantity of the lecture can be computed exactly.

``FiniteMDP(P, R, gamma, mu0)``: ``P[s, a, s']`` transition probabilities, ``R[s, a]`` expected
rewards, ``gamma`` in [0, 1), ``mu0[s]`` the initial distribution. A policy is a table
``pi[s, a]`` whose rows sum to 1. Terminal states are absorbing with zero reward, so the
discounted sums below are exact for episodic tasks too.

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

Used by ``notebooks/02_advantage_estimation.ipynb`` (true advantages against which GAE is measured),
the soft-value-functions notebook and the tests.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np

from rlcourse.config import check_positive, check_seed

__all__ = ["FiniteMDP", "random_walk", "random_mdp", "entropy", "softmax_policy", "softmax_value"]


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
            raise ValueError("every row P[s, a, :] must be a probability distribution (non-negative, summing to 1)")
        if (self.mu0 < 0).any() or not np.isclose(self.mu0.sum(), 1.0, atol=1e-8):
            raise ValueError("mu0 must be a probability distribution (non-negative, summing to 1)")
        if not 0.0 <= float(self.gamma) < 1.0:
            raise ValueError(f"gamma must lie in [0, 1) for a finite MDP, got {self.gamma}")
        self.terminal = np.zeros(S, dtype=bool) if self.terminal is None else np.asarray(self.terminal, dtype=bool)

    @property
    def num_states(self) -> int:
        return self.P.shape[0]

    @property
    def num_actions(self) -> int:
        return self.P.shape[1]

    def _check_policy(self, pi: np.ndarray) -> np.ndarray:
        pi = np.asarray(pi, dtype=float)
        if pi.shape != self.R.shape or (pi < 0).any() or not np.allclose(pi.sum(-1), 1.0, atol=1e-8):
            raise ValueError(f"pi must be a table of shape (S, A) = {self.R.shape} whose rows are distributions")
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
        return self.q_values(pi) - self.values(pi)[:, None]

    def soft_values(self, pi: np.ndarray, temperature: float) -> tuple[np.ndarray, np.ndarray]:
        """The soft value functions ``(q_pi^soft, v_pi^soft)`` of ``pi``, by a direct linear solve.

        ``temperature`` is the slides' lambda >= 0. Following the slide's definitions,

            q_pi^soft(s, a) = r(s, a) + E[sum_{t>=1} gamma^t (r(S_t, A_t) + lambda H(pi(.|S_t))) | S_0=s, A_0=a, pi]
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
        r_pi = (pi * self.R).sum(-1) + lam * entropy(pi) * ~self.terminal  # r(s, pi) + lambda H(pi(.|s))
        v_soft = np.linalg.solve(np.eye(self.num_states) - self.gamma * P_pi, r_pi)
        q_soft = self.R + self.gamma * self.P @ v_soft
        return q_soft, v_soft

    def soft_value_iteration(
        self, temperature: float, tol: float = 1e-10, max_iter: int = 100_000
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The optimal soft ``(q*, v*, pi*)`` by iterating the soft Bellman optimality operator.

        ``temperature`` is the slides' lambda >= 0. Starting from ``q = r``, repeat

            v(s)    = lambda log sum_a exp(q(s, a) / lambda)      (the greedy softmax policy's value)
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
        pi[self.terminal] = softmax_policy(q[self.terminal], 0.0)  # no bonus once the episode has ended
        return q, self._soft_greedy_value(q, lam), pi

    def _soft_greedy_value(self, q: np.ndarray, lam: float) -> np.ndarray:
        # lambda log sum_a exp(q / lambda) in non-terminal states, max_a q in terminal ones (no entropy bonus there)
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
        out.update({k: np.zeros((horizon, n), dtype=bool) for k in ("terminated", "truncated", "active")})
        out["rewards"] = np.zeros((horizon, n))
        s = rng.choice(self.num_states, size=n, p=self.mu0)
        active = ~self.terminal[s]
        for t in range(horizon):
            a = (rng.random(n)[:, None] > np.cumsum(pi[s], axis=1)).sum(1).clip(max=self.num_actions - 1)
            s2 = (rng.random(n)[:, None] > np.cumsum(self.P[s, a], axis=1)).sum(1).clip(max=self.num_states - 1)
            out["states"][t], out["actions"][t], out["next_states"][t] = s, a, s2
            out["rewards"][t] = self.R[s, a] * active
            out["active"][t] = active
            out["terminated"][t] = active & self.terminal[s2]
            out["truncated"][t] = active & ~self.terminal[s2] & (t == horizon - 1)
            active = active & ~self.terminal[s2]
            s = s2
        return out


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


def random_mdp(num_states: int = 5, num_actions: int = 3, gamma: float = 0.9, seed: int = 0) -> FiniteMDP:
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

    ``pi`` has the actions on its last axis: a table ``(S, A)`` gives ``(S,)``, one row ``(A,)`` a scalar.
    """
    pi = np.asarray(pi, dtype=float)
    if pi.ndim == 0 or pi.shape[-1] == 0 or (pi < 0).any() or not np.allclose(pi.sum(-1), 1.0, atol=1e-8):
        raise ValueError(
            f"pi must hold distributions over the actions on its last axis (non-negative, summing to 1), "
            f"got shape {pi.shape}"
        )
    # "+ 0.0" turns the -0.0 of a deterministic row into 0.0 for display.
    return -np.where(pi > 0, pi * np.log(np.where(pi > 0, pi, 1.0)), 0.0).sum(-1) + 0.0


def softmax_value(q: np.ndarray, temperature: float) -> np.ndarray:
    """``v(s) = lambda log sum_a exp(q(s, a) / lambda)``, the soft maximum of ``q`` over its last axis.

    ``temperature`` is the slides' lambda >= 0. By the log-sum-exp identity this equals
    ``E_{A~pi}[q(s, A)] + lambda H(pi(.|s))`` for the greedy softmax policy ``pi``, the largest value
    that expression takes over all policies. Computed stably (the maximum is taken out before
    exponentiating), so tiny temperatures work; ``temperature=0`` gives ``max_a q(s, a)``.
    """
    q = _check_q(q)
    lam = _check_temperature(temperature)
    m = q.max(-1)
    if lam == 0.0:
        return m
    with np.errstate(over="ignore", under="ignore"):  # (q - max q) / lambda may be -inf: exp gives 0, as it should
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
    with np.errstate(over="ignore", under="ignore"):  # (q - max q) / lambda may be -inf: exp gives 0, as it should
        w = np.exp((q - q.max(-1, keepdims=True)) / lam)
    return w / w.sum(-1, keepdims=True)


def _check_temperature(temperature: float) -> float:
    check_positive("temperature", temperature, zero_ok=True)
    return float(temperature)


def _check_q(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=float)
    if q.ndim == 0 or q.shape[-1] == 0 or not np.isfinite(q).all():
        raise ValueError(
            f"q must be an array of finite action values with the actions on its last axis, got shape {q.shape}"
        )
    return q
