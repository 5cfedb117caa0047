"""Keeping a run safe on disk: the run folder checked before training, periodic atomic saves, stops
by signal, resuming, and warnings for runs that cannot learn.

Every training loop hands :class:`RunKeeper` the objects whose state it changes (optimisers, the
environments, random generators, the replay buffer, ...) and calls :meth:`RunKeeper.tick` once per
iteration. With a run folder (``out``), the keeper writes every ``save_every`` seconds:

- ``history.csv``, ``diagnostics.csv``, ``evaluations.csv``: the run so far;
- ``checkpoint.pt``: the agent's weights, loadable without running code
  (:func:`rlcourse.training.load_checkpoint`);
- ``resume.pt``: everything the loop needs to go on exactly where it was (the weights, optimiser
  moments, replay buffer, the environments mid-episode, every random generator). It holds the
  environments as Python pickles, so loading it runs code: resume only runs you made yourself.

Each file is replaced atomically (:func:`rlcourse.history.write_atomic`), so a crash, ``kill -9``
or a full disk leaves every file whole and loses at most one interval. The files are written one
after another, in the order above: a stop in the middle of a save leaves those written before it
one save ahead of the rest (``history.csv`` may hold episodes that ``resume.pt`` does not).

A resumed run continues from its last ``resume.pt``: from there on it gives the same numbers as a
run that was never stopped (on the CPU; ``tests/test_saving.py`` checks it for every algorithm).
The work done after that save and before the stop is done again.

Ctrl-C, ``SIGTERM`` (``kill``, a hub stopping a server) and ``SIGHUP`` (a closed terminal) end the
run the same way: :class:`~rlcourse.training.TrainingInterrupted` carrying the history and the
agent, which the keeper writes to the run folder first. The command line exits with
128 + the signal's number (130, 143, 129).
"""

from __future__ import annotations

import json
import math
import os
import pickle
import random
import shutil
import signal
import threading
import time
import warnings
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlcourse.config import from_dict, to_dict
from rlcourse.history import History, NonFiniteError, write_atomic
from rlcourse.training import Agent, TrainingInterrupted, save_checkpoint

__all__ = [
    "RUN_FILES",
    "RESUME_FILE",
    "RunFolderError",
    "LearningWarning",
    "RunKeeper",
    "check_run_folder",
    "run_bytes",
    "memory_bytes",
    "check_memory",
    "check_save_every",
    "read_run_config",
]

RESUME_FILE = "resume.pt"
RUN_FILES = (
    "config.json",
    "history.csv",
    "diagnostics.csv",
    "evaluations.csv",
    "checkpoint.pt",
    RESUME_FILE,
    "learning_curve.png",
)
RESUME_FORMAT = "rlcourse-resume-1"
# Signals that end a run like Ctrl-C; their exit status is 128 + the number, as a shell reports it.
STOP_SIGNALS = ("SIGTERM", "SIGHUP")
# A loss this many times its first logged size (and at least LOSS_ALARM in size) is diverging.
LOSS_GROWTH, LOSS_ALARM = 1e4, 1e6


class RunFolderError(ValueError):
    """A run folder that cannot be used: not a folder, not writable, too little space, or holding
    another run."""


class LearningWarning(UserWarning):
    """A run that cannot learn, or is diverging: no gradient step at all, a loss exploding."""


# -- the run folder ------------------------------------------------------------------------------
def check_run_folder(out: str | Path, needed_bytes: int = 0) -> bool:
    """Check, before any training, that the run can be written to ``out``: every part of the path
    that exists is a folder, the folder can be created and written, and the disk has
    ``needed_bytes`` free. Creates ``out``; returns whether it was created (so a caller that fails
    later can remove it)."""
    out = Path(out)
    for part in (out, *out.parents):
        if part.exists() or part.is_symlink():
            if not part.is_dir():
                raise RunFolderError(
                    f"cannot write the run to {out}: {part} is a file, not a folder; give a folder "
                    "that does not exist yet or is one"
                )
            break
    created = not out.exists()
    probe = out / f".rlcourse-write-test-{os.getpid()}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"rlcourse")
        probe.unlink()
    except OSError as exc:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise RunFolderError(
            f"cannot write the run to {out}: {exc.strerror or exc}; choose a folder you can "
            "write to"
        ) from None
    free = shutil.disk_usage(out).free
    if free < needed_bytes:
        if created and not any(out.iterdir()):
            out.rmdir()
        raise RunFolderError(
            f"not enough disk space for the run in {out}: it needs about "
            f"{_size(needed_bytes)}, and {_size(free)} is free; free some space or choose another "
            "folder"
        )
    return created


def _sizes(env_id: str) -> tuple[int, int, int]:
    """Observation and action sizes and the episode limit of a gymnasium environment (zeros for
    GRPO's task, which is not one)."""
    if env_id not in gym.registry:
        return 0, 0, 0
    env = gym.make(env_id)
    try:
        limit = env.spec.max_episode_steps if env.spec is not None else None
        return (
            gym.spaces.flatdim(env.observation_space),
            gym.spaces.flatdim(env.action_space),
            limit or 1000,
        )
    finally:
        env.close()


def run_bytes(agent: Agent, config: Any) -> int:
    """An upper estimate of the bytes a run's files take, with room for the atomic copies: the
    weights (checkpoint) and optimiser moments (resume), the replay buffer at its fullest, a history
    row per env step at worst, and the figure."""
    obs, act, _ = _sizes(agent.env_id)
    steps = getattr(config, "total_steps", 0)
    rows = min(getattr(config, "buffer_size", 0), steps)
    return 2 * (4 * _weight_bytes(agent) + rows * _row_bytes(obs, act) + steps * 60 + 1_000_000)


def memory_bytes(agent: Agent, config: Any) -> int:
    """An estimate of the memory a run needs beyond Python and torch themselves: the replay buffer
    as full as the run will fill it, the largest batch that goes through the networks (a minibatch,
    or a whole rollout) with the activations of its forward and backward passes, and the weights
    with their optimiser moments."""
    obs, act, limit = _sizes(agent.env_id)
    steps = getattr(config, "total_steps", 0)
    rows = min(getattr(config, "buffer_size", 0), steps)
    num_envs = getattr(config, "num_envs", 1)
    batch = max(
        getattr(config, "batch_size", 0),
        num_envs * getattr(config, "rollout_steps", 0),
        num_envs * getattr(config, "episodes_per_env", 0) * limit,
    )
    hidden = getattr(config, "hidden", ())
    width = sum(hidden) if isinstance(hidden, tuple) else 0
    # Each hidden unit of each sample is stored forward and needs a gradient backward, for the
    # actor and (up to two) critics: about 6 floats.
    activations = batch * width * 4 * 6
    return (
        rows * _row_bytes(obs, act)
        + batch * _row_bytes(obs, act)
        + activations
        + (4 * _weight_bytes(agent))
    )


def check_memory(agent: Agent, config: Any) -> None:
    """Refuse a run whose estimated memory (:func:`memory_bytes`) exceeds what the machine has
    available, before it starts, instead of being killed by the system part-way."""
    needed, available = memory_bytes(agent, config), _available_memory()
    if available is not None and needed > available:
        raise ValueError(
            f"this run would need about {_size(needed)} of memory (replay buffer, batches and "
            f"their activations), and {_size(available)} is available: make buffer_size, "
            "batch_size, num_envs or the rollout smaller"
        )


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _weight_bytes(agent: Agent) -> int:
    return sum(
        p.numel() * p.element_size() for m in agent.modules().values() for p in m.parameters()
    )


def _row_bytes(obs: int, act: int) -> int:
    # One transition: S and S' and A as float32, R, and the terminated and truncated flags.
    return 4 * (2 * obs + act + 1) + 2


def read_run_config(out: str | Path) -> dict:
    """The ``config.json`` of a run folder (``algo``, ``env_id``, ``config``), or a clear error."""
    path = Path(out) / "config.json"
    if not path.exists():
        raise RunFolderError(f"{out} is not a run folder (no config.json)")
    try:
        meta = json.loads(path.read_text())
        meta["algo"], meta["env_id"], meta["config"]  # noqa: B018 - the keys must be there
    except (ValueError, KeyError, TypeError) as exc:
        raise RunFolderError(f"{path} is damaged ({type(exc).__name__}: {exc})") from None
    return meta


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def check_save_every(save_every: Any) -> None:
    """``save_every`` must be a number of seconds, at least 0 (0: after every iteration)."""
    if (
        isinstance(save_every, bool)
        or not isinstance(save_every, (int, float))
        or not 0 <= save_every < math.inf
    ):
        raise ValueError(
            f"save_every={save_every!r} is not allowed: save_every must be a number of seconds, "
            "at least 0 (0 saves after every iteration)"
        )


# -- the state of a loop's objects ----------------------------------------------------------------
def _state(obj: Any) -> Any:
    """What is needed to put ``obj`` back as it is now (see :func:`_restore`)."""
    if obj is None:  # e.g. SAC's learner has no target actor
        return None
    if isinstance(obj, gym.vector.SyncVectorEnv):
        arrays = {k: v.copy() for k, v in vars(obj).items() if isinstance(v, np.ndarray)}
        return {
            "envs": pickle.dumps(obj.envs),
            "inner": [_env_state(e) for e in obj.envs],
            "arrays": arrays,
        }
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, np.random.Generator):
        return obj.bit_generator.state
    if isinstance(obj, torch.Generator):
        return obj.get_state()
    if hasattr(obj, "state_dict"):  # modules, optimisers, the replay buffer, the episode tracker
        return obj.state_dict()
    if is_dataclass(obj):  # e.g. the off-policy Learner: its networks, optimisers and buffer
        return {f.name: _state(getattr(obj, f.name)) for f in fields(obj)}
    raise TypeError(f"cannot save the state of a {type(obj).__name__}")


def _env_state(env: gym.Env) -> dict:
    # Some environments (MuJoCo's) pickle by their constructor's arguments: keep their random
    # generator and simulator state apart and put them back after unpickling.
    inner = env.unwrapped
    state = {"rng": inner.np_random.bit_generator.state}
    if hasattr(inner, "data") and hasattr(inner, "set_state"):
        data = inner.data
        state.update(
            qpos=data.qpos.copy(), qvel=data.qvel.copy(), act=data.act.copy(), time=data.time
        )
    return state


def _restore(obj: Any, state: Any) -> None:
    """Put ``obj`` back, in place, into the state :func:`_state` returned."""
    if obj is None:
        return
    if isinstance(obj, gym.vector.SyncVectorEnv):
        for env in obj.envs:
            env.close()
        obj.envs = pickle.loads(state["envs"])
        for env, inner in zip(obj.envs, state["inner"], strict=True):
            env.unwrapped.np_random.bit_generator.state = inner["rng"]
            if "qpos" in inner:
                env.unwrapped.set_state(inner["qpos"], inner["qvel"])
                env.unwrapped.data.act[:] = inner["act"]
                env.unwrapped.data.time = inner["time"]
        for k, v in state["arrays"].items():
            setattr(obj, k, v.copy())
    elif isinstance(obj, torch.Tensor):
        with torch.no_grad():
            obj.copy_(state)
    elif isinstance(obj, np.random.Generator):
        obj.bit_generator.state = state
    elif isinstance(obj, torch.Generator):
        obj.set_state(state)
    elif hasattr(obj, "load_state_dict"):
        obj.load_state_dict(state)
    elif is_dataclass(obj):
        for f in fields(obj):
            _restore(getattr(obj, f.name), state[f.name])
    else:
        raise TypeError(f"cannot restore the state of a {type(obj).__name__}")


def _global_rngs() -> dict:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_global_rngs(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class _Signalled(KeyboardInterrupt):
    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


# -- the keeper -----------------------------------------------------------------------------------
class RunKeeper:
    """Saves a training loop's run now and then, resumes it, and turns a stop into
    :class:`~rlcourse.training.TrainingInterrupted`.

    ``stateful``: the loop's objects whose state changes as it trains (the agent's networks are
    always included). ``out=None``: nothing is written; the keeper still handles stops and warns.
    Use it as a context manager around the loop, after :meth:`start`.
    """

    def __init__(
        self,
        agent: Agent,
        history: History,
        stateful: dict[str, Any],
        out: str | Path | None = None,
        save_every: float = 60.0,
        resume: bool = False,
    ):
        if (
            isinstance(save_every, bool)
            or not isinstance(save_every, (int, float))
            or not (save_every >= 0)
        ):
            raise ValueError(
                f"save_every={save_every!r} is not allowed: save_every must be a number of "
                "seconds, at least 0 (0 saves after every iteration)"
            )
        if resume and out is None:
            raise ValueError("resume=True needs out=, the run folder to resume")
        self.agent, self.history = agent, history
        self.stateful = {**agent.modules(), **stateful}
        self.out = None if out is None else Path(out)
        self.save_every, self.resume = float(save_every), resume
        self.values: dict[str, Any] = {}
        self._last_save = time.monotonic()
        self._warned: set[str] = set()
        self._first_loss: dict[str, float] = {}
        self._rows_seen = 0
        self._handlers: dict[int, Any] = {}

    # starting and resuming
    def start(self, **values: Any) -> dict[str, Any]:
        """Begin the run: check the folder and write ``config.json``, or on resume put every
        object back as it was at the last save. Returns the loop's ``values`` (its iteration
        counter, current observations, ...): those given, or the saved ones."""
        config = self.agent.config
        steps = getattr(config, "total_steps", None)
        starts = getattr(config, "learning_starts", None)
        if steps is not None and starts is not None and starts >= steps:
            warnings.warn(
                f"this run makes no gradient step: learning_starts={starts} env steps of random "
                f"actions fill the buffer first, and total_steps={steps} ends it before; give more "
                "steps or a smaller learning_starts",
                LearningWarning,
                stacklevel=3,
            )
        check_memory(self.agent, config)
        self.values = dict(values)
        if self.out is None:
            return self.values
        if self.resume:
            return self._load()
        check_run_folder(self.out)
        taken = [name for name in RUN_FILES if (self.out / name).exists()]
        if taken:
            raise RunFolderError(
                f"{self.out} already holds a run ({', '.join(taken)}); resume it, or choose "
                "another folder"
            )
        meta = {"algo": self.agent.algo, "env_id": self.agent.env_id, "config": to_dict(config)}
        write_atomic(
            self.out / "config.json", lambda tmp: tmp.write_text(json.dumps(meta, indent=2) + "\n")
        )
        return self.values

    def _load(self) -> dict[str, Any]:
        path = self.out / RESUME_FILE
        if not path.exists():
            raise RunFolderError(
                f"nothing to resume in {self.out}: no {RESUME_FILE} (a run saves one every "
                f"save_every seconds; this one stopped before its first save, or is not a run)"
            )
        try:
            saved = torch.load(path, map_location=self.agent.config.device, weights_only=False)
        except Exception as exc:  # torch and pickle raise many types for a damaged file
            raise RunFolderError(f"{path} cannot be read (damaged or truncated): {exc}") from None
        if not isinstance(saved, dict) or saved.get("format") != RESUME_FORMAT:
            raise RunFolderError(f"{path} is not an rlcourse resume file")
        mine = to_dict(self.agent.config)
        theirs = to_dict(from_dict(type(self.agent.config), saved["config"]))
        differ = [
            k
            for k in mine
            if k not in ("total_steps", "iterations", "device", "threads") and mine[k] != theirs[k]
        ]
        if (saved["algo"], saved["env_id"]) != (self.agent.algo, self.agent.env_id) or differ:
            detail = ", ".join(f"{k} (saved {theirs[k]!r}, now {mine[k]!r})" for k in differ)
            raise RunFolderError(
                f"{self.out} holds a {saved['algo']} run on {saved['env_id']}"
                + (f" with other hyperparameters: {detail}" if detail else "")
                + f"; it can only be resumed as {saved['algo']} on {saved['env_id']} with its own "
                "hyperparameters (the budget may change)"
            )
        for name, obj in self.stateful.items():
            _restore(obj, saved["state"][name])
        self.history.load_state_dict(saved["history"])
        _set_global_rngs(saved["rngs"])
        self.values = saved["values"]
        return self.values

    # during the run
    def tick(self, **values: Any) -> None:
        """Call once per iteration with the loop's current ``values``: saves when one interval has
        passed since the last save, and warns of a loss that explodes."""
        self.values = values
        if len(self.history.iterations) > self._rows_seen:
            self._rows_seen = len(self.history.iterations)
            self._watch_losses(self.history.iterations[-1])
        if self.out is not None and time.monotonic() - self._last_save >= self.save_every:
            self.save()

    def _watch_losses(self, row: dict[str, float]) -> None:
        for name, value in row.items():
            if not name.endswith("_loss") or not math.isfinite(value):
                continue
            first = self._first_loss.setdefault(name, abs(value))
            if (
                abs(value) >= LOSS_ALARM
                and abs(value) >= LOSS_GROWTH * max(first, 1.0)
                and name not in self._warned
            ):
                self._warned.add(name)
                warnings.warn(
                    f"the {name.replace('_', ' ')} has grown from {first:.3g} to {value:.3g} by "
                    f"iteration {int(row.get('iteration', 0))}: the run is probably diverging; a "
                    "smaller learning rate or gradient clipping usually helps",
                    LearningWarning,
                    stacklevel=3,
                )

    def save(self, resumable: bool = True) -> None:
        """Write the history and checkpoint (and, if ``resumable``, ``resume.pt``) atomically."""
        if self.out is None:
            return
        try:
            self.history.save(self.out)
            save_checkpoint(self.agent, self.out / "checkpoint.pt")
            if resumable:
                state = {
                    "format": RESUME_FORMAT,
                    "algo": self.agent.algo,
                    "env_id": self.agent.env_id,
                    "config": to_dict(self.agent.config),
                    "state": {name: _state(obj) for name, obj in self.stateful.items()},
                    "history": self.history.state_dict(),
                    "rngs": _global_rngs(),
                    "values": self.values,
                }
                write_atomic(self.out / RESUME_FILE, lambda tmp: torch.save(state, tmp))
        except OSError as exc:
            raise RunFolderError(
                f"cannot save the run to {self.out}: {exc.strerror or exc}; the last complete save "
                "there is kept (free some space, or check the folder)"
            ) from None
        self._last_save = time.monotonic()

    # stops
    def __enter__(self) -> RunKeeper:
        if threading.current_thread() is threading.main_thread():
            for name in STOP_SIGNALS:
                number = getattr(signal, name, None)
                if number is not None:
                    self._handlers[number] = signal.signal(number, self._on_signal)
        return self

    @staticmethod
    def _on_signal(number: int, frame: Any) -> None:
        raise _Signalled(signal.Signals(number).name)

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: Any) -> bool:
        for number, handler in self._handlers.items():
            signal.signal(number, handler)
        self._handlers.clear()
        if exc is None:
            self.save()
            return False
        if isinstance(exc, NonFiniteError):
            # The weights may be NaN: keep the history, not a checkpoint of a broken agent.
            if self.out is not None:
                self.history.save(self.out)
            return False
        if isinstance(exc, KeyboardInterrupt):
            # The state mid-iteration is not a consistent place to resume from: resume.pt stays at
            # the last save; the history and the agent as it was are written.
            self.save(resumable=False)
            if isinstance(exc, TrainingInterrupted):
                return False
            name = exc.name if isinstance(exc, _Signalled) else "Ctrl-C"
            raise TrainingInterrupted(self.history, self.agent, name) from exc
        return False


def exit_status(stop: str) -> int:
    """The exit status of a run stopped by ``stop`` ("Ctrl-C", "SIGTERM", "SIGHUP"), as a shell
    reports it: 128 + the signal's number."""
    return 128 + (signal.SIGINT if stop == "Ctrl-C" else getattr(signal, stop))
