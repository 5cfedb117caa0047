"""The views of notebook 02 build headless and show their data; the numbers behind them are
tested in tests/test_gae_bias_variance.py."""

# ruff: noqa: F811 - fixtures are imported from the math tests and named as test arguments

import matplotlib
import pytest
import torch
from test_gae_bias_variance import LAMBDAS, grid, walk  # noqa: F401  (fixtures)

from rlcourse.training import History
from rlcourse.widgets import (
    bias_variance_view,
    draw_bias_variance,
    draw_learning_curves,
    learning_curves_view,
    table,
)

matplotlib.use("Agg")


def test_bias_variance_figure_and_view_build_without_a_browser(grid, monkeypatch):
    fig = draw_bias_variance(grid, gamma=0.95, gae_lambda=0.4, critic_error=0.2)
    left, heat = fig.axes[:2]
    assert "γ=0.95" in left.get_title() and "λ=0.4" in left.get_title()
    assert grid.index(0.95, 0.2, 0.4) == (1, 1, 2)
    view = bias_variance_view(grid, critic_error=0.0)
    sliders = view.children[0].children
    assert [s.description for s in sliders] == ["γ", "λ", "critic error"]
    assert [s.value for s in sliders] == [0.95, float(LAMBDAS[3]), 0.0]
    import rlcourse.widgets.advantages as module

    drawn = []
    original = module.draw_bias_variance
    monkeypatch.setattr(
        module,
        "draw_bias_variance",
        lambda g, gamma, lam, err, **kw: drawn.append((gamma, lam, err)) or original(
            g, gamma, lam, err, **kw
        ),
    )
    sliders[1].value = float(LAMBDAS[-1])  # a slider move redraws with the new lambda
    sliders[2].value = 0.2
    assert drawn == [(0.95, float(LAMBDAS[-1]), 0.0), (0.95, float(LAMBDAS[-1]), 0.2)]


def _history(returns):
    h = History()
    for i, r in enumerate(returns):
        h.add_episode(100 * (i + 1), float(r), int(r))
    return h


def test_learning_curves_view_redraws_and_trains_only_on_click():
    runs = {0: {"A2C": _history([10, 20, 30]), "A2C + GAE": _history([20, 40, 80])}}
    calls = []

    def train(seed, lam):
        calls.append((seed, lam))
        return _history([50, 60])

    fig = draw_learning_curves(runs, 0, threshold=475, window=2)
    assert "seed 0" in fig.axes[0].get_title()
    with pytest.raises(ValueError, match="seed"):
        draw_learning_curves(runs, 7)
    view = learning_curves_view(runs, threshold=475, train=train)
    assert calls == []
    button = next(
        w for w in view.children[1].children if getattr(w, "description", "") == "train A2C + GAE"
    )
    button.click()
    assert calls == [(0, 0.5)]
    assert "A2C + GAE (λ=0.5)" in runs[0]
    with pytest.raises(ValueError, match="runs"):
        learning_curves_view({})


def test_table_shows_numbers_flags_and_an_index():
    html = table(
        {"R": torch.tensor([1.0, 2.5]), "done": torch.tensor([False, True])}, digits=2
    ).data
    assert "<th>t</th><th>R</th><th>done</th>" in html
    assert (
        "<td>0</td><td>1.00</td><td></td>" in html and "<td>1</td><td>2.50</td><td>✓</td>" in html
    )
    with pytest.raises(ValueError, match="same length"):
        table({"a": [1, 2], "b": [1]})
