"""No run lost: periodic atomic saves, an exact resume, stops by signal, the run folder checked first.

"Exact" is checked against the definition: a run stopped and resumed gives bit for bit the history
and weights of the same run never stopped (every algorithm, on the CPU), whether it was stopped
mid-way (Ctrl-C right after a save) or finished and extended with a larger budget.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from rlcourse.algos import ALL_ALGORITHMS, grpo
from rlcourse.history import History
from rlcourse.saving import RESUME_FILE, LearningWarning, RunFolderError, RunKeeper
from rlcourse.training import TrainingInterrupted, load_checkpoint

# Small budgets that still make gradient steps (the off-policy ones start learning early).
SHORT = {
    "dqn": ("CartPole-v1", dict(total_steps=600, learning_starts=200, gradient_steps=4)),
    "reinforce": ("CartPole-v1", dict(total_steps=4000)),
    "a2c": ("CartPole-v1", dict(total_steps=1024)),
    "ddpg": ("Pendulum-v1", dict(total_steps=500, learning_starts=200)),
    "td3": ("Pendulum-v1", dict(total_steps=500, learning_starts=200)),
    "sac": ("Pendulum-v1", dict(total_steps=500, learning_starts=200)),
    "trpo": ("CartPole-v1", dict(total_steps=2048, num_envs=4, rollout_steps=128)),
    "ppo": ("CartPole-v1", dict(total_steps=2048, num_envs=4, rollout_steps=128)),
    "grpo": (grpo.TASK, dict(iterations=4, warm_start_steps=20, questions=4, eval_every=2)),
}
BUDGET = {name: "iterations" if name == "grpo" else "total_steps" for name in SHORT}


def _train(algo, **kwargs):
    env_id, config = SHORT[algo]
    config = {**config, "seed": 5, **kwargs}
    module = ALL_ALGORITHMS[algo]
    if algo == "grpo":
        policy, history = grpo.train(progress=False, **config)
        return policy, history
    agent, history = module.train(env_id, progress=False, **config)
    return agent.policy, history


def _same_run(a, b):
    (policy_a, history_a), (policy_b, history_b) = a, b
    for table in ("episodes", "iterations", "evaluations"):
        rows_a = [
            {k: v for k, v in r.items() if k not in ("wall_time", "sps")}
            for r in getattr(history_a, table)
        ]
        rows_b = [
            {k: v for k, v in r.items() if k not in ("wall_time", "sps")}
            for r in getattr(history_b, table)
        ]
        assert rows_a == rows_b, table
    for p, q in zip(policy_a.parameters(), policy_b.parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize("algo", list(SHORT))
def test_a_run_stopped_after_a_save_and_resumed_is_the_run_never_stopped(
    algo, tmp_path, monkeypatch
):
    whole = _train(algo)
    ticks = {"n": 0}
    tick = RunKeeper.tick

    def stop_after_the_second_save(self, **values):
        tick(self, **values)
        ticks["n"] += 1
        if ticks["n"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(RunKeeper, "tick", stop_after_the_second_save)
    with pytest.raises(TrainingInterrupted):
        _train(algo, out=tmp_path, save_every=0)
    monkeypatch.setattr(RunKeeper, "tick", tick)
    assert (tmp_path / RESUME_FILE).exists() and (tmp_path / "checkpoint.pt").exists()
    _same_run(whole, _train(algo, out=tmp_path, resume=True))


@pytest.mark.parametrize("algo", ["a2c", "sac", "grpo"])
def test_a_finished_run_resumed_with_a_larger_budget_is_the_longer_run(algo, tmp_path):
    """(A run evaluates its policy at its end: GRPO's evaluations every 2 iterations make the
    shorter run's end one of the longer run's evaluations.)"""
    name = BUDGET[algo]
    full = SHORT[algo][1][name]
    whole = _train(algo)
    _train(algo, out=tmp_path, **{name: full // 2})
    _same_run(whole, _train(algo, out=tmp_path, resume=True, **{name: full}))


def test_periodic_saves_are_complete_files_at_every_moment(tmp_path):
    """Each save replaces its files atomically: a save cut short leaves the previous one."""
    _train("a2c", out=tmp_path, save_every=0)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    from rlcourse import saving

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(saving.torch, "save", full_disk)
        with pytest.raises(RunFolderError, match="No space left on device.*last complete save"):
            _train("a2c", out=tmp_path, resume=True, total_steps=4096, save_every=0)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert set(after) == set(before)  # no temporary file left behind
    assert after["checkpoint.pt"] == before["checkpoint.pt"]
    assert after[RESUME_FILE] == before[RESUME_FILE]
    load_checkpoint(tmp_path)
    History.load(tmp_path)


def test_a_folder_with_a_run_is_not_trained_over_and_resume_needs_a_save(tmp_path):
    _train("a2c", out=tmp_path / "run")
    with pytest.raises(RunFolderError, match="already holds a run"):
        _train("a2c", out=tmp_path / "run")
    with pytest.raises(RunFolderError, match="nothing to resume"):
        _train("a2c", out=tmp_path / "empty", resume=True)
    with pytest.raises(RunFolderError, match="other hyperparameters: gamma"):
        _train("a2c", out=tmp_path / "run", resume=True, gamma=0.9)


def test_no_gradient_step_in_the_whole_run_is_warned():
    with pytest.warns(LearningWarning, match="no gradient step"):
        _train("dqn", total_steps=150)


def test_a_loss_growing_by_orders_of_magnitude_is_warned():
    history = History()
    keeper = RunKeeper(_agent(), history, {})
    for i, loss in enumerate([2.0, 30.0, 5e3, 3e7]):
        history.add_iteration(i + 1, i, critic_loss=loss)
        if loss < 1e6:
            keeper.tick()
    with pytest.warns(LearningWarning, match="critic loss has grown from 2 to 3e\\+07"):
        keeper.tick()


def _agent():
    from rlcourse.algos import a2c

    return a2c.make_agent(a2c.Config(), "CartPole-v1")


# -- signals and kill -9, through the command line --------------------------------------------------
def _start(tmp_path, *extra):
    env = {**os.environ, "RLCOURSE_FAST": "0"}
    args = [
        sys.executable,
        "-m",
        "rlcourse.cli",
        "train",
        "a2c",
        "--env",
        "CartPole-v1",
        "--steps",
        "5000000",
        "--out",
        str(tmp_path / "run"),
        "--no-progress",
        *extra,
    ]
    # A process started with SIGINT ignored (as pytest-xdist's workers start theirs) keeps it
    # ignored, and Python then never turns it into KeyboardInterrupt: give it back its default.
    return subprocess.Popen(
        args,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _wait_for(path: Path, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)


@pytest.mark.parametrize("name, status", [("SIGTERM", 143), ("SIGHUP", 129), ("SIGINT", 130)])
def test_a_signal_ends_the_run_like_ctrl_c(name, status, tmp_path):
    process = _start(tmp_path, "--save-every", "1000")
    _wait_for(tmp_path / "run" / "config.json")
    time.sleep(2.0)
    process.send_signal(getattr(signal, name))
    _, err = process.communicate(timeout=60)
    assert process.returncode == status, err
    stop = "Ctrl-C" if name == "SIGINT" else name
    assert f"interrupted ({stop})" in err and "--resume" in err and "Traceback" not in err
    history = History.load(tmp_path / "run")
    assert history.iterations
    assert load_checkpoint(tmp_path / "run").algo == "a2c"
    assert (tmp_path / "run" / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_kill_9_loses_at_most_one_save_interval(tmp_path):
    process = _start(tmp_path, "--save-every", "0.5")
    _wait_for(tmp_path / "run" / RESUME_FILE)
    time.sleep(2.0)
    killed_at = time.time()
    process.kill()
    process.communicate(timeout=60)
    run = tmp_path / "run"
    saved = History.load(run)
    assert saved.iterations, "nothing was saved before the kill"
    # The last save is at most one interval old (with a second's slack for the save itself).
    assert killed_at - (run / RESUME_FILE).stat().st_mtime < 0.5 + 1.0
    assert load_checkpoint(run).algo == "a2c"
    env = {**os.environ, "RLCOURSE_FAST": "0"}
    # Each file is replaced atomically, one after another: a kill between history.csv and the
    # files after it leaves history.csv one save ahead of diagnostics.csv and resume.pt. Run the
    # resumed run past the newest step any file records, so it must hold every saved episode.
    newest = max(row["env_step"] for row in saved.episodes + saved.iterations)
    steps = int(newest) + 1024
    resumed = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlcourse.cli",
            "train",
            "a2c",
            "--env",
            "CartPole-v1",
            "--out",
            str(run),
            "--resume",
            "--steps",
            str(steps),
            "--no-progress",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    history = History.load(run)
    assert history.iterations[-1]["env_step"] > saved.iterations[-1]["env_step"]
    np.testing.assert_array_equal(
        history.column("return")[: len(saved.episodes)], saved.column("return")
    )
