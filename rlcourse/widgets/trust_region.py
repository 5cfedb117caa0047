"""The views of ``notebooks/06_trpo_bound.ipynb`` (slides "Performance Improvement",
"Surrogate Loss Construction", "Towards TRPO", "TRPO Algorithm", "Multi-Epoch TRPO").

J, the surrogate, its lower bound and the KL along a path of new policies on a small MDP, all
exact (computed by :func:`rlcourse.sweeps.trust_region_path`); TRPO's learning curves and
per-iteration diagnostics, single- and multi-epoch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from rlcourse.sweeps import TrustRegionPath
from rlcourse.training import History
from rlcourse.widgets._view import _plain_log_axis, make_view

__all__ = [
    "draw_trust_region",
    "trust_region_view",
    "draw_trpo_runs",
]


# --------------------------------------------------------------------------------------------------
# The TRPO bound along a path of new policies (notebook 06); the path is computed by
# rlcourse.sweeps.trust_region_path
# --------------------------------------------------------------------------------------------------


def _objective_curves(
    ax, grid: TrustRegionPath, sel: slice, k: int, edge: int, delta: float
) -> None:
    """The improvement, the surrogate and the two lower bounds on ``ax``, for the positions
    ``sel``."""
    steps = grid.steps[sel]
    ax.plot(steps, grid.improvement[sel], color="k", lw=2.2, label="J(π') − J(π)  (exact)")
    ax.plot(
        steps, grid.surrogate[sel], color="C0", label="L_π(π') − J(π)  (surrogate, term (A))"
    )
    ax.plot(
        steps,
        grid.lower_bound[sel],
        color="C1",
        label="L_π(π') − C·E[D_TV] − J(π)  (lower bound)",
    )
    ax.plot(
        steps,
        grid.pinsker_bound[sel],
        color="C1",
        ls="--",
        lw=1,
        label="L_π(π') − C·E[√(D_KL/2)] − J(π)",
    )
    ax.axhline(0, color="grey", lw=0.8)
    best = int(grid.lower_bound.argmax())
    ax.plot(
        grid.steps[best], grid.lower_bound[best], "v", color="C1", ms=8, label="largest lower bound"
    )
    ax.axvspan(
        grid.steps[0],
        grid.steps[edge],
        color="C2",
        alpha=0.12,
        label=f"trust region E[D_KL] ≤ δ = {delta:g}",
    )
    for series, color in (
        (grid.improvement, "k"),
        (grid.surrogate, "C0"),
        (grid.lower_bound, "C1"),
    ):
        ax.plot(grid.steps[k], series[k], "o", color=color, ms=8, mfc="none", mew=2)
    ax.axvline(grid.steps[k], color="C3", ls=":", lw=1)
    shown = np.r_[grid.improvement[sel], grid.surrogate[sel], 0.0]
    top, bottom = shown.max(), shown.min()
    span = top - bottom if top > bottom else 1.0
    # the lower bounds fall off a cliff: show where it starts
    ax.set_ylim(bottom - 0.5 * span, top + 0.08 * span)
    ax.set_xlim(steps[0], steps[-1])
    ax.set_ylabel("relative to J(π)")
    ax.grid(alpha=0.3)


def draw_trust_region(grid: TrustRegionPath, step: float, delta: float = 0.01, fig=None):
    """Three panels along the path, at the position nearest to ``step`` and with the trust region
    ``delta``.

    Left: over the whole path, ``J(pi') - J(pi)`` (black), the surrogate ``L_pi(pi') - J(pi)``, the
    penalised surrogate (the lower bound with ``D_TV``) and its Pinsker form (with ``sqrt(D_KL /
    2)``), the trust region ``E[D_KL] <= delta`` shaded; the step axis is logarithmic (linear near
    0, so that 0 fits). Middle: the same near ``pi``, on a linear axis up to twice the larger of the
    trust region's edge and the step of the largest lower bound. Right: ``E_{S~d_pi}[D_KL(pi' ||
    pi)]`` (and its largest value over the states), ``E[D_TV]`` and ``E[sqrt(D_KL / 2)]`` (Pinsker),
    with ``delta`` dashed. Returns the figure.
    """
    import matplotlib.pyplot as plt

    if not float(delta) > 0:
        raise ValueError(f"delta={delta!r} is not allowed: the trust region delta must be > 0")
    k = grid.index(step)
    edge = grid.trust_region_end(delta)
    steps = grid.steps
    if fig is None:
        fig = plt.figure(figsize=(15, 4.6))
    fig.clear()
    ax, ax_zoom, ax_kl = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.1, 1, 1]})
    positive_steps = steps[steps > 0]
    linthresh = positive_steps.min() if positive_steps.size else 1.0

    _objective_curves(ax, grid, slice(None), k, edge, delta)
    ax.set_xscale("symlog", linthresh=linthresh)
    ax.set_xlabel(f"step η along the {grid.path} path (log scale)")
    ax.set_title(
        f"η = {steps[k]:.3g}:  J(π')−J(π) = {grid.improvement[k]:.4f},  "
        f"L−J(π) = {grid.surrogate[k]:.4f},\n"
        f"bound = {grid.lower_bound[k]:.4f};  neglected (B) = {grid.neglected[k]:.4f} "
        f"≤ C·E[D_TV] = {grid.penalty_coefficient[k] * grid.mean_tv[k]:.4f}  "
        f"(C = {grid.penalty_coefficient[k]:.3g})",
        fontsize="medium",
    )
    ax.legend(fontsize="x-small", loc="upper left")

    best = int(grid.lower_bound.argmax())
    near = steps <= 2.0 * max(steps[edge], steps[best], linthresh)
    near[: max(int(near.sum()), 2)] = True  # at least two points
    _objective_curves(ax_zoom, grid, near, k, edge, delta)
    ax_zoom.set_xlabel("step η (linear scale, near π)")
    ax_zoom.set_title(
        f"near π: the largest lower bound {grid.lower_bound[best]:.4f} at η = {steps[best]:.3g}\n"
        f"(J(π')−J(π) = {grid.improvement[best]:.4f} there); "
        f"at the trust region's edge {grid.improvement[edge]:.4f}",
        fontsize="medium",
    )

    positive = grid.mean_kl > 0
    ax_kl.plot(
        steps[positive],
        grid.mean_kl[positive],
        color="C0",
        label="E[D_KL(π'‖π)]  (TRPO's constraint)",
    )
    ax_kl.plot(
        steps[positive], grid.max_kl[positive], color="C0", ls=":", label="max over states of D_KL"
    )
    ax_kl.plot(steps[positive], grid.mean_tv[positive], color="C2", label="E[D_TV(π', π)]")
    # E[sqrt(KL/2)] = (surrogate - Pinsker bound) / C
    with np.errstate(divide="ignore", invalid="ignore"):
        sqrt_half_kl = np.where(
            grid.penalty_coefficient > 0,
            (grid.surrogate - grid.pinsker_bound) / grid.penalty_coefficient,
            np.nan,
        )
    ax_kl.plot(
        steps[positive],
        sqrt_half_kl[positive],
        color="C2",
        ls="--",
        lw=1,
        label="E[√(D_KL/2)] ≥ E[D_TV]",
    )
    ax_kl.axhline(delta, color="k", ls="--", lw=1, label=f"δ = {delta:g}")
    ax_kl.axvline(steps[edge], color="C2", lw=1)
    ax_kl.plot(steps[k], grid.mean_kl[k], "o", color="C3", ms=8, mfc="none", mew=2)
    ax_kl.axvline(steps[k], color="C3", ls=":", lw=1)
    top = max(grid.max_kl.max(), grid.mean_tv.max(), float(delta))
    ax_kl.set(yscale="log", ylim=(min(float(delta), top) * 1e-3, top * 3), xscale="log")
    ax_kl.set_xlim(positive_steps.min() if positive_steps.size else None, steps[-1])
    _plain_log_axis(ax_kl.yaxis)
    ax_kl.set(
        xlabel=f"step η along the {grid.path} path (log scale)", ylabel="expectation over S ~ d_π"
    )
    ax_kl.set_title(
        f"mean KL {grid.mean_kl[k]:.3g}, mean TV {grid.mean_tv[k]:.3g}\n"
        f"trust region E[D_KL] ≤ {delta:g} up to η = {steps[edge]:.3g}",
        fontsize="medium",
    )
    ax_kl.legend(fontsize="x-small", loc="lower right")
    ax_kl.grid(alpha=0.3)
    # fixed: faster than tight_layout
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.13, top=0.85, wspace=0.22)
    return fig


def trust_region_view(
    grid: TrustRegionPath, step: float | None = None, delta: float = 0.01, deltas=None
):
    """Sliders for the step along the path and for the trust region ``delta`` over a
    :class:`TrustRegionPath`.

    The step slider runs over the grid's steps (starting nearest to ``step``, by default the edge of
    the trust region ``delta``); the ``delta`` slider over ``deltas`` (default: 0.0005 to 0.5,
    log-spaced). A move only redraws :func:`draw_trust_region`. Returns an ``ipywidgets.VBox`` with
    attributes ``step``, ``delta`` (the two sliders) and ``redraw()``, which draws the current state
    (called once here).

    Used by ``notebooks/06_trpo_bound.ipynb``.
    """
    import ipywidgets as widgets

    deltas = (
        [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5]
        if deltas is None
        else list(deltas)
    )
    deltas = sorted({float(d) for d in deltas} | {float(delta)})
    if deltas[0] <= 0:
        raise ValueError(f"deltas={deltas} is not allowed: every delta must be > 0")
    steps = [float(s) for s in grid.steps]
    start = steps[grid.trust_region_end(delta)] if step is None else steps[grid.index(step)]
    step_slider = widgets.SelectionSlider(
        options=[(f"{s:.3g}", s) for s in steps],
        value=start,
        description="step η",
        continuous_update=False,
    )
    delta_slider = widgets.SelectionSlider(
        options=[(f"{d:g}", d) for d in deltas],
        value=float(delta),
        description="δ",
        continuous_update=False,
    )
    return make_view(
        lambda: draw_trust_region(grid, step_slider.value, delta_slider.value),
        [[step_slider, delta_slider]],
        step=step_slider,
        delta=delta_slider,
    )


# --------------------------------------------------------------------------------------------------
# TRPO, single- and multi-epoch, on CartPole (notebook 06)
# --------------------------------------------------------------------------------------------------


def draw_trpo_runs(
    runs: Mapping[str, Sequence[History]],
    delta: float | None = 0.01,
    threshold: float | None = 475.0,
    window: int = 20,
    fig=None,
):
    """Learning curves and TRPO's per-iteration diagnostics for runs ``label -> [History of each
    seed]``.

    Top left: the rolling mean of the training returns against env steps, one thin line per seed,
    one colour per label. Then, against the iteration, the mean over seeds (seeds faint): the mean
    KL between the new policy and the policy that collected the rollout (``kl``, with ``delta``
    dashed), the mean accepted line-search fraction ``alpha`` over the epochs (``step_fraction``; 0
    is a rejected step) and the sample surrogate after the update (``surrogate``; it is 0 before the
    update). Returns the figure.

    Used by ``notebooks/06_trpo_bound.ipynb``.
    """
    import matplotlib.pyplot as plt

    from rlcourse.plots import rolling_mean

    if fig is None:
        fig = plt.figure(figsize=(12, 7))
    fig.clear()
    (ax_ret, ax_kl), (ax_step, ax_sur) = fig.subplots(2, 2)
    panels = ((ax_kl, "kl"), (ax_step, "step_fraction"), (ax_sur, "surrogate"))
    for i, (label, histories) in enumerate(runs.items()):
        color = f"C{i}"
        for j, h in enumerate(histories):
            returns = h.column("return")
            if len(returns):
                ax_ret.plot(
                    h.column("env_step"),
                    rolling_mean(returns, window),
                    color=color,
                    lw=1.2,
                    alpha=0.8,
                    label=label if j == 0 else None,
                )
        for ax, name in panels:
            series = [h.column(name, "iterations") for h in histories if h.iterations]
            for s in series:
                ax.plot(np.arange(1, len(s) + 1), s, color=color, lw=0.8, alpha=0.3)
            if series:
                length = min(len(s) for s in series)
                mean = np.mean([s[:length] for s in series], axis=0)
                ax.plot(
                    np.arange(1, length + 1),
                    mean,
                    color=color,
                    lw=2,
                    label=f"{label} (mean of seeds)",
                )
    if threshold is not None:
        ax_ret.axhline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold:g}")
    if delta is not None:
        ax_kl.axhline(delta, color="k", ls="--", lw=1, label=f"δ = {delta:g}")
    ax_ret.set(
        xlabel="env steps",
        ylabel=f"return (mean of last {window})",
        title="training episodes (one line per seed)",
    )
    ax_kl.set(
        xlabel="iteration",
        ylabel="mean KL(π_new ‖ π_old)",
        title="KL to the data-collecting policy",
    )
    ax_step.set(
        xlabel="iteration",
        ylabel="mean α over the epochs",
        title="line search: accepted step fraction",
        ylim=(-0.05, 1.05),
    )
    ax_sur.set(
        xlabel="iteration",
        ylabel="mean ratio × advantage",
        title="sample surrogate after the update",
    )
    for ax in (ax_ret, ax_kl, ax_step, ax_sur):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="x-small")
    fig.tight_layout()
    return fig
