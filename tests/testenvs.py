"""Tiny environments for tests, registered with gymnasium under ``rlcourse-test/``."""

import gymnasium as gym
import numpy as np


class Counter(gym.Env):
    """Observation = steps since reset; reward 1 every step; never terminates (only a time limit cuts it)."""

    observation_space = gym.spaces.Box(0.0, np.inf, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([self.t], np.float32), {}

    def step(self, action):
        self.t += 1
        return np.array([self.t], np.float32), 1.0, False, False, {}


class Constant(Counter):
    """Reward 1 every step and the same observation always: v(s) = 1 / (1 - gamma) when truncation is bootstrapped."""

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action):
        return np.zeros(1, np.float32), 1.0, False, False, {}


class Target(gym.Env):
    """One-step episodes: observe s in [-1, 1], act a, reward -(a - s)^2. The best policy is mean(s) = s."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.s = self.np_random.uniform(-1, 1, size=1).astype(np.float32)
        return self.s, {}

    def step(self, action):
        reward = -float((action[0] - self.s[0]) ** 2)
        return self.s, reward, True, False, {}


class Exploding(Counter):
    """Returns NaN observations after a few steps."""

    def step(self, action):
        obs, r, te, tr, info = super().step(action)
        return (obs * np.nan if self.t > 30 else obs), r, te, tr, info


def register() -> None:
    specs = {
        "rlcourse-test/Counter-v0": (Counter, 5),
        "rlcourse-test/Constant-v0": (Constant, 20),
        "rlcourse-test/Target-v0": (Target, None),
        "rlcourse-test/Exploding-v0": (Exploding, 100),
    }
    for env_id, (cls, limit) in specs.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=cls, max_episode_steps=limit, disable_env_checker=True)


register()


class MultiDiscreteActions(Counter):
    action_space = gym.spaces.MultiDiscrete([2, 3])


if "rlcourse-test/MultiDiscrete-v0" not in gym.registry:
    gym.register("rlcourse-test/MultiDiscrete-v0", entry_point=MultiDiscreteActions, max_episode_steps=5)
