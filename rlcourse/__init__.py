"""rlcourse: the companion package of a lecture on deep reinforcement learning.

The package is built in floors: a module imports only from its own floor or from floors below it,
never from one above, so each floor can be read (and tested) without the ones on top of it.
:data:`FLOORS` lists them from the bottom up; ``tests/test_floors.py`` reads every import of every
module (those inside functions too) and checks them against it. A new module must be placed here.

- checks: the parameter checks and config helpers every floor uses, and the training budgets
  (``budgets``); they import nothing of the package.
- math: pure functions of tensors and arrays in the slides' symbols; they import nothing of the
  package but the checks, not even one another.
- sweeps: exact quantities of a finite MDP swept over a parameter for a notebook's slider; each
  composes two math modules (tabular with advantages), so it sits just above them.
- data: networks and their optimiser, storage, environments, rollouts, the question-answer task,
  a run's history.
- training: seeding, progress, evaluation, checkpoints, diagnostics.
- algorithm helpers: code that several algorithm modules share and that is not a line of a slide
  box.
- algorithms: one module per algorithm; an algorithm module never imports another one.
- registry: ``rlcourse.algos`` itself, which lists the algorithm modules.
- top: what the notebooks and the command line use (plots, widgets, catalog, grading, cli) and this
  package root; ``widgets.*`` places every module of :mod:`rlcourse.widgets` here.
"""

__version__ = "0.1.0"

# Floor name, module names relative to ``rlcourse`` ("" is this package root), whether the floor's
# modules may import one another. Bottom first.
FLOORS: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("checks", ("config", "budgets"), True),
    ("math", ("advantages", "objectives", "tabular", "importance", "lq"), False),
    ("sweeps", ("sweeps",), False),
    ("data", ("history", "nets", "optim", "buffers", "envs", "rollouts", "qa"), True),
    ("training", ("training", "diagnostics", "saving"), True),
    ("algorithm helpers", ("algos.common", "algos.offpolicy"), True),
    (
        "algorithms",
        (
            "algos.dqn",
            "algos.reinforce",
            "algos.a2c",
            "algos.ddpg",
            "algos.td3",
            "algos.sac",
            "algos.trpo",
            "algos.ppo",
            "algos.grpo",
        ),
        False,
    ),
    ("registry", ("algos",), True),
    (
        "top",
        ("", "plots", "slides", "catalog", "grading", "grading.*", "cli", "widgets", "widgets.*"),
        True,
    ),
)
