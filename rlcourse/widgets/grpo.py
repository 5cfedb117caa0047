"""The views of ``notebooks/08_grpo.ipynb``: group-relative advantages by hand, GRPO against RLOO
and PPO, and GRPO's hyperparameters switched over precomputed runs.

The same three layers as the other views (see :mod:`rlcourse.widgets`): plain functions that
compute, ``draw_*`` functions that plot one choice, ``*_view`` functions with ipywidgets controls
that only redraw.

The precomputed runs ship with the package (``rlcourse/data/grpo_benchmark.json`` and
``grpo_sweep.json``, written by ``python -m benchmarks grpo``); :func:`load_grpo_data` reads them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from importlib import resources

import numpy as np
import torch

from rlcourse.advantages import (
    all_equal_fraction,
    group_relative_advantages,
    leave_one_out_advantages,
    sample_group,
)
from rlcourse.training import History
from rlcourse.widgets._view import make_view

__all__ = [
    "draw_group_advantages",
    "group_advantages_view",
    "load_grpo_data",
    "load_grpo_continuation",
    "accuracy_curve",
    "draw_method_comparison",
    "draw_grpo_sweep",
    "grpo_sweep_view",
]

METHOD_LABELS = {
    "grpo": "GRPO",
    "rloo": "RLOO (REINFORCE, leave-one-out)",
    "ppo": "PPO (value head, GAE)",
}
KNOB_LABELS = {
    "clip_eps": "ε (clip range)",
    "group_size": "G (group size)",
    "kl_coef": "β (KL weight)",
    "aggregation": "averaging over tokens",
}
AGGREGATION_LABELS = {
    "sequence": "GRPO: 1/|o_i|",
    "token": "DAPO: per token",
    "dr_grpo": "Dr. GRPO: constant, no std",
}


# --------------------------------------------------------------------------------------------------
# Group-relative advantages by hand
# --------------------------------------------------------------------------------------------------


def draw_group_advantages(group_size: int, p: float, seed: int = 0, fig=None):
    """Left: one sampled group's rewards and its GRPO and RLOO advantages. Right: the fraction of
    groups whose rewards are all equal against ``G``, for the chosen success probability ``p`` (and
    a few others)."""
    import matplotlib.pyplot as plt

    rewards = sample_group(group_size, p, seed)
    r = torch.tensor(rewards)
    grpo_adv = group_relative_advantages(r).numpy()
    rloo_adv = leave_one_out_advantages(r).numpy()
    if fig is None:
        fig = plt.figure(figsize=(11, 3.8))
    fig.clear()
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.4, 1]})
    i = np.arange(group_size)
    width = 0.27
    left.bar(i - width, rewards, width, label="reward $R_i$", color="0.6")
    left.bar(i, grpo_adv, width, label=r"GRPO $(R_i - \mathrm{mean}) / \mathrm{std}$", color="C0")
    left.bar(
        i + width, rloo_adv, width, label=r"RLOO $R_i - \mathrm{mean}_{j \neq i} R_j$", color="C1"
    )
    left.axhline(0, color="k", lw=0.8)
    left.set_xticks(i if group_size <= 16 else i[::4])
    left.set_xlabel("answer $i$ in the group")
    equal = rewards.min() == rewards.max()
    left.set_title(
        f"one group, G = {group_size}, p = {p:.2f}: "
        + (
            "all rewards equal, every advantage is 0"
            if equal
            else f"{int(rewards.sum())} of {group_size} right"
        )
    )
    left.legend(fontsize=8, loc="lower right" if rewards.mean() > 0.5 else "upper right")

    sizes = np.arange(2, 33)
    for q in sorted({0.05, 0.5, 0.9, round(p, 2)}):
        chosen = np.isclose(q, p)
        right.plot(
            sizes,
            all_equal_fraction(sizes, q),
            lw=2.2 if chosen else 1,
            color="C3" if chosen else "0.6",
            label=f"p = {q:.2f}",
        )
    right.plot([group_size], [all_equal_fraction(group_size, p)], "o", color="C3")
    right.set_xlabel("group size G")
    right.set_ylabel("P(all rewards equal) = $p^G + (1-p)^G$")
    right.set_ylim(-0.02, 1.02)
    right.set_title(
        f"groups with no signal: {all_equal_fraction(group_size, p):.1%} at G = {group_size}"
    )
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig


def group_advantages_view(group_size: int = 8, p: float = 0.3, seed: int = 0):
    """Sliders for ``G`` and ``p`` and a "new group" seed over :func:`draw_group_advantages`; every
    move redraws.

    Returns an ``ipywidgets.VBox`` with attributes ``group_size``, ``p``, ``seed`` and ``redraw()``.
    """
    import ipywidgets as widgets

    sample_group(group_size, p, seed)  # the same checks as the drawing, before any widget exists
    g = widgets.IntSlider(value=group_size, min=2, max=32, description="G")
    prob = widgets.FloatSlider(
        value=p, min=0.0, max=1.0, step=0.05, description="p (right)", readout_format=".2f"
    )
    s = widgets.IntSlider(value=seed, min=0, max=50, description="group #")
    return make_view(
        lambda: draw_group_advantages(g.value, prob.value, s.value),
        [[g, prob, s]],
        group_size=g,
        p=prob,
        seed=s,
    )


# --------------------------------------------------------------------------------------------------
# Precomputed runs: GRPO vs RLOO vs PPO, and GRPO's hyperparameters
# --------------------------------------------------------------------------------------------------


def load_grpo_data(name: str) -> dict:
    """The precomputed results shipped with the package: ``"benchmark"`` (GRPO, RLOO and PPO, three
    seeds) or ``"sweep"`` (GRPO with one hyperparameter changed at a time)."""
    if name not in ("benchmark", "sweep"):
        raise ValueError(f"name={name!r} is not allowed: 'benchmark' or 'sweep'")
    text = resources.files("rlcourse").joinpath("data", f"grpo_{name}.json").read_text()
    return json.loads(text)


def load_grpo_continuation() -> tuple[History, torch.nn.Module]:
    """Notebook 08's section-5 run trained to its end (``python -m benchmarks grpo
    --continuation``): its history and its trained policy. The notebook trains the first
    iterations of the same run live and shows this one for the rest."""
    from rlcourse.algos import grpo
    from rlcourse.config import from_dict

    data_dir = resources.files("rlcourse").joinpath("data")
    data = json.loads(data_dir.joinpath("grpo_continuation.json").read_text())
    history = History()
    history.iterations = data["history"]["iterations"]
    history.evaluations = data["history"]["evaluations"]
    policy = grpo.make_agent(from_dict(grpo.Config, data["config"])).policy
    with resources.as_file(data_dir.joinpath("grpo_continuation.pt")) as path:
        policy.load_state_dict(torch.load(path, weights_only=True))
    return history, policy


def accuracy_curve(history: History) -> dict[str, list[float]]:
    """A run's held-out accuracy curve, in the format of the precomputed results."""
    return {
        "answers": [row["env_step"] for row in history.evaluations],
        "seconds": [row["wall_time"] for row in history.evaluations],
        "accuracy": [row["mean_return"] for row in history.evaluations],
    }


def draw_method_comparison(
    results: Mapping[str, Sequence[Mapping]],
    target: float | None = 0.9,
    x: str = "answers",
    fig=None,
):
    """Held-out greedy accuracy of several methods against answers sampled (``x="answers"``) or wall
    seconds (``x="seconds"``): each seed a thin line, the median over seeds a thick one.

    ``results[method]`` is a list of runs, each ``{"curve": {"answers", "seconds", "accuracy"}}``
    (the benchmark's format) or a bare curve.
    """
    import matplotlib.pyplot as plt

    if x not in ("answers", "seconds"):
        raise ValueError(f"x={x!r} is not allowed: 'answers' or 'seconds'")
    if fig is None:
        fig = plt.figure(figsize=(8, 4.2))
    fig.clear()
    ax = fig.subplots()
    for k, (method, runs) in enumerate(results.items()):
        curves = [run.get("curve", run) for run in runs]
        color = f"C{k}"
        for c in curves:
            ax.plot(
                np.asarray(c[x]) / (1000 if x == "answers" else 1),
                c["accuracy"],
                color=color,
                lw=0.7,
                alpha=0.5,
            )
        n = min(len(c["accuracy"]) for c in curves)
        median = np.median([c["accuracy"][:n] for c in curves], axis=0)
        xs = np.median([c[x][:n] for c in curves], axis=0) / (1000 if x == "answers" else 1)
        ax.plot(
            xs,
            median,
            color=color,
            lw=2.2,
            label=f"{METHOD_LABELS.get(method, method)} (median of {len(curves)})",
        )
    if target is not None:
        ax.axhline(target, color="k", ls=":", lw=1)
    ax.set_xlabel(
        "answers sampled (thousands)" if x == "answers" else "wall seconds (one CPU thread)"
    )
    ax.set_ylabel("held-out greedy accuracy")
    ax.set_ylim(0, 1)
    ax.legend(loc="lower right", fontsize=9)
    fig.tight_layout()
    return fig


def _sweep_runs(sweep: Mapping, knob: str) -> list[Mapping]:
    runs = [r for r in sweep["runs"].values() if r["knob"] == knob]
    # the sweep's own order (numbers ascending, the averagings as listed)
    order = sweep["sweep"][knob]
    return sorted(runs, key=lambda r: order.index(r["value"]))


def _value_label(knob: str, value) -> str:
    return AGGREGATION_LABELS.get(value, str(value)) if knob == "aggregation" else f"{value:g}"


def draw_grpo_sweep(
    sweep: Mapping,
    clip_eps: float,
    group_size: int,
    kl_coef: float,
    aggregation: str = "sequence",
    fig=None,
):
    """One panel per hyperparameter (clip range, group size, KL weight, averaging over tokens):
    every run of that knob faint, the chosen value bold. In each panel the other knobs stay at the
    preset's values."""
    import matplotlib.pyplot as plt

    chosen = {
        "clip_eps": clip_eps,
        "group_size": group_size,
        "kl_coef": kl_coef,
        "aggregation": aggregation,
    }
    if fig is None:
        fig = plt.figure(figsize=(11, 7))
    fig.clear()
    axes = fig.subplots(2, 2, sharey=True, sharex=True).flatten()
    for ax, (knob, value) in zip(axes, chosen.items(), strict=False):
        runs = _sweep_runs(sweep, knob)
        values = [r["value"] for r in runs]
        if value not in values:
            raise ValueError(f"{knob}={value!r} is not allowed: the sweep has {values}")
        for k, run in enumerate(runs):
            bold = run["value"] == value
            ax.plot(
                np.asarray(run["answers"]) / 1000,
                run["accuracy"],
                color=f"C{k}",
                lw=2.4 if bold else 0.9,
                alpha=1.0 if bold else 0.35,
                label=f"{_value_label(knob, run['value'])}: final {run['accuracy'][-1]:.2f}",
            )
        ax.set_title(KNOB_LABELS[knob])
        ax.set_ylim(0, 1)
        ax.legend(fontsize=8, loc="lower right")
    for ax in axes[2:]:
        ax.set_xlabel("answers sampled (thousands)")
    for ax in axes[::2]:
        ax.set_ylabel("held-out greedy accuracy")
    fig.tight_layout()
    return fig


def grpo_sweep_view(
    sweep: Mapping,
    clip_eps: float = 0.2,
    group_size: int = 4,
    kl_coef: float = 0.0,
    aggregation: str = "sequence",
):
    """Selection sliders (epsilon, G, beta, the averaging) over :func:`draw_grpo_sweep`'s
    precomputed runs; a move only redraws.

    Returns an ``ipywidgets.VBox`` with attributes ``clip_eps``, ``group_size``, ``kl_coef``,
    ``aggregation`` and ``redraw()`` (called once here).
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    # checks the values first
    plt.close(draw_grpo_sweep(sweep, clip_eps, group_size, kl_coef, aggregation))
    options = {
        knob: [(_value_label(knob, r["value"]), r["value"]) for r in _sweep_runs(sweep, knob)]
        for knob in KNOB_LABELS
    }
    eps = widgets.SelectionSlider(options=options["clip_eps"], value=clip_eps, description="ε")
    g = widgets.SelectionSlider(options=options["group_size"], value=group_size, description="G")
    beta = widgets.SelectionSlider(options=options["kl_coef"], value=kl_coef, description="β")
    agg = widgets.ToggleButtons(
        options=options["aggregation"], value=aggregation, description="averaging"
    )
    return make_view(
        lambda: draw_grpo_sweep(sweep, eps.value, g.value, beta.value, agg.value),
        [[eps, g, beta], agg],
        clip_eps=eps,
        group_size=g,
        kl_coef=beta,
        aggregation=agg,
    )
