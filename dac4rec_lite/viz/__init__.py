"""Figures and interactive panels for the notebooks (plotly + ipywidgets). The core never imports this.

    from dac4rec_lite import viz
    viz.schedule_explorer()                       # sliders → live figure
    viz.schedule_figure(dl.VPSchedule(50))        # the same figure, static

``figures`` builds ``go.Figure`` objects from the core's objects; ``widgets`` wraps them in ``Explorer``
panels (controls + ``go.FigureWidget``) that rebuild the figure whenever a control changes.
"""
from .figures import (
    ACTION_RANGE,
    MODE_COLORS,
    discretisation_figure,
    fixed_noise,
    loss_figure,
    mode_fraction_table,
    mode_labels,
    noising_figure,
    policy_comparison_figure,
    schedule_figure,
    terminal_noise_figure,
    trajectory_figure,
)
from .widgets import Explorer, noising_explorer, schedule_explorer, trajectory_explorer

__all__ = [
    "ACTION_RANGE", "MODE_COLORS", "fixed_noise", "mode_labels",
    "schedule_figure", "noising_figure", "terminal_noise_figure", "trajectory_figure",
    "policy_comparison_figure", "mode_fraction_table", "loss_figure", "discretisation_figure",
    "Explorer", "schedule_explorer", "noising_explorer", "trajectory_explorer",
]

# notebooks 03 and 04: the action approximation and Q-guided training
from .figures import (  # noqa: E402
    approximation_error_figure,
    approximation_errors,
    approximation_figure,
    bandit_outcome_table,
    bandit_policy_figure,
    bandit_samples,
    contextual_policy_figure,
    critic_grid,
    critic_probe_table,
    q_weight_sweep_figure,
    training_curves_figure,
    update_time_figure,
)
from .widgets import approximation_explorer, q_training_panel  # noqa: E402

__all__ += [
    "approximation_figure", "approximation_errors", "approximation_error_figure", "update_time_figure",
    "training_curves_figure", "critic_grid", "bandit_samples", "bandit_outcome_table", "critic_probe_table",
    "bandit_policy_figure", "contextual_policy_figure", "q_weight_sweep_figure",
    "approximation_explorer", "q_training_panel",
]

from .figures import sampler_tradeoff_figure  # noqa: E402

__all__ += ["sampler_tradeoff_figure"]

# notebook 06: the recommendation simulator
from .recsim import (  # noqa: E402
    ctr_by_length_figure,
    item_map_figure,
    metrics_figure,
    metrics_table,
    session_explorer,
    session_figure,
    session_traces,
)

__all__ += ["session_traces", "session_figure", "session_explorer", "metrics_table", "metrics_figure",
            "ctr_by_length_figure", "item_map_figure"]
