"""The importance-sampling and trust-region views of notebooks 05 and 06: the figures' content and
the views' controls (headless). Their data are tested in tests/test_importance_grid.py and
tests/test_trust_region_path.py."""

# ruff: noqa: F811 - fixtures are imported from the math tests and named as test arguments

import matplotlib
import numpy as np
import pytest
from test_importance_grid import SHIFTS, P, X, bandit, shift_grid  # noqa: F401  (fixtures)
from test_trust_region_path import STEPS, mdp_and_policy, path  # noqa: F401  (fixtures)

import rlcourse.widgets as w
from rlcourse.tabular import kl_divergence
from rlcourse.training import History
from rlcourse.widgets import (
    draw_importance_sampling,
    draw_trpo_runs,
    draw_trust_region,
    importance_sampling_grid,
    importance_sampling_view,
    policy_path,
    trust_region_view,
)

matplotlib.use("Agg")


# ------------------------------------------------------------------ importance sampling figure/view


def test_importance_sampling_figure_shows_the_grid_at_the_chosen_position(shift_grid):
    g = shift_grid
    fig = draw_importance_sampling(g, 0.9)  # nearest: shift 1.0
    ax_dist, ax_hist, ax_var, ax_ess, ax_weight = (
        fig.axes
    )  # the weight axis, a twin of the first, comes last
    np.testing.assert_allclose(ax_weight.get_lines()[0].get_ydata(), g.p[2] / g.q[2])
    assert "shift = 1" in ax_dist.get_title()
    assert f"{float(kl_divergence(P, g.q[2])):.3g}" in ax_dist.get_title()
    np.testing.assert_allclose(ax_dist.get_lines()[0].get_ydata(), g.q[2])  # q
    np.testing.assert_allclose(ax_dist.get_lines()[1].get_ydata(), g.p[2])  # p
    counts = sum(patch.get_height() for patch in ax_hist.patches)
    lo, hi = ax_hist.get_xlim()
    inside = ((g.estimates[2] >= lo) & (g.estimates[2] <= hi)).sum()
    assert counts == inside
    assert any(
        np.allclose(line.get_xdata(), g.mu[2]) for line in ax_hist.get_lines()
    )  # the true mean
    np.testing.assert_allclose(ax_var.get_lines()[0].get_ydata(), g.variance)
    np.testing.assert_allclose(ax_ess.get_lines()[0].get_ydata(), 1 / (1 + g.chi2))
    np.testing.assert_allclose(ax_ess.get_lines()[1].get_ydata(), g.ess.mean(1) / g.n)
    text = ax_hist.texts[0].get_text()
    assert f"exact sd {np.sqrt(g.variance[2]):.3g}" in text


def test_importance_sampling_figure_draws_the_self_normalised_histogram_on_request(shift_grid):
    plain = draw_importance_sampling(shift_grid, 2.0)
    both = draw_importance_sampling(shift_grid, 2.0, normalized=True)
    assert len(both.axes[1].patches) == len(plain.axes[1].patches) + 1  # one step outline more
    assert "self-normalised" in both.axes[1].texts[0].get_text()


def test_small_supports_are_drawn_as_bars_with_their_ratios(bandit):
    _, pi, adv = bandit
    steps = [0.0, 3.0]
    g = importance_sampling_grid(
        np.arange(4), adv, [policy_path(pi, adv, s) for s in steps], pi, steps, n=10, repeats=20
    )
    ax_dist = draw_importance_sampling(g, 3.0).axes[0]
    heights = [bar.get_height() for bar in ax_dist.patches]
    np.testing.assert_allclose(heights, np.r_[pi, g.p[1]])
    assert [t.get_text() for t in ax_dist.texts] == [f"{r:.2f}" for r in g.p[1] / pi]


def test_importance_sampling_view_has_its_controls_and_redraws(shift_grid, monkeypatch):
    view = importance_sampling_view(shift_grid, param=0.4)
    assert view.slider.value == 0.5 and view.checkbox.value is False
    assert view.slider.options == tuple((f"{s:.3g}", float(s)) for s in SHIFTS)
    drawn = []
    original = w.draw_importance_sampling
    monkeypatch.setattr(
        w.importance,
        "draw_importance_sampling",
        lambda g, v, n, fig=None: drawn.append((v, n)) or original(g, v, n),
    )
    view.slider.value = 2.0
    view.checkbox.value = True
    assert drawn == [(2.0, False), (2.0, True)]


# ------------------------------------------------------------------------- trust region figure/view


def test_trust_region_figure_shows_the_path_and_marks_the_trust_region(path):
    k = path.index(0.3)
    fig = draw_trust_region(path, 0.3, delta=0.01)
    ax, ax_zoom, ax_kl = fig.axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_allclose(lines["J(π') − J(π)  (exact)"].get_ydata(), path.improvement)
    np.testing.assert_allclose(
        lines["L_π(π') − J(π)  (surrogate, term (A))"].get_ydata(), path.surrogate
    )
    np.testing.assert_allclose(
        lines["L_π(π') − C·E[D_TV] − J(π)  (lower bound)"].get_ydata(), path.lower_bound
    )
    assert (
        f"{path.improvement[k]:.4f}" in ax.get_title()
        and f"{path.lower_bound[k]:.4f}" in ax.get_title()
    )
    edge = path.trust_region_end(0.01)
    shaded = [p for p in ax.patches if "trust region" in p.get_label()]
    assert len(shaded) == 1 and shaded[0].get_x() + shaded[0].get_width() == pytest.approx(
        STEPS[edge]
    )
    assert (
        ax_zoom.get_xlim()[1] <= 2 * max(STEPS[edge], STEPS[int(path.lower_bound.argmax())]) + 1e-12
    )
    kl_line = ax_kl.get_lines()[0]
    np.testing.assert_allclose(kl_line.get_ydata(), path.mean_kl[path.mean_kl > 0])
    assert any(np.allclose(line.get_ydata(), 0.01) for line in ax_kl.get_lines())  # delta
    with pytest.raises(ValueError, match="delta"):
        draw_trust_region(path, 0.3, delta=0.0)


def test_trust_region_view_has_two_sliders_and_redraws(path, monkeypatch):
    view = trust_region_view(path, delta=0.01)
    assert view.step.value == pytest.approx(
        STEPS[path.trust_region_end(0.01)]
    )  # starts at the edge
    assert 0.01 in [value for _, value in view.delta.options]
    drawn = []
    original = w.draw_trust_region
    monkeypatch.setattr(
        w.trust_region,
        "draw_trust_region",
        lambda g, s, d, fig=None: drawn.append((s, d)) or original(g, s, d),
    )
    view.step.value = float(STEPS[3])
    view.delta.value = 0.1
    assert drawn == [(float(STEPS[3]), 0.01), (float(STEPS[3]), 0.1)]
    view = trust_region_view(path, step=1.0, delta=0.003)
    assert view.step.value == float(STEPS[path.index(1.0)]) and view.delta.value == 0.003
    with pytest.raises(ValueError, match="deltas"):
        trust_region_view(path, deltas=[0.0, 0.1])


# ---------------------------------------------------------------------------------------- TRPO runs


def fake_history(kls, fractions, returns):
    h = History()
    for i, (kl, frac) in enumerate(zip(kls, fractions, strict=True)):
        h.add_iteration(
            i + 1, 100 * (i + 1), kl=kl, step_fraction=frac, surrogate=0.01 * i, rejected=1 - frac
        )
    for i, ret in enumerate(returns):
        h.add_episode(50 * (i + 1), ret, int(ret))
    return h


def test_trpo_runs_figure_draws_every_seed_and_their_mean():
    runs = {
        "epochs = 1": [
            fake_history([0.008, 0.007], [1.0, 1.0], [20, 40]),
            fake_history([0.006, 0.009], [1, 1], [30]),
        ],
        "epochs = 3": [fake_history([0.009, 0.0095, 0.01], [0.4, 0.33, 0.33], [25, 60, 90])],
    }
    fig = draw_trpo_runs(runs, delta=0.01, threshold=475, window=2)
    ax_ret, ax_kl, ax_step, ax_sur = fig.axes
    means = {
        line.get_label(): line for line in ax_kl.get_lines() if "mean of seeds" in line.get_label()
    }
    np.testing.assert_allclose(means["epochs = 1 (mean of seeds)"].get_ydata(), [0.007, 0.008])
    np.testing.assert_allclose(
        means["epochs = 3 (mean of seeds)"].get_ydata(), [0.009, 0.0095, 0.01]
    )
    assert any(np.allclose(line.get_ydata(), 0.01) for line in ax_kl.get_lines())  # delta
    step_means = [line for line in ax_step.get_lines() if "mean of seeds" in line.get_label()]
    np.testing.assert_allclose(step_means[1].get_ydata(), [0.4, 0.33, 0.33])
    assert (
        len([line for line in ax_ret.get_lines() if line.get_label() != "threshold 475"]) == 3
    )  # one per seed
    assert any(np.allclose(line.get_ydata(), 475) for line in ax_ret.get_lines())
    assert len(ax_sur.get_lines()) == 3 + 2  # three seeds, two means
