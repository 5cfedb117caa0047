"""The PPO views of notebook 07: the figures' content and the views' controls (headless); the
clipped objective and the exact epochs behind them are tested in tests/test_ppo_epochs.py."""

# ruff: noqa: F811 - fixtures are imported from the math tests and named as test arguments

import matplotlib
import numpy as np
import pytest
import torch
from test_ppo_epochs import result  # noqa: F401  (a fixture)

import rlcourse.widgets as w
from rlcourse.algos import ppo, trpo
from rlcourse.training import History
from rlcourse.widgets import (
    clip_diagnostics_view,
    clip_objective_view,
    draw_clip_diagnostics,
    draw_clip_objective,
    draw_ppo_vs_trpo,
    draw_ratio_epochs,
    ratio_epochs_view,
)

matplotlib.use("Agg")


# ---------------------------------------------------------------------------- the clipped objective


def test_clip_objective_figure_shows_both_signs_and_the_flat_regions():
    fig = draw_clip_objective(0.3, advantages=(1.0, -1.0), ratio_max=2.0)
    assert len(fig.axes) == 4
    top_left, top_right = fig.axes[0], fig.axes[1]
    assert "A = +1" in top_left.get_title() and "A = -1" in top_right.get_title()
    bold = [line for line in top_left.get_lines() if line.get_linewidth() == 2.5][0]
    x, y = bold.get_xdata(), bold.get_ydata()
    np.testing.assert_allclose(y, np.minimum(x, np.clip(x, 0.7, 1.3)))
    with pytest.raises(ValueError, match="advantages"):
        draw_clip_objective(0.2, advantages=(1.0, 0.0))
    with pytest.raises(ValueError, match="ratio_max"):
        draw_clip_objective(0.2, ratio_max=1.1)


def test_clip_objective_view_redraws_on_every_slider_move(monkeypatch):
    view = clip_objective_view(0.2)
    assert view.clip_eps.value == pytest.approx(0.2) and view.clip_eps.continuous_update
    drawn = []
    original = w.draw_clip_objective
    monkeypatch.setattr(
        w.ppo, "draw_clip_objective", lambda eps, *a: drawn.append(eps) or original(eps, *a)
    )
    view.clip_eps.value = 0.35
    view.clip_eps.value = 0.1
    assert drawn == pytest.approx([0.35, 0.1])
    with pytest.raises(ValueError, match="clip_eps"):
        clip_objective_view(0.9)


# ------------------------------------------------------------- several epochs on one batch, exactly


def test_ratio_epochs_figure_and_view(result, monkeypatch):
    fig = draw_ratio_epochs(result, epoch=10, clip_eps=0.2)
    ax_r, ax_p, ax_i, ax_kl = fig.axes
    assert "10 epochs" in ax_p.get_title()
    heights = [bar.get_height() for bar in ax_p.patches]
    np.testing.assert_allclose(heights[4:8], result.policies[2, 10])  # the clipped run, eps = 0.2
    np.testing.assert_allclose(heights[8:12], result.policies[0, 10])
    assert ax_r.get_yscale() == "log" and ax_kl.get_yscale() == "log"
    with pytest.raises(ValueError, match="epoch"):
        draw_ratio_epochs(result, epoch=31)
    with pytest.raises(ValueError, match="clip_eps"):
        draw_ratio_epochs(result, epoch=3, clip_eps=0.5)

    view = ratio_epochs_view(result, epoch=5)
    assert view.epoch.value == 5 and view.clip_eps.value == 0.2
    drawn = []
    original = w.draw_ratio_epochs
    monkeypatch.setattr(
        w.ppo,
        "draw_ratio_epochs",
        lambda r, k, e, fig=None: drawn.append((k, e)) or original(r, k, e),
    )
    view.epoch.value = 30
    view.clip_eps.value = 0.1
    assert drawn == [(30, 0.2), (30, 0.1)]
    with pytest.raises(ValueError, match="epoch"):
        ratio_epochs_view(result, epoch=40)


# --------------------------------------------------------------------------------- runs on CartPole


def fake_history(columns: dict, episodes: int = 30, seed: int = 0) -> History:
    h = History()
    rng = np.random.default_rng(seed)
    n = len(next(iter(columns.values())))
    for i in range(n):
        h.add_iteration(i + 1, 1024 * (i + 1), **{k: v[i] for k, v in columns.items()})
    for j in range(episodes):
        h.add_episode(20 * (j + 1), float(rng.uniform(10, 200)), 20)
    return h


def test_ppo_vs_trpo_figure_reads_each_runs_own_kl():
    runs = {
        "PPO (clip)": fake_history(
            dict(approx_kl=[0.01, 0.02], clip_fraction=[0.1, 0.2], entropy=[0.69, 0.6])
        ),
        "PPO-KL": fake_history(
            dict(kl=[0.03, 0.005], kl_coef=[1.0, 2.0], approx_kl=[9.0, 9.0], entropy=[0.69, 0.5])
        ),
        "TRPO": fake_history(dict(kl=[0.009, 0.008], entropy=[0.69, 0.65])),
    }
    fig = draw_ppo_vs_trpo(runs, threshold=475)
    _, ax_kl, ax_h, ax_coef = fig.axes
    lines = {line.get_label(): line for line in ax_kl.get_lines()}
    np.testing.assert_allclose(
        lines["PPO (clip): approx. KL(π_old ‖ π_new)"].get_ydata(), [0.01, 0.02]
    )
    np.testing.assert_allclose(lines["PPO-KL: KL(π_new ‖ π_old)"].get_ydata(), [0.03, 0.005])
    np.testing.assert_allclose(lines["TRPO: KL(π_new ‖ π_old)"].get_ydata(), [0.009, 0.008])
    np.testing.assert_allclose(lines["TRPO: KL(π_new ‖ π_old)"].get_xdata(), [1024, 2048])
    assert [line.get_label() for line in ax_coef.get_lines()] == ["PPO-KL"]
    assert len(ax_h.get_lines()) == 3
    fig = draw_ppo_vs_trpo({"TRPO": runs["TRPO"], "empty": History()})
    assert "objective='kl'" in fig.axes[3].texts[0].get_text()
    with pytest.raises(ValueError, match="runs"):
        draw_ppo_vs_trpo({})


@pytest.fixture(scope="module")
def eps_runs():
    return {
        eps: fake_history(
            dict(clip_fraction=[eps / 2, eps, eps / 4], approx_kl=[eps / 10, eps / 20, eps / 30])
        )
        for eps in (0.1, 0.2, 0.3)
    }


def test_clip_diagnostics_figure_highlights_one_epsilon_and_smooths(eps_runs):
    fig = draw_clip_diagnostics(eps_runs, clip_eps=0.2)
    ax_cf, ax_kl, _ = fig.axes
    widths = {line.get_label(): line.get_linewidth() for line in ax_cf.get_lines()}
    assert widths["ε = 0.2"] > widths["ε = 0.1"] == widths["ε = 0.3"]
    assert (
        "0.117" in ax_cf.get_title()
    )  # mean clip fraction of the eps = 0.2 run: (0.1 + 0.2 + 0.05) / 3
    fig = draw_clip_diagnostics(eps_runs, clip_eps=None, smooth=2)
    line = [line for line in fig.axes[0].get_lines() if line.get_label() == "ε = 0.3"][0]
    np.testing.assert_allclose(
        line.get_ydata(), [0.15, 0.225, 0.1875]
    )  # rolling mean over 2 iterations
    assert len({line.get_linewidth() for line in fig.axes[0].get_lines()}) == 1
    with pytest.raises(ValueError, match="clip_eps"):
        draw_clip_diagnostics(eps_runs, clip_eps=0.5)
    with pytest.raises(ValueError, match="smooth"):
        draw_clip_diagnostics(eps_runs, smooth=0)
    with pytest.raises(ValueError, match="runs"):
        draw_clip_diagnostics({})


def test_clip_diagnostics_view_only_redraws(eps_runs, monkeypatch):
    view = clip_diagnostics_view(eps_runs, clip_eps=0.2)
    assert view.clip_eps.value == 0.2 and view.smooth.value == 1
    drawn = []
    original = w.draw_clip_diagnostics
    monkeypatch.setattr(
        w.ppo,
        "draw_clip_diagnostics",
        lambda r, e, s, fig=None: drawn.append((e, s)) or original(r, e, s),
    )
    view.clip_eps.value = "all"
    view.smooth.value = 3
    view.clip_eps.value = 0.3
    assert drawn == [(None, 1), (None, 3), (0.3, 3)]
    with pytest.raises(ValueError, match="clip_eps"):
        clip_diagnostics_view(eps_runs, clip_eps=0.25)


def test_the_figures_read_real_histories_of_ppo_and_trpo():
    # a few hundred steps: only that the logged columns are the ones the figures read
    torch.manual_seed(0)
    small = dict(progress=False, seed=0, num_envs=2, rollout_steps=64, total_steps=256)
    runs = {
        "PPO (clip)": ppo.train("CartPole-v1", epochs=2, minibatches=2, **small)[1],
        "PPO-KL": ppo.train("CartPole-v1", objective="kl", epochs=2, minibatches=2, **small)[1],
        "TRPO": trpo.train("CartPole-v1", critic_epochs=1, **small)[1],
    }
    fig = draw_ppo_vs_trpo(runs)
    assert len(fig.axes[1].get_lines()) == 3 and len(fig.axes[3].get_lines()) == 1
    fig = draw_clip_diagnostics({0.2: runs["PPO (clip)"]})
    assert len(fig.axes[0].get_lines()) == 1
