"""The slide-by-slide map (rlcourse/data/slides.md, read by rlcourse.slides): every entry points at
code, tests and notebook sections that exist, and every formula, theorem and box of the slides has
an entry. Where the slides' text is at hand (../shared/slides, or RLCOURSE_SLIDES_TEXT), the titles
and the counts are checked against it too."""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
from functools import cache
from pathlib import Path

import pytest

from rlcourse.slides import KINDS, SLIDES, read_slides

ROOT = Path(__file__).resolve().parents[1]
ITEMS = [(slide.title, item) for slide in SLIDES for item in slide.items]
IDS = [f"{k}:{title[:30]}:{item.what[:30]}" for k, (title, item) in enumerate(ITEMS)]


def resolve(path: str):
    """``rlcourse.<path>``: the longest importable module prefix, then attributes."""
    parts = ["rlcourse", *path.split(".")]
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)  # AttributeError: the map names something that does not exist
        return obj
    raise ModuleNotFoundError(path)


@cache
def test_functions(file: str) -> set[str]:
    tree = ast.parse((ROOT / "tests" / file).read_text(encoding="utf-8"))
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}


test_functions.__test__ = False  # a helper, not a test


@cache
def headings(number: str) -> list[str]:
    (notebook,) = sorted((ROOT / "notebooks").glob(f"{number}_*.ipynb"))
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return [
        line
        for cell in cells
        if cell["cell_type"] == "markdown"
        for line in "".join(cell["source"]).splitlines()
        if line.startswith("## ")
    ]


@pytest.mark.parametrize("title, item", ITEMS, ids=IDS)
def test_every_item_names_existing_code_real_tests_and_sections(title, item):
    assert item.kind in KINDS, (title, item.kind)
    assert item.what and item.code and item.tests and item.section, (title, item)
    for path in item.code:
        obj = resolve(path)
        assert callable(obj) or isinstance(obj, list), path  # functions, classes, TIMELINE
    for test in item.tests:
        file, _, name = test.partition("::")
        assert name.startswith("test_") and name in test_functions(file), test
    number, _, sections = item.section.partition(" · ")
    for part in sections.replace(" ", "").split(","):
        first, _, last = part.partition("-")
        for k in range(int(first), int(last or first) + 1):
            assert any(h.startswith(f"## {k} · ") for h in headings(number)), (item.section, k)


@pytest.mark.parametrize("slide", SLIDES, ids=[s.title[:40] for s in SLIDES])
def test_every_formula_theorem_and_box_of_a_slide_has_an_item(slide):
    kinds = [item.kind for item in slide.items]
    assert kinds.count("formula") + kinds.count("theorem") >= slide.formulas, slide.title
    assert kinds.count("theorem") >= slide.theorems, slide.title
    assert kinds.count("algorithm") >= slide.boxes, slide.title
    # a slide either has items or says why it has none, and one without items shows no formula
    assert bool(slide.items) != bool(slide.why_none), slide.title
    if not slide.items:
        assert slide.formulas == slide.theorems == slide.boxes == 0, slide.title


def test_the_map_covers_every_algorithm_and_every_lecture_notebook():
    from rlcourse.algos import ALL_ALGORITHMS

    code = {name for _, item in ITEMS for name in item.code}
    assert {f"algos.{name}.train" for name in ALL_ALGORITHMS} <= code
    notebooks = {item.section[:2] for _, item in ITEMS}
    assert notebooks == {p.name[:2] for p in (ROOT / "notebooks").glob("0*_*.ipynb")}
    assert sum(s.formulas for s in SLIDES) >= 50 and len(ITEMS) >= 80  # the whole lecture


def test_a_broken_document_is_named(tmp_path):
    bad = tmp_path / "slides.md"
    bad.write_text("## A slide\n\nno counts here\n", encoding="utf-8")
    with pytest.raises(ValueError, match="slide 'A slide' needs one line 'formulas: N"):
        read_slides(bad)
    bad.write_text(
        "## A slide\n\nformulas: 1 · theorems: 0 · boxes: 0\n\n| formula | x | `a` | 01 · 1 |\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="a row needs 5 cells"):
        read_slides(bad)


def slides_text() -> str | None:
    path = Path(
        os.environ.get("RLCOURSE_SLIDES_TEXT", ROOT.parent / "shared/slides/deep-rl-lecture.txt")
    )
    return path.read_text(encoding="utf-8") if path.exists() else None


def test_titles_and_counts_agree_with_the_slides_text():
    text = slides_text()
    if text is None:
        pytest.skip("the slides' text is not here (set RLCOURSE_SLIDES_TEXT to its path)")
    titles = {s.title for s in SLIDES}
    found: list[list] = []  # [title, display formulas, theorems, boxes], in the text's order
    in_outline = False
    for line in text.splitlines():
        line = line.strip()
        if line == "Outline":
            in_outline = True
        elif in_outline:
            in_outline = line != "Proximal Policy Optimization (PPO) and GRPO"
        elif line in titles:
            found.append([line, 0, 0, 0])
        elif found:
            found[-1][1] += line.count("$$") // 2
            found[-1][2] += line.startswith("Theorem (")
            found[-1][3] += line.startswith("loop for every iteration")
    # A slide whose title the text does not print (the A2C box, the summary table) counts with the
    # slide before it.
    mine: list[list] = []
    printed = {f[0] for f in found}
    for s in SLIDES:
        counts = [s.formulas, s.theorems, s.boxes]
        if s.title in printed or not mine:
            mine.append([s.title, *counts])
        else:
            mine[-1][1:] = [a + b for a, b in zip(mine[-1][1:], counts, strict=True)]
    assert [f[0] for f in found] == [m[0] for m in mine]
    assert found == mine
    assert sum(f[1] for f in found) == len(re.findall(r"\$\$", text)) // 2
