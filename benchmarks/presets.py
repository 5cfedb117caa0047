"""Train every preset on its environments for several seeds; store the results, fail on a miss.

    python -m benchmarks presets [--seeds 3] [--algo a2c] [--env CartPole-v1]
                                 [--out benchmarks/results] [--set FIELD=VALUE ...]

Every preset of the package: each algorithm's ``PRESETS`` (one per environment), PPO's adaptive-KL
presets (``PRESETS_KL``, as ``ppo-kl``) and GRPO's three methods on its question-answer task. Each
trains its full budget with seeds 0..N-1, one torch thread, and is judged by its criterion:

- presets that evaluate the greedy policy during training (``eval_every > 0``: the off-policy
  methods whose training returns include exploration, and GRPO, whose evaluation is the held-out
  accuracy): the first greedy evaluation that reaches the threshold; for DQN on CartPole-v1 the
  final greedy evaluation must reach it too (no collapse at the end);
- the others: the mean return of the last training episodes (20 on CartPole-v1, 10 elsewhere).

A preset passes when every seed meets its criterion. The command writes
``presets.json`` (every run: env steps and wall seconds to the criterion, the final greedy return
where there is one) and ``presets.md`` under ``--out``; a run of some presets (``--algo``,
``--env``) replaces their entries and keeps the others. It exits with status 1 when a preset it
ran missed.

``--set FIELD=VALUE`` (repeatable) trains a variant instead: every selected preset with those fields
of its ``Config`` changed (``--set hidden=[32,32] --set total_steps=50000``; VALUE is a Python
literal, a list becomes a tuple, anything else a string), judged by the same criterion. A variant
needs its own ``--out`` (the presets' own results stay theirs), whose files record the changes; a
folder keeps the runs of one set of changes only.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.benchlib import code_version, machine_info
from rlcourse.algos import ALGORITHMS, grpo, ppo
from rlcourse.config import replace
from rlcourse.plots import THRESHOLDS

# How many of the last training episodes the threshold is averaged over (training-return criteria).
WINDOWS = {"CartPole-v1": 20}
DEFAULT_WINDOW = 10
# The final greedy evaluation must also reach the threshold.
FINAL_REQUIRED = {("dqn", "CartPole-v1")}
COMMAND = "python -m benchmarks presets"
DEFAULT_OUT = Path("benchmarks/results")
RESULTS = Path(__file__).resolve().parent / "results"  # the presets' own results, wherever run


# Fields a variant may not change: the seed is the command's (--seeds), and an evaluation schedule
# would judge the run by another criterion than its preset's.
FIXED = ("seed", "eval_every")


def parse_changes(items: list[str]) -> dict[str, Any]:
    """``["hidden=[32,32]", "objective=kl"]`` -> ``{"hidden": (32, 32), "objective": "kl"}``.

    VALUE is a Python literal (``inf`` and ``-inf`` too); a list becomes a tuple; anything else is
    the string itself."""
    changes = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.isidentifier():
            raise ValueError(f"--set {item!r}: write FIELD=VALUE, such as hidden=[32,32]")
        if name in changes:
            raise ValueError(f"--set {name} is given twice; give each field once")
        if name in FIXED:
            raise ValueError(
                f"--set {name}: a variant keeps its preset's {name} (the seeds are --seeds; an "
                "evaluation schedule would change the criterion)"
            )
        if text.strip() in ("inf", "-inf"):
            value = float(text)
        else:
            try:
                value = ast.literal_eval(text)
            except Exception:  # not a literal (ValueError, SyntaxError, TypeError, ...)
                value = text  # a word such as kl: the string itself
        changes[name] = tuple(value) if isinstance(value, list) else value
    return changes


def typed(value: Any) -> str:
    """A value as ``--set`` takes it back: ``(32, 32)`` -> ``[32,32]``, ``"kl"`` -> ``kl``,
    ``True`` -> ``True``."""
    if isinstance(value, str):
        return value
    if isinstance(value, (tuple, list)):
        return "[" + ",".join(typed(v) for v in value) + "]"
    return repr(value)


def all_presets() -> list[tuple[str, str, Any]]:
    """(label, environment or GRPO method, config) for every preset, in the summary table's order;
    the label is the algorithm's name (``ppo-kl`` for PPO's adaptive-KL presets)."""
    found = []
    for name, module in ALGORITHMS.items():
        found += [(name, env_id, config) for env_id, config in module.PRESETS.items()]
        if module is ppo:
            found += [("ppo-kl", env_id, config) for env_id, config in ppo.PRESETS_KL.items()]
    found += [("grpo", method, config) for method, config in grpo.PRESETS.items()]
    return found


def criterion(label: str, env: str, config: Any) -> str:
    """The preset's criterion in words."""
    if label == "grpo":
        return f"held-out accuracy {THRESHOLDS[grpo.TASK]:.0%} (every {config.eval_every} its)"
    threshold = THRESHOLDS[env]
    if config.eval_every > 0:
        text = f"greedy {threshold:g} (every {config.eval_every:,} steps)"
        return text + (f", final >= {threshold:g}" if (label, env) in FINAL_REQUIRED else "")
    return f"last {WINDOWS.get(env, DEFAULT_WINDOW)} training episodes {threshold:g}"


def run_one(label: str, env: str, config: Any, seed: int) -> dict:
    """Train one preset with one seed; where and whether it met its criterion."""
    start = time.perf_counter()
    if label == "grpo":
        _, history = grpo.train(config, seed=seed, progress=False)
        threshold = THRESHOLDS[grpo.TASK]
    else:
        module = ALGORITHMS["ppo" if label == "ppo-kl" else label]
        _, history = module.train(env, config, progress=False, seed=seed)
        threshold = THRESHOLDS[env]
    final = history.evaluations[-1]["mean_return"] if history.evaluations else None
    if label == "grpo" or config.eval_every > 0:
        hit = history.first_evaluation_reaching(threshold)
        if (label, env) in FINAL_REQUIRED and (final is None or final < threshold):
            hit = None
    else:
        hit = history.first_reaching(threshold, WINDOWS.get(env, DEFAULT_WINDOW))
    return {
        "seed": seed,
        "solved": hit is not None,
        "env_step": int(hit["env_step"]) if hit else None,  # GRPO: answers sampled
        "wall_time": round(hit["wall_time"], 1) if hit else None,
        "final_greedy": None if final is None else round(float(final), 3),
        "run_seconds": round(time.perf_counter() - start, 1),
    }


def markdown(record: dict) -> str:
    m = record["machine"]
    changes = record.get("changes") or {}
    what = "Every preset, its full budget"
    if changes:
        shown = " ".join(f"`--set {k}={typed(v)}`" for k, v in changes.items())
        what = f"A variant of the presets below: their configs with {shown} changed"
    lines = [
        f"{what}, seeds {record['seeds']}, one torch thread; last run on "
        f"{m['date']} on {m['cpu']} ({m['cores']} cores), torch {m['torch']}, gymnasium "
        f"{m['gymnasium']} (`{COMMAND}`). GRPO's steps are answers sampled; a median counts a "
        "seed that missed as infinitely slow.",
        "",
        "| preset | environment | criterion | solved | env steps to it (per seed) | median "
        "| wall seconds (per seed) | final greedy (per seed) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for entry in record["presets"].values():
        runs = entry["runs"]
        steps = [r["env_step"] for r in runs]
        # a seed that missed counts as infinitely slow, as in compare-sb3
        middle = statistics.median([math.inf if s is None else s for s in steps])
        med = "-" if math.isinf(middle) else f"{middle:,.0f}"
        finals = [r["final_greedy"] for r in runs]
        lines.append(
            f"| {entry['label']} | {entry['env']} | {entry['criterion']} "
            f"| {sum(r['solved'] for r in runs)}/{len(runs)} "
            f"| {', '.join('-' if s is None else f'{s:,}' for s in steps)} | {med} "
            f"| {', '.join('-' if r['wall_time'] is None else str(r['wall_time']) for r in runs)} "
            f"| {'-' if all(f is None for f in finals) else ', '.join(map(str, finals))} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    labels = sorted({label for label, _, _ in all_presets()})
    parser.add_argument("--algo", choices=labels, action="append", help="only these (repeatable)")
    parser.add_argument("--env", action="append", help="only these environments (repeatable)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="train a variant: change this Config field of every selected preset (repeatable)",
    )
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds {args.seeds}: at least 1")
    selected = [
        (label, env, config)
        for label, env, config in all_presets()
        if (not args.algo or label in args.algo) and (not args.env or env in args.env)
    ]
    try:
        changes = parse_changes(args.set)
    except ValueError as error:
        parser.error(str(error))
    for i, (label, env, config) in enumerate(selected):
        try:  # its Config refuses a field or value with a clear message
            selected[i] = (label, env, replace(config, **changes))
        except (TypeError, ValueError) as error:
            parser.error(f"--set, the {label} preset for {env}: {error}")
    if not selected:
        asked = " ".join(
            f"--{name} {value}" for name in ("algo", "env") for value in getattr(args, name) or []
        )
        have: dict[str, list[str]] = {}  # label -> its environments (GRPO: its methods)
        for label, env, _ in all_presets():
            if not args.algo or label in args.algo:
                have.setdefault(label, []).append(env)
        listed = "; ".join(f"{label}: {', '.join(envs)}" for label, envs in have.items())
        parser.error(f"no preset matches {asked}; there are presets for {listed}")
    if changes and args.out.resolve() in (DEFAULT_OUT.resolve(), RESULTS):
        parser.error(
            f"--set trains variants of the presets: give them their own --out ({DEFAULT_OUT} "
            "holds the presets' own results)"
        )
    torch.set_num_threads(1)
    path = args.out / "presets.json"
    record = json.loads(path.read_text()) if path.exists() else {"presets": {}}
    stored = {
        k: tuple(v) if isinstance(v, list) else v for k, v in record.get("changes", {}).items()
    }
    if record["presets"] and stored != changes:
        parser.error(
            f"{path} holds runs with other changes ({stored or 'none'}); give this variant "
            "another --out"
        )
    record.update(machine=machine_info(sb3=False), seeds=list(range(args.seeds)))
    if changes:
        record["changes"] = changes
    missed = []
    for label, env, config in selected:
        runs = []
        for seed in range(args.seeds):
            runs.append(run_one(label, env, config, seed))
            print(f"{label} {env} seed {seed}: {runs[-1]}", flush=True)
        key = f"{label}/{env}"
        record["presets"][key] = {
            "label": label,
            "env": env,
            "criterion": criterion(label, env, config),
            "total_steps": getattr(config, "total_steps", None) or config.iterations,
            "runs": runs,
            "passed": all(r["solved"] for r in runs),
            "code": code_version(),  # the commit that ran it (a variant changes that preset)
        }
        if not record["presets"][key]["passed"]:
            missed.append(key)
        order = [f"{lab}/{e}" for lab, e, _ in all_presets()]
        rank = {k: order.index(k) if k in order else len(order) for k in record["presets"]}
        record["presets"] = dict(sorted(record["presets"].items(), key=lambda kv: rank[kv[0]]))
        args.out.mkdir(parents=True, exist_ok=True)  # after each preset: a late error loses nothing
        path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        (args.out / "presets.md").write_text(markdown(record), encoding="utf-8")
    print(markdown(record))
    print(f"wrote {path} and {args.out / 'presets.md'}")
    if missed:
        print(f"missed their criterion: {', '.join(missed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
