"""Diagnostics logged every iteration, with fixed names: the glossary :data:`GLOSSARY`.

Every algorithm writes one row per update into ``history.iterations``
(:meth:`rlcourse.history.History.add_iteration`). :data:`GLOSSARY` maps every column name that any
of the nine algorithms logs to ``(formula, meaning)``: the formula in the slides' symbols
(``pi_theta`` the policy before the update, ``pi_theta'`` after it, ``v_w`` and ``q_w`` the critics,
``y_t`` the critic's targets, ``A_t`` the advantage estimates, ``omega_t = pi_theta'(A_t|S_t) /
pi_theta(A_t|S_t)``), the meaning as what a healthy and an unhealthy value look like. A test trains
every algorithm and checks that the glossary names exactly the logged columns. The table below is
generated from it (``help(rlcourse.diagnostics)`` shows it).

Besides the logged columns: :func:`q_overestimation`, the critic's estimate ``q_w(s, mu(s))``
against the return its greedy policy really obtains from ``s`` (DDPG vs TD3, notebook 03).
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from rlcourse.config import check_unit_interval
from rlcourse.nets import QEnsemble
from rlcourse.objectives import kl_k3

__all__ = [
    "GLOSSARY",
    "Term",
    "explained_variance",
    "approx_kl",
    "clip_fraction",
    "advantage_stats",
    "Overestimation",
    "tail_length",
    "q_overestimation",
]


class Term(NamedTuple):
    """One glossary entry: the logged quantity in the slides' symbols, and how to read its value."""

    formula: str
    meaning: str


# Column name -> Term, in the order a run's table shows them: bookkeeping, losses, the policy's
# movement, the critic, then what only one algorithm logs (DQN, SAC, PPO-KL, TRPO, GRPO).
GLOSSARY: dict[str, Term] = {
    # -- bookkeeping (History.add_iteration writes the first three for every algorithm)
    "iteration": Term(
        "k = 1, 2, ...",
        "the update's number: the rollout's (REINFORCE, A2C, TRPO, PPO), the batch's (GRPO), the"
        " training phase's (DQN, one every train_every env steps) or the gradient steps so far"
        " (DDPG, TD3, SAC, which log every LOG_EVERY of them)",
    ),
    "env_step": Term(
        "environment steps so far, all environments together; GRPO: answers sampled (B G per"
        " iteration)",
        "the x-axis of every learning curve: compares runs at equal experience",
    ),
    "wall_time": Term(
        "seconds since training began",
        "the x-axis at equal compute; includes evaluations and logging",
    ),
    "sps": Term(
        "env_step / wall_time",
        "env steps per wall-clock second so far; it falls once updates start (off-policy) and"
        " with larger networks; a sudden drop points to the machine, not the algorithm",
    ),
    # -- losses
    "actor_loss": Term(
        "the loss the actor step minimised (the last minibatch's). REINFORCE, A2C: - mean_t log"
        ' pi_theta(A_t|S_t) A_t - c_ent H (slide "A2C"); PPO: - mean_t min(omega_t A_t,'
        ' clip(omega_t, 1 - eps, 1 + eps) A_t) (slide "PPO Algorithm with Clipping"), PPO-KL:'
        " - mean_t omega_t A_t + lambda_k KL; DDPG, TD3: - mean_j q_w(S_j, mu_theta(S_j)); SAC:"
        " mean_j [lambda log pi_theta(A'|S_j) - min_i q_w^i(S_j, A')], A' ~ pi_theta(.|S_j)."
        " Means over the samples; with reduction=\"sum\" (the SLIDE configs of REINFORCE, A2C,"
        " PPO, TRPO) the slides' sums, as many times larger as there are samples",
        "a loss with a moving target (the advantages or the critic change every update), so its"
        " level says little: policy-gradient losses hover around 0 with normalised advantages;"
        " DDPG's and TD3's fall as the critic's value of the actor rises (over-estimation"
        " included); nan for TD3 until its first delayed actor update; inf or a jump of orders"
        " of magnitude: divergence",
    ),
    "critic_loss": Term(
        "1/2 mean_t (v_w(S_t) - y_t)^2 (A2C, PPO, TRPO: slides' L_critic(w) as a mean, the sum"
        " with reduction=\"sum\"; PPO, TRPO: the last minibatch's; REINFORCE's baseline with"
        " y_t = G_t); DDPG, TD3, SAC: sum_i 1/2 mean_j (y_j - q_w^i(S_j, A_j))^2 over the critics",
        "how far the critic is from its targets; it scales with the returns squared, so compare"
        " within a run: high while the returns grow, then level; growing without bound = the"
        " critic diverges (off-policy: over-estimation feeding its own targets)",
    ),
    "q_loss": Term(
        "DQN: 1/2 mean_j (y_j - q_w(S_j, A_j))^2 (or its Huber version),"
        " y_j = R_{j+1} + gamma max_a q_{w-}(S_{j+1}, a), mean over the phase's gradient steps",
        "the TD error of the Q-network: small and level is healthy; growing with q_mean ="
        " over-estimation; spikes after each target-network update are normal",
    ),
    # -- the policy: how it moved, how random it is
    "entropy": Term(
        "mean_t H(pi_theta(.|S_t)) over the rollout (PPO, TRPO: of the updated policy); SAC:"
        " - mean_j log pi_theta(A'|S_j) over the minibatch (exact for discrete actions)",
        "how random the policy still is: a slow fall = a policy growing confident; a fast fall"
        " to about 0 early = premature collapse (add an entropy bonus, lower the step size); for a"
        " Gaussian (differential entropy) it can be negative",
    ),
    "approx_kl": Term(
        "mean_t [(r_t - 1) - log r_t], r_t = pi_theta'(A_t|S_t) / pi_theta(A_t|S_t),"
        " A_t ~ pi_theta: Schulman's k3 estimate of KL(pi_theta || pi_theta') after the update"
        " (approx_kl)",
        "how far one update moved the policy on the rollout's actions, >= 0: 0 = the policy did"
        " not move; small (hundredths for PPO) and steady is healthy; much larger = the update"
        " left its trust region (fewer epochs, a smaller step or clip range)",
    ),
    "kl": Term(
        "mean_t KL(pi_theta'(.|S_t) || pi_theta(.|S_t)), the updated policy pi_theta' first,"
        " exact between the distributions over the rollout's states (TRPO's constraint; PPO-KL's"
        " penalty, in the slide's direction, slide \"From TRPO to PPO\"; Schulman et al. 2017,"
        " eq. 8, penalise the reverse), so the reverse of approx_kl's",
        "TRPO: at most delta, the line search enforces it (near delta = full steps); PPO-KL: the"
        " quantity lambda_k steers towards kl_target",
    ),
    "clip_fraction": Term(
        "the share of samples with |omega_t - 1| > eps over every minibatch step of the update:"
        " PPO's of all the steps' samples together, GRPO's the mean over the steps of each one's"
        " share of real tokens, over the groups that move the policy only (a group whose answers"
        " all got the same reward has zero advantages and is skipped, see"
        " grpo.rows_that_move_the_policy)",
        "how often the clip was active: 0 = it never acted (steps small or eps large); a small"
        " share is typical; most samples clipped = the epochs push far past the trust region",
    ),
    "grad_norm": Term(
        "|| grad_theta L ||_2 of the actor's parameters before clipping to max_grad_norm (the last"
        " minibatch's)",
        "the raw step size: level or slowly falling is healthy; spikes = a bad batch (the clip"
        " caps them); steady growth = instability",
    ),
    # -- the advantages and the critic
    "adv_mean": Term(
        "mean_t A_t over the rollout, after normalisation if normalize_advantages (then 0)",
        "without normalisation: far from 0 = a biased critic (v_w too low if > 0)",
    ),
    "adv_std": Term(
        "std_t A_t over the rollout, after normalisation if normalize_advantages (then 1)",
        "without normalisation: the scale of the policy-gradient step; near 0 = no signal left",
    ),
    "explained_variance": Term(
        "1 - Var_t[y_t - v_w(S_t)] / Var_t[y_t] (explained_variance)",
        "1 = the critic predicts its targets, 0 = no better than a constant, < 0 = worse; it"
        " should climb towards 1 early in training; nan if the targets are constant",
    ),
    # -- DQN
    "q_mean": Term(
        "DQN: mean_j q_w(S_j, A_j) over the phase's minibatches",
        "should rise to the discounted return the policy earns (at most R_max / (1 - gamma));"
        " far above it = over-estimation",
    ),
    "epsilon": Term(
        "DQN: the exploration rate of epsilon-greedy at this step, linear from epsilon_start to"
        " epsilon_end",
        "a schedule, not learnt: check that it reaches epsilon_end before the returns are judged",
    ),
    "lr": Term(
        "DQN: Adam's learning rate at this phase (linear decay to 0 with lr_decay)",
        "a schedule, not learnt",
    ),
    # -- SAC
    "alpha": Term(
        "SAC: the temperature (the slides' lambda), tuned by gradient descent on"
        " log alpha (H - target_entropy) when autotune",
        "rises while the entropy is below its target, falls above it; settling is healthy; to"
        " about 0 = exploration switched off; growing without bound = an unreachable target",
    ),
    # -- PPO-KL
    "kl_coef": Term(
        "PPO-KL: lambda_k, the penalty's weight this iteration; halved if kl < kl_target / 1.5,"
        " doubled if kl > 1.5 kl_target (Schulman et al. 2017, section 4)",
        "settles where kl stays near kl_target; doubling every iteration = the policy keeps"
        " running away",
    ),
    # -- TRPO
    "surrogate": Term(
        "TRPO: L(theta') = mean_t omega_t A_t after the update (at theta' = theta it is"
        " mean_t A_t)",
        "above mean_t A_t (0 with normalised advantages) = the step improved the sample objective",
    ),
    "step_fraction": Term(
        "TRPO: the line search's alpha in theta <- theta + alpha sqrt(2 delta / x^T F x) x, mean"
        ' over the epochs (slide "TRPO Algorithm")',
        "1 = the full natural-gradient step was accepted (the quadratic model fits); often below"
        " 1 or 0 = delta too large or the Fisher matrix poorly estimated",
    ),
    "accepted_epochs": Term(
        "TRPO: the number of epochs whose step was accepted (alpha > 0)",
        "equal to epochs is healthy; fewer = the line search rejected a step and the update"
        " stopped there",
    ),
    # -- GRPO
    "accuracy": Term(
        "GRPO: the greedy policy's accuracy on held-out questions (the last measurement, taken"
        " every eval_every iterations)",
        "the task's score: should rise from the warm start's; falling = the policy unlearns",
    ),
    "mean_reward": Term(
        "GRPO: mean_i R^i over the batch's B G sampled answers (per-token rewards: their sum)",
        "the reward of the sampled training answers: rises with accuracy; the gap between them"
        " is the price of sampling instead of greedy decoding",
    ),
    "all_equal_groups": Term(
        "GRPO: the share of the B groups whose G answers all got the same reward",
        "such a group has A = 0 on every token and teaches nothing: near 1 early = the task is"
        " too hard (all wrong), near 1 late = solved (all right); in between is where GRPO learns",
    ),
    "answer_length": Term(
        "GRPO: mean_i |o_i|, the batch's mean answer length in tokens",
        "level at the right answers' length is healthy; drifting long or short = a length bias of"
        " the token averaging (compare loss_aggregation)",
    ),
    "kl_ref": Term(
        "GRPO: the mean over the batch's tokens o_t of k3 = exp(l_ref - l) - (l_ref - l) - 1,"
        " l = log pi_theta_old(o_t) as sampled, l_ref = log pi_ref(o_t) (kl_k3, aggregated per"
        " token): a per-token KL(pi_theta_old || pi_ref), each k3 having that KL of its next-token"
        " distributions as its expectation, since pi_theta_old drew the tokens",
        "how far the policy has drifted from the reference (the warm start): grows as it learns;"
        " with kl_coef = beta > 0 the penalty holds it back",
    ),
}


def _glossary_table(width: int = 100) -> str:
    """:data:`GLOSSARY` as text: each name, then its formula and its meaning, indented."""
    lines = ["", "Glossary", "--------", ""]
    for name, term in GLOSSARY.items():
        lines.append(f"``{name}``")
        for label, text in (("formula", term.formula), ("meaning", term.meaning)):
            lines += textwrap.wrap(
                f"{label}: {text}", width, initial_indent="    ", subsequent_indent="        "
            )
        lines.append("")
    return "\n".join(lines)


if __doc__ is not None:  # python -OO strips docstrings
    __doc__ += _glossary_table()


def explained_variance(predictions: Tensor, targets: Tensor) -> float:
    """``1 - Var[targets - predictions] / Var[targets]`` (nan if the targets are constant)."""
    var = targets.var(unbiased=False)
    if var == 0:
        return float("nan")
    return float(1.0 - (targets - predictions).var(unbiased=False) / var)


def approx_kl(log_prob_old: Tensor, log_prob_new: Tensor) -> float:
    """Estimate ``KL(pi_old || pi_new)`` from log-probabilities of actions sampled from ``pi_old``.

    The mean of Schulman's ``k3 = (r - 1) - log r``, ``r = pi_new / pi_old`` ("Approximating KL
    divergence", 2020): unbiased and never negative. It is :func:`rlcourse.objectives.kl_k3` with
    ``pi_old`` as the sampling policy and ``pi_new`` as the reference, so that both GRPO's penalty
    and this diagnostic use the one form that does not cancel for tiny ``log r``.
    """
    return float(kl_k3(log_prob=log_prob_old, ref_log_prob=log_prob_new).mean())


def clip_fraction(ratios: Tensor, clip_eps: float) -> float:
    """The share of importance weights ``omega_t`` with ``|omega_t - 1| > clip_eps``: the samples
    where the clip acted (``ratios``: those of every minibatch step of an update, together)."""
    return float(((ratios - 1).abs() > clip_eps).float().mean())


def advantage_stats(advantages: Tensor) -> dict[str, float]:
    """``adv_mean`` and ``adv_std`` of the glossary: mean and (population) std of the ``A_t``."""
    return {"adv_mean": float(advantages.mean()), "adv_std": float(advantages.std(unbiased=False))}


# --------------------------------------------------------------------------------------------------
# Q over-estimation of a deterministic actor-critic (DDPG, TD3; notebook 03)
# --------------------------------------------------------------------------------------------------


@dataclass
class Overestimation:
    """The critic's estimates against the returns the greedy policy really obtained, state by state.

    One entry per measured state ``S_t`` (episodes one after the other, ``t`` ascending in each):

    - ``estimates``: the critic's ``q_w(S_t, mu_theta(S_t))``;
    - ``returns``: the realised discounted return-to-go ``G_t = sum_{k>=0} gamma^k R_{t+k+1}`` of
      the greedy policy from ``S_t`` on (what ``q_w(S_t, mu_theta(S_t))`` should estimate);
    - ``steps``: ``t``, the time step within its episode; ``episodes``: the episode's number.

    ``gap = estimates - returns`` is positive where the critic over-estimates.
    """

    estimates: np.ndarray
    returns: np.ndarray
    steps: np.ndarray
    episodes: np.ndarray
    gamma: float

    @property
    def gap(self) -> np.ndarray:
        return self.estimates - self.returns

    @property
    def mean_gap(self) -> float:
        """The mean over measured states of ``q_w(S_t, mu(S_t)) - G_t`` (> 0: over-estimation)."""
        return float(self.gap.mean())

    @property
    def relative_gap(self) -> float:
        """``mean_gap / mean |G_t|``: the over-estimation as a fraction of the returns' size."""
        return self.mean_gap / float(np.abs(self.returns).mean())

    def by_step(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(t, mean estimate, mean return)`` over the episodes, for every measured time step."""
        t = np.unique(self.steps)
        est = np.array([self.estimates[self.steps == k].mean() for k in t])
        ret = np.array([self.returns[self.steps == k].mean() for k in t])
        return t, est, ret


def tail_length(gamma: float, tol: float = 1e-3) -> int:
    """The smallest ``n`` with ``gamma^n <= tol``.

    How far to follow a state so that its return-to-go is complete up to ``tol``.
    """
    check_unit_interval("gamma", gamma)
    if gamma == 0:
        return 1
    if gamma >= 1:
        raise ValueError(f"gamma={gamma!r} is not allowed: a finite tail needs gamma < 1")
    return int(math.ceil(math.log(tol) / math.log(gamma)))


@torch.no_grad()
def q_overestimation(
    agent,
    env_id: str | None = None,
    episodes: int = 5,
    gamma: float | None = None,
    seed: int = 20_000,
    steps: int | None = None,
    tail: int | None = None,
    critic: int = 0,
) -> Overestimation:
    """Measure how far the critic over-estimates the value of its own greedy policy.

    Fujimoto et al. (2018), "Addressing function approximation error in actor-critic methods".
    Runs the greedy policy ``mu_theta`` (no exploration noise) for ``episodes`` episodes from seeds
    ``seed, seed + 1, ...``. For each of the first ``steps`` states ``S_t`` of an episode it records
    the critic's estimate ``q_w(S_t, mu_theta(S_t))`` and the discounted return-to-go ``G_t`` that
    the policy actually collected from there (:func:`rlcourse.advantages.discounted_returns`).

    Time limits truncate, they do not terminate, so the critic (which bootstraps on truncation)
    estimates an *infinite-horizon* value. To compare like with like, the episode is not cut at
    ``steps`` but followed for ``tail`` more steps (the environment's time limit is raised to
    ``steps + tail``): every measured ``G_t`` then misses at most ``gamma^tail`` of its value. By
    default ``tail = tail_length(gamma)``, so that ``gamma^tail <= 1e-3`` (688 steps for
    gamma = 0.99). An episode that terminates earlier is exact.

    Args:
        agent: a trained :class:`rlcourse.training.Agent` whose ``critic`` is a
            ``q_w(obs, action)`` module or a :class:`rlcourse.nets.QEnsemble` of them (DDPG,
            TD3, SAC).
        env_id: the environment (default: ``agent.env_id``).
        episodes: how many episodes to measure, >= 1.
        gamma: the discount of the returns (default: ``agent.config.gamma``, the one the critic
            learnt with).
        seed: the first episode's reset seed.
        steps: how many states per episode to measure (default: the environment's time limit).
        tail: steps followed after the measured ones (default: ``tail_length(gamma)``).
        critic: which critic of a ``QEnsemble`` (TD3's actor follows critic 0).

    Returns:
        an :class:`Overestimation`.
    """
    from rlcourse.advantages import discounted_returns
    from rlcourse.envs import make_env

    env_id = agent.env_id if env_id is None else env_id
    gamma = float(agent.config.gamma if gamma is None else gamma)
    check_unit_interval("gamma", gamma)
    for name, value in (("episodes", episodes), ("steps", steps), ("tail", tail)):
        whole = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
        if value is not None and (not whole or value < 1):
            raise ValueError(
                f"{name}={value!r} is not allowed: {name} must be a positive whole number"
            )
    if steps is None:
        spec = make_env(env_id).spec
        steps = spec.max_episode_steps if spec is not None else None
        if steps is None:
            raise ValueError(
                f"steps=None is not allowed for {env_id!r}: it has no time limit, pass steps"
            )
    tail = tail_length(gamma) if tail is None else int(tail)
    q = agent.critic
    if isinstance(q, QEnsemble):
        if not 0 <= critic < len(q):
            raise ValueError(
                f"critic={critic!r} is not allowed: the agent has critics 0..{len(q) - 1}"
            )
        ensemble = q
        q = lambda obs, actions: ensemble(obs, actions)[critic]
    if q is None:
        raise ValueError("agent has no critic: q_overestimation needs q_w(obs, action)")
    device = next(agent.policy.parameters()).device

    out = {"estimates": [], "returns": [], "steps": [], "episodes": []}
    for i in range(int(episodes)):
        env = make_env(env_id, max_episode_steps=int(steps) + tail)
        obs, _ = env.reset(seed=seed + i)
        observations, actions, rewards = [], [], []
        space = env.action_space
        while True:
            action = agent.act(np.asarray(obs)[None], greedy=True)[0]
            if hasattr(space, "low"):
                action = np.clip(action, space.low, space.high)
            observations.append(np.asarray(obs, dtype=np.float32))
            actions.append(np.asarray(action, dtype=np.float32))
            obs, reward, terminated, truncated, _ = env.step(action)
            rewards.append(float(reward))
            if terminated or truncated:
                break
        env.close()
        returns = discounted_returns(torch.tensor(rewards, dtype=torch.float64), gamma).numpy()
        n = min(int(steps), len(rewards))
        obs_t = torch.as_tensor(np.stack(observations[:n]), device=device)
        act_t = torch.as_tensor(np.stack(actions[:n]), device=device)
        out["estimates"].append(q(obs_t, act_t).reshape(n).double().cpu().numpy())
        out["returns"].append(returns[:n])
        out["steps"].append(np.arange(n))
        out["episodes"].append(np.full(n, i))
    return Overestimation(**{k: np.concatenate(v) for k, v in out.items()}, gamma=gamma)
