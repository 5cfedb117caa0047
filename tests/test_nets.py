"""Policy heads: the NumPy samplers of the rollout loop draw from the policy's own distribution."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.distributions import Categorical, kl_divergence

from rlcourse.nets import (
    CategoricalPolicy,
    GaussianPolicy,
    NumpyMLP,
    SoftmaxCategorical,
    ValueNet,
    make_policy,
    mlp,
    orthogonal_,
)


def test_numpy_copy_computes_the_same_network():
    torch.manual_seed(0)
    for activation in (torch.nn.Tanh, torch.nn.ReLU):
        net = mlp([5, 16, 16, 3], activation)
        x = torch.randn(10, 5)
        np.testing.assert_allclose(
            NumpyMLP(net)(x.numpy()), net(x).detach().numpy(), rtol=1e-5, atol=1e-6
        )


def test_numpy_sampler_draws_from_the_softmax_probabilities():
    torch.manual_seed(0)
    policy = CategoricalPolicy(3, 4)
    with torch.no_grad():
        policy.logits[-1].weight.mul_(300.0)  # make the probabilities far from uniform
        obs = torch.randn(2, 3)
        probs = policy(obs).probs
    sample = policy.numpy_sampler(np.random.default_rng(0))
    draws = sample(
        np.repeat(obs.numpy(), 20_000, axis=0)
        .reshape(2, 20_000, 3)
        .transpose(1, 0, 2)
        .reshape(-1, 3)
    )
    draws = torch.as_tensor(draws).view(20_000, 2)
    freq = (
        torch.stack([torch.bincount(draws[:, i], minlength=4) for i in range(2)]).float() / 20_000
    )
    assert probs.max() - probs.min() > 0.3
    torch.testing.assert_close(freq, probs, atol=0.015, rtol=0)


@pytest.mark.parametrize("shape", [(5, 3), (4, 2, 6), (7,)])
def test_softmax_categorical_is_pytorchs_categorical(shape):
    # The policy's distribution against its definition, torch's Categorical on the same logits:
    # values, gradients w.r.t. the logits, and everything it inherits.
    torch.manual_seed(0)
    logits = (3 * torch.randn(shape)).requires_grad_()
    ours, ref = SoftmaxCategorical(logits), Categorical(logits=logits)
    actions = ref.sample()
    assert ours.batch_shape == ref.batch_shape and ours.event_shape == ref.event_shape
    for f in (
        lambda d: d.log_prob(actions),
        lambda d: d.log_prob(actions[..., :1] if actions.dim() else actions),  # broadcast
        lambda d: d.entropy(),
        lambda d: d.probs,
        lambda d: d.logits,
        lambda d: kl_divergence(d, Categorical(logits=torch.zeros(shape))),
    ):
        a, b = f(ours), f(ref)
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
        weights = torch.randn(a.shape)
        (grad,) = torch.autograd.grad((a * weights).sum(), logits, retain_graph=True)
        (ref_grad,) = torch.autograd.grad((b * weights).sum(), logits, retain_graph=True)
        torch.testing.assert_close(grad, ref_grad, rtol=1e-5, atol=1e-6)
    expanded = ours.expand((3, *ref.batch_shape))
    assert isinstance(expanded, SoftmaxCategorical) and expanded.batch_shape == (3, *shape[:-1])
    torch.testing.assert_close(expanded.probs[1], ref.probs)
    with pytest.raises(ValueError, match="at least one dimension"):
        SoftmaxCategorical(torch.tensor(1.0))


def test_gaussian_numpy_sampler_has_the_policy_mean_and_std():
    torch.manual_seed(0)
    policy = GaussianPolicy(2, 3, log_std_init=-0.5)
    obs = torch.randn(1, 2)
    draws = policy.numpy_sampler(np.random.default_rng(0))(np.repeat(obs.numpy(), 50_000, axis=0))
    mean = policy.greedy(obs).detach().numpy()[0]
    np.testing.assert_allclose(draws.mean(0), mean, atol=0.02)
    np.testing.assert_allclose(draws.std(0), np.exp(-0.5), atol=0.02)


def test_log_prob_and_entropy_are_one_number_per_state():
    policy = GaussianPolicy(2, 3)
    pi = policy(torch.randn(5, 2))
    assert pi.log_prob(torch.zeros(5, 3)).shape == (5,) and pi.entropy().shape == (5,)
    assert ValueNet(2)(torch.randn(7, 5, 2)).shape == (7, 5)


def test_unsupported_spaces_are_named():
    box = gym.spaces.Box(-1, 1, (3,))
    with pytest.raises(ValueError, match="reinforce cannot handle the action space Tuple"):
        make_policy(box, gym.spaces.Tuple((gym.spaces.Discrete(2),)), (8,), "reinforce")
    with pytest.raises(ValueError, match="observation space .* is not supported"):
        make_policy(gym.spaces.Box(-1, 1, (3, 4)), gym.spaces.Discrete(2), (8,), "a2c")


def test_tanh_gaussian_log_prob_is_the_density_of_the_squashed_action():
    """Compare exp(log pi(a|s)) with the derivative of the squashed Gaussian's CDF, by finite differences."""
    from rlcourse.nets import TanhGaussianPolicy

    torch.manual_seed(0)
    policy = TanhGaussianPolicy(3, np.array([-2.0]), np.array([2.0]), hidden=(16,))
    obs = torch.randn(1, 3).repeat(200, 1)
    with torch.no_grad():
        actions, log_prob = policy.sample(obs)
        mean, log_std = policy._mean_log_std(obs[:1])
    normal = torch.distributions.Normal(mean.double()[0, 0], log_std.exp().double()[0, 0])

    def cdf(a):
        return normal.cdf(torch.atanh(a.double() / 2.0))

    h = 1e-4
    a = actions[:, 0].double().clamp(-2 + 2e-3, 2 - 2e-3)
    density = (cdf(a + h) - cdf(a - h)) / (2 * h)
    inside = actions[:, 0].abs() < 2 - 2e-3
    torch.testing.assert_close(
        log_prob.double()[inside], density.log()[inside], atol=1e-3, rtol=1e-3
    )
    assert actions.abs().max() <= 2.0


def test_q_ensemble_member_i_is_its_own_mlp():
    """Each member of the batched ensemble computes relu(relu([s, a] W1_i + b1_i) W2_i + b2_i) W3_i + b3_i."""
    from rlcourse.nets import QEnsemble

    torch.manual_seed(0)
    critics = QEnsemble(3, (8, 5), members=3, act_size=2)
    obs, actions = torch.randn(7, 3), torch.randn(7, 2)
    layers = [m for m in critics.q if hasattr(m, "weight")]
    for i, q in enumerate(critics(obs, actions)):
        x = torch.cat([obs, actions], -1)
        for k, layer in enumerate(layers):
            x = x @ layer.weight[i] + layer.bias[i]
            x = torch.relu(x) if k < len(layers) - 1 else x
        torch.testing.assert_close(q, x.squeeze(-1))
    assert len(critics) == 3


def test_q_ensemble_members_learn_independently():
    """A loss on critic 0 alone leaves the gradient of every other member's weights at zero."""
    from rlcourse.nets import QEnsemble

    critics = QEnsemble(4, (16,), members=2, num_actions=3)
    q = critics(torch.randn(5, 4))
    assert q.shape == (2, 5, 3)
    q[0].sum().backward()
    for p in critics.parameters():
        assert p.grad[0].abs().sum() > 0 and torch.equal(p.grad[1], torch.zeros_like(p.grad[1]))


def test_q_ensemble_members_start_different_and_orthogonal():
    from rlcourse.nets import QEnsemble

    critics = QEnsemble(4, (32, 32), members=2, act_size=1)
    w = critics.q[2].weight  # hidden layer, (members, 32, 32)
    assert not torch.allclose(w[0], w[1])
    torch.testing.assert_close(
        w[0].T @ w[0], 2.0 * torch.eye(32), atol=1e-4, rtol=0
    )  # gain sqrt(2)
    with pytest.raises(ValueError, match="exactly one of act_size"):
        QEnsemble(4, (8,), act_size=1, num_actions=2)


def test_q_ensemble_first_critics_only():
    from rlcourse.nets import QEnsemble

    critics = QEnsemble(3, (8,), members=2, act_size=1)
    obs, actions = torch.randn(5, 3), torch.randn(5, 1)
    both = critics(obs, actions)
    first = critics(obs, actions, first=1)
    assert first.shape == (1, 5)
    torch.testing.assert_close(first[0], both[0])


@pytest.mark.parametrize("shape", [(64, 64), (256, 4), (3, 128)])
def test_orthogonal_init_is_pytorchs_with_one_thread_and_keeps_the_callers_threads(shape):
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        expected = torch.nn.init.orthogonal_(
            torch.empty(shape), gain=2.0, generator=torch.Generator().manual_seed(7)
        )
        torch.set_num_threads(2)
        got = orthogonal_(torch.empty(shape), gain=2.0, generator=torch.Generator().manual_seed(7))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(got, expected)
    rows, cols = shape
    gram = got @ got.T if rows <= cols else got.T @ got  # gain^2 I on the smaller side
    assert torch.allclose(gram, 4.0 * torch.eye(min(shape)), atol=1e-4)


def test_in_place_relu_changes_no_value_or_gradient():
    """The ReLUs after hidden layers work in place; with copies that do not, every output and every
    gradient (of the weights, and of the input as in the actor step through a frozen critic) is
    bit for bit the same."""
    import copy

    from rlcourse.nets import QEnsemble

    torch.manual_seed(0)
    nets = [
        mlp([5, 32, 16, 3], torch.nn.ReLU),
        QEnsemble(3, (32, 16), members=2, act_size=1),
        QEnsemble(3, (32, 16), members=1, act_size=1),
    ]
    for net in nets:
        relus = [m for m in net.modules() if isinstance(m, torch.nn.ReLU)]
        assert relus and all(m.inplace for m in relus)
        plain = copy.deepcopy(net)
        for m in plain.modules():
            if isinstance(m, torch.nn.ReLU):
                m.inplace = False
        for first in (None, 1) if isinstance(net, QEnsemble) else (None,):
            results = []
            for model in (net, plain):
                x = torch.randn(
                    64,
                    5 if not isinstance(net, QEnsemble) else 3,
                    generator=torch.Generator().manual_seed(1),
                )
                x.requires_grad_(True)
                if isinstance(net, QEnsemble):
                    a = torch.linspace(-1, 1, 64).unsqueeze(1).requires_grad_(True)
                    out = model(x, a, first=first)
                    inputs = [x, a]
                else:
                    out = model(x)
                    inputs = [x]
                model.zero_grad(set_to_none=True)
                (out.square().mean() + out.sin().sum()).backward()
                results.append(
                    [out.detach(), *(i.grad for i in inputs)]
                    + [p.grad for p in model.parameters() if p.grad is not None]
                )
            assert len(results[0]) == len(results[1]) > 2
            for got, expected in zip(*results, strict=True):
                assert torch.equal(got, expected)
