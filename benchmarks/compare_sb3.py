"""Every algorithm that rlcourse and Stable-Baselines3 (sb3-contrib) both have, side by side.

    python -m benchmarks compare-sb3 [--seeds 3] [--algo a2c --algo sac ...]
                                     [--out benchmarks/results] [--readme README.md]
                                     [--equal-settings] [--resume]

All in one run; with ``--equal-settings`` the same run then measures the second table, the code's
own cost at equal settings (``python -m benchmarks equal-settings``, same seeds, same ``--out``
and ``--readme``), so that both tables come from one run.

Needs the optional `bench` extra (`pip install -e ".[bench]"`; `make bench` installs it and runs
this). For each algorithm, on the environment of its preset, both libraries train with one torch
thread and the same seeds, alternating which goes first (rlcourse for even seeds, SB3 for odd ones)
so that the machine's drift hits both alike. SB3 uses rl-baselines3-zoo's tuned settings for the
same environment. Reported: the env steps and wall seconds until the criterion is met, median and
range over the seeds; a seed that never meets it counts as infinitely slow in the median. The
criteria are the earlier issues':

- A2C, PPO, TRPO on CartPole-v1: mean return of the last 20 training episodes >= 475;
- DQN on CartPole-v1: a greedy evaluation (10 episodes every 2,000 steps, the same seeds for both)
  reaches 475 and the final policy still does;
- DDPG, TD3, SAC on Pendulum-v1: mean return of the last 10 training episodes >= -200 (SB3 within
  20,000 steps; rlcourse's runs are cut at 12,000).

The target (:func:`target_met`): rlcourse's median seed gets there in at most a third of SB3's
median wall seconds (:data:`WALL_TARGET`) and with no more env steps (SAC: fewer). And rlcourse's
DQN loop without learning is to be no slower than SB3's (:data:`LOOP_TARGET`).

Then the training loop's own cost: microseconds per env step of the bare vector environment (random
actions, nothing else) against each library's loop with learning switched off (on-policy: collecting
rollouts with the policy in the loop; off-policy: the steps before learning starts, replay buffer
included, random actions on both sides: rlcourse's DQN, epsilon-greedy from the first step, with
epsilon held at 1, as SB3 takes random actions before learning starts).

Writes ``<out>/sb3_comparison.json`` (every run) and ``<out>/sb3_comparison.md`` (the tables, with
date, machine and versions); with ``--readme`` it also replaces the block between the markers
``<!-- sb3-comparison:start -->`` and ``<!-- sb3-comparison:end -->`` in that file, and nothing
else. The comparison figure is drawn from the JSON by ``python -m benchmarks figures --only
sb3_comparison`` (``make bench`` does both). A full run takes about half an hour on a laptop;
``--overhead-only`` measures the loops again and keeps the stored runs.

A run stores what it has measured after each algorithm (``<out>/sb3_comparison.partial.json``
until its table is written; a fresh run refuses to start over it). ``--resume`` continues it in
another sitting, also with ``--equal-settings``: what the same committed code measured on the same
kind of machine (processor model, core count, versions, one-thread GEMM rate) with the same seeds
and loop length is kept, the rest is measured, and the tables name the date of every sitting that
measured something; any other difference refuses (:func:`benchmarks.benchlib.cannot_resume`).
Every row still compares the two libraries within one sitting. Files are written whole or not at
all.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmarks import a2c_cartpole, offpolicy, trust_region
from benchmarks.benchlib import (
    bare_env_us,
    cannot_resume,
    code_version,
    dates_text,
    gemm_rate,
    machine_info,
    median,
    per_step_by_difference,
    rollout_us,
    write_atomic,
)
from rlcourse.algos import ALGORITHMS

MARKERS = ("<!-- sb3-comparison:start -->", "<!-- sb3-comparison:end -->")


@dataclass(frozen=True)
class Case:
    env_id: str
    criterion: str
    ours: Callable[[int], dict]  # seed -> {"steps", "seconds"} (None, None if not met)
    sb3: Callable[[int], dict]
    sb3_name: str = "Stable-Baselines3"


LAST20 = "last 20 training episodes >= 475"
LAST10 = "last 10 training episodes >= -200"
CASES = {
    "a2c": Case("CartPole-v1", LAST20, a2c_cartpole.run_rlcourse, a2c_cartpole.run_sb3),
    "ppo": Case(
        "CartPole-v1",
        LAST20,
        lambda s: trust_region.ours("ppo", s),
        lambda s: trust_region.sb3("ppo", s),
    ),
    "trpo": Case(
        "CartPole-v1",
        LAST20,
        lambda s: trust_region.ours("trpo", s),
        lambda s: trust_region.sb3("trpo", s),
        "sb3-contrib",
    ),
    "dqn": Case(
        "CartPole-v1",
        "greedy evaluation >= 475, final policy too",
        lambda s: offpolicy.ours("dqn", s, cap=0),
        lambda s: offpolicy.sb3("dqn", s),
    ),
    **{
        algo: Case(
            "Pendulum-v1",
            LAST10,
            lambda s, algo=algo: offpolicy.ours(algo, s, cap=12_000),
            lambda s, algo=algo: offpolicy.sb3(algo, s),
        )
        for algo in ("ddpg", "td3", "sac")
    },
}
ON_POLICY = {"a2c", "ppo", "trpo"}
WALL_TARGET = 1 / 3  # rlcourse's wall seconds to the criterion, at most this share of SB3's
FEWER_STEPS = {"sac"}  # these must take fewer env steps than SB3, the others no more
LOOP_TARGET = ("dqn",)  # these loops without learning must be no slower than SB3's
WARMUP_BASE = 1_000  # the off-policy loops are timed as (N steps - this many) / (N - this many)


# -- loop overhead


def ours_loop_us(algo: str, env_id: str, env_steps: int) -> float:
    """Microseconds per env step of rlcourse's training loop with learning switched off."""
    module = ALGORITHMS[algo]
    config = module.PRESETS[env_id]
    if algo in ON_POLICY:  # the rollouts that feed the updates: the policy acts in the loop
        return rollout_us(algo, env_id, config, env_steps)

    # off-policy: the steps before learning starts, stored in the replay buffer; no gradient step.
    # Random actions, as SB3 takes before learning starts: rlcourse's DQN acts epsilon-greedily from
    # the first step, so here its epsilon stays 1 (every action random, the network not asked).
    random_actions = dict(epsilon_start=1.0, epsilon_end=1.0) if algo == "dqn" else {}

    def run(total: int) -> None:
        module.train(
            env_id,
            config,
            progress=False,
            total_steps=total,
            learning_starts=env_steps + 1,
            eval_every=0,
            **random_actions,
        )

    return 1e6 * per_step_by_difference(run, WARMUP_BASE, env_steps)


def sb3_loop_us(algo: str, env_steps: int) -> tuple[float, int]:
    """The same for Stable-Baselines3 with the comparison's settings; also its env copies."""
    if algo in ON_POLICY:
        model = a2c_cartpole.sb3_model(0) if algo == "a2c" else trust_region.sb3_model(algo, 0)
        _, callback = model._setup_learn(env_steps, callback=None)
        callback.on_training_start(locals(), globals())
        start = time.perf_counter()
        while model.num_timesteps < env_steps:
            model.collect_rollouts(
                model.env, callback, model.rollout_buffer, n_rollout_steps=model.n_steps
            )
        return 1e6 * (time.perf_counter() - start) / model.num_timesteps, model.n_envs
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

    env_id = CASES[algo].env_id

    def run(total: int) -> None:
        env = sb3_make_vec_env(env_id, n_envs=1, seed=0)
        offpolicy.sb3_model(algo, env, 0, learning_starts=env_steps + 1).learn(total)

    return 1e6 * per_step_by_difference(run, WARMUP_BASE, env_steps), 1


def overhead(algo: str, env_steps: int, repeats: int = 3) -> dict:
    """The three timings, each the fastest of ``repeats`` (interleaved), so a busy moment does not
    count."""
    env_id = CASES[algo].env_id
    num_envs = ALGORITHMS[algo].PRESETS[env_id].num_envs
    bare, ours, sb3 = [], [], []
    for _ in range(repeats):
        bare.append(bare_env_us(env_id, num_envs, env_steps))
        ours.append(ours_loop_us(algo, env_id, env_steps))
        us, sb3_envs = sb3_loop_us(algo, env_steps)
        sb3.append(us)
    return {
        "env_id": env_id,
        "num_envs": num_envs,
        "sb3_num_envs": sb3_envs,
        "bare_env_us": min(bare),
        "rlcourse_loop_us": min(ours),
        "sb3_loop_us": min(sb3),
    }


# -- report


def spread(values: list) -> dict:
    """The median over seeds (failures count as infinitely slow), the range of those that met it."""
    met = [v for v in values if v is not None]
    return {"median": median(values), "min": min(met, default=None), "max": max(met, default=None)}


def summarize(runs: dict[str, dict[str, list[dict]]]) -> dict:
    summary = {}
    for algo, libs in runs.items():
        row = {}
        for lib, rs in libs.items():
            row[lib] = {
                "solved": sum(r["steps"] is not None for r in rs),
                "steps": spread([r["steps"] for r in rs]),
                "seconds": spread([r["seconds"] for r in rs]),
            }
        ours, sb3 = row["rlcourse"], row["sb3"]
        row["target_met"] = False  # unless rlcourse's median seed met the criterion in time
        if ours["seconds"]["median"] and sb3["seconds"]["median"]:
            row["wall_ratio"] = ours["seconds"]["median"] / sb3["seconds"]["median"]
            row["steps_ratio"] = ours["steps"]["median"] / sb3["steps"]["median"]
            row["target_met"] = target_met(algo, row["wall_ratio"], row["steps_ratio"])
        elif ours["seconds"]["median"]:  # SB3's median seed never got there within its budget
            row["target_met"] = True
        summary[algo] = row
    return summary


def target_met(algo: str, wall_ratio: float, steps_ratio: float) -> bool:
    """At most :data:`WALL_TARGET` of SB3's wall seconds; no more env steps (FEWER_STEPS: fewer)."""
    steps_ok = steps_ratio < 1.0 if algo in FEWER_STEPS else steps_ratio <= 1.0
    return wall_ratio <= WALL_TARGET and steps_ok


def _cell(s: dict, fmt: str) -> str:
    if s["median"] is None:
        return "-"
    text = format(s["median"], fmt)
    if s["min"] is not None and s["max"] != s["min"]:
        text += f" ({format(s['min'], fmt)}-{format(s['max'], fmt)})"
    return text


def _rate(machine: dict) -> str:
    rate = machine.get("gemm_gflops")
    return "" if rate is None else f"; one-thread GEMM rate {rate:.1f} GFLOP/s at 256 x 256 x 256"


def _again(machine: dict, record: dict) -> str:
    """The sentence on loops measured again (``--overhead-only``), naming their code if it is not
    the code of the runs."""
    if "overhead_date" not in machine:
        return ""
    text = f" Loops measured again on {machine['overhead_date']}"
    runs, loops = (record.get(k) or {} for k in ("code", "overhead_code"))
    if loops and runs.get("fingerprint") != loops.get("fingerprint"):
        commit = (loops.get("commit") or "an unknown commit")[:7]
        text += f", with other code than the runs (commit {commit}"
        text += ", with uncommitted changes)" if not loops.get("clean") else ")"
    return text + "."


def markdown(
    summary: dict, overheads: dict, seeds: int, machine: dict, record: dict | None = None
) -> str:
    dates = machine.get("dates") or [machine["date"]]
    resumed = " (one run in sittings, resumed with the same code)" if len(set(dates)) > 1 else ""
    lines = [
        f"Measured on {dates_text(dates)}{resumed} on {machine['cpu']} "
        f"({machine['cores']} cores{_rate(machine)}), one torch "
        f"thread per run, torch {machine['torch']}, Stable-Baselines3 {machine['sb3']}, "
        f"sb3-contrib {machine['sb3_contrib']}, gymnasium {machine['gymnasium']}; medians over "
        f"seeds 0-{seeds - 1} with the range in brackets (`python -m benchmarks compare-sb3`).",
        "",
        "| algorithm | environment, criterion | library | solved | env steps | wall seconds "
        "| wall / SB3 | steps / SB3 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for algo, row in summary.items():
        case = CASES[algo]
        for lib, name in (("rlcourse", "rlcourse preset"), ("sb3", case.sb3_name)):
            s = row[lib]
            ratios = ["", ""]
            if lib == "rlcourse" and "wall_ratio" in row:
                mark = "" if row["target_met"] else " (target missed)"
                ratios = [f"{row['wall_ratio']:.2f}{mark}", f"{row['steps_ratio']:.2f}"]
            elif lib == "rlcourse":
                ratios = (
                    ["SB3 did not get there", ""] if row["target_met"] else ["target missed", ""]
                )
            lines.append(
                f"| {algo.upper()} | {case.env_id}, {case.criterion} | {name} "
                f"| {s['solved']}/{seeds} | {_cell(s['steps'], ',.0f')} "
                f"| {_cell(s['seconds'], '.1f')} | {ratios[0]} | {ratios[1]} |"
            )
    met = [algo.upper() for algo, row in summary.items() if row["target_met"]]
    missed = [algo.upper() for algo, row in summary.items() if not row["target_met"]]
    verdict = (
        "Target (at most a third of the wall seconds; no more env steps, SAC fewer) "
        f"met by {len(met)} of {len(summary)}"
    )
    verdict += f"; missed by {', '.join(missed)}." if missed else "."
    close = [a for a, row in summary.items() if row["target_met"] and "wall_ratio" in row]
    if close:
        tight = max(
            close,
            key=lambda a: max(summary[a]["wall_ratio"] / WALL_TARGET, summary[a]["steps_ratio"]),
        )
        verdict += (
            f" Closest to the line: {tight.upper()} "
            f"({summary[tight]['wall_ratio']:.2f} of the wall seconds, "
            f"{summary[tight]['steps_ratio']:.2f} of the env steps)."
        )
    lines += ["", verdict]
    if overheads:
        lines += [
            "",
            "The loop without learning, in microseconds per env step (fastest of three). "
            "Bare env: rlcourse's vector env (as many copies as rlcourse's preset) stepped with "
            "random actions. On-policy loops: collecting rollouts with the policy acting (SB3's "
            "also computes the values there; rlcourse's after the rollout, in the update). "
            "Off-policy loops: the steps before learning starts, replay buffer included, timed by "
            f"difference (N minus {WARMUP_BASE:,} steps) so that building the model is not "
            "counted; random actions on both sides (rlcourse's DQN, which acts epsilon-greedily "
            "from the first step, with epsilon held at 1 here, as SB3 acts before learning "
            "starts)." + _again(machine, record or {}),
            "",
            "| algorithm | environment (copies: rlcourse / SB3) | bare env | rlcourse loop "
            "| rlcourse overhead | SB3 loop |",
            "|---|---|---|---|---|---|",
        ]
        for algo, o in overheads.items():
            lines.append(
                f"| {algo.upper()} | {o['env_id']} "
                f"({o['num_envs']} / {o.get('sb3_num_envs', '?')}) "
                f"| {o['bare_env_us']:.1f} "
                f"| {o['rlcourse_loop_us']:.1f} | {o['rlcourse_loop_us'] - o['bare_env_us']:.1f} "
                f"| {o['sb3_loop_us']:.1f} |"
            )
        checked = [a for a in LOOP_TARGET if a in overheads]
        if checked:
            lines += ["", loop_verdict(overheads, checked)]
    return "\n".join(lines) + "\n"


def loop_verdict(overheads: dict, algos: list[str]) -> str:
    """Whether rlcourse's loop without learning is no slower than SB3's, for ``algos``."""
    parts = []
    for algo in algos:
        o = overheads[algo]
        ok = o["rlcourse_loop_us"] <= o["sb3_loop_us"]
        parts.append(
            f"{algo.upper()}'s loop {o['rlcourse_loop_us']:.1f} against SB3's "
            f"{o['sb3_loop_us']:.1f} µs per env step: "
            + ("no slower (target met)" if ok else "slower (target missed)")
        )
    return "Loop target (no slower than SB3's): " + "; ".join(parts) + "."


def replace_block(path: Path, block: str, markers: tuple[str, str] = MARKERS) -> None:
    """Put ``block`` between the two ``markers`` of ``path`` (by default this command's); refuse
    (and change nothing) if they are missing."""
    text = path.read_text(encoding="utf-8")
    start, end = markers
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise SystemExit(f"{path} needs exactly one {start} followed by one {end}; left unchanged")
    head, rest = text.split(start)
    _, tail = rest.split(end)
    write_atomic(path, f"{head}{start}\n{block}{end}{tail}")


def resumed(out: Path, fresh: dict, parser: argparse.ArgumentParser) -> dict:
    """The stored run that ``--resume`` continues: the partial record of an interrupted run, else
    the finished one (its equal-settings table may still be missing). It must have measured the
    same code on the same machine with the same seeds and loop length
    (:func:`benchlib.cannot_resume`)."""
    for name in ("sb3_comparison.partial.json", "sb3_comparison.json"):
        path = out / name
        if path.exists():
            break
    else:
        parser.error(f"--resume found no run to continue in {out}")
    stored = json.loads(path.read_text(encoding="utf-8"))
    why = cannot_resume(stored, fresh["machine"], fresh["code"])
    if why is None and stored["seeds"] != fresh["seeds"]:
        why = f"it ran {stored['seeds']} seeds, not {fresh['seeds']}"
    if why is None and stored.get("overhead_steps") != fresh["overhead_steps"]:
        why = (
            f"it timed its loops over {stored.get('overhead_steps')} env steps, "
            f"not {fresh['overhead_steps']} (--overhead-steps)"
        )
    if why is None and set(stored["overhead"]) != set(stored["runs"]):
        why = "it has runs without their loop measurements"
    if why:
        parser.error(f"--resume cannot continue the run in {path}: {why}")
    print(f"resuming the run in {path} ({', '.join(stored['runs']) or 'nothing'} done)")
    stored.setdefault("dates", [stored["machine"]["date"]])
    keys = ("machine", "code", "dates", "seeds", "overhead_steps", "runs", "overhead")
    keys += ("overhead_code",) if "overhead_code" in stored else ()
    return {key: stored[key] for key in keys}


def equal_settings_begun(out: Path, code: dict) -> bool:
    """Whether ``<out>/equal_settings.json`` holds a row that this code measured: a run resumed
    with ``--equal-settings`` then resumes those rows too, else starts them afresh."""
    path = out / "equal_settings.json"
    if not path.exists():
        return False
    rows = json.loads(path.read_text(encoding="utf-8")).get("algorithms", {})
    ours = code["fingerprint"]
    return any((r.get("code") or {}).get("fingerprint") == ours for r in rows.values())


def write(out: Path, record: dict, table: str | None) -> None:
    """The JSON with every run and the markdown table.

    The JSON is also written after each algorithm, so that an error late in the run loses nothing.
    """
    partial = out / "sb3_comparison.partial.json"
    write_atomic(partial, json.dumps(record, indent=2) + "\n")
    if table is None:
        return
    for path, text in (
        (out / "sb3_comparison.json", json.dumps(record, indent=2)),
        (out / "sb3_comparison.md", table),
    ):
        if path.exists():
            print(f"replacing {path} (the earlier version stays in git's history)")
        write_atomic(path, text + ("\n" if not text.endswith("\n") else ""))
        print(f"wrote {path}")
    partial.unlink()


def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--algo", choices=list(CASES), action="append")
    parser.add_argument(
        "--overhead-steps", type=int, default=20_000, help="env steps per loop measurement"
    )
    parser.add_argument(
        "--overhead-only",
        action="store_true",
        help="keep the runs of <out>/sb3_comparison.json and measure the loops again (a minute, "
        "not half an hour)",
    )
    parser.add_argument(
        "--out", default="benchmarks/results", help="folder for the JSON and markdown files"
    )
    parser.add_argument(
        "--readme", help="also put the tables between the sb3-comparison markers of this file"
    )
    parser.add_argument(
        "--equal-settings",
        action="store_true",
        help="then measure the equal-settings table in the same run (same seeds, --out, --readme)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run stored in --out (interrupted, or its first table done) with the "
        "same committed code, machine and seeds: what it measured is kept, the rest measured",
    )
    args = parser.parse_args(argv)
    if args.resume and args.overhead_only:
        parser.error("--resume continues a run; --overhead-only measures the loops of a done one")
    if args.seeds < 1:
        parser.error(f"--seeds must be at least 1, got {args.seeds}")
    if args.overhead_steps <= WARMUP_BASE:
        parser.error(
            f"--overhead-steps must be more than {WARMUP_BASE:,}, got {args.overhead_steps}"
        )
    torch.set_num_threads(1)
    out = Path(args.out)
    partial = out / "sb3_comparison.partial.json"
    if partial.exists() and not args.resume:
        parser.error(
            f"an interrupted run is stored in {partial}: continue it with --resume, or move the "
            "file away to start afresh (or to measure the loops of the finished run again)"
        )
    machine = machine_info()
    if args.overhead_only:
        stored = out / "sb3_comparison.json"
        if not stored.exists():
            parser.error(f"--overhead-only needs the runs of an earlier full run in {stored}")
        record = json.loads(stored.read_text(encoding="utf-8"))
        runs, seeds = record["runs"], record["seeds"]
        # The loops are today's code's; the runs keep the code they measured
        machine = {**record["machine"], "overhead_date": machine["date"]}
        record["overhead_code"] = code_version()
        record["overhead_steps"] = args.overhead_steps
    else:
        seeds, asked = args.seeds, args.algo or list(CASES)
        code = code_version()
        machine["gemm_gflops"] = round(gemm_rate(256, 256) / 1e9, 1)  # tells the machines apart
        record = {"machine": machine, "code": code, "dates": [], "seeds": seeds}
        record.update(overhead_steps=args.overhead_steps, runs={}, overhead={})
        today = machine["date"]
        if args.resume:
            record = resumed(out, record, parser)
            machine = record["machine"]
        # Resumed, the table holds every algorithm stored, not only those asked for now
        algos = [a for a in CASES if a in asked or a in record["runs"]]
        for algo in algos:
            if algo in record["overhead"]:  # its runs and its loops: measured in an earlier sitting
                print(f"{algo}: kept from the run stored in {out}", flush=True)
                continue
            record["dates"] = sorted({*record["dates"], today})
            case, runs = CASES[algo], {"rlcourse": [], "sb3": []}
            for seed in range(seeds):
                order = ("rlcourse", "sb3") if seed % 2 == 0 else ("sb3", "rlcourse")
                for lib in order:
                    r = case.ours(seed) if lib == "rlcourse" else case.sb3(seed)
                    runs[lib].append({"seed": seed, **r})
                    seconds = r["seconds"] and round(r["seconds"], 1)
                    print(
                        f"{algo} seed {seed} {lib:9s} steps {r['steps']}  seconds {seconds}",
                        flush=True,
                    )
            record["runs"][algo] = runs
            record["overhead"][algo] = overhead(algo, args.overhead_steps)
            print(f"{algo} loop without learning (us per env step): {record['overhead'][algo]}")
            write(out, record, None)
        runs = {algo: record["runs"][algo] for algo in algos}
    if args.overhead_only:
        overheads = {}
        for algo in runs:
            overheads[algo] = overhead(algo, args.overhead_steps)
            print(f"{algo} loop without learning (us per env step): {overheads[algo]}", flush=True)
    else:
        overheads = {algo: record["overhead"][algo] for algo in algos}

    summary = summarize(runs)
    dated = {**machine, "dates": record.get("dates") or [machine["date"]]}
    table = markdown(summary, overheads, seeds, dated, record)
    print()
    print(table)
    record = {
        "machine": machine,
        "code": record.get("code"),
        "dates": dated["dates"],
        "seeds": seeds,
        "overhead_steps": record.get("overhead_steps"),
        **({"overhead_code": record["overhead_code"]} if "overhead_code" in record else {}),
        "summary": summary,
        "overhead": overheads,
        "runs": runs,
    }
    write(out, record, table)
    if args.readme:
        replace_block(Path(args.readme), table)
        print(f"updated the sb3-comparison block of {args.readme}")
    if args.equal_settings:
        from benchmarks import equal_settings

        # Resumed before its equal-settings rows began (none of this code stored): they start
        # afresh
        go_on = args.resume and equal_settings_begun(out, record["code"])
        more = ["--seeds", str(seeds), "--out", str(out)] + (["--resume"] if go_on else [])
        for algo in args.algo or []:
            more += ["--algo", algo]
        equal_settings.main(more + (["--readme", args.readme] if args.readme else []))


if __name__ == "__main__":
    main()
