"""Studies of energy-guided sampling on the corner bandit: moved to ``dac4rec_lite.experiments.guidance``.
This module keeps the old import path ``dac4rec_lite.guidance_studies`` working."""
from .experiments.guidance import (ExactBehaviourEps, bandit_energy, bandit_guidance_by_scale, energy_grid, grid_axis,
                                   guided_sample, importance_energy_estimate, mse_target_error, q_values,
                                   reward_spread_by_scale, sample_summary, summary_table)

__all__ = [
    "grid_axis", "energy_grid", "bandit_energy", "guided_sample", "sample_summary", "summary_table",
    "reward_spread_by_scale", "q_values", "importance_energy_estimate", "mse_target_error", "ExactBehaviourEps",
    "bandit_guidance_by_scale",
]
