"""History, plots and checkpoints: what a run leaves behind can be read back."""

import numpy as np
import pytest
import torch

from rlcourse.algos import a2c, reinforce
from rlcourse.plots import learning_curve, rolling_mean
from rlcourse.training import History, load_checkpoint, save_checkpoint


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


@pytest.mark.parametrize("module", [a2c, reinforce])
def test_checkpoint_round_trip_gives_the_same_actions(module, tmp_path):
    agent, _ = module.train("CartPole-v1", progress=False, total_steps=1_000, hidden=(16,))
    save_checkpoint(agent, tmp_path / "c.pt")
    back = load_checkpoint(tmp_path / "c.pt", algo=module.NAME)
    obs = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    np.testing.assert_array_equal(agent.act(obs), back.act(obs))
    if agent.critic is not None:
        torch.testing.assert_close(back.critic(torch.as_tensor(obs)), agent.critic(torch.as_tensor(obs)))
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
@pytest.mark.parametrize("module", [a2c, reinforce])
def test_trains_on_cuda(module):
    agent, history = module.train("CartPole-v1", progress=False, total_steps=5_000, device="cuda")
    assert next(agent.policy.parameters()).is_cuda and len(history.episodes) > 0


def test_cuda_is_refused_clearly_when_absent():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="device='cuda' is not available: this machine has no CUDA GPU"):
        a2c.train("CartPole-v1", progress=False, device="cuda")
