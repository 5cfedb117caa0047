"""A2C, synchronous advantage actor-critic, in both of the slides' forms.

Mnih et al. (2016), "Asynchronous methods for deep reinforcement learning" (A3C; A2C is its
synchronous variant), and Schulman et al. (2016), "High-dimensional continuous control using
generalized advantage estimation". Slides: "A2C (Advantage Actor-Critic)", "Data collection of
A2C", "A2C + GAE".

``advantage="td"`` is the slide "A2C": advantages are the TD errors ``delta_t``, critic targets the
returns-to-go ``G_t``. ``advantage="gae"`` is the slide "A2C + GAE": advantages are the GAE
estimates, critic targets the lambda-returns ``A_t^GAE + v_w(S_t)`` (eq. 2).

Both bootstrap where the rollout shows only part of an episode (a time-limit truncation or the
rollout's end) and never from a terminal state. The slides stop every sum at ``tau_t`` without
bootstrapping; ``notebooks/02_advantage_estimation.ipynb`` shows why a time limit needs the
bootstrap.
"""

from __future__ import annotations

import math
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from rlcourse.advantages import gae, normalize, returns_to_go, td_errors
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
    check_choice,
    check_field_types,
    check_positive,
    check_unit_interval,
    param,
    training_config,
)
from rlcourse.envs import make_vec_env
from rlcourse.objectives import critic_loss, policy_gradient_loss
from rlcourse.rollouts import EpisodeTracker, collect_rollout
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

__all__ = ["Config", "PRESETS", "train", "make_agent", "advantages_and_targets"]

NAME = "a2c"
SUMMARY = "advantage actor-critic (TD-error or GAE advantages), on-policy"

# The slides' summary table (rlcourse.catalog builds it from these and from what the code accepts).
CLASS = "actor-critic"
ON_POLICY = True
REFERENCE = 'Mnih et al. (2016), "Asynchronous methods for deep reinforcement learning"'


@dataclass
class Config:
    """A2C hyperparameters; the slides' symbols in brackets."""

    advantage: str = param("gae", "advantage estimate: 'td' (slide A2C) or 'gae' (slide A2C + GAE)")
    gamma: float = param(0.99, "discount factor [gamma], in [0, 1]")
    gae_lambda: float = param(0.95, "GAE's [lambda], in [0, 1]; used when advantage='gae'")
    num_envs: int = param(8, "environments stepped in parallel [N]")
    rollout_steps: int = param(
        16, "steps per environment in one rollout; the rollout has T = N * rollout_steps steps"
    )
    total_steps: int = param(200_000, "environment steps for the whole run")
    actor_lr: float = param(2e-3, "Adam learning rate of the actor [theta]")
    critic_lr: float = param(5e-3, "Adam learning rate of the critic [w]")
    hidden: tuple = param((64, 64), "hidden layer sizes of actor and critic")
    normalize_advantages: bool = param(
        True, "standardise advantages in each rollout (not on the slide)"
    )
    reduction: str = param(
        "mean", "'mean' of the losses over the rollout, or 'sum' as on the slide"
    )
    ent_coef: float = param(
        0.0, "weight of an entropy bonus in the actor loss (0 = the slide's loss)"
    )
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
        check_choice("advantage", self.advantage, ("td", "gae"))
        check_unit_interval("gae_lambda", self.gae_lambda)
        check_positive("rollout_steps", self.rollout_steps, integer=True)
        check_positive("num_envs", self.num_envs, integer=True)
        if self.normalize_advantages and self.num_envs * self.rollout_steps < 2:
            raise ValueError(
                "normalize_advantages=True needs at least 2 steps per rollout (num_envs * "
                "rollout_steps): the standard deviation of one advantage is undefined; set "
                "normalize_advantages=False for one-step "
                "actor-critic"
            )
        check_on_policy_config(self)


# Known to solve the environment: `python -m benchmarks presets --algo a2c` trains seeds 0, 1, 2
# and prints the env steps and seconds at which each reaches the threshold.
PRESETS: dict[str, Config] = {
    "CartPole-v1": Config(
        advantage="gae",
        gamma=0.99,
        gae_lambda=0.95,
        num_envs=8,
        rollout_steps=16,
        actor_lr=2e-3,
        critic_lr=5e-3,
        normalize_advantages=True,
        total_steps=budget("preset/a2c/CartPole-v1"),
    ),
}

SLIDE = Config(advantage="gae", normalize_advantages=False, max_grad_norm=math.inf, reduction="sum")
"""The slide box "A2C + GAE" literally: GAE advantages, lambda-returns as critic targets, both
losses summed over the rollout, no advantage normalisation, no gradient clipping, no entropy
bonus; ``replace(SLIDE, advantage="td")`` is the box "A2C" (TD errors and returns-to-go), which
learns more slowly. The defaults standardise the advantages and clip the gradients, so that the
step size depends neither on the reward scale nor on rare large advantages. Kept from the
defaults although the slides simplify it: the bootstrap at a time-limit truncation (see above).
"""


def advantages_and_targets(
    rewards: Tensor,
    values: Tensor,
    next_values: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    config: Config,
) -> tuple[Tensor, Tensor]:
    """The advantage estimates for the actor and the targets for the critic, in the slide's two
    forms.

    ``advantage="td"`` (slide A2C): TD errors ``delta_t`` and returns-to-go ``G_t``.
    ``advantage="gae"`` (slide A2C + GAE): ``A_t^GAE`` and lambda-returns ``A_t^GAE + v_w(S_t)``
    (eq. 2).
    """
    if config.advantage == "td":
        # Compute returns-to-go G_t; compute TD errors delta_t based on the current critic
        targets = returns_to_go(rewards, next_values, terminated, truncated, config.gamma)
        return td_errors(rewards, values, next_values, terminated, config.gamma), targets
    # Compute advantage estimates A_t^GAE and TD(lambda) targets v_t^lambda = A_t^GAE + v_w(S_t)
    advantages = gae(
        rewards, values, next_values, terminated, truncated, config.gamma, config.gae_lambda
    )
    return advantages, advantages + values


def make_agent(config: Config, env_id: str) -> Agent:
    return make_actor_critic(NAME, config, env_id, critic=True)


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
    """Train A2C on ``env_id``; return the agent and its history.

    ``config`` defaults to the preset for ``env_id`` (or ``Config()``); keyword ``overrides`` change
    single hyperparameters, e.g. ``train("CartPole-v1", advantage="td", total_steps=50_000)``.
    ``out``, ``save_every``, ``resume``: write the run to the folder ``out`` as it trains (every
    ``save_every`` seconds) and continue a stopped one from there (:mod:`rlcourse.saving`).
    """
    config = training_config(Config, PRESETS, env_id, config, overrides)
    seed_everything(config.seed)
    rng = np.random.default_rng(config.seed)  # the actor's sampling noise in the rollouts
    envs = make_vec_env(env_id, config.num_envs)
    obs, _ = envs.reset(seed=config.seed)

    # Initialize the actor parameters theta and the critic parameters w
    agent = make_agent(config, env_id)
    optimizer = make_optimizer(agent, config)
    history = History()
    tracker = EpisodeTracker(config.num_envs, history)
    steps_per_iteration = config.num_envs * config.rollout_steps
    iterations = max(1, config.total_steps // steps_per_iteration)
    bar = progress_bar(iterations * steps_per_iteration, progress, f"A2C ({config.advantage})")
    keeper = RunKeeper(
        agent,
        history,
        dict(optimizer=optimizer, envs=envs, rng=rng, tracker=tracker),
        out,
        save_every,
        resume,
    )
    with torch_threads(config.threads), closing(envs), bar, keeper:
        start = keeper.start(iteration=0, obs=obs)
        obs = start["obs"]
        bar.update(tracker.env_steps)
        # loop for every iteration
        for iteration in range(start["iteration"] + 1, iterations + 1):
            # Collect a rollout of T total timesteps with pi_theta
            rollout, obs = collect_rollout(
                envs,
                agent.policy,
                obs,
                tracker,
                rng,
                num_steps=config.rollout_steps,
                device=config.device,
            )
            # Compute TD errors delta_t, then G_t or A_t^GAE and v_t^lambda, based on the current
            # critic v_w. v_w(S_t) keeps its graph for the critic loss; what is built from it is a
            # constant (the slides' stop-gradient brackets).
            values = agent.critic(rollout.obs)
            with torch.no_grad():
                next_values = agent.critic(rollout.next_obs)
            advantages, targets = advantages_and_targets(
                rollout.rewards,
                values.detach(),
                next_values,
                rollout.terminated,
                rollout.truncated,
                config,
            )
            if config.normalize_advantages:
                advantages = normalize(advantages)

            # Define the actor loss L_actor(theta) = - sum_t log pi_theta(A_t|S_t) [delta_t or
            # A_t^GAE] (an entropy bonus if ent_coef > 0; a mean unless reduction="sum", see Config)
            n = loss_scale(config, advantages)
            pi = agent.policy(rollout.obs)
            log_prob = pi.log_prob(rollout.actions)
            entropy = pi.entropy().mean()
            actor_loss = n * (
                policy_gradient_loss(log_prob, advantages) - config.ent_coef * entropy
            )
            check_finite(history, iteration, actor_loss=actor_loss)
            # Define the critic loss L_critic(w) = 1/2 sum_t (v_w(S_t) - [G_t or v_t^lambda])^2
            value_loss = n * critic_loss(values, targets)
            check_finite(history, iteration, critic_loss=value_loss)

            # Minimize L_actor(theta) + L_critic(w) w.r.t. theta and w with Adam
            optimizer.zero_grad(set_to_none=True)
            (actor_loss + value_loss).backward()
            grad_norm = clip_grad_norms(optimizer, config.max_grad_norm)
            check_finite(history, iteration, actor_gradient_norm=grad_norm)
            optimizer.step()

            stats = update_stats(
                agent,
                rollout.obs,
                rollout.actions,
                log_prob,
                entropy,
                actor_loss,
                grad_norm,
                advantages,
                value_loss,
                values,
                targets,
            )
            history.add_iteration(
                iteration, tracker.env_steps, sps=tracker.env_steps / history.wall_time(), **stats
            )
            bar.update(rollout.num_transitions)
            evaluate_on_schedule(agent, history, tracker.env_steps, config)
            if history.episodes:
                bar.set_postfix(mean_return=f"{history.mean_return():.1f}", refresh=False)
            keeper.tick(iteration=iteration, obs=obs)
        evaluate_on_schedule(agent, history, tracker.env_steps, config, final=True)
    return agent, history
