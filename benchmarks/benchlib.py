"""What the benchmark commands share.

The median over seeds, Stable-Baselines3's stop-at-threshold callback, the timings of a bare
environment, of rlcourse's rollout collection and of one step by difference, the machine and
versions a stored result was measured with, and the code it measured (what ``--resume`` checks).
"""

from __future__ import annotations

import datetime
import hashlib
import math
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import numpy as np


def median(values) -> float | None:
    """The median over seeds of a time-to-threshold.

    A seed that never got there (``None``) counts as infinitely slow, so failures cannot improve
    the median. ``None`` if the median itself is such a seed.
    """
    values = [math.inf if v is None else v for v in values]
    if not values:
        return None
    # With an even count the upper middle value: one failure in two seeds is not a median success.
    m = statistics.median_high(values)
    return None if math.isinf(m) else m


def stop_at_threshold(threshold: float, window: int):
    """An SB3 callback that stops training where the mean return first reaches ``threshold``.

    It records the env step and wall seconds (from the start of ``learn``) at which the mean return
    of the last ``window`` training episodes first reaches ``threshold``, and stops there. SB3
    reports finished episodes through the ``Monitor`` wrapper's ``info["episode"]``.
    """
    from stable_baselines3.common.callbacks import BaseCallback

    class StopAtThreshold(BaseCallback):
        def __init__(self):
            super().__init__()
            self.returns, self.hit = [], None

        def _on_training_start(self):
            self.start = time.perf_counter()

        def _on_step(self):
            for info in self.locals["infos"]:
                if "episode" in info:
                    self.returns.append(info["episode"]["r"])
                    if len(self.returns) >= window and np.mean(self.returns[-window:]) >= threshold:
                        self.hit = {
                            "env_step": self.num_timesteps,
                            "wall_time": time.perf_counter() - self.start,
                        }
                        return False
            return True

    return StopAtThreshold()


def summarize(
    results: dict[str, dict[str, list[dict]]], seeds: int, labels: dict[str, str] | None = None
) -> dict:
    """Print a table of solved counts and medians and the rlcourse/SB3 ratios; return the summary.

    One row per (algorithm, library), then the ratios against the targets (wall-clock <= 0.5, env
    steps <= 1). ``results[algo][lib]`` is a list of ``{"steps", "seconds"}`` per seed (``None`` if
    not solved); ``labels`` can rename an algorithm in the table (e.g. to name its criterion).
    """
    labels = labels or {}
    print("| algorithm | library | solved | env steps (median) | wall seconds (median) |")
    print("|---|---|---|---|---|")
    summary = {}
    for algo, libs in results.items():
        for lib, rs in libs.items():
            s = {
                "solved": sum(r["steps"] is not None for r in rs),
                "median_steps": median(r["steps"] for r in rs),
                "median_seconds": median(r["seconds"] for r in rs),
                "runs": rs,
            }
            summary[f"{algo}/{lib}"] = s
            steps = f"{s['median_steps']:,.0f}" if s["median_steps"] is not None else "-"
            seconds = f"{s['median_seconds']:.2f}" if s["median_seconds"] is not None else "-"
            label = labels.get(algo, algo)
            print(f"| {label} | {lib} | {s['solved']}/{seeds} | {steps} | {seconds} |")
    for algo in results:
        a, b = summary[f"{algo}/rlcourse"], summary.get(f"{algo}/sb3")
        if b and a["median_seconds"] and b["median_seconds"]:
            wall, steps = (
                a["median_seconds"] / b["median_seconds"],
                a["median_steps"] / b["median_steps"],
            )
            print(
                f"{algo}: wall-clock ratio rlcourse/SB3 {wall:.2f} (target <= 0.5), "
                f"env-step ratio {steps:.2f} (<= 1)"
            )
    return summary


def per_step_by_difference(run: Callable[[int], None], base: int, total: int) -> float:
    """Seconds per step of ``run(n)`` (which runs n steps), by difference.

    (time of ``total`` - time of ``base``) / (total - base): what both runs share (building the env
    and the model, a warm-up) cancels out.
    """

    def timed(n: int) -> float:
        start = time.perf_counter()
        run(n)
        return time.perf_counter() - start

    return (timed(total) - timed(base)) / (total - base)


def bare_env_us(env_id: str, num_envs: int, env_steps: int, native: bool = False) -> float:
    """Microseconds per env step of rlcourse's vector env, random actions, nothing else.

    ``native``: gymnasium's own vectorised environment instead.
    """
    import gymnasium as gym

    from rlcourse.envs import make_vec_env

    if native:
        envs = gym.make_vec(env_id, num_envs, vectorization_mode="vector_entry_point")
    else:
        envs = make_vec_env(env_id, num_envs)
    envs.reset(seed=0)
    envs.action_space.seed(0)
    actions = [envs.action_space.sample() for _ in range(env_steps // num_envs)]
    start = time.perf_counter()
    for a in actions:
        envs.step(a)
    elapsed = time.perf_counter() - start
    envs.close()
    return 1e6 * elapsed / (len(actions) * num_envs)


def rollout_us(algo: str, env_id: str, config, env_steps: int) -> float:
    """Microseconds per env step of rlcourse's rollout collection (the policy acting, no learning).

    With an on-policy ``config``'s environments, rollout length and network.
    """
    from rlcourse.envs import make_vec_env
    from rlcourse.nets import make_policy
    from rlcourse.rollouts import EpisodeTracker, collect_rollout
    from rlcourse.training import History

    envs = make_vec_env(env_id, config.num_envs)
    obs, _ = envs.reset(seed=0)
    policy = make_policy(
        envs.single_observation_space, envs.single_action_space, config.hidden, algo
    )
    tracker, rng = EpisodeTracker(config.num_envs, History()), np.random.default_rng(0)
    start = time.perf_counter()
    while tracker.env_steps < env_steps:
        _, obs = collect_rollout(envs, policy, obs, tracker, rng, num_steps=config.rollout_steps)
    return 1e6 * (time.perf_counter() - start) / tracker.env_steps


def gemm_rate(batch: int, width: int, repeats: int = 2_000) -> float:
    """Measured FLOP/s of one ``(batch, width) @ (width, width)`` product with bias, one thread."""
    import torch

    x, w, b = torch.randn(batch, width), torch.randn(width, width), torch.randn(width)
    for _ in range(50):
        torch.nn.functional.linear(x, w, b)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.nn.functional.linear(x, w, b)
    return 2 * batch * width * width * repeats / (time.perf_counter() - start)


def machine_info(sb3: bool = True) -> dict:
    """Date, CPU, core count and the versions behind a measurement (Stable-Baselines3's too unless
    ``sb3=False``), for the header of a stored result."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "date": datetime.date.today().isoformat(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gymnasium": version("gymnasium"),
        "numpy": version("numpy"),
    }
    if sb3:
        info.update(sb3=version("stable-baselines3"), sb3_contrib=version("sb3-contrib"))
    return info


# What a measurement measures: the package, the benchmarks (less their results, which a run
# writes), the pinned environment. A run resumed in another sitting must find these as they were.
CODE_PATHS = (
    "rlcourse",
    "benchmarks",
    "requirements",
    "pyproject.toml",
    ":(exclude)benchmarks/results",
)
MACHINE_KEYS = (
    "cpu", "cores", "python", "torch", "gymnasium", "numpy", "sb3", "sb3_contrib"
)  # fmt: skip


def code_version(root: Path | None = None) -> dict:
    """The commit and a fingerprint of the measured code (``CODE_PATHS`` as git's index holds
    them), and whether the working tree has changes there (``clean``); ``None`` values outside a
    git checkout."""
    root = root or Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True
        ).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        files = git("ls-files", "--stage", "--", *CODE_PATHS)
        changes = git("status", "--porcelain", "--untracked-files=normal", "--", *CODE_PATHS)
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "fingerprint": None, "clean": False}
    fingerprint = hashlib.sha256(files.encode()).hexdigest()[:16]
    return {"commit": commit, "fingerprint": fingerprint, "clean": not changes}


def uncommitted(code: dict) -> str | None:
    """Why a run of this code could not be continued in a later sitting (``None``: it could)."""
    if not code["clean"] or code["fingerprint"] is None:
        return (
            "the code here has uncommitted changes (or is not a git checkout), so a later "
            "sitting could not tell whether it measures the same code; commit it first"
        )
    return None


def cannot_resume(stored: dict, machine: dict, code: dict) -> str | None:
    """Why a stored run cannot be continued here (``None``: it can). Continuing needs the same
    code, committed (``code_version``), the same processor name, core count and versions
    (``MACHINE_KEYS``) and a one-thread GEMM rate (``machine["gemm_gflops"]``) within 25 %; only
    the date may differ, so every row compares the libraries on one kind of machine with one
    version of the code."""
    if uncommitted(code):
        return uncommitted(code)
    if (stored.get("code") or {}).get("fingerprint") != code["fingerprint"]:
        return (
            f"it measured other code (commit {(stored.get('code') or {}).get('commit')}, "
            f"here {code['commit']})"
        )
    if not stored["code"].get("clean"):
        return (
            "it measured uncommitted changes, which no fingerprint names, so nothing can tell "
            "whether this code is the same"
        )
    other = [k for k in MACHINE_KEYS if stored["machine"].get(k) != machine.get(k)]
    if other:
        return "it ran with another " + ", ".join(
            f"{k} ({stored['machine'].get(k)}, here {machine.get(k)})" for k in other
        )
    # Machines of one processor name differ threefold in speed here ("AMD EPYC", 2 cores): the
    # one-thread GEMM rate tells them apart. A sitting's rate drifts by a few percent.
    rates = stored["machine"].get("gemm_gflops"), machine.get("gemm_gflops")
    if None in rates:
        return "its machine's one-thread GEMM rate was not recorded"
    if not 0.8 <= rates[1] / rates[0] <= 1.25:
        return (
            f"it ran on a machine of another speed (one-thread GEMM rate {rates[0]:.1f} "
            f"GFLOP/s, here {rates[1]:.1f})"
        )
    return None


def dates_text(dates: list[str]) -> str:
    """'2026-12-06', or the days of several sittings: '2026-12-06 and 2026-12-07'."""
    dates = sorted(set(dates))
    return dates[0] if len(dates) == 1 else ", ".join(dates[:-1]) + f" and {dates[-1]}"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all: a run stopped mid-write (Ctrl-C, a full
    disk) leaves the earlier file as it was, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".writing")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
