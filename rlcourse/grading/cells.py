"""The test cells' own checks, and ex2's reference: :func:`compare_polyak` ...
:func:`check_grpo_gradient`, :func:`reference_smoothed_action`.

Checks that a test cell would otherwise define itself: here, a solution cell cannot rebind what
they use (the notebook's names are not read), and each takes the student's function as an
argument. They run the student's function first and compute the expected answer afterwards. They
run references, so they are :data:`~rlcourse.grading.forbidden.FORBIDDEN` to graded code
themselves. The expected gradients (:func:`clip_gradient`, :func:`grpo_gradient`) are written from
the definitions, not taken from the package.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from rlcourse.grading.calls import _name_of, gradients, student
from rlcourse.grading.checks import check, check_true
from rlcourse.grading.guard import _refuse_tracers

GRPO_PROVIDED = ("rlcourse.objectives.importance_weights", "rlcourse.objectives.clipped_surrogate")
"""What ex6's setup cell gives its students from Exercise 5: ``grpo_loss`` may use rlcourse's
own."""


def reference_smoothed_action(
    action: Any, noise: Any, noise_clip: float, low: Any, high: Any
) -> Any:
    """The package's TD3 target action ``clip(mu_{theta-}(S') + clip(epsilon, -c, c), low, high)``
    for a *given* noise (Fujimoto et al. 2018, eq. 14; slide "TD3", target policy smoothing).

    :func:`rlcourse.algos.td3.smoothed_target_action` takes ``epsilon`` in action units and
    measures the clip ``c`` in units of the action scale ``(high - low) / 2``. This hands it the
    exercise's noise and a configuration whose clip is ``c`` in action units: the result is the
    package's answer for these inputs.

    Args:
        action: ``mu_{theta-}(S')``, shape ``(B, d)``.
        noise: ``epsilon`` before clipping (already times its standard deviation), shape ``(B, d)``.
        noise_clip: ``c``, in action units.
        low, high: the action bounds, shape ``(d,)``; ``high - low`` must be the same in every
            dimension.
    """
    import torch

    from rlcourse.algos import td3

    center, scale = (high + low) / 2, (high - low) / 2
    s = float(scale.flatten()[0])
    if s <= 0 or not torch.allclose(scale, torch.full_like(scale, s)):
        raise ValueError(
            f"high - low = {(high - low).tolist()} is not allowed here: the package measures the "
            "noise clip in one action scale, so every dimension must have the same positive range"
        )

    class TargetActor:  # stands in for mu_{theta-}: returns the given action
        def __call__(self, obs):
            return action

    actor = TargetActor()
    actor.center, actor.scale = center, scale
    config = td3.Config(target_noise_clip=float(noise_clip) / s)
    return td3.smoothed_target_action(actor, None, config, epsilon=noise.to(action.dtype))


def compare_polyak(
    polyak_update: Callable, make_net: Callable, rho: float, seed: int, case: str
) -> None:
    """ex2: ``polyak_update(target, online, rho)`` (in place) against the course's version on copies
    of the same networks; the online network must not change."""
    import torch

    from rlcourse.nets import polyak_update as reference_polyak_update

    torch.manual_seed(seed)
    target, online = make_net(), make_net()
    target_before, online_before = copy.deepcopy(target), copy.deepcopy(online)
    names = [name for name, _ in target_before.named_parameters()]
    params = torch.nn.Module.parameters

    def graded(
        target: Any, online: Any, rho: float
    ) -> tuple:  # the parameters read under the guard
        polyak_update(target, online, rho)
        return tuple(p.detach().clone() for p in params(target)), tuple(
            p.detach().clone() for p in params(online)
        )

    got_target, got_online = student(graded, name=_name_of(polyak_update), case=case)(
        target, online, rho
    )
    _refuse_tracers(case)
    expected = copy.deepcopy(target_before)
    reference_polyak_update(expected, copy.deepcopy(online_before), rho)
    pairs = zip(names, got_target, expected.parameters(), strict=True)
    for name, got, want in pairs:
        check(f"the target's {name} after polyak_update", got, want, case)
    for name, got, want in zip(names, got_online, online_before.parameters(), strict=True):
        check(f"the online network's {name} (must not change)", got, want, case)


def compare_soft_values(soft_values: Callable, mdp: Any, pi: Any, lam: float, case: str) -> None:
    """ex3: ``soft_values(P, R, gamma, pi, lam)`` against ``mdp.soft_values(pi, lam)``."""
    args = copy.deepcopy((mdp.P, mdp.R, mdp.gamma, pi, lam))
    result = student(soft_values, case=case)(*args)
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise AssertionError(f"case {case!r}: soft_values must return a pair (q, v)")
    _refuse_tracers(case)
    want_q, want_v = mdp.soft_values(pi, lam)
    check("q (the first result of soft_values)", result[0], want_q, case)
    check("v (the second result of soft_values)", result[1], want_v, case)


def check_ratio_gradient(importance_weights: Callable, new: Any, old: Any, case: str) -> None:
    """ex5: the gradient of ``sum(importance_weights(new, old))``: omega w.r.t. new, 0 w.r.t.
    old."""
    import torch

    d_new, d_old = gradients("importance_weights", importance_weights, (new, old), (0, 1), case)
    check("the gradient of sum(omega) w.r.t. log_prob_new", d_new, torch.exp(new - old), case)
    check(
        "the gradient w.r.t. log_prob_old (the data's policy is a constant: detach it)",
        d_old,
        torch.zeros_like(old),
        case,
    )


def clip_gradient(ratio: Any, advantages: Any, eps: float) -> tuple:
    """d min(ratio A, clip(ratio, 1 - eps, 1 + eps) A) / d ratio from the definition (off the
    kinks), and where it is flat: past 1 + eps with A > 0, below 1 - eps with A < 0."""
    import torch

    flat = ((ratio > 1 + eps) & (advantages > 0)) | ((ratio < 1 - eps) & (advantages < 0))
    return torch.where(flat, torch.zeros_like(ratio), advantages), flat


def check_clip_gradient(
    clipped_surrogate: Callable, ratio: Any, advantages: Any, eps: float, case: str
) -> None:
    """ex5: the gradient of the summed clipped surrogate w.r.t. the ratios (exactly 0 where the
    objective is flat) and w.r.t. the advantages (0: detached inside the function)."""
    import torch

    case += f", eps={eps}"
    args = ratio, advantages, eps
    d_ratio, d_advantages = gradients("clipped_surrogate", clipped_surrogate, args, (0, 1), case)
    want, flat = clip_gradient(ratio, advantages, eps)
    check("the gradient w.r.t. ratio", d_ratio, want, case)
    flat_is_flat = "the gradient w.r.t. ratio must be exactly 0 where the clipped objective is "
    flat_is_flat += "flat (the ratio is past the clip range in the direction A favours)"
    check_true((d_ratio[flat] == 0).all(), flat_is_flat, case)
    check(
        "the gradient w.r.t. advantages (constants: detach the advantages inside the function)",
        d_advantages,
        torch.zeros_like(advantages),
        case,
    )


def compare_surrogate(surrogate: Callable, mdp: Any, pi: Any, pi_new: Any, case: str) -> None:
    """ex5: ``surrogate(mdp, pi, pi_new)`` against ``mdp.surrogate(pi, pi_new)``."""
    got = student(surrogate, case=case)(*copy.deepcopy((mdp, pi, pi_new)))
    _refuse_tracers(case)
    check("surrogate", got, mdp.surrogate(pi, pi_new), case)


def check_k3_gradient(kl_k3: Callable, log_prob: Any, ref_log_prob: Any, case: str) -> None:
    """ex6: the gradient of the summed k3 estimates: 1 - r w.r.t. log_prob, 0 w.r.t. the
    reference."""
    import torch

    case += ", the gradient of the summed estimates"
    d_log_prob, d_ref = gradients("kl_k3", kl_k3, (log_prob, ref_log_prob), (0, 1), case)
    check("the gradient w.r.t. log_prob", d_log_prob, 1 - torch.exp(ref_log_prob - log_prob), case)
    check(
        "the gradient w.r.t. ref_log_prob (the reference policy is fixed: detach it)",
        d_ref,
        torch.zeros_like(ref_log_prob),
        case,
    )


def compare_grpo_loss(grpo_loss: Callable, batch: tuple, clip_eps: float, kl_coef: float) -> None:
    """ex6: ``grpo_loss`` against the course's, on a :func:`token_batch`."""
    from rlcourse.algos.grpo import grpo_loss as reference_grpo_loss

    *tensors, case = batch
    case += f", clip_eps={clip_eps}, kl_coef={kl_coef}"
    args = (*tensors, clip_eps, kl_coef)
    got = student(grpo_loss, case=case, allow=GRPO_PROVIDED)(*copy.deepcopy(args))
    _refuse_tracers(case)
    check("grpo_loss", got, reference_grpo_loss(*args)[0], case)


def grpo_gradient(
    new: Any, old: Any, ref: Any, adv: Any, mask: Any, clip_eps: float, kl_coef: float
) -> tuple:
    """d loss / d log_prob of every token: -1 / (N |o_i|) times d/d log_prob of the token's
    objective, rho A (0 where the clipped objective is flat) - kl_coef (1 - r), r = pi_ref / pi."""
    import torch

    rho, r = torch.exp(new - old), torch.exp(ref - new)
    flat = ((rho > 1 + clip_eps) & (adv > 0)) | ((rho < 1 - clip_eps) & (adv < 0))
    d_objective = torch.where(flat, torch.zeros_like(rho), rho * adv) - kl_coef * (1 - r)
    weight = mask / mask.sum(dim=1, keepdim=True) / mask.shape[0]
    return -weight * d_objective, flat & (mask > 0)


def check_grpo_gradient(grpo_loss: Callable, batch: tuple, clip_eps: float, kl_coef: float) -> None:
    """ex6: the gradient of ``grpo_loss`` w.r.t. log_prob, from the definition: exactly 0 where the
    clipped objective is flat (without the KL term) and on padding."""
    *tensors, case = batch
    case += f", clip_eps={clip_eps}, kl_coef={kl_coef}"
    args = (*tensors, clip_eps, kl_coef)
    (got,) = gradients("grpo_loss", grpo_loss, args, (0,), case, allow=GRPO_PROVIDED)
    want, flat = grpo_gradient(*args)
    mask = args[4]
    check("the gradient of grpo_loss w.r.t. log_prob", got, want, case)
    check_true((got[mask == 0] == 0).all(), "padding tokens must get no gradient (mask them)", case)
    if kl_coef == 0:
        check_true(
            (got[flat] == 0).all(),
            "the gradient must be exactly 0 where the clipped objective is "
            "flat (the ratio is past the clip range in the direction A favours)",
            case,
        )
