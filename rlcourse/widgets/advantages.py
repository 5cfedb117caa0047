"""The views of ``notebooks/02_advantage_estimation.ipynb`` (slides "Advantage Estimation",
"Generalized Advantage Estimation", "A2C + GAE").

The bias and variance of GAE on a finite MDP as gamma, lambda and the critic's error move (exact
lambda-return bias, sampled variance); A2C against A2C + GAE learning curves, with a train button.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from rlcourse.advantages import gae
from rlcourse.config import check_unit_interval
from rlcourse.tabular import FiniteMDP
from rlcourse.training import History
from rlcourse.widgets._view import make_view

__all__ = [
    "noisy_critic",
    "gae_on_episodes",
    "lambda_return_bias",
    "BiasVarianceGrid",
    "gae_bias_variance",
    "draw_bias_variance",
    "bias_variance_view",
    "draw_learning_curves",
    "learning_curves_view",
]


# --------------------------------------------------------------------------------------------------
# Bias and variance of GAE on a finite MDP (notebook 02, section "Bias and variance")
# --------------------------------------------------------------------------------------------------


def _check_lambda(name: str, value: float) -> float:
    check_unit_interval(name, value)
    return float(value)


def noisy_critic(
    values: np.ndarray, error: float, terminal: np.ndarray, seed: int = 0
) -> np.ndarray:
    """An imperfect critic ``v_w(s) = V(s) + error * z_s`` with fixed standard-normal ``z_s``.

    The same ``seed`` gives the same error pattern ``z`` for every ``error`` and every ``gamma``,
    so a slider over ``error`` only makes the same mistakes larger. Terminal states keep the value 0
    (the advantage functions never bootstrap from them anyway).

    Args:
        values: ``(S,)`` true state values ``V^pi``.
        error: size of the critic's error, ``>= 0`` (0 gives the perfect critic).
        terminal: ``(S,)`` bool, the MDP's terminal states.
        seed: seed of the error pattern.

    Used by ``notebooks/02_advantage_estimation.ipynb``.
    """
    if float(error) < 0:
        raise ValueError(f"error={error!r} is not allowed: error must be at least 0")
    values = np.asarray(values, dtype=float)
    z = np.random.default_rng(seed).standard_normal(values.shape)
    return np.where(np.asarray(terminal, dtype=bool), 0.0, values + float(error) * z)


def gae_on_episodes(
    episodes: Mapping[str, np.ndarray], critic: np.ndarray, gamma: float, gae_lambda: float
) -> np.ndarray:
    """GAE estimates ``A_t^GAE`` for every step of episodes sampled by
    ``FiniteMDP.sample_episodes``.

    A thin bridge from the tabular world to :func:`rlcourse.advantages.gae`: the critic table is
    looked up at ``S_t`` and ``S_{t+1}``, and the episodes' ``terminated``/``truncated`` flags are
    passed on. Steps after an episode's end (``active`` False) get meaningless numbers; mask them.

    Returns:
        ``(horizon, num_episodes)`` float64 array.
    """
    critic = torch.as_tensor(np.asarray(critic, dtype=float))
    states = torch.as_tensor(episodes["states"])
    next_states = torch.as_tensor(episodes["next_states"])
    adv = gae(
        torch.as_tensor(episodes["rewards"], dtype=torch.float64),
        critic[states],
        critic[next_states],
        torch.as_tensor(episodes["terminated"]),
        torch.as_tensor(episodes["truncated"]),
        gamma,
        gae_lambda,
    )
    return adv.numpy()


def lambda_return_bias(
    mdp: FiniteMDP, pi: np.ndarray, critic: np.ndarray, gae_lambda: float
) -> np.ndarray:
    """Exact bias ``E[v_t^lambda | S_t=s, A_t=a] - Q(s, a)`` of the lambda-return with critic
    ``critic``.

    With ``e = v_w - V^pi`` (0 on terminal states) the bias is ``gamma (1 - lambda) P_sa (I - gamma
    lambda P_pi)^{-1} e``: zero for a perfect critic and for ``lambda = 1`` (no bootstrapping). The
    GAE estimate ``A_t^GAE = v_t^lambda - v_w(S_t)`` has this bias plus ``-e(s)``, which does not
    depend on the action and so drops out of the policy gradient (a baseline). Episodes are taken to
    run to the end (no time limit).

    Returns:
        ``(S, A)`` array.
    """
    lam = _check_lambda("gae_lambda", gae_lambda)
    pi = np.asarray(pi, dtype=float)
    e = np.where(mdp.terminal, 0.0, np.asarray(critic, dtype=float) - mdp.values(pi))
    P_pi = np.einsum("sa,sat->st", pi, mdp.P)
    m = np.linalg.solve(np.eye(mdp.num_states) - mdp.gamma * lam * P_pi, e)
    return mdp.gamma * (1.0 - lam) * (mdp.P @ m)


@dataclass
class BiasVarianceGrid:
    """Bias and variance of the GAE estimate on a grid; arrays of shape ``(gammas, critic_errors,
    lambdas)``.

    ``bias2``: visit-weighted mean over state-action pairs of the squared bias of ``v_t^lambda``
    against ``Q(s, a)`` (sampled); ``bias2_exact``: the same with the exact bias; ``variance``:
    visit-weighted mean of ``Var[A_t^GAE | s, a]``; ``mse = bias2 + variance``. ``visits``: ``(S,
    A)`` visit counts.
    """

    gammas: np.ndarray
    critic_errors: np.ndarray
    lambdas: np.ndarray
    bias2: np.ndarray
    bias2_exact: np.ndarray
    variance: np.ndarray
    mse: np.ndarray
    visits: np.ndarray
    num_episodes: int

    def index(self, gamma: float, critic_error: float, gae_lambda: float) -> tuple[int, int, int]:
        """Indices of the grid point nearest to ``(gamma, critic_error, gae_lambda)``."""
        return (
            int(np.abs(self.gammas - gamma).argmin()),
            int(np.abs(self.critic_errors - critic_error).argmin()),
            int(np.abs(self.lambdas - gae_lambda).argmin()),
        )


def gae_bias_variance(
    mdp: FiniteMDP,
    pi: np.ndarray,
    gammas: Sequence[float],
    lambdas: Sequence[float],
    critic_errors: Sequence[float] = (0.0,),
    num_episodes: int = 2000,
    horizon: int = 200,
    seed: int = 0,
) -> BiasVarianceGrid:
    """Measure bias and variance of GAE against the exact advantages, for every ``(gamma, error,
    lambda)``.

    Samples ``num_episodes`` episodes of ``pi`` once (the dynamics do not depend on gamma), then for
    each ``gamma`` computes the exact ``V^pi`` and ``Q^pi`` of ``mdp`` with that discount, builds
    the critic ``noisy_critic(V^pi, error)`` for each error size, and computes GAE on all episodes
    with
    :func:`rlcourse.advantages.gae` for each ``lambda``. For every state-action pair ``(s, a)``:

    - bias: mean of ``A_t^GAE + v_w(s)`` (the lambda-return) over the visits of ``(s, a)``, minus
      ``Q(s, a)``. This leaves out the critic's error ``-e(s)`` in the baseline, which is the same
      for every action and so cannot bias the policy gradient;
    - variance: the variance of ``A_t^GAE`` over those visits (``v_w(s)`` is a constant there).

    Both are averaged over pairs, weighted by how often each pair was visited.

    Used by ``notebooks/02_advantage_estimation.ipynb``.
    """
    gammas = np.asarray(gammas, dtype=float)
    lambdas = np.asarray([_check_lambda("lambdas", lam) for lam in lambdas])
    errors = np.asarray(critic_errors, dtype=float)
    for g in gammas:
        if not 0.0 <= g < 1.0:
            raise ValueError(
                f"gammas contains {g!r}: every gamma must lie in [0, 1) on a finite MDP"
            )
    if (errors < 0).any():
        raise ValueError(
            f"critic_errors={list(errors)} is not allowed: every error must be at least 0"
        )
    if int(num_episodes) < 2:
        raise ValueError(f"num_episodes={num_episodes!r} is not allowed: need at least 2 episodes")

    episodes = mdp.sample_episodes(pi, num_episodes, horizon, np.random.default_rng(seed))
    active = episodes["active"]
    S, A = mdp.num_states, mdp.num_actions
    pair = (episodes["states"] * A + episodes["actions"])[active]
    visits = np.bincount(pair, minlength=S * A).astype(float)
    seen = visits > 0
    weights = visits[seen] / visits.sum()
    pair_state = np.flatnonzero(seen) // A

    shape = (len(gammas), len(errors), len(lambdas))
    bias2, bias2_exact, variance = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    for i, g in enumerate(gammas):
        mdp_g = dataclasses.replace(mdp, gamma=float(g))
        v_true, q_true = mdp_g.values(pi), mdp_g.q_values(pi).reshape(-1)
        for j, err in enumerate(errors):
            critic = noisy_critic(v_true, err, mdp.terminal)
            for k, lam in enumerate(lambdas):
                adv = gae_on_episodes(episodes, critic, float(g), float(lam))[active]
                mean_adv = np.bincount(pair, weights=adv, minlength=S * A)[seen] / visits[seen]
                mean_sq = np.bincount(pair, weights=adv**2, minlength=S * A)[seen] / visits[seen]
                # E[v_t^lambda | s, a] = E[A_t^GAE | s, a] + v_w(s), to compare with Q(s, a)
                bias2[i, j, k] = weights @ (mean_adv + critic[pair_state] - q_true[seen]) ** 2
                variance[i, j, k] = weights @ np.maximum(mean_sq - mean_adv**2, 0.0)
                exact = lambda_return_bias(mdp_g, pi, critic, lam).reshape(-1)[seen]
                bias2_exact[i, j, k] = weights @ exact**2
    return BiasVarianceGrid(
        gammas=gammas,
        critic_errors=errors,
        lambdas=lambdas,
        bias2=bias2,
        bias2_exact=bias2_exact,
        variance=variance,
        mse=bias2 + variance,
        visits=visits.reshape(S, A),
        num_episodes=int(num_episodes),
    )


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
    ax_map.set_title("MSE (log colours)\nwhite: best λ for each γ, red: current", fontsize="medium")
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
