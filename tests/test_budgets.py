"""rlcourse.budgets: every budget is read somewhere, the fast one is never larger than the full
one, the presets' budgets are the presets', the notebooks keep no budget of their own, and
RLCOURSE_FAST is parsed strictly."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rlcourse import budgets
from rlcourse.budgets import BUDGETS, Budget, budget, fast_mode, notebook_budgets

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("0[1-8]_*.ipynb"))
# Where budgets are read: the notebooks, the widgets, the figures and the other benchmarks, the
# tests, and (once their PRESETS read them) the algorithms.
READERS = [
    *NOTEBOOKS,
    *(ROOT / "rlcourse" / "widgets").glob("*.py"),
    *(ROOT / "rlcourse" / "algos").glob("*.py"),
    *(ROOT / "benchmarks").glob("*.py"),
    *(p for p in (ROOT / "tests").glob("*.py") if p.name != "test_budgets.py"),
]


def _code(path: Path) -> str:
    """A notebook's code cells, or a Python file, as text."""
    if path.suffix != ".ipynb":
        return path.read_text(encoding="utf-8")
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def _notebook(number: str) -> Path:
    (path,) = (p for p in NOTEBOOKS if p.name.startswith(f"{number}_"))
    return path


def _used(name: str, sources: dict[Path, str]) -> bool:
    """``name`` is read: as a string literal, through an f-string such as ``f"figures/{algo}"``
    (a ``{...}`` stands for one name part), or, for ``"NN/x"``, as ``BUDGETS.x`` in notebook NN."""
    number, _, short = name.partition("/")
    if number.isdigit() and short.isidentifier():
        return f"BUDGETS.{short}" in sources[_notebook(number)]
    for text in sources.values():
        if f'"{name}"' in text:
            return True
        for template in re.findall(r'\bf"([^"{]*/[^"]*\{[^"]*)"', text):
            pattern = re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(template))
            if re.fullmatch(pattern, name):
                return True
    return False


def test_every_budget_is_read_somewhere():
    sources = {path: _code(path) for path in READERS}
    unused = [n for n in BUDGETS if not _used(n, sources)]
    assert not unused, f"budgets nothing reads: {unused}"
    # make_figures reads figures/<algo> for each algorithm of its FIRST table
    figures = _code(ROOT / "benchmarks" / "make_figures.py")
    first = re.findall(
        r'^\s+"(\w+)": "', re.search(r"^FIRST = \{.*?^\}", figures, re.S | re.M)[0], re.M
    )
    assert first and {n for n in BUDGETS if n.startswith("figures/")} - {"figures/seeds"} == {
        f"figures/{algo}" for algo in first
    }


def test_the_presets_budgets_are_the_presets():
    """Every preset reads its budget ``preset/...`` (and every such budget is a preset's)."""
    from rlcourse.algos import ALGORITHMS, grpo, ppo

    expected = {}
    for algo, module in ALGORITHMS.items():
        if algo == "grpo":
            continue
        for env_id, config in module.PRESETS.items():
            expected[f"preset/{algo}/{env_id}"] = config.total_steps
    for env_id, config in ppo.PRESETS_KL.items():
        expected[f"preset/ppo_kl/{env_id}"] = config.total_steps
    for method, config in grpo.PRESETS.items():
        expected[f"preset/grpo/{method}"] = config.iterations
    found = {n: b.full for n, b in BUDGETS.items() if n.startswith("preset/")}
    assert found == expected
    assert all(BUDGETS[n].fast == BUDGETS[n].full for n in found)  # a preset is one recipe


def test_the_train_views_defaults_are_its_budgets():
    from rlcourse.widgets.overview import default_steps, preset_pairs

    pairs = {f"01/{algo}/{env_id}" for algo, envs in preset_pairs().items() for env_id in envs}
    views = {n for n in BUDGETS if n.count("/") == 2 and n.startswith("01/")}
    assert views == pairs
    for name in views:
        _, algo, env_id = name.split("/")
        assert default_steps(algo, env_id) == budget(name)
        # the steps slider starts at 500 and moves in steps of 500 (GRPO: whole iterations)
        for steps in (BUDGETS[name].full, BUDGETS[name].fast):
            assert steps >= 500 and (steps % 500 == 0 or (algo == "grpo" and steps % 256 == 0))


def _not_larger(fast, full) -> bool:
    """Numbers: fast <= full; sequences of one length: element by element; of two lengths: the
    fast one a part of the full one (grid points, seeds); dicts: on the keys both have (a key
    only the fast one has changes a preset value that the full run keeps)."""
    if isinstance(fast, dict):
        return all(_not_larger(fast[k], full[k]) for k in fast.keys() & full.keys())
    if isinstance(fast, list | tuple):
        if len(fast) == len(full):
            return all(_not_larger(a, b) for a, b in zip(fast, full, strict=True))
        return len(fast) < len(full) and set(fast) <= set(full)
    return fast <= full


@pytest.mark.parametrize("name", list(BUDGETS))
def test_fast_is_never_larger_than_full(name):
    b = BUDGETS[name]
    assert type(b.fast) is type(b.full), name
    assert _not_larger(b.fast, b.full), (name, b.fast, b.full)
    assert b.why and "\n" not in b.why


def test_the_comparison_itself_fails_where_fast_is_larger():
    assert not _not_larger(6, 5)
    assert not _not_larger([0, 3], [0, 1, 2])
    assert not _not_larger((64, 64), (32, 32))
    assert not _not_larger(dict(total_steps=10, hidden=(8,)), dict(total_steps=5, hidden=(8,)))
    assert _not_larger(dict(total_steps=5, learning_starts=1), dict(total_steps=10))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_the_notebooks_keep_no_budget_of_their_own(path):
    code = _code(path)
    assert not re.search(r"\bif\s+(not\s+)?FAST\b", code), "a budget chosen in the notebook"
    assert "RLCOURSE_FAST" not in code.replace("RLCOURSE_FAST=1", ""), "the switch read again"
    assert f'BUDGETS = notebook_budgets("{path.name[:2]}")' in code
    assert "print(BUDGETS)" in code  # the student sees the full budgets and the fast ones


def test_nothing_else_reads_the_switch():
    for path in [ROOT / "benchmarks" / "make_figures.py", *(ROOT / "rlcourse").rglob("*.py")]:
        if path.name != "budgets.py":
            assert 'environ.get("RLCOURSE_FAST")' not in path.read_text(encoding="utf-8"), path


@pytest.mark.parametrize("value", ["1"])
def test_fast_mode_one(value):
    assert fast_mode(value) is True


@pytest.mark.parametrize("value", [None, "", "0"])
def test_fast_mode_off(value):
    assert fast_mode(value) is False


@pytest.mark.parametrize("value", ["yes", "true", "True", " 1", "1 ", "2", "-1", "fast"])
def test_fast_mode_refuses_anything_else(value):
    with pytest.raises(ValueError, match=re.escape(f"RLCOURSE_FAST={value!r} is not allowed")):
        fast_mode(value)


def test_the_switch_is_read_at_import():
    assert budgets.FAST is fast_mode(os.environ.get("RLCOURSE_FAST"))  # tests/conftest.py: "1"
    code = "import rlcourse.budgets as b; print(b.FAST, b.budget('05/repeats'))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for value, out in [("0", "False 2000"), ("1", "True 300")]:
        done = subprocess.run(
            [sys.executable, "-c", code],
            env={**env, "RLCOURSE_FAST": value},
            capture_output=True,
            text=True,
        )
        assert done.stdout.split() == out.split(), done.stderr
    done = subprocess.run(
        [sys.executable, "-c", code], env={**env, "RLCOURSE_FAST": "yes"}, capture_output=True
    )
    assert done.returncode != 0 and b"RLCOURSE_FAST='yes' is not allowed" in done.stderr


def test_a_budget_for_each_mode_and_a_copy_each_time():
    b = Budget(dict(total_steps=10, hidden=[8]), dict(total_steps=2, hidden=[4]), "why")
    assert b.value(fast=False) == dict(total_steps=10, hidden=[8])
    assert b.value(fast=True) == dict(total_steps=2, hidden=[4])
    got = b.value(fast=True)
    got["hidden"].append(4)
    got["epochs"] = 3
    assert b.value(fast=True) == dict(total_steps=2, hidden=[4])
    assert budget("08/iterations", fast=False) == 300 and budget("08/iterations", fast=True) == 30
    with pytest.raises(KeyError, match="no budget named 'nope'"):
        budget("nope")


def test_a_notebooks_budgets():
    full, fast = notebook_budgets("06", fast=False), notebook_budgets("06", fast=True)
    assert full.seeds == (0, 1, 2) and fast.seeds == (0,)
    assert full["trpo"] == dict(total_steps=50_000) and "seeds" in dir(full)
    text = str(full)
    assert "notebook 06" in text and "full total_steps=50_000" in text and "fast (0,)" in text
    assert BUDGETS["06/seeds"].why in text
    assert notebook_budgets("01", fast=True)["a2c/CartPole-v1"] == 5_000
    with pytest.raises(AttributeError, match="notebook 06 has no budget 'steps'; it has trpo"):
        full.steps  # noqa: B018
    with pytest.raises(ValueError, match="number='09' is not allowed"):
        notebook_budgets("09")
