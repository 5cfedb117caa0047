"""GRPO: group relative policy optimisation, and the two baselines it is compared with (RLOO, PPO).

Shao et al. (2024), "DeepSeekMath: pushing the limits of mathematical reasoning in open language
models", section 4. Slide "Group Relative Policy Optimization (GRPO)": PPO's clipping without a
critic; for every question a *group* of ``G`` answers is sampled and each answer's advantage is its
reward relative to the group's, ``A_i = (R_i - mean_j R_j) / std_j R_j``.

The loop of :func:`train`, for every iteration, in this order:

1. draw ``B`` questions and sample ``G`` answers to each with ``pi_theta_old`` (the current policy);
2. score them: a final reward ``R_i`` per answer (or a reward per token, ``rewards="per_token"``);
3. advantages ``A_t``, one of three estimators (``advantage``):

   - ``"group"`` (GRPO): :func:`~rlcourse.advantages.group_relative_advantages`, the same for
     every token of an answer (per-token rewards: the slide's ``A_t = sum_{k>=t} Rbar_{k+1}``);
   - ``"leave_one_out"`` (RLOO, Ahmadian et al. 2024): REINFORCE with the mean reward of the other
     ``G - 1`` answers as baseline. Its preset uses each answer for one gradient step
     (``epochs=1``) and sums over tokens (``loss_aggregation="constant"``): at ratio 1 the clipped
     loss's gradient is REINFORCE's, and the ratio only corrects the small drift of the later
     minibatches;
   - ``"gae"`` (PPO): a value head on the policy's trunk and :func:`~rlcourse.advantages.gae` over
     the tokens, the reward arriving at the last one;

4. ``epochs`` passes (``mu``) of gradient ascent on the per-token objective
   ``min(rho A, clip(rho, 1 - eps, 1 + eps) A) - beta KL_k3(pi_theta || pi_ref)``, averaged over
   tokens and answers as ``loss_aggregation`` says (the paper's ``1/G sum_i 1/|o_i| sum_t``, DAPO's
   per-token mean, or Dr. GRPO's constant normaliser), where ``rho`` is the ratio to
   ``pi_theta_old`` and ``pi_ref`` is the warm-started policy training began from.

All three methods see the same number of sampled answers per iteration, ``B G``, so their curves
are comparable step for step. One speed trick, not a line of the slide, skips the groups that
cannot move the policy: :func:`rows_that_move_the_policy` says what it keeps and what it changes.

As every algorithm module (the contract is in :mod:`rlcourse.algos`) it has ``Config``,
``PRESETS`` (here by method: ``grpo``, ``rloo``, ``ppo``), ``SLIDE`` (the slide literally),
``make_agent`` and ``train``. Its environment is the question-answer task of :mod:`rlcourse.qa`,
called :data:`TASK` on the command line (``rlcourse train grpo --env ArithmeticTask``) and in
checkpoints; ``train(config, reference, progress, **overrides)`` returns the trained
:class:`~rlcourse.qa.TokenPolicy` (notebook 08 and the graded exercises call it so).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rlcourse.advantages import (
    gae,
    group_relative_advantages,
    group_relative_step_advantages,
    leave_one_out_advantages,
    normalize,
)
from rlcourse.budgets import budget
from rlcourse.config import (
    check_bool,
    check_choice,
    check_device,
    check_field_types,
    check_positive,
    check_seed,
    param,
    training_config,
)
from rlcourse.objectives import (
    AGGREGATIONS,
    aggregate_tokens,
    clipped_surrogate,
    critic_loss,
    importance_weights,
    kl_k3,
)
from rlcourse.optim import Adam, clip_grad_norms_
from rlcourse.qa import Answers, ArithmeticTask, Questions, TokenPolicy, warm_start
from rlcourse.saving import RunKeeper
from rlcourse.training import (
    Agent,
    History,
    check_finite,
    progress_bar,
    seed_everything,
    torch_threads,
)

__all__ = [
    "Config",
    "PRESETS",
    "SLIDE",
    "TASK",
    "make_agent",
    "train",
    "evaluate",
    "make_task",
    "make_reference",
    "compute_advantages",
    "grpo_loss",
    "rows_that_move_the_policy",
]

NAME = "grpo"
SUMMARY = "group relative policy optimisation on a question-answer task: clipping, no critic"

# The slides' summary table (rlcourse.catalog builds it from these and from what the code accepts).
CLASS = "trust-region actor-only"
ON_POLICY = True
REFERENCE = (
    'Shao et al. (2024), "DeepSeekMath: pushing the limits of mathematical reasoning in open '
    'language models"'
)
# The env id of GRPO's runs (the command line's --env, a checkpoint's env_id): the question-answer
# task of rlcourse.qa, whose questions the Config's digits and operations choose.
TASK = "ArithmeticTask"

ADVANTAGES = ("group", "leave_one_out", "gae")
# Held-out greedy accuracy that counts as solved (`python -m benchmarks grpo` measures when the
# presets reach it).
TARGET_ACCURACY = 0.9


@dataclass
class Config:
    """GRPO (and RLOO, PPO) hyperparameters for the question-answer task; the slides' symbols in
    brackets."""

    advantage: str = param(
        "group", "'group' (GRPO), 'leave_one_out' (RLOO) or 'gae' (PPO with a value head)"
    )
    group_size: int = param(8, "answers sampled per question [G]")
    questions: int = param(32, "questions per iteration [B]; an iteration samples B * G answers")
    iterations: int = param(2000, "iterations of the loop")
    epochs: int = param(2, "passes over each batch of answers [mu]; 1 keeps it on-policy")
    minibatches: int = param(4, "gradient steps per epoch (each on a share of the questions)")
    clip_eps: float = param(0.2, "clipping range [epsilon]")
    kl_coef: float = param(0.0, "weight [beta] of the KL penalty to the reference policy (0: none)")
    rewards: str = param(
        "outcome", "'outcome' (one reward per answer) or 'per_token' (a reward per correct digit)"
    )
    scale_rewards: bool = param(
        True, "divide by the group's std (False: Dr. GRPO's mean-only advantage)"
    )
    loss_aggregation: str = param(
        "sequence", "'sequence' (GRPO's 1/|o_i|), 'token' (DAPO) or 'constant' (Dr. GRPO)"
    )
    lr: float = param(3e-4, "Adam learning rate")
    max_grad_norm: float = param(1.0, "clip the gradient norm to this (inf: no clipping)")
    gamma: float = param(1.0, "advantage='gae': discount over the tokens [gamma]")
    gae_lambda: float = param(0.95, "advantage='gae': GAE's [lambda]")
    vf_coef: float = param(0.5, "advantage='gae': weight of the value loss")
    temperature: float = param(1.0, "sampling temperature of the policy")
    hidden: int = param(128, "GRU hidden units of the policy")
    digits: int = param(2, "task difficulty: digits of each operand")
    operations: str = param("+", "task operators, among '+-*'")
    warm_start_examples: int = param(2000, "supervised examples for the reference policy")
    warm_start_steps: int = param(800, "supervised gradient steps for the reference policy")
    eval_every: int = param(50, "iterations between held-out accuracy measurements")
    seed: int = param(0, "random seed")
    device: str = param("cpu", "'cpu' or 'cuda'")
    threads: int = param(1, "torch threads during training")

    def __post_init__(self):
        check_field_types(self)
        check_choice("advantage", self.advantage, ADVANTAGES)
        check_choice("rewards", self.rewards, ("outcome", "per_token"))
        check_choice("loss_aggregation", self.loss_aggregation, AGGREGATIONS)
        if (
            isinstance(self.group_size, bool)
            or not isinstance(self.group_size, int)
            or self.group_size < 2
        ):
            raise ValueError(
                f"group_size={self.group_size!r} is not allowed: a group needs at least 2 "
                "answers to compare"
            )
        for name in (
            "questions",
            "iterations",
            "epochs",
            "minibatches",
            "hidden",
            "eval_every",
            "threads",
        ):
            check_positive(name, getattr(self, name), integer=True)
        if self.minibatches > self.questions:
            raise ValueError(
                f"minibatches={self.minibatches} is not allowed: at most "
                f"questions={self.questions} (a minibatch holds whole groups)"
            )
        if not 0.0 < self.clip_eps < 1.0:
            raise ValueError(
                f"clip_eps={self.clip_eps!r} is not allowed: clip_eps must be in (0, 1)"
            )
        check_positive("kl_coef", self.kl_coef, zero_ok=True)
        check_bool("scale_rewards", self.scale_rewards)
        check_positive("lr", self.lr)
        check_positive("max_grad_norm", self.max_grad_norm, inf_ok=True)
        for name in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(
                    f"{name}={getattr(self, name)!r} is not allowed: it must be in [0, 1]"
                )
        check_positive("vf_coef", self.vf_coef, zero_ok=True)
        check_positive("temperature", self.temperature)
        check_positive("warm_start_examples", self.warm_start_examples, integer=True)
        check_positive("warm_start_steps", self.warm_start_steps, integer=True, zero_ok=True)
        check_seed(self.seed)
        check_device(self.device)
        make_task(self)  # the task checks digits and operations


def make_task(config: Config) -> ArithmeticTask:
    return ArithmeticTask(digits=config.digits, operations=config.operations)


# The presets sample 64 questions and G = 4 answers to each per iteration: the same 256 answers as
# the defaults' 32 questions of 8, spread over twice as many questions. Measured from the same warm
# starts (seeds 0-2), GRPO then reaches 90 % held-out accuracy after 256k-282k answers instead of
# 320k-384k, RLOO and PPO sooner too (`python -m benchmarks grpo`; the sweep over G in notebook 08
# shows the same at 800 iterations).
_GROUPS = dict(group_size=4, questions=64)
PRESETS: dict[str, Config] = {
    "grpo": Config(**_GROUPS, iterations=budget("preset/grpo/grpo")),
    "rloo": Config(
        advantage="leave_one_out",
        epochs=1,
        loss_aggregation="constant",
        **_GROUPS,
        iterations=budget("preset/grpo/rloo"),
    ),
    "ppo": Config(advantage="gae", **_GROUPS, iterations=budget("preset/grpo/ppo")),
}

SLIDE = Config(loss_aggregation="constant", max_grad_norm=math.inf, minibatches=1)
"""The slide "Group Relative Policy Optimization (GRPO)" literally: PPO's clipped objective summed
over every token of the batch (``loss_aggregation="constant"``: the sum divided by a constant,
which only rescales it), full-batch gradient steps, no gradient clipping, no critic, no KL term,
and the group-relative advantage ``(R - mean R) / std R`` of the sparse final reward (the slide's
``A_t = sum_{k>=t} Rbar_{k+1}`` with the reward at the last token only). The defaults differ as
DeepSeekMath's GRPO does: each answer's tokens averaged (``1/|o_i|``), minibatches, and gradients
clipped to norm 1.
"""


def make_reference(config: Config, task: ArithmeticTask | None = None) -> TokenPolicy:
    """The reference policy ``pi_ref``: a fresh policy after the supervised warm start (seconds)."""
    task = task or make_task(config)
    torch.manual_seed(config.seed)
    policy = TokenPolicy(hidden=config.hidden, temperature=config.temperature)
    with torch_threads(config.threads):
        warm_start(
            policy,
            task,
            examples=config.warm_start_examples,
            steps=config.warm_start_steps,
            seed=config.seed,
        )
    return policy.requires_grad_(False).eval()


def compute_advantages(
    config: Config,
    rewards: torch.Tensor,
    answers: Answers,
    step_rewards: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-token advantages ``(B G, L)`` of one batch, by ``config.advantage``.

    ``rewards`` are the final rewards ``(B, G)``; ``step_rewards`` the per-token ones ``(B G, L)``
    when ``config.rewards == "per_token"`` (then the final reward is their sum).
    """
    b, g = rewards.shape
    mask = answers.mask
    if config.advantage == "gae":
        # Tokens are time steps: the reward comes with the last token (or with every token), the
        # episode terminates there; padding steps are "terminated" too, so their TD errors are 0.
        per_token = (
            step_rewards
            if step_rewards is not None
            else _final_token_rewards(rewards.flatten(), mask)
        )
        values = answers.values
        next_values = torch.cat([values[:, 1:], torch.zeros_like(values[:, :1])], dim=1)
        terminated = torch.ones_like(mask, dtype=torch.bool)
        terminated[:, :-1] = mask[:, 1:] == 0
        adv = gae(
            per_token.T,
            values.T,
            next_values.T,
            terminated.T,
            terminated.T,
            config.gamma,
            config.gae_lambda,
        ).T
        return adv * mask
    if config.advantage == "leave_one_out":
        total = rewards if step_rewards is None else step_rewards.sum(dim=1).view(b, g)
        return leave_one_out_advantages(total).flatten()[:, None] * mask
    if step_rewards is not None:
        steps = step_rewards.view(b, g, -1)
        if not config.scale_rewards:
            raise ValueError(
                "scale_rewards=False with rewards='per_token' is not allowed: use outcome rewards"
            )
        return group_relative_step_advantages(steps, mask.view(b, g, -1)).flatten(0, 1)
    if config.scale_rewards:
        adv = group_relative_advantages(rewards)
    else:
        adv = rewards - rewards.mean(dim=-1, keepdim=True)  # Dr. GRPO: no division by the std
    return adv.flatten()[:, None] * mask


def grpo_loss(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    ref_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_eps: float,
    kl_coef: float = 0.0,
    aggregation: str = "sequence",
    max_length: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """GRPO's loss, to be minimised: minus the aggregated per-token objective
    ``min(rho_t A_t, clip(rho_t, 1 - eps, 1 + eps) A_t) - beta KL_k3(pi_theta || pi_ref)_t``.

    DeepSeekMath's eq. 3 with ``aggregation="sequence"``: ``1/G sum_i 1/|o_i| sum_t`` (over all the
    batch's answers). With one answer of one token it is PPO's clipped loss (the tests check it).

    Args:
        log_prob: ``log pi_theta(o_t | q, o_<t)`` of the answers' tokens, ``(N, L)``, with gradient.
        old_log_prob: the same under ``pi_theta_old``, the policy that sampled them.
        ref_log_prob: the same under the reference policy.
        advantages: ``A_t`` per token.
        mask: 1 on real tokens, 0 on padding.
        clip_eps: ``epsilon``; kl_coef: ``beta``; aggregation, max_length: see
            :func:`~rlcourse.objectives.aggregate_tokens`.

    Returns:
        The loss, and the ratios and the k3 estimates per token (for the diagnostics).
    """
    ratio = importance_weights(log_prob, old_log_prob)
    per_token = clipped_surrogate(ratio, advantages, clip_eps)
    kl = kl_k3(log_prob, ref_log_prob)
    if kl_coef > 0:
        per_token = per_token - kl_coef * kl
    return -aggregate_tokens(per_token, mask, aggregation, max_length), ratio, kl


def _rows(groups: torch.Tensor, g: int) -> torch.Tensor:
    """The answers' rows of the given groups (answers to question k are rows k G .. k G + G - 1)."""
    return (groups[:, None] * g + torch.arange(g)).flatten()


def _share(kept_mask: torch.Tensor, all_mask: torch.Tensor, aggregation: str) -> float:
    """The fraction of a minibatch's average that its kept answers make up (the rest add 0)."""
    if aggregation == "token":
        return float(kept_mask.sum() / all_mask.sum())
    return len(kept_mask) / len(all_mask)


def rows_that_move_the_policy(
    groups: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, config: Config
) -> tuple[torch.Tensor, float]:
    """A speed trick, not a line of the slide: the rows of a minibatch's ``groups`` worth a forward
    and backward pass, and the share of the minibatch's loss they make up.

    Why: without a KL term (``beta = 0``) and without a value head, a group whose ``G`` answers all
    got the same reward has ``A = 0`` on every token, so it adds exactly nothing to the gradient.
    Early in training most groups are all wrong and late most are all right, so leaving them out
    saves most of the passes; scaling the loss by the share the kept rows stand for gives the same
    gradient as with every group (``tests/test_grpo.py`` checks it). One difference remains: a
    minibatch with no such row at all makes no optimiser step, where with every group Adam would
    take a step on a zero gradient (which still moves the weights by its momentum, and counts).
    """
    g = config.group_size
    rows = _rows(groups, g).to(mask.device)
    if config.kl_coef > 0 or config.advantage == "gae":
        return rows, 1.0
    moves = (advantages[rows].view(len(groups), g, -1) != 0).any(dim=2).any(dim=1)
    kept = rows.view(len(groups), g)[moves].flatten()
    return kept, _share(mask[kept], mask[rows], config.loss_aggregation)


def _final_token_rewards(rewards: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Put each answer's final reward on its last real token."""
    out = torch.zeros_like(mask)
    last = (mask.sum(dim=1).long() - 1).clamp(min=0)
    out[torch.arange(len(rewards)), last] = rewards
    return out


def value_targets(advantages: torch.Tensor, answers: Answers) -> tuple[torch.Tensor, torch.Tensor]:
    """``advantage="gae"`` (PPO): the value head's targets, the lambda-returns ``A_t + V(s_t)``,
    and the advantages standardised over the real tokens, as PPO does over a rollout."""
    targets = advantages + answers.values
    real = answers.mask.bool()
    standardised = torch.zeros_like(advantages).masked_scatter(real, normalize(advantages[real]))
    return standardised, targets


def iteration_diagnostics(
    answers: Answers, ref_log_prob: torch.Tensor, final: torch.Tensor
) -> dict[str, float]:
    """What an iteration logs besides the accuracy and the clip fraction: the mean final reward,
    the share of groups whose answers all got the same reward (no signal without a KL term), the
    mean answer length, and how far the policy that sampled the batch (``pi_theta_old``) is from
    ``pi_ref`` on the batch's tokens (see :data:`rlcourse.diagnostics.GLOSSARY`).

    The KL uses the log-probabilities the sampling already recorded, so it costs no forward pass;
    and since ``pi_theta_old`` drew the tokens, each token's k3 has as its expectation the KL
    between ``pi_theta_old``'s and ``pi_ref``'s next-token distributions. The logged number is
    their mean over the batch's tokens (a per-token KL, not a whole answer's)."""
    kl_ref = aggregate_tokens(kl_k3(answers.log_probs, ref_log_prob), answers.mask, "token")
    return {
        "mean_reward": float(final.mean()),
        "all_equal_groups": float((final == final[:, :1]).all(dim=1).float().mean()),
        "answer_length": float(answers.lengths.mean()),
        "kl_ref": float(kl_ref),
    }


def make_agent(config: Config, env_id: str = TASK) -> Agent:
    """The policy ``pi_theta`` as an :class:`~rlcourse.training.Agent` (what checkpoints hold): a
    :class:`~rlcourse.qa.TokenPolicy` of the config's size, with a value head for PPO
    (``advantage="gae"``). GRPO trains on the question-answer task only: ``env_id`` must be
    :data:`TASK`."""
    if env_id != TASK:
        raise ValueError(
            f"env_id={env_id!r} is not allowed: grpo trains on rlcourse.qa's question-answer task, "
            f"{TASK!r} (its Config's digits and operations set the questions), not on a gymnasium "
            "environment"
        )
    value_head = config.advantage == "gae"
    policy = TokenPolicy(
        hidden=config.hidden, temperature=config.temperature, value_head=value_head
    )
    return Agent(NAME, env_id, config, policy)


def correct_answers(
    policy: TokenPolicy, task: ArithmeticTask, questions: Questions
) -> torch.Tensor:
    """1 for each question the policy answers exactly right greedily, else 0: the returns of the
    greedy evaluation episodes (an answer's return is its reward)."""
    answers = policy.generate(questions.prompts, task.max_answer_length, greedy=True)
    return (task.rewards(questions, answers) == 1).float()


def evaluate(agent: Agent, episodes: int | None = None) -> np.ndarray:
    """The greedy returns (1 right, 0 wrong) of ``agent`` on the first ``episodes`` questions of
    its task's held-out set (all of them by default): what ``rlcourse evaluate`` reports for a GRPO
    run, as :func:`rlcourse.training.evaluate` does for the gymnasium algorithms."""
    task = make_task(agent.config)
    held_out = task.held_out_set()
    if episodes is not None:
        check_positive("episodes", episodes, integer=True)
        held_out = Questions(
            held_out.text[:episodes], held_out.answers[:episodes], held_out.prompts[:episodes]
        )
    device = next(agent.policy.parameters()).device
    held_out.prompts = held_out.prompts.to(device)
    with torch.no_grad():
        return correct_answers(agent.policy, task, held_out).cpu().numpy()


def train(
    config: Config | None = None,
    reference: TokenPolicy | None = None,
    progress: bool = True,
    *,
    out: str | Path | None = None,
    save_every: float = 60.0,
    resume: bool = False,
    **overrides,
) -> tuple[TokenPolicy, History]:
    """Fine-tune the reference policy with GRPO (or RLOO, PPO); return the trained policy and its
    history.

    ``reference`` is the warm-started policy to start from and to measure the KL to; if ``None``
    it is made by :func:`make_reference` (pass the same one to compare methods from the same
    start). ``history.evaluations`` holds the held-out greedy accuracy (``mean_return``) against the
    number of answers sampled (``env_step``); ``history.iterations`` the diagnostics. Ctrl-C raises
    :class:`~rlcourse.training.TrainingInterrupted` carrying the history and the agent so far.
    ``out``, ``save_every``, ``resume``: see :func:`rlcourse.algos.a2c.train` (the reference is
    saved with the run, so a resumed run measures its KL to the same one).
    """
    config = training_config(Config, {}, TASK, config, overrides)
    task = make_task(config)
    if reference is None:
        reference = make_reference(config, task)
    seed_everything(config.seed)
    rng = np.random.default_rng([config.seed, 2])
    device = torch.device(config.device)
    pi_ref = copy.deepcopy(reference).to(device).requires_grad_(False)

    # Initialise pi_theta from pi_ref (PPO adds a value head, trained from scratch)
    agent = make_agent(config)
    policy = agent.policy
    policy.load_state_dict(pi_ref.state_dict(), strict=False)
    policy.to(device)
    params = list(policy.parameters())  # a list, walked once: clipping reads it every step
    optimizer = Adam(params, lr=config.lr)
    held_out = task.held_out_set()
    held_out.prompts = held_out.prompts.to(device)
    history = History()
    answers_seen = 0
    B, G = config.questions, config.group_size  # the slide's symbols

    def evaluate_held_out() -> float:
        correct = correct_answers(policy, task, held_out)
        history.add_evaluation(answers_seen, correct.cpu().numpy())
        return float(correct.mean())

    bar = progress_bar(config.iterations, progress, f"GRPO ({config.advantage})")
    keeper = RunKeeper(
        agent, history, dict(pi_ref=pi_ref, optimizer=optimizer, rng=rng), out, save_every, resume
    )
    with torch_threads(config.threads), bar, keeper:
        start = keeper.start(iteration=0, answers_seen=0, acc=None)
        answers_seen = start["answers_seen"]
        acc = evaluate_held_out() if start["acc"] is None else start["acc"]
        bar.update(start["iteration"])
        # loop for every iteration
        for iteration in range(start["iteration"] + 1, config.iterations + 1):
            # Sample B questions q and G answers o_1..o_G to each with pi_theta_old (the current
            # policy)
            questions = task.sample(B, rng).repeat(G)
            prompts = questions.prompts.to(device)
            answers = policy.generate(prompts, task.max_answer_length)
            answers_seen += len(questions)
            # Rewards: R_i per answer (rewards="per_token": R_t per token, R_i their sum)
            R = task.rewards(questions, answers).to(device).view(B, G)
            R_t = None
            if config.rewards == "per_token":
                R_t = task.step_rewards(questions, answers).to(device)
            # Group-relative advantages A_t = sum_{k>=t} Rbar_{k+1}, Rbar = (R - mean R) / std R
            # over each group (RLOO: leave-one-out baseline; PPO: GAE over the tokens)
            A = compute_advantages(config, R, answers, R_t)
            if config.advantage == "gae":
                A, targets = value_targets(A, answers)
            with torch.no_grad():
                ref_log_prob, _, _ = pi_ref.score(prompts, answers.tokens, answers.mask)

            # for mu epochs, in minibatches of whole groups: minimise
            # L = -(min(rho_t A_t, clip(rho_t, 1-eps, 1+eps) A_t) - beta KL_k3(pi_theta||pi_ref))
            clipped = []
            for _ in range(config.epochs):
                # config.minibatches minibatches, their sizes differing by at most one
                for groups in torch.randperm(B).tensor_split(min(config.minibatches, B)):
                    rows, share = rows_that_move_the_policy(groups, A, answers.mask, config)
                    if len(rows) == 0:
                        continue
                    mask = answers.mask[rows]
                    log_prob, _, values = policy.score(prompts[rows], answers.tokens[rows], mask)
                    loss, rho, kl = grpo_loss(
                        log_prob,
                        answers.log_probs[rows],
                        ref_log_prob[rows],
                        A[rows],
                        mask,
                        config.clip_eps,
                        config.kl_coef,
                        config.loss_aggregation,
                        task.max_answer_length,
                    )
                    loss = loss * share  # the speed trick's rescaling
                    if values is not None:  # PPO's value head: + c_v L_critic
                        real = mask.bool()
                        loss = loss + config.vf_coef * critic_loss(
                            values[real], targets[rows][real]
                        )
                    check_finite(history, iteration, loss=loss)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    clip_grad_norms_([params], config.max_grad_norm)
                    optimizer.step()
                    with torch.no_grad():
                        clipped.append(
                            ((rho - 1).abs() > config.clip_eps).float()[mask.bool()].mean()
                        )

            if iteration % config.eval_every == 0 or iteration == config.iterations:
                acc = evaluate_held_out()
            final = R if R_t is None else R_t.sum(dim=1).view(B, G)
            diagnostics = iteration_diagnostics(answers, ref_log_prob, final)
            clip_fraction = float(torch.stack(clipped).mean()) if clipped else 0.0
            history.add_iteration(
                iteration, answers_seen, accuracy=acc, **diagnostics, clip_fraction=clip_fraction
            )
            bar.update(1)
            bar.set_postfix(
                accuracy=f"{acc:.2f}", reward=f"{float(final.mean()):.2f}", refresh=False
            )
            keeper.tick(iteration=iteration, answers_seen=answers_seen, acc=acc)
    return policy, history
