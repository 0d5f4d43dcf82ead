"""Agents: DAC4Rec (Algorithm 1) and the shared offline-agent interface."""
from .base import OfflineAgent, TrainingDivergedError
from .dac4rec import DAC4Rec, DAC4RecConfig

__all__ = ["OfflineAgent", "TrainingDivergedError", "DAC4Rec", "DAC4RecConfig"]
