"""The seed band of the figures: median and range over seeds on a common grid; the figure
script's output."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest

from rlcourse.plots import seed_band, seed_curve
from rlcourse.training import History

matplotlib.use("Agg")
ROOT = Path(__file__).resolve().parents[1]


def _history(returns, steps, evaluations=None):
    h = History()
    for s, r in zip(steps, returns, strict=False):
        h.add_episode(s, r, 10)
    for s, r in evaluations or []:
        h.add_evaluation(s, np.array([r]))
    return h


def test_seed_curve_prefers_greedy_evaluations():
    plain = _history([1, 2, 3], [10, 20, 30])
    xs, ys = seed_curve(plain, window=2)
    assert xs.tolist() == [10, 20, 30] and ys.tolist() == [1, 1.5, 2.5]
    judged = _history([1, 2, 3], [10, 20, 30], evaluations=[(0, -5.0), (30, 7.0)])
    xs, ys = seed_curve(judged)
    assert xs.tolist() == [0, 30] and ys.tolist() == [-5.0, 7.0]


def test_seed_band_is_the_median_and_range_over_seeds():
    ends = [(0, 10), (0, 20), (0, 60)]
    runs = [_history([], [], evaluations=[(0, v0), (100, v1)]) for v0, v1 in ends]
    # the shortest run ends at 50
    runs.append(_history([], [], evaluations=[(0, 0.0), (50, 100.0)]))
    fig, data = seed_band({"a": runs}, threshold=5.0, points=3)
    d = data["a"]
    assert d["x"].tolist() == [0.0, 25.0, 50.0]  # up to where the shortest run ends
    # at x = 50 the four seeds are at 5, 10, 30 and 100
    assert d["median"][-1] == pytest.approx(20.0) and d["min"][-1] == 5 and d["max"][-1] == 100
    ax = fig.axes[0]
    assert any(line.get_label() == "threshold 5" for line in ax.lines)
    assert ax.lines[0].get_label() == "a (median of 4)"


def test_the_figure_script_writes_png_and_csv_with_its_command(tmp_path):
    env = {**os.environ, "RLCOURSE_FAST": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        # The documented command, from the repository root
        [sys.executable, "-m", "benchmarks", "figures", "--only", "grpo", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "grpo.png").read_bytes()[:4] == b"\x89PNG"
    rows = list(csv.reader((tmp_path / "grpo.csv").open()))
    assert rows[0][0].startswith("# RLCOURSE_FAST=1 python -m benchmarks figures")
    assert rows[1] == ["method", "seed", "answers", "seconds", "accuracy"]
    assert {r[0] for r in rows[2:]} == {"grpo", "rloo", "ppo"}


def test_a_run_without_training_episodes_shows_its_evaluations():
    # GRPO records no episodes while training: its curve is its greedy evaluations (held-out
    # accuracy)
    from rlcourse.plots import THRESHOLDS, learning_curve

    run = _history([], [], evaluations=[(0, 0.3), (256, 0.5), (512, 0.7)])
    fig = learning_curve({"grpo": run}, THRESHOLDS["ArithmeticTask"])
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.lines}
    assert lines["grpo greedy evaluation"].get_ydata().tolist() == [0.3, 0.5, 0.7]
    assert "threshold 0.9" in lines and ax.get_ylabel() == "mean return of the greedy evaluations"
