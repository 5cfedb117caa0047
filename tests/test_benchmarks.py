"""The benchmarks' own bookkeeping: medians with failures, the README block, the figures drawn from
stored results, the one entry point and the commands the documentation cites (the runs themselves
need Stable-Baselines3 and minutes; they are not run here).

``benchmarks`` is a package at the repository root, imported from there (pytest runs from the root).
"""

from __future__ import annotations

import ast
import collections
import csv
import dataclasses
import importlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import compare_sb3
from benchmarks.__main__ import COMMANDS, PROG

ROOT = Path(__file__).resolve().parents[1]


def test_a_seed_that_never_met_the_criterion_counts_as_infinitely_slow():
    assert compare_sb3.spread([3, None, 1]) == {"median": 3, "min": 1, "max": 3}
    assert compare_sb3.spread([None, None, 1])["median"] is None  # the median seed failed
    assert compare_sb3.spread([None, None, None]) == {"median": None, "min": None, "max": None}


def _runs(ours: list, sb3: list) -> tuple[list, list]:
    """Runs with seconds = steps / 1000 for rlcourse and steps / 100 for SB3."""
    return [
        {"seed": i, "steps": s, "seconds": None if s is None else s / 1000}
        for i, s in enumerate(ours)
    ], [
        {"seed": i, "steps": s, "seconds": None if s is None else s / 100}
        for i, s in enumerate(sb3)
    ]


def test_the_target_needs_a_third_of_the_wall_time_and_no_more_env_steps_sac_fewer():
    # issue 20: at most 1/3 of SB3's wall seconds, no more env steps; SAC must take fewer.
    assert compare_sb3.target_met("ppo", 1 / 3, 1.0)
    assert not compare_sb3.target_met("ppo", 0.34, 0.5)
    assert not compare_sb3.target_met("ppo", 0.2, 1.01)
    assert not compare_sb3.target_met("sac", 0.2, 1.0) and compare_sb3.target_met("sac", 0.2, 0.99)
    overheads = {
        "dqn": {
            "env_id": "CartPole-v1",
            "num_envs": 1,
            "sb3_num_envs": 1,
            "bare_env_us": 15.0,
            "rlcourse_loop_us": 50.0,
            "sb3_loop_us": 54.0,
        },
    }
    assert "DQN's loop 50.0 against SB3's 54.0 µs per env step: no slower (target met)" in (
        compare_sb3.loop_verdict(overheads, ["dqn"])
    )
    overheads["dqn"]["rlcourse_loop_us"] = 75.6
    assert "slower (target missed)" in compare_sb3.loop_verdict(overheads, ["dqn"])


def test_the_verdict_rows_of_the_presets_table():
    fast_and_frugal = dict(
        zip(("rlcourse", "sb3"), _runs([1000, 2000, 3000], [2000, 2000, 2000]), strict=True)
    )
    fast_but_wasteful = dict(
        zip(("rlcourse", "sb3"), _runs([30_000, 30_000, 30_000], [2000, 2000, 2000]), strict=True)
    )
    summary = compare_sb3.summarize({"a2c": fast_and_frugal, "dqn": fast_but_wasteful})
    assert summary["a2c"]["wall_ratio"] == pytest.approx(2.0 / 20.0)
    assert summary["a2c"]["steps_ratio"] == 1.0 and summary["a2c"]["target_met"]
    assert summary["dqn"]["steps_ratio"] == 15.0 and not summary["dqn"]["target_met"]
    machine = {k: "x" for k in ("date", "cpu", "cores", "torch", "sb3", "sb3_contrib", "gymnasium")}
    table = compare_sb3.markdown(summary, {}, 3, machine)
    row = (
        "| A2C | CartPole-v1, last 20 training episodes >= 475 | rlcourse preset | 3/3 "
        "| 2,000 (1,000-3,000) |"
    )
    assert row in table
    assert "(target missed)" in table.split("| DQN")[1]


def test_a_library_that_never_got_there_decides_the_verdict():
    sb3_failed = dict(
        zip(("rlcourse", "sb3"), _runs([1000, 2000, 3000], [None, None, 2000]), strict=True)
    )
    ours_failed = dict(
        zip(("rlcourse", "sb3"), _runs([None, None, 3000], [2000, 2000, 2000]), strict=True)
    )
    summary = compare_sb3.summarize({"ppo": sb3_failed, "sac": ours_failed})
    assert summary["ppo"]["target_met"] and not summary["sac"]["target_met"]
    machine = {k: "x" for k in ("date", "cpu", "cores", "torch", "sb3", "sb3_contrib", "gymnasium")}
    table = compare_sb3.markdown(summary, {}, 3, machine)
    assert "| 3/3 | 2,000 (1,000-3,000) | 2.0 (1.0-3.0) | SB3 did not get there |" in table
    assert "| 1/3 | - | - | target missed |" in table
    assert "met by 1 of 2; missed by SAC." in table


def test_the_readme_block_is_replaced_and_nothing_else(tmp_path):
    start, end = compare_sb3.MARKERS
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n{start}\nold table\n{end}\nafter\n")
    compare_sb3.replace_block(readme, "new table\n")
    assert readme.read_text() == f"# Title\n\nbefore\n{start}\nnew table\n{end}\nafter\n"
    readme.write_text("no markers here\n")
    with pytest.raises(SystemExit, match="needs exactly one"):
        compare_sb3.replace_block(readme, "new table\n")
    assert readme.read_text() == "no markers here\n"


def test_the_figures_from_stored_results_show_exactly_those_results(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "figures", "--only", "sb3_comparison", "mujoco"]
        + ["--out", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "RLCOURSE_FAST": "1"},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    record = json.loads((ROOT / "benchmarks" / "results" / "sb3_comparison.json").read_text())
    rows = list(csv.reader((tmp_path / "sb3_comparison.csv").open()))[2:]
    assert len(rows) == 2 * 2 * len(record["summary"])
    for algo, lib, metric, med, _, _ in rows:
        stored = record["summary"][algo][lib][metric]["median"]
        assert (med == "" and stored is None) or math.isclose(float(med), stored)
    rows = list(csv.reader((tmp_path / "mujoco.csv").open()))[2:]
    runs = {r[2] for r in rows if not r[2].startswith("SB3")}
    assert runs == {p.name for p in (ROOT / "benchmarks" / "results" / "mujoco").iterdir()}
    assert (tmp_path / "mujoco.png").read_bytes()[:4] == b"\x89PNG"
    assert next(csv.reader((tmp_path / "mujoco.csv").open()))[0].startswith(
        "# RLCOURSE_FAST=1 python -m benchmarks figures --seeds 1"
    )


# -- the one entry point ---------------------------------------------------------------------------


def test_the_entry_point_lists_every_command_with_its_modules_summary():
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "-h"], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    modules = {p.stem for p in (ROOT / "benchmarks").glob("*.py")} - {"__init__", "__main__"}
    assert set(COMMANDS.values()) == modules - {"benchlib"}  # every module but the shared one
    for name, module in COMMANDS.items():
        source = (ROOT / "benchmarks" / f"{module}.py").read_text()
        first_line = ast.get_docstring(ast.parse(source)).splitlines()[0]
        assert re.search(rf"^  {name} +{re.escape(first_line)}$", done.stdout, re.M), name


def test_an_unknown_command_is_refused_with_the_list():
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "speed"], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 2
    assert "invalid choice: 'speed'" in done.stderr and "compare-sb3" in done.stderr


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_parses_its_own_options_under_its_name(name, capsys):
    module = importlib.import_module(f"benchmarks.{COMMANDS[name]}")
    with pytest.raises(SystemExit) as exit:
        module.main(["-h"], prog=f"{PROG} {name}")
    assert exit.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: {PROG} {name} ")


def _cited_commands() -> list[tuple[str, str]]:
    """(where, command) for every benchmark command the documentation and the modules' docstrings
    cite: ``python -m benchmarks X`` and the old ``python benchmarks/X.py`` form."""
    texts = {
        path: path.read_text(encoding="utf-8")
        for path in [ROOT / "README.md", ROOT / "hub" / "README.md", ROOT / "Makefile"]
        + sorted((ROOT / "benchmarks" / "results").glob("*.md"))
        if path.exists()
    }
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        texts[path] = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    pattern = re.compile(r"python (?:-m benchmarks [\w-]+|benchmarks/\w+\.py)")
    return [
        (str(path.relative_to(ROOT)), match)
        for path, text in texts.items()
        for match in pattern.findall(text)
    ]


def test_the_documentation_cites_the_entry_points_commands_only():
    cited = _cited_commands()
    assert len(cited) > 10  # README, Makefile and the docstrings all cite some
    for where, command in cited:
        assert command.startswith(f"{PROG} "), f"{where} cites {command!r}"
        known = {*COMMANDS, "-h"}
        assert command.removeprefix(f"{PROG} ") in known, f"{where} cites {command!r}"


def test_presets_stores_every_run_and_exits_nonzero_on_a_miss(tmp_path, monkeypatch, capsys):
    # Two short A2C runs stand in for the presets: judged by the same criterion code, the first
    # with CartPole's real threshold (475: 3,000 steps cannot reach it), then with a threshold any
    # run reaches. A miss exits 1 and is stored as such; a later pass replaces that entry only.
    from dataclasses import replace

    from benchmarks import presets
    from rlcourse.algos import a2c

    tiny = replace(a2c.PRESETS["CartPole-v1"], total_steps=3_000)
    monkeypatch.setattr(presets, "all_presets", lambda: [("a2c", "CartPole-v1", tiny)])
    with pytest.raises(SystemExit) as stop:
        presets.main(["--seeds", "2", "--out", str(tmp_path)])
    assert stop.value.code == 1 and "a2c/CartPole-v1" in capsys.readouterr().err
    record = json.loads((tmp_path / "presets.json").read_text())
    (entry,) = record["presets"].values()
    assert entry["passed"] is False and [r["seed"] for r in entry["runs"]] == [0, 1]
    assert not any(r["solved"] for r in entry["runs"]) and record["machine"]["torch"]
    assert (
        "| a2c | CartPole-v1 | last 20 training episodes 475 | 0/2 |"
        in (tmp_path / "presets.md").read_text()
    )
    monkeypatch.setitem(presets.THRESHOLDS, "CartPole-v1", 5.0)
    presets.main(["--seeds", "1", "--out", str(tmp_path)])  # no SystemExit: it passed
    (entry,) = json.loads((tmp_path / "presets.json").read_text())["presets"].values()
    (run,) = entry["runs"]
    assert entry["passed"] and run["solved"] and 0 < run["env_step"] <= 3_000


def test_presets_trains_a_variant_only_into_its_own_folder(tmp_path, monkeypatch, capsys):
    # A variant changes the named Config fields and nothing else, is judged by the same criterion
    # and records its changes; it may not write over the presets' own results, nor mix with
    # another variant's runs, and a field or value its Config refuses stops it before training.
    from dataclasses import replace

    from benchmarks import presets
    from rlcourse.algos import a2c

    preset = a2c.PRESETS["CartPole-v1"]
    monkeypatch.setattr(presets, "all_presets", lambda: [("a2c", "CartPole-v1", preset)])
    trained, run_one = [], presets.run_one
    monkeypatch.setattr(
        presets,
        "run_one",
        lambda label, env, config, seed: (
            trained.append(config) or run_one(label, env, config, seed)
        ),
    )
    monkeypatch.setitem(presets.THRESHOLDS, "CartPole-v1", 5.0)  # any run reaches it
    out = tmp_path / "variant"
    presets.main(
        ["--seeds", "1", "--out", str(out), "--set", "hidden=[16]", "--set", "total_steps=2000"]
    )
    (config,) = trained
    assert config == replace(preset, hidden=(16,), total_steps=2_000)
    record = json.loads((out / "presets.json").read_text())
    assert record["changes"] == {"hidden": [16], "total_steps": 2_000}
    (entry,) = record["presets"].values()
    assert entry["total_steps"] == 2_000 and entry["passed"]
    assert (
        "with `--set hidden=[16]` `--set total_steps=2000` changed"
        in (out / "presets.md").read_text()
    )
    assert entry["code"]["commit"]  # which preset the variant changed
    # The same variant again (its record holds lists where the changes hold tuples) may continue
    presets.main(
        ["--seeds", "1", "--out", str(out), "--set", "hidden=[16]", "--set", "total_steps=2000"]
    )
    assert len(trained) == 2
    assert presets.parse_changes(["max_grad_norm=inf", "objective=kl", "ortho_init=False"]) == {
        "max_grad_norm": float("inf"), "objective": "kl", "ortho_init": False
    }  # fmt: skip
    assert presets.typed((16, 32)) == "[16,32]" and presets.typed(False) == "False"
    refusals = [
        (
            ["--set", "hiden=[16]", "--out", str(tmp_path / "a")],
            "has no hyperparameter hiden; allowed:",
        ),
        (
            ["--set", "num_envs=0", "--out", str(tmp_path / "b")],
            "the a2c preset for CartPole-v1: num_envs=0 is not allowed",
        ),
        (["--set", "hidden"], "write FIELD=VALUE"),
        (["--set", "seed=3", "--out", str(tmp_path / "c")], "keeps its preset's seed"),
        (["--set", "hidden=[8]", "--set", "hidden=[9]"], "hidden is given twice"),
        (
            ["--algo", "a2c", "--env", "CartPol-v1", "--out", str(tmp_path / "d")],
            "no preset matches --algo a2c --env CartPol-v1; there are presets for a2c: CartPole-v1\n",
        ),
        (["--set", "hidden=[32]"], "give them their own --out"),
        (["--set", "hidden=[32]", "--out", str(out)], "holds runs with other changes"),
        (["--out", str(out)], "holds runs with other changes"),
    ]
    for argv, words in refusals:
        with pytest.raises(SystemExit) as stop:
            presets.main(argv)
        assert stop.value.code == 2 and words in capsys.readouterr().err, argv
    assert len(trained) == 2 and not any((tmp_path / x).exists() for x in "abcd")


@pytest.mark.parametrize(
    "block, stored",
    [("sb3-comparison", "sb3_comparison.md"), ("equal-settings", "equal_settings.md"),
     ("anatomy", "anatomy.md")],
)  # fmt: skip
def test_the_readme_speed_tables_are_the_stored_ones(block, stored):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = f"<!-- {block}:start -->\n", f"<!-- {block}:end -->"
    assert readme.count(start) == readme.count(end) == 1
    table = readme.split(start)[1].split(end)[0]
    assert table == (ROOT / "benchmarks" / "results" / stored).read_text(encoding="utf-8")


def test_the_readme_mujoco_table_is_the_stored_runs():
    # Every number of the README's MuJoCo table comes from benchmarks/results/mujoco: the greedy
    # returns at 50k..250k steps, the budget and where a stopped run ended.
    runs = ROOT / "benchmarks" / "results" / "mujoco"
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\w+)-v5 \| (.+?) \| (.+?) \| (.+?) \| .*\|$", text, re.M)
    folders = {
        ("HalfCheetah", "rlcourse TD3"): "td3-HalfCheetah-v5-seed0",
        ("HalfCheetah", "rlcourse SAC"): "sac-HalfCheetah-v5-seed0",
        ("Hopper", "rlcourse TD3"): "td3-Hopper-v5-seed0",
        ("Hopper", "Stable-Baselines3 TD3, trained here alike"): "sb3-td3-Hopper-v5-seed0",
        ("Hopper", "rlcourse SAC"): "sac-Hopper-v5-seed0",
        ("InvertedPendulum", "rlcourse PPO"): "ppo-InvertedPendulum-v5-seed0",
    }
    assert {(task, algo) for task, algo, _, _ in rows} == set(folders)
    for task, algo, returns, end in rows:
        folder = runs / folders[task, algo]
        with open(folder / "evaluations.csv") as f:
            evals = {int(float(r["env_step"])): float(r["mean_return"]) for r in csv.DictReader(f)}
        config = json.loads((folder / "config.json").read_text())
        budget, stopped = config["config"]["total_steps"], config.get("stopped_at")
        assert end.startswith(f"{budget // 1000}k; ")
        if stopped:
            assert f"stopped at {stopped // 1000}k" in end
        else:
            assert "ran to the end" in end and max(evals) >= budget - config["config"]["eval_every"]
        if task == "InvertedPendulum":
            first = min(k for k, v in evals.items() if v >= 1000)
            assert all(v >= 1000 for k, v in evals.items() if k >= first)
            assert f"from {round(first, -4) // 1000}k steps on" in returns
            continue
        for k, cell in zip(range(50_000, 250_001, 50_000), returns.split(" / "), strict=True):
            assert cell == ("-" if k not in evals else f"{evals[k]:,.0f}"), (folder.name, k)


@pytest.mark.parametrize(
    "algo, base, n", [("dqn", 1_024, 512), ("ddpg", 300, 20), ("td3", 300, 20), ("sac", 300, 20)]
)
def test_the_floors_arithmetic_is_what_torch_counts_in_the_real_update(algo, base, n):
    # equal-settings' floor counts the matrix products of an update from the layer sizes; PyTorch's
    # FlopCounterMode counts those the real training loop runs (every env step after the warm-up,
    # by difference, so the warm-up and the model's construction cancel out).
    import warnings

    from torch.utils.flop_counter import FlopCounterMode

    from benchmarks import equal_settings
    from rlcourse.algos import ALGORITHMS

    setting, module = equal_settings.SETTINGS[algo], ALGORITHMS[algo]
    starts = base - 256 if algo == "dqn" else base  # DQN: a training phase every 256 env steps
    config = {**setting.ours, "eval_every": 0, "learning_starts": starts}

    def counted(total: int) -> int:
        with FlopCounterMode(display=False) as flops, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the base run of DDPG/TD3/SAC makes no update
            module.train(setting.env_id, module.Config(**config, total_steps=total), progress=False)
        return flops.get_total_flops()

    per_step = (counted(base + n) - counted(base)) / n
    assert per_step == pytest.approx(equal_settings.update_flops(algo), rel=0.01)


@pytest.mark.parametrize("algo, total", [("ppo", 512), ("sac", 300), ("trpo", 1_100)])
def test_the_floor_records_every_product_that_torch_counts(algo, total):
    # equal-settings' floor replays the matrix products recorded from the training loop; they must
    # be all of them: their FLOPs equal what PyTorch's FlopCounterMode counts in the same run (it
    # leaves out vector products, mv and dot, which TRPO's conjugate gradient runs).
    import warnings

    from torch.utils.flop_counter import FlopCounterMode

    from benchmarks import equal_settings
    from rlcourse.algos import ALGORITHMS

    setting, module = equal_settings.SETTINGS[algo], ALGORITHMS[algo]
    config = {**setting.ours, "eval_every": 0, "total_steps": total}
    if algo == "sac":
        config["learning_starts"] = 200
    with (
        FlopCounterMode(display=False) as flops,
        equal_settings.RecordProducts() as record,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        module.train(setting.env_id, module.Config(**config), progress=False)
    recorded = sum(
        equal_settings.product_flops(k) * c
        for k, c in record.counts.items()
        if k[0] in ("mm", "addmm", "bmm", "baddbmm")
    )
    assert recorded == flops.get_total_flops() > 0
    one = next(iter(record.counts))
    assert equal_settings.products_us(collections.Counter({one: 3}), repeats=5) > 0


def test_the_equal_settings_table_reads_the_stored_record(tmp_path):
    from benchmarks import equal_settings

    runs = {
        "rlcourse": [{"seed": 0, "steps": 4_000, "seconds": 20.0}],
        "sb3": [{"seed": 0, "steps": None, "seconds": None}],
    }
    record = {
        "machine": {"date": "d", "cpu": "c", "cores": 2, "torch": "t", "sb3": "s",
                    "sb3_contrib": "sc", "gymnasium": "g"},
        "seeds": [0],
        "gemm_gflops": 50.0,
        "algorithms": {"sac": {
            "floor": {"bare_env_us": 20.0, "arithmetic_us": 5_000.0, "floor_us": 5_020.0},
            "cost_us": {"rlcourse": [6_000.0, 6_500.0], "sb3": [12_000.0, 11_000.0]},
            "runs": runs,
        }},
    }  # fmt: skip
    table = equal_settings.markdown(record)
    row = next(line for line in table.splitlines() if line.startswith("| SAC |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2:] == [
        "5020 (env 20 + products 5000)", "6000", "11000", "0.55", "1.20", "4,000 / -",
        "20.0 / -",
    ]  # fmt: skip
    readme = tmp_path / "README.md"
    readme.write_text(f"a\n{equal_settings.MARKERS[0]}\nold\n{equal_settings.MARKERS[1]}\nb\n")
    compare_sb3.replace_block(readme, table, equal_settings.MARKERS)
    assert (
        readme.read_text()
        == f"a\n{equal_settings.MARKERS[0]}\n{table}{equal_settings.MARKERS[1]}\nb\n"
    )


def test_every_learning_test_has_stored_seeds_and_a_bar_that_an_untrained_policy_misses():
    # benchmarks/learning_tests.py: each configuration's bar (BARS) is what its stored seeds (0-5)
    # allow, at most: a re-run with worse results fails here instead of lowering a bar. Every bar
    # asks for at least a fifth of the way from random play to solved; an untrained policy misses.
    from benchmarks import learning_tests
    from rlcourse.algos import ALGORITHMS

    record = learning_tests.stored()
    assert set(record["tests"]) == set(learning_tests.CONFIGS) and record["seeds"] == list(range(6))
    assert set(learning_tests.BARS) == set(learning_tests.CONFIGS)
    for name, entry in record["tests"].items():
        assert len(entry["scores"]) == 6, name
        assert 0.2 <= learning_tests.BARS[name] <= learning_tests.stored_bar(name) <= 1.0, name
    assert learning_tests.lowest([0.9, 0.1, 0.8, 0.5, 0.6, 0.0], 3) == 0.5  # medians 0.8, 0.5
    assert learning_tests.lowest([0.9, 0.1, 0.8], 1) == 0.1
    algo, env_id, _ = learning_tests.CONFIGS["ppo-clip"]
    untrained = ALGORITHMS[algo].make_agent(ALGORITHMS[algo].Config(), env_id)
    with pytest.raises(AssertionError, match="ppo-clip: greedy mean returns .* the bar is 0.70"):
        learning_tests.assert_learned("ppo-clip", untrained)


@pytest.mark.parametrize("algo, total", [("ppo", 512), ("dqn", 1_300), ("sac", 300)])
def test_the_anatomy_records_every_operation_and_replays_each(algo, total):
    # anatomy replays every ATen operation of rlcourse's loop alone; every one must be made again
    # from its record, and its matrix products must be exactly those the floor records. The
    # profiler times the same operations in training: products among them, all within the run.
    import time
    import warnings

    from benchmarks import anatomy, equal_settings
    from rlcourse.algos import ALGORITHMS

    setting, module = equal_settings.SETTINGS[algo], ALGORITHMS[algo]
    config = {**setting.ours, "eval_every": 0, "total_steps": total}
    if algo == "sac":
        config["learning_starts"] = 200
    with (
        anatomy.RecordOps() as ops,
        equal_settings.RecordProducts() as products,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        module.train(setting.env_id, module.Config(**config), progress=False)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        every, products_us = anatomy.profiled_ops_us(
            lambda: module.train(setting.env_id, module.Config(**config), progress=False)
        )
    wall_us = 1e6 * (time.perf_counter() - start)
    names = collections.Counter()
    for (name, spec), count in ops.counts.items():
        names[anatomy.short_name(name)] += count
        assert anatomy.replay_us(ops.funcs[name], spec, repeats=1) > 0, name
    assert 0 < products_us < every < wall_us
    for op in equal_settings.RecordProducts.OPS:
        assert names[op] == sum(c for k, c in products.counts.items() if k[0] == op), op
    assert names["addmm"] > 0 and names["mm"] > 0  # forward and backward were seen


def test_an_operand_is_made_again_as_recorded():
    import torch

    from benchmarks import anatomy

    x = torch.randn(6, 4).t()[1:]  # strided, offset view
    spec = anatomy.operand_spec([x, torch.arange(3), True, 2.5, None, torch.float32])
    made = anatomy.make_operand(spec)
    assert made[0].shape == x.shape and made[0].stride() == x.stride()
    assert made[0].dtype == torch.float32 and bool(((made[0] >= 0.5) & (made[0] < 1.5)).all())
    assert made[1].dtype == torch.int64 and made[1].tolist() == [0, 0, 0]  # a valid index
    assert made[2:] == [True, 2.5, None, torch.float32]
    with pytest.raises(anatomy.Unreplayable):
        anatomy.make_operand(anatomy.operand_spec(object()))


def test_the_anatomy_table_reads_the_stored_record():
    from benchmarks import anatomy

    record = {
        "machine": {"date": "d", "cpu": "c", "cores": 2, "torch": "t", "sb3": "s",
                    "sb3_contrib": "sc"},
        "algorithms": {"dqn": {
            "gemm_gflops": 30.0, "bare_cartpole_us": 60.0,
            "cost_us": {"rlcourse": 600.0, "sb3": 900.0}, "bare_env_us": 15.0,
            "products_us": 200.0, "other_ops_us": 250.0, "rest_us": 135.0,
            "ops_per_step": {"rlcourse": 40.0, "sb3": 55.5}, "products_per_step": 5.0,
            "slowest_ops_us": {"addmm": 120.0, "mm": 80.0, "_foreach_mul_": 30.0},
        }},
    }  # fmt: skip

    def cells() -> list[str]:
        table = anatomy.markdown(record).splitlines()
        row = next(line for line in table if line.startswith("| DQN"))
        return [c.strip() for c in row.strip("|").split("|")][1:]

    # a row stored before the operations were timed in training shows "-" there
    assert cells() == [
        "600", "900", "15", "200 (5.0)", "250 (35.0)", "135", "-", "-", "40.0 / 55.5",
        "addmm 120, mm 80, _foreach_mul_ 30",
    ]  # fmt: skip
    record["algorithms"]["dqn"].update(
        products_in_training_us=230.0, other_ops_in_training_us=500.0
    )
    assert cells()[6:8] == ["230 (1.15)", "500 (2.00)"]
    # the header says how the costs were measured: one record of the old way, two in fresh processes
    assert "one measurement per library, in the process that recorded" in anatomy.markdown(record)
    record["algorithms"]["dqn"]["cost_measurements_us"] = {"rlcourse": [600.0, 640.0]}
    assert "the faster of two measurements per library" in anatomy.markdown(record)


def test_the_anatomy_measures_in_a_fresh_process(monkeypatch):
    # each stage and each cost runs in its own interpreter, its result read back as JSON; a stage
    # that fails there says which and shows the error. The child would start with two threads here,
    # so only the child's own setting gives one.
    import torch

    monkeypatch.setenv("OMP_NUM_THREADS", "2")

    from benchmarks import anatomy

    assert anatomy.in_fresh_process(anatomy.short_name, "aten.addmm.default") == "addmm"
    assert anatomy.in_fresh_process(torch.get_num_threads) == 1
    failed = r"(?s)benchmarks.anatomy.short_name\(\) failed.*TypeError"
    with pytest.raises(RuntimeError, match=failed):
        anatomy.in_fresh_process(anatomy.short_name)


def test_the_anatomy_table_without_a_stored_record_says_so(tmp_path, capsys):
    from benchmarks import anatomy

    with pytest.raises(SystemExit) as exit:
        anatomy.main(["--table-only", "--out", str(tmp_path)], prog="anatomy")
    assert exit.value.code == 2
    assert f"{tmp_path / 'anatomy.json'} holds none" in capsys.readouterr().err


def test_before_after_alternates_so_that_a_drift_favours_neither_version():
    from benchmarks import before_after

    clock = iter(range(100))  # a machine that gets slower with every measurement
    calls = []

    def measure(version, algo):
        calls.append((version, algo))
        return 100.0 + next(clock)

    runs = before_after.alternate(["ppo", "dqn"], 4, measure)
    ppo_order = [version for version, algo in calls if algo == "ppo"]
    assert ppo_order == ["before", "after", "after", "before"] * 2
    summary = before_after.summarize(runs)
    # The same code on both sides: under a steady drift, alternating gives equal medians
    assert summary["ppo"]["before"] == summary["ppo"]["after"]
    assert summary["dqn"]["after_over_before"] == 1.0
    assert [r["version"] for r in runs["dqn"]] == ppo_order


def test_before_after_names_the_version_whose_measurement_failed(tmp_path):
    from benchmarks import before_after

    # A tree without rlcourse: the fresh process imports the installed one instead, which the
    # measurement refuses, and the message says which version and algorithm failed
    with pytest.raises(RuntimeError, match=f"measuring ppo in {tmp_path} failed"):
        before_after.measure_in(tmp_path, "ppo")


def _record_measure_commands(monkeypatch, before_after, stdout: str) -> list:
    """Replace the fresh process by one that prints ``stdout``; return the list of the arguments
    each call passed after ``python -c``."""
    seen = []

    def run(command, **kwargs):
        seen.append(command[2:])
        return subprocess.CompletedProcess(command, 0, stdout=stdout + "\n", stderr="")

    monkeypatch.setattr(before_after.subprocess, "run", run)
    return seen


def test_before_after_times_a_preset_in_a_fresh_process(monkeypatch):
    """--preset trains the preset of the algorithm's environment (PPO's for CartPole-v1, 15 epochs)
    for the lengths given, and the difference is microseconds per env step, with a rollout of 1,024
    steps and its 60 gradient steps in it."""
    from benchmarks import before_after
    from benchmarks.equal_settings import SETTINGS

    short = dataclasses.replace(SETTINGS["ppo"], base=1_024, n=1_024)
    monkeypatch.setitem(before_after.SETTINGS, "ppo", short)
    us = before_after.measure_in(before_after.REPO, "ppo", preset=True)
    # More than the bare loop (about 50 us per step) and less than a second per step
    assert 60 < us < 1e6

    # Both versions get the lengths of this command's SETTINGS and the preset's environment
    seen = _record_measure_commands(monkeypatch, before_after, "123.0")
    assert before_after.measure_in(Path("/elsewhere"), "ppo", preset=True) == 123.0
    assert seen == [
        [before_after.MEASURE_PRESET, "/elsewhere", "ppo", "CartPole-v1", "1024", "1024"]
    ]


def test_before_after_times_the_loop_without_learning_as_compare_sb3_does(monkeypatch):
    """--loop runs compare-sb3's own measurement of DQN's loop (random actions, no gradient step),
    in a fresh process that imports the tree's code, over the given number of env steps."""
    from benchmarks import before_after

    monkeypatch.setattr(before_after, "LOOP_STEPS", 3_000)
    us = before_after.measure_in(before_after.REPO, "dqn", loop=True)
    # A CartPole-v1 step costs 15-75 us on this machine; the loop adds to it, far below a millisecond
    # (one run alone in a fresh process measured 1.2 ms here: the fastest of three leaves out the
    # process's one-time costs)
    assert 15 < us < 1_000

    seen = _record_measure_commands(monkeypatch, before_after, "99.5")
    assert before_after.measure_in(Path("/elsewhere"), "dqn", loop=True) == 99.5
    assert seen == [[before_after.MEASURE_LOOP, "/elsewhere", "dqn", "3000"]]


# -- a long benchmark run continued in another sitting (--resume)


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git (the code version is git's)")
def test_the_code_version_is_the_measured_code_and_sees_uncommitted_changes(tmp_path):
    from benchmarks.benchlib import code_version

    (tmp_path / "rlcourse").mkdir()
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "rlcourse" / "algo.py").write_text("x = 1\n")
    (tmp_path / "benchmarks" / "results" / "runs.json").write_text("{}\n")
    (tmp_path / "notes.md").write_text("a\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "first")
    first = code_version(tmp_path)
    assert first["clean"] and len(first["fingerprint"]) == 16 and len(first["commit"]) == 40
    # What a run writes, and files outside the measured code, change nothing
    (tmp_path / "benchmarks" / "results" / "runs.json").write_text('{"a": 1}\n')
    (tmp_path / "notes.md").write_text("b\n")
    _git(tmp_path, "commit", "-q", "-am", "results and notes")
    (tmp_path / "benchmarks" / "results" / "more.json").write_text("{}\n")
    again = code_version(tmp_path)
    assert again["clean"] and again["fingerprint"] == first["fingerprint"]
    assert again["commit"] != first["commit"]
    # The code: an uncommitted change, or a new file, is not clean; committed, it is other code
    (tmp_path / "rlcourse" / "algo.py").write_text("x = 2\n")
    assert not code_version(tmp_path)["clean"]
    _git(tmp_path, "commit", "-q", "-am", "change")
    changed = code_version(tmp_path)
    assert changed["clean"] and changed["fingerprint"] != first["fingerprint"]
    (tmp_path / "rlcourse" / "new.py").write_text("")
    assert not code_version(tmp_path)["clean"]
    assert code_version(tmp_path / "rlcourse" / "missing") == {
        "commit": None, "fingerprint": None, "clean": False
    }  # fmt: skip


MACHINE = {"date": "2026-12-06", "cpu": "c", "cores": 2, "python": "3.11", "torch": "t",
           "gymnasium": "g", "numpy": "n", "sb3": "s", "sb3_contrib": "sc",
           "gemm_gflops": 33.0}  # fmt: skip
CODE = {"commit": "a" * 40, "fingerprint": "f" * 16, "clean": True}


def test_a_run_is_continued_only_with_the_same_committed_code_and_machine():
    from benchmarks.benchlib import cannot_resume, dates_text

    stored = {"machine": MACHINE, "code": CODE}
    assert cannot_resume(stored, {**MACHINE, "date": "2026-12-07"}, CODE) is None
    assert "uncommitted" in cannot_resume(stored, MACHINE, {**CODE, "clean": False})
    assert "other code" in cannot_resume(stored, MACHINE, {**CODE, "fingerprint": "e" * 16})
    assert "other code" in cannot_resume({"machine": MACHINE}, MACHINE, CODE)
    # A first sitting on uncommitted changes: its fingerprint does not name what it measured
    dirty = {"machine": MACHINE, "code": {**CODE, "clean": False}}
    assert "measured uncommitted changes" in cannot_resume(dirty, MACHINE, CODE)
    assert "numpy (n, here m)" in cannot_resume(stored, {**MACHINE, "numpy": "m"}, CODE)
    why = cannot_resume(stored, {**MACHINE, "cpu": "d", "torch": "u"}, CODE)
    assert why == "it ran with another cpu (c, here d), torch (t, here u)"
    # One processor name, three times the speed: another machine; a few percent: the same one
    assert "another speed" in cannot_resume(stored, {**MACHINE, "gemm_gflops": 100.7}, CODE)
    assert cannot_resume(stored, {**MACHINE, "gemm_gflops": 34.2}, CODE) is None
    unrated = {"machine": {**MACHINE, "gemm_gflops": None}, "code": CODE}
    assert "not recorded" in cannot_resume(unrated, MACHINE, CODE)
    assert dates_text(["2026-12-06", "2026-12-06"]) == "2026-12-06"
    assert dates_text(["2026-12-07", "2026-12-06", "2026-12-08"]) == (
        "2026-12-06, 2026-12-07 and 2026-12-08"
    )


def _fake_comparison(monkeypatch, calls: list, crash_at: str | None = None):
    """compare-sb3 with instant stand-ins for the runs and loops; each records its call."""

    def case(algo):
        def run(lib):
            def go(seed):
                if algo == crash_at:
                    raise KeyboardInterrupt  # the sitting ends here
                calls.append((algo, lib, seed))
                return {"steps": 1_000 if lib == "rlcourse" else 3_000, "seconds": 1.0}

            return go

        return compare_sb3.Case("CartPole-v1", "c", run("rlcourse"), run("sb3"))

    monkeypatch.setattr(compare_sb3, "CASES", {a: case(a) for a in ("a2c", "ppo", "trpo")})
    loop = {"env_id": "CartPole-v1", "num_envs": 8, "sb3_num_envs": 8, "bare_env_us": 1.0,
            "rlcourse_loop_us": 2.0, "sb3_loop_us": 3.0}  # fmt: skip
    monkeypatch.setattr(compare_sb3, "overhead", lambda algo, steps: calls.append(algo) or loop)
    monkeypatch.setattr(compare_sb3, "machine_info", lambda: dict(MACHINE))
    monkeypatch.setattr(compare_sb3, "gemm_rate", lambda batch, width: 33.0e9)
    monkeypatch.setattr(compare_sb3, "code_version", lambda: dict(CODE))


def test_compare_sb3_resumed_keeps_what_the_interrupted_run_measured(tmp_path, monkeypatch):
    calls: list = []
    _fake_comparison(monkeypatch, calls, crash_at="trpo")
    argv = ["--seeds", "2", "--out", str(tmp_path)]
    with pytest.raises(KeyboardInterrupt):
        compare_sb3.main(argv)
    assert not (tmp_path / "sb3_comparison.json").exists()
    partial = json.loads((tmp_path / "sb3_comparison.partial.json").read_text())
    assert list(partial["runs"]) == list(partial["overhead"]) == ["a2c", "ppo"]
    assert partial["code"] == CODE and len(calls) == 2 * (2 * 2 + 1)

    # Another sitting, another day, the same code: only TRPO is measured
    calls.clear()
    _fake_comparison(monkeypatch, calls)
    monkeypatch.setitem(MACHINE, "date", "2026-12-07")
    compare_sb3.main([*argv, "--resume"])
    assert calls == [("trpo", "rlcourse", 0), ("trpo", "sb3", 0), ("trpo", "sb3", 1),
                     ("trpo", "rlcourse", 1), "trpo"]  # fmt: skip
    record = json.loads((tmp_path / "sb3_comparison.json").read_text())
    assert list(record["runs"]) == ["a2c", "ppo", "trpo"] and record["summary"]["ppo"]
    assert record["dates"] == ["2026-12-06", "2026-12-07"]
    assert (
        "Measured on 2026-12-06 and 2026-12-07 (one run in sittings, resumed with the same code) "
        "on c (2 cores; one-thread GEMM rate 33.0 GFLOP/s at 256 x 256 x 256)"
    ) in (tmp_path / "sb3_comparison.md").read_text()
    assert not (tmp_path / "sb3_comparison.partial.json").exists()

    # Resuming a finished run, on a third day, with one algorithm asked for: nothing measured,
    # no date added, every stored algorithm still in the table
    calls.clear()
    monkeypatch.setitem(MACHINE, "date", "2026-12-08")
    compare_sb3.main([*argv, "--resume", "--algo", "ppo"])
    assert calls == []
    record = json.loads((tmp_path / "sb3_comparison.json").read_text())
    assert list(record["runs"]) == ["a2c", "ppo", "trpo"]
    assert record["dates"] == ["2026-12-06", "2026-12-07"]
    # Other code, other seeds, another loop length, none stored, a dirty tree: refused
    for args, code in (
        (argv, {**CODE, "fingerprint": "e" * 16}),
        (["--seeds", "3", "--out", str(tmp_path)], CODE),
        ([*argv, "--overhead-steps", "30000"], CODE),
        (["--out", str(tmp_path / "empty")], CODE),
        (argv, {**CODE, "clean": False}),
    ):
        monkeypatch.setattr(compare_sb3, "code_version", lambda code=code: dict(code))
        with pytest.raises(SystemExit):
            compare_sb3.main([*args, "--resume"])
    assert calls == []


def test_equal_settings_resumed_measures_only_the_rows_this_code_has_not(tmp_path, monkeypatch):
    from benchmarks import equal_settings

    measured: list = []
    floor = {"bare_env_us": 20.0, "arithmetic_us": 80.0, "floor_us": 100.0}
    monkeypatch.setattr(equal_settings, "floor_us", lambda algo: measured.append(algo) or floor)
    monkeypatch.setattr(equal_settings, "step_cost_us", lambda lib, algo: 150.0)
    monkeypatch.setattr(
        equal_settings, "criterion_run", lambda lib, algo, seed: {"steps": 10, "seconds": 1.0}
    )
    monkeypatch.setattr(equal_settings, "gemm_rate", lambda batch, width: 33.0e9)
    monkeypatch.setattr(equal_settings, "machine_info", lambda: dict(MACHINE))
    old = {**CODE, "commit": "b" * 40, "fingerprint": "0" * 16}
    argv = ["--seeds", "1", "--out", str(tmp_path), "--algo", "a2c", "--algo", "ppo"]
    monkeypatch.setattr(equal_settings, "code_version", lambda: dict(old))
    equal_settings.main([*argv[:4], "--algo", "a2c"])
    monkeypatch.setattr(equal_settings, "code_version", lambda: dict(CODE))
    equal_settings.main([*argv[:4], "--algo", "ppo"])
    table = (tmp_path / "equal_settings.md").read_text()
    assert "Not one run: the rows measured 2 versions of the code: A2C (commit bbbbbbb" in table
    measured.clear()
    equal_settings.main([*argv, "--resume"])  # PPO measured this code: kept; A2C measured again
    assert measured == ["a2c"]
    record = json.loads((tmp_path / "equal_settings.json").read_text())
    assert {r["code"]["fingerprint"] for r in record["algorithms"].values()} == {"f" * 16}
    assert "Not one run" not in (tmp_path / "equal_settings.md").read_text()
    # A row with fewer cost measurements than asked for is measured again
    measured.clear()
    equal_settings.main([*argv, "--resume", "--repeats", "3"])
    assert measured == ["a2c", "ppo"]
    monkeypatch.setattr(equal_settings, "code_version", lambda: {**CODE, "clean": False})
    with pytest.raises(SystemExit):
        equal_settings.main([*argv, "--resume"])

    # Each row is checked on its own: one measured on uncommitted code or with other seeds is
    # measured again, the others kept
    monkeypatch.setattr(equal_settings, "code_version", lambda: dict(CODE))

    def edit(change):
        record = json.loads((tmp_path / "equal_settings.json").read_text())
        change(record["algorithms"])
        (tmp_path / "equal_settings.json").write_text(json.dumps(record))

    edit(lambda rows: rows["ppo"]["code"].update(clean=False))
    measured.clear()
    equal_settings.main([*argv, "--resume", "--repeats", "3", "--algo", "trpo"])
    assert measured == ["ppo", "trpo"]
    edit(lambda rows: rows["a2c"].update(seeds=[0, 1, 2]))
    measured.clear()
    equal_settings.main([*argv, "--resume", "--repeats", "3", "--algo", "trpo"])
    assert measured == ["a2c"]
    # A row from another machine, told apart by its versions or by its own GEMM rate (the file's
    # is the last sitting's): the table would mix two machines under one header, so refused
    for change in (
        lambda rows: rows["trpo"]["machine"].update(torch="other"),
        lambda rows: rows["trpo"].update(gemm_gflops=100.0),
    ):
        edit(change)
        measured.clear()
        with pytest.raises(SystemExit):
            equal_settings.main([*argv, "--resume", "--repeats", "3"])
        assert measured == []
        equal_settings.main([*argv, "--repeats", "3", "--algo", "trpo"])  # measured afresh
    # ... but a row of other code, measured again anyway, may come from anywhere (here a file
    # from before rows recorded NumPy's version); a sitting on another day says so in the header
    edit(lambda rows: rows["a2c"].update(code={**old}, machine={"cpu": "other"}))
    monkeypatch.setitem(MACHINE, "date", "2026-12-07")
    measured.clear()
    equal_settings.main([*argv, "--resume", "--repeats", "3"])
    assert measured == ["a2c"]
    table = (tmp_path / "equal_settings.md").read_text()
    assert table.startswith("Measured on 2026-12-06 and 2026-12-07 (each row within one sitting)")
    # A row measured on uncommitted changes is named in the table
    rows = json.loads((tmp_path / "equal_settings.json").read_text())["algorithms"]
    rows["ppo"]["code"]["clean"] = False
    assert "PPO (commit aaaaaaa with uncommitted changes" in equal_settings.versions_text(rows)
    assert equal_settings.versions_text({"ppo": rows["ppo"]}).startswith(
        "The rows measured uncommitted code"
    )


def test_compare_sb3_never_overwrites_an_interrupted_run_and_resumes_equal_settings_only_if_begun(
    tmp_path, monkeypatch
):
    from benchmarks import equal_settings

    calls: list = []
    _fake_comparison(monkeypatch, calls, crash_at="ppo")
    argv = ["--seeds", "1", "--out", str(tmp_path)]
    with pytest.raises(KeyboardInterrupt):
        compare_sb3.main(argv)
    partial = (tmp_path / "sb3_comparison.partial.json").read_text()
    (tmp_path / "sb3_comparison.json").write_text(json.dumps({"runs": {}, "seeds": 1}))
    for more in ([], ["--overhead-only"]):  # either would write over the stored A2C
        with pytest.raises(SystemExit):
            compare_sb3.main([*argv, *more])
    assert (tmp_path / "sb3_comparison.partial.json").read_text() == partial

    # Resumed with one other algorithm asked for, and --equal-settings before its rows began:
    # A2C stays in the table, equal-settings starts afresh; every file is written whole
    (tmp_path / "sb3_comparison.json").unlink()
    _fake_comparison(monkeypatch, calls)
    given: list = []
    monkeypatch.setattr(equal_settings, "main", given.append)
    whole: list = []
    atomic = compare_sb3.write_atomic
    monkeypatch.setattr(compare_sb3, "write_atomic", lambda p, t: whole.append(p) or atomic(p, t))
    compare_sb3.main([*argv, "--resume", "--algo", "trpo", "--equal-settings"])
    record = json.loads((tmp_path / "sb3_comparison.json").read_text())
    assert list(record["runs"]) == ["a2c", "trpo"] and "--resume" not in given[-1]
    assert {p.name for p in tmp_path.iterdir()} == {"sb3_comparison.json", "sb3_comparison.md"}
    assert {p.name for p in whole} == {  # the partial record after TRPO, then the finished one
        "sb3_comparison.partial.json",
        "sb3_comparison.json",
        "sb3_comparison.md",
    }
    # Its rows begun by other code: afresh too; by this code: resumed
    for fingerprint, resumes in (("0" * 16, False), (CODE["fingerprint"], True)):
        rows = {"a2c": {"code": {**CODE, "fingerprint": fingerprint}}}
        (tmp_path / "equal_settings.json").write_text(json.dumps({"algorithms": rows}))
        compare_sb3.main([*argv, "--resume", "--equal-settings"])
        assert ("--resume" in given[-1]) == resumes


def test_loops_measured_again_by_other_code_are_named_so(tmp_path, monkeypatch):
    calls: list = []
    _fake_comparison(monkeypatch, calls)
    argv = ["--seeds", "1", "--out", str(tmp_path)]
    compare_sb3.main(argv)
    compare_sb3.main([*argv, "--overhead-only"])  # the same code: nothing to say
    assert "with other code" not in (tmp_path / "sb3_comparison.md").read_text()
    newer = {**CODE, "commit": "9" * 40, "fingerprint": "9" * 16}
    monkeypatch.setattr(compare_sb3, "code_version", lambda: dict(newer))
    compare_sb3.main([*argv, "--overhead-only"])
    record = json.loads((tmp_path / "sb3_comparison.json").read_text())
    assert record["code"] == CODE and record["overhead_code"] == newer
    table = (tmp_path / "sb3_comparison.md").read_text()
    assert "with other code than the runs (commit 9999999)" in table


def test_the_machine_record_holds_every_key_that_a_resumed_run_compares():
    from benchmarks.benchlib import MACHINE_KEYS, machine_info

    recorded = machine_info(sb3=False)
    assert set(MACHINE_KEYS) - {"sb3", "sb3_contrib"} <= set(recorded)
    assert recorded["numpy"] == importlib.metadata.version("numpy")


def test_a_stored_file_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    from benchmarks.benchlib import write_atomic

    path = tmp_path / "run.json"
    write_atomic(path, "earlier")
    real = Path.write_text

    def full_disk(self, text, *args, **kwargs):
        real(self, text[:3], *args, **kwargs)
        raise OSError("No space left on device")

    monkeypatch.setattr(Path, "write_text", full_disk)
    with pytest.raises(OSError):
        write_atomic(path, "later, and longer")
    monkeypatch.undo()
    assert path.read_text() == "earlier"
    write_atomic(path, "later")
    assert path.read_text() == "later"
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # the half-written one replaced


def test_the_last_layer_table_is_the_stored_record_and_the_ways_agree():
    import json

    import torch

    from benchmarks import last_layer

    stored = ROOT / "benchmarks" / "results"
    record = json.loads((stored / "last_layer.json").read_text(encoding="utf-8"))
    assert (stored / "last_layer.md").read_text(encoding="utf-8") == last_layer.markdown(record)
    x, w, b = torch.randn(2, 5, 3), torch.randn(2, 3, 1), torch.randn(2, 1, 1)
    expected = torch.stack([x[i] @ w[i] + b[i] for i in range(2)])
    for way in last_layer.WAYS.values():
        torch.testing.assert_close(way(x, w, b), expected)
