"""The graded exercises grade as intended, proven with nbgrader's own autograding on submissions
made here.

For every assignment of ``notebooks/exercises``, copied into a temporary course folder of its own
(the real one stays untouched; two assignments are graded at a time): ``nbgrader
generate_assignment`` once, then one ``nbgrader autograde`` call that grades many "students"
together:

- the instructor's solution, typed into the student version, scores full marks;
- the blank student version scores zero;
- each typical wrong answer (``WRONG`` below, the list the README gives) loses exactly the points of
  the test cells meant to catch it and keeps all the others, cell by cell in the gradebook; for the
  losses of ex5 and ex6 that includes one returned detached from the graph: it loses the gradient
  cell only;
- a submission whose functions all hand the work to the package (``DELEGATE``: an import inside the
  function, the ``reference_<name>`` a test cell binds, a module attribute, a method, a copied
  function object, a copy compiled from the package's source) scores 0 on every cell, and each
  cell's feedback says which of rlcourse's functions ran (the guard of ``rlcourse/grading/``);
- on ``ex4_importance`` also: a syntax error, a function that raises, an infinite loop (cells time
  out after ``ROBUSTNESS_TIMEOUT`` seconds), edited / deleted test cells and edited points, a
  rewritten or replaced solution cell, an import of a missing module, an answer hard-coded from the
  visible test, and a file that is not a notebook. None of them stops the others from being graded.

The release is also checked for leaked solutions and hidden tests (``build.py``, which ``make
exercises`` runs), and that check is shown to catch a planted leak. Grades are read from the
gradebook, never from nbgrader's exit status: ``autograde`` exits 1 when a single submission cannot
be read, though it grades all the others.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "notebooks" / "exercises"
# Seconds a cell may run while grading here (the course's own setting is 30 s). Short for the
# robustness assignment, whose infinite loop costs one timeout per test cell; it imports no torch,
# so even a busy machine runs its setup cell in time. The others import torch in their setup cell:
# that alone can take several seconds on a loaded 2-core machine, so they get the course's setting.
TIMEOUT = 30
ROBUSTNESS_TIMEOUT = 8

_spec = importlib.util.spec_from_file_location("exercises_build", COURSE / "build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)


@dataclass(frozen=True)
class Wrong:
    """A typical wrong answer: one edit of the instructor's solution, and the test cells that must
    catch it."""

    mistake: str  # as the README lists it
    cell: str  # grade_id of the solution cell edited
    old: str  # text of the solution replaced (it must occur exactly once in that cell)
    new: str
    caught_by: frozenset[str]  # these test cells score 0; every other test cell keeps its points


def wrong(mistake: str, cell: str, old: str, new: str, *caught_by: str) -> Wrong:
    return Wrong(mistake, cell, old, new, frozenset(caught_by))


WRONG: dict[str, list[Wrong]] = {
    "ex1_returns_gae": [
        wrong(
            "TD error bootstraps through a terminal step",
            "td_errors",
            "gamma * next_values * not_terminal",
            "gamma * next_values",
            "test_td_errors",
            "test_gae_one_episode",
            "test_gae_episode_ends",
        ),
        wrong(
            "returns-to-go treat a truncation as a termination (no bootstrap at a time limit)",
            "returns_to_go",
            "bootstrap = next_values * (~terminated.bool())",
            "bootstrap = next_values * (~ends)",
            "test_returns_truncation",
        ),
        wrong(
            "GAE's sum does not stop at episode ends",
            "gae",
            "gamma * gae_lambda * continues[t] * running",
            "gamma * gae_lambda * running",
            "test_gae_episode_ends",
        ),
        wrong(
            "GAE discounts by gamma instead of gamma * lambda",
            "gae",
            "gamma * gae_lambda * continues[t]",
            "gamma * continues[t]",
            "test_gae_one_episode",
            "test_gae_episode_ends",
        ),
    ],
    "ex2_targets": [
        wrong(
            "DQN target bootstraps through a terminal state",
            "dqn_target",
            "gamma * not_terminal * next_q",
            "gamma * next_q",
            "test_dqn_target_terminal",
        ),
        wrong(
            "TD3 target without the min over the twin critics",
            "td3_target",
            "torch.minimum(next_q1, next_q2)",
            "next_q1",
            "test_td3_target",
        ),
        wrong(
            "target policy smoothing without clipping the noise",
            "smoothed_target_action",
            "epsilon = noise.clamp(-noise_clip, noise_clip)",
            "epsilon = noise",
            "test_smoothed_target_action",
        ),
        wrong(
            "Polyak update with rho and 1 - rho swapped",
            "polyak_update",
            "p_target.mul_(rho).add_(p_online, alpha=1.0 - rho)",
            "p_target.mul_(1.0 - rho).add_(p_online, alpha=rho)",
            "test_polyak_update",
        ),
        wrong(
            "Polyak update recorded by autograd (no torch.no_grad(): in-place on a leaf raises)",
            "polyak_update",
            "with torch.no_grad():",
            "with torch.enable_grad():",
            "test_polyak_update",
        ),
    ],
    "ex3_soft_values": [
        wrong(
            "soft target with the entropy term's sign flipped",
            "soft_td_target",
            "(next_q - alpha * next_log_prob)",
            "(next_q + alpha * next_log_prob)",
            "test_soft_td_target",
        ),
        wrong(
            "soft target with the entropy term outside the discount (as the slide's box writes it)",
            "soft_td_target",
            "gamma * not_terminal * (next_q - alpha * next_log_prob)",
            "gamma * not_terminal * next_q - alpha * next_log_prob",
            "test_soft_td_target",
        ),
        wrong(
            "softmax policy without subtracting the max (overflows at small temperatures)",
            "softmax_policy",
            "np.exp((q - q.max(axis=-1, keepdims=True)) / temperature)",
            "np.exp(q / temperature)",
            "test_softmax_small_temperature",
        ),
        wrong(
            "soft q counts the first step's entropy",
            "soft_values",
            "q = R + gamma * P @ v",
            "q = R + temperature * entropy(pi)[:, None] + gamma * P @ v",
            "test_soft_values",
        ),
    ],
    "ex4_importance": [
        wrong(
            "importance weight upside down, q/p",
            "importance_weighted_estimate",
            "p_x / q_x * f_x",
            "q_x / p_x * f_x",
            "test_estimate",
        ),
        wrong(
            "effective sample size without rescaling the weights (overflow, underflow)",
            "effective_sample_size",
            "w = w / w.max()",
            "w = w * 1.0",
            "test_ess_any_scale",
        ),
        wrong(
            "effective sample size upside down, sum w^2 / (sum w)^2",
            "effective_sample_size",
            "w.sum() ** 2 / (w**2).sum()",
            "(w**2).sum() / w.sum() ** 2",
            "test_ess",
            "test_ess_any_scale",
        ),
        wrong(
            "variance without subtracting mu^2",
            "estimator_variance",
            "(second_moment - mu**2) / n",
            "second_moment / n",
            "test_variance",
            "test_variance_undrawn_points",
        ),
        wrong(
            "variance divides by q(x) where q(x) = 0 (nan)",
            "estimator_variance",
            "p[drawn] ** 2 * f[drawn] ** 2 / q[drawn]",
            "p**2 * f**2 / q",
            "test_variance_undrawn_points",
        ),
    ],
    "ex5_trust_region": [
        wrong(
            "ratio without the stop-gradient on the old log-probabilities",
            "importance_weights",
            "log_prob_old.detach()",
            "log_prob_old",
            "test_importance_weights_gradient",
        ),
        wrong(
            "clipping without the min",
            "clipped_surrogate",
            "torch.minimum(ratio * advantages, clipped * advantages)",
            "clipped * advantages",
            "test_clipped_surrogate",
            "test_clipped_surrogate_gradient",  # its gradient: 0 past both edges, whatever A's sign
        ),
        wrong(
            "clipped surrogate returned detached from the graph",
            "clipped_surrogate",
            "return torch.minimum(ratio * advantages, clipped * advantages)",
            "return torch.minimum(ratio * advantages, clipped * advantages).detach()",
            "test_clipped_surrogate_gradient",
        ),
        wrong(
            "clipped surrogate lets gradient flow into the advantages",
            "clipped_surrogate",
            "advantages = advantages.detach()",
            "advantages = advantages * 1.0",
            "test_clipped_surrogate_gradient",
        ),
        wrong(
            "surrogate without the factor 1 / (1 - gamma)",
            "surrogate",
            "d_pi @ expected_advantage / (1.0 - mdp.gamma)",
            "d_pi @ expected_advantage",
            "test_surrogate",
        ),
        wrong(
            "surrogate weighted by the new policy's states (that is J(pi'))",
            "surrogate",
            "d_pi = mdp.state_distribution(pi)",
            "d_pi = mdp.state_distribution(pi_new)",
            "test_surrogate",
        ),
        wrong(
            "surrogate without the offset J(pi)",
            "surrogate",
            "mdp.expected_return(pi) + d_pi",
            "d_pi",
            "test_surrogate_at_pi",
            "test_surrogate",
        ),
    ],
    "ex6_grpo": [
        wrong(
            "population std (divisor G) instead of the sample std (G - 1)",
            "group_relative_advantages",
            "rewards.std(dim=-1, keepdim=True)",
            "rewards.std(dim=-1, keepdim=True, correction=0)",
            "test_group_advantages",
        ),
        wrong(
            "no eps: a group of equal rewards gives nan",
            "group_relative_advantages",
            "(std + eps)",
            "std",
            "test_group_advantages_equal_groups",
        ),
        wrong(
            "k3 with the log-ratio's sign flipped",
            "kl_k3",
            "log_ratio = ref_log_prob.detach() - log_prob",
            "log_ratio = log_prob - ref_log_prob.detach()",
            "test_kl_k3",
            "test_kl_k3_gradient",
            "test_grpo_loss_with_kl",
            "test_grpo_loss_gradient",  # its hidden case has a KL term
        ),
        wrong(
            "k3 lets gradient flow into the reference policy",
            "kl_k3",
            "ref_log_prob.detach()",
            "ref_log_prob",
            "test_kl_k3_gradient",
        ),
        wrong(
            "loss averaged over all tokens instead of per answer",
            "grpo_loss",
            "per_answer = (per_token * mask).sum(dim=1) / mask.sum(dim=1)\n"
            "    return -per_answer.mean()",
            "return -(per_token * mask).sum() / mask.sum()",
            "test_grpo_loss_without_kl",
            "test_grpo_loss_with_kl",
            "test_grpo_loss_gradient",
        ),
        wrong(
            "KL penalty added instead of subtracted",
            "grpo_loss",
            "- kl_coef * kl_k3",
            "+ kl_coef * kl_k3",
            "test_grpo_loss_with_kl",
            "test_grpo_loss_gradient",  # its hidden case has a KL term
        ),
        wrong(
            "GRPO loss returned detached from the graph",
            "grpo_loss",
            "return -per_answer.mean()",
            "return -per_answer.mean().detach()",
            "test_grpo_loss_gradient",
        ),
    ],
}
ROBUSTNESS_ASSIGNMENT = "ex4_importance"

# A submission that writes nothing itself: every function hands the work to the package, by a
# different route in each (an import inside the function, the `reference_<name>` a test cell binds,
# a module attribute, a method of the MDP the test passes, a copied function object, a copy compiled
# from the package's source). The guard of rlcourse/grading/ must fail every cell, saying why.
DELEGATED = "delegates-to-rlcourse"
DELEGATE: dict[str, dict[str, str]] = {
    "ex1_returns_gae": {
        "td_errors": """
def td_errors(rewards, values, next_values, terminated, gamma):
    from rlcourse.advantages import td_errors as theirs
    return theirs(rewards, values, next_values, terminated, gamma)
""",
        "returns_to_go": """
def returns_to_go(rewards, next_values, terminated, truncated, gamma):
    return reference_returns_to_go(rewards, next_values, terminated, truncated, gamma)
""",
        "gae": """
import rlcourse.advantages


def gae(rewards, values, next_values, terminated, truncated, gamma, gae_lambda):
    args = rewards, values, next_values, terminated, truncated, gamma, gae_lambda
    return rlcourse.advantages.gae(*args)
""",
    },
    "ex2_targets": {
        "dqn_target": """
import types

from rlcourse import objectives

dqn_target = types.FunctionType(objectives.dqn_target.__code__, vars(objectives), "dqn_target")
""",
        "td3_target": """
import rlcourse.objectives as objectives


def td3_target(rewards, next_q1, next_q2, terminated, gamma):
    return objectives.td3_target(rewards, next_q1, next_q2, terminated, gamma)
""",
        "smoothed_target_action": """
def smoothed_target_action(action, noise, noise_clip, low, high):
    return reference_smoothed_action(action, noise, noise_clip, low, high)
""",
        "polyak_update": """
def polyak_update(target, online, rho):
    from rlcourse.nets import polyak_update as theirs
    theirs(target, online, rho)
""",
    },
    "ex3_soft_values": {
        "soft_td_target": """
import inspect

from rlcourse import objectives

exec("from __future__ import annotations\\n" + inspect.getsource(objectives.soft_td_target))
""",
        "softmax_policy": """
def softmax_policy(q, temperature):
    return reference_softmax_policy(q, temperature)
""",
        "softmax_value": """
def softmax_value(q, temperature):
    from rlcourse.tabular import softmax_value as theirs
    return theirs(q, temperature)
""",
        "soft_values": """
def soft_values(P, R, gamma, pi, temperature):
    from rlcourse.tabular import FiniteMDP
    return FiniteMDP(P, R, gamma, np.full(len(R), 1.0 / len(R))).soft_values(pi, temperature)
""",
    },
    "ex4_importance": {
        "importance_weighted_estimate": """
def importance_weighted_estimate(p_x, q_x, f_x):
    return reference_estimate(p_x, q_x, f_x)
""",
        "effective_sample_size": """
import rlcourse.importance


def effective_sample_size(weights):
    return rlcourse.importance.effective_sample_size(weights)
""",
        "estimator_variance": """
import importlib.util
import sys
import types

_path = importlib.util.find_spec("rlcourse.importance").origin
_copied = types.ModuleType("my_importance")
sys.modules["my_importance"] = _copied  # where @dataclass looks up the module of its class
exec(compile(open(_path).read(), "my_importance.py", "exec"), vars(_copied))
estimator_variance = _copied.estimator_variance
""",
    },
    "ex5_trust_region": {
        "importance_weights": """
def importance_weights(log_prob_new, log_prob_old):
    from rlcourse.objectives import importance_weights as theirs
    return theirs(log_prob_new, log_prob_old)
""",
        "clipped_surrogate": """
def clipped_surrogate(ratio, advantages, clip_eps):
    return reference_clipped_surrogate(ratio, advantages, clip_eps)
""",
        "surrogate": """
def surrogate(mdp, pi, pi_new):
    return mdp.surrogate(pi, pi_new)
""",
    },
    "ex6_grpo": {
        "group_relative_advantages": """
def group_relative_advantages(rewards, eps=1e-8):
    return reference_group_advantages(rewards, eps)
""",
        "kl_k3": """
def kl_k3(log_prob, ref_log_prob):
    from rlcourse.objectives import kl_k3 as theirs
    return theirs(log_prob, ref_log_prob)
""",
        "grpo_loss": """
import rlcourse.algos.grpo


def grpo_loss(log_prob, old_log_prob, ref_log_prob, advantages, mask, clip_eps, kl_coef):
    args = log_prob, old_log_prob, ref_log_prob, advantages, mask, clip_eps, kl_coef
    return rlcourse.algos.grpo.grpo_loss(*args)[0]
""",
    },
}
# What a cell says when the delegating submission fails it: the route, and which function ran.
OWN = "called rlcourse's own"
COPY = "ran a copy of rlcourse's own"
DELEGATION_MESSAGES = {
    "ex1_returns_gae": {"test_gae_episode_ends": f"gae {OWN} gae (rlcourse.advantages)"},
    "ex2_targets": {"test_dqn_target": f"dqn_target {OWN} dqn_target (rlcourse.objectives)"},
    "ex3_soft_values": {
        "test_soft_td_target": f"soft_td_target {COPY} soft_td_target",
        "test_soft_values": f"soft_values {OWN} FiniteMDP.soft_values (rlcourse.tabular)",
    },
    "ex4_importance": {"test_variance": f"estimator_variance {COPY} estimator_variance"},
    "ex5_trust_region": {
        "test_surrogate": f"surrogate {OWN} FiniteMDP.surrogate (rlcourse.tabular)",
        "test_clipped_surrogate_gradient": f"clipped_surrogate {OWN} clipped_surrogate",
    },
    "ex6_grpo": {"test_grpo_loss_gradient": f"grpo_loss {OWN} grpo_loss (rlcourse.algos.grpo)"},
}


# ---------------------------------------------------------------------------------- submissions


def cells_by_id(nb: dict) -> dict[str, dict]:
    return {
        build.nbgrader_meta(c)["grade_id"]: c
        for c in nb["cells"]
        if build.nbgrader_meta(c).get("grade_id")
    }


def solved(release: dict, source: dict) -> dict:
    """The student version with every solution cell filled in as a student would: the instructor's
    code without the markers."""
    nb = copy.deepcopy(release)
    answers = cells_by_id(source)
    for grade_id, cell in cells_by_id(nb).items():
        if build.nbgrader_meta(cell).get("solution"):
            text = build.cell_source(answers[grade_id])
            cell["source"] = "\n".join(
                line for line in text.splitlines() if line.strip() not in build.SOLUTION
            )
    return nb


def edit(nb: dict, grade_id: str, old: str, new: str) -> dict:
    """A copy of ``nb`` with ``old`` replaced by ``new`` in one cell (``old`` must occur there
    exactly once)."""
    nb = copy.deepcopy(nb)
    cell = cells_by_id(nb)[grade_id]
    text = build.cell_source(cell)
    assert text.count(old) == 1, (
        f"{grade_id}: {old!r} occurs {text.count(old)} times in the solution, not once"
    )
    cell["source"] = text.replace(old, new)
    return nb


def set_source(nb: dict, grade_id: str, text: str) -> dict:
    nb = copy.deepcopy(nb)
    cells_by_id(nb)[grade_id]["source"] = text
    return nb


def delete(nb: dict, grade_id: str) -> dict:
    nb = copy.deepcopy(nb)
    nb["cells"] = [c for c in nb["cells"] if build.nbgrader_meta(c).get("grade_id") != grade_id]
    return nb


def student_id(mistake: str) -> str:
    return "wrong-" + "".join(ch if ch.isalnum() else "-" for ch in mistake.lower()).strip("-")[:60]


def robustness_submissions(solution: dict) -> dict[str, dict | str]:
    """Broken or tampered submissions of ``ex4_importance``; what each must score is in
    ``ROBUST_EXPECTED``."""
    tampered = edit(
        solution,
        "effective_sample_size",
        "w.sum() ** 2 / (w**2).sum()",
        "(w**2).sum() / w.sum() ** 2",
    )
    tampered = set_source(tampered, "test_ess", "pass  # nothing to see here")
    cells_by_id(tampered)["test_variance"]["metadata"]["nbgrader"]["points"] = 100
    tampered = delete(tampered, "test_estimate")
    tampered = delete(tampered, "test_ess_any_scale")

    rewritten = set_source(
        solution,
        "importance_weighted_estimate",
        "def importance_weighted_estimate(p_x, q_x, f_x):\n"
        "    return sum(p * f / q for p, q, f in zip(p_x, q_x, f_x)) / len(p_x)\n",
    )
    # The student deleted the ESS solution cell and wrote the function in a cell of their own
    index = next(
        i
        for i, c in enumerate(rewritten["cells"])
        if build.nbgrader_meta(c).get("grade_id") == "effective_sample_size"
    )
    rewritten["cells"][index] = {
        "cell_type": "code",
        "execution_count": None,
        "id": "my-own-cell",
        "metadata": {},
        "outputs": [],
        "source": "def effective_sample_size(weights):\n"
        "    w = np.asarray(weights) / np.max(weights)\n"
        "    return float(np.sum(w) ** 2 / np.sum(w * w))\n",
    }
    return {
        "syntax-error": edit(
            solution,
            "importance_weighted_estimate",
            "return float(np.mean(p_x / q_x * f_x))",
            "return float(np.mean(p_x / q_x * f_x)",
        ),
        "raises": edit(
            solution,
            "effective_sample_size",
            "w = np.asarray(weights, dtype=float)",
            "raise ValueError('the weights look wrong to me')",
        ),
        "infinite-loop": edit(
            solution,
            "estimator_variance",
            "drawn = q > 0",
            "drawn = q > 0\n    while True:\n        pass",
        ),
        "tampered-tests": tampered,
        "rewritten-solutions": rewritten,
        "absent-import": edit(
            solution,
            "estimator_variance",
            "def estimator_variance(",
            "import rlcourse_answers_that_do_not_exist\n\n\ndef estimator_variance(",
        ),
        "hard-coded": set_source(
            solution,
            "importance_weighted_estimate",
            "def importance_weighted_estimate(p_x, q_x, f_x):\n"
            "    return 0.1875  # the visible test's answer\n",
        ),
        "not-a-notebook": json.dumps(solution)[:5000],  # a truncated upload
    }


# The test cells of ex4_importance that each robustness submission must lose (it keeps all the
# others).
ROBUST_EXPECTED: dict[str, frozenset[str]] = {
    "syntax-error": frozenset({"test_estimate"}),
    "raises": frozenset({"test_ess", "test_ess_any_scale"}),
    "infinite-loop": frozenset({"test_variance", "test_variance_undrawn_points"}),
    # the edited and deleted tests are put back
    "tampered-tests": frozenset({"test_ess", "test_ess_any_scale"}),
    "rewritten-solutions": frozenset(),
    "absent-import": frozenset({"test_variance", "test_variance_undrawn_points"}),
    "hard-coded": frozenset({"test_estimate"}),  # the visible case passes, the hidden ones do not
}


# ------------------------------------------------------------------------------------- nbgrader


@dataclass
class Graded:
    """One assignment, generated and autograded in a course folder of its own."""

    course: Path  # the course folder (a copy holding this assignment only)
    # {student: {test cell: (score, max score)}}, None for a student without a graded notebook
    grades: dict
    log: str  # what nbgrader printed

    def autograded(self, student: str, assignment: str) -> dict:
        return build.read_notebook(
            self.course / "autograded" / student / assignment / f"{assignment}.ipynb"
        )


def autograde(
    course: Path, assignment: str, submissions: dict[str, dict | str]
) -> tuple[dict, str]:
    """Grade every submission in ONE ``nbgrader autograde`` call; return ``{student: {cell: (score,
    max)}}`` (``None`` for a student with no graded notebook) and nbgrader's log."""
    from nbgrader.api import Gradebook, MissingEntry

    for student, nb in submissions.items():
        path = course / "submitted" / student / assignment / f"{assignment}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(nb if isinstance(nb, str) else json.dumps(nb, indent=1), encoding="utf-8")
    timeout = ROBUSTNESS_TIMEOUT if assignment == ROBUSTNESS_ASSIGNMENT else TIMEOUT
    done = build.run_nbgrader(
        ["autograde", assignment, "--force", f"--Execute.timeout={timeout}"], course, timeout=900
    )
    grades = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in submissions:
            try:
                notebook = gb.find_submission_notebook(assignment, assignment, student)
            except MissingEntry:
                grades[student] = None
                continue
            grades[student] = {g.name: (g.score, g.max_score) for g in notebook.grades}
    return grades, done.stdout + done.stderr


def generate_and_grade(root: Path, assignment: str) -> Graded:
    """Copy the assignment into a course folder of its own, generate it once and grade all its
    submissions."""
    shutil.copy(COURSE / "nbgrader_config.py", root)
    shutil.copytree(
        COURSE / "source" / assignment,
        root / "source" / assignment,
        ignore=shutil.ignore_patterns(".ipynb_checkpoints"),
    )
    problems = build.lint_source(assignment, root)
    assert problems == [], problems
    build.generate(assignment, root)
    source = build.read_notebook(build.source_notebook(assignment, root))
    release = build.read_notebook(root / "release" / assignment / f"{assignment}.ipynb")
    solution = solved(release, source)
    submissions = {"solution": solution, "blank": release}
    for w in WRONG[assignment]:
        submissions[student_id(w.mistake)] = edit(solution, w.cell, w.old, w.new)
    delegated = solution
    for grade_id, text in DELEGATE[assignment].items():
        delegated = set_source(delegated, grade_id, text.lstrip("\n"))
    submissions[DELEGATED] = delegated
    if assignment == ROBUSTNESS_ASSIGNMENT:
        submissions.update(robustness_submissions(solution))
    return Graded(root, *autograde(root, assignment, submissions))


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict[str, Graded]:
    """Every assignment generated and graded. Each has its own course folder (and gradebook), so two
    are graded at a time: nbgrader runs one notebook after the other, and the machine has two
    cores."""
    try:
        import nbgrader  # noqa: F401

        build.nbgrader_command()
    except (ImportError, build.BuildError):
        pytest.fail(
            "nbgrader is not installed, so the exercises' grading cannot be tested: `make test` "
            "installs it (pip install -e '.[test,grading]')",
            pytrace=False,
        )
    assert sorted(WRONG) == build.assignments(), "every assignment needs its wrong answers in WRONG"
    assert sorted(DELEGATE) == build.assignments(), "every assignment needs a delegating submission"
    # the longest first
    names = sorted(build.assignments(), key=lambda name: name != ROBUSTNESS_ASSIGNMENT)
    roots = [tmp_path_factory.mktemp(name) for name in names]
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(names, pool.map(generate_and_grade, roots, names), strict=True))


def points_of(course: Path, assignment: str) -> dict[str, float]:
    nb = build.read_notebook(build.source_notebook(assignment, course))
    return {
        m["grade_id"]: m["points"] for m in map(build.nbgrader_meta, nb["cells"]) if m.get("grade")
    }


def expect(points: dict[str, float], lost: frozenset[str]) -> dict[str, tuple[float, float]]:
    return {cell: (0.0 if cell in lost else p, p) for cell, p in points.items()}


# ---------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("assignment", sorted(WRONG))
def test_release_hides_solutions_and_hidden_tests(graded, assignment):
    course = graded[assignment].course
    assert build.find_leaks(assignment, course) == []
    solution, hidden = build.secret_lines(
        build.read_notebook(build.source_notebook(assignment, course))
    )
    assert len(solution) >= 3 and len(hidden) >= 3, (
        "every assignment has solutions and hidden tests to keep"
    )


def test_leak_check_catches_planted_leaks(graded, tmp_path):
    assignment = "ex1_returns_gae"
    shutil.copytree(graded[assignment].course / "source", tmp_path / "source")
    shutil.copytree(graded[assignment].course / "release", tmp_path / "release")
    notebook = tmp_path / "release" / assignment / f"{assignment}.ipynb"
    nb = build.read_notebook(notebook)
    solution, hidden = build.secret_lines(
        build.read_notebook(build.source_notebook(assignment, tmp_path))
    )
    planted = sorted(solution)[0], sorted(hidden)[0]
    nb["cells"][-1]["source"] = f"# BEGIN SOLUTION\n{planted[0]}\n{planted[1]}\n"
    notebook.write_text(json.dumps(nb), encoding="utf-8")
    leaks = "\n".join(build.find_leaks(assignment, tmp_path))
    assert "marker 'BEGIN SOLUTION'" in leaks
    assert f"solution line: {planted[0]!r}" in leaks
    assert f"hidden-test line: {planted[1]!r}" in leaks


@pytest.mark.parametrize("assignment", sorted(WRONG))
def test_autograding(graded, assignment):
    grades, log = graded[assignment].grades, graded[assignment].log
    points = points_of(graded[assignment].course, assignment)
    assert sum(points.values()) == 10
    assert grades["solution"] == expect(points, frozenset()), (
        f"the solution must score full marks\n{log[-3000:]}"
    )
    assert grades["blank"] == expect(points, frozenset(points)), (
        "the blank student version must score zero"
    )
    for w in WRONG[assignment]:
        assert w.caught_by <= set(points), (
            f"{w.mistake}: unknown test cells {set(w.caught_by) - set(points)}"
        )
        got = grades[student_id(w.mistake)]
        assert got == expect(points, w.caught_by), (
            f"wrong answer {w.mistake!r}: per-cell (score, max) {got}"
        )


def test_robust_grading_of_broken_and_tampered_submissions(graded):
    assignment = ROBUSTNESS_ASSIGNMENT
    result = graded[assignment]
    points = points_of(result.course, assignment)
    for student, lost in ROBUST_EXPECTED.items():
        got = result.grades[student]
        assert got == expect(points, lost), f"{student}: per-cell (score, max) {got}"
    # The grader kept going: the good submission graded in the same call got full marks
    assert result.grades["solution"] == expect(points, frozenset())
    # The loop was cut by the timeout, not by luck
    assert "CellTimeoutError" in json.dumps(result.autograded("infinite-loop", assignment))
    # The hard-coded answer passed the visible case and failed on a hidden one, and the feedback
    # names it
    failure = json.dumps(
        cells_by_id(result.autograded("hard-coded", assignment))["test_estimate"]["outputs"]
    )
    assert "random samples" in failure and "expected" in failure
    # A file that is not a notebook scores 0 and is reported, and breaks nothing for the others
    assert result.grades["not-a-notebook"] == expect(points, frozenset(points))
    assert "error processing assignment 'ex4_importance' for student 'not-a-notebook'" in result.log


def test_feedback_says_which_case_failed_and_where(graded):
    assignment = "ex1_returns_gae"
    student = student_id(
        WRONG[assignment][2].mistake
    )  # the GAE sum that does not stop at episode ends
    outputs = json.dumps(
        cells_by_id(graded[assignment].autograded(student, assignment))["test_gae_episode_ends"][
            "outputs"
        ]
    )
    assert "AssertionError" in outputs
    assert (
        "terminated at t=[2], truncated at t=[5]" in outputs
        and "expected" in outputs
        and "got" in outputs
    )


@pytest.mark.parametrize("assignment", sorted(DELEGATE))
def test_delegating_to_the_package_scores_zero_and_says_why(graded, assignment):
    """Every function of the submission hands the work to rlcourse, by a different route in each:
    every test cell scores 0, and its feedback says which of rlcourse's functions ran."""
    result = graded[assignment]
    points = points_of(result.course, assignment)
    source = build.read_notebook(build.source_notebook(assignment, result.course))
    solution_cells = set(cells_by_id(source))
    assert set(DELEGATE[assignment]) <= solution_cells and len(DELEGATE[assignment]) >= 3
    assert result.grades[DELEGATED] == expect(points, frozenset(points)), result.grades[DELEGATED]
    cells = cells_by_id(result.autograded(DELEGATED, assignment))
    for grade_id in points:
        outputs = json.dumps(cells[grade_id]["outputs"])
        # DelegationError is an AssertionError: nbgrader scores the cell 0, the student reads why
        why = (grade_id, outputs[-600:])
        assert '"ename": "DelegationError"' in outputs and "rlcourse's own" in outputs, why
        assert "write it yourself" in outputs, why
    for grade_id, message in DELEGATION_MESSAGES[assignment].items():
        assert message in json.dumps(cells[grade_id]["outputs"]), (grade_id, message)


@pytest.mark.parametrize(
    "assignment, mistake, cell",
    [
        (
            "ex5_trust_region",
            "clipped surrogate returned detached from the graph",
            "test_clipped_surrogate_gradient",
        ),
        ("ex6_grpo", "GRPO loss returned detached from the graph", "test_grpo_loss_gradient"),
    ],
)
def test_a_detached_loss_loses_the_gradient_cell_and_says_why(graded, assignment, mistake, cell):
    """The points are checked with the other wrong answers (test_autograding); here the feedback."""
    assert any(w.mistake == mistake and w.caught_by == {cell} for w in WRONG[assignment])
    autograded = graded[assignment].autograded(student_id(mistake), assignment)
    outputs = json.dumps(cells_by_id(autograded)[cell]["outputs"])
    assert "returned a tensor cut off from the graph" in outputs, outputs[-600:]
