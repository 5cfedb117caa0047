"""rlcourse.advantages against brute-force sums of the definitions."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rlcourse.advantages import (
    discounted_returns,
    gae,
    kstep_returns,
    lambda_returns,
    normalize,
    returns_to_go,
    td_errors,
)


def random_rollout(T, N, seed, p_term=0.15, p_trunc=0.1):
    """A (T, N) rollout whose values are consistent: next_values[t] = values[t+1] inside an episode."""
    g = np.random.default_rng(seed)
    rewards = g.normal(size=(T, N))
    terminated = g.random((T, N)) < p_term
    truncated = (g.random((T, N)) < p_trunc) & ~terminated
    values = g.normal(size=(T, N))
    next_values = np.empty((T, N))
    next_values[:-1] = values[1:]
    done = terminated | truncated
    # Where an episode ended, S_{t+1} is the final state, not the next episode's first one.
    next_values[:-1][done[:-1]] = g.normal(size=done[:-1].sum())
    next_values[-1] = g.normal(size=N)
    t = lambda x: torch.as_tensor(x)  # noqa: E731
    return t(rewards), t(values), t(next_values), t(terminated), t(truncated)


def episode_end(t, i, terminated, truncated):
    """tau_t: the first k >= t where the episode ends (or the rollout's last step)."""
    T = terminated.shape[0]
    for k in range(t, T):
        if terminated[k, i] or truncated[k, i]:
            return k
    return T - 1


def brute_gae(r, v, nv, term, trunc, gamma, lam):
    T, N = r.shape
    out = torch.zeros(T, N, dtype=torch.float64)
    for i in range(N):
        for t in range(T):
            tau = episode_end(t, i, term, trunc)
            for k in range(t, tau + 1):
                delta = r[k, i] + gamma * (0.0 if term[k, i] else nv[k, i]) - v[k, i]
                out[t, i] += (gamma * lam) ** (k - t) * delta
    return out


def brute_kstep(r, nv, term, trunc, gamma, k):
    T, N = r.shape
    out = torch.zeros(T, N, dtype=torch.float64)
    for i in range(N):
        for t in range(T):
            m = min(episode_end(t, i, term, trunc), t + k - 1)
            out[t, i] = sum(gamma ** (j - t) * r[j, i] for j in range(t, m + 1))
            out[t, i] += gamma ** (m - t + 1) * (0.0 if term[m, i] else nv[m, i])
    return out


@pytest.mark.parametrize("gamma", [0.0, 0.5, 0.99, 1.0])
def test_discounted_returns_is_the_discounted_sum(gamma):
    r = torch.randn(12, 3, dtype=torch.float64)
    expected = torch.stack([sum(gamma**k * r[t + k] for k in range(12 - t)) for t in range(12)])
    torch.testing.assert_close(discounted_returns(r, gamma), expected)


def test_discounted_returns_of_a_single_episode():
    torch.testing.assert_close(discounted_returns(torch.tensor([1.0, 2.0, 3.0]), 0.5), torch.tensor([2.75, 3.5, 3.0]))


def test_td_errors_match_the_slide_formula():
    r, v, nv, term, trunc = random_rollout(20, 4, seed=1)
    expected = r + 0.9 * nv * (~term) - v
    torch.testing.assert_close(td_errors(r, v, nv, term, 0.9), expected)
    # A truncated step bootstraps; only a terminated one does not.
    assert (trunc & ~term).any()


@pytest.mark.parametrize("gamma,lam", [(0.99, 0.95), (0.9, 0.5), (1.0, 1.0), (0.8, 0.0), (0.0, 0.7)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gae_matches_the_brute_force_sum(gamma, lam, seed):
    r, v, nv, term, trunc = random_rollout(25, 5, seed)
    assert term.any() and trunc.any(), "the rollout must contain both kinds of episode end"
    torch.testing.assert_close(gae(r, v, nv, term, trunc, gamma, lam), brute_gae(r, v, nv, term, trunc, gamma, lam))


def test_gae_works_on_a_single_stream():
    r, v, nv, term, trunc = random_rollout(30, 1, seed=3)
    out = gae(r[:, 0], v[:, 0], nv[:, 0], term[:, 0], trunc[:, 0], 0.9, 0.8)
    torch.testing.assert_close(out, brute_gae(r, v, nv, term, trunc, 0.9, 0.8)[:, 0])


@pytest.mark.parametrize("gamma", [0.0, 0.7, 0.99])
def test_returns_to_go_bootstrap_where_the_episode_is_cut(gamma):
    r, v, nv, term, trunc = random_rollout(25, 4, seed=4)
    T, N = r.shape
    expected = torch.zeros(T, N, dtype=torch.float64)
    for i in range(N):
        for t in range(T):
            tau = episode_end(t, i, term, trunc)
            expected[t, i] = sum(gamma ** (k - t) * r[k, i] for k in range(t, tau + 1))
            expected[t, i] += gamma ** (tau - t + 1) * (0.0 if term[tau, i] else nv[tau, i])
    torch.testing.assert_close(returns_to_go(r, nv, term, trunc, gamma), expected)
    # ... which is GAE with lambda = 1 plus the values.
    torch.testing.assert_close(returns_to_go(r, nv, term, trunc, gamma), gae(r, v, nv, term, trunc, gamma, 1.0) + v)


@pytest.mark.parametrize("k", [1, 2, 3, 7, 40])
def test_kstep_returns_match_the_brute_force_sum(k):
    r, v, nv, term, trunc = random_rollout(20, 4, seed=5)
    torch.testing.assert_close(kstep_returns(r, nv, term, trunc, 0.9, k), brute_kstep(r, nv, term, trunc, 0.9, k))


def test_one_step_return_is_the_td_target():
    r, v, nv, term, trunc = random_rollout(20, 3, seed=6)
    torch.testing.assert_close(kstep_returns(r, nv, term, trunc, 0.9, 1), td_errors(r, v, nv, term, 0.9) + v)


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.9, 1.0])
def test_lambda_return_is_the_weighted_average_of_kstep_returns(lam):
    gamma = 0.95
    r, v, nv, term, trunc = random_rollout(15, 3, seed=7)
    T, N = r.shape
    ksteps = {k: brute_kstep(r, nv, term, trunc, gamma, k) for k in range(1, T + 1)}
    expected = torch.zeros(T, N, dtype=torch.float64)
    for i in range(N):
        for t in range(T):
            K = episode_end(t, i, term, trunc) - t + 1  # steps left in the episode
            expected[t, i] = sum((1 - lam) * lam ** (k - 1) * ksteps[k][t, i] for k in range(1, K))
            expected[t, i] += lam ** (K - 1) * ksteps[K][t, i]
    torch.testing.assert_close(lambda_returns(r, nv, term, trunc, gamma, lam), expected)


@pytest.mark.parametrize("gamma,lam", [(0.99, 0.95), (0.9, 0.3), (1.0, 0.5)])
def test_gae_identity_lambda_return_minus_value(gamma, lam):
    """The slide's exercise: sum_k (gamma lambda)^k delta_{t+k} = v_t^lambda - v(S_t)."""
    r, v, nv, term, trunc = random_rollout(30, 4, seed=8)
    torch.testing.assert_close(
        lambda_returns(r, nv, term, trunc, gamma, lam) - v, gae(r, v, nv, term, trunc, gamma, lam)
    )


# Property tests: the special cases of the GAE docstring, on random (T, N) rollouts.
rollouts = st.tuples(st.integers(1, 30), st.integers(1, 4), st.integers(0, 10_000))
unit = st.floats(0.0, 1.0)


@settings(max_examples=60, deadline=None)
@given(rollouts, unit)
def test_gae_with_lambda_zero_is_the_td_error(shape, gamma):
    r, v, nv, term, trunc = random_rollout(*shape)
    torch.testing.assert_close(gae(r, v, nv, term, trunc, gamma, 0.0), td_errors(r, v, nv, term, gamma))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 30), st.integers(1, 4), st.integers(0, 10_000), unit)
def test_gae_with_lambda_one_on_complete_episodes_is_return_minus_value(T, N, seed, gamma):
    r, v, nv, _, _ = random_rollout(T, N, seed)
    term = torch.zeros(T, N, dtype=torch.bool)
    term[-1] = True  # one complete episode per column
    trunc = torch.zeros_like(term)
    nv[:-1] = v[1:]
    torch.testing.assert_close(gae(r, v, nv, term, trunc, gamma, 1.0), discounted_returns(r, gamma) - v)


@settings(max_examples=60, deadline=None)
@given(rollouts, unit)
def test_gae_with_gamma_zero_is_reward_minus_value(shape, lam):
    r, v, nv, term, trunc = random_rollout(*shape)
    torch.testing.assert_close(gae(r, v, nv, term, trunc, 0.0, lam), r - v)


@settings(max_examples=40, deadline=None)
@given(rollouts, unit, unit)
def test_gae_never_looks_past_an_episode_end(shape, gamma, lam):
    """Changing anything after step t's episode end leaves A_t unchanged."""
    r, v, nv, term, trunc = random_rollout(*shape)
    T, N = r.shape
    a = gae(r, v, nv, term, trunc, gamma, lam)
    for i in range(N):
        for t in range(T):
            tau = episode_end(t, i, term, trunc)
            if tau + 1 < T:
                r2, v2, nv2 = r.clone(), v.clone(), nv.clone()
                r2[tau + 1 :, i] += 100.0
                v2[tau + 1 :, i] -= 50.0
                nv2[tau + 1 :, i] += 7.0
                assert torch.allclose(gae(r2, v2, nv2, term, trunc, gamma, lam)[t, i], a[t, i])


@pytest.mark.parametrize(
    "fn,args",
    [
        (discounted_returns, dict(gamma=1.5)),
        (gae, dict(gamma=0.9, gae_lambda=-0.1)),
        (gae, dict(gamma=-0.1, gae_lambda=0.9)),
    ],
)
def test_out_of_range_gamma_or_lambda_is_refused(fn, args):
    r, v, nv, term, trunc = random_rollout(5, 2, seed=0)
    inputs = (
        dict(rewards=r)
        if fn is discounted_returns
        else dict(rewards=r, values=v, next_values=nv, terminated=term, truncated=trunc)
    )
    name = "gamma" if args["gamma"] not in (0.9,) else "gae_lambda"
    with pytest.raises(ValueError, match=name):
        fn(**inputs, **args)


def test_kstep_needs_a_positive_k():
    r, v, nv, term, trunc = random_rollout(5, 2, seed=0)
    with pytest.raises(ValueError, match="k must be"):
        kstep_returns(r, nv, term, trunc, 0.9, 0)


def test_normalize_gives_zero_mean_unit_std():
    a = torch.tensor([1.0, 2.0, 6.0, -3.0], dtype=torch.float64)
    n = normalize(a)
    assert abs(float(n.mean())) < 1e-12 and abs(float(n.std()) - 1.0) < 1e-6
    assert torch.equal(torch.argsort(n), torch.argsort(a))
