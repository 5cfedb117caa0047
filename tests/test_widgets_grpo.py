"""The GRPO views of notebook 08: the figures' content, the views' controls (headless), and the
precomputed runs shipped with the package (the groups of 0/1 rewards are tested in
tests/test_group_rewards.py)."""

import json
from importlib import resources

import matplotlib
import numpy as np
import pytest
import torch

from rlcourse.advantages import group_relative_advantages
from rlcourse.algos import grpo
from rlcourse.config import to_dict
from rlcourse.training import History
from rlcourse.widgets import (
    accuracy_curve,
    draw_group_advantages,
    draw_grpo_sweep,
    draw_method_comparison,
    group_advantages_view,
    grpo_sweep_view,
    load_grpo_data,
    sample_group,
)

matplotlib.use("Agg")


def test_group_figure_shows_rewards_and_both_advantages():
    fig = draw_group_advantages(6, 0.5, seed=3)
    left, right = fig.axes
    rewards = sample_group(6, 0.5, seed=3)
    heights = [patch.get_height() for patch in left.patches]
    assert heights[:6] == pytest.approx(rewards)
    assert heights[6:12] == pytest.approx(group_relative_advantages(torch.tensor(rewards)).numpy())
    assert "P(all rewards equal)" in right.get_ylabel()
    assert "every advantage is 0" in draw_group_advantages(4, 1.0).axes[0].get_title()
    assert "groups with no signal: 100.0%" in draw_group_advantages(4, 1.0).axes[1].get_title()
    import rlcourse.widgets.grpo as module

    view = group_advantages_view(group_size=4, p=1.0)
    drawn = []
    original = module.draw_group_advantages
    module.draw_group_advantages = lambda g, p, s=0, fig=None: drawn.append((g, p, s)) or original(
        g, p, s
    )
    try:
        view.group_size.value = 16
        view.p.value = 0.5
    finally:
        module.draw_group_advantages = original
    assert drawn == [(16, 1.0, 0), (16, 0.5, 0)]  # each move redraws with the new values
    with pytest.raises(ValueError, match="at least 2"):
        group_advantages_view(group_size=1)


def _fake_curve(final: float, n: int = 5) -> dict:
    return {
        "answers": list(np.linspace(0, 4000, n)),
        "seconds": list(np.linspace(0, 10, n)),
        "accuracy": list(np.linspace(0.3, final, n)),
    }


def test_method_comparison_draws_seeds_and_medians():
    results = {
        "grpo": [{"curve": _fake_curve(0.9)}, {"curve": _fake_curve(0.8)}],
        "rloo": [_fake_curve(0.5)],
    }
    fig = draw_method_comparison(results, x="seconds")
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.lines]
    assert any("GRPO (median of 2)" in label for label in labels)
    median = next(line for line in ax.lines if "GRPO" in line.get_label())
    assert median.get_ydata()[-1] == pytest.approx(0.85)
    with pytest.raises(ValueError, match="'answers' or 'seconds'"):
        draw_method_comparison(results, x="steps")


def _fake_sweep() -> dict:
    sweep = {
        "clip_eps": [0.1, 0.2],
        "group_size": [4, 8],
        "kl_coef": [0.0, 0.1],
        "aggregation": ["sequence", "token"],
    }
    runs = {}
    for knob, values in sweep.items():
        for k, value in enumerate(values):
            runs[f"{knob}={value}"] = {"knob": knob, "value": value, **_fake_curve(0.5 + 0.1 * k)}
    return {"sweep": sweep, "runs": runs}


def test_sweep_view_highlights_the_chosen_runs():
    sweep = _fake_sweep()
    fig = draw_grpo_sweep(sweep, 0.1, 8, 0.0, "token")
    widths = {ax.get_title(): [line.get_linewidth() for line in ax.lines] for ax in fig.axes}
    assert widths["ε (clip range)"][0] > widths["ε (clip range)"][1]
    assert widths["G (group size)"][1] > widths["G (group size)"][0]
    assert widths["averaging over tokens"][1] > widths["averaging over tokens"][0]
    with pytest.raises(ValueError, match="clip_eps=0.3 is not allowed"):
        draw_grpo_sweep(sweep, 0.3, 8, 0.0)
    with pytest.raises(ValueError, match="not allowed"):
        grpo_sweep_view(sweep, clip_eps=0.3)
    view = grpo_sweep_view(sweep)
    view.kl_coef.value = 0.1
    view.aggregation.value = "token"
    assert view.kl_coef.value == 0.1


def test_accuracy_curve_reads_a_history():
    h = History()
    h.add_evaluation(0, np.array([1.0, 0.0]))
    h.add_evaluation(256, np.array([1.0, 1.0]))
    c = accuracy_curve(h)
    assert c["answers"] == [0, 256] and c["accuracy"] == [0.5, 1.0]


# -- the shipped precomputed runs
# -------------------------------------------------------------------------------
def test_shipped_benchmark_has_three_methods_three_seeds_from_one_start():
    data = load_grpo_data("benchmark")
    assert set(data) == {"grpo", "rloo", "ppo"}
    preset = grpo.PRESETS["grpo"]
    answers = preset.iterations * preset.questions * preset.group_size
    for _method, runs in data.items():
        assert [r["seed"] for r in runs] == [0, 1, 2]
        for r in runs:
            c = r["curve"]
            assert c["answers"][-1] == answers and len(c["answers"]) == len(c["accuracy"])
            assert all(0 <= a <= 1 for a in c["accuracy"])
    for seed in range(3):  # one warm start per seed, shared by the three methods
        assert len({runs[seed]["curve"]["accuracy"][0] for runs in data.values()}) == 1
    with pytest.raises(ValueError, match="'benchmark' or 'sweep'"):
        load_grpo_data("other")


def test_shipped_sweep_matches_the_preset_and_varies_one_knob_at_a_time():
    data = load_grpo_data("sweep")
    preset = to_dict(grpo.PRESETS["grpo"])
    assert {k: v for k, v in data["config"].items() if k != "iterations"} == {
        k: v for k, v in preset.items() if k != "iterations"
    }
    budgets = {r["answers"][-1] for r in data["runs"].values()}
    assert len(budgets) == 1  # every run sampled the same number of answers
    for knob, values in data["sweep"].items():
        assert sorted(
            str(r["value"]) for r in data["runs"].values() if r["knob"] == knob
        ) == sorted(map(str, values))
    view = grpo_sweep_view(data)
    assert view.clip_eps.value == 0.2


def test_the_stored_continuation_is_notebook_8s_run_trained_on():
    # Section 5 trains the first iterations live and shows this run for the rest: the grpo preset
    # from its warm start, 800 iterations, evaluated every 50 (python -m benchmarks grpo
    # --continuation). Its policy must be the run's: it scores the run's last held-out accuracy.
    from rlcourse.qa import accuracy
    from rlcourse.widgets import load_grpo_continuation

    history, policy = load_grpo_continuation()
    stored = json.loads(
        resources.files("rlcourse").joinpath("data", "grpo_continuation.json").read_text()
    )
    assert stored["config"] == to_dict(grpo.PRESETS["grpo"])  # the notebook's live run's config
    assert len(history.iterations) == 800
    assert [int(r["env_step"]) for r in history.evaluations] == [256 * 50 * k for k in range(17)]
    config = grpo.PRESETS["grpo"]
    assert accuracy(policy, grpo.make_task(config)) == pytest.approx(
        history.evaluations[-1]["mean_return"]
    )
    assert history.evaluations[-1]["mean_return"] > history.evaluations[0]["mean_return"] + 0.3
