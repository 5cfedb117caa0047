"""Collecting on-policy rollouts from a vector environment ("Collect a rollout of T total
timesteps").

A :class:`Rollout` holds tensors of shape ``(T, N, ...)``: step ``t`` of environment ``i`` is the
transition ``S_t, A_t -> R_{t+1}, S_{t+1}``. ``next_obs[t, i]`` is the state that step really
produced, also when the episode ended there (see :mod:`rlcourse.envs`), so the functions of
:mod:`rlcourse.advantages` can bootstrap on truncation and not on termination.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from rlcourse.history import History, NonFiniteError

__all__ = [
    "Rollout",
    "EpisodeTracker",
    "step_envs",
    "step_and_store",
    "collect_rollout",
    "complete_episodes_mask",
]


@dataclass
class Rollout:
    obs: Tensor  # (T, N, obs_dim)   S_t
    actions: Tensor  # (T, N) or (T, N, act_dim)   A_t
    rewards: Tensor  # (T, N)   R_{t+1}
    terminated: Tensor  # (T, N) bool   S_{t+1} is terminal
    truncated: Tensor  # (T, N) bool   the episode was cut after step t
    next_obs: Tensor  # (T, N, obs_dim)   S_{t+1}, the real one

    @property
    def num_transitions(self) -> int:
        """T x N: all environments' steps together."""
        return self.rewards.numel()


def non_finite(history: History, what: str, env_step: int, actions=None) -> None:
    """Raise the error that stops training when the environment returns NaN or inf (the history is
    kept). If the ``actions`` it was given were not finite, the policy is to blame, not the
    environment: its weights have diverged."""
    if actions is not None and not np.isfinite(np.asarray(actions, dtype=float)).all():
        raise NonFiniteError(
            f"training stopped at env step {env_step}: the policy chose non-finite actions (its "
            f"weights have diverged), and the environment returned a non-finite {what}; the "
            "history up to there is kept. A smaller learning rate or gradient clipping usually "
            "helps.",
            history,
        )
    raise NonFiniteError(
        f"training stopped: the environment returned a non-finite {what} at env step {env_step}; "
        "the history up to there is kept. Check the environment or its wrappers.",
        history,
    )


class EpisodeTracker:
    """Running return and length of each environment's current episode; writes finished ones to a
    history."""

    def __init__(self, num_envs: int, history: History):
        self.history = history
        self.returns = np.zeros(num_envs)
        self.lengths = np.zeros(num_envs, dtype=np.int64)
        self.env_steps = 0

    def step(self, rewards: np.ndarray, done: np.ndarray) -> None:
        """Count one vector step of all environments; record the episodes it finished."""
        self.returns += rewards
        self.lengths += 1
        self.env_steps += len(rewards)
        if not done.any():
            return
        for i in np.flatnonzero(done):
            self.history.add_episode(self.env_steps, float(self.returns[i]), int(self.lengths[i]))
        self.returns[done] = 0.0
        self.lengths[done] = 0

    def check_finite(
        self, rewards: np.ndarray, *observations: np.ndarray, actions: np.ndarray | None = None
    ) -> None:
        """Stop with a message naming the env step and the quantity if the environment returned NaN
        or inf.

        One sum per array (NaN and inf survive a sum), so the check costs microseconds; call it
        before :meth:`step` counts the step."""
        # math.isfinite reads a NumPy scalar in a fraction of np.isfinite's time
        if math.isfinite(rewards.sum()) and all(math.isfinite(o.sum()) for o in observations):
            return
        non_finite(
            self.history,
            "reward" if not np.isfinite(rewards).all() else "observation",
            self.env_steps,
            actions,
        )

    def state_dict(self) -> dict:
        """The episodes in progress and the env steps so far (the history is saved on its own)."""
        return {
            "returns": self.returns.copy(),
            "lengths": self.lengths.copy(),
            "env_steps": self.env_steps,
        }

    def load_state_dict(self, state: dict) -> None:
        self.returns[:] = state["returns"]
        self.lengths[:] = state["lengths"]
        self.env_steps = int(state["env_steps"])

    def drop_unfinished(self) -> None:
        """Forget the episodes in progress (after a reset of all environments)."""
        self.returns[:] = 0.0
        self.lengths[:] = 0


def env_actions(action_space: gym.Space):
    """The function that turns sampled actions into what ``envs.step`` takes."""
    if isinstance(action_space, gym.spaces.Box):
        # The Gaussian may sample outside the bounds; the env gets the clipped action, while the
        # rollout keeps the sampled one, whose log-probability the policy gradient needs.
        low, high = action_space.low, action_space.high
        return lambda actions: np.clip(actions, low, high)
    return lambda actions: actions


def step_envs(envs: gym.vector.VectorEnv, actions: np.ndarray) -> tuple[np.ndarray, ...]:
    """One step of all environments: ``next_obs, rewards, terminated, truncated, real_next_obs``.

    ``next_obs`` is what the policy sees next (a new episode's first observation where one ended);
    ``real_next_obs`` is the ``S_{t+1}`` each step really produced, the one to bootstrap from.
    """
    next_obs, rewards, terminated, truncated, info = envs.step(actions)
    real_next = next_obs
    done = terminated | truncated
    if done.any():
        # Same-step autoreset: next_obs already starts the new episode; the real S_{t+1} is here.
        real_next = next_obs.copy()
        real_next[done] = np.stack(info["final_obs"][done])
    return next_obs, rewards, terminated, truncated, real_next


def step_and_store(
    envs: gym.vector.VectorEnv,
    obs: np.ndarray,
    actions: np.ndarray,
    buffer,
    tracker: EpisodeTracker,
):
    """Execute ``A`` in every environment, observe ``R`` and ``S'``, store ``(S, A, R, S')`` in the
    replay buffer.

    The stored ``S'`` is the real next state, also where a time limit cut the episode. Returns the
    observations to act on next.
    """
    next_obs, rewards, terminated, truncated, real_next = step_envs(envs, actions)
    # real_next is next_obs itself unless an episode ended: then both are checked
    observations = (next_obs,) if real_next is next_obs else (real_next, next_obs)
    tracker.check_finite(rewards, *observations, actions=actions)
    buffer.add(obs, actions, rewards, real_next, terminated, truncated)
    tracker.step(rewards, terminated | truncated)
    return next_obs


def collect_rollout(
    envs: gym.vector.VectorEnv,
    policy: nn.Module,
    obs: np.ndarray,
    tracker: EpisodeTracker,
    rng: np.random.Generator,
    num_steps: int | None = None,
    episodes_per_env: int | None = None,
    device: str | torch.device = "cpu",
    max_steps: int = 100_000,
) -> tuple[Rollout, np.ndarray]:
    """Run ``policy`` in ``envs`` from observations ``obs``; return the rollout and the last
    observations.

    Stops after ``num_steps`` steps of every environment, or (for Monte Carlo methods) as soon as
    every environment has finished ``episodes_per_env`` episodes during this call. Only the actor
    runs here, as a NumPy copy drawing its noise from ``rng`` (see :class:`rlcourse.nets.NumpyMLP`);
    values and log-probabilities are computed afterwards, in torch, for the whole rollout in one
    batched pass.
    """
    if (num_steps is None) == (episodes_per_env is None):
        raise ValueError("give exactly one of num_steps and episodes_per_env")
    limit = num_steps if num_steps is not None else max_steps
    to_env = env_actions(envs.single_action_space)
    sample = policy.numpy_sampler(rng)
    steps: list[tuple] = []
    finished = np.zeros(len(obs), dtype=np.int64)  # episodes each environment finished in this call
    for _ in range(limit):
        actions = sample(obs)
        next_obs, rewards, terminated, truncated, real_next = step_envs(envs, to_env(actions))
        done = terminated | truncated
        steps.append((obs, actions, rewards, terminated, truncated, real_next))
        tracker.step(rewards, done)
        finished += done
        obs = next_obs
        if episodes_per_env is not None and finished.min() >= episodes_per_env:
            break
    else:
        if episodes_per_env is not None:
            raise RuntimeError(
                f"an environment finished only {finished.min()} of {episodes_per_env} episodes "
                f"in {max_steps} steps"
            )

    o, a, r, te, tr, no = zip(*steps, strict=True)
    next_obs_all, rewards_all = np.stack(no), np.stack(r)
    for what, values in (("observation", next_obs_all), ("reward", rewards_all)):
        if not np.isfinite(values).all():  # checked once per rollout: cheaper than at every step
            t = int(np.flatnonzero(~np.isfinite(values).reshape(len(no), -1).all(axis=1))[0])
            non_finite(
                tracker.history,
                what,
                tracker.env_steps - (len(no) - t) * rewards_all.shape[1],
                a[t],
            )
    as_t = lambda xs, dtype: torch.as_tensor(np.stack(xs), dtype=dtype, device=device)
    rollout = Rollout(
        obs=as_t(o, torch.float32),
        actions=as_t(
            a,
            torch.long
            if isinstance(envs.single_action_space, gym.spaces.Discrete)
            else torch.float32,
        ),
        rewards=as_t(r, torch.float32),
        terminated=as_t(te, torch.bool),
        truncated=as_t(tr, torch.bool),
        next_obs=torch.as_tensor(next_obs_all, dtype=torch.float32, device=device),
    )
    return rollout, obs


def complete_episodes_mask(
    terminated: Tensor, truncated: Tensor, episodes_per_env: int | None = None
) -> Tensor:
    """``mask[t, i]``: step t of environment i belongs to one of that environment's first complete
    episodes.

    Monte Carlo returns need whole episodes, so the unfinished tail of each column is left out. With
    ``episodes_per_env = k`` only each environment's first ``k`` episodes are kept: keeping every
    episode that happened to finish by some moment would favour short ones (the long ones are the
    ones still running), and bias the gradient estimate.
    """
    done = (terminated | truncated).long()
    # how many episodes of this environment ended before step t
    episode_index = done.cumsum(0) - done
    complete = done.sum(0)
    if episodes_per_env is not None:
        complete = complete.clamp(max=episodes_per_env)
    return episode_index < complete
