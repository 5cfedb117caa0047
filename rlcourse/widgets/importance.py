"""The views of ``notebooks/05_importance_sampling.ipynb`` (slides "Sample Reuse",
"Importance Sampling").

Importance sampling is unbiased, but its variance grows as the proposal q leaves p: the estimate's
spread, the weights and the effective sample size along a path of (p, q) pairs (computed by
:func:`rlcourse.importance.importance_sampling_grid`).
"""

from __future__ import annotations

import numpy as np

from rlcourse.importance import ImportanceSamplingGrid
from rlcourse.widgets._view import _plain_log_axis, make_view

__all__ = [
    "draw_importance_sampling",
    "importance_sampling_view",
]


# --------------------------------------------------------------------------------------------------
# Importance sampling: unbiased, but the variance grows as q leaves p (notebook 05)
# --------------------------------------------------------------------------------------------------


def _histogram_range(values: np.ndarray, mu: float) -> tuple[float, float]:
    """A range that shows the bulk of ``values`` (0.5 % to 99 %) and the true mean ``mu``, with a
    small margin."""
    lo, hi = np.nanquantile(values, [0.005, 0.99])
    lo, hi = min(lo, mu), max(hi, mu)
    pad = 0.05 * (hi - lo) if hi > lo else 0.5
    return float(lo - pad), float(hi + pad)


def draw_importance_sampling(
    grid: ImportanceSamplingGrid, param: float, normalized: bool = False, fig=None
):
    """Four panels at the path position nearest to ``param``.

    Top left: ``p`` and ``q`` (bars with the ratio ``p/q`` written above them for a small support,
    lines with the weight ``p(x)/q(x)`` on a log axis otherwise). Top right: the histogram of the
    ``repeats`` importance-weighted estimates (and of the self-normalised ones if ``normalized``),
    with the true mean ``mu`` and ``mu +- 1`` exact standard deviation; the text box gives the
    numbers and how many estimates lie beyond the drawn range. Bottom left: the exact variance of
    the estimate along the path (log axis) against plain Monte Carlo with samples from ``p``, the
    sampled variance as dots. Bottom right: the effective sample size as a fraction of ``n``, exact
    large-``n`` limit ``1 / (1 + chi^2)`` and the mean over the repeats. Returns the figure.
    """
    import matplotlib.pyplot as plt

    from rlcourse.tabular import kl_divergence

    m = grid.index(param)
    value = grid.params[m]
    if fig is None:
        fig = plt.figure(figsize=(12, 7.2))
    fig.clear()
    (ax_dist, ax_hist), (ax_var, ax_ess) = fig.subplots(2, 2)
    p, q = grid.p[m], grid.q[m]

    # top left: the two distributions
    K = grid.x.size
    kl = float(kl_divergence(p, q))
    if K <= 12:
        pos = np.arange(K)
        ax_dist.bar(pos - 0.2, q, 0.4, color="C0", label=grid.proposal_label)
        ax_dist.bar(pos + 0.2, p, 0.4, color="C1", label=grid.target_label)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(q > 0, p / q, np.inf)
        for k in range(K):
            ax_dist.text(
                k, max(p[k], q[k]) + 0.02, f"{ratio[k]:.2f}", ha="center", fontsize="small"
            )
        labels = [f"{v:g}" for v in grid.x]
        ax_dist.set_xticks(pos, labels)
        ax_dist.set(ylim=(0, 1.45 * max(p.max(), q.max()) + 0.05), ylabel="probability")
        ax_dist.set_title(
            f"{grid.param_name} = {value:.3g}, KL(p‖q) = {kl:.3g}; numbers above the bars: p/q",
            fontsize="medium",
        )
    else:
        ax_dist.plot(grid.x, q, color="C0", label=grid.proposal_label)
        ax_dist.plot(grid.x, p, color="C1", label=grid.target_label)
        ax_dist.set(ylabel="probability", xlabel="x")
        ax_w = ax_dist.twinx()
        with np.errstate(divide="ignore", invalid="ignore"):
            w = np.where(q > 0, p / q, np.nan)
        ax_w.plot(grid.x, w, color="grey", ls="--", lw=1, label="weight p(x)/q(x)")
        ax_w.set_yscale("log")
        _plain_log_axis(ax_w.yaxis)
        ax_w.set_ylabel("weight p/q (log)", color="grey")
        ax_w.axhline(1.0, color="grey", lw=0.5)
        ax_w.legend(fontsize="x-small", loc="upper right")
        ax_dist.set_title(
            f"{grid.param_name} = {value:.3g}, KL(p‖q) = {kl:.3g}", fontsize="medium"
        )
    ax_dist.legend(fontsize="x-small", loc="upper left", ncol=2 if K <= 12 else 1)

    # top right: the histogram of the estimates
    est, mu, sd = grid.estimates[m], grid.mu[m], np.sqrt(grid.variance[m])
    lo, hi = _histogram_range(np.r_[est, grid.normalized[m]] if normalized else est, mu)
    # a small support gives estimates on a lattice: fewer bins
    bins = np.linspace(lo, hi, 41 if K <= 12 else 61)
    ax_hist.hist(est, bins=bins, color="C0", alpha=0.6, label="importance-weighted")
    if normalized:
        ax_hist.hist(
            grid.normalized[m],
            bins=bins,
            histtype="step",
            color="C2",
            lw=2,
            label="self-normalised",
        )
    ax_hist.axvline(mu, color="k", lw=2, label=f"true μ = {mu:.3g}")
    for side in (-1, 1):
        ax_hist.axvline(mu + side * sd, color="k", ls=":", lw=1)
    outside = int(((est < lo) | (est > hi)).sum())
    lines = [
        f"exact sd {sd:.3g}, sampled sd {est.std(ddof=1):.3g}",
        f"mean {est.mean():.3g}, median {np.median(est):.3g}",
        f"below μ: {100 * (est < mu).mean():.0f} %",
        f"ESS {grid.ess[m].mean():.1f} of n = {grid.n}",
    ]
    if normalized:
        sn = grid.normalized[m]
        lines.append(f"self-normalised: mean {np.nanmean(sn):.3g}, sd {np.nanstd(sn, ddof=1):.3g}")
    if outside:
        lines.append(f"{outside} estimates beyond the range (largest {est.max():.3g})")
    ax_hist.text(
        0.98,
        0.97,
        "\n".join(lines),
        transform=ax_hist.transAxes,
        ha="right",
        va="top",
        fontsize="x-small",
        bbox=dict(facecolor="white", alpha=0.8, edgecolor="none"),
    )
    ax_hist.set(xlim=(lo, hi), xlabel="estimate of μ", ylabel="count")
    ax_hist.set_title(
        f"{grid.repeats} estimates, each from n = {grid.n} samples of q (dotted: μ ± exact sd)",
        fontsize="medium",
    )
    ax_hist.legend(fontsize="x-small", loc="upper left")

    # bottom: variance and ESS along the path
    sampled_var = grid.estimates.var(axis=1, ddof=1)
    ax_var.plot(grid.params, grid.variance, color="C0", label="exact variance of the estimate")
    ax_var.plot(
        grid.params, sampled_var, "o", color="C0", ms=3, alpha=0.6, label="sampled variance"
    )
    ax_var.plot(
        grid.params,
        grid.direct,
        color="k",
        ls="--",
        lw=1,
        label="plain Monte Carlo with samples of p",
    )
    ax_var.plot(value, grid.variance[m], "o", color="C3", ms=9, mfc="none", mew=2)
    ax_var.set(yscale="log", xlabel=grid.param_name, ylabel=f"variance (n = {grid.n})")
    ax_var.set_title("Var[μ̂] = (Σ p² f² / q − μ²) / n", fontsize="medium")
    ax_var.legend(fontsize="x-small")

    ax_ess.plot(
        grid.params,
        1.0 / (1.0 + grid.chi2),
        color="C2",
        label="1 / (1 + χ²(p‖q)), large-n limit",
    )
    ax_ess.plot(
        grid.params,
        grid.ess.mean(axis=1) / grid.n,
        "o",
        color="C2",
        ms=3,
        alpha=0.6,
        label="mean ESS / n of the estimates",
    )
    ax_ess.plot(value, grid.ess[m].mean() / grid.n, "o", color="C3", ms=9, mfc="none", mew=2)
    ax_ess.set(yscale="log", xlabel=grid.param_name, ylabel="ESS / n", ylim=(None, 1.5))
    ax_ess.set_title("effective sample size (Σ w)² / Σ w²", fontsize="medium")
    ax_ess.legend(fontsize="x-small", loc="lower left")
    for ax in (ax_var, ax_ess):
        _plain_log_axis(ax.yaxis)
        ax.axvline(value, color="C3", ls=":", lw=1)
        ax.grid(alpha=0.3)
    # fixed margins: tight_layout would take most of the redraw time
    fig.subplots_adjust(left=0.07, right=0.93, bottom=0.08, top=0.94, wspace=0.36, hspace=0.32)
    return fig


def importance_sampling_view(
    grid: ImportanceSamplingGrid, param: float | None = None, normalized: bool = False
):
    """A slider along the path of an :class:`ImportanceSamplingGrid` and a check box for the
    self-normalised estimate.

    The slider starts at the position nearest to ``param`` (by default the first); a move only
    redraws :func:`draw_importance_sampling` from the precomputed samples. Returns an
    ``ipywidgets.VBox``
    with attributes ``slider``, ``checkbox`` and ``redraw()``, which draws the current state (called
    once here).

    Used by ``notebooks/05_importance_sampling.ipynb``.
    """
    import ipywidgets as widgets

    values = [float(v) for v in grid.params]
    start = values[0] if param is None else values[grid.index(param)]
    slider = widgets.SelectionSlider(
        options=[(f"{v:.3g}", v) for v in values],
        value=start,
        description=grid.param_name,
        continuous_update=False,
        style={"description_width": "initial"},
    )
    checkbox = widgets.Checkbox(
        value=bool(normalized), description="self-normalised estimate", indent=False
    )
    return make_view(
        lambda: draw_importance_sampling(grid, slider.value, checkbox.value),
        [[slider, checkbox]],
        slider=slider,
        checkbox=checkbox,
    )
