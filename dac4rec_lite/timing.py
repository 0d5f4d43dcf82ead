"""What things cost on this machine: moved to ``dac4rec_lite.experiments.timing``. This module keeps the old
import path ``dac4rec_lite.timing`` (and ``dl.timing``) working."""
from .experiments.timing import (POLICY_UPDATE_METHODS, chain_policy_loss, chain_policy_update, count_eps_calls,
                                 median_seconds, time_activations, time_policy_updates, time_samplers)

__all__ = [
    "POLICY_UPDATE_METHODS", "chain_policy_loss", "chain_policy_update", "count_eps_calls", "median_seconds",
    "time_policy_updates", "time_activations", "time_samplers",
]
