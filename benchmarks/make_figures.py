"""Regenerate every figure in figures/ (``make figures``).

    python -m benchmarks figures [--seeds 3] [--only NAME ...] [--out DIR]
    RLCOURSE_FAST=1 python -m benchmarks figures --out /tmp/figures    (one seed, short runs)

Figures, each a PNG with a CSV of the numbers it was drawn from, listed in ``figures/INDEX.md`` with
the command that made it:

- ``<algo>_<env>``: every algorithm's preset on its first environment, the median and range over
  seeds, against env steps and against wall seconds, the threshold dashed (greedy evaluations for
  the presets judged by them, else the mean of the last 20 training returns);
- ``a2c_vs_gae``: A2C with TD-error advantages against A2C + GAE on CartPole-v1;
- ``td3_fixes``: DDPG against TD3 on Pendulum-v1;
- ``sac_temperature``: SAC with the tuned temperature (the preset) against a fixed one on
  Pendulum-v1;
- ``trust_region``: PPO (clip), PPO-KL and TRPO on CartPole-v1;
- ``grpo``: GRPO, RLOO and PPO on the question-answer task (the runs shipped in ``rlcourse/data``,
  made by ``python -m benchmarks grpo``);
- ``sb3_comparison``: env steps and wall seconds to threshold, rlcourse against Stable-Baselines3,
  drawn from ``benchmarks/results/sb3_comparison.json`` (made by
  ``python -m benchmarks compare-sb3``);
- ``mujoco``: the long MuJoCo runs' greedy returns (``benchmarks/results/mujoco``, made by
  ``python -m benchmarks mujoco``) with Stable-Baselines3's published returns.

The last three are drawn from stored results, in seconds; the commands named make those results.

A full run trains about thirty runs of seconds to a minute each: start it in the background with a
log.
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
from rlcourse.budgets import FAST, budget
from rlcourse.config import replace
from rlcourse.plots import THRESHOLDS, seed_band

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "figures"
RESULTS = ROOT / "benchmarks" / "results"

# Every algorithm's first environment (the one its notebook uses); the env steps its figure shows
# are rlcourse.budgets' "figures/<algo>" (small ones under RLCOURSE_FAST=1).
FIRST = {
    "dqn": "CartPole-v1",
    "reinforce": "CartPole-v1",
    "a2c": "CartPole-v1",
    "ddpg": "Pendulum-v1",
    "td3": "Pendulum-v1",
    "sac": "Pendulum-v1",
    "trpo": "CartPole-v1",
    "ppo": "CartPole-v1",
}


class Runs:
    """Trains each (algorithm, environment, changes, seed) once and keeps it, so figures can share
    runs."""

    def __init__(self, seeds: int):
        self.seeds = seeds
        self.cache: dict = {}

    def get(self, algo: str, env_id: str, steps: int, config=None, **changes) -> list:
        module = ALGORITHMS[algo]
        config = replace(config or module.PRESETS[env_id], **changes)
        key = (algo, env_id, steps, repr(config))
        if key not in self.cache:
            histories = []
            for seed in range(self.seeds):
                start = time.perf_counter()
                _, history = module.train(
                    env_id, config, progress=False, seed=seed, total_steps=steps
                )
                histories.append(history)
                print(
                    f"  trained {algo} on {env_id} {changes or 'preset'} seed {seed}: "
                    f"{time.perf_counter() - start:.0f} s",
                    flush=True,
                )
            self.cache[key] = histories
        return self.cache[key]


def save(
    out: Path, name: str, runs: dict, threshold: float | None, title: str, command: str
) -> str:
    """Draw ``runs`` (label -> histories) against env steps and wall seconds; write the PNG and the
    CSV."""
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
        source = (
            "the curves of rlcourse/data/grpo_benchmark.json, made by python -m benchmarks grpo"
        )
        writer.writerow([f"# {command} ({source})"])
        writer.writerow(["method", "seed", "answers", "seconds", "accuracy"])
        for method, runs in benchmark.items():
            for run in runs:
                c = run["curve"]
                for row in zip(c["answers"], c["seconds"], c["accuracy"], strict=False):
                    writer.writerow([method, run["seed"], *row])
    return "grpo"


def sb3_figure(out: Path, command: str, results: Path = RESULTS / "sb3_comparison.json") -> str:
    """Bars of the median env steps and wall seconds to threshold per algorithm, the range as error
    bars."""
    import json

    import numpy as np
    from matplotlib.figure import Figure

    record = json.loads(results.read_text())
    summary = record["summary"]
    algos = list(summary)
    fig = Figure(figsize=(12, 4.2))
    axes = fig.subplots(1, 2)
    rows = []
    labels = {"steps": "env steps to threshold", "seconds": "wall seconds to threshold"}
    for ax, (metric, label) in zip(axes, labels.items(), strict=True):
        for k, (lib, name) in enumerate(
            (("rlcourse", "rlcourse"), ("sb3", "Stable-Baselines3 / sb3-contrib"))
        ):
            x = np.arange(len(algos)) + (k - 0.5) * 0.38
            stats = [summary[a][lib][metric] for a in algos]
            med = np.array(
                [np.nan if s["median"] is None else s["median"] for s in stats], dtype=float
            )
            low = np.array([np.nan if s["min"] is None else s["min"] for s in stats], dtype=float)
            high = np.array([np.nan if s["max"] is None else s["max"] for s in stats], dtype=float)
            ax.bar(x, med, width=0.38, label=name, color=f"C{k}")
            ax.errorbar(
                x, med, yerr=[med - low, high - med], fmt="none", ecolor="black", capsize=3, lw=1
            )
            rows += [
                [a, lib, metric, s["median"], s["min"], s["max"]]
                for a, s in zip(algos, stats, strict=True)
            ]
        n = record["seeds"]
        solved = [(summary[a]["rlcourse"]["solved"], summary[a]["sb3"]["solved"]) for a in algos]
        ticks = [
            f"{a.upper()}\n{ours}/{n} · {sb3}/{n}"
            for a, (ours, sb3) in zip(algos, solved, strict=True)
        ]
        ax.set_xticks(np.arange(len(algos)), ticks)
        ax.set_yscale("log")
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend()
    m = record["machine"]
    fig.suptitle(
        f"rlcourse vs Stable-Baselines3: median and range over {record['seeds']} seeds "
        f"(solved: rlcourse · SB3), one torch thread ({m['date']}, {m['cores']} cores)"
    )
    fig.tight_layout()
    fig.savefig(out / "sb3_comparison.png", dpi=100)
    with open(out / "sb3_comparison.csv", "w", newline="") as f:
        writer = csv.writer(f)
        source = os.path.relpath(results, ROOT)
        made_by = "made by python -m benchmarks compare-sb3"
        writer.writerow([f"# {command} (from {source}, {made_by})"])
        writer.writerow(["algorithm", "library", "metric", "median", "min", "max"])
        writer.writerows(rows)
    return "sb3_comparison"


def mujoco_figure(out: Path, command: str, results: Path = RESULTS / "mujoco") -> str:
    """Greedy returns of the long MuJoCo runs per task, with Stable-Baselines3's published final
    returns."""
    import json

    from matplotlib.figure import Figure

    from benchmarks.mujoco_runs import SB3_PUBLISHED
    from rlcourse.training import History

    runs: dict[str, list[tuple[str, str, Path]]] = {}
    for run in sorted(results.iterdir()):
        if (run / "evaluations.csv").exists():
            record = json.loads((run / "config.json").read_text())
            runs.setdefault(record["env_id"], []).append(
                (record["algo"], record.get("library", "rlcourse"), run)
            )
    envs = sorted(runs)
    fig = Figure(figsize=(5 * len(envs), 4.2))
    axes = fig.subplots(1, len(envs), squeeze=False)[0]
    rows = []
    for ax, env_id in zip(axes, envs, strict=True):
        published_drawn, episodes = set(), set()
        for algo, library, run in runs[env_id]:
            history = History.load(run)
            steps, returns = (
                history.column("env_step", "evaluations"),
                history.column("mean_return", "evaluations"),
            )
            color = {"sac": "C0", "td3": "C1", "ppo": "C2"}[algo]
            seed = run.name.rsplit("-", 1)[1]
            if library == "sb3":
                # Stable-Baselines3 trained here with the same settings and evaluations
                ax.plot(
                    steps,
                    returns,
                    color=color,
                    ls=":",
                    marker=".",
                    label=f"SB3 {algo.upper()} here ({seed})",
                )
            else:
                ax.plot(steps, returns, color=color, label=f"rlcourse {algo.upper()} ({seed})")
            rows += [
                [env_id, algo, run.name, int(x), float(y)]
                for x, y in zip(steps, returns, strict=True)
            ]
            episodes.update(int(e) for e in history.column("episodes", "evaluations"))
            for (published_algo, published_env), (value, at, source) in SB3_PUBLISHED.items():
                if (
                    published_algo == algo
                    and published_env == env_id.rsplit("-", 1)[0]
                    and algo not in published_drawn
                ):
                    published_drawn.add(algo)
                    ax.axhline(
                        value,
                        color=color,
                        ls="--",
                        lw=1,
                        label=f"SB3 {algo.upper()} after {at:,} steps",
                    )
                    rows.append([env_id, algo, f"SB3 published ({source})", at, value])
        ax.set_title(env_id)
        ax.set_xlabel("env steps")
        ax.set_ylabel(f"greedy return (mean of {'/'.join(map(str, sorted(episodes)))} episodes)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(
        "MuJoCo, one seed each (SAC, TD3: rl-zoo's settings; PPO: the package defaults); "
        "dashed: SB3's published return after 1M steps; dotted: SB3 trained here alike"
    )
    fig.tight_layout()
    fig.savefig(out / "mujoco.png", dpi=100)
    with open(out / "mujoco.csv", "w", newline="") as f:
        writer = csv.writer(f)
        source = os.path.relpath(results, ROOT)
        writer.writerow([f"# {command} (from {source}, made by python -m benchmarks mujoco)"])
        writer.writerow(["env", "algorithm", "run", "env_step", "greedy_return"])
        writer.writerows(rows)
    return "mujoco"


def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    prog = prog or "python -m benchmarks figures"  # what the CSVs and the index record
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=budget("figures/seeds", fast=False))
    parser.add_argument(
        "--only", nargs="+", help="only these figures (names as in figures/INDEX.md)"
    )
    parser.add_argument("--out", default=str(FIGURES), help="folder to write to (default figures/)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = budget("figures/seeds") if FAST else args.seeds  # fast: always the fast budget
    runs = Runs(seeds)
    command = "RLCOURSE_FAST=1 " * FAST + f"{prog} --seeds {seeds}"
    wanted = set(args.only or [])
    known = {f"{algo}_{env_id}" for algo, env_id in FIRST.items()}
    known |= {
        "a2c_vs_gae",
        "td3_fixes",
        "sac_temperature",
        "trust_region",
        "grpo",
        "sb3_comparison",
        "mujoco",
    }
    if wanted - known:
        parser.error(
            f"no figure named {', '.join(sorted(wanted - known))}; "
            f"the figures are {', '.join(sorted(known))}"
        )
    made: list[tuple[str, str]] = []

    def want(name: str) -> bool:
        return not wanted or name in wanted

    for algo, env_id in FIRST.items():
        name = f"{algo}_{env_id}"
        if want(name):
            save(
                out,
                name,
                {algo: runs.get(algo, env_id, budget(f"figures/{algo}"))},
                THRESHOLDS[env_id],
                f"{algo} preset on {env_id}, {seeds} seed(s)",
                command,
            )
            made.append((name, f"the {algo} preset on {env_id}"))
    if want("a2c_vs_gae"):
        a2c_runs = {
            "A2C + GAE (preset)": runs.get("a2c", "CartPole-v1", budget("figures/a2c")),
            "A2C, TD-error advantages": runs.get(
                "a2c", "CartPole-v1", budget("figures/a2c"), advantage="td"
            ),
        }
        save(out, "a2c_vs_gae", a2c_runs, 475.0, "A2C vs A2C + GAE on CartPole-v1", command)
        made.append(("a2c_vs_gae", "A2C with TD-error advantages against A2C + GAE"))
    if want("td3_fixes"):
        save(
            out,
            "td3_fixes",
            {
                "DDPG": runs.get("ddpg", "Pendulum-v1", budget("figures/ddpg")),
                "TD3": runs.get("td3", "Pendulum-v1", budget("figures/td3")),
            },
            -200.0,
            "DDPG vs TD3 (three fixes) on Pendulum-v1",
            command,
        )
        made.append(("td3_fixes", "DDPG against TD3"))
    if want("sac_temperature"):
        sac_runs = {
            "tuned temperature (preset)": runs.get("sac", "Pendulum-v1", budget("figures/sac")),
            "fixed temperature 0.2": runs.get(
                "sac", "Pendulum-v1", budget("figures/sac"), autotune=False, alpha=0.2
            ),
        }
        save(
            out,
            "sac_temperature",
            sac_runs,
            -200.0,
            "SAC on Pendulum-v1: tuned vs fixed temperature",
            command,
        )
        made.append(("sac_temperature", "SAC with the tuned temperature against a fixed one"))
    if want("trust_region"):
        tr_runs = {
            "PPO (clip, preset)": runs.get("ppo", "CartPole-v1", budget("figures/ppo")),
            "PPO-KL": runs.get(
                "ppo",
                "CartPole-v1",
                budget("figures/ppo"),
                config=ppo.PRESETS_KL["CartPole-v1"],
                objective="kl",
            ),
            "TRPO": runs.get("trpo", "CartPole-v1", budget("figures/trpo")),
        }
        save(out, "trust_region", tr_runs, 475.0, "PPO, PPO-KL and TRPO on CartPole-v1", command)
        made.append(("trust_region", "PPO (clip), PPO-KL and TRPO"))
    if want("grpo"):
        grpo_figure(out, command)
        made.append(
            (
                "grpo",
                "GRPO, RLOO and PPO on the question-answer task "
                "(precomputed by python -m benchmarks grpo)",
            )
        )
    if want("sb3_comparison"):
        sb3_figure(out, command)
        made.append(
            (
                "sb3_comparison",
                "rlcourse against Stable-Baselines3 (from python -m benchmarks compare-sb3)",
            )
        )
    if want("mujoco"):
        mujoco_figure(out, command)
        made.append(
            ("mujoco", "SAC, TD3 and PPO on MuJoCo tasks (from python -m benchmarks mujoco)")
        )

    if not wanted:  # a full regeneration rewrites the index
        lines = [
            "# Figures",
            "",
            f"Made by `{command}` (`make figures`) on {time.strftime('%Y-%m-%d')}, "
            f"torch {torch.__version__}, Python {sys.version.split()[0]}. "
            "Each PNG has a CSV beside it with the numbers it was drawn from "
            "(its first line repeats the command).",
            "",
            "| figure | what |",
            "|---|---|",
        ]
        lines += [f"| [{name}.png]({name}.png) | {what} |" for name, what in made]
        (out / "INDEX.md").write_text("\n".join(lines) + "\n")
    elif (out / "INDEX.md").exists():
        # a partial regeneration updates the rows of what it made, keeps the others
        index = (out / "INDEX.md").read_text().splitlines()
        for name, what in made:
            row = f"| [{name}.png]({name}.png) | {what} |"
            at = [i for i, line in enumerate(index) if line.startswith(f"| [{name}.png]")]
            if at:
                index[at[0]] = row
            else:
                index.append(row)
        (out / "INDEX.md").write_text("\n".join(index) + "\n")
    for name, _ in made:
        print(f"wrote {out / name}.png and .csv")


if __name__ == "__main__":
    # However it is started, the stored figures cite the one documented command.
    main(prog="python -m benchmarks figures")
