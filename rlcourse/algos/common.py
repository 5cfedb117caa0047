"""What the on-policy actor-critics share: building the actor and critic, the optimiser, one gradient
step (REINFORCE, A2C), GAE advantages with their critic targets (A2C, PPO, TRPO).

The training loops themselves stay in each algorithm's module, in the order of its slide.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from rlcourse.advantages import gae, normalize
from rlcourse.config import (
    check_bool,
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
from rlcourse.objectives import critic_loss, policy_gradient_loss
from rlcourse.training import Agent, History, check_finite

__all__ = [
    "check_common_config",
    "check_on_policy_config",
    "make_actor_critic",
    "make_optimizer",
    "actor_critic_step",
    "gae_batch",
]


def check_common_config(config: Any) -> None:
    """Checks every algorithm's config needs: gamma, sizes, layers, seed, device, evaluation schedule (each
    ``Config`` has checked its fields' types first, with :func:`rlcourse.config.check_field_types`)."""
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


def make_actor_critic(algo: str, config: Any, env_id: str, critic: bool) -> Agent:
    """The policy ``pi_theta`` for the environment's action space and, if asked, a critic ``v_w``."""
    env = make_env(env_id)
    try:
        policy = make_policy(env.observation_space, env.action_space, config.hidden, algo, config.log_std_init)
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
    # The fused kernel does the whole Adam step in one call: much less overhead for small nets.
    return torch.optim.Adam(groups, eps=eps, fused=True)


def actor_critic_step(
    agent: Agent,
    optimizer: torch.optim.Optimizer,
    obs: Tensor,
    actions: Tensor,
    advantages: Tensor,
    values: Tensor | None,
    targets: Tensor | None,
    config: Any,
    history: History,
    iteration: int,
) -> dict[str, float]:
    """Minimise ``L_actor(theta) + L_critic(w)`` by one Adam step; return the diagnostics.

    ``values`` are ``v_w(S_t)`` *with* their graph (the critic loss needs it); ``advantages`` and
    ``targets`` are constants. Without a critic, ``values`` and ``targets`` are ``None``.
    """
    pi = agent.policy(obs)
    log_prob = pi.log_prob(actions)
    entropy = pi.entropy().mean()
    actor_loss = policy_gradient_loss(log_prob, advantages) - config.ent_coef * entropy
    check_finite(history, iteration, actor_loss=actor_loss)
    loss = actor_loss
    stats: dict[str, float] = {}
    if values is not None:
        value_loss = critic_loss(values, targets)
        check_finite(history, iteration, critic_loss=value_loss)
        loss = loss + value_loss
        stats["critic_loss"] = float(value_loss.detach())
        stats["explained_variance"] = explained_variance(values.detach(), targets)

    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(agent.policy.parameters(), config.max_grad_norm)
    if agent.critic is not None:
        torch.nn.utils.clip_grad_norm_(agent.critic.parameters(), config.max_grad_norm)
    check_finite(history, iteration, actor_gradient_norm=grad_norm)
    optimizer.step()

    with torch.no_grad():
        new_log_prob = agent.policy(obs).log_prob(actions)
    stats.update(
        actor_loss=float(actor_loss.detach()),
        entropy=float(entropy.detach()),
        approx_kl=approx_kl(log_prob.detach(), new_log_prob),
        grad_norm=float(grad_norm),
        **advantage_stats(advantages),
    )
    return stats


@torch.no_grad()
def gae_batch(critic: torch.nn.Module, rollout: Any, config: Any) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The rollout as one flat batch for PPO and TRPO: states ``S_t``, actions ``A_t``, advantage estimates
    ``A_t^GAE`` (standardised if ``config.normalize_advantages``) and value targets ``y_t = A_t^GAE + v_w(S_t)``
    (the lambda-returns), computed "based on the current critic ``v_w``" as the slides' boxes say; all constants.
    """
    values, next_values = critic(rollout.obs), critic(rollout.next_obs)
    advantages = gae(
        rollout.rewards, values, next_values, rollout.terminated, rollout.truncated, config.gamma, config.gae_lambda
    )
    targets = advantages + values
    if config.normalize_advantages:
        advantages = normalize(advantages)
    flat = lambda x: x.flatten(0, 1)  # (T, N, ...) -> (T * N, ...)
    return flat(rollout.obs), flat(rollout.actions), flat(advantages), flat(targets)
