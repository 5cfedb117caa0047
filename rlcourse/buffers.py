"""The replay buffer B of the off-policy algorithms (DQN, DDPG, TD3, SAC).

Transitions ``(S, A, R, S', terminated, truncated)`` live in preallocated NumPy arrays that wrap
around when full (the oldest transition is overwritten first). ``terminated`` and ``truncated`` are
kept apart: a target bootstraps from ``S'`` unless ``S'`` is terminal, and a time limit does not
make it terminal. ``next_obs`` is the real ``S'`` (see :func:`rlcourse.rollouts.step_envs`).

NumPy, not torch: the environments hand over NumPy arrays one step at a time, and writing them into
NumPy arrays costs a few microseconds per step against ~150 for six torch index assignments. A
sampled batch becomes tensors on ``device``: with a GPU, six small host-to-device copies per batch
(as in Stable-Baselines3), which is cheap next to the gradient step that follows.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

__all__ = ["Batch", "ReplayBuffer"]


class Batch(NamedTuple):
    obs: Tensor  # (B, obs_dim)   S_j
    actions: Tensor  # (B,) or (B, act_dim)   A_j
    rewards: Tensor  # (B,)   R_{j+1}
    next_obs: Tensor  # (B, obs_dim)   S_{j+1}
    terminated: Tensor  # (B,) bool
    truncated: Tensor  # (B,) bool


class ReplayBuffer:
    """A circular buffer of ``capacity`` transitions with uniform sampling."""

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        action_shape: tuple[int, ...] = (),
        action_dtype: torch.dtype = torch.long,
        device: str | torch.device = "cpu",
    ):
        if int(capacity) < 1:
            raise ValueError(f"capacity={capacity!r} is not allowed: capacity must be at least 1")
        self.capacity = int(capacity)
        self.device = torch.device(device)
        try:  # NumPy reserves the memory now and the system provides it as the buffer fills
            self.obs = np.zeros((capacity, *obs_shape), dtype=np.float32)
            self.next_obs = np.zeros((capacity, *obs_shape), dtype=np.float32)
            self.actions = np.zeros(
                (capacity, *action_shape), dtype=torch.empty(0, dtype=action_dtype).numpy().dtype
            )
            self.rewards = np.zeros(capacity, dtype=np.float32)
            self.terminated = np.zeros(capacity, dtype=bool)
            self.truncated = np.zeros(capacity, dtype=bool)
        except MemoryError:
            raise ValueError(
                f"a replay buffer of capacity {capacity} cannot be allocated on this machine: "
                "make buffer_size smaller"
            ) from None
        self.position = 0  # where the next transition goes
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs, actions, rewards, next_obs, terminated, truncated) -> None:
        """Store a batch of ``n`` transitions (one per environment); the oldest are overwritten
        when the buffer is full."""
        n = len(rewards)
        if n > self.capacity:
            raise ValueError(
                f"cannot add {n} transitions at once to a buffer of capacity {self.capacity}"
            )
        end = self.position + n
        # Rows that do not wrap around are a slice: writing through one costs less than through an
        # index array (six writes per env step)
        if end <= self.capacity:
            idx = slice(self.position, end)
        else:
            idx = np.arange(self.position, end) % self.capacity
        self.obs[idx] = obs
        self.actions[idx] = actions
        self.rewards[idx] = rewards
        self.next_obs[idx] = next_obs
        self.terminated[idx] = terminated
        self.truncated[idx] = truncated
        self.position = end % self.capacity
        self.size = min(self.size + n, self.capacity)

    _ARRAYS = ("obs", "actions", "rewards", "next_obs", "terminated", "truncated")

    def state_dict(self) -> dict:
        """What is stored (the filled rows only) and where the next transition goes."""
        state = {name: getattr(self, name)[: self.size].copy() for name in self._ARRAYS}
        return {**state, "position": self.position, "size": self.size}

    def load_state_dict(self, state: dict) -> None:
        """Put back what :meth:`state_dict` returned, into a buffer of the same capacity."""
        if state["size"] > self.capacity:
            raise ValueError(
                f"the saved buffer holds {state['size']} transitions, more than this buffer's "
                f"capacity {self.capacity}"
            )
        for name in self._ARRAYS:
            getattr(self, name)[: state["size"]] = state[name]
        self.position, self.size = int(state["position"]), int(state["size"])

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Batch:
        """``batch_size`` transitions drawn uniformly, with replacement, from what is stored."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        # Drawn with torch's generator, so that a seeded run is reproduced exactly.
        idx = torch.randint(0, self.size, (batch_size,), generator=generator).numpy()
        stored = (
            self.obs,
            self.actions,
            self.rewards,
            self.next_obs,
            self.terminated,
            self.truncated,
        )
        return Batch(*(torch.from_numpy(array[idx]).to(self.device) for array in stored))
