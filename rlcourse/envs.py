"""Making gymnasium vector environments the way every rlcourse algorithm expects them.

The autoreset mode is chosen explicitly: ``SAME_STEP``. When a sub-environment's episode ends at
step t, ``step`` already returns the *next* episode's first observation, and the observation the
step really produced, ``S_{t+1}``, is in ``info["final_obs"]``.
:func:`rlcourse.rollouts.collect_rollout` puts that true final observation into ``next_obs``, so a
truncated episode is bootstrapped from the state where the time limit cut it, not from the state
where the next episode starts.

The vector environment is gymnasium's ``SyncVectorEnv`` with one method replaced:
:class:`SameStepVectorEnv`'s ``step`` returns what gymnasium's returns, with less work per step
for the flat spaces rlcourse's networks take.
"""

from __future__ import annotations

from functools import partial

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

__all__ = ["make_vec_env", "make_env", "check_env_id", "SameStepVectorEnv"]


def check_env_id(env_id: str) -> None:
    """Raise a clear ``ValueError`` if gymnasium has no environment called ``env_id``."""
    if env_id not in gym.registry:
        import difflib

        close = difflib.get_close_matches(env_id, list(gym.registry), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(
            f"unknown environment id {env_id!r}: gymnasium has no such environment{hint}"
        )


def make_env(env_id: str, **kwargs) -> gym.Env:
    """One environment, with a clear error for an unknown id or a missing optional dependency."""
    check_env_id(env_id)
    try:
        return gym.make(env_id, **kwargs)
    except gym.error.DependencyNotInstalled as exc:
        raise ValueError(
            f"environment {env_id!r} needs a package that is not installed: {exc}"
        ) from None


def make_vec_env(env_id: str, num_envs: int) -> gym.vector.VectorEnv:
    """``num_envs`` copies of ``env_id`` stepped in lock-step, with same-step autoreset.

    Seed it with ``envs.reset(seed=seed)`` (gymnasium seeds copy i with ``seed + i``).
    """
    check_env_id(env_id)
    if int(num_envs) < 1:
        raise ValueError(f"num_envs must be at least 1, got {num_envs}")
    return SameStepVectorEnv([partial(make_env, env_id)] * int(num_envs))


class SameStepVectorEnv(gym.vector.SyncVectorEnv):
    """``gym.vector.SyncVectorEnv`` with same-step autoreset, and a ``step`` that does less.

    Gymnasium's ``step`` is general machinery: it dispatches on the spaces to split the actions and
    join the observations, walks the autoreset modes and deep-copies the observations. For a ``Box``
    of observations and a ``Discrete`` or ``Box`` of actions (every space rlcourse's networks take)
    this ``step`` writes each sub-environment's observation into the batch and returns a copy of the
    batch: the same arrays, dtypes and ``infos`` as gymnasium's (``final_obs`` and ``final_info``
    where an episode ended, with their ``_``-masks; ``tests/test_envs.py`` compares the two step by
    step). Other spaces, ``copy=False`` and other autoreset modes take gymnasium's own ``step``.
    Everything else (``reset``, ``call``, ``close``) is ``SyncVectorEnv``'s. One difference: where a
    sub-environment's observation has the wrong shape, the error comes after the sub-environments
    before it have stepped and written their rows (gymnasium's after all of them have stepped).
    """

    def __init__(self, env_fns, copy: bool = True, observation_mode="same"):
        super().__init__(
            env_fns,
            copy=copy,
            observation_mode=observation_mode,
            autoreset_mode=AutoresetMode.SAME_STEP,
        )
        self._flat = isinstance(self.single_observation_space, gym.spaces.Box) and isinstance(
            self.single_action_space, (gym.spaces.Discrete, gym.spaces.Box)
        )
        self._obs_shape = self.single_observation_space.shape

    def step(self, actions):
        if not self._flat or not self.copy or self.autoreset_mode is not AutoresetMode.SAME_STEP:
            return super().step(actions)
        infos: dict = {}
        rewards, terminated, truncated = self._rewards, self._terminations, self._truncations
        for i, (env, action) in enumerate(zip(self.envs, actions, strict=True)):
            obs, rewards[i], terminated[i], truncated[i], info = env.step(action)
            if terminated[i] or truncated[i]:
                # The episode's real last observation, then the next episode's first
                infos = self._add_info(infos, {"final_obs": obs, "final_info": info}, i)
                obs, info = env.reset()
            if info:
                infos = self._add_info(infos, info, i)
            if np.shape(obs) != self._obs_shape:  # gymnasium's stacking would refuse it too
                raise ValueError(
                    f"sub-environment {i} returned an observation of shape {np.shape(obs)}; its "
                    f"observation space {self.single_observation_space} has shape "
                    f"{self._obs_shape}"
                )
            # reset(options={"reset_mask": ...}) rebuilds the batch from _env_obs; copyto casts as
            # gymnasium's np.stack(..., out=) does (a float observation for an integer space fails)
            self._env_obs[i] = obs
            np.copyto(self._observations[i], obs, casting="same_kind")
        np.logical_or(terminated, truncated, out=self._autoreset_envs)
        return (
            self._observations.copy(),
            rewards.copy(),
            terminated.copy(),
            truncated.copy(),
            infos,
        )
