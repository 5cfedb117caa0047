"""Groups of 0/1 outcome rewards (rlcourse.advantages.sample_group, all_equal_fraction) against
simulation and exact enumeration, and the group-relative advantages of the groups they make."""

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rlcourse.advantages import all_equal_fraction, group_relative_advantages, sample_group


def test_all_equal_fraction_matches_simulation():
    rng = np.random.default_rng(0)
    for g, p in [(2, 0.5), (8, 0.3), (16, 0.9), (4, 0.0)]:
        rewards = (rng.random((20_000, g)) < p).astype(float)
        simulated = (rewards == rewards[:, :1]).all(axis=1).mean()
        assert all_equal_fraction(g, p) == pytest.approx(simulated, abs=0.01)
        # and such groups are exactly the ones with zero advantages
        adv = group_relative_advantages(torch.tensor(rewards[:200]))
        equal = (rewards[:200] == rewards[:200, :1]).all(axis=1)
        assert (adv[torch.tensor(equal)] == 0).all()


def test_sample_group_checks_its_arguments():
    assert sample_group(8, 1.0).tolist() == [1.0] * 8
    assert sample_group(8, 0.0).tolist() == [0.0] * 8
    with pytest.raises(ValueError, match="at least 2"):
        sample_group(1, 0.5)
    with pytest.raises(ValueError, match="probability"):
        sample_group(4, 1.5)


# Definition-based checks added with the move to the math floor.


@pytest.mark.parametrize("G", [2, 3, 5, 8])
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.73, 1.0])
def test_all_equal_fraction_is_the_sum_over_all_outcomes(G, p):
    # P(all equal) = sum over the 2^G outcomes with R_1 = ... = R_G of prod_i P(R_i)
    total = 0.0
    for outcome in itertools.product((0, 1), repeat=G):
        if len(set(outcome)) == 1:
            total += np.prod([p if r else 1 - p for r in outcome])
    assert all_equal_fraction(G, p) == pytest.approx(total, abs=1e-15)


@settings(max_examples=50, deadline=None)
@given(G=st.integers(2, 40), p=st.floats(0.0, 1.0), seed=st.integers(0, 2**32 - 1))
def test_sample_group_gives_g_zero_one_rewards_and_equal_groups_get_zero_advantages(G, p, seed):
    rewards = sample_group(G, p, seed)
    assert rewards.shape == (G,) and set(np.unique(rewards)) <= {0.0, 1.0}
    np.testing.assert_array_equal(rewards, sample_group(G, p, seed))  # the seed fixes it
    adv = group_relative_advantages(torch.tensor(rewards))
    if rewards.min() == rewards.max():
        assert (adv == 0).all()
    assert all_equal_fraction(G, p) <= 1.0 + 1e-12


def test_all_equal_fraction_names_bad_input():
    with pytest.raises(ValueError, match="p="):
        all_equal_fraction(4, 1.5)
    with pytest.raises(ValueError, match="group_size="):
        all_equal_fraction(0, 0.5)
