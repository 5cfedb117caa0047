"""Finite MDPs where every quantity of the lecture can be computed exactly.

``FiniteMDP(P, R, gamma, mu0)``: ``P[s, a, s']`` transition probabilities, ``R[s, a]`` expected
rewards, ``gamma`` in [0, 1), ``mu0[s]`` the initial distribution. A policy is a table
``pi[s, a]`` whose rows sum to 1. Terminal states are absorbing with zero reward, so the
discounted sums below are exact for episodic tasks too.

Used by ``notebooks/02_advantage_estimation.ipynb`` (true advantages against which GAE is measured)
and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["FiniteMDP", "random_walk"]


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
