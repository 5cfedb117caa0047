"""Rollout collection, and the truncation rule: bootstrap on truncation, never on termination."""

import numpy as np
import pytest
import testenvs  # noqa: F401  (registers the test environments)
import torch

from rlcourse.advantages import gae, returns_to_go
from rlcourse.buffers import ReplayBuffer
from rlcourse.envs import make_vec_env
from rlcourse.nets import CategoricalPolicy
from rlcourse.rollouts import (
    EpisodeTracker,
    collect_rollout,
    complete_episodes_mask,
    step_and_store,
)
from rlcourse.training import History


def collect(env_id, num_envs, steps, seed=0):
    envs = make_vec_env(env_id, num_envs)
    obs, _ = envs.reset(seed=seed)
    torch.manual_seed(seed)
    history = History()
    tracker = EpisodeTracker(num_envs, history)
    rollout, obs = collect_rollout(
        envs, CategoricalPolicy(1, 2), obs, tracker, np.random.default_rng(seed), num_steps=steps
    )
    return rollout, obs, history


def test_next_obs_is_the_real_next_state_also_at_a_time_limit():
    rollout, last_obs, history = collect("rlcourse-test/Counter-v0", 3, 12)
    # The counter's next observation is always one more than the current one, truncated or not.
    torch.testing.assert_close(rollout.next_obs, rollout.obs + 1)
    assert rollout.truncated.any() and not rollout.terminated.any()
    # After a truncation the next step starts a new episode from 0.
    t, i = torch.nonzero(rollout.truncated)[0]
    assert rollout.next_obs[t, i, 0] == 5 and rollout.obs[t + 1, i, 0] == 0
    assert rollout.obs.shape == (12, 3, 1) and rollout.actions.shape == (12, 3)
    # Two full episodes of 5 per environment were recorded, each with return 5.
    assert [e["length"] for e in history.episodes] == [5] * 6
    assert [e["return"] for e in history.episodes] == [5.0] * 6
    assert history.episodes[-1]["env_step"] == 30


def test_collecting_until_every_environment_finished_its_episodes():
    envs = make_vec_env("rlcourse-test/Counter-v0", 2)
    obs, _ = envs.reset(seed=0)
    tracker = EpisodeTracker(2, History())
    rng = np.random.default_rng(0)
    rollout, _ = collect_rollout(envs, CategoricalPolicy(1, 2), obs, tracker, rng, episodes_per_env=2)
    assert rollout.rewards.shape[0] == 10  # both finish at step 5, then both again at step 10
    assert complete_episodes_mask(rollout.terminated, rollout.truncated, 2).all()


def test_complete_episodes_mask_drops_the_unfinished_tail():
    done = torch.tensor([[0, 0], [1, 0], [0, 0], [0, 1], [0, 0]], dtype=torch.bool)
    mask = complete_episodes_mask(done, torch.zeros_like(done))
    expected = torch.tensor([[1, 1], [1, 1], [0, 1], [0, 1], [0, 0]], dtype=torch.bool)
    assert torch.equal(mask, expected)


def test_complete_episodes_mask_keeps_the_first_k_episodes_of_each_environment():
    # env 0: episodes end at 0, 1, 4 (three short ones); env 1: one long episode ending at 5
    terminated = torch.zeros(6, 2, dtype=torch.bool)
    terminated[[0, 1, 4], 0] = True
    truncated = torch.zeros_like(terminated)
    truncated[5, 1] = True
    mask = complete_episodes_mask(terminated, truncated, episodes_per_env=1)
    assert mask[:, 0].tolist() == [True, False, False, False, False, False]
    assert mask[:, 1].all()


def test_first_k_episodes_per_environment_are_an_unbiased_sample_of_lengths():
    """Keeping whichever episodes finished first favours short ones; k per environment does not."""
    g = np.random.default_rng(0)
    T, N, k = 400, 2000, 1
    lengths = g.choice([2, 20], size=(N, 20))  # each env plays episodes of length 2 or 20, equally likely
    done = torch.zeros(T, N, dtype=torch.bool)
    for i in range(N):
        ends = np.cumsum(lengths[i]) - 1
        done[ends[ends < T], i] = True
    mask = complete_episodes_mask(done, torch.zeros_like(done), episodes_per_env=k)
    kept_lengths = mask.sum(0).float()  # one episode per environment
    assert abs(kept_lengths.mean().item() - 11.0) < 0.5  # the true mean length


@pytest.mark.parametrize("gae_lambda", [0.0, 0.95, 1.0])
def test_bootstrapping_on_truncation_gives_the_exact_value(gae_lambda):
    """Reward 1 forever, cut by a time limit: the true value is 1 / (1 - gamma) (cf. SB3's test_infinite_horizon).

    Fit a constant critic by repeatedly regressing on the lambda-return targets of real rollouts.
    Bootstrapping where the time limit cut the episode finds 1 / (1 - gamma) exactly; treating the cut
    as termination settles measurably lower.
    """
    gamma = 0.9
    rollout, _, _ = collect("rlcourse-test/Constant-v0", 4, 60)
    assert rollout.truncated.any()
    r, term, trunc = rollout.rewards.double(), rollout.terminated, rollout.truncated

    def fixed_point(terminated):
        c = 0.0
        for _ in range(400):
            v = torch.full_like(r, c)
            c = float((gae(r, v, v, terminated, trunc, gamma, gae_lambda) + v).mean())
        return c

    assert fixed_point(term) == pytest.approx(1 / (1 - gamma), rel=1e-9)
    wrong = fixed_point(term | trunc)  # the time limit mistaken for a terminal state
    assert wrong < 0.9 / (1 - gamma)


def test_returns_to_go_on_truncation_match_the_infinite_sum():
    gamma = 0.9
    rollout, _, _ = collect("rlcourse-test/Constant-v0", 2, 45)
    v_true = torch.full(rollout.rewards.shape, 1 / (1 - gamma), dtype=torch.float64)
    g = returns_to_go(rollout.rewards.double(), v_true, rollout.terminated, rollout.truncated, gamma)
    torch.testing.assert_close(g, v_true)
    g_wrong = returns_to_go(
        rollout.rewards.double(), v_true, rollout.terminated | rollout.truncated, rollout.truncated, gamma
    )
    assert (g_wrong < v_true - 1.0).any()


def test_non_finite_observation_stops_with_a_message():
    from rlcourse.training import NonFiniteError

    envs = make_vec_env("rlcourse-test/Exploding-v0", 2)
    obs, _ = envs.reset(seed=0)
    history = History()
    with pytest.raises(NonFiniteError, match="non-finite observation at env step 60"):
        collect_rollout(
            envs, CategoricalPolicy(1, 2), obs, EpisodeTracker(2, history), np.random.default_rng(0), num_steps=100
        )


@pytest.mark.parametrize("nan_in", ["final observation", "first observation of the next episode"])
def test_a_non_finite_observation_where_an_episode_ends_stops_the_off_policy_loop(nan_in):
    """Where an episode ends, the loop stores the real S' (the final observation) and acts on the
    next episode's first one: step_and_store checks both, before anything of that step is stored."""
    import gymnasium as gym
    from gymnasium.vector import AutoresetMode

    from rlcourse.training import NonFiniteError

    class EndsInNaN(testenvs.Counter):
        resets = 0

        def reset(self, *, seed=None, options=None):
            obs, info = super().reset(seed=seed)
            self.resets += 1
            second = self.resets == 2 and nan_in != "final observation"
            return (obs * np.nan if second else obs), info

        def step(self, action):
            obs, reward, _, truncated, info = super().step(action)
            final = self.t == 3 and nan_in == "final observation"
            return (obs * np.nan if final else obs), reward, self.t == 3, truncated, info

    envs = gym.vector.SyncVectorEnv([EndsInNaN], autoreset_mode=AutoresetMode.SAME_STEP)
    obs, _ = envs.reset(seed=0)
    buffer, tracker = ReplayBuffer(10, (1,)), EpisodeTracker(1, History())
    with pytest.raises(NonFiniteError, match="non-finite observation at env step 2"):
        for _ in range(5):
            obs = step_and_store(envs, obs, np.zeros(1, dtype=np.int64), buffer, tracker)
    assert len(buffer) == 2 and np.isfinite(buffer.next_obs[:2]).all()


def test_gaussian_actions_are_clipped_before_the_environment():
    """Target pays -(a - s)^2 with s in [-1, 1] and a clipped to [-2, 2]: never below -9, however wide the policy."""
    from rlcourse.nets import GaussianPolicy

    envs = make_vec_env("rlcourse-test/Target-v0", 4)
    obs, _ = envs.reset(seed=0)
    policy = GaussianPolicy(1, 1, log_std_init=3.0)  # sigma = 20: most draws fall outside [-2, 2]
    rollout, _ = collect_rollout(
        envs, policy, obs, EpisodeTracker(4, History()), np.random.default_rng(0), num_steps=50
    )
    assert rollout.rewards.min() >= -9.0
    assert rollout.actions.abs().max() > 2.0  # the rollout keeps the sampled (unclipped) actions
