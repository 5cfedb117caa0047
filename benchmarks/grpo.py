"""GRPO against RLOO and PPO on the question-answer task, at the same number of sampled answers.

    python -m benchmarks grpo [--seeds 3] [--method grpo --method rloo --method ppo]
                              [--json out.json]
    python -m benchmarks grpo --json rlcourse/data/grpo_benchmark.json  # the notebook's comparison
    python -m benchmarks grpo --sweep rlcourse/data/grpo_sweep.json      # the notebook's sliders
    python -m benchmarks grpo --continuation rlcourse/data/grpo_continuation.json  # section 5's run

For each seed: one reference policy (the supervised warm start), then every method's preset from it,
one torch thread. Prints the held-out greedy accuracy along the way (every ``eval_every``
iterations, against answers sampled and wall seconds), and when it first reached 90%.

``--sweep`` instead trains GRPO from one reference with one hyperparameter changed at a time (clip
range epsilon, group size G, KL weight beta, and the averaging over tokens: GRPO's, DAPO's, Dr.
GRPO's), at the same number of sampled answers, and writes their accuracy curves for
``notebooks/08_grpo.ipynb``'s sliders (800 iterations each by default, less than the preset's 2000,
to keep the twelve runs short).

``--continuation`` trains the notebook's own run of section 5 to its end (the preset from the seed-0
warm start, 800 iterations): the notebook trains the first iterations live, within a minute, and
shows this run's history and trained policy for the rest. It writes the history (JSON) and the
policy's weights (``.pt`` beside it).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from rlcourse.algos import grpo
from rlcourse.config import replace, to_dict

TARGET = grpo.TARGET_ACCURACY
# The sweep: one knob at a time around the GRPO preset.
SWEEP = {
    "clip_eps": [0.05, 0.1, 0.2, 0.4],
    "group_size": [2, 4, 8, 16],
    "kl_coef": [0.0, 0.01, 0.05, 0.2],
}
SWEEP["aggregation"] = ["sequence", "token", "dr_grpo"]
# The preset's values: its one run serves as every knob's middle point.
BASE = {"clip_eps": 0.2, "group_size": 4, "kl_coef": 0.0, "aggregation": "sequence"}
# GRPO's averaging over tokens (the preset), DAPO's per-token mean, and Dr. GRPO (constant
# normaliser, no std).
AGGREGATIONS = {
    "sequence": {},
    "token": {"loss_aggregation": "token"},
    "dr_grpo": {"loss_aggregation": "constant", "scale_rewards": False},
}


def curve(history) -> dict[str, list[float]]:
    return {
        "answers": [row["env_step"] for row in history.evaluations],
        "seconds": [round(row["wall_time"], 2) for row in history.evaluations],
        "accuracy": [row["mean_return"] for row in history.evaluations],
    }


BLOCK = 10  # the sweep stores its per-iteration diagnostics as means over blocks of iterations


def block_means(values, block: int = BLOCK) -> list[float]:
    """Means over consecutive blocks of ``block`` values (the last block may be shorter)."""
    return [
        round(float(statistics.fmean(values[i : i + block])), 4)
        for i in range(0, len(values), block)
    ]


def first_reaching(c: dict, target: float) -> tuple[int | None, float | None]:
    for answers, seconds, acc in zip(c["answers"], c["seconds"], c["accuracy"], strict=False):
        if acc >= target:
            return int(answers), seconds
    return None, None


def compare(methods: list[str], seeds: int) -> dict:
    results: dict[str, list[dict]] = {m: [] for m in methods}
    for seed in range(seeds):
        config = grpo.PRESETS["grpo"]
        start = time.perf_counter()
        reference = grpo.make_reference(replace(config, seed=seed))
        warm = time.perf_counter() - start
        for method in methods:
            _, history = grpo.train(
                grpo.PRESETS[method], reference=reference, seed=seed, progress=False
            )
            c = curve(history)
            answers, seconds = first_reaching(c, TARGET)
            results[method].append(
                {
                    "seed": seed,
                    "curve": c,
                    "answers_to_target": answers,
                    "seconds_to_target": seconds,
                }
            )
            points = ", ".join(
                f"{a / 1000:.0f}k:{acc:.2f}"
                for a, acc in list(zip(c["answers"], c["accuracy"], strict=False))[::5]
            )
            print(
                f"{method} seed {seed}: warm start {c['accuracy'][0]:.3f} ({warm:.1f} s) "
                f"-> final {c['accuracy'][-1]:.3f} "
                f"in {c['seconds'][-1]:.0f} s; {TARGET:.0%} at {answers} answers / {seconds} s"
                f"\n    {points}",
                flush=True,
            )
    print()
    print(
        f"held-out greedy accuracy, {seeds} seeds, 1 torch thread, "
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}"
    )
    print(
        f"| method | start | final | reached {TARGET:.0%} | answers to {TARGET:.0%} (per seed) "
        "| seconds (per seed) |"
    )
    print("|---|---|---|---|---|---|")
    for method, runs in results.items():
        starts = [r["curve"]["accuracy"][0] for r in runs]
        finals = [r["curve"]["accuracy"][-1] for r in runs]
        hits = sum(r["answers_to_target"] is not None for r in runs)
        answers = [r["answers_to_target"] for r in runs]
        seconds = [r["seconds_to_target"] for r in runs]
        print(
            f"| {method} | {statistics.median(starts):.3f} "
            f"| {statistics.median(finals):.3f} (min {min(finals):.3f}) "
            f"| {hits}/{seeds} | {answers} | {seconds} |"
        )
    return results


def sweep(path: str, iterations: int, knobs: list[str] | None = None, seed: int = 0) -> dict:
    """Train the sweep's runs and write them to ``path``.

    With ``knobs``, only those knobs' runs, added to the runs already in ``path`` (the base run must
    be there).
    """
    base = replace(grpo.PRESETS["grpo"], iterations=iterations)
    answers_budget = base.iterations * base.questions * base.group_size
    reference = grpo.make_reference(replace(base, seed=seed))
    runs, base_run = {}, None
    if knobs:
        with open(path) as f:
            runs = json.load(f)["runs"]
        base_run = runs["clip_eps=0.2"]
    for knob, values in SWEEP.items():
        if knobs and knob not in knobs:
            continue
        for value in values:
            if value == BASE[knob] and base_run is not None:
                runs[f"{knob}={value}"] = {**base_run, "knob": knob, "value": value}
                continue
            changes = AGGREGATIONS[value] if knob == "aggregation" else {knob: value}
            config = replace(base, seed=seed, **changes)
            if knob == "group_size":  # the same answers per iteration: fewer, bigger groups
                config = replace(config, questions=base.questions * base.group_size // value)
            config = replace(
                config, iterations=answers_budget // (config.questions * config.group_size)
            )
            _, history = grpo.train(config, reference=reference, progress=False)
            runs[f"{knob}={value}"] = {
                "knob": knob,
                "value": value,
                **curve(history),
                "all_equal_groups": block_means(history.column("all_equal_groups", "iterations")),
                "kl_ref": block_means(history.column("kl_ref", "iterations")),
            }
            if value == BASE[knob]:
                base_run = runs[f"{knob}={value}"]
            print(
                f"{knob}={value}: final accuracy {history.evaluations[-1]['mean_return']:.3f}",
                flush=True,
            )
    data = {
        "config": to_dict(base),
        "seed": seed,
        "sweep": SWEEP,
        "runs": runs,
        "note": f"all_equal_groups and kl_ref: means over blocks of {BLOCK} iterations",
    }
    with open(path, "w") as f:
        json.dump(data, f)
    return data


def continuation(path: str, iterations: int = 800) -> dict:
    """Train notebook 08's run of section 5 for ``iterations`` and write its history to ``path``
    and its trained policy's weights to ``path`` with the suffix ``.pt``."""
    config = grpo.PRESETS["grpo"]
    reference = grpo.make_reference(config)
    policy, history = grpo.train(
        config, reference=reference, iterations=iterations, eval_every=50, progress=False
    )
    data = {
        "config": to_dict(config),
        "iterations": iterations,
        "eval_every": 50,
        "torch": torch.__version__,
        "machine": platform.machine(),
        "history": {
            "iterations": history.iterations,
            "evaluations": history.evaluations,
        },
    }
    with open(path, "w") as f:
        json.dump(data, f)
    torch.save(policy.state_dict(), path.removesuffix(".json") + ".pt")
    print(
        f"{iterations} iterations: held-out accuracy {history.evaluations[0]['mean_return']:.3f} "
        f"-> {history.evaluations[-1]['mean_return']:.3f}",
        flush=True,
    )
    return data


def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--method", choices=list(grpo.PRESETS), action="append")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument(
        "--sweep", help="run the notebook's sweep instead and write it to this JSON file"
    )
    parser.add_argument(
        "--knob", choices=list(SWEEP), action="append", help="with --sweep: only these knobs"
    )
    parser.add_argument(
        "--sweep-iterations", type=int, default=800, help="iterations of the base run of the sweep"
    )
    parser.add_argument(
        "--continuation",
        help="train notebook 08's section-5 run to its end instead and write it to this JSON file "
        "(its policy's weights beside it, .pt)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.continuation:
        continuation(args.continuation)
        return
    if args.sweep:
        sweep(args.sweep, args.sweep_iterations, args.knob)
        return
    results = compare(args.method or list(grpo.PRESETS), args.seeds)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f)


if __name__ == "__main__":
    main()
