"""PPO: the clipped and the KL-penalised variants learn, log their diagnostics, and follow their
definitions."""

import numpy as np
import pytest
import torch

from benchmarks.learning_tests import assert_learned, stored
from benchmarks.learning_tests import train as train_config
from rlcourse.algos import ppo

# What "learns" means: benchmarks/learning_tests.py (the configuration and its stored seeds).
RANDOM_CARTPOLE = stored()["random"]["CartPole-v1"]  # mean return of uniformly random actions


@pytest.mark.parametrize("objective", ["clip", "kl"])
def test_ppo_learns_cartpole_within_seconds(objective):
    agent, history = train_config(f"ppo-{objective}", seed=1)
    assert np.mean(history.column("return")[:20]) < 2 * RANDOM_CARTPOLE
    assert_learned(f"ppo-{objective}", agent)
    last = history.iterations[-1]
    assert {"approx_kl", "clip_fraction", "entropy", "explained_variance", "critic_loss"} <= set(
        last
    )
    # The critic explains most of the return's variance late in training. Not judged on the last
    # rollout alone: once most episodes are cut at 500 steps, one rollout's returns can vary too
    # little to explain.
    assert np.median(history.column("explained_variance", "iterations")[-10:]) > 0.5
    entropy = history.column("entropy", "iterations")
    assert entropy[-3:].mean() < entropy[:3].mean()


def test_one_epoch_one_minibatch_starts_every_update_at_ratio_one():
    """With a single gradient step per rollout, the ratio is exactly 1 when it is taken: nothing is
    clipped, and the step is the plain policy gradient step (the surrogate's gradient at theta' =
    theta)."""
    _, history = ppo.train(
        "CartPole-v1",
        progress=False,
        total_steps=2_048,
        epochs=1,
        minibatches=1,
        num_envs=4,
        rollout_steps=64,
    )
    assert (history.column("clip_fraction", "iterations") == 0).all()
    assert (history.column("approx_kl", "iterations") > 0).all()  # but the policy did move


def test_more_epochs_move_the_policy_further_and_the_clip_becomes_active():
    def run(epochs):
        _, history = ppo.train(
            "CartPole-v1",
            progress=False,
            total_steps=4_096,
            epochs=epochs,
            actor_lr=1e-3,
            rollout_steps=64,
        )
        return history.column("approx_kl", "iterations").mean(), history.column(
            "clip_fraction", "iterations"
        ).mean()

    kl_1, clip_1 = run(1)
    kl_10, clip_10 = run(10)
    assert kl_10 > 3 * kl_1
    assert clip_10 > clip_1


def test_adaptive_kl_coefficient_halves_and_doubles_around_the_target():
    assert ppo.adapt_kl_coef(1.0, kl=0.001, kl_target=0.01) == 0.5
    assert ppo.adapt_kl_coef(1.0, kl=0.02, kl_target=0.01) == 2.0
    assert ppo.adapt_kl_coef(1.0, kl=0.01, kl_target=0.01) == 1.0
    assert ppo.adapt_kl_coef(1.0, kl=0.01 / 1.5 + 1e-9, kl_target=0.01) == 1.0


def test_kl_variant_logs_its_coefficient_and_steers_it():
    _, history = ppo.train(
        "CartPole-v1",
        progress=False,
        objective="kl",
        total_steps=8_192,
        kl_coef=1.0,
        kl_target=0.01,
        rollout_steps=64,
    )
    coef = history.column("kl_coef", "iterations")
    kl = history.column("kl", "iterations")
    assert coef[0] == 1.0
    for i in range(
        len(coef) - 1
    ):  # every change follows the rule, applied to the KL of that iteration
        assert coef[i + 1] == ppo.adapt_kl_coef(coef[i], kl[i], 0.01)
    assert len(set(coef)) > 1


def test_orthogonal_initialisation_is_an_option():
    # The 64 x 64 hidden layer.
    ortho = ppo.make_agent(ppo.Config(), "CartPole-v1").policy.logits[2].weight
    default = ppo.make_agent(ppo.Config(ortho_init=False), "CartPole-v1").policy.logits[2].weight
    # orthogonal with gain sqrt(2): W W^T = 2 I; PyTorch's default (uniform, scaled by fan-in) is
    # far from it
    torch.testing.assert_close(ortho @ ortho.T, 2.0 * torch.eye(64), atol=1e-4, rtol=0)
    assert not torch.allclose(default @ default.T, 2.0 * torch.eye(64), atol=0.1)
    assert default.abs().max() <= 1 / 8  # U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = 64


def test_ppo_runs_a_gaussian_policy_on_pendulum():
    agent, history = ppo.train(
        "Pendulum-v1", progress=False, total_steps=2_048, num_envs=4, rollout_steps=128
    )
    assert len(history.episodes) == 8
    assert agent.policy.log_std.shape == (1,)
    assert np.isfinite(history.column("approx_kl", "iterations")).all()


@pytest.mark.parametrize(
    "changes,message",
    [
        (dict(clip_eps=0.0), "clip_eps=0.0 is not allowed"),
        (dict(clip_eps=1.0), "clip_eps=1.0 is not allowed"),
        (
            dict(objective="trust"),
            "objective='trust' is not allowed: objective must be one of 'clip', 'kl'",
        ),
        (dict(epochs=0), "epochs=0 is not allowed"),
        (dict(minibatches=5_000), "minibatches=5000 is not allowed: a rollout has only"),
        (dict(kl_target=0.0), "kl_target=0.0 is not allowed"),
        (dict(adam_eps=-1.0), "adam_eps=-1.0 is not allowed"),
        (dict(ortho_init="yes"), "ortho_init='yes' is not allowed"),
    ],
)
def test_bad_ppo_hyperparameters_are_named(changes, message):
    with pytest.raises(ValueError, match=message):
        ppo.Config(**changes)


@pytest.mark.parametrize("normalize", [False, True])
def test_gae_batch_gives_lambda_returns_as_targets_and_flattens_time_first(normalize):
    """The batch PPO and TRPO train on: targets are the lambda-returns of the current critic (slide
    eq. 2), advantages are GAE (standardised on request), all flattened (T, N) -> T * N in the same
    order."""
    from types import SimpleNamespace

    from rlcourse.advantages import gae, lambda_returns
    from rlcourse.algos.common import gae_batch
    from rlcourse.nets import ValueNet
    from rlcourse.rollouts import Rollout

    g = torch.Generator().manual_seed(0)
    T, N = 6, 3
    obs, next_obs = torch.randn(T, N, 4, generator=g), torch.randn(T, N, 4, generator=g)
    terminated = torch.zeros(T, N, dtype=torch.bool)
    truncated = torch.zeros(T, N, dtype=torch.bool)
    terminated[2, 0], truncated[4, 1] = True, True
    # S_{t+1} is the next row's S unless the episode ended there (then a reset follows)
    next_obs[:-1] = torch.where((terminated | truncated)[:-1, :, None], next_obs[:-1], obs[1:])
    rollout = Rollout(obs, torch.randint(0, 2, (T, N), generator=g), torch.randn(T, N, generator=g),
                      terminated, truncated, next_obs)  # fmt: skip
    critic = ValueNet(4, (8,))
    config = SimpleNamespace(gamma=0.9, gae_lambda=0.7, normalize_advantages=normalize)
    states, actions, advantages, targets = gae_batch(critic, rollout, config)
    with torch.no_grad():
        v, nv = critic(obs), critic(next_obs)
    expected_adv = gae(rollout.rewards, v, nv, terminated, truncated, 0.9, 0.7)
    torch.testing.assert_close(
        targets, lambda_returns(rollout.rewards, nv, terminated, truncated, 0.9, 0.7).flatten()
    )
    if normalize:
        expected_adv = (expected_adv - expected_adv.mean()) / (expected_adv.std() + 1e-8)
    torch.testing.assert_close(advantages, expected_adv.flatten(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(states[N + 1], obs[1, 1])  # row t * N + n is step t of env n
    assert actions.shape == (T * N,)


def test_minibatches_cover_the_rollout_once_in_near_equal_sizes(monkeypatch):
    """``minibatches`` means that many gradient steps per epoch: 100 transitions in 3 minibatches
    are 33, 33 and 34 (not 33, 33, 33 and a minibatch of 1)."""
    sizes = []
    ratio = ppo.importance_weights

    def record(log_prob, old_log_prob):
        sizes.append(len(log_prob))
        return ratio(log_prob, old_log_prob)

    monkeypatch.setattr(ppo, "importance_weights", record)
    ppo.train(
        "CartPole-v1",
        progress=False,
        num_envs=2,
        rollout_steps=50,
        minibatches=3,
        epochs=1,
        total_steps=100,
    )
    assert sorted(sizes) == [33, 33, 34]


def test_minibatches_are_the_rows_of_one_permutation_and_one_draw_per_epoch():
    """Each minibatch holds, for every tensor, the rows that ``torch.randperm`` put together: the
    same rows in the same order as indexing each tensor by a slice of the permutation, and the same
    random numbers drawn (one permutation; none for a single minibatch)."""
    from rlcourse.algos.common import minibatches

    states, actions = torch.randn(10, 3), torch.arange(10)
    torch.manual_seed(7)
    parts = minibatches(3, states, actions)
    after = torch.rand(1)
    torch.manual_seed(7)
    order = torch.randperm(10)
    assert torch.equal(torch.rand(1), after)
    expected = order.tensor_split(3)
    assert [len(a) for _, a in parts] == [4, 3, 3]
    for (s, a), rows in zip(parts, expected, strict=True):
        assert torch.equal(s, states[rows]) and torch.equal(a, actions[rows])
    # One minibatch: the rollout as it is, nothing drawn
    torch.manual_seed(7)
    ((s, a),) = minibatches(1, states, actions)
    drawn = torch.rand(1)
    torch.manual_seed(7)
    assert s is states and a is actions and torch.equal(drawn, torch.rand(1))


def test_the_clip_fraction_is_the_share_of_all_the_updates_samples(monkeypatch):
    # 3 epochs of 4 minibatches of a 30-transition rollout (sizes 8, 8, 7, 7): the logged clip
    # fraction counts every sample of every minibatch step once, not a mean of minibatch shares.
    seen = []
    real = ppo.clip_fraction
    monkeypatch.setattr(ppo, "clip_fraction", lambda r, eps: seen.append(r) or real(r, eps))
    _, history = ppo.train(
        "CartPole-v1", progress=False, total_steps=60, epochs=3, minibatches=4, num_envs=2,
        rollout_steps=15, clip_eps=0.05, actor_lr=0.05,
    )  # fmt: skip
    assert [len(r) for r in seen] == [3 * 30, 3 * 30]
    logged = history.column("clip_fraction", "iterations")
    for ratios, value in zip(seen, logged, strict=True):
        assert value == pytest.approx(sum(abs(float(w) - 1) > 0.05 for w in ratios) / len(ratios))
    assert logged.max() > 0  # the clip acted, so the count is not trivially 0
