"""The vector environment: SameStepVectorEnv's step returns what gymnasium's SyncVectorEnv returns."""

import gymnasium as gym
import numpy as np
import pytest
import testenvs  # noqa: F401  (registers the test environments)
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from rlcourse.envs import SameStepVectorEnv, make_env, make_vec_env


class Chatty(testenvs.Counter):
    """Infos on some steps and on reset, ends by termination or by its time limit."""

    def reset(self, *, seed=None, options=None):
        obs, _ = super().reset(seed=seed)
        return obs, {"start": int(self.np_random.integers(10)), "nested": {"a": 1.5}}

    def step(self, action):
        obs, r, _, tr, _ = super().step(action)
        info = {"t": self.t, "reading": np.array([self.t, -self.t])} if self.t % 2 else {}
        return obs, r, bool(self.np_random.random() < 0.1), tr, info


class WrongShape(testenvs.Counter):
    def step(self, action):
        obs, *rest = super().step(action)
        return np.concatenate([obs, obs]), *rest


class ListObservations(testenvs.Counter):
    """Observations as Python lists of floats (float64), for a float32 space."""

    def reset(self, *, seed=None, options=None):
        obs, info = super().reset(seed=seed)
        return [float(obs[0]) + 0.1], info

    def step(self, action):
        obs, *rest = super().step(action)
        return [float(obs[0]) / 3], *rest


class FloatForIntegers(testenvs.Counter):
    """An integer observation space, and a float observation from step."""

    observation_space = gym.spaces.Box(0, 100, (1,), np.int64)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, np.int64), {}

    def step(self, action):
        obs, *rest = super().step(action)
        return obs + 0.5, *rest


for env_id, cls in [
    ("rlcourse-test/Chatty-v0", Chatty),
    ("rlcourse-test/WrongShape-v0", WrongShape),
    ("rlcourse-test/ListObservations-v0", ListObservations),
    ("rlcourse-test/FloatForIntegers-v0", FloatForIntegers),
]:
    if env_id not in gym.registry:
        gym.register(env_id, entry_point=cls, max_episode_steps=7, disable_env_checker=True)


def gymnasium_vector_env(env_id, num_envs, copy=True):
    return SyncVectorEnv(
        [lambda: make_env(env_id)] * num_envs, copy=copy, autoreset_mode=AutoresetMode.SAME_STEP
    )


def assert_same(a, b, where):
    """The same value, array dtype and shape included, nested dicts and object arrays too."""
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, np.ndarray) and a.dtype == object:
        assert b.dtype == object and a.shape == b.shape, where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    else:
        assert type(a) is type(b) and a == b, where


@pytest.mark.parametrize(
    ("env_id", "num_envs", "steps"),
    [
        ("CartPole-v1", 1, 600),  # terminations
        ("CartPole-v1", 3, 300),
        ("Pendulum-v1", 2, 450),  # Box actions, truncation at 200
        ("rlcourse-test/Counter-v0", 3, 40),  # truncations in lock-step
        ("rlcourse-test/Target-v0", 2, 20),  # one-step episodes, the same array returned again
        ("rlcourse-test/Chatty-v0", 4, 200),  # infos on steps, on resets, and in final_info
        ("rlcourse-test/ListObservations-v0", 2, 20),  # lists of float64 for a float32 space
        ("rlcourse-test/MultiDiscrete-v0", 2, 20),  # another action space: gymnasium's own step
    ],
)
def test_step_returns_what_gymnasiums_returns(env_id, num_envs, steps):
    ours, theirs = make_vec_env(env_id, num_envs), gymnasium_vector_env(env_id, num_envs)
    assert isinstance(ours, SameStepVectorEnv) and isinstance(ours, SyncVectorEnv)
    assert ours._flat == (env_id != "rlcourse-test/MultiDiscrete-v0")
    assert_same(ours.reset(seed=5), theirs.reset(seed=5), "reset")
    theirs.action_space.seed(0)
    ended = 0
    for t in range(steps):
        actions = theirs.action_space.sample()
        got, expected = ours.step(actions), theirs.step(actions)
        assert_same(got, expected, f"step {t}")
        assert_same(ours._autoreset_envs, theirs._autoreset_envs, f"step {t}: autoreset")
        ended += int((expected[2] | expected[3]).sum())
    assert ended > 0  # the autoreset path was compared too
    # A partial reset rebuilds the batch from the observations each step kept
    mask = np.arange(num_envs) % 2 == 0
    options = lambda: {"reset_mask": mask.copy()}  # noqa: E731  (gymnasium pops the key)
    assert_same(ours.reset(seed=7, options=options()), theirs.reset(seed=7, options=options()), "")
    ours.close()
    theirs.close()


def test_observations_are_returned_as_copies():
    envs = make_vec_env("rlcourse-test/Counter-v0", 2)
    first, _ = envs.reset(seed=0)
    a = envs.step(np.zeros(2, np.int64))[0]
    b = envs.step(np.zeros(2, np.int64))[0]
    a[:] = -1  # the caller's array: changing it changes nothing the env returns later
    assert b[0, 0] == 2 and envs.step(np.zeros(2, np.int64))[0][0, 0] == 3
    assert first[0, 0] == 0


def test_no_returned_array_is_shared_with_a_later_step():
    envs = make_vec_env("CartPole-v1", 2)
    envs.reset(seed=0)
    first = envs.step(np.zeros(2, np.int64))
    second = envs.step(np.ones(2, np.int64))
    for a, b in zip(first[:4], second[:4], strict=True):
        assert not np.shares_memory(a, b)


def test_without_copies_it_is_gymnasiums_step():
    ours = SameStepVectorEnv([lambda: make_env("CartPole-v1")] * 2, copy=False)
    theirs = gymnasium_vector_env("CartPole-v1", 2, copy=False)
    ours.reset(seed=0)
    theirs.reset(seed=0)
    for t in range(50):
        got, expected = ours.step(np.ones(2, np.int64)), theirs.step(np.ones(2, np.int64))
        assert_same(got, expected, f"step {t}")
        assert got[0] is ours._observations  # gymnasium's: the batch itself, not a copy


def test_an_observation_of_the_wrong_shape_is_a_clear_error():
    envs = make_vec_env("rlcourse-test/WrongShape-v0", 2)
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=r"sub-environment 0 .* shape \(2,\).* has shape \(1,\)"):
        envs.step(np.zeros(2, np.int64))
    theirs = gymnasium_vector_env("rlcourse-test/WrongShape-v0", 2)
    theirs.reset(seed=0)
    with pytest.raises(ValueError):  # gymnasium's step refuses it too
        theirs.step(np.zeros(2, np.int64))


def test_a_float_observation_for_an_integer_space_is_refused_as_by_gymnasium():
    for envs in (
        make_vec_env("rlcourse-test/FloatForIntegers-v0", 2),
        gymnasium_vector_env("rlcourse-test/FloatForIntegers-v0", 2),
    ):
        envs.reset(seed=0)
        with pytest.raises(TypeError):
            envs.step(np.zeros(2, np.int64))
