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
    m = statistics.median_low(values) if len(values) % 2 == 0 else statistics.median(values)
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
