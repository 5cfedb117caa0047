"""The views of ``notebooks/01_overview.ipynb``: the slides' summary table built from the package,
the map from slides to code, and any row of the table trained on the spot.

The same three layers as the other views (see :mod:`rlcourse.widgets`): :func:`train_preset`
computes (one training run from the package's presets, with a short budget), :func:`draw_run` /
:func:`draw_runs` plot finished runs, and :func:`train_view` puts ipywidgets controls on top.
Choosing an algorithm or an environment only redraws; training sits behind the "train" button (or
``view.train()``), and finished runs are kept, so going back to a trained pair shows its curve at
once.

GRPO, the table's last row, trains a language model on :mod:`rlcourse.qa`'s question-answer task
rather than on a gymnasium environment; here it appears as the "environment" :data:`GRPO_TASK`, its
budget counts sampled answers, and its curve is the held-out greedy accuracy.

The default budgets of the train view are :mod:`rlcourse.budgets`' ``"01/<algo>/<env_id>"``
(:func:`default_steps`), small ones under ``RLCOURSE_FAST=1``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from html import escape

from rlcourse.algos.grpo import TARGET_ACCURACY, TASK
from rlcourse.budgets import budget
from rlcourse.training import History
from rlcourse.widgets import _view

__all__ = [
    "ALGORITHM_LABELS",
    "GRPO_TASK",
    "GRPO_TARGET",
    "NOTEBOOK_TITLES",
    "summary_table_html",
    "slide_map_html",
    "preset_pairs",
    "default_steps",
    "max_steps",
    "train_preset",
    "run_summary",
    "draw_runs",
    "draw_run",
    "train_view",
]

ALGORITHM_LABELS = {
    "dqn": "DQN",
    "reinforce": "REINFORCE",
    "a2c": "A2C",
    "ddpg": "DDPG",
    "td3": "TD3",
    "sac": "SAC",
    "trpo": "TRPO",
    "ppo": "PPO",
    "grpo": "GRPO",
}

# GRPO's "environment": the question-answer task of rlcourse.qa (integer sums, reward 1 for a
# right answer), by the name its make_agent and `rlcourse train grpo --env` accept.
GRPO_TASK = TASK
# The held-out accuracy notebook 08 and python -m benchmarks grpo count as solved.
GRPO_TARGET = TARGET_ACCURACY

# The lecture's notebooks, in order: number -> (file, short title).
NOTEBOOK_TITLES = {
    "01": ("01_overview.ipynb", "Overview"),
    "02": ("02_advantage_estimation.ipynb", "Advantage estimation"),
    "03": ("03_deterministic_policy_gradients.ipynb", "Deterministic policy gradients"),
    "04": ("04_soft_value_functions.ipynb", "Soft value functions"),
    "05": ("05_importance_sampling.ipynb", "Importance sampling"),
    "06": ("06_trpo_bound.ipynb", "The TRPO bound"),
    "07": ("07_ppo_clipping.ipynb", "PPO clipping"),
    "08": ("08_grpo.ipynb", "GRPO"),
}

_TABLE_STYLE = (
    "<style>.rlc-table td, .rlc-table th {text-align: left; padding: 2px 8px; vertical-align: top}"
    " .rlc-table td.mark {text-align: center}</style>"
)


# --------------------------------------------------------------------------------------------------
# The summary table and the slide map
# --------------------------------------------------------------------------------------------------


def _notebook_link(number: str, sections: str | None = None) -> str:
    file, title = NOTEBOOK_TITLES[number]
    text = f"{number} · {title}" + (f", § {sections}" if sections else "")
    return f'<a href="{file}">{escape(text)}</a>'


def _mark(value: bool, note: str = "") -> str:
    return ("✓" if value else "✗") + note


def summary_table_html(rows=None):
    """The slides' summary table as HTML, one row per algorithm, ✓/✗ marks and a link to its
    notebook.

    ``rows`` defaults to :func:`rlcourse.catalog.summary_table` (built from the package's metadata
    and by probing the code). Footnotes: ✓* (on-policy in the single-epoch version only), † (SAC
    with finite actions, Christodoulou, 2019) and ‡ (where this package differs from the slide:
    GRPO's actions are tokens). Returns an ``IPython.display.HTML`` object (its ``.data`` is the
    HTML text).
    """
    from IPython.display import HTML

    from rlcourse.catalog import summary_table

    rows = summary_table() if rows is None else list(rows)
    head = [
        "algorithm",
        "class",
        "on-policy",
        "continuous states",
        "finite actions",
        "continuous actions",
        "deterministic policy",
        "reference",
        "notebook",
    ]
    used = set()
    body = []
    for row in rows:
        finite_note = "†" if row.name == "sac" and row.finite_actions else ""
        continuous_note = "‡" if row.name == "grpo" and not row.continuous_actions else ""
        used.update(n for n in (finite_note, continuous_note) if n)
        if row.on_policy.endswith("*"):
            used.add("*")
        number = row.notebook[:2]
        link = _notebook_link(number) if number in NOTEBOOK_TITLES else escape(row.notebook)
        cells = [
            f"<td><b>{escape(ALGORITHM_LABELS.get(row.name, row.name))}</b></td>",
            f"<td>{escape(row.algo_class)}</td>",
            f'<td class="mark">{escape(row.on_policy)}</td>',
            f'<td class="mark">{_mark(row.continuous_states)}</td>',
            f'<td class="mark">{_mark(row.finite_actions, finite_note)}</td>',
            f'<td class="mark">{_mark(row.continuous_actions, continuous_note)}</td>',
            f'<td class="mark">{_mark(row.deterministic)}</td>',
            f"<td><small>{escape(row.reference)}</small></td>",
            f"<td>{link}</td>",
        ]
        body.append(f'<tr data-algo="{escape(row.name)}">' + "".join(cells) + "</tr>")
    notes = {
        "*": "✓* on-policy only in the single-epoch version: the algorithm's <code>Config</code> "
        "has <code>epochs</code>, and every epoch after the first reuses data of an older policy.",
        "†": '† finite actions with SAC: see Christodoulou, 2019, "Soft actor-critic for discrete '
        'action settings" (<code>rlcourse.algos.sac</code> has this variant).',
        "‡": "‡ the slide has ✓: GRPO itself works with any policy, but here it trains a small "
        "language model, whose actions are tokens.",
    }
    footer = "".join(f"<br><small>{notes[k]}</small>" for k in ("*", "†", "‡") if k in used)
    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    return HTML(
        f'{_TABLE_STYLE}<table class="rlc-table"><thead><tr>{header}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>{footer}"
    )


def slide_map_html():
    """:data:`rlcourse.catalog.SLIDE_MAP` as an HTML table: each slide, the notebook section that
    teaches it (a link) and the package functions that implement it. Returns an
    ``IPython.display.HTML`` object."""
    from IPython.display import HTML

    from rlcourse.catalog import SLIDE_MAP

    body = []
    for title, section, functions in SLIDE_MAP:
        number, _, sections = section.partition(" · ")
        where = (
            _notebook_link(number, sections or None)
            if number in NOTEBOOK_TITLES
            else escape(section)
        )
        code = "<br>".join(f"<code>rlcourse.{escape(f)}</code>" for f in functions)
        body.append(f"<tr><td>{escape(title)}</td><td>{where}</td><td>{code}</td></tr>")
    header = "".join(f"<th>{h}</th>" for h in ("slide", "notebook, section", "package"))
    return HTML(
        f'{_TABLE_STYLE}<table class="rlc-table"><thead><tr>{header}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


# --------------------------------------------------------------------------------------------------
# Training a preset with a short budget
# --------------------------------------------------------------------------------------------------


def preset_pairs() -> dict[str, list[str]]:
    """Algorithm -> the environments it has a preset for, in the summary table's order (GRPO: its
    task)."""
    from rlcourse.algos import ALGORITHMS

    pairs = {name: list(module.PRESETS) for name, module in ALGORITHMS.items()}
    pairs["grpo"] = [GRPO_TASK]
    return pairs


def _check_pair(algo: str, env_id: str) -> None:
    pairs = preset_pairs()
    if algo not in pairs or env_id not in pairs[algo]:
        allowed = "; ".join(f"{a}: {', '.join(envs)}" for a, envs in pairs.items())
        what = f"algo={algo!r}" if algo not in pairs else f"algo={algo!r} with env_id={env_id!r}"
        raise ValueError(f"{what} is not allowed: the presets are {allowed}")


def default_steps(algo: str, env_id: str) -> int:
    """The train view's default budget for a pair (env steps; GRPO: answers sampled): the budget
    ``"01/<algo>/<env_id>"`` of :mod:`rlcourse.budgets`, short enough for class (the on-policy
    presets' full budgets, a part of the off-policy ones), tiny under ``RLCOURSE_FAST=1``."""
    _check_pair(algo, env_id)
    return budget(f"01/{algo}/{env_id}")


def max_steps(algo: str, env_id: str) -> int:
    """The preset's full budget, the one known to solve the environment."""
    _check_pair(algo, env_id)
    if algo == "grpo":
        from rlcourse.algos import grpo

        config = grpo.PRESETS["grpo"]
        return config.iterations * config.questions * config.group_size
    from rlcourse.algos import ALGORITHMS

    return ALGORITHMS[algo].PRESETS[env_id].total_steps


# seed -> warm-started reference policy (seconds to make, so kept)
_GRPO_REFERENCES: dict[int, object] = {}


def _train_grpo(steps: int, seed: int, progress: bool) -> History:
    from rlcourse.algos import grpo
    from rlcourse.config import replace

    config = replace(grpo.PRESETS["grpo"], seed=seed)
    if seed not in _GRPO_REFERENCES:
        _GRPO_REFERENCES[seed] = grpo.make_reference(config)
    iterations = max(1, steps // (config.questions * config.group_size))
    _, history = grpo.train(
        config,
        reference=_GRPO_REFERENCES[seed],
        progress=progress,
        iterations=iterations,
        eval_every=max(1, iterations // 10),
    )
    return history


def train_preset(
    algo: str, env_id: str, steps: int, seed: int = 0, progress: bool = True
) -> History:
    """Train ``algo`` on ``env_id`` with the package's preset, ``total_steps`` set to ``steps``;
    return the History.

    For ``algo="grpo"`` (``env_id=GRPO_TASK``) ``steps`` counts sampled answers: the preset runs
    ``steps // (questions * group_size)`` iterations (256 answers each) from a warm-started
    reference policy, made once per seed and kept.
    """
    _check_pair(algo, env_id)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(
            f"steps={steps!r} is not allowed: a positive integer number of environment steps"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed={seed!r} is not allowed: a non-negative integer")
    if algo == "grpo":
        return _train_grpo(steps, seed, progress)
    from rlcourse.algos import ALGORITHMS

    module = ALGORITHMS[algo]
    _, history = module.train(
        env_id, module.PRESETS[env_id], progress=progress, total_steps=steps, seed=seed
    )
    return history


def _last(history: History, column: str) -> float:
    values = [
        rows[-1][column]
        for rows in (history.episodes, history.iterations, history.evaluations)
        if rows
    ]
    return max(values) if values else 0.0


def run_summary(history: History, env_id: str, window: int = 20) -> str:
    """One line about a finished run: steps, seconds, the final mean return (GRPO: accuracy) and
    when it first reached the threshold."""
    steps, seconds = _last(history, "env_step"), _last(history, "wall_time")
    if not history.episodes:  # GRPO: only held-out evaluations
        if not history.evaluations:
            return "no evaluation yet"
        acc = [row["mean_return"] for row in history.evaluations]
        return (
            f"{steps:,.0f} answers in {seconds:.0f} s: held-out greedy accuracy "
            f"{acc[0]:.0%} → {acc[-1]:.0%} (target {GRPO_TARGET:.0%})"
        )
    from rlcourse.plots import THRESHOLDS

    text = (
        f"{steps:,.0f} steps in {seconds:.0f} s, {len(history.episodes)} episodes: "
        f"mean return of the last {window} {history.mean_return(window):.1f}"
    )
    if history.evaluations:
        text += f", last greedy evaluation {history.evaluations[-1]['mean_return']:.1f}"
    threshold = THRESHOLDS.get(env_id)
    if threshold is not None:
        first = history.first_reaching(threshold, window)
        text += (
            f"; threshold {threshold:g} reached after {first['env_step']:,.0f} steps "
            f"({first['wall_time']:.1f} s)"
            if first
            else f"; threshold {threshold:g} not reached"
        )
    return text


# --------------------------------------------------------------------------------------------------
# Learning curves against env steps and against wall seconds
# --------------------------------------------------------------------------------------------------


def draw_runs(
    runs: Mapping[str, History], env_id: str, window: int = 20, title: str | None = None, fig=None
):
    """Learning curves of several runs on one environment: left against environment steps, right
    against wall seconds, the solve threshold dashed. For the GRPO task: held-out greedy accuracy
    against answers sampled."""
    import matplotlib.pyplot as plt

    from rlcourse.plots import THRESHOLDS, learning_curve

    if fig is None:
        fig = plt.figure(figsize=(11, 3.8))
    fig.clear()
    axes = fig.subplots(1, 2, sharey=True)
    if env_id == GRPO_TASK:
        for ax, x in zip(axes, ("env_step", "wall_time"), strict=True):
            for k, (label, history) in enumerate(runs.items()):
                ax.plot(
                    history.column(x, "evaluations"),
                    history.column("mean_return", "evaluations"),
                    "o-",
                    color=f"C{k}",
                    markersize=4,
                    label=label,
                )
            ax.axhline(
                GRPO_TARGET, color="k", linestyle="--", linewidth=1, label=f"target {GRPO_TARGET:g}"
            )
            ax.set_xlabel("answers sampled" if x == "env_step" else "wall-clock seconds")
            ax.set_ylim(0, 1)
            ax.grid(alpha=0.3)
            ax.legend(loc="best", fontsize="small")
        axes[0].set_ylabel("held-out greedy accuracy")
    else:
        for ax, x in zip(axes, ("env_step", "wall_time"), strict=True):
            learning_curve(dict(runs), threshold=THRESHOLDS.get(env_id), window=window, x=x, ax=ax)
        axes[1].set_ylabel("")
    if not runs:
        for ax in axes:
            ax.text(
                0.5,
                0.3,
                "not trained yet: press 'train'",
                transform=ax.transAxes,
                ha="center",
                va="center",
                color="0.4",
            )
    fig.suptitle(title or env_id)
    fig.tight_layout()
    return fig


def draw_run(history: History | None, algo: str, env_id: str, window: int = 20, fig=None):
    """One run's learning curve against env steps and wall seconds (:func:`draw_runs`);
    ``history=None`` draws the empty axes of a pair not trained yet."""
    label = ALGORITHM_LABELS.get(algo, algo)
    runs = {} if history is None else {label: history}
    return draw_runs(runs, env_id, window=window, title=f"{label} on {env_id}", fig=fig)


# --------------------------------------------------------------------------------------------------
# The view: pick a row of the table and train it
# --------------------------------------------------------------------------------------------------


@dataclass
class _Run:
    history: History
    steps: int
    seed: int


def train_view(
    algo: str = "a2c",
    env_id: str = "CartPole-v1",
    steps: int | None = None,
    seed: int = 0,
    progress: bool = True,
):
    """An algorithm dropdown, an environment dropdown whose options are that algorithm's presets, a
    steps slider, a seed box and a "train" button over :func:`train_preset` and :func:`draw_run`.

    A click trains with the chosen budget (a progress bar in the view's output), then draws the
    curve. Finished runs are kept per (algorithm, environment): choosing a trained pair again
    redraws it without training. Nothing trains before a click or a call of ``view.train()``.

    Returns an ``ipywidgets.VBox`` with attributes ``algo``, ``env``, ``steps``, ``seed``,
    ``button``, ``status``, ``output``, ``runs`` ((algo, env_id) -> run with ``.history``,
    ``.steps``, ``.seed``), ``train()`` (trains the current choice and returns its History) and
    ``redraw()`` (called once here).
    """
    import ipywidgets as widgets

    start_steps = default_steps(algo, env_id) if steps is None else steps  # checks the pair first
    if isinstance(start_steps, bool) or not isinstance(start_steps, int) or start_steps < 1:
        raise ValueError(
            f"steps={steps!r} is not allowed: a positive integer number of environment steps"
        )
    pairs = preset_pairs()

    def env_options(a):
        return [(f"{e} (integer sums)" if e == GRPO_TASK else e, e) for e in pairs[a]]

    algo_w = widgets.Dropdown(
        options=[(ALGORITHM_LABELS[a], a) for a in pairs], value=algo, description="algorithm"
    )
    env_w = widgets.Dropdown(options=env_options(algo), value=env_id, description="environment")
    env_w.style.description_width = "initial"
    steps_w = widgets.IntSlider(
        value=start_steps,
        min=500,
        max=max(max_steps(algo, env_id), start_steps),
        step=500,
        description="steps",
        continuous_update=False,
    )
    seed_w = widgets.BoundedIntText(
        value=seed, min=0, max=10_000, description="seed", layout={"width": "160px"}
    )
    button = widgets.Button(description="train", icon="play", button_style="primary")
    status = widgets.HTML("")
    output = widgets.Output()
    runs: dict[tuple[str, str], _Run] = {}
    switching = False

    def redraw(_=None):
        key = (algo_w.value, env_w.value)
        run = runs.get(key)
        _view._show(output, draw_run(run.history if run else None, *key))
        show_status()

    def show_status(_=None):
        key = (algo_w.value, env_w.value)
        run = runs.get(key)
        unit = "answers sampled" if key[0] == "grpo" else "environment steps"
        if run:
            status.value = (
                f"seed {run.seed}: {escape(run_summary(run.history, key[1]))} "
                "(kept: press <b>train</b> to run again)"
            )
        else:
            note = (
                " The first GRPO run of a seed also warm-starts its reference policy."
                if key[0] == "grpo"
                else ""
            )
            status.value = f"not trained yet: press <b>train</b> ({steps_w.value:,} {unit}).{note}"

    def sync_steps():
        key = (algo_w.value, env_w.value)
        value = runs[key].steps if key in runs else default_steps(*key)
        steps_w.max = max(max_steps(*key), value)
        steps_w.value = value
        steps_w.description = "answers" if key[0] == "grpo" else "steps"

    def on_algo(_):
        nonlocal switching
        switching = True
        try:
            env_w.options = env_options(algo_w.value)
            env_w.value = pairs[algo_w.value][0]
        finally:
            switching = False
        sync_steps()
        redraw()

    def on_env(_):
        if switching or env_w.value is None:
            return
        sync_steps()
        redraw()

    def train() -> History:
        key = (algo_w.value, env_w.value)
        n, s = int(steps_w.value), int(seed_w.value)
        button.disabled = True
        status.value = f"training {ALGORITHM_LABELS[key[0]]} on {key[1]}: {n:,} steps, seed {s} ..."
        try:
            with output:
                output.clear_output(wait=True)
                history = train_preset(*key, n, seed=s, progress=progress)
        finally:
            button.disabled = False
        runs[key] = _Run(history, n, s)
        redraw()
        return history

    def on_click(_):
        try:
            train()
        except Exception as err:  # a click has nobody to raise to: show it
            status.value = f"training failed: {escape(str(err))}"

    algo_w.observe(on_algo, names="value")
    env_w.observe(on_env, names="value")
    # the status names the budget a click would train for
    steps_w.observe(show_status, names="value")
    button.on_click(on_click)
    view = widgets.VBox(
        [widgets.HBox([algo_w, env_w]), widgets.HBox([steps_w, seed_w, button]), status, output]
    )
    view.algo, view.env, view.steps, view.seed, view.button = algo_w, env_w, steps_w, seed_w, button
    view.status, view.output, view.runs, view.train, view.redraw = (
        status,
        output,
        runs,
        train,
        redraw,
    )
    redraw()
    return view
