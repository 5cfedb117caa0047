"""REINFORCE: the vanilla (Monte Carlo) policy gradient, with an optional learned baseline.

Williams (1992), "Simple statistical gradient-following algorithms for connectionist
reinforcement learning". Slides: the policy gradient theorem recalled on "Advantage Estimation"
and the summary table's REINFORCE row.

Each iteration collects complete episodes with the current policy, the first ``episodes_per_env``
of every environment, and ascends ``mean_t grad log pi_theta(A_t|S_t) (G_t - b(S_t))``, with
``G_t`` the return-to-go and ``b = v_w`` a learned baseline (or ``b = 0``). Steps after those
episodes are dropped: Monte Carlo needs whole episodes, and taking a fixed number from every
environment (rather than whichever finished first) keeps long episodes as likely as they are.

Truncation: with a baseline, a time-limit truncation is bootstrapped from ``v_w(S_{T})``, because
the episode did not really end there. Without a critic there is nothing to bootstrap from, and
the return simply stops at the time limit.
"""

from __future__ import annotations

import math
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from rlcourse.advantages import normalize, returns_to_go
from rlcourse.algos.common import (
    check_on_policy_config,
    clip_grad_norms,
    loss_scale,
    make_actor_critic,
    make_optimizer,
    update_stats,
)
from rlcourse.budgets import budget
from rlcourse.config import (
    check_bool,
    check_field_types,
    check_positive,
    param,
    training_config,
)
from rlcourse.envs import make_vec_env
from rlcourse.objectives import critic_loss, policy_gradient_loss
from rlcourse.rollouts import EpisodeTracker, collect_rollout, complete_episodes_mask
from rlcourse.saving import RunKeeper
from rlcourse.training import (
    Agent,
    History,
    check_finite,
    evaluate_on_schedule,
    progress_bar,
    seed_everything,
    torch_threads,
)

__all__ = ["Config", "PRESETS", "train", "make_agent", "returns_and_advantages"]

NAME = "reinforce"
SUMMARY = "Monte Carlo policy gradient with an optional learned baseline, on-policy"

# The slides' summary table (rlcourse.catalog builds it from these and from what the code accepts).
CLASS = "actor-only"
ON_POLICY = True
REFERENCE = (
    'Williams (1992), "Simple statistical gradient-following algorithms for connectionist '
    'reinforcement learning"'
)


@dataclass
class Config:
    """REINFORCE hyperparameters; the slides' symbols in brackets."""

    baseline: bool = param(True, "subtract a learned state-value baseline b(s) = v_w(s)")
    gamma: float = param(0.99, "discount factor [gamma], in [0, 1]")
    num_envs: int = param(8, "environments stepped in parallel")
    episodes_per_env: int = param(
        2, "complete episodes each environment contributes to one policy update"
    )
    total_steps: int = param(300_000, "environment steps for the whole run")
    actor_lr: float = param(3e-3, "Adam learning rate of the policy [theta]")
    critic_lr: float = param(3e-3, "Adam learning rate of the baseline [w]")
    hidden: tuple = param((64, 64), "hidden layer sizes of policy and baseline")
    normalize_advantages: bool = param(
        True, "standardise G_t - b(S_t) in each batch (not on the slide)"
    )
    reduction: str = param("mean", "'mean' of the losses over the batch, or 'sum' as on the slides")
    ent_coef: float = param(0.0, "weight of an entropy bonus (0 = plain REINFORCE)")
    max_grad_norm: float = param(
        0.5, "clip each network's gradient norm to this (inf: no clipping, as on the slide)"
    )
    log_std_init: float = param(0.0, "initial log standard deviation of a Gaussian policy")
    seed: int = param(0, "random seed")
    eval_every: int = param(0, "env steps between greedy evaluations during training (0: none)")
    eval_episodes: int = param(10, "episodes per greedy evaluation")
    device: str = param("cpu", "'cpu' or 'cuda'")
    threads: int = param(1, "torch threads during training (1 is fastest for small networks)")

    def __post_init__(self):
        check_field_types(self)  # first: the checks below compare and multiply the values
        check_positive("episodes_per_env", self.episodes_per_env, integer=True)
        check_bool("baseline", self.baseline)
        check_on_policy_config(self)


# Known to solve the environment: `python -m benchmarks presets --algo reinforce` trains seeds 0,
# 1, 2 and prints the env steps and seconds at which each reaches the threshold.
PRESETS: dict[str, Config] = {
    "CartPole-v1": Config(total_steps=budget("preset/reinforce/CartPole-v1")),
}

SLIDE = Config(baseline=False, normalize_advantages=False, max_grad_norm=math.inf, reduction="sum")
"""REINFORCE as the slides recall it (the policy gradient theorem; the summary table's actor-only
row): ``L_actor(theta) = - sum_t log pi_theta(A_t|S_t) G_t``, no baseline, no advantage
normalisation, no gradient clipping. The defaults add the learned baseline ``b = v_w`` and the
usual normalisation and clipping, which lower the variance of the estimate.
"""


def returns_and_advantages(
    rewards: Tensor,
    values: Tensor | None,
    next_values: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    gamma: float,
) -> tuple[Tensor, Tensor]:
    """Returns-to-go ``G_t`` and the advantages ``G_t - b(S_t)`` (``G_t`` itself without a
    baseline).

    ``values`` are ``b(S_t) = v_w(S_t)`` or ``None``; ``next_values`` bootstrap a truncated episode
    (zeros without a critic). The advantages are constants for the actor (no gradient to ``w``).
    """
    returns = returns_to_go(rewards, next_values, terminated, truncated, gamma)
    return returns, returns - values.detach() if values is not None else returns


def make_agent(config: Config, env_id: str) -> Agent:
    return make_actor_critic(NAME, config, env_id, critic=config.baseline)


def train(
    env_id: str = "CartPole-v1",
    config: Config | None = None,
    progress: bool = True,
    *,
    out: str | Path | None = None,
    save_every: float = 60.0,
    resume: bool = False,
    **overrides,
) -> tuple[Agent, History]:
    """Train REINFORCE on ``env_id``; return the agent and its history (see
    :func:`rlcourse.algos.a2c.train`, also for ``out``, ``save_every`` and ``resume``)."""
    config = training_config(Config, PRESETS, env_id, config, overrides)
    seed_everything(config.seed)
    rng = np.random.default_rng(config.seed)  # the actor's sampling noise in the rollouts
    envs = make_vec_env(env_id, config.num_envs)
    obs, _ = envs.reset(seed=config.seed)

    agent = make_agent(config, env_id)
    optimizer = make_optimizer(agent, config)
    history = History()
    tracker = EpisodeTracker(config.num_envs, history)
    bar = progress_bar(config.total_steps, progress, "REINFORCE")
    keeper = RunKeeper(
        agent,
        history,
        dict(optimizer=optimizer, envs=envs, rng=rng, tracker=tracker),
        out,
        save_every,
        resume,
    )
    with torch_threads(config.threads), closing(envs), bar, keeper:
        iteration = keeper.start(iteration=0)["iteration"]
        bar.update(tracker.env_steps)
        while tracker.env_steps < config.total_steps:
            iteration += 1
            # Sample complete episodes with pi_theta (fresh ones: the previous batch's policy is
            # gone)
            if iteration > 1:
                obs, _ = envs.reset()
                tracker.drop_unfinished()
            before = tracker.env_steps
            rollout, obs = collect_rollout(
                envs,
                agent.policy,
                obs,
                tracker,
                rng,
                episodes_per_env=config.episodes_per_env,
                device=config.device,
            )
            whole = complete_episodes_mask(
                rollout.terminated, rollout.truncated, config.episodes_per_env
            )

            # Returns-to-go G_t, and the advantage G_t - b(S_t)
            if agent.critic is not None:
                values = agent.critic(rollout.obs)
                with torch.no_grad():
                    next_values = agent.critic(rollout.next_obs)
            else:
                values, next_values = None, torch.zeros_like(rollout.rewards)
            returns, advantages = returns_and_advantages(
                rollout.rewards,
                values,
                next_values,
                rollout.terminated,
                rollout.truncated,
                config.gamma,
            )
            advantages = advantages[whole]
            if config.normalize_advantages:
                advantages = normalize(advantages)

            # Ascend the policy gradient:
            # L_actor(theta) = - sum_t log pi_theta(A_t|S_t) [G_t - b(S_t)]
            # (an entropy bonus if ent_coef > 0; a mean unless reduction="sum", see Config)
            obs, actions = rollout.obs[whole], rollout.actions[whole]
            n = loss_scale(config, advantages)
            pi = agent.policy(obs)
            log_prob = pi.log_prob(actions)
            entropy = pi.entropy().mean()
            actor_loss = n * (
                policy_gradient_loss(log_prob, advantages) - config.ent_coef * entropy
            )
            check_finite(history, iteration, actor_loss=actor_loss)
            loss, value_loss = actor_loss, None
            if values is not None:
                # Regress the baseline on G_t: L_critic(w) = 1/2 sum_t (v_w(S_t) - G_t)^2
                values, returns = values[whole], returns[whole]
                value_loss = n * critic_loss(values, returns)
                check_finite(history, iteration, critic_loss=value_loss)
                loss = loss + value_loss
            # One Adam step on both
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = clip_grad_norms(optimizer, config.max_grad_norm)
            check_finite(history, iteration, actor_gradient_norm=grad_norm)
            optimizer.step()

            stats = update_stats(
                agent,
                obs,
                actions,
                log_prob,
                entropy,
                actor_loss,
                grad_norm,
                advantages,
                value_loss,
                values,
                returns,
            )
            history.add_iteration(
                iteration, tracker.env_steps, sps=tracker.env_steps / history.wall_time(), **stats
            )
            bar.update(tracker.env_steps - before)
            evaluate_on_schedule(agent, history, tracker.env_steps, config)
            bar.set_postfix(mean_return=f"{history.mean_return():.1f}", refresh=False)
            keeper.tick(iteration=iteration)
        evaluate_on_schedule(agent, history, tracker.env_steps, config, final=True)
    return agent, history
