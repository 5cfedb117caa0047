"""Losses the algorithms minimise, as pure functions of tensors.

The slides write sums over the rollout; these take means. A mean keeps the step size independent
of the rollout's size (REINFORCE's batches differ in length from one update to the next); with
Adam the two differ mostly by a rescaling that its normalisation absorbs, though gradient clipping
sees the difference.
"""

from __future__ import annotations

from torch import Tensor

__all__ = ["policy_gradient_loss", "critic_loss"]


def policy_gradient_loss(log_prob: Tensor, advantages: Tensor) -> Tensor:
    """``L_actor(theta) = - mean_t log pi_theta(A_t | S_t) [A_t]``.

    The advantage estimate is a constant for this loss (the slides' stop-gradient brackets), so
    its gradient is the policy-gradient estimate ``- mean_t grad log pi_theta(A_t|S_t) A_t``.
    """
    return -(log_prob * advantages.detach()).mean()


def critic_loss(values: Tensor, targets: Tensor) -> Tensor:
    """``L_critic(w) = 1/2 mean_t (v_w(S_t) - [target_t])^2``; the targets are constants."""
    return 0.5 * (values - targets.detach()).pow(2).mean()
