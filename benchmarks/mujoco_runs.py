"""Long MuJoCo runs: SAC, TD3 (and PPO on InvertedPendulum-v5) with rl-baselines3-zoo's settings.

    python -m benchmarks mujoco --algo td3 --env HalfCheetah-v5 --steps 300000 \
        --out benchmarks/results/mujoco
    python -m benchmarks mujoco --algo sac --env Hopper-v5 --steps 300000 --seed 1
    python -m benchmarks mujoco --algo td3 --env Hopper-v5 --steps 100000 --library sb3

Runs take tens of minutes on a laptop CPU (a few hundred thousand env steps at 5-10 ms each): start
them in the background with a log. Every ``--eval-every`` env steps the greedy policy plays
``--eval-episodes`` episodes. The run folder (``<out>/<algo>-<env>-seed<N>``, never overwritten)
gets ``config.json``, ``history.csv``, ``diagnostics.csv`` and ``evaluations.csv`` when the run
ends. ``--library sb3`` trains Stable-Baselines3's SAC or TD3 instead, with the same settings and
the same greedy evaluations (same schedule, same environment seeds), into
``<out>/sb3-<algo>-<env>-seed<N>``: Stable-Baselines3 publishes returns for these tasks only after
1M steps (``SB3_PUBLISHED``), so this is the comparison at equal steps. Stopped early by Ctrl-C or
``kill`` (SIGTERM), a run writes what it has so far and records ``stopped_at`` in ``config.json``.

The settings are rl-baselines3-zoo's for these tasks (hyperparams/sac.yml, td3.yml), which the
Stable-Baselines3 results are published with: SAC with 256-256 networks, learning rate 3e-4
everywhere, 10,000 random steps first; TD3 with 400-300 networks, learning rate 1e-3, exploration
noise 0.1, 10,000 random steps first; both batch 256, one gradient step per env step.

(The command is ``mujoco``; the module is not called mujoco.py, a name that run as a file would
shadow the mujoco package itself.)
"""

from __future__ import annotations

import argparse
import signal
import time
from pathlib import Path

import torch

from benchmarks.offpolicy import SB3Policy
from rlcourse.algos import ppo, sac, td3
from rlcourse.config import replace, to_dict
from rlcourse.training import History, TrainingInterrupted, evaluate_on_schedule, write_json

SETTINGS = {
    "sac": lambda steps: sac.Config(
        hidden=(256, 256),
        actor_lr=3e-4,
        critic_lr=3e-4,
        alpha_lr=3e-4,
        learning_starts=10_000,
        buffer_size=1_000_000,
        total_steps=steps,
    ),
    "td3": lambda steps: td3.Config(
        hidden=(400, 300),
        actor_lr=1e-3,
        critic_lr=1e-3,
        exploration_noise=0.1,
        learning_starts=10_000,
        buffer_size=1_000_000,
        total_steps=steps,
    ),
    # rl-zoo's PPO for InvertedPendulum (MuJoCo): the package defaults are close (8 envs x 128).
    "ppo": lambda steps: ppo.Config(total_steps=steps),
}
MODULES = {"sac": sac, "td3": td3, "ppo": ppo}

# Stable-Baselines3's published returns for these tasks: (greedy return, after env steps, source).
# They exist only for the end of a run of 1M steps (rl-baselines3-zoo benchmark.md: one run per
# agent, deterministic policy, ~150 evaluation episodes, MuJoCo v3 tasks); the curves in between are
# published as images or W&B runs only, so the figure draws these as a reference level, not a curve.
SB3_PUBLISHED = {
    ("sac", "HalfCheetah"): (9535.5, 1_000_000, "rl-zoo benchmark.md, HalfCheetah-v3"),
    ("td3", "HalfCheetah"): (9655.7, 1_000_000, "rl-zoo benchmark.md, HalfCheetah-v3"),
    ("sac", "Hopper"): (2325.5, 1_000_000, "rl-zoo benchmark.md, Hopper-v3"),
    ("td3", "Hopper"): (3606.4, 1_000_000, "rl-zoo benchmark.md, Hopper-v3"),
    # Median of seven seeds (four at 1000, then 728, 12, 11) of the openrlbenchmark SB3 runs with
    # rl-zoo's settings, Hugging Face cards qgallouedec/ppo-InvertedPendulum-v2-*.
    ("ppo", "InvertedPendulum"): (1000.0, 1_000_000, "openrlbenchmark SB3, InvertedPendulum-v2"),
}


def sb3_run(algo: str, env_id: str, config) -> History:
    """Stable-Baselines3's SAC or TD3 with rl-zoo's settings, evaluated like rlcourse's runs; the
    history."""
    import numpy as np
    from stable_baselines3 import SAC, TD3
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
    from stable_baselines3.common.noise import NormalActionNoise

    env = sb3_make_vec_env(env_id, n_envs=1, seed=config.seed)
    if algo == "sac":
        model = SAC("MlpPolicy", env, learning_starts=10_000, seed=config.seed, device="cpu")
    else:
        act_dim = env.action_space.shape[0]
        model = TD3(
            "MlpPolicy",
            env,
            learning_starts=10_000,
            action_noise=NormalActionNoise(np.zeros(act_dim), 0.1 * np.ones(act_dim)),
            train_freq=1,
            gradient_steps=1,
            learning_rate=1e-3,
            batch_size=256,
            policy_kwargs=dict(net_arch=[400, 300]),
            seed=config.seed,
            device="cpu",
        )
    history = History()
    agent = SB3Policy(model, env_id)  # evaluated by rlcourse's evaluate, like rlcourse's agents

    class Evaluations(BaseCallback):
        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:
                    history.add_episode(
                        self.num_timesteps, float(info["episode"]["r"]), int(info["episode"]["l"])
                    )
            evaluate_on_schedule(agent, history, self.num_timesteps, config)
            return True

    try:
        model.learn(config.total_steps, callback=Evaluations())
        evaluate_on_schedule(
            agent, history, model.num_timesteps, config, final=True
        )  # as rlcourse's loops do
    except KeyboardInterrupt as stopped:
        raise TrainingInterrupted(history, agent) from stopped
    return history


def _stop(signum: int, frame: object) -> None:
    # A background job starts with SIGINT ignored, so `kill` (SIGTERM) is how a long run is stopped
    # early; the training loop turns the KeyboardInterrupt into TrainingInterrupted, which carries
    # the history.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--algo", choices=list(SETTINGS), required=True)
    parser.add_argument("--env", required=True)
    parser.add_argument("--steps", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=10_000)
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/results/mujoco")
    parser.add_argument("--library", choices=["rlcourse", "sb3"], default="rlcourse")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = replace(
        SETTINGS[args.algo](args.steps),
        seed=args.seed,
        eval_every=args.eval_every,
        eval_episodes=args.eval_episodes,
    )
    if args.library == "sb3" and args.algo == "ppo":
        parser.error(
            "--library sb3 runs SAC or TD3 (PPO on InvertedPendulum has a published SB3 result)"
        )
    prefix = "sb3-" if args.library == "sb3" else ""
    run = Path(args.out) / f"{prefix}{args.algo}-{args.env}-seed{args.seed}"
    if run.exists():
        raise SystemExit(f"{run} exists: move it away first (a finished run is never overwritten)")
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    start = time.perf_counter()
    record = {
        "algo": args.algo,
        "env_id": args.env,
        "library": args.library,
        "config": to_dict(config),
    }
    if args.library == "sb3":  # only these fields apply; the rest are rl-zoo's settings in sb3_run
        record["config"] = {
            k: record["config"][k] for k in ("total_steps", "seed", "eval_every", "eval_episodes")
        }
    try:
        if args.library == "sb3":
            history = sb3_run(args.algo, args.env, config)
        else:
            _, history = MODULES[args.algo].train(args.env, config, progress=False)
    except TrainingInterrupted as stopped:
        history = stopped.history
        # The last env step the history knows of (a finished episode or an evaluation).
        steps = [int(row["env_step"]) for row in history.episodes + history.evaluations]
        record["stopped_at"] = max(steps, default=0)
    # A second Ctrl-C or kill must not leave half a run folder (which a rerun refuses to replace).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    run.mkdir(parents=True)
    write_json(run / "config.json", record)
    history.save(run)
    for row in history.evaluations:
        print(
            f"{int(row['env_step']):>8,d} steps  greedy return {row['mean_return']:9.1f}  "
            f"({row['wall_time']:.0f} s)"
        )
    seconds = time.perf_counter() - start
    print(f"{args.algo} on {args.env}, seed {args.seed}: {seconds:.0f} s; wrote {run}")


if __name__ == "__main__":
    main()
