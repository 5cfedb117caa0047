"""Regenerate the figures in figures/: learning curves of the presets on their first environments.

    python benchmarks/make_figures.py [--seeds 3]      (RLCOURSE_FAST=1: one seed, short runs)

Each figure is written with the CSV of the episodes it was drawn from.
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

import torch

from rlcourse.algos import ALGORITHMS
from rlcourse.plots import THRESHOLDS, learning_curve

FIGURES = Path(__file__).resolve().parents[1] / "figures"
FIRST_ENVIRONMENT = {"reinforce": "CartPole-v1", "a2c": "CartPole-v1"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    fast = os.environ.get("RLCOURSE_FAST") == "1"
    torch.set_num_threads(1)
    FIGURES.mkdir(exist_ok=True)
    for name, env_id in FIRST_ENVIRONMENT.items():
        module = ALGORITHMS[name]
        histories = {}
        for seed in range(1 if fast else args.seeds):
            changes = {"total_steps": 5_000} if fast else {}
            _, histories[f"seed {seed}"] = module.train(env_id, module.PRESETS[env_id], False, seed=seed, **changes)
        stem = FIGURES / f"{name}_{env_id}"
        fig = learning_curve(histories, THRESHOLDS[env_id], title=f"{name} preset on {env_id}")
        fig.savefig(stem.with_suffix(".png"), dpi=100)
        with open(stem.with_suffix(".csv"), "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["run", "env_step", "wall_time", "return", "length"])
            for label, history in histories.items():
                for e in history.episodes:
                    writer.writerow([label, e["env_step"], f"{e['wall_time']:.3f}", e["return"], e["length"]])
        print(f"wrote {stem}.png and {stem}.csv")


if __name__ == "__main__":
    main()
