"""The views of ``notebooks/02_advantage_estimation.ipynb`` (slides "Advantage Estimation",
"Generalized Advantage Estimation", "A2C + GAE").

The bias and variance of GAE on a finite MDP as gamma, lambda and the critic's error move (exact
lambda-return bias, sampled variance; computed by :func:`rlcourse.sweeps.gae_bias_variance`); A2C
against A2C + GAE learning curves, with a train button.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from rlcourse.sweeps import BiasVarianceGrid
from rlcourse.training import History
from rlcourse.widgets._view import make_view

__all__ = [
    "draw_bias_variance",
    "bias_variance_view",
    "draw_learning_curves",
    "learning_curves_view",
]


# --------------------------------------------------------------------------------------------------
# Bias and variance of GAE on a finite MDP (notebook 02, section "Bias and variance"); the grid is
# computed by rlcourse.sweeps.gae_bias_variance
# --------------------------------------------------------------------------------------------------


def draw_bias_variance(
    grid: BiasVarianceGrid, gamma: float, gae_lambda: float, critic_error: float = 0.0, fig=None
):
    """Left: bias², variance and MSE against lambda at the current ``(gamma, error)``, a marker at
    ``lambda``.

    Right: the MSE over the whole ``(gamma, lambda)`` grid at the current error, with the best
    lambda of each gamma (white dots) and the current point (a red cross). Returns the figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    i, j, k = grid.index(gamma, critic_error, gae_lambda)
    if fig is None:
        fig = plt.figure(figsize=(10, 3.8))
    fig.clear()
    ax, ax_map = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.3, 1]})
    lams = grid.lambdas
    ax.plot(lams, grid.bias2[i, j], "o-", color="C0", ms=3, label="bias² (sampled)")
    ax.plot(lams, grid.bias2_exact[i, j], "--", color="C0", lw=1, label="bias² (exact)")
    ax.plot(lams, grid.variance[i, j], "o-", color="C1", ms=3, label="variance")
    ax.plot(lams, grid.mse[i, j], "o-", color="k", ms=3, label="MSE = bias² + variance")
    ax.axvline(lams[k], color="C3", ls=":", lw=1)
    for series, color in ((grid.bias2, "C0"), (grid.variance, "C1"), (grid.mse, "k")):
        ax.plot(lams[k], series[i, j, k], "o", color=color, ms=8, mfc="none", mew=2)
    ax.set_xlabel("λ")
    ax.set_ylabel("mean over visited (s, a)")
    ax.set_title(
        f"γ={grid.gammas[i]:g}, critic error {grid.critic_errors[j]:g}, λ={lams[k]:g}\n"
        f"bias² {grid.bias2[i, j, k]:.2e}   variance {grid.variance[i, j, k]:.2e}   "
        f"MSE {grid.mse[i, j, k]:.2e}",
        fontsize="medium",
    )
    ax.legend(fontsize="small", loc="best")
    ax.grid(alpha=0.3)

    mse = grid.mse[:, j, :]
    top = mse.max() if mse.max() > 0 else 1.0
    # Four decades of colour; smaller MSEs (a perfect critic at lambda = 0 gives 0) share the
    # darkest one.
    norm = LogNorm(vmin=top * 1e-4, vmax=top, clip=True)
    image = ax_map.imshow(
        np.maximum(mse, top * 1e-4), aspect="auto", origin="lower", cmap="viridis", norm=norm
    )
    ax_map.set_xticks(range(len(lams)), [f"{lam:g}" for lam in lams], rotation=90, fontsize="small")
    ax_map.set_yticks(range(len(grid.gammas)), [f"{g:g}" for g in grid.gammas], fontsize="small")
    best = mse.argmin(axis=1)
    ax_map.plot(best, range(len(grid.gammas)), "o", color="white", ms=5)
    ax_map.plot(k, i, "x", color="red", ms=10, mew=2)
    ax_map.set_xlabel("λ")
    ax_map.set_ylabel("γ")
    ax_map.set_title(
        "MSE (log colours)\nwhite: best λ for each γ, red: current", fontsize="medium"
    )
    fig.colorbar(image, ax=ax_map)
    fig.tight_layout()
    return fig


def bias_variance_view(
    grid: BiasVarianceGrid,
    gamma: float | None = None,
    gae_lambda: float | None = None,
    critic_error: float | None = None,
):
    """Sliders for gamma, lambda and the critic's error over a precomputed
    :class:`BiasVarianceGrid`.

    The sliders start at the grid points nearest to the arguments (by default: the middle gamma and
    lambda, the largest error). A slider move only redraws :func:`draw_bias_variance`. Returns an
    ``ipywidgets.VBox``; its ``redraw()`` attribute draws the current state (called once here).

    Used by ``notebooks/02_advantage_estimation.ipynb``.
    """
    import ipywidgets as widgets

    def slider(description, values, start):
        values = [float(v) for v in values]
        value = values[int(np.abs(np.asarray(values) - start).argmin())]
        return widgets.SelectionSlider(
            options=[(f"{v:g}", v) for v in values],
            value=value,
            description=description,
            continuous_update=False,
        )

    g = slider("γ", grid.gammas, grid.gammas[len(grid.gammas) // 2] if gamma is None else gamma)
    lam = slider(
        "λ",
        grid.lambdas,
        grid.lambdas[len(grid.lambdas) // 2] if gae_lambda is None else gae_lambda,
    )
    err = slider(
        "critic error",
        grid.critic_errors,
        grid.critic_errors[-1] if critic_error is None else critic_error,
    )
    err.style.description_width = "initial"
    return make_view(
        lambda: draw_bias_variance(grid, g.value, lam.value, err.value),
        [[g, lam, err]],
        gamma=g,
        gae_lambda=lam,
        critic_error=err,
    )


# --------------------------------------------------------------------------------------------------
# Learning curves (notebook 02, section "A2C vs A2C + GAE")
# --------------------------------------------------------------------------------------------------


def draw_learning_curves(
    runs: Mapping[int, Mapping[str, History]],
    seed: int,
    threshold: float | None = None,
    window: int = 20,
    fig=None,
):
    """The learning curves of one seed (``runs[seed]``: label -> History) with
    :func:`rlcourse.plots.learning_curve`."""
    import matplotlib.pyplot as plt

    from rlcourse.plots import learning_curve

    if seed not in runs:
        raise ValueError(f"seed={seed!r} is not allowed: runs has seeds {sorted(runs)}")
    if fig is None:
        fig = plt.figure(figsize=(8, 4))
    fig.clear()
    return learning_curve(
        runs[seed], threshold=threshold, window=window, title=f"seed {seed}", ax=fig.subplots()
    )


def learning_curves_view(
    runs: dict[int, dict[str, History]],
    threshold: float | None = None,
    window: int = 20,
    train: Callable[[int, float], History] | None = None,
    gae_lambda: float = 0.5,
):
    """Learning curves of finished runs; a smoothing slider, a seed switch, and optionally a train
    button.

    ``runs`` maps seed -> {label: History}. The slider and the seed buttons only redraw. With
    ``train(seed, gae_lambda) -> History``, a lambda slider and a button train one more run of the
    shown seed when clicked and add it to ``runs`` as ``"A2C + GAE (λ=...)"``. Nothing trains
    before a click. Returns an ``ipywidgets.VBox`` with a ``redraw()`` attribute (called once here).

    Used by ``notebooks/02_advantage_estimation.ipynb``.
    """
    import ipywidgets as widgets

    if not runs:
        raise ValueError("runs is empty: pass at least one seed with one History")
    seed = widgets.ToggleButtons(options=sorted(runs), description="seed")
    smooth = widgets.IntSlider(
        value=window, min=1, max=100, description="window", continuous_update=False
    )
    training = []  # the train button's row: a lambda slider, the button, a status line
    if train is not None:
        lam = widgets.FloatSlider(
            value=gae_lambda, min=0.0, max=1.0, step=0.05, description="λ", continuous_update=False
        )
        button = widgets.Button(description="train A2C + GAE", icon="play", button_style="primary")
        status = widgets.Label("")

        def on_click(_):
            button.disabled = True
            status.value = f"training seed {seed.value} with λ={lam.value:g} ..."
            try:
                runs[seed.value][f"A2C + GAE (λ={lam.value:g})"] = train(seed.value, lam.value)
            except Exception as exc:
                status.value = f"training failed: {exc}"
                raise
            finally:
                button.disabled = False
            status.value = "done"
            view.redraw()

        button.on_click(on_click)
        training = [lam, button, status]
    view = make_view(
        lambda: draw_learning_curves(runs, seed.value, threshold, smooth.value),
        [[seed, smooth], training],
        seed=seed,
        smooth=smooth,
    )
    return view
