"""Check that every preset in the package solves its environment, for several seeds.

    python -m benchmarks presets [--seeds 3] [--algo a2c]

For each algorithm and each environment it has a preset for, trains with seeds 0..N-1 (one torch
thread) and prints the env steps and wall seconds at which the criterion is first met:

- presets that evaluate the greedy policy during training (``eval_every > 0``; the off-policy
  methods, whose training returns include exploration): a greedy evaluation reaches the threshold;
  the evaluation of the final policy is reported next to it, and for DQN on CartPole (whose
  criterion includes "no collapse at the end") a final policy below the threshold counts as not
  solved;
- the others: the mean return of the last training episodes (20 on CartPole, 10 on Pendulum).
"""

from __future__ import annotations

import argparse
import statistics

import torch

from rlcourse.algos import ALGORITHMS
from rlcourse.plots import THRESHOLDS

# How many of the last training episodes the threshold is averaged over (the issues' criteria).
WINDOWS = {"CartPole-v1": 20, "Pendulum-v1": 10}  # training-return criteria only
FINAL_REQUIRED = {
    ("dqn", "CartPole-v1")
}  # the final greedy evaluation must also reach the threshold


def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--algo", choices=list(ALGORITHMS), action="append")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(
        "| algorithm | environment | criterion | solved | env steps (per seed) | wall seconds "
        "| final greedy |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in args.algo or ALGORITHMS:
        module = ALGORITHMS[name]
        for env_id, config in module.PRESETS.items():
            threshold = THRESHOLDS[env_id]
            greedy = config.eval_every > 0
            window = WINDOWS.get(env_id, 20)
            steps, seconds, finals = [], [], []
            for seed in range(args.seeds):
                _, history = module.train(env_id, config, progress=False, seed=seed)
                if greedy:
                    hit = history.first_evaluation_reaching(threshold)
                    finals.append(round(history.evaluations[-1]["mean_return"], 1))
                    if (name, env_id) in FINAL_REQUIRED and finals[-1] < threshold:
                        hit = None
                else:
                    hit = history.first_reaching(threshold, window)
                steps.append(int(hit["env_step"]) if hit else None)
                seconds.append(round(hit["wall_time"], 1) if hit else None)
            solved = sum(s is not None for s in steps)
            found = [s for s in steps if s is not None]
            med = f", median {statistics.median(found):,.0f}" if found else ""
            criterion = f"last {window} training episodes {threshold:g}"
            if greedy:
                criterion = f"greedy {threshold:g} (every {config.eval_every:,} steps)"
                criterion += f", final >= {threshold:g}" if (name, env_id) in FINAL_REQUIRED else ""
            print(
                f"| {name} | {env_id} | {criterion} | {solved}/{args.seeds} | {steps}{med} "
                f"| {seconds} | {finals or '-'} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
