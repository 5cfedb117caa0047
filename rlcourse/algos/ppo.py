"""PPO: proximal policy optimisation, with the clipped objective or the adaptive KL penalty.

Schulman, Wolski, Dhariwal, Radford and Klimov (2017), "Proximal policy optimization algorithms".
Slides: "From TRPO to PPO" (both possibilities) and "PPO Algorithm with Clipping" (the box this loop
follows).

``objective="clip"`` (the slide's box, the paper's ``L^CLIP``): the actor maximises ``mean_t
min(omega_t A_t, clip(omega_t, 1 - eps, 1 + eps) A_t)`` with ``omega_t = pi_theta'(A_t|S_t) /
pi_theta(A_t|S_t)``, the ratio of the policy being optimised to the one that collected the rollout.
``objective="kl"`` (the slides' "first possibility"): it maximises ``mean_t omega_t A_t - lambda_k
mean_t KL(pi_theta'(.|S_t) || pi_theta(.|S_t))``, and after each iteration ``lambda_k`` is halved if
the KL came out below ``kl_target / 1.5`` and doubled if above ``1.5 kl_target`` (the paper's
heuristic). The KL is the slide's, new policy first; the paper's eq. 8 penalises the reverse,
``KL(pi_theta_old || pi_theta)``, old policy first (both are 0 exactly when the policy has not
moved and agree to second order near it).

The slide's box sums over the rollout (``L_actor = - sum_t ...``, ``L_critic = 1/2 sum_t ...``); by
default the code averages over each minibatch (``reduction="mean"``), which only rescales the
gradients (and Adam's steps hardly depend on the scale). Both run ``epochs`` passes over the rollout
in minibatches (shuffled, when there are several): every pass after the first reuses data of a
policy that has since moved, which is what the ratio corrects for ("on-policy only in its
single-epoch version", the summary table's asterisk). The details that make PPO work in practice and
that the slides leave out are options with their usual defaults: advantage normalisation, gradient
clipping, orthogonal initialisation, Adam's ``eps``; :data:`SLIDE` turns them all off.
"""

from __future__ import annotations

import copy
import math
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.distributions import kl_divergence

from rlcourse.algos.common import (
    check_on_policy_config,
    clip_grad_norms,
    gae_batch,
    loss_scale,
    make_actor_critic,
    make_optimizer,
    minibatches,
)
from rlcourse.budgets import budget
from rlcourse.config import (
    check_bool,
    check_choice,
    check_field_types,
    check_positive,
    check_unit_interval,
    param,
    training_config,
)
from rlcourse.diagnostics import approx_kl, clip_fraction, explained_variance
from rlcourse.envs import make_vec_env
from rlcourse.objectives import clipped_surrogate, critic_loss, importance_weights
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

__all__ = ["Config", "PRESETS", "PRESETS_KL", "train", "make_agent", "adapt_kl_coef"]

NAME = "ppo"
SUMMARY = (
    "proximal policy optimisation: clipped objective or adaptive KL penalty, GAE, several epochs"
)

# The slides' summary table (rlcourse.catalog builds it from these and from what the code accepts).
CLASS = "trust-region actor-critic"
ON_POLICY = True
REFERENCE = 'Schulman et al. (2017), "Proximal policy optimization algorithms"'


@dataclass
class Config:
    """PPO hyperparameters; the slides' symbols in brackets."""

    objective: str = param(
        "clip", "'clip' (the slide's box) or 'kl' (adaptive KL penalty, the first possibility)"
    )
    clip_eps: float = param(
        0.2, "clipping range [epsilon]: the ratio is clipped to [1 - eps, 1 + eps]"
    )
    kl_target: float = param(0.01, "objective='kl': the KL per iteration lambda_k steers towards")
    kl_coef: float = param(1.0, "objective='kl': the initial penalty weight [lambda_0]")
    gamma: float = param(0.99, "discount factor [gamma], in [0, 1]")
    gae_lambda: float = param(0.95, "GAE's [lambda], in [0, 1]")
    num_envs: int = param(8, "environments stepped in parallel")
    rollout_steps: int = param(
        128, "steps per environment in one rollout; T = num_envs * rollout_steps"
    )
    epochs: int = param(
        10, "passes over each rollout (1: on-policy, as the summary table's asterisk says)"
    )
    minibatches: int = param(4, "minibatches per epoch (each of T / minibatches transitions)")
    total_steps: int = param(200_000, "environment steps for the whole run")
    actor_lr: float = param(3e-4, "Adam learning rate of the actor [theta]")
    critic_lr: float = param(1e-3, "Adam learning rate of the critic [w]")
    adam_eps: float = param(
        1e-5, "Adam's epsilon (1e-5 in the PPO implementations, PyTorch's default is 1e-8)"
    )
    hidden: tuple = param((64, 64), "hidden layer sizes of actor and critic")
    ortho_init: bool = param(
        True, "orthogonal initialisation (False: PyTorch's default initialisation)"
    )
    normalize_advantages: bool = param(
        True, "standardise the advantages of each rollout (not on the slide)"
    )
    reduction: str = param(
        "mean", "'mean' of the losses over a minibatch, or 'sum' as on the slide"
    )
    ent_coef: float = param(
        0.0, "weight of an entropy bonus in the actor loss (0 = the slide's loss)"
    )
    max_grad_norm: float = param(
        0.5, "clip each network's gradient norm to this (inf: no clipping)"
    )
    log_std_init: float = param(0.0, "initial log standard deviation of a Gaussian policy")
    seed: int = param(0, "random seed")
    eval_every: int = param(0, "env steps between greedy evaluations during training (0: none)")
    eval_episodes: int = param(10, "episodes per greedy evaluation")
    device: str = param("cpu", "'cpu' or 'cuda'")
    threads: int = param(1, "torch threads during training (1 is fastest for small networks)")

    def __post_init__(self):
        check_field_types(self)  # first: the checks below compare and multiply the values
        check_choice("objective", self.objective, ("clip", "kl"))
        if not 0.0 < self.clip_eps < 1.0:
            raise ValueError(
                f"clip_eps={self.clip_eps!r} is not allowed: clip_eps must be in (0, 1)"
            )
        check_positive("kl_target", self.kl_target)
        check_positive("kl_coef", self.kl_coef, zero_ok=True)
        check_unit_interval("gae_lambda", self.gae_lambda)
        for name in ("num_envs", "rollout_steps", "epochs", "minibatches"):
            check_positive(name, getattr(self, name), integer=True)
        if self.minibatches > self.num_envs * self.rollout_steps:
            raise ValueError(
                f"minibatches={self.minibatches} is not allowed: a rollout has only "
                "num_envs * rollout_steps = "
                f"{self.num_envs * self.rollout_steps} transitions to split"
            )
        check_positive("adam_eps", self.adam_eps)
        check_bool("ortho_init", self.ortho_init)
        check_on_policy_config(self)


# Known to solve the environment: `python -m benchmarks presets --algo ppo` trains seeds 0, 1, 2
# and prints the env steps and seconds at which each reaches the threshold. CartPole-v1: fifteen
# epochs at a higher actor rate take fewer steps than the defaults (ten epochs) and less wall time
# than thirty; a critic rate of 3e-3 instead of 1e-3 (2e-3 to 5e-3 do about as well) takes a
# quarter fewer env steps in the median and 24,568 instead of 43,912 with the worst seed
# (seeds 0-19: benchmarks/results/ppo_preset_variants). Pendulum-v1: rl-zoo's PPO settings for
# it, without gSDE (gamma 0.9, long rollouts, small minibatches). PPO with the adaptive KL penalty
# has its own preset below.
PRESETS: dict[str, Config] = {
    "CartPole-v1": Config(
        epochs=15, actor_lr=1e-3, critic_lr=3e-3, total_steps=budget("preset/ppo/CartPole-v1")
    ),
    "Pendulum-v1": Config(
        num_envs=4,
        rollout_steps=1024,
        gamma=0.9,
        gae_lambda=0.95,
        actor_lr=1e-3,
        critic_lr=1e-3,
        epochs=10,
        minibatches=64,
        total_steps=budget("preset/ppo/Pendulum-v1"),
    ),
}

SLIDE = Config(
    normalize_advantages=False,
    max_grad_norm=math.inf,
    reduction="sum",
    minibatches=1,
    ortho_init=False,
    adam_eps=1e-8,
)
"""The slide box "PPO Algorithm with Clipping" literally: ``L_actor + L_critic`` summed over the
whole rollout, minimised by full-batch gradient steps for ``epochs`` epochs ("one or more"), no
advantage normalisation, no gradient clipping, PyTorch's initialisation and Adam. The defaults
are the details that make PPO work in practice (Engstrom et al. 2020, "Implementation matters in
deep policy gradients"): minibatches, standardised advantages, clipped gradients, orthogonal
initialisation, Adam's ``eps = 1e-5``.
"""


# PPO-KL, the slides' first possibility, with the package defaults (`python -m benchmarks
# trust-region --algo ppo-kl` trains it on CartPole-v1 and prints when it reaches 475).
PRESETS_KL: dict[str, Config] = {
    "CartPole-v1": Config(objective="kl", total_steps=budget("preset/ppo_kl/CartPole-v1"))
}


def make_agent(config: Config, env_id: str) -> Agent:
    agent = make_actor_critic(NAME, config, env_id, critic=True)
    if not config.ortho_init:
        for module in (*agent.policy.modules(), *agent.critic.modules()):
            if isinstance(module, nn.Linear):
                module.reset_parameters()
    return agent


def adapt_kl_coef(kl_coef: float, kl: float, kl_target: float) -> float:
    """The paper's heuristic for ``lambda_k``: halve it if ``kl < kl_target / 1.5``, double it if
    ``kl > 1.5 kl_target``, else keep it (Schulman et al. 2017, section 4)."""
    if kl < kl_target / 1.5:
        return kl_coef / 2
    if kl > kl_target * 1.5:
        return kl_coef * 2
    return kl_coef


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
    """Train PPO on ``env_id``; return the agent and its history (``out``, ``save_every``,
    ``resume``: see :func:`rlcourse.algos.a2c.train`)."""
    config = training_config(Config, PRESETS, env_id, config, overrides)
    seed_everything(config.seed)
    rng = np.random.default_rng(config.seed)
    envs = make_vec_env(env_id, config.num_envs)
    obs, _ = envs.reset(seed=config.seed)

    # Initialize the actor parameters theta and the critic parameters w
    agent = make_agent(config, env_id)
    policy, critic = agent.policy, agent.critic
    optimizer = make_optimizer(agent, config, eps=config.adam_eps)
    history = History()
    tracker = EpisodeTracker(config.num_envs, history)
    batch_size = config.num_envs * config.rollout_steps
    iterations = max(1, config.total_steps // batch_size)
    kl_coef = config.kl_coef
    bar = progress_bar(iterations * batch_size, progress, f"PPO ({config.objective})")
    stateful = dict(optimizer=optimizer, envs=envs, rng=rng, tracker=tracker)
    keeper = RunKeeper(agent, history, stateful, out, save_every, resume)
    with torch_threads(config.threads), closing(envs), bar, keeper:
        start = keeper.start(iteration=0, obs=obs, kl_coef=kl_coef)
        obs, kl_coef = start["obs"], start["kl_coef"]
        bar.update(tracker.env_steps)
        # loop for every iteration
        for iteration in range(start["iteration"] + 1, iterations + 1):
            # Collect a rollout of T total timesteps with pi_theta
            rollout, obs = collect_rollout(
                envs,
                policy,
                obs,
                tracker,
                rng,
                num_steps=config.rollout_steps,
                device=config.device,
            )
            # Compute value targets y_t and advantage estimates A_t with GAE based on the current
            # critic v_w
            states, actions, advantages, targets = gae_batch(critic, rollout, config)
            # pi_theta, the policy that collected the data, stays fixed for the whole iteration
            with torch.no_grad():
                old_log_prob = policy(states).log_prob(actions)
            old_policy = (
                copy.deepcopy(policy).requires_grad_(False) if config.objective == "kl" else None
            )

            # Minimize L_actor(theta') + L_critic(w) by gradient descent, several epochs of
            # minibatches
            ratios = []  # of every minibatch, for the clip fraction
            for _ in range(config.epochs):
                for mb_states, mb_actions, A, mb_old_log_prob, y in minibatches(
                    config.minibatches, states, actions, advantages, old_log_prob, targets
                ):
                    # 1: the mean; the minibatch's size: the slide's sum
                    n = loss_scale(config, A)
                    # L_actor(theta') = - sum_t min(omega_t A_t, clip(omega_t, 1-eps, 1+eps) A_t)
                    pi = policy(mb_states)
                    ratio = importance_weights(pi.log_prob(mb_actions), mb_old_log_prob)
                    if config.objective == "clip":
                        actor_loss = -n * clipped_surrogate(ratio, A, config.clip_eps).mean()
                    else:
                        # KL(pi_theta' || pi_theta), the slide's direction
                        kl = kl_divergence(pi, old_policy(mb_states)).mean()
                        actor_loss = n * (-(ratio * A).mean() + kl_coef * kl)
                    # The bonus needs the entropy here; the diagnostics compute it below
                    if config.ent_coef > 0:
                        actor_loss = actor_loss - n * config.ent_coef * pi.entropy().mean()
                    # Define L_critic(w) = 1/2 sum_t (v_w(S_t) - y_t)^2
                    value_loss = n * critic_loss(critic(mb_states), y)
                    check_finite(history, iteration, actor_loss=actor_loss, critic_loss=value_loss)
                    # Minimize L_actor(theta') + L_critic(w) w.r.t. theta' and w (a step of Adam)
                    optimizer.zero_grad(set_to_none=True)
                    (actor_loss + value_loss).backward()
                    grad_norm = clip_grad_norms(optimizer, config.max_grad_norm)
                    optimizer.step()
                    ratios.append(ratio.detach())

            # Diagnostics of the whole update: how far the policy moved, how often the clip was
            # active
            with torch.no_grad():
                pi = policy(states)
                kl_estimate = approx_kl(old_log_prob, pi.log_prob(actions))
                values = critic(states)
            stats = dict(
                actor_loss=float(actor_loss.detach()),
                critic_loss=float(value_loss.detach()),
                entropy=float(pi.entropy().mean()),  # of the updated policy, over the whole rollout
                approx_kl=kl_estimate,
                clip_fraction=clip_fraction(torch.cat(ratios), config.clip_eps),
                explained_variance=explained_variance(values, targets),
                grad_norm=float(grad_norm),
            )
            if config.objective == "kl":
                with torch.no_grad():  # the penalty's own KL, exact, over the whole rollout
                    kl_exact = float(kl_divergence(policy(states), old_policy(states)).mean())
                stats.update(kl_coef=kl_coef, kl=kl_exact)
                kl_coef = adapt_kl_coef(kl_coef, kl_exact, config.kl_target)
            history.add_iteration(
                iteration, tracker.env_steps, sps=tracker.env_steps / history.wall_time(), **stats
            )
            bar.update(rollout.num_transitions)
            evaluate_on_schedule(agent, history, tracker.env_steps, config)
            if history.episodes:
                bar.set_postfix(mean_return=f"{history.mean_return():.1f}", refresh=False)
            keeper.tick(iteration=iteration, obs=obs, kl_coef=kl_coef)
        evaluate_on_schedule(agent, history, tracker.env_steps, config, final=True)
    return agent, history
