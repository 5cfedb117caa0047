"""DQN, DDPG, TD3 and SAC: rlcourse's presets against Stable-Baselines3 (rl-zoo settings).

    python -m benchmarks offpolicy [--seeds 3] [--algo dqn --algo sac ...] [--json results.json]

Needs the optional `bench` extra (`pip install -e ".[bench]"`). Both libraries run with one torch
thread, seeds alternating between them (ours first for even seeds, SB3 first for odd ones), so the
machine's drift hits both alike; all in one run. The criteria are those of issue 4:

- DQN on CartPole-v1: a greedy evaluation (10 episodes, every 2,000 env steps, the same environment
  seeds for both libraries) reaches 475, and the evaluation of the final policy still scores at
  least 475. Reported: env steps and wall seconds to the first such evaluation.
- DDPG, TD3 and SAC on Pendulum-v1: the mean return of the last 10 training episodes reaches -200
  within 20k env steps. SB3 stops at the threshold; rlcourse's run is cut at ``--cap`` steps (its
  schedules do not depend on the run's length, so the cut changes nothing before it).
- SAC on InvertedPendulum-v5 (ours only; SB3 has no rl-zoo setting for it): a greedy evaluation (10
  episodes, every 1,000 steps) reaches 1000 within its preset's budget (15k env steps).

Then the cost of one env step with one gradient step for SAC and TD3 at the same sizes in both
libraries (two [256, 256] networks, batch 256): (time of 1k warm-up + N learning steps - time of
the 1k warm-up alone) / N.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

from benchmarks.benchlib import per_step_by_difference, stop_at_threshold, summarize
from rlcourse.algos import ddpg, dqn, sac, td3
from rlcourse.training import evaluate

EVAL_EVERY, EVAL_EPISODES = 2_000, 10
PENDULUM_WINDOW, PENDULUM_BUDGET = 10, 20_000


class SB3Policy:
    """Just enough of :class:`rlcourse.training.Agent` for :func:`rlcourse.training.evaluate`."""

    def __init__(self, model, env_id: str):
        self.model, self.env_id = model, env_id

    def act(self, obs: np.ndarray, greedy: bool = True) -> np.ndarray:
        return self.model.predict(obs, deterministic=greedy)[0]


def dqn_result(evaluations: list[dict], threshold: float = 475.0) -> dict:
    """Steps and seconds to the first evaluation reaching ``threshold``; unsolved if the last one is
    below."""
    hit = next((e for e in evaluations if e["mean_return"] >= threshold), None)
    final = evaluations[-1]["mean_return"] if evaluations else float("nan")
    solved = hit is not None and final >= threshold
    return {
        "steps": hit["env_step"] if solved else None,
        "seconds": hit["wall_time"] if solved else None,
        "final": final,
        "evaluations": [round(e["mean_return"]) for e in evaluations],
    }


def pendulum_result(hit: dict | None) -> dict:
    return {"steps": hit["env_step"] if hit else None, "seconds": hit["wall_time"] if hit else None}


# -- rlcourse


def ours(algo: str, seed: int, cap: int) -> dict:
    if algo == "dqn":
        _, history = dqn.train(
            "CartPole-v1",
            seed=seed,
            progress=False,
            eval_every=EVAL_EVERY,
            eval_episodes=EVAL_EPISODES,
        )
        return dqn_result(history.evaluations)
    module = {"ddpg": ddpg, "sac": sac, "td3": td3}[algo]
    _, history = module.train("Pendulum-v1", seed=seed, progress=False, total_steps=cap)
    return pendulum_result(history.first_reaching(-200.0, PENDULUM_WINDOW))


# -- Stable-Baselines3


def sb3_model(algo: str, env, seed: int, **overrides):
    """The rl-zoo hyperparameters (rl-baselines3-zoo, hyperparams/{dqn,ddpg,sac,td3}.yml).

    DDPG's and TD3's Pendulum settings are the same.
    """
    from stable_baselines3 import DDPG, DQN, SAC, TD3
    from stable_baselines3.common.noise import NormalActionNoise

    if algo == "dqn":
        settings = dict(
            learning_rate=2.3e-3,
            batch_size=64,
            buffer_size=100_000,
            learning_starts=1_000,
            gamma=0.99,
            target_update_interval=10,
            train_freq=256,
            gradient_steps=128,
            exploration_fraction=0.16,
            exploration_final_eps=0.04,
            policy_kwargs=dict(net_arch=[256, 256]),
        )
        cls = DQN
    elif algo == "sac":
        settings, cls = dict(learning_rate=1e-3), SAC
    else:
        settings = dict(
            gamma=0.98,
            buffer_size=200_000,
            learning_starts=10_000,
            action_noise=NormalActionNoise(np.zeros(1), 0.1 * np.ones(1)),
            gradient_steps=-1,
            train_freq=(1, "episode"),
            learning_rate=1e-3,
            policy_kwargs=dict(net_arch=[400, 300]),
        )
        cls = DDPG if algo == "ddpg" else TD3
    settings.update(overrides)
    return cls("MlpPolicy", env, seed=seed, device="cpu", **settings)


def sb3(algo: str, seed: int) -> dict:
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

    env_id = "CartPole-v1" if algo == "dqn" else "Pendulum-v1"

    class GreedyEvaluations(BaseCallback):
        def __init__(self):
            super().__init__()
            self.evaluations = []

        def _on_training_start(self):
            self.start = time.perf_counter()

        def evaluate(self):
            seed = 10_000 + 100 * len(
                self.evaluations
            )  # the seeds of rlcourse's evaluate_on_schedule
            returns = evaluate(SB3Policy(self.model, env_id), EVAL_EPISODES, seed=seed)
            row = {"env_step": self.num_timesteps, "wall_time": time.perf_counter() - self.start}
            self.evaluations.append({**row, "mean_return": float(returns.mean())})

        def _on_step(self):
            if self.num_timesteps % EVAL_EVERY == 0:
                self.evaluate()
            return True

    env = sb3_make_vec_env(env_id, n_envs=1, seed=seed)
    model = sb3_model(algo, env, seed)
    if algo == "dqn":
        watch = GreedyEvaluations()
        model.learn(50_000, callback=watch)
        if watch.evaluations[-1]["env_step"] < model.num_timesteps:
            watch.evaluate()  # the final policy
        return dqn_result(watch.evaluations)
    stop = stop_at_threshold(-200.0, PENDULUM_WINDOW)
    model.learn(PENDULUM_BUDGET, callback=stop)
    return pendulum_result(stop.hit)


# -- cost of a step


def step_cost(lib: str, algo: str, steps: int = 1_000, warmup: int = 1_000) -> float:
    """Milliseconds per env step with one gradient step ([256, 256] networks, batch 256)."""

    def run(total: int) -> None:
        if lib == "rlcourse":
            module = {"sac": sac, "td3": td3}[algo]
            module.train(
                "Pendulum-v1",
                progress=False,
                total_steps=total,
                learning_starts=warmup,
                hidden=(256, 256),
            )
        else:
            from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

            overrides = dict(
                learning_starts=warmup, batch_size=256, policy_kwargs=dict(net_arch=[256, 256])
            )
            if algo == "td3":
                overrides.update(train_freq=1, gradient_steps=1)
            sb3_model(
                algo, sb3_make_vec_env("Pendulum-v1", n_envs=1, seed=0), 0, **overrides
            ).learn(total)

    return 1000 * per_step_by_difference(run, warmup, warmup + steps)


def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--algo", choices=["dqn", "ddpg", "td3", "sac"], action="append")
    parser.add_argument(
        "--cap", type=int, default=12_000, help="env steps of rlcourse's Pendulum runs"
    )
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    algos = args.algo or ["dqn", "ddpg", "td3", "sac"]

    results = {algo: {"rlcourse": [], "sb3": []} for algo in algos}
    for algo in algos:
        for seed in range(args.seeds):
            order = ("rlcourse", "sb3") if seed % 2 == 0 else ("sb3", "rlcourse")
            for lib in order:
                r = ours(algo, seed, args.cap) if lib == "rlcourse" else sb3(algo, seed)
                results[algo][lib].append(r)
                seconds = r["seconds"] and round(r["seconds"], 1)
                extra = f"  evaluations {r['evaluations']}" if "evaluations" in r else ""
                print(
                    f"{algo} seed {seed} {lib:9s} steps {r['steps']}  seconds {seconds}{extra}",
                    flush=True,
                )

    costs = {}
    for algo in [a for a in ("sac", "td3") if a in algos]:
        for lib in ("rlcourse", "sb3", "rlcourse", "sb3"):
            costs.setdefault(algo, {}).setdefault(lib, []).append(step_cost(lib, algo))

    print()
    print(
        f"{args.seeds} seeds, 1 torch thread, {platform.processor() or platform.machine()}, "
        f"torch {torch.__version__}"
    )
    criteria = {
        "dqn": "CartPole-v1, greedy 475 and final >= 475",
        "td3": "Pendulum-v1, last 10 >= -200",
    }
    criteria["sac"] = criteria["ddpg"] = criteria["td3"]
    summary = summarize(results, args.seeds, {algo: f"{algo}, {criteria[algo]}" for algo in algos})
    for algo, by_lib in costs.items():
        runs = {lib: ", ".join(f"{m:.2f}" for m in ms) for lib, ms in by_lib.items()}
        line = ", ".join(f"{lib} {min(by_lib[lib]):.2f} ms (min of {runs[lib]})" for lib in by_lib)
        print(f"{algo} cost of one env step + one gradient step, [256, 256], batch 256: {line}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summary": summary, "step_cost_ms": costs}, f, indent=2)


if __name__ == "__main__":
    main()
