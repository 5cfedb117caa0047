"""The views of notebook 01: the summary table's HTML, the slide map, training a preset on a tiny
budget, and the train view's controls (headless: the figures are caught where the view would show
them)."""

import html as html_module
import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest

import rlcourse.widgets
from rlcourse.catalog import NOTEBOOKS, SLIDE_MAP
from rlcourse.training import History
from rlcourse.widgets import overview
from rlcourse.widgets.overview import (
    GRPO_TARGET,
    GRPO_TASK,
    NOTEBOOK_TITLES,
    default_steps,
    draw_run,
    preset_pairs,
    run_summary,
    slide_map_html,
    summary_table_html,
    train_preset,
    train_view,
)

matplotlib.use("Agg")
NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"


def _rows(html: str) -> dict[str, list[str]]:
    rows = re.findall(r'<tr data-algo="(\w+)">(.*?)</tr>', html)
    return {name: re.findall(r"<td[^>]*>(.*?)</td>", cells) for name, cells in rows}


def test_summary_table_has_the_nine_rows_and_the_slides_marks():
    html = summary_table_html().data
    rows = _rows(html)
    assert list(rows) == ["dqn", "reinforce", "a2c", "ddpg", "td3", "sac", "trpo", "ppo", "grpo"]
    # columns: algorithm, class, on-policy, continuous states, finite actions, continuous actions,
    # deterministic
    marks = {name: cells[2:7] for name, cells in rows.items()}
    assert marks["dqn"] == ["✗", "✓", "✓", "✗", "✓"]
    assert marks["ddpg"] == ["✗", "✓", "✗", "✓", "✓"]  # DDPG: no finite actions, deterministic
    assert marks["td3"] == marks["ddpg"]
    assert marks["sac"] == ["✗", "✓", "✓†", "✓", "✗"]
    assert marks["a2c"] == ["✓", "✓", "✓", "✓", "✗"]
    assert marks["trpo"][0] == marks["ppo"][0] == marks["grpo"][0] == "✓*"
    assert marks["grpo"][3] == "✗‡"  # the one place the package differs from the slide: tokens
    assert "single-epoch" in html and "Christodoulou, 2019" in html and "tokens" in html
    for name, cells in rows.items():
        (link,) = re.findall(r'href="([^"]+)"', cells[-1])
        assert link == NOTEBOOKS[name] and (NOTEBOOK_DIR / link).exists()


def test_slide_map_lists_every_slide_with_a_link_to_an_existing_notebook():
    html = slide_map_html().data
    body = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td></tr>", html)
    assert len(body) == len(SLIDE_MAP)
    for (title, where, code), (slide, section, functions) in zip(body, SLIDE_MAP, strict=True):
        assert html_module.unescape(title) == slide
        assert re.findall(r'href="([^"]+)"', where)[0] == NOTEBOOK_TITLES[section[:2]][0]
        assert all(f"rlcourse.{f}" in code for f in functions)
    for file, _ in NOTEBOOK_TITLES.values():
        assert (NOTEBOOK_DIR / file).exists(), file


def test_train_preset_runs_a_tiny_budget():
    history = train_preset("a2c", "CartPole-v1", 2_000, seed=1, progress=False)
    assert isinstance(history, History) and len(history.episodes) > 10
    assert 1_900 <= history.episodes[-1]["env_step"] <= 2_000
    summary = run_summary(history, "CartPole-v1")
    assert "steps in" in summary and "threshold 475" in summary


def test_train_preset_grpo_counts_answers(monkeypatch):
    # an untrained reference instead of the warm start (seconds), to test the wiring only
    from rlcourse.algos import grpo
    from rlcourse.qa import TokenPolicy

    monkeypatch.setattr(overview, "_GRPO_REFERENCES", {})
    monkeypatch.setattr(
        grpo,
        "make_reference",
        lambda config: TokenPolicy(hidden=config.hidden).requires_grad_(False),
    )
    history = train_preset("grpo", GRPO_TASK, 2 * 256 + 100, progress=False)
    assert len(history.iterations) == 2 and history.iterations[-1]["env_step"] == 512
    assert not history.episodes and len(history.evaluations) >= 2
    assert "accuracy" in run_summary(history, GRPO_TASK)


def test_unknown_pairs_and_bad_budgets_are_refused():
    with pytest.raises(
        ValueError, match=r"algo='ddpg' with env_id='CartPole-v1' is not allowed.*ddpg: Pendulum-v1"
    ):
        train_preset("ddpg", "CartPole-v1", 1_000)
    with pytest.raises(ValueError, match=r"algo='sarsa' is not allowed.*a2c: CartPole-v1"):
        train_preset("sarsa", "CartPole-v1", 1_000)
    with pytest.raises(ValueError, match="steps=0"):
        train_preset("a2c", "CartPole-v1", 0)
    with pytest.raises(ValueError, match="with env_id='Pendulum-v1'"):
        train_view("dqn", "Pendulum-v1")


@pytest.fixture
def shown(monkeypatch):
    """The figures the views show, in order (instead of an Output widget, which needs a kernel)."""
    figures = []
    monkeypatch.setattr(rlcourse.widgets._view, "_show", lambda output, fig: figures.append(fig))
    return figures


def test_the_environments_follow_the_algorithm(shown):
    view = train_view("a2c", "CartPole-v1", progress=False)
    assert len(shown) == 1 and "not trained yet" in view.status.value
    for algo, envs in preset_pairs().items():
        view.algo.value = algo
        assert [value for _, value in view.env.options] == envs
        assert view.env.value == envs[0]
        assert view.steps.value == default_steps(algo, envs[0])
        assert view.steps.description == ("answers" if algo == "grpo" else "steps")
    view.algo.value = "ppo"
    view.env.value = "Pendulum-v1"
    assert view.steps.value == default_steps("ppo", "Pendulum-v1")
    assert not view.runs  # nothing trained without a click


def test_train_draws_the_curve_and_keeps_the_run(shown):
    view = train_view("a2c", "CartPole-v1", steps=2_000, progress=False)
    history = view.train()
    assert ("a2c", "CartPole-v1") in view.runs
    assert view.runs["a2c", "CartPole-v1"].history is history
    assert "mean return" in view.status.value
    fig = shown[-1]
    assert len(fig.axes) == 2
    assert max(len(line.get_xdata()) for line in fig.axes[0].lines) == len(history.episodes)
    view.algo.value = "dqn"  # an untrained pair: empty axes
    assert max(len(line.get_xdata()) for line in shown[-1].axes[0].lines) <= 2
    view.algo.value = "a2c"  # back: the kept run, drawn without training
    assert view.runs["a2c", "CartPole-v1"].history is history and view.steps.value == 2_000
    assert max(len(line.get_xdata()) for line in shown[-1].axes[0].lines) == len(history.episodes)


def _threshold_lines(ax, y):
    return [
        line for line in ax.lines if len(line.get_ydata()) == 2 and np.allclose(line.get_ydata(), y)
    ]


def test_draw_run_has_steps_and_seconds_with_the_threshold():
    history = History()
    for k in range(30):
        history.add_episode(env_step=100 * (k + 1), ret=10.0 * k, length=100)
    fig = draw_run(history, "a2c", "CartPole-v1")
    left, right = fig.axes
    assert left.get_xlabel() == "environment steps" and right.get_xlabel() == "wall-clock seconds"
    assert _threshold_lines(left, 475.0) and _threshold_lines(right, 475.0)
    assert "A2C on CartPole-v1" in fig._suptitle.get_text()
    matplotlib.pyplot.close(fig)

    grpo_history = History()
    for k, acc in enumerate([0.3, 0.5, 0.7]):
        grpo_history.add_evaluation(
            256 * k, np.array([1.0] * int(10 * acc) + [0.0] * (10 - int(10 * acc)))
        )
    fig = draw_run(grpo_history, "grpo", GRPO_TASK)
    assert len(fig.axes) == 2 and all(_threshold_lines(ax, GRPO_TARGET) for ax in fig.axes)
    assert fig.axes[0].get_ylabel() == "held-out greedy accuracy"
    matplotlib.pyplot.close(fig)


def test_the_status_names_the_budget_a_click_would_train_for(monkeypatch):
    import rlcourse.widgets as w

    monkeypatch.setattr(w._view, "_show", lambda output, fig: None)
    view = w.train_view("a2c", "CartPole-v1", progress=False)
    view.steps.value = 3_000
    assert "3,000 environment steps" in view.status.value
