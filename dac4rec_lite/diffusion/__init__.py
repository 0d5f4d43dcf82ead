"""The diffusion core: schedule (maths) ⟂ ε-network ⟂ sampler (loop) ⟂ policy (what an agent uses)."""
from .networks import EpsilonMLP, SinusoidalTimeEmbedding
from .policy import DiffusionPolicy
from .samplers import Guidance, ddpm_sample
from .schedule import VPSchedule

__all__ = ["VPSchedule", "EpsilonMLP", "SinusoidalTimeEmbedding", "DiffusionPolicy", "Guidance", "ddpm_sample"]
