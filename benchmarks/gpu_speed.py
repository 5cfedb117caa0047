"""SAC and PPO on the GPU against the CPU, with a larger network and batch than the presets'.

    python -m benchmarks gpu-speed [--devices cpu cuda] [--hidden 1024 1024] [--threads 1]
                                   [--json out.json]

The presets' 64-unit networks are too small for a GPU to help: each step is a handful of tiny matrix
products, and launching them costs more than computing them. This script times the two workhorses at
a size where the arithmetic dominates, on HalfCheetah-v5 (17 observations, 6 actions):

- SAC, one env step with one gradient step, ``--hidden`` networks, batch ``--batch``: the time of a
  run of ``--warmup`` random steps plus ``--sac-steps`` learning steps, minus that of the warm-up
  alone, per step;
- PPO, ``--envs`` environments x 256 steps per rollout, 10 epochs of 4 minibatches, ``--hidden``
  networks: env steps per second over ``--ppo-iterations`` iterations (collection and updates
  together).

Every device runs the same configuration and seed; a device that is not there is skipped with a
note.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from benchmarks.benchlib import per_step_by_difference
from rlcourse.algos import ppo, sac

ENV_ID = "HalfCheetah-v5"


def sac_ms_per_step(
    device: str, hidden: tuple, batch: int, warmup: int, steps: int, threads: int
) -> float:
    def run(total: int) -> None:
        sac.train(
            ENV_ID,
            progress=False,
            total_steps=total,
            learning_starts=warmup,
            hidden=hidden,
            batch_size=batch,
            device=device,
            threads=threads,
        )

    run(
        warmup + 10
    )  # first use of the device (CUDA context, kernels) is not part of the measurement
    return 1000 * per_step_by_difference(run, warmup, warmup + steps)


def ppo_steps_per_second(
    device: str, hidden: tuple, envs: int, iterations: int, threads: int
) -> float:
    config = ppo.Config(
        num_envs=envs,
        rollout_steps=256,
        epochs=10,
        minibatches=4,
        hidden=hidden,
        device=device,
        threads=threads,
    )
    ppo.train(ENV_ID, config, progress=False, total_steps=envs * 256)  # warm-up, as above
    start = time.perf_counter()
    ppo.train(ENV_ID, config, progress=False, total_steps=iterations * envs * 256)
    return iterations * envs * 256 / (time.perf_counter() - start)


def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    parser.add_argument("--hidden", type=int, nargs="+", default=[1024, 1024])
    parser.add_argument("--batch", type=int, default=1024, help="SAC's minibatch")
    parser.add_argument("--warmup", type=int, default=1_000)
    parser.add_argument("--sac-steps", type=int, default=200)
    parser.add_argument("--envs", type=int, default=16, help="PPO's parallel environments")
    parser.add_argument("--ppo-iterations", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the CPU runs")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    hidden = tuple(args.hidden)
    results = {}
    for device in args.devices:
        if device.startswith("cuda") and not torch.cuda.is_available():
            print(f"{device}: no CUDA device here, skipped")
            continue
        name = (
            torch.cuda.get_device_name(device)
            if device.startswith("cuda")
            else f"CPU, {args.threads} thread(s)"
        )
        sac_ms = sac_ms_per_step(
            device, hidden, args.batch, args.warmup, args.sac_steps, args.threads
        )
        ppo_rate = ppo_steps_per_second(
            device, hidden, args.envs, args.ppo_iterations, args.threads
        )
        results[device] = {"name": name, "sac_ms_per_step": sac_ms, "ppo_env_steps_per_s": ppo_rate}
        print(
            f"{device} ({name}): SAC {sac_ms:.1f} ms per env+gradient step "
            f"({1000 / sac_ms:.0f} steps/s), "
            f"PPO {ppo_rate:,.0f} env steps/s",
            flush=True,
        )
    if "cpu" in results and len(results) > 1:
        for device, r in results.items():
            if device != "cpu":
                cpu = results["cpu"]
                sac_speedup = cpu["sac_ms_per_step"] / r["sac_ms_per_step"]
                ppo_speedup = r["ppo_env_steps_per_s"] / cpu["ppo_env_steps_per_s"]
                print(f"{device} against the CPU: SAC {sac_speedup:.1f}x, PPO {ppo_speedup:.1f}x")
    settings = {"env_id": ENV_ID, "hidden": hidden, "sac_batch": args.batch, "ppo_envs": args.envs}
    print(f"settings: {settings}, torch {torch.__version__}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"settings": settings, "torch": torch.__version__, "results": results}, f, indent=2
            )


if __name__ == "__main__":
    main()
