"""A2C on CartPole-v1: rlcourse's preset against Stable-Baselines3, in one run.

    python -m benchmarks a2c-cartpole [--seeds 3] [--json results.json]

Needs the optional `bench` extra (`pip install -e ".[bench]"`). Both libraries run with one torch
thread, seeds alternating between them. For each run it reports the env steps and wall seconds until
the mean return of the last 20 training episodes reaches 475, then the median over seeds. SB3 uses
rl-zoo's CartPole settings (8 envs, ent_coef 0, defaults otherwise). It also reports the bare vector
environment's step rate and rlcourse's rollout collection rate (policy in the loop, no updates).
"""

from __future__ import annotations

import argparse
import json
import platform

import torch

from benchmarks.benchlib import bare_env_us, median, rollout_us, stop_at_threshold
from rlcourse.algos import a2c

ENV_ID, THRESHOLD, WINDOW = "CartPole-v1", 475.0, 20


def run_rlcourse(seed: int) -> dict:
    _, history = a2c.train(ENV_ID, seed=seed, progress=False)
    hit = history.first_reaching(THRESHOLD, WINDOW)
    return {"steps": hit["env_step"] if hit else None, "seconds": hit["wall_time"] if hit else None}


def sb3_model(seed: int):
    """rl-zoo's CartPole settings for A2C (rl-baselines3-zoo, hyperparams/a2c.yml).

    8 envs, no entropy bonus.
    """
    from stable_baselines3 import A2C
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

    env = sb3_make_vec_env(ENV_ID, n_envs=8, seed=seed)
    return A2C("MlpPolicy", env, ent_coef=0.0, seed=seed, device="cpu")


def run_sb3(seed: int, budget: int = 500_000) -> dict:
    model = sb3_model(seed)
    callback = stop_at_threshold(THRESHOLD, WINDOW)
    model.learn(budget, callback=callback)
    hit = callback.hit
    return {"steps": hit["env_step"] if hit else None, "seconds": hit["wall_time"] if hit else None}


def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = a2c.PRESETS[ENV_ID]

    results: dict[str, list[dict]] = {"rlcourse": [], "sb3": []}
    for seed in range(args.seeds):
        # Alternate which library goes first, so slow drift of the machine hits both alike.
        order = ("rlcourse", "sb3") if seed % 2 == 0 else ("sb3", "rlcourse")
        for lib in order:
            r = run_rlcourse(seed) if lib == "rlcourse" else run_sb3(seed)
            results[lib].append(r)
            seconds = r["seconds"] and round(r["seconds"], 2)
            print(f"seed {seed} {lib:9s} steps {r['steps']}  seconds {seconds}", flush=True)

    steps = 20_000 * config.num_envs
    bare = 1e6 / bare_env_us(ENV_ID, config.num_envs, steps)
    native = 1e6 / bare_env_us(ENV_ID, config.num_envs, steps, native=True)
    collect = 1e6 / rollout_us("a2c", ENV_ID, config, steps)
    summary = {
        lib: {
            "median_steps": median(r["steps"] for r in rs),
            "median_seconds": median(r["seconds"] for r in rs),
            "solved": sum(r["steps"] is not None for r in rs),
            "runs": rs,
        }
        for lib, rs in results.items()
    }
    print()
    print(
        f"A2C on {ENV_ID}, threshold {THRESHOLD:g} (mean of last {WINDOW} training episodes), "
        f"{args.seeds} seeds, 1 torch thread, {platform.processor() or platform.machine()}, "
        f"torch {torch.__version__}"
    )
    print(
        "| library | solved | env steps to threshold (median) "
        "| wall seconds to threshold (median) |"
    )
    print("|---|---|---|---|")
    for lib, s in summary.items():
        seconds = f"{s['median_seconds']:.2f}" if s["median_seconds"] is not None else "-"
        print(f"| {lib} | {s['solved']}/{args.seeds} | {s['median_steps']} | {seconds} |")
    print()
    print(
        f"bare vector env (sync, same-step autoreset, {config.num_envs} envs): {bare:,.0f} steps/s"
    )
    print(f"bare vector env (gymnasium's native CartPole vector env):        {native:,.0f} steps/s")
    print(
        f"rlcourse rollout collection (policy in the loop):                {collect:,.0f} steps/s "
        f"({collect / bare:.0%} of the sync env it steps)"
    )
    ours, sb3 = summary["rlcourse"], summary["sb3"]
    if ours["median_seconds"] and sb3["median_seconds"]:
        print(
            "wall-clock ratio rlcourse/SB3: "
            f"{ours['median_seconds'] / sb3['median_seconds']:.2f} (target <= 0.5); "
            f"env-step ratio: {ours['median_steps'] / sb3['median_steps']:.2f} (target <= 1)"
        )
    if args.json:
        summary["rates"] = {"bare_sync": bare, "bare_native": native, "rollout": collect}
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
