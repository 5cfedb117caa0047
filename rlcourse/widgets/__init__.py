"""The notebooks' interactive views, one module per notebook, in the lecture's order.

=============================  ================================================================
module                         notebook
=============================  ================================================================
:mod:`~.overview`              ``01_overview``: the summary table, the slide map, train a preset
:mod:`~.advantages`            ``02_advantage_estimation``: GAE's bias and variance, A2C curves
:mod:`~.dpg`                   ``03_deterministic_policy_gradients``: TD3's fixes, over-estimation
:mod:`~.soft`                  ``04_soft_value_functions``: the softmax policy as λ moves, SAC's λ
:mod:`~.importance`            ``05_importance_sampling``: variance and ESS as q leaves p
:mod:`~.trust_region`          ``06_trpo_bound``: the surrogate bound on a policy path, TRPO runs
:mod:`~.ppo`                   ``07_ppo_clipping``: the clipped objective, epochs, clip fraction
:mod:`~.grpo`                  ``08_grpo``: group-relative advantages, GRPO vs RLOO and PPO
:mod:`~._view`                 what they share: the view skeleton :func:`make_view`, :func:`table`
=============================  ================================================================

Each view has three layers (see :mod:`rlcourse.widgets._view`): a pure function that computes
everything once, a ``draw_*`` function that plots one choice, and a ``*_view`` function whose
controls only redraw. The first layer lives below, with the math: :mod:`rlcourse.sweeps` (GAE's
bias and variance, soft values, the trust-region path), :mod:`rlcourse.importance` (the importance
sampling grid), :mod:`rlcourse.objectives` (the clipped objective, exact epochs on one batch) and
:mod:`rlcourse.advantages` (groups of 0/1 rewards). The notebooks import the views from here and
the computations from those modules, where the math is.
"""

from __future__ import annotations

# The computations behind the views live on the math floors; re-exported here so that a view and
# what it draws can be imported from one place (tests/test_widgets_grpo.py and
# test_widgets_trust_region.py do; the notebooks import them from the math modules).
from rlcourse.advantages import all_equal_fraction, sample_group
from rlcourse.importance import ImportanceSamplingGrid, importance_sampling_grid
from rlcourse.objectives import RatioEpochs, clip_objective, ratio_epochs, surrogate_ascent
from rlcourse.sweeps import (
    BiasVarianceGrid,
    SoftPolicyGrid,
    TrustRegionPath,
    gae_bias_variance,
    gae_on_episodes,
    lambda_return_bias,
    noisy_critic,
    policy_path,
    soft_policy_grid,
    trust_region_path,
)
from rlcourse.widgets._view import make_view, table
from rlcourse.widgets.advantages import (
    bias_variance_view,
    draw_bias_variance,
    draw_learning_curves,
    learning_curves_view,
)
from rlcourse.widgets.dpg import (
    FixesRun,
    draw_fixes,
    draw_overestimation,
    find_run,
    fixes_label,
    fixes_view,
    noise_label,
    noise_scales,
)
from rlcourse.widgets.grpo import (
    accuracy_curve,
    draw_group_advantages,
    draw_grpo_sweep,
    draw_method_comparison,
    group_advantages_view,
    grpo_sweep_view,
    load_grpo_continuation,
    load_grpo_data,
)
from rlcourse.widgets.importance import draw_importance_sampling, importance_sampling_view
from rlcourse.widgets.overview import (
    ALGORITHM_LABELS,
    GRPO_TARGET,
    GRPO_TASK,
    NOTEBOOK_TITLES,
    default_steps,
    draw_run,
    draw_runs,
    max_steps,
    preset_pairs,
    run_summary,
    slide_map_html,
    summary_table_html,
    train_preset,
    train_view,
)
from rlcourse.widgets.ppo import (
    clip_diagnostics_view,
    clip_objective_view,
    draw_clip_diagnostics,
    draw_clip_objective,
    draw_ppo_vs_trpo,
    draw_ratio_epochs,
    ratio_epochs_view,
)
from rlcourse.widgets.soft import draw_soft_policy, draw_temperature, soft_policy_view
from rlcourse.widgets.trust_region import draw_trpo_runs, draw_trust_region, trust_region_view

__all__ = [  # the modules' __all__, in lecture order (written out so that linters see it)
    "make_view",
    "table",
    "ALGORITHM_LABELS",
    "GRPO_TASK",
    "GRPO_TARGET",
    "NOTEBOOK_TITLES",
    "summary_table_html",
    "slide_map_html",
    "preset_pairs",
    "default_steps",
    "max_steps",
    "train_preset",
    "run_summary",
    "draw_runs",
    "draw_run",
    "train_view",
    "noisy_critic",
    "gae_on_episodes",
    "lambda_return_bias",
    "BiasVarianceGrid",
    "gae_bias_variance",
    "draw_bias_variance",
    "bias_variance_view",
    "draw_learning_curves",
    "learning_curves_view",
    "fixes_label",
    "FixesRun",
    "noise_label",
    "noise_scales",
    "find_run",
    "draw_overestimation",
    "draw_fixes",
    "fixes_view",
    "SoftPolicyGrid",
    "soft_policy_grid",
    "draw_soft_policy",
    "soft_policy_view",
    "draw_temperature",
    "ImportanceSamplingGrid",
    "importance_sampling_grid",
    "draw_importance_sampling",
    "importance_sampling_view",
    "policy_path",
    "TrustRegionPath",
    "trust_region_path",
    "draw_trust_region",
    "trust_region_view",
    "draw_trpo_runs",
    "clip_objective",
    "draw_clip_objective",
    "clip_objective_view",
    "surrogate_ascent",
    "RatioEpochs",
    "ratio_epochs",
    "draw_ratio_epochs",
    "ratio_epochs_view",
    "draw_ppo_vs_trpo",
    "draw_clip_diagnostics",
    "clip_diagnostics_view",
    "sample_group",
    "all_equal_fraction",
    "draw_group_advantages",
    "group_advantages_view",
    "load_grpo_continuation",
    "load_grpo_data",
    "accuracy_curve",
    "draw_method_comparison",
    "draw_grpo_sweep",
    "grpo_sweep_view",
]
