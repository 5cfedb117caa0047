"""Diagnostics logged every iteration, with fixed names (the glossary below).

=====================  ==============================================================================
name                   meaning
=====================  ==============================================================================
``actor_loss``         the policy loss that was minimised
``critic_loss``        ``1/2 mean (v_w(S_t) - target_t)^2``
``entropy``            mean entropy of ``pi_theta(.|S_t)`` over the rollout; falling fast = early collapse
``approx_kl``          ``E[(r - 1) - log r]``, ``r = pi_new / pi_old``, after the update: how far one
                       update moved the policy on the rollout's states (>= 0, Schulman's k3 estimator)
``explained_variance`` ``1 - Var[target - v] / Var[target]``: 1 = the critic predicts its targets,
                       0 = no better than a constant, < 0 = worse
``grad_norm``          the actor's gradient norm before clipping
``adv_mean``,          mean and standard deviation of the advantage estimates
``adv_std``
``sps``                env steps per wall-clock second so far
=====================  ==============================================================================

Besides the logged columns: :func:`q_overestimation`, the critic's estimate ``q_w(s, mu(s))`` against the
return its greedy policy really obtains from ``s`` (DDPG vs TD3, notebook 03).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from rlcourse.config import check_unit_interval
from rlcourse.nets import QEnsemble

__all__ = [
    "explained_variance",
    "approx_kl",
    "advantage_stats",
    "Overestimation",
    "tail_length",
    "q_overestimation",
]


def explained_variance(predictions: Tensor, targets: Tensor) -> float:
    """``1 - Var[targets - predictions] / Var[targets]`` (nan if the targets are constant)."""
    var = targets.var(unbiased=False)
    if var == 0:
        return float("nan")
    return float(1.0 - (targets - predictions).var(unbiased=False) / var)


def approx_kl(log_prob_old: Tensor, log_prob_new: Tensor) -> float:
    """Estimate ``KL(pi_old || pi_new)`` from log-probabilities of actions sampled from ``pi_old``.

    Uses ``(r - 1) - log r`` with ``r = pi_new / pi_old``: unbiased and never negative.
    """
    log_ratio = log_prob_new - log_prob_old
    return float((log_ratio.exp() - 1.0 - log_ratio).mean())


def advantage_stats(advantages: Tensor) -> dict[str, float]:
    return {"adv_mean": float(advantages.mean()), "adv_std": float(advantages.std(unbiased=False))}


# --------------------------------------------------------------------------------------------------
# Q over-estimation of a deterministic actor-critic (DDPG, TD3; notebook 03)
# --------------------------------------------------------------------------------------------------


@dataclass
class Overestimation:
    """The critic's estimates against the returns the greedy policy really obtained, state by state.

    One entry per measured state ``S_t`` (episodes one after the other, ``t`` ascending in each):

    - ``estimates``: the critic's ``q_w(S_t, mu_theta(S_t))``;
    - ``returns``: the realised discounted return-to-go ``G_t = sum_{k>=0} gamma^k R_{t+k+1}`` of the
      greedy policy from ``S_t`` on (what ``q_w(S_t, mu_theta(S_t))`` should estimate);
    - ``steps``: ``t``, the time step within its episode; ``episodes``: the episode's number.

    ``gap = estimates - returns`` is positive where the critic over-estimates.
    """

    estimates: np.ndarray
    returns: np.ndarray
    steps: np.ndarray
    episodes: np.ndarray
    gamma: float

    @property
    def gap(self) -> np.ndarray:
        return self.estimates - self.returns

    @property
    def mean_gap(self) -> float:
        """The mean over measured states of ``q_w(S_t, mu(S_t)) - G_t`` (> 0: over-estimation)."""
        return float(self.gap.mean())

    @property
    def relative_gap(self) -> float:
        """``mean_gap / mean |G_t|``: the over-estimation as a fraction of the size of the returns."""
        return self.mean_gap / float(np.abs(self.returns).mean())

    def by_step(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(t, mean estimate, mean return)`` over the episodes, for every time step ``t`` measured."""
        t = np.unique(self.steps)
        est = np.array([self.estimates[self.steps == k].mean() for k in t])
        ret = np.array([self.returns[self.steps == k].mean() for k in t])
        return t, est, ret


def tail_length(gamma: float, tol: float = 1e-3) -> int:
    """The smallest ``n`` with ``gamma^n <= tol``: how far to follow a state so that its return-to-go is complete."""
    check_unit_interval("gamma", gamma)
    if gamma == 0:
        return 1
    if gamma >= 1:
        raise ValueError(f"gamma={gamma!r} is not allowed: a finite tail needs gamma < 1")
    return int(math.ceil(math.log(tol) / math.log(gamma)))


@torch.no_grad()
def q_overestimation(
    agent,
    env_id: str | None = None,
    episodes: int = 5,
    gamma: float | None = None,
    seed: int = 20_000,
    steps: int | None = None,
    tail: int | None = None,
    critic: int = 0,
) -> Overestimation:
    """Measure how far the critic over-estimates the value of its own greedy policy (Fujimoto et al., 2018).

    Runs the greedy policy ``mu_theta`` (no exploration noise) for ``episodes`` episodes from seeds
    ``seed, seed + 1, ...``. For each of the first ``steps`` states ``S_t`` of an episode it records the
    critic's estimate ``q_w(S_t, mu_theta(S_t))`` and the discounted return-to-go ``G_t`` that the policy
    actually collected from there (:func:`rlcourse.advantages.discounted_returns`).

    Time limits truncate, they do not terminate, so the critic (which bootstraps on truncation) estimates
    an *infinite-horizon* value. To compare like with like, the episode is not cut at ``steps`` but followed
    for ``tail`` more steps (the environment's time limit is raised to ``steps + tail``): every measured
    ``G_t`` then misses at most ``gamma^tail`` of its value. By default ``tail = tail_length(gamma)``, so that
    ``gamma^tail <= 1e-3`` (688 steps for gamma = 0.99). An episode that terminates earlier is exact.

    Args:
        agent: a trained :class:`rlcourse.training.Agent` whose ``critic`` is a ``q_w(obs, action)`` module
            or a :class:`rlcourse.nets.QEnsemble` of them (DDPG, TD3, SAC).
        env_id: the environment (default: ``agent.env_id``).
        episodes: how many episodes to measure, >= 1.
        gamma: the discount of the returns (default: ``agent.config.gamma``, the one the critic learnt with).
        seed: the first episode's reset seed.
        steps: how many states per episode to measure (default: the environment's time limit).
        tail: steps followed after the measured ones (default: ``tail_length(gamma)``).
        critic: which critic of a ``QEnsemble`` (TD3's actor follows critic 0).

    Returns:
        an :class:`Overestimation`.
    """
    from rlcourse.advantages import discounted_returns
    from rlcourse.envs import make_env

    env_id = agent.env_id if env_id is None else env_id
    gamma = float(agent.config.gamma if gamma is None else gamma)
    check_unit_interval("gamma", gamma)
    for name, value in (("episodes", episodes), ("steps", steps), ("tail", tail)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
            raise ValueError(f"{name}={value!r} is not allowed: {name} must be a positive whole number")
    if steps is None:
        spec = make_env(env_id).spec
        steps = spec.max_episode_steps if spec is not None else None
        if steps is None:
            raise ValueError(f"steps=None is not allowed for {env_id!r}: it has no time limit, pass steps")
    tail = tail_length(gamma) if tail is None else int(tail)
    q = agent.critic
    if isinstance(q, QEnsemble):
        if not 0 <= critic < len(q):
            raise ValueError(f"critic={critic!r} is not allowed: the agent has critics 0..{len(q) - 1}")
        ensemble = q
        q = lambda obs, actions: ensemble(obs, actions)[critic]
    if q is None:
        raise ValueError("agent has no critic: q_overestimation needs q_w(obs, action)")
    device = next(agent.policy.parameters()).device

    out = {"estimates": [], "returns": [], "steps": [], "episodes": []}
    for i in range(int(episodes)):
        env = make_env(env_id, max_episode_steps=int(steps) + tail)
        obs, _ = env.reset(seed=seed + i)
        observations, actions, rewards = [], [], []
        space = env.action_space
        while True:
            action = agent.act(np.asarray(obs)[None], greedy=True)[0]
            if hasattr(space, "low"):
                action = np.clip(action, space.low, space.high)
            observations.append(np.asarray(obs, dtype=np.float32))
            actions.append(np.asarray(action, dtype=np.float32))
            obs, reward, terminated, truncated, _ = env.step(action)
            rewards.append(float(reward))
            if terminated or truncated:
                break
        env.close()
        returns = discounted_returns(torch.tensor(rewards, dtype=torch.float64), gamma).numpy()
        n = min(int(steps), len(rewards))
        obs_t = torch.as_tensor(np.stack(observations[:n]), device=device)
        act_t = torch.as_tensor(np.stack(actions[:n]), device=device)
        out["estimates"].append(q(obs_t, act_t).reshape(n).double().cpu().numpy())
        out["returns"].append(returns[:n])
        out["steps"].append(np.arange(n))
        out["episodes"].append(np.full(n, i))
    return Overestimation(**{k: np.concatenate(v) for k, v in out.items()}, gamma=gamma)
