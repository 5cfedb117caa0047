"""Making gymnasium vector environments the way every rlcourse algorithm expects them.

The autoreset mode is chosen explicitly: ``SAME_STEP``. When a sub-environment's episode ends at
step t, ``step`` already returns the *next* episode's first observation, and the observation the
step really produced, ``S_{t+1}``, is in ``info["final_obs"]``.
:func:`rlcourse.rollouts.collect_rollout` puts that true final observation into ``next_obs``, so a
truncated episode is bootstrapped from the state where the time limit cut it, not from the state
where the next episode starts.
"""

from __future__ import annotations

import gymnasium as gym
from gymnasium.vector import AutoresetMode

__all__ = ["make_vec_env", "make_env", "check_env_id"]


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
    try:
        return gym.make_vec(
            env_id,
            num_envs=int(num_envs),
            vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
        )
    except gym.error.DependencyNotInstalled as exc:
        raise ValueError(
            f"environment {env_id!r} needs a package that is not installed: {exc}"
        ) from None
