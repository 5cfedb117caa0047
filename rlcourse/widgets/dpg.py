"""The views of ``notebooks/03_deterministic_policy_gradients.ipynb`` (slides "Deterministic
Policy Gradient", "DDPG Algorithm", "Twin Delayed Deep Deterministic Policy Gradient (TD3)").

TD3's three fixes and the exploration noise switched over precomputed runs, with the Q
over-estimation each run's critic shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rlcourse.training import History
from rlcourse.widgets._view import make_view

__all__ = [
    "fixes_label",
    "FixesRun",
    "noise_label",
    "noise_scales",
    "find_run",
    "draw_overestimation",
    "draw_fixes",
    "fixes_view",
]


# --------------------------------------------------------------------------------------------------
# TD3's three fixes and the Q over-estimation they remove (notebook 03)
# --------------------------------------------------------------------------------------------------


FIX_NAMES = ("twin", "delay", "smoothing")


def fixes_label(twin: bool, delay: bool, smoothing: bool) -> str:
    """A short name for a combination of TD3's fixes: ``"DDPG updates"``, ``"+ twin + delay"``, ...,
    ``"TD3"``."""
    on = [name for name, flag in zip(FIX_NAMES, (twin, delay, smoothing), strict=True) if flag]
    if not on:
        return "DDPG updates"
    if len(on) == len(FIX_NAMES):
        return "TD3"
    return " ".join(f"+ {name}" for name in on)


def noise_label(label: str, noise: float) -> str:
    """``label`` with the exploration noise scale: ``"TD3, σ = 0.3"``."""
    return f"{label}, σ = {noise:g}"


@dataclass
class FixesRun:
    """One finished run with a combination of TD3's fixes: its learning curve and its
    over-estimation.

    ``twin``, ``delay`` and ``smoothing`` say which fixes were on; ``overestimation`` is what
    :func:`rlcourse.diagnostics.q_overestimation` measured on the trained agent; ``noise`` is the
    exploration noise scale sigma of the behaviour policy ``A = mu(S) + eps`` (the config's
    ``exploration_noise``, a fraction of the action scale).
    """

    twin: bool
    delay: bool
    smoothing: bool
    history: History
    overestimation: object  # rlcourse.diagnostics.Overestimation
    noise: float = 0.1

    @property
    def fixes(self) -> tuple[bool, bool, bool]:
        return (bool(self.twin), bool(self.delay), bool(self.smoothing))

    @property
    def label(self) -> str:
        """The fixes alone: ``"TD3"``."""
        return fixes_label(*self.fixes)

    @property
    def noise_label(self) -> str:
        """The fixes and the noise scale: ``"TD3, σ = 0.1"``."""
        return noise_label(self.label, self.noise)


def _same_noise(a: float, b: float) -> bool:
    return abs(float(a) - float(b)) <= 1e-9


def _run_colors(runs: Sequence[FixesRun]) -> list:
    """One colour per run: the hue names the fixes (``C0``, ``C1``, ... in order of appearance), the
    shade the noise scale (lighter for less noise, darker for more), so a run keeps its colour
    whatever is selected."""
    from matplotlib.colors import to_rgb

    fixes_order = list(dict.fromkeys(run.fixes for run in runs))
    scales = noise_scales(runs)
    colors = []
    for run in runs:
        base = np.array(to_rgb(f"C{fixes_order.index(run.fixes) % 10}"))
        rank = next(k for k, s in enumerate(scales) if _same_noise(s, run.noise))
        # in [-1/2, 1/2]; 0: the base colour
        shade = (rank - (len(scales) - 1) / 2) / max(len(scales) - 1, 1)
        # towards white or black
        mixed = base + 0.9 * abs(shade) * ((1.0 if shade < 0 else 0.0) - base)
        colors.append(tuple(float(c) for c in mixed))
    return colors


def noise_scales(runs: Sequence[FixesRun]) -> list[float]:
    """The distinct exploration noise scales of ``runs``, smallest first."""
    scales: list[float] = []
    for run in runs:
        if not any(_same_noise(run.noise, s) for s in scales):
            scales.append(float(run.noise))
    return sorted(scales)


def find_run(
    runs: Sequence[FixesRun], twin: bool, delay: bool, smoothing: bool, noise: float | None = None
) -> int | None:
    """The index of the run with exactly these fixes and this exploration ``noise``, or ``None`` if
    not trained.

    ``noise=None`` accepts any noise scale (the first run with these fixes).
    """
    wanted = (bool(twin), bool(delay), bool(smoothing))
    return next(
        (
            i
            for i, run in enumerate(runs)
            if run.fixes == wanted and (noise is None or _same_noise(run.noise, noise))
        ),
        None,
    )


def draw_overestimation(
    results: Mapping[str, object],
    highlight: str | None = None,
    axes=None,
    fig=None,
    colors: Mapping[str, object] | None = None,
):
    """Critic estimates against realised returns, for runs ``label -> Overestimation``.

    Left: against the time step ``t`` of the evaluation episodes, the mean over episodes of the
    critic's ``q_w(S_t, mu(S_t))`` (solid) and of the return ``G_t`` the greedy policy really
    collected (dashed). Right: the mean gap ``q_w - G`` of each run, one bar each (above 0:
    over-estimation). ``highlight`` draws one run strongly and the others faintly; ``colors``
    (``label -> colour``) fixes each run's colour (default: ``C0``, ``C1``, ... in order). Draws
    into ``axes`` (two axes) if given; returns the figure.
    """
    import matplotlib.pyplot as plt

    if axes is None:
        if fig is None:
            fig = plt.figure(figsize=(11, 3.8))
        fig.clear()
        axes = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
    ax_t, ax_bar = axes
    labels = list(results)
    for i, label in enumerate(labels):
        result = results[label]
        color = colors[label] if colors is not None else f"C{i}"
        strong = highlight is None or label == highlight
        alpha, lw = (1.0, 1.8) if strong else (0.25, 1.0)
        t, est, ret = result.by_step()
        ax_t.plot(t, est, color=color, alpha=alpha, lw=lw, label=f"{label}: critic")
        ax_t.plot(t, ret, color=color, alpha=alpha, lw=lw, ls="--", label=f"{label}: realised")
        ax_bar.bar(
            i,
            result.mean_gap,
            color=color,
            alpha=alpha,
            edgecolor="k" if label == highlight else None,
        )
    ax_t.set(
        xlabel="time step t of the evaluation episode",
        ylabel="value",
        title="q_w(S_t, μ(S_t)) (solid) vs discounted return G_t (dashed)",
    )
    ax_bar.axhline(0, color="k", lw=1)
    ax_bar.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize="small")
    ax_bar.set(ylabel="mean of q_w − G", title="over-estimation")
    for ax in (ax_t, ax_bar):
        ax.grid(alpha=0.3)
    if len(labels) <= 4:
        ax_t.legend(fontsize="x-small", ncol=2)
    fig = ax_t.figure
    fig.tight_layout()
    return fig


def draw_fixes(
    runs: Sequence[FixesRun],
    twin: bool,
    delay: bool,
    smoothing: bool,
    noise: float | None = None,
    window: int = 10,
    threshold: float | None = -200.0,
    fig=None,
):
    """Learning curves and over-estimation of ``runs``, the one with exactly these fixes and
    ``noise`` drawn strongly.

    Left: the rolling mean of the training returns. Middle and right: as
    :func:`draw_overestimation`. With one noise scale in ``runs`` every run is drawn. With several,
    the figure shows the runs at the chosen noise scale (the fixes compared at equal noise) and the
    runs with the chosen fixes at the other noise scales (the noise compared at equal fixes); the
    labels then name the noise scale, and each run keeps its colour as the selection moves (the hue
    names the fixes, the shade the noise: darker is noisier). ``noise=None`` means the first run's
    noise scale. A combination that was not trained highlights nothing. Returns the figure.
    """
    import matplotlib.pyplot as plt

    from rlcourse.plots import rolling_mean

    if not runs:
        raise ValueError("runs is empty: pass at least one FixesRun")
    if noise is None:
        noise = runs[0].noise
    wanted = (bool(twin), bool(delay), bool(smoothing))
    index = find_run(runs, *wanted, noise)
    several = len(noise_scales(runs)) > 1
    name = (lambda run: run.noise_label) if several else (lambda run: run.label)
    fixes_order = list(dict.fromkeys(run.fixes for run in runs))
    shown = sorted(
        (i for i, run in enumerate(runs) if _same_noise(run.noise, noise) or run.fixes == wanted),
        key=lambda i: (fixes_order.index(runs[i].fixes), runs[i].noise),
    )
    run_colors = _run_colors(runs)
    colors = {name(runs[i]): run_colors[i] for i in shown}
    highlight = None if index is None else name(runs[index])
    if fig is None:
        fig = plt.figure(figsize=(15, 4))
    fig.clear()
    ax_curve, ax_t, ax_bar = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.3, 1.3, 0.8]})
    for i in shown:
        run = runs[i]
        strong = highlight is None or name(run) == highlight
        steps, returns = run.history.column("env_step"), run.history.column("return")
        if len(returns):
            ax_curve.plot(
                steps,
                rolling_mean(returns, window),
                color=colors[name(run)],
                alpha=1.0 if strong else 0.25,
                lw=1.8 if strong else 1.0,
                label=name(run),
            )
    if threshold is not None:
        ax_curve.axhline(threshold, color="k", ls="--", lw=1)
    ax_curve.set(xlabel="env steps", ylabel=f"return (mean of {window})", title="training episodes")
    ax_curve.grid(alpha=0.3)
    ax_curve.legend(fontsize="x-small")
    draw_overestimation(
        {name(runs[i]): runs[i].overestimation for i in shown},
        highlight=highlight,
        axes=(ax_t, ax_bar),
        colors=colors,
    )
    ax_t.get_legend() and ax_t.get_legend().remove()
    ax_t.set_title("critic (solid) vs realised return (dashed)", fontsize="medium")
    title = noise_label(fixes_label(*wanted), noise) if several else fixes_label(*wanted)
    fig.suptitle(title if index is not None else f"{title}: not trained here", fontsize="medium")
    fig.tight_layout()
    return fig


def fixes_view(runs: Sequence[FixesRun], window: int = 10, threshold: float | None = -200.0):
    """Check boxes for TD3's fixes and a selector for the exploration noise, over precomputed runs.

    Three check boxes, one per fix, and toggle buttons over the noise scales sigma present in
    ``runs``; a change only redraws :func:`draw_fixes` (nothing trains). The controls start at the
    first run's fixes and noise. A combination without a run says so and highlights nothing. Returns
    an ``ipywidgets.VBox`` (children: the controls, a status line, the figure) with attributes
    ``boxes`` (fix name -> check box), ``noise`` (the toggle buttons), ``status`` and ``redraw()``,
    which draws the current state (called once here).

    Used by ``notebooks/03_deterministic_policy_gradients.ipynb``.
    """
    import ipywidgets as widgets

    if not runs:
        raise ValueError("runs is empty: pass at least one FixesRun")
    descriptions = {
        "twin": "twin critics (min)",
        "delay": "delayed policy updates",
        "smoothing": "target smoothing",
    }
    boxes = {
        name: widgets.Checkbox(
            value=flag,
            description=descriptions[name],
            indent=False,
            layout=widgets.Layout(width="auto"),
        )
        for name, flag in zip(FIX_NAMES, runs[0].fixes, strict=True)
    }
    scales = noise_scales(runs)
    start = next(s for s in scales if _same_noise(s, runs[0].noise))
    noise = widgets.ToggleButtons(
        options=[(f"σ = {s:g}", s) for s in scales],
        value=start,
        description="exploration noise",
        tooltips=[f"A = μ(S) + ε, ε ~ N(0, ({s:g} · action scale)²)" for s in scales],
        style={"description_width": "initial", "button_width": "auto"},
    )
    several = len(scales) > 1
    name = (lambda run: run.noise_label) if several else (lambda run: run.label)
    status = widgets.HTML("")

    def draw():
        flags = [boxes[name].value for name in FIX_NAMES]
        index = find_run(runs, *flags, noise.value)
        if index is None:
            wanted = (
                noise_label(fixes_label(*flags), noise.value) if several else fixes_label(*flags)
            )
            trained = ", ".join(name(run) for run in runs)
            status.value = f"<i>{wanted}</i> was not trained; trained: {trained}"
        else:
            run = runs[index]
            gap = run.overestimation
            status.value = (
                f"<b>{name(run)}</b>: mean over-estimation {gap.mean_gap:+.1f} "
                f"({100 * gap.relative_gap:+.0f} % of |G|), last 10 training episodes "
                f"{run.history.mean_return(10):.0f}"
            )
        return draw_fixes(runs, *flags, noise.value, window=window, threshold=threshold)

    controls = widgets.HBox([*boxes.values(), noise], layout=widgets.Layout(flex_flow="row wrap"))
    view = make_view(draw, [controls, status], boxes=boxes, noise=noise)
    view.status = status
    return view
