"""Adam and gradient clipping without the per-call bookkeeping that small networks cannot afford.

A gradient step of the course's networks (64-256 units, batches of 64-256) costs about a
millisecond, and much of it is not arithmetic but Python around each call.
``torch.optim.Adam(fused=True).step()`` gathers every group's tensors, sorts them by device and
dtype and checks its options on every call, and every optimizer's ``step`` and ``zero_grad`` open a
profiler range; ``torch.nn.utils.clip_grad_norm_`` gathers per network. The two below do the same
arithmetic with the same kernels, so their results are bit for bit those of PyTorch's (the tests
check it), gather what does not change between steps once and open no profiler range (a step
still runs its hooks, and then its range, when one is registered or a profiler records).
``python -m benchmarks optim`` times the step, ``zero_grad`` and the clipping against PyTorch's on
the networks of PPO's and DQN's presets (``benchmarks/results/optim_overhead.md``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.optim import optimizer as torch_optimizer

__all__ = ["Adam", "clip_coefficient", "clip_grad_norms_"]


class Adam(torch.optim.Adam):
    """``torch.optim.Adam`` with the fused kernel, each group's tensors gathered once.

    The first step, and any step that PyTorch's own code must handle (a closure, a parameter
    without a gradient or with a sparse one, a group spanning devices or dtypes, the capturable
    and differentiable variants), runs ``torch.optim.Adam.step`` itself, which creates the state.
    Later steps add 1 to the group's step counter and call the same fused kernel with the group's
    current options (a learning rate changed in ``param_groups`` between steps is used). The
    parameters of a group step together, so after the first step they share one step tensor in
    ``state`` (one ``add_`` where ``_foreach_add_`` over every parameter's costs several times
    more); before any step of PyTorch's own, and in ``state_dict``, they get a tensor each again.
    So an edit of one parameter's ``state[p]["step"]`` in place reaches its whole group; assign a
    new tensor to change one. ``load_state_dict`` and ``add_param_group`` forget what was gathered.
    A ``GradScaler`` step (mixed precision) runs PyTorch's own, which unscales and skips on inf.
    """

    _gathered: list[tuple] | None = None  # also for a copy: Optimizer's pickling leaves it out

    def __init__(self, params, lr: float = 1e-3, **kwargs):
        if kwargs.setdefault("fused", True) is not True:
            raise ValueError("rlcourse.optim.Adam is the fused Adam; use torch.optim.Adam instead")
        super().__init__(params, lr=lr, **kwargs)
        self._gathered = None

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        self._gathered = None

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self._gathered = None

    def _gather(self) -> list[tuple] | None:
        """Per group: (group, params, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, counters),
        or None when a parameter has no state yet, a group spans devices or dtypes, or a group is
        capturable or differentiable (options a step may not change: they are read here).

        ``steps`` are the kernel's step tensors, ``counters`` the distinct ones a step adds 1 to:
        one new tensor, shared by the group's parameters, when all their counts agree (every
        group is checked first, so nothing is shared when a step of PyTorch's own follows)."""
        for group in self.param_groups:
            params = list(group["params"])
            if group["differentiable"] or group["capturable"]:
                return None
            if not params or any(p not in self.state or not self.state[p] for p in params):
                return None
            if len({(p.device, p.dtype) for p in params}) > 1:
                return None
        gathered = []
        for group in self.param_groups:
            states = [self.state[p] for p in group["params"]]
            max_sqs = [s["max_exp_avg_sq"] for s in states] if group["amsgrad"] else []
            steps = [s["step"] for s in states]
            if len({float(step) for step in steps}) == 1:
                # A copy: the tensor may be another optimizer's (load_state_dict keeps references)
                shared = steps[0].clone()
                for s in states:
                    s["step"] = shared
                steps = [shared] * len(states)
            counters = list({id(step): step for step in steps}.values())
            gathered.append(
                (
                    group,
                    list(group["params"]),
                    [s["exp_avg"] for s in states],
                    [s["exp_avg_sq"] for s in states],
                    max_sqs,
                    steps,
                    counters,
                )
            )
        return gathered

    def _separate_steps(self) -> None:
        """Give every parameter a step tensor of its own again: PyTorch's step adds 1 to each."""
        seen = set()
        for state in self.state.values():
            step = state.get("step")
            if step is None:
                continue
            if id(step) in seen:
                state["step"] = step.clone()
            seen.add(id(state["step"]))

    def state_dict(self) -> dict:
        """PyTorch's, with a step tensor of its own for every parameter, as PyTorch's Adam keeps
        them: a ``torch.optim.Adam`` that loads it adds 1 to each."""
        packed = super().state_dict()
        packed["state"] = {
            key: {**state, "step": state["step"].clone()} if "step" in state else state
            for key, state in packed["state"].items()
        }
        return packed

    def zero_grad(self, set_to_none: bool = True) -> None:
        """``Optimizer.zero_grad`` without its profiler range (``set_to_none=False``: PyTorch's)."""
        if not set_to_none:
            return super().zero_grad(set_to_none=False)
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def step(self, closure=None):
        # PyTorch wraps every optimizer's step in a profiler range and its hooks; a range costs
        # more than the fused kernel on small networks. The wrapper (``_hooked_step``) runs only
        # when a hook is registered, so hooks still work, or while a profiler records.
        if (
            self._optimizer_step_pre_hooks
            or self._optimizer_step_post_hooks
            or torch_optimizer._global_optimizer_pre_hooks
            or torch_optimizer._global_optimizer_post_hooks
            or torch.autograd._profiler_enabled()  # a profiler sees the step as PyTorch's would
        ):
            return self._hooked_step(closure)
        return self._step(closure)

    step.hooked = True  # tells Optimizer.__init__ not to wrap it

    def _torch_step(self, closure=None):
        """``torch.optim.Adam.step`` without PyTorch's wrapper, which it gets once any
        ``torch.optim.Adam`` exists: the hooks already ran here or will not run."""
        self._gathered = None  # gathered again after it; if it raises, nothing stale is kept
        self._separate_steps()
        step = torch.optim.Adam.step
        return (step.__wrapped__ if getattr(step, "hooked", False) else step)(self, closure)

    def _step(self, closure=None):
        gathered = self._gathered
        grads_per_group = None if gathered is None else [[p.grad for p in g[1]] for g in gathered]
        if (
            closure is not None
            or grads_per_group is None
            or getattr(self, "grad_scale", None) is not None  # set by a GradScaler
            or getattr(self, "found_inf", None) is not None
            or any(grad is None or grad.is_sparse for grads in grads_per_group for grad in grads)
        ):
            # PyTorch's own step gives each parameter its step tensor back: gather again after it
            loss = self._torch_step(closure)
            self._gathered = self._gather()
            return loss
        with torch.no_grad():
            for (group, params, exp_avgs, exp_avg_sqs, max_sqs, steps, counters), grads in zip(
                gathered, grads_per_group, strict=True
            ):
                if len(counters) == 1:
                    counters[0].add_(1)
                else:
                    torch._foreach_add_(counters, 1)
                kernel = (
                    torch._fused_adamw_
                    if group.get("decoupled_weight_decay", False)
                    else torch._fused_adam_
                )
                beta1, beta2 = group["betas"]
                kernel(
                    params,
                    grads,
                    exp_avgs,
                    exp_avg_sqs,
                    max_sqs,
                    steps,
                    amsgrad=group["amsgrad"],
                    lr=group["lr"],
                    beta1=beta1,
                    beta2=beta2,
                    weight_decay=group["weight_decay"],
                    eps=group["eps"],
                    maximize=group["maximize"],
                    grad_scale=None,
                    found_inf=None,
                )
        return None

    _hooked_step = torch.optim.Optimizer.profile_hook_step(_step)


@torch.no_grad()
def clip_grad_norms_(
    parameter_sets: Sequence[Iterable[torch.nn.Parameter]], max_norm: float
) -> list[Tensor]:
    """Clip the gradient norm of each set of parameters to ``max_norm``; return each set's norm
    before clipping (``inf`` clips nothing).

    Per set the arithmetic of ``torch.nn.utils.clip_grad_norm_``: the 2-norm of the per-tensor
    2-norms, then every gradient times ``min(1, max_norm / (norm + 1e-6))``. The per-tensor norms
    of all sets come from one call. Pass lists (an optimizer's ``param_groups``' ``"params"``):
    walking a module's ``parameters()`` costs more than the clipping of a small network.
    """
    groups = [[p.grad for p in params if p.grad is not None] for params in parameter_sets]
    flat = [g for group in groups for g in group]
    norms = torch._foreach_norm(flat) if flat else []
    totals, start = [], 0
    for group in groups:
        if not group:
            totals.append(torch.tensor(0.0))
            continue
        totals.append(torch.linalg.vector_norm(torch.stack(norms[start : start + len(group)])))
        start += len(group)
    for group, total in zip(groups, totals, strict=True):
        if not group:
            continue
        if total.device.type == "cpu" and total.dtype == torch.float32:
            # Reading a CPU number costs nothing (no device to wait for), and four scalar tensor
            # operations cost more than this; a coefficient of exactly 1 changes nothing.
            coef = clip_coefficient(total.item(), max_norm)
            if not coef >= 1.0:  # NaN too: PyTorch multiplies by it
                torch._foreach_mul_(group, coef)
        else:
            torch._foreach_mul_(group, torch.clamp(max_norm / (total + 1e-6), max=1.0))
    return totals


def clip_coefficient(total_norm: float, max_norm: float) -> float:
    """``min(1, max_norm / (total_norm + 1e-6))`` rounded as PyTorch rounds it on a float32
    tensor: the sum, then the reciprocal times ``max_norm`` (``max_norm / t`` is
    ``t.reciprocal() * max_norm``), each rounded to float32."""
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        t = np.float32(total_norm) + np.float32(1e-6)
        coef = (np.float32(1.0) / t) * np.float32(max_norm)
    return float(coef) if not coef >= 1.0 else 1.0
