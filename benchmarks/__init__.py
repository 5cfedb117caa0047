"""rlcourse's benchmarks: side-by-side runs with reference libraries, and the figures.

One entry point, run from the repository root: ``python -m benchmarks <command> [options]``;
``python -m benchmarks -h`` lists the commands (:mod:`benchmarks.__main__`), ``python -m benchmarks
<command> -h`` explains one. Each command is a module of this package with a ``main(argv, prog)``;
:mod:`benchmarks.benchlib` holds what they share. What they measured is stored in
``benchmarks/results/`` and cited from the README, never copied into code comments.

The package is not installed with rlcourse (it needs the optional ``bench`` extra for
Stable-Baselines3 and minutes to hours per run); the tests import its bookkeeping from the
repository root.
"""
