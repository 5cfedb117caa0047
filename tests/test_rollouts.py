"""Rollout collection, and the truncation rule: bootstrap on truncation, never on termination."""

import numpy as np
import pytest
import testenvs  # noqa: F401  (registers the test environments)
import torch

from rlcourse.advantages import gae, returns_to_go
from rlcourse.envs import make_vec_env
from rlcourse.nets import CategoricalPolicy
from rlcourse.rollouts import EpisodeTracker, collect_rollout, complete_episodes_mask
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


def test_collecting_until_enough_episodes_finish():
    envs = make_vec_env("rlcourse-test/Counter-v0", 2)
    obs, _ = envs.reset(seed=0)
    tracker = EpisodeTracker(2, History())
    rollout, _ = collect_rollout(envs, CategoricalPolicy(1, 2), obs, tracker, np.random.default_rng(0), min_episodes=3)
    assert rollout.rewards.shape[0] == 10  # both finish at step 5, then both again at step 10
    mask = complete_episodes_mask(rollout.terminated, rollout.truncated)
    assert mask.all()


def test_complete_episodes_mask_drops_the_unfinished_tail():
    done = torch.tensor([[0, 0], [1, 0], [0, 0], [0, 1], [0, 0]], dtype=torch.bool)
    mask = complete_episodes_mask(done, torch.zeros_like(done))
    expected = torch.tensor([[1, 1], [1, 1], [0, 1], [0, 1], [0, 0]], dtype=torch.bool)
    assert torch.equal(mask, expected)


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
