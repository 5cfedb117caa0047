"""Losses the algorithms minimise, as pure functions of tensors.

At the end, PPO's clipped objective on one state, exactly, for notebook 07: its value and gradient
against the ratio (:func:`clip_objective`) and several epochs of gradient ascent on one batch of a
softmax policy, clipped and unclipped (:func:`surrogate_ascent`, :func:`ratio_epochs`).

The slides write sums over the rollout; these take means. A mean keeps the step size independent
of the rollout's size (REINFORCE's batches differ in length from one update to the next); with
Adam the two differ mostly by a rescaling that its normalisation absorbs, though gradient clipping
sees the difference.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
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
    "clip_objective",
    "surrogate_ascent",
    "RatioEpochs",
    "ratio_epochs",
]


def policy_gradient_loss(log_prob: Tensor, advantages: Tensor) -> Tensor:
    """``L_actor(theta) = - mean_t log pi_theta(A_t | S_t) [A_t]``.

    The advantage estimate is a constant for this loss (the slides' stop-gradient brackets), so
    its gradient is the policy-gradient estimate ``- mean_t grad log pi_theta(A_t|S_t) A_t``.
    """
    return -(log_prob * advantages.detach()).mean()


def critic_loss(values: Tensor, targets: Tensor) -> Tensor:
    """``L_critic(w) = 1/2 mean_t (v_w(S_t) - [target_t])^2``; the targets are constants.

    ``mse_loss`` is that mean of squares in one operation forward and one back (on small networks
    each operation costs more than its arithmetic)."""
    return 0.5 * F.mse_loss(values, targets.detach())


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
    next_q = next_q_target.gather(-1, best).squeeze(-1)
    return rewards + gamma * _not_terminal(terminated, rewards) * next_q


def ddpg_target(rewards: Tensor, next_q: Tensor, terminated: Tensor, gamma: float) -> Tensor:
    """DDPG's target
    ``y_j = R_{j+1} + gamma (1 - terminated_j) q_{w-}(S_{j+1}, mu_{theta-}(S_{j+1}))``.

    ``next_q``: the target critic at the target policy's action. Slide "DDPG Algorithm".
    """
    return rewards + gamma * _not_terminal(terminated, rewards) * next_q


def td3_target(
    rewards: Tensor, next_q1: Tensor, next_q2: Tensor, terminated: Tensor, gamma: float
) -> Tensor:
    """TD3's twin-critic target
    ``y_j = R_{j+1} + gamma (1 - terminated_j) min_i q_{w-}^i(S_{j+1}, A')``.

    ``next_q1``, ``next_q2``: the two target critics at ``(S_{j+1}, A')``, where ``A'`` is the
    target policy's (smoothed) action. Slide "Twin Delayed Deep Deterministic Policy Gradient
    (TD3)".
    """
    return rewards + gamma * _not_terminal(terminated, rewards) * torch.minimum(next_q1, next_q2)


def soft_td_target(
    rewards: Tensor,
    next_q: Tensor,
    next_log_prob: Tensor,
    terminated: Tensor,
    gamma: float,
    alpha: float,
) -> Tensor:
    """SAC's soft target
    ``y_j = R_{j+1} + gamma (1 - terminated_j) (q(S_{j+1}, A') - alpha log pi(A'|S_{j+1}))``.

    ``next_q`` is already the minimum of the target critics at ``(S_{j+1}, A')`` with
    ``A' ~ pi(.|S_{j+1})``, and ``next_log_prob = log pi(A'|S_{j+1})``; ``alpha`` is the temperature
    (the slides' lambda). The slide's box writes the entropy term outside the discount; it belongs
    inside, with the next state's value (Haarnoja et al. 2018, eq. 3).
    """
    return rewards + gamma * _not_terminal(terminated, rewards) * (next_q - alpha * next_log_prob)


# PPO's clipped surrogate (Schulman et al. 2017). Slides "From TRPO to PPO" and "PPO Algorithm with
# Clipping".


def _check_same_shape(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    # No silent broadcasting: (T, 1) against (T,) would give a (T, T) objective.
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a}.shape={tuple(a.shape)}, {name_b}.shape={tuple(b.shape)} is not allowed: "
            f"{name_a} and {name_b} must have the same shape (one entry per sample)"
        )


def importance_weights(log_prob_new: Tensor, log_prob_old: Tensor) -> Tensor:
    """The policy ratio ``omega_{theta'/theta}(S, A) = pi_theta'(A|S) / pi_theta(A|S)``, as
    ``exp(new - old)``.

    The importance weight of the slides' surrogate ``L^TRPO`` (slide "From TRPO to PPO"): the
    actions were drawn from the old policy ``pi_theta``, the objective is about the new one
    ``pi_theta'``. Computed from log-probabilities, which avoids dividing tiny probabilities.
    ``log_prob_old`` belongs to the policy that collected the data and is a constant (detached), so
    the gradient flows through ``log_prob_new`` only: ``d omega / d log_prob_new = omega`` (Schulman
    et al. 2017, "Proximal Policy Optimization Algorithms", eq. 6's ``r_t(theta)``).

    Args:
        log_prob_new: ``log pi_theta'(A_t|S_t)`` under the policy being optimised, any shape.
        log_prob_old: ``log pi_theta(A_t|S_t)`` under the policy that collected the data, the same
            shape.

    Returns:
        The ratios, same shape as the inputs.
    """
    _check_same_shape("log_prob_new", log_prob_new, "log_prob_old", log_prob_old)
    return torch.exp(log_prob_new - log_prob_old.detach())


def clipped_surrogate(ratio: Tensor, advantages: Tensor, clip_eps: float) -> Tensor:
    """PPO's clipped objective per sample, ``min(omega A, clip(omega, 1 - eps, 1 + eps) A)``, to
    be *maximised*.

    Slide "From TRPO to PPO": ``L^PPO(theta') = E[min{omega_{theta'/theta}(S, A) A^pi(S, A),
    clip(omega_{theta'/theta}(S, A), 1 - epsilon, 1 + epsilon) A^pi(S, A)}]`` (Schulman et al. 2017,
    "Proximal Policy Optimization Algorithms", eq. 7, ``L^CLIP``). The expectation is left to the
    caller: this returns one value per sample, not a mean, and not negated. The slide "PPO Algorithm
    with Clipping" minimises ``L_actor = - sum_t`` of it; take ``-clipped_surrogate(...).mean()``
    for a loss.

    The minimum makes it a pessimistic lower bound of the unclipped ``omega A``: where the ratio has
    already moved past ``1 + eps`` with ``A > 0`` (or below ``1 - eps`` with ``A < 0``) the
    objective is flat and its gradient w.r.t. the ratio is 0, so the update has no reason to push
    the policy further; everywhere else the gradient is ``A``, as for ``omega A`` (on the kink
    ``omega = 1 +- eps`` itself too: there the two products tie and autograd splits ``A`` between
    them). The advantages are constants (detached).

    Args:
        ratio: ``omega = pi_theta'(A_t|S_t) / pi_theta(A_t|S_t)``, e.g. from
            :func:`importance_weights`.
        advantages: ``A_t``, the same shape as ``ratio``.
        clip_eps: the slide's ``epsilon``, in (0, 1) (0.2 is common).

    Returns:
        ``min(ratio A, clip(ratio, 1 - eps, 1 + eps) A)``, same shape as the inputs.
    """
    if isinstance(clip_eps, Tensor) and clip_eps.numel() == 1:
        clip_eps = clip_eps.item()  # e.g. an annealed epsilon kept as a tensor
    if (
        isinstance(clip_eps, bool)
        or not isinstance(clip_eps, numbers.Real)
        or not 0.0 < float(clip_eps) < 1.0
    ):
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
    divergence", 2020, calls it ``k3``). For a token ``a`` drawn from ``pi_theta`` and
    ``r = pi_ref(a) / pi_theta(a)``, ``k3 = r - log r - 1``: its expectation is
    ``E[r] - E[log r] - 1 = 1 + KL - 1 = KL`` (unbiased), and since ``log r <= r - 1`` it is never
    negative, unlike the plain ``-log r``. Its gradient w.r.t. ``log_prob`` is ``1 - r``, which
    pulls ``pi_theta`` back towards ``pi_ref``.

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


def aggregate_tokens(
    values: Tensor, mask: Tensor, mode: str = "sequence", max_length: int | None = None
) -> Tensor:
    """Average per-token quantities over the answers of a batch, in one of three ways GRPO
    papers differ on.

    ``values[i, t]`` belongs to token ``t`` of answer ``i``; ``mask`` is 1 on real tokens, 0 on
    padding.

    - ``"sequence"`` (GRPO as published, Shao et al. 2024):
      ``1/N sum_i 1/|o_i| sum_t values[i, t]``. Each answer weighs the same, so a token of a long
      answer weighs less than a token of a short one.
    - ``"token"`` (DAPO, Yu et al. 2025): ``sum_{i,t} values[i, t] / sum_i |o_i|``. Each token
      weighs the same.
    - ``"constant"`` (Dr. GRPO, Liu et al. 2025): ``sum_{i,t} values[i, t] / (N max_length)``. A
      fixed normaliser: neither the answer's length nor the batch's changes a token's weight, so
      there is no bias towards long wrong answers or short right ones. ``max_length`` defaults to
      ``values.shape[1]``.

    Args:
        values, mask: shape ``(N, T)``.
        mode: one of ``"sequence"``, ``"token"``, ``"constant"``.
        max_length: the normaliser of ``"constant"``.
    """
    _check_same_shape("values", values, "mask", mask)
    if values.dim() != 2:
        raise ValueError(
            f"values.shape={tuple(values.shape)} is not allowed: expected (N answers, T tokens)"
        )
    mask = mask.to(values.dtype)
    if mode == "sequence":
        return ((values * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)).mean()
    if mode == "token":
        return (values * mask).sum() / mask.sum().clamp(min=1.0)
    if mode == "constant":
        length = values.shape[1] if max_length is None else max_length
        return (values * mask).sum() / (values.shape[0] * length)
    raise ValueError(
        f"mode={mode!r} is not allowed: choose one of {', '.join(map(repr, AGGREGATIONS))}"
    )


# PPO's clipped objective on one state, exactly: its value and gradient against the ratio, and
# several epochs of gradient ascent on one batch (slides "From TRPO to PPO", "PPO Algorithm with
# Clipping"; notebook 07).


def clip_objective(
    ratio, advantage: float, clip_eps: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PPO's per-sample objective at the ratios ``ratio``, for one advantage: values, gradient,
    unclipped ``omega A``.

    The objective is :func:`clipped_surrogate`, ``min(omega A, clip(omega, 1 - eps, 1 + eps) A)``,
    and its derivative with respect to ``omega`` is taken by autograd, as in
    training: ``A`` where the unclipped product is the smaller one, 0 where the clipped constant is
    (the flat pieces).

    Returns:
        ``(objective, gradient, unclipped)``, float arrays of the shape of ``ratio`` (flattened).

    Used by ``notebooks/07_ppo_clipping.ipynb``.
    """
    omega = np.asarray(ratio, dtype=float).reshape(-1)
    if not np.isfinite(omega).all() or (omega < 0).any():
        bad = omega[~(np.isfinite(omega) & (omega >= 0))][0]
        raise ValueError(
            f"ratio contains {bad!r}, which is not allowed: "
            "every ratio pi_new(a|s) / pi_old(a|s) must be a finite number >= 0"
        )
    if not np.isfinite(float(advantage)):
        raise ValueError(
            f"advantage={advantage!r} is not allowed: the advantage must be a finite number"
        )
    omega = torch.tensor(omega, requires_grad=True)
    adv = torch.full_like(omega, float(advantage))
    objective = clipped_surrogate(omega, adv, clip_eps)
    (gradient,) = torch.autograd.grad(objective.sum(), omega)
    return objective.detach().numpy(), gradient.numpy(), (omega * adv).detach().numpy()


def surrogate_ascent(
    pi_old: np.ndarray,
    actions: np.ndarray,
    advantages: np.ndarray,
    clip_eps: float | None = None,
    epochs: int = 30,
    lr: float = 1.0,
) -> np.ndarray:
    """Several epochs of gradient ascent on a sample surrogate, for a softmax policy over ``A``
    actions in one state.

    The policy is ``pi_theta = softmax(theta)``, started at ``theta = log pi_old``. The samples
    ``(a_i, A_i)`` were drawn with ``pi_old`` and stay fixed. Each epoch is one full-batch step
    ``theta <- theta + lr grad`` of ``mean_i omega_i A_i`` (``clip_eps=None``, TRPO's surrogate
    without its constraint) or of ``mean_i min(omega_i A_i, clip(omega_i, 1 - eps, 1 + eps) A_i)``
    (PPO), with ``omega_i = pi_theta(a_i) / pi_old(a_i)`` from :func:`importance_weights` and the
    objective from :func:`clipped_surrogate`. Everything is exact: no network, no environment.

    ``actions`` and ``advantages`` may carry leading batch dimensions ``(..., N)``: each row is an
    independent sample set with its own policy.

    Returns:
        The policies ``pi_0 = pi_old, pi_1, ..., pi_epochs``, shape ``(epochs + 1, ..., A)``.

    Used by ``notebooks/07_ppo_clipping.ipynb``.
    """
    pi_old = np.asarray(pi_old, dtype=float)
    if (
        pi_old.ndim != 1
        or pi_old.size < 2
        or not (pi_old > 0).all()
        or not np.isclose(pi_old.sum(), 1.0)
    ):
        raise ValueError(
            f"pi_old={pi_old.tolist()} is not allowed: "
            "pi_old must be a probability vector over at least two actions, every entry > 0 "
            "(the ratio divides by it)"
        )
    actions = np.asarray(actions)
    if (
        actions.ndim == 0
        or actions.shape[-1] == 0
        or not np.issubdtype(actions.dtype, np.integer)
        or (actions < 0).any()
        or (actions >= pi_old.size).any()
    ):
        raise ValueError(
            f"actions of shape {actions.shape} is not allowed: "
            f"actions must be integers 0 .. {pi_old.size - 1}, at least one sample"
        )
    advantages = np.asarray(advantages, dtype=float)
    if advantages.shape != actions.shape or not np.isfinite(advantages).all():
        raise ValueError(
            f"advantages of shape {advantages.shape} is not allowed: "
            f"advantages must be finite and have the shape of actions, {actions.shape}"
        )
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"epochs={epochs!r} is not allowed: epochs must be an integer >= 1")
    if not (np.isfinite(float(lr)) and float(lr) > 0):
        raise ValueError(f"lr={lr!r} is not allowed: the learning rate must be a finite number > 0")
    if clip_eps is not None:  # the clear error for a bad clip_eps, before any step
        clipped_surrogate(torch.ones(1), torch.ones(1), clip_eps)

    log_pi_old = torch.log(torch.as_tensor(pi_old)).expand(*actions.shape[:-1], pi_old.size)
    act = torch.as_tensor(actions, dtype=torch.long)
    adv = torch.as_tensor(advantages)
    log_prob_old = log_pi_old.gather(-1, act)
    theta = log_pi_old.clone().requires_grad_(True)
    policies = []
    for epoch in range(epochs + 1):
        log_pi = torch.log_softmax(theta, dim=-1)
        policies.append(log_pi.detach().exp())
        if epoch == epochs:
            break
        ratio = importance_weights(log_pi.gather(-1, act), log_prob_old)
        per_sample = ratio * adv if clip_eps is None else clipped_surrogate(ratio, adv, clip_eps)
        (grad,) = torch.autograd.grad(per_sample.mean(-1).sum(), theta)  # rows are independent
        with torch.no_grad():
            theta += float(lr) * grad
    return torch.stack(policies).numpy()


@dataclass
class RatioEpochs:
    """:func:`surrogate_ascent` on one sample set, unclipped and with several ``epsilon``, and what
    it did.

    ``labels`` and ``clip_eps`` name the runs (``None``: unclipped, always the first). Per run ``r``
    and epoch ``k`` (arrays ``(runs, epochs + 1, ...)``): ``policies`` ``pi_k`` ``(.., A)``;
    ``ratios`` ``pi_k(a) / pi_old(a)`` for every action ``(.., A)``; ``objective`` the sample
    objective the run maximises; ``estimate`` ``mean_i (omega_i - 1) A_i``, the rise of the
    unclipped sample surrogate since epoch 0: the samples' estimate of ``J(pi_k) - J(pi_old)``
    (unbiased for a fixed ``pi_k``, since ``sum_a pi_old(a) A(a) = 0``, and 0 at ``k = 0``);
    ``improvement`` the exact ``J(pi_k) - J(pi_old)`` with ``J(pi) = sum_a pi(a) r(a)``; ``kl`` the
    exact ``KL(pi_k || pi_old)``; ``clip_fraction`` the fraction of samples with
    ``|omega_i - 1| > eps`` (as :mod:`rlcourse.algos.ppo` logs it; ``nan`` for the unclipped run).
    """

    pi_old: np.ndarray
    rewards: np.ndarray
    actions: np.ndarray
    advantages: np.ndarray
    lr: float
    labels: list
    clip_eps: list
    policies: np.ndarray
    ratios: np.ndarray
    objective: np.ndarray
    estimate: np.ndarray
    improvement: np.ndarray
    kl: np.ndarray
    clip_fraction: np.ndarray

    @property
    def epochs(self) -> int:
        return self.policies.shape[1] - 1

    def run(self, clip_eps: float | None) -> int:
        """Index of the run with this ``clip_eps`` (``None``: the unclipped run)."""
        for i, eps in enumerate(self.clip_eps):
            if (eps is None and clip_eps is None) or (
                eps is not None and clip_eps is not None and np.isclose(eps, float(clip_eps))
            ):
                return i
        raise ValueError(
            f"clip_eps={clip_eps!r} is not allowed: the runs have clip_eps {self.clip_eps}"
        )


def ratio_epochs(
    pi_old: np.ndarray,
    rewards: np.ndarray,
    actions: np.ndarray,
    advantages: np.ndarray,
    clip_eps: Sequence[float] = (0.1, 0.2, 0.3),
    epochs: int = 30,
    lr: float = 1.0,
) -> RatioEpochs:
    """Run :func:`surrogate_ascent` on one sample set ``(actions, advantages)`` of ``pi_old``: once
    unclipped, once for each ``epsilon`` in ``clip_eps``; keep the ratios, objectives, exact
    improvements and KLs of every epoch.

    ``rewards`` ``(A,)`` are the mean rewards ``r(a)`` of the one-state problem, used only for the
    exact ``J(pi) = sum_a pi(a) r(a)``; the runs see the samples alone.

    Used by ``notebooks/07_ppo_clipping.ipynb``.
    """
    pi_old = np.asarray(pi_old, dtype=float)
    rewards = np.asarray(rewards, dtype=float)
    if rewards.shape != pi_old.shape:
        raise ValueError(
            f"rewards of shape {rewards.shape} is not allowed: "
            f"one mean reward per action, {pi_old.shape}"
        )
    actions, advantages = np.asarray(actions), np.asarray(advantages, dtype=float)
    if actions.ndim != 1:
        raise ValueError(
            f"actions of shape {actions.shape} is not allowed: one sample set, shape (N,)"
        )
    runs = [None, *(float(e) for e in clip_eps)]
    policies = np.stack(
        [surrogate_ascent(pi_old, actions, advantages, eps, epochs, lr) for eps in runs]
    )
    sample_ratio = policies[:, :, actions] / pi_old[actions]  # (runs, K + 1, N)
    objective = np.empty(sample_ratio.shape[:2])
    clip_fraction = np.full(sample_ratio.shape[:2], np.nan)
    for i, eps in enumerate(runs):
        if eps is None:
            objective[i] = (sample_ratio[i] * advantages).mean(-1)
        else:
            omega = torch.as_tensor(sample_ratio[i])
            objective[i] = clipped_surrogate(
                omega, torch.as_tensor(advantages).expand_as(omega), eps
            ).mean(-1)
            clip_fraction[i] = (np.abs(sample_ratio[i] - 1.0) > eps).mean(-1)
    return RatioEpochs(
        pi_old=pi_old,
        rewards=rewards,
        actions=actions,
        advantages=advantages,
        lr=float(lr),
        labels=["unclipped" if eps is None else f"ε = {eps:g}" for eps in runs],
        clip_eps=runs,
        policies=policies,
        ratios=policies / pi_old,
        objective=objective,
        estimate=((sample_ratio - 1.0) * advantages).mean(-1),
        improvement=policies @ rewards - pi_old @ rewards,
        kl=(policies * np.log(policies / pi_old)).sum(-1),
        clip_fraction=clip_fraction,
    )
