"""The views of ``notebooks/04_soft_value_functions.ipynb`` (slides "Entropy-Regularized RL",
"Soft Actor-Critic Algorithm").

The greedy softmax policy, its soft values and entropy on a small MDP as the temperature moves
(computed by :func:`rlcourse.sweeps.soft_policy_grid`); SAC's temperature over a run.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rlcourse.sweeps import SoftPolicyGrid
from rlcourse.training import History
from rlcourse.widgets._view import make_view

__all__ = [
    "draw_soft_policy",
    "soft_policy_view",
    "draw_temperature",
]


# --------------------------------------------------------------------------------------------------
# Soft values and the greedy softmax policy as the temperature moves (notebook 04); the grid is
# computed by rlcourse.sweeps.soft_policy_grid
# --------------------------------------------------------------------------------------------------


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
    ax_pi.set_title(
        f"state {s}, λ={lam:.3g}\nH(π*(·|s)) = {grid.entropy[k, s]:.3f} nats", fontsize="medium"
    )

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
    ax_h.set(
        xlabel="temperature λ", ylabel="H(π*(·|s))", title="entropy of the greedy softmax policy"
    )
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

    The slider runs over the grid's temperatures (starting nearest to ``temperature``, by default
    the middle one); a move only redraws :func:`draw_soft_policy`. Returns an ``ipywidgets.VBox``;
    its ``redraw()`` attribute draws the current state (called once here).

    Used by ``notebooks/04_soft_value_functions.ipynb``.
    """
    import ipywidgets as widgets

    temps = [float(t) for t in grid.temperatures]
    start = temps[len(temps) // 2] if temperature is None else temps[grid.index(temperature)]
    lam = widgets.SelectionSlider(
        options=[(f"{t:.3g}", t) for t in temps],
        value=start,
        description="λ",
        continuous_update=False,
    )
    num_states = grid.pi.shape[1]
    if not 0 <= int(state) < num_states:
        raise ValueError(
            f"state={state!r} is not allowed: the MDP has states 0 .. {num_states - 1}"
        )
    s = widgets.ToggleButtons(
        options=list(range(num_states)), value=int(state), description="state"
    )
    s.style.button_width = "40px"
    return make_view(
        lambda: draw_soft_policy(grid, lam.value, s.value), [[lam, s]], temperature=lam, state=s
    )


# --------------------------------------------------------------------------------------------------
# SAC's temperature over a run (notebook 04, section "SAC")
# --------------------------------------------------------------------------------------------------


def draw_temperature(
    histories: Mapping[str, History], target_entropy: float | None = None, fig=None
):
    """SAC's temperature ``alpha`` (log scale) and the policy's entropy against env steps, one line
    per run.

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
        ax_alpha.plot(
            steps, history.column("alpha", "iterations"), "o-", color=f"C{i}", ms=4, label=label
        )
        ax_h.plot(
            steps, history.column("entropy", "iterations"), "o-", color=f"C{i}", ms=4, label=label
        )
    if target_entropy is not None:
        ax_h.axhline(
            target_entropy, color="k", ls="--", lw=1, label=f"target entropy {target_entropy:g}"
        )
    ax_alpha.set(yscale="log", xlabel="env steps", ylabel="α", title="temperature α")
    ax_h.set(
        xlabel="env steps", ylabel="−E[log π(A|S)]", title="policy entropy (minibatch estimate)"
    )
    for ax in (ax_alpha, ax_h):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    fig.tight_layout()
    return fig
