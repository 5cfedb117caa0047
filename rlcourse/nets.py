"""Networks: an MLP, the policy heads pi_theta(a|s) and the state-value critic v_w(s).

A policy is an ``nn.Module`` whose ``forward(obs)`` returns a ``torch.distributions`` object, so an
algorithm writes ``pi = policy(obs); pi.log_prob(actions); pi.entropy()`` just as the slides write
``log pi_theta(A_t | S_t)``. ``log_prob`` and ``entropy`` of the Gaussian head sum over action
dimensions (an ``Independent`` normal), so both heads give one number per state.
``policy.greedy(obs)`` returns the most likely actions, and ``policy.numpy_sampler(rng)`` a fast
NumPy function that draws actions in the rollout loop. Off-policy pieces: ``QNetwork`` (DQN),
``DeterministicPolicy`` (DDPG, TD3), ``TanhGaussianPolicy`` (SAC), ``QEnsemble`` (their critics)
and ``polyak_update``.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Categorical, Distribution, Independent, Normal

__all__ = [
    "mlp",
    "orthogonal_",
    "NumpyMLP",
    "polyak_update",
    "QNetwork",
    "QEnsemble",
    "EnsembleLinear",
    "CategoricalPolicy",
    "SoftmaxCategorical",
    "GaussianPolicy",
    "ValueNet",
    "make_policy",
    "obs_dim",
]


@torch.no_grad()
def orthogonal_(
    weight: torch.Tensor, gain: float = 1.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``nn.init.orthogonal_`` computed with one torch thread, whatever the caller's setting.

    Its QR decomposition rounds differently with more threads (with two, on a 2-core CPU, every
    layer of 64 x 64 or more differed in its last digits), and a training run magnifies that: a
    script that kept PyTorch's default thread count got another run from the same seed than the
    notebooks, tests and benchmarks, which set one. With one thread here, a seed gives one network.
    The thread count is the process's: another Python thread computing meanwhile also runs on one.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return nn.init.orthogonal_(weight, gain=gain, generator=generator)
    finally:
        torch.set_num_threads(previous)


def mlp(
    sizes: Sequence[int], activation: type[nn.Module] = nn.Tanh, out_gain: float = 1.0
) -> nn.Sequential:
    """A fully connected network ``sizes[0] -> ... -> sizes[-1]``, no activation on the output.

    Orthogonal initialisation (gain sqrt(2) for hidden layers, ``out_gain`` for the last one) and
    zero biases, as in the A2C/PPO implementations the benchmarks compare with.
    """
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        linear = nn.Linear(sizes[i], sizes[i + 1])
        last = i == len(sizes) - 2
        orthogonal_(linear.weight, gain=out_gain if last else np.sqrt(2))
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if not last:
            layers.append(hidden_activation(activation))
    return nn.Sequential(*layers)


def hidden_activation(activation: type[nn.Module]) -> nn.Module:
    """The activation after a hidden linear layer; a ReLU works in place.

    The linear layer's backward does not need its output, and ReLU's needs only its own result, so
    overwriting the one with the other changes no value or gradient (``tests/test_nets.py``),
    and each step allocates and fills fewer large tensors: at equal settings TD3's and SAC's steps
    took 0.92 and 0.87 of their time before
    (``benchmarks/results/before_after_inplace_relu.json``). One consequence for whoever runs an
    ``mlp``'s layers one by one: a hidden layer's output is overwritten by the ReLU after it.
    """
    return nn.ReLU(inplace=True) if activation is nn.ReLU else activation()


class NumpyMLP:
    """A NumPy copy of an :func:`mlp`'s current weights, for acting in the rollout loop.

    A rollout needs one forward pass per environment step for a handful of states. In torch each
    operation has a fixed cost of a few microseconds, more than the arithmetic here, and the policy
    would take longer than the environment itself; NumPy runs the same small pass about 3x faster.
    The weights do not change during a rollout, so a copy made at its start is exact. The torch
    module stays the one definition of the network (tests check that both give the same outputs).
    """

    ACTIVATIONS = {nn.Tanh: np.tanh, nn.ReLU: lambda x: np.maximum(x, 0.0)}

    def __init__(self, net: nn.Sequential):
        self.layers = []
        for module in net:
            if isinstance(module, nn.Linear):
                weight = module.weight.detach().cpu().numpy().T.copy()
                self.layers.append((weight, module.bias.detach().cpu().numpy().copy()))
            else:
                self.layers.append(self.ACTIVATIONS[type(module)])
        self.out_size = self.layers[-1][1].shape[0]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        for layer in self.layers:
            x = x @ layer[0] + layer[1] if isinstance(layer, tuple) else layer(x)
        return x


def obs_dim(space: gym.Space) -> int:
    """Size of a flat observation vector; other observation spaces get a clear error."""
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise ValueError(
            f"observation space {space} is not supported: rlcourse's networks take flat vectors "
            "(a gymnasium Box of shape (n,)); wrap the environment with FlattenObservation first"
        )
    return int(space.shape[0])


class SoftmaxCategorical(Categorical):
    """``Categorical(logits=logits)`` built for the training loop: the same distribution, fewer
    operations.

    PyTorch's normalises the logits as ``logits - logits.logsumexp(-1)``, several operations
    forward and back, and its ``log_prob`` broadcasts the actions against the table first. Here
    one ``log_softmax`` normalises, and ``log_prob`` of one action per state is one ``gather``
    (on small networks each operation costs more than its arithmetic). Everything else
    (``probs``, ``entropy``, ``sample``, ``kl_divergence``) is ``Categorical``'s own.
    """

    def __init__(self, logits: torch.Tensor):
        if logits.dim() < 1:
            raise ValueError("logits must have at least one dimension (the actions)")
        self.logits = logits.log_softmax(dim=-1)
        self._param = self.logits
        self._num_events = logits.shape[-1]
        Distribution.__init__(self, logits.shape[:-1], validate_args=False)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if value.shape != self.batch_shape:  # other shapes broadcast as Categorical's do
            return super().log_prob(value)
        return self.logits.gather(-1, value.long().unsqueeze(-1)).squeeze(-1)

    def expand(self, batch_shape, _instance=None):
        new = _instance if _instance is not None else SoftmaxCategorical.__new__(type(self))
        return super().expand(batch_shape, _instance=new)


class CategoricalPolicy(nn.Module):
    """``pi_theta(.|s) = softmax(logits_theta(s))`` over a finite action set."""

    def __init__(self, obs_size: int, n_actions: int, hidden: Sequence[int] = (64, 64)):
        super().__init__()
        # A small last layer makes the first policy close to uniform.
        self.logits = mlp([obs_size, *hidden, n_actions], out_gain=0.01)

    def forward(self, obs: torch.Tensor) -> Distribution:
        return SoftmaxCategorical(self.logits(obs))

    def numpy_sampler(self, rng: np.random.Generator):
        """``obs -> actions``: draws from ``self(obs)`` in NumPy, with this moment's weights.

        Uses the Gumbel-max trick, ``argmax_a logits_a - log E_a`` with ``E_a ~ Exp(1)``, which
        samples exactly from ``softmax(logits)``. See :class:`NumpyMLP` for why rollouts
        act in NumPy.
        """
        logits = NumpyMLP(self.logits)
        return lambda obs: (
            logits(obs) - np.log(rng.standard_exponential((len(obs), logits.out_size)))
        ).argmax(-1)

    def greedy(self, obs: torch.Tensor) -> torch.Tensor:
        return self.logits(obs).argmax(dim=-1)


class GaussianPolicy(nn.Module):
    """``pi_theta(.|s) = N(mu_theta(s), diag(sigma^2))`` with a state-independent ``log sigma``."""

    def __init__(
        self,
        obs_size: int,
        act_size: int,
        hidden: Sequence[int] = (64, 64),
        log_std_init: float = 0.0,
    ):
        super().__init__()
        self.mean = mlp([obs_size, *hidden, act_size], out_gain=0.01)
        self.log_std = nn.Parameter(torch.full((act_size,), float(log_std_init)))

    def forward(self, obs: torch.Tensor) -> Distribution:
        normal = Normal(self.mean(obs), self.log_std.exp(), validate_args=False)
        return Independent(normal, 1, validate_args=False)

    def numpy_sampler(self, rng: np.random.Generator):
        """``obs -> actions``: draws ``mu(s) + sigma * eps``, ``eps ~ N(0, I)``, in NumPy (see
        :class:`NumpyMLP`)."""
        mean, std = NumpyMLP(self.mean), self.log_std.detach().exp().cpu().numpy()
        return lambda obs: (
            mean(obs) + std * rng.standard_normal((len(obs), len(std)), dtype=np.float32)
        )

    def greedy(self, obs: torch.Tensor) -> torch.Tensor:
        return self.mean(obs)


class QNetwork(nn.Module):
    """``q_w(s, .)``: one action value per action of a finite action set (DQN)."""

    def __init__(self, obs_size: int, n_actions: int, hidden: Sequence[int] = (64, 64)):
        super().__init__()
        # ReLU, as in Mnih et al.: with tanh the values of neighbouring actions stay too close.
        self.q = mlp([obs_size, *hidden, n_actions], activation=nn.ReLU, out_gain=1.0)
        self.n_actions = n_actions

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.q(obs)

    def greedy(self, obs: torch.Tensor) -> torch.Tensor:
        return self.q(obs).argmax(dim=-1)

    def numpy_sampler(self, rng: np.random.Generator):
        """``(obs, epsilon) -> actions``: epsilon-greedy in NumPy with this moment's weights (see
        :class:`NumpyMLP`)."""
        q = NumpyMLP(self.q)

        def act(obs: np.ndarray, epsilon: float = 0.0) -> np.ndarray:
            explore = rng.random(len(obs)) < epsilon
            random_actions = rng.integers(self.n_actions, size=len(obs))
            if explore.all():  # no greedy action needed (early on, most steps): skip the network
                return random_actions
            return np.where(explore, random_actions, q(obs).argmax(-1))

        return act


class DeterministicPolicy(nn.Module):
    """``mu_theta(s)``: a deterministic action inside the Box ``[low, high]`` (DDPG, TD3).

    ``mu(s) = center + scale * tanh(f_theta(s))`` keeps every action in bounds, so exploration noise
    and target smoothing are added to a valid action and clipped back.
    """

    def __init__(
        self, obs_size: int, low: np.ndarray, high: np.ndarray, hidden: Sequence[int] = (256, 256)
    ):
        super().__init__()
        self.net = mlp([obs_size, *hidden, len(low)], activation=nn.ReLU)
        self.register_buffer("center", torch.as_tensor((high + low) / 2, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor((high - low) / 2, dtype=torch.float32))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.center + self.scale * torch.tanh(self.net(obs))

    def greedy(self, obs: torch.Tensor) -> torch.Tensor:
        return self(obs)

    def numpy_sampler(self, rng: np.random.Generator, noise: float = 0.0):
        """``obs -> mu(s) + eps``, ``eps ~ N(0, (noise * scale)^2)``, clipped to the bounds, in
        NumPy."""
        net = NumpyMLP(self.net)
        center, scale = self.center.cpu().numpy(), self.scale.cpu().numpy()

        def act(obs: np.ndarray) -> np.ndarray:
            mu = center + scale * np.tanh(net(obs))
            eps = noise * scale * rng.standard_normal(mu.shape, dtype=np.float32)
            return np.clip(mu + eps, center - scale, center + scale)

        return act


class TanhGaussianPolicy(nn.Module):
    """SAC's actor: ``a = center + scale * tanh(u)``, ``u ~ N(mu_theta(s), sigma_theta(s)^2)``.

    The squashing keeps actions in the Box; its log-density is the Gaussian's minus the log of the
    Jacobian, ``log pi(a|s) = log N(u) - sum_i log(scale_i (1 - tanh(u_i)^2))`` (Haarnoja et al.
    2018, appendix C), computed in the stable form ``log(1 - tanh(u)^2) = 2 (log 2 - u -
    softplus(-2u))``. It is the density of the action the environment gets, so it includes ``log
    scale`` (as CleanRL; Stable-Baselines3 measures it in [-1, 1]); an entropy target shifts by
    ``sum_i log scale_i``.
    """

    LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0

    def __init__(
        self, obs_size: int, low: np.ndarray, high: np.ndarray, hidden: Sequence[int] = (256, 256)
    ):
        super().__init__()
        self.act_size = len(low)
        # mean and log std
        self.net = mlp([obs_size, *hidden, 2 * self.act_size], activation=nn.ReLU)
        self.register_buffer("center", torch.as_tensor((high + low) / 2, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor((high - low) / 2, dtype=torch.float32))

    def _mean_log_std(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.net(obs).split(self.act_size, dim=-1)
        return mean, log_std.clamp(self.LOG_STD_MIN, self.LOG_STD_MAX)

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised draw ``a`` (differentiable in theta) and its ``log pi(a|s)``."""
        mean, log_std = self._mean_log_std(obs)
        eps = torch.randn_like(mean)
        u = mean + log_std.exp() * eps
        # log N(u; mean, std^2) with (u - mean) / std = eps: no division, no distribution object
        log_prob = -0.5 * eps.square() - log_std - 0.5 * np.log(2 * np.pi)
        log_jacobian = torch.log(self.scale) + 2 * (np.log(2.0) - u - F.softplus(-2 * u))
        return self.center + self.scale * torch.tanh(u), (log_prob - log_jacobian).sum(-1)

    def greedy(self, obs: torch.Tensor) -> torch.Tensor:
        return self.center + self.scale * torch.tanh(self._mean_log_std(obs)[0])

    def numpy_sampler(self, rng: np.random.Generator):
        """``obs -> a ~ pi(.|s)`` in NumPy (see :class:`NumpyMLP`)."""
        net = NumpyMLP(self.net)
        center, scale, k = self.center.cpu().numpy(), self.scale.cpu().numpy(), self.act_size

        def act(obs: np.ndarray) -> np.ndarray:
            out = net(obs)
            mean, log_std = out[:, :k], np.clip(out[:, k:], self.LOG_STD_MIN, self.LOG_STD_MAX)
            u = mean + np.exp(log_std) * rng.standard_normal(mean.shape, dtype=np.float32)
            return center + scale * np.tanh(u)

        return act


class EnsembleLinear(nn.Module):
    """``m`` independent linear layers applied in one batched matrix product (or, when each has one
    output, in one multiply and one sum).

    Input ``(m, batch, in)`` or ``(batch, in)`` (the same input for every member), output
    ``(m, batch, out)``; member ``i`` computes ``x_i W_i + b_i``. Each ``W_i`` starts as
    :func:`mlp`'s layers do (orthogonal, zero bias), so an ensemble of ``m`` is ``m`` separate MLPs
    in distribution, at the cost of one MLP's worth of operator calls.
    """

    def __init__(self, members: int, in_size: int, out_size: int, gain: float):
        super().__init__()
        weight = torch.empty(members, in_size, out_size)
        for w in weight:
            orthogonal_(w.T, gain=gain)
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.zeros(members, 1, out_size))

    def forward(self, x: torch.Tensor, first: int | None = None) -> torch.Tensor:
        """All members, or only the ``first`` ones (their weights are views, nothing is copied)."""
        weight, bias = (
            (self.weight, self.bias) if first is None else (self.weight[:first], self.bias[:first])
        )
        if weight.shape[-1] == 1 and weight.shape[0] > 1:
            # One output from each of several members (twin critics' last layer): a multiply and
            # a sum. MKL's batched product of one column takes 3.5-4.7 times as long there, where
            # for a single member it is the faster (benchmarks/results/last_layer.md).
            return (x * weight.mT).sum(-1, keepdim=True) + bias
        if x.dim() == 2:
            x = x.expand(weight.shape[0], *x.shape)
        return torch.baddbmm(bias, x, weight)


class QEnsemble(nn.Module):
    """``m`` critics ``q_w^1 .. q_w^m`` with their own weights, all evaluated in one batched call.

    TD3 and SAC keep two critics (twin), DDPG one. ``critics(obs, actions)`` returns the values of
    every critic, shape ``(m, batch)``, so ``for q in critics(obs, actions)`` walks the critics and
    ``critics(obs, actions).min(0).values`` is the slides' ``min_i q_w^i``. Continuous actions
    (``act_size``): ``q_w^i(s, a)`` of the concatenated state and action. Finite actions
    (``num_actions``, discrete SAC): ``q_w^i(s, .)``, shape ``(m, batch, num_actions)``.
    """

    def __init__(
        self,
        obs_size: int,
        hidden: Sequence[int] = (256, 256),
        members: int = 2,
        act_size: int | None = None,
        num_actions: int | None = None,
    ):
        super().__init__()
        if (act_size is None) == (num_actions is None):
            raise ValueError(
                "QEnsemble needs exactly one of act_size (continuous) or num_actions (finite)"
            )
        self.members, self.continuous = members, act_size is not None
        sizes = [obs_size + (act_size or 0), *hidden, 1 if self.continuous else num_actions]
        layers: list[nn.Module] = []
        for i in range(len(sizes) - 1):
            last = i == len(sizes) - 2
            layers.append(
                EnsembleLinear(members, sizes[i], sizes[i + 1], gain=1.0 if last else np.sqrt(2))
            )
            if not last:
                layers.append(hidden_activation(nn.ReLU))
        self.q = nn.Sequential(*layers)

    def __len__(self) -> int:
        return self.members

    def forward(
        self, obs: torch.Tensor, actions: torch.Tensor | None = None, first: int | None = None
    ) -> torch.Tensor:
        """The values of every critic, or of the ``first`` ones only (DDPG's and TD3's actor follows
        ``q_w^1`` alone: ``first=1`` spares the other critics' work)."""
        x = obs if not self.continuous else torch.cat([obs, actions], dim=-1)
        for layer in self.q:
            x = layer(x, first) if isinstance(layer, EnsembleLinear) else layer(x)
        return x if not self.continuous else x.squeeze(-1)


@torch.no_grad()
def polyak_update(target: nn.Module, online: nn.Module, rho: float) -> None:
    """``target <- rho * target + (1 - rho) * online``, parameter by parameter (the slides' rho).

    ``rho = 0`` copies the online network (DQN's periodic hard update); ``rho`` close to 1 makes the
    target a slowly moving average (DDPG, TD3, SAC). One fused call for all parameters.
    """
    if not 0.0 <= float(rho) <= 1.0:
        raise ValueError(f"rho={rho!r} is not allowed: rho must be in [0, 1]")
    torch._foreach_lerp_(list(target.parameters()), list(online.parameters()), 1.0 - float(rho))


class ValueNet(nn.Module):
    """The state-value critic ``v_w(s)``; returns shape ``obs.shape[:-1]``."""

    def __init__(self, obs_size: int, hidden: Sequence[int] = (64, 64)):
        super().__init__()
        self.v = mlp([obs_size, *hidden, 1], out_gain=1.0)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.v(obs).squeeze(-1)


def make_policy(
    observation_space: gym.Space,
    action_space: gym.Space,
    hidden: Sequence[int],
    algo: str,
    log_std_init: float = 0.0,
) -> nn.Module:
    """The policy head that fits the action space: categorical for Discrete, Gaussian for Box."""
    size = obs_dim(observation_space)
    if isinstance(action_space, gym.spaces.Discrete):
        return CategoricalPolicy(size, int(action_space.n), hidden)
    if isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
        return GaussianPolicy(size, int(action_space.shape[0]), hidden, log_std_init)
    raise ValueError(
        f"{algo} cannot handle the action space {action_space}: "
        "allowed are Discrete(n) and a flat Box(k,)"
    )
