"""The contract of an algorithm module (written down in rlcourse.algos' docstring), for all nine.

Each test takes one module and checks one part of the contract against what the command line, the
checkpoints, the catalog and the notebooks do with it: names and the summary table's columns, a
Config of documented fields, PRESETS and SLIDE as Configs, make_agent on every preset, a checkpoint
saved and loaded back, train's signature, a Ctrl-C carrying the agent, every hyperparameter on the
command line.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from types import ModuleType

import pytest
import torch

from rlcourse import FLOORS
from rlcourse.algos import ALGORITHMS, ALL_ALGORITHMS, get_algorithm
from rlcourse.cli import COMMON_FIELDS, main
from rlcourse.history import History
from rlcourse.training import Agent, TrainingInterrupted, load_checkpoint, save_checkpoint

# The slides' summary table, in its order.
NAMES = ["dqn", "reinforce", "a2c", "ddpg", "td3", "sac", "trpo", "ppo", "grpo"]
CLASSES = {
    "value-based",
    "actor-only",
    "actor-critic",
    "trust-region actor-critic",
    "trust-region actor-only",
}
# What rlcourse train can parse from a command line (cli._hyperparameter_parser).
FIELD_TYPES = (bool, int, float, str, tuple)


def _env_id(module: ModuleType, preset: str) -> str:
    """The environment a preset is for: its key, or the task of a module that has one (GRPO)."""
    return getattr(module, "TASK", preset)


@pytest.fixture(params=NAMES)
def module(request) -> ModuleType:
    return ALL_ALGORITHMS[request.param]


def test_the_registry_holds_the_nine_in_the_slides_order():
    assert list(ALL_ALGORITHMS) == NAMES
    assert list(ALGORITHMS) == NAMES[:-1]  # the gymnasium ones
    (algorithm_floor,) = [modules for name, modules, _ in FLOORS if name == "algorithms"]
    for name, module in ALL_ALGORITHMS.items():
        assert module.__name__ == f"rlcourse.algos.{name}"
        assert f"algos.{name}" in algorithm_floor
        assert get_algorithm(name.upper()) is module


def test_names_and_the_summary_tables_columns(module):
    assert module.NAME == module.__name__.rsplit(".", 1)[1]
    assert isinstance(module.SUMMARY, str) and module.SUMMARY and "\n" not in module.SUMMARY
    assert module.CLASS in CLASSES
    assert type(module.ON_POLICY) is bool
    assert re.fullmatch(r'.+ \((19|20)\d\d\), ".+"', module.REFERENCE), module.REFERENCE


def test_config_is_a_dataclass_of_documented_fields(module):
    config_class = module.Config
    assert isinstance(config_class, type) and dataclasses.is_dataclass(config_class)
    fields = dataclasses.fields(config_class)
    assert {"seed", "device"} <= {f.name for f in fields}
    for f in fields:
        help_text = f.metadata.get("help")
        assert isinstance(help_text, str) and help_text.strip(), f"{module.NAME}.{f.name}: no help"
        assert f.default is not dataclasses.MISSING, f"{module.NAME}.{f.name}: no default"
        assert type(f.default) in FIELD_TYPES, (module.NAME, f.name, type(f.default))
    config = config_class()
    with pytest.raises(ValueError, match="seed=-1 is not allowed"):
        dataclasses.replace(config, seed=-1)
    with pytest.raises(ValueError, match="seed='0' is not allowed"):
        dataclasses.replace(config, seed="0")


def test_presets_and_slide_are_configs(module):
    assert isinstance(module.PRESETS, dict) and module.PRESETS
    for key, preset in module.PRESETS.items():
        assert isinstance(key, str) and type(preset) is module.Config, key
    assert type(module.SLIDE) is module.Config
    assert module.SLIDE != module.Config()  # the slide box differs from the practical defaults


def test_train_signature(module):
    parameters = inspect.signature(module.train).parameters
    names = list(parameters)
    assert {"config", "progress"} <= set(names)
    assert parameters["config"].default is None and parameters["progress"].default is True
    assert parameters[names[-1]].kind is inspect.Parameter.VAR_KEYWORD  # **overrides
    first = "config" if hasattr(module, "TASK") else "env_id"
    assert names[0] == first
    # Saving and resuming (rlcourse.saving), keyword-only, the same in every module.
    keywords = {n: p.default for n, p in parameters.items() if p.kind is p.KEYWORD_ONLY}
    assert keywords == {"out": None, "save_every": 60.0, "resume": False}


def test_make_agent_on_every_preset_and_a_checkpoint_round_trip(module, tmp_path):
    for key, preset in module.PRESETS.items():
        env_id = _env_id(module, key)
        agent = module.make_agent(preset, env_id)
        assert isinstance(agent, Agent)
        assert (agent.algo, agent.env_id, agent.config) == (module.NAME, env_id, preset)
        assert agent.modules(), key
        path = tmp_path / f"{module.NAME}-{key}.pt"
        save_checkpoint(agent, path)
        loaded = load_checkpoint(path, algo=module.NAME)
        assert (loaded.algo, loaded.env_id, loaded.config) == (module.NAME, env_id, preset)
        assert loaded.modules().keys() == agent.modules().keys()
        for name, net in agent.modules().items():
            saved, back = net.state_dict(), loaded.modules()[name].state_dict()
            assert saved.keys() == back.keys()
            assert all(torch.equal(saved[k], back[k]) for k in saved), (key, name)


def test_make_agent_refuses_an_environment_it_cannot_handle(module):
    with pytest.raises(ValueError, match="NoSuchEnv-v0"):
        module.make_agent(module.Config(), "NoSuchEnv-v0")


def test_ctrl_c_carries_the_history_and_the_agent(module, monkeypatch):
    original = History.add_iteration

    def add_iteration(self, *args, **kwargs):
        original(self, *args, **kwargs)
        raise KeyboardInterrupt  # Ctrl-C right after the first row of diagnostics

    monkeypatch.setattr(History, "add_iteration", add_iteration)
    with pytest.raises(TrainingInterrupted) as stopped:
        if hasattr(module, "TASK"):
            tiny = dict(hidden=16, warm_start_steps=5, warm_start_examples=50, questions=4)
            module.train(module.Config(**tiny), progress=False)
        else:
            fields = {f.name for f in dataclasses.fields(module.Config)}
            extra = {"learning_starts": 100} if "learning_starts" in fields else {}
            module.train(next(iter(module.PRESETS)), progress=False, total_steps=5_000, **extra)
    assert len(stopped.value.history.iterations) == 1
    agent = stopped.value.agent
    assert isinstance(agent, Agent) and agent.algo == module.NAME


def test_every_hyperparameter_is_on_the_command_line(module, capsys):
    env_id = _env_id(module, next(iter(module.PRESETS)))
    assert main(["train", module.NAME, "--env", env_id, "-h"]) == 0
    out = capsys.readouterr().out
    for f in dataclasses.fields(module.Config):
        if f.name not in COMMON_FIELDS:
            assert f"--{f.name.replace('_', '-')}" in out, f.name
