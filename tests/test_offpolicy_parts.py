"""Replay buffer, Polyak averaging and the off-policy targets against their definitions."""

import numpy as np
import pytest
import torch

from rlcourse.buffers import ReplayBuffer
from rlcourse.nets import mlp, polyak_update
from rlcourse.objectives import double_dqn_target, dqn_target, soft_td_target, td3_target


def test_replay_buffer_wraps_around_and_overwrites_the_oldest():
    buffer = ReplayBuffer(5, (1,))
    for step in range(3):  # 3 vector steps of 2 environments: 6 transitions into 5 slots
        obs = np.array([[2 * step], [2 * step + 1]], dtype=np.float32)
        buffer.add(
            obs,
            np.array([0, 1]),
            obs[:, 0],
            obs + 1,
            np.array([False, True]),
            np.array([True, False]),
        )
    assert len(buffer) == 5
    # Transition 0 was overwritten by transition 5, which went to slot 0.
    assert sorted(buffer.obs[:, 0].tolist()) == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert buffer.obs[0, 0] == 5.0 and buffer.next_obs[0, 0] == 6.0
    # terminated and truncated are stored apart.
    assert buffer.terminated.tolist() == [True, True, False, True, False]
    assert buffer.truncated.tolist() == [False, False, True, False, True]


@pytest.mark.parametrize("capacity", [1, 2, 5])
def test_replay_buffer_puts_row_i_at_position_plus_i_modulo_capacity(capacity):
    # Every start position and every batch size up to the capacity, wrapping or not, against the
    # definition: the i-th new transition goes to (position + i) mod capacity
    for start in range(capacity):
        for n in range(1, capacity + 1):
            buffer = ReplayBuffer(capacity, (2,))
            for _ in range(start):  # move the write position to `start`
                z = np.zeros((1, 2), np.float32)
                buffer.add(z, np.zeros(1), np.zeros(1), z, np.zeros(1, bool), np.zeros(1, bool))
            expected = {name: getattr(buffer, name).copy() for name in ReplayBuffer._ARRAYS}
            rows = np.arange(1, n + 1)
            new = {
                "obs": np.stack([rows, -rows], 1).astype(np.float32),
                "actions": rows,
                "rewards": 10.0 * rows,
                "next_obs": np.stack([rows, rows], 1).astype(np.float32) + 0.5,
                "terminated": rows % 2 == 0,
                "truncated": rows % 3 == 0,
            }
            buffer.add(*(new[name] for name in ReplayBuffer._ARRAYS))
            where = (start + np.arange(n)) % capacity
            for name in ReplayBuffer._ARRAYS:
                expected[name][where] = new[name]
                np.testing.assert_array_equal(getattr(buffer, name), expected[name], err_msg=name)
            assert buffer.position == (start + n) % capacity
            assert len(buffer) == min(start + n, capacity)


def test_replay_buffer_samples_uniformly_what_it_holds():
    buffer = ReplayBuffer(100, (1,))
    buffer.add(
        np.arange(10, dtype=np.float32)[:, None],
        np.zeros(10),
        np.arange(10),
        np.zeros((10, 1)),
        np.zeros(10, bool),
        np.zeros(10, bool),
    )
    batch = buffer.sample(20_000, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(batch.obs[:, 0].long(), minlength=10).float() / 20_000
    assert counts.shape == (10,)  # only the 10 stored transitions are ever drawn
    torch.testing.assert_close(counts, torch.full((10,), 0.1), atol=0.015, rtol=0)
    torch.testing.assert_close(batch.rewards, batch.obs[:, 0])  # rows stay together
    with pytest.raises(ValueError, match="empty replay buffer"):
        ReplayBuffer(3, (1,)).sample(1)


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.995, 1.0])
def test_polyak_update_is_the_slides_average(rho):
    torch.manual_seed(0)
    target, online = mlp([3, 4, 2]), mlp([3, 4, 2])
    before = [p.clone() for p in target.parameters()]
    polyak_update(target, online, rho)
    for old, new, w in zip(before, target.parameters(), online.parameters(), strict=True):
        torch.testing.assert_close(new, rho * old + (1 - rho) * w)
    with pytest.raises(ValueError, match="rho=1.5 is not allowed"):
        polyak_update(target, online, 1.5)


def batch(seed=0, B=16):
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(B, generator=g)
    terminated = torch.rand(B, generator=g) < 0.3
    return g, rewards, terminated


def test_dqn_targets():
    g, r, term = batch()
    next_q_target, next_q_online = torch.randn(16, 3, generator=g), torch.randn(16, 3, generator=g)
    for j in range(16):
        boot = 0.0 if term[j] else 0.9 * next_q_target[j].max()
        assert dqn_target(r, next_q_target, term, 0.9)[j] == pytest.approx(float(r[j] + boot))
        a_star = next_q_online[j].argmax()
        boot = 0.0 if term[j] else 0.9 * next_q_target[j, a_star]
        assert double_dqn_target(r, next_q_target, next_q_online, term, 0.9)[j] == pytest.approx(
            float(r[j] + boot)
        )


def test_td3_target_takes_the_smaller_critic_and_stops_at_termination():
    g, r, term = batch(1)
    q1, q2 = torch.randn(16, generator=g), torch.randn(16, generator=g)
    expected = torch.tensor(
        [r[j] + (0.0 if term[j] else 0.99 * min(q1[j], q2[j])) for j in range(16)]
    )
    torch.testing.assert_close(
        td3_target(rewards=r, next_q1=q1, next_q2=q2, terminated=term, gamma=0.99), expected
    )
    assert term.any() and (~term).any()


def test_soft_td_target_matches_the_contract():
    g, r, term = batch(2)
    next_q, next_log_prob = torch.randn(16, generator=g), torch.randn(16, generator=g)
    got = soft_td_target(
        rewards=r, next_q=next_q, next_log_prob=next_log_prob, terminated=term, gamma=0.9, alpha=0.2
    )
    expected = r + 0.9 * (1 - term.float()) * (next_q - 0.2 * next_log_prob)
    torch.testing.assert_close(got, expected)
    # alpha = 0 is the ordinary (hard) target.
    hard = soft_td_target(r, next_q, next_log_prob, term, 0.9, 0.0)
    torch.testing.assert_close(hard, r + 0.9 * (1 - term.float()) * next_q)


def test_replay_buffer_refuses_more_transitions_than_it_holds():
    buffer = ReplayBuffer(2, (1,))
    with pytest.raises(
        ValueError, match="cannot add 3 transitions at once to a buffer of capacity 2"
    ):
        buffer.add(
            np.zeros((3, 1)),
            np.zeros(3),
            np.zeros(3),
            np.zeros((3, 1)),
            np.zeros(3, bool),
            np.zeros(3, bool),
        )


def test_the_actor_step_leaves_the_critic_untouched():
    """DDPG's and TD3's actor step, gradient ascent on q_w(S, mu_theta(S)) w.r.t. theta only, with
    the critics frozen as train() does: w gets no gradient, theta does, and w is trainable again
    after."""
    from rlcourse.algos import offpolicy, td3

    agent = td3.make_agent(td3.Config(hidden=(8,)), "Pendulum-v1")
    obs = torch.randn(5, 3)
    before = [p.clone() for p in agent.critic.parameters()]
    actor_before = [p.clone() for p in agent.policy.parameters()]
    optimizer = torch.optim.Adam(agent.policy.parameters(), lr=0.1)
    with offpolicy.frozen(agent.critic):
        loss = -agent.critic(obs, agent.policy(obs), first=1)[0].mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    assert all(p.grad is None for p in agent.critic.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, agent.critic.parameters(), strict=True))
    changed = zip(actor_before, agent.policy.parameters(), strict=True)
    assert any(not torch.equal(a, b) for a, b in changed)
    assert all(p.requires_grad for p in agent.critic.parameters())  # unfrozen again


def test_td3_smoothed_target_action_for_a_given_noise():
    """A' = clip(mu_{theta-}(S') + clip(epsilon, -c, c), low, high) with c = target_noise_clip *
    scale (Fujimoto et al. 2018, eq. 14); without epsilon it draws randn * target_noise * scale."""
    from rlcourse.algos import td3

    agent = td3.make_agent(td3.Config(hidden=(8,)), "Pendulum-v1")  # torques in [-2, 2]
    actor, config = agent.policy, td3.Config(target_noise=0.2, target_noise_clip=0.5)
    obs = torch.randn(6, 3)
    epsilon = torch.tensor([-3.0, -0.7, -0.1, 0.1, 0.7, 3.0])[:, None]
    mu = actor(obs)
    expected = (mu + epsilon.clamp(-1.0, 1.0)).clamp(-2.0, 2.0)  # c = 0.5 * scale 2 = 1
    got = td3.smoothed_target_action(actor, obs, config, epsilon=epsilon)
    torch.testing.assert_close(got, expected)
    # Drawn: the same as passing the draw.
    torch.manual_seed(0)
    drawn = td3.smoothed_target_action(actor, obs, config)
    torch.manual_seed(0)
    given = torch.randn_like(mu) * 0.2 * 2.0
    torch.testing.assert_close(drawn, td3.smoothed_target_action(actor, obs, config, epsilon=given))
    # No noise configured and none given: mu_{theta-}(S') itself.
    off = td3.Config(target_noise=0.0)
    torch.testing.assert_close(td3.smoothed_target_action(actor, obs, off), mu)


@pytest.mark.parametrize("double", [False, True])
def test_dqn_targets_valued_together_are_those_of_one_minibatch_at_a_time(monkeypatch, double):
    # DQN values all minibatches up to the next target update in one forward pass of w-. With
    # TARGET_ROWS = batch_size it values one minibatch at a time, the loop as the slides write it;
    # the draws are the same (one torch.randint of k * B is k of B), so the runs must agree.
    from rlcourse.algos import dqn

    sizes = []
    sample = ReplayBuffer.sample
    monkeypatch.setattr(
        ReplayBuffer, "sample", lambda self, n, **kw: sizes.append(n) or sample(self, n, **kw)
    )

    def run(rows):
        monkeypatch.setattr(dqn, "TARGET_ROWS", rows)
        sizes.clear()
        config = dqn.Config(
            total_steps=1_000, learning_starts=500, train_every=256, gradient_steps=24,
            target_update_every=10, batch_size=16, hidden=(32, 32), double=double,
        )  # fmt: skip
        agent, history = dqn.train("CartPole-v1", config, progress=False)
        return list(sizes), history.iterations, list(agent.policy.parameters())

    together, per_minibatch = run(8_192), run(16)
    # Two phases (env steps 500 and 756) of 24 steps, w- copied every 10: segments of 10, 10, 4,
    # then 6, 10, 8 (the second phase starts 4 steps after a copy)
    assert together[0] == [16 * k for k in (10, 10, 4, 6, 10, 8)]
    assert per_minibatch[0] == [16] * 48
    for a, b in zip(together[1], per_minibatch[1], strict=True):
        assert a["q_loss"] == pytest.approx(b["q_loss"], rel=1e-5)
        assert a["q_mean"] == pytest.approx(b["q_mean"], rel=1e-5)
    for p, q in zip(together[2], per_minibatch[2], strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
