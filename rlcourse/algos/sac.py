"""SAC: soft actor-critic, for continuous actions and in its discrete variant.

Haarnoja et al. (2018), "Soft actor-critic: off-policy maximum entropy deep reinforcement learning
with a stochastic actor" (with the automatic temperature of their follow-up paper); Christodoulou
(2019), "Soft actor-critic for discrete action settings". Slides: "Entropy-Regularized RL",
"Soft Actor-Critic", "Soft Actor-Critic Algorithm". The slides call the temperature lambda; the code
calls it ``alpha``, as the papers do.

Continuous actions: a tanh-squashed Gaussian actor, soft critics ``q_w(s, a)``, the soft target
``y = R + gamma (min_i q_{w-}^i(S', A') - alpha log pi(A'|S'))`` with ``A' ~ pi(.|S')``, and the
actor minimising ``E[alpha log pi(A|S) - min_i q_w^i(S, A)]``, the slide's KL up to a constant.
Finite actions: the critics give ``q_w(s, .)`` for every action, so the expectations over ``A'``
and ``A`` are exact sums weighted by ``pi`` instead of single samples.

One loop, :func:`train`, holds the box's lines in the box's order for both. The four places where
the variants differ (the entropy target, the soft targets ``y_j``, the critics' values
``q_w(S_j, A_j)``, the actor's loss) are two small functions each, ``continuous_*`` and
``discrete_*`` side by side below, gathered in :data:`CONTINUOUS` and :data:`DISCRETE`; ``train``
picks one by the action space and calls ``variant.soft_targets(...)`` where the box says "Compute
the targets". Two loops would repeat every other line of the box.

The slide has one critic and a fixed temperature (:data:`SLIDE`); the defaults take the minimum
of two critics (``twin``, as TD3) and tune ``alpha`` to an entropy target (``autotune``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from rlcourse.algos import offpolicy
from rlcourse.algos.common import check_common_config
from rlcourse.algos.offpolicy import Learner, frozen
from rlcourse.budgets import budget
from rlcourse.buffers import Batch
from rlcourse.config import (
    check_bool,
    check_field_types,
    check_positive,
    check_unit_interval,
    param,
    training_config,
)
from rlcourse.envs import make_env, make_vec_env
from rlcourse.nets import CategoricalPolicy, QEnsemble, TanhGaussianPolicy, obs_dim, polyak_update
from rlcourse.objectives import critic_loss, soft_td_target
from rlcourse.optim import Adam
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

NAME = "sac"
LOG_EVERY = 250  # gradient steps between two rows of diagnostics
SUMMARY = (
    "soft actor-critic, continuous (tanh-Gaussian) or discrete actions, fixed or tuned "
    "temperature, off-policy"
)

# The slides' summary table (rlcourse.catalog builds it from these and from what the code accepts).
CLASS = "actor-critic"
ON_POLICY = False
REFERENCE = 'Haarnoja et al. (2018), "Soft actor-critic"'


@dataclass
class Config:
    """SAC hyperparameters; the slides' symbols in brackets."""

    alpha: float = param(
        0.2, "temperature [lambda]: weight of the entropy; the start value when autotune is on"
    )
    autotune: bool = param(
        True, "tune alpha so that the policy's entropy stays near target_entropy"
    )
    target_entropy_scale: float = param(
        1.0,
        "target entropy: -scale * action dims (continuous) or scale * 0.5 log(n actions) "
        "(discrete)",
    )
    twin: bool = param(
        True, "two critics, the minimum of their values in targets and actor loss (the slide: one)"
    )
    gamma: float = param(0.99, "discount factor [gamma]")
    rho: float = param(0.995, "target critics: w- <- rho w- + (1 - rho) w [rho]")
    actor_lr: float = param(3e-4, "Adam learning rate of the actor [theta]")
    critic_lr: float = param(1e-3, "Adam learning rate of the critics [w]")
    alpha_lr: float = param(1e-3, "Adam learning rate of log alpha")
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
        check_common_config(self)
        check_positive("alpha", self.alpha, zero_ok=not self.autotune)
        check_bool("autotune", self.autotune)
        check_bool("twin", self.twin)
        check_positive("target_entropy_scale", self.target_entropy_scale)
        check_unit_interval("rho", self.rho)
        for name in ("actor_lr", "critic_lr", "alpha_lr"):
            check_positive(name, getattr(self, name))
        offpolicy.check_replay(self)


# Known to solve the environment: `python -m benchmarks presets --algo sac` trains seeds 0, 1, 2
# and prints the env steps and seconds at which each reaches its criterion.
# Pendulum-v1: networks of 64 units learn it as fast as 256, at a fraction of the cost. Learning
#   from step 100 with alpha starting at 1 (as Stable-Baselines3 does) takes fewer steps than the
#   defaults; the entropy target -0.31 is SB3's -1 for actions in [-1, 1] moved to Pendulum's
#   torques in [-2, 2] (+ log 2, see TanhGaussianPolicy). Target critics that follow twice as fast
#   (rho 0.99) get there in fewer steps than 0.995: median 3,800 against 4,600 env steps on seeds
#   0-2 (benchmarks/results/presets.md; the 0.995 run is in its git history).
# CartPole-v1 (discrete SAC): judged by greedy evaluations (10 episodes, every 2,000 steps).
# InvertedPendulum-v5 (MuJoCo): judged by greedy evaluations (every 1,000 steps). Here the tuned
#   temperature was slow: with the default entropy target some seeds balanced the pole only near
#   the end of the budget; a small fixed alpha and larger steps get there sooner. The budget leaves
#   room for the slower seeds (benchmarks/results/presets.md has each seed's step).
PRESETS: dict[str, Config] = {
    "Pendulum-v1": Config(
        hidden=(64, 64),
        actor_lr=1e-3,
        alpha=1.0,
        target_entropy_scale=0.31,
        learning_starts=100,
        rho=0.99,
        total_steps=budget("preset/sac/Pendulum-v1"),
    ),
    "InvertedPendulum-v5": Config(
        hidden=(64, 64),
        actor_lr=3e-3,
        critic_lr=3e-3,
        alpha=0.05,
        autotune=False,
        eval_every=1_000,
        total_steps=budget("preset/sac/InvertedPendulum-v5"),
    ),
    "CartPole-v1": Config(
        hidden=(64, 64),
        actor_lr=1e-3,
        eval_every=2_000,
        total_steps=budget("preset/sac/CartPole-v1"),
    ),
}

SLIDE = Config(autotune=False, twin=False, learning_starts=0)
"""The slide box "Soft Actor-Critic Algorithm" literally: a fixed temperature ``lambda = alpha``,
one critic, from the first step actions ``A ~ pi_theta(.|S)``. The defaults tune the temperature
to an entropy target (Haarnoja et al. 2018b), take the minimum of two critics against
over-estimation (as TD3) and fill the buffer with random actions first.
"""


def make_agent(config: Config, env_id: str) -> Agent:
    """Box: a tanh-Gaussian actor and critics ``q_w(s, a)``; Discrete: a categorical actor and
    critics ``q_w(s, .)``: two with ``twin=True`` (the default, as TD3: their minimum enters the
    targets and the actor's loss), one with ``twin=False`` (the slide's box, :data:`SLIDE`)."""
    env = make_env(env_id)
    try:
        n, space = obs_dim(env.observation_space), env.action_space
        if isinstance(space, gym.spaces.Discrete):
            actor = CategoricalPolicy(n, int(space.n), config.hidden)
            critics = QEnsemble(
                n, config.hidden, members=2 if config.twin else 1, num_actions=int(space.n)
            )
        elif isinstance(space, gym.spaces.Box) and len(space.shape) == 1 and space.is_bounded():
            actor = TanhGaussianPolicy(n, space.low, space.high, config.hidden)
            critics = QEnsemble(
                n, config.hidden, members=2 if config.twin else 1, act_size=space.shape[0]
            )
        else:
            raise ValueError(
                f"sac cannot handle the action space {space}: allowed are Discrete(n) and a flat, "
                "bounded Box(k,)"
            )
    finally:
        env.close()
    return Agent(
        algo=NAME,
        env_id=env_id,
        config=config,
        policy=actor.to(config.device),
        critic=critics.to(config.device),
    )


# The lines where the two variants differ, side by side; train() picks one VARIANT and reads the
# same for both. Continuous: one sampled action stands for the expectation over pi. Discrete: the
# critics give q_w(s, .) for every action, so the expectations over A' and A are exact sums.


def continuous_target_entropy(space: gym.spaces.Box, config: Config) -> float:
    """``-scale * dim(A)``, the heuristic of Haarnoja et al. (2018b)."""
    return -config.target_entropy_scale * space.shape[0]


def discrete_target_entropy(space: gym.spaces.Discrete, config: Config) -> float:
    """``scale * 0.5 log n``: half the uniform policy's entropy."""
    # Christodoulou proposes 0.98 log n, close to the uniform policy's entropy; on CartPole that
    # target is out of reach once the policy learns, and alpha grows without bound.
    return config.target_entropy_scale * 0.5 * math.log(space.n)


@torch.no_grad()
def continuous_soft_targets(learner: Learner, batch: Batch, alpha: float, gamma: float) -> Tensor:
    """``y_j = R_{j+1} + gamma (1 - terminated_j) (min_i q_{w-}^i(S', A') - alpha log pi(A'|S'))``
    with one ``A' ~ pi_theta(.|S')``."""
    next_action, next_log_prob = learner.actor.sample(batch.next_obs)
    next_q = learner.critics_target(batch.next_obs, next_action).min(0).values
    return soft_td_target(batch.rewards, next_q, next_log_prob, batch.terminated, gamma, alpha)


@torch.no_grad()
def discrete_soft_targets(learner: Learner, batch: Batch, alpha: float, gamma: float) -> Tensor:
    """The same target as an exact expectation over ``A'``: the target of every action weighted by
    ``pi_theta(A'|S')``."""
    pi = learner.actor(batch.next_obs)
    next_q = learner.critics_target(batch.next_obs).min(0).values
    rewards, terminated = batch.rewards[:, None], batch.terminated[:, None]
    per_action = soft_td_target(rewards, next_q, pi.logits, terminated, gamma, alpha)
    return (pi.probs * per_action).sum(-1)


def continuous_q(critics: QEnsemble, batch: Batch) -> Tensor:
    """``q_w^i(S_j, A_j)`` of every critic, shape ``(critics, B)``."""
    return critics(batch.obs, batch.actions)


def discrete_q(critics: QEnsemble, batch: Batch) -> Tensor:
    """``q_w^i(S_j, A_j)`` of every critic: the taken action's entry of ``q_w^i(S_j, .)``."""
    actions = batch.actions.expand(len(critics), -1)[..., None]
    return critics(batch.obs).gather(2, actions).squeeze(2)


def continuous_actor_loss(learner: Learner, batch: Batch, alpha: float) -> tuple[Tensor, Tensor]:
    """The slide's KL up to a constant, ``mean_j [alpha log pi(A|S_j) - min_i q_w^i(S_j, A)]`` with
    one reparameterised ``A ~ pi_theta(.|S_j)``, and the entropy estimate ``-log pi(A|S_j)``."""
    action, log_prob = learner.actor.sample(batch.obs)
    with frozen(learner.critics):  # the gradient flows through q_w into the action, not into w
        q = learner.critics(batch.obs, action).min(0).values
    return (alpha * log_prob - q).mean(), -log_prob


def discrete_actor_loss(learner: Learner, batch: Batch, alpha: float) -> tuple[Tensor, Tensor]:
    """The same KL, exact over the actions: ``mean_j sum_a pi(a|S_j) (alpha log pi(a|S_j) -
    min_i q_w^i(S_j, a))``, and the entropy of ``pi_theta(.|S_j)``."""
    pi = learner.actor(batch.obs)
    with torch.no_grad():
        q = learner.critics(batch.obs).min(0).values
    return (pi.probs * (alpha * pi.logits - q)).sum(-1).mean(), pi.entropy()


class Variant(NamedTuple):
    target_entropy: Callable[[gym.Space, Config], float]
    soft_targets: Callable[[Learner, Batch, float, float], Tensor]
    q: Callable[[QEnsemble, Batch], Tensor]
    actor_loss: Callable[[Learner, Batch, float], tuple[Tensor, Tensor]]


CONTINUOUS = Variant(
    continuous_target_entropy, continuous_soft_targets, continuous_q, continuous_actor_loss
)
DISCRETE = Variant(discrete_target_entropy, discrete_soft_targets, discrete_q, discrete_actor_loss)


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
    """Train SAC on ``env_id``; return the agent and its history (``out``, ``save_every``,
    ``resume``: see :func:`rlcourse.algos.a2c.train`)."""
    config = training_config(Config, PRESETS, env_id, config, overrides)
    seed_everything(config.seed)
    rng = np.random.default_rng(config.seed)
    envs = make_vec_env(env_id, config.num_envs)
    obs, _ = envs.reset(seed=config.seed)
    space = envs.single_action_space
    variant = DISCRETE if isinstance(space, gym.spaces.Discrete) else CONTINUOUS

    # Initialize B, the actor theta, the critics w and the target critics w- <- w
    agent = make_agent(config, env_id)
    actor, critics = agent.policy, agent.critic
    learner = offpolicy.make_learner(agent, envs, config, actor_target=False)
    log_alpha = torch.tensor(
        math.log(max(config.alpha, 1e-8)), requires_grad=True, device=config.device
    )
    alpha_opt = Adam([log_alpha], lr=config.alpha_lr)
    target_entropy = variant.target_entropy(space, config)
    alpha = config.alpha
    history = History()
    tracker = EpisodeTracker(config.num_envs, history)
    bar = progress_bar(config.total_steps, progress, "SAC")
    stateful = dict(
        learner=learner,
        log_alpha=log_alpha,
        alpha_opt=alpha_opt,
        envs=envs,
        rng=rng,
        tracker=tracker,
    )
    keeper = RunKeeper(agent, history, stateful, out, save_every, resume)
    with torch_threads(config.threads), closing(envs), bar, keeper:
        start = keeper.start(obs=obs, updates=0, alpha=alpha)
        obs, updates, alpha = start["obs"], start["updates"], start["alpha"]
        bar.update(tracker.env_steps)
        act = actor.numpy_sampler(rng)
        while tracker.env_steps < config.total_steps:
            keeper.tick(obs=obs, updates=updates, alpha=alpha)
            # Observe the state S and select action A ~ pi_theta(.|S)
            # (act: pi_theta sampled in NumPy; uniformly random actions before learning_starts)
            if tracker.env_steps < config.learning_starts:
                actions = offpolicy.random_actions(space, config.num_envs, rng)
            else:
                actions = act(obs)
            # Execute A, observe S' and R, store (S, A, R, S') in B
            obs = step_and_store(envs, obs, actions, learner.buffer, tracker)
            bar.update(config.num_envs)
            evaluate_on_schedule(agent, history, tracker.env_steps, config)
            if tracker.env_steps < config.learning_starts:
                continue
            for _ in range(config.num_envs):
                # Sample a random minibatch of transitions (S_j, A_j, R_{j+1}, S_{j+1}) from B
                batch = learner.buffer.sample(config.batch_size)
                # Compute the targets y_j = R_{j+1} + gamma (q_{w-}(S', A') - alpha log pi(A'|S'))
                y = variant.soft_targets(learner, batch, alpha, config.gamma)
                # Gradient descent step on 1/2 (y_j - q_w^i(S_j, A_j))^2 w.r.t. w, every critic
                q_loss = sum(critic_loss(q, y) for q in variant.q(critics, batch))
                check_finite(history, updates, critic_loss=q_loss)
                learner.critic_opt.zero_grad(set_to_none=True)
                q_loss.backward()
                learner.critic_opt.step()
                # Gradient descent step on the KL between pi_theta and the softmax of q_w / alpha
                pi_loss, entropy = variant.actor_loss(learner, batch, alpha)
                check_finite(history, updates, actor_loss=pi_loss)
                learner.actor_opt.zero_grad(set_to_none=True)
                pi_loss.backward()
                learner.actor_opt.step()
                # Not on the slide: tune alpha, up when the entropy is below its target, else down
                if config.autotune:
                    alpha_loss = log_alpha * (entropy.detach() - target_entropy).mean()
                    alpha_opt.zero_grad(set_to_none=True)
                    alpha_loss.backward()
                    alpha_opt.step()
                    alpha = float(log_alpha.detach().exp())
                # Update the target critics w- <- rho w- + (1 - rho) w
                polyak_update(learner.critics_target, critics, config.rho)
                updates += 1
            act = actor.numpy_sampler(rng)
            if updates % LOG_EVERY < config.num_envs:
                history.add_iteration(
                    updates,
                    tracker.env_steps,
                    critic_loss=float(q_loss.detach()),
                    actor_loss=float(pi_loss.detach()),
                    alpha=alpha,
                    entropy=float(entropy.detach().mean()),
                    sps=tracker.env_steps / history.wall_time(),
                )
                if history.episodes:
                    bar.set_postfix(
                        mean_return=f"{history.mean_return(10):.1f}",
                        alpha=f"{alpha:.3f}",
                        refresh=False,
                    )
        keeper.tick(obs=obs, updates=updates, alpha=alpha)
        evaluate_on_schedule(agent, history, tracker.env_steps, config, final=True)
    return agent, history
