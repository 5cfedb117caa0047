"""What every training loop shares: seeding, history, progress bar, the agent, evaluation,
checkpoints.

:class:`History` (the run's three tables) and :class:`NonFiniteError` live in
:mod:`rlcourse.history`, a floor down, so that :mod:`rlcourse.rollouts` can record episodes without
importing this module; they are re-exported here. :func:`load_checkpoint` finds an algorithm module
by name through the registry that :mod:`rlcourse.algos` hands to :func:`register_algorithms` when it
is imported: this floor never imports an algorithm (see :data:`rlcourse.FLOORS`).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlcourse.history import History, NonFiniteError, write_atomic

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
    "register_algorithms",
    "TrainingInterrupted",
]


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C or a signal (``.stop``: ``"Ctrl-C"``, ``"SIGTERM"`` or
    ``"SIGHUP"``). ``.history`` keeps everything recorded until then and ``.agent`` is the agent as
    it was when stopped (a usable policy: with a run folder, both are written there before this is
    raised; see :mod:`rlcourse.saving`)."""

    def __init__(self, history: History, agent: Any, stop: str = "Ctrl-C"):
        super().__init__(f"training interrupted ({stop})")
        self.history, self.agent, self.stop = history, agent, stop


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or belongs to another algorithm."""


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
    """A tqdm bar counting env steps (the notebook-friendly one in Jupyter); ``enabled=False``
    hides it. A resumed run moves it on to the steps already done (``bar.update(steps)``)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=desc, unit="step", leave=False)


def check_finite(history: History, iteration: int, **quantities: torch.Tensor) -> None:
    """Stop with a message naming the iteration and the quantity if any of them is NaN or inf."""
    for name, value in quantities.items():
        # A loss is one number: reading it is one call, where isfinite().all() takes several.
        finite = (
            math.isfinite(value.item()) if value.numel() == 1 else bool(torch.isfinite(value).all())
        )
        if not finite:
            raise NonFiniteError(
                f"training stopped at iteration {iteration}: the {name.replace('_', ' ')} is not "
                f"finite ({value.detach().flatten()[:4].tolist()}); the history up to there is "
                "kept. A smaller learning rate or gradient clipping usually helps.",
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
        return {
            k: v for k, v in {"policy": self.policy, "critic": self.critic}.items() if v is not None
        }

    @torch.no_grad()
    def act(self, obs: np.ndarray, greedy: bool = True) -> np.ndarray:
        """Actions for a batch of observations: the most likely one (``greedy``) or a sample."""
        if not greedy:
            return self.policy.numpy_sampler(np.random.default_rng())(np.asarray(obs))
        device = next(self.policy.parameters()).device
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=device)
        return self.policy.greedy(obs_t).cpu().numpy()


@torch.no_grad()
def evaluate(
    agent: Agent, episodes: int = 10, seed: int = 10_000, greedy: bool = True
) -> np.ndarray:
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


def evaluate_on_schedule(
    agent: Agent, history: History, env_step: int, config: Any, final: bool = False
) -> None:
    """Every ``config.eval_every`` env steps (and once at the end, ``final=True``), run
    ``config.eval_episodes`` greedy episodes and add their returns to ``history.evaluations``.

    Off-policy methods train on exploratory behaviour (epsilon-greedy, noisy or stochastic
    actions), so their training returns understate the policy they have learned; this measures the
    policy itself.
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
    write_atomic(path, lambda tmp: torch.save(payload, tmp))


# The lookup of an algorithm module by name (``rlcourse.algos.get_algorithm``). The registry is a
# floor up: rlcourse.algos hands it over when it is imported, which importing any algorithm module
# does first.
_get_algorithm: Callable[[str], ModuleType] | None = None


def register_algorithms(get_algorithm: Callable[[str], ModuleType]) -> None:
    """Let :func:`load_checkpoint` find algorithm modules with ``get_algorithm``.

    Called by :mod:`rlcourse.algos` when it is imported."""
    global _get_algorithm
    _get_algorithm = get_algorithm


def load_checkpoint(path: str | Path, algo: str | None = None, device: str = "cpu") -> Agent:
    """Reload an agent saved by :func:`save_checkpoint`, with clear errors for bad files.

    ``weights_only=True``: loading never runs code from the file.
    """
    from rlcourse.config import check_device, from_dict

    check_device(device)
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises several types for truncated or foreign files
        if "Unsupported global" in str(exc) or "Unsupported class" in str(exc):
            raise CheckpointError(
                f"{path} holds Python objects besides weights and settings, and loading it would "
                "run code from the file; rlcourse only loads checkpoints that cannot. If you made "
                "it yourself, save the agent again with rlcourse.training.save_checkpoint"
            ) from None
        raise CheckpointError(
            f"{path} is not a readable rlcourse checkpoint: the file is corrupt or truncated, or "
            f"is not a PyTorch file ({type(exc).__name__})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is not an rlcourse checkpoint (no '{CHECKPOINT_FORMAT}' marker)"
        )
    kinds = {"algo": str, "env_id": str, "config": dict, "modules": dict}
    missing = [key for key, kind in kinds.items() if not isinstance(payload.get(key), kind)]
    if missing:
        raise CheckpointError(
            f"{path} is an incomplete rlcourse checkpoint: {', '.join(missing)} missing or of the "
            "wrong kind"
        )
    if algo is not None and payload["algo"] != algo:
        raise CheckpointError(
            f"{path} holds an agent trained with {payload['algo']}, not with {algo}"
        )
    if _get_algorithm is None:
        raise CheckpointError(
            f"{path} holds a {payload['algo']} agent, but no algorithm module is loaded: "
            "import rlcourse.algos first"
        )
    try:
        module = _get_algorithm(payload["algo"])
        # The device it was trained on may not exist here (trained on a GPU, evaluated on a laptop).
        config = from_dict(module.Config, {**payload["config"], "device": device})
        agent = module.make_agent(config, payload["env_id"])
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path} cannot be rebuilt: {exc}") from None
    try:
        for name, m in agent.modules().items():
            m.load_state_dict(payload["modules"][name])
    except (KeyError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise CheckpointError(
            f"{path}: the saved weights do not fit the {payload['algo']} networks ({first})"
        ) from None
    return agent


def write_json(path: str | Path, data: dict) -> None:
    Path(path).write_text(json.dumps(data, indent=2) + "\n")

