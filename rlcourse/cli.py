"""The ``rlcourse`` command line: ``train``, ``list``, ``plot``, ``evaluate``.

    rlcourse train a2c --env CartPole-v1 --seed 1 --steps 100000 --out runs/a2c --gae-lambda 0.9
    rlcourse train grpo --env ArithmeticTask --iterations 300 --out runs/grpo
    rlcourse list
    rlcourse plot runs/a2c runs/reinforce --out curves.png
    rlcourse evaluate runs/a2c --episodes 20

A run folder holds ``config.json``, ``history.csv`` (episodes), ``diagnostics.csv``
(iterations), ``evaluations.csv`` (greedy evaluations, with ``--eval-every``), ``checkpoint.pt``
and ``learning_curve.png``. Every algorithm of :data:`rlcourse.algos.ALL_ALGORITHMS` trains here
through the contract of :mod:`rlcourse.algos`; GRPO's ``--env`` is its question-answer task,
``ArithmeticTask`` (its budget is ``--iterations``, and its episodes are answers: the learning
curve shows the held-out accuracy, the greedy evaluations' mean return).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import warnings
from pathlib import Path

from rlcourse.algos import ALL_ALGORITHMS, evaluate_agent, get_algorithm, train_agent
from rlcourse.config import from_dict, replace
from rlcourse.history import write_atomic
from rlcourse.saving import (
    RUN_FILES,
    LearningWarning,
    check_memory,
    check_run_folder,
    check_save_every,
    exit_status,
    read_run_config,
    run_bytes,
)
from rlcourse.training import (
    CheckpointError,
    History,
    NonFiniteError,
    TrainingInterrupted,
    load_checkpoint,
)

# Options of `train` that are not hyperparameters of the config, or are spelt differently.
COMMON_FIELDS = {"seed", "device", "total_steps"}


class UsageError(Exception):
    """A bad command line: printed as `rlcourse: error: ...` with exit status 2."""


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _hyperparameter_parser(defaults: object, algo: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"rlcourse train {algo}", add_help=False, exit_on_error=False
    )
    for f in dataclasses.fields(defaults):
        if f.name in COMMON_FIELDS:
            continue
        flags = [f"--{f.name.replace('_', '-')}"] + ([f"--{f.name}"] if "_" in f.name else [])
        kind = type(f.default)
        kwargs: dict = {
            "dest": f.name,
            "default": argparse.SUPPRESS,
            "help": f"{f.metadata.get('help', '')} (default {f.default!r})",
        }
        if kind is bool:
            kwargs.update(type=_bool, metavar="BOOL")
        elif kind is tuple:
            kwargs.update(type=int, nargs="+", metavar="N")
        else:
            kwargs.update(type=kind, metavar=kind.__name__.upper())
        parser.add_argument(*flags, **kwargs)
    return parser


def _budget(config: object) -> str:
    """The config's training budget as a command-line option (GRPO counts iterations)."""
    if hasattr(config, "total_steps"):
        return f"--steps {config.total_steps}"
    return f"--iterations {config.iterations}"


def _env_steps(history: History) -> int:
    """Env steps (GRPO: answers sampled) recorded so far, by whichever table has any."""
    rows = history.iterations or history.episodes or history.evaluations
    return int(rows[-1]["env_step"]) if rows else 0


def _preset(module, env_id: str | None):
    """The config ``rlcourse train`` starts from, and where it comes from (GRPO's presets are its
    methods on its one task: the command line starts from the one named like the algorithm)."""
    if env_id in module.PRESETS:
        return module.PRESETS[env_id], f"the preset for {env_id}"
    if getattr(module, "TASK", None) is not None:
        return module.PRESETS[module.NAME], f"the preset {module.NAME!r}"
    return module.Config(), f"{module.NAME}.Config()"


def _train(args: argparse.Namespace, extra: list[str]) -> int:
    if args.algo is None:
        if args.help:
            print(args.train_parser.format_help())
            return 0
        raise UsageError(
            f"rlcourse train needs an algorithm, one of {', '.join(ALL_ALGORITHMS)} (see "
            "`rlcourse train -h`)"
        )
    module = get_algorithm(args.algo)
    preset, source = _preset(module, args.env)
    if args.env is not None:
        module.make_agent(preset, args.env)  # a ValueError naming what is not supported
    hp_parser = _hyperparameter_parser(preset, args.algo)
    if args.help:
        print(args.train_parser.format_help())
        print(
            f"defaults from {source}: {_budget(preset)}, --seed {preset.seed}, "
            f"--device {preset.device}\n"
        )
        lines = hp_parser.format_help().splitlines()
        print(f"hyperparameters of {args.algo}:")
        print("\n".join(lines[lines.index("options:") + 1 :]))
        return 0
    if args.env is None:
        raise UsageError(
            "rlcourse train needs --env, e.g. --env CartPole-v1 (see `rlcourse train ALGO -h`)"
        )
    try:
        hp, unknown = hp_parser.parse_known_args(extra)
    except argparse.ArgumentError as exc:
        raise UsageError(str(exc)) from None
    if unknown:
        names = ", ".join(
            f"--{f.name.replace('_', '-')}"
            for f in dataclasses.fields(preset)
            if f.name not in COMMON_FIELDS
        )
        raise UsageError(
            f"unknown option(s) {' '.join(unknown)} for {args.algo}; its hyperparameters are "
            f"{names}"
        )
    if args.steps is not None and not hasattr(preset, "total_steps"):
        raise UsageError(
            f"{args.algo} has no --steps: its budget is {_budget(preset)} (the default)"
        )
    overrides = vars(hp)
    for name, value in (("seed", args.seed), ("device", args.device), ("total_steps", args.steps)):
        if value is not None:
            overrides[name] = value
    if "hidden" in overrides and isinstance(preset.hidden, tuple):
        overrides["hidden"] = tuple(overrides["hidden"])
    config = replace(preset, **overrides)
    out = Path(args.out or f"runs/{args.algo}-{args.env}-seed{config.seed}")
    if args.resume:
        config = _resumed_config(module, args, out, overrides)
    folder = _run_folder(args, out, config, module)
    return _run(module, args, config, out, folder)


def _resumed_config(module, args: argparse.Namespace, out: Path, overrides: dict):
    """The config of the run saved in ``out``: its own hyperparameters, a new budget or device."""
    if args.force:
        raise UsageError("--resume continues the run in --out, --force replaces it: give one")
    meta = read_run_config(out)
    if (meta["algo"], meta["env_id"]) != (args.algo, args.env):
        raise UsageError(
            f"{out} holds a {meta['algo']} run on {meta['env_id']}: resume it with `rlcourse "
            f"train {meta['algo']} --env {meta['env_id']} --out {out} --resume`"
        )
    changed = sorted(set(overrides) - {"total_steps", "iterations", "device"})
    if changed:
        flags = ", ".join(f"--{name.replace('_', '-')}" for name in changed)
        raise UsageError(
            f"--resume continues with the run's own hyperparameters (in {out}/config.json); drop "
            f"{flags}. Only the budget ({_budget(module.Config())}) and --device may change"
        )
    saved = from_dict(module.Config, meta["config"])
    return replace(saved, **overrides)


def _run_folder(args: argparse.Namespace, out: Path, config, module) -> Path:
    """Where this run is written, checked before any training: ``out`` itself, or with --force
    over an existing run, ``OUT.new`` beside it (swapped in when the new run has finished)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder for the run")
    if args.resume:
        check_save_every(args.save_every)
        return out
    existing = [name for name in RUN_FILES if (out / name).exists()]
    if existing and not args.force:
        raise UsageError(
            f"{out} already holds a run ({', '.join(existing)}); choose another --out, pass "
            "--resume to continue it, or --force to replace it"
        )
    folder = out
    if existing:
        folder = out.with_name(out.name + ".new")
        if folder.exists():
            raise UsageError(
                f"{folder} holds an unfinished --force run over {out}; continue it with --out "
                f"{folder} --resume, or delete it, before replacing {out} again"
            )
    check_save_every(args.save_every)
    agent = module.make_agent(config, args.env)
    check_memory(agent, config)
    check_run_folder(folder, needed_bytes=run_bytes(agent, config))
    return folder


def _run(module, args: argparse.Namespace, config, out: Path, folder: Path) -> int:
    import matplotlib.pyplot as plt

    from rlcourse.plots import THRESHOLDS, learning_curve

    def draw(history: History) -> None:
        # The curve is drawn from the history, which is saved already: a failure here loses nothing.
        fig = learning_curve(history, THRESHOLDS.get(args.env), title=f"{args.algo} on {args.env}")
        try:
            write_atomic(
                folder / "learning_curve.png", lambda tmp: fig.savefig(tmp, dpi=100, format="png")
            )
        except OSError as exc:
            print(
                f"rlcourse: warning: cannot write {folder / 'learning_curve.png'} "
                f"({exc.strerror or exc}); `rlcourse plot {folder}` draws it later",
                file=sys.stderr,
            )
        finally:
            plt.close(fig)

    kept = f" ({out} keeps the run it held)" if folder != out else ""
    try:
        agent, history = train_agent(
            module,
            args.env,
            config,
            progress=not args.no_progress,
            out=folder,
            save_every=args.save_every,
            resume=args.resume,
        )
    except NonFiniteError as exc:
        print(f"rlcourse: {exc}\nThe history so far is in {folder}{kept}.", file=sys.stderr)
        return 1
    except TrainingInterrupted as exc:
        draw(exc.history)
        print(
            f"rlcourse: interrupted ({exc.stop}) after {_env_steps(exc.history)} env steps; the "
            f"history so far, a checkpoint of the agent as it was and its learning curve are in "
            f"{folder}{kept}. Continue it with `rlcourse train {args.algo} --env {args.env} "
            f"--out {folder} --resume`",
            file=sys.stderr,
        )
        return exit_status(exc.stop)
    draw(history)
    if folder != out:
        _swap(folder, out)
    if history.episodes:
        last = f"{len(history.episodes)} episodes, mean return of the last 20: "
        last += f"{history.mean_return():.1f}"
    elif history.evaluations:
        evaluation = history.evaluations[-1]
        last = (
            f"last greedy evaluation: mean return {evaluation['mean_return']:.2f} over "
            f"{evaluation['episodes']} episodes"
        )
    else:
        last = "no episode finished (train longer with --steps)"
    print(f"{args.algo} on {args.env}: {last}")
    print(f"wrote {out}")
    return 0


def _swap(new: Path, out: Path) -> None:
    """Put the finished run ``new`` in place of the run in ``out`` (--force)."""
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(out, old)
    os.replace(new, out)
    shutil.rmtree(old)


def _list(args: argparse.Namespace) -> int:
    for name, module in ALL_ALGORITHMS.items():
        print(f"{name:10s} {module.SUMMARY}")
        task = getattr(module, "TASK", None)  # GRPO: its presets are methods on its one task
        if task is not None:
            print(f"{'':10s}   task: {task} (--env {task})")
            presets = ", ".join(module.PRESETS)
            print(
                f"{'':10s}   presets: {presets} (in Python; the command line starts from the first)"
            )
            continue
        for env_id in module.PRESETS:
            print(f"{'':10s}   preset: {env_id}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    import matplotlib.pyplot as plt

    from rlcourse.plots import THRESHOLDS, learning_curve

    out = _figure_path(Path(args.out), args.force)
    histories, envs = {}, set()
    for run in args.runs:
        run = Path(run)
        meta = read_run_config(run)
        envs.add(meta["env_id"])
        histories[f"{meta['algo']} ({run.name})"] = History.load(run)
    threshold = THRESHOLDS.get(envs.pop()) if len(envs) == 1 else None
    fig = learning_curve(histories, threshold, x=args.x)
    try:
        write_atomic(out, lambda tmp: fig.savefig(tmp, dpi=100, format=out.suffix[1:]))
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
    print(f"wrote {out}")
    return 0


def _figure_path(out: Path, force: bool) -> Path:
    """The file ``rlcourse plot --out`` writes: a name with a figure format's suffix (``.png`` is
    added to a name without one), in a folder that exists, not overwritten without --force."""
    import matplotlib.pyplot as plt

    if out.is_dir():
        raise UsageError(
            f"--out {out} is a folder; give a file name, e.g. --out {out / 'curves.png'}"
        )
    formats = plt.figure().canvas.get_supported_filetypes()
    plt.close("all")
    if not out.suffix:
        out = out.with_name(out.name + ".png")
    elif out.suffix[1:].lower() not in formats:
        raise UsageError(
            f"--out {out}: matplotlib cannot write {out.suffix!r} files; use one of "
            f"{', '.join('.' + f for f in sorted(formats))}"
        )
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: the folder {out.parent} does not exist")
    if out.exists() and not force:
        raise UsageError(f"{out} exists; pass --force to overwrite it")
    return out


def _evaluate(args: argparse.Namespace) -> int:
    agent = load_checkpoint(Path(args.run), device=args.device)
    returns = evaluate_agent(
        agent, episodes=args.episodes, seed=args.seed, greedy=not args.stochastic
    )
    mean, std = returns.mean(), returns.std()
    print(
        f"{agent.algo} on {agent.env_id}: mean return {mean:.1f} ± {std:.1f} over "
        f"{len(returns)} episodes"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rlcourse", description="Train, compare and evaluate the lecture's algorithms."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "train",
        help="train an algorithm; further --options set its hyperparameters "
        "(see `rlcourse train ALGO -h`)",
        description="Train ALGO on --env. Any further --name VALUE sets a hyperparameter; "
        "`rlcourse train ALGO --env ID -h` lists them with the preset's values.",
        add_help=False,
    )
    p.add_argument(
        "-h",
        "--help",
        action="store_true",
        help="show this help and the algorithm's hyperparameters",
    )
    p.add_argument("algo", nargs="?", help=f"one of {', '.join(ALL_ALGORITHMS)}")
    p.add_argument(
        "--env",
        help="gymnasium environment id, e.g. CartPole-v1 (grpo: ArithmeticTask, its "
        "question-answer task); required",
    )
    p.add_argument("--seed", type=int)
    p.add_argument("--steps", type=int, help="total environment steps (grpo: --iterations)")
    p.add_argument("--out", help="run folder (default runs/ALGO-ENV-seedN)")
    p.add_argument("--device", choices=["cpu", "cuda"])
    p.add_argument(
        "--force",
        action="store_true",
        help="replace a run already in --out (the new run is written to OUT.new and takes its "
        "place only once it has finished)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last save, with its own hyperparameters (a "
        "larger --steps extends it)",
    )
    p.add_argument(
        "--save-every",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="save the run (history, checkpoint, resume state) this often (default 60)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_train, train_parser=p)

    p = sub.add_parser("list", help="algorithms and their presets")
    p.set_defaults(func=_list)

    p = sub.add_parser("plot", help="learning curves of several runs in one figure")
    p.add_argument("runs", nargs="+", help="run folders")
    p.add_argument(
        "--out",
        default="learning_curves.png",
        help="figure file (.png added if it has no suffix; default learning_curves.png)",
    )
    p.add_argument("--x", choices=["env_step", "wall_time"], default="env_step")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(func=_plot)

    p = sub.add_parser("evaluate", help="reload a run's checkpoint and report its returns")
    p.add_argument("run", help="run folder or checkpoint file")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seed", type=int, default=10_000)
    p.add_argument(
        "--stochastic",
        action="store_true",
        help="sample actions instead of taking the most likely one",
    )
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.set_defaults(func=_evaluate)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"rlcourse: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "train":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    with warnings.catch_warnings():
        warnings.simplefilter("always", LearningWarning)
        warnings.showwarning = _show_warning
        try:
            return args.func(args, extra) if args.command == "train" else args.func(args)
        except (UsageError, ValueError, CheckpointError, FileNotFoundError) as exc:
            print(f"rlcourse: error: {exc}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
