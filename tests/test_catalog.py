"""The summary table built from the code agrees with the slide's, and the slide map points at real
code."""

import importlib
import json
from pathlib import Path

import pytest

from rlcourse.catalog import NOTEBOOKS, SLIDE_MAP, summary_table

# The slide "summary table", transcribed: class, on-policy, continuous states, finite actions,
# continuous actions, deterministic policy.
SLIDE = {
    "dqn": ("value-based", "✗", True, True, False, True),
    "reinforce": ("actor-only", "✓", True, True, True, False),
    "a2c": ("actor-critic", "✓", True, True, True, False),
    "ddpg": ("actor-critic", "✗", True, False, True, True),
    "td3": ("actor-critic", "✗", True, False, True, True),
    "sac": ("actor-critic", "✗", True, True, True, False),
    "trpo": ("trust-region actor-critic", "✓*", True, True, True, False),
    "ppo": ("trust-region actor-critic", "✓*", True, True, True, False),
    "grpo": ("trust-region actor-only", "✓*", True, True, True, False),
}
# Where the package knowingly differs from the slide: GRPO here trains a language model, whose
# actions are tokens; the method itself would work with continuous actions too.
DIFFERENCES = {("grpo", "continuous_actions")}
COLUMNS = (
    "algo_class",
    "on_policy",
    "continuous_states",
    "finite_actions",
    "continuous_actions",
    "deterministic",
)


def test_the_table_built_from_the_code_is_the_slides():
    table = summary_table()
    assert [r.name for r in table] == list(SLIDE)
    for row in table:
        for column, expected in zip(COLUMNS, SLIDE[row.name], strict=False):
            if (row.name, column) in DIFFERENCES:
                assert getattr(row, column) != expected
            else:
                assert getattr(row, column) == expected, (row.name, column)
        year = {
            "dqn": 2015,
            "reinforce": 1992,
            "a2c": 2016,
            "ddpg": 2015,
            "td3": 2018,
            "sac": 2018,
            "trpo": 2015,
            "ppo": 2017,
            "grpo": 2024,
        }[row.name]
        assert f"({year})" in row.reference


def test_every_row_links_an_existing_notebook():
    root = Path(__file__).resolve().parents[1] / "notebooks"
    for notebook in NOTEBOOKS.values():
        assert (root / notebook).exists(), notebook


@pytest.mark.parametrize("title, section, functions", SLIDE_MAP)
def test_slide_map_points_at_real_sections_and_functions(title, section, functions):
    root = Path(__file__).resolve().parents[1] / "notebooks"
    number = section.split(" · ")[0]
    (notebook,) = sorted(root.glob(f"{number}_*.ipynb"))
    headings = [
        line
        for cell in json.loads(notebook.read_text())["cells"]
        if cell["cell_type"] == "markdown"
        for line in "".join(cell["source"]).splitlines()
        if line.startswith("## ")
    ]
    if " · " in section:
        for part in section.split(" · ")[1].replace(" ", "").split(","):
            first, _, last = part.partition("-")
            for k in range(int(first), int(last or first) + 1):
                assert any(h.startswith(f"## {k} · ") for h in headings), (notebook.name, k)
    for path in functions:
        parts = ["rlcourse", *path.split(".")]
        for cut in range(len(parts), 0, -1):  # the longest importable prefix, then attributes
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ModuleNotFoundError:
                continue
            for attr in parts[cut:]:
                obj = getattr(
                    obj, attr
                )  # AttributeError: the map names something that does not exist
            break
        assert callable(obj), path
