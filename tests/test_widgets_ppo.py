"""The PPO views of notebook 07: the clipped objective and its gradient against the definition, the exact
several-epoch illustration on a softmax policy, and the figures' content and the views' controls (headless)."""

import matplotlib
import numpy as np
import pytest
import torch

import rlcourse.widgets as w
from rlcourse.algos import ppo, trpo
from rlcourse.training import History
from rlcourse.widgets import (
    RatioEpochs,
    clip_diagnostics_view,
    clip_objective,
    clip_objective_view,
    draw_clip_diagnostics,
    draw_clip_objective,
    draw_ppo_vs_trpo,
    draw_ratio_epochs,
    ratio_epochs,
    ratio_epochs_view,
    surrogate_ascent,
)

matplotlib.use("Agg")

# A grid of ratios that never lands on a kink 1 +- eps for the epsilons below.
RATIOS = np.linspace(0.0, 2.5, 1001) + 1e-4
PI_OLD = np.array([0.2, 0.3, 0.3, 0.2])
REWARDS = np.array([1.0, 0.5, 0.2, 0.0])


def noisy_samples(seed: int, n: int = 12):
    """The notebook's sample sets: actions of pi_old, noisy rewards, advantages against the exact baseline."""
    rng = np.random.default_rng(seed)
    actions = rng.choice(4, n, p=PI_OLD)
    return actions, REWARDS[actions] + rng.standard_normal(n) - PI_OLD @ REWARDS


@pytest.fixture(scope="module")
def result():
    return ratio_epochs(PI_OLD, REWARDS, *noisy_samples(1), clip_eps=(0.1, 0.2, 0.3), epochs=30, lr=1.0)


# ---------------------------------------------------------------------------------------------- the clipped objective


@pytest.mark.parametrize("eps", [0.1, 0.2, 0.3])
@pytest.mark.parametrize("adv", [2.0, 0.5, -0.5, -2.0])
def test_clip_objective_is_the_definition_and_a_pessimistic_lower_bound(eps, adv):
    objective, gradient, unclipped = clip_objective(RATIOS, adv, eps)
    np.testing.assert_allclose(unclipped, RATIOS * adv)
    np.testing.assert_allclose(objective, np.minimum(RATIOS * adv, np.clip(RATIOS, 1 - eps, 1 + eps) * adv))
    assert (objective <= unclipped + 1e-12).all()  # never above TRPO's surrogate
    inside = np.abs(RATIOS - 1) < eps
    np.testing.assert_allclose(objective[inside], unclipped[inside])  # equal inside the band
    # flat (gradient 0) exactly where the ratio has moved past the band in the direction A favours
    flat = RATIOS > 1 + eps if adv > 0 else RATIOS < 1 - eps
    np.testing.assert_array_equal(gradient[flat], 0.0)
    np.testing.assert_allclose(gradient[~flat], adv)  # elsewhere the gradient of omega A, also on the bad side
    assert flat.any() and (~flat & ~inside).any()


def test_clip_objective_rejects_bad_input_by_name():
    with pytest.raises(ValueError, match="ratio"):
        clip_objective([-0.1, 1.0], 1.0, 0.2)
    with pytest.raises(ValueError, match="advantage"):
        clip_objective([1.0], float("nan"), 0.2)
    with pytest.raises(ValueError, match="clip_eps"):
        clip_objective([1.0], 1.0, 1.5)


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
    monkeypatch.setattr(w.ppo, "draw_clip_objective", lambda eps, *a: drawn.append(eps) or original(eps, *a))
    view.clip_eps.value = 0.35
    view.clip_eps.value = 0.1
    assert drawn == pytest.approx([0.35, 0.1])
    with pytest.raises(ValueError, match="clip_eps"):
        clip_objective_view(0.9)


# ------------------------------------------------------------------------------ several epochs on one batch, exactly


def test_first_ascent_step_is_the_policy_gradient_of_the_softmax():
    actions, adv = noisy_samples(0)
    lr = 0.1
    pi1 = surrogate_ascent(PI_OLD, actions, adv, None, epochs=1, lr=lr)[1]
    # d/d theta_b mean_i omega_i A_i at theta = log pi_old: mean_i A_i (1[a_i = b] - pi_old(b))
    grad = np.array([np.mean(adv * ((actions == b) - PI_OLD[b])) for b in range(4)])
    theta = np.log(PI_OLD) + lr * grad
    np.testing.assert_allclose(pi1, np.exp(theta) / np.exp(theta).sum(), rtol=1e-12)
    # at omega = 1 the ratio is inside every band: the clipped objective takes the same first step
    np.testing.assert_allclose(surrogate_ascent(PI_OLD, actions, adv, 0.2, epochs=1, lr=lr)[1], pi1, rtol=1e-12)


def test_clipped_ascent_stops_while_the_unclipped_one_runs_away():
    # exact advantages: every sample of an action has the same sign, so the clipped run can come to rest
    actions = np.array([3, 2, 1, 3, 2, 2, 0, 1, 2, 1])
    adv = (REWARDS - PI_OLD @ REWARDS)[actions]
    clipped = surrogate_ascent(PI_OLD, actions, adv, 0.2, epochs=40, lr=1.0)
    unclipped = surrogate_ascent(PI_OLD, actions, adv, None, epochs=40, lr=1.0)
    np.testing.assert_allclose(clipped[-1], clipped[10], atol=1e-12)  # no gradient left: it stopped
    ratio = clipped[-1] / PI_OLD
    good = REWARDS - PI_OLD @ REWARDS > 0
    assert (ratio[good] >= 1.2).all() and (ratio[~good] <= 0.8).all()  # every sample on its flat side ...
    assert (np.abs(ratio - 1) < 0.35).all()  # ... and not far beyond the band
    best = unclipped[:, 0] / PI_OLD[0]
    assert (np.diff(best) > 0).all() and best[-1] > 4  # the unclipped ratio keeps growing
    np.testing.assert_allclose(clipped.sum(-1), 1.0)
    np.testing.assert_allclose(clipped[0], PI_OLD)


def test_sample_sets_in_a_batch_are_independent():
    sets = [noisy_samples(seed) for seed in range(3)]
    actions, adv = np.stack([a for a, _ in sets]), np.stack([v for _, v in sets])
    batched = surrogate_ascent(PI_OLD, actions, adv, 0.2, epochs=5)
    assert batched.shape == (6, 3, 4)
    for i, (a, v) in enumerate(sets):
        np.testing.assert_allclose(batched[:, i], surrogate_ascent(PI_OLD, a, v, 0.2, epochs=5), rtol=1e-12)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(pi_old=[0.5, 0.6]), "pi_old"),
        (dict(pi_old=[1.0, 0.0]), "pi_old"),
        (dict(actions=[0, 4]), "actions"),
        (dict(actions=[0.0, 1.0]), "actions"),
        (dict(advantages=[1.0]), "advantages"),
        (dict(clip_eps=0.0), "clip_eps"),
        (dict(epochs=0), "epochs"),
        (dict(lr=-1.0), "lr"),
    ],
)
def test_surrogate_ascent_rejects_bad_input_by_name(kwargs, name):
    args = dict(pi_old=[0.5, 0.5], actions=[0, 1], advantages=[1.0, -1.0], clip_eps=0.2, epochs=3, lr=1.0)
    with pytest.raises(ValueError, match=name):
        surrogate_ascent(**{**args, **kwargs})


def test_ratio_epochs_keeps_exact_quantities(result):
    assert isinstance(result, RatioEpochs)
    assert result.labels == ["unclipped", "ε = 0.1", "ε = 0.2", "ε = 0.3"] and result.epochs == 30
    assert result.policies.shape == result.ratios.shape == (4, 31, 4)
    np.testing.assert_allclose(result.ratios, result.policies / PI_OLD)
    np.testing.assert_allclose(result.improvement, result.policies @ REWARDS - PI_OLD @ REWARDS)
    np.testing.assert_allclose(result.kl[:, 0], 0.0, atol=1e-15)
    assert (result.kl >= -1e-15).all()
    omega = result.policies[:, :, result.actions] / PI_OLD[result.actions]
    surrogate = (omega * result.advantages).mean(-1)  # the unclipped sample surrogate of every run
    np.testing.assert_allclose(result.estimate, surrogate - result.advantages.mean())
    np.testing.assert_allclose(result.estimate[:, 0], 0.0, atol=1e-15)
    np.testing.assert_allclose(result.objective[0], surrogate[0])
    assert (result.objective[1:] <= surrogate[1:] + 1e-12).all()  # the clipped objective is lower
    np.testing.assert_allclose(result.objective[:, 0], surrogate[:, 0])  # omega = 1 at epoch 0
    assert np.isnan(result.clip_fraction[0]).all()
    for i, eps in enumerate((0.1, 0.2, 0.3), start=1):
        np.testing.assert_allclose(result.clip_fraction[i], (np.abs(omega[i] - 1) > eps).mean(-1))
    assert result.run(None) == 0 and result.run(0.2) == 2
    with pytest.raises(ValueError, match="clip_eps"):
        result.run(0.25)


def test_the_notebooks_sample_set_shows_the_runaway(result):
    # what notebook 07 says about this sample set (seed 1)
    u, c = result.run(None), result.run(0.2)
    assert result.kl[u, -1] > 0.4 and result.kl[c].max() < 0.05
    assert result.improvement[u, -1] < 0 < result.improvement[c, -1]
    assert result.estimate[u, -1] > 0.1  # the unclipped run believes it improved
    assert result.improvement[u].max() > 0.02 and result.improvement[u, 10] > 0  # it did, for a while
    assert (np.abs(np.log(result.ratios[c])) < np.log(1.5)).all()


def test_ratio_epochs_rejects_bad_input_by_name():
    actions, adv = noisy_samples(0)
    with pytest.raises(ValueError, match="rewards"):
        ratio_epochs(PI_OLD, REWARDS[:3], actions, adv)
    with pytest.raises(ValueError, match="actions"):
        ratio_epochs(PI_OLD, REWARDS, np.stack([actions, actions]), np.stack([adv, adv]))


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
    monkeypatch.setattr(w.ppo, "draw_ratio_epochs", lambda r, k, e, fig=None: drawn.append((k, e)) or original(r, k, e))
    view.epoch.value = 30
    view.clip_eps.value = 0.1
    assert drawn == [(30, 0.2), (30, 0.1)]
    with pytest.raises(ValueError, match="epoch"):
        ratio_epochs_view(result, epoch=40)


# -------------------------------------------------------------------------------------------------- runs on CartPole


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
        "PPO (clip)": fake_history(dict(approx_kl=[0.01, 0.02], clip_fraction=[0.1, 0.2], entropy=[0.69, 0.6])),
        "PPO-KL": fake_history(dict(kl=[0.03, 0.005], kl_coef=[1.0, 2.0], approx_kl=[9.0, 9.0], entropy=[0.69, 0.5])),
        "TRPO": fake_history(dict(kl=[0.009, 0.008], entropy=[0.69, 0.65])),
    }
    fig = draw_ppo_vs_trpo(runs, threshold=475)
    _, ax_kl, ax_h, ax_coef = fig.axes
    lines = {line.get_label(): line for line in ax_kl.get_lines()}
    np.testing.assert_allclose(lines["PPO (clip): approx. KL(π_old ‖ π_new)"].get_ydata(), [0.01, 0.02])
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
        eps: fake_history(dict(clip_fraction=[eps / 2, eps, eps / 4], approx_kl=[eps / 10, eps / 20, eps / 30]))
        for eps in (0.1, 0.2, 0.3)
    }


def test_clip_diagnostics_figure_highlights_one_epsilon_and_smooths(eps_runs):
    fig = draw_clip_diagnostics(eps_runs, clip_eps=0.2)
    ax_cf, ax_kl, _ = fig.axes
    widths = {line.get_label(): line.get_linewidth() for line in ax_cf.get_lines()}
    assert widths["ε = 0.2"] > widths["ε = 0.1"] == widths["ε = 0.3"]
    assert "0.117" in ax_cf.get_title()  # mean clip fraction of the eps = 0.2 run: (0.1 + 0.2 + 0.05) / 3
    fig = draw_clip_diagnostics(eps_runs, clip_eps=None, smooth=2)
    line = [line for line in fig.axes[0].get_lines() if line.get_label() == "ε = 0.3"][0]
    np.testing.assert_allclose(line.get_ydata(), [0.15, 0.225, 0.1875])  # rolling mean over 2 iterations
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
        w.ppo, "draw_clip_diagnostics", lambda r, e, s, fig=None: drawn.append((e, s)) or original(r, e, s)
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
