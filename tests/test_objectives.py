"""Losses and diagnostics against their definitions, stop-gradients included."""

import numpy as np
import pytest
import torch

from rlcourse.diagnostics import approx_kl, explained_variance
from rlcourse.objectives import critic_loss, policy_gradient_loss


def test_policy_gradient_loss_value_and_gradient():
    log_prob = torch.tensor([-0.5, -1.0, -2.0], requires_grad=True)
    advantages = torch.tensor([1.0, -2.0, 0.5], requires_grad=True)
    loss = policy_gradient_loss(log_prob, advantages)
    assert loss.item() == pytest.approx(-(-0.5 * 1.0 + -1.0 * -2.0 + -2.0 * 0.5) / 3)
    loss.backward()
    torch.testing.assert_close(log_prob.grad, -advantages.detach() / 3)
    assert advantages.grad is None  # the advantage is a constant: the slides' stop-gradient


def test_critic_loss_is_half_the_mean_squared_error_with_constant_targets():
    values = torch.tensor([1.0, 2.0, 4.0], requires_grad=True)
    targets = torch.tensor([0.0, 2.0, 1.0], requires_grad=True)
    loss = critic_loss(values, targets)
    assert loss.item() == pytest.approx(0.5 * (1 + 0 + 9) / 3)
    loss.backward()
    torch.testing.assert_close(values.grad, (values - targets).detach() / 3)
    assert targets.grad is None


def test_approx_kl_estimates_the_exact_kl():
    p = torch.tensor([0.6, 0.3, 0.1])
    q = torch.tensor([0.3, 0.3, 0.4])
    exact = float((p * (p / q).log()).sum())
    g = torch.Generator().manual_seed(0)
    a = torch.multinomial(p, 400_000, replacement=True, generator=g)
    estimate = approx_kl(p.log()[a], q.log()[a])
    assert abs(estimate - exact) < 0.01
    assert approx_kl(p.log()[a], p.log()[a]) == 0.0


def test_explained_variance():
    y = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert explained_variance(y, y) == 1.0
    assert explained_variance(torch.full_like(y, y.mean().item()), y) == 0.0
    assert explained_variance(-y, y) < 0
    assert np.isnan(explained_variance(y, torch.ones(4)))
