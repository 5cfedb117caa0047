"""Returns, TD errors and advantage estimates: the quantities of the slides' A2C and GAE pages.

Every function is pure and works on tensors that are *time first*: shape ``(T,)`` for one stream of
steps or ``(T, N)`` for ``N`` parallel environments. Step ``t`` is the transition
``S_t, A_t -> R_{t+1}, S_{t+1}`` and the arrays hold, at index ``t``:

============== ===========================================================================
``rewards``    ``R_{t+1}``
``values``     ``v_w(S_t)``
``next_values`` ``v_w(S_{t+1})`` where ``S_{t+1}`` is the observation step ``t`` really produced:
               the final observation when the episode ended at ``t``, not the next episode's
               first one
``terminated`` ``S_{t+1}`` is terminal: its value is 0, never bootstrap from it
``truncated``  the episode was cut at ``t`` (a time limit): ``S_{t+1}`` is *not* terminal, so
               bootstrap from ``v_w(S_{t+1})``, but the sum over later steps stops here
============== ===========================================================================

The last step of a rollout (``t = T - 1``) is treated like a truncation: the episode goes on, but
the rollout does not show it, so the estimate bootstraps there. The slides write ``tau_t`` for the
final step of the episode that ``t`` belongs to; here ``tau_t`` is the first ``k >= t`` with
``terminated[k] or truncated[k]``, or ``T - 1``.

The group estimates at the end (GRPO's and RLOO's) are different: their inputs are *group first*,
shape ``(..., G)`` for ``G`` answers to the same question, and they need no critic.
:func:`sample_group` and :func:`all_equal_fraction` (groups of 0/1 rewards, notebook 08) show how
often such a group carries no signal.

Used by: ``notebooks/02_advantage_estimation.ipynb``, ``notebooks/08_grpo.ipynb``,
:mod:`rlcourse.algos.reinforce`, :mod:`rlcourse.algos.a2c`, :mod:`rlcourse.algos.grpo`. Slides:
"Advantage Estimation", "Data collection of A2C", "Generalized Advantage Estimation", "Data
collection of A2C + GAE", "Group Relative Policy Optimization (GRPO)".
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from rlcourse.config import check_unit_interval

__all__ = [
    "discounted_returns",
    "returns_to_go",
    "td_errors",
    "gae",
    "kstep_returns",
    "lambda_returns",
    "normalize",
    "group_relative_advantages",
    "group_relative_step_advantages",
    "leave_one_out_advantages",
    "sample_group",
    "all_equal_fraction",
]


def _episode_ends(terminated: Tensor, truncated: Tensor | None) -> Tensor:
    """``done_t``: the episode's sum stops after step t (termination, truncation or rollout end)."""
    done = terminated.bool() if truncated is None else terminated.bool() | truncated.bool()
    done = done.clone()
    done[-1] = True
    return done


def _episode_end_index(terminated: Tensor, truncated: Tensor) -> Tensor:
    """``tau_t`` for every step: the first ``k >= t`` where the episode (or the rollout) ends."""
    done = _episode_ends(terminated, truncated)
    tau = torch.empty(done.shape, dtype=torch.long, device=done.device)
    next_end = torch.full_like(tau[0], done.shape[0] - 1)
    for t in reversed(range(done.shape[0])):
        next_end = torch.where(done[t], t, next_end)
        tau[t] = next_end
    return tau


def discounted_returns(rewards: Tensor, gamma: float) -> Tensor:
    """Returns-to-go of one complete episode: ``G_t = sum_{k>=0} gamma^k R_{t+k+1}``.

    Computed backwards with ``G_t = R_{t+1} + gamma G_{t+1}`` and ``G_T = 0``, so the last reward
    is the last one the episode gave (nothing is bootstrapped).

    Args:
        rewards: ``(T,)`` or ``(T, N)`` rewards ``R_1 .. R_T`` of ``N`` complete episodes of
            length ``T``.
        gamma: discount factor ``gamma`` in ``[0, 1]``.

    Returns:
        ``G`` with the shape of ``rewards``.
    """
    check_unit_interval("gamma", gamma)
    returns = torch.empty_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        running = rewards[t] + gamma * running
        returns[t] = running
    return returns


def returns_to_go(
    rewards: Tensor,
    next_values: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    gamma: float,
) -> Tensor:
    """Critic targets of plain A2C: ``G_t = sum_{k=t}^{tau_t} gamma^{k-t} R_{k+1}``, bootstrapped.

    Inside an episode this is the slide's return-to-go. Where the rollout shows only part of the
    episode (a time-limit truncation or the rollout's end) the missing tail is
    ``gamma^{tau_t - t + 1} v(S_{tau_t + 1})``; where it terminated the tail is 0. With
    ``next_values = 0`` and no truncation this is :func:`discounted_returns` per episode.

    Equals ``gae(..., gae_lambda=1) + values`` (a test checks it).

    Args:
        rewards, next_values, terminated, truncated: ``(T,)`` or ``(T, N)``, see the module doc.
        gamma: discount factor in ``[0, 1]``.
    """
    # The lambda-return with lambda = 1: every k-step return gets weight 0 but the longest.
    return lambda_returns(rewards, next_values, terminated, truncated, gamma, 1.0)


def td_errors(
    rewards: Tensor,
    values: Tensor,
    next_values: Tensor,
    terminated: Tensor,
    gamma: float,
) -> Tensor:
    """TD errors ``delta_t = R_{t+1} + gamma v(S_{t+1}) (1 - terminated_t) - v(S_t)``.

    The slide's eq. 1 drops the bootstrap at every episode end; here only a terminal ``S_{t+1}``
    drops it. A step cut by a time limit still bootstraps: its ``S_{t+1}`` is not terminal.

    Args:
        rewards, values, next_values, terminated: ``(T,)`` or ``(T, N)``, see the module doc.
        gamma: discount factor in ``[0, 1]``.
    """
    check_unit_interval("gamma", gamma)
    return rewards + gamma * next_values * (~terminated.bool()) - values


def gae(
    rewards: Tensor,
    values: Tensor,
    next_values: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    gamma: float,
    gae_lambda: float,
) -> Tensor:
    """Generalized advantage estimates ``A_t = sum_{k=t}^{tau_t} (gamma lambda)^{k-t} delta_k``.

    Schulman et al. (2016), slide "Data collection of A2C + GAE". Computed backwards with
    ``A_t = delta_t + gamma lambda A_{t+1}``, where the recursion restarts (``A_{t+1} := 0``) after
    every episode end and after the rollout's last step. Special cases: ``gae_lambda = 0`` gives
    the TD errors; ``gae_lambda = 1`` gives returns-to-go minus values (Monte Carlo on complete
    episodes); ``gamma = 0`` gives ``R - v``. The critic's targets are the lambda-returns
    ``gae(...) + values`` (slide eq. 2).

    Args:
        rewards, values, next_values, terminated, truncated: ``(T,)`` or ``(T, N)``, see the
            module doc.
        gamma: discount factor ``gamma`` in ``[0, 1]``.
        gae_lambda: ``lambda`` in ``[0, 1]``, the bias-variance knob.

    Returns:
        Advantages with the shape of ``rewards``.
    """
    check_unit_interval("gae_lambda", gae_lambda)
    delta = td_errors(rewards, values, next_values, terminated, gamma)
    done = _episode_ends(terminated, truncated)
    advantages = torch.empty_like(delta)
    running = torch.zeros_like(delta[0])
    for t in reversed(range(delta.shape[0])):
        running = delta[t] + gamma * gae_lambda * running * (~done[t])
        advantages[t] = running
    return advantages


def kstep_returns(
    rewards: Tensor,
    next_values: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    gamma: float,
    k: int,
) -> Tensor:
    """k-step returns ``v_t^(k) = R_{t+1} + ... + gamma^{k-1} R_{t+k} + gamma^k v(S_{t+k})``.

    When the episode (or the rollout) ends before ``k`` steps, at ``tau_t < t + k - 1``, the sum
    stops there and bootstraps from ``v(S_{tau_t + 1})`` (0 if terminal): every ``k`` larger than
    the steps left gives the same, longest return. ``k = 1`` is the one-step TD target
    ``R_{t+1} + gamma v(S_{t+1})``.

    Note: the slide writes ``v(S_{t+1})`` inside ``v_t^(k)``; the bootstrap state is ``S_{t+k}``.
    Its ``v_t^(2)`` also repeats ``R_{t+1}`` where ``gamma R_{t+2}`` belongs.
    """
    check_unit_interval("gamma", gamma)
    if int(k) < 1:
        raise ValueError(f"k must be a positive number of steps, got {k}")
    T = rewards.shape[0]
    tau = _episode_end_index(terminated, truncated)
    bootstrap = next_values * (~terminated.bool())
    out = torch.empty_like(rewards)
    for t in range(T):
        last = tau[t].clamp(max=t + k - 1)  # the window's last step: k steps, or the episode's end
        total = torch.zeros_like(rewards[0])
        for j in range(t, min(t + k, T)):
            total = total + gamma ** (j - t) * rewards[j] * (j <= last)
        discount = torch.full_like(rewards[0], gamma) ** (last - t + 1)
        out[t] = total + discount * bootstrap.gather(0, last.unsqueeze(0)).squeeze(0)
    return out


def lambda_returns(
    rewards: Tensor,
    next_values: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    gamma: float,
    gae_lambda: float,
) -> Tensor:
    """lambda-returns ``v_t^lambda = (1 - lambda) sum_{k>=1} lambda^{k-1} v_t^(k)``, by recursion.

    ``v_t^lambda = R_{t+1} + gamma ((1 - lambda) v(S_{t+1}) + lambda v_{t+1}^lambda)`` inside an
    episode, and ``R_{t+1} + gamma v(S_{t+1})`` (0 if terminal) at its end: once the episode ends,
    every longer k-step return equals the longest one, so it takes all the remaining weight.
    The slide's sum omits the factor ``(1 - lambda)`` that makes the weights sum to 1.

    Identity (the slide's exercise, checked in the tests and the notebook):
    ``lambda_returns(...) - values == gae(...)``.
    """
    check_unit_interval("gamma", gamma)
    check_unit_interval("gae_lambda", gae_lambda)
    done = _episode_ends(terminated, truncated)
    bootstrap = next_values * (~terminated.bool())
    out = torch.empty_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        blended = (1.0 - gae_lambda) * bootstrap[t] + gae_lambda * running
        running = rewards[t] + gamma * torch.where(done[t], bootstrap[t], blended)
        out[t] = running
    return out


def normalize(advantages: Tensor, eps: float = 1e-8) -> Tensor:
    """Standardise a batch of advantage estimates: ``(A - mean A) / (std A + eps)``.

    Not on the slides: a common practice that makes the actor's step size independent of the
    reward scale. It leaves the sign of each advantage relative to the batch mean, which is what
    the gradient ranks actions by.
    """
    if advantages.numel() < 2:
        raise ValueError(
            "cannot standardise fewer than 2 advantages: their standard deviation is undefined"
        )
    return (advantages - advantages.mean()) / (advantages.std() + eps)


def _check_group(rewards: Tensor, name: str = "rewards") -> None:
    if rewards.dim() < 1 or rewards.shape[-1] < 2:
        raise ValueError(
            f"{name}.shape={tuple(rewards.shape)} is not allowed: the last axis holds a group of G "
            "answers to the same question, and a group needs G >= 2 (one answer has no spread to "
            "compare against)"
        )


def group_relative_advantages(rewards: Tensor, eps: float = 1e-8) -> Tensor:
    """GRPO's advantage of each answer relative to its group:
    ``(R_i - mean_j R_j) / (std_j R_j + eps)``.

    Shao et al. (2024), "DeepSeekMath", eq. for outcome supervision; slide "Group Relative Policy
    Optimization (GRPO)". The group mean replaces the critic as a baseline; dividing by the group's
    spread makes a question where answers differ a little count as much as one where they differ a
    lot. ``std`` is the sample standard deviation (divisor ``G - 1``, PyTorch's default and that of
    common GRPO implementations), so the result has mean 0 and sample standard deviation
    ``std / (std + eps)``, 1 up to ``eps``. A group whose rewards are all equal (every answer right,
    or every answer wrong) gets advantages of exactly 0: it carries no signal, and ``eps`` keeps it
    from being ``0/0``.

    Args:
        rewards: final rewards, shape ``(..., G)``: the last axis is a group of ``G >= 2`` answers
            to one question; leading axes (different questions) are independent.
        eps: added to the standard deviation.

    Returns:
        Advantages of the same shape. With outcome rewards every token of answer ``i`` gets ``A_i``.
    """
    _check_group(rewards)
    mean = rewards.mean(dim=-1, keepdim=True)
    std = rewards.std(dim=-1, keepdim=True)
    return (rewards - mean) / (std + eps)


def group_relative_step_advantages(rewards: Tensor, mask: Tensor, eps: float = 1e-8) -> Tensor:
    """The slide's GRPO advantage for per-step rewards: ``A_t = sum_{k >= t} Rbar_{k+1}``, with
    ``Rbar_{k+1} = (R_{k+1} - mean_i R^i_{k+1}) / std_i R^i_{k+1}`` normalised across the group at a
    fixed step.

    Slide "Group Relative Policy Optimization (GRPO)": "mean and std over the batch for a fixed
    timestep t". Answers have different lengths, so at step ``k`` the mean and the standard
    deviation are taken over the answers still running there (``mask``); a step where fewer than two
    answers run, or where they all got the same reward, contributes 0. (DeepSeekMath's process
    supervision normalises over all the group's step rewards at once instead; the slide's version is
    the one here.)

    Args:
        rewards: ``R_{t+1}`` of every step, shape ``(..., G, T)``: group of ``G`` answers, ``T``
            steps.
        mask: 1 where answer ``i`` has a step ``t``, 0 on padding; same shape.
        eps: added to the standard deviation.

    Returns:
        ``A_t`` of shape ``(..., G, T)``, 0 on padding.
    """
    if rewards.shape != mask.shape or rewards.dim() < 2:
        raise ValueError(
            f"rewards.shape={tuple(rewards.shape)} and mask.shape={tuple(mask.shape)} are not "
            "allowed: both must be (..., G, T), a group of G answers of up to T steps"
        )
    _check_group(rewards.transpose(-1, -2), "rewards.transpose(-1, -2)")
    mask = mask.to(rewards.dtype)
    count = mask.sum(dim=-2, keepdim=True)
    mean = (rewards * mask).sum(dim=-2, keepdim=True) / count.clamp(min=1.0)
    var = (((rewards - mean) * mask) ** 2).sum(dim=-2, keepdim=True) / (count - 1.0).clamp(min=1.0)
    normalised = (rewards - mean) / (var.sqrt() + eps) * mask * (count >= 2)
    # Sum over later steps: a reversed cumulative sum along T.
    return normalised.flip(-1).cumsum(-1).flip(-1) * mask


def leave_one_out_advantages(rewards: Tensor) -> Tensor:
    """RLOO's advantage: each answer's reward minus the mean reward of the *other* ``G - 1``
    answers.

    Ahmadian et al. (2024), "Back to basics: revisiting REINFORCE-style optimization for learning
    from human feedback in LLMs" (after Kool et al. 2019). The baseline of answer ``i`` does not
    depend on answer ``i``, so the REINFORCE gradient stays unbiased (the group mean of GRPO
    includes ``R_i``). Equal to ``G / (G - 1) (R_i - mean_j R_j)``.

    Args:
        rewards: shape ``(..., G)``, a group of ``G >= 2`` answers on the last axis.
    """
    _check_group(rewards)
    g = rewards.shape[-1]
    others = (rewards.sum(dim=-1, keepdim=True) - rewards) / (g - 1)
    return rewards - others


# Groups of 0/1 outcome rewards, for notebook 08: how often a group carries no signal at all.


def sample_group(group_size: int, p: float, seed: int = 0) -> np.ndarray:
    """Final rewards ``R_1 .. R_G`` of one group: ``G = group_size`` answers to one question, each
    right (reward 1) with probability ``p`` and wrong (0) otherwise, independently.

    Slide "Group Relative Policy Optimization (GRPO)": the input of
    :func:`group_relative_advantages`. Returns a float ``(G,)`` array of 0s and 1s.
    """
    if (
        isinstance(group_size, bool)
        or not isinstance(group_size, int | np.integer)
        or group_size < 2
    ):
        raise ValueError(
            f"group_size={group_size!r} is not allowed: a group has at least 2 answers"
        )
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p={p!r} is not allowed: a probability in [0, 1]")
    return (np.random.default_rng(seed).random(group_size) < p).astype(float)


def all_equal_fraction(group_size, p) -> np.ndarray:
    """``P(R_1 = ... = R_G) = p^G + (1 - p)^G``: the probability that all ``G`` answers of a group
    get the same 0/1 reward (all right or all wrong), each right with probability ``p``.

    Such a group has group-relative advantages of exactly 0 (:func:`group_relative_advantages`)
    and so adds nothing to GRPO's gradient; the fraction grows quickly as ``p`` nears 0 or 1 and
    falls with ``G``. ``group_size`` and ``p`` broadcast against each other.
    """
    group_size, p = np.asarray(group_size, dtype=float), np.asarray(p, dtype=float)
    if not (np.isfinite(group_size) & (group_size >= 1)).all():
        raise ValueError(
            f"group_size={group_size.tolist()!r} is not allowed: a group has at least 1 answer"
        )
    if not ((p >= 0) & (p <= 1)).all():
        raise ValueError(
            f"p={p.tolist()!r} is not allowed: every p must be a probability in [0, 1]"
        )
    return p**group_size + (1 - p) ** group_size
