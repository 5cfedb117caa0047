"""Figures: learning curves from one or more histories."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rlcourse.training import History

__all__ = ["rolling_mean", "learning_curve", "THRESHOLDS"]

# The return at which an environment counts as solved (the benchmarks' thresholds).
THRESHOLDS = {"CartPole-v1": 475.0, "Pendulum-v1": -200.0, "InvertedPendulum-v5": 1000.0}


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
    """Episode returns against env steps (or ``x="wall_time"``): faint dots, a rolling mean, the threshold,
    and the greedy evaluations (circles) if the run made any.

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
        if len(returns) == 0:
            continue
        ax.plot(xs, returns, ".", color=color, alpha=0.15, markersize=3)
        ax.plot(xs, rolling_mean(returns, window), color=color, label=label or None)
        if history.evaluations and x in ("env_step", "wall_time"):
            # greedy evaluations: the learned policy itself, without exploration
            evals = history.column(x, "evaluations"), history.column("mean_return", "evaluations")
            ax.plot(*evals, "o--", color=color, markersize=4, label=f"{label} greedy evaluation".strip())
    if threshold is not None:
        ax.axhline(threshold, color="k", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
    ax.set_xlabel({"env_step": "environment steps", "wall_time": "wall-clock seconds"}.get(x, x))
    ax.set_ylabel(f"episode return (mean of last {window})")
    if title:
        ax.set_title(title)
    if any(histories) or threshold is not None:
        ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
