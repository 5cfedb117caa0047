"""Check that every preset in the package solves its environment, for several seeds.

    python benchmarks/presets.py [--seeds 3] [--algo a2c]

For each algorithm and each environment it has a preset for, trains with seeds 0..N-1 (one torch
thread) and prints the env steps and wall seconds at which the mean return of the last training
episodes (20 on CartPole, 10 on Pendulum) first reaches the environment's threshold.
"""

from __future__ import annotations

import argparse
import statistics

import torch

from rlcourse.algos import ALGORITHMS
from rlcourse.plots import THRESHOLDS

# How many of the last training episodes the threshold is averaged over (the issues' criteria).
WINDOWS = {"CartPole-v1": 20, "Pendulum-v1": 10}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--algo", choices=list(ALGORITHMS), action="append")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| algorithm | environment | solved | env steps to threshold (per seed) | wall seconds (per seed) |")
    print("|---|---|---|---|---|")
    for name in args.algo or ALGORITHMS:
        module = ALGORITHMS[name]
        for env_id, config in module.PRESETS.items():
            threshold = THRESHOLDS[env_id]
            steps, seconds = [], []
            for seed in range(args.seeds):
                _, history = module.train(env_id, config, progress=False, seed=seed)
                hit = history.first_reaching(threshold, WINDOWS.get(env_id, 20))
                steps.append(int(hit["env_step"]) if hit else None)
                seconds.append(round(hit["wall_time"], 1) if hit else None)
            solved = sum(s is not None for s in steps)
            found = [s for s in steps if s is not None]
            med = f", median {statistics.median(found):,.0f}" if found else ""
            print(f"| {name} | {env_id} | {solved}/{args.seeds} | {steps}{med} | {seconds} |", flush=True)


if __name__ == "__main__":
    main()
