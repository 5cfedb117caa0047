"""``python -m benchmarks <command> [options]``: the benchmarks' one entry point.

Each command is a module of this package; its ``main(argv, prog)`` parses the options after the
command. The one-line summary that ``-h`` shows is the first line of that module's docstring, read
without importing it (importing would load torch and the algorithms just to print a list).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import sys
from pathlib import Path

# Command -> module of this package, in the order the README presents them.
COMMANDS = {
    "compare-sb3": "compare_sb3",
    "equal-settings": "equal_settings",
    "anatomy": "anatomy",
    "optim": "optim_overhead",
    "last-layer": "last_layer",
    "before-after": "before_after",
    "a2c-cartpole": "a2c_cartpole",
    "offpolicy": "offpolicy",
    "trust-region": "trust_region",
    "presets": "presets",
    "learning-tests": "learning_tests",
    "grpo": "grpo",
    "mujoco": "mujoco_runs",
    "gpu-speed": "gpu_speed",
    "figures": "make_figures",
}
PROG = "python -m benchmarks"


def summary(module: str) -> str:
    """The first line of ``benchmarks/<module>.py``'s docstring."""
    source = (Path(__file__).parent / f"{module}.py").read_text(encoding="utf-8")
    doc = ast.get_docstring(ast.parse(source)) or ""
    return doc.splitlines()[0] if doc else ""


def main(argv: list[str] | None = None) -> None:
    width = max(map(len, COMMANDS))
    listing = "\n".join(f"  {name:{width}}  {summary(module)}" for name, module in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run one of rlcourse's benchmarks (from the repository root).",
        epilog=f"commands:\n{listing}\n\n'{PROG} <command> -h' shows a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=COMMANDS, metavar="command", help="one of those below")
    parser.add_argument("options", nargs=argparse.REMAINDER, help="the command's options")
    args = parser.parse_args(argv)
    module = importlib.import_module(f"benchmarks.{COMMANDS[args.command]}")
    module.main(args.options, prog=f"{PROG} {args.command}")


if __name__ == "__main__":
    main(sys.argv[1:])
