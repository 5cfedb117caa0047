"""The soft-value views of notebook 04: the figures and views build headless and show the grid
(whose numbers are tested in tests/test_soft_policy_grid.py)."""

# ruff: noqa: F811 - fixtures are imported from the math tests and named as test arguments

import matplotlib
import numpy as np
import pytest
from test_soft_policy_grid import grid, mdp  # noqa: F401  (fixtures)

from rlcourse.training import History
from rlcourse.widgets import (
    draw_soft_policy,
    draw_temperature,
    soft_policy_view,
)

matplotlib.use("Agg")


def test_soft_policy_figure_and_view_build_without_a_browser(grid):
    fig = draw_soft_policy(grid, temperature=0.3, state=2)
    assert len(fig.axes) == 3
    assert "state 2" in fig.axes[0].get_title()
    heights = [bar.get_height() for bar in fig.axes[0].patches]
    np.testing.assert_allclose(heights, grid.pi[grid.index(0.3), 2])
    with pytest.raises(ValueError, match="state"):
        draw_soft_policy(grid, 0.3, state=4)

    view = soft_policy_view(grid, temperature=0.0, state=1)
    slider, states = view.children[0].children
    assert slider.value == 0.0 and states.value == 1
    drawn = []
    import rlcourse.widgets as w

    original = w.draw_soft_policy
    try:
        w.soft.draw_soft_policy = lambda g, lam, s, fig=None: (
            drawn.append((lam, s)) or original(g, lam, s)
        )
        slider.value = float(grid.temperatures[-1])
        states.value = 3
    finally:
        w.soft.draw_soft_policy = original
    assert drawn == [(float(grid.temperatures[-1]), 1), (float(grid.temperatures[-1]), 3)]
    with pytest.raises(ValueError, match="state"):
        soft_policy_view(grid, state=7)


def test_temperature_figure_reads_alpha_and_entropy_of_each_run():
    runs = {}
    for label, alphas in [("fixed", [0.2, 0.2]), ("tuned", [0.15, 0.05])]:
        h = History()
        for i, alpha in enumerate(alphas):
            h.add_iteration(1000 * (i + 1), 1000 * (i + 2), alpha=alpha, entropy=-0.5 * i)
        runs[label] = h
    runs["empty"] = History()
    fig = draw_temperature(runs, target_entropy=-1.0)
    ax_alpha, ax_h = fig.axes
    assert [line.get_label() for line in ax_alpha.get_lines()] == ["fixed", "tuned"]
    np.testing.assert_allclose(ax_alpha.get_lines()[1].get_ydata(), [0.15, 0.05])
    np.testing.assert_allclose(ax_alpha.get_lines()[1].get_xdata(), [2000, 3000])
    assert ax_alpha.get_yscale() == "log"
    assert any(np.allclose(line.get_ydata(), -1.0) for line in ax_h.get_lines())
