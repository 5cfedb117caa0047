"""The lecture's slides, item by item: each formula, theorem and algorithm box, and where it lives.

The slides (*Deep RL*, M. Papini) are the course's specification. ``rlcourse/data/slides.md`` lists
them in order, a heading per slide with the number of display formulas, theorems and pseudocode
boxes it shows, and a table row per formula, theorem, box or checkable statement: the functions of
``rlcourse`` that implement it, the tests that check it against its definition (brute-force sums,
exact tabular answers, finite differences, learning on a real environment; never "it runs"), and
the notebook section where a student meets it. A slide with nothing to implement (a picture, the
references) says why instead. This module reads that document into :data:`SLIDES`;
:data:`rlcourse.catalog.SLIDE_MAP` (notebook 01, section 4) is built from it, and
``tests/test_slides.py`` checks every entry against the code, the tests and the notebooks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Item", "Slide", "SLIDES", "KINDS", "SLIDES_FILE", "read_slides"]

# formula: a display formula (or a definition in the text); theorem: a boxed theorem; algorithm: a
# pseudocode box as a whole (its formulas are items of their own); statement: a claim of the slide
# that the package checks.
KINDS = ("formula", "theorem", "algorithm", "statement")
SLIDES_FILE = Path(__file__).parent / "data" / "slides.md"


@dataclass(frozen=True)
class Item:
    """One formula, theorem, box or statement of a slide. ``code`` names are relative to
    ``rlcourse``, ``tests`` are ``"file.py::test_name"`` under ``tests/``, ``section`` is
    ``"NN · k"`` or ``"NN · k-m"``."""

    kind: str
    what: str
    code: tuple[str, ...]
    tests: tuple[str, ...]
    section: str


@dataclass(frozen=True)
class Slide:
    """One slide: its title as printed, what it shows, and its items (or why it has none)."""

    title: str
    formulas: int
    theorems: int
    boxes: int
    items: tuple[Item, ...] = ()
    why_none: str = ""


_COUNTS = re.compile(r"^formulas: (\d+) · theorems: (\d+) · boxes: (\d+)$")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")  # table cells; "\|" is a bar inside a cell


def _names(cell: str) -> tuple[str, ...]:
    return tuple(re.findall(r"`([^`]+)`", cell))


def _slide(title: str, lines: list[str], where: str) -> Slide:
    counts = [m for line in lines if (m := _COUNTS.match(line))]
    if len(counts) != 1:
        raise ValueError(
            f"{where}: slide {title!r} needs one line 'formulas: N · theorems: N · boxes: N'"
        )
    formulas, theorems, boxes = map(int, counts[0].groups())
    items, why = [], ""
    for line in lines:
        if line.startswith("No item: "):
            why = line.removeprefix("No item: ").rstrip(".")
        elif line.startswith("| ") and not line.startswith(("| kind ", "|---")):
            cells = [c.strip() for c in _CELL_SPLIT.split(line.strip())[1:-1]]
            if len(cells) != 5:
                raise ValueError(f"{where}: slide {title!r}: a row needs 5 cells, got {line!r}")
            kind, what, code, tests, section = cells
            items.append(Item(kind, what.replace("\\|", "|"), _names(code), _names(tests), section))
    return Slide(title, formulas, theorems, boxes, tuple(items), why)


def read_slides(path: Path = SLIDES_FILE) -> list[Slide]:
    """The slides of the document at ``path``, in order (a ``## `` heading starts each)."""
    slides, title, lines = [], None, []
    for line in path.read_text(encoding="utf-8").splitlines() + ["## "]:
        if line.startswith("## "):
            if title is not None:
                slides.append(_slide(title, lines, path.name))
            title, lines = line[3:].strip(), []
        else:
            lines.append(line)
    return slides


SLIDES: list[Slide] = read_slides()
"""The slides in order (the title slide and the outlines left out)."""
