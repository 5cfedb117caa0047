"""A critic ensemble's last layer (one output per member): MKL's batched product against a multiply
and a sum.

    python -m benchmarks last-layer [--out benchmarks/results]

One torch thread, batch 256, inputs of 256 and 300 units (SAC's and TD3's critics at equal
settings), one member (DDPG, and TD3's actor step through ``q_w^1``) and two (the twin critics).
For each way of computing ``x_i w_i + b_i`` it times the forward pass alone (no gradient) and the
forward and backward passes together (gradients of the input, the weights and the bias, as a
critic's gradient step takes them), in microseconds per call, fastest of five rounds. The two ways:
``torch.baddbmm(b, x, w)``, and ``(x * w.mT).sum(-1, keepdim=True) + b``, which
:class:`rlcourse.nets.EnsembleLinear` uses for several members with one output each. Writes
``<out>/last_layer.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from benchmarks.benchlib import machine_info, write_atomic
from benchmarks.optim_overhead import per_call_us

BATCH = 256
SHAPES = [(1, 256), (2, 256), (1, 300), (2, 300)]  # (members, inputs)
WAYS = {
    "baddbmm": lambda x, w, b: torch.baddbmm(b, x, w),
    "multiply and sum": lambda x, w, b: (x * w.mT).sum(-1, keepdim=True) + b,
}


def measure(members: int, inputs: int) -> dict:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(members, BATCH, inputs, generator=generator, requires_grad=True)
    w = torch.randn(members, inputs, 1, generator=generator, requires_grad=True)
    b = torch.randn(members, 1, 1, generator=generator, requires_grad=True)
    grad = torch.randn(members, BATCH, 1, generator=generator)
    outputs = [way(x, w, b) for way in WAYS.values()]
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-5, atol=1e-4)  # up to rounding
    row = {}
    for name, way in WAYS.items():

        def forward(way=way):
            with torch.no_grad():
                way(x, w, b)

        def forward_backward(way=way):
            way(x, w, b).backward(grad)

        row[name] = {
            "forward_us": round(per_call_us(forward, calls=300), 1),
            "forward_backward_us": round(per_call_us(forward_backward, calls=200), 1),
        }
    return row


def markdown(record: dict) -> str:
    m = record["machine"]
    lines = [
        f"Measured on {m['date']} on {m['cpu']} ({m['cores']} cores), one torch thread, torch "
        f"{m['torch']}; µs per call, fastest of five rounds, batch {BATCH} "
        "(`python -m benchmarks last-layer`).",
        "",
        "| members x inputs -> 1 | baddbmm: forward / with backward "
        "| multiply and sum: forward / with backward |",
        "|---|---|---|",
    ]
    for row in record["rows"]:
        cells = [
            f"{row[way]['forward_us']:.0f} / {row[way]['forward_backward_us']:.0f}" for way in WAYS
        ]
        lines.append(f"| {row['members']} x {row['inputs']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for members, inputs in SHAPES:
        rows.append({"members": members, "inputs": inputs, **measure(members, inputs)})
        print(json.dumps(rows[-1]), flush=True)
    record = {
        "machine": machine_info(sb3=False),
        "command": "python -m benchmarks last-layer",
        "batch": BATCH,
        "rows": rows,
    }
    write_atomic(args.out / "last_layer.json", json.dumps(record, indent=2) + "\n")
    table = markdown(record)
    write_atomic(args.out / "last_layer.md", table)
    print(table)


if __name__ == "__main__":
    main()
