"""What the off-policy actor-critics share that is not a line of a slide box: DDPG's and TD3's
config checks and networks, the learner state (online and target networks, optimisers, replay
buffer) of DDPG, TD3 and SAC, the random warm-up actions, and freezing the critics for an actor
step.

The slide boxes' lines (acting, targets, losses, gradient steps, target updates) stay in
:mod:`rlcourse.algos.ddpg`, :mod:`rlcourse.algos.td3` and :mod:`rlcourse.algos.sac`, each in the
order of its box.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlcourse.algos.common import check_common_config
from rlcourse.buffers import ReplayBuffer
from rlcourse.config import check_positive, check_unit_interval
from rlcourse.envs import make_env
from rlcourse.nets import DeterministicPolicy, QEnsemble, obs_dim
from rlcourse.optim import Adam
from rlcourse.training import Agent

__all__ = [
    "check_deterministic_config",
    "check_replay",
    "make_agent",
    "Learner",
    "make_learner",
    "frozen",
    "random_actions",
]


def check_deterministic_config(config: Any) -> None:
    check_common_config(config)
    check_unit_interval("rho", config.rho)
    check_positive("actor_lr", config.actor_lr)
    check_positive("critic_lr", config.critic_lr)
    check_positive("exploration_noise", config.exploration_noise, zero_ok=True)
    check_replay(config)


def check_replay(config: Any) -> None:
    """Buffer and batch sizes of every off-policy algorithm: a minibatch is drawn from the buffer,
    so it cannot be larger than the buffer can ever hold. (Until the buffer holds ``batch_size``
    transitions, a minibatch repeats some: they are drawn with replacement.)"""
    for name in ("buffer_size", "batch_size"):
        check_positive(name, getattr(config, name), integer=True)
    if config.batch_size > config.buffer_size:
        raise ValueError(
            f"batch_size={config.batch_size!r} is not allowed: a minibatch is drawn from the "
            f"replay buffer, so batch_size must be at most buffer_size={config.buffer_size}"
        )
    check_positive("learning_starts", config.learning_starts, integer=True, zero_ok=True)


def make_agent(algo: str, config: Any, env_id: str, num_critics: int) -> Agent:
    """``mu_theta`` for the environment's Box action space and ``num_critics`` critics ``q_w`` (one
    ensemble)."""
    env = make_env(env_id)
    try:
        space = env.action_space
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1 or not space.is_bounded():
            raise ValueError(
                f"{algo} cannot handle the action space {space}: a deterministic policy gradient "
                "needs continuous actions in bounds (a flat, bounded Box); for finite action sets "
                "use dqn, a2c or sac"
            )
        n = obs_dim(env.observation_space)
        actor = DeterministicPolicy(n, space.low, space.high, config.hidden)
        critics = QEnsemble(n, config.hidden, num_critics, act_size=space.shape[0])
    finally:
        env.close()
    return Agent(
        algo=algo,
        env_id=env_id,
        config=config,
        policy=actor.to(config.device),
        critic=critics.to(config.device),
    )


@dataclass
class Learner:
    """The online networks, their targets, optimisers and the replay buffer of one run."""

    actor: nn.Module
    critics: QEnsemble
    actor_target: nn.Module | None
    critics_target: QEnsemble
    actor_opt: torch.optim.Optimizer
    critic_opt: torch.optim.Optimizer
    buffer: ReplayBuffer


def make_learner(
    agent: Agent, envs: gym.vector.VectorEnv, config: Any, actor_target: bool = True
) -> Learner:
    """Targets theta- <- theta (if ``actor_target``; SAC has none) and w- <- w, Adam for actor and
    critics, an empty buffer B for the environment's actions."""
    space = envs.single_action_space
    discrete = isinstance(space, gym.spaces.Discrete)
    return Learner(
        actor=agent.policy,
        critics=agent.critic,
        actor_target=copy.deepcopy(agent.policy).requires_grad_(False) if actor_target else None,
        critics_target=copy.deepcopy(agent.critic).requires_grad_(False),
        actor_opt=Adam(agent.policy.parameters(), lr=config.actor_lr),
        critic_opt=Adam(agent.critic.parameters(), lr=config.critic_lr),
        buffer=ReplayBuffer(
            config.buffer_size,
            envs.single_observation_space.shape,
            () if discrete else space.shape,
            torch.long if discrete else torch.float32,
            config.device,
        ),
    )


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Compute through ``module`` without gradients for its own parameters (then restore them)."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def random_actions(space: gym.Space, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uniformly random actions of ``space`` (Discrete or a bounded Box): what the off-policy
    algorithms do before ``learning_starts`` env steps, to fill the buffer (not on the slides)."""
    if isinstance(space, gym.spaces.Discrete):
        return rng.integers(space.n, size=n)
    return rng.uniform(space.low, space.high, (n, *space.shape)).astype(np.float32)
