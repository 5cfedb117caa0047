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
``notebooks/03_deterministic_policy_gradients.ipynb`` (TD3's fixes switched on and off over precomputed runs,
with the Q over-estimation each run's critic shows).
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
