"""Exact quantities of a finite MDP swept over a parameter, computed once for a notebook's slider.

Each function here composes two math modules, :mod:`rlcourse.tabular` (the finite MDP and its exact
values) and :mod:`rlcourse.advantages` (GAE), which may not import each other; so this module
sits on a floor of its own just above the math (see :data:`rlcourse.FLOORS`) and imports nothing
of the package but those and the checks. Everything is a pure function of arrays, returning a plain
dataclass of arrays; the views in :mod:`rlcourse.widgets` only draw them.

- GAE's bias and variance as gamma, lambda and the critic's error move (slides "Advantage
  Estimation", "Generalized Advantage Estimation"; Schulman et al. 2016): :func:`noisy_critic`,
  :func:`gae_on_episodes`, :func:`lambda_return_bias` (exact), :func:`gae_bias_variance`;
- the soft-optimal values and the greedy softmax policy as the temperature moves (slides
  "Entropy-Regularized RL"; Haarnoja et al. 2018): :func:`soft_policy_grid`;
- the trust-region quantities along a path of new policies (slides "Performance Improvement" to
  "Towards TRPO"; Kakade and Langford 2002, Schulman et al. 2015): :func:`policy_path`,
  :func:`trust_region_path`.

Used by ``notebooks/02_advantage_estimation.ipynb``, ``04_soft_value_functions.ipynb``,
``05_importance_sampling.ipynb`` and ``06_trpo_bound.ipynb``, which import it directly, and by
their views in :mod:`rlcourse.widgets`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from rlcourse.advantages import gae
from rlcourse.config import check_unit_interval
from rlcourse.tabular import FiniteMDP, entropy, kl_divergence, softmax_policy, total_variation

__all__ = [
    "noisy_critic",
    "gae_on_episodes",
    "lambda_return_bias",
    "BiasVarianceGrid",
    "gae_bias_variance",
    "SoftPolicyGrid",
    "soft_policy_grid",
    "policy_path",
    "TrustRegionPath",
    "trust_region_path",
]


# --------------------------------------------------------------------------------------------------
# GAE's bias and variance on a finite MDP (slide "Generalized Advantage Estimation", notebook 02)
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
    """GAE estimates ``A_t^GAE`` for every step of episodes from ``FiniteMDP.sample_episodes``.

    A thin bridge from the tabular world to :func:`rlcourse.advantages.gae`: the critic table is
    looked up at ``S_t`` and ``S_{t+1}``, and the episodes' ``terminated``/``truncated`` flags are
    passed on. Steps after an episode's end (``active`` False) get meaningless numbers; mask them.

    Returns:
        ``(horizon, num_episodes)`` float64 array.

    Used by ``notebooks/02_advantage_estimation.ipynb``.
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
    """Exact bias ``E[v_t^lambda | S_t=s, A_t=a] - Q^pi(s, a)`` of the lambda-return with the
    critic table ``critic`` (the slides' ``v_w``).

    With ``e = v_w - V^pi`` (0 on terminal states) the bias is
    ``gamma (1 - lambda) P_sa (I - gamma lambda P_pi)^{-1} e``: zero for a perfect critic and for
    ``lambda = 1`` (no bootstrapping). The GAE estimate ``A_t^GAE = v_t^lambda - v_w(S_t)`` has
    this bias plus ``-e(s)``, which does not depend on the action and so drops out of the policy
    gradient (a baseline). Episodes are taken to run to the end (no time limit).

    Args:
        mdp: a :class:`rlcourse.tabular.FiniteMDP`.
        pi: ``(S, A)`` policy table.
        critic: ``(S,)`` the critic's values ``v_w(s)``.
        gae_lambda: ``lambda`` in ``[0, 1]``.

    Returns:
        ``(S, A)`` array.

    Used by ``notebooks/02_advantage_estimation.ipynb``.
    """
    lam = _check_lambda("gae_lambda", gae_lambda)
    pi = np.asarray(pi, dtype=float)
    e = np.where(mdp.terminal, 0.0, np.asarray(critic, dtype=float) - mdp.values(pi))
    P_pi = np.einsum("sa,sat->st", pi, mdp.P)
    m = np.linalg.solve(np.eye(mdp.num_states) - mdp.gamma * lam * P_pi, e)
    return mdp.gamma * (1.0 - lam) * (mdp.P @ m)


@dataclass
class BiasVarianceGrid:
    """Bias and variance of the GAE estimate on a grid; arrays of shape
    ``(gammas, critic_errors, lambdas)``.

    ``bias2``: visit-weighted mean over state-action pairs of the squared bias of ``v_t^lambda``
    against ``Q(s, a)`` (sampled); ``bias2_exact``: the same with the exact bias
    (:func:`lambda_return_bias`); ``variance``: visit-weighted mean of ``Var[A_t^GAE | s, a]``;
    ``mse = bias2 + variance``. ``visits``: ``(S, A)`` visit counts.
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
    """Measure bias and variance of GAE against the exact advantages, for every
    ``(gamma, error, lambda)``.

    Samples ``num_episodes`` episodes of ``pi`` once (the dynamics do not depend on gamma), then for
    each ``gamma`` computes the exact ``V^pi`` and ``Q^pi`` of ``mdp`` with that discount, builds
    the critic ``noisy_critic(V^pi, error)`` for each error size, and computes GAE on all episodes
    with :func:`rlcourse.advantages.gae` for each ``lambda``. For every state-action pair
    ``(s, a)``:

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


# --------------------------------------------------------------------------------------------------
# The greedy softmax policy as the temperature moves (slides "Entropy-Regularized RL", notebook 04)
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


def soft_policy_grid(
    mdp: FiniteMDP, temperatures: Sequence[float], tol: float = 1e-10
) -> SoftPolicyGrid:
    """Solve ``mdp`` for the optimal soft values at every temperature, once, for a slider.

    For each ``lambda`` in ``temperatures`` (each ``>= 0``; 0 is ordinary value iteration),
    :meth:`rlcourse.tabular.FiniteMDP.soft_value_iteration` gives ``q*``, ``v*`` and the greedy
    softmax policy ``pi* = exp((q* - v*) / lambda)``; the grid also keeps ``H(pi*(.|s))`` and the
    ordinary value ``V^{pi*}``, which shows what the entropy bonus costs in reward. Nachum et al.
    (2017), Haarnoja et al. (2018); slides "Entropy-Regularized RL".

    Used by ``notebooks/04_soft_value_functions.ipynb``.
    """
    temps = np.asarray(temperatures, dtype=float).reshape(-1)
    if temps.size == 0:
        raise ValueError("temperatures is empty: pass at least one temperature >= 0")
    if not np.isfinite(temps).all() or (temps < 0).any():
        raise ValueError(
            f"temperatures={temps.tolist()} is not allowed: "
            "every temperature must be a finite number >= 0"
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


# --------------------------------------------------------------------------------------------------
# The TRPO bound along a path of new policies (slides "Performance Improvement" to "Towards TRPO")
# --------------------------------------------------------------------------------------------------


def policy_path(
    pi: np.ndarray, advantages: np.ndarray, step: float, path: str = "softmax"
) -> np.ndarray:
    """A new policy ``pi'`` that moves away from ``pi`` towards the actions with large advantages
    as ``step`` grows.

    - ``path="softmax"``: ``pi'(a|s) ∝ pi(a|s) exp(step A(s, a))``, i.e.
      ``softmax(log pi + step A)``, a step of size ``step >= 0`` along the advantages in the logits
      (a natural policy gradient step for a tabular softmax policy). ``step = 0`` is ``pi``; as
      ``step`` grows, ``pi'`` tends to the greedy policy w.r.t. ``A`` (one step of policy
      iteration).
    - ``path="mixture"``: ``pi' = (1 - step) pi + step greedy(A)`` with ``step`` in [0, 1], the
      conservative policy iteration of Kakade and Langford (2002); exact ties of the greedy policy
      are split evenly.

    ``pi`` and ``advantages`` have the actions on the last axis (a table ``(S, A)`` or one row
    ``(A,)``). Along both paths the per-state ``KL(pi' || pi)`` does not decrease as ``step`` grows.

    Used by ``notebooks/05_importance_sampling.ipynb`` and ``notebooks/06_trpo_bound.ipynb``.
    """
    pi = np.asarray(pi, dtype=float)
    adv = np.asarray(advantages, dtype=float)
    if pi.shape != adv.shape:
        raise ValueError(
            f"advantages=<array of shape {adv.shape}> is not allowed: "
            f"advantages must have the shape of pi, {pi.shape}"
        )
    step = float(step)
    if path == "softmax":
        if not (np.isfinite(step) and step >= 0):
            raise ValueError(
                f"step={step!r} is not allowed: the softmax path needs a finite step >= 0"
            )
        w = pi * np.exp(step * (adv - adv.max(-1, keepdims=True)))  # exponent <= 0: no overflow
        return w / w.sum(-1, keepdims=True)
    if path == "mixture":
        if not 0.0 <= step <= 1.0:
            raise ValueError(
                f"step={step!r} is not allowed: the mixture path needs a step in [0, 1]"
            )
        return (1.0 - step) * pi + step * softmax_policy(adv, 0.0)
    raise ValueError(f"path={path!r} is not allowed: path must be 'softmax' or 'mixture'")


@dataclass
class TrustRegionPath:
    """The exact trust-region quantities of new policies ``pi'`` along a :func:`policy_path` from
    ``pi``.

    Arrays have the path positions first, ``(K,)`` unless said otherwise; return quantities are
    relative to ``J(pi)`` (``J``): ``improvement`` ``J(pi') - J(pi)``; ``surrogate``
    ``L_pi(pi') - J(pi)``, the slide's term (A); ``neglected`` the slide's term (B), so
    ``improvement = surrogate - neglected``; ``penalty_coefficient``
    ``C = 2 gamma epsilon / (1 - gamma)^2``; ``mean_tv`` ``E_{S~d_pi}[D_TV]``; ``lower_bound`` the
    penalised surrogate ``L_pi(pi') - C E[D_TV] - J(pi)``; ``pinsker_bound``
    ``L_pi(pi') - C E[sqrt(D_KL / 2)] - J(pi)`` (Pinsker: lower still); ``mean_kl``
    ``E_{S~d_pi}[D_KL(pi' || pi)]``, TRPO's constraint, and ``max_kl`` its largest value
    over the states. ``policies`` ``(K, S, A)``. Expectations over ``d_pi`` leave out terminal
    states (the policy never acts there).
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
        """Index of the last position before the mean KL first exceeds ``delta`` (the trust
        region's edge)."""
        outside = np.flatnonzero(self.mean_kl > float(delta))
        return int(outside[0] - 1) if outside.size else len(self.steps) - 1


def trust_region_path(
    mdp: FiniteMDP, pi: np.ndarray, steps: Sequence[float], path: str = "softmax"
) -> TrustRegionPath:
    """Compute, exactly, everything the TRPO slides say about every ``pi'`` on a
    :func:`policy_path` from ``pi``.

    ``steps`` are sorted ascending (duplicates dropped); the path uses ``A^pi`` of ``mdp``. Each
    column is a method or function of :mod:`rlcourse.tabular`:
    :meth:`~rlcourse.tabular.FiniteMDP.expected_return`,
    :meth:`~rlcourse.tabular.FiniteMDP.surrogate`,
    :meth:`~rlcourse.tabular.FiniteMDP.performance_difference_terms`,
    :meth:`~rlcourse.tabular.FiniteMDP.tv_penalty_coefficient`,
    :meth:`~rlcourse.tabular.FiniteMDP.penalised_surrogate`,
    :func:`~rlcourse.tabular.total_variation` and
    :func:`~rlcourse.tabular.kl_divergence`.

    Used by ``notebooks/06_trpo_bound.ipynb``.
    """
    steps = np.unique(np.asarray(steps, dtype=float).reshape(-1))
    if steps.size == 0:
        raise ValueError("steps is empty: pass at least one step size")
    advantages = mdp.advantages(pi)  # checks pi
    pi = np.asarray(pi, dtype=float)
    d_pi = mdp.state_distribution(pi)
    acting = ~mdp.terminal
    J = mdp.expected_return(pi)
    policies = np.stack([policy_path(pi, advantages, s, path) for s in steps])
    cols = {
        k: np.zeros(steps.size)
        for k in ("imp", "sur", "neg", "C", "tv", "lb", "pin", "kl", "maxkl")
    }
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
