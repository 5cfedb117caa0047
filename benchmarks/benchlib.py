"""What the benchmark scripts share: the median over seeds and Stable-Baselines3's stop-at-threshold callback."""

from __future__ import annotations

import math
import statistics
import time

import numpy as np


def median(values) -> float | None:
    """The median over seeds of a time-to-threshold; a seed that never got there (``None``) counts as
    infinitely slow, so failures cannot improve the median. ``None`` if the median itself is such a seed."""
    values = [math.inf if v is None else v for v in values]
    if not values:
        return None
    # With an even count the upper middle value: one failure in two seeds is not a median success.
    m = statistics.median_high(values)
    return None if math.isinf(m) else m


def stop_at_threshold(threshold: float, window: int):
    """An SB3 callback that records the env step and wall seconds (from the start of ``learn``) at which
    the mean return of the last ``window`` training episodes first reaches ``threshold``, and stops there.
    SB3 reports finished episodes through the ``Monitor`` wrapper's ``info["episode"]``."""
    from stable_baselines3.common.callbacks import BaseCallback

    class StopAtThreshold(BaseCallback):
        def __init__(self):
            super().__init__()
            self.returns, self.hit = [], None

        def _on_training_start(self):
            self.start = time.perf_counter()

        def _on_step(self):
            for info in self.locals["infos"]:
                if "episode" in info:
                    self.returns.append(info["episode"]["r"])
                    if len(self.returns) >= window and np.mean(self.returns[-window:]) >= threshold:
                        self.hit = {"env_step": self.num_timesteps, "wall_time": time.perf_counter() - self.start}
                        return False
            return True

    return StopAtThreshold()


def summarize(results: dict[str, dict[str, list[dict]]], seeds: int, labels: dict[str, str] | None = None) -> dict:
    """Print one table row per (algorithm, library) with the solved count and the medians, then the
    rlcourse/SB3 ratios against the targets (wall-clock <= 0.5, env steps <= 1); return the summary.

    ``results[algo][lib]`` is a list of ``{"steps", "seconds"}`` per seed (``None`` if not solved);
    ``labels`` can rename an algorithm in the table (e.g. to name its criterion)."""
    labels = labels or {}
    print("| algorithm | library | solved | env steps (median) | wall seconds (median) |")
    print("|---|---|---|---|---|")
    summary = {}
    for algo, libs in results.items():
        for lib, rs in libs.items():
            s = {
                "solved": sum(r["steps"] is not None for r in rs),
                "median_steps": median(r["steps"] for r in rs),
                "median_seconds": median(r["seconds"] for r in rs),
                "runs": rs,
            }
            summary[f"{algo}/{lib}"] = s
            steps = f"{s['median_steps']:,.0f}" if s["median_steps"] is not None else "-"
            seconds = f"{s['median_seconds']:.2f}" if s["median_seconds"] is not None else "-"
            print(f"| {labels.get(algo, algo)} | {lib} | {s['solved']}/{seeds} | {steps} | {seconds} |")
    for algo in results:
        a, b = summary[f"{algo}/rlcourse"], summary.get(f"{algo}/sb3")
        if b and a["median_seconds"] and b["median_seconds"]:
            wall, steps = a["median_seconds"] / b["median_seconds"], a["median_steps"] / b["median_steps"]
            print(
                f"{algo}: wall-clock ratio rlcourse/SB3 {wall:.2f} (target <= 0.5), env-step ratio {steps:.2f} (<= 1)"
            )
    return summary
