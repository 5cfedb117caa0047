"""The views of ``notebooks/05_importance_sampling.ipynb`` (slides "Sample Reuse",
"Importance Sampling").

Importance sampling is unbiased, but its variance grows as the proposal q leaves p: the estimate's
spread, the weights and the effective sample size along a path of (p, q) pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rlcourse.widgets._view import _plain_log_axis, make_view

__all__ = [
    "ImportanceSamplingGrid",
    "importance_sampling_grid",
    "draw_importance_sampling",
    "importance_sampling_view",
]


# --------------------------------------------------------------------------------------------------
# Importance sampling: unbiased, but the variance grows as q leaves p (notebook 05)
# --------------------------------------------------------------------------------------------------


@dataclass
class ImportanceSamplingGrid:
    """Importance sampling of ``mu = E_{X~p}[f(X)]`` from ``n`` samples of ``q``, along a path of
    ``(p, q)`` pairs.

    Position ``m`` of the path (a slider position, with the value ``params[m]`` of the parameter
    ``param_name``) has a target ``p[m]`` and a proposal ``q[m]``, distributions over the support
    ``x``; ``f`` is the same at every position. Arrays have the positions first.

    Exact (sums over the support, :mod:`rlcourse.importance`): ``mu`` ``(M,)`` the true mean;
    ``variance`` ``(M,)`` the variance of the importance-weighted estimate from ``n`` samples;
    ``direct`` ``(M,)`` the variance of plain Monte Carlo with ``n`` samples drawn from ``p``
    itself; ``chi2`` ``(M,)`` ``chi^2(p || q)``, the variance of the weights (``n / (1 + chi2)`` is
    what the effective sample size tends to).

    Sampled, ``repeats`` independent estimates from ``n`` samples each: ``estimates`` ``(M, R)`` the
    importance-weighted estimates ``1/n sum_i w_i f(X_i)``, ``normalized`` ``(M, R)`` the
    self-normalised ones ``sum_i w_i f(X_i) / sum_i w_i`` (``nan`` if every weight is 0), ``ess``
    ``(M, R)`` the effective sample size of each estimate's weights. ``target_label`` and
    ``proposal_label`` name ``p`` and ``q`` in the figures.
    """

    param_name: str
    params: np.ndarray
    x: np.ndarray
    p: np.ndarray
    q: np.ndarray
    f: np.ndarray
    n: int
    mu: np.ndarray
    variance: np.ndarray
    direct: np.ndarray
    chi2: np.ndarray
    estimates: np.ndarray
    normalized: np.ndarray
    ess: np.ndarray
    target_label: str = "p (target)"
    proposal_label: str = "q (proposal)"

    @property
    def repeats(self) -> int:
        return self.estimates.shape[1]

    def index(self, param: float) -> int:
        """Index of the path position whose parameter is nearest to ``param``."""
        return int(np.abs(self.params - float(param)).argmin())


def importance_sampling_grid(
    x: Sequence[float],
    f: Sequence[float],
    p: np.ndarray,
    q: np.ndarray,
    params: Sequence[float],
    n: int = 100,
    repeats: int = 2000,
    seed: int = 0,
    param_name: str = "parameter",
    target_label: str = "p (target)",
    proposal_label: str = "q (proposal)",
) -> ImportanceSamplingGrid:
    """Exact variances and ``repeats`` sampled estimates at every position of a path, for a slider
    to redraw from.

    ``p`` and ``q`` are either one distribution ``(K,)`` (the same at every position) or one per
    position ``(M, K)``, with ``M = len(params)``: e.g. a fixed ``p`` and proposals that move away
    from it (:func:`rlcourse.importance.tilted_proposal`), or a fixed old policy ``q`` and new
    policies ``p`` that move away from it. At each position the ``n * repeats`` samples are drawn
    with
    :func:`rlcourse.importance.sample` from the same ``seed``: the same uniform numbers at every
    position (common random numbers), so positions with the same ``q`` reuse exactly the same
    samples, and the histograms change smoothly as the slider moves. The exact columns come from
    :func:`rlcourse.importance.exact_mean`, :func:`~rlcourse.importance.estimator_variance`,
    :func:`~rlcourse.importance.direct_variance` and :func:`~rlcourse.importance.chi2_divergence`.

    Used by ``notebooks/05_importance_sampling.ipynb``.
    """
    from rlcourse import importance

    params = np.asarray(params, dtype=float).reshape(-1)
    if params.size == 0 or not np.isfinite(params).all():
        raise ValueError(
            f"params={params.tolist()} is not allowed: "
            "params must be a non-empty list of finite numbers"
        )
    M = params.size
    x = np.asarray(x, dtype=float)
    f = np.asarray(f, dtype=float)
    if x.ndim != 1 or f.shape != x.shape:
        raise ValueError(
            f"x and f must be 1-D of the same length, got shapes x{x.shape} and f{f.shape}"
        )

    def per_position(name: str, dist) -> np.ndarray:
        dist = np.asarray(dist, dtype=float)
        if dist.shape == x.shape:
            dist = np.broadcast_to(dist, (M, x.size))
        if dist.shape != (M, x.size):
            raise ValueError(
                f"{name}=<array of shape {dist.shape}> is not allowed: "
                f"{name} must have shape (K,) = {x.shape} "
                f"or (len(params), K) = {(M, x.size)}"
            )
        return np.array(dist)

    p, q = per_position("p", p), per_position("q", q)
    n, repeats = int(n), int(repeats)
    if n < 1 or repeats < 2:
        raise ValueError(f"n={n}, repeats={repeats} is not allowed: need n >= 1 and repeats >= 2")
    mu = np.array([importance.exact_mean(p[m], f) for m in range(M)])
    variance = np.array([importance.estimator_variance(p[m], q[m], f, n) for m in range(M)])
    direct = np.array([importance.direct_variance(p[m], f, n) for m in range(M)])
    chi2 = np.array([importance.chi2_divergence(p[m], q[m]) for m in range(M)])
    estimates, normalized, ess = (
        np.zeros((M, repeats)),
        np.zeros((M, repeats)),
        np.zeros((M, repeats)),
    )
    for m in range(M):
        idx = importance.sample(q[m], n * repeats, seed=seed).reshape(repeats, n)
        w = p[m][idx] / q[m][idx]
        wf = w * f[idx]
        total, total_sq = w.sum(1), (w**2).sum(1)
        estimates[m] = wf.mean(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            normalized[m] = np.where(total > 0, wf.sum(1) / total, np.nan)
            ess[m] = np.where(total > 0, total**2 / total_sq, 0.0)
    return ImportanceSamplingGrid(
        param_name=param_name,
        params=params,
        x=x,
        p=p,
        q=q,
        f=f,
        n=n,
        mu=mu,
        variance=variance,
        direct=direct,
        chi2=chi2,
        estimates=estimates,
        normalized=normalized,
        ess=ess,
        target_label=target_label,
        proposal_label=proposal_label,
    )


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
        ax_dist.set_title(f"{grid.param_name} = {value:.3g}, KL(p‖q) = {kl:.3g}", fontsize="medium")
    ax_dist.legend(fontsize="x-small", loc="upper left", ncol=2 if K <= 12 else 1)

    # top right: the histogram of the estimates
    est, mu, sd = grid.estimates[m], grid.mu[m], np.sqrt(grid.variance[m])
    lo, hi = _histogram_range(np.r_[est, grid.normalized[m]] if normalized else est, mu)
    bins = np.linspace(
        lo, hi, 41 if K <= 12 else 61
    )  # a small support gives estimates on a lattice: fewer bins
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
        grid.params, 1.0 / (1.0 + grid.chi2), color="C2", label="1 / (1 + χ²(p‖q)), large-n limit"
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
    redraws
    :func:`draw_importance_sampling` from the precomputed samples. Returns an ``ipywidgets.VBox``
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
