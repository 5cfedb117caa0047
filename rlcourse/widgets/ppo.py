"""The views of ``notebooks/07_ppo_clipping.ipynb`` (slides "From TRPO to PPO", "PPO Algorithm
with Clipping").

PPO's clipped objective as epsilon moves, several epochs on one batch with and without clipping
(both computed by :mod:`rlcourse.objectives`: :func:`~rlcourse.objectives.clip_objective`,
:func:`~rlcourse.objectives.ratio_epochs`), PPO against PPO-KL and TRPO, clip fraction and KL over
a run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from rlcourse.objectives import RatioEpochs, clip_objective
from rlcourse.training import History
from rlcourse.widgets._view import _plain_log_axis, make_view

__all__ = [
    "draw_clip_objective",
    "clip_objective_view",
    "draw_ratio_epochs",
    "ratio_epochs_view",
    "draw_ppo_vs_trpo",
    "draw_clip_diagnostics",
    "clip_diagnostics_view",
]


# --------------------------------------------------------------------------------------------------
# PPO: the clipped objective, several epochs on one batch, PPO vs PPO-KL vs TRPO (notebook 07)
# --------------------------------------------------------------------------------------------------


def draw_clip_objective(
    clip_eps: float, advantages: Sequence[float] = (1.0, -1.0), ratio_max: float = 2.0, fig=None
):
    """PPO's clipped objective (top) and its gradient (bottom) against the ratio ``omega``, one
    column per advantage.

    Each column shows ``min(omega A, clip(omega, 1 - eps, 1 + eps) A)`` (bold) next to TRPO's
    unclipped ``omega A`` (dashed), the band ``[1 - eps, 1 + eps]`` (green) and, shaded red, where
    the objective is flat: there the gradient is 0 and the sample no longer pushes the ratio.
    Returns the figure.

    Used by ``notebooks/07_ppo_clipping.ipynb``.
    """
    import matplotlib.pyplot as plt

    advantages = [float(a) for a in advantages]
    if not advantages or 0.0 in advantages:
        raise ValueError(
            f"advantages={advantages} is not allowed: pass at least one advantage, none of them 0"
        )
    if not float(ratio_max) > 1.0 + float(clip_eps):
        raise ValueError(
            f"ratio_max={ratio_max!r} is not allowed: it must exceed 1 + clip_eps to show the clip"
        )
    ratio = np.linspace(0.0, float(ratio_max), 801)
    lo, hi = 1.0 - float(clip_eps), 1.0 + float(clip_eps)
    if fig is None:
        fig = plt.figure(figsize=(5.2 * len(advantages), 5.6))
    fig.clear()
    axes = fig.subplots(
        2, len(advantages), sharex=True, squeeze=False, gridspec_kw={"height_ratios": [2, 1]}
    )
    for j, adv in enumerate(advantages):
        objective, gradient, unclipped = clip_objective(ratio, adv, clip_eps)
        ax, ax_g = axes[0, j], axes[1, j]
        flat = gradient == 0
        for a in (ax, ax_g):
            top = a is ax  # the legend of the top panel names the shaded regions once
            a.axvspan(
                lo,
                hi,
                color="C2",
                alpha=0.12,
                label=f"[1−ε, 1+ε] = [{lo:g}, {hi:g}]" if top else None,
            )
            a.fill_between(
                ratio,
                0,
                1,
                where=flat,
                transform=a.get_xaxis_transform(),
                color="C3",
                alpha=0.12,
                lw=0,
                label="flat: gradient 0" if top else None,
            )
            a.axvline(1.0, color="grey", lw=0.8)
            a.grid(alpha=0.3)
        ax.plot(ratio, unclipped, "--", color="grey", label="ω·A  (unclipped, TRPO's surrogate)")
        ax.plot(ratio, objective, color="C0", lw=2.5, label="min(ω·A, clip(ω, 1−ε, 1+ε)·A)")
        ax.axhline(0, color="grey", lw=0.8)
        good = adv > 0
        ax.set_title(
            f"A = {adv:+g}: a {'better' if good else 'worse'} than average action\n"
            f"flat for ω {'> 1+ε' if good else '< 1−ε'}: "
            f"no reason to make it {'likelier' if good else 'rarer'}",
            fontsize="medium",
        )
        ax.set_ylabel("objective of one sample")
        ax.legend(fontsize="x-small", loc="upper left" if good else "lower left")
        ax_g.plot(ratio, np.full_like(ratio, adv), "--", color="grey", label="d(ω·A)/dω = A")
        ax_g.plot(ratio, gradient, color="C0", lw=2, label="d objective / dω")
        ax_g.set_ylim(min(adv, 0) - 0.25 * abs(adv), max(adv, 0) + 0.25 * abs(adv))
        ax_g.set(xlabel="ratio ω = π_θ'(a|s) / π_θ(a|s)", ylabel="d / dω")
        ax_g.legend(fontsize="x-small", loc="center left" if good else "center right")
    fig.suptitle(f"ε = {float(clip_eps):.2g}", fontsize="medium")
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.1, top=0.86, hspace=0.08, wspace=0.2)
    return fig


def clip_objective_view(
    clip_eps: float = 0.2, advantages: Sequence[float] = (1.0, -1.0), ratio_max: float = 2.0
):
    """An ``epsilon`` slider over :func:`draw_clip_objective`; every move redraws at once (nothing
    to precompute).

    Returns an ``ipywidgets.VBox`` with attributes ``clip_eps`` (the slider) and ``redraw()``
    (called once here).

    Used by ``notebooks/07_ppo_clipping.ipynb``.
    """
    import ipywidgets as widgets

    if not 0.05 <= float(clip_eps) <= 0.5:
        raise ValueError(f"clip_eps={clip_eps!r} is not allowed: the slider runs from 0.05 to 0.5")
    slider = widgets.FloatSlider(
        value=float(clip_eps), min=0.05, max=0.5, step=0.05, description="ε", readout_format=".2f"
    )
    return make_view(
        lambda: draw_clip_objective(slider.value, advantages, ratio_max), [slider], clip_eps=slider
    )


def draw_ratio_epochs(result: RatioEpochs, epoch: int, clip_eps: float = 0.2, fig=None):
    """Four panels of a :class:`RatioEpochs`, the unclipped run against the run with ``clip_eps``,
    at ``epoch``.

    Top left: the ratio ``pi_k(a) / pi_old(a)`` of every action against the epoch (dashed:
    unclipped, solid: clipped), the band ``[1 - eps, 1 + eps]`` shaded. Top right: the policies at
    ``epoch``. Bottom left: the exact improvement ``J(pi_k) - J(pi_old)`` (solid) and the samples'
    estimate ``mean (omega_i - 1) A_i`` (dotted). Bottom right: the exact ``KL(pi_k || pi_old)``
    (log scale). Returns the figure.

    Used by ``notebooks/07_ppo_clipping.ipynb``.
    """
    import matplotlib.pyplot as plt

    K = result.epochs
    if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or not 0 <= epoch <= K:
        raise ValueError(f"epoch={epoch!r} is not allowed: the runs have epochs 0 .. {K}")
    u, c = result.run(None), result.run(clip_eps)
    eps = result.clip_eps[c]
    k, ks, n_actions = int(epoch), np.arange(K + 1), result.pi_old.size
    if fig is None:
        fig = plt.figure(figsize=(12, 7.5))
    fig.clear()
    (ax_r, ax_p), (ax_i, ax_kl) = fig.subplots(2, 2)

    ax_r.axhspan(1 - eps, 1 + eps, color="C2", alpha=0.12, label=f"[1−ε, 1+ε], ε = {eps:g}")
    for a in range(n_actions):
        mine = result.actions == a
        what = (
            f"{mine.sum()} samples, mean Â {result.advantages[mine].mean():+.2f}"
            if mine.any()
            else "no sample"
        )
        ax_r.plot(ks, result.ratios[u, :, a], "--", color=f"C{a}", lw=1.2)
        ax_r.plot(ks, result.ratios[c, :, a], "-", color=f"C{a}", lw=2, label=f"a = {a}: {what}")
    ax_r.axvline(k, color="C3", ls=":", lw=1)
    ax_r.set_yscale("log")
    _plain_log_axis(ax_r.yaxis)
    ax_r.set(xlabel="epoch k", ylabel="π_k(a) / π_old(a)  (log scale)")
    ax_r.set_title("ratio of every action: solid clipped, dashed unclipped", fontsize="medium")
    ax_r.legend(fontsize="x-small", loc="upper left")

    width = 0.27
    x = np.arange(n_actions)
    for shift, (label, probs, style) in zip(
        (-width, 0.0, width),
        (
            ("π_old", result.pi_old, dict(color="grey")),
            (f"clipped, ε = {eps:g}", result.policies[c, k], dict(color="C0")),
            ("unclipped", result.policies[u, k], dict(color="C3", alpha=0.7)),
        ),
        strict=True,
    ):
        ax_p.bar(x + shift, probs, width, label=label, **style)
    ax_p.set_xticks(x, [f"a = {a}\nr(a) = {r:.2g}" for a, r in enumerate(result.rewards)])
    ax_p.set(ylabel="probability", ylim=(0, 1.05))
    ax_p.set_title(f"the policies after {k} epoch{'s' if k != 1 else ''}", fontsize="medium")
    ax_p.legend(fontsize="x-small", loc="upper right")

    for run, color, name in ((u, "C3", "unclipped"), (c, "C0", f"clipped, ε = {eps:g}")):
        ax_i.plot(
            ks,
            result.improvement[run],
            "-",
            color=color,
            lw=2,
            label=f"{name}: exact J(π_k) − J(π_old)",
        )
        ax_i.plot(
            ks,
            result.estimate[run],
            ":",
            color=color,
            lw=2,
            label=f"{name}: estimate mean (ω_i − 1) Â_i",
        )
        ax_kl.plot(ks[1:], result.kl[run, 1:], "-", color=color, lw=2, label=name)
    ax_i.axhline(0, color="grey", lw=0.8)
    ax_i.axvline(k, color="C3", ls=":", lw=1)
    ax_i.set(xlabel="epoch k", ylabel="change of J")
    ax_i.set_title(
        f"epoch {k}: exact {result.improvement[c, k]:+.3f} (clipped), "
        f"{result.improvement[u, k]:+.3f} (unclipped)",
        fontsize="medium",
    )
    ax_i.legend(fontsize="x-small", loc="upper left")
    ax_kl.axvline(max(k, 1), color="C3", ls=":", lw=1)
    ax_kl.set_yscale("log")
    _plain_log_axis(ax_kl.yaxis)
    ax_kl.set(xlabel="epoch k", ylabel="KL(π_k ‖ π_old)  (log scale)")
    ax_kl.set_title(
        f"epoch {k}: KL {result.kl[c, k]:.3g} (clipped), {result.kl[u, k]:.3g} (unclipped)",
        fontsize="medium",
    )
    ax_kl.legend(fontsize="x-small", loc="lower right")
    for ax in (ax_r, ax_p, ax_i, ax_kl):
        ax.grid(alpha=0.3)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.08, top=0.95, hspace=0.35, wspace=0.2)
    return fig


def ratio_epochs_view(result: RatioEpochs, epoch: int | None = None, clip_eps: float | None = None):
    """An epoch slider and an ``epsilon`` switch over a precomputed :class:`RatioEpochs`; a move
    only redraws
    :func:`draw_ratio_epochs`. Starts at ``epoch`` (default: the last) and ``clip_eps`` (default:
    the clipped run nearest to 0.2). Returns an ``ipywidgets.VBox`` with attributes ``epoch``,
    ``clip_eps`` and ``redraw()``.

    Used by ``notebooks/07_ppo_clipping.ipynb``.
    """
    import ipywidgets as widgets

    clipped = [e for e in result.clip_eps if e is not None]
    if not clipped:
        raise ValueError("result has no clipped run: pass at least one clip_eps to ratio_epochs")
    start_eps = clipped[
        int(np.abs(np.array(clipped) - (0.2 if clip_eps is None else clip_eps)).argmin())
    ]
    if clip_eps is not None:
        result.run(clip_eps)  # the clear error for an epsilon without a run
    start = result.epochs if epoch is None else int(epoch)
    if not 0 <= start <= result.epochs:
        raise ValueError(
            f"epoch={epoch!r} is not allowed: the runs have epochs 0 .. {result.epochs}"
        )
    k = widgets.IntSlider(
        value=start, min=0, max=result.epochs, description="epoch", continuous_update=False
    )
    eps = widgets.ToggleButtons(
        options=[(f"ε = {e:g}", e) for e in clipped], value=start_eps, description="clip"
    )
    return make_view(
        lambda: draw_ratio_epochs(result, k.value, eps.value), [[k, eps]], epoch=k, clip_eps=eps
    )


def _kl_column(history: History) -> tuple[str, str]:
    """The KL a run logs per iteration and how to name it: ``kl`` (PPO-KL, TRPO) or ``approx_kl``
    (PPO-clip)."""
    if history.iterations and "kl" in history.iterations[0]:
        return "kl", "KL(π_new ‖ π_old)"
    return "approx_kl", "approx. KL(π_old ‖ π_new)"


def draw_ppo_vs_trpo(
    runs: Mapping[str, History], threshold: float | None = 475.0, window: int = 20, fig=None
):
    """Learning curves and per-iteration diagnostics of runs ``label -> History`` (PPO, PPO-KL,
    TRPO).

    Top left: training returns against env steps (:func:`rlcourse.plots.learning_curve`). Top right:
    how far each update moved the policy, ``kl`` where the run logs it (PPO-KL's penalty and TRPO's
    constraint, exact ``KL(pi_new || pi_old)`` over the rollout's states) and PPO-clip's
    ``approx_kl`` otherwise (the estimate of ``KL(pi_old || pi_new)`` from the taken actions).
    Bottom left: the policy's entropy. Bottom right: PPO-KL's penalty weight ``lambda_k``
    (``kl_coef``), for the runs that log it. Returns the figure.

    Used by ``notebooks/07_ppo_clipping.ipynb``.
    """
    import matplotlib.pyplot as plt

    from rlcourse.plots import learning_curve

    if not runs:
        raise ValueError("runs is empty: pass at least one History")
    if fig is None:
        fig = plt.figure(figsize=(12, 7))
    fig.clear()
    (ax_ret, ax_kl), (ax_h, ax_coef) = fig.subplots(2, 2)
    learning_curve(runs, threshold=threshold, window=window, title="training episodes", ax=ax_ret)
    any_coef = False
    for i, (label, h) in enumerate(runs.items()):
        if not h.iterations:
            continue
        steps = h.column("env_step", "iterations")
        column, name = _kl_column(h)
        ax_kl.plot(
            steps,
            h.column(column, "iterations"),
            "o-",
            ms=2,
            lw=1,
            color=f"C{i}",
            label=f"{label}: {name}",
        )
        ax_h.plot(steps, h.column("entropy", "iterations"), color=f"C{i}", label=label)
        if "kl_coef" in h.iterations[0]:
            any_coef = True
            ax_coef.plot(
                steps, h.column("kl_coef", "iterations"), "o-", ms=2, color=f"C{i}", label=label
            )
    ax_kl.set_yscale("log")
    _plain_log_axis(ax_kl.yaxis)
    ax_kl.set(
        xlabel="env steps",
        ylabel="per iteration (log scale)",
        title="how far each update moved the policy",
    )
    ax_h.set(xlabel="env steps", ylabel="nats", title="policy entropy")
    ax_coef.set(xlabel="env steps", ylabel="λ_k", title="PPO-KL: the adaptive penalty weight λ_k")
    if any_coef:
        ax_coef.set_yscale("log")
        _plain_log_axis(ax_coef.yaxis)
    else:
        ax_coef.text(
            0.5,
            0.5,
            "no run with objective='kl'",
            ha="center",
            va="center",
            transform=ax_coef.transAxes,
        )
    for ax in (ax_ret, ax_kl, ax_h, ax_coef):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="x-small")
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.08, top=0.95, hspace=0.35, wspace=0.2)
    return fig


def draw_clip_diagnostics(
    runs: Mapping[float, History], clip_eps: float | None = None, smooth: int = 1, fig=None
):
    """PPO's clip fraction, approximate KL and returns against env steps, one run per ``epsilon``
    (``eps -> History``).

    ``clip_eps`` picks the run drawn bold (the others faint); ``None`` draws all alike. ``smooth``
    averages the per-iteration diagnostics over the last ``smooth`` iterations (1: raw); the returns
    are the mean of the last
    20 episodes. The panel titles give the mean over all iterations of the bold run(s). Returns the
    figure.

    Used by ``notebooks/07_ppo_clipping.ipynb``.
    """
    import matplotlib.pyplot as plt

    from rlcourse.plots import rolling_mean

    if not runs:
        raise ValueError("runs is empty: pass at least one epsilon with its History")
    keys = [float(e) for e in runs]
    if clip_eps is not None and not np.isclose(keys, float(clip_eps)).any():
        raise ValueError(f"clip_eps={clip_eps!r} is not allowed: the runs have clip_eps {keys}")
    if isinstance(smooth, bool) or not isinstance(smooth, (int, np.integer)) or smooth < 1:
        raise ValueError(f"smooth={smooth!r} is not allowed: smooth must be an integer >= 1")
    if fig is None:
        fig = plt.figure(figsize=(14, 4))
    fig.clear()
    ax_cf, ax_kl, ax_ret = fig.subplots(1, 3)
    means = {"clip_fraction": [], "approx_kl": []}
    for i, (eps, h) in enumerate(runs.items()):
        bold = clip_eps is None or np.isclose(float(eps), float(clip_eps))
        style = dict(
            color=f"C{i}",
            lw=2.2 if bold else 1,
            alpha=1 if bold else 0.35,
            label=f"ε = {float(eps):g}",
        )
        if h.iterations:
            steps = h.column("env_step", "iterations")
            for ax, name in ((ax_cf, "clip_fraction"), (ax_kl, "approx_kl")):
                values = h.column(name, "iterations")
                ax.plot(steps, rolling_mean(values, int(smooth)), **style)
                if bold:
                    means[name].append(f"{values.mean():.3g}")
        if len(h.episodes):
            ax_ret.plot(h.column("env_step"), rolling_mean(h.column("return"), 20), **style)
    which = "all runs" if clip_eps is None else f"ε = {float(clip_eps):g}"
    ax_cf.set(xlabel="env steps", ylabel="fraction of samples, |ω − 1| > ε", ylim=(0, None))
    ax_cf.set_title(
        f"clip fraction\nmean over iterations ({which}): {', '.join(means['clip_fraction'])}",
        fontsize="medium",
    )
    ax_kl.set(xlabel="env steps", ylabel="approx. KL(π_old ‖ π_new)", ylim=(0, None))
    ax_kl.set_title(
        f"approximate KL per iteration\n"
        f"mean over iterations ({which}): {', '.join(means['approx_kl'])}",
        fontsize="medium",
    )
    ax_ret.set(xlabel="env steps", ylabel="return (mean of last 20)", title="training episodes")
    for ax in (ax_cf, ax_kl, ax_ret):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="x-small")
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.14, top=0.84, wspace=0.25)
    return fig


def clip_diagnostics_view(
    runs: Mapping[float, History], clip_eps: float | None = None, smooth: int = 1
):
    """An ``epsilon`` switch ("all" or one run) and a smoothing slider over finished PPO runs ``eps
    -> History``.

    A move only redraws :func:`draw_clip_diagnostics`. Returns an ``ipywidgets.VBox`` with
    attributes ``clip_eps``, ``smooth`` and ``redraw()`` (called once here).

    Used by ``notebooks/07_ppo_clipping.ipynb``.
    """
    import ipywidgets as widgets

    if not runs:
        raise ValueError("runs is empty: pass at least one epsilon with its History")
    keys = [float(e) for e in runs]
    start = "all"
    if clip_eps is not None:
        if not np.isclose(keys, float(clip_eps)).any():
            raise ValueError(f"clip_eps={clip_eps!r} is not allowed: the runs have clip_eps {keys}")
        start = keys[int(np.abs(np.array(keys) - float(clip_eps)).argmin())]
    eps = widgets.ToggleButtons(
        options=[("all", "all")] + [(f"ε = {e:g}", e) for e in keys],
        value=start,
        description="show",
    )
    window = widgets.IntSlider(
        value=int(smooth), min=1, max=10, description="smooth", continuous_update=False
    )

    def draw():
        return draw_clip_diagnostics(runs, None if eps.value == "all" else eps.value, window.value)

    return make_view(draw, [[eps, window]], clip_eps=eps, smooth=window)
