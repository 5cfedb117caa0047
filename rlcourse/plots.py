"""Figures: learning curves from one or more histories."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from rlcourse.algos.grpo import TARGET_ACCURACY, TASK
from rlcourse.training import History

__all__ = ["rolling_mean", "learning_curve", "seed_curve", "seed_band", "THRESHOLDS"]

# The return at which an environment counts as solved (the benchmarks' thresholds); GRPO's task
# by its held-out accuracy, the mean return of its greedy evaluations.
THRESHOLDS = {
    "CartPole-v1": 475.0,
    "Pendulum-v1": -200.0,
    "InvertedPendulum-v5": 1000.0,
    TASK: TARGET_ACCURACY,
}


def rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` values at each index (fewer at the start)."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return values
    csum = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    start = np.maximum(idx - window, 0)
    return (csum[idx] - csum[start]) / (idx - start)


def learning_curve(
    histories: History | Mapping[str, History],
    threshold: float | None = None,
    window: int = 20,
    x: str = "env_step",
    title: str | None = None,
    ax=None,
):
    """Episode returns against env steps (or ``x="wall_time"``): faint dots, a rolling mean, the
    threshold, and the greedy evaluations (circles) if the run made any. A run that records no
    training episodes (GRPO, whose curve is its held-out accuracy) shows its evaluations alone.

    Returns the matplotlib figure. Without ``ax`` it is a new figure outside pyplot's state machine,
    so a notebook shows it once, as the cell's value, and scripts can ``fig.savefig(...)``.
    """
    from matplotlib.figure import Figure

    if isinstance(histories, History):
        histories = {"": histories}
    if ax is None:
        fig = Figure(figsize=(7, 4))
        ax = fig.subplots()
    else:
        fig = ax.figure
    for i, (label, history) in enumerate(histories.items()):
        color = f"C{i}"
        xs, returns = history.column(x), history.column("return")
        if len(returns):
            ax.plot(xs, returns, ".", color=color, alpha=0.15, markersize=3)
            ax.plot(xs, rolling_mean(returns, window), color=color, label=label or None)
        if history.evaluations and x in ("env_step", "wall_time"):
            # greedy evaluations: the learned policy itself, without exploration
            evals = history.column(x, "evaluations"), history.column("mean_return", "evaluations")
            ax.plot(
                *evals, "o--", color=color, markersize=4, label=f"{label} greedy evaluation".strip()
            )
    if threshold is not None:
        ax.axhline(
            threshold, color="k", linestyle="--", linewidth=1, label=f"threshold {threshold:g}"
        )
    ax.set_xlabel({"env_step": "environment steps", "wall_time": "wall-clock seconds"}.get(x, x))
    if any(h.episodes for h in histories.values()):
        ax.set_ylabel(f"episode return (mean of last {window})")
    else:
        ax.set_ylabel("mean return of the greedy evaluations")
    if title:
        ax.set_title(title)
    if any(histories) or threshold is not None:
        ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def seed_curve(
    history: History, x: str = "env_step", window: int = 20
) -> tuple[np.ndarray, np.ndarray]:
    """One run's curve: its greedy evaluations if it made any (the off-policy presets are judged by
    them), else the rolling mean of its last ``window`` training returns; against ``x``
    (``env_step`` or ``wall_time``)."""
    if history.evaluations:
        return history.column(x, "evaluations"), history.column("mean_return", "evaluations")
    return history.column(x), rolling_mean(history.column("return"), window)


def seed_band(
    runs: Mapping[str, Sequence[History]],
    threshold: float | None = None,
    x: str = "env_step",
    window: int = 20,
    ax=None,
    points: int = 200,
):
    """For each label, the median over seeds of :func:`seed_curve` (a line) and its range (a band),
    on a common grid from 0 to where the shortest run ends; the threshold dashed. Returns the axes'
    figure and, per label, the grid, median, min and max it drew (the data to save with the
    figure)."""
    from matplotlib.figure import Figure

    if ax is None:
        ax = Figure(figsize=(7, 4)).subplots()
    data = {}
    for i, (label, histories) in enumerate(runs.items()):
        curves = [seed_curve(h, x, window) for h in histories]
        curves = [(xs, ys) for xs, ys in curves if len(xs)]
        if not curves:
            continue
        end = min(xs[-1] for xs, _ in curves)
        grid = np.linspace(0.0, end, points)
        # Before a run's first point its curve is unknown: hold its first value (np.interp does).
        ys = np.array([np.interp(grid, xs, values) for xs, values in curves])
        median, low, high = np.median(ys, axis=0), ys.min(axis=0), ys.max(axis=0)
        ax.plot(grid, median, color=f"C{i}", label=f"{label} (median of {len(curves)})")
        ax.fill_between(grid, low, high, color=f"C{i}", alpha=0.2, linewidth=0)
        data[label] = {"x": grid, "median": median, "min": low, "max": high}
    if threshold is not None:
        ax.axhline(
            threshold, color="k", linestyle="--", linewidth=1, label=f"threshold {threshold:g}"
        )
    ax.set_xlabel({"env_step": "environment steps", "wall_time": "wall-clock seconds"}.get(x, x))
    ax.set_ylabel("return")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    return ax.figure, data
