"""Where one env step's time goes, at equal settings: every operation torch runs, each timed alone.

    python -m benchmarks anatomy [--algo dqn ...] [--repeats 50] [--out benchmarks/results]
                                 [--readme README.md] [--table-only]

`equal-settings` puts each step beside a floor of the bare environment and the matrix products of
its updates. This command splits the rest. With the same settings (``equal_settings.SETTINGS``) it
records, by difference of two training runs like the cost (``base + n`` env steps minus ``base``):

- every operation each library dispatches per env step, forward, backward and optimiser (a
  ``TorchDispatchMode`` sees them below autograd: ATen's, and the profiler ranges that PyTorch's
  optimizers open), counted for rlcourse and for SB3;
- rlcourse's operations replayed one by one from Python at their recorded shapes, strides and
  dtypes, one thread, operands in cache (the fastest of three timings of ``repeats`` calls): the
  matrix products (the floor's arithmetic) and all the other operations (elementwise functions,
  reductions, Adam's and the clipping's passes over every weight, views, copies). Each replayed
  call pays its dispatch from Python once (an operation of the backward pass is dispatched from
  C++ in training, a little cheaper) and no autograd; the sum is what these operations cost run
  from Python one after another, views such as ``t`` and ``detach`` included;
- the same operations timed where they run in training, by PyTorch's profiler (in C++, each
  operation's own time, by difference of two runs likewise): there an operand comes from memory
  that the rest of the step has used meanwhile, and the code of one operation follows another's,
  where the replay runs each from a warm cache. The ratio of the two sums, products and the other
  operations apart, is what training's conditions cost the same operations on this machine (the
  profiler's own bookkeeping included, a few microseconds per operation);
- the cost per env step of both libraries, in the same run, for scale: the faster of two
  measurements each, the libraries alternating which goes first (as in the equal-settings table).

Each of these stages (rlcourse's recording with its replay, SB3's count, the profiled runs) and
each cost measurement runs in a fresh Python process, one torch thread; the bare environment and the
GEMM rate are timed in the parent. One run that measured the costs in the process that had just
recorded, replayed and profiled the operations put SAC's step at nearly twice what a fresh process
measured minutes later, cause open (``results/anatomy_fb9f55d``).

What remains of rlcourse's step above the bare environment and the operations replayed alone is the
rest: the same operations slowed in training (the ratios say by how much), autograd's bookkeeping,
the Python of the loop and of ``nn.Module`` calls, acting in NumPy, the replay buffer.
The table also lists the operations that take the most replayed time.

Writes ``<out>/anatomy.json`` and ``.md`` (``--table-only``: only the table, from the stored
record); with ``--readme`` also replaces the block between ``<!-- anatomy:start -->`` and
``<!-- anatomy:end -->``.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils._python_dispatch import TorchDispatchMode

from benchmarks.benchlib import bare_env_us, gemm_rate, machine_info
from benchmarks.compare_sb3 import replace_block
from benchmarks.equal_settings import SETTINGS, RecordProducts, sb3_model, step_cost_us
from rlcourse.algos import ALGORITHMS

MARKERS = ("<!-- anatomy:start -->", "<!-- anatomy:end -->")
SCALARS = (bool, int, float, str, torch.dtype, torch.device, torch.layout, torch.memory_format)


class Unreplayable(Exception):
    """An operand that cannot be made again from its record (an opaque object)."""


def operand_spec(x):
    """What is needed to make an operand again: a tensor's shape, strides and dtype, a list's
    items, a scalar itself; a generator becomes the default one."""
    if isinstance(x, torch.Tensor):
        return ("tensor", tuple(x.shape), x.stride(), str(x.dtype))
    if isinstance(x, (list, tuple)):
        return ("list", *(operand_spec(v) for v in x))
    if isinstance(x, torch.Generator):
        return ("generator",)
    if x is None or isinstance(x, SCALARS):
        return x
    return ("object", type(x).__name__)


class RecordOps(TorchDispatchMode):
    """Counts every ATen operation torch runs, by overload and operand specs."""

    def __init__(self):
        super().__init__()
        self.counts: Counter = Counter()
        self.funcs: dict[str, torch._ops.OpOverload] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = str(func)
        self.funcs[name] = func
        spec = (operand_spec(args), tuple(sorted((k, operand_spec(v)) for k, v in kwargs.items())))
        self.counts[(name, spec)] += 1
        return func(*args, **kwargs)


def make_operand(spec):
    """An operand like the recorded one: floats in [0.5, 1.5) (positive, so that a logarithm, a
    square root or a probability stays defined), integers 0 (a valid index), booleans False."""
    if isinstance(spec, tuple) and spec[:1] == ("tensor",):
        shape, stride, dtype = spec[1:]
        dtype = getattr(torch, dtype.removeprefix("torch."))
        size = 1 + sum((n - 1) * s for n, s in zip(shape, stride, strict=True)) if all(shape) else 0
        if dtype.is_floating_point:
            values = torch.rand(size, dtype=dtype) + 0.5
        else:
            values = torch.zeros(size, dtype=dtype)
        return values.as_strided(shape, stride)
    if isinstance(spec, tuple) and spec[:1] == ("list",):
        return [make_operand(s) for s in spec[1:]]
    if spec == ("generator",):
        return None
    if spec == ("object", "ScriptObject"):  # the handle of a profiler range (Optimizer.zero_grad)
        return torch.ops.profiler._record_function_enter_new("anatomy", None)
    if isinstance(spec, tuple) and spec[:1] == ("object",):
        raise Unreplayable(spec[1])
    return spec


def replay_us(func, spec, repeats: int = 50) -> float:
    """Microseconds one call of ``func`` takes from Python at the recorded operands (fastest of
    three timings of ``repeats`` calls; an in-place operation works on the same operands again)."""
    args_spec, kwargs_spec = spec
    args = make_operand(args_spec)
    kwargs = {k: make_operand(v) for k, v in kwargs_spec}
    for _ in range(3):
        func(*args, **kwargs)
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            func(*args, **kwargs)
        best = min(best, (time.perf_counter() - start) / repeats)
    return 1e6 * best


def run_training(lib: str, algo: str, total: int) -> None:
    """Train ``lib``'s implementation for ``total`` env steps with the shared settings."""
    setting = SETTINGS[algo]
    if lib == "rlcourse":
        module = ALGORITHMS[algo]
        config = module.Config(**{**setting.ours, "eval_every": 0, "total_steps": total})
        module.train(setting.env_id, config, progress=False)
    else:
        sb3_model(algo, 0).learn(total)


def recorded_ops(lib: str, algo: str) -> tuple[Counter, dict]:
    """The operations of ``n`` env steps with their updates (``base + n`` minus ``base``)."""
    setting = SETTINGS[algo]
    counts, funcs = Counter(), {}
    for total, sign in ((setting.base + setting.n, 1), (setting.base, -1)):
        with RecordOps() as record, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an off-policy base run may make no update
            run_training(lib, algo, total)
        for key, count in record.counts.items():
            counts[key] += sign * count
        funcs.update(record.funcs)
    if any(c < 0 for c in counts.values()):  # the shorter run ran something the longer did not
        raise RuntimeError(f"{lib} {algo}: the base run has operations the longer run lacks")
    return Counter({key: c for key, c in counts.items() if c > 0}), funcs


def profiled_ops_us(run: Callable[[], None]) -> tuple[float, float]:
    """Microseconds ``run()`` spends in ATen's operations, all of them and the matrix products, as
    PyTorch's profiler times them in C++ where they run: the sum of every operation's own time
    (without the operations it calls, each counted once), and the products' whole times."""
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        run()
    events = profiler.key_averages()
    products = {f"aten::{op}" for op in RecordProducts.OPS}
    every = sum(e.self_cpu_time_total for e in events if e.key.startswith("aten::"))
    return every, sum(e.cpu_time_total for e in events if e.key in products)


def ops_in_training_us(algo: str) -> tuple[float, float]:
    """Microseconds per env step of rlcourse's matrix products and of its other operations, timed
    in training (by difference of two runs, like the cost)."""
    setting = SETTINGS[algo]
    sums = []
    for total in (setting.base + setting.n, setting.base):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an off-policy base run may make no update
            sums.append(profiled_ops_us(lambda total=total: run_training("rlcourse", algo, total)))
    every, products = (
        (longer - shorter) / setting.n for longer, shorter in zip(*sums, strict=True)
    )
    return products, every - products


def short_name(op: str) -> str:
    """``aten.addmm.default`` -> ``addmm``; ``aten._foreach_mul_.Scalar`` -> ``_foreach_mul_``."""
    return op.split(".")[1] if op.startswith("aten.") else op


FRESH = (
    "import importlib, json, sys, torch; torch.set_num_threads(1); "
    "function = getattr(importlib.import_module(sys.argv[1]), sys.argv[2]); "
    "print(json.dumps(function(*json.loads(sys.argv[3]))))"
)


def in_fresh_process(function: Callable, *args):
    """``function(*args)`` in a new Python process, one torch thread, its result read back as
    JSON: each measurement starts from a fresh interpreter, not from a process that has just
    recorded, replayed or profiled another stage (in one run that doubled a measured cost)."""
    name = f"{function.__module__}.{function.__name__}"
    out = subprocess.run(
        [sys.executable, "-c", FRESH, function.__module__, function.__name__, json.dumps(args)],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{name}{tuple(args)} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.splitlines()[-1])


def ops_per_step(lib: str, algo: str) -> float:
    """How many ATen operations ``lib`` runs per env step with its updates."""
    return sum(recorded_ops(lib, algo)[0].values()) / SETTINGS[algo].n


def replayed_ops(algo: str, repeats: int = 50) -> dict:
    """rlcourse's operations per env step, recorded and each replayed alone (microseconds per env
    step): the matrix products, the other operations, the slowest ones, the unreplayable ones."""
    n = SETTINGS[algo].n
    ours, funcs = recorded_ops("rlcourse", algo)
    products = others = 0.0
    by_op: Counter = Counter()
    unreplayed: Counter = Counter()
    for (name, spec), count in ours.items():
        try:
            us = replay_us(funcs[name], spec, repeats) * count / n
        except Unreplayable:
            unreplayed[short_name(name)] += count / n
            continue
        by_op[short_name(name)] += us
        if short_name(name) in RecordProducts.OPS:
            products += us
        else:
            others += us
    product_count = sum(
        c for (name, _), c in ours.items() if short_name(name) in RecordProducts.OPS
    )
    return {
        "products_us": round(products, 1),
        "other_ops_us": round(others, 1),
        "ops_per_step": round(sum(ours.values()) / n, 2),
        "products_per_step": round(product_count / n, 2),
        "slowest_ops_us": {op: round(us, 1) for op, us in by_op.most_common(6)},
        "unreplayed_per_step": dict(unreplayed),
    }


def anatomy(algo: str, repeats: int = 50, measurements: int = 2) -> dict:
    """One algorithm's step, taken apart (all times in microseconds per env step). Each stage runs
    in a fresh process; so does each of the ``measurements`` costs per library, the libraries
    alternating which goes first (as in the equal-settings table), the faster one kept."""
    setting = SETTINGS[algo]
    replay = in_fresh_process(replayed_ops, algo, repeats)
    theirs = in_fresh_process(ops_per_step, "sb3", algo)
    products_in_training, others_in_training = in_fresh_process(ops_in_training_us, algo)
    costs: dict[str, list[float]] = {"rlcourse": [], "sb3": []}
    first = list(SETTINGS).index(algo) % 2  # the first library alternates from row to row too
    order = ("rlcourse", "sb3")[first:] + ("rlcourse", "sb3")[:first]
    for k in range(measurements):
        for lib in order if k % 2 == 0 else order[::-1]:
            costs[lib].append(round(in_fresh_process(step_cost_us, lib, algo), 1))
    cost = {lib: min(values) for lib, values in costs.items()}
    env = bare_env_us(setting.env_id, setting.ours.get("num_envs", 1), 20_000)
    return {
        "date": machine_info(sb3=False)["date"],
        # the machine's speed at this row's run (a run of some algorithms keeps the other rows)
        "gemm_gflops": round(gemm_rate(256, 256) / 1e9, 1),
        "bare_cartpole_us": round(bare_env_us("CartPole-v1", 1, 20_000), 1),
        "env_id": setting.env_id,
        "cost_us": cost,
        "cost_measurements_us": costs,
        "bare_env_us": round(env, 1),
        "products_us": replay["products_us"],
        "other_ops_us": replay["other_ops_us"],
        "products_in_training_us": round(products_in_training, 1),
        "other_ops_in_training_us": round(others_in_training, 1),
        "ops_per_step": {"rlcourse": replay["ops_per_step"], "sb3": round(theirs, 2)},
        "products_per_step": replay["products_per_step"],
        "rest_us": round(
            cost["rlcourse"] - env - replay["products_us"] - replay["other_ops_us"], 1
        ),
        "slowest_ops_us": replay["slowest_ops_us"],
        "unreplayed_per_step": replay["unreplayed_per_step"],
    }


def markdown(record: dict) -> str:
    m = record["machine"]

    def spread(key: str) -> str:
        values = sorted(r[key] for r in record["algorithms"].values())
        lo, hi = values[0], values[-1]
        return f"{lo:.1f}" if lo == hi else f"{lo:.1f}-{hi:.1f}"

    lines = [
        f"Measured on {m['date']} on {m['cpu']} ({m['cores']} cores), one torch thread, torch "
        f"{m['torch']}, Stable-Baselines3 {m['sb3']}, sb3-contrib {m['sb3_contrib']}; GEMM rate "
        f"{spread('gemm_gflops')} GFLOP/s (one thread, 256 x 256 x 256), one CartPole-v1 step "
        f"{spread('bare_cartpole_us')} µs, measured with each row (`python -m benchmarks "
        "anatomy`). "
        "Microseconds per env step with its updates, the settings of the equal-settings table; "
        "the operations are ATen's (with the profiler ranges of PyTorch's optimizer), forward, "
        "backward and optimiser, each replayed alone from Python (operands in cache), and the same "
        "operations timed by PyTorch's profiler where they run in training. "
        + (
            "The costs: the faster of two measurements per library, libraries alternating; each "
            "measurement, and each stage of the operations, in a fresh process."
            if all("cost_measurements_us" in r for r in record["algorithms"].values())
            else "The costs: one measurement per library, in the process that recorded, "
            "replayed and profiled the operations."
        ),
        "",
        "| algorithm | rlcourse | SB3 | bare env | products alone | other operations alone "
        "| rest (operations slower in training, autograd, Python, acting) "
        "| products in training (/ alone) "
        "| other operations in training (/ alone) | operations per env step (rlcourse / SB3) "
        "| slowest operations alone |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for algo, r in record["algorithms"].items():
        others_count = r["ops_per_step"]["rlcourse"] - r["products_per_step"]
        slowest = ", ".join(f"{op} {us:.0f}" for op, us in list(r["slowest_ops_us"].items())[:4])

        def in_training(key: str, alone: str, r: dict = r) -> str:
            if key not in r:  # a row stored before these were timed
                return "-"
            return f"{r[key]:.0f} ({r[key] / r[alone]:.2f})"

        lines.append(
            f"| {algo.upper()} | {r['cost_us']['rlcourse']:.0f} | {r['cost_us']['sb3']:.0f} "
            f"| {r['bare_env_us']:.0f} | {r['products_us']:.0f} ({r['products_per_step']:.1f}) "
            f"| {r['other_ops_us']:.0f} ({others_count:.1f}) | {r['rest_us']:.0f} "
            f"| {in_training('products_in_training_us', 'products_us')} "
            f"| {in_training('other_ops_in_training_us', 'other_ops_us')} "
            f"| {r['ops_per_step']['rlcourse']:.1f} / {r['ops_per_step']['sb3']:.1f} "
            f"| {slowest} |"
        )
    lines += [
        "",
        "In brackets: how many of those operations an env step runs, and for the operations in "
        "training their time over their time alone. The products and the other operations are "
        "rlcourse's; SB3's are only counted.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--algo", choices=list(SETTINGS), action="append")
    parser.add_argument("--repeats", type=int, default=50, help="calls per replay timing")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--readme", type=Path, help="replace the README's anatomy block")
    parser.add_argument(
        "--table-only", action="store_true", help="write the table from the stored record, no runs"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    path = args.out / "anatomy.json"
    record = json.loads(path.read_text()) if path.exists() else {"algorithms": {}}
    if args.table_only and not record["algorithms"]:
        parser.error(f"--table-only writes the table of a stored record, and {path} holds none")
    if not args.table_only:
        record["machine"] = machine_info()
    for algo in [] if args.table_only else args.algo or SETTINGS:
        record["algorithms"][algo] = anatomy(algo, args.repeats)
        print(f"{algo}: {json.dumps(record['algorithms'][algo])}", flush=True)
        record["algorithms"] = {
            a: record["algorithms"][a] for a in SETTINGS if a in record["algorithms"]
        }
        args.out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    table = markdown(record)
    (args.out / "anatomy.md").write_text(table, encoding="utf-8")
    print(table)
    if args.readme:
        replace_block(args.readme, table, MARKERS)
        print(f"replaced the anatomy block of {args.readme}")


if __name__ == "__main__":
    main()
