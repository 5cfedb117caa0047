"""Issue 18's reliability suite: bad inputs and faults, tried against the command line and the Python
API as a new user would make them.

Every case asserts two things:
- a clear message: from the command line, ``rlcourse: error: ...`` (or argparse's usage error) with
  the words that name what is wrong and no traceback; from Python, an exception of a documented kind
  whose message names it;
- nothing a user saved is lost or mixed: each case runs beside a finished run (``keep``), whose
  files must be byte for byte the same afterwards.

The stops that need a real process (SIGTERM, SIGHUP, Ctrl-C, kill -9) and the exact resume are in
``tests/test_saving.py``; the config fields of every algorithm, one by one, in
``tests/test_reliability.py``. ``test_the_suite_tries_at_least_150_distinct_cases`` counts this one.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
from pathlib import Path

import gymnasium as gym
import pytest
import torch

from rlcourse import cli, saving
from rlcourse.algos import ALGORITHMS, grpo
from rlcourse.history import History
from rlcourse.saving import LearningWarning, RunFolderError, RunKeeper
from rlcourse.training import load_checkpoint

TRAIN = ["train", "a2c", "--env", "CartPole-v1", "--steps", "600", "--no-progress"]


@pytest.fixture(scope="module")
def keep(tmp_path_factory):
    """A finished run that no case may change."""
    out = tmp_path_factory.mktemp("saved") / "keep"
    assert (
        cli.main(
            [
                *TRAIN[:-3],
                "--steps",
                "1024",
                "--out",
                str(out),
                "--no-progress",
                "--eval-every",
                "512",
            ]
        )
        == 0
    )
    return out


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


class _Exploit:
    def __reduce__(self):
        return (exec, ("open('PWNED', 'w').write('x')",))


# -- what a case finds in its folder before it runs ------------------------------------------------
def _copy_keep(keep, tmp, name="run"):
    shutil.copytree(keep, tmp / name)
    return tmp / name


def _edit_checkpoint(change):
    def setup(keep, tmp):
        payload = torch.load(keep / "checkpoint.pt", weights_only=True)
        change(payload)
        torch.save(payload, tmp / "edited.pt")

    return setup


def _write(name, content):
    def setup(keep, tmp):
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)

    return setup


def _run_with(file, text):
    def setup(keep, tmp):
        run = _copy_keep(keep, tmp)
        (run / file).write_text(text(run / file) if callable(text) else text)

    return setup


def _cut_history(path):
    text = path.read_text().rstrip("\n")
    return text[: text.rindex(",", 0, text.rindex(",")) + 2]  # the last row two fields short


def _pickled_code(keep, tmp):
    (tmp / "evil.pt").write_bytes(
        pickle.dumps({"format": "rlcourse-checkpoint-1", "x": _Exploit()}, protocol=2)
    )


def _truncated(keep, tmp):
    (tmp / "cut.pt").write_bytes((keep / "checkpoint.pt").read_bytes()[:300])


def _unfinished_force(keep, tmp):
    _copy_keep(keep, tmp)
    (tmp / "run.new").mkdir()


def _foreign_resume(keep, tmp):
    run = _copy_keep(keep, tmp)
    (run / "resume.pt").write_bytes(b"not a resume file")


def _no_resume(keep, tmp):
    run = _copy_keep(keep, tmp)
    (run / "resume.pt").unlink()


# (id, argv, setup or None, words the message must hold). "{keep}" and "{tmp}" are replaced.
CLI_CASES = [
    # train: the algorithm and the environment
    ("no algorithm", ["train"], None, "needs an algorithm"),
    ("unknown algorithm", ["train", "nope", "--env", "CartPole-v1"], None, "unknown algorithm"),
    ("misspelt algorithm", ["train", "ppo2", "--env", "CartPole-v1"], None, "allowed are"),
    ("no env", ["train", "a2c"], None, "needs --env"),
    ("unknown env", ["train", "a2c", "--env", "NoSuchEnv-v0"], None, "no such environment"),
    ("misspelt env", ["train", "a2c", "--env", "CartPole-v2"], None, "did you mean"),
    ("lowercase env", ["train", "a2c", "--env", "cartpole-v1"], None, "unknown environment"),
    ("ddpg discrete", ["train", "ddpg", "--env", "CartPole-v1"], None, "continuous"),
    ("td3 discrete", ["train", "td3", "--env", "Acrobot-v1"], None, "continuous"),
    ("dqn continuous", ["train", "dqn", "--env", "Pendulum-v1"], None, "finite action set"),
    (
        "dqn mountaincar continuous",
        ["train", "dqn", "--env", "MountainCarContinuous-v0"],
        None,
        "finite action set",
    ),
    ("a2c discrete observations", ["train", "a2c", "--env", "FrozenLake-v1"], None, "observation"),
    ("grpo on cartpole", ["train", "grpo", "--env", "CartPole-v1"], None, "question-answer task"),
    (
        "a2c on grpo's task",
        ["train", "a2c", "--env", "ArithmeticTask"],
        None,
        "unknown environment",
    ),
    # train: the budget, seed, device
    ("zero steps", [*TRAIN, "--steps", "0"], None, "total_steps=0 is not allowed"),
    ("negative steps", [*TRAIN, "--steps", "-5"], None, "total_steps=-5 is not allowed"),
    (
        "grpo steps",
        ["train", "grpo", "--env", "ArithmeticTask", "--steps", "10"],
        None,
        "no --steps",
    ),
    ("negative seed", [*TRAIN, "--seed", "-1"], None, "seed"),
    ("huge seed", [*TRAIN, "--seed", str(2**70)], None, "seed"),
    ("cuda without a GPU", [*TRAIN, "--device", "cuda"], None, "no CUDA GPU"),
    ("negative save interval", [*TRAIN, "--save-every", "-1"], None, "save_every"),
    ("nan save interval", [*TRAIN, "--save-every", "nan"], None, "save_every"),
    # train: hyperparameters
    ("unknown option", [*TRAIN, "--lr", "0.1"], None, "unknown option(s) --lr"),
    ("option of another algorithm", [*TRAIN, "--clip-eps", "0.1"], None, "unknown option"),
    ("gamma above 1", [*TRAIN, "--gamma", "1.5"], None, "gamma=1.5 is not allowed"),
    ("gamma negative", [*TRAIN, "--gamma", "-0.1"], None, "gamma=-0.1 is not allowed"),
    ("gamma nan", [*TRAIN, "--gamma", "nan"], None, "gamma"),
    ("lambda above 1", [*TRAIN, "--gae-lambda", "2"], None, "gae_lambda=2.0 is not allowed"),
    ("zero learning rate", [*TRAIN, "--actor-lr", "0"], None, "actor_lr=0.0 is not allowed"),
    ("negative learning rate", [*TRAIN, "--critic-lr", "-1"], None, "critic_lr=-1.0"),
    ("infinite learning rate", [*TRAIN, "--actor-lr", "inf"], None, "actor_lr=inf"),
    ("zero hidden", [*TRAIN, "--hidden", "0"], None, "hidden"),
    ("negative hidden", [*TRAIN, "--hidden", "64", "-64"], None, "hidden"),
    ("zero envs", [*TRAIN, "--num-envs", "0"], None, "num_envs=0 is not allowed"),
    ("zero rollout", [*TRAIN, "--rollout-steps", "0"], None, "rollout_steps=0"),
    ("bad advantage", [*TRAIN, "--advantage", "mc"], None, "advantage='mc' is not allowed"),
    ("bad reduction", [*TRAIN, "--reduction", "max"], None, "reduction='max'"),
    ("bad boolean", [*TRAIN, "--normalize-advantages", "maybe"], None, "expected true or false"),
    ("negative entropy", [*TRAIN, "--ent-coef", "-0.1"], None, "ent_coef=-0.1"),
    ("negative eval interval", [*TRAIN, "--eval-every", "-1"], None, "eval_every=-1"),
    ("zero eval episodes", [*TRAIN, "--eval-episodes", "0"], None, "eval_episodes=0"),
    ("zero threads", [*TRAIN, "--threads", "0"], None, "threads=0"),
    (
        "ppo zero epochs",
        ["train", "ppo", "--env", "CartPole-v1", "--epochs", "0"],
        None,
        "epochs=0",
    ),
    (
        "ppo negative clip",
        ["train", "ppo", "--env", "CartPole-v1", "--clip-eps", "-0.2"],
        None,
        "clip_eps=-0.2",
    ),
    (
        "ppo zero minibatches",
        ["train", "ppo", "--env", "CartPole-v1", "--minibatches", "0"],
        None,
        "minibatches=0",
    ),
    (
        "trpo zero delta",
        ["train", "trpo", "--env", "CartPole-v1", "--delta", "0"],
        None,
        "delta=0.0",
    ),
    (
        "dqn epsilon above 1",
        ["train", "dqn", "--env", "CartPole-v1", "--epsilon-end", "2"],
        None,
        "epsilon_end",
    ),
    (
        "dqn batch above buffer",
        ["train", "dqn", "--env", "CartPole-v1", "--batch-size", "500", "--buffer-size", "100"],
        None,
        "at most buffer_size=100",
    ),
    (
        "sac batch above buffer",
        ["train", "sac", "--env", "Pendulum-v1", "--batch-size", str(10**9)],
        None,
        "at most buffer_size",
    ),
    (
        "ddpg zero buffer",
        ["train", "ddpg", "--env", "Pendulum-v1", "--buffer-size", "0"],
        None,
        "buffer_size=0",
    ),
    ("td3 rho above 1", ["train", "td3", "--env", "Pendulum-v1", "--rho", "1.5"], None, "rho=1.5"),
    (
        "sac negative alpha",
        ["train", "sac", "--env", "Pendulum-v1", "--alpha", "-1"],
        None,
        "alpha=-1.0",
    ),
    (
        "memory beyond the machine",
        [
            "train",
            "sac",
            "--env",
            "Pendulum-v1",
            "--buffer-size",
            str(10**11),
            "--batch-size",
            str(10**10),
            "--steps",
            str(10**11),
        ],
        None,
        "of memory",
    ),
    (
        "grpo zero group",
        ["train", "grpo", "--env", "ArithmeticTask", "--group-size", "0"],
        None,
        "group_size",
    ),
    (
        "grpo bad advantage",
        ["train", "grpo", "--env", "ArithmeticTask", "--advantage", "x"],
        None,
        "advantage='x'",
    ),
    # train: the output folder
    ("out is a file", [*TRAIN, "--out", "{tmp}/afile"], _write("afile", "x"), "is a file"),
    (
        "out under a file",
        [*TRAIN, "--out", "{tmp}/afile/sub"],
        _write("afile", "x"),
        "afile is a file, not a folder",
    ),
    (
        "out deep under a file",
        [*TRAIN, "--out", "{tmp}/afile/a/b/c"],
        _write("afile", "x"),
        "is a file",
    ),
    ("out in /proc", [*TRAIN, "--out", "/proc/rlcourse-run"], None, "cannot write the run"),
    ("out in /sys", [*TRAIN, "--out", "/sys/rlcourse-run"], None, "cannot write the run"),
    ("out holds a run", [*TRAIN, "--out", "{keep}"], None, "already holds a run"),
    ("out holds a copy", [*TRAIN, "--out", "{tmp}/run"], _copy_keep, "--resume to continue"),
    (
        "force over an unfinished force",
        [*TRAIN, "--out", "{tmp}/run", "--force"],
        _unfinished_force,
        "unfinished --force run",
    ),
    (
        "resume and force",
        [*TRAIN, "--out", "{tmp}/run", "--resume", "--force"],
        _copy_keep,
        "give one",
    ),
    ("resume nothing", [*TRAIN, "--out", "{tmp}/none", "--resume"], None, "not a run folder"),
    (
        "resume another algorithm",
        ["train", "ppo", "--env", "CartPole-v1", "--out", "{tmp}/run", "--resume"],
        _copy_keep,
        "holds a a2c run",
    ),
    (
        "resume another env",
        ["train", "a2c", "--env", "Acrobot-v1", "--out", "{tmp}/run", "--resume"],
        _copy_keep,
        "on CartPole-v1",
    ),
    (
        "resume with a hyperparameter",
        [*TRAIN, "--out", "{tmp}/run", "--resume", "--gamma", "0.9"],
        _copy_keep,
        "drop --gamma",
    ),
    (
        "resume with a seed",
        [*TRAIN, "--out", "{tmp}/run", "--resume", "--seed", "3"],
        _copy_keep,
        "drop --seed",
    ),
    (
        "resume without a resume file",
        [*TRAIN, "--out", "{tmp}/run", "--resume"],
        _no_resume,
        "nothing to resume",
    ),
    (
        "resume a foreign file",
        [*TRAIN, "--out", "{tmp}/run", "--resume"],
        _foreign_resume,
        "cannot be read",
    ),
    (
        "resume a damaged config",
        [*TRAIN, "--out", "{tmp}/run", "--resume"],
        _run_with("config.json", "{"),
        "config.json is damaged",
    ),
    # plot
    ("plot a missing run", ["plot", "{tmp}/none"], None, "not a run folder"),
    ("plot a file", ["plot", "{tmp}/afile"], _write("afile", "x"), "not a run folder"),
    (
        "plot an empty folder",
        ["plot", "{tmp}/empty"],
        _write("empty/.keep", ""),
        "not a run folder",
    ),
    (
        "plot a damaged config",
        ["plot", "{tmp}/run", "--out", "{tmp}/c.png"],
        _run_with("config.json", "{not json"),
        "config.json is damaged",
    ),
    (
        "plot a config without keys",
        ["plot", "{tmp}/run", "--out", "{tmp}/c.png"],
        _run_with("config.json", "{}"),
        "config.json is damaged",
    ),
    (
        "plot a config that is a list",
        ["plot", "{tmp}/run", "--out", "{tmp}/c.png"],
        _run_with("config.json", "[1, 2]"),
        "config.json is damaged",
    ),
    (
        "plot a cut history",
        ["plot", "{tmp}/run", "--out", "{tmp}/c.png"],
        _run_with("history.csv", _cut_history),
        "history.csv is damaged at line",
    ),
    (
        "plot a history with text",
        ["plot", "{tmp}/run", "--out", "{tmp}/c.png"],
        _run_with("history.csv", "env_step,wall_time,return,length\n1,0.1,abc,1\n"),
        "history.csv is damaged at line 2",
    ),
    (
        "plot a history with an extra field",
        ["plot", "{tmp}/run", "--out", "{tmp}/c.png"],
        _run_with("history.csv", "env_step,wall_time,return,length\n1,0.1,2,1,9\n"),
        "different number of fields",
    ),
    (
        "plot without a history",
        ["plot", "{tmp}/run", "--out", "{tmp}/c.png"],
        lambda keep, tmp: (_copy_keep(keep, tmp) / "history.csv").unlink(),
        "no history at",
    ),
    (
        "plot a cut diagnostics",
        ["plot", "{tmp}/run", "--out", "{tmp}/c.png"],
        _run_with("diagnostics.csv", _cut_history),
        "diagnostics.csv is damaged",
    ),
    (
        "plot a cut evaluations",
        ["plot", "{tmp}/run", "--out", "{tmp}/c.png"],
        _run_with("evaluations.csv", _cut_history),
        "evaluations.csv is damaged",
    ),
    ("plot into a folder", ["plot", "{keep}", "--out", "{tmp}"], None, "is a folder"),
    (
        "plot over a file",
        ["plot", "{keep}", "--out", "{tmp}/c.png"],
        _write("c.png", "old"),
        "exists; pass --force",
    ),
    (
        "plot over a file without suffix",
        ["plot", "{keep}", "--out", "{tmp}/c"],
        _write("c.png", "old"),
        "c.png exists",
    ),
    (
        "plot an unknown format",
        ["plot", "{keep}", "--out", "{tmp}/c.docx"],
        None,
        "cannot write '.docx' files",
    ),
    (
        "plot into a missing folder",
        ["plot", "{keep}", "--out", "{tmp}/no/c.png"],
        None,
        "does not exist",
    ),
    (
        "plot into a run's curve",
        ["plot", "{keep}", "--out", "{keep}/learning_curve.png"],
        None,
        "exists; pass --force",
    ),
    # evaluate
    ("evaluate a missing run", ["evaluate", "{tmp}/none"], None, "no checkpoint at"),
    (
        "evaluate a folder without checkpoint",
        ["evaluate", "{tmp}/empty"],
        _write("empty/.keep", ""),
        "no checkpoint at",
    ),
    (
        "evaluate a truncated checkpoint",
        ["evaluate", "{tmp}/cut.pt"],
        _truncated,
        "corrupt or truncated",
    ),
    (
        "evaluate an empty file",
        ["evaluate", "{tmp}/e.pt"],
        _write("e.pt", b""),
        "corrupt or truncated",
    ),
    (
        "evaluate random bytes",
        ["evaluate", "{tmp}/r.pt"],
        _write("r.pt", bytes(range(256)) * 16),
        "corrupt or truncated",
    ),
    (
        "evaluate a text file",
        ["evaluate", "{tmp}/t.pt"],
        _write("t.pt", "hello"),
        "corrupt or truncated",
    ),
    ("evaluate a pickle with code", ["evaluate", "{tmp}/evil.pt"], _pickled_code, "would run code"),
    (
        "evaluate a foreign torch file",
        ["evaluate", "{tmp}/edited.pt"],
        _edit_checkpoint(lambda p: p.pop("format")),
        "not an rlcourse checkpoint",
    ),
    (
        "evaluate a checkpoint without config",
        ["evaluate", "{tmp}/edited.pt"],
        _edit_checkpoint(lambda p: p.pop("config")),
        "config missing",
    ),
    (
        "evaluate a checkpoint without weights",
        ["evaluate", "{tmp}/edited.pt"],
        _edit_checkpoint(lambda p: p.pop("modules")),
        "modules missing",
    ),
    (
        "evaluate a checkpoint of no algorithm",
        ["evaluate", "{tmp}/edited.pt"],
        _edit_checkpoint(lambda p: p.update(algo="nope")),
        "unknown algorithm 'nope'",
    ),
    (
        "evaluate a checkpoint of no env",
        ["evaluate", "{tmp}/edited.pt"],
        _edit_checkpoint(lambda p: p.update(env_id="Nope-v0")),
        "unknown environment",
    ),
    (
        "evaluate a checkpoint with a bad config",
        ["evaluate", "{tmp}/edited.pt"],
        _edit_checkpoint(lambda p: p["config"].update(gamma=7.0)),
        "gamma=7.0 is not allowed",
    ),
    (
        "evaluate a checkpoint with an unknown field",
        ["evaluate", "{tmp}/edited.pt"],
        _edit_checkpoint(lambda p: p["config"].update(colour=1)),
        "unknown hyperparameters",
    ),
    (
        "evaluate weights of another shape",
        ["evaluate", "{tmp}/edited.pt"],
        _edit_checkpoint(lambda p: p["config"].update(hidden=[8])),
        "do not fit",
    ),
    (
        "evaluate weights missing a network",
        ["evaluate", "{tmp}/edited.pt"],
        _edit_checkpoint(lambda p: p["modules"].pop("critic")),
        "do not fit",
    ),
    (
        "evaluate on cuda without a GPU",
        ["evaluate", "{keep}", "--device", "cuda"],
        None,
        "no CUDA GPU",
    ),
    (
        "evaluate zero episodes",
        ["evaluate", "{keep}", "--episodes", "0"],
        None,
        "at least 1 episode",
    ),
    (
        "evaluate negative episodes",
        ["evaluate", "{keep}", "--episodes", "-3"],
        None,
        "at least 1 episode",
    ),
]
# Mistakes argparse itself answers with the command's usage and exit status 2.
USAGE_CASES = [
    ("no command", [], "required: command"),
    ("unknown command", ["fit"], "invalid choice"),
    ("seed not a number", [*TRAIN, "--seed", "x"], "invalid int value"),
    ("steps not a number", [*TRAIN, "--steps", "1e5x"], "invalid int value"),
    ("steps a float", [*TRAIN, "--steps", "1.5"], "invalid int value"),
    ("device unknown", [*TRAIN, "--device", "tpu"], "invalid choice"),
    ("save interval not a number", [*TRAIN, "--save-every", "often"], "invalid float value"),
    ("plot without runs", ["plot"], "the following arguments are required: runs"),
    ("plot bad x", ["plot", "a", "--x", "time"], "invalid choice"),
    ("evaluate episodes not a number", ["evaluate", "a", "--episodes", "ten"], "invalid int"),
    ("evaluate without a run", ["evaluate"], "required: run"),
    ("list with an argument", ["list", "extra"], "unrecognized arguments"),
]


def _fill(args, keep, tmp):
    return [a.replace("{keep}", str(keep)).replace("{tmp}", str(tmp)) for a in args]


@pytest.mark.parametrize("name, args, setup, words", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_a_command_line_mistake_is_named_and_loses_nothing(
    name, args, setup, words, keep, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    before = _snapshot(keep)
    if setup is not None:
        setup(keep, tmp_path)
    copies = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    code = cli.main(_fill(args, keep, tmp_path))
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("rlcourse: error: ") and words in err, err
    assert "Traceback" not in err
    assert _snapshot(keep) == before
    for path, content in copies.items():  # what the case's folder held is untouched too
        assert path.read_bytes() == content, path
    assert not (tmp_path / "PWNED").exists()
    assert not (tmp_path / "runs").exists()  # a refused command leaves no run behind


@pytest.mark.parametrize("name, args, words", USAGE_CASES, ids=[c[0] for c in USAGE_CASES])
def test_a_usage_mistake_shows_the_usage(name, args, words, keep, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(args)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "usage: rlcourse" in err and words in err, err


@pytest.mark.parametrize("args", [["train", "-h"], ["train", "--help"], ["-h"], ["plot", "-h"]])
def test_help_is_shown_without_an_algorithm(args, capsys):
    try:
        code = cli.main(args)
    except SystemExit as exit_:  # argparse's own -h exits 0
        code = exit_.code
    assert code == 0 and "usage: rlcourse" in capsys.readouterr().out


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder no one may write to: chmod for a user, the immutable attribute for root (whom
    permissions do not stop)."""
    folder = tmp_path / "readonly"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)]).returncode:
        pytest.skip("running as root without chattr +i: no folder can be made read-only")
    yield folder
    subprocess.run(["chattr", "-i", str(folder)], check=True)


@pytest.mark.parametrize("where", [".", "run", "a/b/run"])
def test_a_read_only_folder_is_refused_before_training(where, read_only_folder, capsys):
    out = read_only_folder / where
    code = cli.main([*TRAIN, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "cannot write the run" in err, err
    assert "not permitted" in err or "Permission denied" in err
    assert not any(read_only_folder.iterdir())


def test_too_little_disk_space_is_refused_before_training(tmp_path, capsys, monkeypatch):
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(saving.shutil, "disk_usage", lambda p: usage._replace(free=1000))
    code = cli.main([*TRAIN, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "not enough disk space" in err and "1000 bytes is free" in err
    assert not (tmp_path / "run").exists()


# -- faults during a run: nothing lost, nothing mixed ------------------------------------------------
def test_force_leaves_only_the_new_run(keep, tmp_path, capsys):
    run = _copy_keep(keep, tmp_path)
    assert (run / "evaluations.csv").exists()
    assert cli.main([*TRAIN, "--out", str(run), "--force", "--gae-lambda", "0.5"]) == 0
    meta = json.loads((run / "config.json").read_text())
    assert meta["config"]["gae_lambda"] == 0.5 and meta["config"]["total_steps"] == 600
    assert not (run / "evaluations.csv").exists()  # the old run's evaluations are gone
    assert not (tmp_path / "run.new").exists() and not (tmp_path / "run.old").exists()
    assert History.load(run).episodes[-1]["env_step"] <= 600


def test_a_force_run_that_fails_keeps_the_old_run(keep, tmp_path, capsys):
    run = _copy_keep(keep, tmp_path)
    before = _snapshot(run)
    code = cli.main(
        [
            *TRAIN,
            "--steps",
            "20000",
            "--out",
            str(run),
            "--force",
            "--actor-lr",
            "1e30",
            "--critic-lr",
            "1e30",
            "--max-grad-norm",
            "1e30",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "not finite" in err and "keeps the run it held" in err
    assert _snapshot(run) == before
    assert (tmp_path / "run.new" / "history.csv").exists()
    assert not (tmp_path / "run.new" / "checkpoint.pt").exists()  # no NaN agent saved


def test_a_force_run_stopped_keeps_the_old_run_and_can_be_resumed(
    keep, tmp_path, capsys, monkeypatch
):
    run = _copy_keep(keep, tmp_path)
    before = _snapshot(run)
    tick = RunKeeper.tick

    def stop(self, **values):
        tick(self, **values)
        raise KeyboardInterrupt

    monkeypatch.setattr(RunKeeper, "tick", stop)
    code = cli.main([*TRAIN, "--out", str(run), "--force", "--save-every", "0"])
    monkeypatch.setattr(RunKeeper, "tick", tick)
    assert code == 130 and "interrupted (Ctrl-C)" in capsys.readouterr().err
    assert _snapshot(run) == before
    new = tmp_path / "run.new"
    assert cli.main([*TRAIN, "--out", str(new), "--resume"]) == 0
    assert History.load(new).iterations[-1]["env_step"] >= 512


def test_nan_writes_the_history_and_no_checkpoint(tmp_path, capsys):
    code = cli.main(
        [
            *TRAIN,
            "--steps",
            "20000",
            "--out",
            str(tmp_path / "run"),
            "--actor-lr",
            "1e30",
            "--critic-lr",
            "1e30",
            "--max-grad-norm",
            "1e30",
        ]
    )
    assert code == 1 and "history so far" in capsys.readouterr().err
    assert (tmp_path / "run" / "history.csv").exists()
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_diverged_actions_are_blamed_on_the_policy_not_the_environment(tmp_path, capsys):
    code = cli.main(
        [
            "train",
            "ddpg",
            "--env",
            "Pendulum-v1",
            "--steps",
            "3000",
            "--no-progress",
            "--learning-starts",
            "100",
            "--actor-lr",
            "1e10",
            "--critic-lr",
            "1e10",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "the policy chose non-finite actions" in err, err
    assert History.load(tmp_path / "run").episodes is not None


def test_a_full_disk_mid_run_stops_it_with_the_last_save_kept(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    saves = {"n": 0}
    write = saving.write_atomic

    def full_after_two(path, writer):
        saves["n"] += 1
        if saves["n"] > 8:
            raise OSError(28, "No space left on device")
        write(path, writer)

    monkeypatch.setattr(saving, "write_atomic", full_after_two)
    code = cli.main([*TRAIN, "--steps", "3000", "--out", str(run), "--save-every", "0"])
    err = capsys.readouterr().err
    assert code == 2 and "No space left on device" in err and "last complete save" in err
    assert "Traceback" not in err
    History.load(run)
    load_checkpoint(run)
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


def test_an_orphan_temporary_file_does_not_block_a_run(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / ".checkpoint.pt.tmp").write_bytes(b"half a file")
    assert cli.main([*TRAIN, "--out", str(run)]) == 0
    load_checkpoint(run)


def test_no_gradient_step_is_warned_on_the_command_line(tmp_path, capsys):
    code = cli.main(
        [
            "train",
            "dqn",
            "--env",
            "CartPole-v1",
            "--steps",
            "500",
            "--no-progress",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 0 and "rlcourse: warning: this run makes no gradient step" in err


# -- the Python API ----------------------------------------------------------------------------------
ENVS = {
    "dqn": "CartPole-v1",
    "reinforce": "CartPole-v1",
    "a2c": "CartPole-v1",
    "ddpg": "Pendulum-v1",
    "td3": "Pendulum-v1",
    "sac": "Pendulum-v1",
    "trpo": "CartPole-v1",
    "ppo": "CartPole-v1",
}
OTHER = {
    "dqn": "a2c",
    "reinforce": "a2c",
    "a2c": "ppo",
    "ddpg": "td3",
    "td3": "ddpg",
    "sac": "ddpg",
    "trpo": "ppo",
    "ppo": "trpo",
}


@pytest.mark.parametrize("algo", list(ALGORITHMS))
def test_an_environment_object_is_named(algo):
    env = gym.make(ENVS[algo])
    with pytest.raises(TypeError, match=f"environment id such as.*{ENVS[algo]!r}"):
        ALGORITHMS[algo].train(env, progress=False)
    env.close()


@pytest.mark.parametrize("algo", list(ALGORITHMS))
def test_a_dict_config_is_named(algo):
    with pytest.raises(TypeError, match=f"config must be a {algo}.Config, not a dict"):
        ALGORITHMS[algo].train(ENVS[algo], {"gamma": 0.9}, progress=False)


@pytest.mark.parametrize("algo", list(ALGORITHMS))
def test_another_algorithms_config_is_named(algo):
    other = ALGORITHMS[OTHER[algo]].Config()
    with pytest.raises(TypeError, match=f"config must be a {algo}.Config.*{OTHER[algo]}"):
        ALGORITHMS[algo].train(ENVS[algo], other, progress=False)


@pytest.mark.parametrize("algo", list(ALGORITHMS))
@pytest.mark.parametrize("save_every", [-1, "often", None, float("nan")])
def test_a_bad_save_interval_is_named(algo, save_every, tmp_path):
    with pytest.raises(ValueError, match="save_every"):
        ALGORITHMS[algo].train(ENVS[algo], progress=False, out=tmp_path, save_every=save_every)


@pytest.mark.parametrize("algo", list(ALGORITHMS))
def test_resume_without_a_folder_is_named(algo):
    with pytest.raises(ValueError, match="resume=True needs out="):
        ALGORITHMS[algo].train(ENVS[algo], progress=False, resume=True)


@pytest.mark.filterwarnings("ignore::rlcourse.saving.LearningWarning")
@pytest.mark.parametrize("algo", list(ALGORITHMS))
def test_training_into_a_saved_run_is_refused(algo, keep):
    before = _snapshot(keep)
    with pytest.raises(RunFolderError, match="already holds a run"):
        ALGORITHMS[algo].train(ENVS[algo], progress=False, out=keep, total_steps=100)
    assert _snapshot(keep) == before


def test_grpo_mistakes_in_python_are_named(tmp_path):
    with pytest.raises(TypeError, match="config must be a grpo.Config, not a dict"):
        grpo.train({"lr": 0.1}, progress=False)
    with pytest.raises(ValueError, match="resume=True needs out="):
        grpo.train(progress=False, resume=True)


@pytest.mark.parametrize("algo", ["sac", "ddpg", "td3", "dqn"])
def test_a_batch_larger_than_the_buffer_is_refused(algo):
    with pytest.raises(ValueError, match="at most buffer_size"):
        ALGORITHMS[algo].train(ENVS[algo], progress=False, batch_size=10**9)


def test_a_buffer_beyond_the_machine_is_refused_before_it_fills():
    # 10**11 transitions cannot even be reserved; 10**9 can be (the system provides the memory as
    # the buffer fills) but would not fit by the time the run has filled it.
    with pytest.raises(ValueError, match="replay buffer of capacity 100000000000 cannot be"):
        ALGORITHMS["sac"].train("Pendulum-v1", progress=False, buffer_size=10**11)
    with pytest.raises(ValueError, match="would need about .* GB of memory"):
        ALGORITHMS["sac"].train(
            "Pendulum-v1", progress=False, total_steps=10**9, buffer_size=10**9, batch_size=256
        )


def test_an_exploding_learning_rate_is_warned():
    """The example of the issue: a learning rate of 1e10 drives the critic's loss up by twenty
    orders of magnitude while it stays finite."""
    with pytest.warns(LearningWarning, match="critic loss has grown from .* by iteration"):
        ALGORITHMS["a2c"].train(
            "CartPole-v1", progress=False, total_steps=5000, actor_lr=1e10, critic_lr=1e10
        )


def test_load_checkpoint_names_a_missing_gpu(keep):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match="no CUDA GPU; use device='cpu'"):
        load_checkpoint(keep, device="cuda")


def test_the_suite_tries_at_least_150_distinct_cases():
    """Each parametrisation of each test above is one bad input or fault."""
    total = 0
    for name, test in list(globals().items()):
        if name.startswith("test_") and name != "test_the_suite_tries_at_least_150_distinct_cases":
            cases = 1
            for mark in getattr(test, "pytestmark", []):
                if mark.name == "parametrize":
                    cases *= len(mark.args[1])
            total += cases
    names = [c[0] for c in CLI_CASES] + [c[0] for c in USAGE_CASES]
    assert len(set(names)) == len(names)
    assert total >= 150, total


def test_a_curve_that_cannot_be_written_loses_nothing(tmp_path, capsys, monkeypatch):
    from rlcourse import cli as cli_module

    write = cli_module.write_atomic

    def full_for_figures(path, writer):
        if Path(path).suffix == ".png":
            raise OSError(28, "No space left on device")
        write(path, writer)

    monkeypatch.setattr(cli_module, "write_atomic", full_for_figures)
    code = cli.main([*TRAIN, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 0 and "cannot write" in err and "rlcourse plot" in err, err
    History.load(tmp_path / "run")
    load_checkpoint(tmp_path / "run")
