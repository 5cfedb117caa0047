"""The Q over-estimation measurement against its definition, and notebook 03's views build
headless."""

import matplotlib
import numpy as np
import pytest
import testenvs  # noqa: F401  (registers the rlcourse-test/ environments)
import torch
from matplotlib.colors import to_rgb
from torch import nn

from rlcourse.diagnostics import Overestimation, q_overestimation, tail_length
from rlcourse.training import Agent, History
from rlcourse.widgets import (
    FixesRun,
    draw_fixes,
    draw_overestimation,
    find_run,
    fixes_label,
    fixes_view,
    noise_scales,
)

matplotlib.use("Agg")


class Linear(nn.Module):
    """mu(s) = slope * s (a Box policy); ``greedy`` as the course's policies have it."""

    def __init__(self, slope: float):
        super().__init__()
        self.slope = nn.Parameter(torch.tensor(float(slope)))

    def forward(self, obs):
        return self.slope * obs

    def greedy(self, obs):
        return self(obs)


class ConstantCritic(nn.Module):
    def __init__(self, value: float):
        super().__init__()
        self.value = nn.Parameter(torch.tensor(float(value)))

    def forward(self, obs, action):
        return self.value.expand(len(obs))


class TargetCritic(nn.Module):
    """The exact Q of the Target env: q(s, a) = -(a - s)^2 (one-step episodes)."""

    def forward(self, obs, action):
        return -((action - obs) ** 2).sum(-1)


class Config:
    gamma = 0.9


def agent(env_id, policy, critic):
    return Agent(algo="test", env_id=env_id, config=Config(), policy=policy, critic=critic)


def test_tail_length_is_the_smallest_n_with_gamma_to_the_n_below_tol():
    for gamma in (0.5, 0.9, 0.99):
        n = tail_length(gamma)
        assert gamma**n <= 1e-3 < gamma ** (n - 1)
    assert tail_length(0.99) == 688
    with pytest.raises(ValueError, match="gamma"):
        tail_length(1.0)


def test_constant_reward_returns_match_the_geometric_sum_and_the_gap_is_known():
    # Constant-v0: reward 1 every step, time limit 20, truncation only. The measured states are
    # t = 0..19 and each is followed until step 20 + tail, so
    # G_t = (1 - gamma^(20 + tail - t)) / (1 - gamma).
    result = q_overestimation(
        agent("rlcourse-test/Constant-v0", Linear(0.0), ConstantCritic(12.0)), episodes=3
    )
    tail = tail_length(0.9)
    t = np.arange(20)
    expected = (1 - 0.9 ** (20 + tail - t)) / (1 - 0.9)
    assert isinstance(result, Overestimation)
    np.testing.assert_array_equal(result.steps, np.tile(t, 3))
    np.testing.assert_array_equal(result.episodes, np.repeat([0, 1, 2], 20))
    np.testing.assert_allclose(result.returns, np.tile(expected, 3), rtol=1e-12)
    np.testing.assert_allclose(result.estimates, 12.0)
    assert result.mean_gap == pytest.approx(12.0 - expected.mean(), rel=1e-12)
    # the tail makes G_t the infinite-horizon value 1 / (1 - gamma) up to gamma^tail
    assert np.abs(result.returns - 10.0).max() <= 10.0 * 0.9**tail
    t_, est, ret = result.by_step()
    np.testing.assert_array_equal(t_, t)
    np.testing.assert_allclose(ret, expected, rtol=1e-12)
    assert result.relative_gap == pytest.approx(result.mean_gap / np.abs(result.returns).mean())


def test_without_tail_the_returns_stop_at_the_time_limit():
    result = q_overestimation(
        agent("rlcourse-test/Constant-v0", Linear(0.0), ConstantCritic(10.0)),
        episodes=1,
        steps=5,
        tail=1,
        gamma=0.5,
    )
    np.testing.assert_allclose(result.returns, (1 - 0.5 ** (6 - np.arange(5))) / (1 - 0.5))
    assert result.gamma == 0.5


def test_exact_critic_on_terminating_env_has_zero_gap_and_sees_the_policy_action():
    # Target-v0: one step, reward -(a - s)^2. With mu(s) = 0.5 s, G_0 = -(0.5 s - s)^2 and the exact
    # critic evaluated at (s, mu(s)) gives the same number; at any other action it would not.
    result = q_overestimation(
        agent("rlcourse-test/Target-v0", Linear(0.5), TargetCritic()), episodes=6, steps=1
    )
    assert len(result.returns) == 6 and (result.returns < 0).all()
    np.testing.assert_allclose(result.estimates, result.returns, atol=1e-6)
    assert abs(result.mean_gap) < 1e-6


def test_bad_arguments_get_clear_errors():
    a = agent("rlcourse-test/Constant-v0", Linear(0.0), ConstantCritic(0.0))
    with pytest.raises(ValueError, match="episodes"):
        q_overestimation(a, episodes=0)
    with pytest.raises(ValueError, match="steps"):
        # No time limit.
        q_overestimation(agent("rlcourse-test/Target-v0", Linear(0.5), TargetCritic()))


def fake_run(twin, delay, smoothing, gap, noise=None):
    history = History()
    for i in range(30):
        history.add_episode(200 * (i + 1), -1000.0 + 30 * i, 200)
    steps = np.tile(np.arange(50), 2)
    returns = -100.0 * np.exp(-steps / 10.0)
    over = Overestimation(returns + gap, returns, steps, np.repeat([0, 1], 50), 0.99)
    if noise is None:  # the default noise scale, as runs made before the noise selector existed
        return FixesRun(twin, delay, smoothing, history, over)
    return FixesRun(twin, delay, smoothing, history, over, noise=noise)


@pytest.fixture
def runs():
    flags = [(False, False, False), (True, False, False), (True, True, False), (True, True, True)]
    return [fake_run(*f, gap=g) for f, g in zip(flags, [10.0, -2.0, 5.0, 1.0], strict=True)]


def test_labels_and_lookup(runs):
    assert [r.label for r in runs] == ["DDPG updates", "+ twin", "+ twin + delay", "TD3"]
    assert fixes_label(False, True, False) == "+ delay"
    assert find_run(runs, True, True, False) == 2 and find_run(runs, False, True, False) is None
    assert runs[0].overestimation.mean_gap == pytest.approx(10.0)


def test_figures_and_view_build_headless(runs):
    fig = draw_overestimation({r.label: r.overestimation for r in runs}, highlight="TD3")
    assert len(fig.axes) == 2
    fig = draw_fixes(runs, False, True, False)  # a combination that was not trained
    assert len(fig.axes) == 3 and "not trained" in fig._suptitle.get_text()
    view = fixes_view(runs)
    boxes = view.children[0].children[:3]
    assert [b.value for b in boxes] == [False, False, False]
    # One noise scale: one button, labels without σ.
    assert view.noise.options == (("σ = 0.1", 0.1),)
    boxes[0].value = True
    assert "+ twin" in view.children[1].value
    boxes[1].value = True
    boxes[0].value = False
    assert "not trained" in view.children[1].value
    with pytest.raises(ValueError, match="runs is empty"):
        fixes_view([])


@pytest.fixture
def noisy_runs(runs):
    """The four fixes at the default noise 0.1, plus DDPG updates and TD3 at 0.3 and 0.0 (in that
    order)."""
    extra = [((False, False, False), 0.3, 20.0), ((True, True, True), 0.3, 3.0)]
    extra += [((False, False, False), 0.0, -4.0), ((True, True, True), 0.0, 0.5)]
    return runs + [fake_run(*flags, gap=gap, noise=noise) for flags, noise, gap in extra]


def test_runs_default_to_noise_0_1_and_find_run_picks_by_noise(runs, noisy_runs):
    assert {r.noise for r in runs} == {0.1}
    assert noise_scales(noisy_runs) == [0.0, 0.1, 0.3]
    assert [r.noise_label for r in noisy_runs[4:]] == [
        "DDPG updates, σ = 0.3",
        "TD3, σ = 0.3",
        "DDPG updates, σ = 0",
        "TD3, σ = 0",
    ]
    assert find_run(noisy_runs, False, False, False, 0.1) == 0
    assert find_run(noisy_runs, False, False, False, 0.3) == 4
    assert find_run(noisy_runs, True, True, True, 0.0) == 7
    assert find_run(noisy_runs, True, True, True, 0.1 + 0.2) == 5  # 0.30000000000000004 is 0.3
    assert find_run(noisy_runs, True, False, False, 0.3) is None  # "+ twin" was trained at 0.1 only
    # No noise given: the first run with these fixes.
    assert find_run(noisy_runs, True, True, True) == 3


def test_draw_fixes_shows_the_fixes_at_this_noise_and_this_fix_at_every_noise(noisy_runs):
    fig = draw_fixes(noisy_runs, True, True, True, 0.3)
    ax_curve, _, ax_bar = fig.axes
    assert fig._suptitle.get_text() == "TD3, σ = 0.3"
    # the fixes at sigma = 0.3 and TD3 at every sigma, grouped by fixes, then by noise
    assert [t.get_text() for t in ax_bar.get_xticklabels()] == [
        "DDPG updates, σ = 0.3",
        "TD3, σ = 0",
        "TD3, σ = 0.1",
        "TD3, σ = 0.3",
    ]
    curves = {
        line.get_label(): line
        for line in ax_curve.get_lines()
        if not line.get_label().startswith("_")
    }
    assert set(curves) == {t.get_text() for t in ax_bar.get_xticklabels()}
    assert curves["TD3, σ = 0.3"].get_alpha() == 1.0 and curves["TD3, σ = 0.1"].get_alpha() < 1.0
    colors = {label: line.get_color() for label, line in curves.items()}
    assert len(set(colors.values())) == 4  # one colour per run
    assert colors["TD3, σ = 0.1"] == to_rgb("C3")  # the middle noise scale: the plain colour
    # a run keeps its colour whatever is selected
    other = draw_fixes(noisy_runs, False, False, False, 0.3).axes[0].get_lines()
    assert {line.get_label(): line.get_color() for line in other}["TD3, σ = 0.3"] == colors[
        "TD3, σ = 0.3"
    ]
    fig = draw_fixes(noisy_runs, True, False, False, 0.0)
    assert fig._suptitle.get_text() == "+ twin, σ = 0: not trained here"


def test_view_has_a_noise_selector_with_the_noise_scales_of_the_runs(noisy_runs):
    view = fixes_view(noisy_runs)
    controls = view.children[0].children
    assert list(controls[:3]) == list(view.boxes.values()) and controls[3] is view.noise
    assert [value for _, value in view.noise.options] == [0.0, 0.1, 0.3]
    assert [label for label, _ in view.noise.options] == ["σ = 0", "σ = 0.1", "σ = 0.3"]
    assert view.noise.value == 0.1  # the first run's noise
    assert view.status is view.children[1]
    view.noise.value = 0.3
    assert "DDPG updates, σ = 0.3" in view.status.value and "+20.0" in view.status.value
    for name in ("twin", "delay", "smoothing"):
        view.boxes[name].value = True
    assert "TD3, σ = 0.3" in view.status.value and "+3.0" in view.status.value
    view.noise.value = 0.0
    assert "TD3, σ = 0</b>" in view.status.value
    view.boxes["smoothing"].value = False  # + twin + delay was trained at noise 0.1 only
    assert "+ twin + delay, σ = 0</i> was not trained" in view.status.value
    assert "+ twin + delay, σ = 0.1" in view.status.value  # the list of what was trained
    view.noise.value = 0.1
    status = view.status.value
    assert "not trained" not in status and "+ twin + delay, σ = 0.1" in status
