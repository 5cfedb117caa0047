"""The notebooks' interactive views: plain functions first, widgets on top.

Each view has three layers:

1. a pure function that computes everything the view can show, once, on a grid
   (e.g. :func:`gae_bias_variance`), returning plain arrays;
2. a ``draw_*`` function that turns one grid point into a matplotlib figure, with no state;
3. a ``*_view`` function that puts ipywidgets (ipywidgets 8) controls on top: a slider move only
   calls the ``draw_*`` function on the precomputed data, so it answers in a fraction of a second.
   Training, the one slow thing, sits behind a button.

Every view draws once when it is built, so it shows something also when a notebook runs headless
(nbval) and nobody touches the controls.

Used by ``notebooks/02_advantage_estimation.ipynb`` (bias and variance of GAE on the random walk,
A2C vs A2C + GAE learning curves) and ``notebooks/04_soft_value_functions.ipynb`` (the greedy softmax
policy, its soft values and entropy as the temperature moves; SAC's temperature over a run) and
``notebooks/03_deterministic_policy_gradients.ipynb`` (TD3's fixes and the exploration noise switched over
precomputed runs, with the Q over-estimation each run's critic shows), ``05_importance_sampling.ipynb``
(the estimate's variance and effective sample size as the proposal moves), ``06_trpo_bound.ipynb`` (J, the
surrogate, its lower bound and the KL along a path of policies; TRPO's diagnostics) and
``07_ppo_clipping.ipynb`` (the clipped objective, several epochs on one batch, clip fraction and KL);
``08_grpo.ipynb``'s views live in :mod:`rlcourse.widgets.grpo` and are importable from here too.
The sections below follow the notebooks' order of writing, each under its own heading.
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
    "table",
    "SoftPolicyGrid",
    "soft_policy_grid",
    "draw_soft_policy",
    "soft_policy_view",
    "draw_temperature",
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
# Tables of per-step quantities (notebook 02, sections on returns, TD errors and GAE)
# --------------------------------------------------------------------------------------------------


def table(columns: Mapping[str, Sequence], digits: int = 3, index: str | None = "t"):
    """An HTML table of equally long columns (numbers, bools or tensors), one row per time step.

    ``index`` names a first column 0, 1, 2, ... (``None`` leaves it out); floats get ``digits``
    decimals, booleans show as a tick or nothing, so episode ends stand out. Returns an
    ``IPython.display.HTML`` object: the last line of a cell shows it.

    Used by ``notebooks/02_advantage_estimation.ipynb``.
    """
    from html import escape

    from IPython.display import HTML

    cols = {
        name: np.asarray(values.detach() if isinstance(values, torch.Tensor) else values)
        for name, values in columns.items()
    }
    lengths = {name: len(values) for name, values in cols.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"columns must all have the same length, got {lengths}")
    if index is not None:
        cols = {index: np.arange(next(iter(lengths.values()), 0)), **cols}

    def cell(x):
        if isinstance(x, (bool, np.bool_)):
            return "✓" if x else ""
        if isinstance(x, (float, np.floating)):
            return f"{x:.{digits}f}"
        return escape(str(x))

    head = "".join(f"<th>{escape(name)}</th>" for name in cols)
    rows = "".join(
        "<tr>" + "".join(f"<td>{cell(c[i])}</td>" for c in cols.values()) + "</tr>"
        for i in range(len(next(iter(cols.values()), [])))
    )
    return HTML(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")


# --------------------------------------------------------------------------------------------------
# Bias and variance of GAE on a finite MDP (notebook 02, section "Bias and variance")
# --------------------------------------------------------------------------------------------------


def _check_lambda(name: str, value: float) -> float:
    check_unit_interval(name, value)
    return float(value)


def noisy_critic(values: np.ndarray, error: float, terminal: np.ndarray, seed: int = 0) -> np.ndarray:
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
    """GAE estimates ``A_t^GAE`` for every step of episodes sampled by ``FiniteMDP.sample_episodes``.

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


def lambda_return_bias(mdp: FiniteMDP, pi: np.ndarray, critic: np.ndarray, gae_lambda: float) -> np.ndarray:
    """Exact bias ``E[v_t^lambda | S_t=s, A_t=a] - Q(s, a)`` of the lambda-return with critic ``critic``.

    With ``e = v_w - V^pi`` (0 on terminal states) the bias is ``gamma (1 - lambda) P_sa (I - gamma lambda
    P_pi)^{-1} e``: zero for a perfect critic and for ``lambda = 1`` (no bootstrapping). The GAE
    estimate ``A_t^GAE = v_t^lambda - v_w(S_t)`` has this bias plus ``-e(s)``, which does not depend on
    the action and so drops out of the policy gradient (a baseline). Episodes are taken to run to the
    end (no time limit).

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
    """Bias and variance of the GAE estimate on a grid; arrays of shape ``(gammas, critic_errors, lambdas)``.

    ``bias2``: visit-weighted mean over state-action pairs of the squared bias of ``v_t^lambda`` against
    ``Q(s, a)`` (sampled); ``bias2_exact``: the same with the exact bias; ``variance``: visit-weighted
    mean of ``Var[A_t^GAE | s, a]``; ``mse = bias2 + variance``. ``visits``: ``(S, A)`` visit counts.
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
    """Measure bias and variance of GAE against the exact advantages, for every ``(gamma, error, lambda)``.

    Samples ``num_episodes`` episodes of ``pi`` once (the dynamics do not depend on gamma), then for
    each ``gamma`` computes the exact ``V^pi`` and ``Q^pi`` of ``mdp`` with that discount, builds the
    critic ``noisy_critic(V^pi, error)`` for each error size, and computes GAE on all episodes with
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
            raise ValueError(f"gammas contains {g!r}: every gamma must lie in [0, 1) on a finite MDP")
    if (errors < 0).any():
        raise ValueError(f"critic_errors={list(errors)} is not allowed: every error must be at least 0")
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


def draw_bias_variance(grid: BiasVarianceGrid, gamma: float, gae_lambda: float, critic_error: float = 0.0, fig=None):
    """Left: bias², variance and MSE against lambda at the current ``(gamma, error)``, a marker at ``lambda``.

    Right: the MSE over the whole ``(gamma, lambda)`` grid at the current error, with the best lambda
    of each gamma (white dots) and the current point (a red cross). Returns the figure.
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
        f"bias² {grid.bias2[i, j, k]:.2e}   variance {grid.variance[i, j, k]:.2e}   MSE {grid.mse[i, j, k]:.2e}",
        fontsize="medium",
    )
    ax.legend(fontsize="small", loc="best")
    ax.grid(alpha=0.3)

    mse = grid.mse[:, j, :]
    top = mse.max() if mse.max() > 0 else 1.0
    # Four decades of colour; smaller MSEs (a perfect critic at lambda = 0 gives 0) share the darkest one.
    norm = LogNorm(vmin=top * 1e-4, vmax=top, clip=True)
    image = ax_map.imshow(np.maximum(mse, top * 1e-4), aspect="auto", origin="lower", cmap="viridis", norm=norm)
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


def _show(output, fig) -> None:
    """Replace what ``output`` shows by ``fig`` (a static image, as the inline backend draws it)."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    with output:
        output.clear_output(wait=True)
        display(fig)
    plt.close(fig)


def bias_variance_view(
    grid: BiasVarianceGrid,
    gamma: float | None = None,
    gae_lambda: float | None = None,
    critic_error: float | None = None,
):
    """Sliders for gamma, lambda and the critic's error over a precomputed :class:`BiasVarianceGrid`.

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
            options=[(f"{v:g}", v) for v in values], value=value, description=description, continuous_update=False
        )

    g = slider("γ", grid.gammas, grid.gammas[len(grid.gammas) // 2] if gamma is None else gamma)
    lam = slider("λ", grid.lambdas, grid.lambdas[len(grid.lambdas) // 2] if gae_lambda is None else gae_lambda)
    err = slider("critic error", grid.critic_errors, grid.critic_errors[-1] if critic_error is None else critic_error)
    err.style.description_width = "initial"
    output = widgets.Output()

    def redraw(_=None):
        _show(output, draw_bias_variance(grid, g.value, lam.value, err.value))

    for control in (g, lam, err):
        control.observe(redraw, names="value")
    view = widgets.VBox([widgets.HBox([g, lam, err]), output])
    view.redraw = redraw
    redraw()
    return view


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
    """The learning curves of one seed (``runs[seed]``: label -> History) with :func:`rlcourse.plots.learning_curve`."""
    import matplotlib.pyplot as plt

    from rlcourse.plots import learning_curve

    if seed not in runs:
        raise ValueError(f"seed={seed!r} is not allowed: runs has seeds {sorted(runs)}")
    if fig is None:
        fig = plt.figure(figsize=(8, 4))
    fig.clear()
    return learning_curve(runs[seed], threshold=threshold, window=window, title=f"seed {seed}", ax=fig.subplots())


def learning_curves_view(
    runs: dict[int, dict[str, History]],
    threshold: float | None = None,
    window: int = 20,
    train: Callable[[int, float], History] | None = None,
    gae_lambda: float = 0.5,
):
    """Learning curves of finished runs; a smoothing slider, a seed switch, and optionally a train button.

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
    smooth = widgets.IntSlider(value=window, min=1, max=100, description="window", continuous_update=False)
    output = widgets.Output()
    controls = [seed, smooth]

    def redraw(_=None):
        _show(output, draw_learning_curves(runs, seed.value, threshold, smooth.value))

    seed.observe(redraw, names="value")
    smooth.observe(redraw, names="value")
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
            redraw()

        button.on_click(on_click)
        controls += [lam, button, status]
    view = widgets.VBox([widgets.HBox(controls[:2]), widgets.HBox(controls[2:]), output])
    view.redraw = redraw
    redraw()
    return view


# --------------------------------------------------------------------------------------------------
# Soft values and the greedy softmax policy as the temperature moves (notebook 04)
# --------------------------------------------------------------------------------------------------


@dataclass
class SoftPolicyGrid:
    """The soft-optimal quantities of one finite MDP on a grid of temperatures (the slides' lambda).

    Arrays have the temperatures first: ``q`` ``(K, S, A)`` and ``v`` ``(K, S)`` the optimal soft
    values, ``pi`` ``(K, S, A)`` the greedy softmax policy w.r.t. ``q``, ``entropy`` ``(K, S)`` its
    entropy ``H(pi(.|s))`` in nats, ``values`` ``(K, S)`` the ordinary value ``V^pi`` of that policy
    (the rewards alone, no entropy bonus). ``temperatures`` are sorted ascending.
    """

    temperatures: np.ndarray
    q: np.ndarray
    v: np.ndarray
    pi: np.ndarray
    entropy: np.ndarray
    values: np.ndarray

    def index(self, temperature: float) -> int:
        """Index of the grid temperature nearest to ``temperature``."""
        return int(np.abs(self.temperatures - float(temperature)).argmin())


def soft_policy_grid(mdp: FiniteMDP, temperatures: Sequence[float], tol: float = 1e-10) -> SoftPolicyGrid:
    """Solve ``mdp`` for the optimal soft values at every temperature, once, for a slider to redraw from.

    For each ``lambda`` in ``temperatures`` (each ``>= 0``; 0 is ordinary value iteration),
    :meth:`rlcourse.tabular.FiniteMDP.soft_value_iteration` gives ``q*``, ``v*`` and the greedy softmax
    policy ``pi* = exp((q* - v*) / lambda)``; the grid also keeps ``H(pi*(.|s))`` and the ordinary
    value ``V^{pi*}``, which shows what the entropy bonus costs in reward.

    Used by ``notebooks/04_soft_value_functions.ipynb``.
    """
    from rlcourse.tabular import entropy

    temps = np.asarray(temperatures, dtype=float).reshape(-1)
    if temps.size == 0:
        raise ValueError("temperatures is empty: pass at least one temperature >= 0")
    if not np.isfinite(temps).all() or (temps < 0).any():
        raise ValueError(
            f"temperatures={temps.tolist()} is not allowed: every temperature must be a finite number >= 0"
        )
    temps = np.unique(temps)  # sorted, no duplicates
    qs, vs, pis = zip(*(mdp.soft_value_iteration(float(t), tol=tol) for t in temps), strict=True)
    pi = np.stack(pis)
    return SoftPolicyGrid(
        temperatures=temps,
        q=np.stack(qs),
        v=np.stack(vs),
        pi=pi,
        entropy=entropy(pi),
        values=np.stack([mdp.values(p) for p in pis]),
    )


def draw_soft_policy(grid: SoftPolicyGrid, temperature: float, state: int = 0, fig=None):
    """Three panels at the grid temperature nearest to ``temperature``, for state ``state``.

    Left: the greedy softmax policy ``pi*(.|s)`` as bars, each labelled with ``q*(s, a)``.
    Middle: the entropy ``H(pi*(.|s))`` of every state against the temperature (the chosen state
    bold, ``log |A|`` dashed). Right: the soft value ``v*(s)`` and the ordinary value ``V^{pi*}(s)``
    against the temperature, with the ordinary optimum ``V*(s)`` (at the smallest grid temperature)
    dotted. The temperature axis is logarithmic, linear near 0 so that 0 fits. Returns the figure.
    """
    import matplotlib.pyplot as plt

    S, A = grid.pi.shape[1:]
    if not 0 <= int(state) < S:
        raise ValueError(f"state={state!r} is not allowed: the MDP has states 0 .. {S - 1}")
    s, k = int(state), grid.index(temperature)
    lam, temps = grid.temperatures[k], grid.temperatures
    if fig is None:
        fig = plt.figure(figsize=(12, 3.6))
    fig.clear()
    ax_pi, ax_h, ax_v = fig.subplots(1, 3, gridspec_kw={"width_ratios": [0.8, 1, 1]})

    bars = ax_pi.bar(range(A), grid.pi[k, s], color="C0")
    for a, bar in enumerate(bars):
        ax_pi.text(
            bar.get_x() + bar.get_width() / 2,
            bar.get_height() + 0.02,
            f"q={grid.q[k, s, a]:.2f}",
            ha="center",
            fontsize="small",
        )
    ax_pi.set(ylim=(0, 1.15), xticks=range(A), xlabel="action a", ylabel="π*(a|s)")
    ax_pi.set_title(f"state {s}, λ={lam:.3g}\nH(π*(·|s)) = {grid.entropy[k, s]:.3f} nats", fontsize="medium")

    positive = temps[temps > 0]
    linthresh = positive.min() if positive.size else 1.0
    for other in range(S):
        bold = other == s
        ax_h.plot(
            temps,
            grid.entropy[:, other],
            color=f"C{other}",
            lw=2.5 if bold else 1,
            alpha=1 if bold else 0.5,
            label=f"state {other}",
        )
    ax_h.axhline(np.log(A), color="grey", ls="--", lw=1, label="log |A| (uniform)")
    ax_h.plot(lam, grid.entropy[k, s], "o", color=f"C{s}", ms=8, mfc="none", mew=2)
    ax_h.set(xlabel="temperature λ", ylabel="H(π*(·|s))", title="entropy of the greedy softmax policy")
    ax_h.legend(fontsize="x-small", loc="upper left")

    ax_v.plot(temps, grid.v[:, s], color="C0", label="soft value v*(s)")
    ax_v.plot(temps, grid.values[:, s], color="C1", label="reward only V^π*(s)")
    ax_v.axhline(grid.values[0, s], color="k", ls=":", lw=1, label=f"V*(s) at λ={temps[0]:.3g}")
    ax_v.plot([lam, lam], [grid.v[k, s], grid.values[k, s]], "o", color="C3", ms=6)
    ax_v.set(xlabel="temperature λ", title=f"values of state {s}")
    ax_v.legend(fontsize="x-small", loc="upper left")
    for ax in (ax_h, ax_v):
        ax.set_xscale("symlog", linthresh=linthresh)
        ax.axvline(lam, color="C3", ls=":", lw=1)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def soft_policy_view(grid: SoftPolicyGrid, temperature: float | None = None, state: int = 0):
    """A temperature slider and a state switch over a precomputed :class:`SoftPolicyGrid`.

    The slider runs over the grid's temperatures (starting nearest to ``temperature``, by default the
    middle one); a move only redraws :func:`draw_soft_policy`. Returns an ``ipywidgets.VBox``; its
    ``redraw()`` attribute draws the current state (called once here).

    Used by ``notebooks/04_soft_value_functions.ipynb``.
    """
    import ipywidgets as widgets

    temps = [float(t) for t in grid.temperatures]
    start = temps[len(temps) // 2] if temperature is None else temps[grid.index(temperature)]
    lam = widgets.SelectionSlider(
        options=[(f"{t:.3g}", t) for t in temps], value=start, description="λ", continuous_update=False
    )
    num_states = grid.pi.shape[1]
    if not 0 <= int(state) < num_states:
        raise ValueError(f"state={state!r} is not allowed: the MDP has states 0 .. {num_states - 1}")
    s = widgets.ToggleButtons(options=list(range(num_states)), value=int(state), description="state")
    s.style.button_width = "40px"
    output = widgets.Output()

    def redraw(_=None):
        _show(output, draw_soft_policy(grid, lam.value, s.value))

    lam.observe(redraw, names="value")
    s.observe(redraw, names="value")
    view = widgets.VBox([widgets.HBox([lam, s]), output])
    view.redraw = redraw
    redraw()
    return view


# --------------------------------------------------------------------------------------------------
# SAC's temperature over a run (notebook 04, section "SAC")
# --------------------------------------------------------------------------------------------------


def draw_temperature(histories: Mapping[str, History], target_entropy: float | None = None, fig=None):
    """SAC's temperature ``alpha`` (log scale) and the policy's entropy against env steps, one line per run.

    Reads the ``alpha`` and ``entropy`` columns of each history's iterations (SAC logs them every
    1000 updates); ``target_entropy``, if given, is drawn as a dashed line. Returns the figure.

    Used by ``notebooks/04_soft_value_functions.ipynb``.
    """
    import matplotlib.pyplot as plt

    if fig is None:
        fig = plt.figure(figsize=(10, 3.5))
    fig.clear()
    ax_alpha, ax_h = fig.subplots(1, 2)
    for i, (label, history) in enumerate(histories.items()):
        if not history.iterations:
            continue
        steps = history.column("env_step", "iterations")
        ax_alpha.plot(steps, history.column("alpha", "iterations"), "o-", color=f"C{i}", ms=4, label=label)
        ax_h.plot(steps, history.column("entropy", "iterations"), "o-", color=f"C{i}", ms=4, label=label)
    if target_entropy is not None:
        ax_h.axhline(target_entropy, color="k", ls="--", lw=1, label=f"target entropy {target_entropy:g}")
    ax_alpha.set(yscale="log", xlabel="env steps", ylabel="α", title="temperature α")
    ax_h.set(xlabel="env steps", ylabel="−E[log π(A|S)]", title="policy entropy (minibatch estimate)")
    for ax in (ax_alpha, ax_h):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------------
# TD3's three fixes and the Q over-estimation they remove (notebook 03)
# --------------------------------------------------------------------------------------------------


FIX_NAMES = ("twin", "delay", "smoothing")


def fixes_label(twin: bool, delay: bool, smoothing: bool) -> str:
    """A short name for a combination of TD3's fixes: ``"DDPG updates"``, ``"+ twin + delay"``, ..., ``"TD3"``."""
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
    """One finished run with a combination of TD3's fixes: its learning curve and its over-estimation.

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
    """One colour per run: the hue names the fixes (``C0``, ``C1``, ... in order of appearance), the shade the
    noise scale (lighter for less noise, darker for more), so a run keeps its colour whatever is selected."""
    from matplotlib.colors import to_rgb

    fixes_order = list(dict.fromkeys(run.fixes for run in runs))
    scales = noise_scales(runs)
    colors = []
    for run in runs:
        base = np.array(to_rgb(f"C{fixes_order.index(run.fixes) % 10}"))
        rank = next(k for k, s in enumerate(scales) if _same_noise(s, run.noise))
        shade = (rank - (len(scales) - 1) / 2) / max(len(scales) - 1, 1)  # in [-1/2, 1/2]; 0: the base colour
        mixed = base + 0.9 * abs(shade) * ((1.0 if shade < 0 else 0.0) - base)  # towards white or black
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
    """The index of the run with exactly these fixes and this exploration ``noise``, or ``None`` if not trained.

    ``noise=None`` accepts any noise scale (the first run with these fixes).
    """
    wanted = (bool(twin), bool(delay), bool(smoothing))
    return next(
        (i for i, run in enumerate(runs) if run.fixes == wanted and (noise is None or _same_noise(run.noise, noise))),
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

    Left: against the time step ``t`` of the evaluation episodes, the mean over episodes of the critic's
    ``q_w(S_t, mu(S_t))`` (solid) and of the return ``G_t`` the greedy policy really collected (dashed).
    Right: the mean gap ``q_w - G`` of each run, one bar each (above 0: over-estimation). ``highlight``
    draws one run strongly and the others faintly; ``colors`` (``label -> colour``) fixes each run's colour
    (default: ``C0``, ``C1``, ... in order). Draws into ``axes`` (two axes) if given; returns the figure.
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
        ax_bar.bar(i, result.mean_gap, color=color, alpha=alpha, edgecolor="k" if label == highlight else None)
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
    """Learning curves and over-estimation of ``runs``, the one with exactly these fixes and ``noise`` drawn strongly.

    Left: the rolling mean of the training returns. Middle and right: as :func:`draw_overestimation`.
    With one noise scale in ``runs`` every run is drawn. With several, the figure shows the runs at the
    chosen noise scale (the fixes compared at equal noise) and the runs with the chosen fixes at the other
    noise scales (the noise compared at equal fixes); the labels then name the noise scale, and each run keeps
    its colour as the selection moves (the hue names the fixes, the shade the noise: darker is noisier).
    ``noise=None`` means the first run's noise scale. A combination that was not trained highlights nothing.
    Returns the figure.
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

    Three check boxes, one per fix, and toggle buttons over the noise scales sigma present in ``runs``;
    a change only redraws :func:`draw_fixes` (nothing trains). The controls start at the first run's fixes
    and noise. A combination without a run says so and highlights nothing. Returns an ``ipywidgets.VBox``
    (children: the controls, a status line, the figure) with attributes ``boxes`` (fix name -> check box),
    ``noise`` (the toggle buttons), ``status`` and ``redraw()``, which draws the current state (called once here).

    Used by ``notebooks/03_deterministic_policy_gradients.ipynb``.
    """
    import ipywidgets as widgets

    if not runs:
        raise ValueError("runs is empty: pass at least one FixesRun")
    descriptions = {"twin": "twin critics (min)", "delay": "delayed policy updates", "smoothing": "target smoothing"}
    boxes = {
        name: widgets.Checkbox(
            value=flag, description=descriptions[name], indent=False, layout=widgets.Layout(width="auto")
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
    output = widgets.Output()

    def redraw(_=None):
        flags = [boxes[name].value for name in FIX_NAMES]
        index = find_run(runs, *flags, noise.value)
        if index is None:
            wanted = noise_label(fixes_label(*flags), noise.value) if several else fixes_label(*flags)
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
        _show(output, draw_fixes(runs, *flags, noise.value, window=window, threshold=threshold))

    for control in (*boxes.values(), noise):
        control.observe(redraw, names="value")
    controls = widgets.HBox([*boxes.values(), noise], layout=widgets.Layout(flex_flow="row wrap"))
    view = widgets.VBox([controls, status, output])
    view.boxes, view.noise, view.status, view.redraw = boxes, noise, status, redraw
    redraw()
    return view


# --------------------------------------------------------------------------------------------------
# Importance sampling: unbiased, but the variance grows as q leaves p (notebook 05)
# --------------------------------------------------------------------------------------------------

__all__ += [
    "ImportanceSamplingGrid",
    "importance_sampling_grid",
    "draw_importance_sampling",
    "importance_sampling_view",
    "policy_path",
    "TrustRegionPath",
    "trust_region_path",
    "draw_trust_region",
    "trust_region_view",
    "draw_trpo_runs",
]


@dataclass
class ImportanceSamplingGrid:
    """Importance sampling of ``mu = E_{X~p}[f(X)]`` from ``n`` samples of ``q``, along a path of ``(p, q)`` pairs.

    Position ``m`` of the path (a slider position, with the value ``params[m]`` of the parameter
    ``param_name``) has a target ``p[m]`` and a proposal ``q[m]``, distributions over the support ``x``;
    ``f`` is the same at every position. Arrays have the positions first.

    Exact (sums over the support, :mod:`rlcourse.importance`): ``mu`` ``(M,)`` the true mean;
    ``variance`` ``(M,)`` the variance of the importance-weighted estimate from ``n`` samples;
    ``direct`` ``(M,)`` the variance of plain Monte Carlo with ``n`` samples drawn from ``p`` itself;
    ``chi2`` ``(M,)`` ``chi^2(p || q)``, the variance of the weights (``n / (1 + chi2)`` is what the
    effective sample size tends to).

    Sampled, ``repeats`` independent estimates from ``n`` samples each: ``estimates`` ``(M, R)`` the
    importance-weighted estimates ``1/n sum_i w_i f(X_i)``, ``normalized`` ``(M, R)`` the self-normalised
    ones ``sum_i w_i f(X_i) / sum_i w_i`` (``nan`` if every weight is 0), ``ess`` ``(M, R)`` the effective
    sample size of each estimate's weights. ``target_label`` and ``proposal_label`` name ``p`` and ``q``
    in the figures.
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
    """Exact variances and ``repeats`` sampled estimates at every position of a path, for a slider to redraw from.

    ``p`` and ``q`` are either one distribution ``(K,)`` (the same at every position) or one per position
    ``(M, K)``, with ``M = len(params)``: e.g. a fixed ``p`` and proposals that move away from it
    (:func:`rlcourse.importance.tilted_proposal`), or a fixed old policy ``q`` and new policies ``p`` that
    move away from it. At each position the ``n * repeats`` samples are drawn with
    :func:`rlcourse.importance.sample` from the same ``seed``: the same uniform numbers at every position
    (common random numbers), so positions with the same ``q`` reuse exactly the same samples, and the
    histograms change smoothly as the slider moves. The exact columns come from
    :func:`rlcourse.importance.exact_mean`, :func:`~rlcourse.importance.estimator_variance`,
    :func:`~rlcourse.importance.direct_variance` and :func:`~rlcourse.importance.chi2_divergence`.

    Used by ``notebooks/05_importance_sampling.ipynb``.
    """
    from rlcourse import importance

    params = np.asarray(params, dtype=float).reshape(-1)
    if params.size == 0 or not np.isfinite(params).all():
        raise ValueError(f"params={params.tolist()} is not allowed: params must be a non-empty list of finite numbers")
    M = params.size
    x = np.asarray(x, dtype=float)
    f = np.asarray(f, dtype=float)
    if x.ndim != 1 or f.shape != x.shape:
        raise ValueError(f"x and f must be 1-D of the same length, got shapes x{x.shape} and f{f.shape}")

    def per_position(name: str, dist) -> np.ndarray:
        dist = np.asarray(dist, dtype=float)
        if dist.shape == x.shape:
            dist = np.broadcast_to(dist, (M, x.size))
        if dist.shape != (M, x.size):
            raise ValueError(
                f"{name}=<array of shape {dist.shape}> is not allowed: {name} must have shape (K,) = {x.shape} "
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
    estimates, normalized, ess = np.zeros((M, repeats)), np.zeros((M, repeats)), np.zeros((M, repeats))
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


def _plain_log_axis(axis) -> None:
    """Log ticks without minor ticks and with plain labels ("0.01", not mathtext): several times faster to draw."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    axis.set_major_locator(LogLocator(numticks=6))
    axis.set_minor_locator(NullLocator())
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def _histogram_range(values: np.ndarray, mu: float) -> tuple[float, float]:
    """A range that shows the bulk of ``values`` (0.5 % to 99 %) and the true mean ``mu``, with a small margin."""
    lo, hi = np.nanquantile(values, [0.005, 0.99])
    lo, hi = min(lo, mu), max(hi, mu)
    pad = 0.05 * (hi - lo) if hi > lo else 0.5
    return float(lo - pad), float(hi + pad)


def draw_importance_sampling(grid: ImportanceSamplingGrid, param: float, normalized: bool = False, fig=None):
    """Four panels at the path position nearest to ``param``.

    Top left: ``p`` and ``q`` (bars with the ratio ``p/q`` written above them for a small support, lines
    with the weight ``p(x)/q(x)`` on a log axis otherwise). Top right: the histogram of the ``repeats``
    importance-weighted estimates (and of the self-normalised ones if ``normalized``), with the true mean
    ``mu`` and ``mu +- 1`` exact standard deviation; the text box gives the numbers and how many estimates
    lie beyond the drawn range. Bottom left: the exact variance of the estimate along the path (log axis)
    against plain Monte Carlo with samples from ``p``, the sampled variance as dots. Bottom right: the
    effective sample size as a fraction of ``n``, exact large-``n`` limit ``1 / (1 + chi^2)`` and the mean
    over the repeats. Returns the figure.
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
            ax_dist.text(k, max(p[k], q[k]) + 0.02, f"{ratio[k]:.2f}", ha="center", fontsize="small")
        labels = [f"{v:g}" for v in grid.x]
        ax_dist.set_xticks(pos, labels)
        ax_dist.set(ylim=(0, 1.45 * max(p.max(), q.max()) + 0.05), ylabel="probability")
        ax_dist.set_title(
            f"{grid.param_name} = {value:.3g}, KL(p‖q) = {kl:.3g}; numbers above the bars: p/q", fontsize="medium"
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
    bins = np.linspace(lo, hi, 41 if K <= 12 else 61)  # a small support gives estimates on a lattice: fewer bins
    ax_hist.hist(est, bins=bins, color="C0", alpha=0.6, label="importance-weighted")
    if normalized:
        ax_hist.hist(grid.normalized[m], bins=bins, histtype="step", color="C2", lw=2, label="self-normalised")
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
        f"{grid.repeats} estimates, each from n = {grid.n} samples of q (dotted: μ ± exact sd)", fontsize="medium"
    )
    ax_hist.legend(fontsize="x-small", loc="upper left")

    # bottom: variance and ESS along the path
    sampled_var = grid.estimates.var(axis=1, ddof=1)
    ax_var.plot(grid.params, grid.variance, color="C0", label="exact variance of the estimate")
    ax_var.plot(grid.params, sampled_var, "o", color="C0", ms=3, alpha=0.6, label="sampled variance")
    ax_var.plot(grid.params, grid.direct, color="k", ls="--", lw=1, label="plain Monte Carlo with samples of p")
    ax_var.plot(value, grid.variance[m], "o", color="C3", ms=9, mfc="none", mew=2)
    ax_var.set(yscale="log", xlabel=grid.param_name, ylabel=f"variance (n = {grid.n})")
    ax_var.set_title("Var[μ̂] = (Σ p² f² / q − μ²) / n", fontsize="medium")
    ax_var.legend(fontsize="x-small")

    ax_ess.plot(grid.params, 1.0 / (1.0 + grid.chi2), color="C2", label="1 / (1 + χ²(p‖q)), large-n limit")
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


def importance_sampling_view(grid: ImportanceSamplingGrid, param: float | None = None, normalized: bool = False):
    """A slider along the path of an :class:`ImportanceSamplingGrid` and a check box for the self-normalised estimate.

    The slider starts at the position nearest to ``param`` (by default the first); a move only redraws
    :func:`draw_importance_sampling` from the precomputed samples. Returns an ``ipywidgets.VBox`` with
    attributes ``slider``, ``checkbox`` and ``redraw()``, which draws the current state (called once here).

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
    checkbox = widgets.Checkbox(value=bool(normalized), description="self-normalised estimate", indent=False)
    output = widgets.Output()

    def redraw(_=None):
        _show(output, draw_importance_sampling(grid, slider.value, checkbox.value))

    slider.observe(redraw, names="value")
    checkbox.observe(redraw, names="value")
    view = widgets.VBox([widgets.HBox([slider, checkbox]), output])
    view.slider, view.checkbox, view.redraw = slider, checkbox, redraw
    redraw()
    return view


# --------------------------------------------------------------------------------------------------
# The TRPO bound along a path of new policies (notebook 06)
# --------------------------------------------------------------------------------------------------


def policy_path(pi: np.ndarray, advantages: np.ndarray, step: float, path: str = "softmax") -> np.ndarray:
    """A new policy ``pi'`` that moves away from ``pi`` towards the actions with large advantages as ``step`` grows.

    - ``path="softmax"``: ``pi'(a|s) ∝ pi(a|s) exp(step A(s, a))``, i.e. ``softmax(log pi + step A)``, a
      step of size ``step >= 0`` along the advantages in the logits (a natural policy gradient step for a
      tabular softmax policy). ``step = 0`` is ``pi``; as ``step`` grows, ``pi'`` tends to the greedy policy
      w.r.t. ``A`` (one step of policy iteration).
    - ``path="mixture"``: ``pi' = (1 - step) pi + step greedy(A)`` with ``step`` in [0, 1], the conservative
      policy iteration of Kakade and Langford (2002); exact ties of the greedy policy are split evenly.

    ``pi`` and ``advantages`` have the actions on the last axis (a table ``(S, A)`` or one row ``(A,)``).
    Along both paths the per-state ``KL(pi' || pi)`` does not decrease as ``step`` grows.

    Used by ``notebooks/05_importance_sampling.ipynb`` and ``notebooks/06_trpo_bound.ipynb``.
    """
    from rlcourse.tabular import softmax_policy

    pi = np.asarray(pi, dtype=float)
    adv = np.asarray(advantages, dtype=float)
    if pi.shape != adv.shape:
        raise ValueError(f"advantages must have the shape of pi, {pi.shape}, got {adv.shape}")
    step = float(step)
    if path == "softmax":
        if not (np.isfinite(step) and step >= 0):
            raise ValueError(f"step={step!r} is not allowed: the softmax path needs a finite step >= 0")
        w = pi * np.exp(step * (adv - adv.max(-1, keepdims=True)))  # exponent <= 0: no overflow
        return w / w.sum(-1, keepdims=True)
    if path == "mixture":
        if not 0.0 <= step <= 1.0:
            raise ValueError(f"step={step!r} is not allowed: the mixture path needs a step in [0, 1]")
        return (1.0 - step) * pi + step * softmax_policy(adv, 0.0)
    raise ValueError(f"path={path!r} is not allowed: path must be 'softmax' or 'mixture'")


@dataclass
class TrustRegionPath:
    """The exact trust-region quantities of new policies ``pi'`` along a :func:`policy_path` from ``pi``.

    Arrays have the path positions first, ``(K,)`` unless said otherwise; return quantities are relative to
    ``J(pi)`` (``J``): ``improvement`` ``J(pi') - J(pi)``; ``surrogate`` ``L_pi(pi') - J(pi)``, the slide's
    term (A); ``neglected`` the slide's term (B), so ``improvement = surrogate - neglected``;
    ``penalty_coefficient`` ``C = 2 gamma epsilon / (1 - gamma)^2``; ``mean_tv`` ``E_{S~d_pi}[D_TV]``;
    ``lower_bound`` the penalised surrogate ``L_pi(pi') - C E[D_TV] - J(pi)``; ``pinsker_bound``
    ``L_pi(pi') - C E[sqrt(D_KL / 2)] - J(pi)`` (Pinsker: lower still); ``mean_kl`` ``E_{S~d_pi}[D_KL(pi' || pi)]``,
    TRPO's constraint, and ``max_kl`` its largest value over the states. ``policies`` ``(K, S, A)``.
    Expectations over ``d_pi`` leave out terminal states (the policy never acts there).
    """

    path: str
    steps: np.ndarray
    pi: np.ndarray
    policies: np.ndarray
    J: float
    improvement: np.ndarray
    surrogate: np.ndarray
    neglected: np.ndarray
    penalty_coefficient: np.ndarray
    mean_tv: np.ndarray
    lower_bound: np.ndarray
    pinsker_bound: np.ndarray
    mean_kl: np.ndarray
    max_kl: np.ndarray

    def index(self, step: float) -> int:
        """Index of the path position nearest to ``step``."""
        return int(np.abs(self.steps - float(step)).argmin())

    def trust_region_end(self, delta: float) -> int:
        """Index of the last position before the mean KL first exceeds ``delta`` (the trust region's edge)."""
        outside = np.flatnonzero(self.mean_kl > float(delta))
        return int(outside[0] - 1) if outside.size else len(self.steps) - 1


def trust_region_path(mdp: FiniteMDP, pi: np.ndarray, steps: Sequence[float], path: str = "softmax") -> TrustRegionPath:
    """Compute, exactly, everything the TRPO slides say about ``pi'`` for every ``pi'`` on a :func:`policy_path`.

    ``steps`` are sorted ascending (duplicates dropped); the path uses ``A^pi`` of ``mdp``. Each column is a
    method or function of :mod:`rlcourse.tabular`: :meth:`~rlcourse.tabular.FiniteMDP.expected_return`,
    :meth:`~rlcourse.tabular.FiniteMDP.surrogate`, :meth:`~rlcourse.tabular.FiniteMDP.performance_difference_terms`,
    :meth:`~rlcourse.tabular.FiniteMDP.tv_penalty_coefficient`,
    :meth:`~rlcourse.tabular.FiniteMDP.penalised_surrogate`, :func:`~rlcourse.tabular.total_variation` and
    :func:`~rlcourse.tabular.kl_divergence`.

    Used by ``notebooks/06_trpo_bound.ipynb``.
    """
    from rlcourse.tabular import kl_divergence, total_variation

    steps = np.unique(np.asarray(steps, dtype=float).reshape(-1))
    if steps.size == 0:
        raise ValueError("steps is empty: pass at least one step size")
    advantages = mdp.advantages(pi)  # checks pi
    pi = np.asarray(pi, dtype=float)
    d_pi = mdp.state_distribution(pi)
    acting = ~mdp.terminal
    J = mdp.expected_return(pi)
    policies = np.stack([policy_path(pi, advantages, s, path) for s in steps])
    cols = {k: np.zeros(steps.size) for k in ("imp", "sur", "neg", "C", "tv", "lb", "pin", "kl", "maxkl")}
    for k, pi_new in enumerate(policies):
        kl = kl_divergence(pi_new, pi)
        cols["imp"][k] = mdp.expected_return(pi_new) - J
        cols["sur"][k] = mdp.surrogate(pi, pi_new) - J
        cols["neg"][k] = mdp.performance_difference_terms(pi, pi_new)[1]
        cols["C"][k] = mdp.tv_penalty_coefficient(pi, pi_new)
        cols["tv"][k] = d_pi @ (total_variation(pi_new, pi) * acting)
        cols["lb"][k] = mdp.penalised_surrogate(pi, pi_new) - J
        cols["pin"][k] = cols["sur"][k] - cols["C"][k] * (d_pi @ (np.sqrt(kl / 2) * acting))
        cols["kl"][k] = d_pi @ (kl * acting)
        cols["maxkl"][k] = kl[acting].max()
    return TrustRegionPath(
        path=path,
        steps=steps,
        pi=pi,
        policies=policies,
        J=J,
        improvement=cols["imp"],
        surrogate=cols["sur"],
        neglected=cols["neg"],
        penalty_coefficient=cols["C"],
        mean_tv=cols["tv"],
        lower_bound=cols["lb"],
        pinsker_bound=cols["pin"],
        mean_kl=cols["kl"],
        max_kl=cols["maxkl"],
    )


def _objective_curves(ax, grid: TrustRegionPath, sel: slice, k: int, edge: int, delta: float) -> None:
    """The improvement, the surrogate and the two lower bounds on ``ax``, for the positions ``sel``."""
    steps = grid.steps[sel]
    ax.plot(steps, grid.improvement[sel], color="k", lw=2.2, label="J(π') − J(π)  (exact)")
    ax.plot(steps, grid.surrogate[sel], color="C0", label="L_π(π') − J(π)  (surrogate, term (A))")
    ax.plot(steps, grid.lower_bound[sel], color="C1", label="L_π(π') − C·E[D_TV] − J(π)  (lower bound)")
    ax.plot(steps, grid.pinsker_bound[sel], color="C1", ls="--", lw=1, label="L_π(π') − C·E[√(D_KL/2)] − J(π)")
    ax.axhline(0, color="grey", lw=0.8)
    best = int(grid.lower_bound.argmax())
    ax.plot(grid.steps[best], grid.lower_bound[best], "v", color="C1", ms=8, label="largest lower bound")
    ax.axvspan(grid.steps[0], grid.steps[edge], color="C2", alpha=0.12, label=f"trust region E[D_KL] ≤ δ = {delta:g}")
    for series, color in ((grid.improvement, "k"), (grid.surrogate, "C0"), (grid.lower_bound, "C1")):
        ax.plot(grid.steps[k], series[k], "o", color=color, ms=8, mfc="none", mew=2)
    ax.axvline(grid.steps[k], color="C3", ls=":", lw=1)
    shown = np.r_[grid.improvement[sel], grid.surrogate[sel], 0.0]
    top, bottom = shown.max(), shown.min()
    span = top - bottom if top > bottom else 1.0
    ax.set_ylim(bottom - 0.5 * span, top + 0.08 * span)  # the lower bounds fall off a cliff: show where it starts
    ax.set_xlim(steps[0], steps[-1])
    ax.set_ylabel("relative to J(π)")
    ax.grid(alpha=0.3)


def draw_trust_region(grid: TrustRegionPath, step: float, delta: float = 0.01, fig=None):
    """Three panels along the path, at the position nearest to ``step`` and with the trust region ``delta``.

    Left: over the whole path, ``J(pi') - J(pi)`` (black), the surrogate ``L_pi(pi') - J(pi)``, the penalised
    surrogate (the lower bound with ``D_TV``) and its Pinsker form (with ``sqrt(D_KL / 2)``), the trust region
    ``E[D_KL] <= delta`` shaded; the step axis is logarithmic (linear near 0, so that 0 fits). Middle: the same
    near ``pi``, on a linear axis up to twice the larger of the trust region's edge and the step of the largest
    lower bound. Right: ``E_{S~d_pi}[D_KL(pi' || pi)]`` (and its largest value over the states), ``E[D_TV]`` and
    ``E[sqrt(D_KL / 2)]`` (Pinsker), with ``delta`` dashed. Returns the figure.
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
        f"η = {steps[k]:.3g}:  J(π')−J(π) = {grid.improvement[k]:.4f},  L−J(π) = {grid.surrogate[k]:.4f},\n"
        f"bound = {grid.lower_bound[k]:.4f};  neglected (B) = {grid.neglected[k]:.4f} ≤ C·E[D_TV] = "
        f"{grid.penalty_coefficient[k] * grid.mean_tv[k]:.4f}  (C = {grid.penalty_coefficient[k]:.3g})",
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
        f"(J(π')−J(π) = {grid.improvement[best]:.4f} there); at the trust region's edge {grid.improvement[edge]:.4f}",
        fontsize="medium",
    )

    positive = grid.mean_kl > 0
    ax_kl.plot(steps[positive], grid.mean_kl[positive], color="C0", label="E[D_KL(π'‖π)]  (TRPO's constraint)")
    ax_kl.plot(steps[positive], grid.max_kl[positive], color="C0", ls=":", label="max over states of D_KL")
    ax_kl.plot(steps[positive], grid.mean_tv[positive], color="C2", label="E[D_TV(π', π)]")
    with np.errstate(divide="ignore", invalid="ignore"):  # E[sqrt(KL/2)] = (surrogate - Pinsker bound) / C
        sqrt_half_kl = np.where(
            grid.penalty_coefficient > 0, (grid.surrogate - grid.pinsker_bound) / grid.penalty_coefficient, np.nan
        )
    ax_kl.plot(steps[positive], sqrt_half_kl[positive], color="C2", ls="--", lw=1, label="E[√(D_KL/2)] ≥ E[D_TV]")
    ax_kl.axhline(delta, color="k", ls="--", lw=1, label=f"δ = {delta:g}")
    ax_kl.axvline(steps[edge], color="C2", lw=1)
    ax_kl.plot(steps[k], grid.mean_kl[k], "o", color="C3", ms=8, mfc="none", mew=2)
    ax_kl.axvline(steps[k], color="C3", ls=":", lw=1)
    top = max(grid.max_kl.max(), grid.mean_tv.max(), float(delta))
    ax_kl.set(yscale="log", ylim=(min(float(delta), top) * 1e-3, top * 3), xscale="log")
    ax_kl.set_xlim(positive_steps.min() if positive_steps.size else None, steps[-1])
    _plain_log_axis(ax_kl.yaxis)
    ax_kl.set(xlabel=f"step η along the {grid.path} path (log scale)", ylabel="expectation over S ~ d_π")
    ax_kl.set_title(
        f"mean KL {grid.mean_kl[k]:.3g}, mean TV {grid.mean_tv[k]:.3g}\ntrust region E[D_KL] ≤ {delta:g} up to "
        f"η = {steps[edge]:.3g}",
        fontsize="medium",
    )
    ax_kl.legend(fontsize="x-small", loc="lower right")
    ax_kl.grid(alpha=0.3)
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.13, top=0.85, wspace=0.22)  # fixed: faster than tight_layout
    return fig


def trust_region_view(grid: TrustRegionPath, step: float | None = None, delta: float = 0.01, deltas=None):
    """Sliders for the step along the path and for the trust region ``delta`` over a :class:`TrustRegionPath`.

    The step slider runs over the grid's steps (starting nearest to ``step``, by default the edge of the
    trust region ``delta``); the ``delta`` slider over ``deltas`` (default: 0.0005 to 0.5, log-spaced). A move
    only redraws :func:`draw_trust_region`. Returns an ``ipywidgets.VBox`` with attributes ``step``,
    ``delta`` (the two sliders) and ``redraw()``, which draws the current state (called once here).

    Used by ``notebooks/06_trpo_bound.ipynb``.
    """
    import ipywidgets as widgets

    deltas = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5] if deltas is None else list(deltas)
    deltas = sorted({float(d) for d in deltas} | {float(delta)})
    if deltas[0] <= 0:
        raise ValueError(f"deltas={deltas} is not allowed: every delta must be > 0")
    steps = [float(s) for s in grid.steps]
    start = steps[grid.trust_region_end(delta)] if step is None else steps[grid.index(step)]
    step_slider = widgets.SelectionSlider(
        options=[(f"{s:.3g}", s) for s in steps], value=start, description="step η", continuous_update=False
    )
    delta_slider = widgets.SelectionSlider(
        options=[(f"{d:g}", d) for d in deltas], value=float(delta), description="δ", continuous_update=False
    )
    output = widgets.Output()

    def redraw(_=None):
        _show(output, draw_trust_region(grid, step_slider.value, delta_slider.value))

    step_slider.observe(redraw, names="value")
    delta_slider.observe(redraw, names="value")
    view = widgets.VBox([widgets.HBox([step_slider, delta_slider]), output])
    view.step, view.delta, view.redraw = step_slider, delta_slider, redraw
    redraw()
    return view


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
    """Learning curves and TRPO's per-iteration diagnostics for runs ``label -> [History of each seed]``.

    Top left: the rolling mean of the training returns against env steps, one thin line per seed, one
    colour per label. Then, against the iteration, the mean over seeds (seeds faint): the mean KL between
    the new policy and the policy that collected the rollout (``kl``, with ``delta`` dashed), the mean
    accepted line-search fraction ``alpha`` over the epochs (``step_fraction``; 0 is a rejected step) and
    the sample surrogate after the update (``surrogate``; it is 0 before the update). Returns the figure.

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
                ax.plot(np.arange(1, length + 1), mean, color=color, lw=2, label=f"{label} (mean of seeds)")
    if threshold is not None:
        ax_ret.axhline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold:g}")
    if delta is not None:
        ax_kl.axhline(delta, color="k", ls="--", lw=1, label=f"δ = {delta:g}")
    ax_ret.set(
        xlabel="env steps", ylabel=f"return (mean of last {window})", title="training episodes (one line per seed)"
    )
    ax_kl.set(xlabel="iteration", ylabel="mean KL(π_new ‖ π_old)", title="KL to the data-collecting policy")
    ax_step.set(
        xlabel="iteration",
        ylabel="mean α over the epochs",
        title="line search: accepted step fraction",
        ylim=(-0.05, 1.05),
    )
    ax_sur.set(xlabel="iteration", ylabel="mean ratio × advantage", title="sample surrogate after the update")
    for ax in (ax_ret, ax_kl, ax_step, ax_sur):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="x-small")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------------
# PPO: the clipped objective, several epochs on one batch, PPO vs PPO-KL vs TRPO (notebook 07)
# --------------------------------------------------------------------------------------------------

__all__ += [
    "clip_objective",
    "draw_clip_objective",
    "clip_objective_view",
    "surrogate_ascent",
    "RatioEpochs",
    "ratio_epochs",
    "draw_ratio_epochs",
    "ratio_epochs_view",
    "draw_ppo_vs_trpo",
    "draw_clip_diagnostics",
    "clip_diagnostics_view",
]


def clip_objective(ratio, advantage: float, clip_eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PPO's per-sample objective at the ratios ``ratio``, for one advantage: values, gradient, unclipped ``omega A``.

    The objective is :func:`rlcourse.objectives.clipped_surrogate`, ``min(omega A, clip(omega, 1 - eps, 1 + eps) A)``,
    and its derivative with respect to ``omega`` is taken by autograd, as in training: ``A`` where the
    unclipped product is the smaller one, 0 where the clipped constant is (the flat pieces).

    Returns:
        ``(objective, gradient, unclipped)``, float arrays of the shape of ``ratio`` (flattened).

    Used by ``notebooks/07_ppo_clipping.ipynb``.
    """
    from rlcourse.objectives import clipped_surrogate

    omega = np.asarray(ratio, dtype=float).reshape(-1)
    if not np.isfinite(omega).all() or (omega < 0).any():
        raise ValueError("ratio is not allowed: every ratio pi_new(a|s) / pi_old(a|s) must be a finite number >= 0")
    if not np.isfinite(float(advantage)):
        raise ValueError(f"advantage={advantage!r} is not allowed: the advantage must be a finite number")
    omega = torch.tensor(omega, requires_grad=True)
    adv = torch.full_like(omega, float(advantage))
    objective = clipped_surrogate(omega, adv, clip_eps)
    (gradient,) = torch.autograd.grad(objective.sum(), omega)
    return objective.detach().numpy(), gradient.numpy(), (omega * adv).detach().numpy()


def draw_clip_objective(clip_eps: float, advantages: Sequence[float] = (1.0, -1.0), ratio_max: float = 2.0, fig=None):
    """PPO's clipped objective (top) and its gradient (bottom) against the ratio ``omega``, one column per advantage.

    Each column shows ``min(omega A, clip(omega, 1 - eps, 1 + eps) A)`` (bold) next to TRPO's unclipped
    ``omega A`` (dashed), the band ``[1 - eps, 1 + eps]`` (green) and, shaded red, where the objective is
    flat: there the gradient is 0 and the sample no longer pushes the ratio. Returns the figure.

    Used by ``notebooks/07_ppo_clipping.ipynb``.
    """
    import matplotlib.pyplot as plt

    advantages = [float(a) for a in advantages]
    if not advantages or 0.0 in advantages:
        raise ValueError(f"advantages={advantages} is not allowed: pass at least one advantage, none of them 0")
    if not float(ratio_max) > 1.0 + float(clip_eps):
        raise ValueError(f"ratio_max={ratio_max!r} is not allowed: it must exceed 1 + clip_eps to show the clip")
    ratio = np.linspace(0.0, float(ratio_max), 801)
    lo, hi = 1.0 - float(clip_eps), 1.0 + float(clip_eps)
    if fig is None:
        fig = plt.figure(figsize=(5.2 * len(advantages), 5.6))
    fig.clear()
    axes = fig.subplots(2, len(advantages), sharex=True, squeeze=False, gridspec_kw={"height_ratios": [2, 1]})
    for j, adv in enumerate(advantages):
        objective, gradient, unclipped = clip_objective(ratio, adv, clip_eps)
        ax, ax_g = axes[0, j], axes[1, j]
        flat = gradient == 0
        for a in (ax, ax_g):
            top = a is ax  # the legend of the top panel names the shaded regions once
            a.axvspan(lo, hi, color="C2", alpha=0.12, label=f"[1−ε, 1+ε] = [{lo:g}, {hi:g}]" if top else None)
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
            f"flat for ω {'> 1+ε' if good else '< 1−ε'}: no reason to make it {'likelier' if good else 'rarer'}",
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


def clip_objective_view(clip_eps: float = 0.2, advantages: Sequence[float] = (1.0, -1.0), ratio_max: float = 2.0):
    """An ``epsilon`` slider over :func:`draw_clip_objective`; every move redraws at once (nothing to precompute).

    Returns an ``ipywidgets.VBox`` with attributes ``clip_eps`` (the slider) and ``redraw()`` (called once here).

    Used by ``notebooks/07_ppo_clipping.ipynb``.
    """
    import ipywidgets as widgets

    if not 0.05 <= float(clip_eps) <= 0.5:
        raise ValueError(f"clip_eps={clip_eps!r} is not allowed: the slider runs from 0.05 to 0.5")
    slider = widgets.FloatSlider(
        value=float(clip_eps), min=0.05, max=0.5, step=0.05, description="ε", readout_format=".2f"
    )
    output = widgets.Output()

    def redraw(_=None):
        _show(output, draw_clip_objective(slider.value, advantages, ratio_max))

    slider.observe(redraw, names="value")
    view = widgets.VBox([slider, output])
    view.clip_eps, view.redraw = slider, redraw
    redraw()
    return view


def surrogate_ascent(
    pi_old: np.ndarray,
    actions: np.ndarray,
    advantages: np.ndarray,
    clip_eps: float | None = None,
    epochs: int = 30,
    lr: float = 1.0,
) -> np.ndarray:
    """Several epochs of gradient ascent on a sample surrogate, for a softmax policy over ``A`` actions in one state.

    The policy is ``pi_theta = softmax(theta)``, started at ``theta = log pi_old``. The samples ``(a_i, A_i)``
    were drawn with ``pi_old`` and stay fixed. Each epoch is one full-batch step ``theta <- theta + lr grad``
    of ``mean_i omega_i A_i`` (``clip_eps=None``, TRPO's surrogate without its constraint) or of
    ``mean_i min(omega_i A_i, clip(omega_i, 1 - eps, 1 + eps) A_i)`` (PPO), with ``omega_i =
    pi_theta(a_i) / pi_old(a_i)`` from :func:`rlcourse.objectives.importance_weights` and the objective from
    :func:`rlcourse.objectives.clipped_surrogate`. Everything is exact: no network, no environment.

    ``actions`` and ``advantages`` may carry leading batch dimensions ``(..., N)``: each row is an
    independent sample set with its own policy.

    Returns:
        The policies ``pi_0 = pi_old, pi_1, ..., pi_epochs``, shape ``(epochs + 1, ..., A)``.

    Used by ``notebooks/07_ppo_clipping.ipynb``.
    """
    from rlcourse.objectives import clipped_surrogate, importance_weights

    pi_old = np.asarray(pi_old, dtype=float)
    if pi_old.ndim != 1 or pi_old.size < 2 or not (pi_old > 0).all() or not np.isclose(pi_old.sum(), 1.0):
        raise ValueError(
            f"pi_old={pi_old.tolist()} is not allowed: pi_old must be a probability vector over at least "
            "two actions, every entry > 0 (the ratio divides by it)"
        )
    actions = np.asarray(actions)
    if (
        actions.ndim == 0
        or actions.shape[-1] == 0
        or not np.issubdtype(actions.dtype, np.integer)
        or (actions < 0).any()
        or (actions >= pi_old.size).any()
    ):
        raise ValueError(
            f"actions of shape {actions.shape} is not allowed: actions must be integers 0 .. {pi_old.size - 1}, "
            "at least one sample"
        )
    advantages = np.asarray(advantages, dtype=float)
    if advantages.shape != actions.shape or not np.isfinite(advantages).all():
        raise ValueError(
            f"advantages of shape {advantages.shape} is not allowed: advantages must be finite and have the "
            f"shape of actions, {actions.shape}"
        )
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"epochs={epochs!r} is not allowed: epochs must be an integer >= 1")
    if not (np.isfinite(float(lr)) and float(lr) > 0):
        raise ValueError(f"lr={lr!r} is not allowed: the learning rate must be a finite number > 0")
    if clip_eps is not None:
        clipped_surrogate(torch.ones(1), torch.ones(1), clip_eps)  # the clear error for a bad clip_eps, now

    log_pi_old = torch.log(torch.as_tensor(pi_old)).expand(*actions.shape[:-1], pi_old.size)
    act = torch.as_tensor(actions, dtype=torch.long)
    adv = torch.as_tensor(advantages)
    log_prob_old = log_pi_old.gather(-1, act)
    theta = log_pi_old.clone().requires_grad_(True)
    policies = []
    for epoch in range(epochs + 1):
        log_pi = torch.log_softmax(theta, dim=-1)
        policies.append(log_pi.detach().exp())
        if epoch == epochs:
            break
        ratio = importance_weights(log_pi.gather(-1, act), log_prob_old)
        per_sample = ratio * adv if clip_eps is None else clipped_surrogate(ratio, adv, clip_eps)
        (grad,) = torch.autograd.grad(per_sample.mean(-1).sum(), theta)  # rows are independent
        with torch.no_grad():
            theta += float(lr) * grad
    return torch.stack(policies).numpy()


@dataclass
class RatioEpochs:
    """:func:`surrogate_ascent` on one sample set, unclipped and with several ``epsilon``, and what it did.

    ``labels`` and ``clip_eps`` name the runs (``None``: unclipped, always the first). Per run ``r`` and epoch
    ``k`` (arrays ``(runs, epochs + 1, ...)``): ``policies`` ``pi_k`` ``(.., A)``; ``ratios`` ``pi_k(a) / pi_old(a)``
    for every action ``(.., A)``; ``objective`` the sample objective the run maximises; ``estimate``
    ``mean_i (omega_i - 1) A_i``, the rise of the unclipped sample surrogate since epoch 0: the samples' estimate of
    ``J(pi_k) - J(pi_old)`` (unbiased for a fixed ``pi_k``, since ``sum_a pi_old(a) A(a) = 0``, and 0 at ``k = 0``);
    ``improvement`` the exact ``J(pi_k) - J(pi_old)`` with ``J(pi) = sum_a pi(a) r(a)``; ``kl`` the exact
    ``KL(pi_k || pi_old)``; ``clip_fraction`` the fraction of samples with ``|omega_i - 1| > eps`` (as
    :mod:`rlcourse.algos.ppo` logs it; ``nan`` for the unclipped run).
    """

    pi_old: np.ndarray
    rewards: np.ndarray
    actions: np.ndarray
    advantages: np.ndarray
    lr: float
    labels: list
    clip_eps: list
    policies: np.ndarray
    ratios: np.ndarray
    objective: np.ndarray
    estimate: np.ndarray
    improvement: np.ndarray
    kl: np.ndarray
    clip_fraction: np.ndarray

    @property
    def epochs(self) -> int:
        return self.policies.shape[1] - 1

    def run(self, clip_eps: float | None) -> int:
        """Index of the run with this ``clip_eps`` (``None``: the unclipped run)."""
        for i, eps in enumerate(self.clip_eps):
            if (eps is None and clip_eps is None) or (
                eps is not None and clip_eps is not None and np.isclose(eps, float(clip_eps))
            ):
                return i
        raise ValueError(f"clip_eps={clip_eps!r} is not allowed: the runs have clip_eps {self.clip_eps}")


def ratio_epochs(
    pi_old: np.ndarray,
    rewards: np.ndarray,
    actions: np.ndarray,
    advantages: np.ndarray,
    clip_eps: Sequence[float] = (0.1, 0.2, 0.3),
    epochs: int = 30,
    lr: float = 1.0,
) -> RatioEpochs:
    """Run :func:`surrogate_ascent` on one sample set ``(actions, advantages)`` of ``pi_old``: once unclipped, once
    for each ``epsilon`` in ``clip_eps``; keep the ratios, objectives, exact improvements and KLs of every epoch.

    ``rewards`` ``(A,)`` are the mean rewards ``r(a)`` of the one-state problem, used only for the exact
    ``J(pi) = sum_a pi(a) r(a)``; the runs see the samples alone.

    Used by ``notebooks/07_ppo_clipping.ipynb``.
    """
    from rlcourse.objectives import clipped_surrogate

    pi_old = np.asarray(pi_old, dtype=float)
    rewards = np.asarray(rewards, dtype=float)
    if rewards.shape != pi_old.shape:
        raise ValueError(f"rewards of shape {rewards.shape} is not allowed: one mean reward per action, {pi_old.shape}")
    actions, advantages = np.asarray(actions), np.asarray(advantages, dtype=float)
    if actions.ndim != 1:
        raise ValueError(f"actions of shape {actions.shape} is not allowed: one sample set, shape (N,)")
    runs = [None, *(float(e) for e in clip_eps)]
    policies = np.stack([surrogate_ascent(pi_old, actions, advantages, eps, epochs, lr) for eps in runs])
    sample_ratio = policies[:, :, actions] / pi_old[actions]  # (runs, K + 1, N)
    objective = np.empty(sample_ratio.shape[:2])
    clip_fraction = np.full(sample_ratio.shape[:2], np.nan)
    for i, eps in enumerate(runs):
        if eps is None:
            objective[i] = (sample_ratio[i] * advantages).mean(-1)
        else:
            omega = torch.as_tensor(sample_ratio[i])
            objective[i] = clipped_surrogate(omega, torch.as_tensor(advantages).expand_as(omega), eps).mean(-1)
            clip_fraction[i] = (np.abs(sample_ratio[i] - 1.0) > eps).mean(-1)
    return RatioEpochs(
        pi_old=pi_old,
        rewards=rewards,
        actions=actions,
        advantages=advantages,
        lr=float(lr),
        labels=["unclipped" if eps is None else f"ε = {eps:g}" for eps in runs],
        clip_eps=runs,
        policies=policies,
        ratios=policies / pi_old,
        objective=objective,
        estimate=((sample_ratio - 1.0) * advantages).mean(-1),
        improvement=policies @ rewards - pi_old @ rewards,
        kl=(policies * np.log(policies / pi_old)).sum(-1),
        clip_fraction=clip_fraction,
    )


def draw_ratio_epochs(result: RatioEpochs, epoch: int, clip_eps: float = 0.2, fig=None):
    """Four panels of a :class:`RatioEpochs`, the unclipped run against the run with ``clip_eps``, at ``epoch``.

    Top left: the ratio ``pi_k(a) / pi_old(a)`` of every action against the epoch (dashed: unclipped, solid:
    clipped), the band ``[1 - eps, 1 + eps]`` shaded. Top right: the policies at ``epoch``. Bottom left: the
    exact improvement ``J(pi_k) - J(pi_old)`` (solid) and the samples' estimate ``mean (omega_i - 1) A_i`` (dotted).
    Bottom right: the exact ``KL(pi_k || pi_old)`` (log scale). Returns the figure.

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
        what = f"{mine.sum()} samples, mean Â {result.advantages[mine].mean():+.2f}" if mine.any() else "no sample"
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
        ax_i.plot(ks, result.improvement[run], "-", color=color, lw=2, label=f"{name}: exact J(π_k) − J(π_old)")
        ax_i.plot(ks, result.estimate[run], ":", color=color, lw=2, label=f"{name}: estimate mean (ω_i − 1) Â_i")
        ax_kl.plot(ks[1:], result.kl[run, 1:], "-", color=color, lw=2, label=name)
    ax_i.axhline(0, color="grey", lw=0.8)
    ax_i.axvline(k, color="C3", ls=":", lw=1)
    ax_i.set(xlabel="epoch k", ylabel="change of J")
    ax_i.set_title(
        f"epoch {k}: exact {result.improvement[c, k]:+.3f} (clipped), {result.improvement[u, k]:+.3f} (unclipped)",
        fontsize="medium",
    )
    ax_i.legend(fontsize="x-small", loc="upper left")
    ax_kl.axvline(max(k, 1), color="C3", ls=":", lw=1)
    ax_kl.set_yscale("log")
    _plain_log_axis(ax_kl.yaxis)
    ax_kl.set(xlabel="epoch k", ylabel="KL(π_k ‖ π_old)  (log scale)")
    ax_kl.set_title(
        f"epoch {k}: KL {result.kl[c, k]:.3g} (clipped), {result.kl[u, k]:.3g} (unclipped)", fontsize="medium"
    )
    ax_kl.legend(fontsize="x-small", loc="lower right")
    for ax in (ax_r, ax_p, ax_i, ax_kl):
        ax.grid(alpha=0.3)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.08, top=0.95, hspace=0.35, wspace=0.2)
    return fig


def ratio_epochs_view(result: RatioEpochs, epoch: int | None = None, clip_eps: float | None = None):
    """An epoch slider and an ``epsilon`` switch over a precomputed :class:`RatioEpochs`; a move only redraws
    :func:`draw_ratio_epochs`. Starts at ``epoch`` (default: the last) and ``clip_eps`` (default: the clipped run
    nearest to 0.2). Returns an ``ipywidgets.VBox`` with attributes ``epoch``, ``clip_eps`` and ``redraw()``.

    Used by ``notebooks/07_ppo_clipping.ipynb``.
    """
    import ipywidgets as widgets

    clipped = [e for e in result.clip_eps if e is not None]
    if not clipped:
        raise ValueError("result has no clipped run: pass at least one clip_eps to ratio_epochs")
    start_eps = clipped[int(np.abs(np.array(clipped) - (0.2 if clip_eps is None else clip_eps)).argmin())]
    if clip_eps is not None:
        result.run(clip_eps)  # the clear error for an epsilon without a run
    start = result.epochs if epoch is None else int(epoch)
    if not 0 <= start <= result.epochs:
        raise ValueError(f"epoch={epoch!r} is not allowed: the runs have epochs 0 .. {result.epochs}")
    k = widgets.IntSlider(value=start, min=0, max=result.epochs, description="epoch", continuous_update=False)
    eps = widgets.ToggleButtons(options=[(f"ε = {e:g}", e) for e in clipped], value=start_eps, description="clip")
    output = widgets.Output()

    def redraw(_=None):
        _show(output, draw_ratio_epochs(result, k.value, eps.value))

    k.observe(redraw, names="value")
    eps.observe(redraw, names="value")
    view = widgets.VBox([widgets.HBox([k, eps]), output])
    view.epoch, view.clip_eps, view.redraw = k, eps, redraw
    redraw()
    return view


def _kl_column(history: History) -> tuple[str, str]:
    """The KL a run logs per iteration and how to name it: ``kl`` (PPO-KL, TRPO) or ``approx_kl`` (PPO-clip)."""
    if history.iterations and "kl" in history.iterations[0]:
        return "kl", "KL(π_new ‖ π_old)"
    return "approx_kl", "approx. KL(π_old ‖ π_new)"


def draw_ppo_vs_trpo(runs: Mapping[str, History], threshold: float | None = 475.0, window: int = 20, fig=None):
    """Learning curves and per-iteration diagnostics of runs ``label -> History`` (PPO, PPO-KL, TRPO).

    Top left: training returns against env steps (:func:`rlcourse.plots.learning_curve`). Top right: how far
    each update moved the policy, ``kl`` where the run logs it (PPO-KL's penalty and TRPO's constraint, exact
    ``KL(pi_new || pi_old)`` over the rollout's states) and PPO-clip's ``approx_kl`` otherwise (the estimate of
    ``KL(pi_old || pi_new)`` from the taken actions). Bottom left: the policy's entropy. Bottom right: PPO-KL's
    penalty weight ``lambda_k`` (``kl_coef``), for the runs that log it. Returns the figure.

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
        ax_kl.plot(steps, h.column(column, "iterations"), "o-", ms=2, lw=1, color=f"C{i}", label=f"{label}: {name}")
        ax_h.plot(steps, h.column("entropy", "iterations"), color=f"C{i}", label=label)
        if "kl_coef" in h.iterations[0]:
            any_coef = True
            ax_coef.plot(steps, h.column("kl_coef", "iterations"), "o-", ms=2, color=f"C{i}", label=label)
    ax_kl.set_yscale("log")
    _plain_log_axis(ax_kl.yaxis)
    ax_kl.set(xlabel="env steps", ylabel="per iteration (log scale)", title="how far each update moved the policy")
    ax_h.set(xlabel="env steps", ylabel="nats", title="policy entropy")
    ax_coef.set(xlabel="env steps", ylabel="λ_k", title="PPO-KL: the adaptive penalty weight λ_k")
    if any_coef:
        ax_coef.set_yscale("log")
        _plain_log_axis(ax_coef.yaxis)
    else:
        ax_coef.text(0.5, 0.5, "no run with objective='kl'", ha="center", va="center", transform=ax_coef.transAxes)
    for ax in (ax_ret, ax_kl, ax_h, ax_coef):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="x-small")
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.08, top=0.95, hspace=0.35, wspace=0.2)
    return fig


def draw_clip_diagnostics(runs: Mapping[float, History], clip_eps: float | None = None, smooth: int = 1, fig=None):
    """PPO's clip fraction, approximate KL and returns against env steps, one run per ``epsilon`` (``eps -> History``).

    ``clip_eps`` picks the run drawn bold (the others faint); ``None`` draws all alike. ``smooth`` averages the
    per-iteration diagnostics over the last ``smooth`` iterations (1: raw); the returns are the mean of the last
    20 episodes. The panel titles give the mean over all iterations of the bold run(s). Returns the figure.

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
        style = dict(color=f"C{i}", lw=2.2 if bold else 1, alpha=1 if bold else 0.35, label=f"ε = {float(eps):g}")
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
        f"clip fraction\nmean over iterations ({which}): {', '.join(means['clip_fraction'])}", fontsize="medium"
    )
    ax_kl.set(xlabel="env steps", ylabel="approx. KL(π_old ‖ π_new)", ylim=(0, None))
    ax_kl.set_title(
        f"approximate KL per iteration\nmean over iterations ({which}): {', '.join(means['approx_kl'])}",
        fontsize="medium",
    )
    ax_ret.set(xlabel="env steps", ylabel="return (mean of last 20)", title="training episodes")
    for ax in (ax_cf, ax_kl, ax_ret):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="x-small")
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.14, top=0.84, wspace=0.25)
    return fig


def clip_diagnostics_view(runs: Mapping[float, History], clip_eps: float | None = None, smooth: int = 1):
    """An ``epsilon`` switch ("all" or one run) and a smoothing slider over finished PPO runs ``eps -> History``.

    A move only redraws :func:`draw_clip_diagnostics`. Returns an ``ipywidgets.VBox`` with attributes
    ``clip_eps``, ``smooth`` and ``redraw()`` (called once here).

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
        options=[("all", "all")] + [(f"ε = {e:g}", e) for e in keys], value=start, description="show"
    )
    window = widgets.IntSlider(value=int(smooth), min=1, max=10, description="smooth", continuous_update=False)
    output = widgets.Output()

    def redraw(_=None):
        chosen = None if eps.value == "all" else eps.value
        _show(output, draw_clip_diagnostics(runs, chosen, window.value))

    eps.observe(redraw, names="value")
    window.observe(redraw, names="value")
    view = widgets.VBox([widgets.HBox([eps, window]), output])
    view.clip_eps, view.smooth, view.redraw = eps, window, redraw
    redraw()
    return view


# Notebook 08 (GRPO) has its own module; its names are importable from here like the others'.
from rlcourse.widgets.grpo import *  # noqa: E402, F403
from rlcourse.widgets.grpo import __all__ as _grpo_all  # noqa: E402

__all__ += _grpo_all

# Notebook 01 (overview) has its own module too.
from rlcourse.widgets.overview import *  # noqa: E402, F403
from rlcourse.widgets.overview import __all__ as _overview_all  # noqa: E402

__all__ += _overview_all
