"""TRPO: trust region policy optimisation, by conjugate gradient and a backtracking line search.

Schulman, Levine, Moritz, Jordan and Abbeel (2015), "Trust region policy optimization". Slides:
"Towards TRPO", "Trust Region Policy Optimization", "TRPO Algorithm" (the box this loop follows) and
"Multi-Epoch TRPO" (``epochs > 1``).

Each iteration maximises the surrogate ``L(theta') = mean_t omega_t A_t``, with
``omega_t = pi_theta'(A_t|S_t) / pi_theta(A_t|S_t)``, subject to
``mean_t KL(pi_theta'(.|S_t) || pi_theta(.|S_t)) <= delta``:

1. the gradient ``g`` of the surrogate (at ``theta' = theta`` it is the policy gradient
   ``mean_t grad log pi_theta(A_t|S_t) A_t``; the slide writes the sum, the mean only rescales
   ``g``, and the step below does not depend on the scale of ``g``);
2. the natural gradient ``x = F^-1 g`` by conjugate gradient, where ``F``, the Fisher matrix, is the
   Hessian of the mean KL and enters only through products ``F v`` (two backward passes, never a
   matrix);
3. the full step ``sqrt(2 delta / x^T F x) x``, the largest step along ``x`` whose quadratic
   model of the KL equals ``delta``;
4. a line search over ``alpha = 1, b, b^2, ...`` that keeps the largest step that improves the
   sample surrogate and whose sample KL stays within ``delta`` (no step if none does);
5. the critic regression on ``1/2 (v_w(S_t) - y_t)^2`` by gradient descent.

With ``epochs > 1`` steps 1-4 repeat on the same rollout, each from where the last one ended, the
constraint always measured against the policy that collected the data. Every epoch after the first
is off-policy (the summary table's asterisk): only the ratio ``omega`` accounts for it. An epoch
whose line search finds no step ends the iteration's epochs: the policy has not moved, so the next
epoch would compute the same step and reject it again. (Each epoch sizes its full step as if all of
``delta`` were left, so later epochs are often shortened or rejected.)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.distributions import Distribution, kl_divergence
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from rlcourse.algos.common import (
    check_common_config,
    gae_batch,
    loss_scale,
    make_actor_critic,
    minibatches,
)
from rlcourse.budgets import budget
from rlcourse.config import (
    check_bool,
    check_choice,
    check_field_types,
    check_number,
    check_positive,
    check_unit_interval,
    param,
    training_config,
)
from rlcourse.diagnostics import explained_variance
from rlcourse.envs import make_vec_env
from rlcourse.objectives import critic_loss, importance_weights
from rlcourse.optim import Adam
from rlcourse.rollouts import EpisodeTracker, collect_rollout
from rlcourse.saving import RunKeeper
from rlcourse.training import (
    Agent,
    History,
    check_finite,
    evaluate_on_schedule,
    progress_bar,
    seed_everything,
    torch_threads,
)

__all__ = [
    "Config",
    "PRESETS",
    "train",
    "make_agent",
    "conjugate_gradient",
    "fisher_vector_product",
    "max_step",
    "line_search",
    "surrogate_and_kl",
]

NAME = "trpo"
SUMMARY = (
    "trust region policy optimisation: natural gradient by conjugate gradient, KL line search, GAE"
)

# The slides' summary table (rlcourse.catalog builds it from these and from what the code accepts).
CLASS = "trust-region actor-critic"
ON_POLICY = True
REFERENCE = 'Schulman et al. (2015), "Trust region policy optimization"'


@dataclass
class Config:
    """TRPO hyperparameters; the slides' symbols in brackets."""

    delta: float = param(
        0.01, "trust region: the largest mean KL between old and new policy [delta]"
    )
    cg_iters: int = param(10, "conjugate gradient iterations for x = F^-1 g")
    cg_damping: float = param(
        0.1, "F + damping * I in the conjugate gradient (keeps it well conditioned)"
    )
    backtrack_ratio: float = param(0.8, "line search: alpha = 1, b, b^2, ... [b]")
    max_backtracks: int = param(
        10, "line search: the most step sizes tried before giving up the step"
    )
    epochs: int = param(
        1, "policy updates per rollout (1: the slide's TRPO; more: multi-epoch, off-policy)"
    )
    gamma: float = param(0.99, "discount factor [gamma], in [0, 1]")
    gae_lambda: float = param(0.95, "GAE's [lambda], in [0, 1]")
    num_envs: int = param(8, "environments stepped in parallel")
    rollout_steps: int = param(
        256, "steps per environment in one rollout; T = num_envs * rollout_steps"
    )
    total_steps: int = param(200_000, "environment steps for the whole run")
    critic_lr: float = param(1e-3, "Adam learning rate of the critic [w]")
    critic_epochs: int = param(10, "passes of critic regression over each rollout")
    critic_minibatches: int = param(8, "minibatches per critic pass")
    hidden: tuple = param((64, 64), "hidden layer sizes of actor and critic")
    normalize_advantages: bool = param(
        True, "standardise the advantages of each rollout (not on the slide)"
    )
    reduction: str = param(
        "mean", "'mean' of g and L_critic over the batch, or 'sum' as on the slide"
    )
    log_std_init: float = param(0.0, "initial log standard deviation of a Gaussian policy")
    seed: int = param(0, "random seed")
    eval_every: int = param(0, "env steps between greedy evaluations during training (0: none)")
    eval_episodes: int = param(10, "episodes per greedy evaluation")
    device: str = param("cpu", "'cpu' or 'cuda'")
    threads: int = param(1, "torch threads during training (1 is fastest for small networks)")

    def __post_init__(self):
        check_field_types(self)  # first: the checks below compare and multiply the values
        check_positive("delta", self.delta)
        check_positive("cg_damping", self.cg_damping, zero_ok=True)
        if not 0.0 < self.backtrack_ratio < 1.0:
            raise ValueError(
                f"backtrack_ratio={self.backtrack_ratio!r} is not allowed: it must be in (0, 1)"
            )
        for name in (
            "cg_iters",
            "max_backtracks",
            "epochs",
            "rollout_steps",
            "critic_epochs",
            "critic_minibatches",
        ):
            check_positive(name, getattr(self, name), integer=True)
        check_unit_interval("gae_lambda", self.gae_lambda)
        check_positive("critic_lr", self.critic_lr)
        check_bool("normalize_advantages", self.normalize_advantages)
        check_choice("reduction", self.reduction, ("mean", "sum"))
        check_number("log_std_init", self.log_std_init)
        check_common_config(self)


# Known to solve the environment: `python -m benchmarks presets --algo trpo` trains seeds 0, 1, 2
# and prints the env steps and seconds at which each reaches the threshold.
PRESETS: dict[str, Config] = {"CartPole-v1": Config(total_steps=budget("preset/trpo/CartPole-v1"))}

SLIDE = Config(normalize_advantages=False, reduction="sum", epochs=1)
"""The slide box "TRPO Algorithm" literally: one policy update per rollout, ``g`` and
``L_critic`` summed over the rollout, no advantage normalisation (``replace(SLIDE, epochs=k)`` is
"Multi-Epoch TRPO"). The default standardises the advantages, which does not change the step's
direction much but makes the surrogate's improvement comparable across iterations.
"""


def make_agent(config: Config, env_id: str) -> Agent:
    return make_actor_critic(NAME, config, env_id, critic=True)


def conjugate_gradient(
    matrix_vector: Callable[[Tensor], Tensor], b: Tensor, iters: int, tol: float = 1e-10
) -> Tensor:
    """Solve ``M x = b`` for a symmetric positive definite ``M`` known only through ``v -> M v``.

    At most ``iters`` iterations (exact after ``len(b)`` in exact arithmetic); stops early once the
    squared residual falls below ``tol``. Hestenes and Stiefel (1952); Nocedal and Wright, algorithm
    5.2.
    """
    x = torch.zeros_like(b)
    r = b.clone()  # residual b - M x
    p = r.clone()  # search direction
    rr = r @ r
    for _ in range(iters):
        if rr < tol:
            break
        mp = matrix_vector(p)
        step = rr / (p @ mp)
        x += step * p
        r -= step * mp
        rr_new = r @ r
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def max_step(x: Tensor, fvp: Callable[[Tensor], Tensor], delta: float) -> Tensor:
    """The slide's full step ``sqrt(2 delta / (x^T F x)) x`` along the natural gradient ``x``.

    It is the largest step along ``x`` whose quadratic model of the KL, ``1/2 s^T F s``, equals
    ``delta`` (slide "TRPO algorithm"; Schulman et al. 2015, appendix C). ``F`` is known through
    ``fvp``, with damping positive definite, so ``x^T F x > 0`` for ``x != 0``.
    """
    x_fx = float(x @ fvp(x))
    return math.sqrt(2 * delta / max(x_fx, 1e-12)) * x


def fisher_vector_product(
    policy: nn.Module, states: Tensor, v: Tensor, damping: float = 0.0
) -> Tensor:
    """``(F + damping I) v`` with ``F`` the Hessian of
    ``mean_t KL(pi_theta(.|S_t) || pi_theta'(.|S_t))`` in ``theta'`` at ``theta' = theta``: the
    Fisher information of the policy, averaged over the states.

    Two backward passes: the gradient of the KL (kept differentiable), its dot product with ``v``,
    and the gradient of that. ``F`` itself is never formed.
    """
    params = [p for p in policy.parameters() if p.requires_grad]
    with torch.no_grad():
        fixed = policy(states)  # pi_theta as a constant: its parameters carry no graph
    kl = kl_divergence(fixed, policy(states)).mean()
    grads = torch.autograd.grad(kl, params, create_graph=True)
    grad_v = parameters_to_vector(grads) @ v
    hvp = torch.autograd.grad(grad_v, params)
    return parameters_to_vector(hvp) + damping * v


def line_search(
    evaluate_step: Callable[[float], tuple[float, float]],
    delta: float,
    backtrack_ratio: float,
    max_backtracks: int,
) -> float:
    """The largest ``alpha`` in ``1, b, b^2, ...`` (at most ``max_backtracks`` tries) whose step
    improves the sample surrogate (improvement > 0) and keeps the sample KL within ``delta``; 0.0 if
    none does.

    ``evaluate_step(alpha)`` applies the step scaled by ``alpha`` and returns ``(improvement, kl)``.
    """
    alpha = 1.0
    for _ in range(max_backtracks):
        improvement, kl = evaluate_step(alpha)
        if improvement > 0 and kl <= delta:
            return alpha
        alpha *= backtrack_ratio
    return 0.0


def surrogate_and_kl(
    policy: nn.Module,
    old_pi: Distribution,
    states: Tensor,
    actions: Tensor,
    old_log_prob: Tensor,
    advantages: Tensor,
) -> tuple[Tensor, Tensor]:
    """The sample surrogate ``L(theta') = mean_t omega_t A_t`` (differentiable in ``policy``'s
    parameters) and the sample mean of ``KL(pi_theta'(.|S_t) || pi_theta(.|S_t))``, the constraint
    of the slide; ``old_pi`` is ``pi_theta(.|S_t)``, computed once per iteration."""
    pi = policy(states)
    ratio = importance_weights(pi.log_prob(actions), old_log_prob)
    return (ratio * advantages).mean(), kl_divergence(pi, old_pi).mean()


@torch.no_grad()
def try_step(
    params: list[Tensor],
    theta: Tensor,
    full_step: Tensor,
    objective: Callable,
    before: float,
    alpha: float,
) -> tuple[float, float]:
    """Set the actor's parameters to ``theta + alpha * full_step``; return (surrogate improvement,
    KL)."""
    vector_to_parameters(theta + alpha * full_step, params)
    surrogate, kl = objective()
    return float(surrogate) - before, float(kl)


def train(
    env_id: str = "CartPole-v1",
    config: Config | None = None,
    progress: bool = True,
    *,
    out: str | Path | None = None,
    save_every: float = 60.0,
    resume: bool = False,
    **overrides,
) -> tuple[Agent, History]:
    """Train TRPO on ``env_id``; return the agent and its history (``out``, ``save_every``,
    ``resume``: see :func:`rlcourse.algos.a2c.train`)."""
    config = training_config(Config, PRESETS, env_id, config, overrides)
    seed_everything(config.seed)
    rng = np.random.default_rng(config.seed)
    envs = make_vec_env(env_id, config.num_envs)
    obs, _ = envs.reset(seed=config.seed)

    # Initialize the actor parameters theta and the critic parameters w
    agent = make_agent(config, env_id)
    policy, critic = agent.policy, agent.critic
    critic_opt = Adam(critic.parameters(), lr=config.critic_lr)
    params = list(policy.parameters())
    history = History()
    tracker = EpisodeTracker(config.num_envs, history)
    batch_size = config.num_envs * config.rollout_steps
    iterations = max(1, config.total_steps // batch_size)
    bar = progress_bar(iterations * batch_size, progress, "TRPO")
    stateful = dict(critic_opt=critic_opt, envs=envs, rng=rng, tracker=tracker)
    keeper = RunKeeper(agent, history, stateful, out, save_every, resume)
    with torch_threads(config.threads), closing(envs), bar, keeper:
        start = keeper.start(iteration=0, obs=obs)
        obs = start["obs"]
        bar.update(tracker.env_steps)
        # loop for every iteration
        for iteration in range(start["iteration"] + 1, iterations + 1):
            # Collect a rollout of T total timesteps with pi_theta
            rollout, obs = collect_rollout(
                envs,
                policy,
                obs,
                tracker,
                rng,
                num_steps=config.rollout_steps,
                device=config.device,
            )
            # Compute value targets y_t and advantage estimates A_t (GAE) based on the current
            # critic v_w
            states, actions, advantages, targets = gae_batch(critic, rollout, config)
            # pi_theta, the policy that collected the data, fixed for the iteration
            with torch.no_grad():
                old_pi = policy(states)
                old_log_prob = old_pi.log_prob(actions)

            # L(theta') and the mean KL(pi_theta' || pi_theta) at the actor's current parameters
            # theta'
            n = loss_scale(config, advantages)
            objective = partial(
                surrogate_and_kl, policy, old_pi, states, actions, old_log_prob, advantages
            )
            accepted = []
            for _ in range(config.epochs):
                # Estimate the loss gradient g (at theta' = theta: the policy gradient)
                surrogate, _ = objective()
                check_finite(history, iteration, surrogate=surrogate)
                # (a mean unless reduction="sum"; the step below does not depend on g's scale)
                g = parameters_to_vector(torch.autograd.grad(n * surrogate, params))
                # Use conjugate gradient to estimate the natural gradient x = F(theta)^-1 g
                fvp = partial(fisher_vector_product, policy, states, damping=config.cg_damping)
                x = conjugate_gradient(fvp, g, config.cg_iters)
                # Update the actor: theta <- theta + alpha sqrt(2 delta / x^T F x) x, alpha by line
                # search
                full_step = max_step(x, fvp, config.delta)
                theta = parameters_to_vector(params).detach()
                evaluate_step = partial(
                    try_step, params, theta, full_step, objective, float(surrogate.detach())
                )
                alpha = line_search(
                    evaluate_step, config.delta, config.backtrack_ratio, config.max_backtracks
                )
                with torch.no_grad():
                    vector_to_parameters(theta + alpha * full_step, params)
                accepted.append(alpha)
                # The policy did not move: another epoch would find the same step and reject it
                if alpha == 0.0:
                    break

            # Minimize L_critic(w) = 1/2 sum (v_w(S_t) - y_t)^2 w.r.t. w via gradient descent
            for _ in range(config.critic_epochs):
                for mb_states, y in minibatches(config.critic_minibatches, states, targets):
                    value_loss = loss_scale(config, y) * critic_loss(critic(mb_states), y)
                    check_finite(history, iteration, critic_loss=value_loss)
                    critic_opt.zero_grad(set_to_none=True)
                    value_loss.backward()
                    critic_opt.step()

            with torch.no_grad():
                surrogate, kl = objective()
                pi = policy(states)
                values = critic(states)
            history.add_iteration(
                iteration,
                tracker.env_steps,
                surrogate=float(surrogate),
                kl=float(kl),
                step_fraction=float(np.mean(accepted)),
                accepted_epochs=float(sum(a > 0 for a in accepted)),
                entropy=float(pi.entropy().mean()),
                critic_loss=float(value_loss.detach()),
                explained_variance=explained_variance(values, targets),
                sps=tracker.env_steps / history.wall_time(),
            )
            bar.update(rollout.num_transitions)
            evaluate_on_schedule(agent, history, tracker.env_steps, config)
            if history.episodes:
                bar.set_postfix(mean_return=f"{history.mean_return():.1f}", refresh=False)
            keeper.tick(iteration=iteration, obs=obs)
        evaluate_on_schedule(agent, history, tracker.env_steps, config, final=True)
    return agent, history
