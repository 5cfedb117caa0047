"""What rlcourse.optim saves: its Adam step and gradient clipping against PyTorch's own.

    python -m benchmarks optim [--out benchmarks/results]

One torch thread. For the networks of two presets, PPO's on CartPole-v1 (a 64-64 tanh actor and
critic, one Adam with a group each) and DQN's (a 256-256 ReLU Q-network), it times, in
microseconds per call, fastest of five rounds: ``torch.optim.Adam(fused=True).step()`` against
``rlcourse.optim.Adam.step()`` (the same fused kernel, the same numbers), their ``zero_grad()``
(the gradients put back before each call, on both sides), and
``torch.nn.utils.clip_grad_norm_`` on each network against one ``rlcourse.optim.clip_grad_norms_``
call on lists of the parameters, made once (as the training loops call it). The gradients are fixed
random numbers and clipping never binds, so every call does the same work; since 2026-12-06
rlcourse's then skips the multiplication by 1, where PyTorch's multiplies. Writes
``<out>/optim_overhead.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch import nn

from benchmarks.benchlib import machine_info
from rlcourse.algos import dqn, ppo
from rlcourse.optim import Adam, clip_grad_norms_


def per_call_us(call, calls: int = 3_000, rounds: int = 5) -> float:
    for _ in range(200):
        call()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        best = min(best, (time.perf_counter() - start) / calls)
    return 1e6 * best


def networks() -> dict[str, list[nn.Module]]:
    """The networks of PPO's and DQN's CartPole-v1 presets, as the algorithms build them."""
    agent = ppo.make_agent(ppo.PRESETS["CartPole-v1"], "CartPole-v1")
    q_net = dqn.make_agent(dqn.PRESETS["CartPole-v1"], "CartPole-v1").policy
    return {
        "PPO, CartPole-v1: 64-64 tanh actor and critic": [agent.policy, agent.critic],
        "DQN, CartPole-v1: 256-256 ReLU Q-network": [q_net],
    }


def measure() -> dict:
    rows = {}
    for name, nets in networks().items():
        for net in nets:
            for p in net.parameters():
                p.grad = torch.randn_like(p)
        groups = [list(net.parameters()) for net in nets]
        theirs = torch.optim.Adam([{"params": g} for g in groups], lr=1e-6, fused=True)
        ours = Adam([{"params": g} for g in groups], lr=1e-6)
        params = [p for g in groups for p in g]
        grads = [p.grad for p in params]

        def zero_grad(opt, params=params, grads=grads):
            for p, g in zip(params, grads, strict=True):  # put the gradients back first
                p.grad = g
            opt.zero_grad()

        row = {
            "adam_step_us": {"torch": per_call_us(theirs.step), "rlcourse": per_call_us(ours.step)},
            "zero_grad_us": {
                "torch": per_call_us(lambda opt=theirs: zero_grad(opt)),
                "rlcourse": per_call_us(lambda opt=ours: zero_grad(opt)),
            },
        }
        for p, g in zip(params, grads, strict=True):  # zero_grad left none: clip these again
            p.grad = g
        sets = [list(n.parameters()) for n in nets]
        rows[name] = {
            **row,
            "clip_us": {
                "torch": per_call_us(
                    lambda nets=nets: [nn.utils.clip_grad_norm_(n.parameters(), 1e9) for n in nets]
                ),
                "rlcourse": per_call_us(lambda sets=sets: clip_grad_norms_(sets, 1e9)),
            },
        }
    return rows


def markdown(record: dict) -> str:
    m = record["machine"]
    lines = [
        f"Measured on {m['date']} on {m['cpu']} ({m['cores']} cores), one torch thread, torch "
        f"{m['torch']}; µs per call, fastest of five rounds (`python -m benchmarks optim`).",
        "",
        "| networks | Adam step: torch fused / rlcourse.optim | zero_grad: torch / rlcourse.optim "
        "| gradient clipping: torch / rlcourse.optim |",
        "|---|---|---|---|",
    ]
    for name, r in record["rows"].items():
        a, z, c = r["adam_step_us"], r["zero_grad_us"], r["clip_us"]
        lines.append(
            f"| {name} | {a['torch']:.1f} / {a['rlcourse']:.1f} | {z['torch']:.1f} / "
            f"{z['rlcourse']:.1f} | {c['torch']:.1f} / {c['rlcourse']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    record = {"machine": machine_info(sb3=False), "rows": measure()}
    args.out.mkdir(parents=True, exist_ok=True)
    table = markdown(record)
    for name, text in (("optim_overhead.json", json.dumps(record, indent=2) + "\n"),
                       ("optim_overhead.md", table)):  # fmt: skip
        if (args.out / name).exists():
            print(f"replacing {args.out / name} (the earlier version stays in git's history)")
        (args.out / name).write_text(text, encoding="utf-8")
    print(table)


if __name__ == "__main__":
    main()
