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

The last step of a rollout (``t = T - 1``) is treated like a truncation: the episode goes on, but the
rollout does not show it, so the estimate bootstraps there. The slides write ``tau_t`` for the
final step of the episode that ``t`` belongs to; here ``tau_t`` is the first ``k >= t`` with
``terminated[k] or truncated[k]``, or ``T - 1``.

Used by: ``notebooks/02_advantage_estimation.ipynb``, :mod:`rlcourse.algos.reinforce`,
:mod:`rlcourse.algos.a2c`. Slides: "Advantage Estimation", "Data collection of A2C",
"Generalized Advantage Estimation", "Data collection of A2C + GAE".
"""

from __future__ import annotations

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

    Note: the slide writes ``v(S_{t+1})`` inside ``v_t^(k)``; the bootstrap state is ``S_{t+k}``. Its
    ``v_t^(2)`` also repeats ``R_{t+1}`` where ``gamma R_{t+2}`` belongs.
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
        raise ValueError("cannot standardise fewer than 2 advantages: their standard deviation is undefined")
    return (advantages - advantages.mean()) / (advantages.std() + eps)
