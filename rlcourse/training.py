"""What every training loop shares: seeding, history, progress bar, the agent, evaluation, checkpoints.

The history has three tables. ``episodes``: one row per finished training episode (``env_step`` at its
end, ``wall_time`` in seconds since training began, ``return``, ``length``). ``iterations``: one row per
policy update with its diagnostics (see :mod:`rlcourse.diagnostics` for their names). ``evaluations``:
one row per greedy evaluation during training (``eval_every`` in every config; off by default), with the
mean, minimum and maximum return of its episodes.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

__all__ = [
    "History",
    "NonFiniteError",
    "CheckpointError",
    "Agent",
    "seed_everything",
    "torch_threads",
    "progress_bar",
    "check_finite",
    "evaluate",
    "evaluate_on_schedule",
    "save_checkpoint",
    "load_checkpoint",
    "TrainingInterrupted",
    "interruptible",
]


class NonFiniteError(RuntimeError):
    """Training produced NaN or inf; ``.history`` keeps everything recorded before it."""

    def __init__(self, message: str, history: History | None = None):
        super().__init__(message)
        self.history = history


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training. ``.history`` keeps everything recorded until then and ``.agent`` is the agent as
    it was when stopped (a usable policy: the command line saves both before it exits)."""

    def __init__(self, history: History, agent: Any):
        super().__init__("training interrupted (Ctrl-C)")
        self.history, self.agent = history, agent


@contextmanager
def interruptible(history: History, agent: Any) -> Iterator[None]:
    """Turn a Ctrl-C inside the block into :class:`TrainingInterrupted`, which carries the run so far."""
    try:
        yield
    except TrainingInterrupted:
        raise
    except KeyboardInterrupt as exc:
        raise TrainingInterrupted(history, agent) from exc


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or belongs to another algorithm."""


class History:
    """Per-episode returns, per-iteration diagnostics and greedy evaluations of one training run."""

    EPISODE_COLUMNS = ("env_step", "wall_time", "return", "length")
    EVALUATION_COLUMNS = ("env_step", "wall_time", "mean_return", "min_return", "max_return", "episodes")

    def __init__(self) -> None:
        self.episodes: list[dict[str, float]] = []
        self.iterations: list[dict[str, float]] = []
        self.evaluations: list[dict[str, float]] = []
        self.start = time.perf_counter()

    def wall_time(self) -> float:
        return time.perf_counter() - self.start

    def add_episode(self, env_step: int, ret: float, length: int) -> None:
        self.episodes.append({"env_step": env_step, "wall_time": self.wall_time(), "return": ret, "length": length})

    def add_iteration(self, iteration: int, env_step: int, **diagnostics: float) -> None:
        row = {"iteration": iteration, "env_step": env_step, "wall_time": self.wall_time()}
        row.update({k: float(v) for k, v in diagnostics.items()})
        self.iterations.append(row)

    def add_evaluation(self, env_step: int, returns: np.ndarray) -> None:
        returns = np.asarray(returns, dtype=float)
        self.evaluations.append(
            {
                "env_step": env_step,
                "wall_time": self.wall_time(),
                "mean_return": float(returns.mean()),
                "min_return": float(returns.min()),
                "max_return": float(returns.max()),
                "episodes": len(returns),
            }
        )

    def column(self, name: str, table: str = "episodes") -> np.ndarray:
        return np.array([row[name] for row in getattr(self, table)], dtype=float)

    def mean_return(self, last: int = 20) -> float:
        """Mean return of the last ``last`` finished episodes (nan before the first)."""
        returns = self.column("return")[-last:]
        return float(returns.mean()) if len(returns) else float("nan")

    def first_reaching(self, threshold: float, window: int = 20) -> dict[str, float] | None:
        """The first episode row where the mean of the last ``window`` returns reaches ``threshold``."""
        returns = self.column("return")
        for i in range(window - 1, len(returns)):
            if returns[i - window + 1 : i + 1].mean() >= threshold:
                return self.episodes[i]
        return None

    def first_evaluation_reaching(self, threshold: float) -> dict[str, float] | None:
        """The first greedy evaluation whose mean return reaches ``threshold``."""
        return next((row for row in self.evaluations if row["mean_return"] >= threshold), None)

    def save(self, run_dir: str | Path) -> None:
        """Write ``history.csv`` (episodes), ``diagnostics.csv`` (iterations) and, if there were
        any, ``evaluations.csv``."""
        run_dir = Path(run_dir)
        _write_csv(run_dir / "history.csv", self.episodes, list(self.EPISODE_COLUMNS))
        columns = list(dict.fromkeys(k for row in self.iterations for k in row))
        _write_csv(run_dir / "diagnostics.csv", self.iterations, columns)
        if self.evaluations:
            _write_csv(run_dir / "evaluations.csv", self.evaluations, list(self.EVALUATION_COLUMNS))

    @classmethod
    def load(cls, run_dir: str | Path) -> History:
        history = cls()
        run_dir = Path(run_dir)
        history.episodes = _read_csv(run_dir / "history.csv")
        if (run_dir / "diagnostics.csv").exists():
            history.iterations = _read_csv(run_dir / "diagnostics.csv")
        if (run_dir / "evaluations.csv").exists():
            history.evaluations = _read_csv(run_dir / "evaluations.csv")
        return history


def _write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def _read_csv(path: Path) -> list[dict[str, float]]:
    if not path.exists():
        raise FileNotFoundError(f"no history at {path}: is {path.parent} a run folder written by `rlcourse train`?")
    with open(path, newline="") as f:
        return [{k: float(v) if v != "" else math.nan for k, v in row.items()} for row in csv.DictReader(f)]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch, so the same seed gives the same run on the CPU."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch threads, then restore the previous number.

    One thread is the fastest for the lecture's small networks: with more, the threads wait on each
    other, and on a busy 2-core laptop a run can become many times slower.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def progress_bar(total: int, enabled: bool, desc: str):
    """A tqdm bar counting env steps (the notebook-friendly one in Jupyter); ``enabled=False`` hides it."""
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=desc, unit="step", leave=False)


def check_finite(history: History, iteration: int, **quantities: torch.Tensor) -> None:
    """Stop with a message naming the iteration and the quantity if any of them is NaN or inf."""
    for name, value in quantities.items():
        if not torch.isfinite(value).all():
            raise NonFiniteError(
                f"training stopped at iteration {iteration}: the {name.replace('_', ' ')} is not finite "
                f"({value.detach().flatten()[:4].tolist()}); the history up to there is kept. "
                "A smaller learning rate or gradient clipping usually helps.",
                history,
            )


@dataclass
class Agent:
    """A trained policy (and critic) with what is needed to save, reload and run it."""

    algo: str
    env_id: str
    config: Any
    policy: nn.Module
    critic: nn.Module | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def modules(self) -> dict[str, nn.Module]:
        return {k: v for k, v in {"policy": self.policy, "critic": self.critic}.items() if v is not None}

    @torch.no_grad()
    def act(self, obs: np.ndarray, greedy: bool = True) -> np.ndarray:
        """Actions for a batch of observations: the most likely one (``greedy``) or a sample."""
        if not greedy:
            return self.policy.numpy_sampler(np.random.default_rng())(np.asarray(obs))
        device = next(self.policy.parameters()).device
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=device)
        return self.policy.greedy(obs_t).cpu().numpy()


@torch.no_grad()
def evaluate(agent: Agent, episodes: int = 10, seed: int = 10_000, greedy: bool = True) -> np.ndarray:
    """Returns of ``episodes`` evaluation episodes, run in parallel, one per environment copy."""
    from rlcourse.envs import make_vec_env

    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes={episodes!r} is not allowed: evaluate needs at least 1 episode")
    envs = make_vec_env(agent.env_id, episodes)
    obs, _ = envs.reset(seed=seed)
    returns = np.zeros(episodes)
    running = np.ones(episodes, dtype=bool)
    space = envs.single_action_space
    while running.any():
        actions = agent.act(obs, greedy=greedy)
        if isinstance(space, gym.spaces.Box):
            actions = np.clip(actions, space.low, space.high)
        obs, rewards, terminated, truncated, _ = envs.step(actions)
        returns += rewards * running
        running &= ~(terminated | truncated)
    envs.close()
    return returns


def evaluate_on_schedule(agent: Agent, history: History, env_step: int, config: Any, final: bool = False) -> None:
    """Every ``config.eval_every`` env steps (and once at the end, ``final=True``), run
    ``config.eval_episodes`` greedy episodes and add their returns to ``history.evaluations``.

    Off-policy methods train on exploratory behaviour (epsilon-greedy, noisy or stochastic actions),
    so their training returns understate the policy they have learned; this measures the policy itself.
    ``eval_every=0`` turns it off. Each evaluation has its own environment seeds, so the same run
    gives the same evaluations; the training's random numbers are not touched.
    """
    every = config.eval_every
    if not every:
        return
    last = history.evaluations[-1]["env_step"] if history.evaluations else 0
    if (final and last < env_step) or env_step - last >= every:
        seed = 10_000 + 100 * len(history.evaluations)
        history.add_evaluation(env_step, evaluate(agent, config.eval_episodes, seed=seed))


CHECKPOINT_FORMAT = "rlcourse-checkpoint-1"


def save_checkpoint(agent: Agent, path: str | Path) -> None:
    """Write the agent atomically: a crash mid-write leaves any earlier file at ``path`` intact."""
    from rlcourse.config import to_dict

    path = Path(path)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "algo": agent.algo,
        "env_id": agent.env_id,
        "config": to_dict(agent.config),
        "modules": {name: module.state_dict() for name, module in agent.modules().items()},
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, algo: str | None = None, device: str = "cpu") -> Agent:
    """Reload an agent saved by :func:`save_checkpoint`, with clear errors for bad files.

    ``weights_only=True``: loading never runs code from the file.
    """
    from rlcourse.algos import get_algorithm
    from rlcourse.config import from_dict

    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises several types for truncated or foreign files
        raise CheckpointError(f"{path} is not a readable rlcourse checkpoint (corrupt or truncated?): {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not an rlcourse checkpoint (no '{CHECKPOINT_FORMAT}' marker)")
    if algo is not None and payload["algo"] != algo:
        raise CheckpointError(f"{path} holds an agent trained with {payload['algo']}, not with {algo}")
    module = get_algorithm(payload["algo"])
    # The device it was trained on may not exist here (trained on a GPU, evaluated on a laptop).
    config = from_dict(module.Config, {**payload["config"], "device": device})
    agent = module.make_agent(config, payload["env_id"])
    try:
        for name, m in agent.modules().items():
            m.load_state_dict(payload["modules"][name])
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: the saved weights do not fit the {payload['algo']} networks: {exc}") from exc
    return agent


def write_json(path: str | Path, data: dict) -> None:
    Path(path).write_text(json.dumps(data, indent=2) + "\n")
