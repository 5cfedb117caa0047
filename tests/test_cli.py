"""The rlcourse command line: a short training run writes its files, evaluate reloads them, bad
input is named; GRPO the same way, on its question-answer task."""

import json

import pytest
import torch

from rlcourse.cli import main
from rlcourse.config import replace
from rlcourse.training import CheckpointError, load_checkpoint


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "a2c"
    assert (
        main(
            [
                "train",
                "a2c",
                "--env",
                "CartPole-v1",
                "--steps",
                "3000",
                "--seed",
                "2",
                "--out",
                str(out),
                "--no-progress",
                "--gae-lambda",
                "0.9",
                "--hidden",
                "32",
                "32",
                "--normalize-advantages",
                "false",
                "--eval-every",
                "1000",
            ]
        )
        == 0
    )
    return out


def test_train_writes_all_files(trained):
    for name in (
        "config.json",
        "history.csv",
        "diagnostics.csv",
        "evaluations.csv",
        "checkpoint.pt",
    ):
        assert (trained / name).stat().st_size > 0, name
    meta = json.loads((trained / "config.json").read_text())
    assert meta["algo"] == "a2c" and meta["env_id"] == "CartPole-v1"
    assert meta["config"]["gae_lambda"] == 0.9 and meta["config"]["hidden"] == [32, 32]
    assert meta["config"]["seed"] == 2 and meta["config"]["total_steps"] == 3000
    assert meta["config"]["normalize_advantages"] is False
    header = (trained / "history.csv").read_text().splitlines()[0]
    assert header == "env_step,wall_time,return,length"
    evaluations = (trained / "evaluations.csv").read_text().splitlines()
    assert evaluations[0] == "env_step,wall_time,mean_return,min_return,max_return,episodes"
    # rollouts of 8 envs x 16 steps: the first rollout end past 1000 and 2000 steps, then the final
    # policy
    assert [line.split(",")[0] for line in evaluations[1:]] == ["1024", "2048", "2944"]
    assert (trained / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_reloads_the_checkpoint(trained, capsys):
    code, out, _ = run(capsys, "evaluate", trained, "--episodes", "3")
    assert code == 0 and "a2c on CartPole-v1: mean return" in out and "over 3 episodes" in out
    agent = load_checkpoint(trained)
    assert agent.config.hidden == (32, 32)
    assert agent.policy.logits[0].weight.shape == (32, 4)


def test_a_second_run_does_not_overwrite_the_first(trained, capsys):
    before = (trained / "checkpoint.pt").read_bytes()
    code, _, err = run(
        capsys, "train", "a2c", "--env", "CartPole-v1", "--steps", "500", "--out", trained
    )
    assert code == 2 and "already holds a run" in err and "--force" in err
    assert (trained / "checkpoint.pt").read_bytes() == before


def test_force_overwrites(tmp_path, capsys):
    out = tmp_path / "run"
    args = [
        "train",
        "reinforce",
        "--env",
        "CartPole-v1",
        "--steps",
        "600",
        "--out",
        out,
        "--no-progress",
    ]
    assert run(capsys, *args)[0] == 0
    assert run(capsys, *args, "--force")[0] == 0


def test_list_shows_algorithms_and_presets(capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0 and "a2c" in out and "reinforce" in out and "preset: CartPole-v1" in out
    assert "grpo" in out and "rloo" in out and "task: ArithmeticTask (--env ArithmeticTask)" in out


# -- GRPO: the same run folder, Ctrl-C and plot as the others, on its question-answer task ---------
TINY_GRPO = dict(
    iterations=3,
    questions=4,
    minibatches=2,
    hidden=16,
    warm_start_steps=5,
    warm_start_examples=50,
    eval_every=1,
    digits=1,
)


def _grpo_args(out, **changes) -> list[str]:
    options = [f"--{k.replace('_', '-')}={v}" for k, v in {**TINY_GRPO, **changes}.items()]
    return [
        "train",
        "grpo",
        "--env",
        "ArithmeticTask",
        "--out",
        str(out),
        "--no-progress",
        *options,
    ]


@pytest.fixture(scope="module")
def grpo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "grpo"
    assert main(_grpo_args(out, seed=1)) == 0
    return out


def test_grpo_trains_into_a_run_folder(grpo_run, capsys):
    from rlcourse.algos import grpo
    from rlcourse.history import History

    for name in ("config.json", "diagnostics.csv", "evaluations.csv", "checkpoint.pt"):
        assert (grpo_run / name).stat().st_size > 0, name
    assert (grpo_run / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    meta = json.loads((grpo_run / "config.json").read_text())
    assert meta["algo"] == "grpo" and meta["env_id"] == "ArithmeticTask"
    assert meta["config"]["iterations"] == 3 and meta["config"]["seed"] == 1
    # the command line's run is grpo.train's from the preset, number for number
    config = replace(grpo.PRESETS["grpo"], **TINY_GRPO, seed=1)
    _, direct = grpo.train(config, progress=False)
    saved = History.load(grpo_run)
    assert saved.column("mean_return", "evaluations").tolist() == pytest.approx(
        direct.column("mean_return", "evaluations").tolist()
    )
    assert saved.column("mean_reward", "iterations").tolist() == pytest.approx(
        direct.column("mean_reward", "iterations").tolist()
    )
    agent = load_checkpoint(grpo_run)
    assert agent.algo == "grpo" and agent.config == config
    code, out, _ = run(capsys, "evaluate", grpo_run, "--episodes", "5")
    assert code == 0 and "grpo on ArithmeticTask: mean return" in out and "over 5 episodes" in out
    target = grpo_run.parent / "curves.png"
    code, _, _ = run(capsys, "plot", grpo_run, grpo_run, "--out", target)
    assert code == 0 and target.read_bytes()[:4] == b"\x89PNG"


def test_ctrl_c_in_grpo_keeps_the_history_and_a_usable_checkpoint(tmp_path, capsys, monkeypatch):
    from rlcourse.algos import grpo
    from rlcourse.history import History

    original = History.add_iteration

    def add_iteration(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if len(self.iterations) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(History, "add_iteration", add_iteration)
    out = tmp_path / "run"
    code = main(_grpo_args(out, iterations=10))
    err = capsys.readouterr().err
    # 2 iterations x B = 4 questions x the preset's G = 4 answers
    assert code == 130 and "interrupted" in err and "after 32 env steps" in err
    assert len(History.load(out).iterations) == 2
    assert (out / "learning_curve.png").exists()
    agent = load_checkpoint(out)
    assert len(grpo.evaluate(agent, episodes=3)) == 3


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["--env", "CartPole-v1"],
            "grpo trains on rlcourse.qa's question-answer task, 'ArithmeticTask'",
        ),
        (
            ["--env", "ArithmeticTask", "--steps", "100"],
            "grpo has no --steps: its budget is --iterations",
        ),
        (["--env", "ArithmeticTask", "--group-size", "1"], "group_size=1 is not allowed"),
    ],
)
def test_grpo_mistakes_are_named(args, message, capsys, tmp_path):
    code, _, err = run(capsys, "train", "grpo", *args, "--out", tmp_path / "x")
    assert code == 2 and message in err
    assert not (tmp_path / "x").exists()


def test_grpo_help_lists_its_hyperparameters(capsys):
    code, out, _ = run(capsys, "train", "grpo", "--env", "ArithmeticTask", "-h")
    assert code == 0
    for text in ("--iterations 2000", "--group-size", "--clip-eps", "--loss-aggregation"):
        assert text in out, text


def test_plot_draws_several_runs(trained, tmp_path, capsys):
    target = tmp_path / "curves.png"
    code, out, _ = run(capsys, "plot", trained, trained, "--out", target)
    assert code == 0 and target.read_bytes()[:4] == b"\x89PNG"
    code, _, err = run(capsys, "plot", trained, "--out", target)
    assert code == 2 and "exists" in err


@pytest.mark.parametrize(
    "args,message",
    [
        (["train", "ppo9", "--env", "CartPole-v1"], "unknown algorithm 'ppo9'"),
        (["train", "a2c", "--env", "NoSuchEnv-v0"], "unknown environment id 'NoSuchEnv-v0'"),
        (["train", "a2c", "--env", "CartPole-v1", "--gamma", "1.5"], "gamma=1.5 is not allowed"),
        (
            ["train", "a2c", "--env", "CartPole-v1", "--gae-lambda", "2"],
            "gae_lambda=2.0 is not allowed",
        ),
        (
            ["train", "a2c", "--env", "CartPole-v1", "--actor-lr", "0"],
            "actor_lr=0.0 is not allowed",
        ),
        (
            ["train", "a2c", "--env", "CartPole-v1", "--rollout-steps", "-1"],
            "rollout_steps=-1 is not allowed",
        ),
        (
            ["train", "a2c", "--env", "CartPole-v1", "--batch-episodes", "3"],
            "unknown option(s) --batch-episodes",
        ),
        (
            ["train", "a2c", "--env", "CartPole-v1", "--gamma", "high"],
            "argument --gamma: invalid float value: 'high'",
        ),
        (["train", "a2c", "--env", "CartPole-v1", "--seed", "-1"], "seed=-1 is not allowed"),
        (["train", "a2c"], "rlcourse train needs --env"),
        (
            ["train", "a2c", "--env", "FrozenLake-v1"],
            "observation space Discrete(16) is not supported",
        ),
        (["evaluate", "/no/such/run", "--episodes", "0"], "no checkpoint at"),
        (["evaluate", "/no/such/run"], "no checkpoint at /no/such/run"),
        (["plot", "/no/such/run"], "not a run folder"),
    ],
)
def test_bad_input_is_named(args, message, capsys, tmp_path):
    code, _, err = run(capsys, *args, *(["--out", tmp_path / "x"] if args[0] == "train" else []))
    assert code == 2
    assert message in err
    assert not (tmp_path / "x" / "config.json").exists()


def test_help_lists_the_options_and_the_presets_values(capsys):
    code, out, _ = run(capsys, "train", "a2c", "--env", "CartPole-v1", "-h")
    assert code == 0
    for text in (
        "--steps",
        "--seed",
        "--out",
        "--force",
        "--gae-lambda",
        "--steps 150000",
        "(default 0.95)",
    ):
        assert text in out, text


def test_a_failed_start_leaves_no_run_behind(tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run(capsys, "train", "a2c", "--env", "FrozenLake-v1", "--out", out)
    assert code == 2 and not out.exists()
    code, _, err = run(
        capsys,
        "train",
        "a2c",
        "--env",
        "CartPole-v1",
        "--out",
        tmp_path / "file.txt",
        "--steps",
        "100",
    )
    assert code == 0
    (tmp_path / "afile").write_text("x")
    code, _, err = run(capsys, "train", "a2c", "--env", "CartPole-v1", "--out", tmp_path / "afile")
    assert code == 2 and "is a file" in err


def test_gpu_checkpoint_loads_on_the_cpu(trained, tmp_path):
    payload = torch.load(trained / "checkpoint.pt", weights_only=True)
    payload["config"]["device"] = "cuda"
    torch.save(payload, tmp_path / "gpu.pt")
    agent = load_checkpoint(tmp_path / "gpu.pt", device="cpu")
    assert agent.config.device == "cpu"


def test_checkpoint_errors(trained, tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes((trained / "checkpoint.pt").read_bytes()[:200])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(corrupt)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not an rlcourse checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(
        CheckpointError, match="holds an agent trained with a2c, not with reinforce"
    ):
        load_checkpoint(trained, algo="reinforce")
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")


def test_nan_keeps_the_history_so_far(tmp_path, capsys):
    out = tmp_path / "nan"
    code, _, err = run(
        capsys,
        "train",
        "a2c",
        "--env",
        "CartPole-v1",
        "--steps",
        "20000",
        "--out",
        out,
        "--no-progress",
        "--actor-lr",
        "1e30",
        "--critic-lr",
        "1e30",
        "--max-grad-norm",
        "1e30",
        "--rollout-steps",
        "64",
    )
    assert code == 1 and "is not finite" in err and "history so far" in err
    assert (out / "history.csv").exists() and (out / "config.json").exists()
