"""Every algorithm's ``SLIDE`` configuration, its slide box taken literally, is what its docstring
says and trains on a small real environment, on several seeds.

"Trains" is measured against what an agent gets without learning, on every seed: on CartPole-v1
the last ten training episodes must return 2.5 times what uniformly random actions get; on
Pendulum-v1 they must return clearly more than the first ten, which start from the untrained
policy. The budgets are short runs, far from solving either task; the off-policy networks and
minibatches are small (their sizes are not on the slides).
"""

import math

import numpy as np
import pytest

from rlcourse.algos import ALGORITHMS, a2c, ppo, sac, td3, trpo
from rlcourse.config import replace

RANDOM_CARTPOLE = 22.0  # mean return of uniformly random actions on CartPole-v1
PENDULUM_GAIN = 300.0  # Pendulum-v1: a policy that has not learned returns about -1200 to -1600
SEEDS = (0, 1, 2)

# Environment and the changes for a short run (budget, network and minibatch sizes).
CASES = {
    "dqn": ("CartPole-v1", dict(total_steps=5_000, hidden=(32, 32))),
    "reinforce": ("CartPole-v1", dict(total_steps=30_000)),
    "a2c": ("CartPole-v1", dict(total_steps=8_192)),
    "ddpg": ("Pendulum-v1", dict(total_steps=6_000, hidden=(32, 32), batch_size=64)),
    "td3": ("Pendulum-v1", dict(total_steps=6_000, hidden=(32, 32), batch_size=64)),
    "sac": ("Pendulum-v1", dict(total_steps=6_000, hidden=(32, 32), batch_size=64)),
    "trpo": ("CartPole-v1", dict(total_steps=16_384)),
    "ppo": ("CartPole-v1", dict(total_steps=16_384)),
}


def test_every_algorithm_has_a_slide_configuration():
    assert set(CASES) == set(ALGORITHMS)
    for name, module in ALGORITHMS.items():
        assert isinstance(module.SLIDE, module.Config), name


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_the_slide_configuration_is_the_box(name):
    """No practice the slides leave out: losses summed over the rollout, advantages as estimated
    (not standardised), gradients unclipped, no entropy bonus, no random warm-up."""
    config = ALGORITHMS[name].SLIDE
    fields = vars(config)
    if "reduction" in fields:
        assert config.reduction == "sum"
    if "normalize_advantages" in fields:
        assert config.normalize_advantages is False
    if "max_grad_norm" in fields:
        assert config.max_grad_norm == math.inf
    if "ent_coef" in fields:
        assert config.ent_coef == 0.0
    if name in ("ddpg", "td3", "sac"):
        assert config.learning_starts == 0


def test_the_boxes_own_choices():
    assert a2c.SLIDE.advantage == "gae"  # the box "A2C + GAE"
    assert not sac.SLIDE.autotune and not sac.SLIDE.twin  # fixed lambda, one critic q_w
    assert trpo.SLIDE.epochs == 1  # "TRPO Algorithm"; more epochs are "Multi-Epoch TRPO"
    assert ppo.SLIDE.minibatches == 1 and ppo.SLIDE.objective == "clip"  # sums over t = 0..T-1
    assert td3.SLIDE.twin and td3.SLIDE.policy_delay > 1 and td3.SLIDE.target_noise > 0


@pytest.mark.parametrize("module", [a2c, ppo])
def test_the_sum_is_the_slides_sum(module):
    """reduction="sum" gives the slide's sums: on the first update (same seed, so the same
    rollout and the same networks) both losses are T times their means over the T transitions."""
    size = 8 * 16
    short = dict(num_envs=8, rollout_steps=16, total_steps=size, progress=False)
    if module is ppo:
        short.update(epochs=1, minibatches=1)
    _, mean = module.train("CartPole-v1", reduction="mean", **short)
    _, total = module.train("CartPole-v1", reduction="sum", **short)
    for loss in ("actor_loss", "critic_loss"):
        expected = size * mean.iterations[0][loss]
        assert total.iterations[0][loss] == pytest.approx(expected, rel=1e-5), loss


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_the_slide_configuration_trains(name):
    module = ALGORITHMS[name]
    env_id, changes = CASES[name]
    for seed in SEEDS:
        config = replace(module.SLIDE, seed=seed, **changes)
        _, history = module.train(env_id, config, progress=False)
        returns = history.column("return")
        first, last = np.mean(returns[:10]), np.mean(returns[-10:])
        if env_id == "CartPole-v1":
            assert last > 2.5 * RANDOM_CARTPOLE, (seed, first, last)
        else:
            assert last > first + PENDULUM_GAIN, (seed, first, last)
