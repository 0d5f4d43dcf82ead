"""The diffusion core: schedule (maths) ⟂ ε-network ⟂ sampler (loop) ⟂ policy (what an agent uses)."""
from .analysis import gaussian_chain_moments, gaussian_chain_path, paper_printed_betas, terminal_alpha_bar
from .networks import ACTIVATIONS, EpsilonMLP, SinusoidalTimeEmbedding
from .policy import DiffusionPolicy
from .samplers import SAMPLERS, Guidance, run_sampler, sample_steps
from .schedule import VPSchedule

__all__ = [
    "gaussian_chain_moments", "gaussian_chain_path", "paper_printed_betas", "terminal_alpha_bar",
    "VPSchedule", "ACTIVATIONS", "EpsilonMLP", "SinusoidalTimeEmbedding", "DiffusionPolicy", "Guidance", "SAMPLERS", "run_sampler", "sample_steps"]
