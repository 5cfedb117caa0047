"""Importance sampling: the estimates from samples and, on a finite support, their exact mean and
variance.

Slide "Importance Sampling": the data are ``X ~ q`` but we want ``mu = E_{x~p}[f(x)]`` with
``p != q``. The **importance-weighted** estimate

    ``mu_hat = p(X) / q(X) f(X)``

is **unbiased**, ``E[mu_hat] = sum_x q(x) p(x)/q(x) f(x) = E_{x~p}[f(x)] = mu``, but its
**variance** ``Var[mu_hat] = sum_x p(x)^2 f(x)^2 / q(x) - mu^2`` can be large when ``p`` and ``q``
are very different. Unbiasedness needs ``q(x) > 0`` wherever ``p(x) f(x) != 0``: an ``x`` that ``q``
never draws is missing from every estimate, and the estimate is biased by
``- sum_{x: q(x)=0} p(x) f(x)``.

Everything here is NumPy in float64 (exact quantities on small supports want double precision and no
autograd); any array-like is accepted, a CPU torch tensor included. Two kinds of functions:

*From samples* ``X_1 .. X_n ~ q``: the arguments are the values *at the samples*,
``p_x[i] = p(X_i)``, ``q_x[i] = q(X_i)``, ``f_x[i] = f(X_i)`` (1-D, one entry per sample).

- :func:`likelihood_ratios` ``w_i = p(X_i) / q(X_i)``;
- :func:`importance_weighted_estimate` ``1/n sum_i w_i f(X_i)``, the slide's estimate averaged over
  ``n`` samples;
- :func:`self_normalized_estimate` ``sum_i w_i f(X_i) / sum_i w_i``: biased for finite ``n`` but
  consistent, and needs ``p`` and ``q`` only up to constant factors;
- :func:`effective_sample_size` ``(sum_i w_i)^2 / sum_i w_i^2``: ``n`` when all weights are equal,
  close to 1 when one weight dominates;
- :func:`sample` draws ``X_1 .. X_n ~ q`` (indices into the support).

*Exact*, on a finite support ``{0, .., K-1}``: ``p``, ``q`` are probability vectors and ``f`` the
values ``f(x)``, all of shape ``(K,)``.

- :func:`exact_mean` ``mu = sum_x p(x) f(x)``;
- :func:`estimator_mean` ``E_q[mu_hat] = sum_x q(x) p(x)/q(x) f(x)``, as the slide writes it;
- :func:`estimator_variance` ``Var_q[mu_hat] / n``, and :func:`direct_variance`
  ``Var_p[f(X)] / n`` (plain Monte Carlo with samples from ``p``, i.e. ``q = p``) to compare with;
- :func:`chi2_divergence` ``chi^2(p || q) = sum_x p(x)^2 / q(x) - 1 = Var_q[w]``, the variance of
  the weights; ``n / (1 + chi^2)`` is what the effective sample size tends to for large ``n``;
- :func:`optimal_proposal` ``q* ∝ p |f|``, the ``q`` of least variance (zero when ``f`` keeps
  one sign);
- proposals that move away from ``p`` as one parameter grows, for a slider:
  :func:`mixture_proposal` ``(1 - t) p + t r`` and :func:`tilted_proposal` ``∝ p exp(beta g)``;
  :func:`discretized_gaussian` builds ``p`` on a grid (tilting it with ``g(x) = x`` shifts its
  mean);
- :class:`ImportanceSamplingGrid`, :func:`importance_sampling_grid`: the exact variances and many
  sampled estimates at every position of a path of ``(p, q)`` pairs, computed once for a slider
  (``notebooks/05_importance_sampling.ipynb``).

Bad input gets a ``ValueError`` that names the argument: a distribution that is negative or does not
sum to 1, arrays of different shapes, and ``q(x) = 0`` where ``p(x) f(x) != 0`` (the estimate would
be biased).

References: A. B. Owen, *Monte Carlo theory, methods and examples* (2013), ch. 9 (importance
sampling, self-normalisation, effective sample size); A. Kong, *A note on importance sampling using
standardized weights* (1992). Slides: "Importance Sampling", "Sample Reuse". The policy-ratio
version used by TRPO and PPO is :func:`rlcourse.objectives.importance_weights`.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "likelihood_ratios",
    "importance_weighted_estimate",
    "self_normalized_estimate",
    "effective_sample_size",
    "sample",
    "exact_mean",
    "estimator_mean",
    "estimator_variance",
    "direct_variance",
    "chi2_divergence",
    "optimal_proposal",
    "mixture_proposal",
    "tilted_proposal",
    "discretized_gaussian",
    "ImportanceSamplingGrid",
    "importance_sampling_grid",
]

SUM_TOL = 1e-6
"""How far from 1 the sum of a distribution may be (rounding, float32 input); anything further is
an error."""


# -------------------------------------------------------------------------------------- checks


def _short(x: Any) -> str:
    """A one-line, shortened repr for error messages."""
    text = (
        np.array2string(x, threshold=8, precision=4, separator=", ")
        if isinstance(x, np.ndarray)
        else repr(x)
    )
    return " ".join(text.split())


def _fail(name: str, value: Any, why: str) -> None:
    raise ValueError(f"{name}={_short(value)} is not allowed: {why}")


def _vector(name: str, x: ArrayLike) -> np.ndarray:
    """A non-empty 1-D float64 array of finite numbers."""
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        _fail(name, x, f"{name} must be a 1-D array of numbers")
    if a.ndim != 1 or a.size == 0:
        _fail(name, a, f"{name} must be a non-empty 1-D array (shape {a.shape} given)")
    if not np.all(np.isfinite(a)):
        _fail(name, a, f"every entry of {name} must be a finite number")
    return a


def _same_shape(**arrays: np.ndarray) -> None:
    shapes = {name: a.shape for name, a in arrays.items()}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{name}{shape}" for name, shape in shapes.items())
        raise ValueError(
            f"shapes {listed} are not allowed: {', '.join(shapes)} must have the same shape"
        )


def _nonnegative(name: str, a: np.ndarray) -> None:
    if np.any(a < 0):
        _fail(
            name,
            a,
            f"{name} must be >= 0 everywhere (negative at x = {np.flatnonzero(a < 0).tolist()})",
        )


def _distribution(name: str, x: ArrayLike) -> np.ndarray:
    """A probability vector: 1-D, >= 0, summing to 1 (within :data:`SUM_TOL`)."""
    a = _vector(name, x)
    _nonnegative(name, a)
    total = float(a.sum())
    if abs(total - 1.0) > SUM_TOL:
        _fail(
            name,
            a,
            f"a distribution must sum to 1, {name} sums to {total:.6g} (divide it by its sum)",
        )
    return a


def _covered(p: np.ndarray, q: np.ndarray, f: np.ndarray) -> None:
    """Raise unless ``q(x) > 0`` wherever ``p(x) f(x) != 0``: the condition for an unbiased
    estimate."""
    missed = (q == 0) & (p * f != 0)
    if np.any(missed):
        where = np.flatnonzero(missed)
        lost = float((p * f)[missed].sum())
        _fail(
            "q",
            q,
            f"q(x) = 0 where p(x) f(x) != 0 (at x = {where.tolist()}). Those x are never drawn, "
            "so the importance-weighted estimate is biased: its mean misses "
            f"sum p(x) f(x) = {lost:.6g} there. q must be > 0 wherever p(x) f(x) != 0",
        )


def _check_n(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        _fail("n", n, "n (the number of samples) must be a whole number >= 1")
    return int(n)


def _samples(
    p_x: ArrayLike, q_x: ArrayLike, f_x: ArrayLike | None = None
) -> tuple[np.ndarray, ...]:
    p = _vector("p_x", p_x)
    q = _vector("q_x", q_x)
    _nonnegative("p_x", p)
    if np.any(q <= 0):
        _fail("q_x", q, "q_x must be > 0: a sample X ~ q has q(X) > 0 (was it drawn from q?)")
    if f_x is None:
        _same_shape(p_x=p, q_x=q)
        return p, q
    f = _vector("f_x", f_x)
    _same_shape(p_x=p, q_x=q, f_x=f)
    return p, q, f


# -------------------------------------------------------------------------------- from samples


def likelihood_ratios(p_x: ArrayLike, q_x: ArrayLike) -> np.ndarray:
    """The importance weights ``w_i = p(X_i) / q(X_i)`` of samples ``X_i ~ q``.

    Args:
        p_x: ``(n,)`` target probabilities ``p(X_i)`` (>= 0).
        q_x: ``(n,)`` proposal probabilities ``q(X_i)`` (> 0, since ``X_i`` was drawn from ``q``).
    """
    p, q = _samples(p_x, q_x)
    return p / q


def importance_weighted_estimate(p_x: ArrayLike, q_x: ArrayLike, f_x: ArrayLike) -> float:
    """The slide's importance-weighted estimate of ``mu = E_p[f]``, averaged over ``n`` samples
    ``X_i ~ q``.

    ``mu_hat = 1/n sum_i p(X_i)/q(X_i) f(X_i)``. Unbiased when ``q(x) > 0`` wherever
    ``p(x) f(x) != 0``, with variance :func:`estimator_variance` ``(p, q, f, n)``. ``p`` and ``q``
    must be normalised.

    Args:
        p_x, q_x, f_x: ``(n,)`` values ``p(X_i)``, ``q(X_i)``, ``f(X_i)`` at the samples.
    """
    p, q, f = _samples(p_x, q_x, f_x)
    return float(np.mean(p / q * f))


def self_normalized_estimate(p_x: ArrayLike, q_x: ArrayLike, f_x: ArrayLike) -> float:
    """The self-normalised estimate ``sum_i w_i f(X_i) / sum_i w_i`` with ``w_i = p(X_i) / q(X_i)``,
    ``X_i ~ q``.

    Divides by ``sum_i w_i`` (whose mean is ``n``) instead of by ``n``: constant factors of ``p``
    and ``q`` cancel, so unnormalised densities will do, and the estimate always lies between the
    smallest and the largest ``f(X_i)``. It is biased for finite ``n`` (with ``n = 1`` it is just
    ``f(X_1)``, whose mean is ``E_q[f]``) but consistent: it tends to ``mu`` as ``n`` grows, with
    variance about ``1/n sum_x p(x)^2 (f(x) - mu)^2 / q(x)`` (Owen 2013, sec. 9.2).

    Args:
        p_x, q_x, f_x: ``(n,)`` values ``p(X_i)``, ``q(X_i)``, ``f(X_i)`` at the samples; ``p`` and
            ``q`` may be unnormalised.
    """
    p, q, f = _samples(p_x, q_x, f_x)
    w = p / q
    total = w.sum()
    if total == 0:
        _fail(
            "p_x",
            p,
            "the weights p(X_i)/q(X_i) are all 0, so sum_i w_i = 0 and the estimate is undefined",
        )
    return float((w * f).sum() / total)


def effective_sample_size(weights: ArrayLike) -> float:
    """Kong's effective sample size ``ESS = (sum_i w_i)^2 / sum_i w_i^2`` of importance weights.

    ``ESS = n`` when all ``n`` weights are equal (``p = q``) and falls towards 1 as one weight
    dominates: the weighted sample is worth about ``ESS`` samples drawn from ``p`` itself. It does
    not change when the weights are scaled, so unnormalised weights will do. For ``X_i ~ q``,
    ``ESS / n`` tends to ``1 / (1 + chi^2(p || q))`` (:func:`chi2_divergence`).

    Args:
        weights: ``(n,)`` weights ``w_i >= 0``, not all zero.
    """
    w = _vector("weights", weights)
    _nonnegative("weights", w)
    if not np.any(w > 0):
        _fail("weights", w, "at least one weight must be > 0")
    w = w / w.max()  # scale-free; avoids overflow of w^2
    return float(w.sum() ** 2 / (w**2).sum())


def sample(q: ArrayLike, n: int, seed: int | np.random.Generator | None = None) -> np.ndarray:
    """Draw ``X_1 .. X_n ~ q``: ``(n,)`` indices into the support of the distribution ``q``.

    ``seed`` is an int, a :class:`numpy.random.Generator` (to continue its stream) or ``None``
    (fresh entropy). With arrays ``p, q, f`` over the support, ``x = sample(q, n)`` gives the
    arguments ``p[x], q[x], f[x]`` of the estimates above.
    """
    q = _distribution("q", q)
    n = _check_n(n)
    rng = np.random.default_rng(seed)
    return rng.choice(q.size, size=n, p=q / q.sum())


# ------------------------------------------------------------------------ exact, finite support


def exact_mean(p: ArrayLike, f: ArrayLike) -> float:
    """``mu = E_{x~p}[f(x)] = sum_x p(x) f(x)``, the quantity the estimates aim at."""
    p = _distribution("p", p)
    f = _vector("f", f)
    _same_shape(p=p, f=f)
    return float(np.dot(p, f))


def _pqf(p: ArrayLike, q: ArrayLike, f: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = _distribution("p", p)
    q = _distribution("q", q)
    f = _vector("f", f)
    _same_shape(p=p, q=q, f=f)
    _covered(p, q, f)
    return p, q, f


def estimator_mean(p: ArrayLike, q: ArrayLike, f: ArrayLike) -> float:
    """``E_{X~q}[mu_hat] = sum_x q(x) p(x)/q(x) f(x)``, summed over the ``x`` that ``q`` can draw.

    This is the slide's derivation term by term; it equals :func:`exact_mean` ``(p, f)``
    (unbiasedness). Raises if ``q(x) = 0`` where ``p(x) f(x) != 0``: the estimate would then be
    biased.
    """
    p, q, f = _pqf(p, q, f)
    drawn = q > 0
    return float(np.sum(q[drawn] * (p[drawn] / q[drawn]) * f[drawn]))


def estimator_variance(p: ArrayLike, q: ArrayLike, f: ArrayLike, n: int = 1) -> float:
    """Exact variance of the importance-weighted estimate from ``n`` samples ``X_i ~ q``.

    ``Var[mu_hat] = (sum_x p(x)^2 f(x)^2 / q(x) - mu^2) / n`` with ``mu = sum_x p(x) f(x)`` (the sum
    runs over ``q(x) > 0``). With ``q = p`` it is :func:`direct_variance`; it grows without bound as
    ``q(x)`` shrinks where ``p(x) f(x)`` is not small. Raises if ``q(x) = 0`` where
    ``p(x) f(x) != 0``.
    """
    p, q, f = _pqf(p, q, f)
    n = _check_n(n)
    drawn = q > 0
    mu = float(np.dot(p, f))
    second_moment = float(np.sum(p[drawn] ** 2 * f[drawn] ** 2 / q[drawn]))
    return max(second_moment - mu**2, 0.0) / n  # max: rounding when the variance is 0


def direct_variance(p: ArrayLike, f: ArrayLike, n: int = 1) -> float:
    """``Var_{X~p}[f(X)] / n``: the variance of the plain Monte Carlo mean of ``n`` samples drawn
    from ``p``."""
    p = _distribution("p", p)
    f = _vector("f", f)
    _same_shape(p=p, f=f)
    n = _check_n(n)
    mu = float(np.dot(p, f))
    return float(np.dot(p, (f - mu) ** 2)) / n


def chi2_divergence(p: ArrayLike, q: ArrayLike) -> float:
    """``chi^2(p || q) = sum_x p(x)^2 / q(x) - 1``, the variance ``Var_{X~q}[p(X)/q(X)]`` of the
    weights.

    It is :func:`estimator_variance` with ``f = 1``; 0 iff ``p = q``. Raises if ``q(x) = 0`` where
    ``p(x) > 0`` (the divergence is then infinite).
    """
    p = _distribution("p", p)
    return estimator_variance(p, q, np.ones_like(p))


def optimal_proposal(p: ArrayLike, f: ArrayLike) -> np.ndarray:
    """The proposal of least variance, ``q*(x) = p(x) |f(x)| / sum_x' p(x') |f(x')|``.

    Sampling *more* where ``p |f|`` is large beats sampling from ``p``:
    ``Var = (sum_x p |f|)^2 - mu^2``, which is 0 when ``f`` keeps one sign. It needs ``mu`` to be
    computed, so it is a benchmark, not a method.
    """
    p = _distribution("p", p)
    f = _vector("f", f)
    _same_shape(p=p, f=f)
    mass = p * np.abs(f)
    if not np.any(mass > 0):
        _fail("f", f, "p(x) f(x) = 0 for every x, so every q is optimal (mu = 0 exactly)")
    return mass / mass.sum()


def mixture_proposal(p: ArrayLike, t: float, r: ArrayLike | None = None) -> np.ndarray:
    """``q_t = (1 - t) p + t r``: from ``q_0 = p`` to ``q_1 = r`` (default: uniform) as ``t``
    goes from 0 to 1.

    ``chi^2(p || q_t)``, and with it the variance of the weights, grows with ``t`` (it is convex in
    ``t`` and 0 at ``t = 0``). The variance for a given ``f`` is convex in ``t`` too but need not
    grow: its slope at ``t = 0`` is ``E_p[f^2] - E_r[f^2]`` (for ``p > 0`` everywhere), so moving
    towards an ``r`` that samples more where ``f^2`` is large first *lowers* it (see
    :func:`optimal_proposal`).

    Args:
        p: the target distribution, ``(K,)``.
        t: the mixing weight in [0, 1].
        r: the distribution ``q`` moves towards, ``(K,)``; ``None`` for uniform.
    """
    p = _distribution("p", p)
    if isinstance(t, bool) or not isinstance(t, numbers.Real) or not 0.0 <= float(t) <= 1.0:
        _fail("t", t, "t must be a number in [0, 1]")
    r = np.full_like(p, 1.0 / p.size) if r is None else _distribution("r", r)
    _same_shape(p=p, r=r)
    return (1.0 - float(t)) * p + float(t) * r


def tilted_proposal(p: ArrayLike, g: ArrayLike, beta: float) -> np.ndarray:
    """Exponential tilting ``q_beta(x) = p(x) exp(beta g(x)) / sum_x' p(x') exp(beta g(x'))``.

    ``q_0 = p``; ``q_beta`` has the support of ``p`` (never zero where ``p`` is not), so every
    ``beta`` gives an unbiased estimate, but ``chi^2(p || q_beta) = M(beta) M(-beta) - 1`` with
    ``M(s) = E_p[exp(s g)]`` grows with ``|beta|`` (``log M`` is convex). With ``p`` =
    :func:`discretized_gaussian` and ``g(x) = x``, ``q_beta`` is the same Gaussian shifted by
    ``beta std^2`` (up to the edges of the grid).
    """
    p = _distribution("p", p)
    g = _vector("g", g)
    _same_shape(p=p, g=g)
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not np.isfinite(float(beta)):
        _fail("beta", beta, "beta must be a finite number")
    logits = float(beta) * g
    logits = logits - logits[p > 0].max()  # log-sum-exp shift: no overflow
    q = p * np.exp(logits)
    return q / q.sum()


def discretized_gaussian(x: ArrayLike, mean: float, std: float) -> np.ndarray:
    """``p(x_k) ∝ exp(-(x_k - mean)^2 / (2 std^2))`` on the grid points ``x``, normalised to
    sum to 1."""
    x = _vector("x", x)
    for name, value in (("mean", mean), ("std", std)):
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not np.isfinite(float(value))
        ):
            _fail(name, value, f"{name} must be a finite number")
    if std <= 0:
        _fail("std", std, "std must be > 0")
    log_p = -0.5 * ((x - float(mean)) / float(std)) ** 2
    p = np.exp(log_p - log_p.max())
    return p / p.sum()


# ------------------------------------------------------------- a path of (p, q) pairs, for a slider


@dataclass
class ImportanceSamplingGrid:
    """Importance sampling of ``mu = E_{X~p}[f(X)]`` from ``n`` samples of ``q``, along a path of
    ``(p, q)`` pairs.

    Position ``m`` of the path (a slider position, with the value ``params[m]`` of the parameter
    ``param_name``) has a target ``p[m]`` and a proposal ``q[m]``, distributions over the support
    ``x``; ``f`` is the same at every position. Arrays have the positions first.

    Exact (sums over the support): ``mu`` ``(M,)`` the true mean;
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
    to redraw from (slides "Importance Sampling", "Sample Reuse").

    ``p`` and ``q`` are either one distribution ``(K,)`` (the same at every position) or one per
    position ``(M, K)``, with ``M = len(params)``: e.g. a fixed ``p`` and proposals that move away
    from it (:func:`tilted_proposal`), or a fixed old policy ``q`` and new policies ``p`` that move
    away from it. At each position the ``n * repeats`` samples are drawn with :func:`sample` from
    the same ``seed``: the same uniform numbers at every position (common random numbers), so
    positions with the same ``q`` reuse exactly the same samples, and the histograms change
    smoothly as the slider moves. The exact columns come from :func:`exact_mean`,
    :func:`estimator_variance`, :func:`direct_variance` and :func:`chi2_divergence`; the sampled
    ones are :func:`importance_weighted_estimate`, :func:`self_normalized_estimate` and
    :func:`effective_sample_size` of each row of samples, computed for all rows at once.

    Used by ``notebooks/05_importance_sampling.ipynb``.
    """
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
            f"shapes x{x.shape} and f{f.shape} are not allowed: "
            "x and f must be 1-D of the same length"
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
    mu = np.array([exact_mean(p[m], f) for m in range(M)])
    variance = np.array([estimator_variance(p[m], q[m], f, n) for m in range(M)])
    direct = np.array([direct_variance(p[m], f, n) for m in range(M)])
    chi2 = np.array([chi2_divergence(p[m], q[m]) for m in range(M)])
    estimates, normalized, ess = (
        np.zeros((M, repeats)),
        np.zeros((M, repeats)),
        np.zeros((M, repeats)),
    )
    for m in range(M):
        idx = sample(q[m], n * repeats, seed=seed).reshape(repeats, n)
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
