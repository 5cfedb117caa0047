"""A question-answer task small enough for a laptop, and a tiny language model that answers it.

The setting of GRPO (slide "Group Relative Policy Optimization (GRPO)"), shrunk: a *question* is an
integer sum such as ``"37+48="``, an *answer* is produced token by token (digits, then an end
token), and the only reward comes at the end: 1 for the exact answer, 0 otherwise. Everything is
generated from a seed, nothing is downloaded.

In the language of the course, a question is the initial state ``S_0``, the tokens written so far
extend the state, each token is an action ``A_t`` drawn from ``pi_theta(.|question, A_0..A_{t-1})``,
and the episode ends with the end token (or when ``max_answer_length`` tokens have been written).

Contents:

- :data:`VOCAB`, :func:`encode`, :func:`decode`: the tokeniser (one token per character).
- :class:`ArithmeticTask`: questions of a given difficulty, their rewards, a fixed held-out set.
- :class:`TokenPolicy`: a two-layer GRU over the vocabulary (about 165k parameters) with batched
  sampling, greedy decoding, per-token log-probabilities and an optional value head (for PPO).
- :func:`warm_start`: a short supervised phase on a few generated examples, giving the *reference
  policy* that reinforcement learning starts from (the "supervised fine-tuning" step before RLHF).
- :func:`accuracy`: greedy accuracy on the held-out questions.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rlcourse.config import check_positive
from rlcourse.optim import Adam

__all__ = [
    "VOCAB",
    "PAD",
    "EOS",
    "encode",
    "decode",
    "Questions",
    "Answers",
    "ArithmeticTask",
    "TokenPolicy",
    "warm_start",
    "accuracy",
]

# One token per character, plus padding and the end token. PAD never appears inside an answer: it
# fills the space after EOS (and before short questions), so a batch is a rectangle.
VOCAB: tuple[str, ...] = ("<pad>", "<eos>", *"0123456789", "+", "-", "*", "=")
PAD, EOS = 0, 1
_INDEX = {tok: i for i, tok in enumerate(VOCAB)}


def encode(text: str) -> list[int]:
    """Token ids of ``text``, one per character (``"37+48="`` has six)."""
    try:
        return [_INDEX[c] for c in text]
    except KeyError as exc:
        raise ValueError(
            f"{exc.args[0]!r} is not in the vocabulary: allowed are digits and '+-*='"
        ) from None


def decode(ids) -> str:
    """The text of ``ids`` up to (not including) the first end token; padding is skipped."""
    out = []
    for i in (int(i) for i in ids):
        if i == EOS:
            break
        if i != PAD:
            out.append(VOCAB[i])
    return "".join(out)


@dataclass
class Questions:
    """A batch of questions: their text, their correct answers and the left-padded prompt tokens."""

    text: list[str]
    answers: list[str]
    prompts: Tensor  # (n, prompt_length) token ids, PAD on the left

    def __len__(self) -> int:
        return len(self.text)

    def repeat(self, times: int) -> Questions:
        """Every question ``times`` times in a row: ``q0 q0 q0 q1 q1 q1 ...`` (a group per
        question)."""
        return Questions(
            [t for t in self.text for _ in range(times)],
            [a for a in self.answers for _ in range(times)],
            self.prompts.repeat_interleave(times, dim=0),
        )


@dataclass
class Answers:
    """Sampled answers: tokens, their log-probabilities under the sampling policy, and a mask.

    ``tokens[i, t]`` is the t-th token of answer i; after its end token come PADs, and ``mask`` is 1
    on the real tokens (the end token included) and 0 on the padding. ``values`` is the value head's
    estimate before each token (PPO only).
    """

    tokens: Tensor  # (n, L) long
    log_probs: Tensor  # (n, L), 0 on padding
    mask: Tensor  # (n, L) float
    values: Tensor | None = None  # (n, L)

    @property
    def lengths(self) -> Tensor:
        return self.mask.sum(dim=1)

    def text(self) -> list[str]:
        return [decode(row) for row in self.tokens]


@dataclass(frozen=True)
class ArithmeticTask:
    """Integer arithmetic questions like ``"37+48="``, answered by the digits of the result.

    Args:
        digits: the operands are drawn uniformly from ``0 .. 10**digits - 1`` (the difficulty).
        operations: the operators questions may use, among ``"+"``, ``"-"`` and ``"*"``.
        held_out: how many distinct questions form the fixed held-out set; they are never drawn for
            training, so accuracy on them measures generalisation, not memory. ``None``: 500, or a
            quarter of all questions if that is fewer (25 of the 100 one-digit sums).
        format_reward: reward of a wrong answer that is still a well-formed number followed by the
            end token (0 by default: only correct answers are rewarded).
        seed: fixes the held-out set.
    """

    digits: int = 2
    operations: str = "+"
    held_out: int | None = None
    format_reward: float = 0.0
    seed: int = 0

    def __post_init__(self):
        check_positive("digits", self.digits, integer=True)
        if self.digits > 4:
            raise ValueError(
                f"digits={self.digits} is not allowed: at most 4 "
                "(the answers get too long to learn)"
            )
        if not self.operations or any(op not in "+-*" for op in self.operations):
            raise ValueError(
                f"operations={self.operations!r} is not allowed: use some of '+', '-' and '*'"
            )
        if self.held_out is None:
            object.__setattr__(self, "held_out", min(500, self.num_questions // 4))
        check_positive("held_out", self.held_out, integer=True, zero_ok=True)
        if self.held_out > self.num_questions // 2:
            raise ValueError(
                f"held_out={self.held_out} is not allowed: at most half of the "
                f"{self.num_questions} possible questions, so that training has questions left"
            )
        if not 0.0 <= self.format_reward < 1.0:
            raise ValueError(
                f"format_reward={self.format_reward!r} is not allowed: it must be in [0, 1)"
            )

    # -- sizes -------------------------------------------------------------------------------------
    @property
    def num_questions(self) -> int:
        return len(self.operations) * (10**self.digits) ** 2

    @property
    def prompt_length(self) -> int:
        return 2 * self.digits + 2  # "a op b ="

    @property
    def max_answer_length(self) -> int:
        """Digits of the longest result, a minus sign if subtraction is allowed, and the end
        token."""
        longest = 2 * self.digits if "*" in self.operations else self.digits + 1
        return longest + ("-" in self.operations) + 1

    # -- questions ---------------------------------------------------------------------------------
    def _question(self, index: int) -> tuple[str, str]:
        n = 10**self.digits
        op_index, rest = divmod(int(index), n * n)
        a, b = divmod(rest, n)
        op = self.operations[op_index]
        result = a + b if op == "+" else a - b if op == "-" else a * b
        return f"{a}{op}{b}=", str(result)

    def _batch(self, indices) -> Questions:
        pairs = [self._question(i) for i in indices]
        prompts = torch.full((len(pairs), self.prompt_length), PAD, dtype=torch.long)
        for row, (text, _) in enumerate(pairs):
            ids = encode(text)
            prompts[row, self.prompt_length - len(ids) :] = torch.tensor(ids)
        return Questions([p[0] for p in pairs], [p[1] for p in pairs], prompts)

    def _held_out_indices(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, 7919])
        return rng.choice(self.num_questions, size=self.held_out, replace=False)

    @cached_property
    def _training_indices(self) -> np.ndarray:
        """The indices of the questions not held out, in increasing order (computed once: a task's
        fields never change)."""
        return np.setdiff1d(np.arange(self.num_questions), self._held_out_indices())

    def held_out_set(self) -> Questions:
        """The fixed held-out questions (the same for the same task)."""
        return self._batch(self._held_out_indices())

    def sample(self, n: int, rng: np.random.Generator) -> Questions:
        """``n`` training questions drawn uniformly (with replacement) from those not held out."""
        allowed = self._training_indices
        return self._batch(allowed[rng.integers(0, len(allowed), size=n)])

    # -- rewards -----------------------------------------------------------------------------------
    def rewards(self, questions: Questions, answers: Answers) -> Tensor:
        """The final reward of each answer: 1 if it is exactly right and ended with the end token.

        A wrong answer gets ``format_reward`` if it is a well-formed number (optional minus sign,
        digits) that ended with the end token, 0 otherwise.
        """
        # decoding reads every token: once on the CPU, also when training on a GPU (and as Python
        # ints: iterating over a tensor's elements costs a microsecond each)
        tokens = answers.tokens.cpu()
        ended = (tokens == EOS).any(dim=1).tolist()
        out = []
        for text, target, has_ended in zip(
            [decode(row) for row in tokens.tolist()], questions.answers, ended, strict=True
        ):
            if not has_ended:
                out.append(0.0)
            elif text == target:
                out.append(1.0)
            elif self.format_reward and text.lstrip("-").isdigit() and text.count("-") <= 1:
                out.append(self.format_reward)
            else:
                out.append(0.0)
        return torch.tensor(out, dtype=torch.float32)

    def step_rewards(self, questions: Questions, answers: Answers) -> Tensor:
        """Per-token rewards ``R_{t+1}``: ``1 / |o*|`` for every token that matches the correct
        answer ``o*`` (its end token included) at the same position, 0 elsewhere.

        A denser signal than :meth:`rewards` (a "process" reward, in GRPO's words): an exactly right
        answer collects 1 in total, a partly right one a fraction. Shape ``(n, L)`` like the tokens.
        """
        tokens = answers.tokens.cpu()
        out = torch.zeros(tokens.shape)
        for i, target in enumerate(questions.answers):
            ids = encode(target) + [EOS]
            L = min(len(ids), out.shape[1])
            hit = tokens[i, :L] == torch.tensor(ids[:L])
            out[i, :L] = hit.float() / len(ids)
        return out * answers.mask.cpu()

    def examples(self, n: int, rng: np.random.Generator) -> tuple[Questions, Tensor]:
        """``n`` training questions with their correct answers as token rows (end token, then
        PAD)."""
        questions = self.sample(n, rng)
        targets = torch.full((n, self.max_answer_length), PAD, dtype=torch.long)
        for row, answer in enumerate(questions.answers):
            ids = encode(answer) + [EOS]
            targets[row, : len(ids)] = torch.tensor(ids)
        return questions, targets


class TokenPolicy(nn.Module):
    """``pi_theta(a_t | question, a_0 .. a_{t-1})``: a GRU reading the prompt, then its own answer.

    Two layers by default: a second layer makes carrying digits far easier to learn (a one-layer GRU
    of the same width needs about three times the supervised steps to reach 90% on two-digit sums).

    The same network scores a given answer (:meth:`score`, one pass with the answer fed in, what
    training needs) and writes one (:meth:`generate`, token by token). With ``value_head=True`` it
    also estimates ``v(state)`` before every token, from the same hidden state (a shared trunk, as
    in PPO for language models).

    ``temperature`` divides the logits: the policy being trained *is* the tempered one, so sampling,
    scoring and the importance ratios all use the same distribution.
    """

    def __init__(
        self,
        hidden: int = 128,
        layers: int = 2,
        embed: int = 32,
        value_head: bool = False,
        temperature: float = 1.0,
    ):
        super().__init__()
        check_positive("hidden", hidden, integer=True)
        check_positive("layers", layers, integer=True)
        check_positive("embed", embed, integer=True)
        check_positive("temperature", temperature)
        self.temperature = float(temperature)
        self.embed = nn.Embedding(len(VOCAB), embed)
        self.gru = nn.GRU(embed, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, len(VOCAB))
        self.value = nn.Linear(hidden, 1) if value_head else None

    def _logits(self, h: Tensor) -> Tensor:
        logits = self.head(h) / self.temperature
        # PAD is never a valid output: the answer ends with EOS.
        return logits.masked_fill(self._pad_mask.to(logits.device), float("-inf"))

    @property
    def _pad_mask(self) -> Tensor:
        mask = torch.zeros(len(VOCAB), dtype=torch.bool)
        mask[PAD] = True
        return mask

    def _read_prompts(self, prompts: Tensor) -> tuple[Tensor, Tensor]:
        """The GRU over the prompts: the top layer's last output ``(n, hidden)`` and the hidden
        state of every layer ``(layers, n, hidden)``. Each run of equal consecutive prompts (a
        group's G answers to one question) is read once and its result shared by its rows."""
        unique, index = torch.unique_consecutive(prompts, dim=0, return_inverse=True)
        out, h = self.gru(self.embed(unique))
        return out[:, -1][index], h[:, index]

    def score(
        self, prompts: Tensor, tokens: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Log-probabilities (and entropies, values) of given answer tokens, in one forward pass.

        Returns ``log_prob, entropy, values`` of shape ``(n, L)``, 0 where ``mask`` is 0.
        """
        # The input at answer step t is the previous token: the prompt's last one ("=") for t = 0.
        last, state = self._read_prompts(prompts)
        h = last.unsqueeze(1)  # the states that choose answer tokens 0 .. L-1
        if tokens.shape[1] > 1:
            out, _ = self.gru(self.embed(tokens[:, :-1]), state)
            h = torch.cat([h, out], dim=1)
        log_p = F.log_softmax(self._logits(h), dim=-1)
        # torch.where, not a product: PAD's log-probability is -inf and -inf * 0 is nan.
        log_prob = torch.where(mask.bool(), log_p.gather(-1, tokens.unsqueeze(-1)).squeeze(-1), 0.0)
        p = log_p.exp()
        entropy = -(p * log_p.nan_to_num(neginf=0.0)).sum(-1) * mask
        values = self.value(h).squeeze(-1) * mask if self.value is not None else None
        return log_prob, entropy, values

    @torch.no_grad()
    def generate(
        self,
        prompts: Tensor,
        max_length: int,
        greedy: bool = False,
        generator: torch.Generator | None = None,
    ) -> Answers:
        """Write an answer to every prompt, all at once: sample each token (or take the most likely
        one, ``greedy=True``) until the end token or ``max_length`` tokens."""
        n = prompts.shape[0]
        device = prompts.device
        state, h = self._read_prompts(prompts)
        tokens = torch.full((n, max_length), PAD, dtype=torch.long, device=device)
        log_probs = torch.zeros(n, max_length, device=device)
        mask = torch.zeros(n, max_length, device=device)
        values = torch.zeros(n, max_length, device=device) if self.value is not None else None
        running = torch.ones(n, dtype=torch.bool, device=device)
        for t in range(max_length):
            log_p = F.log_softmax(self._logits(state), dim=-1)
            if greedy:
                token = log_p.argmax(dim=-1)
            else:
                token = torch.multinomial(log_p.exp(), 1, generator=generator).squeeze(-1)
            tokens[:, t] = torch.where(running, token, PAD)
            log_probs[:, t] = log_p.gather(-1, token.unsqueeze(-1)).squeeze(-1) * running
            mask[:, t] = running.float()
            if values is not None:
                values[:, t] = self.value(state).squeeze(-1) * running
            running = running & (token != EOS)
            if not running.any():
                tokens, log_probs, mask = (
                    tokens[:, : t + 1],
                    log_probs[:, : t + 1],
                    mask[:, : t + 1],
                )
                values = values[:, : t + 1] if values is not None else None
                break
            out, h = self.gru(self.embed(token).unsqueeze(1), h)
            state = out[:, -1]
        return Answers(tokens, log_probs, mask, values)


def accuracy(
    policy: TokenPolicy, task: ArithmeticTask, questions: Questions | None = None
) -> float:
    """Fraction of (held-out, by default) questions the policy answers exactly right, greedily."""
    questions = task.held_out_set() if questions is None else questions
    answers = policy.generate(questions.prompts, task.max_answer_length, greedy=True)
    return float((task.rewards(questions, answers) == 1.0).float().mean())


def warm_start(
    policy: TokenPolicy,
    task: ArithmeticTask,
    examples: int = 2000,
    steps: int = 800,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
) -> TokenPolicy:
    """Supervised training on ``examples`` generated question-answer pairs (cross-entropy of the
    correct tokens), in place; returns ``policy``.

    The stand-in for the supervised fine-tuning of a language model before RLHF: it teaches the
    answer format and some arithmetic, so that sampled answers are sometimes right and the rewards
    carry a signal. Few examples and few steps leave it far from perfect.
    """
    check_positive("examples", examples, integer=True)
    check_positive("steps", steps, integer=True, zero_ok=True)
    rng = np.random.default_rng([seed, 1])
    questions, targets = task.examples(examples, rng)
    mask = (torch.cumsum((targets == EOS).long(), dim=1) - (targets == EOS).long() == 0).float()
    optimizer = Adam(policy.parameters(), lr=lr)
    for _ in range(steps):
        rows = torch.as_tensor(rng.integers(0, examples, size=min(batch_size, examples)))
        log_prob, _, _ = policy.score(questions.prompts[rows], targets[rows], mask[rows])
        loss = -log_prob.sum() / mask[rows].sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return policy
