"""History, plots and checkpoints: what a run leaves behind can be read back."""

import dataclasses

import numpy as np
import pytest
import torch

from rlcourse.algos import ALGORITHMS, a2c, dqn, reinforce
from rlcourse.plots import learning_curve, rolling_mean
from rlcourse.training import History, evaluate, load_checkpoint, save_checkpoint


def test_rolling_mean_is_the_mean_of_the_last_window_values():
    x = np.array([1.0, 3.0, 5.0, 7.0, 9.0])
    expected = [np.mean(x[max(0, i - 2) : i + 1]) for i in range(5)]
    np.testing.assert_allclose(rolling_mean(x, 3), expected)


def test_history_round_trip_and_threshold(tmp_path):
    h = History()
    for i, r in enumerate([10, 20, 30, 40, 50]):
        h.add_episode(env_step=100 * (i + 1), ret=r, length=r)
    h.add_iteration(1, 500, entropy=0.5, approx_kl=0.01)
    assert h.first_reaching(35, window=2)["env_step"] == 400  # mean(30, 40) = 35
    assert h.first_reaching(100, window=2) is None
    assert h.mean_return(last=3) == 40
    h.save(tmp_path)
    back = History.load(tmp_path)
    assert back.column("return").tolist() == [10, 20, 30, 40, 50]
    assert back.iterations[0]["entropy"] == 0.5
    fig = learning_curve({"run": back}, threshold=45)
    assert fig.axes[0].get_xlabel() == "environment steps"


def test_evaluations_round_trip_and_first_reaching(tmp_path):
    h = History()
    h.add_evaluation(1_000, np.array([100.0, 300.0]))
    h.add_evaluation(2_000, np.array([480.0, 500.0]))
    assert h.evaluations[0]["mean_return"] == 200 and h.evaluations[0]["min_return"] == 100
    assert h.first_evaluation_reaching(475)["env_step"] == 2_000
    assert h.first_evaluation_reaching(501) is None
    h.save(tmp_path)
    assert History.load(tmp_path).evaluations == h.evaluations


def test_no_evaluations_file_without_evaluations(tmp_path):
    History().save(tmp_path)
    assert not (tmp_path / "evaluations.csv").exists()
    assert History.load(tmp_path).evaluations == []


def test_evaluation_schedule_every_k_steps_and_once_at_the_end():
    """eval_every=300 over 1000 steps: evaluations at 300, 600, 900 (the first step at or past each
    multiple) and the final one at 1000, each with eval_episodes greedy episodes."""
    agent, history = a2c.train(
        "CartPole-v1",
        progress=False,
        total_steps=1_000,
        num_envs=4,
        rollout_steps=25,
        hidden=(8,),
        eval_every=300,
        eval_episodes=3,
    )
    steps = [row["env_step"] for row in history.evaluations]
    assert steps == [300, 600, 900, 1_000]
    assert all(row["episodes"] == 3 for row in history.evaluations)
    # the final evaluation is the returned agent's greedy policy on the same seeds
    final = history.evaluations[-1]
    returns = evaluate(agent, 3, seed=10_000 + 100 * 3)
    assert final["mean_return"] == pytest.approx(returns.mean())


def test_evaluation_does_not_change_the_training_run():
    kwargs = dict(
        progress=False,
        total_steps=1_500,
        learning_starts=200,
        train_every=100,
        gradient_steps=10,
        hidden=(16,),
    )
    _, plain = dqn.train("CartPole-v1", **kwargs)
    _, evaluated = dqn.train("CartPole-v1", eval_every=500, **kwargs)
    assert plain.column("return").tolist() == evaluated.column("return").tolist()
    assert len(evaluated.evaluations) == 3


@pytest.mark.parametrize("module", [a2c, reinforce])
def test_checkpoint_round_trip_gives_the_same_actions(module, tmp_path):
    agent, _ = module.train("CartPole-v1", progress=False, total_steps=1_000, hidden=(16,))
    save_checkpoint(agent, tmp_path / "c.pt")
    back = load_checkpoint(tmp_path / "c.pt", algo=module.NAME)
    obs = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    np.testing.assert_array_equal(agent.act(obs), back.act(obs))
    if agent.critic is not None:
        torch.testing.assert_close(
            back.critic(torch.as_tensor(obs)), agent.critic(torch.as_tensor(obs))
        )
    assert back.config == agent.config


def test_checkpoint_is_replaced_atomically(tmp_path, monkeypatch):
    agent, _ = a2c.train("CartPole-v1", progress=False, total_steps=500)
    path = tmp_path / "c.pt"
    save_checkpoint(agent, path)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError):
        save_checkpoint(agent, path)
    assert path.read_bytes() == before


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_trains_on_cuda(name):
    module = ALGORITHMS[name]
    env_id = "Pendulum-v1" if name in ("ddpg", "td3") else "CartPole-v1"
    extra = (
        {"learning_starts": 200}
        if "learning_starts" in {f.name for f in dataclasses.fields(module.Config)}
        else {}
    )
    agent, history = module.train(env_id, progress=False, total_steps=2_000, device="cuda", **extra)
    assert next(agent.policy.parameters()).is_cuda and len(history.episodes) > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_grpo_trains_on_cuda():
    from rlcourse.algos import grpo

    config = grpo.Config(
        hidden=32, warm_start_steps=20, questions=8, iterations=3, eval_every=1, device="cuda"
    )
    policy, history = grpo.train(config, progress=False, rewards="per_token")
    assert next(policy.parameters()).is_cuda and len(history.evaluations) == 4


def test_cuda_is_refused_clearly_when_absent():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(
        ValueError, match="device='cuda' is not available: this machine has no CUDA GPU"
    ):
        a2c.train("CartPole-v1", progress=False, device="cuda")
