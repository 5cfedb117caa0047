"""The rlcourse command line: a short training run writes its files, evaluate reloads them, bad input is named."""

import json

import pytest
import torch

from rlcourse.cli import main
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
    for name in ("config.json", "history.csv", "diagnostics.csv", "evaluations.csv", "checkpoint.pt"):
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
    # rollouts of 8 envs x 16 steps: the first rollout end past 1000 and 2000 steps, then the final policy
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
    code, _, err = run(capsys, "train", "a2c", "--env", "CartPole-v1", "--steps", "500", "--out", trained)
    assert code == 2 and "already holds a run" in err and "--force" in err
    assert (trained / "checkpoint.pt").read_bytes() == before


def test_force_overwrites(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "reinforce", "--env", "CartPole-v1", "--steps", "600", "--out", out, "--no-progress"]
    assert run(capsys, *args)[0] == 0
    assert run(capsys, *args, "--force")[0] == 0


def test_list_shows_algorithms_and_presets(capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0 and "a2c" in out and "reinforce" in out and "preset: CartPole-v1" in out
    assert "grpo" in out and "rloo" in out


def test_grpo_is_refused_with_a_pointer_to_its_python_api(capsys):
    code, _, err = run(capsys, "train", "grpo", "--env", "CartPole-v1")
    assert code == 2 and "question-answer task" in err and "rlcourse.algos.grpo.train" in err


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
        (["train", "a2c", "--env", "CartPole-v1", "--gae-lambda", "2"], "gae_lambda=2.0 is not allowed"),
        (["train", "a2c", "--env", "CartPole-v1", "--actor-lr", "0"], "actor_lr=0.0 is not allowed"),
        (["train", "a2c", "--env", "CartPole-v1", "--rollout-steps", "-1"], "rollout_steps=-1 is not allowed"),
        (["train", "a2c", "--env", "CartPole-v1", "--batch-episodes", "3"], "unknown option(s) --batch-episodes"),
        (["train", "a2c", "--env", "CartPole-v1", "--gamma", "high"], "argument --gamma: invalid float value: 'high'"),
        (["train", "a2c", "--env", "CartPole-v1", "--seed", "-1"], "seed=-1 is not allowed"),
        (["train", "a2c"], "rlcourse train needs --env"),
        (["train", "a2c", "--env", "FrozenLake-v1"], "observation space Discrete(16) is not supported"),
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
    for text in ("--steps", "--seed", "--out", "--force", "--gae-lambda", "--steps 150000", "(default 0.95)"):
        assert text in out, text


def test_a_failed_start_leaves_no_run_behind(tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run(capsys, "train", "a2c", "--env", "FrozenLake-v1", "--out", out)
    assert code == 2 and not out.exists()
    code, _, err = run(capsys, "train", "a2c", "--env", "CartPole-v1", "--out", tmp_path / "file.txt", "--steps", "100")
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
    with pytest.raises(CheckpointError, match="holds an agent trained with a2c, not with reinforce"):
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
