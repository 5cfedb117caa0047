"""Losses the algorithms minimise, as pure functions of tensors.

The slides write sums over the rollout; these take means. A mean keeps the step size independent
of the rollout's size (REINFORCE's batches differ in length from one update to the next); with
Adam the two differ mostly by a rescaling that its normalisation absorbs, though gradient clipping
sees the difference.
"""

from __future__ import annotations

import numbers

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
    "importance_weights",
    "clipped_surrogate",
    "kl_k3",
    "aggregate_tokens",
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


# PPO's clipped surrogate (Schulman et al. 2017). Slides "From TRPO to PPO" and "PPO Algorithm with Clipping".


def _check_same_shape(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    # No silent broadcasting: (T, 1) against (T,) would give a (T, T) objective.
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a}.shape={tuple(a.shape)}, {name_b}.shape={tuple(b.shape)} is not allowed: "
            f"{name_a} and {name_b} must have the same shape (one entry per sample)"
        )


def importance_weights(log_prob_new: Tensor, log_prob_old: Tensor) -> Tensor:
    """The policy ratio ``omega_{theta'/theta}(S, A) = pi_theta'(A|S) / pi_theta(A|S)``, as ``exp(new - old)``.

    The importance weight of the slides' surrogate ``L^TRPO`` (slide "From TRPO to PPO"): the actions
    were drawn from the old policy ``pi_theta``, the objective is about the new one ``pi_theta'``. Computed
    from log-probabilities, which avoids dividing tiny probabilities. ``log_prob_old`` belongs to the
    policy that collected the data and is a constant (detached), so the gradient flows through
    ``log_prob_new`` only: ``d omega / d log_prob_new = omega`` (Schulman et al. 2017, "Proximal Policy
    Optimization Algorithms", eq. 6's ``r_t(theta)``).

    Args:
        log_prob_new: ``log pi_theta'(A_t|S_t)`` under the policy being optimised, any shape.
        log_prob_old: ``log pi_theta(A_t|S_t)`` under the policy that collected the data, the same shape.

    Returns:
        The ratios, same shape as the inputs.
    """
    _check_same_shape("log_prob_new", log_prob_new, "log_prob_old", log_prob_old)
    return torch.exp(log_prob_new - log_prob_old.detach())


def clipped_surrogate(ratio: Tensor, advantages: Tensor, clip_eps: float) -> Tensor:
    """PPO's clipped objective per sample, ``min(omega A, clip(omega, 1 - eps, 1 + eps) A)``, to be *maximised*.

    Slide "From TRPO to PPO": ``L^PPO(theta') = E[min{omega_{theta'/theta}(S, A) A^pi(S, A),
    clip(omega_{theta'/theta}(S, A), 1 - epsilon, 1 + epsilon) A^pi(S, A)}]`` (Schulman et al. 2017,
    "Proximal Policy Optimization Algorithms", eq. 7, ``L^CLIP``). The expectation is left to the caller:
    this returns one value per sample, not a mean, and not negated. The slide "PPO Algorithm with
    Clipping" minimises ``L_actor = - sum_t`` of it; take ``-clipped_surrogate(...).mean()`` for a loss.

    The minimum makes it a pessimistic lower bound of the unclipped ``omega A``: where the ratio has
    already moved past ``1 + eps`` with ``A > 0`` (or below ``1 - eps`` with ``A < 0``) the objective is
    flat and its gradient w.r.t. the ratio is 0, so the update has no reason to push the policy further;
    everywhere else the gradient is ``A``, as for ``omega A`` (on the kink ``omega = 1 +- eps`` itself too:
    there the two products tie and autograd splits ``A`` between them). The advantages are constants
    (detached).

    Args:
        ratio: ``omega = pi_theta'(A_t|S_t) / pi_theta(A_t|S_t)``, e.g. from :func:`importance_weights`.
        advantages: ``A_t``, the same shape as ``ratio``.
        clip_eps: the slide's ``epsilon``, in (0, 1) (0.2 is common).

    Returns:
        ``min(ratio A, clip(ratio, 1 - eps, 1 + eps) A)``, same shape as the inputs.
    """
    if isinstance(clip_eps, Tensor) and clip_eps.numel() == 1:
        clip_eps = clip_eps.item()  # e.g. an annealed epsilon kept as a tensor
    if isinstance(clip_eps, bool) or not isinstance(clip_eps, numbers.Real) or not 0.0 < float(clip_eps) < 1.0:
        raise ValueError(
            f"clip_eps={clip_eps!r} is not allowed: clip_eps must be a number in (0, 1), "
            "the half-width of the interval [1 - clip_eps, 1 + clip_eps] the ratio is clipped to"
        )
    _check_same_shape("ratio", ratio, "advantages", advantages)
    advantages = advantages.detach()
    eps = float(clip_eps)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - eps, 1.0 + eps) * advantages
    return torch.minimum(unclipped, clipped)


# GRPO (Shao et al. 2024). Slide "Group Relative Policy Optimization (GRPO)".


def kl_k3(log_prob: Tensor, ref_log_prob: Tensor) -> Tensor:
    """Per-token estimate of ``KL(pi_theta || pi_ref)``: ``exp(ref - logp) - (ref - logp) - 1``.

    The estimator GRPO penalises with (Shao et al. 2024, eq. 4; J. Schulman, "Approximating KL
    divergence", 2020, calls it ``k3``). For a token ``a`` drawn from ``pi_theta`` and ``r = pi_ref(a) /
    pi_theta(a)``, ``k3 = r - log r - 1``: its expectation is ``E[r] - E[log r] - 1 = 1 + KL - 1 = KL``
    (unbiased), and since ``log r <= r - 1`` it is never negative, unlike the plain ``-log r``. Its
    gradient w.r.t. ``log_prob`` is ``1 - r``, which pulls ``pi_theta`` back towards ``pi_ref``.

    Args:
        log_prob: ``log pi_theta(a_t | ...)`` of the sampled tokens, any shape (with gradient).
        ref_log_prob: ``log pi_ref(a_t | ...)`` of the same tokens, the same shape (a constant).

    Returns:
        The per-token estimates, same shape.
    """
    _check_same_shape("log_prob", log_prob, "ref_log_prob", ref_log_prob)
    diff = ref_log_prob.detach() - log_prob
    # expm1(d) - d, not exp(d) - d - 1: for tiny d the latter cancels to a small negative number.
    return torch.expm1(diff) - diff


AGGREGATIONS = ("sequence", "token", "constant")


def aggregate_tokens(values: Tensor, mask: Tensor, mode: str = "sequence", max_length: int | None = None) -> Tensor:
    """Average per-token quantities over the answers of a batch, in one of three ways GRPO papers differ on.

    ``values[i, t]`` belongs to token ``t`` of answer ``i``; ``mask`` is 1 on real tokens, 0 on padding.

    - ``"sequence"`` (GRPO as published, Shao et al. 2024): ``1/N sum_i 1/|o_i| sum_t values[i, t]``. Each
      answer weighs the same, so a token of a long answer weighs less than a token of a short one.
    - ``"token"`` (DAPO, Yu et al. 2025): ``sum_{i,t} values[i, t] / sum_i |o_i|``. Each token weighs the same.
    - ``"constant"`` (Dr. GRPO, Liu et al. 2025): ``sum_{i,t} values[i, t] / (N max_length)``. A fixed
      normaliser: neither the answer's length nor the batch's changes a token's weight, so there is no
      bias towards long wrong answers or short right ones. ``max_length`` defaults to ``values.shape[1]``.

    Args:
        values, mask: shape ``(N, T)``.
        mode: one of ``"sequence"``, ``"token"``, ``"constant"``.
        max_length: the normaliser of ``"constant"``.
    """
    _check_same_shape("values", values, "mask", mask)
    if values.dim() != 2:
        raise ValueError(f"values.shape={tuple(values.shape)} is not allowed: expected (N answers, T tokens)")
    mask = mask.to(values.dtype)
    if mode == "sequence":
        return ((values * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)).mean()
    if mode == "token":
        return (values * mask).sum() / mask.sum().clamp(min=1.0)
    if mode == "constant":
        length = values.shape[1] if max_length is None else max_length
        return (values * mask).sum() / (values.shape[0] * length)
    raise ValueError(f"mode={mode!r} is not allowed: choose one of {', '.join(map(repr, AGGREGATIONS))}")
