"""What the on-policy actor-critics share that is not a line of a slide box: config checks,
building the actor and critic and their optimiser, gradient clipping and the diagnostics of a step
(REINFORCE, A2C), and the flat GAE batch of PPO and TRPO.

The losses and update steps stay in each algorithm's module, in the order of its slide box.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from rlcourse.advantages import gae, normalize
from rlcourse.config import (
    check_bool,
    check_choice,
    check_device,
    check_layers,
    check_number,
    check_positive,
    check_seed,
    check_unit_interval,
)
from rlcourse.diagnostics import advantage_stats, approx_kl, explained_variance
from rlcourse.envs import make_env
from rlcourse.nets import ValueNet, make_policy, obs_dim
from rlcourse.optim import Adam, clip_grad_norms_
from rlcourse.training import Agent

__all__ = [
    "check_common_config",
    "check_on_policy_config",
    "make_actor_critic",
    "make_optimizer",
    "clip_grad_norms",
    "update_stats",
    "minibatches",
    "loss_scale",
    "gae_batch",
]


def check_common_config(config: Any) -> None:
    """Checks every algorithm's config needs: gamma, sizes, layers, seed, device, evaluation
    schedule (each ``Config`` has checked its fields' types first, with
    :func:`rlcourse.config.check_field_types`)."""
    check_unit_interval("gamma", config.gamma)
    check_positive("total_steps", config.total_steps, integer=True)
    check_positive("num_envs", config.num_envs, integer=True)
    check_positive("threads", config.threads, integer=True)
    check_positive("eval_every", config.eval_every, integer=True, zero_ok=True)
    check_positive("eval_episodes", config.eval_episodes, integer=True)
    check_layers("hidden", config.hidden)
    check_seed(config.seed)
    check_device(config.device)


def check_on_policy_config(config: Any) -> None:
    """The common checks plus those of the actor-critic fields of REINFORCE and A2C."""
    check_common_config(config)
    check_positive("actor_lr", config.actor_lr)
    check_positive("critic_lr", config.critic_lr)
    check_positive("max_grad_norm", config.max_grad_norm, inf_ok=True)
    check_positive("ent_coef", config.ent_coef, zero_ok=True)
    check_bool("normalize_advantages", config.normalize_advantages)
    check_number("log_std_init", config.log_std_init)
    check_choice("reduction", config.reduction, ("mean", "sum"))


def make_actor_critic(algo: str, config: Any, env_id: str, critic: bool) -> Agent:
    """The policy ``pi_theta`` for the environment's action space and, if asked, a critic
    ``v_w``."""
    env = make_env(env_id)
    try:
        policy = make_policy(
            env.observation_space, env.action_space, config.hidden, algo, config.log_std_init
        )
        value = ValueNet(obs_dim(env.observation_space), config.hidden) if critic else None
    finally:
        env.close()
    agent = Agent(algo=algo, env_id=env_id, config=config, policy=policy, critic=value)
    for module in agent.modules().values():
        module.to(config.device)
    return agent


def make_optimizer(agent: Agent, config: Any, eps: float = 1e-8) -> torch.optim.Optimizer:
    """One Adam over actor and critic, each with its own learning rate (``eps``: Adam's epsilon)."""
    groups = [{"params": list(agent.policy.parameters()), "lr": config.actor_lr}]
    if agent.critic is not None:
        groups.append({"params": list(agent.critic.parameters()), "lr": config.critic_lr})
    # The fused kernel, called without torch.optim's per-step bookkeeping (rlcourse.optim)
    return Adam(groups, eps=eps)


def clip_grad_norms(optimizer: torch.optim.Optimizer, max_grad_norm: float) -> Tensor:
    """Clip the actor's and the critic's gradient norms to ``max_grad_norm`` each (not on the
    slides; ``inf`` leaves them as they are); return the actor's norm before clipping.

    The networks are the parameter groups of :func:`make_optimizer`'s Adam, the actor's first
    (an optimizer with more groups has each of them clipped on its own).
    The arithmetic of ``torch.nn.utils.clip_grad_norm_`` on each network, see
    :func:`rlcourse.optim.clip_grad_norms_`.
    """
    return clip_grad_norms_([group["params"] for group in optimizer.param_groups], max_grad_norm)[0]


@torch.no_grad()
def update_stats(
    agent: Agent,
    obs: Tensor,
    actions: Tensor,
    log_prob: Tensor,
    entropy: Tensor,
    actor_loss: Tensor,
    grad_norm: Tensor,
    advantages: Tensor,
    value_loss: Tensor | None = None,
    values: Tensor | None = None,
    targets: Tensor | None = None,
) -> dict[str, float]:
    """The diagnostics of one policy-gradient step (REINFORCE, A2C), taken after it: how far the
    policy moved (``approx_kl`` from ``log_prob``, the log-probabilities before the step), the
    losses, the advantages and, with a critic, how much of the targets' variance ``values``
    (``v_w(S_t)`` before the step) explained."""
    stats: dict[str, float] = {}
    if value_loss is not None:
        stats["critic_loss"] = float(value_loss.detach())
        stats["explained_variance"] = explained_variance(values.detach(), targets)
    new_log_prob = agent.policy(obs).log_prob(actions)
    stats.update(
        actor_loss=float(actor_loss.detach()),
        entropy=float(entropy.detach()),
        approx_kl=approx_kl(log_prob.detach(), new_log_prob),
        grad_norm=float(grad_norm),
        **advantage_stats(advantages),
    )
    return stats


def minibatches(count: int, *tensors: Tensor) -> list[tuple[Tensor, ...]]:
    """``count`` minibatches (at most one per row) of a freshly shuffled batch: per minibatch, its
    rows of each of ``tensors`` (which share their first dimension), the sizes differing by at
    most one.

    Each tensor is permuted once, and its minibatches are slices of that copy: indexing every
    tensor per minibatch would cost more calls. One minibatch is the whole batch as it is: a mean
    or a sum over it does not depend on the order (up to rounding), so nothing is copied.
    """
    if count == 1:
        return [tensors]
    rows = len(tensors[0])
    order = torch.randperm(rows, device=tensors[0].device)
    parts = [t[order].tensor_split(min(count, rows)) for t in tensors]
    return list(zip(*parts, strict=True))


def loss_scale(config: Any, batch: Tensor) -> int:
    """What turns a loss averaged over ``batch`` into the slides' sum: ``batch.numel()`` when
    ``config.reduction == "sum"``, else 1 (the mean, the default)."""
    return batch.numel() if config.reduction == "sum" else 1


@torch.no_grad()
def gae_batch(
    critic: torch.nn.Module, rollout: Any, config: Any
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The rollout as one flat batch for PPO and TRPO: states ``S_t``, actions ``A_t``, advantage
    estimates ``A_t^GAE`` (standardised if ``config.normalize_advantages``) and value targets
    ``y_t = A_t^GAE + v_w(S_t)`` (the lambda-returns), computed "based on the current critic
    ``v_w``" as the slides' boxes say; all constants.
    """
    values, next_values = critic(rollout.obs), critic(rollout.next_obs)
    advantages = gae(
        rollout.rewards,
        values,
        next_values,
        rollout.terminated,
        rollout.truncated,
        config.gamma,
        config.gae_lambda,
    )
    targets = advantages + values
    if config.normalize_advantages:
        advantages = normalize(advantages)
    flat = lambda x: x.flatten(0, 1)  # (T, N, ...) -> (T * N, ...)
    return flat(rollout.obs), flat(rollout.actions), flat(advantages), flat(targets)
