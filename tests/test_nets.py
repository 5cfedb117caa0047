"""Policy heads: the cheap sampler draws from the same distribution as the distribution object."""

import gymnasium as gym
import pytest
import torch

from rlcourse.nets import CategoricalPolicy, GaussianPolicy, ValueNet, make_policy


def test_gumbel_max_sampling_matches_the_softmax_probabilities():
    torch.manual_seed(0)
    policy = CategoricalPolicy(3, 4)
    with torch.no_grad():
        policy.logits[-1].weight.mul_(300.0)  # make the probabilities far from uniform
        obs = torch.randn(2, 3)
        probs = policy(obs).probs
        draws = policy.sample(obs.repeat(20_000, 1)).view(20_000, 2)
    freq = torch.stack([torch.bincount(draws[:, i], minlength=4) for i in range(2)]).float() / 20_000
    assert probs.max() - probs.min() > 0.3
    torch.testing.assert_close(freq, probs, atol=0.015, rtol=0)


def test_gaussian_sample_has_the_policy_mean_and_std():
    torch.manual_seed(0)
    policy = GaussianPolicy(2, 3, log_std_init=-0.5)
    obs = torch.randn(1, 2).repeat(50_000, 1)
    with torch.no_grad():
        draws = policy.sample(obs)
        mean = policy.greedy(obs[:1])
    torch.testing.assert_close(draws.mean(0), mean[0], atol=0.02, rtol=0)
    torch.testing.assert_close(draws.std(0), torch.full((3,), -0.5).exp(), atol=0.02, rtol=0)


def test_log_prob_and_entropy_are_one_number_per_state():
    policy = GaussianPolicy(2, 3)
    pi = policy(torch.randn(5, 2))
    assert pi.log_prob(torch.zeros(5, 3)).shape == (5,) and pi.entropy().shape == (5,)
    assert ValueNet(2)(torch.randn(7, 5, 2)).shape == (7, 5)


def test_unsupported_spaces_are_named():
    box = gym.spaces.Box(-1, 1, (3,))
    with pytest.raises(ValueError, match="reinforce cannot handle the action space Tuple"):
        make_policy(box, gym.spaces.Tuple((gym.spaces.Discrete(2),)), (8,), "reinforce")
    with pytest.raises(ValueError, match="observation space .* is not supported"):
        make_policy(gym.spaces.Box(-1, 1, (3, 4)), gym.spaces.Discrete(2), (8,), "a2c")
