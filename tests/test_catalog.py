"""The summary table built from the code agrees with the slide's, the timeline with the slide's and
notebook 01's, and the slide map is built from rlcourse/data/slides.md."""

import importlib
import json
import re
from pathlib import Path

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


def test_slide_map_is_the_slides_document_one_row_per_slide_title():
    # The per-item checks (code, tests, sections exist) are tests/test_slides.py's; here: the rows of
    # notebook 01's table are the slides with items, consecutive slides of one title merged.
    from rlcourse.slides import SLIDES

    titles = [s.title for s in SLIDES if s.items]
    merged = [t for k, t in enumerate(titles) if k == 0 or t != titles[k - 1]]
    assert [row[0] for row in SLIDE_MAP] == merged
    for title, section, functions in SLIDE_MAP:
        codes = [c for s in SLIDES if s.title == title for item in s.items for c in item.code]
        assert set(functions) == set(codes) and len(functions) == len(set(functions))
        first = next(i for s in SLIDES if s.title == title for i in s.items)
        assert section.startswith(first.section[:2] + " · ")


def test_the_timeline_is_the_slides_and_notebook_01s():
    from rlcourse.catalog import TIMELINE

    # The slide's timeline: years in order, and each algorithm's own module cites the paper the
    # slide cites for it (REINFORCE's comeback is another paper than Williams', 1992).
    years = [m.year for m in TIMELINE]
    assert years == sorted(years) and (years[0], years[-1]) == (2013, 2024)
    assert [m.name for m in TIMELINE] == [
        "DQN", "DDPG", "TRPO", "A3C", "AlphaGo", "PPO", "SAC", "TD3", "RLHF", "REINFORCE", "GRPO"
    ]  # fmt: skip
    for milestone in TIMELINE:
        for path in milestone.modules:
            module = importlib.import_module(f"rlcourse.{path}")
            own = module.NAME == milestone.name.lower() or (milestone.name, path) == (
                "A3C",
                "algos.a2c",
            )
            if own and milestone.name != "REINFORCE":  # its comeback is not Williams' paper
                author = milestone.citation.split(",")[0]
                year = re.search(r"\((\d{4})\)", module.REFERENCE).group(1)
                assert module.REFERENCE.startswith(author) and year in milestone.citation
    # Notebook 01, section 1, shows it as a table: the same rows, and the same modules.
    notebook = Path(__file__).resolve().parents[1] / "notebooks" / "01_overview.ipynb"
    rows = [
        line
        for cell in json.loads(notebook.read_text())["cells"]
        if cell["cell_type"] == "markdown"
        for line in "".join(cell["source"]).splitlines()
        if re.match(r"\| \d{4} \|", line)
    ]
    assert len(rows) == len(TIMELINE)
    for row, milestone in zip(rows, TIMELINE, strict=True):
        year, name, _, here = (c.strip() for c in row.strip("|").split("|"))
        assert int(year) == milestone.year
        assert name.startswith(f"**{milestone.name}**") and f"({milestone.citation})" in name
        assert tuple(re.findall(r"`([^`]+)`", here)) == milestone.modules
