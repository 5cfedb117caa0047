"""Regenerate every figure in figures/ (``make figures``).

    python benchmarks/make_figures.py [--seeds 3] [--only NAME ...] [--out DIR]
    RLCOURSE_FAST=1 python benchmarks/make_figures.py --out /tmp/figures    (one seed, short runs: a quick check)

Figures, each a PNG with a CSV of the numbers it was drawn from, listed in ``figures/INDEX.md`` with the command
that made it:

- ``<algo>_<env>``: every algorithm's preset on its first environment, the median and range over seeds, against
  env steps and against wall seconds, the threshold dashed (greedy evaluations for the presets judged by them,
  else the mean of the last 20 training returns);
- ``a2c_vs_gae``: A2C with TD-error advantages against A2C + GAE on CartPole-v1;
- ``td3_fixes``: DDPG against TD3 on Pendulum-v1;
- ``sac_temperature``: SAC with the tuned temperature (the preset) against a fixed one on Pendulum-v1;
- ``trust_region``: PPO (clip), PPO-KL and TRPO on CartPole-v1;
- ``grpo``: GRPO, RLOO and PPO on the question-answer task (the runs shipped in ``rlcourse/data``, made by
  ``benchmarks/grpo.py``).

A full run trains about thirty runs of seconds to a minute each: start it in the background with a log.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import torch

from rlcourse.algos import ALGORITHMS, ppo
from rlcourse.config import replace
from rlcourse.plots import THRESHOLDS, seed_band

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "figures"
FAST = os.environ.get("RLCOURSE_FAST") == "1"

# Every algorithm's first environment (the slides' and DESIGN.md's) and the env steps its figure shows.
FIRST = {
    "dqn": ("CartPole-v1", 40_000),
    "reinforce": ("CartPole-v1", 200_000),
    "a2c": ("CartPole-v1", 100_000),
    "ddpg": ("Pendulum-v1", 20_000),
    "td3": ("Pendulum-v1", 20_000),
    "sac": ("Pendulum-v1", 20_000),
    "trpo": ("CartPole-v1", 100_000),
    "ppo": ("CartPole-v1", 100_000),
}


class Runs:
    """Trains each (algorithm, environment, changes, seed) once and keeps it, so figures can share runs."""

    def __init__(self, seeds: int):
        self.seeds = seeds
        self.cache: dict = {}

    def get(self, algo: str, env_id: str, steps: int, config=None, **changes) -> list:
        module = ALGORITHMS[algo]
        config = replace(config or module.PRESETS[env_id], **changes)
        if FAST:
            steps = max(steps // 20, 2_000)
        key = (algo, env_id, steps, repr(config))
        if key not in self.cache:
            histories = []
            for seed in range(self.seeds):
                start = time.perf_counter()
                _, history = module.train(env_id, config, progress=False, seed=seed, total_steps=steps)
                histories.append(history)
                print(
                    f"  trained {algo} on {env_id} {changes or 'preset'} seed {seed}: "
                    f"{time.perf_counter() - start:.0f} s",
                    flush=True,
                )
            self.cache[key] = histories
        return self.cache[key]


def save(out: Path, name: str, runs: dict, threshold: float | None, title: str, command: str) -> str:
    """Draw ``runs`` (label -> histories) against env steps and wall seconds; write the PNG and the CSV."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.2))
    left, right = fig.subplots(1, 2)
    _, data = seed_band(runs, threshold, "env_step", ax=left)
    _, seconds = seed_band(runs, threshold, "wall_time", ax=right)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out / f"{name}.png", dpi=100)
    with open(out / f"{name}.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([f"# {command}"])
        writer.writerow(["label", "axis", "x", "median", "min", "max"])
        for axis, table in (("env_step", data), ("wall_time", seconds)):
            for label, d in table.items():
                for row in zip(d["x"], d["median"], d["min"], d["max"], strict=False):
                    writer.writerow([label, axis, *(f"{v:.6g}" for v in row)])
    return name


def grpo_figure(out: Path, command: str) -> str:
    from matplotlib.figure import Figure

    from rlcourse.widgets import draw_method_comparison, load_grpo_data

    benchmark = load_grpo_data("benchmark")
    fig = Figure(figsize=(12, 4.2))
    fig = draw_method_comparison(benchmark, target=0.9, fig=fig)
    fig.savefig(out / "grpo.png", dpi=100)
    with open(out / "grpo.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["# " + command + " (the curves of rlcourse/data/grpo_benchmark.json, from benchmarks/grpo.py)"]
        )
        writer.writerow(["method", "seed", "answers", "seconds", "accuracy"])
        for method, runs in benchmark.items():
            for run in runs:
                c = run["curve"]
                for row in zip(c["answers"], c["seconds"], c["accuracy"], strict=False):
                    writer.writerow([method, run["seed"], *row])
    return "grpo"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", nargs="+", help="only these figures (names as in figures/INDEX.md)")
    parser.add_argument("--out", default=str(FIGURES), help="folder to write to (default figures/)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = 1 if FAST else args.seeds
    runs = Runs(seeds)
    command = "RLCOURSE_FAST=1 " * FAST + f"python benchmarks/make_figures.py --seeds {seeds}"
    wanted = set(args.only or [])
    made: list[tuple[str, str]] = []

    def want(name: str) -> bool:
        return not wanted or name in wanted

    for algo, (env_id, steps) in FIRST.items():
        name = f"{algo}_{env_id}"
        if want(name):
            save(
                out,
                name,
                {algo: runs.get(algo, env_id, steps)},
                THRESHOLDS[env_id],
                f"{algo} preset on {env_id}, {seeds} seed(s)",
                command,
            )
            made.append((name, f"the {algo} preset on {env_id}"))
    if want("a2c_vs_gae"):
        a2c_runs = {
            "A2C + GAE (preset)": runs.get("a2c", "CartPole-v1", 100_000),
            "A2C, TD-error advantages": runs.get("a2c", "CartPole-v1", 100_000, advantage="td"),
        }
        save(out, "a2c_vs_gae", a2c_runs, 475.0, "A2C vs A2C + GAE on CartPole-v1", command)
        made.append(("a2c_vs_gae", "A2C with TD-error advantages against A2C + GAE"))
    if want("td3_fixes"):
        save(
            out,
            "td3_fixes",
            {"DDPG": runs.get("ddpg", "Pendulum-v1", 20_000), "TD3": runs.get("td3", "Pendulum-v1", 20_000)},
            -200.0,
            "DDPG vs TD3 (three fixes) on Pendulum-v1",
            command,
        )
        made.append(("td3_fixes", "DDPG against TD3"))
    if want("sac_temperature"):
        sac_runs = {
            "tuned temperature (preset)": runs.get("sac", "Pendulum-v1", 20_000),
            "fixed temperature 0.2": runs.get("sac", "Pendulum-v1", 20_000, autotune=False, alpha=0.2),
        }
        save(out, "sac_temperature", sac_runs, -200.0, "SAC on Pendulum-v1: tuned vs fixed temperature", command)
        made.append(("sac_temperature", "SAC with the tuned temperature against a fixed one"))
    if want("trust_region"):
        tr_runs = {
            "PPO (clip, preset)": runs.get("ppo", "CartPole-v1", 100_000),
            "PPO-KL": runs.get("ppo", "CartPole-v1", 100_000, config=ppo.PRESETS_KL["CartPole-v1"], objective="kl"),
            "TRPO": runs.get("trpo", "CartPole-v1", 100_000),
        }
        save(out, "trust_region", tr_runs, 475.0, "PPO, PPO-KL and TRPO on CartPole-v1", command)
        made.append(("trust_region", "PPO (clip), PPO-KL and TRPO"))
    if want("grpo"):
        grpo_figure(out, command)
        made.append(("grpo", "GRPO, RLOO and PPO on the question-answer task (precomputed by benchmarks/grpo.py)"))

    if not wanted:  # a full regeneration rewrites the index
        lines = [
            "# Figures",
            "",
            f"Made by `{command}` (`make figures`) on {time.strftime('%Y-%m-%d')}, "
            f"torch {torch.__version__}, Python {sys.version.split()[0]}. Each PNG has a CSV beside it with "
            "the numbers it was drawn from (its first line repeats the command).",
            "",
            "| figure | what |",
            "|---|---|",
        ]
        lines += [f"| [{name}.png]({name}.png) | {what} |" for name, what in made]
        (out / "INDEX.md").write_text("\n".join(lines) + "\n")
    for name, _ in made:
        print(f"wrote {out / name}.png and .csv")


if __name__ == "__main__":
    main()
