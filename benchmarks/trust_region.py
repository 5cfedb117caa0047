"""PPO and TRPO on CartPole-v1: rlcourse's presets against SB3's PPO and sb3-contrib's TRPO.

The reference libraries run with rl-zoo's settings; all in one run.

    python -m benchmarks trust-region [--seeds 3] [--algo ppo --algo trpo] [--json results.json]

Needs the optional `bench` extra (`pip install -e ".[bench]"`). Both libraries run with one torch
thread, seeds alternating between them (ours first for even seeds, SB3 first for odd ones). For each
run: the env steps and wall seconds until the mean return of the last 20 training episodes reaches
475, then the median over seeds. rlcourse's PPO with the adaptive KL penalty has no SB3 counterpart;
its row is ours alone.
"""

from __future__ import annotations

import argparse
import json
import platform

import torch

from benchmarks.benchlib import stop_at_threshold, summarize
from rlcourse.algos import ppo, trpo

ENV_ID, THRESHOLD, WINDOW, BUDGET = "CartPole-v1", 475.0, 20, 100_000


def ours(variant: str, seed: int) -> dict:
    if variant == "trpo":
        _, history = trpo.train(ENV_ID, seed=seed, progress=False, total_steps=BUDGET)
    else:
        config = ppo.PRESETS_KL[ENV_ID] if variant == "ppo-kl" else ppo.PRESETS[ENV_ID]
        _, history = ppo.train(ENV_ID, config, seed=seed, progress=False, total_steps=BUDGET)
    hit = history.first_reaching(THRESHOLD, WINDOW)
    return {"steps": hit["env_step"] if hit else None, "seconds": hit["wall_time"] if hit else None}


def sb3_model(variant: str, seed: int):
    """rl-zoo's CartPole settings (rl-baselines3-zoo, hyperparams/ppo.yml and trpo.yml)."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

    def linear(start: float):
        return lambda progress_remaining: progress_remaining * start

    if variant == "ppo":
        env = sb3_make_vec_env(ENV_ID, n_envs=8, seed=seed)
        model = PPO(
            "MlpPolicy",
            env,
            n_steps=32,
            batch_size=256,
            gae_lambda=0.8,
            gamma=0.98,
            n_epochs=20,
            ent_coef=0.0,
            learning_rate=linear(1e-3),
            clip_range=linear(0.2),
            seed=seed,
            device="cpu",
        )
    else:
        from sb3_contrib import TRPO

        env = sb3_make_vec_env(ENV_ID, n_envs=2, seed=seed)
        model = TRPO(
            "MlpPolicy",
            env,
            n_steps=512,
            batch_size=512,
            cg_damping=1e-3,
            gae_lambda=0.98,
            gamma=0.99,
            learning_rate=1e-3,
            n_critic_updates=20,
            seed=seed,
            device="cpu",
        )
    return model


def sb3(variant: str, seed: int) -> dict:
    model = sb3_model(variant, seed)
    callback = stop_at_threshold(THRESHOLD, WINDOW)
    model.learn(BUDGET, callback=callback)
    hit = callback.hit
    return {"steps": hit["env_step"] if hit else None, "seconds": hit["wall_time"] if hit else None}


def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--algo", choices=["ppo", "ppo-kl", "trpo"], action="append")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    variants = args.algo or ["ppo", "trpo", "ppo-kl"]

    results = {v: {"rlcourse": [], **({} if v == "ppo-kl" else {"sb3": []})} for v in variants}
    for variant in variants:
        for seed in range(args.seeds):
            order = ("rlcourse", "sb3") if seed % 2 == 0 else ("sb3", "rlcourse")
            for lib in order:
                if lib not in results[variant]:
                    continue
                r = ours(variant, seed) if lib == "rlcourse" else sb3(variant, seed)
                results[variant][lib].append(r)
                seconds = r["seconds"] and round(r["seconds"], 2)
                print(
                    f"{variant} seed {seed} {lib:9s} steps {r['steps']}  seconds {seconds}",
                    flush=True,
                )

    print()
    print(
        f"{ENV_ID}, threshold {THRESHOLD:g} (mean of last {WINDOW} training episodes), "
        f"{args.seeds} seeds, 1 torch thread, {platform.processor() or platform.machine()}, "
        f"torch {torch.__version__}"
    )
    summary = summarize(results, args.seeds, {"trpo": "trpo (SB3 side: sb3-contrib)"})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
