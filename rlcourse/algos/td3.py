"""TD3: twin delayed deep deterministic policy gradient, with each of its three fixes switchable.

Fujimoto, van Hoof and Meger (2018), "Addressing function approximation error in actor-critic
methods". Slide "Twin Delayed Deep Deterministic Policy Gradient (TD3)", on top of "DDPG Algorithm".

The fixes, as the slide lists them: ``twin`` critics with the min target (against over-estimation),
``policy_delay`` (update the actor and the targets every k critic updates), and ``target_noise``
(target policy smoothing with clipped Gaussian noise). Turning all three off gives DDPG's updates.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from math import nan
from pathlib import Path

import numpy as np
import torch

from rlcourse.algos import offpolicy
from rlcourse.budgets import budget
from rlcourse.config import check_bool, check_field_types, check_positive, param, training_config
from rlcourse.envs import make_vec_env
from rlcourse.nets import polyak_update
from rlcourse.objectives import critic_loss, ddpg_target, td3_target
from rlcourse.rollouts import EpisodeTracker, step_and_store
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

__all__ = ["Config", "PRESETS", "train", "make_agent", "smoothed_target_action"]

NAME = "td3"
LOG_EVERY = 250  # gradient steps between two rows of diagnostics
SUMMARY = (
    "twin delayed DDPG: twin critics, delayed updates, target smoothing (each switchable), "
    "off-policy"
)

# The slides' summary table (rlcourse.catalog builds it from these and from what the code accepts).
CLASS = "actor-critic"
ON_POLICY = False
REFERENCE = (
    'Fujimoto et al. (2018), "Addressing function approximation error in actor-critic methods"'
)


@dataclass
class Config:
    """TD3 hyperparameters; the slides' symbols in brackets."""

    twin: bool = param(True, "fix 1: two critics, the target takes their minimum")
    policy_delay: int = param(2, "fix 2: update actor and targets every k critic updates [k]")
    target_noise: float = param(
        0.2, "fix 3: std of the target policy smoothing noise, times the action scale (0: off)"
    )
    target_noise_clip: float = param(0.5, "clip of the smoothing noise, times the action scale")
    gamma: float = param(0.99, "discount factor [gamma]")
    rho: float = param(0.995, "target networks: theta- <- rho theta- + (1 - rho) theta [rho]")
    actor_lr: float = param(1e-3, "Adam learning rate of the actor [theta]")
    critic_lr: float = param(1e-3, "Adam learning rate of the critics [w]")
    exploration_noise: float = param(
        0.1, "std of the Gaussian exploration noise [epsilon], times the action scale"
    )
    buffer_size: int = param(200_000, "capacity N of the replay buffer")
    batch_size: int = param(256, "minibatch size")
    learning_starts: int = param(1_000, "env steps of random actions before learning starts")
    num_envs: int = param(1, "environments stepped in parallel")
    total_steps: int = param(20_000, "environment steps for the whole run")
    hidden: tuple = param((256, 256), "hidden layer sizes of actor and critics")
    seed: int = param(0, "random seed")
    eval_every: int = param(0, "env steps between greedy evaluations during training (0: none)")
    eval_episodes: int = param(10, "episodes per greedy evaluation")
    device: str = param("cpu", "'cpu' or 'cuda'")
    threads: int = param(1, "torch threads during training (1 is fastest for small networks)")

    def __post_init__(self):
        check_field_types(self)  # first: the checks below compare and multiply the values
        check_bool("twin", self.twin)
        check_positive("policy_delay", self.policy_delay, integer=True)
        check_positive("target_noise", self.target_noise, zero_ok=True)
        check_positive("target_noise_clip", self.target_noise_clip, zero_ok=True)
        offpolicy.check_deterministic_config(self)


# Known to solve the environment: `python -m benchmarks presets --algo td3` trains seeds 0, 1, 2
# and prints the env steps and seconds at which each reaches the threshold. Networks of 64 units
# learn Pendulum as fast as the paper's larger ones, at a fraction of the cost.
PRESETS: dict[str, Config] = {
    "Pendulum-v1": Config(hidden=(64, 64), total_steps=budget("preset/td3/Pendulum-v1"))
}

SLIDE = Config(learning_starts=0)
"""The slide "TD3" on the box "DDPG Algorithm" literally: all three fixes, and from the first step
actions ``mu_theta(S) + epsilon`` and one critic step per env step. The default fills the buffer
with random actions first, as Fujimoto et al. do.
"""


def make_agent(config: Config, env_id: str) -> Agent:
    return offpolicy.make_agent(NAME, config, env_id, num_critics=2 if config.twin else 1)


def smoothed_target_action(
    actor_target, next_obs, config: Config, *, epsilon: torch.Tensor | None = None
) -> torch.Tensor:
    """Fix 3, target policy smoothing: ``mu_{theta-}(S') + clip(epsilon, -c, c)``, clipped to the
    action bounds, with ``epsilon ~ N(0, sigma^2)`` (Fujimoto et al. 2018, eq. 14; slide "TD3").

    ``sigma`` is ``config.target_noise`` and ``c`` is ``config.target_noise_clip``, both times the
    action scale ``(high - low) / 2``. ``epsilon``: the noise before clipping, in action units;
    drawn as ``torch.randn_like(action) * target_noise * scale`` when ``None`` (and then no noise at
    all when ``target_noise == 0``). Pass it to get the target action for a given noise.
    """
    action = actor_target(next_obs)
    if epsilon is None:
        if config.target_noise == 0:
            return action
        epsilon = torch.randn_like(action) * config.target_noise * actor_target.scale
    scale, center = actor_target.scale, actor_target.center
    noise = epsilon.clamp(-config.target_noise_clip * scale, config.target_noise_clip * scale)
    return torch.maximum(torch.minimum(action + noise, center + scale), center - scale)


def train(
    env_id: str = "Pendulum-v1",
    config: Config | None = None,
    progress: bool = True,
    *,
    out: str | Path | None = None,
    save_every: float = 60.0,
    resume: bool = False,
    **overrides,
) -> tuple[Agent, History]:
    """Train TD3 on ``env_id``; return the agent and its history (``out``, ``save_every``,
    ``resume``: see :func:`rlcourse.algos.a2c.train`)."""
    config = training_config(Config, PRESETS, env_id, config, overrides)
    seed_everything(config.seed)
    rng = np.random.default_rng(config.seed)
    envs = make_vec_env(env_id, config.num_envs)
    obs, _ = envs.reset(seed=config.seed)

    # Initialize B, the actor theta and the critics w^1, w^2, and their targets theta- <- theta, w-
    # <- w
    agent = make_agent(config, env_id)
    learner = offpolicy.make_learner(agent, envs, config)
    actor, critics, buffer = learner.actor, learner.critics, learner.buffer
    space = envs.single_action_space
    history = History()
    tracker = EpisodeTracker(config.num_envs, history)
    bar = progress_bar(config.total_steps, progress, "TD3")
    keeper = RunKeeper(
        agent,
        history,
        dict(learner=learner, envs=envs, rng=rng, tracker=tracker),
        out,
        save_every,
        resume,
    )
    with torch_threads(config.threads), closing(envs), bar, keeper:
        start = keeper.start(obs=obs, updates=0)
        obs, updates = start["obs"], start["updates"]
        bar.update(tracker.env_steps)
        act = actor.numpy_sampler(rng, config.exploration_noise)
        while tracker.env_steps < config.total_steps:
            keeper.tick(obs=obs, updates=updates)
            # Observe the state S and select action A = mu_theta(S) + epsilon, epsilon ~ N
            # (act: mu_theta plus Gaussian noise, in NumPy; random actions before learning_starts)
            if tracker.env_steps < config.learning_starts:
                actions = offpolicy.random_actions(space, config.num_envs, rng)
            else:
                actions = act(obs)
            # Execute A, observe R and S', store (S, A, R, S') in B
            obs = step_and_store(envs, obs, actions, buffer, tracker)
            bar.update(config.num_envs)
            evaluate_on_schedule(agent, history, tracker.env_steps, config)
            if tracker.env_steps < config.learning_starts:
                continue
            for _ in range(config.num_envs):  # one gradient step per env step
                # Sample a random minibatch of transitions from B
                batch = buffer.sample(config.batch_size)
                # Compute the targets y_j with the target networks (and smoothing noise)
                with torch.no_grad():
                    next_action = smoothed_target_action(
                        learner.actor_target, batch.next_obs, config
                    )
                    # both critics in one call
                    next_q = learner.critics_target(batch.next_obs, next_action)
                    if config.twin:
                        y = td3_target(
                            batch.rewards, next_q[0], next_q[1], batch.terminated, config.gamma
                        )
                    else:
                        y = ddpg_target(batch.rewards, next_q[0], batch.terminated, config.gamma)
                # Gradient descent step on 1/2 (y_j - q_w^i(S_j, A_j))^2 w.r.t. w^i, for both
                # critics
                q_loss = sum(critic_loss(q, y) for q in critics(batch.obs, batch.actions))
                check_finite(history, updates, critic_loss=q_loss)
                learner.critic_opt.zero_grad(set_to_none=True)
                q_loss.backward()
                learner.critic_opt.step()
                updates += 1
                # Every k updates: gradient ascent on q_w^1(S_j, mu_theta(S_j)) w.r.t. theta (the
                # first critic alone, as Fujimoto et al.), then the target networks
                if updates % config.policy_delay == 0:
                    with offpolicy.frozen(critics):  # the gradient flows through q_w into A, not w
                        pi_loss = -critics(batch.obs, actor(batch.obs), first=1)[0].mean()
                    check_finite(history, updates, actor_loss=pi_loss)
                    learner.actor_opt.zero_grad(set_to_none=True)
                    pi_loss.backward()
                    learner.actor_opt.step()
                    polyak_update(learner.actor_target, actor, config.rho)
                    polyak_update(learner.critics_target, critics, config.rho)
            act = actor.numpy_sampler(rng, config.exploration_noise)
            if updates % LOG_EVERY < config.num_envs:
                history.add_iteration(
                    updates,
                    tracker.env_steps,
                    critic_loss=float(q_loss.detach()),
                    actor_loss=float(pi_loss.detach()) if updates >= config.policy_delay else nan,
                    sps=tracker.env_steps / history.wall_time(),
                )
                if history.episodes:
                    bar.set_postfix(mean_return=f"{history.mean_return(10):.1f}", refresh=False)
        keeper.tick(obs=obs, updates=updates)
        evaluate_on_schedule(agent, history, tracker.env_steps, config, final=True)
    return agent, history
