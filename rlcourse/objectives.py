"""Losses the algorithms minimise, as pure functions of tensors.

The slides write sums over the rollout; these take means. A mean keeps the step size independent
of the rollout's size (REINFORCE's batches differ in length from one update to the next); with
Adam the two differ mostly by a rescaling that its normalisation absorbs, though gradient clipping
sees the difference.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "policy_gradient_loss",
    "critic_loss",
    "dqn_target",
    "double_dqn_target",
    "ddpg_target",
    "td3_target",
    "soft_td_target",
]


def policy_gradient_loss(log_prob: Tensor, advantages: Tensor) -> Tensor:
    """``L_actor(theta) = - mean_t log pi_theta(A_t | S_t) [A_t]``.

    The advantage estimate is a constant for this loss (the slides' stop-gradient brackets), so
    its gradient is the policy-gradient estimate ``- mean_t grad log pi_theta(A_t|S_t) A_t``.
    """
    return -(log_prob * advantages.detach()).mean()


def critic_loss(values: Tensor, targets: Tensor) -> Tensor:
    """``L_critic(w) = 1/2 mean_t (v_w(S_t) - [target_t])^2``; the targets are constants."""
    return 0.5 * (values - targets.detach()).pow(2).mean()


# Targets of the off-policy critics. ``terminated`` means S_{j+1} is terminal: the target is R_{j+1}
# alone. A time-limit truncation is not termination, so it is not an argument here: the target
# bootstraps from the real S_{j+1} as for any other step.


def _not_terminal(terminated: Tensor, like: Tensor) -> Tensor:
    return (~terminated.bool()).to(like.dtype)


def dqn_target(rewards: Tensor, next_q: Tensor, terminated: Tensor, gamma: float) -> Tensor:
    """``y_j = R_{j+1} + gamma (1 - terminated_j) max_a q_{w-}(S_{j+1}, a)`` (Mnih et al. 2015).

    ``next_q``: ``(B, n_actions)`` values of the target network at ``S_{j+1}``.
    """
    return rewards + gamma * _not_terminal(terminated, rewards) * next_q.max(dim=-1).values


def double_dqn_target(
    rewards: Tensor, next_q_target: Tensor, next_q_online: Tensor, terminated: Tensor, gamma: float
) -> Tensor:
    """Double DQN (van Hasselt et al. 2016): the online net picks ``a*``, the target net values it.

    ``y_j = R_{j+1} + gamma (1 - terminated_j) q_{w-}(S_{j+1}, argmax_a q_w(S_{j+1}, a))``.
    """
    best = next_q_online.argmax(dim=-1, keepdim=True)
    return rewards + gamma * _not_terminal(terminated, rewards) * next_q_target.gather(-1, best).squeeze(-1)


def ddpg_target(rewards: Tensor, next_q: Tensor, terminated: Tensor, gamma: float) -> Tensor:
    """DDPG's target ``y_j = R_{j+1} + gamma (1 - terminated_j) q_{w-}(S_{j+1}, mu_{theta-}(S_{j+1}))``.

    ``next_q``: the target critic at the target policy's action. Slide "DDPG Algorithm".
    """
    return rewards + gamma * _not_terminal(terminated, rewards) * next_q


def td3_target(rewards: Tensor, next_q1: Tensor, next_q2: Tensor, terminated: Tensor, gamma: float) -> Tensor:
    """TD3's twin-critic target ``y_j = R_{j+1} + gamma (1 - terminated_j) min_i q_{w-}^i(S_{j+1}, A')``.

    ``next_q1``, ``next_q2``: the two target critics at ``(S_{j+1}, A')``, where ``A'`` is the target
    policy's (smoothed) action. Slide "Twin Delayed Deep Deterministic Policy Gradient (TD3)".
    """
    return rewards + gamma * _not_terminal(terminated, rewards) * torch.minimum(next_q1, next_q2)


def soft_td_target(
    rewards: Tensor, next_q: Tensor, next_log_prob: Tensor, terminated: Tensor, gamma: float, alpha: float
) -> Tensor:
    """SAC's soft target ``y_j = R_{j+1} + gamma (1 - terminated_j) (q(S_{j+1}, A') - alpha log pi(A'|S_{j+1}))``.

    ``next_q`` is already the minimum of the target critics at ``(S_{j+1}, A')`` with
    ``A' ~ pi(.|S_{j+1})``, and ``next_log_prob = log pi(A'|S_{j+1})``; ``alpha`` is the temperature
    (the slides' lambda). The slide's box writes the entropy term outside the discount; it belongs
    inside, with the next state's value (Haarnoja et al. 2018, eq. 3).
    """
    return rewards + gamma * _not_terminal(terminated, rewards) * (next_q - alpha * next_log_prob)
