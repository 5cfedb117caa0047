"""The record of one training run: per-episode returns, per-iteration diagnostics, evaluations.

The history has three tables. ``episodes``: one row per finished training episode (``env_step`` at
its end, ``wall_time`` in seconds since training began, ``return``, ``length``). ``iterations``: one
row per policy update with its diagnostics (see :mod:`rlcourse.diagnostics` for their names).
``evaluations``: one row per greedy evaluation during training (``eval_every`` in every config; off
by default), with the mean, minimum and maximum return of its episodes.

It sits on the data floor (see :data:`rlcourse.FLOORS`) beside :mod:`rlcourse.rollouts`, which
records finished episodes into it; :mod:`rlcourse.training` re-exports both names.
"""

from __future__ import annotations

import csv
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

__all__ = ["History", "NonFiniteError", "write_atomic"]


class NonFiniteError(RuntimeError):
    """Training produced NaN or inf; ``.history`` keeps everything recorded before it."""

    def __init__(self, message: str, history: History | None = None):
        super().__init__(message)
        self.history = history


class History:
    """Per-episode returns, per-iteration diagnostics and greedy evaluations of one training run."""

    EPISODE_COLUMNS = ("env_step", "wall_time", "return", "length")
    EVALUATION_COLUMNS = (
        "env_step",
        "wall_time",
        "mean_return",
        "min_return",
        "max_return",
        "episodes",
    )

    def __init__(self) -> None:
        self.episodes: list[dict[str, float]] = []
        self.iterations: list[dict[str, float]] = []
        self.evaluations: list[dict[str, float]] = []
        self.start = time.perf_counter()

    def wall_time(self) -> float:
        return time.perf_counter() - self.start

    def add_episode(self, env_step: int, ret: float, length: int) -> None:
        self.episodes.append(
            {"env_step": env_step, "wall_time": self.wall_time(), "return": ret, "length": length}
        )

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
        """The first episode row where the mean of the last ``window`` returns reaches
        ``threshold``."""
        returns = self.column("return")
        for i in range(window - 1, len(returns)):
            if returns[i - window + 1 : i + 1].mean() >= threshold:
                return self.episodes[i]
        return None

    def first_evaluation_reaching(self, threshold: float) -> dict[str, float] | None:
        """The first greedy evaluation whose mean return reaches ``threshold``."""
        return next((row for row in self.evaluations if row["mean_return"] >= threshold), None)

    def state_dict(self) -> dict:
        """The three tables and the training time so far (what a resumed run starts from)."""
        return {
            "episodes": [dict(row) for row in self.episodes],
            "iterations": [dict(row) for row in self.iterations],
            "evaluations": [dict(row) for row in self.evaluations],
            "wall_time": self.wall_time(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from :meth:`state_dict`: the tables, and a clock that goes on from its time."""
        self.episodes = [dict(row) for row in state["episodes"]]
        self.iterations = [dict(row) for row in state["iterations"]]
        self.evaluations = [dict(row) for row in state["evaluations"]]
        self.start = time.perf_counter() - state["wall_time"]

    def save(self, run_dir: str | Path) -> None:
        """Write ``history.csv`` (episodes), ``diagnostics.csv`` (iterations) and, if there were
        any, ``evaluations.csv``; each file atomically (a crash or a full disk mid-write leaves
        the previous version whole)."""
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


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``.

    The rename is atomic: a reader, a crash or a full disk never sees half a file. If ``write``
    fails (or is interrupted), the temporary file is removed and ``path`` keeps its old content.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)

    write_atomic(path, write)


def _read_csv(path: Path) -> list[dict[str, float]]:
    if not path.exists():
        raise FileNotFoundError(
            f"no history at {path}: is {path.parent} a run folder written by `rlcourse train`?"
        )
    rows = []
    with open(path, newline="") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            try:
                if None in row or None in row.values():
                    raise ValueError("it has a different number of fields than the header")
                rows.append({k: float(v) if v != "" else math.nan for k, v in row.items()})
            except ValueError as exc:
                raise ValueError(
                    f"{path} is damaged at line {line} ({exc}); it was not written completely. "
                    "Rerun the training, or delete the damaged lines to keep the rest"
                ) from None
    return rows
