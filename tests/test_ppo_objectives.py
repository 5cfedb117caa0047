"""PPO's importance weights and clipped surrogate against their definitions (Schulman et al. 2017).

Slides "From TRPO to PPO" and "PPO Algorithm with Clipping":
``L^PPO = E[min{omega A, clip(omega, 1 - eps, 1 + eps) A}]`` with ``omega = pi_theta'(A|S) / pi_theta(A|S)``.
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import Categorical, Normal

from rlcourse.objectives import clipped_surrogate, importance_weights

# No subnormal numbers: a product like 0.5 * 5e-324 underflows to 0 and ties the two branches of the min,
# which says nothing about the objective (hypothesis found exactly that case).
ratios = st.floats(min_value=0.0, max_value=10.0, allow_nan=False, allow_subnormal=False)
advantages = st.floats(min_value=-100.0, max_value=100.0, allow_nan=False, allow_subnormal=False)
clip_eps = st.floats(min_value=0.01, max_value=0.99)
batches = st.lists(st.tuples(ratios, advantages), min_size=1, max_size=30)


def _tensors(batch):
    r = torch.tensor([b[0] for b in batch], dtype=torch.float64, requires_grad=True)
    a = torch.tensor([b[1] for b in batch], dtype=torch.float64)
    return r, a


# ------------------------------------------------------------------------------------ importance_weights


def test_importance_weights_are_the_ratio_of_categorical_probabilities():
    g = torch.Generator().manual_seed(0)
    old = Categorical(logits=torch.randn(4, 5, generator=g, dtype=torch.float64))
    new = Categorical(logits=torch.randn(4, 5, generator=g, dtype=torch.float64))
    actions = torch.arange(5).unsqueeze(-1).expand(5, 4)  # every action in every state: (5, 4)
    w = importance_weights(log_prob_new=new.log_prob(actions), log_prob_old=old.log_prob(actions))
    assert w.shape == (5, 4)
    torch.testing.assert_close(w, (new.probs / old.probs).T)
    # Unbiasedness, exactly over the actions: E_{a~old}[omega(a) A(a)] = E_{a~new}[A(a)].
    adv = torch.randn(5, 4, generator=g, dtype=torch.float64)
    torch.testing.assert_close((old.probs.T * w * adv).sum(0), (new.probs.T * adv).sum(0))
    torch.testing.assert_close((old.probs.T * w).sum(0), torch.ones(4, dtype=torch.float64))


def test_importance_weights_are_the_ratio_of_gaussian_densities():
    old, new = Normal(torch.tensor(0.3), torch.tensor(1.2)), Normal(torch.tensor(-0.5), torch.tensor(0.7))
    a = torch.linspace(-3, 3, 1000)
    density = lambda x, m, s: torch.exp(-0.5 * ((x - m) / s) ** 2) / (s * math.sqrt(2 * math.pi))
    expected = density(a, -0.5, 0.7) / density(a, 0.3, 1.2)
    torch.testing.assert_close(importance_weights(new.log_prob(a), old.log_prob(a)), expected, rtol=1e-5, atol=0)


def test_importance_weights_gradient_flows_through_the_new_policy_only():
    log_new = torch.tensor([-0.2, -1.5, -3.0], requires_grad=True)
    log_old = torch.tensor([-0.7, -1.0, -2.0], requires_grad=True)
    w = importance_weights(log_new, log_old)
    torch.testing.assert_close(w, torch.exp(log_new - log_old).detach())
    w.sum().backward()
    torch.testing.assert_close(log_new.grad, w.detach())  # d exp(u) / du = exp(u)
    assert log_old.grad is None  # the data-collecting policy is a constant
    same = torch.tensor([-0.1, -5.0])
    assert torch.equal(importance_weights(same, same), torch.ones(2))


@given(st.lists(st.tuples(st.floats(-20, 0), st.floats(-20, 0)), min_size=1, max_size=20))
@settings(max_examples=50, deadline=None)
def test_importance_weights_log_is_the_difference_of_log_probs(pairs):
    new = torch.tensor([p[0] for p in pairs], dtype=torch.float64)
    old = torch.tensor([p[1] for p in pairs], dtype=torch.float64)
    w = importance_weights(new, old)
    assert torch.all(w > 0)
    torch.testing.assert_close(w.log(), new - old)


def test_importance_weights_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match=r"log_prob_new.shape=\(4, 1\), log_prob_old.shape=\(4,\) is not allowed"):
        importance_weights(torch.zeros(4, 1), torch.zeros(4))


# ------------------------------------------------------------------------------------- clipped_surrogate


def test_clipped_surrogate_values_by_hand():
    ratio = torch.tensor([1.5, 1.5, 0.5, 0.5, 1.1, 0.9, 1.0])
    adv = torch.tensor([2.0, -2.0, 2.0, -2.0, 3.0, -3.0, 0.0])
    out = clipped_surrogate(ratio, adv, clip_eps=0.2)
    # r > 1+eps, A > 0: clipped to 1.2 * 2; r > 1+eps, A < 0: unclipped 1.5 * -2 (worse); r < 1-eps, A > 0:
    # unclipped 0.5 * 2; r < 1-eps, A < 0: clipped 0.8 * -2; inside: r A.
    torch.testing.assert_close(out, torch.tensor([2.4, -3.0, 1.0, -1.6, 3.3, -2.7, 0.0]))


def test_clipped_surrogate_is_per_sample_not_averaged():
    g = torch.Generator().manual_seed(1)
    ratio = torch.rand(7, 3, generator=g) + 0.5
    adv = torch.randn(7, 3, generator=g)
    out = clipped_surrogate(ratio=ratio, advantages=adv, clip_eps=0.1)
    assert out.shape == (7, 3)
    for i in range(7):
        for j in range(3):
            r, a = float(ratio[i, j]), float(adv[i, j])
            assert float(out[i, j]) == pytest.approx(min(r * a, min(max(r, 0.9), 1.1) * a), rel=1e-6)


@given(batches, clip_eps)
@settings(max_examples=200, deadline=None)
def test_clipped_surrogate_equals_ratio_times_advantage_inside_the_interval(batch, eps):
    r, a = _tensors(batch)
    inside = (r >= 1 - eps) & (r <= 1 + eps)
    out = clipped_surrogate(r, a, eps)
    assert torch.equal(out[inside], (r * a)[inside])


@given(batches, clip_eps)
@settings(max_examples=200, deadline=None)
def test_clipped_surrogate_is_a_pessimistic_lower_bound(batch, eps):
    r, a = _tensors(batch)
    out = clipped_surrogate(r, a, eps)
    assert torch.all(out <= r * a)
    assert torch.all(out <= torch.clamp(r, 1 - eps, 1 + eps) * a)
    # The paper's case form (Schulman et al. 2017, Fig. 1): min(r, 1+eps) A for A >= 0, max(r, 1-eps) A for A < 0.
    cases = torch.where(a >= 0, torch.clamp(r, max=1 + eps) * a, torch.clamp(r, min=1 - eps) * a)
    torch.testing.assert_close(out, cases, rtol=1e-12, atol=1e-12)


@given(batches, clip_eps)
@settings(max_examples=200, deadline=None)
def test_clipped_surrogate_gradient_is_zero_where_the_clip_is_active_and_A_elsewhere(batch, eps):
    r, a = _tensors(batch)
    clipped_surrogate(r, a, eps).sum().backward()
    flat = ((r > 1 + eps) & (a > 0)) | ((r < 1 - eps) & (a < 0))
    expected = torch.where(flat, torch.zeros_like(a), a)
    # Within rounding of a kink r = 1 +- eps the two products of the min can tie (the gradient is then
    # split); the exact kink is checked by hand below.
    off_kink = ((r - (1 + eps)).abs() > 1e-9) & ((r - (1 - eps)).abs() > 1e-9)
    assert torch.equal(r.grad[off_kink], expected[off_kink])


def test_clipped_surrogate_gradient_cases_by_hand():
    ratio = torch.tensor([1.5, 1.5, 0.5, 0.5, 1.0, 1.2, 0.8], requires_grad=True)
    adv = torch.tensor([2.0, -2.0, 2.0, -2.0, 3.0, 2.0, -2.0], requires_grad=True)
    clipped_surrogate(ratio, adv, 0.2).sum().backward()
    # Flat where moving further would still raise the objective; A elsewhere (also on the boundary).
    torch.testing.assert_close(ratio.grad, torch.tensor([0.0, -2.0, 2.0, 0.0, 3.0, 2.0, -2.0]))
    assert adv.grad is None  # the advantages are constants, as in the slides' actor loss


def test_at_the_old_policy_the_clipped_objective_gives_the_exact_policy_gradient():
    # theta' = theta: every ratio is 1, inside the clip, so grad E_{a~pi_old}[L^CLIP] = grad E_{a~pi_theta'}[A].
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    adv = torch.randn(3, 4, generator=g, dtype=torch.float64)
    pi_old = torch.softmax(logits, -1).detach()
    log_pi = torch.log_softmax(logits, -1)
    ratio = importance_weights(log_prob_new=log_pi, log_prob_old=pi_old.log())
    objective = (pi_old * clipped_surrogate(ratio, adv, clip_eps=0.2)).sum()
    (grad_clip,) = torch.autograd.grad(objective, logits)
    (grad_exact,) = torch.autograd.grad((torch.softmax(logits, -1) * adv).sum(), logits)
    torch.testing.assert_close(grad_clip, grad_exact)


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5, float("nan"), True, "0.2", None])
def test_clip_eps_outside_zero_one_is_an_error(bad):
    with pytest.raises(ValueError, match=r"clip_eps=.* is not allowed: clip_eps must be a number in \(0, 1\)"):
        clipped_surrogate(torch.ones(3), torch.ones(3), clip_eps=bad)


def test_clip_eps_accepts_numpy_and_tensor_scalars():
    ratio, adv = torch.tensor([1.5, 0.5]), torch.tensor([1.0, -1.0])
    expected = torch.tensor([1.2, -0.8])
    torch.testing.assert_close(clipped_surrogate(ratio, adv, np.float32(0.2)), expected)
    torch.testing.assert_close(clipped_surrogate(ratio, adv, torch.tensor(0.2)), expected)


def test_clipped_surrogate_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match=r"ratio.shape=\(5, 1\), advantages.shape=\(5,\) is not allowed"):
        clipped_surrogate(torch.ones(5, 1), torch.ones(5), 0.2)
