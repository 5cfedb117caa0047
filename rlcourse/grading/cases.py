"""The test cases' inputs: random rollouts for ex1 (:func:`rollout`), padded token batches for ex6
(:func:`token_batch`), each with a description that names the idea the case tests.

They are here rather than in the notebooks so that the hidden tests can use them too: autograding
restores every test cell from the instructor's copy, but a helper defined in a student-editable cell
could be changed. Importing this module does not import torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rlcourse.grading.checks import to_numpy


def describe_episode_ends(terminated: Any, truncated: Any | None = None) -> str:
    """``"terminated at t=[2], truncated at t=[5]"`` for a ``(T,)`` stream; ``(T, N)`` flags give
    a count per kind."""
    term = to_numpy(terminated).astype(bool)
    trunc = np.zeros_like(term) if truncated is None else to_numpy(truncated).astype(bool)
    parts = []
    for label, flags in (("terminated", term), ("truncated", trunc)):
        if flags.ndim == 1 and flags.any():
            parts.append(f"{label} at t={np.flatnonzero(flags).tolist()}")
        elif flags.ndim > 1 and flags.any():
            parts.append(f"{int(flags.sum())} steps {label}")
    return ", ".join(parts) if parts else "no episode ends before the rollout's last step"


def rollout(
    seed: int,
    steps: int,
    envs: int | None = None,
    p_terminated: float = 0.15,
    p_truncated: float = 0.1,
    complete: bool = False,
) -> tuple[dict, str]:
    """A random time-first rollout for the advantage-estimation exercise, and a description of it.

    Returns ``(data, description)`` where ``data`` holds float32 tensors ``rewards``, ``values``,
    ``next_values`` and bool tensors ``terminated``, ``truncated``, shape ``(steps,)`` or
    ``(steps, envs)``, with the conventions of :mod:`rlcourse.advantages`: ``next_values[t]`` is
    ``values[t + 1]`` inside an episode, and the value of the episode's final observation (drawn
    afresh, *not* 0) where it ended, so a function that bootstraps through a terminal step gets a
    visibly different answer. A step is never both terminated and truncated.

    Args:
        seed: seeds the draw (a ``torch.Generator``), so a test case is the same on every run.
        steps: ``T``.
        envs: ``N`` parallel streams, or ``None`` for one stream of shape ``(T,)``.
        p_terminated, p_truncated: chance that a step ends its episode by termination, by
            truncation.
        complete: every episode is complete: the last step terminates and no step is truncated.
    """
    import torch

    shape = (steps,) if envs is None else (steps, envs)
    gen = torch.Generator().manual_seed(seed)
    rewards = torch.randn(shape, generator=gen)
    values = torch.randn(shape, generator=gen)
    final_values = torch.randn(shape, generator=gen)  # v(S_{t+1}) where S_{t+1} ends an episode
    u = torch.rand(shape, generator=gen)
    terminated = u < p_terminated
    truncated = (u >= p_terminated) & (u < p_terminated + p_truncated)
    if complete:
        terminated[-1] = True
        truncated[:] = False
    ended = terminated | truncated
    next_values = torch.empty(shape)
    next_values[:-1] = torch.where(ended[:-1], final_values[:-1], values[1:])
    next_values[-1] = final_values[
        -1
    ]  # the rollout's last step: the observation the next rollout starts from
    data = dict(
        rewards=rewards,
        values=values,
        next_values=next_values,
        terminated=terminated,
        truncated=truncated,
    )
    size = f"T={steps}" + ("" if envs is None else f", N={envs}")
    return data, f"seed {seed}, {size}, {describe_episode_ends(terminated, truncated)}"


def token_batch(seed: int, answers: int, length: int) -> tuple:
    """ex6: ``(new, old, ref, adv, mask, case)``, log-probabilities of padded answers' tokens."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    old = -2 * torch.rand(answers, length, generator=gen)
    new = old + 0.5 * torch.randn(
        answers, length, generator=gen
    )  # ratios inside and outside the clip range
    ref = old + 0.5 * torch.randn(answers, length, generator=gen)
    lengths = torch.randint(1, length + 1, (answers,), generator=gen)
    lengths[0] = length
    mask = (torch.arange(length) < lengths[:, None]).float()
    adv = torch.randn(answers, 1, generator=gen).expand(answers, length)
    return (
        new,
        old,
        ref,
        adv,
        mask,
        f"seed {seed}: {answers} answers of {lengths.tolist()} tokens, padded to {length}",
    )
