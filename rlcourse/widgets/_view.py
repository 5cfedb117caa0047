"""What every notebook view shares: the view skeleton, showing a figure, tables, log axes.

Each view has three layers:

1. a pure function that computes everything the view can show, once, on a grid
   (e.g. :func:`rlcourse.sweeps.gae_bias_variance`), returning plain arrays; it lives with the
   math (:mod:`rlcourse.sweeps`, :mod:`rlcourse.importance`, :mod:`rlcourse.objectives`);
2. a ``draw_*`` function that turns one grid point into a matplotlib figure, with no state;
3. a ``*_view`` function that puts ipywidgets (ipywidgets 8) controls on top: a control's move
   only calls the ``draw_*`` function on the precomputed data, so it answers in a fraction of a
   second. Training, the one slow thing, sits behind a button.

:func:`make_view` is the third layer's skeleton. Every view draws once when it is built, so it shows
something also when a notebook runs headless (nbval) and nobody touches the controls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

__all__ = ["make_view", "table"]


def _show(output, fig) -> None:
    """Replace what ``output`` shows by ``fig`` (a static image, as the inline backend draws it)."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    with output:
        output.clear_output(wait=True)
        display(fig)
    plt.close(fig)


def make_view(draw: Callable[[], object], rows: Sequence, **controls):
    """An ``ipywidgets.VBox``: ``rows`` of controls above an Output that shows ``draw()``.

    ``rows`` are widgets, or lists of widgets that become one ``HBox`` each. Every control in
    ``controls`` (a widget, or a dict of widgets) redraws when its value changes and becomes an
    attribute of the box under its keyword; so does ``redraw()``, which draws the current state
    and is called once here.
    """
    import ipywidgets as widgets

    output = widgets.Output()

    def redraw(_=None):
        _show(output, draw())

    for control in controls.values():
        for widget in control.values() if isinstance(control, Mapping) else [control]:
            widget.observe(redraw, names="value")
    boxes = [widgets.HBox(list(row)) if isinstance(row, (list, tuple)) else row for row in rows]
    box = widgets.VBox([*boxes, output])
    for name, control in controls.items():
        setattr(box, name, control)
    box.redraw = redraw
    redraw()
    return box


def _plain_log_axis(axis) -> None:
    """Log ticks without minor ticks and plain labels ("0.01", not mathtext): much faster to
    draw."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    axis.set_major_locator(LogLocator(numticks=6))
    axis.set_minor_locator(NullLocator())
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def table(columns: Mapping[str, Sequence], digits: int = 3, index: str | None = "t"):
    """An HTML table of equally long columns (numbers, bools or tensors), one row per time step.

    ``index`` names a first column 0, 1, 2, ... (``None`` leaves it out); floats get ``digits``
    decimals, booleans show as a tick or nothing, so episode ends stand out. Returns an
    ``IPython.display.HTML`` object: the last line of a cell shows it.

    Used by every notebook (returns, TD errors, advantages, ratios step by step).
    """
    from html import escape

    from IPython.display import HTML

    cols = {
        name: np.asarray(values.detach() if isinstance(values, torch.Tensor) else values)
        for name, values in columns.items()
    }
    lengths = {name: len(values) for name, values in cols.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"columns must all have the same length, got {lengths}")
    if index is not None:
        cols = {index: np.arange(next(iter(lengths.values()), 0)), **cols}

    def cell(x):
        if isinstance(x, (bool, np.bool_)):
            return "✓" if x else ""
        if isinstance(x, (float, np.floating)):
            return f"{x:.{digits}f}"
        return escape(str(x))

    head = "".join(f"<th>{escape(name)}</th>" for name in cols)
    rows = "".join(
        "<tr>" + "".join(f"<td>{cell(c[i])}</td>" for c in cols.values()) + "</tr>"
        for i in range(len(next(iter(cols.values()), [])))
    )
    return HTML(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
