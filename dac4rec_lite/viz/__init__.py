"""Figures and interactive panels for the notebooks (plotly + ipywidgets). The core never imports this.

    from dac4rec_lite import viz
    viz.schedule_explorer()                       # sliders → live figure
    viz.schedule_figure(dl.VPSchedule(50))        # the same figure, static

One module per notebook topic, each holding its static ``*_figure`` builders and the ``Explorer`` panels that
drive them: ``schedule`` (01), ``policy`` (02), ``approximation`` (03), ``q_training`` (04), ``guidance``
(05), ``recsim`` (06), ``studies`` (07). ``style`` is the shared look (colours, axes, modes and blobs,
arrows); ``widgets`` the panel base (``Explorer``, ``make_explorer``, ``copy_into``). viz only draws: the
tables and fields it shows are computed in ``dac4rec_lite.experiments.analysis`` and
``dac4rec_lite.experiments.guidance``, the session traces and metrics table of 06 in ``dac4rec_lite.evaluation``;
the table functions are re-exported here so ``dl.viz.<name>`` keeps working.
"""
from ..evaluation import metrics_table, session_traces
from ..experiments.analysis import (
    approximation_errors,
    bandit_outcome_table,
    bandit_samples,
    critic_grid,
    critic_probe_table,
    mode_fraction_table,
)
from .approximation import approximation_error_figure, approximation_explorer, approximation_figure, update_time_figure
from .guidance import (
    energy_explorer,
    energy_heatmap_figure,
    guidance_scale_explorer,
    guidance_scale_figure,
    guided_trajectory_explorer,
    guided_trajectory_figure,
    reward_spread_figure,
    score_decomposition_explorer,
    score_decomposition_figure,
)
from .policy import (
    SAMPLER_COLORS,
    discretisation_figure,
    loss_figure,
    policy_comparison_figure,
    sampler_tradeoff_figure,
    score_field_explorer,
    score_field_figure,
    trajectory_explorer,
    trajectory_figure,
)
from .q_training import (
    bandit_policy_figure,
    contextual_policy_figure,
    q_gradient_figure,
    q_training_panel,
    q_weight_sweep_figure,
    training_animation_figure,
    training_curves_figure,
)
from .recsim import (
    ctr_by_length_figure,
    item_map_figure,
    metrics_figure,
    session_explorer,
    session_figure,
)
from .schedule import noising_explorer, noising_figure, schedule_explorer, schedule_figure, terminal_noise_figure
from .style import ACTION_RANGE, ELSEWHERE, MODE_COLORS, TEMPLATE, fixed_noise, mode_labels
from .widgets import Explorer

__all__ = [
    # shared look
    "ACTION_RANGE", "MODE_COLORS", "ELSEWHERE", "TEMPLATE", "fixed_noise", "mode_labels", "Explorer",
    # 01 the schedule and the forward process
    "schedule_figure", "noising_figure", "terminal_noise_figure", "schedule_explorer", "noising_explorer",
    # 02 the reverse chain as a policy
    "trajectory_figure", "policy_comparison_figure", "mode_fraction_table", "loss_figure", "discretisation_figure",
    "SAMPLER_COLORS", "sampler_tradeoff_figure", "trajectory_explorer", "score_field_figure", "score_field_explorer",
    # 03 the action approximation
    "approximation_figure", "approximation_errors", "approximation_error_figure", "update_time_figure",
    "approximation_explorer",
    # 04 Q-guided training
    "training_curves_figure", "critic_grid", "bandit_samples", "bandit_outcome_table", "critic_probe_table",
    "bandit_policy_figure", "contextual_policy_figure", "q_weight_sweep_figure", "q_gradient_figure",
    "training_animation_figure", "q_training_panel",
    # 05 energy guidance
    "energy_heatmap_figure", "score_decomposition_figure", "score_decomposition_explorer", "guided_trajectory_figure",
    "guidance_scale_figure",
    "reward_spread_figure", "energy_explorer", "guided_trajectory_explorer", "guidance_scale_explorer",
    # 06 the recommendation simulator
    "session_traces", "session_figure", "session_explorer", "metrics_table", "metrics_figure",
    "ctr_by_length_figure", "item_map_figure",
]
