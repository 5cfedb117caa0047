"""Before and after a change: rlcourse's cost per env step at equal settings (or with the
presets, or its loop without learning), alternating.

    python -m benchmarks before-after --before REV [--after REV] [--algo ppo] [--rounds 4]
                                      [--preset | --loop]
                                      [--out benchmarks/results/before_after.json]

Each version is a git worktree of its revision (``--after`` left out: the working tree as it is). A
measurement is :func:`benchmarks.equal_settings.step_cost_us` for rlcourse, microseconds per env
step with its updates, by difference of two training runs, in a fresh process that imports that
version's own ``rlcourse`` and ``benchmarks``, one torch thread. With ``--preset`` the runs use the
algorithm's preset for the same environment instead (what ``compare-sb3`` times), without its
greedy evaluations, the same lengths. With ``--loop`` it is the training loop with learning
switched off, as ``compare-sb3`` times it for its loop table
(:func:`benchmarks.compare_sb3.ours_loop_us` of the version's own ``benchmarks``, the same number
of env steps, one torch thread; each measurement is the fastest of three runs in a row, where
``compare-sb3`` interleaves them with the bare env and SB3's loop: the first pays for what a fresh
process does once). Before 048619b that function let DQN's network choose the actions; a
``--before`` older than that times something else. The versions alternate in the order
before, after, after, before, ... per algorithm (an even number of rounds), so that a machine whose
speed drifts steadily (this one's drifts by 20-30 % between runs) favours neither. The JSON keeps
every measurement, its order, the revisions and the machine, and the medians with their ratio. Run
it with the other core idle.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from benchmarks.benchlib import machine_info
from benchmarks.equal_settings import SETTINGS

REPO = Path(__file__).resolve().parent.parent
MEASURE = (
    "import sys, rlcourse, benchmarks.equal_settings as e; "
    "assert rlcourse.__file__.startswith(sys.argv[1]), rlcourse.__file__; "
    "print(e.step_cost_us('rlcourse', sys.argv[2]))"
)
# The preset's cost by the same difference, over the lengths given (this command's SETTINGS, the
# same for both versions), with only names that both versions have: a version from before this
# option has no function for it.
MEASURE_PRESET = (
    "import sys, rlcourse; "
    "from benchmarks.benchlib import per_step_by_difference; "
    "from rlcourse.algos import ALGORITHMS; "
    "assert rlcourse.__file__.startswith(sys.argv[1]), rlcourse.__file__; "
    "m, env_id = ALGORITHMS[sys.argv[2]], sys.argv[3]; "
    "base, n = int(sys.argv[4]), int(sys.argv[5]); "
    "run = lambda total: m.train(env_id, m.PRESETS[env_id], progress=False, eval_every=0, "
    "total_steps=total); "
    "print(1e6 * per_step_by_difference(run, base, base + n))"
)
MEASURE_LOOP = (
    "import sys, torch, rlcourse, benchmarks.compare_sb3 as c; "
    "from benchmarks.compare_sb3 import CASES, ours_loop_us; "
    "assert rlcourse.__file__.startswith(sys.argv[1]), rlcourse.__file__; "
    "assert c.__file__.startswith(sys.argv[1]), c.__file__; "
    "torch.set_num_threads(1); "
    "algo, n = sys.argv[2], int(sys.argv[3]); "
    "print(min(ours_loop_us(algo, CASES[algo].env_id, n) for _ in range(3)))"
)
LOOP_STEPS = 20_000  # compare-sb3's loop length (its --overhead-steps default)


def measure_in(tree: Path, algo: str, preset: bool = False, loop: bool = False) -> float:
    """Microseconds per env step of ``algo`` with the code of ``tree``, in a fresh process (the
    equal settings, with ``preset`` the preset, with ``loop`` its loop without learning)."""
    if loop:
        args = [MEASURE_LOOP, str(tree), algo, str(LOOP_STEPS)]
    elif preset:
        setting = SETTINGS[algo]
        args = [MEASURE_PRESET, str(tree), algo, setting.env_id, str(setting.base), str(setting.n)]
    else:
        args = [MEASURE, str(tree), algo]
    out = subprocess.run(
        [sys.executable, "-c", *args],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"measuring {algo} in {tree} failed:\n{out.stderr[-2000:]}")
    return float(out.stdout.split()[-1])


def alternate(
    algos: list[str], rounds: int, measure: Callable[[str, str], float]
) -> dict[str, list[dict]]:
    """``measure(version, algo)`` for 'before' and 'after', ``rounds`` times each, per algorithm in
    the order before, after, after, before, ... (the first of a pair swaps every round)."""
    runs: dict[str, list[dict]] = {algo: [] for algo in algos}
    for r in range(rounds):
        order = ("before", "after") if r % 2 == 0 else ("after", "before")
        for algo in algos:
            for version in order:
                us = measure(version, algo)
                runs[algo].append({"round": r, "version": version, "us_per_step": us})
                print(f"round {r} {algo:5s} {version:6s} {us:9.1f} us per env step", flush=True)
    return runs


def summarize(runs: dict[str, list[dict]]) -> dict[str, dict]:
    """Per algorithm the median of each version and after / before."""
    summary = {}
    for algo, rows in runs.items():
        med = {
            v: statistics.median(r["us_per_step"] for r in rows if r["version"] == v)
            for v in ("before", "after")
        }
        summary[algo] = {**med, "after_over_before": med["after"] / med["before"]}
    return summary


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.strip()


def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", required=True, help="git revision of the code before")
    parser.add_argument("--after", help="git revision of the code after (default: working tree)")
    parser.add_argument("--algo", choices=list(SETTINGS), action="append")
    parser.add_argument("--rounds", type=int, default=4, help="measurements per version")
    what = parser.add_mutually_exclusive_group()
    what.add_argument(
        "--preset", action="store_true", help="time the presets instead of the equal settings"
    )
    what.add_argument(
        "--loop",
        action="store_true",
        help="time the loop without learning, as compare-sb3's loop table does",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/before_after.json"))
    args = parser.parse_args(argv)
    if args.rounds < 2 or args.rounds % 2:
        parser.error(f"--rounds {args.rounds}: an even number (each version first as often)")
    algos = args.algo or ["ppo", "dqn"]
    with tempfile.TemporaryDirectory(prefix="rlcourse-before-after-") as tmp:
        trees, added = {"after": REPO}, []
        try:
            for version, rev in (("before", args.before), ("after", args.after)):
                if rev is not None:
                    trees[version] = Path(tmp) / version
                    git("worktree", "add", "--detach", str(trees[version]), rev)
                    added.append(trees[version])
            runs = alternate(
                algos, args.rounds, lambda v, a: measure_in(trees[v], a, args.preset, args.loop)
            )
        finally:
            for tree in added:
                git("worktree", "remove", "--force", str(tree))
    if args.after:
        after = git("rev-parse", args.after)
    else:
        changed = git("status", "--porcelain", "--", "rlcourse", "benchmarks")
        after = f"working tree at {git('rev-parse', 'HEAD')}" + (" with changes" if changed else "")
    record = {
        "command": "python -m benchmarks before-after " + " ".join(argv or []),
        "before": git("rev-parse", args.before),
        "after": after,
        "settings": "loop" if args.loop else "preset" if args.preset else "equal settings",
        "machine": machine_info(sb3=False),
        "runs": runs,
        "summary": summarize(runs),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    for algo, s in record["summary"].items():
        print(
            f"{algo}: before {s['before']:.1f}, after {s['after']:.1f} us per env step "
            f"(after / before {s['after_over_before']:.3f})"
        )
    print(f"wrote {args.out}")
