"""Moved to :mod:`dac4rec_lite.observation` (the encoders read it, and importing them must not load the
environments); this name stays importable for existing code."""
from ..observation import ObsLayout

__all__ = ["ObsLayout"]
