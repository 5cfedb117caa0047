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
"""

from __future__ import annotations

from torch import Tensor

__all__ = ["explained_variance", "approx_kl", "advantage_stats"]


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
