"""The grading guard of ``rlcourse/grading/``: graded code cannot run the package's own answers.

Unit tests of :class:`rlcourse.grading.forbid` and the helpers built on it (``student``,
``compare``, ``gradients``): every route by which a student's function can reach a reference is
caught with a message that says why; honest code passes; the test's own call of the reference
works; exceptions propagate and the previous profiler is back afterwards in every case.
``tests/test_exercises.py`` proves the same through nbgrader's autograding of whole notebooks.
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import inspect
import os
import re
import subprocess
import sys
import textwrap
import threading
import types
from pathlib import Path

import numpy as np
import pytest
import torch

import rlcourse.advantages as advantages_module
from rlcourse import grading
from rlcourse.advantages import gae as reference_gae
from rlcourse.grading import (
    FORBIDDEN,
    DelegationError,
    compare,
    forbid,
    gradients,
    rollout,
    student,
)

ROOT = Path(__file__).resolve().parents[1]


def gae_args(seed: int = 1) -> tuple:
    data, _ = rollout(seed=seed, steps=12, envs=3)
    keys = ("rewards", "values", "next_values", "terminated", "truncated")
    return (*(data[k] for k in keys), 0.9, 0.95)


def honest_gae(rewards, values, next_values, terminated, truncated, gamma, gae_lambda):
    """GAE written out, as a student would: no rlcourse in it."""
    not_terminal = (~terminated.bool()).to(rewards.dtype)
    delta = rewards + gamma * next_values * not_terminal - values
    continues = (~(terminated.bool() | truncated.bool())).to(rewards.dtype)
    out, running = torch.empty_like(delta), torch.zeros_like(delta[0])
    for t in reversed(range(delta.shape[0])):
        running = delta[t] + gamma * gae_lambda * continues[t] * running
        out[t] = running
    return out


def compile_student(source: str, **namespace) -> types.FunctionType:
    """The last function ``source`` defines, compiled as a notebook cell is (its own globals)."""
    namespace = {"torch": torch, **namespace}
    code = textwrap.dedent(source)
    exec(compile(code, "<student cell>", "exec"), namespace)
    name = [line.split("(")[0][4:] for line in code.splitlines() if line.startswith("def ")][-1]
    return namespace[name]


# ------------------------------------------------------------------------------ honest code passes


def test_honest_code_passes_and_the_test_calls_the_reference():
    args = gae_args()
    compare("gae", honest_gae, reference_gae, args, "a rollout")  # raises if anything is wrong
    got = student(honest_gae)(*args)
    assert torch.allclose(got, reference_gae(*args), atol=1e-6)
    assert sys.getprofile() is None


def test_an_honest_helper_that_resembles_a_package_helper_is_not_a_copy():
    """Only code identical in its instructions, names included, counts as a copy: a student's own
    terminal mask, written like ``rlcourse.objectives._not_terminal`` with other names, passes."""
    mask = compile_student(
        """
        def not_terminal(done, reference):
            return (~done.bool()).to(reference.dtype)

        def dqn_target(rewards, next_q, terminated, gamma):
            return rewards + gamma * not_terminal(terminated, rewards) * next_q.max(dim=-1).values
        """
    )
    rewards, next_q = torch.tensor([1.0, 2.0]), torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    terminated = torch.tensor([False, True])
    from rlcourse.objectives import dqn_target

    compare("dqn_target", mask, dqn_target, (rewards, next_q, terminated, 0.9), "two transitions")


# ------------------------------------------------------------------------- every route is caught


def route_import_inside():
    return compile_student(
        """
        def gae(*args):
            from rlcourse.advantages import gae as g
            return g(*args)
        """
    )


def route_module_attribute():
    return compile_student(
        """
        import rlcourse.advantages

        def gae(*args):
            return rlcourse.advantages.gae(*args)
        """
    )


def route_global_alias():
    # The test cells bind reference_gae at the notebook's top level, where student code sees it
    source = "def gae(*args):\n    return reference_gae(*args)\n"
    return compile_student(source, reference_gae=reference_gae)


def route_the_reference_itself():
    return reference_gae  # `from rlcourse.advantages import gae` in the solution cell


def route_function_copy():
    return types.FunctionType(reference_gae.__code__, dict(vars(advantages_module)), "gae")


def route_renamed_code_copy():
    code = reference_gae.__code__.replace(co_name="mine", co_qualname="mine", co_filename="<mine>")
    return types.FunctionType(code, dict(vars(advantages_module)), "mine")


def route_source_of_the_function():
    # Compiled on its own (so `torch.x` compiles to other instructions than in the module) and
    # without its docstring: still the same function
    source = inspect.getsource(reference_gae).replace(reference_gae.__doc__, "")
    namespace = dict(vars(advantages_module))
    exec(compile(source, "<copied>", "exec"), namespace)
    return namespace["gae"]


def route_source_of_the_module():
    namespace = {"__name__": "copied"}
    source = Path(advantages_module.__file__).read_text()
    exec(compile(source, "<copied module>", "exec"), namespace)
    return namespace["gae"]


def route_partial():
    return functools.partial(reference_gae)


def route_through_another_package_function():
    # A2C's and PPO's batch builder calls rlcourse.advantages.gae
    from rlcourse.algos.common import gae_batch

    def gae(rewards, values, next_values, terminated, truncated, gamma, gae_lambda):
        critic = lambda obs: values if obs == "S" else next_values  # noqa: E731
        rollout = types.SimpleNamespace(obs="S", next_obs="S'", rewards=rewards, actions=rewards)
        rollout.terminated, rollout.truncated = terminated, truncated
        config = types.SimpleNamespace(gamma=gamma, gae_lambda=gae_lambda)
        config.normalize_advantages = False
        return gae_batch(critic, rollout, config)[2].reshape(rewards.shape)

    return gae


def route_caught_and_hidden():
    def gae(*args):
        try:
            return reference_gae(*args)
        except AssertionError:  # the guard's error, swallowed
            return honest_gae(*args)

    return gae


COPY = "ran a copy of rlcourse's own gae"
ROUTES = {
    "import inside the function": (route_import_inside, "called rlcourse's own gae"),
    "module attribute": (route_module_attribute, "called rlcourse's own gae"),
    "reference_gae, a global of the notebook": (route_global_alias, "called rlcourse's own gae"),
    "the reference itself": (route_the_reference_itself, "called rlcourse's own gae"),
    "FunctionType(ref.__code__)": (route_function_copy, "called rlcourse's own gae"),
    "code.replace(name, filename)": (route_renamed_code_copy, COPY),
    "exec of the function's source": (route_source_of_the_function, COPY),
    "exec of the module's file": (route_source_of_the_module, COPY),
    "functools.partial": (route_partial, "called rlcourse's own gae"),
    "a2c's gae_batch": (route_through_another_package_function, "called rlcourse's own gae"),
    "try/except around the call": (route_caught_and_hidden, "called rlcourse's own gae"),
}


@pytest.mark.parametrize("route", list(ROUTES))
def test_delegation_is_caught_by_every_route(route):
    make, message = ROUTES[route]
    args = gae_args()
    with pytest.raises(DelegationError) as caught:
        compare("gae", make(), reference_gae, args, "a rollout")
    text = str(caught.value)
    assert text.startswith("case 'a rollout': gae ") and message in text, text
    assert text.endswith("(rlcourse.advantages): write it yourself"), text
    assert isinstance(caught.value, AssertionError)  # nbgrader shows it as a failed test
    assert sys.getprofile() is None  # the guard is gone
    assert torch.allclose(reference_gae(*args), reference_gae(*args))  # the test may call it again


def test_every_forbidden_name_is_a_function_of_its_module_and_is_caught():
    """A typo in FORBIDDEN would silently let a reference through: every name resolves, and calling
    the package's code behind it under the guard fails with that name."""
    for module, names in FORBIDDEN.items():
        mod = __import__(module, fromlist=["_"])
        for qualname in names:
            obj = mod
            for part in qualname.split("."):
                obj = getattr(obj, part)
            obj = inspect.unwrap(obj)
            assert isinstance(obj, types.FunctionType), f"{module}.{qualname}"
            assert grading._judge(obj.__code__) == ("called", module, qualname)


def call_polyak():
    from rlcourse.nets import polyak_update  # wrapped by torch.no_grad()

    polyak_update(torch.nn.Linear(2, 1), torch.nn.Linear(2, 1), 0.5)


def call_smoothed_action():
    low, high = torch.tensor([-1.0]), torch.tensor([1.0])
    return grading.reference_smoothed_action(torch.zeros(2, 1), torch.ones(2, 1), 0.5, low, high)


def call_surrogate():
    from rlcourse.tabular import random_mdp

    pi = np.full((3, 2), 0.5)
    return random_mdp(3, 2).surrogate(pi, pi)  # a method of the MDP the test hands over


def call_soft_values():
    from rlcourse.tabular import random_mdp

    return random_mdp(3, 2).soft_values(np.full((3, 2), 0.5), 0.1)


def call_ess():
    from rlcourse.importance import effective_sample_size

    return effective_sample_size(np.ones(3))


@pytest.mark.parametrize(
    "name, call",
    [
        ("polyak_update", call_polyak),
        ("reference_smoothed_action", call_smoothed_action),
        ("FiniteMDP.surrogate", call_surrogate),
        ("FiniteMDP.soft_values", call_soft_values),
        ("effective_sample_size", call_ess),
    ],
)
def test_decorated_functions_methods_and_wrapped_references_are_caught(name, call):
    with pytest.raises(DelegationError, match=f"own {name} "):
        student(call, name="the student's function")()


def test_ex6_may_use_the_pieces_its_setup_cell_gives_and_nothing_else():
    from rlcourse.objectives import clipped_surrogate, kl_k3

    ratio, adv = torch.tensor([0.5, 1.5]), torch.tensor([1.0, -1.0])
    provided = ("rlcourse.objectives.importance_weights", "rlcourse.objectives.clipped_surrogate")
    student(clipped_surrogate, allow=provided)(ratio, adv, 0.2)
    with pytest.raises(DelegationError, match="own kl_k3"):
        student(kl_k3, allow=provided)(ratio.log(), adv)
    with pytest.raises(ValueError, match="allow='rlcourse.objectives.no_such_thing'"):
        forbid("x", allow=["rlcourse.objectives.no_such_thing"])


# ---------------------------------------------------------------- the guard cannot be switched off


def test_removing_the_profiler_fails():
    def remove(*args):
        sys.setprofile(None)
        return honest_gae(*args)

    def remove_and_restore(*args):
        profiler = sys.getprofile()
        sys.setprofile(None)
        result = reference_gae(*args)
        sys.setprofile(profiler)
        return result

    for fn in (remove, remove_and_restore):
        with pytest.raises(DelegationError, match="called sys.setprofile, which would switch"):
            student(fn)(*gae_args())
        assert sys.getprofile() is None


def test_removing_the_profiler_behind_its_back_fails_at_the_end():
    """ctypes is not stopped (no sandbox), but a profiler that is gone at the end is noticed."""

    def remove(*args):
        ctypes.pythonapi.PyEval_SetProfile(None, None)
        return honest_gae(*args)

    with pytest.raises(DelegationError, match="removed or replaced the profiler"):
        student(remove)(*gae_args())

    def remove_and_raise(*args):  # as when the cell's time limit interrupts the profiler itself
        ctypes.pythonapi.PyEval_SetProfile(None, None)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        student(remove_and_raise)(*gae_args())
    assert sys.getprofile() is None


def test_threads_and_processes_are_refused():
    def in_a_thread(*args):
        out = []
        thread = threading.Thread(target=lambda: out.append(reference_gae(*args)))
        thread.start()
        thread.join()
        return out[0]

    def in_a_process(*args):
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        return honest_gae(*args)

    with pytest.raises(DelegationError, match="started a thread, which the guard cannot watch"):
        student(in_a_thread)(*gae_args())
    with pytest.raises(DelegationError, match="started a process, which the guard cannot watch"):
        student(in_a_process)(*gae_args())


def test_a_lazy_result_is_read_or_refused_under_the_guard():
    """A result that would compute the answer only when the test reads it is read under the guard,
    or refused: only tensors, arrays, numbers and tuples or lists of them come back."""
    args = gae_args()

    class Lazy:
        def __array__(self, dtype=None, copy=None):
            return reference_gae(*args).numpy()

    class LazyPair(tuple):
        def __iter__(self):
            return iter((reference_gae(*args), reference_gae(*args)))

    lazy = "returned a test_grading_guard.Lazy, which is not a number"
    with pytest.raises(AssertionError, match=lazy):
        student(lambda *a: Lazy(), case="lazy")(*args)
    with pytest.raises(DelegationError, match="called rlcourse's own gae"):
        student(lambda *a: LazyPair((0, 0)), name="soft_values")(*args)
    with pytest.raises(AssertionError, match="an array of Python objects"):
        student(lambda *a: np.array([object()], dtype=object))(*args)


# ------------------------------------------------------------------- exceptions and the profiler


def test_exceptions_propagate_and_no_profiler_is_left_behind():
    def raises(*args):
        raise ValueError("my own bug")

    with pytest.raises(ValueError, match="my own bug"):
        student(raises)(*gae_args())
    assert sys.getprofile() is None
    with pytest.raises(DelegationError):
        student(route_import_inside())(*gae_args())
    assert sys.getprofile() is None
    with pytest.raises(NotImplementedError):  # a blank solution cell
        blank = compile_student("def gae(*args):\n    raise NotImplementedError()\n")
        student(blank)(*gae_args())
    assert sys.getprofile() is None


def test_a_guard_inside_a_guard_keeps_the_outer_rules():
    provided = ("rlcourse.objectives.clipped_surrogate",)
    from rlcourse.objectives import clipped_surrogate

    def widen(*args):  # a student who opens a guard of their own, allowing what they like
        return student(clipped_surrogate, allow=provided)(*args)

    with pytest.raises(DelegationError, match="own clipped_surrogate"):
        student(widen)(torch.ones(2), torch.ones(2), 0.2)
    assert sys.getprofile() is None


# ---------------------------------------------------------------------------------- gradients


def test_gradients_of_an_honest_loss_and_of_a_detached_one():
    ratio, adv = torch.tensor([0.5, 1.1, 1.5]), torch.tensor([1.0, -1.0, 1.0])

    def clipped(ratio, advantages, eps):
        clipped = torch.clamp(ratio, 1 - eps, 1 + eps)
        return torch.minimum(ratio * advantages.detach(), clipped * advantages.detach())

    case = "three ratios"
    d_ratio, d_adv = gradients("clipped_surrogate", clipped, (ratio, adv, 0.2), (0, 1), case)
    assert d_ratio.tolist() == [1.0, -1.0, 0.0] and d_adv.tolist() == [0.0, 0.0, 0.0]
    assert not ratio.requires_grad  # the caller's tensors are left alone

    detached = lambda r, a, e: clipped(r, a, e).detach()  # noqa: E731
    cut = "case 'three ratios': clipped_surrogate returned a tensor cut off from the graph"
    with pytest.raises(AssertionError, match=cut):
        gradients("clipped_surrogate", detached, (ratio, adv, 0.2), (0,), case)
    with pytest.raises(AssertionError, match="returned a float, expected a torch.Tensor"):
        gradients("loss", lambda r, a, e: 0.5, (ratio, adv, 0.2), (0,), case)
    from rlcourse.objectives import clipped_surrogate

    delegated = "case 'three ratios': clipped_surrogate called rlcourse's own clipped_surrogate"
    with pytest.raises(DelegationError, match=delegated):
        gradients("clipped_surrogate", clipped_surrogate, (ratio, adv, 0.2), (0,), case)


# --------------------------------------------------------------------------------- without torch


def test_the_guard_needs_no_torch():
    """The importance-sampling exercise runs without torch: importing grading and guarding NumPy
    code imports none, and a copy of a NumPy reference is still caught."""
    script = textwrap.dedent(
        """
        import inspect, sys
        import numpy as np
        from rlcourse.grading import DelegationError, compare
        from rlcourse.importance import effective_sample_size as reference_ess

        def ess(weights):
            w = np.asarray(weights, dtype=float)
            w = w / w.max()
            return float(w.sum() ** 2 / (w**2).sum())

        compare("effective_sample_size", ess, reference_ess, (np.array([1.0, 2.0]),), "2 weights")
        namespace = {"np": np}
        exec("from __future__ import annotations\\n" + inspect.getsource(reference_ess), namespace)
        try:
            compare("effective_sample_size", namespace["effective_sample_size"], reference_ess,
                    (np.array([1.0, 2.0]),), "2 weights")
        except DelegationError as err:
            print(err)
        print("torch imported:", "torch" in sys.modules)
        """
    )
    command = [sys.executable, "-c", script]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=True)
    assert "effective_sample_size ran a copy of rlcourse's own effective_sample_size" in done.stdout
    assert "torch imported: False" in done.stdout


# ------------------------------------------------ what the tests look up cannot be rebound (H1)


def run_cells(namespace: dict, *cells: str) -> dict:
    """Run ``cells`` as notebook cells do: one after the other, in one namespace (the
    notebook's)."""
    for cell in cells:
        exec(compile(textwrap.dedent(cell), "<cell>", "exec"), namespace)
    return namespace


def notebook() -> dict:
    return {"__name__": "__main__", "torch": torch, "np": np, "honest_gae": honest_gae}


SOFT_VALUES_TEST = """
    from rlcourse.grading import compare_soft_values
    from rlcourse.tabular import random_mdp

    compare_soft_values(soft_values, random_mdp(3, 2, seed=0), np.full((3, 2), 0.5), 0.5, "a case")
"""


def test_rebinding_the_notebooks_names_while_graded_fails_and_is_put_back():
    namespace = run_cells(notebook(), "from rlcourse.grading import check, compare, student")
    solution = """
        def soft_values(P, R, gamma, pi, temperature):
            global check
            check = lambda *a, **k: None
            return 0, 0
    """
    with pytest.raises(DelegationError, match="soft_values changed the notebook's `check` while"):
        run_cells(namespace, solution, SOFT_VALUES_TEST)
    assert namespace["check"] is grading.check  # put back
    added = """
        def gae(*args):
            global expected_answer
            expected_answer = 1
            return honest_gae(*args)
    """
    test = "compare('gae', gae, reference_gae, args, 'a rollout')"
    namespace.update(reference_gae=reference_gae, args=gae_args())
    with pytest.raises(DelegationError, match="gae changed the notebook's `expected_answer`"):
        run_cells(namespace, added, test)
    assert "expected_answer" not in namespace


def test_rebinding_the_guards_module_builtins_or_code_while_graded_fails_and_is_put_back():
    check_code, allowed = grading.check.__code__, grading.GRPO_PROVIDED

    def widen(*args):
        grading.GRPO_PROVIDED = (*allowed, "rlcourse.algos.grpo.grpo_loss")
        return honest_gae(*args)

    def silence(*args):
        grading.check.__code__ = (lambda *a, **k: None).__code__
        return honest_gae(*args)

    def builtin(*args):
        import builtins

        builtins.isinstance = lambda *a: True
        return honest_gae(*args)

    for fn, what in (
        (widen, "rlcourse.grading's `GRPO_PROVIDED`"),
        (silence, "the code of rlcourse.grading.check"),
        (builtin, "builtins's `isinstance`"),
    ):
        with pytest.raises(DelegationError, match=f"gae changed {what}"):
            compare("gae", fn, reference_gae, gae_args(), "a rollout")
    assert grading.GRPO_PROVIDED is allowed and grading.check.__code__ is check_code
    assert isinstance(1, int) and not isinstance(1, str)


# What a graded function could rebind in each module of rlcourse.grading: a name the tests look up
# there while they run (check in calls: compare's verdict; DelegationError in guard: what the
# guard raises), and a function whose code runs in the tests or in the guard.
REBIND_IN = {
    "rlcourse.grading": "check",
    "rlcourse.grading.cases": "rollout",
    "rlcourse.grading.calls": "check",
    "rlcourse.grading.cells": "GRPO_PROVIDED",
    "rlcourse.grading.checks": "check",
    "rlcourse.grading.forbidden": "FORBIDDEN",
    "rlcourse.grading.guard": "DelegationError",
}
RECODE_IN = {
    "rlcourse.grading.cases": "rollout",
    "rlcourse.grading.calls": "_result",
    "rlcourse.grading.cells": "compare_polyak",
    "rlcourse.grading.checks": "check",
    "rlcourse.grading.forbidden": "_judge",
    "rlcourse.grading.guard": "_tracer_set",
}


def test_the_grading_modules_are_the_files_of_the_package():
    """The guard snapshots the modules of GRADING_MODULES and takes their frames as its own: a
    file added to rlcourse/grading/ and left out of it would be an unwatched namespace."""
    files = (ROOT / "rlcourse" / "grading").glob("*.py")
    names = {"rlcourse.grading" + ("" if p.stem == "__init__" else "." + p.stem) for p in files}
    assert set(grading.GRADING_MODULES) == names
    assert set(REBIND_IN) == names and set(RECODE_IN) == names - {"rlcourse.grading"}


@pytest.mark.parametrize("module", list(REBIND_IN))
def test_rebinding_a_name_of_any_grading_module_while_graded_fails_and_is_put_back(module):
    """``rlcourse.grading.check = ...`` and ``rlcourse.grading.checks.check = ...`` alike."""
    mod, name = importlib.import_module(module), REBIND_IN[module]
    before = vars(mod)[name]

    def rebind(*args):
        setattr(mod, name, None)
        return honest_gae(*args)

    changed = re.escape(f"gae changed {module}'s `{name}` while it was being graded (put back)")
    with pytest.raises(DelegationError, match=changed):
        compare("gae", rebind, reference_gae, gae_args(), "a rollout")
    assert vars(mod)[name] is before
    assert sys.getprofile() is None


@pytest.mark.parametrize("module", list(RECODE_IN))
def test_changing_the_code_of_any_grading_modules_function_while_graded_fails(module):
    function = getattr(importlib.import_module(module), RECODE_IN[module])
    assert function.__module__ == module  # defined there, not imported
    code = function.__code__

    def recode(*args):
        function.__code__ = (lambda *a, **k: None).__code__
        return honest_gae(*args)

    changed = re.escape(f"gae changed the code of {module}.{function.__qualname__} while")
    with pytest.raises(DelegationError, match=changed):
        compare("gae", recode, reference_gae, gae_args(), "a rollout")
    assert function.__code__ is code


def test_the_guard_knows_every_forbidden_module_by_its_own_file():
    """The package's functions are known by their files: each module of FORBIDDEN (the test cells'
    checks in rlcourse/grading/cells.py among them) maps to the file it was loaded from."""
    from rlcourse.grading import forbidden

    for module in FORBIDDEN:
        path = importlib.import_module(module).__file__
        assert forbidden._source_file(module) == os.path.normcase(os.path.realpath(path)), module
    assert "rlcourse.grading.cells" in FORBIDDEN


def test_the_test_cells_checks_find_the_notebook_through_the_grading_frames():
    """A check of rlcourse.grading.cells calls the student through calls.student, which opens the
    guard: the notebook's namespace is still the one snapshotted, under every grading frame."""
    namespace = run_cells(notebook(), "from rlcourse.grading import compare_soft_values")
    solution = """
        def soft_values(P, R, gamma, pi, temperature):
            global compare_soft_values
            compare_soft_values = None
            return 0, 0
    """
    with pytest.raises(DelegationError, match="changed the notebook's `compare_soft_values`"):
        run_cells(namespace, solution, SOFT_VALUES_TEST)
    assert namespace["compare_soft_values"] is grading.compare_soft_values


def test_ex6s_allow_list_is_immutable_and_passed_as_an_argument():
    from rlcourse.algos.grpo import grpo_loss

    assert isinstance(grading.GRPO_PROVIDED, tuple)
    batch = grading.token_batch(0, answers=3, length=4)

    def delegate(*args):
        return grpo_loss(*args)[0]

    with pytest.raises(DelegationError, match="own grpo_loss"):
        grading.compare_grpo_loss(delegate, batch, 0.2, 0.0)


def test_no_test_cell_defines_a_helper_or_calls_a_reference_itself():
    """Test cells import their checks from rlcourse.grading (a solution cell cannot rebind what
    those use), and never compute a reference's answer themselves (it would exist, in the
    notebook, while a student's function runs)."""
    import ast
    import json

    for path in sorted((ROOT / "notebooks" / "exercises" / "source").glob("*/*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if not meta.get("grade"):
                continue
            where = (path.name, meta["grade_id"])
            for node in ast.walk(ast.parse("".join(cell["source"]))):
                assert not isinstance(node, (ast.FunctionDef, ast.Global)), where
                if isinstance(node, ast.Call):
                    func = node.func
                    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                    assert not name.startswith("reference_"), where
                    assert name not in ("surrogate", "soft_values"), where


# ------------------------------------------------ no answer exists while the student runs (H2)


def test_the_expected_answer_does_not_exist_while_the_students_code_runs():
    """A student's function that reads every frame above it finds no answer: the student runs
    first, the reference afterwards; inputs changed in place change nothing."""
    found = []

    def peek(*args):
        frame = sys._getframe(1)
        while frame is not None:
            for value in (*frame.f_locals.values(), *frame.f_globals.values()):
                for item in value if isinstance(value, tuple) else (value,):
                    if isinstance(item, (torch.Tensor, np.ndarray)):
                        found.append(item)
            frame = frame.f_back
        result = honest_gae(*args)
        args[0].zero_()  # the inputs changed in place
        return result

    args = gae_args()
    compare("gae", peek, reference_gae, args, "a rollout")
    answer = reference_gae(*args)
    assert found and not any(v.shape == answer.shape and np.allclose(v, answer) for v in found)
    assert torch.equal(args[0], gae_args()[0])  # the caller's inputs are untouched

    found.clear()

    def peek_soft_values(P, R, gamma, pi, temperature):
        peek(*gae_args())
        return np.zeros_like(R), np.zeros(len(R))

    from rlcourse.tabular import random_mdp

    mdp, pi = random_mdp(3, 2, seed=0), np.full((3, 2), 0.5)
    with pytest.raises(AssertionError, match="q .the first result of soft_values. is wrong"):
        grading.compare_soft_values(peek_soft_values, mdp, pi, 0.5, "a case")
    want_q, want_v = mdp.soft_values(pi, 0.5)
    assert not any(v.shape == want_q.shape and np.allclose(v, want_q) for v in found)


# ------------------------------------------------------------- profilers and tracers (H3)


@pytest.mark.parametrize(
    "set_hook",
    [sys.setprofile, sys.settrace, threading.setprofile, threading.settrace],
    ids=["sys.setprofile", "sys.settrace", "threading.setprofile", "threading.settrace"],
)
def test_grading_refuses_to_run_while_a_profiler_or_tracer_is_set(set_hook):
    seen = []

    def spy(frame, event, arg):
        seen.append((frame.f_code.co_name, arg))

    set_hook(spy)
    try:
        active = "a profiler/tracer is active; grading needs it off"
        with pytest.raises(DelegationError, match=active):
            compare("gae", honest_gae, reference_gae, gae_args(), "a rollout")
    finally:
        set_hook(None)
    assert not any(name == "gae" for name, _ in seen)  # the reference never ran under the spy
    assert sys.getprofile() is None


def test_a_tracer_set_while_graded_is_refused():
    def set_trace(*args):
        sys.settrace(lambda *a: None)
        return honest_gae(*args)

    def set_thread_hook(*args):
        threading._profile_hook = lambda *a: None  # what threading.setprofile does
        return honest_gae(*args)

    with pytest.raises(DelegationError, match="called sys.settrace"):
        compare("gae", set_trace, reference_gae, gae_args(), "a rollout")
    assert sys.gettrace() is None
    with pytest.raises(DelegationError, match="changed threading's `_profile_hook`"):
        compare("gae", set_thread_hook, reference_gae, gae_args(), "a rollout")
    assert threading.getprofile() is None


# -------------------------------------------------------------- threads and processes (M1)


def test_every_function_that_starts_a_thread_or_a_process_is_watched():
    import _thread
    import os

    starters = ("start", "fork", "spawn", "exec", "posix_spawn", "system", "popen")
    names = [
        (module, name)
        for module in (_thread, os)
        for name in dir(module)
        if name.startswith(starters) and callable(getattr(module, name))
    ]
    assert (_thread, "start_new") in names and (os, "fork") in names
    for module, name in names:
        assert grading._is_watched(getattr(module, name)), f"{module.__name__}.{name}"

    def start_new(*args):
        _thread.start_new(lambda: None, ())
        return honest_gae(*args)

    with pytest.raises(DelegationError, match="started a thread"):
        student(start_new)(*gae_args())


def test_a_progress_bar_is_refused_with_a_message_that_says_why():
    from tqdm import tqdm

    def gae(*args):
        for _ in tqdm(range(2), disable=False):
            pass
        return honest_gae(*args)

    refused = "tqdm starts one: progress bars are not allowed inside"
    with pytest.raises(DelegationError, match=refused):
        student(gae)(*gae_args())


# ------------------------------------------------------------------- traced copies (M2)


def test_a_copy_traced_by_torch_fx_is_refused():
    from torch.fx.experimental.proxy_tensor import make_fx

    from rlcourse.objectives import kl_k3

    log_prob, ref = torch.tensor([-1.0, -0.5]), torch.tensor([-1.2, -0.1])
    traced = make_fx(kl_k3)(log_prob, ref)  # in a solution cell: outside the guard
    with pytest.raises(DelegationError, match="ran code generated by torch.fx"):
        compare("kl_k3", traced, kl_k3, (log_prob, ref), "2 tokens")


# ------------------------------------------------------------- renamed copies (M3)


def test_a_copy_with_renamed_variables_is_caught_and_short_honest_code_is_not():
    source = inspect.getsource(advantages_module.td_errors).replace("rewards", "rw")
    source = source.replace("values", "vals")
    namespace = dict(vars(advantages_module))
    exec(compile("from __future__ import annotations\n" + source, "<cell>", "exec"), namespace)
    args = (*gae_args()[:4], 0.9)
    with pytest.raises(DelegationError, match="td_errors ran a copy of rlcourse's own td_errors"):
        compare("td_errors", namespace["td_errors"], advantages_module.td_errors, args, "a rollout")
    short = [
        q
        for module, names in FORBIDDEN.items()
        for q in names
        if module in sys.modules and grading._print(_code_of(module, q))[0] == "named"
    ]
    assert "_not_terminal" in short  # short ones keep their names: an honest mask is no copy


def _code_of(module: str, qualname: str) -> types.CodeType:
    obj = sys.modules[module]
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return inspect.unwrap(obj).__code__


# --------------------------------------------------------------------- the PPO exercise (L1)


def test_the_ppo_exercise_says_to_detach_the_advantages_inside_the_function():
    import json

    path = ROOT / "notebooks/exercises/source/ex5_trust_region/ex5_trust_region.ipynb"
    cells = json.loads(path.read_text())["cells"]
    index = next(i for i, c in enumerate(cells) if "def clipped_surrogate(" in "".join(c["source"]))
    assert "detach the advantages inside the function" in "".join(cells[index]["source"])
    assert "detach the advantages inside the function" in "".join(cells[index - 1]["source"])


# -------------------------------------- the guard's own code cannot be changed while graded (F)

from rlcourse.grading import guard as guard_module  # noqa: E402


def graded_attack(attack, undo=lambda: None) -> str:
    """Grade a function that runs ``attack()`` and then rebinds ``rlcourse.grading.check`` (what
    an attack on the guard is for); return the failure's message. Afterwards (and after ``undo``,
    the test's own clean-up of what the guard does not snapshot) ``check`` is put back, no
    profiler is left, and the guard still catches a delegation and passes honest code."""
    check, check_code = grading.check, grading.check.__code__

    def gae(*args):
        attack()
        grading.check = lambda *a, **k: None
        return honest_gae(*args)

    try:
        with pytest.raises(DelegationError) as caught:
            compare("gae", gae, reference_gae, gae_args(), "a rollout")
    finally:
        undo()
    assert grading.check is check and grading.check.__code__ is check_code
    assert sys.getprofile() is None
    compare("gae", honest_gae, reference_gae, gae_args(), "a rollout")
    with pytest.raises(DelegationError, match="called rlcourse's own gae"):
        compare("gae", route_import_inside(), reference_gae, gae_args(), "a rollout")
    return str(caught.value)


CHANGED = re.compile(r"gae changed .+ while it was being graded \(put back\)")


@pytest.mark.parametrize("name", sorted(set(vars(guard_module)) - {"__builtins__"}))
def test_rebinding_any_name_of_the_guard_while_graded_fails_and_all_is_put_back(name):
    """``guard._restore = None``, ``guard._session = ...``, ``guard.DelegationError = ...``: the
    guard's exit runs private copies taken before the student's code ran."""
    before = vars(guard_module)[name]

    def attack():
        setattr(guard_module, name, lambda *a, **k: None)

    assert CHANGED.search(graded_attack(attack))
    assert vars(guard_module)[name] is before


def _functions_of_the_guard() -> dict:
    found = {}
    for name, value in vars(guard_module).items():
        if isinstance(value, types.FunctionType) and value.__module__ == guard_module.__name__:
            found[name] = value
        elif isinstance(value, type) and value.__module__ == guard_module.__name__:
            for attr, method in vars(value).items():
                if isinstance(method, types.FunctionType):
                    found[f"{name}.{attr}"] = method
    return found


GUARD_FUNCTIONS = _functions_of_the_guard()


@pytest.mark.parametrize("name", sorted(GUARD_FUNCTIONS))
def test_recoding_any_function_of_the_guard_while_graded_fails_and_all_is_put_back(name):
    """``guard._restore.__code__ = ...``, ``forbid.__enter__.__code__ = ...`` (the snapshot's
    restore, the session, the exit), also with new defaults: put back, and the cell fails."""
    function = GUARD_FUNCTIONS[name]
    state = (function.__code__, function.__defaults__, function.__kwdefaults__)
    assert {"_restore", "_session", "_take", "_Exit.__get__", "forbid.__enter__"} <= set(
        GUARD_FUNCTIONS
    )

    def attack():
        function.__code__ = (lambda *a, **k: None).__code__
        function.__defaults__ = (None,) * 8

    assert CHANGED.search(graded_attack(attack))
    assert (function.__code__, function.__defaults__, function.__kwdefaults__) == state


BUILTINS = ("setattr", "getattr", "delattr", "isinstance", "issubclass", "len", "dict", "list")
BUILTINS += ("tuple", "zip", "map", "all", "type", "id", "next", "max", "iter", "str", "repr")


@pytest.mark.parametrize("name", BUILTINS)
def test_rebinding_a_builtin_the_guard_uses_while_graded_fails_and_all_is_put_back(name):
    import builtins

    before = getattr(builtins, name)

    def attack():
        setattr(builtins, name, lambda *a, **k: None)

    assert CHANGED.search(graded_attack(attack))
    assert getattr(builtins, name) is before


def test_rebinding_what_the_guard_took_from_other_modules_does_not_stop_it():
    """operator.is_, functools.partial, sys.setprofile/getprofile, types.FunctionType: the guard
    took them at import (those modules are not snapshotted, so the test puts them back)."""
    import functools as functools_module
    import operator

    taken = [
        (operator, "is_"),
        (functools_module, "partial"),
        (functools_module, "_lru_cache_wrapper"),
        (sys, "setprofile"),
        (sys, "getprofile"),
        (sys, "_getframe"),
        (types, "FunctionType"),
        (types, "ModuleType"),
    ]
    before = [getattr(module, name) for module, name in taken]

    def attack():
        for module, name in taken:
            setattr(module, name, lambda *a, **k: True)

    def undo():
        for (module, name), value in zip(taken, before, strict=True):
            setattr(module, name, value)

    assert CHANGED.search(graded_attack(attack, undo))


def test_the_profiler_gives_no_way_to_its_code_or_state():
    """``sys.getprofile()`` while graded is a sealed C wrapper: no code, closure, globals or
    wrapped function to change; the garbage collector, which could reach them, is refused."""
    import gc

    seen = []

    def look(*args):
        profiler = sys.getprofile()
        seen.extend(hasattr(profiler, a) for a in ("__code__", "__closure__", "__wrapped__"))
        seen.extend(hasattr(profiler, a) for a in ("__func__", "__globals__", "func"))
        return honest_gae(*args)

    compare("gae", look, reference_gae, gae_args(), "a rollout")
    assert seen and not any(seen)
    for lister in (gc.get_referents, gc.get_referrers):

        def dig(*args, lister=lister):
            lister(sys.getprofile())
            return honest_gae(*args)

        with pytest.raises(DelegationError, match="through the garbage collector"):
            compare("gae", dig, reference_gae, gae_args(), "a rollout")

    def every_object(*args):
        gc.get_objects()
        return honest_gae(*args)

    with pytest.raises(DelegationError, match="through the garbage collector"):
        compare("gae", every_object, reference_gae, gae_args(), "a rollout")


def test_switching_the_judge_off_and_back_on_while_graded_is_caught():
    """The profiler asks a private copy of forbidden._judge, with its own caches: re-coding the
    module's _judge, or filling its verdict cache, and undoing it before returning, changes
    nothing."""
    from rlcourse.grading import forbidden

    def recode(*args):
        code = forbidden._judge.__code__
        forbidden._judge.__code__ = (lambda code: None).__code__
        try:
            return reference_gae(*args)
        finally:
            forbidden._judge.__code__ = code

    def poison(*args):
        inner = inspect.unwrap(reference_gae).__code__
        forbidden._VERDICTS[id(inner)] = (inner, forbidden._TABLE.version, None)
        forbidden._FILE_MODULES.clear()
        forbidden._FILE_MODULES[inner.co_filename] = None
        return reference_gae(*args)

    for fn in (recode, poison):
        with pytest.raises(DelegationError, match="called rlcourse's own gae"):
            compare("gae", fn, reference_gae, gae_args(), "a rollout")
    forbidden._VERDICTS.clear()
    forbidden._FILE_MODULES.clear()


def test_a_refused_call_cannot_be_forgotten_after_putting_the_profiler_back():
    """A refused sys.setprofile(None) removes the profiler (Python drops a profiler that raises);
    calling the reference unwatched and putting the profiler back still fails: the failure is
    recorded where the student's code cannot reach it."""

    def reinstall(*args):
        profiler = sys.getprofile()
        try:
            sys.setprofile(None)
        except AssertionError:
            pass
        out = reference_gae(*args)
        sys.setprofile(profiler)
        return out

    with pytest.raises(DelegationError, match="called sys.setprofile"):
        compare("gae", reinstall, reference_gae, gae_args(), "a rollout")
    assert sys.getprofile() is None


def test_code_the_student_leaves_in_a_namespace_cannot_run_during_or_after_the_restore():
    """A value whose ``__del__`` would rebind ``check`` once the guard removes it, a key whose
    ``__hash__``/``__eq__`` would, and a value whose ``__eq__`` would: the restore calls none of
    them (it compares identities and keeps what it removes alive)."""
    ran, armed = [], []  # armed once the attack is in place: what runs after that is the guard's

    class Bomb:
        armed = True

        def __del__(self):
            if Bomb.armed:
                ran.append("__del__")
                grading.check = None

    class Key:
        def __hash__(self):
            if armed:
                ran.append("__hash__")
                grading.check = None
            return 12345

        def __eq__(self, other):
            if armed:
                ran.append("__eq__")
                grading.check = None
            return False

    class Twelve(int):
        def __eq__(self, other):
            if armed:
                ran.append("int __eq__")
                grading.check = None
            return True

        __hash__ = int.__hash__

    from rlcourse.grading import checks

    show_all = checks.SHOW_ALL

    def attack():
        grading.bomb = Bomb()
        vars(grading)[Key()] = "not a name"
        checks.SHOW_ALL = Twelve(show_all)
        armed.append(True)

    message = graded_attack(attack)
    assert CHANGED.search(message), message
    assert not ran and checks.SHOW_ALL is show_all and not hasattr(grading, "bomb")
    assert all(type(k) is str for k in vars(grading))
    Bomb.armed = False


def test_the_guard_costs_little_per_graded_call():
    """Opening and closing the guard (the snapshot, the private copies, the restore's checks) adds
    little to a graded call: a loose bound, so that a busy machine does not fail it."""
    import timeit

    args, call = gae_args(), student(honest_gae)
    call(*args)
    graded = min(timeit.repeat(lambda: call(*args), number=20, repeat=5)) / 20
    bare = min(timeit.repeat(lambda: honest_gae(*args), number=20, repeat=5)) / 20
    assert graded - bare < 0.01  # seconds: generous, for a busy machine


def test_a_module_replaced_in_sys_modules_or_given_another_class_is_put_back():
    """What a later test cell's ``from rlcourse.advantages import gae`` finds: a fake module put
    in ``sys.modules``, or the real one given a class whose ``__getattribute__`` answers ``gae``
    with the student's function, is put back (and the cell fails)."""
    fake = types.ModuleType("rlcourse.advantages")
    fake.gae = honest_gae

    class Answers(types.ModuleType):
        def __getattribute__(self, name):
            return honest_gae if name == "gae" else super().__getattribute__(name)

    def replace_module():
        sys.modules["rlcourse.advantages"] = fake

    def replace_class():
        advantages_module.__class__ = Answers

    for attack in (replace_module, replace_class):
        assert CHANGED.search(graded_attack(attack))
        assert sys.modules["rlcourse.advantages"] is advantages_module
        assert type(advantages_module) is types.ModuleType
        from rlcourse.advantages import gae

        assert gae is reference_gae
