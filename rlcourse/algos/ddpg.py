"""DDPG: deep deterministic policy gradient, as in the slide's box.

Lillicrap et al. (2015), "Continuous control with deep reinforcement learning", on the deterministic
policy gradient theorem of Silver et al. (2014). Slides: "Deterministic Policy Gradient Theorem",
"(Deep) Deterministic Policy Gradient", "DDPG Algorithm". TD3 (:mod:`rlcourse.algos.td3`) adds
three fixes to this loop.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rlcourse.algos import offpolicy
from rlcourse.budgets import budget
from rlcourse.config import check_field_types, param, training_config
from rlcourse.envs import make_vec_env
from rlcourse.nets import polyak_update
from rlcourse.objectives import critic_loss, ddpg_target
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

__all__ = ["Config", "PRESETS", "train", "make_agent"]

NAME = "ddpg"
LOG_EVERY = 250  # gradient steps between two rows of diagnostics
SUMMARY = "deep deterministic policy gradient (replay buffer, target actor and critic), off-policy"

# The slides' summary table (rlcourse.catalog builds it from these and from what the code accepts).
CLASS = "actor-critic"
ON_POLICY = False
REFERENCE = 'Lillicrap et al. (2015), "Continuous control with deep reinforcement learning"'


@dataclass
class Config:
    """DDPG hyperparameters; the slides' symbols in brackets."""

    gamma: float = param(0.99, "discount factor [gamma]")
    rho: float = param(0.995, "target networks: theta- <- rho theta- + (1 - rho) theta [rho]")
    actor_lr: float = param(1e-3, "Adam learning rate of the actor [theta]")
    critic_lr: float = param(1e-3, "Adam learning rate of the critic [w]")
    exploration_noise: float = param(
        0.1, "std of the Gaussian exploration noise [epsilon], times the action scale"
    )
    buffer_size: int = param(200_000, "capacity N of the replay buffer")
    batch_size: int = param(256, "minibatch size")
    learning_starts: int = param(1_000, "env steps of random actions before learning starts")
    num_envs: int = param(1, "environments stepped in parallel")
    total_steps: int = param(20_000, "environment steps for the whole run")
    hidden: tuple = param((256, 256), "hidden layer sizes of actor and critic")
    seed: int = param(0, "random seed")
    eval_every: int = param(0, "env steps between greedy evaluations during training (0: none)")
    eval_episodes: int = param(10, "episodes per greedy evaluation")
    device: str = param("cpu", "'cpu' or 'cuda'")
    threads: int = param(1, "torch threads during training (1 is fastest for small networks)")

    def __post_init__(self):
        check_field_types(self)  # first: the checks below compare and multiply the values
        offpolicy.check_deterministic_config(self)


# Known to solve the environment: `python -m benchmarks presets --algo ddpg` trains seeds 0, 1, 2
# and prints the env steps and seconds at which each reaches the threshold. Networks of 64 units
# learn Pendulum as fast as the paper's larger ones, at a fraction of the cost.
PRESETS: dict[str, Config] = {
    "Pendulum-v1": Config(hidden=(64, 64), total_steps=budget("preset/ddpg/Pendulum-v1"))
}

SLIDE = Config(learning_starts=0)
"""The slide box "DDPG Algorithm" literally: from the first step, act with
``mu_theta(S) + epsilon`` and take one gradient step per env step (the first minibatches repeat
the few transitions stored). The default fills the buffer with random actions first, as
Lillicrap et al. do, so the first updates see varied data.
"""


def make_agent(config: Config, env_id: str) -> Agent:
    return offpolicy.make_agent(NAME, config, env_id, num_critics=1)


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
    """Train DDPG on ``env_id``; return the agent and its history (``out``, ``save_every``,
    ``resume``: see :func:`rlcourse.algos.a2c.train`)."""
    config = training_config(Config, PRESETS, env_id, config, overrides)
    seed_everything(config.seed)
    rng = np.random.default_rng(config.seed)
    envs = make_vec_env(env_id, config.num_envs)
    obs, _ = envs.reset(seed=config.seed)

    # Initialize the replay buffer B with capacity N, the actor theta and the critic w,
    # and the target networks theta- <- theta, w- <- w
    agent = make_agent(config, env_id)
    learner = offpolicy.make_learner(agent, envs, config)
    actor, critics, buffer = learner.actor, learner.critics, learner.buffer
    space = envs.single_action_space
    history = History()
    tracker = EpisodeTracker(config.num_envs, history)
    bar = progress_bar(config.total_steps, progress, "DDPG")
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
        # loop for every iteration
        while tracker.env_steps < config.total_steps:
            keeper.tick(obs=obs, updates=updates)
            # Observe the state S and select action A = mu_theta(S) + epsilon, epsilon ~ N
            # (act: mu_theta plus Gaussian noise, in NumPy; random actions before learning_starts)
            if tracker.env_steps < config.learning_starts:
                actions = offpolicy.random_actions(space, config.num_envs, rng)
            else:
                actions = act(obs)
            # Execute A and observe S' and R; store (S, A, R, S') in B
            obs = step_and_store(envs, obs, actions, buffer, tracker)
            bar.update(config.num_envs)
            evaluate_on_schedule(agent, history, tracker.env_steps, config)
            if tracker.env_steps < config.learning_starts:
                continue
            for _ in range(config.num_envs):  # one gradient step per env step
                # Sample a random minibatch of transitions (S_j, A_j, R_{j+1}, S_{j+1}) from B
                batch = buffer.sample(config.batch_size)
                # Compute the targets y_j = R_{j+1} + gamma q_{w-}(S_{j+1}, mu_{theta-}(S_{j+1}))
                # (R_{j+1} if terminal)
                with torch.no_grad():
                    next_q = learner.critics_target(
                        batch.next_obs, learner.actor_target(batch.next_obs)
                    )[0]
                    y = ddpg_target(batch.rewards, next_q, batch.terminated, config.gamma)
                # Perform a gradient descent step on 1/2 (y_j - q_w(S_j, A_j))^2 w.r.t. w
                q_loss = critic_loss(critics(batch.obs, batch.actions)[0], y)
                check_finite(history, updates, critic_loss=q_loss)
                learner.critic_opt.zero_grad(set_to_none=True)
                q_loss.backward()
                learner.critic_opt.step()
                # Perform a gradient ascent step on q_w(S_j, mu_theta(S_j)) w.r.t. theta
                with offpolicy.frozen(critics):  # the gradient flows through q_w into A, not into w
                    pi_loss = -critics(batch.obs, actor(batch.obs))[0].mean()
                check_finite(history, updates, actor_loss=pi_loss)
                learner.actor_opt.zero_grad(set_to_none=True)
                pi_loss.backward()
                learner.actor_opt.step()
                # Update the target networks theta- <- rho theta- + (1 - rho) theta
                # and w- <- rho w- + (1 - rho) w
                polyak_update(learner.actor_target, actor, config.rho)
                polyak_update(learner.critics_target, critics, config.rho)
                updates += 1
            act = actor.numpy_sampler(rng, config.exploration_noise)
            if updates % LOG_EVERY < config.num_envs:
                history.add_iteration(
                    updates,
                    tracker.env_steps,
                    critic_loss=float(q_loss.detach()),
                    actor_loss=float(pi_loss.detach()),
                    sps=tracker.env_steps / history.wall_time(),
                )
                if history.episodes:
                    bar.set_postfix(mean_return=f"{history.mean_return(10):.1f}", refresh=False)
        keeper.tick(obs=obs, updates=updates)
        evaluate_on_schedule(agent, history, tracker.env_steps, config, final=True)
    return agent, history
