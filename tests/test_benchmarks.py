"""The benchmark scripts' own bookkeeping: medians with failures, the README block, the figures drawn from
stored results (the runs themselves need Stable-Baselines3 and minutes; they are not run here)."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import compare_sb3  # noqa: E402


def test_a_seed_that_never_met_the_criterion_counts_as_infinitely_slow():
    assert compare_sb3.spread([3, None, 1]) == {"median": 3, "min": 1, "max": 3}
    assert compare_sb3.spread([None, None, 1])["median"] is None  # the median seed failed
    assert compare_sb3.spread([None, None, None]) == {"median": None, "min": None, "max": None}


def _runs(ours: list, sb3: list) -> tuple[list, list]:
    """Runs with seconds = steps / 1000 for rlcourse and steps / 100 for SB3."""
    return [{"seed": i, "steps": s, "seconds": None if s is None else s / 1000} for i, s in enumerate(ours)], [
        {"seed": i, "steps": s, "seconds": None if s is None else s / 100} for i, s in enumerate(sb3)
    ]


def test_the_target_needs_half_the_wall_time_and_no_more_env_steps():
    fast_and_frugal = dict(zip(("rlcourse", "sb3"), _runs([1000, 2000, 3000], [2000, 2000, 2000]), strict=True))
    fast_but_wasteful = dict(zip(("rlcourse", "sb3"), _runs([30_000, 30_000, 30_000], [2000, 2000, 2000]), strict=True))
    summary = compare_sb3.summarize({"a2c": fast_and_frugal, "dqn": fast_but_wasteful})
    assert summary["a2c"]["wall_ratio"] == pytest.approx(2.0 / 20.0)
    assert summary["a2c"]["steps_ratio"] == 1.0 and summary["a2c"]["target_met"]
    assert summary["dqn"]["steps_ratio"] == 15.0 and not summary["dqn"]["target_met"]
    machine = {k: "x" for k in ("date", "cpu", "cores", "torch", "sb3", "sb3_contrib", "gymnasium")}
    table = compare_sb3.markdown(summary, {}, 3, machine)
    row = "| A2C | CartPole-v1, last 20 training episodes >= 475 | rlcourse preset | 3/3 | 2,000 (1,000-3,000) |"
    assert row in table
    assert "(target missed)" in table.split("| DQN")[1]


def test_a_library_that_never_got_there_decides_the_verdict():
    sb3_failed = dict(zip(("rlcourse", "sb3"), _runs([1000, 2000, 3000], [None, None, 2000]), strict=True))
    ours_failed = dict(zip(("rlcourse", "sb3"), _runs([None, None, 3000], [2000, 2000, 2000]), strict=True))
    summary = compare_sb3.summarize({"ppo": sb3_failed, "sac": ours_failed})
    assert summary["ppo"]["target_met"] and not summary["sac"]["target_met"]
    machine = {k: "x" for k in ("date", "cpu", "cores", "torch", "sb3", "sb3_contrib", "gymnasium")}
    table = compare_sb3.markdown(summary, {}, 3, machine)
    assert "| 3/3 | 2,000 (1,000-3,000) | 2.0 (1.0-3.0) | SB3 did not get there |" in table
    assert "| 1/3 | - | - | target missed |" in table
    assert "met by 1 of 2; missed by SAC." in table


def test_the_readme_block_is_replaced_and_nothing_else(tmp_path):
    start, end = compare_sb3.MARKERS
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n{start}\nold table\n{end}\nafter\n")
    compare_sb3.replace_block(readme, "new table\n")
    assert readme.read_text() == f"# Title\n\nbefore\n{start}\nnew table\n{end}\nafter\n"
    readme.write_text("no markers here\n")
    with pytest.raises(SystemExit, match="needs exactly one"):
        compare_sb3.replace_block(readme, "new table\n")
    assert readme.read_text() == "no markers here\n"


def test_the_figures_from_stored_results_show_exactly_those_results(tmp_path):
    env = {**os.environ, "RLCOURSE_FAST": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "make_figures.py"), "--only", "sb3_comparison", "mujoco"]
        + ["--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    record = json.loads((ROOT / "benchmarks" / "results" / "sb3_comparison.json").read_text())
    rows = list(csv.reader((tmp_path / "sb3_comparison.csv").open()))[2:]
    assert len(rows) == 2 * 2 * len(record["summary"])
    for algo, lib, metric, med, _, _ in rows:
        stored = record["summary"][algo][lib][metric]["median"]
        assert (med == "" and stored is None) or math.isclose(float(med), stored)
    rows = list(csv.reader((tmp_path / "mujoco.csv").open()))[2:]
    runs = {r[2] for r in rows if not r[2].startswith("SB3")}
    assert runs == {p.name for p in (ROOT / "benchmarks" / "results" / "mujoco").iterdir()}
    assert (tmp_path / "mujoco.png").read_bytes()[:4] == b"\x89PNG"
