"""The code's own cost: rlcourse and Stable-Baselines3 with the same settings, beside the floor.

    python -m benchmarks equal-settings [--seeds 3] [--algo sac ...] [--repeats 2]
                                        [--out benchmarks/results] [--readme README.md]
                                        [--resume]

`compare-sb3` measures what a user gets: rlcourse's presets against rl-baselines3-zoo's settings,
which differ (network sizes, warm-up, environment count). This command sets both libraries alike
for each of the seven algorithms they share: the same network sizes and activations, batch, random
warm-up, number of environments, rollout length, epochs and minibatches, gradient steps per env
step, optimiser (Adam) and learning rates, on the environment of each preset (``SETTINGS`` below;
the values are rl-zoo's for that environment, except where it schedules updates differently from
what rlcourse offers: there both make one gradient step per env step). One torch thread each,
libraries alternating which goes first. Reported:

- the cost per env step with its updates: (time of ``base + n`` steps - time of ``base``) / ``n``,
  so that building the model and, off-policy, the random warm-up cancel out; the fastest of
  ``--repeats`` measurements per library;
- the floor of that step on this machine: the bare environment (rlcourse's vector env with random
  actions) plus the step's arithmetic: the matrix products that its updates run, forward and
  backward, recorded from rlcourse's training loop (by difference, like the cost) and each timed
  on its own at its shapes and strides, one thread. Everything else a step does (the other
  operations, their dispatch, Python, acting) lies above it. The header also gives the one-thread
  rate of a 256 x 256 x 256 product, the best case, for scale;
- the env steps and wall seconds to the criterion of ``compare-sb3`` with these settings, seeds
  0..N-1, median over seeds (a seed that never gets there counts as infinitely slow).

Writes ``<out>/equal_settings.json`` (after each algorithm) and ``.md``; with ``--readme`` also
replaces the block between ``<!-- equal-settings:start -->`` and ``<!-- equal-settings:end -->``.
Rows of algorithms not measured keep what the JSON held; each row records its date and the code it
measured, and the table says when its rows come from more than one version of the code.
``--resume`` continues a run in another sitting. Every stored row is checked against its own record:
it refuses if a row ran on another kind of machine (its versions, or a one-thread GEMM rate outside
0.8-1.25 times this one's), keeps the rows that this committed code measured with the same seeds and
number of cost measurements, and measures the others again.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from benchmarks.benchlib import (
    MACHINE_KEYS,
    bare_env_us,
    cannot_resume,
    code_version,
    dates_text,
    gemm_rate,
    machine_info,
    median,
    per_step_by_difference,
    stop_at_threshold,
    uncommitted,
    write_atomic,
)
from benchmarks.compare_sb3 import replace_block
from rlcourse.algos import ALGORITHMS

MARKERS = ("<!-- equal-settings:start -->", "<!-- equal-settings:end -->")
DQN_EVAL_EVERY, DQN_EVAL_EPISODES = 2_000, 10


@dataclass(frozen=True)
class Setting:
    """One algorithm's shared settings: rlcourse's config overrides, SB3's constructor arguments,
    the criterion (threshold, window of training episodes; window 0: greedy evaluations), the
    budget of a criterion run, the cost measurement's base and n, and the words for the table."""

    env_id: str
    ours: dict
    sb3: dict
    threshold: float
    window: int
    budget: int
    base: int
    n: int
    words: str


def _adam(eps: float) -> dict:
    return dict(optimizer_class=torch.optim.Adam, optimizer_kwargs=dict(eps=eps))


ON_POLICY_NET = dict(net_arch=dict(pi=[64, 64], vf=[64, 64]), activation_fn=torch.nn.Tanh)
SETTINGS: dict[str, Setting] = {
    "a2c": Setting(
        "CartPole-v1",
        dict(advantage="gae", gae_lambda=1.0, num_envs=8, rollout_steps=5, actor_lr=7e-4,
             critic_lr=7e-4, normalize_advantages=False, ent_coef=0.0, max_grad_norm=0.5),
        dict(n_envs=8, n_steps=5, gae_lambda=1.0, learning_rate=7e-4, ent_coef=0.0,
             normalize_advantage=False, max_grad_norm=0.5,
             policy_kwargs={**ON_POLICY_NET, **_adam(1e-8)}),
        475.0, 20, 300_000, 10_240, 20_480,
        "8 envs x 5 steps, [64, 64] tanh actor and critic, Adam 7e-4, n-step returns",
    ),
    "ppo": Setting(
        "CartPole-v1",
        dict(num_envs=8, rollout_steps=32, epochs=20, minibatches=1, gamma=0.98, gae_lambda=0.8,
             actor_lr=1e-3, critic_lr=1e-3, clip_eps=0.2, adam_eps=1e-5, ent_coef=0.0,
             max_grad_norm=0.5),
        dict(n_envs=8, n_steps=32, batch_size=256, n_epochs=20, gamma=0.98, gae_lambda=0.8,
             learning_rate=1e-3, clip_range=0.2, ent_coef=0.0, max_grad_norm=0.5,
             policy_kwargs={**ON_POLICY_NET, **_adam(1e-5)}),
        475.0, 20, 100_000, 10_240, 20_480,
        "8 envs x 32 steps, 20 epochs of one 256-minibatch, [64, 64] tanh, Adam 1e-3",
    ),
    "trpo": Setting(
        "CartPole-v1",
        dict(num_envs=2, rollout_steps=512, delta=0.01, cg_iters=15, cg_damping=0.1,
             backtrack_ratio=0.8, max_backtracks=10, gamma=0.99, gae_lambda=0.98,
             critic_lr=1e-3, critic_epochs=20, critic_minibatches=2),
        dict(n_envs=2, n_steps=512, batch_size=512, gamma=0.99, gae_lambda=0.98,
             learning_rate=1e-3, n_critic_updates=20, cg_max_steps=15, cg_damping=0.1,
             target_kl=0.01, line_search_shrinking_factor=0.8, line_search_max_iter=10,
             policy_kwargs={**ON_POLICY_NET, **_adam(1e-8)}),
        475.0, 20, 100_000, 10_240, 20_480,
        "2 envs x 512 steps, KL 0.01, 15 CG steps, critic 20 epochs of 512, [64, 64] tanh",
    ),
    "dqn": Setting(
        "CartPole-v1",
        dict(lr=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1_000,
             train_every=256, gradient_steps=128, target_update_every=128, gamma=0.99,
             exploration_fraction=0.16, epsilon_end=0.04, hidden=(256, 256), double=False,
             max_grad_norm=10.0, eval_every=DQN_EVAL_EVERY, eval_episodes=DQN_EVAL_EPISODES),
        dict(learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1_000,
             train_freq=256, gradient_steps=128, target_update_interval=10, gamma=0.99,
             exploration_fraction=0.16, exploration_final_eps=0.04,
             policy_kwargs=dict(net_arch=[256, 256], **_adam(1e-8))),
        475.0, 0, 50_000, 2_024, 10_240,
        "batch 64, 128 gradient steps every 256 env steps, [256, 256] ReLU, Adam 2.3e-3",
    ),
    "ddpg": Setting(
        "Pendulum-v1",
        dict(hidden=(400, 300), batch_size=256, learning_starts=10_000, buffer_size=200_000,
             gamma=0.98, actor_lr=1e-3, critic_lr=1e-3, exploration_noise=0.1, rho=0.995),
        dict(net_arch=[400, 300], batch_size=256, learning_starts=10_000, buffer_size=200_000,
             gamma=0.98, learning_rate=1e-3, noise=0.1, tau=0.005),
        -200.0, 10, 20_000, 11_000, 2_000,
        "[400, 300] ReLU, batch 256, 10,000 random steps, 1 gradient step per env step",
    ),
    "td3": Setting(
        "Pendulum-v1",
        dict(hidden=(400, 300), batch_size=256, learning_starts=10_000, buffer_size=200_000,
             gamma=0.98, actor_lr=1e-3, critic_lr=1e-3, exploration_noise=0.1, rho=0.995,
             policy_delay=2, target_noise=0.2, target_noise_clip=0.5),
        dict(net_arch=[400, 300], batch_size=256, learning_starts=10_000, buffer_size=200_000,
             gamma=0.98, learning_rate=1e-3, noise=0.1, tau=0.005, policy_delay=2,
             target_policy_noise=0.2, target_noise_clip=0.5),
        -200.0, 10, 20_000, 11_000, 2_000,
        "[400, 300] ReLU, batch 256, 10,000 random steps, 1 gradient step per env step, delay 2",
    ),
    "sac": Setting(
        "Pendulum-v1",
        dict(hidden=(256, 256), batch_size=256, learning_starts=100, buffer_size=1_000_000,
             gamma=0.99, actor_lr=1e-3, critic_lr=1e-3, alpha_lr=1e-3, rho=0.995),
        dict(net_arch=[256, 256], batch_size=256, learning_starts=100, buffer_size=1_000_000,
             gamma=0.99, learning_rate=1e-3, tau=0.005),
        -200.0, 10, 20_000, 1_100, 1_000,
        "[256, 256] ReLU, batch 256, 100 random steps, 1 gradient step per env step",
    ),
}  # fmt: skip


def sb3_model(algo: str, seed: int, envs: Any | None = None):
    """Stable-Baselines3's (sb3-contrib's for TRPO) model with the shared settings."""
    from sb3_contrib import TRPO
    from stable_baselines3 import A2C, DDPG, DQN, PPO, SAC, TD3
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.noise import NormalActionNoise

    setting = SETTINGS[algo]
    kwargs = dict(setting.sb3)
    n_envs = kwargs.pop("n_envs", 1)
    envs = envs or make_vec_env(setting.env_id, n_envs=n_envs, seed=seed)
    if algo in ("ddpg", "td3", "sac"):
        kwargs["policy_kwargs"] = dict(net_arch=kwargs.pop("net_arch"), **_adam(1e-8))
        kwargs.update(train_freq=1, gradient_steps=1)
    if "noise" in kwargs:  # on SB3's actions scaled to [-1, 1]: rlcourse's noise x half-width
        kwargs["action_noise"] = NormalActionNoise(np.zeros(1), kwargs.pop("noise") * np.ones(1))
    cls = dict(a2c=A2C, ppo=PPO, trpo=TRPO, dqn=DQN, ddpg=DDPG, td3=TD3, sac=SAC)[algo]
    return cls("MlpPolicy", envs, seed=seed, device="cpu", **kwargs)


def train_ours(algo: str, seed: int, total: int):
    setting = SETTINGS[algo]
    module = ALGORITHMS[algo]
    config = module.Config(**{**setting.ours, "total_steps": total, "seed": seed})
    return module.train(setting.env_id, config, progress=False)


def criterion_run(lib: str, algo: str, seed: int) -> dict:
    """Env steps and wall seconds to the criterion (None, None if the budget ran out)."""
    setting = SETTINGS[algo]
    if lib == "rlcourse":
        _, history = train_ours(algo, seed, setting.budget)
        if setting.window:
            hit = history.first_reaching(setting.threshold, setting.window)
        else:  # DQN: a greedy evaluation reaches it, and the final one still does
            hit = history.first_evaluation_reaching(setting.threshold)
            if history.evaluations[-1]["mean_return"] < setting.threshold:
                hit = None
        return {"steps": hit and int(hit["env_step"]), "seconds": hit and hit["wall_time"]}
    if not setting.window:
        from benchmarks import offpolicy

        r = offpolicy.sb3("dqn", seed)  # the same settings: rl-zoo's, as in SETTINGS above
        return {"steps": r["steps"], "seconds": r["seconds"]}
    model = sb3_model(algo, seed)
    stop = stop_at_threshold(setting.threshold, setting.window)
    model.learn(setting.budget, callback=stop)
    hit = stop.hit
    return {"steps": hit and hit["env_step"], "seconds": hit and hit["wall_time"]}


def step_cost_us(lib: str, algo: str) -> float:
    """Microseconds per env step with its updates, by difference."""
    setting = SETTINGS[algo]

    def run(total: int) -> None:
        if lib == "rlcourse":
            config = {**setting.ours, "eval_every": 0}
            module = ALGORITHMS[algo]
            module.train(setting.env_id, module.Config(**config, total_steps=total), progress=False)
        else:
            sb3_model(algo, 0).learn(total)

    return 1e6 * per_step_by_difference(run, setting.base, setting.base + setting.n)


# -- the floor: the bare environment and, off-policy, the arithmetic of the updates


def mlp_flops(sizes: list[int], batch: int) -> int:
    """Multiply-adds x 2 of one forward pass of an MLP with these layer sizes."""
    return 2 * batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=False))


def update_flops(algo: str) -> float:
    """FLOPs of the updates per env step (off-policy), counted in forward passes of each network at
    the batch size: a backward pass costs two forward passes, one through frozen weights (the actor
    step through the critics) one."""
    s = SETTINGS[algo].ours
    if algo == "dqn":
        q = mlp_flops([4, *s["hidden"], 2], s["batch_size"])
        # per gradient step: the target network forward, the online forward and backward
        return 4 * q * s["gradient_steps"] / s["train_every"]
    obs, act, batch = 3, 1, s["batch_size"]
    actor_out = 2 * act if algo == "sac" else act
    actor = mlp_flops([obs, *s["hidden"], actor_out], batch)
    critic = mlp_flops([obs + act, *s["hidden"], 1], batch)
    if algo == "ddpg":  # target actor + critic; critic fwd+bwd; actor fwd+bwd through the critic
        return actor * (1 + 3) + critic * (1 + 3 + 2)
    if algo == "td3":  # two critics; the actor and the targets every second step
        return actor * (1 + 3 / 2) + critic * (2 + 2 * 3 + 2 / 2)
    # SAC: actor at S' and S; two target critics, two critics fwd+bwd, two through the actor step
    return actor * (1 + 3) + critic * (2 + 2 * 3 + 2 * 2)


class RecordProducts(TorchDispatchMode):
    """Counts the matrix products torch runs, forward and backward, by operation and operands
    (shapes, strides, dtype): what :func:`products_us` replays."""

    OPS = ("mm", "addmm", "bmm", "baddbmm", "mv", "addmv", "dot")

    def __init__(self):
        super().__init__()
        self.counts: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        if name in self.OPS:
            operands = tuple(
                ("tensor", tuple(a.shape), a.stride(), str(a.dtype))
                if isinstance(a, torch.Tensor)
                else a
                for a in args
            )
            self.counts[(name, operands, tuple(sorted(kwargs.items())))] += 1
        return func(*args, **kwargs)


def product_flops(key: tuple) -> int:
    """2 x multiply-adds of one recorded product."""
    name, operands, _ = key
    shapes = [o[1] for o in operands if isinstance(o, tuple) and o[:1] == ("tensor",)]
    a, b = shapes[-2], shapes[-1]  # addmm, baddbmm, addmv: the first operand is the added one
    if name in ("mv", "addmv"):
        return 2 * a[0] * a[1]
    if name == "dot":
        return 2 * a[0]
    batch = a[0] if name in ("bmm", "baddbmm") else 1
    return 2 * batch * a[-2] * a[-1] * b[-1]


def _operand(shape: tuple, stride: tuple, dtype: str) -> torch.Tensor:
    """Random numbers laid out as a recorded operand (a broadcast bias has stride 0)."""
    size = 1 + sum((n - 1) * s for n, s in zip(shape, stride, strict=True)) if all(shape) else 0
    values = torch.randn(size, dtype=getattr(torch, dtype.removeprefix("torch.")))
    return values.as_strided(shape, stride)


def products_us(counts: Counter, repeats: int = 200) -> float:
    """Microseconds the recorded products take, each replayed on its own at its shapes and strides
    (fastest of three timings of ``repeats`` calls) and multiplied by its count."""
    total = 0.0
    for (name, operands, kwargs), count in counts.items():
        args = [
            _operand(*o[1:]) if isinstance(o, tuple) and o[:1] == ("tensor",) else o
            for o in operands
        ]
        func = getattr(torch.ops.aten, name)
        for _ in range(10):
            func(*args, **dict(kwargs))
        best = math.inf
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(repeats):
                func(*args, **dict(kwargs))
            best = min(best, (time.perf_counter() - start) / repeats)
        total += 1e6 * best * count
    return total


def recorded_products(algo: str, total: int) -> Counter:
    """The products of rlcourse's training run of ``total`` env steps with the shared settings."""
    setting = SETTINGS[algo]
    module = ALGORITHMS[algo]
    config = module.Config(**{**setting.ours, "eval_every": 0, "total_steps": total})
    with RecordProducts() as record, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an off-policy base run may make no update
        module.train(setting.env_id, config, progress=False)
    return record.counts


def floor_us(algo: str) -> dict:
    """The floor of one env step with its updates: the bare environment plus the matrix products
    that the updates of an env step run (by difference of two runs, like the cost), each at the
    time it takes on its own at its own shapes. The rest of a step (the other operations, their
    dispatch, Python) is above the floor; so is acting, which rlcourse does in NumPy."""
    setting = SETTINGS[algo]
    envs = setting.ours.get("num_envs", 1)
    env_us = bare_env_us(setting.env_id, envs, 20_000)
    extra = recorded_products(algo, setting.base + setting.n)
    extra.subtract(recorded_products(algo, setting.base))
    extra = Counter({key: count for key, count in extra.items() if count > 0})
    arithmetic = products_us(extra) / setting.n
    flops = sum(product_flops(key) * count for key, count in extra.items()) / setting.n
    return {
        "bare_env_us": env_us,
        "arithmetic_us": arithmetic,
        "floor_us": env_us + arithmetic,
        "flops_per_step": flops,
    }


# -- tables


def versions_text(rows: dict) -> str | None:
    """When the rows measured more than one version of the code (uncommitted changes count as
    another version, which no fingerprint names): which rows measured which."""
    groups: dict[tuple, list[str]] = {}
    for algo, r in rows.items():
        code = r.get("code") or {}
        groups.setdefault((code.get("fingerprint"), bool(code.get("clean"))), []).append(algo)
    fingerprint, clean = next(iter(groups))
    if len(groups) == 1 and (clean or fingerprint is None):
        return None
    parts = []
    for (fingerprint, clean), algos in groups.items():
        names = ", ".join(a.upper() for a in algos)
        if fingerprint is None:
            parts.append(f"{names} (version not recorded)")
            continue
        first = rows[algos[0]]
        dates = sorted({rows[a]["date"] for a in algos})
        changes = "" if clean else " with uncommitted changes"
        parts.append(f"{names} (commit {first['code']['commit'][:7]}{changes}, {', '.join(dates)})")
    if len(groups) == 1:
        return f"The rows measured uncommitted code: {parts[0]}."
    return (
        f"Not one run: the rows measured {len(groups)} versions of the code: "
        + "; ".join(parts)
        + "."
    )


def markdown(record: dict) -> str:
    m, rows = record["machine"], record["algorithms"]
    dates = [r.get("date", m["date"]) for r in rows.values()] or [m["date"]]
    rates = sorted(
        {round(r.get("gemm_gflops", record["gemm_gflops"]), 1) for r in rows.values()}
    ) or [record["gemm_gflops"]]
    rate = f"{rates[0]:.1f}" + (f"-{rates[-1]:.1f}" if len(rates) > 1 else "")
    sittings = " (each row within one sitting)" if len(set(dates)) > 1 else ""
    lines = [
        f"Measured on {dates_text(dates)}{sittings} on {m['cpu']} ({m['cores']} cores), one "
        "torch thread "
        f"per run, torch {m['torch']}, Stable-Baselines3 {m['sb3']}, sb3-contrib "
        f"{m['sb3_contrib']}, gymnasium {m['gymnasium']}; GEMM rate {rate} GFLOP/s (one "
        f"thread, 256 x 256 x 256); seeds {record['seeds']} (`python -m benchmarks "
        "equal-settings`). Floor: the bare environment plus the matrix products of the "
        "step's updates, recorded from rlcourse's loop and each timed alone at its shapes.",
        "",
        "| algorithm | environment, shared settings | floor (µs/step) | rlcourse (µs/step) "
        "| SB3 (µs/step) | rlcourse / SB3 | rlcourse / floor | env steps to criterion "
        "(rlcourse / SB3) | wall seconds (rlcourse / SB3) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for algo, r in record["algorithms"].items():
        setting = SETTINGS[algo]
        ours, sb3 = min(r["cost_us"]["rlcourse"]), min(r["cost_us"]["sb3"])
        f = r["floor"]
        floor = f"{f['floor_us']:.0f} (env {f['bare_env_us']:.0f}"
        floor += f" + products {f['arithmetic_us']:.0f})" if f["arithmetic_us"] else ")"

        def med(lib: str, key: str, fmt: str, runs: dict = r["runs"]) -> str:
            value = median([run[key] for run in runs[lib]])
            return "-" if value is None else format(value, fmt)

        lines.append(
            f"| {algo.upper()} | {setting.env_id}: {setting.words} | {floor} | {ours:.0f} "
            f"| {sb3:.0f} | {ours / sb3:.2f} | {ours / f['floor_us']:.2f} "
            f"| {med('rlcourse', 'steps', ',.0f')} / {med('sb3', 'steps', ',.0f')} "
            f"| {med('rlcourse', 'seconds', '.1f')} / {med('sb3', 'seconds', '.1f')} |"
        )
    versions = versions_text(rows)
    if versions:
        lines += ["", versions]
    return "\n".join(lines) + "\n"


def _row_stored(record: dict, row: dict) -> dict:
    """A row's code and machine as ``cannot_resume`` reads them: its own, or the file's for rows
    stored before rows carried them."""
    machine = {k: record["machine"].get(k) for k in MACHINE_KEYS} | row.get("machine", {})
    machine["gemm_gflops"] = row.get("gemm_gflops", record.get("gemm_gflops"))
    return {"code": row.get("code"), "machine": machine}


def row_cannot_resume(
    record: dict, row: dict, machine: dict, code: dict, seeds: list[int], repeats: int
) -> str | None:
    """Why ``--resume`` cannot keep a stored row (``None``: it can): each row is checked against
    its own code, machine, GEMM rate and seeds, and must hold as many cost measurements as asked
    for."""
    why = cannot_resume(_row_stored(record, row), machine, code)
    if why is None and row.get("seeds", record.get("seeds")) != seeds:
        why = f"it ran seeds {row.get('seeds', record.get('seeds'))}, not {seeds}"
    if why is None and len(row["cost_us"]["rlcourse"]) != repeats:
        why = f"it holds {len(row['cost_us']['rlcourse'])} cost measurements, not {repeats}"
    return why


def other_machine(record: dict, machine: dict, code: dict, asked: list[str]) -> str | None:
    """Why the rows that a resumed run would leave in its table were not all measured on a
    machine like this one (``None``: they were): the rows not asked for, and the rows of this
    committed code. A table must come from one kind of machine; its header names one. (The rows
    of other code that are measured again do not matter.)"""
    for algo, row in record["algorithms"].items():
        ours = row.get("code") or {}
        if algo in asked and (ours.get("fingerprint") != code["fingerprint"] or not ours["clean"]):
            continue
        why = cannot_resume({**_row_stored(record, row), "code": code}, machine, code)
        if why:
            return f"its {algo.upper()} row: {why}"
    return None


def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    parser.add_argument("--algo", choices=list(SETTINGS), action="append")
    parser.add_argument("--repeats", type=int, default=2, help="cost measurements per library")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--readme", type=Path, help="replace the README's equal-settings block")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the rows of --out's JSON that this committed code measured on this machine "
        "with these seeds; measure the rest",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    path = args.out / "equal_settings.json"
    record = json.loads(path.read_text()) if path.exists() else {"algorithms": {}}
    machine, code, seeds = machine_info(), code_version(), list(range(args.seeds))
    machine["gemm_gflops"] = gemm_rate(256, 256) / 1e9
    keep: set[str] = set()
    if args.resume:
        why = "nothing stored" if "machine" not in record else uncommitted(code)
        asked = args.algo or list(SETTINGS)
        why = why or other_machine(record, machine, code, asked)
        if why:
            parser.error(f"--resume cannot continue the run in {path}: {why}")
        for algo, r in record["algorithms"].items():
            why = row_cannot_resume(record, r, machine, code, seeds, args.repeats)
            if why is None:
                keep.add(algo)
            elif algo in asked:
                print(f"{algo}: measured again, its stored row cannot be kept: {why}", flush=True)
            else:
                print(f"{algo}: left as stored (not asked for), though not resumable: {why}")
    for r in record["algorithms"].values():  # rows stored before rows carried their own
        r.setdefault("date", record["machine"]["date"])
        r.setdefault("gemm_gflops", record["gemm_gflops"])
        r.setdefault("machine", {k: record["machine"].get(k) for k in MACHINE_KEYS})
        r.setdefault("seeds", record["seeds"])
    # The header's processor and versions: those of the first sitting while resuming
    record["machine"] = (
        record["machine"] if keep else {k: v for k, v in machine.items() if k != "gemm_gflops"}
    )
    record.update(code=code, seeds=seeds, gemm_gflops=machine["gemm_gflops"])
    for algo in args.algo or SETTINGS:
        if algo in keep:
            print(f"{algo}: kept from the run stored in {path}", flush=True)
            continue
        r = {"date": machine["date"], "code": code, "seeds": seeds}
        r["machine"] = {k: machine.get(k) for k in MACHINE_KEYS}
        r.update(gemm_gflops=machine["gemm_gflops"], floor=floor_us(algo))
        r["cost_us"] = {"rlcourse": [], "sb3": []}
        for k in range(args.repeats):
            for lib in ("rlcourse", "sb3") if k % 2 == 0 else ("sb3", "rlcourse"):
                r["cost_us"][lib].append(round(step_cost_us(lib, algo), 1))
        r["runs"] = {"rlcourse": [], "sb3": []}
        for seed in range(args.seeds):
            for lib in ("rlcourse", "sb3") if seed % 2 == 0 else ("sb3", "rlcourse"):
                r["runs"][lib].append({"seed": seed, **criterion_run(lib, algo, seed)})
        print(f"{algo}: {json.dumps(r)}", flush=True)
        record["algorithms"][algo] = r
        record["algorithms"] = {
            a: record["algorithms"][a] for a in SETTINGS if a in record["algorithms"]
        }
        write_atomic(path, json.dumps(record, indent=2) + "\n")
    table = markdown(record)
    write_atomic(args.out / "equal_settings.md", table)
    print(table)
    if args.readme:
        replace_block(args.readme, table, MARKERS)
        print(f"replaced the equal-settings block of {args.readme}")


if __name__ == "__main__":
    main()
