"""rlcourse.optim: the same numbers as torch.optim.Adam(fused=True) and clip_grad_norm_, bit for bit."""

import copy
import io
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from rlcourse.optim import Adam, clip_coefficient, clip_grad_norms_


def _nets(seed=0):
    torch.manual_seed(seed)
    actor = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 2))
    critic = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))
    return actor, critic


def _groups(actor, critic):
    return [
        {"params": list(actor.parameters()), "lr": 1e-2},
        {"params": list(critic.parameters()), "lr": 3e-3, "weight_decay": 0.1},
    ]


def _assert_same_parameters(nets, ref_nets, grads=False):
    ours = [p for net in nets for p in net.parameters()]
    ref = [p for net in ref_nets for p in net.parameters()]
    for a, b in zip(ours, ref, strict=True):
        assert torch.equal(a.grad, b.grad) if grads else torch.equal(a, b)


def _loss(actor, critic, x):
    return actor(x).square().mean() + (critic(x) - 1).abs().mean()


@pytest.mark.parametrize("options", [{}, {"amsgrad": True}, {"maximize": True, "eps": 1e-5}])
def test_adam_matches_torch_fused_adam_bit_for_bit(options):
    ours_nets, ref_nets = _nets(), _nets()
    ours = Adam(_groups(*ours_nets), **options)
    ref = torch.optim.Adam(_groups(*ref_nets), fused=True, **options)
    generator = torch.Generator().manual_seed(1)
    for step in range(30):
        x = torch.randn(32, 4, generator=generator)
        if step == 12:  # a learning rate changed between steps, as DQN's decay does
            ours.param_groups[0]["lr"] = ref.param_groups[0]["lr"] = 5e-4
        for opt, nets in ((ours, ours_nets), (ref, ref_nets)):
            opt.zero_grad(set_to_none=True)
            _loss(*nets, x).backward()
            opt.step()
    _assert_same_parameters(ours_nets, ref_nets)
    for a, b in zip(ours.state.values(), ref.state.values(), strict=True):
        assert all(torch.equal(a[k], b[k]) for k in b)


def test_adam_after_load_state_dict_and_with_a_missing_gradient():
    nets, ref_nets = _nets(), _nets()
    ours = Adam(_groups(*nets))
    ref = torch.optim.Adam(_groups(*ref_nets), fused=True)
    x = torch.randn(8, 4)
    for opt, n in ((ours, nets), (ref, ref_nets)):
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            _loss(*n, x).backward()
            opt.step()
    # Reload from a copy: the state tensors are new objects, the gathered lists must follow them.
    ours.load_state_dict(copy.deepcopy(ours.state_dict()))
    for opt, n in ((ours, nets), (ref, ref_nets)):
        opt.zero_grad(set_to_none=True)
        n[0](x).sum().backward()  # the critic gets no gradient: PyTorch's own step handles it
        opt.step()
        opt.zero_grad(set_to_none=True)
        _loss(*n, x).backward()
        opt.step()
    _assert_same_parameters(nets, ref_nets)


def test_adam_is_only_the_fused_one():
    with pytest.raises(ValueError, match="fused"):
        Adam(nn.Linear(2, 2).parameters(), fused=False)


@pytest.mark.parametrize("max_norm", [0.05, 1.0, 1e3, float("inf")])
def test_clip_grad_norms_matches_torch_per_set(max_norm):
    ours_nets, ref_nets = _nets(), _nets()
    x = torch.randn(16, 4)
    for nets in (ours_nets, ref_nets):
        _loss(*nets, x).backward()
    norms = clip_grad_norms_([n.parameters() for n in ours_nets], max_norm)
    ref_norms = [nn.utils.clip_grad_norm_(n.parameters(), max_norm) for n in ref_nets]
    for norm, ref_norm in zip(norms, ref_norms, strict=True):
        assert torch.equal(norm, ref_norm)
    _assert_same_parameters(ours_nets, ref_nets, grads=True)
    # The definition: the 2-norm of all of a set's gradient entries
    actor_grads = torch.cat([p.grad.flatten() for p in ours_nets[0].parameters()])
    assert actor_grads.norm().item() <= min(max_norm, norms[0].item()) * (1 + 1e-5)


_norms = st.floats(min_value=0.0, allow_infinity=True, width=32) | st.just(math.nan)


@given(
    total=st.one_of(_norms, st.sampled_from([0.0, 1e-6, 0.5 - 1e-6, 0.5, 1.0, 10.0, 3e38])),
    max_norm=st.one_of(
        st.floats(min_value=1e-30, allow_nan=False, allow_infinity=True),
        st.sampled_from([0.5, 1.0, 10.0, 1e-6]),
    ),
)
def test_clip_coefficient_is_pytorchs_float32_expression(total, max_norm):
    # The expression of torch.nn.utils.clip_grad_norm_, on a float32 norm as the clipping has
    ref = torch.clamp(max_norm / (torch.tensor(total, dtype=torch.float32) + 1e-6), max=1.0).item()
    ours = clip_coefficient(total, max_norm)
    assert (math.isnan(ours) and math.isnan(ref)) or ours == ref


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_clip_grad_norms_matches_torch_at_the_clipping_edge(dtype, scale):
    # Norms just below, at and above max_norm, in both precisions (float64 takes PyTorch's path)
    ours_nets, ref_nets = _nets(), _nets()
    x = torch.randn(16, 4)
    for nets in (ours_nets, ref_nets):
        for net in nets:
            net.to(dtype)
        _loss(*nets, x.to(dtype)).mul(scale).backward()
    total = nn.utils.get_total_norm([p.grad for p in ref_nets[0].parameters()]).item()
    for max_norm in (total * (1 - 1e-7), total, total * (1 + 1e-7), total + 1e-6):
        norms = clip_grad_norms_([list(n.parameters()) for n in ours_nets], max_norm)
        ref = [nn.utils.clip_grad_norm_(n.parameters(), max_norm) for n in ref_nets]
        assert all(torch.equal(a, b) for a, b in zip(norms, ref, strict=True))
        _assert_same_parameters(ours_nets, ref_nets, grads=True)


def test_clip_grad_norms_of_a_set_without_gradients_is_zero():
    net = nn.Linear(3, 1)
    (norm,) = clip_grad_norms_([net.parameters()], 1.0)
    assert norm.item() == 0.0


def test_adam_shares_a_step_counter_per_group_and_gives_it_back_for_pytorchs_step():
    # After the first step a group's parameters share one step tensor (one add_ a step). A step of
    # PyTorch's own (here: a parameter without a gradient) must not add 1 to it once per parameter:
    # every count stays the reference's, through a save and a reload. What is saved has a tensor
    # per parameter, as PyTorch's: a torch.optim.Adam that loads it counts right too.
    nets, ref_nets = _nets(), _nets()
    ours = Adam(_groups(*nets))
    ref = torch.optim.Adam(_groups(*ref_nets), fused=True)
    x = torch.randn(8, 4)

    def step(partial=False):
        for opt, n in ((ours, nets), (ref, ref_nets)):
            opt.zero_grad(set_to_none=True)
            (n[0](x).sum() if partial else _loss(*n, x)).backward()
            opt.step()

    def counts(opt):
        return [float(s["step"]) for s in opt.state.values()]

    for _ in range(3):
        step()
    actor_steps = {id(ours.state[p]["step"]) for p in nets[0].parameters()}
    assert len(actor_steps) == 1  # shared
    step(partial=True)  # the critic has no gradient: PyTorch's own step, the actor's counts + 1
    step()
    assert counts(ours) == counts(ref) == [5.0] * 4 + [4.0] * 4
    saved = ours.state_dict()
    assert len({id(s["step"]) for s in saved["state"].values()}) == 8
    live = [ours.state[p]["step"] for p in ours.state]
    assert not any(s["step"] is step for s in saved["state"].values() for step in live)
    buffer = io.BytesIO()
    torch.save(saved, buffer)
    buffer.seek(0)
    ours.load_state_dict(torch.load(buffer))
    for _ in range(2):
        step()
    step(partial=True)
    assert counts(ours) == counts(ref) == [8.0] * 4 + [6.0] * 4
    _assert_same_parameters(nets, ref_nets)
    # PyTorch's Adam loading what ours saved counts each parameter once per step, as ref does
    other_nets = _nets()
    for mine, theirs in zip(other_nets, nets, strict=True):
        mine.load_state_dict(theirs.state_dict())
    other = torch.optim.Adam(_groups(*other_nets), fused=True)
    other.load_state_dict(copy.deepcopy(ours.state_dict()))  # as from a file
    step()
    other.zero_grad(set_to_none=True)
    _loss(*other_nets, x).backward()
    other.step()
    assert counts(other) == counts(ref) == [9.0] * 4 + [7.0] * 4
    _assert_same_parameters(other_nets, ref_nets)


def test_adam_counts_right_after_a_step_that_raised():
    # A closure that raises stops PyTorch's own step before it changes anything; the steps after
    # it must not go on adding to a step tensor that the parameters no longer share.
    nets, ref_nets = _nets(), _nets()
    ours = Adam(_groups(*nets))
    ref = torch.optim.Adam(_groups(*ref_nets), fused=True)
    x = torch.randn(8, 4)

    def failing():
        raise RuntimeError("closure failed")

    for k in range(6):
        for opt, n in ((ours, nets), (ref, ref_nets)):
            if k == 3:
                with pytest.raises(RuntimeError, match="closure failed"):
                    opt.step(failing)
            opt.zero_grad(set_to_none=True)
            _loss(*n, x).backward()
            opt.step()
    assert [float(s["step"]) for s in ours.state.values()] == [6.0] * 8
    _assert_same_parameters(nets, ref_nets)
    assert copy.deepcopy(ours)._gathered is None  # a copy gathers its own lists on its first step


def test_adam_takes_its_own_path_after_the_first_step(monkeypatch):
    # The bit-for-bit tests above would also pass if every step fell back to PyTorch's own; count.
    calls = []
    original = torch.optim.Adam.step

    def counted(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", counted)
    nets = _nets()
    opt = Adam(_groups(*nets))
    x = torch.randn(8, 4)
    for _ in range(5):
        opt.zero_grad(set_to_none=True)
        _loss(*nets, x).backward()
        opt.step()
    assert len(calls) == 1  # the first step creates the state; the other four are rlcourse's


def test_adam_runs_no_profiler_range_unless_a_hook_asks_for_the_wrapper():
    # PyTorch wraps Optimizer.step and zero_grad in profiler ranges, each costing more than the fused
    # kernel on small networks; rlcourse's Adam skips them, yet step hooks still run, once a step.
    from torch.utils._python_dispatch import TorchDispatchMode

    class Ops(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.append(str(func))
            return func(*args, **(kwargs or {}))

    torch.optim.Adam(nn.Linear(1, 1).parameters())  # PyTorch now wraps torch.optim.Adam.step too
    nets = _nets()
    opt = Adam(_groups(*nets))
    x = torch.randn(8, 4)
    seen = []
    handle = opt.register_step_pre_hook(lambda o, args, kwargs: seen.append("pre"))
    opt.register_step_post_hook(lambda o, args, kwargs: seen.append("post"))
    for step in range(5):
        if step == 3:  # from here on no hook: no range either
            handle.remove()
            opt._optimizer_step_post_hooks.clear()
        _loss(*nets, x).backward()
        with Ops() as ops:
            opt.step()
            opt.zero_grad()
        assert all(p.grad is None for net in nets for p in net.parameters())
        ranges = [n for n in ops.names if n.startswith("profiler.")]
        assert len(ranges) == (2 if step < 3 else 0), (step, ranges)  # the step's enter and exit
    assert seen == ["pre", "post"] * 3  # once a step, the first (PyTorch's own path) included
    _loss(*nets, x).backward()
    opt.zero_grad(set_to_none=False)  # PyTorch's own: zeros kept in place
    assert all(torch.equal(p.grad, torch.zeros_like(p)) for net in nets for p in net.parameters())


def test_adam_under_a_grad_scaler_matches_torch_fused_adam():
    # A GradScaler leaves unscaling and the inf check to a fused optimizer's step (it sets
    # grad_scale and found_inf on it): that step must be PyTorch's own, not the fast path.
    nets, ref_nets = _nets(), _nets()
    ours = Adam(_groups(*nets))
    ref = torch.optim.Adam(_groups(*ref_nets), fused=True)
    scalers = [torch.amp.GradScaler("cpu", init_scale=1024.0) for _ in range(2)]
    x = torch.randn(8, 4)
    for _ in range(5):
        for opt, n, scaler in zip((ours, ref), (nets, ref_nets), scalers, strict=True):
            opt.zero_grad(set_to_none=True)
            scaler.scale(_loss(*n, x)).backward()
            scaler.step(opt)
            scaler.update()
    _assert_same_parameters(nets, ref_nets)
